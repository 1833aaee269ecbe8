"""Risk score, grade and recovery priorities: pure functions over findings and assets.

The model (explained with its sources in `docs/scoring.md`):

* Each open finding group — one check id within a scope — has a penalty of
  `severity weight × Σ criticality multiplier of its i-th worst instance × ½^i`,
  so a problem on many assets costs at most twice its worst instance (diminishing returns),
  and a critical asset weighs three times a low one.
* The score is `100 × exp(−penalty / PENALTY_SCALE)`: nearly 100 − penalty for small
  penalties, never below 0, and still telling a bad estate from a terrible one. Then caps
  limit it (an open critical finding: at most D; an expired certificate on a
  high-criticality e-service: at most C; …). Nothing is averaged over assets, so clean
  hosts never hide a hole.
* The points lost are shared among the groups in proportion to their penalties, in
  integer tenths of a point (largest remainder), so an explanation adds up exactly.

Nothing here touches the database or the clock: callers pass `today`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from riskiturva.checks import Category, Check, Effort, Severity

SCORING_VERSION = "1.1"  # 1.1: the software category; ransomware KEV weighs more

POINT = 10  # scores are kept in tenths of a point: 1000 is 100.0
FULL_SCORE = 100 * POINT


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


# --- the weight table: every number of the model lives here ---------------------------

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
    """

    id: str
    grade: Grade
    scopes: frozenset[Scope]
    reason: Mapping[str, str]
    source: str
    check_ids: frozenset[str] | None = None
    severity: Severity | None = None
    min_criticality: str | None = None
    tag: str | None = None

    @property
    def ceiling(self) -> int:
        """Highest score (tenths) the cap allows: the top of its grade's band."""
        floors = dict(GRADE_FLOORS)
        better = [g for g, _ in GRADE_FLOORS]
        index = better.index(self.grade)
        return FULL_SCORE if index == 0 else floors[better[index - 1]] - 1


_ALL_SCOPES = frozenset(Scope)
_TLS_SCOPES = frozenset({Scope.CATEGORY, Scope.ASSET})

CAP_RULES: tuple[CapRule, ...] = (
    CapRule(
        id="open_critical",
        grade=Grade.D,
        scopes=_ALL_SCOPES,
        severity=Severity.CRITICAL,
        reason={
            "fi": "avoin kriittinen ongelma",
            "sv": "ett öppet kritiskt problem",
            "en": "an open critical problem",
        },
        source="CISA BOD 19-02/22-01: critical findings are fixed first, within 15 days",
    ),
    CapRule(
        id="expired_certificate_e_service",
        grade=Grade.C,
        scopes=_ALL_SCOPES,
        check_ids=frozenset({"tls.certificate.expired"}),
        min_criticality="high",
        tag="e-service",
        reason={
            "fi": "vanhentunut varmenne tärkeässä asiointipalvelussa",
            "sv": "ett utgånget certifikat i en viktig e-tjänst",
            "en": "an expired certificate on an important e-service",
        },
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
        reason={
            "fi": "epäluotettava varmenne asiointipalvelussa",
            "sv": "ett opålitligt certifikat i en e-tjänst",
            "en": "an untrusted certificate on an e-service",
        },
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
        reason={
            "fi": "rikkinäinen salaus (esim. SSLv2, Heartbleed tai salaamattomat salausjoukot)",
            "sv": "trasig kryptering (t.ex. SSLv2, Heartbleed eller okrypterade chiffersviter)",
            "en": "broken encryption (e.g. SSLv2, Heartbleed or null cipher suites)",
        },
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
        reason={
            "fi": "heikko salaus (SSLv3, RC4, 64-bittiset lohkosalaimet, pakkaus tai "
            "TLS 1.2 puuttuu)",
            "sv": "svag kryptering (SSLv3, RC4, 64-bitars blockchiffer, komprimering eller "
            "TLS 1.2 saknas)",
            "en": "weak encryption (SSLv3, RC4, 64-bit block ciphers, compression or no TLS 1.2)",
        },
        source="SSL Labs rating guide: SSL 3 (POODLE), RC4, SWEET32, CRIME and no TLS 1.2 grade C",
    ),
    CapRule(
        id="tls_legacy_protocol",
        grade=Grade.B,
        scopes=_TLS_SCOPES,
        check_ids=frozenset({"tls.protocol.tls1_0", "tls.protocol.tls1_1"}),
        reason={
            "fi": "vanhentunut TLS 1.0 tai 1.1 käytössä",
            "sv": "föråldrad TLS 1.0 eller 1.1 i bruk",
            "en": "obsolete TLS 1.0 or 1.1 offered",
        },
        source="SSL Labs (January 2020): TLS 1.0 or 1.1 caps the grade at B; RFC 8996",
    ),
    CapRule(
        id="spf_pass_all",
        grade=Grade.D,
        scopes=frozenset({Scope.CATEGORY, Scope.ASSET}),
        check_ids=frozenset({"email.spf.pass_all"}),
        reason={
            "fi": "SPF sallii kenen tahansa lähettää postia nimissänne (+all)",
            "sv": "SPF tillåter vem som helst att skicka e-post i ert namn (+all)",
            "en": "SPF lets anyone send mail in your name (+all)",
        },
        source="internet.nl mail test: an SPF policy ending in +all fails; RFC 7208 §5.1",
    ),
)


