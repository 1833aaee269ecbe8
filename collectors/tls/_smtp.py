"""Does a mail server offer STARTTLS? One EHLO on port 25, at an address (no DNS)."""

from __future__ import annotations

import smtplib

EHLO_NAME = "riskiturva.invalid"


def offers_starttls(address: str, port: int, timeout: float) -> bool:
    """True when the EHLO reply lists STARTTLS. Connection problems propagate as OSError or
    `smtplib.SMTPException`; the caller records them as errors, never as "not offered"."""
    # An explicit local_hostname: smtplib would otherwise look our own name up.
    with smtplib.SMTP(timeout=timeout, local_hostname=EHLO_NAME) as client:
        client.connect(address, port)
        code, _ = client.ehlo()
        if code != 250:
            raise smtplib.SMTPResponseException(code, b"EHLO refused")
        return client.has_extn("starttls")
