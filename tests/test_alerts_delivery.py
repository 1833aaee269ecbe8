"""Delivery for real: aiosmtpd with STARTTLS on loopback, an HTTPS receiver with its own
CA, the Adaptive Card schema of Microsoft's AdaptiveCards repository, the committed webhook
schema, HMAC checked here with `hmac` itself, an outage, refusals and 1,000 events."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import func, select

from riskiturva.alerts.channels import signature, verify_signature
from riskiturva.alerts.models import AlertAttempt, AlertMessage
from riskiturva.alerts.sender import deliver_due, requeue, send_test
from tests.alerting import (
    HYVALA,
    RAPALA,
    TICKETS_SECRET,
    ScriptedCollector,
    alert_config,
    messages,
    scan,
)
from tests.conftest import T0
from tests.smtp import smtp_relay
from tests.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parents[1]
CARD_SCHEMA = json.loads(
    (ROOT / "tests" / "schemas" / "adaptive-card-1.4.0.json").read_text(encoding="utf-8")
)
WEBHOOK_SCHEMA = json.loads(
    (ROOT / "docs" / "alert-webhook.schema.json").read_text(encoding="utf-8")
)
TEAMS_SECRET = "sig=TEAMS-WORKFLOW-SIGNATURE-0042"
RDP = ("services.exposed.rdp", f"{RAPALA}:3389/tcp")  # critical
DMARC = ("email.dmarc.policy_none", "rapala.test")  # medium
TELNET = ("services.exposed.telnet", f"{HYVALA}:23/tcp")  # high
NEXT_DIGEST = dt.datetime(2026, 11, 3, 5, 0, tzinfo=dt.UTC)  # 7.00 in Helsinki


def at(moment: dt.datetime):
    return lambda: moment


def card_problems(payload: dict) -> list[str]:
    """Schema errors of the Teams message's Adaptive Card (Microsoft's 1.4 schema)."""
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    validator = jsonschema.Draft6Validator(CARD_SCHEMA)
    return [e.message for e in validator.iter_errors(attachment["content"])]


def webhook_problems(payload: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(
        WEBHOOK_SCHEMA, format_checker=jsonschema.FormatChecker()
    )
    return [e.message for e in validator.iter_errors(payload)]


def signed_correctly(request) -> bool:
    """The receiver's own check, written here with `hmac` rather than our helper."""
    timestamp = request.headers["x-riskiturva-timestamp"]
    expected = hmac.new(
        TICKETS_SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    return request.headers["x-riskiturva-signature"] == f"v1={expected}"


@pytest.fixture
def relay(tmp_path):
    with smtp_relay(tmp_path) as running:
        yield running


@pytest.fixture
def receiver(tmp_path):
    running = Receiver(tmp_path).start()
    yield running
    running.stop()


@pytest.fixture
def config(tmp_path, monkeypatch, relay, receiver):
    return alert_config(
        tmp_path,
        monkeypatch,
        smtp_port=relay.port,
        smtp_ca=relay.ca_file,
        teams_url=receiver.url(f"/teams?{TEAMS_SECRET}"),
        slack_url=receiver.url("/slack"),
        receiver_ca=receiver.ca_file,
        tickets_url=receiver.url("/tickets"),
    )


def mail_to(relay, address: str):
    return [m.message for m in relay.mailbox.messages if address in m.recipients]


def posts(receiver, path: str):
    return [r for r in receiver.requests if r.path.split("?")[0] == path]


def test_urgent_alerts_at_once_and_one_digest_each_in_every_language(
    sessions, config, relay, receiver
):
    # Given a scan with a critical, a high and a medium finding in two organisations
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP, DMARC], HYVALA: [TELNET]}), T0)

    # When the sender runs a minute later
    report = deliver_due(sessions, config, clock=at(T0 + dt.timedelta(minutes=1)))

    # Then every destination has one message with its urgent alerts, in its language
    assert (report.sent, report.retrying, report.failed) == (6, 0, 0)
    (rapala,) = mail_to(relay, "it@rapala.test")
    assert (
        rapala["Subject"]
        == "[Riskiturva] Rapala kommun: Fjärrskrivbord (RDP) är öppet mot internet"
    )
    text = rapala.get_body(("plain",)).get_content()
    assert "Varför det spelar roll:" in text
    assert "https://riskiturva.kuntaverkko.test/findings/" in text
    assert f"{RAPALA}:3389/tcp" in text
    html = rapala.get_body(("html",)).get_content()
    assert 'lang="sv"' in html and "Öppna i Riskiturva" in html
    (soc,) = mail_to(relay, "soc@kuntaverkko.test")  # the partner: both organisations
    assert soc["Subject"] == "[Riskiturva] 2 urgent alerts: 2 organisations"
    soc_text = soc.get_body(("plain",)).get_content()
    assert soc_text.index("[CRITICAL]") < soc_text.index("[HIGH]")
    (hyvala,) = mail_to(relay, "it@hyvala.test")
    assert hyvala["Subject"].startswith("[Riskiturva] Hyvälän kunta: ")
    assert not mail_to(relay, "johto@hyvala.test") and not mail_to(relay, "hallinto@rapala.test")
    # The Message-ID is the outbox key
    keys = {m.key for m in messages(sessions)}
    assert {m["Message-ID"].strip("<>").split("@")[0] for m in (rapala, soc, hyvala)} <= keys
    assert all(m["Auto-Submitted"] == "auto-generated" for m in (rapala, soc, hyvala))

    (teams,) = posts(receiver, "/teams")
    assert card_problems(teams.json) == []
    assert teams.key in keys
    (ticket,) = posts(receiver, "/tickets")
    assert signed_correctly(ticket)
    assert webhook_problems(ticket.json) == []
    assert [a["check_id"] for a in ticket.json["alerts"]] == ["services.exposed.rdp"]
    assert ticket.json["id"] == ticket.key
    (chat,) = posts(receiver, "/slack")
    assert "`127.60.1.10:23/tcp`" in chat.json["text"]

    # And at 7.00 the next morning, one digest per destination that takes digests
    deliver_due(sessions, config, clock=at(NEXT_DIGEST))
    (rapala_digest,) = mail_to(relay, "it@rapala.test")[1:]
    assert rapala_digest["Subject"] == "[Riskiturva] Dagens sammandrag 3.11.2026: Rapala kommun"
    digest_ticket = posts(receiver, "/tickets")[1]
    assert digest_ticket.json["kind"] == "digest" and webhook_problems(digest_ticket.json) == []
    assert card_problems(posts(receiver, "/teams")[1].json) == []
    assert len(posts(receiver, "/slack")) == 1  # the chat channel takes no digest
    # Nothing is sent twice
    before = (len(relay.mailbox.messages), len(receiver.requests))
    assert deliver_due(sessions, config, clock=at(NEXT_DIGEST + dt.timedelta(hours=1))).sent == 0
    assert (len(relay.mailbox.messages), len(receiver.requests)) == before