def check_weight(severity: Severity | str, check_id: str | None = None) -> int:
    """Points (tenths) one instance of a check of this severity loses on a medium asset."""
    if check_id is not None and check_id in CHECK_WEIGHTS:
        return CHECK_WEIGHTS[check_id]
    return SEVERITY_WEIGHTS[Severity(severity)]


def grade_for(tenths: int) -> Grade:
    for grade, floor in GRADE_FLOORS:
        if tenths >= floor:
            return grade
    return Grade.F


def grade_floor(grade: Grade | str) -> int:
    return dict(GRADE_FLOORS)[Grade(grade)]


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


# --- inputs ----------------------------------------------------------------------------


class FindingStatus(StrEnum):
    """The effective status: a person's decision that has expired is already `open`."""

    OPEN = "open"
    ACCEPTED = "accepted"
    FALSE_POSITIVE = "false_positive"


@dataclass(frozen=True, slots=True)
class ScoringFinding:
    check_id: str
    category: str
    severity: str
    subject: str
    asset: str
    first_seen: dt.date
    status: str = FindingStatus.OPEN
    decision_reason: str | None = None
    decision_until: dt.date | None = None


@dataclass(frozen=True, slots=True)
class ScoringAsset:
    value: str
    criticality: str = DEFAULT_CRITICALITY
    tags: frozenset[str] = frozenset()


# --- results ---------------------------------------------------------------------------


class ContributionKind(StrEnum):
    FINDING = "finding"  # an open finding group lost points
    CAP = "cap"  # the binding cap took the score down to its ceiling


@dataclass(frozen=True, slots=True)
class Contribution:
    """One line of an explanation: 100 − Σ points_lost (tenths) is the score."""

    kind: ContributionKind
    points_lost: int  # tenths of a point
    check_id: str | None = None
    category: str | None = None
    severity: str | None = None
    instances: int = 0
    penalty: int = 0  # tenths, before the exponential: the group's share is in proportion
    cap_id: str | None = None

    @property
    def points(self) -> float:
        return self.points_lost / POINT


@dataclass(frozen=True, slots=True)
class AppliedCap:
    rule: CapRule
    binding: bool  # this cap set the score

    @property
    def id(self) -> str:
        return self.rule.id


@dataclass(frozen=True, slots=True)
class ScopeScore:
    scope: Scope
    key: str
    tenths: int
    grade: Grade
    contributions: tuple[Contribution, ...]
    caps: tuple[AppliedCap, ...]
    version: str = SCORING_VERSION

    @property
    def score(self) -> float:
        return self.tenths / POINT


# (penalty, check id, category, severity, instances): a finding group before settling
_Line = tuple[int, str, str, Severity, int]


