"""`riskiturva alerts list | send | test | retry`, in-process through click's runner, against
a real relay and receiver."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from riskiturva.db import open_store
from riskiturva_cli import commands as cli
from tests.alerting import RAPALA, ScriptedCollector, alert_config, scan, write_alert_config
from tests.conftest import T0
from tests.smtp import smtp_relay
from tests.webhook_receiver import Receiver

RDP = ("services.exposed.rdp", f"{RAPALA}:3389/tcp")


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    with smtp_relay(tmp_path) as relay:
        receiver = Receiver(tmp_path).start()
        values = {
            "smtp_port": relay.port,
            "smtp_ca": relay.ca_file,
            "teams_url": receiver.url("/teams"),
            "slack_url": receiver.url("/slack"),
            "receiver_ca": receiver.ca_file,
        }
        config = alert_config(tmp_path, monkeypatch, tickets_url=receiver.url("/tickets"), **values)
        path = write_alert_config(tmp_path, **values)
        try:
            yield config, str(path), relay, receiver
        finally:
            receiver.stop()


def test_list_send_and_the_outbox(setup):
    config, path, _, _ = setup
    scan(open_store(config), config, ScriptedCollector({RAPALA: [RDP]}), T0)

    listed = json.loads(invoke("alerts", "list", "--config", path, "--days", "36500",
                               "--format", "json", "--lang", "en").output)  # fmt: skip
    (alert,) = listed
    assert (alert["rule"], alert["severity"], alert["subject"]) == (
        "new_finding",
        "critical",
        RDP[1],
    )
    assert alert["title"] == "Remote Desktop (RDP) is open to the internet"
    assert set(alert["deliveries"].values()) == {"waiting"}

    result = invoke("alerts", "send", "--config", path)
    assert result.exit_code == 0
    assert "4 sent" in result.output
    listed = json.loads(invoke("alerts", "list", "--config", path, "--days", "36500",
                               "--format", "json").output)  # fmt: skip
    assert set(listed[0]["deliveries"].values()) == {"sent"}
    outbox = json.loads(invoke("alerts", "list", "--config", path, "--outbox",
                               "--format", "json").output)  # fmt: skip
    assert {(m["destination"], m["status"], m["alerts"]) for m in outbox} == {
        ("email:it@rapala.test", "sent", 1),
        ("channel:tickets", "sent", 1),
        ("email:soc@kuntaverkko.test", "sent", 1),
        ("channel:soc-teams", "sent", 1),
    }
    table = invoke("alerts", "list", "--config", path, "--days", "36500").output
    assert "4 sent" in table and "1 alerts" in table


def test_test_reports_the_outcome_and_retry_requeues(setup):
    config, path, relay, receiver = setup
    result = invoke("alerts", "test", "--config", path, "soc-teams")
    assert (result.exit_code, result.output) == (0, "Sent a test message to soc-teams.\n")
    result = invoke("alerts", "test", "--config", path, "someone@kuntaverkko.test", "--lang", "en")
    assert result.exit_code == 0
    assert relay.mailbox.messages[-1].recipients == ["someone@kuntaverkko.test"]
    result = invoke("alerts", "test", "--config", path, "no-such-channel")
    assert result.exit_code == 2 and "soc-teams, tickets, chat" in result.output

    receiver.status = 410  # the workflow was deleted
    result = invoke("alerts", "test", "--config", path, "soc-teams")
    assert result.exit_code == 1
    assert "soc-teams (127.0.0.1) answered HTTP 410" in result.output

    scan(open_store(config), config, ScriptedCollector({RAPALA: [RDP]}), T0)
    assert invoke("alerts", "send", "--config", path).exit_code == 1  # teams and tickets failed
    receiver.status = 202
    result = invoke("alerts", "retry", "--config", path, "--failed")
    assert result.exit_code == 0
    assert "2 messages queued again" in result.output and "2 sent" in result.output
