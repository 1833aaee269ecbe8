"""Below sslyze's Scanner: its plugins' jobs on our own pool, cipher suites by elimination.

sslyze's Scanner tests every cipher suite it knows for every protocol version, one
handshake each: ~545 of an HTTPS endpoint's ~580 connections, 369 of them to SSL 3.0,
TLS 1.0 and 1.1, which a modern server refuses. Here, per version (two chains for TLS 1.2,
whose suites are split between nassl's legacy and modern OpenSSL):

1. one handshake offering every suite sslyze would test: a refused version ends there;
2. for an accepted version the server names the suite it chose; it is recorded (with the
   ephemeral key of that handshake), taken out of the offer, and the rest are offered
   again — split into `connections_per_server` partitions run side by side, each until
   the server refuses what is left. A version costs its accepted suites plus a few.

A suite is accepted here exactly when the server would choose it from some offer that
contains it, which is sslyze's one-suite test with more suites beside it; a handshake that
fails in any other way (a DH group too weak for the client, a name we cannot map) falls
back to sslyze's own one-suite test for what is left of its chain.

Every other scan command runs sslyze's own jobs (`scan_jobs_for_scan_command`) and result
(`result_for_completed_scan_jobs`), so its results are sslyze's. Every connection — the
connectivity check, each job, each handshake above — first takes a slot of the endpoint
(`connections_per_server`) and of the politeness limiter (per address and network, and the
process's rate of new connections), so shared hosting is never flooded through many names.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, fields
from operator import attrgetter
from traceback import TracebackException
from typing import Any

from nassl.ephemeral_key_info import EphemeralKeyInfo
from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import ClientCertificateRequested, OpenSslVerifyEnum, OpenSslVersionEnum
from sslyze import (
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ScanCommandErrorReasonEnum,
    ServerConnectivityStatusEnum,
    ServerScanRequest,
    ServerScanResult,
    ServerScanStatusEnum,
)
from sslyze.connection_helpers.tls_connection import NoCiphersAvailableBugInSSlyze
from sslyze.errors import (
    ConnectionToServerFailed,
    ConnectionToServerTimedOut,
    ServerRejectedTlsHandshake,
    ServerTlsConfigurationNotSupported,
    TlsHandshakeTimedOut,
)
from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import (
    CipherSuiteAcceptedByServer,
    CipherSuiteRejectedByServer,
    connect_with_cipher_suite,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite, CipherSuitesRepository
from sslyze.plugins.openssl_cipher_suites.implementation import CipherSuitesScanResult
from sslyze.plugins.plugin_base import ScanCommandWrongUsageError, ScanJobResult
from sslyze.plugins.scan_commands import ScanCommandsRepository
from sslyze.scanner.models import AllScanCommandsAttempts, get_scan_command_attempt_cls
from sslyze.server_connectivity import (
    ServerConnectivityInfo,
    TlsVersionEnum,
    check_connectivity_to_server,
)

from riskiturva.politeness import Politeness

CIPHER_VERSIONS = {
    ScanCommand.SSL_2_0_CIPHER_SUITES: TlsVersionEnum.SSL_2_0,
    ScanCommand.SSL_3_0_CIPHER_SUITES: TlsVersionEnum.SSL_3_0,
    ScanCommand.TLS_1_0_CIPHER_SUITES: TlsVersionEnum.TLS_1_0,
    ScanCommand.TLS_1_1_CIPHER_SUITES: TlsVersionEnum.TLS_1_1,
    ScanCommand.TLS_1_2_CIPHER_SUITES: TlsVersionEnum.TLS_1_2,
    ScanCommand.TLS_1_3_CIPHER_SUITES: TlsVersionEnum.TLS_1_3,
}
_CONNECTIVITY_ERRORS = (
    ConnectionToServerTimedOut,
    TlsHandshakeTimedOut,
    ServerRejectedTlsHandshake,
)


class _Fallback(Exception):
    """A handshake that neither chose a suite we can name nor refused: test one by one."""


class _Gate:
    """One endpoint's connection slots: its own limit, then the politeness limiter's.

    A context manager class (not a generator): sslyze's exceptions are frozen dataclasses,
    and a generator-based context manager fails setting their traceback.
    """

    def __init__(self, address: str, per_server: int, politeness: Politeness):
        self.address, self.politeness = address, politeness
        self._slots = threading.BoundedSemaphore(per_server)

    def __call__(self) -> _Gate.Held:
        return _Gate.Held(self)

    class Held:
        def __init__(self, gate: _Gate) -> None:
            self.gate = gate

        def __enter__(self) -> None:
            self.gate._slots.acquire()
            try:
                self.slot = self.gate.politeness.connection(self.gate.address)
                self.slot.__enter__()
            except BaseException:
                self.gate._slots.release()
                raise

        def __exit__(self, *exc: object) -> None:
            self.slot.__exit__(*exc)
            self.gate._slots.release()


def _legacy_tls12_names() -> frozenset[str]:
    """TLS 1.2 suites nassl offers only with its legacy OpenSSL (as sslyze decides per suite)."""
    client = LegacySslClient(
        ssl_version=OpenSslVersionEnum.TLSV1_2, ssl_verify=OpenSslVerifyEnum.NONE
    )
    client.set_cipher_list("ALL:COMPLEMENTOFALL")
    return frozenset(client.get_cipher_list())


def _chains(
    version: TlsVersionEnum, legacy_tls12: frozenset[str]
) -> list[tuple[bool, list[CipherSuite]]]:
    """(use legacy OpenSSL, suites) per chain of a version, in sslyze's order of names."""
    suites = sorted(CipherSuitesRepository.get_all_cipher_suites(version), key=attrgetter("name"))
    if version is TlsVersionEnum.TLS_1_3:
        return [(False, suites)]
    if version is not TlsVersionEnum.TLS_1_2:
        return [(True, suites)]
    legacy = [s for s in suites if s.openssl_name in legacy_tls12]
    modern = [s for s in suites if s.openssl_name not in legacy_tls12]
    return [(use_legacy, chain) for use_legacy, chain in ((True, legacy), (False, modern)) if chain]


