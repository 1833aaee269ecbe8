"""Alerts into the outbox through the real runner: once per problem, to the right people,
in the same transaction as the findings (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from riskiturva import views
from riskiturva.alerts.models import Alert, AlertNotification, ScanStreak
from riskiturva.alerts.outbox import next_digest, record_proposals
from riskiturva.alerts.rules import ProposedAsset
from riskiturva.alerts.sender import deliver_due
from riskiturva.collector import ErrorKind
from riskiturva.config import ConfigError
from riskiturva.history import take_snapshots
from riskiturva.models import Finding, FindingStatus, Organisation
from riskiturva.store import decide, sync_config
from tests.alerting import (
    HYVALA,
    HYVALA_B,
    RAPALA,
    ScriptedCollector,
    alert_config,
    alerts,
    notifications,
    scan,
    write_alert_config,
)
from tests.conftest import T0

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
RDP = ("services.exposed.rdp", f"{RAPALA}:3389/tcp")  # critical
DMARC = ("email.dmarc.policy_none", "rapala.test")  # medium
CAA = ("dns.caa.missing", "rapala.test")  # low


@pytest.fixture
def config(tmp_path, monkeypatch):
    return alert_config(tmp_path, monkeypatch)


def test_a_scan_writes_one_alert_per_problem_and_a_rescan_none(sessions, config):
    collector = ScriptedCollector({RAPALA: [RDP, DMARC, CAA]})
    scan(sessions, config, collector, T0)
    assert [(a.rule, a.check_id, a.severity, a.urgency) for a in alerts(sessions)] == [
        ("new_finding", "services.exposed.rdp", "critical", "immediate"),
        ("new_finding", "email.dmarc.policy_none", "medium", "digest"),
    ]  # the low CAA finding is below the default minimum (medium)
    before = len(notifications(sessions))
    # The same findings again, the next day and the day after: nothing new to say.
    scan(sessions, config, collector, T0 + DAY)
    scan(sessions, config, collector, T0 + 2 * DAY)
    assert len(alerts(sessions)) == 2
    assert len(notifications(sessions)) == before


def test_recipients_by_role(sessions, config):
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP, DMARC]}), T0)
    with sessions() as session:
        by_alert = {
            a.check_id: {n.destination: (n.urgency, n.language) for n in a.notifications}
            for a in session.scalars(select(Alert))
        }
    # Rapala's IT contact (in Swedish) and ticketing webhook, the partner's security team
    # by mail and Teams: at once for the critical one, in the digest for the medium one.
    assert by_alert["services.exposed.rdp"] == {
        "email:it@rapala.test": ("immediate", "sv"),
        "channel:tickets": ("immediate", "fi"),
        "email:soc@kuntaverkko.test": ("immediate", "en"),
        "channel:soc-teams": ("immediate", "en"),
    }
    assert {d: u for d, (u, _) in by_alert["email.dmarc.policy_none"].items()} == {
        d: "digest" for d in by_alert["services.exposed.rdp"]
    }
    # Management (the report recipients) hears nothing; neither does Hyvälä.
    everyone = {n.destination for n in notifications(sessions)}
    assert everyone == set(by_alert["services.exposed.rdp"])


def test_a_partner_that_wants_only_critical_alerts(sessions, tmp_path, monkeypatch):
    config = alert_config(tmp_path, monkeypatch, partner_receives="critical")
    high = ("services.exposed.telnet", f"{RAPALA}:23/tcp")
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP, high, DMARC]}), T0)
    with sessions() as session:
        partner = {
            a.check_id
            for a in session.scalars(select(Alert))
            for n in a.notifications
            if n.destination in ("email:soc@kuntaverkko.test", "channel:soc-teams")
        }
    assert partner == {"services.exposed.rdp"}


def test_a_channel_without_digest_gets_only_urgent_alerts(sessions, config):
    telnet = ("services.exposed.telnet", f"{HYVALA}:23/tcp")  # high
    scan(sessions, config, ScriptedCollector({HYVALA: [telnet, ("web.hsts.missing", "x")]}), T0)
    with sessions() as session:
        chat = session.scalars(
            select(Alert.check_id)
            .join(AlertNotification)
            .where(AlertNotification.destination == "channel:chat")
        ).all()
    assert chat == ["services.exposed.telnet"]


def test_digests_are_due_at_the_next_digest_time_in_helsinki(sessions, config):
    # T0 is 10.00 Helsinki time: the digest is due at 7.00 the next morning (05.00 UTC).
    scan(sessions, config, ScriptedCollector({RAPALA: [DMARC]}), T0)
    due = {n.due_at for n in notifications(sessions)}
    assert due == {dt.datetime(2026, 11, 3, 5, 0, tzinfo=dt.UTC)}
    # Across the spring change to summer time, 7.00 stays 7.00 on the wall clock.
    before_dst = dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC)
    assert next_digest(before_dst, "07:00", "Europe/Helsinki") == dt.datetime(
        2026, 3, 29, 4, 0, tzinfo=dt.UTC
    )


def test_findings_and_alerts_commit_together_or_not_at_all(sessions, config):
    # Given a reconcile whose transaction fails after the alerts were recorded
    with pytest.raises(RuntimeError, match="disk full"), sessions.begin() as session:
        sync_config(session, config)
        org = session.scalar(select(Organisation).filter_by(slug="rapala"))
        from riskiturva.store import ObservedFinding, reconcile

        reconcile(
            session,
            organisation=org,
            collector="scripted",
            run_id=None,
            observed=[ObservedFinding(RDP[0], RDP[1], RAPALA, RAPALA, "services", "critical", {})],
            scanned_ok={RAPALA},
            now=T0,
        )
        session.flush()
        raise RuntimeError("disk full")
    # Then neither the finding nor any alert exists
    with sessions() as session:
        assert session.scalar(select(func.count(Finding.id))) == 0
        assert session.scalar(select(func.count(Alert.id))) == 0


def test_fix_then_break_gives_exactly_the_resolution_and_the_new_problem(sessions, config):
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP, DMARC]}), T0)
    first = {a.id for a in alerts(sessions)}
    # RDP closed, a database opened instead
    mysql = ("services.exposed.mysql", f"{RAPALA}:3306/tcp")
    scan(sessions, config, ScriptedCollector({RAPALA: [DMARC, mysql]}), T0 + DAY)
    new = [(a.rule, a.check_id, a.urgency) for a in alerts(sessions) if a.id not in first]
    assert new == [
        ("new_finding", "services.exposed.mysql", "immediate"),
        ("resolved_finding", "services.exposed.rdp", "digest"),
    ]


def test_a_flapping_finding_is_throttled(sessions, config):
    there, gone = ScriptedCollector({RAPALA: [RDP]}), ScriptedCollector({RAPALA: []})
    scan(sessions, config, there, T0)
    # Gone and back every day for six days (inside the 7-day flap window)
    for day in range(1, 7):
        scan(sessions, config, gone if day % 2 else there, T0 + day * DAY)
    rules = [a.rule for a in alerts(sessions)]
    assert rules == ["new_finding", "resolved_finding", "reopened_finding"]
    by_rule = {a.rule: a for a in alerts(sessions)}
    assert (by_rule["resolved_finding"].repeats, by_rule["reopened_finding"].repeats) == (2, 2)
    # After the window, a return is news again
    scan(sessions, config, gone, T0 + 9 * DAY)
    scan(sessions, config, there, T0 + 10 * DAY)
    assert [a.rule for a in alerts(sessions)].count("reopened_finding") == 2


def test_certificate_thresholds_are_announced_once_each(sessions, config):
    not_after = T0 + dt.timedelta(days=40, hours=1)
    certificate = {"not_after": not_after.isoformat(), "sha256_fingerprint": "ab" * 32}
    collector = ScriptedCollector({HYVALA: []}, {HYVALA: certificate})
    # Daily-ish scans while it approaches expiry: 40, 29, 28, 20, 13, 12, 6 and 5 days left
    for day in (0, 11, 12, 20, 27, 28, 34, 35):
        scan(sessions, config, collector, T0 + day * DAY)
    thresholds = [(a.details["threshold_days"], a.urgency) for a in alerts(sessions)]
    assert thresholds == [(30, "digest"), (14, "immediate"), (7, "immediate")]
    # Renewed: a new certificate starts its own thresholds (none crossed yet)
    renewed = {"not_after": (T0 + 400 * DAY).isoformat(), "sha256_fingerprint": "cd" * 32}
    scan(sessions, config, ScriptedCollector({HYVALA: []}, {HYVALA: renewed}), T0 + 36 * DAY)
    assert len(alerts(sessions)) == 3


def test_a_scan_failing_three_times_in_a_row_alerts_once(sessions, config):
    timeout = ScriptedCollector({HYVALA: ErrorKind.TIMEOUT, HYVALA_B: ErrorKind.TIMEOUT})
    for day in range(5):
        scan(sessions, config, timeout, T0 + day * DAY)
    (alert,) = [a for a in alerts(sessions) if a.rule == "scan_failing"]
    assert (alert.subject, alert.details["runs"], alert.urgency) == ("hyvala", 3, "immediate")
    assert alert.details["error"] == "timeout: no answer"
    # One host answering again ends the streak
    scan(sessions, config, ScriptedCollector({HYVALA: [], HYVALA_B: ErrorKind.TIMEOUT}), T0)
    with sessions() as session:
        streak = session.scalar(select(ScanStreak).where(ScanStreak.collector == "scripted"))
        assert streak.failures == 0


def test_an_accepted_risk_expiring_within_fourteen_days(sessions, config):
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP]}), T0)
    with sessions.begin() as session:
        finding = session.scalar(select(Finding))
        decide(
            session,
            finding_id=finding.id,
            visible=["rapala"],
            decision=FindingStatus.ACCEPTED,
            actor="it@rapala.test",
            reason="RDP behind an IP allow list until the VPN is in place",
            until=T0 + 30 * DAY,
            now=T0,
        )
    for day in (1, 10, 17, 20, 25):
        scan(sessions, config, ScriptedCollector({RAPALA: [RDP]}), T0 + day * DAY)
    expiring = [a for a in alerts(sessions) if a.rule == "decision_expiring"]
    assert [(a.created_at, a.details["decided_by"]) for a in expiring] == [
        (T0 + 17 * DAY, "it@rapala.test")
    ]


def test_a_grade_drop_no_other_alert_told_is_alerted(sessions, config):
    # Given an accepted critical finding, and yesterday's snapshot with the grade it gave
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP]}), T0)
    with sessions.begin() as session:
        decide(
            session,
            finding_id=session.scalar(select(Finding.id)),
            visible=["rapala"],
            decision=FindingStatus.ACCEPTED,
            actor="it@rapala.test",
            reason="behind an allow list until the VPN is in place",
            until=T0 + DAY + dt.timedelta(hours=12),
            now=T0,
        )
    take_snapshots(sessions, config, T0.date(), now=T0)
    # When the acceptance has expired at the next day's scan
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP]}), T0 + 2 * DAY)
    # Then the grade drop is told: no alert since yesterday explains it
    (drop,) = [a for a in alerts(sessions) if a.rule == "score_drop"]
    assert (drop.details["grade_before"], drop.severity, drop.urgency) == ("A", "high", "immediate")
    assert drop.details["grade"] != "A"
    # And not again at the next run the same day
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP]}), T0 + 2 * DAY + 2 * HOUR)
    assert [a.rule for a in alerts(sessions)].count("score_drop") == 1


def test_a_grade_drop_told_by_the_new_finding_is_not_told_twice(sessions, config):
    scan(sessions, config, ScriptedCollector({RAPALA: []}), T0)
    take_snapshots(sessions, config, T0.date(), now=T0)
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP]}), T0 + DAY)
    assert [a.rule for a in alerts(sessions)] == ["new_finding"]


def test_per_organisation_overrides(sessions, tmp_path, monkeypatch):
    config = alert_config(
        tmp_path,
        monkeypatch,
        rapala_rules='rules = { new_finding = { min_severity = "critical" } }',
    )
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP, DMARC], HYVALA: [DMARC]}), T0)
    assert sorted((a.organisation.slug, a.check_id) for a in _with_orgs(sessions)) == [
        ("hyvala", "email.dmarc.policy_none"),
        ("rapala", "services.exposed.rdp"),
    ]


def _with_orgs(sessions) -> list[Alert]:
    with sessions() as session:
        rows = list(session.scalars(select(Alert)))
        for row in rows:
            row.organisation  # noqa: B018  (loaded while the session is open)
        return rows


def test_discovery_proposals_plug_in(sessions, config):
    with sessions.begin() as session:
        sync_config(session, config)
        org = session.scalar(select(Organisation).filter_by(slug="rapala"))
        proposal = ProposedAsset("host", "varaus.rapala.test", "certificate SAN", {"on": "x"})
        first = record_proposals(session, config, org, [proposal], now=T0)
        again = record_proposals(session, config, org, [proposal], now=T0 + DAY)
    assert [(a.rule, a.urgency) for a in first] == [("asset_proposed", "digest")]
    assert again == []


def test_nothing_is_recorded_when_alerts_are_off(sessions, tmp_path, monkeypatch):
    path = write_alert_config(tmp_path)
    text = path.read_text().replace("[settings.alerts]\n", "[settings.alerts]\nenabled = false\n")
    path.write_text(text)
    monkeypatch.setenv("RISKITURVA_TEST_TICKETS_URL", "http://127.0.0.1:9/t")
    monkeypatch.setenv("RISKITURVA_TEST_TICKETS_SECRET", "x" * 20)
    from riskiturva.config import load_config

    config = load_config(path)
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP]}), T0)
    assert alerts(sessions) == []
    with sessions() as session:
        assert session.scalar(select(func.count(Finding.id))) == 1


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (('channels = ["tickets"]', 'channels = ["tikets"]'),
         "organisations[1].alerts.channels[0]", "no [[settings.alerts.channels]]"),
        (('digest_time = "07:00"', 'digest_time = "7 am"'),
         "settings.alerts.digest_time", "HH:MM"),
        (('{ email = "it@rapala.test", language = "sv" }', '{ email = "it at rapala" }'),
         "organisations[1].alerts.contacts[0].email", "not an e-mail address"),
        (('receives = "all"', 'receives = "some"'),
         "partners[0].alerts.receives", "'all' or 'critical'"),
        (('url_env = "RISKITURVA_TEST_TICKETS_URL"', 'url_env = "RISKITURVA_TEST_UNSET"'),
         "settings.alerts.channels[1].url_env", "is not set"),
        (('kind = "teams"', 'kind = "pager"'),
         "settings.alerts.channels[0].kind", "'teams', 'slack' or 'webhook'"),
        (('rules = {}', 'rules = { certificate_expiry = { days = [0] } }'),
         "organisations[1].alerts.rules.certificate_expiry.days", "between 1 and 365"),
    ],
)  # fmt: skip
def test_bad_alert_settings_name_the_file_line_and_field(
    tmp_path, monkeypatch, edit, field, message
):
    path = write_alert_config(tmp_path, rapala_rules="rules = {}")
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    monkeypatch.setenv("RISKITURVA_TEST_TICKETS_URL", "http://127.0.0.1:9/t")
    monkeypatch.setenv("RISKITURVA_TEST_TICKETS_SECRET", "x" * 20)
    from riskiturva.config import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.field == field
    assert message in problem.message
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if edit[1] in t)
    assert problem.line == line


def test_a_webhook_url_and_secret_never_appear_in_errors(tmp_path, monkeypatch):
    path = write_alert_config(tmp_path)
    monkeypatch.setenv("RISKITURVA_TEST_TICKETS_URL", "ftp://tickets.example/hook?sig=TOPSECRET")
    monkeypatch.setenv("RISKITURVA_TEST_TICKETS_SECRET", "short")
    from riskiturva.config import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = caught.value.describe()
    assert "settings.alerts.channels[1]" in text
    assert "TOPSECRET" not in text and "short" not in text.replace("shortest", "")


def test_the_outbox_read_model_lists_a_message_to_who_sees_all_it_is_about(sessions, config):
    # Given urgent alerts in both municipalities, sent while no receiver listens
    telnet = ("services.exposed.telnet", f"{HYVALA}:23/tcp")
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP], HYVALA: [telnet]}), T0)
    deliver_due(sessions, config, clock=lambda: T0 + dt.timedelta(minutes=1))
    with sessions() as session:
        # When Hyvälä's reader, the partner and the CLI (with test messages) list the outbox
        hyvala = views.outbox(session, {"hyvala"})
        both = views.outbox(session, {"hyvala", "rapala"})
        entries = views.alerts(session, {"hyvala"}, config, language="sv")
    # Then the partner team's mail and card, about both, are listed only to who sees both
    spanning = {m.destination for m in both if m.organisations == ("hyvala", "rapala")}
    assert spanning == {"email:soc@kuntaverkko.test", "channel:soc-teams"}
    assert {m.destination for m in hyvala} == {"email:it@hyvala.test", "channel:chat"}
    assert all(m.status == "pending" and m.attempts == 1 and m.last_error for m in hyvala)
    # And each alert's own deliveries are listed to its organisation's reader
    (telnet_alert,) = entries
    assert {d.destination: d.state for d in telnet_alert.deliveries} == {
        "channel:chat": "waiting",
        "channel:soc-teams": "waiting",
        "email:it@hyvala.test": "waiting",
        "email:soc@kuntaverkko.test": "waiting",
    }
    assert telnet_alert.path == f"/findings/{telnet_alert.finding_id}"
    assert telnet_alert.url == "https://riskiturva.kuntaverkko.test" + telnet_alert.path
