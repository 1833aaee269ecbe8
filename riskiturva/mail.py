"""E-mail through the configured relay (`[settings.reports.smtp]`), shared by the monthly
reports and the alerts.

The relay's name goes through the configured resolver (never the system's); STARTTLS with
the certificate checked comes before any password; every failure raises `DeliveryError`,
which says whether trying again later can help (`permanent`).
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
from email.message import EmailMessage
from pathlib import Path

from riskiturva.config import ResolverSettings, Settings, SMTPSettings
from riskiturva.resolver import DnsFailure, Resolver


class DeliveryError(RuntimeError):
    """A message could not be handed to its receiver (the message says why).

    `permanent`: the receiver refused it for good (a 5xx SMTP reply, an HTTP 4xx), so
    sending the same again will not help; otherwise a later attempt may succeed.
    """

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class _SMTPToAddress(smtplib.SMTP):
    """SMTP to an address resolved beforehand, keeping the relay's name for the
    certificate check (smtplib would otherwise ask the system resolver)."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        self._address = address
        super().__init__(host, port, timeout=timeout)  # connects

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._address, port), timeout, self.source_address)


def relay_address(host: str, resolver: ResolverSettings) -> str:
    """The address to connect to for `host`: itself if it is one, else through the resolver."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        addresses = Resolver(resolver).addresses(host)
        if not addresses:
            raise DeliveryError(f"{host} has no address") from None
        return addresses[0]


def _password(smtp: SMTPSettings, data_dir: Path) -> str | None:
    if smtp.password is not None:
        return smtp.password.get_secret_value()
    if smtp.password_file is not None:
        path = (
            smtp.password_file
            if smtp.password_file.is_absolute()
            else data_dir / smtp.password_file
        )
        return path.read_text(encoding="utf-8").strip()
    return None


def _permanent(exc: smtplib.SMTPException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500 and not isinstance(exc, smtplib.SMTPAuthenticationError)
    return False


def send(message: EmailMessage, settings: Settings) -> None:
    """Send over SMTP: STARTTLS (certificate checked) before any password; errors raise
    `DeliveryError`."""
    smtp = settings.reports.smtp
    try:
        password = _password(smtp, settings.data_dir)
        if password is not None and not smtp.starttls:
            raise DeliveryError(
                "refusing to send the SMTP password without STARTTLS", permanent=True
            )
        address = relay_address(smtp.host, settings.resolver)
        with _SMTPToAddress(smtp.host, smtp.port, address, smtp.timeout) as client:
            client.ehlo()
            if smtp.starttls:
                context = ssl.create_default_context(
                    cafile=str(smtp.ca_file) if smtp.ca_file else None
                )
                client.starttls(context=context)
                client.ehlo()
            if smtp.username and password is not None:
                client.login(smtp.username, password)
            refused = client.send_message(message)
        if refused:
            raise DeliveryError(
                f"the relay refused: {', '.join(sorted(refused))}",
                permanent=all(code >= 500 for code, _ in refused.values()),
            )
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=_permanent(exc)) from exc
    except (OSError, DnsFailure) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
