"""Does an HTTPS endpoint answer a TLS ClientHello at all? One handshake, before sslyze.

sslyze tries eleven handshakes before it gives up on a server, and on one that accepts TCP
and then says nothing it waits its network timeout for each, and reports "no TLS version
and cipher suite supported", a verdict that hides the cause. One hello here, with the most
widely accepted offer OpenSSL can make, tells a silent, resetting or refusing endpoint from
one that answers (with a ServerHello or an alert); only the latter goes on to sslyze.
"""

from __future__ import annotations

import socket
import ssl

from riskiturva.collector import ErrorKind, TargetError, error_kind


def _widest_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # certificates are judged later, from sslyze's chain
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def hello_unanswered(address: str, port: int, hostname: str, timeout: float) -> TargetError | None:
    """The error when the endpoint does not answer a ClientHello within `timeout`; else None."""
    try:
        raw = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        kind = error_kind(exc, default=ErrorKind.UNREACHABLE)
        return TargetError(kind, f"TCP connection to {address}:{port}: {str(exc) or 'timed out'}")
    with raw:
        try:
            with _widest_context().wrap_socket(raw, server_hostname=hostname):
                return None
        except ssl.SSLError:
            return None  # it answered: an alert, or TLS we do not speak (sslyze tries harder)
        except OSError as exc:
            kind = error_kind(exc, default=ErrorKind.UNREACHABLE)
            if kind is ErrorKind.TIMEOUT:
                message = f"accepted, then no answer to a TLS ClientHello in {timeout:g} s"
            else:
                message = f"TLS ClientHello: {exc}"
            return TargetError(kind, message)
