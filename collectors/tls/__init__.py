"""The TLS collector: protocols, suites, certificates and known flaws of every endpoint.

HTTPS endpoints come from the organisation's names (resolved by the runner); mail domains
are expanded here into their MX hosts on port 25 (STARTTLS). One engine (`_engine`: sslyze's
plugins, cipher suites by elimination, every connection through `context.limits`) scans all
endpoints of a task. A name with several in-scope addresses is scanned once, at its lowest
address (IPv4 before IPv6, then numerically); the others are kept in the facts.
"""

from __future__ import annotations

import ipaddress
import smtplib
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from collectors.tls import _probe, _scan, _smtp, rules
from collectors.tls._engine import Engine
from collectors.tls._scan import Endpoint, ScanOptions
from collectors.tls.facts import TlsFacts
from collectors.tls.options import TLSOptions
from collectors.tls.trust import TrustAnchors
from riskiturva.collector import (
    ChangeDraft,
    ErrorKind,
    FindingDraft,
    ScanContext,
    ScanTask,
    SubjectObservation,
    SubjectStatus,
    Target,
    TargetError,
    error_kind,
)
from riskiturva.config import AssetKind
from riskiturva.politeness import Politeness
from riskiturva.resolver import DnsFailure

SMTP_PORT = 25
HTTPS_PORT = 443


_CHECKED = "protocols, cipher suites, certificate chain and name, known flaws"


class TLSCollector:
    name: ClassVar[str] = "tls"
    asset_kinds: ClassVar[frozenset[AssetKind]] = frozenset(
        {AssetKind.DOMAIN, AssetKind.HOST, AssetKind.URL, AssetKind.MAIL_DOMAIN}
    )
    address_kinds: ClassVar[frozenset[AssetKind]] = frozenset(
        {AssetKind.DOMAIN, AssetKind.HOST, AssetKind.URL}
    )
    check_ids: ClassVar[frozenset[str]] = rules.CHECK_IDS
    options_model: ClassVar[type[TLSOptions]] = TLSOptions
    coverage: ClassVar[Mapping[AssetKind, str]] = {
        AssetKind.DOMAIN: f"HTTPS on port {HTTPS_PORT} at the name's lowest in-scope address:"
        f" {_CHECKED}",
        AssetKind.HOST: f"as for `domain`: HTTPS on port {HTTPS_PORT}",
        AssetKind.URL: f"HTTPS on the URL's port (default {HTTPS_PORT}) of its host name",
        AssetKind.MAIL_DOMAIN: f"STARTTLS on port {SMTP_PORT} of each in-scope MX host: {_CHECKED}",
    }

    def collect(self, task: ScanTask, context: ScanContext) -> Iterable[SubjectObservation]:
        endpoints, errors = plan_endpoints(task, context)
        yield from errors
        web = [e for e in endpoints if e.service == "https"]
        mail: list[Endpoint] = []
        for endpoint, outcome in _probe_starttls(
            [e for e in endpoints if e.service == "smtp"], context
        ):
            if isinstance(outcome, TargetError):
                yield _error(endpoint, outcome)
            elif outcome:
                mail.append(endpoint)
            else:
                facts = TlsFacts(
                    endpoint.hostname,
                    endpoint.address,
                    endpoint.port,
                    "smtp",
                    context.clock(),
                    starttls_offered=False,
                    other_addresses=endpoint.other_addresses,
                )
                yield SubjectObservation(endpoint.subject, endpoint.asset, SubjectStatus.OK, facts)
        settings = context.settings
        tls_options = context.options(self.name, TLSOptions)
        timeout = tls_options.network_timeout or settings.timeouts.connect
        probed = _probe_hello(web, timeout, settings.concurrency.targets, context.limits)
        yield from (_error(endpoint, error) for endpoint, error in probed if error is not None)
        answering = [endpoint for endpoint, error in probed if error is None]
        anchors = TrustAnchors.from_settings(context.trusted_ca_files)
        with tempfile.TemporaryDirectory(prefix="riskiturva-tls-") as scratch:
            options = ScanOptions(
                user_agent=settings.user_agent,
                network_timeout=timeout,
                max_retries=tls_options.max_retries,
                custom_ca_file=anchors.combined_pem(Path(scratch) / "extra-ca.pem")
                if anchors.extra_files
                else None,
            )
            engine = Engine(
                settings.concurrency.targets,
                settings.concurrency.per_host_connections,
                context.limits,
            )
            results = _scan.run(
                [*answering, *mail], options, anchors.store(), context.clock(), engine
            )
            for endpoint, scanned in results:
                if isinstance(scanned, TargetError):
                    yield _error(endpoint, scanned)
                else:
                    status = SubjectStatus.PARTIAL if scanned.errors else SubjectStatus.OK
                    yield SubjectObservation(endpoint.subject, endpoint.asset, status, scanned)

    def judge(self, observation: SubjectObservation) -> list[FindingDraft]:
        return rules.judge(observation.facts)

    def changes(self, previous: object, observation: SubjectObservation) -> list[ChangeDraft]:
        return rules.new_certificate(previous, observation.facts)