def test_a_thousand_events_make_one_digest_not_a_thousand_mails(sessions, config, relay, receiver):
    findings = [("web.hsts.missing", f"www{i}.rapala.test") for i in range(1000)]  # medium
    scan(sessions, config, ScriptedCollector({RAPALA: findings}), T0)

    report = deliver_due(sessions, config, clock=at(NEXT_DIGEST))

    assert report.batched == report.sent == 4  # it@, tickets, soc@, soc-teams
    (digest,) = mail_to(relay, "it@rapala.test")
    assert "1000" in digest["Subject"] or "1000" in digest.get_body(("plain",)).get_content()
    text = digest.get_body(("plain",)).get_content()
    assert text.count("[MÅTTLIG]") == 30  # items_shown; the rest are counted
    assert "…och 970 till (måttlig 970) i Riskiturva." in text
    (teams,) = posts(receiver, "/teams")
    assert card_problems(teams.json) == []
    assert len(teams.body) < 28_000  # Teams refuses cards over about 28 KB
    (ticket,) = posts(receiver, "/tickets")
    assert ticket.json["total"] == len(ticket.json["alerts"]) == 1000
    assert webhook_problems(ticket.json) == []


def test_text_from_the_scanned_world_stays_text(sessions, config, relay, receiver):
    hostile = "<script>alert(1)</script>[klikkaa](https://evil.example) *kiire* `x`"
    scan(sessions, config, ScriptedCollector({RAPALA: [("services.exposed.rdp", hostile)]}), T0)
    deliver_due(sessions, config, clock=at(T0))
    (mail,) = mail_to(relay, "it@rapala.test")
    html = mail.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    card = posts(receiver, "/teams")[0].json["attachments"][0]["content"]
    texts = json.dumps(card)
    assert hostile in {run["text"].split(" — ")[-1] for run in _runs(card)}
    # Only our own words go into markdown-rendering TextBlocks
    assert all(hostile not in b.get("text", "") for b in _blocks(card))
    assert "evil.example" in texts  # present, but only as a TextRun (plain text)


def _blocks(node):
    if isinstance(node, dict):
        if node.get("type") == "TextBlock":
            yield node
        for value in node.values():
            yield from _blocks(value)
    elif isinstance(node, list):
        for value in node:
            yield from _blocks(value)


def _runs(node):
    if isinstance(node, dict):
        if node.get("type") == "TextRun":
            yield node
        for value in node.values():
            yield from _runs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _runs(value)


