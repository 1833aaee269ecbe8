"""Alerts from scans of the real lab, with the default rules, delivered to a real SMTP
relay and HTTPS receiver.

- A full scan raises the expected urgent alerts (every open critical or high finding, the
  certificate inside 14 days), one urgent message per destination, and one digest each.
- A rescan with nothing changed raises nothing and sends nothing.
- Closing the RDP port the lab plants and opening SMB on a host that had only HTTPS
  raises exactly two alerts: the fix (in the digest) and the new problem (at once).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from riskiturva import db
from riskiturva.alerts.models import Alert, AlertNotification
from riskiturva.alerts.outbox import next_digest
from riskiturva.alerts.rules import CERTIFICATE_EXPIRY_CHECKS, NEW_PORT_CHECK
from riskiturva.alerts.sender import deliver_due
from riskiturva.checks import load_registry
from riskiturva.collector import discover_collectors
from riskiturva.config import Config
from riskiturva.history import take_snapshots
from riskiturva.lab.estate import up
from riskiturva.models import Finding
from riskiturva.runner import run_scan
from riskiturva.store import make_engine, session_factory
from tests.smtp import smtp_relay
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.lab

RDP = ("services.exposed.rdp", "127.60.2.20:3389/tcp")
NEW_SMB = ("services.exposed.smb", "127.60.1.20:445/tcp")
URGENT = ("critical", "high")


@pytest.fixture
def estate(lab, tmp_path):
    """The lab's configuration with alert recipients, a relay and a receiver of our own."""
    with smtp_relay(tmp_path) as relay:
        receiver = Receiver(tmp_path).start()
        data = tomllib.loads(lab.config_path.read_text(encoding="utf-8"))
        data["settings"]["data_dir"] = str(tmp_path / "data")
        data["settings"]["reports"] = {
            "smtp": {
                "host": "127.0.0.1", "port": relay.port, "username": "riskiturva",
                "password": "correct horse battery staple", "ca_file": str(relay.ca_file),
                "from_address": "riskiturva@kuntaverkko.test",
            }
        }  # fmt: skip
        data["settings"]["alerts"] = {
            "dashboard_url": "https://riskiturva.kuntaverkko.test",
            "channels": [
                {"name": "soc", "kind": "teams", "url": receiver.url("/teams"),
                 "ca_file": str(receiver.ca_file), "language": "fi"},
                {"name": "tickets", "kind": "webhook", "url": receiver.url("/tickets"),
                 "secret": "lab-tickets-secret-0123456789", "ca_file": str(receiver.ca_file)},
            ],
        }  # fmt: skip
        data["partners"][0]["alerts"] = {
            "contacts": [{"email": "soc@kuntaverkko.test", "language": "fi"}],
            "channels": ["soc"],
        }
        for organisation in data["organisations"]:
            domain = organisation["scope"]["domains"][0]
            organisation["alerts"] = {"contacts": [{"email": f"it@{domain}"}]}
        data["organisations"][1]["alerts"]["channels"] = ["tickets"]  # rapala's ticketing
        config = Config.model_validate(data)
        engine = make_engine(config.settings.effective_database_url)
        db.upgrade(engine)
        try:
            yield config, session_factory(engine), relay, receiver
        finally:
            receiver.stop()
            engine.dispose()


def scan(config, sessions, *names: str) -> dt.datetime:
    """Scan as `riskiturva scan` does (runs, then today's snapshot); the runs' end."""
    installed = discover_collectors()
    collectors = [c for n, c in installed.items() if not names or n in names]
    reports = run_scan(sessions, config, collectors)
    assert all(r.status in ("ok", "partial") for r in reports), reports
    today = dt.datetime.now(ZoneInfo(config.settings.schedules.timezone)).date()
    take_snapshots(sessions, config, today)
    return dt.datetime.now(dt.UTC)


def alert_keys(sessions, after: int = 0) -> list[tuple[str, str, str, str]]:
    with sessions() as session:
        rows = session.scalars(select(Alert).where(Alert.id > after).order_by(Alert.id))
        return [(a.rule, a.check_id or "", a.subject, a.urgency) for a in rows]


def destinations(sessions, urgency: str) -> set[str]:
    with sessions() as session:
        query = select(AlertNotification.destination).where(AlertNotification.urgency == urgency)
        return set(session.scalars(query))


def last_alert_id(sessions) -> int:
    with sessions() as session:
        return max((a.id for a in session.scalars(select(Alert))), default=0)