def _offer(
    info: ServerConnectivityInfo,
    version: TlsVersionEnum,
    legacy: bool,
    suites: Sequence[CipherSuite],
) -> CipherSuiteAcceptedByServer | None:
    """One handshake offering `suites`: the one the server chose, or None if it refused."""
    connection = info.get_preconfigured_tls_connection(
        override_tls_version=version, should_use_legacy_openssl=legacy
    )
    names = ":".join(s.openssl_name for s in suites)
    client = connection.ssl_client
    if version is TlsVersionEnum.TLS_1_3 and not legacy:
        client.set_ciphersuites(names)  # type: ignore[attr-defined]
    else:
        client.set_cipher_list(names)
    try:
        try:
            connection.connect()
        except ClientCertificateRequested:
            pass  # the suite was chosen before the server asked for a certificate
        except (ServerRejectedTlsHandshake, TlsHandshakeTimedOut):
            return None  # as sslyze's one-suite test counts them
        except ServerTlsConfigurationNotSupported as exc:
            raise _Fallback from exc
        chosen = client.get_current_cipher_name()
        key: EphemeralKeyInfo | None = client.get_ephemeral_key()
    finally:
        connection.close()
    by_name = {s.openssl_name: s for s in suites}
    if chosen not in by_name:
        raise _Fallback(f"the server chose {chosen!r}, which was not offered")
    return CipherSuiteAcceptedByServer(cipher_suite=by_name[chosen], ephemeral_key=key)


@dataclass
class _Chain:
    """What is known of one chain: accepted suites, and those still to ask about."""

    accepted: list[CipherSuiteAcceptedByServer]
    left: list[CipherSuite]
    rejected: list[CipherSuiteRejectedByServer]


def _eliminate(
    info: ServerConnectivityInfo,
    version: TlsVersionEnum,
    legacy: bool,
    suites: list[CipherSuite],
    gate: _Gate,
    first_only: bool = False,
) -> _Chain:
    """Offer `suites` until refused (or once, with `first_only`), removing each one chosen."""
    chain = _Chain([], list(suites), [])
    while chain.left:
        try:
            with gate():
                chosen = _offer(info, version, legacy, chain.left)
        except NoCiphersAvailableBugInSSlyze:
            chain.left = []  # nassl cannot offer any of them: sslyze skips such suites too
            break
        except _Fallback:
            for suite in chain.left:
                with gate():
                    one = _one_suite(info, version, suite)
                if isinstance(one, CipherSuiteAcceptedByServer):
                    chain.accepted.append(one)
                elif one is not None:
                    chain.rejected.append(one)
            chain.left = []
            break
        if chosen is None:
            message = "refused every suite offered with it"
            chain.rejected += [CipherSuiteRejectedByServer(s, message) for s in chain.left]
            chain.left = []
            break
        chain.accepted.append(chosen)
        chain.left.remove(chosen.cipher_suite)
        if first_only:
            break
    return chain


