"""Scores from the store: the adapter, daily snapshots (one per day) and the 30-day change."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import func, select

from riskiturva.checks import Severity, load_registry
from riskiturva.current import ScoreSummary, current_summaries
from riskiturva.history import score_stored, take_snapshots
from riskiturva.inputs import scoring_inputs
from riskiturva.models import Asset, Finding, FindingStatus, Organisation, ScoreSnapshot
from riskiturva.scoring import SCORING_VERSION, Grade
from riskiturva.store import ObservedFinding, decide, reconcile, sync_config
from riskiturva.views.trend import baselines, score_change, score_history
from tests.conftest import T0

E_SERVICE = "127.60.1.10"  # high criticality, tagged e-service in the minimal config


def observed(check_id: str, subject: str, severity: str = "low") -> ObservedFinding:
    return ObservedFinding(
        check_id=check_id,
        subject=subject,
        target=subject,
        asset=subject.split(":", 1)[0],
        category=check_id.split(".", 1)[0],
        severity=severity,
        evidence={},
    )


@pytest.fixture
def stored(sessions, minimal_config):
    """Hyvälä with an open AXFR on its e-service address and a CAA finding on another."""
    with sessions.begin() as session:
        sync_config(session, minimal_config)
        hyvala = session.scalar(select(Organisation).filter_by(slug="hyvala"))
        reconcile(
            session,
            organisation=hyvala,
            collector="dns_email",
            run_id=None,
            observed=[
                # stored as low: the registry's severity (high) is the one that counts
                observed("dns.axfr.open", E_SERVICE, severity="low"),
                observed("dns.caa.missing", "127.60.1.11"),
            ],
            scanned_ok=set(),
            now=T0,
        )
    return sessions


def organisation(session, slug="hyvala") -> Organisation:
    return session.scalar(select(Organisation).filter_by(slug=slug))


def test_inputs_take_the_registrys_severity_and_the_assets_criticality(stored):
    with stored() as session:
        findings, assets = scoring_inputs(session, organisation(session), now=T0)

    by_check = {f.check_id: f for f in findings}
    assert by_check["dns.axfr.open"].severity == "high"
    assert by_check["dns.axfr.open"].first_seen == T0.date()
    assert {(a.value, a.criticality, a.tags) for a in assets} == {
        (E_SERVICE, "high", frozenset({"e-service"})),
        ("127.60.1.11", "low", frozenset()),
    }


def test_a_decision_counts_until_it_expires(stored):
    with stored.begin() as session:
        axfr = session.scalar(select(Finding).filter_by(check_id="dns.axfr.open"))
        decide(
            session,
            finding_id=axfr.id,
            visible=["hyvala"],
            decision=FindingStatus.ACCEPTED,
            actor="tietoturva@hyvala.test",
            reason="the secondary is moving next week",
            until=T0 + dt.timedelta(days=7),
            now=T0,
        )
    with stored() as session:
        during = score_stored(session, organisation(session), now=T0 + dt.timedelta(days=1))
        after = score_stored(session, organisation(session), now=T0 + dt.timedelta(days=8))

    assert [f.check_id for f in during.excluded] == ["dns.axfr.open"]
    assert during.excluded[0].decision_reason == "the secondary is moving next week"
    assert "dns.axfr.open" not in {g.check_id for g in during.groups}
    assert after.excluded == ()
    assert after.tenths < during.tenths


def test_a_domain_declared_twice_is_one_asset_with_the_higher_criticality(stored):
    with stored.begin() as session:
        hyvala = organisation(session)
        session.add_all(
            [
                Asset(
                    organisation_id=hyvala.id,
                    kind="domain",
                    value="hyvala.test",
                    criticality="low",
                    tags=["website"],
                ),
                Asset(
                    organisation_id=hyvala.id,
                    kind="mail_domain",
                    value="hyvala.test",
                    criticality="high",
                    tags=[],
                ),
            ]
        )
    with stored() as session:
        _, assets = scoring_inputs(session, organisation(session), now=T0)

    merged = [a for a in assets if a.value == "hyvala.test"]
    assert [(a.criticality, a.tags) for a in merged] == [("high", frozenset({"website"}))]


def test_snapshots_are_one_row_per_organisation_and_day(stored, minimal_config):
    day = T0.date()
    first = take_snapshots(stored, minimal_config, day, now=T0)
    # a new problem appears later the same day; the day's row is replaced, not added
    with stored.begin() as session:
        reconcile(
            session,
            organisation=organisation(session),
            collector="services",
            run_id=None,
            observed=[observed("services.exposed.rdp", f"{E_SERVICE}:3389/tcp")],
            scanned_ok=set(),
            now=T0,
        )
    second = take_snapshots(stored, minimal_config, day, now=T0)

    with stored() as session:
        rows = session.scalars(
            select(ScoreSnapshot).join(Organisation).where(Organisation.slug == "hyvala")
        ).all()
        total = session.scalar(select(func.count()).select_from(ScoreSnapshot))
    assert set(first) == set(second) == {"hyvala", "rapala"}
    assert total == 2
    assert len(rows) == 1
    row = rows[0]
    assert (row.day, row.score, row.grade) == (day, second["hyvala"].score, "F")
    assert row.scoring_version == SCORING_VERSION
    assert row.open_counts["critical"] == 1 and row.open_counts["high"] == 1
    assert row.category_scores["services"] < 70 and row.category_scores["web"] == 100.0
    assert second["hyvala"].tenths < first["hyvala"].tenths


def snapshot(sessions, slug: str, day: dt.date, score: float, version=SCORING_VERSION) -> None:
    with sessions.begin() as session:
        session.add(
            ScoreSnapshot(
                organisation_id=organisation(session, slug).id,
                day=day,
                score=score,
                grade="A",
                scoring_version=version,
                category_scores={},
                open_counts={},
            )
        )


def test_the_live_score_is_compared_with_the_snapshot_on_or_before_30_days_ago(stored):
    today = dt.date(2026, 11, 2)
    for days_ago, score in ((45, 50.0), (31, 60.0), (29, 65.0), (0, 80.5)):
        snapshot(stored, "hyvala", today - dt.timedelta(days=days_ago), score)
    snapshot(stored, "rapala", today - dt.timedelta(days=10), 20.0, version="0.9")
    snapshot(stored, "rapala", today, 25.0)

    with stored() as session:
        ids = {organisation(session, s).id: s for s in ("hyvala", "rapala")}
        found = baselines(session, ids, today=today)
        live = score_stored(session, organisation(session), now=T0)

    hyvala = score_change(live, found["hyvala"])
    assert hyvala.since == today - dt.timedelta(days=31)
    assert hyvala.delta == round(live.score - 60.0, 1) and hyvala.comparable
    # scored for only 10 days: compared with its oldest snapshot, across a model change
    rapala = found["rapala"]
    assert rapala.day == today - dt.timedelta(days=10)
    assert not score_change(live, rapala).comparable


def test_without_an_earlier_snapshot_there_is_no_baseline(stored):
    snapshot(stored, "hyvala", dt.date(2026, 11, 2), 90.0)

    with stored() as session:
        hyvala = organisation(session)
        found = baselines(session, {hyvala.id: "hyvala"}, today=dt.date(2026, 11, 2))
        change = score_change(score_stored(session, hyvala, now=T0), found.get("hyvala"))

    assert found == {} and change.baseline is None and change.delta is None


def test_history_lists_the_visible_organisations_days_in_order(stored, minimal_config):
    for offset in (2, 0, 1):
        take_snapshots(stored, minimal_config, T0.date() + dt.timedelta(days=offset), now=T0)

    with stored() as session:
        history = score_history(
            session, ["hyvala"], since=T0.date(), until=T0.date() + dt.timedelta(days=1)
        )

    assert list(history) == ["hyvala"]
    assert [p.day for p in history["hyvala"]] == [T0.date(), T0.date() + dt.timedelta(days=1)]
    assert history["hyvala"][0].grade == Grade.B


# --- current scores ----------------------------------------------------------------------


def kept_and_live(sessions, now):
    """The kept summary of Hyvälä (or None) and its live summary, at `now`."""
    registry = load_registry()
    with sessions() as session:
        hyvala = organisation(session)
        kept = current_summaries(session, [hyvala.id], now=now, registry=registry)
        live = ScoreSummary.of(score_stored(session, hyvala, now=now, registry=registry), registry)
    return kept.get(hyvala.id), live


def test_the_store_keeps_the_current_score_with_every_change(stored):
    # After the scan of the fixture, the kept score is the live one
    kept, live = kept_and_live(stored, T0)
    assert kept == live and kept.open_counts["high"] == 1
    # A decision changes both at once, and the kept one ends with the decision
    with stored.begin() as session:
        axfr = session.scalar(select(Finding).filter_by(check_id="dns.axfr.open"))
        decide(
            session,
            finding_id=axfr.id,
            visible=["hyvala"],
            decision=FindingStatus.ACCEPTED,
            actor="it@hyvala.test",
            reason="moving next week",
            until=T0 + dt.timedelta(days=7),
            now=T0 + dt.timedelta(hours=1),
        )
    kept, live = kept_and_live(stored, T0 + dt.timedelta(days=1))
    assert kept == live and kept.open_counts["high"] == 0
    # once it has run out, the kept score no longer holds: the live one counts it again
    kept, live = kept_and_live(stored, T0 + dt.timedelta(days=8))
    assert kept is None and live.open_counts["high"] == 1
    # and nothing kept holds for a moment before it was kept
    assert kept_and_live(stored, T0 - dt.timedelta(days=1))[0] is None


def test_a_kept_score_of_another_registry_does_not_hold(stored):
    registry = dict(load_registry())
    caa = registry["dns.caa.missing"]
    registry["dns.caa.missing"] = dataclasses.replace(caa, severity=Severity.CRITICAL)
    with stored() as session:
        hyvala = organisation(session)
        assert current_summaries(session, [hyvala.id], now=T0, registry=registry) == {}
