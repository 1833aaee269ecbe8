"""The alert rules as pure functions: what a run's facts call for, under which settings."""

from __future__ import annotations

import datetime as dt

import pytest

from riskiturva.alerts.rules import (
    CertificateSeen,
    ExpiringDecision,
    FindingChange,
    ProposedAsset,
    Rule,
    RunFacts,
    ScanHealth,
    ScoreComparison,
    evaluate,
)
from riskiturva.alerts.settings import (
    CertificateExpiryRule,
    FindingRule,
    Rules,
    ScanFailingRule,
    ScoreDropRule,
)
from riskiturva.checks import Severity

NOW = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
DEFAULTS = Rules()


def change(kind="opened", check_id="email.dmarc.missing", subject="rapala.test", **overrides):
    values = {
        "kind": kind,
        "finding_id": overrides.pop("finding_id", 1),
        "fingerprint": f"fp-{check_id}-{subject}",
        "check_id": check_id,
        "subject": subject,
        "target": subject,
        "collector": "dns_email",
        "severity": "high",
        "status": "resolved" if kind == "resolved" else "open",
    }
    return FindingChange(**(values | overrides))


def rules_of(facts: RunFacts, rules: Rules = DEFAULTS) -> list[tuple[str, str]]:
    return [(str(d.rule), d.subject) for d in evaluate(rules, facts, NOW)]


def test_a_new_finding_alerts_at_or_above_the_minimum_severity():
    facts = RunFacts(
        "rapala",
        changes=(
            change(severity="high"),
            change(check_id="email.dkim.key_under_2048", severity="medium", finding_id=2),
            change(check_id="dns.caa.missing", severity="low", finding_id=3),
        ),
    )
    drafts = evaluate(DEFAULTS, facts, NOW)
    assert [(d.rule, d.check_id) for d in drafts] == [
        (Rule.NEW_FINDING, "email.dmarc.missing"),
        (Rule.NEW_FINDING, "email.dkim.key_under_2048"),
    ]
    # Each finding has one key for its whole life: a rescan cannot alert it again.
    assert drafts[0].dedupe_key == "new_finding:fp-email.dmarc.missing-rapala.test"
    strict = Rules(new_finding=FindingRule(min_severity=Severity.CRITICAL))
    assert rules_of(facts, strict) == []


def test_a_finding_under_a_persons_decision_does_not_alert_when_it_returns():
    facts = RunFacts("rapala", changes=(change("reopened", status="accepted"),))
    assert rules_of(facts) == []


def test_reopened_and_resolved_carry_a_throttle_key_and_a_key_per_occurrence():
    facts = RunFacts(
        "rapala",
        changes=(change("reopened"), change("resolved", "dns.axfr.open", finding_id=7)),
        alerted_findings=frozenset({7}),
    )
    reopened, resolved = evaluate(DEFAULTS, facts, NOW)
    assert reopened.rule is Rule.REOPENED_FINDING
    assert reopened.throttle_key == "reopened_finding:fp-email.dmarc.missing-rapala.test"
    assert reopened.dedupe_key.endswith(NOW.isoformat())
    assert (resolved.rule, resolved.finding_id) == (Rule.RESOLVED_FINDING, 7)


def test_only_an_alerted_finding_is_announced_as_resolved():
    facts = RunFacts("rapala", changes=(change("resolved"),), alerted_findings=frozenset())
    assert rules_of(facts) == []


def test_an_expiry_finding_replaced_by_the_next_threshold_is_not_a_fix():
    # The 30-day finding resolves as the 14-day one opens on the same endpoint.
    facts = RunFacts(
        "rapala",
        changes=(
            change("resolved", "tls.certificate.expires_30d", "a.rapala.test:443", finding_id=1),
            change("opened", "tls.certificate.expires_14d", "a.rapala.test:443", finding_id=2),
        ),
        alerted_findings=frozenset({1}),
    )
    # And the certificate rule, not the new-finding rule, speaks for expiry findings.
    assert rules_of(facts) == []


def test_certificate_alerts_once_per_threshold_the_tightest_crossed():
    def seen(days_left: float, sha: str = "aa") -> RunFacts:
        cert = CertificateSeen("www.rapala.test:443", sha, NOW + dt.timedelta(days=days_left))
        return RunFacts("rapala", certificates=(cert,))

    assert rules_of(seen(40)) == []
    (first,) = evaluate(DEFAULTS, seen(29.5), NOW)
    assert (first.details["threshold_days"], first.severity) == (30, "medium")
    # Seen first at 10 days left: the 14-day alert only, not 30 and 14 both.
    (late,) = evaluate(DEFAULTS, seen(10), NOW)
    assert (late.details["threshold_days"], late.severity) == (14, "high")
    assert late.dedupe_key.endswith(":aa:14")
    (week,) = evaluate(DEFAULTS, seen(6), NOW)
    assert week.details["threshold_days"] == 7
    # A renewed certificate has another fingerprint: its thresholds start over.
    (renewed,) = evaluate(DEFAULTS, seen(6, "bb"), NOW)
    assert renewed.dedupe_key != week.dedupe_key
    # Expired is the critical finding's business.
    assert rules_of(seen(-1)) == []
    custom = Rules(certificate_expiry=CertificateExpiryRule(days=(60,)))
    assert [d.details["threshold_days"] for d in evaluate(custom, seen(45), NOW)] == [60]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (("B", 82.0), ("C", 79.0), ("high", ":grade:C")),
        (("B", 89.0), ("B", 78.5), ("medium", ":points")),
        (("B", 89.0), ("B", 80.0), None),
        (("C", 70.0), ("B", 85.0), None),
    ],
)
def test_a_grade_drop_or_a_big_score_drop_since_yesterday(before, after, expected):
    score = ScoreComparison(
        dt.date(2026, 11, 1), before[1], before[0], after[1], after[0], after[1], after[0]
    )
    drafts = evaluate(Rules(score_drop=ScoreDropRule(points=10)), RunFacts("r", score=score), NOW)
    if expected is None:
        assert drafts == []
    else:
        (draft,) = drafts
        assert draft.severity == expected[0]
        assert draft.dedupe_key == f"score_drop:r:2026-11-01{expected[1]}"
        assert draft.details["grade_before"] == before[0]