def _one_suite(
    info: ServerConnectivityInfo, version: TlsVersionEnum, suite: CipherSuite
) -> CipherSuiteAcceptedByServer | CipherSuiteRejectedByServer | None:
    try:
        return connect_with_cipher_suite(info, version, suite)
    except NoCiphersAvailableBugInSSlyze:
        return None


def _attempt(command: ScanCommand, compute: Callable[[], Any]) -> Any:
    """sslyze's attempt for `command`: its result, or the error as sslyze would record it."""
    cls = get_scan_command_attempt_cls(command)
    error: Exception
    try:
        return cls(
            status=ScanCommandAttemptStatusEnum.COMPLETED,
            error_reason=None,
            error_trace=None,
            result=compute(),
        )
    except ScanCommandWrongUsageError as exc:
        reason, error = ScanCommandErrorReasonEnum.WRONG_USAGE, exc
    except ClientCertificateRequested as exc:
        reason, error = ScanCommandErrorReasonEnum.CLIENT_CERTIFICATE_NEEDED, exc
    except _CONNECTIVITY_ERRORS as exc:
        reason, error = ScanCommandErrorReasonEnum.CONNECTIVITY_ISSUE, exc
    except Exception as exc:
        reason, error = ScanCommandErrorReasonEnum.BUG_IN_SSLYZE, exc
    return cls(
        status=ScanCommandAttemptStatusEnum.ERROR,
        error_reason=reason,
        error_trace=TracebackException.from_exception(error),
        result=None,
    )


def _unreachable(request: ServerScanRequest, error: Exception) -> ServerScanResult:
    """No scan of the server: `error` as sslyze records a failed connectivity check."""
    return ServerScanResult(
        uuid=request.uuid,
        server_location=request.server_location,
        network_configuration=request.network_configuration,
        connectivity_status=ServerConnectivityStatusEnum.ERROR,
        connectivity_error_trace=TracebackException.from_exception(error),
        connectivity_result=None,
        scan_status=ServerScanStatusEnum.ERROR_NO_CONNECTIVITY,
        scan_result=None,
    )


