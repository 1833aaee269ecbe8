"""The alert rules: pure functions from what one run changed to alert drafts.

The outbox gathers the facts of a run from the store (`RunFacts`: finding events, the
certificates seen, the score against yesterday's, the scan's failure streak, expiring
decisions) and `evaluate` turns them into `AlertDraft`s. Each draft carries a dedupe key —
one alert per (rule, what it is about): a finding, a certificate and threshold, a failure
streak — and, for things that may come and go, a throttle key: a finding that flaps
between resolved and reopened is alerted once per flap window, the rest are counted.

One event, one alert: the certificate rule owns the expiry findings, the new-service
rule owns `services.change.new_port`, and a new port whose service is itself a finding
(an exposed RDP) is told in that finding's alert instead of a second one.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from riskiturva.alerts.settings import Rules
from riskiturva.checks import Severity

NEW_PORT_CHECK = "services.change.new_port"
CERTIFICATE_EXPIRY_CHECKS = frozenset(
    {"tls.certificate.expires_30d", "tls.certificate.expires_14d"}
)
# Checks that replace one another as a problem worsens: one resolving as the next opens on
# the same subject is not a fix.
SUCCESSIONS = (
    frozenset({*CERTIFICATE_EXPIRY_CHECKS, "tls.certificate.expired"}),
    frozenset({"email.dkim.key_under_2048", "email.dkim.key_under_1024"}),
)
_OWNED_BY_OTHER_RULES = CERTIFICATE_EXPIRY_CHECKS | {NEW_PORT_CHECK}
_GRADES = "ABCDF"


class Rule(enum.StrEnum):
    """Rule ids, as they appear in alerts, payloads and `[settings.alerts.rules]`."""

    NEW_FINDING = "new_finding"
    REOPENED_FINDING = "reopened_finding"
    RESOLVED_FINDING = "resolved_finding"
    CERTIFICATE_EXPIRY = "certificate_expiry"
    SCORE_DROP = "score_drop"
    NEW_SERVICE = "new_service"
    SCAN_FAILING = "scan_failing"
    DECISION_EXPIRING = "decision_expiring"
    ASSET_PROPOSED = "asset_proposed"


# Rules whose alerts are good news or a request for review: always in the digest.
DIGEST_ONLY = frozenset({Rule.RESOLVED_FINDING, Rule.ASSET_PROPOSED})


@dataclass(frozen=True)
class FindingChange:
    """A finding event of the run: opened, reopened or resolved."""

    kind: str  # opened, reopened or resolved (the finding event's kind)
    finding_id: int
    fingerprint: str
    check_id: str
    subject: str
    target: str
    collector: str
    severity: str  # the registry's
    status: str  # after the change: open, resolved, or a person's decision that still holds


@dataclass(frozen=True)
class CertificateSeen:
    """A certificate a collector saw on an endpoint in this run."""

    endpoint: str
    sha256: str
    not_after: dt.datetime
    finding_id: int | None = None  # the open expiry finding on the endpoint, if any


@dataclass(frozen=True)
class ScoreComparison:
    """The organisation's score now against its last snapshot of an earlier day.

    `unexplained_*` is the score without the findings that were alerted since that day:
    a drop they account for was told finding by finding and is not told again.
    """

    baseline_day: dt.date
    baseline_score: float
    baseline_grade: str
    score: float
    grade: str
    unexplained_score: float
    unexplained_grade: str


@dataclass(frozen=True)
class ScanHealth:
    """The collector's failed runs in a row for the organisation, after this run."""

    collector: str
    failures: int
    first_failed_run_id: int | None
    error: str | None = None


@dataclass(frozen=True)
class ExpiringDecision:
    finding_id: int
    fingerprint: str
    check_id: str
    subject: str
    severity: str
    decision: str  # accepted or false_positive
    decided_at: dt.datetime
    until: dt.datetime
    decided_by: str | None = None


@dataclass(frozen=True)
class ProposedAsset:
    """An asset discovery proposes (its source and evidence shown to the reviewer)."""

    kind: str
    value: str
    source: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFacts:
    organisation: str
    changes: tuple[FindingChange, ...] = ()
    alerted_findings: frozenset[int] = frozenset()  # findings that had an alert before
    certificates: tuple[CertificateSeen, ...] = ()
    score: ScoreComparison | None = None
    scan: ScanHealth | None = None
    decisions: tuple[ExpiringDecision, ...] = ()
    proposals: tuple[ProposedAsset, ...] = ()