def test_a_receiver_that_is_down_gets_everything_once_when_it_is_back(
    sessions, config, relay, receiver
):
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP], HYVALA: [TELNET]}), T0)
    receiver.stop()

    # The sender keeps trying (backoff 0.2 s doubling to 0.5 s) while the receiver is down:
    # until each message to it has failed three times.
    def failed_attempts() -> int:
        with sessions() as session:
            query = select(func.count(AlertAttempt.id)).where(AlertAttempt.outcome == "retry")
            return session.scalar(query)

    deadline = time.monotonic() + 60
    while failed_attempts() < 9 and time.monotonic() < deadline:
        deliver_due(sessions, config)
        time.sleep(0.1)
    waiting = [m.destination for m in messages(sessions) if m.status == "pending"]
    assert sorted(waiting) == ["channel:chat", "channel:soc-teams", "channel:tickets"]
    assert failed_attempts() >= 9  # the three e-mails went out at the first attempt
    # When it comes back
    receiver.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(m.status != "sent" for m in messages(sessions)):
        deliver_due(sessions, config)
        time.sleep(0.1)
    # Then every message arrived, each exactly once
    assert {m.status for m in messages(sessions)} == {"sent"}
    http_messages = [m for m in messages(sessions) if m.destination.startswith("channel:")]
    assert sorted(receiver.processed) == sorted(m.key for m in http_messages)
    assert receiver.repeats == []
    assert len(receiver.requests) == len(http_messages)


def test_a_refusal_is_final_until_retried_by_hand(sessions, config, relay, receiver):
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP]}), T0)
    receiver.status = 400  # e.g. a Teams workflow that rejects the payload
    report = deliver_due(sessions, config, clock=at(T0))
    assert report.failed == 2  # teams and tickets; the mails went out
    with sessions() as session:
        failed = session.scalars(select(AlertMessage).where(AlertMessage.status == "failed")).all()
        assert {f.last_error for f in failed} == {
            "soc-teams (127.0.0.1) answered HTTP 400",
            "tickets (127.0.0.1) answered HTTP 400",
        }
    # A later pass does not hammer a receiver that said no
    assert deliver_due(sessions, config, clock=at(T0 + dt.timedelta(hours=1))).failed == 0
    receiver.status = 202
    with sessions.begin() as session:
        assert len(requeue(session, T0, failed=True)) == 2
    assert deliver_due(sessions, config, clock=at(T0 + dt.timedelta(hours=2))).sent == 2
    assert len(receiver.processed) == 2


def test_a_busy_receiver_is_retried_after_what_it_asks(sessions, config, relay, receiver):
    scan(sessions, config, ScriptedCollector({HYVALA: [TELNET]}), T0)
    receiver.status = 503
    deliver_due(sessions, config, clock=at(T0))
    with sessions() as session:
        chat = session.scalar(
            select(AlertMessage).where(AlertMessage.destination == "channel:chat")
        )
        assert chat.status == "pending" and chat.attempts == 1
        assert T0 < chat.next_attempt_at <= T0 + dt.timedelta(seconds=0.5)


def test_signature_and_replay_window():
    body, key, now = b'{"id":"x"}', TICKETS_SECRET.encode(), 1_800_000_000
    header = signature(key, now, body)
    assert verify_signature(key, body, str(now), header, now=now + 10)
    assert not verify_signature(key, body + b" ", str(now), header, now=now)  # tampered
    assert not verify_signature(b"another key", body, str(now), header, now=now)
    assert not verify_signature(key, body, str(now), header, now=now + 301)  # replayed later
    assert not verify_signature(key, body, "yesterday", header, now=now)


def test_secrets_never_reach_errors_or_logs(sessions, receiver, caplog, tmp_path, monkeypatch):
    # Receivers that refuse connections: the URL (with its signature) must not leak
    config = alert_config(
        tmp_path,
        monkeypatch,
        receiver_ca=receiver.ca_file,
        teams_url=f"https://127.0.0.1:9/teams?{TEAMS_SECRET}",
        tickets_url="https://127.0.0.1:9/tickets/SECRET-PATH",
    )
    scan(sessions, config, ScriptedCollector({RAPALA: [RDP]}), T0)
    with caplog.at_level(logging.DEBUG):
        deliver_due(sessions, config, clock=at(T0))
    with sessions() as session:
        errors = [a.error or "" for a in session.scalars(select(AlertAttempt))]
    assert any("could not connect" in e for e in errors)
    everything = caplog.text + " ".join(errors)
    for secret in ("TEAMS-WORKFLOW-SIGNATURE", "SECRET-PATH", TICKETS_SECRET):
        assert secret not in everything


def test_a_test_message_goes_through_the_outbox(sessions, config, relay, receiver):
    outcome, error = send_test(sessions, config, "channel:soc-teams", "fi")
    assert (outcome, error) == ("sent", None)
    (request,) = receiver.requests
    assert card_problems(request.json) == []
    assert "Riskiturvan testiviesti" in json.dumps(request.json, ensure_ascii=False)
    outcome, error = send_test(sessions, config, "email:it@rapala.test", "en")
    assert outcome == "sent"
    (mail,) = mail_to(relay, "it@rapala.test")
    assert mail["Subject"] == "[Riskiturva] Riskiturva test message"
