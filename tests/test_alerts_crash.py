"""kill -9 of the sender process between its send and its bookkeeping: nothing is lost,
and every receiver that dedupes on the idempotency key processes each message once.

The sender is the real CLI (`riskiturva alerts send`) in its own process. The receivers
kill it from inside their handlers: the HTTPS receiver after it has read and processed the
request but before it answers, the SMTP server after it has stored the message but before
its 250 — the moment when the receiver has the message and the sender does not know it.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select, text

from riskiturva.alerts.models import AlertAttempt, AlertMessage
from riskiturva.alerts.sender import deliver_due
from riskiturva.db import open_store
from tests.alerting import (
    HYVALA,
    RAPALA,
    TICKETS_SECRET,
    ScriptedCollector,
    scan,
    write_alert_config,
)
from tests.smtp import smtp_relay
from tests.webhook_receiver import Receiver

RISKITURVA = str(Path(sys.executable).parent / "riskiturva")
EARLIER = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # scans before the sender runs


class Killer:
    """Kills the current sender process at the n-th delivery the receivers see."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.at: int | None = None
        self.seen = 0
        self.kills = 0
        self.lock = threading.Lock()

    def __call__(self, _delivery: object) -> None:
        with self.lock:
            self.seen += 1
            if self.process is not None and self.seen == self.at:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
                self.kills += 1


@contextmanager
def crash_setup(folder: Path, monkeypatch, database_url: str = "") -> Iterator[tuple]:
    """A relay and an HTTPS receiver that kill the sender when told, and a config file."""
    if database_url:
        from riskiturva.store import make_engine

        engine = make_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    killer = Killer()
    with smtp_relay(folder) as relay:
        receiver = Receiver(folder, on_request=killer).start()
        relay.mailbox.on_data = killer
        path = write_alert_config(
            folder,
            smtp_port=relay.port,
            smtp_ca=relay.ca_file,
            teams_url=receiver.url("/teams"),
            slack_url=receiver.url("/slack"),
            receiver_ca=receiver.ca_file,
            database_url=database_url,
        )
        env = os.environ | {
            "RISKITURVA_TEST_TICKETS_URL": receiver.url("/tickets"),
            "RISKITURVA_TEST_TICKETS_SECRET": TICKETS_SECRET,
        }
        monkeypatch.setenv("RISKITURVA_TEST_TICKETS_URL", env["RISKITURVA_TEST_TICKETS_URL"])
        monkeypatch.setenv("RISKITURVA_TEST_TICKETS_SECRET", TICKETS_SECRET)
        try:
            yield path, env, killer, relay, receiver
        finally:
            receiver.stop()


def sender(path: Path, env: dict[str, str], killer: Killer, at: int | None) -> int:
    killer.at, killer.seen = at, 0
    process = subprocess.Popen(
        [RISKITURVA, "alerts", "send", "--config", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killer.process = process
    try:
        return process.wait(timeout=120)
    finally:
        killer.process = None


ROUNDS = [  # (what a scan finds, the delivery at which the sender is killed)
    ({RAPALA: [("services.exposed.rdp", f"{RAPALA}:3389/tcp")]}, 1),
    ({HYVALA: [("services.exposed.telnet", f"{HYVALA}:23/tcp")]}, 2),
    ({RAPALA: [("services.exposed.smb", f"{RAPALA}:445/tcp")]}, 3),
    ({HYVALA: [("services.exposed.vnc", f"{HYVALA}:5900/tcp")]}, 1),
]


def test_kill_9_between_send_and_acknowledgement(tmp_path, monkeypatch):
    # Killed once just after an SMTP server stored a mail, once after a webhook took a post
    with crash_setup(tmp_path, monkeypatch) as setting:
        crash_rounds(setting, ROUNDS[:2])


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_kill_9_at_every_delivery_position(request, tmp_path, monkeypatch, database):
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else ""
    with crash_setup(tmp_path, monkeypatch, url) as setting:
        crash_rounds(setting, ROUNDS)


def crash_rounds(setting, rounds) -> None:
    """Each round: a scan raises alerts, the sender is killed mid-delivery, then runs
    again to the end. Afterwards nothing is lost and nothing was processed twice."""
    from riskiturva.config import load_config

    path, env, killer, relay, receiver = setting
    config = load_config(path)
    sessions = open_store(config)
    findings: dict[str, list] = {}
    for number, (script, kill_at) in enumerate(rounds):
        for address, pairs in script.items():
            findings.setdefault(address, []).extend(pairs)
        at = EARLIER + dt.timedelta(minutes=number)
        scan(sessions, config, ScriptedCollector(dict(findings)), at)
        # The sender is killed at its kill_at-th delivery; the next pass finishes the work
        assert sender(path, env, killer, kill_at) == -signal.SIGKILL
        killer.at = None
        report = deliver_due(sessions, config)
        assert report.failed == report.retrying == 0
    assert killer.kills == len(rounds)

    with sessions() as session:
        outbox = session.scalars(select(AlertMessage)).all()
        attempts = session.scalars(select(AlertAttempt)).all()
    # Nothing lost: every message was delivered
    assert {m.status for m in outbox} == {"sent"}
    # Every kill left an attempt marked interrupted, and its message was sent again
    interrupted = [a for a in attempts if a.outcome == "interrupted"]
    assert len(interrupted) == len(rounds)
    # Nothing processed twice: webhooks dedupe on the key they were sent again with...
    http = [m for m in outbox if m.destination.startswith("channel:")]
    assert sorted(receiver.processed) == sorted(m.key for m in http)
    assert len(receiver.requests) == len(http) + len(receiver.repeats)
    assert all(r.key in receiver.processed for r in receiver.repeats)
    # ...and a mail sent again carries the same Message-ID as the copy the server kept
    mail = [m for m in outbox if m.destination.startswith("email:")]
    ids = [r.message["Message-ID"] for r in relay.mailbox.messages]
    assert sorted({i.strip("<>").split("@")[0] for i in ids}) == sorted(m.key for m in mail)
    duplicates_processed = len(receiver.processed) - len({m.key for m in http})
    assert duplicates_processed == 0
    print(
        f"\ncrash test: {len(outbox)} messages, {killer.kills} kills, "
        f"{len(receiver.repeats)} webhook repeats dropped by key, "
        f"{len(ids) - len(set(ids))} e-mail copies with the same Message-ID, 0 lost"
    )