def test_a_drop_told_finding_by_finding_is_not_told_again():
    # B 82 → D 55, but without the findings alerted since yesterday it would still be B 81
    score = ScoreComparison(dt.date(2026, 11, 1), 82.0, "B", 55.0, "D", 81.0, "B")
    assert evaluate(DEFAULTS, RunFacts("r", score=score), NOW) == []
    # Without them it would be C: there is more to it, and the alert says the whole drop
    score = ScoreComparison(dt.date(2026, 11, 1), 82.0, "B", 55.0, "D", 71.0, "C")
    (draft,) = evaluate(DEFAULTS, RunFacts("r", score=score), NOW)
    assert (draft.details["grade_before"], draft.details["grade"]) == ("B", "D")


def test_a_new_port_alone_is_a_new_service_alert():
    facts = RunFacts(
        "hyvala",
        changes=(change(check_id="services.change.new_port", subject="127.60.1.20:8443/tcp"),),
    )
    (draft,) = evaluate(DEFAULTS, facts, NOW)
    assert (draft.rule, draft.severity) == (Rule.NEW_SERVICE, "high")


def test_a_new_port_is_not_announced_as_fixed_when_it_is_no_longer_new():
    # The next scan's baseline has the port: the change marker resolves, the port is open
    marker = change("resolved", "services.change.new_port", "127.60.1.20:8443/tcp", finding_id=9)
    facts = RunFacts("hyvala", changes=(marker,), alerted_findings=frozenset({9}))
    assert rules_of(facts) == []


def test_a_new_port_whose_service_is_a_finding_is_told_in_that_alert():
    facts = RunFacts(
        "hyvala",
        changes=(
            change(check_id="services.change.new_port", subject="127.60.1.20:445/tcp"),
            change(
                check_id="services.exposed.smb",
                subject="127.60.1.20:445/tcp",
                severity="critical",
                finding_id=2,
            ),
        ),
    )
    (draft,) = evaluate(DEFAULTS, facts, NOW)
    assert (draft.rule, draft.check_id) == (Rule.NEW_FINDING, "services.exposed.smb")
    assert draft.details["new_service"] is True


def test_a_failing_scan_alerts_once_per_streak_from_the_nth_run():
    def streak(failures: int) -> RunFacts:
        return RunFacts("sekala", scan=ScanHealth("dns_email", failures, 41, "timeout: no answer"))

    assert rules_of(streak(2)) == []
    (third,) = evaluate(DEFAULTS, streak(3), NOW)
    (fourth,) = evaluate(DEFAULTS, streak(4), NOW)
    assert third.dedupe_key == fourth.dedupe_key == "scan_failing:sekala:dns_email:41"
    assert rules_of(streak(1), Rules(scan_failing=ScanFailingRule(runs=1))) == [
        ("scan_failing", "sekala")
    ]


def test_an_accepted_risk_is_announced_within_fourteen_days_of_its_expiry():
    def decision(days: float) -> RunFacts:
        return RunFacts(
            "rapala",
            decisions=(
                ExpiringDecision(
                    5, "fp", "dns.caa.missing", "rapala.test", "low", "accepted",
                    NOW - dt.timedelta(days=100), NOW + dt.timedelta(days=days), "it@rapala.test",
                ),
            ),
        )  # fmt: skip

    assert rules_of(decision(20)) == []
    (draft,) = evaluate(DEFAULTS, decision(13), NOW)
    assert (draft.rule, draft.severity) == (Rule.DECISION_EXPIRING, "medium")
    assert draft.details["decided_by"] == "it@rapala.test"


def test_a_proposed_asset_is_one_alert_per_asset():
    proposal = ProposedAsset("host", "vanha-varaus.rapala.test", "certificate SAN", {"on": "x"})
    facts = RunFacts("rapala", proposals=(proposal, proposal))
    drafts = evaluate(DEFAULTS, facts, NOW)
    assert {d.dedupe_key for d in drafts} == {"asset_proposed:rapala:host:vanha-varaus.rapala.test"}


def test_overrides_change_only_what_they_write():
    overrides = Rules.model_validate({"new_finding": {"min_severity": "critical"}})
    merged = DEFAULTS.overridden_by(overrides)
    assert merged.new_finding.min_severity is Severity.CRITICAL
    assert merged.new_finding.enabled is True
    assert merged.reopened_finding == DEFAULTS.reopened_finding
    assert merged.certificate_expiry.days == (30, 14, 7)
