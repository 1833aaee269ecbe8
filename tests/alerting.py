"""Shared by the alert tests: a configuration with every kind of recipient, and a scripted
collector that reports what a test tells it to, through the real runner and store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from sqlalchemy import select

from riskiturva.alerts.models import Alert, AlertMessage, AlertNotification
from riskiturva.collector import (
    ErrorKind,
    FindingDraft,
    ScanContext,
    ScanTask,
    SubjectObservation,
    SubjectStatus,
    TargetError,
)
from riskiturva.config import AssetKind, Config, load_config
from riskiturva.runner import RunReport, build_context, run_collector
from tests.smtp import make_ca

HYVALA, HYVALA_B, RAPALA = "127.60.1.10", "127.60.1.11", "127.60.2.10"
TICKETS_SECRET = "tickets-hmac-key-0123456789"

ALERT_CONFIG = """
[settings]
data_dir = "{data_dir}"
database_url = "{database_url}"

[settings.resolver]
nameservers = ["127.0.0.1"]
port = 53

[settings.reports.smtp]
host = "127.0.0.1"
port = {smtp_port}
username = "riskiturva"
password = "correct horse battery staple"
ca_file = "{smtp_ca}"
from_address = "riskiturva@kuntaverkko.test"
timeout = 10

[settings.alerts]
dashboard_url = "https://riskiturva.kuntaverkko.test/"
digest_time = "07:00"
retry_seconds = 0.2
retry_max_seconds = 0.5
max_attempts = {max_attempts}

[[settings.alerts.channels]]
name = "soc-teams"
kind = "teams"
url = "{teams_url}"
ca_file = "{receiver_ca}"
language = "en"

[[settings.alerts.channels]]
name = "tickets"
kind = "webhook"
url_env = "RISKITURVA_TEST_TICKETS_URL"
secret_env = "RISKITURVA_TEST_TICKETS_SECRET"
ca_file = "{receiver_ca}"
language = "fi"

[[settings.alerts.channels]]
name = "chat"
kind = "slack"
url = "{slack_url}"
ca_file = "{receiver_ca}"
language = "sv"
digest = false

[[partners]]
slug = "kuntaverkko"
name = "Kuntaverkko Oy"
organisations = ["hyvala", "rapala"]

[partners.alerts]
contacts = [{{ email = "soc@kuntaverkko.test", language = "en" }}]
channels = ["soc-teams"]
receives = "{partner_receives}"

[[organisations]]
slug = "hyvala"
name = {{ fi = "Hyvälän kunta", sv = "Hyvälä kommun", en = "Municipality of Hyvälä" }}
scope = {{ domains = ["hyvala.test"], networks = ["127.60.1.0/24"] }}
report_recipients = ["johto@hyvala.test"]
assets = [
  {{ kind = "ip", value = "127.60.1.10", criticality = "high" }},
  {{ kind = "ip", value = "127.60.1.11", criticality = "low" }},
]

[organisations.alerts]
contacts = [{{ email = "it@hyvala.test", language = "fi" }}]
channels = ["chat"]

[[organisations]]
slug = "rapala"
name = {{ fi = "Rapalan kunta", sv = "Rapala kommun", en = "Municipality of Rapala" }}
scope = {{ domains = ["rapala.test"], networks = ["127.60.2.0/24"] }}
report_recipients = ["hallinto@rapala.test"]
assets = [{{ kind = "ip", value = "127.60.2.10", criticality = "high" }}]

[organisations.alerts]
contacts = [{{ email = "it@rapala.test", language = "sv" }}]
channels = ["tickets"]
{rapala_rules}
"""


def write_alert_config(
    folder: Path,
    *,
    smtp_port: int = 9,
    smtp_ca: Path | str | None = None,
    teams_url: str = "http://127.0.0.1:9/teams",
    slack_url: str = "http://127.0.0.1:9/slack",
    receiver_ca: Path | str | None = None,
    partner_receives: str = "all",
    max_attempts: int = 20,
    rapala_rules: str = "",
    database_url: str = "",
) -> Path:
    if smtp_ca is None or receiver_ca is None:  # nothing listens: any CA will do
        unused = folder / "unused-ca.pem"
        if not unused.exists():
            make_ca(folder, "unused-ca")
        smtp_ca, receiver_ca = smtp_ca or unused, receiver_ca or unused
    path = folder / "riskiturva.toml"
    path.write_text(
        ALERT_CONFIG.format(
            data_dir=folder / "data",
            smtp_port=smtp_port,
            smtp_ca=smtp_ca,
            teams_url=teams_url,
            slack_url=slack_url,
            receiver_ca=receiver_ca,
            partner_receives=partner_receives,
            max_attempts=max_attempts,
            rapala_rules=rapala_rules,
            database_url=database_url,
        ),
        encoding="utf-8",
    )
    return path


def alert_config(folder: Path, monkeypatch, **values: object) -> Config:
    """The alert configuration, loaded (and validated) from a file like a user's."""
    monkeypatch.setenv(
        "RISKITURVA_TEST_TICKETS_URL", str(values.pop("tickets_url", "http://127.0.0.1:9/t"))
    )
    monkeypatch.setenv("RISKITURVA_TEST_TICKETS_SECRET", TICKETS_SECRET)
    return load_config(write_alert_config(folder, **values))  # type: ignore[arg-type]


@dataclass
class ScriptedCollector:
    """Reports, per address, the (check id, subject) pairs of `script` — or an error kind.

    `certificates` adds a certificate to an address's facts (as the TLS collector does).
    """

    script: Mapping[str, Sequence[tuple[str, str]] | ErrorKind]
    certificates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    name: ClassVar[str] = "scripted"
    asset_kinds: ClassVar[frozenset[AssetKind]] = frozenset({AssetKind.IP})
    address_kinds: ClassVar[frozenset[AssetKind]] = frozenset()

    def collect(self, task: ScanTask, context: ScanContext) -> Iterable[SubjectObservation]:
        for target in task.targets:
            outcome = self.script.get(target.address or "", ())
            if isinstance(outcome, ErrorKind):
                yield SubjectObservation(
                    target.address or "", target.asset, SubjectStatus.ERROR,
                    error=TargetError(outcome, "no answer"),
                )  # fmt: skip
                continue
            facts: dict[str, object] = {"checks": [list(pair) for pair in outcome]}
            if target.address in self.certificates:
                facts["certificate"] = dict(self.certificates[target.address])
            yield SubjectObservation(
                target.address or "", target.asset, SubjectStatus.OK, facts=facts
            )

    def judge(self, observation: SubjectObservation) -> list[FindingDraft]:
        return [
            FindingDraft(check_id, {"seen": True}, subject=subject)
            for check_id, subject in observation.facts["checks"]
        ]


def scan(sessions, config: Config, collector: ScriptedCollector, at: dt.datetime) -> RunReport:
    return run_collector(
        sessions, config, collector, context=build_context(config, clock=lambda: at)
    )


def alerts(sessions) -> list[Alert]:
    with sessions() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def notifications(sessions) -> list[AlertNotification]:
    with sessions() as session:
        return list(session.scalars(select(AlertNotification).order_by(AlertNotification.id)))


def messages(sessions) -> list[AlertMessage]:
    with sessions() as session:
        return list(session.scalars(select(AlertMessage).order_by(AlertMessage.id)))