@contextmanager
def banners(lab, tmp_path: Path, *, drop: tuple[str, int], add: dict) -> Iterator[None]:
    """The lab's banner listeners with one service closed and one opened, for a while."""
    state = lab.lab_state
    process = next(p for p in state.processes if p.name == "banners")
    spec = json.loads(Path(process.argv[-1]).read_text())
    changed = [e for e in spec if (e["ip"], e["port"]) != drop] + [add]
    assert len(changed) == len(spec)
    path = tmp_path / "banners.json"
    path.write_text(json.dumps(changed))
    os.kill(process.pid, signal.SIGTERM)
    ours = subprocess.Popen([sys.executable, "-m", "riskiturva.lab._banners", str(path)])
    try:
        _wait_listening(add["ip"], add["port"])
        yield
    finally:
        ours.terminate()
        ours.wait(timeout=30)
        up(lab.directory, manifest=lab.manifest)  # the lab brings back what is missing


def _wait_listening(ip: str, port: int) -> None:
    import socket
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((ip, port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"{ip}:{port} never listened")


def urgent_messages(relay, receiver, address: str) -> int:
    mails = [m for m in relay.mailbox.messages if address in m.recipients]
    return len(mails)


def test_a_scan_alerts_what_it_should_and_a_rescan_nothing(estate):
    # The quick collectors of the full scenario below (which is slow), in the default suite
    config, sessions, relay, receiver = estate
    registry = load_registry()
    finished = scan(config, sessions, "dns_email", "web")
    with sessions() as session:
        findings = session.scalars(select(Finding).where(Finding.status == "open")).all()
    severity = {(f.check_id, f.subject): str(registry[f.check_id].severity) for f in findings}
    raised = alert_keys(sessions)
    assert {(c, s) for _, c, s, u in raised if u == "immediate"} == {
        k for k, v in severity.items() if v in URGENT
    }
    assert {(c, s) for _, c, s, u in raised if u == "digest"} == {
        k for k, v in severity.items() if v == "medium"
    }
    assert {"email.spf.pass_all", "dns.axfr.open", "dns.dnssec.bogus"} <= {
        c for _, c, _, _ in raised
    }
    # One urgent message to each destination with urgent news (Hyvälä has none), one
    # digest each in the morning
    assert deliver_due(sessions, config).sent == len(destinations(sessions, "immediate")) == 5
    morning = next_digest(finished, "07:00", "Europe/Helsinki") + dt.timedelta(minutes=1)
    digests = deliver_due(sessions, config, clock=lambda: morning).sent
    assert digests == len(destinations(sessions, "digest"))
    assert "email:it@hyvala.test" not in destinations(sessions, "immediate")
    sent = len(relay.mailbox.messages) + len(receiver.requests)
    before = last_alert_id(sessions)
    scan(config, sessions, "dns_email", "web")
    assert alert_keys(sessions, before) == []
    assert deliver_due(sessions, config, clock=lambda: morning + dt.timedelta(days=1)).sent == 0
    assert len(relay.mailbox.messages) + len(receiver.requests) == sent


@pytest.mark.slow
def test_fixing_one_problem_and_breaking_another_gives_exactly_two_alerts(lab, estate, tmp_path):
    config, sessions, relay, receiver = estate
    scan(config, sessions, "services")
    deliver_due(sessions, config)
    before, mails, posts = (
        last_alert_id(sessions),
        len(relay.mailbox.messages),
        len(receiver.requests),
    )
    assert before > 0

    # When RDP is closed on Rapala's server and SMB opens on Hyvälä's portal
    with banners(lab, tmp_path, drop=("127.60.2.20", 3389),
                 add={"ip": "127.60.1.20", "port": 445, "kind": "smb"}):  # fmt: skip
        finished = scan(config, sessions, "services")

    # Then exactly two alerts: the new problem at once, the fix in the digest
    assert alert_keys(sessions, before) == [
        ("new_finding", *NEW_SMB, "immediate"),
        ("resolved_finding", *RDP, "digest"),
    ]
    with sessions() as session:
        smb = session.scalar(select(Alert).where(Alert.id > before, Alert.rule == "new_finding"))
        assert smb.details["new_service"] is True  # the new port is told in the same alert
    report = deliver_due(sessions, config)
    # Hyvälä's IT, the partner's security team by mail and in Teams: one message each
    assert report.sent == 3
    new_mails = relay.mailbox.messages[mails:]
    assert sorted(r for m in new_mails for r in m.recipients) == [
        "it@hyvala.test", "soc@kuntaverkko.test",
    ]  # fmt: skip
    (card,) = receiver.requests[posts:]
    assert "SMB" in json.dumps(card.json, ensure_ascii=False)
    latency = max(m.at for m in new_mails) - finished
    print(f"\nlab: reconcile → last receiver {latency.total_seconds():.2f} s")
    # And the fix arrives in the next morning's digest of Rapala's IT and ticketing
    digest_time = next_digest(finished, "07:00", "Europe/Helsinki") + dt.timedelta(minutes=1)
    deliver_due(sessions, config, clock=lambda: digest_time)
    rapala = [m for m in relay.mailbox.messages[mails:] if "it@rapala.test" in m.recipients]
    assert len(rapala) == 1
    assert "Korjattu: Etätyöpöytä (RDP)" in rapala[0].message.get_body(("plain",)).get_content()


@pytest.mark.slow
def test_full_scan_rescan_and_one_change_with_the_default_rules(lab, estate, tmp_path):
    config, sessions, relay, receiver = estate
    registry = load_registry()

    # Given a full scan of the lab with the default rules
    finished = scan(config, sessions)
    with sessions() as session:
        findings = session.scalars(select(Finding).where(Finding.status == "open")).all()
    expected_urgent = {
        ("new_finding", f.check_id, f.subject)
        for f in findings
        if str(registry[f.check_id].severity) in URGENT
        and f.check_id not in CERTIFICATE_EXPIRY_CHECKS | {NEW_PORT_CHECK}
    } | {("certificate_expiry", "", "ajanvaraus.rapala.test:443")}
    expected_digest = {
        ("new_finding", f.check_id, f.subject)
        for f in findings
        if str(registry[f.check_id].severity) == "medium"
        and f.check_id not in CERTIFICATE_EXPIRY_CHECKS | {NEW_PORT_CHECK}
    }
    raised = alert_keys(sessions)
    urgent = {(r, c, s) for r, c, s, u in raised if u == "immediate"}
    digest = {(r, c, s) for r, c, s, u in raised if u == "digest"}
    # Then the expected urgent alerts — every planted critical and high among them
    assert urgent == expected_urgent
    planted = {
        ("new_finding", check, subject)
        for _org, subject, check in lab.manifest.planted()
        if str(registry[check].severity) in URGENT and check not in CERTIFICATE_EXPIRY_CHECKS
    }
    assert planted <= urgent
    assert digest == expected_digest
    assert len(raised) == len(urgent) + len(digest)  # one alert per problem

    # And one urgent message per destination now, one digest each in the morning
    report = deliver_due(sessions, config)
    # Rapala's and Sekala's IT, Rapala's tickets, the partner's mail and Teams (Hyvälä, well
    # kept, has nothing urgent)
    assert report.sent == len(destinations(sessions, "immediate")) == 5
    latency = max(m.at for m in relay.mailbox.messages) - finished
    print(
        f"\nlab: {len(urgent)} urgent and {len(digest)} digest alerts from a full scan; "
        f"reconcile → last receiver {latency.total_seconds():.2f} s"
    )
    morning = next_digest(finished, "07:00", "Europe/Helsinki") + dt.timedelta(minutes=1)
    report = deliver_due(sessions, config, clock=lambda: morning)
    assert report.sent == len(destinations(sessions, "digest"))  # one digest per destination
    sent = (len(relay.mailbox.messages), len(receiver.requests))

    # When the estate is scanned again with nothing changed
    before = last_alert_id(sessions)
    scan(config, sessions)
    # Then nothing is raised and nothing is sent
    assert alert_keys(sessions, before) == []
    assert deliver_due(sessions, config, clock=lambda: morning + dt.timedelta(days=1)).sent == 0
    assert (len(relay.mailbox.messages), len(receiver.requests)) == sent

    # When one problem is fixed and another appears, scanned by every collector
    with banners(lab, tmp_path, drop=("127.60.2.20", 3389),
                 add={"ip": "127.60.1.20", "port": 445, "kind": "smb"}):  # fmt: skip
        scan(config, sessions)
    # Then exactly the right two
    assert alert_keys(sessions, before) == [
        ("new_finding", *NEW_SMB, "immediate"),
        ("resolved_finding", *RDP, "digest"),
    ]