class Engine:
    """Scans servers with sslyze's plugins on two bounded pools, politely.

    `servers` threads each run one server's scan (they wait); `connections` threads each
    hold one connection at a time. Long-lived: one Engine may scan many tasks.
    """

    def __init__(
        self, concurrent_servers: int, connections_per_server: int, politeness: Politeness
    ):
        self.concurrent_servers = concurrent_servers
        self.connections_per_server = connections_per_server
        self.politeness = politeness
        self._legacy_tls12 = _legacy_tls12_names()

    def scan(self, requests: Sequence[ServerScanRequest]) -> Iterator[ServerScanResult]:
        """Each request's result, as servers complete."""
        if not requests:
            return
        servers = min(len(requests), self.concurrent_servers)
        with (
            ThreadPoolExecutor(servers, thread_name_prefix="tls-server") as server_pool,
            ThreadPoolExecutor(
                # Threads wait on their endpoint's and the limiter's slots: room for that.
                2 * servers * self.connections_per_server,
                thread_name_prefix="tls-connection",
            ) as pool,
        ):
            futures = {server_pool.submit(self._server, r, pool): r for r in requests}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # a bug here costs this endpoint, not the task
                    yield _unreachable(futures[future], exc)

    def _server(self, request: ServerScanRequest, pool: ThreadPoolExecutor) -> ServerScanResult:
        location, network = request.server_location, request.network_configuration
        address = location.ip_address or location.hostname  # scan_requests always sets it
        gate = _Gate(address, self.connections_per_server, self.politeness)
        try:
            with gate():
                probing = check_connectivity_to_server(location, network)
        except ConnectionToServerFailed as exc:
            return _unreachable(request, exc)
        info = ServerConnectivityInfo(
            server_location=location, network_configuration=network, tls_probing_result=probing
        )
        ciphers = {c: v for c, v in CIPHER_VERSIONS.items() if c in request.scan_commands}
        others = [c for c in request.scan_commands if c not in ciphers]
        jobs: dict[ScanCommand, list[Future[ScanJobResult]] | Exception] = {}
        for command in others:  # started first: they are few and some are slow (ROBOT)
            jobs[command] = self._queue_jobs(command, request, info, gate, pool)
        suites = {c: self._suites(v, info, gate, pool) for c, v in ciphers.items()}
        owner = {first: scan for scan in suites.values() for first in scan.firsts}
        for first in as_completed(owner):
            with contextlib.suppress(Exception):  # an error is recorded by the result below
                owner[first].continue_chain(first, pool, self.connections_per_server)
        attempts: dict[str, Any] = {}
        for command, queued in jobs.items():
            attempts[command.value] = _attempt(
                command, functools.partial(self._result, command, info, queued)
            )
        for command, scan in suites.items():
            attempts[command.value] = _attempt(command, scan.result)
        for field in fields(AllScanCommandsAttempts):
            if field.name not in attempts:
                attempts[field.name] = get_scan_command_attempt_cls(ScanCommand(field.name))(
                    status=ScanCommandAttemptStatusEnum.NOT_SCHEDULED,
                    error_reason=None,
                    error_trace=None,
                    result=None,
                )
        return ServerScanResult(
            uuid=request.uuid,
            server_location=location,
            network_configuration=network,
            connectivity_status=ServerConnectivityStatusEnum.COMPLETED,
            connectivity_error_trace=None,
            connectivity_result=probing,
            scan_status=ServerScanStatusEnum.COMPLETED,
            scan_result=AllScanCommandsAttempts(**attempts),
        )

    def _queue_jobs(
        self,
        command: ScanCommand,
        request: ServerScanRequest,
        info: ServerConnectivityInfo,
        gate: _Gate,
        pool: ThreadPoolExecutor,
    ) -> list[Future[ScanJobResult]] | Exception:
        implementation = ScanCommandsRepository.get_implementation_cls(command)
        extra = getattr(request.scan_commands_extra_arguments, command.value, None)
        try:
            jobs = implementation.scan_jobs_for_scan_command(
                server_info=info, extra_arguments=extra
            )
        except Exception as exc:
            return exc

        def run(function: Callable[..., Any], arguments: Sequence[Any]) -> ScanJobResult:
            try:
                with gate():
                    return ScanJobResult(_return_value=function(*arguments), _exception=None)
            except Exception as exc:
                return ScanJobResult(_return_value=None, _exception=exc)

        return [pool.submit(run, j.function_to_call, j.function_arguments) for j in jobs]

    def _result(
        self,
        command: ScanCommand,
        info: ServerConnectivityInfo,
        queued: list[Future[ScanJobResult]] | Exception,
    ) -> Any:
        if isinstance(queued, Exception):
            raise queued
        implementation = ScanCommandsRepository.get_implementation_cls(command)
        return implementation.result_for_completed_scan_jobs(
            server_info=info, scan_job_results=[f.result() for f in queued]
        )

    def _suites(
        self,
        version: TlsVersionEnum,
        info: ServerConnectivityInfo,
        gate: _Gate,
        pool: ThreadPoolExecutor,
    ) -> _VersionScan:
        """Start the version check (the first handshake of each chain)."""
        chains = _chains(version, self._legacy_tls12)
        firsts = [
            pool.submit(_eliminate, info, version, legacy, suites, gate, True)
            for legacy, suites in chains
        ]
        return _VersionScan(version, info, gate, [legacy for legacy, _ in chains], firsts)


@dataclass
class _VersionScan:
    """One version's enumeration: its version check, then its partitions, on the pool."""

    version: TlsVersionEnum
    info: ServerConnectivityInfo
    gate: _Gate
    legacy: list[bool]
    firsts: list[Future[_Chain]]

    def __post_init__(self) -> None:
        self.rests: list[Future[_Chain]] = []

    def continue_chain(self, first: Future[_Chain], pool: ThreadPoolExecutor, parts: int) -> None:
        """After an accepted version check, the rest of its chain in `parts` partitions."""
        chain = first.result()
        parts = min(parts, len(chain.left))
        legacy = self.legacy[self.firsts.index(first)]
        for part in range(parts):
            suites = chain.left[part::parts]
            self.rests.append(
                pool.submit(_eliminate, self.info, self.version, legacy, suites, self.gate)
            )
        chain.left = []

    def result(self) -> CipherSuitesScanResult:
        found = [f.result() for f in (*self.firsts, *self.rests)]
        accepted = list(itertools.chain.from_iterable(c.accepted for c in found))
        rejected = list(itertools.chain.from_iterable(c.rejected for c in found))
        return CipherSuitesScanResult(
            tls_version_used=self.version,
            accepted_cipher_suites=sorted(accepted, key=_by_name, reverse=True),
            rejected_cipher_suites=sorted(rejected, key=_by_name, reverse=True),
        )


_by_name = attrgetter("cipher_suite.name")