def _error(endpoint: Endpoint, error: TargetError) -> SubjectObservation:
    return SubjectObservation(endpoint.subject, endpoint.asset, SubjectStatus.ERROR, error=error)


def _address_order(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)


def _https_port(target: Target) -> int:
    if target.url:
        parts = urlsplit(target.url)
        if parts.scheme == "https" and parts.port:
            return parts.port
    return HTTPS_PORT


def plan_endpoints(
    task: ScanTask, context: ScanContext
) -> tuple[list[Endpoint], list[SubjectObservation]]:
    """The task's targets as endpoints (one per subject), plus errors met on the way."""
    addresses: dict[tuple[str, int, str], list[str]] = {}
    assets: dict[tuple[str, int, str], str] = {}
    errors: list[SubjectObservation] = []
    for target in task.targets:
        if target.asset_kind is AssetKind.MAIL_DOMAIN:
            for mx_host, found, error in _mail_exchangers(target, task.organisation, context):
                key = (mx_host, SMTP_PORT, "smtp")
                if error is not None:
                    errors.append(error)
                    continue
                assets.setdefault(key, target.asset)
                addresses.setdefault(key, []).extend(found)
        elif target.name and target.address:
            key = (target.name, _https_port(target), "https")
            assets.setdefault(key, target.asset)
            addresses.setdefault(key, []).append(target.address)
    endpoints = []
    for (hostname, port, service), found in addresses.items():
        if not found:
            continue
        ordered = sorted(set(found), key=_address_order)
        endpoints.append(
            Endpoint(
                hostname,
                ordered[0],
                port,
                service,
                assets[(hostname, port, service)],
                tuple(ordered[1:]),
            )
        )
    return endpoints, errors


def _mail_exchangers(
    target: Target, organisation: str, context: ScanContext
) -> Iterator[tuple[str, list[str], SubjectObservation | None]]:
    """(MX host, its in-scope addresses, an error observation or None) for a mail domain."""
    domain = target.name or target.asset

    def error(subject: str, kind: ErrorKind, message: str) -> SubjectObservation:
        return SubjectObservation(
            subject, target.asset, SubjectStatus.ERROR, error=TargetError(kind, message)
        )

    try:
        answer = context.resolver.lookup(domain, "MX")
    except DnsFailure as exc:
        yield domain, [], error(domain, ErrorKind.DNS_FAILURE, f"MX lookup failed: {exc}")
        return
    hosts = sorted({r.exchange.to_text(omit_final_dot=True).lower() for r in answer or ()})
    for host in hosts:
        if host in ("", "."):  # a null MX (RFC 7505): the domain takes no mail
            continue
        subject = f"{host}:{SMTP_PORT}"
        try:
            found = context.resolver.addresses(host)
        except DnsFailure as exc:
            yield host, [], error(subject, ErrorKind.DNS_FAILURE, str(exc))
            continue
        if not found:
            yield host, [], error(subject, ErrorKind.DNS_FAILURE, f"{host} has no addresses")
            continue
        allowed = [a for a in found if context.scope.allows_address(organisation, a)]
        for address in sorted(set(found) - set(allowed)):
            yield (
                host,
                [],
                error(
                    subject,
                    ErrorKind.OUT_OF_SCOPE,
                    f"MX {host} of {domain} resolves to {address}, outside the declared networks",
                ),
            )
        if allowed:
            yield host, allowed, None


def _probe_hello(
    endpoints: list[Endpoint], timeout: float, workers: int, limits: Politeness
) -> list[tuple[Endpoint, TargetError | None]]:
    """One ClientHello per HTTPS endpoint: silent, resetting or refusing ones skip sslyze."""
    if not endpoints:
        return []

    def probe(endpoint: Endpoint) -> TargetError | None:
        with limits.connection(endpoint.address):
            return _probe.hello_unanswered(
                endpoint.address, endpoint.port, endpoint.hostname, timeout
            )

    with ThreadPoolExecutor(max_workers=min(len(endpoints), workers)) as pool:
        return list(zip(endpoints, pool.map(probe, endpoints), strict=True))


def _probe_starttls(
    endpoints: list[Endpoint], context: ScanContext
) -> Iterator[tuple[Endpoint, bool | TargetError]]:
    timeout = context.settings.timeouts.connect

    def probe(endpoint: Endpoint) -> bool | TargetError:
        try:
            with context.limits.connection(endpoint.address):
                return _smtp.offers_starttls(endpoint.address, endpoint.port, timeout)
        except (smtplib.SMTPException, OSError) as exc:
            return TargetError(error_kind(exc), f"SMTP: {str(exc) or type(exc).__name__}")

    if not endpoints:
        return
    workers = min(len(endpoints), context.settings.concurrency.targets)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from zip(endpoints, pool.map(probe, endpoints), strict=True)
