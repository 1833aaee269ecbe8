"""Reconcile: every transition of a finding's lifecycle, against the real migrated schema."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from riskiturva.models import Finding, FindingEvent, FindingStatus, Organisation
from riskiturva.store import NotVisible, ObservedFinding, decide, reconcile, revoke, sync_config
from tests.conftest import T0

DAY = dt.timedelta(days=1)


def observed(
    check_id: str = "dns.caa.missing",
    subject: str = "hyvala.test",
    target: str | None = None,
    **evidence,
):
    return ObservedFinding(
        check_id=check_id,
        subject=subject,
        target=target or subject,
        asset=subject,
        category="dns",
        severity="low",
        evidence=evidence or {"records": []},
    )


@pytest.fixture
def org(sessions, minimal_config):
    with sessions.begin() as session:
        sync_config(session, minimal_config)
    return "hyvala"


def run(sessions, org, *, at, seen=(), ok=(), collector="dns_email", run_id=None):
    with sessions.begin() as session:
        organisation = session.scalar(select(Organisation).filter_by(slug=org))
        return reconcile(
            session,
            organisation=organisation,
            collector=collector,
            run_id=run_id,
            observed=list(seen),
            scanned_ok=set(ok),
            now=at,
        )


def finding(sessions, subject="hyvala.test", check_id="dns.caa.missing") -> Finding:
    with sessions() as session:
        row = session.scalar(select(Finding).filter_by(subject=subject, check_id=check_id))
        assert row is not None
        row.events  # load while the session is open  # noqa: B018
        return row


def row_counts(sessions) -> tuple[int, int]:
    with sessions() as session:
        return (
            session.scalar(select(func.count(Finding.id))),
            session.scalar(select(func.count(FindingEvent.id))),
        )


def test_open_then_seen_updates_last_seen_without_new_rows(sessions, org):
    # Given a finding opened by a first scan
    counts = run(sessions, org, at=T0, seen=[observed()], ok=["hyvala.test"])
    assert counts.opened == 1
    before = row_counts(sessions)
    # When nine more scans see it unchanged
    for day in range(1, 10):
        counts = run(sessions, org, at=T0 + day * DAY, seen=[observed()], ok=["hyvala.test"])
        assert (counts.opened, counts.seen, counts.resolved) == (0, 1, 0)
    # Then the database did not grow, and last_seen moved
    assert row_counts(sessions) == before == (1, 1)
    row = finding(sessions)
    assert (row.status, row.first_seen, row.last_seen) == ("open", T0, T0 + 9 * DAY)


def test_changed_evidence_is_recorded_as_a_seen_event(sessions, org):
    run(sessions, org, at=T0, seen=[observed(records=["a"])], ok=["hyvala.test"])
    run(sessions, org, at=T0 + DAY, seen=[observed(records=["b"])], ok=["hyvala.test"])
    row = finding(sessions)
    assert [e.kind for e in row.events] == ["opened", "seen"]
    assert row.evidence == {"records": ["b"]}


def test_resolved_then_reopened_keeps_first_seen(sessions, org):
    run(sessions, org, at=T0, seen=[observed()], ok=["hyvala.test"])
    # When a complete scan of the subject no longer sees it
    counts = run(sessions, org, at=T0 + DAY, seen=[], ok=["hyvala.test"])
    assert counts.resolved == 1
    row = finding(sessions)
    assert (row.status, row.resolved_at) == ("resolved", T0 + DAY)
    # And it comes back
    counts = run(sessions, org, at=T0 + 2 * DAY, seen=[observed()], ok=["hyvala.test"])
    assert counts.reopened == 1
    row = finding(sessions)
    assert (row.status, row.first_seen, row.resolved_at) == ("open", T0, None)
    assert [e.kind for e in row.events] == ["opened", "resolved", "reopened"]


def test_failed_or_unscanned_subject_resolves_nothing(sessions, org):
    run(
        sessions,
        org,
        at=T0,
        seen=[observed(), observed(subject="www.hyvala.test")],
        ok=["hyvala.test", "www.hyvala.test"],
    )
    # A run in which hyvala.test timed out (not in scanned_ok) and www was not scanned at all
    counts = run(sessions, org, at=T0 + DAY, seen=[], ok=[])
    assert counts.resolved == 0
    assert {finding(sessions).status, finding(sessions, "www.hyvala.test").status} == {"open"}


def test_only_the_scanned_target_resolves(sessions, org):
    run(
        sessions,
        org,
        at=T0,
        seen=[observed(), observed(subject="www.hyvala.test")],
        ok=["hyvala.test", "www.hyvala.test"],
    )
    counts = run(sessions, org, at=T0 + DAY, seen=[], ok=["www.hyvala.test"])
    assert counts.resolved == 1
    assert finding(sessions).status == "open"
    assert finding(sessions, "www.hyvala.test").status == "resolved"


def test_findings_of_another_collector_are_untouched(sessions, org):
    run(sessions, org, at=T0, seen=[observed()], ok=["hyvala.test"], collector="dns_email")
    counts = run(sessions, org, at=T0 + DAY, seen=[], ok=["hyvala.test"], collector="web")
    assert counts.resolved == 0
    assert finding(sessions).status == "open"


def test_finding_with_own_subject_resolves_through_its_target(sessions, org):
    # A services finding is about ip:port but belongs to the scanned host.
    port = observed("dns.axfr.open", subject="127.60.1.10:53/tcp", target="127.60.1.10")
    run(sessions, org, at=T0, seen=[port], ok=["127.60.1.10"])
    run(sessions, org, at=T0 + DAY, seen=[], ok=["127.60.1.10"])
    assert finding(sessions, "127.60.1.10:53/tcp", "dns.axfr.open").status == "resolved"


def test_accepted_stays_accepted_until_expiry_then_opens(sessions, org):
    run(sessions, org, at=T0, seen=[observed()], ok=["hyvala.test"])
    row_id = finding(sessions).id
    with sessions.begin() as session:
        decide(
            session,
            finding_id=row_id,
            visible=["hyvala"],
            decision=FindingStatus.ACCEPTED,
            actor="it@hyvala.test",
            reason="CAA needs a DNS provider change in 2027",
            until=T0 + 10 * DAY,
            now=T0 + DAY,
        )
    # Seen again before expiry: still accepted
    run(sessions, org, at=T0 + 5 * DAY, seen=[observed()], ok=["hyvala.test"])
    assert finding(sessions).status == "accepted"
    # After expiry: open again, with an expired event
    counts = run(sessions, org, at=T0 + 11 * DAY, seen=[observed()], ok=["hyvala.test"])
    assert counts.expired == 1
    row = finding(sessions)
    assert row.status == "open"
    assert [e.kind for e in row.events] == ["opened", "accepted", "expired"]
    assert row.events[1].actor == "it@hyvala.test"
    # dated when the decision ran out, not when the next scan noticed
    assert row.events[2].at == T0 + 10 * DAY


def test_accepted_finding_that_disappears_resolves_and_returns_to_the_decision(sessions, org):
    run(sessions, org, at=T0, seen=[observed()], ok=["hyvala.test"])
    with sessions.begin() as session:
        decide(
            session,
            finding_id=finding(sessions).id,
            visible=["hyvala"],
            decision=FindingStatus.FALSE_POSITIVE,
            actor="it@hyvala.test",
            reason="CAA is inherited from the parent zone",
            until=T0 + 30 * DAY,
            now=T0,
        )
    run(sessions, org, at=T0 + DAY, seen=[], ok=["hyvala.test"])
    assert finding(sessions).status == "resolved"
    run(sessions, org, at=T0 + 2 * DAY, seen=[observed()], ok=["hyvala.test"])
    assert finding(sessions).status == "false_positive"


def test_decision_needs_reason_future_expiry_and_visibility(sessions, org):
    run(sessions, org, at=T0, seen=[observed()], ok=["hyvala.test"])
    row_id = finding(sessions).id
    common = {"finding_id": row_id, "decision": FindingStatus.ACCEPTED, "actor": "x", "now": T0}
    with sessions.begin() as session:
        with pytest.raises(ValueError, match="justification"):
            decide(session, visible=["hyvala"], reason=" ", until=T0 + DAY, **common)
        with pytest.raises(ValueError, match="future"):
            decide(session, visible=["hyvala"], reason="ok", until=T0, **common)
        with pytest.raises(NotVisible):
            decide(session, visible=["rapala"], reason="ok", until=T0 + DAY, **common)
    assert finding(sessions).status == "open"


def test_revoking_a_decision_opens_the_finding_and_keeps_the_history(sessions, org):
    run(sessions, org, at=T0, seen=[observed()], ok=["hyvala.test"])
    row_id = finding(sessions).id
    with sessions.begin() as session:
        decide(
            session,
            finding_id=row_id,
            visible=["hyvala"],
            decision=FindingStatus.ACCEPTED,
            actor="it@hyvala.test",
            reason="CAA needs a DNS provider change in 2027",
            until=T0 + 30 * DAY,
            now=T0,
        )
    with sessions.begin() as session:
        with pytest.raises(ValueError, match="reason"):
            revoke(session, finding_id=row_id, visible=["hyvala"], actor="x", reason="", now=T0)
        with pytest.raises(NotVisible):
            revoke(session, finding_id=row_id, visible=["rapala"], actor="x", reason="y", now=T0)
        revoke(
            session,
            finding_id=row_id,
            visible=["hyvala"],
            actor="tietoturva@hyvala.test",
            reason="accepted by mistake",
            now=T0 + DAY,
        )
    row = finding(sessions)
    assert (row.status, row.decision, row.decision_until) == ("open", None, None)
    assert [e.kind for e in row.events] == ["opened", "accepted", "revoked"]
    assert row.events[2].actor == "tietoturva@hyvala.test"
    assert "accepted by mistake" in row.events[2].note
    with sessions.begin() as session, pytest.raises(ValueError, match="no decision"):
        revoke(session, finding_id=row_id, visible=["hyvala"], actor="x", reason="y", now=T0)
    # resolved and seen again: open, the revoked decision does not come back
    run(sessions, org, at=T0 + 2 * DAY, seen=[], ok=["hyvala.test"])
    run(sessions, org, at=T0 + 3 * DAY, seen=[observed()], ok=["hyvala.test"])
    assert finding(sessions).status == "open"
