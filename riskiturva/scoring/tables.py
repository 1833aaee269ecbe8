"""The weight table: every number of the scoring model, the grade bands and the caps.

`docs/scoring.md` shows these tables as `weights_markdown` renders them (a test compares).
Cap reasons are English msgids of the `scoring` gettext domain (`answer.cap_reason`
translates them); `N_` only marks them for the catalog test's extraction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from riskiturva.checks import Effort, Severity

# Major.minor: the major changes when a score would change; the minor when only the
# explanation or the priorities do (scores of the same major compare across minors).
SCORING_VERSION = "1.2"  # 1.2: the software category; ransomware KEV weighs more

POINT = 10  # scores are kept in tenths of a point: 1000 is 100.0
FULL_SCORE = 100 * POINT


def N_(message: str) -> str:
    """Marks a msgid of the `scoring` domain that is translated later, at display time."""
    return message


def comparable_versions(first: str, second: str) -> bool:
    """Whether scores of two scoring versions measure the same thing (same major)."""
    return first.split(".", 1)[0] == second.split(".", 1)[0]


class Grade(StrEnum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"
    F = "F"


class Scope(StrEnum):
    ORGANISATION = "organisation"
    CATEGORY = "category"
    ASSET = "asset"


# Points (in tenths) lost by one instance of a finding on a medium-criticality asset.
SEVERITY_WEIGHTS: Mapping[Severity, int] = {
    Severity.CRITICAL: 400,
    Severity.HIGH: 200,
    Severity.MEDIUM: 50,
    Severity.LOW: 20,
    Severity.INFO: 0,
}
# Checks that weigh more than their severity: a known-exploited vulnerability that CISA says
# ransomware uses is fixed before other critical ones (CISA #StopRansomware, KEV).
CHECK_WEIGHTS: Mapping[str, int] = {"software.kev.ransomware": 600}
# The penalty (in points) that leaves 100/e ≈ 36.8 points.
PENALTY_SCALE = 150
# Multipliers in halves: high 1.5, medium 1.0, low 0.5.
CRITICALITY_HALVES: Mapping[str, int] = {"high": 3, "medium": 2, "low": 1}
DEFAULT_CRITICALITY = "medium"
# The i-th instance (worst first) of the same problem counts ½^i; after this many
# instances the rest count nothing (their share is below 1/10 000 of a point).
COUNTED_INSTANCES = 24
# Lowest score (tenths) of each grade, best first.
GRADE_FLOORS: tuple[tuple[Grade, int], ...] = (
    (Grade.A, 900),
    (Grade.B, 800),
    (Grade.C, 700),
    (Grade.D, 600),
    (Grade.F, 0),
)
_FLOORS = dict(GRADE_FLOORS)


def grade_for(tenths: int) -> Grade:
    for grade, floor in GRADE_FLOORS:
        if tenths >= floor:
            return grade
    return Grade.F


def grade_floor(grade: Grade | str) -> int:
    return _FLOORS[Grade(grade)]


# Days to fix after first seen, by severity (CISA BOD 19-02 for critical and high).
DEADLINE_DAYS: Mapping[Severity, int | None] = {
    Severity.CRITICAL: 15,
    Severity.HIGH: 30,
    Severity.MEDIUM: 90,
    Severity.LOW: 180,
    Severity.INFO: None,
}
EFFORT_UNITS: Mapping[Effort, int] = {Effort.LOW: 1, Effort.MEDIUM: 2, Effort.HIGH: 4}
DEFAULT_EFFORT = Effort.MEDIUM


@dataclass(frozen=True, slots=True, eq=False)
class CapRule:
    """A ceiling on the grade while a matching open finding exists.

    A finding matches when every given condition holds: its check id is one of
    `check_ids`, its severity is `severity`, its asset's criticality is at least
    `min_criticality`, and its asset carries `tag`. `scopes` says which scores the cap
    limits (the organisation's, the finding's category's, the finding's asset's).
    `reason` is an English msgid of the `scoring` domain.
    """

    id: str
    grade: Grade
    scopes: frozenset[Scope]
    reason: str
    source: str
    check_ids: frozenset[str] | None = None
    severity: Severity | None = None
    min_criticality: str | None = None
    tag: str | None = None
    ceiling: int = field(init=False)  # the highest score (tenths) the cap allows

    def __post_init__(self) -> None:
        better = [g for g, _ in GRADE_FLOORS]
        index = better.index(self.grade)
        top = FULL_SCORE if index == 0 else grade_floor(better[index - 1]) - 1
        object.__setattr__(self, "ceiling", top)  # the top of its grade's band


_ALL_SCOPES = frozenset(Scope)
_TLS_SCOPES = frozenset({Scope.CATEGORY, Scope.ASSET})

CAP_RULES: tuple[CapRule, ...] = (
    CapRule(
        id="open_critical",
        grade=Grade.D,
        scopes=_ALL_SCOPES,
        severity=Severity.CRITICAL,
        reason=N_("an open critical problem"),
        source="CISA BOD 19-02/22-01: critical findings are fixed first, within 15 days",
    ),
    CapRule(
        id="expired_certificate_e_service",
        grade=Grade.C,
        scopes=_ALL_SCOPES,
        check_ids=frozenset({"tls.certificate.expired"}),
        min_criticality="high",
        tag="e-service",
        reason=N_("an expired certificate on an important e-service"),
        source="SSL Labs rating guide: an untrusted or expired certificate is not graded (T)",
    ),
    CapRule(
        id="untrusted_certificate_e_service",
        grade=Grade.C,
        scopes=_ALL_SCOPES,
        check_ids=frozenset(
            {
                "tls.certificate.untrusted",
                "tls.certificate.self_signed",
                "tls.certificate.hostname_mismatch",
            }
        ),
        tag="e-service",
        reason=N_("an untrusted certificate on an e-service"),
        source="SSL Labs rating guide: untrusted, self-signed or mismatched certificates (T, M)",
    ),
    CapRule(
        id="tls_broken",
        grade=Grade.F,
        scopes=_TLS_SCOPES,
        check_ids=frozenset(
            {
                "tls.protocol.sslv2",
                "tls.cipher.null_export_anon",
                "tls.vuln.heartbleed",
                "tls.vuln.ccs_injection",
                "tls.vuln.robot",
                "tls.vuln.insecure_renegotiation",
            }
        ),
        reason=N_("broken encryption (e.g. SSLv2, Heartbleed or null cipher suites)"),
        source="SSL Labs rating guide: SSL 2, null/export/anonymous suites, Heartbleed, "
        "CCS injection, ROBOT and insecure renegotiation grade F",
    ),
    CapRule(
        id="tls_weak",
        grade=Grade.C,
        scopes=_TLS_SCOPES,
        check_ids=frozenset(
            {
                "tls.protocol.sslv3",
                "tls.protocol.no_tls1_2",
                "tls.cipher.rc4",
                "tls.cipher.block_64bit",
                "tls.vuln.compression",
            }
        ),
        reason=N_("weak encryption (SSLv3, RC4, 64-bit block ciphers, compression or no TLS 1.2)"),
        source="SSL Labs rating guide: SSL 3 (POODLE), RC4, SWEET32, CRIME and no TLS 1.2 grade C",
    ),
    CapRule(
        id="tls_legacy_protocol",
        grade=Grade.B,
        scopes=_TLS_SCOPES,
        check_ids=frozenset({"tls.protocol.tls1_0", "tls.protocol.tls1_1"}),
        reason=N_("obsolete TLS 1.0 or 1.1 offered"),
        source="SSL Labs (January 2020): TLS 1.0 or 1.1 caps the grade at B; RFC 8996",
    ),
    CapRule(
        id="spf_pass_all",
        grade=Grade.D,
        scopes=frozenset({Scope.CATEGORY, Scope.ASSET}),
        check_ids=frozenset({"email.spf.pass_all"}),
        reason=N_("SPF lets anyone send mail in your name (+all)"),
        source="internet.nl mail test: an SPF policy ending in +all fails; RFC 7208 §5.1",
    ),
)
CAP_RULES_BY_ID: Mapping[str, CapRule] = {rule.id: rule for rule in CAP_RULES}


def check_weight(severity: Severity | str, check_id: str | None = None) -> int:
    """Points (tenths) one instance of a check of this severity loses on a medium asset."""
    if check_id is not None and check_id in CHECK_WEIGHTS:
        return CHECK_WEIGHTS[check_id]
    return SEVERITY_WEIGHTS[Severity(severity)]


def weights_markdown() -> str:
    """The tables of `docs/scoring.md`, generated from this module (a test compares them)."""
    lines = [
        f"<!-- generated by riskiturva.scoring.weights_markdown (version {SCORING_VERSION}) -->",
        "",
        "| severity | points lost (medium asset) | fix within |",
        "|---|---|---|",
    ]
    for severity, weight in SEVERITY_WEIGHTS.items():
        days = DEADLINE_DAYS[severity]
        lines.append(f"| {severity} | {weight / POINT:g} | {f'{days} days' if days else '—'} |")
    lines += ["", "| check weighing more than its severity | points lost (medium asset) |"]
    lines += ["|---|---|"]
    lines += [f"| `{c}` | {w / POINT:g} |" for c, w in CHECK_WEIGHTS.items()]
    lines += ["", "| asset criticality | multiplier |", "|---|---|"]
    lines += [f"| {name} | {halves / 2:g} |" for name, halves in CRITICALITY_HALVES.items()]
    lines += ["", "| grade | score at least |", "|---|---|"]
    lines += [f"| {grade} | {floor / POINT:g} |" for grade, floor in GRADE_FLOORS]
    lines += ["", "| effort | units |", "|---|---|"]
    lines += [f"| {effort} | {units} |" for effort, units in EFFORT_UNITS.items()]
    lines += [
        "",
        "| cap | at most | limits | when an open finding has | source |",
        "|---|---|---|---|---|",
    ]
    for rule in CAP_RULES:
        conditions = []
        if rule.check_ids:
            conditions.append(" or ".join(f"`{c}`" for c in sorted(rule.check_ids)))
        if rule.severity:
            conditions.append(f"severity {rule.severity}")
        if rule.min_criticality:
            conditions.append(f"asset criticality ≥ {rule.min_criticality}")
        if rule.tag:
            conditions.append(f"asset tag `{rule.tag}`")
        scopes = ", ".join(s for s in Scope if s in rule.scopes)
        lines.append(
            f"| `{rule.id}` | {rule.grade} ({rule.ceiling / POINT:g}) | {scopes} | "
            f"{'; '.join(conditions)} | {rule.source} |"
        )
    return "\n".join(lines) + "\n"
