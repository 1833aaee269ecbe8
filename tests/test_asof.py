"""Findings as they stood: replaying the events up to any past moment gives exactly what the
store said at that moment, whatever scans and decisions came later."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select

from riskiturva import db
from riskiturva.models import Finding, FindingStatus, Organisation
from riskiturva.store import decide, make_engine, reconcile, session_factory, sync_config
from riskiturva.views.asof import standing_at
from tests.conftest import T0
from tests.test_lifecycle import observed

HOUR = dt.timedelta(hours=1)
SUBJECTS = ("hyvala.test", "www.hyvala.test", "posti.hyvala.test")
_DECIDED = (FindingStatus.ACCEPTED, FindingStatus.FALSE_POSITIVE)


def _effective(finding: Finding, at: dt.datetime) -> FindingStatus:
    """The stored status as scoring reads it: a decision past its end counts as open."""
    status = FindingStatus(finding.status)
    if status in _DECIDED and finding.decision_until is not None and finding.decision_until <= at:
        return FindingStatus.OPEN
    return status


def _stored(session, at):
    return {
        f.id: (_effective(f, at), f.decided_by if _effective(f, at) in _DECIDED else None)
        for f in session.scalars(select(Finding))
    }


def _replayed(session, organisation_id, at):
    return {
        s.finding_id: (s.status, s.decision.decided_by if s.status in _DECIDED else None)
        for s in standing_at(session, [organisation_id], at)[organisation_id]
    }


@pytest.mark.parametrize("seed", range(12))
def test_replay_gives_the_stored_state_at_every_past_moment(tmp_path, minimal_config, seed):
    # Given a store and a random autumn of scans (each subject seen or not, scanned or not)
    # and decisions (accept or mark false positive, for a few hours or days)
    rng = random.Random(seed)
    engine = make_engine(f"sqlite:///{tmp_path / 'asof.db'}")
    db.upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        sync_config(session, minimal_config)
        org = session.scalar(select(Organisation).filter_by(slug="hyvala"))
        assert org is not None
        org_id = org.id
    now, snapshots = T0, []
    for step in range(40):
        now += HOUR * rng.randint(1, 30)
        with sessions.begin() as session:
            org = session.get(Organisation, org_id)
            if rng.random() < 0.7 or step == 0:
                seen = [observed(subject=s) for s in SUBJECTS if rng.random() < 0.5]
                ok = {s for s in SUBJECTS if rng.random() < 0.8}
                reconcile(
                    session,
                    organisation=org,
                    collector="dns_email",
                    run_id=None,
                    observed=seen,
                    scanned_ok=ok,
                    now=now,
                )
            else:
                findings = list(session.scalars(select(Finding)))
                if findings:
                    target = rng.choice(findings)
                    decide(
                        session,
                        finding_id=target.id,
                        visible=["hyvala"],
                        decision=rng.choice(_DECIDED),
                        actor=f"person{step}",
                        reason=f"reason {step}",
                        until=now + HOUR * rng.randint(2, 60),
                        now=now,
                    )
        # What the store says just after this step, at a moment before the next one
        probe = now + dt.timedelta(minutes=1)
        with sessions() as session:
            snapshots.append((probe, _stored(session, probe)))
    # Then replaying the events up to each of those moments gives the same thing
    with sessions() as session:
        for probe, expected in snapshots:
            assert _replayed(session, org_id, probe) == expected, probe
    engine.dispose()


def test_a_finding_first_seen_after_the_moment_did_not_exist_then(sessions, minimal_config):
    with sessions.begin() as session:
        sync_config(session, minimal_config)
        org = session.scalar(select(Organisation).filter_by(slug="hyvala"))
        assert org is not None
        december = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)
        reconcile(
            session,
            organisation=org,
            collector="dns_email",
            run_id=None,
            observed=[observed()],
            scanned_ok={"hyvala.test"},
            now=december,
        )
        month_end = dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.UTC)  # 1.12. 00:00 Helsinki
        assert standing_at(session, [org.id], month_end) == {org.id: []}
        (standing,) = standing_at(session, [org.id], december + HOUR)[org.id]
        assert standing.status is FindingStatus.OPEN
