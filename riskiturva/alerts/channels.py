"""Delivery of one rendered message: e-mail through the reports' SMTP relay, or an HTTPS
POST to a Teams, Slack-compatible or signed JSON webhook.

Every request carries `Idempotency-Key: <outbox key>`, the same on every attempt, so a
receiver can drop a repeat after a sender crashed between its send and its bookkeeping.
Webhook channels are signed: `X-Riskiturva-Timestamp` (Unix seconds, fresh on each
attempt) and `X-Riskiturva-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`;
`verify_signature` is the receiver's side, with its replay window.

A webhook URL authorises whoever holds it (Teams puts a signature in its query), so the
only part of it ever shown, logged or stored is the host name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError as _ConnectTimeout
from urllib3.exceptions import (
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from riskiturva.alerts.settings import Channel, ChannelKind
from riskiturva.config import Settings
from riskiturva.mail import DeliveryError, relay_address
from riskiturva.mail import send as send_mail
from riskiturva.resolver import DnsFailure

SIGNATURE_HEADER = "X-Riskiturva-Signature"
TIMESTAMP_HEADER = "X-Riskiturva-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_WINDOW_SECONDS = 300
# Statuses worth another attempt: the receiver is overloaded, timing out or restarting.
_TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Receipt:
    """What the receiver answered (None for e-mail: the relay's 250 is all there is)."""

    status_code: int | None = None


class HttpDeliveryError(DeliveryError):
    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        status_code: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, permanent=permanent)
        self.status_code = status_code
        self.retry_after = retry_after


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    """`v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under `key`."""
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify_signature(
    key: bytes,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    *,
    now: float | None = None,
    window: float = REPLAY_WINDOW_SECONDS,
) -> bool:
    """The receiver's check: a well-formed, fresh timestamp and a matching signature
    (compared in constant time). A request older than `window` seconds is refused even
    when its signature is right, so a captured request cannot be replayed later."""
    if not timestamp_header or not signature_header or not timestamp_header.isdigit():
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp_header)) > window:
        return False
    expected = signature(key, int(timestamp_header), body)
    return hmac.compare_digest(expected, signature_header.strip())


def send_email(message: EmailMessage, settings: Settings) -> Receipt:
    send_mail(message, settings)
    return Receipt()


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def _failure(exc: BaseException) -> str:
    """A description of a failed request that names no part of the URL."""
    if isinstance(exc, NewConnectionError):
        cause = exc.__cause__ or exc.__context__
        return f"could not connect: {type(cause).__name__ if cause else 'refused'}"
    if isinstance(exc, _ConnectTimeout | ReadTimeoutError | TimeoutError):
        return "timed out"
    if isinstance(exc, SSLError):
        reason = getattr(exc.__cause__ or exc.__context__, "reason", None) or "TLS failed"
        return f"TLS: {reason}"
    if isinstance(exc, ProtocolError):
        return "the connection broke off"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"  # without the file name or address
    return type(exc).__name__


def post(
    channel: Channel,
    payload: Mapping[str, Any],
    *,
    key: str,
    settings: Settings,
    now: float | None = None,
) -> Receipt:
    """POST the JSON payload; 2xx is delivered, other answers raise `HttpDeliveryError`."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    url = urlsplit(channel.resolved_url)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    headers = {
        "Host": host if url.port is None else f"{host}:{port}",
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": settings.user_agent,
        IDEMPOTENCY_HEADER: key,
    }
    if channel.kind is ChannelKind.WEBHOOK and channel.signing_key:
        timestamp = int(time.time() if now is None else now)
        headers[TIMESTAMP_HEADER] = str(timestamp)
        headers[SIGNATURE_HEADER] = signature(channel.signing_key, timestamp, body)
    timeout = urllib3.Timeout(connect=min(channel.timeout, 10.0), read=channel.timeout)
    try:
        address = relay_address(host, settings.resolver)
        if url.scheme == "https":
            context = ssl.create_default_context(
                cafile=str(channel.ca_file) if channel.ca_file else None
            )
            pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
                address, port, timeout=timeout, retries=False, server_hostname=host,
                assert_hostname=host, ssl_context=context,
            )  # fmt: skip
        else:
            pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        try:
            response = pool.urlopen(
                "POST", path, body=body, headers=headers, redirect=False, retries=False
            )
        finally:
            pool.close()
    except (DeliveryError, DnsFailure) as exc:  # the host has no address
        raise HttpDeliveryError(f"{channel.name} ({host}): {exc}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # these carry URLs: say less
        raise HttpDeliveryError(f"{channel.name} ({host}): {_failure(exc)}") from None
    status = response.status
    if 200 <= status < 300:
        return Receipt(status)
    raise HttpDeliveryError(
        f"{channel.name} ({host}) answered HTTP {status}",
        permanent=status not in _TRANSIENT,
        status_code=status,
        retry_after=_retry_after(response.headers.get("Retry-After")),
    )