class AssetScores(Mapping[str, ScopeScore]):
    """Per-asset scores, each settled from the groups when first read: an estate has many
    assets, and a page or report reads few of them."""

    def __init__(
        self,
        groups: Sequence[FindingGroup],
        assets: Mapping[str, tuple[int, ScoringAsset]],
        values: Sequence[str],
    ):
        self._groups = groups
        self._assets = assets
        self._values = values
        self._index: dict[str, list[tuple[FindingGroup, int]]] | None = None
        self._settled: dict[str, ScopeScore] = {}

    def _groups_of(self, value: str) -> list[tuple[FindingGroup, int]]:
        if self._index is None:  # one pass over every (group, asset) pair, on first read
            self._index = {}
            for group in self._groups:
                for asset_value, count in group.asset_counts.items():
                    self._index.setdefault(asset_value, []).append((group, count))
        return self._index.get(value, [])

    def __getitem__(self, value: str) -> ScopeScore:
        settled = self._settled.get(value)
        if settled is None:
            if value not in self._assets and not self._groups_of(value):
                raise KeyError(value)
            halves, asset = self._assets.get(value, _DEFAULT_ASSET)
            lines: list[_Line] = []
            caps: set[CapRule] = set()
            for group, count in self._groups_of(value):
                weight = check_weight(group.severity, group.check_id)
                penalty = _instance_points(weight, halves, count)
                lines.append((penalty, group.check_id, group.category, group.severity, count))
                for rule in _candidate_rules(group.check_id, group.severity):
                    if Scope.ASSET in rule.scopes and _cap_matches(rule, group.severity, asset):
                        caps.add(rule)
            settled = self._settled[value] = _settle(Scope.ASSET, value, lines, caps)
        return settled

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"AssetScores({len(self)} assets)"


@dataclass(frozen=True, slots=True)
class FindingGroup:
    """The open findings of one check in one organisation: one remediation action."""

    check_id: str
    category: str
    severity: Severity
    penalty: int  # tenths
    subjects: tuple[str, ...]
    asset_counts: Mapping[str, int]  # asset value → instances on it
    first_seen: dt.date
    caps: frozenset[str]  # organisation-scope caps this group alone triggers

    @property
    def assets(self) -> tuple[str, ...]:
        return tuple(sorted(self.asset_counts))


@dataclass(frozen=True, slots=True)
class OrganisationScore:
    organisation: str
    overall: ScopeScore
    categories: Mapping[str, ScopeScore]
    assets: Mapping[str, ScopeScore]
    groups: tuple[FindingGroup, ...]
    excluded: tuple[ScoringFinding, ...]
    open_counts: Mapping[str, int]
    version: str = SCORING_VERSION

    @property
    def score(self) -> float:
        return self.overall.score

    @property
    def tenths(self) -> int:
        return self.overall.tenths

    @property
    def grade(self) -> Grade:
        return self.overall.grade

    @property
    def contributions(self) -> tuple[Contribution, ...]:
        return self.overall.contributions

    @property
    def caps(self) -> tuple[AppliedCap, ...]:
        return self.overall.caps


# --- scoring ---------------------------------------------------------------------------

_SEVERITY_BY_RANK = {s.rank: s for s in Severity}
_RANK_OF_SEVERITY: Mapping[str, int] = {str(s): s.rank for s in Severity}
_CRITICALITY_ORDER = {"low": 0, "medium": 1, "high": 2}


def _instances_sum(halves_by_count: Sequence[tuple[int, int]]) -> int:
    """Σ multiplier_i × ½^i over instances sorted worst first, scaled by 2^(COUNTED+1).

    `halves_by_count` lists (multiplier in halves, count), largest multiplier first.
    """
    total, position = 0, 0
    for halves, count in halves_by_count:
        top = COUNTED_INSTANCES + 1 - position
        if top <= 0:
            break
        bottom = max(top - count, 0)
        total += halves * ((1 << top) - (1 << bottom))
        position += count
    return total


def _group_points(weight: int, halves_by_count: Sequence[tuple[int, int]]) -> int:
    """Points (tenths) lost by one group, rounded half up: exact integer arithmetic."""
    scaled = weight * _instances_sum(halves_by_count)  # = points × 2^(COUNTED+1)
    shift = COUNTED_INSTANCES + 1
    return (scaled + (1 << (shift - 1))) >> shift


@cache
def _instance_points(weight: int, halves: int, count: int) -> int:
    """Points (tenths) of `count` instances on assets of one criticality (memoised)."""
    return _group_points(weight, ((halves, count),))


