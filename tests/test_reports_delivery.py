"""The monthly job against a real SMTP server (aiosmtpd on 127.0.0.1) with STARTTLS.

The server's certificate comes from a throw-away CA made here; the job must trust it
only through `reports.smtp.ca_file`, upgrade with STARTTLS before signing in, and hand
each organisation's PDF to its configured recipients. The archive is then served only
to callers who may see the organisation.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
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
from tests.test_reports_data import NOW, VISIBLE, build_estate

USER, PASSWORD = "riskiturva", "correct horse battery staple"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(folder: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def server_context(folder: Path, ca_key, ca_cert) -> ssl.SSLContext:
    """A TLS context for 127.0.0.1, signed by the throw-away CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("relay.riskiturva.test"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / "relay.pem", folder / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage
    over_tls: bool
    authenticated: bool


@dataclass
class Mailbox:
    messages: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                message,
                session.ssl is not None,
                session.authenticated,
            )
        )
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False, auth_data=USER.encode() if ok else None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Relay:
    port: int
    mailbox: Mailbox
    ca_file: Path
    other_ca_file: Path


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    """An SMTP relay on 127.0.0.1 that requires STARTTLS before AUTH and before mail."""
    ca_key, ca_cert, ca_file = make_ca(tmp_path, "reports-test-ca")
    _, _, other_ca_file = make_ca(tmp_path, "some-other-ca")
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context(tmp_path, ca_key, ca_cert),
        require_starttls=True,
        auth_require_tls=True,
        authenticator=mailbox.authenticate,
    )
    controller.start()
    try:
        yield Relay(port, mailbox, ca_file, other_ca_file)
    finally:
        controller.stop()


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
    config = configured(build_estate(sessions), tmp_path / "data", port=_free_port())
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
