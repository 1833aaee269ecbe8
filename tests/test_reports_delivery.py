"""The monthly job against a real SMTP server (aiosmtpd on 127.0.0.1) with STARTTLS.

The server's certificate comes from a throw-away CA made here; the job must trust it
only through `reports.smtp.ca_file`, upgrade with STARTTLS before signing in, and hand
each organisation's PDF to its configured recipients. The archive is then served only
to callers who may see the organisation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from riskiturva.config import Config, ConfigError, ReportSettings, SMTPSettings, load_config
from riskiturva.reports.delivery import (
    ArchiveError,
    archived_reports,
    deliver_monthly,
    open_archived,
    reports_dir,
)
from riskiturva.reports.models import ArchivedReport
from riskiturva.store import NotVisible
from tests.conftest import MINIMAL_CONFIG
from tests.smtp import PASSWORD, USER, Relay, free_port, smtp_relay
from tests.test_reports_data import NOW, VISIBLE, build_estate


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    with smtp_relay(tmp_path) as running:
        yield running


def configured(config: Config, data_dir: Path, **smtp: object) -> Config:
    settings = config.settings.model_copy(
        update={
            "data_dir": data_dir,
            "reports": ReportSettings(
                smtp=SMTPSettings(from_address="riskiturva@seutu.test", **smtp)
            ),
        }
    )
    return config.model_copy(update={"settings": settings})


def relay_settings(relay: Relay, **overrides: object) -> dict[str, object]:
    return {
        "host": "127.0.0.1",
        "port": relay.port,
        "username": USER,
        "password": PASSWORD,
        "ca_file": relay.ca_file,
        "timeout": 10,
        **overrides,
    }


def test_monthly_job_mails_each_organisation_its_pdf_over_starttls(sessions, relay, tmp_path):
    config = configured(build_estate(sessions), tmp_path / "data", **relay_settings(relay))

    deliveries = deliver_monthly(sessions, config, None, NOW)

    assert [(d.organisation, str(d.month), d.sent, d.error) for d in deliveries] == [
        ("hyvala", "2026-10", True, None),
        ("rapala", "2026-10", True, None),
    ]
    by_recipients = {tuple(m.recipients): m for m in relay.mailbox.messages}
    assert set(by_recipients) == {
        ("johto@hyvala.test", "it@hyvala.test"),
        ("hallinto@rapala.test",),
    }
    assert relay.mailbox.logins == [USER, USER]
    hyvala = by_recipients[("johto@hyvala.test", "it@hyvala.test")]
    assert hyvala.over_tls and hyvala.authenticated and hyvala.sender == "riskiturva@seutu.test"
    assert hyvala.message["Subject"] == "Tietoturvaraportti: Hyvälän kunta, lokakuu 2026"
    assert "Kyllä: arvosana A (98/100)" in hyvala.message.get_body(("plain",)).get_content()
    [attachment] = list(hyvala.message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "riskiturva-hyvala-2026-10-fi.pdf"
    pdf = attachment.get_content()
    assert pdf.startswith(b"%PDF-")

    with sessions() as session:
        rows = archived_reports(session, VISIBLE)
        assert [(r.organisation.slug, r.month, r.sent_at) for r in rows] == [
            ("hyvala", "2026-10", NOW),
            ("rapala", "2026-10", NOW),
        ]
        archived = open_archived(session, rows[0].id, VISIBLE, folder=reports_dir(config.settings))
    assert archived.content == pdf and archived.media_type == "application/pdf"
    assert (tmp_path / "data" / "reports" / "hyvala" / "riskiturva-hyvala-2026-10-fi.pdf").exists()

    # The job runs again (a misfire or a restart): archived anew, not mailed twice.
    again = deliver_monthly(sessions, config, "2026-10", NOW + dt.timedelta(hours=1))
    assert [d.sent for d in again] == [True, True]
    assert len(relay.mailbox.messages) == 2


def test_an_untrusted_relay_is_a_recorded_failure_and_the_next_run_sends(sessions, relay, tmp_path):
    estate = build_estate(sessions)
    wrong = configured(
        estate, tmp_path / "data", **relay_settings(relay, ca_file=relay.other_ca_file)
    )

    failed = deliver_monthly(sessions, wrong, "2026-10", NOW)

    assert [d.sent for d in failed] == [False, False]
    assert all("CERTIFICATE_VERIFY_FAILED" in (d.error or "") for d in failed)
    assert relay.mailbox.messages == [] and relay.mailbox.logins == []
    with sessions() as session:
        row = session.scalar(select(ArchivedReport).order_by(ArchivedReport.id))
        assert row.sent_at is None and "CERTIFICATE_VERIFY_FAILED" in row.delivery_error

    right = configured(estate, tmp_path / "data", **relay_settings(relay))
    assert [d.sent for d in deliver_monthly(sessions, right, "2026-10", NOW)] == [True, True]
    with sessions() as session:
        row = session.scalar(select(ArchivedReport).order_by(ArchivedReport.id))
        assert row.sent_at == NOW and row.delivery_error is None


def test_the_password_is_never_sent_without_starttls(sessions, relay, tmp_path):
    config = configured(
        build_estate(sessions), tmp_path / "data", **relay_settings(relay, starttls=False)
    )
    deliveries = deliver_monthly(sessions, config, "2026-10", NOW)
    assert {d.error for d in deliveries} == {"refusing to send the SMTP password without STARTTLS"}
    assert relay.mailbox.messages == [] and relay.mailbox.logins == []


def test_the_archive_follows_the_access_rules(sessions, tmp_path):
    # Nothing listens on the relay's port: the reports are archived, the mail fails.
    config = configured(build_estate(sessions), tmp_path / "data", port=free_port())
    deliveries = deliver_monthly(sessions, config, "2026-10", NOW)
    assert all("ConnectionRefusedError" in (d.error or "") for d in deliveries)
    folder = reports_dir(config.settings)
    with sessions() as session:
        mine = archived_reports(session, ["hyvala"])
        everything = archived_reports(session, VISIBLE)
        rapala = next(r for r in everything if r.organisation.slug == "rapala")
        assert [r.organisation.slug for r in mine] == ["hyvala"]
        with pytest.raises(NotVisible):
            open_archived(session, rapala.id, ["hyvala"], folder=folder)
        with pytest.raises(NotVisible):
            open_archived(session, 10_000, VISIBLE, folder=folder)
        (folder / rapala.path).write_bytes(b"%PDF-1.7 tampered")
        with pytest.raises(ArchiveError, match="checksum"):
            open_archived(session, rapala.id, VISIBLE, folder=folder)
        hyvala = open_archived(session, mine[0].id, ["hyvala"], folder=folder)
    assert hashlib.sha256(hyvala.content).hexdigest() == mine[0].sha256


def test_a_bad_monthly_schedule_is_refused_with_its_place_in_the_file(tmp_path):
    path = tmp_path / "riskiturva.toml"
    path.write_text(
        '[settings.reports]\nschedule = "0 6 32 * *"\n' + MINIMAL_CONFIG, encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert (problem.field, problem.line) == ("settings.reports.schedule", 2)