def _cap_matches(rule: CapRule, severity: Severity, asset: ScoringAsset) -> bool:
    if rule.severity is not None and severity is not rule.severity:
        return False
    if rule.min_criticality is not None and _CRITICALITY_ORDER.get(
        asset.criticality, 1
    ) < _CRITICALITY_ORDER.get(rule.min_criticality, 1):
        return False
    return rule.tag is None or rule.tag in asset.tags


def compress(penalty: int) -> int:
    """Score (tenths) for a penalty (tenths): 1000 × exp(−penalty / scale), rounded half up."""
    return int(FULL_SCORE * math.exp(-penalty / (PENALTY_SCALE * POINT)) + 0.5)


def _apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` in proportion to `weights` so the parts add up exactly (largest
    remainder; ties to the earlier weight)."""
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    parts = [total * w // whole for w in weights]
    short = total - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: -(total * weights[i] % whole))
    for i in by_remainder[:short]:
        parts[i] += 1
    return parts


def _settle(scope: Scope, key: str, lines: list[_Line], caps: Iterable[CapRule]) -> ScopeScore:
    """Turn finding groups and triggered caps into a score whose explanation adds up."""
    lines = sorted((line for line in lines if line[0] > 0), key=lambda line: (-line[0], line[1]))
    uncapped = compress(sum(line[0] for line in lines))
    shares = _apportion(FULL_SCORE - uncapped, [line[0] for line in lines])
    contributions = [
        Contribution(ContributionKind.FINDING, share, check_id, category, severity, count, raw)
        for share, (raw, check_id, category, severity, count) in zip(shares, lines, strict=True)
    ]
    ordered_caps = sorted(caps, key=lambda r: (r.ceiling, r.id))
    applied: list[AppliedCap] = []
    tenths = uncapped
    for index, rule in enumerate(ordered_caps):
        binding = index == 0 and rule.ceiling < uncapped
        if binding:
            contributions.append(
                Contribution(ContributionKind.CAP, uncapped - rule.ceiling, cap_id=rule.id)
            )
            tenths = rule.ceiling
        applied.append(AppliedCap(rule, binding))
    return ScopeScore(scope, key, tenths, grade_for(tenths), tuple(contributions), tuple(applied))


@cache
def _candidate_rules(check_id: str, severity: Severity) -> tuple[CapRule, ...]:
    """The cap rules a group of this check and severity may trigger (asset aside)."""
    return tuple(
        rule
        for rule in CAP_RULES
        if (rule.check_ids is None or check_id in rule.check_ids)
        and (rule.severity is None or rule.severity is severity)
    )


_DEFAULT_ASSET = (CRITICALITY_HALVES[DEFAULT_CRITICALITY], ScoringAsset(""))


def score_organisation(
    organisation: str,
    findings: Iterable[ScoringFinding],
    assets: Iterable[ScoringAsset] = (),
) -> OrganisationScore:
    """Score one organisation's findings: overall, per category and per asset.

    A check's severity is the highest among its findings (normally all the registry's).
    An asset the findings name but `assets` does not is scored as medium, untagged.
    """
    by_check: dict[str, list[ScoringFinding]] = {}
    excluded: list[ScoringFinding] = []
    open_status = FindingStatus.OPEN
    for finding in findings:
        if finding.status != open_status:
            excluded.append(finding)
            continue
        same = by_check.get(finding.check_id)
        if same is None:
            by_check[finding.check_id] = [finding]
        else:
            same.append(finding)
    asset_info = {
        a.value: (CRITICALITY_HALVES.get(a.criticality, _DEFAULT_ASSET[0]), a) for a in assets
    }
    rank_of = _RANK_OF_SEVERITY
    groups: list[FindingGroup] = []
    category_caps: dict[str, set[CapRule]] = {}
    organisation_caps: set[CapRule] = set()
    count_by_rank = [0] * len(Severity)
    for check_id in sorted(by_check):
        same = by_check[check_id]
        severity = _SEVERITY_BY_RANK[max(rank_of[f.severity] for f in same)]
        count_by_rank[severity.rank] += len(same)
        asset_counts: dict[str, int] = {}
        for finding in same:
            asset_counts[finding.asset] = asset_counts.get(finding.asset, 0) + 1
        by_halves: dict[int, int] = {}
        for value, count in asset_counts.items():
            halves = asset_info.get(value, _DEFAULT_ASSET)[0]
            by_halves[halves] = by_halves.get(halves, 0) + count
        caps: set[str] = set()
        category = same[0].category
        for rule in _candidate_rules(check_id, severity):
            if not any(
                _cap_matches(rule, severity, asset_info.get(value, _DEFAULT_ASSET)[1])
                for value in asset_counts
            ):
                continue
            if Scope.CATEGORY in rule.scopes:
                category_caps.setdefault(category, set()).add(rule)
            if Scope.ORGANISATION in rule.scopes:
                organisation_caps.add(rule)
                caps.add(rule.id)
        groups.append(
            FindingGroup(
                check_id=check_id,
                category=category,
                severity=severity,
                penalty=_group_points(
                    check_weight(severity, check_id), sorted(by_halves.items(), reverse=True)
                ),
                subjects=tuple(sorted(f.subject for f in same)),
                asset_counts=asset_counts,
                first_seen=min(f.first_seen for f in same),
                caps=frozenset(caps),
            )
        )
    lines = [(g.penalty, g.check_id, g.category, g.severity, len(g.subjects)) for g in groups]
    categories = {
        category: _settle(
            Scope.CATEGORY,
            category,
            [line for line in lines if line[2] == category],
            category_caps.get(category, ()),
        )
        for category in sorted({c.value for c in Category} | {g.category for g in groups})
    }
    values = sorted(set(asset_info).union(*(g.asset_counts for g in groups)))
    return OrganisationScore(
        organisation=organisation,
        overall=_settle(Scope.ORGANISATION, organisation, lines, organisation_caps),
        categories=categories,
        assets=AssetScores(groups, asset_info, values),
        groups=tuple(groups),
        excluded=tuple(sorted(excluded, key=lambda f: (f.check_id, f.subject, f.asset))),
        open_counts={str(s): count_by_rank[s.rank] for s in Severity},
    )


# --- what-if and recovery priorities ---------------------------------------------------


def _score_without(score: OrganisationScore, removed: frozenset[str]) -> int:
    """The organisation's score (tenths) if the groups with these check ids were fixed."""
    uncapped = compress(sum(g.penalty for g in score.groups if g.check_id not in removed))
    still_capped = {cap for g in score.groups if g.check_id not in removed for cap in g.caps}
    ceilings = [r.ceiling for r in CAP_RULES if r.id in still_capped]
    return min([uncapped, *ceilings])


@dataclass(frozen=True, slots=True)
class Action:
    """One remediation: fix one check everywhere it is open."""

    check_id: str
    category: str
    severity: Severity
    subjects: tuple[str, ...]
    assets: tuple[str, ...]
    penalty: int  # tenths, before the exponential
    gain: int  # tenths the organisation's score rises if only this is fixed
    effort: Effort
    first_seen: dt.date
    due: dt.date | None
    overdue: bool

    @property
    def effort_units(self) -> int:
        return EFFORT_UNITS[self.effort]

    @property
    def instances(self) -> int:
        return len(self.subjects)

    def rank_key(self) -> tuple[float, float, int, str]:
        """Gain per effort, then penalty per effort, then severity, then id."""
        units = self.effort_units
        return (-self.gain / units, -self.penalty / units, -self.severity.rank, self.check_id)


def due_date(
    severity: Severity | str, first_seen: dt.date, deadline_days: int | None = None
) -> dt.date | None:
    """First seen + the check's own deadline (KEV: 14 days), else the severity's."""
    days = deadline_days if deadline_days is not None else DEADLINE_DAYS[Severity(severity)]
    return None if days is None else first_seen + dt.timedelta(days=days)


def _effort(check_id: str, registry: Mapping[str, Check]) -> Effort:
    check = registry.get(check_id)
    return check.effort if check is not None else DEFAULT_EFFORT


def priorities(
    score: OrganisationScore, *, registry: Mapping[str, Check], today: dt.date
) -> list[Action]:
    """Every open finding group as an action, best gain per effort first."""
    actions = []
    for group in score.groups:
        if group.penalty == 0 and not group.caps:
            continue
        check = registry.get(group.check_id)
        due = due_date(group.severity, group.first_seen, check.deadline_days if check else None)
        actions.append(
            Action(
                check_id=group.check_id,
                category=group.category,
                severity=group.severity,
                subjects=group.subjects,
                assets=group.assets,
                penalty=group.penalty,
                gain=_score_without(score, frozenset({group.check_id})) - score.tenths,
                effort=_effort(group.check_id, registry),
                first_seen=group.first_seen,
                due=due,
                overdue=due is not None and today > due,
            )
        )
    return sorted(actions, key=Action.rank_key)


@dataclass(frozen=True, slots=True)
class Plan:
    """The least total effort that reaches `target` (exact, see `plan_to_reach`)."""

    target: Grade
    actions: tuple[Action, ...]
    tenths_after: int
    grade_after: Grade

    @property
    def effort_units(self) -> int:
        return sum(a.effort_units for a in self.actions)

    @property
    def score_after(self) -> float:
        return self.tenths_after / POINT


def _largest_penalty_reaching(threshold: int) -> int:
    """The largest penalty (tenths) whose score is still at least `threshold` (> 0)."""
    penalty = max(0, int(PENALTY_SCALE * POINT * math.log(FULL_SCORE / threshold)))
    while compress(penalty + 1) >= threshold:
        penalty += 1
    while penalty > 0 and compress(penalty) < threshold:
        penalty -= 1
    return penalty


def plan_to_reach(
    score: OrganisationScore,
    target: Grade | str,
    *,
    registry: Mapping[str, Check],
    today: dt.date,
) -> Plan:
    """The set of actions with the least total effort that lifts the score to `target`.

    Exact: every cap whose ceiling is below the target's band must be lifted (its groups
    are forced into the plan); the remaining penalty must fall to the largest one whose
    score still reaches the band, a 0/1 knapsack over effort units (small integers)
    solved by dynamic programming for the most penalty removed per effort budget. Ties go
    to the most penalty removed, then to the check ids in sorted order.
    """
    target = Grade(target)
    threshold = grade_floor(target)
    actions = {a.check_id: a for a in priorities(score, registry=registry, today=today)}
    if score.tenths >= threshold:
        return Plan(target, (), score.tenths, score.grade)
    blocking = {r.id for r in CAP_RULES if r.ceiling < threshold}
    forced = {g.check_id for g in score.groups if g.caps & blocking}
    needed = sum(
        g.penalty for g in score.groups if g.check_id not in forced
    ) - _largest_penalty_reaching(threshold)
    optional = [
        actions[g.check_id]
        for g in score.groups
        if g.check_id not in forced and g.penalty > 0 and g.check_id in actions
    ]
    chosen = set(forced)
    if needed > 0:
        budget = sum(a.effort_units for a in optional)
        best = [0] * (budget + 1)
        picks = [0] * (budget + 1)
        for index, action in enumerate(optional):
            units, points = action.effort_units, action.penalty
            for spent in range(budget, units - 1, -1):
                candidate = best[spent - units] + points
                if candidate > best[spent]:
                    best[spent] = candidate
                    picks[spent] = picks[spent - units] | (1 << index)
        spent = next(e for e in range(budget + 1) if best[e] >= needed)
        chosen.update(a.check_id for i, a in enumerate(optional) if picks[spent] >> i & 1)
    tenths_after = _score_without(score, frozenset(chosen))
    plan_actions = tuple(sorted((actions[c] for c in chosen), key=Action.rank_key))
    return Plan(target, plan_actions, tenths_after, grade_for(tenths_after))


# --- the answer: one sentence per organisation -----------------------------------------

_SEVERITY_WORDS = {
    "fi": {
        Severity.CRITICAL: ("kriittinen ongelma", "kriittistä ongelmaa"),
        Severity.HIGH: ("vakava ongelma", "vakavaa ongelmaa"),
        Severity.MEDIUM: ("kohtalainen ongelma", "kohtalaista ongelmaa"),
        Severity.LOW: ("vähäinen ongelma", "vähäistä ongelmaa"),
    },
    "sv": {
        Severity.CRITICAL: ("kritiskt problem", "kritiska problem"),
        Severity.HIGH: ("allvarligt problem", "allvarliga problem"),
        Severity.MEDIUM: ("måttligt problem", "måttliga problem"),
        Severity.LOW: ("mindre problem", "mindre problem"),
    },
    "en": {
        Severity.CRITICAL: ("critical problem", "critical problems"),
        Severity.HIGH: ("serious problem", "serious problems"),
        Severity.MEDIUM: ("moderate problem", "moderate problems"),
        Severity.LOW: ("minor problem", "minor problems"),
    },
}
_INSTANCE_WORDS = {
    "fi": ("kohde", "kohdetta"),
    "sv": ("objekt", "objekt"),
    "en": ("instance", "instances"),
}
_TEMPLATES = {
    "fi": {
        "unchecked": (
            "Ei tiedossa: yhtään tarkistusta ei ole vielä tehty onnistuneesti,"
            " joten arvosana {grade} ei kerro vielä mitään."
        ),
        "yes": "Kyllä: arvosana {grade} ({score}/100), ei avoimia ongelmia.",
        "yes_next": "Kyllä: arvosana {grade} ({score}/100); pientä parannettavaa: {action}.",
        "mostly": "Kyllä, pääosin: arvosana {grade} ({score}/100); korjaa seuraavaksi: {action}.",
        "not_yet": "Ei vielä: arvosana {grade} ({score}/100), {problems}; korjaa ensin: {action}.",
        "capped": "{reason} rajoittaa arvosanaa",
    },
    "sv": {
        "unchecked": (
            "Okänt: ingen kontroll har ännu lyckats, så betyget {grade} säger ännu ingenting."
        ),
        "yes": "Ja: betyg {grade} ({score}/100), inga öppna problem.",
        "yes_next": "Ja: betyg {grade} ({score}/100); små förbättringar: {action}.",
        "mostly": "Ja, i huvudsak: betyg {grade} ({score}/100); åtgärda härnäst: {action}.",
        "not_yet": "Inte ännu: betyg {grade} ({score}/100), {problems}; åtgärda först: {action}.",
        "capped": "{reason} begränsar betyget",
    },
    "en": {
        "unchecked": (
            "Not known yet: no check has succeeded so far, so grade {grade} means nothing yet."
        ),
        "yes": "Yes: grade {grade} ({score}/100), no open problems.",
        "yes_next": "Yes: grade {grade} ({score}/100); small improvements: {action}.",
        "mostly": "Mostly: grade {grade} ({score}/100); fix next: {action}.",
        "not_yet": "Not yet: grade {grade} ({score}/100), {problems}; fix first: {action}.",
        "capped": "{reason} limits the grade",
    },
}


def format_score(tenths: int, language: str) -> str:
    """`72.5` in English, `72,5` in Finnish and Swedish; whole numbers without decimals."""
    text = str(tenths // POINT) if tenths % POINT == 0 else f"{tenths / POINT:.1f}"
    return text if language == "en" else text.replace(".", ",")


def _counted(count: int, words: tuple[str, str]) -> str:
    return f"{count} {words[0] if count == 1 else words[1]}"


def answer(
    score: OrganisationScore,
    actions: Sequence[Action],
    *,
    registry: Mapping[str, Check],
    language: str = "fi",
    checked: bool = True,
) -> str:
    """ "Is our IT environment up to date and secure?" in one sentence, in `language`.

    `checked=False` (nothing has been scanned successfully yet) never answers "yes":
    no findings then means "not known", not "fine".
    """
    templates = _TEMPLATES.get(language, _TEMPLATES["en"])
    words = {
        "grade": score.grade.value,
        "score": format_score(score.tenths, language),
    }
    if not checked:
        return templates["unchecked"].format(**words)
    if actions:
        top = actions[0]
        check = registry.get(top.check_id)
        title = check.title_in(language) if check else top.check_id
        words["action"] = f"{title} ({_counted(top.instances, _INSTANCE_WORDS[language])})"
    if score.grade is Grade.A:
        return templates["yes_next" if actions else "yes"].format(**words)
    if score.grade is Grade.B:
        return templates["mostly"].format(**words)
    words["problems"] = _problems(score, language)
    return templates["not_yet"].format(**words)


def _problems(score: OrganisationScore, language: str) -> str:
    """The worst severity's count; with a binding cap, also what caps the grade."""
    parts = []
    for severity in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW):
        count = score.open_counts.get(severity, 0)
        if count:
            parts.append(_counted(count, _SEVERITY_WORDS[language][severity]))
            break
    binding = [c.rule for c in score.caps if c.binding]
    if binding and binding[0].id != "open_critical":
        reason = binding[0].reason[language]
        parts.append(_TEMPLATES[language]["capped"].format(reason=reason))
    return ", ".join(parts)


# --- a document for machines and renderers -------------------------------------------


def score_document(
    score: OrganisationScore,
    *,
    registry: Mapping[str, Check],
    today: dt.date,
    language: str = "fi",
    target: Grade | str = Grade.B,
    top: int | None = None,
    checked: bool = True,
) -> dict[str, object]:
    """Everything about one organisation's score as plain JSON-able data.

    Grade, score, the answer, the explanation line by line, the caps, the priorities
    (the first `top`), the plan to reach `target`, and the excluded findings.
    """

    def title(check_id: str | None) -> str | None:
        check = registry.get(check_id) if check_id else None
        return check.title_in(language) if check else check_id

    actions = priorities(score, registry=registry, today=today)
    plan = plan_to_reach(score, target, registry=registry, today=today)
    return {
        "organisation": score.organisation,
        "score": score.score,
        "grade": str(score.grade),
        "scoring_version": score.version,
        "answer": answer(score, actions, registry=registry, language=language, checked=checked),
        "checked": checked,
        "categories": {
            c: {"score": s.score, "grade": str(s.grade)} for c, s in score.categories.items()
        },
        "open_counts": dict(score.open_counts),
        "caps": [
            {
                "id": c.id,
                "grade": str(c.rule.grade),
                "binding": c.binding,
                "reason": c.rule.reason.get(language, c.rule.reason["en"]),
            }
            for c in score.caps
        ],
        "explanation": [
            {
                "kind": str(c.kind),
                "check_id": c.check_id,
                "title": title(c.check_id) if c.check_id else _cap_reason(c.cap_id, language),
                "severity": c.severity and str(c.severity),
                "instances": c.instances,
                "penalty": c.penalty / POINT,
                "points_lost": c.points,
                "cap_id": c.cap_id,
            }
            for c in score.contributions
        ],
        "priorities": [
            {
                "check_id": a.check_id,
                "title": title(a.check_id),
                "category": a.category,
                "severity": str(a.severity),
                "instances": a.instances,
                "subjects": list(a.subjects),
                "gain": a.gain / POINT,
                "effort": str(a.effort),
                "first_seen": a.first_seen.isoformat(),
                "due": a.due.isoformat() if a.due else None,
                "overdue": a.overdue,
            }
            for a in actions[:top]
        ],
        "plan": {
            "target": str(plan.target),
            "check_ids": [a.check_id for a in plan.actions],
            "effort_units": plan.effort_units,
            "score_after": plan.score_after,
            "grade_after": str(plan.grade_after),
        },
        "excluded": [
            {
                "check_id": f.check_id,
                "subject": f.subject,
                "status": str(f.status),
                "reason": f.decision_reason,
                "until": f.decision_until.isoformat() if f.decision_until else None,
            }
            for f in score.excluded
        ],
    }


def _cap_reason(cap_id: str | None, language: str) -> str | None:
    rule = next((r for r in CAP_RULES if r.id == cap_id), None)
    return rule.reason.get(language, rule.reason["en"]) if rule else cap_id


__all__ = [
    "CAP_RULES",
    "CRITICALITY_HALVES",
    "DEADLINE_DAYS",
    "EFFORT_UNITS",
    "GRADE_FLOORS",
    "SCORING_VERSION",
    "SEVERITY_WEIGHTS",
    "Action",
    "AppliedCap",
    "CapRule",
    "Contribution",
    "ContributionKind",
    "FindingGroup",
    "FindingStatus",
    "Grade",
    "OrganisationScore",
    "Plan",
    "ScopeScore",
    "ScoringAsset",
    "ScoringFinding",
    "answer",
    "check_weight",
    "due_date",
    "format_score",
    "grade_for",
    "plan_to_reach",
    "priorities",
    "score_document",
    "score_organisation",
    "weights_markdown",
]