@dataclass(frozen=True)
class AlertDraft:
    rule: Rule
    dedupe_key: str
    severity: str
    subject: str
    finding_id: int | None = None
    check_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    throttle_key: str | None = None  # a newer alert with this key within the window is a repeat


def at_least(severity: str, floor: Severity) -> bool:
    return Severity(severity).rank >= floor.rank


def evaluate(rules: Rules, facts: RunFacts, now: dt.datetime) -> list[AlertDraft]:
    """Every alert the run's facts call for under `rules` (before dedupe and throttling)."""
    findings = list(_finding_alerts(rules, facts, now))
    return [
        *_with_new_ports(rules, facts, findings, now),
        *_resolved(rules, facts, now),
        *_certificates(rules, facts, now),
        *_score(rules, facts),
        *_scan(rules, facts),
        *_decisions(rules, facts, now),
        *_proposals(rules, facts),
    ]


def _finding_alerts(rules: Rules, facts: RunFacts, now: dt.datetime) -> Iterator[AlertDraft]:
    for change in facts.changes:
        if change.status != "open" or change.check_id in _OWNED_BY_OTHER_RULES:
            continue
        if change.kind == "opened":
            rule, setting = Rule.NEW_FINDING, rules.new_finding
            key, throttle = f"{rule}:{change.fingerprint}", None
        elif change.kind == "reopened":
            rule, setting = Rule.REOPENED_FINDING, rules.reopened_finding
            key = f"{rule}:{change.fingerprint}:{now.isoformat()}"
            throttle = f"{rule}:{change.fingerprint}"
        else:
            continue
        if setting.enabled and at_least(change.severity, setting.min_severity):
            yield _finding_draft(rule, change, key, throttle)


def _finding_draft(
    rule: Rule, change: FindingChange, key: str, throttle: str | None, **details: Any
) -> AlertDraft:
    return AlertDraft(
        rule=rule,
        dedupe_key=key,
        severity=change.severity,
        subject=change.subject,
        finding_id=change.finding_id,
        check_id=change.check_id,
        details={"collector": change.collector, **details},
        throttle_key=throttle,
    )


def _with_new_ports(
    rules: Rules, facts: RunFacts, findings: list[AlertDraft], now: dt.datetime
) -> list[AlertDraft]:
    """New ports become `new_service` alerts, unless the port's service already alerts."""
    new_ports = [
        c
        for c in facts.changes
        if c.check_id == NEW_PORT_CHECK and c.kind in ("opened", "reopened") and c.status == "open"
    ]
    if not rules.new_service.enabled:
        return findings
    told = {d.subject for d in findings}
    merged = [
        AlertDraft(**{**d.__dict__, "details": {**d.details, "new_service": True}})
        if d.subject in {c.subject for c in new_ports}
        else d
        for d in findings
    ]
    for change in new_ports:
        if change.subject in told:
            continue
        merged.append(
            AlertDraft(
                rule=Rule.NEW_SERVICE,
                dedupe_key=f"{Rule.NEW_SERVICE}:{change.fingerprint}:{now.isoformat()}",
                severity=str(rules.new_service.severity),
                subject=change.subject,
                finding_id=change.finding_id,
                check_id=change.check_id,
                details={"collector": change.collector},
                throttle_key=f"{Rule.NEW_SERVICE}:{change.fingerprint}",
            )
        )
    return merged


def _succeeded_by(change: FindingChange, changes: tuple[FindingChange, ...]) -> bool:
    family = next((f for f in SUCCESSIONS if change.check_id in f), None)
    return family is not None and any(
        c.kind in ("opened", "reopened")
        and c.subject == change.subject
        and c.collector == change.collector
        and c.check_id in family
        for c in changes
    )


def _resolved(rules: Rules, facts: RunFacts, now: dt.datetime) -> Iterator[AlertDraft]:
    if not rules.resolved_finding.enabled:
        return
    for change in facts.changes:
        if (
            change.kind == "resolved"
            and change.finding_id in facts.alerted_findings
            and change.check_id != NEW_PORT_CHECK  # a change marker: it resolves by itself
            and not _succeeded_by(change, facts.changes)
        ):
            yield AlertDraft(
                rule=Rule.RESOLVED_FINDING,
                dedupe_key=f"{Rule.RESOLVED_FINDING}:{change.fingerprint}:{now.isoformat()}",
                severity=change.severity,
                subject=change.subject,
                finding_id=change.finding_id,
                check_id=change.check_id,
                details={"collector": change.collector},
                throttle_key=f"{Rule.RESOLVED_FINDING}:{change.fingerprint}",
            )


