"""Driving sslyze: scan requests for all endpoints of a task, results turned into facts.

sslyze is given the address to connect to and the name for SNI, so it never resolves
anything itself. The requests run on `_engine.Engine` (sslyze's plugins on our pool, cipher
suites by elimination, every connection through the politeness limiter). Connection
failures and failed scan commands become data.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import Store
from nassl.ephemeral_key_info import DhEphemeralKeyInfo, EcDhEphemeralKeyInfo
from sslyze import (
    CertificateInfoExtraArgument,
    ProtocolWithOpportunisticTlsEnum,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ScanCommandsExtraArguments,
    ServerConnectivityStatusEnum,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanResult,
    ServerScanStatusEnum,
)
from sslyze.mozilla_tls_profile.tls_config_checker import (
    MozillaTlsConfiguration,
    ServerNotCompliantWithTlsConfiguration,
    ServerScanResultIncomplete,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)

from collectors.tls import _certificate
from collectors.tls._engine import Engine
from collectors.tls._smtp import EHLO_NAME
from collectors.tls.facts import (
    AcceptedSuite,
    CommandError,
    TlsFacts,
    Vulnerabilities,
)
from collectors.tls.grade import grade
from riskiturva.collector import ErrorKind, TargetError, error_kind

# Mozilla's CA bundle, as sslyze loads it, holds a certificate with a non-positive serial
# number; cryptography warns about it on every scan. It is not the scanned server's.
warnings.filterwarnings(
    "ignore",
    message="Parsed a serial number which wasn't positive",
    category=CryptographyDeprecationWarning,
)

CIPHER_COMMANDS = {
    "SSLv2": ScanCommand.SSL_2_0_CIPHER_SUITES,
    "SSLv3": ScanCommand.SSL_3_0_CIPHER_SUITES,
    "TLSv1.0": ScanCommand.TLS_1_0_CIPHER_SUITES,
    "TLSv1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
    "TLSv1.2": ScanCommand.TLS_1_2_CIPHER_SUITES,
    "TLSv1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
}
# Everything the rules and the Mozilla profile need; no resumption or early-data tests.
SCAN_COMMANDS = frozenset(
    {
        *CIPHER_COMMANDS.values(),
        ScanCommand.CERTIFICATE_INFO,
        ScanCommand.ELLIPTIC_CURVES,
        ScanCommand.HEARTBLEED,
        ScanCommand.ROBOT,
        ScanCommand.OPENSSL_CCS_INJECTION,
        ScanCommand.SESSION_RENEGOTIATION,
        ScanCommand.TLS_COMPRESSION,
        ScanCommand.TLS_FALLBACK_SCSV,
        ScanCommand.TLS_EXTENDED_MASTER_SECRET,
    }
)
HTTPS_ONLY_COMMANDS = frozenset({ScanCommand.HTTP_HEADERS})  # HSTS, for the grade's A+


@dataclass(frozen=True)
class Endpoint:
    """One name at one address and port; the subject is `hostname:port`."""

    hostname: str
    address: str
    port: int
    service: str  # "https" or "smtp"
    asset: str
    other_addresses: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        return f"{self.hostname}:{self.port}"


@dataclass(frozen=True)
class ScanOptions:
    user_agent: str
    network_timeout: float  # per connection and answer; sslyze takes whole seconds
    max_retries: int  # further attempts after a timeout
    custom_ca_file: Path | None  # the extra CA files, combined


def scan_requests(endpoints: Sequence[Endpoint], options: ScanOptions) -> list[ServerScanRequest]:
    extra = (
        ScanCommandsExtraArguments(
            certificate_info=CertificateInfoExtraArgument(custom_ca_file=options.custom_ca_file)
        )
        if options.custom_ca_file
        else ScanCommandsExtraArguments()
    )
    requests = []
    for endpoint in endpoints:
        smtp = endpoint.service == "smtp"
        requests.append(
            ServerScanRequest(
                server_location=ServerNetworkLocation(
                    endpoint.hostname, endpoint.port, ip_address=endpoint.address
                ),
                network_configuration=ServerNetworkConfiguration(
                    tls_server_name_indication=endpoint.hostname,
                    tls_opportunistic_encryption=ProtocolWithOpportunisticTlsEnum.SMTP
                    if smtp
                    else None,
                    smtp_ehlo_hostname=EHLO_NAME if smtp else None,
                    http_user_agent=None if smtp else options.user_agent,
                    network_timeout=max(1, math.ceil(options.network_timeout)),
                    # sslyze counts attempts, the first one included.
                    network_max_retries=options.max_retries + 1,
                ),
                scan_commands=set(SCAN_COMMANDS if smtp else SCAN_COMMANDS | HTTPS_ONLY_COMMANDS),
                scan_commands_extra_arguments=extra,
            )
        )
    return requests


def run(
    endpoints: Sequence[Endpoint],
    options: ScanOptions,
    store: Store,
    now: dt.datetime,
    engine: Engine,
) -> Iterator[tuple[Endpoint, TlsFacts | TargetError]]:
    """Scan every endpoint on `engine`; yield facts or the error, as results arrive."""
    requests = scan_requests(endpoints, options)
    by_uuid = {r.uuid: e for r, e in zip(requests, endpoints, strict=True)}
    for result in engine.scan(requests):
        endpoint = by_uuid[result.uuid]
        yield endpoint, to_facts(endpoint, result, store, now)


def _describe(trace: Any) -> str:
    return "".join(trace.format_exception_only()).strip() if trace else "unknown error"


def connectivity_error(result: ServerScanResult) -> TargetError:
    """Why sslyze could not connect, by the cause under its exception (see `error_kind`).

    A timeout, refusal or reset under sslyze's own errors is named as such; what remains
    (no TLS version in common, STARTTLS rejected, a handshake refused) is a protocol error.
    """
    trace = result.connectivity_error_trace
    if trace is None:
        return TargetError(ErrorKind.INTERNAL, "sslyze reported no connectivity and no reason")
    return TargetError(error_kind(trace, default=ErrorKind.PROTOCOL), _describe(trace))


def to_facts(
    endpoint: Endpoint, result: ServerScanResult, store: Store, now: dt.datetime
) -> TlsFacts | TargetError:
    """sslyze's result for one endpoint as facts, or the reason nothing could be checked."""
    if (
        result.scan_status is ServerScanStatusEnum.ERROR_NO_CONNECTIVITY
        or result.connectivity_status is ServerConnectivityStatusEnum.ERROR
        or not result.scan_result
    ):
        return connectivity_error(result)
    attempts = result.scan_result
    errors: list[CommandError] = []

    def completed(command: ScanCommand) -> Any:
        attempt = getattr(attempts, command.value)
        if attempt.status is ScanCommandAttemptStatusEnum.COMPLETED:
            return attempt.result
        if attempt.status is ScanCommandAttemptStatusEnum.ERROR:
            reason = attempt.error_reason.value if attempt.error_reason else "ERROR"
            message = f"{reason}: {_describe(attempt.error_trace)}"
            errors.append(CommandError(command.value, message))
        return None

    tested: list[str] = []
    offered: list[str] = []
    suites: list[AcceptedSuite] = []
    for protocol, command in CIPHER_COMMANDS.items():
        ciphers = completed(command)
        if ciphers is None:
            continue
        tested.append(protocol)
        if ciphers.is_tls_version_supported:
            offered.append(protocol)
        suites.extend(_suite(protocol, accepted) for accepted in ciphers.accepted_cipher_suites)

    curves_result = completed(ScanCommand.ELLIPTIC_CURVES)
    curves = None
    if curves_result is not None:
        curves = tuple(c.name for c in curves_result.supported_curves or ())

    certificate = None
    cert_info = completed(ScanCommand.CERTIFICATE_INFO)
    if cert_info is not None and cert_info.certificate_deployments:
        deployment = cert_info.certificate_deployments[0]
        certificate = _certificate.analyse(
            deployment.received_certificate_chain,
            endpoint.hostname,
            store,
            ocsp_stapled=deployment.ocsp_response is not None,
            now=now,
        )

    def value(command: ScanCommand, attribute: str) -> Any:
        found = completed(command)
        return getattr(found, attribute) if found is not None else None

    robot = completed(ScanCommand.ROBOT)
    vulnerabilities = Vulnerabilities(
        heartbleed=value(ScanCommand.HEARTBLEED, "is_vulnerable_to_heartbleed"),
        robot=robot.robot_result.name if robot is not None else None,
        ccs_injection=value(ScanCommand.OPENSSL_CCS_INJECTION, "is_vulnerable_to_ccs_injection"),
        secure_renegotiation=value(
            ScanCommand.SESSION_RENEGOTIATION, "supports_secure_renegotiation"
        ),
        client_renegotiation_dos=value(
            ScanCommand.SESSION_RENEGOTIATION, "is_vulnerable_to_client_renegotiation_dos"
        ),
        compression=value(ScanCommand.TLS_COMPRESSION, "supports_compression"),
        fallback_scsv=value(ScanCommand.TLS_FALLBACK_SCSV, "supports_fallback_scsv"),
    )
    completed(ScanCommand.TLS_EXTENDED_MASTER_SECRET)  # records an error, if any
    hsts_max_age = None
    if endpoint.service == "https":
        headers = completed(ScanCommand.HTTP_HEADERS)
        hsts = headers.strict_transport_security_header if headers is not None else None
        hsts_max_age = hsts.max_age if hsts is not None else None

    facts = TlsFacts(
        hostname=endpoint.hostname,
        address=endpoint.address,
        port=endpoint.port,
        service=endpoint.service,
        scanned_at=now,
        starttls_offered=True if endpoint.service == "smtp" else None,
        protocols_tested=tuple(tested),
        protocols_offered=tuple(offered),
        suites=tuple(suites),
        curves=curves,
        certificate=certificate,
        vulnerabilities=vulnerabilities,
        hsts_max_age=hsts_max_age,
        mozilla_intermediate_issues=_mozilla_issues(result),
        errors=tuple(errors),
        other_addresses=endpoint.other_addresses,
    )
    return replace(facts, grade=grade(facts))


