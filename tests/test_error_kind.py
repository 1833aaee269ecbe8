"""One mapping from a failure's cause to its error kind, for every collector (offline)."""

from __future__ import annotations

import errno
import ssl
import traceback

import dns.exception
import pytest
import urllib3.exceptions
from sslyze.errors import ServerRejectedConnection, ServerTlsConfigurationNotSupported

from riskiturva.collector import ErrorKind, error_kind


def raised(outer: type[BaseException], cause: BaseException, *args: object) -> BaseException:
    """`outer(*args)` raised while handling `cause`, as libraries wrap socket errors."""
    try:
        try:
            raise cause
        except BaseException:
            raise outer(*args)  # noqa: B904 — the implicit context is the point
    except BaseException as exc:
        return exc


SSLYZE = {"server_location": None, "network_configuration": None, "error_message": "x"}


def sslyze_error(cls: type[BaseException], cause: BaseException | None) -> BaseException:
    try:
        try:
            if cause is not None:
                raise cause
            raise cls(**SSLYZE)
        except BaseException:
            if cause is None:
                raise
            raise cls(**SSLYZE)  # noqa: B904
    except BaseException as exc:
        return exc


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (TimeoutError("timed out"), ErrorKind.TIMEOUT),
        (dns.exception.Timeout(), ErrorKind.TIMEOUT),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), ErrorKind.REFUSED),
        (ConnectionResetError(errno.ECONNRESET, "reset"), ErrorKind.RESET),
        (BrokenPipeError(errno.EPIPE, "pipe"), ErrorKind.RESET),
        (ssl.SSLError(1, "alert handshake failure"), ErrorKind.PROTOCOL),
        (OSError(errno.EHOSTUNREACH, "no route to host"), ErrorKind.UNREACHABLE),
        # sslyze raises its own errors while handling the socket's: the cause decides.
        (sslyze_error(ServerRejectedConnection, ConnectionResetError()), ErrorKind.RESET),
        (sslyze_error(ServerRejectedConnection, ConnectionRefusedError()), ErrorKind.REFUSED),
        (sslyze_error(ServerTlsConfigurationNotSupported, None), ErrorKind.PROTOCOL),
        # urllib3 likewise, and passes the socket error as an argument too.
        (
            raised(urllib3.exceptions.NewConnectionError, ConnectionRefusedError(), None, "no"),
            ErrorKind.REFUSED,
        ),
        (
            raised(urllib3.exceptions.ReadTimeoutError, TimeoutError(), None, "/", "t"),
            ErrorKind.TIMEOUT,
        ),
        (
            urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()),
            ErrorKind.RESET,
        ),
        (ValueError("nothing network-like"), ErrorKind.PROTOCOL),
    ],
)
def test_the_cause_under_a_failure_names_its_kind(failure, kind):
    assert error_kind(failure) is kind
    # The same from a captured traceback, as sslyze hands its errors over
    if not failure.args or not any(isinstance(a, BaseException) for a in failure.args):
        assert error_kind(traceback.TracebackException.from_exception(failure)) is kind


def test_with_no_known_cause_the_caller_s_default_holds():
    assert error_kind(RuntimeError("?"), default=ErrorKind.INTERNAL) is ErrorKind.INTERNAL