def _certificates(rules: Rules, facts: RunFacts, now: dt.datetime) -> Iterator[AlertDraft]:
    setting = rules.certificate_expiry
    if not setting.enabled:
        return
    for certificate in facts.certificates:
        left = certificate.not_after - now
        if left < dt.timedelta(0):
            continue  # expired: `tls.certificate.expired` is a critical finding of its own
        crossed = [d for d in setting.days if left <= dt.timedelta(days=d)]
        if not crossed:
            continue
        threshold = min(crossed)
        yield AlertDraft(
            rule=Rule.CERTIFICATE_EXPIRY,
            dedupe_key=(
                f"{Rule.CERTIFICATE_EXPIRY}:{facts.organisation}:{certificate.endpoint}"
                f":{certificate.sha256}:{threshold}"
            ),
            severity=str(Severity.HIGH if threshold <= 14 else Severity.MEDIUM),
            subject=certificate.endpoint,
            finding_id=certificate.finding_id,
            details={
                "threshold_days": threshold,
                "days_left": left.days,
                "not_after": certificate.not_after.isoformat(),
                "sha256_fingerprint": certificate.sha256,
            },
        )


def grade_worse(now: str, before: str) -> bool:
    return now in _GRADES and before in _GRADES and _GRADES.index(now) > _GRADES.index(before)


def _score(rules: Rules, facts: RunFacts) -> Iterator[AlertDraft]:
    setting, score = rules.score_drop, facts.score
    if not setting.enabled or score is None:
        return
    details = {
        "since": score.baseline_day.isoformat(),
        "grade_before": score.baseline_grade,
        "grade": score.grade,
        "score_before": round(score.baseline_score, 1),
        "score": round(score.score, 1),
    }
    key = f"{Rule.SCORE_DROP}:{facts.organisation}:{score.baseline_day.isoformat()}"
    if grade_worse(score.unexplained_grade, score.baseline_grade):
        yield AlertDraft(
            Rule.SCORE_DROP, f"{key}:grade:{score.grade}", str(Severity.HIGH), facts.organisation,
            details=details,
        )  # fmt: skip
    elif score.baseline_score - score.unexplained_score >= setting.points:
        yield AlertDraft(
            Rule.SCORE_DROP, f"{key}:points", str(Severity.MEDIUM), facts.organisation,
            details=details,
        )  # fmt: skip


def _scan(rules: Rules, facts: RunFacts) -> Iterator[AlertDraft]:
    setting, scan = rules.scan_failing, facts.scan
    if not setting.enabled or scan is None or scan.failures < setting.runs:
        return
    yield AlertDraft(
        rule=Rule.SCAN_FAILING,
        dedupe_key=(
            f"{Rule.SCAN_FAILING}:{facts.organisation}:{scan.collector}:{scan.first_failed_run_id}"
        ),
        severity=str(Severity.HIGH),
        subject=facts.organisation,
        details={"collector": scan.collector, "runs": scan.failures, "error": scan.error},
    )


def _decisions(rules: Rules, facts: RunFacts, now: dt.datetime) -> Iterator[AlertDraft]:
    setting = rules.decision_expiring
    if not setting.enabled:
        return
    for decision in facts.decisions:
        left = decision.until - now
        if dt.timedelta(0) < left <= dt.timedelta(days=setting.days):
            yield AlertDraft(
                rule=Rule.DECISION_EXPIRING,
                dedupe_key=(
                    f"{Rule.DECISION_EXPIRING}:{decision.fingerprint}"
                    f":{decision.decided_at.isoformat()}"
                ),
                severity=str(Severity.MEDIUM),
                subject=decision.subject,
                finding_id=decision.finding_id,
                check_id=decision.check_id,
                details={
                    "decision": decision.decision,
                    "until": decision.until.isoformat(),
                    "decided_by": decision.decided_by,
                    "finding_severity": decision.severity,
                },
            )


def _proposals(rules: Rules, facts: RunFacts) -> Iterator[AlertDraft]:
    if not rules.asset_proposed.enabled:
        return
    for asset in facts.proposals:
        yield AlertDraft(
            rule=Rule.ASSET_PROPOSED,
            dedupe_key=f"{Rule.ASSET_PROPOSED}:{facts.organisation}:{asset.kind}:{asset.value}",
            severity=str(Severity.LOW),
            subject=asset.value,
            details={"kind": asset.kind, "source": asset.source, "evidence": dict(asset.evidence)},
        )