def _suite(protocol: str, accepted: Any) -> AcceptedSuite:
    suite, key = accepted.cipher_suite, accepted.ephemeral_key
    kx_type = kx_curve = None
    kx_bits = None
    if isinstance(key, EcDhEphemeralKeyInfo):
        kx_type, kx_bits, kx_curve = "ECDH", key.size, key.curve_name
    elif isinstance(key, DhEphemeralKeyInfo):
        kx_type, kx_bits = "DH", key.size
    return AcceptedSuite(
        protocol=protocol,
        name=suite.name,
        key_bits=suite.key_size,
        anonymous=suite.is_anonymous,
        kx_type=kx_type,
        kx_bits=kx_bits,
        kx_curve=kx_curve,
    )


_SET_LITERAL = re.compile(r"\{([^{}]*)\}")


def _sorted_sets(text: str) -> str:
    """sslyze prints Python sets (`{'b', 'a'}`) in hash order: sort them so evidence is stable."""
    return _SET_LITERAL.sub(
        lambda m: "{" + ", ".join(sorted(p.strip() for p in m.group(1).split(","))) + "}", text
    )


def _mozilla_issues(result: ServerScanResult) -> dict[str, str] | None:
    """Deviations from Mozilla's intermediate profile ({} if none; None if not checkable)."""
    profile = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
    try:
        check_server_against_tls_configuration(result, profile)
    except ServerNotCompliantWithTlsConfiguration as exc:
        return {name: _sorted_sets(text) for name, text in exc.issues.items()}
    except ServerScanResultIncomplete:
        return None
    return {}
