"""The web collector: HTTP→HTTPS redirect, security headers, cookies, banner, security.txt,
and the software a site names (headers, generator tags, CMS version files).

Each host name is fetched at one address (the lowest in-scope one, as the TLS collector
does) with the Host header and SNI set to the name. Certificate failures do not stop the
header checks: they are recorded as facts here and judged by the TLS collector.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from urllib3.exceptions import SSLError

from collectors.tls.trust import TrustAnchors
from collectors.web import _fetch, rules, software
from collectors.web.facts import Fetch, WebFacts
from riskiturva.collector import (
    ErrorKind,
    FindingDraft,
    ScanContext,
    ScanTask,
    SubjectObservation,
    SubjectStatus,
    TargetError,
)
from riskiturva.config import AssetKind, CollectorOptions
from riskiturva.intel.software import Software, SoftwareSighting, best_per_product
from riskiturva.resolver import DnsFailure


class WebOptions(CollectorOptions):
    """`[settings.collectors.web]`: the web collector has no options of its own yet (it uses
    `settings.timeouts`, `settings.user_agent` and `settings.tls`)."""


_WEB_CHECKS = (
    "HTTP (port 80) to HTTPS (443) redirect, security headers, cookie flags, server banner,"
    " /.well-known/security.txt, at the name's lowest in-scope address"
)


@dataclass(frozen=True)
class _Host:
    name: str
    address: str
    asset: str
    other_addresses: tuple[str, ...]


class WebCollector:
    name: ClassVar[str] = "web"
    asset_kinds: ClassVar[frozenset[AssetKind]] = frozenset(
        {AssetKind.DOMAIN, AssetKind.HOST, AssetKind.URL}
    )
    address_kinds: ClassVar[frozenset[AssetKind]] = asset_kinds
    check_ids: ClassVar[frozenset[str]] = rules.CHECK_IDS
    options_model: ClassVar[type[WebOptions]] = WebOptions
    coverage: ClassVar[Mapping[AssetKind, str]] = {
        AssetKind.DOMAIN: _WEB_CHECKS,
        AssetKind.HOST: _WEB_CHECKS,
        AssetKind.URL: f"the URL's host name, as a host: {_WEB_CHECKS}",
    }

    def collect(self, task: ScanTask, context: ScanContext) -> Iterable[SubjectObservation]:
        settings = context.settings
        client = _fetch.Client(
            user_agent=settings.user_agent,
            connect_timeout=settings.timeouts.connect,
            read_timeout=settings.timeouts.read,
            verifying=TrustAnchors.from_settings(context.trusted_ca_files).ssl_context(),
            limits=context.limits,
        )
        hosts = _hosts(task)
        if not hosts:
            return

        def locate(name: str) -> str | None:
            if not context.scope.allows_name(task.organisation, name):
                return None
            try:
                found = context.resolver.addresses(name)
            except DnsFailure:
                return None
            allowed = [a for a in found if context.scope.allows_address(task.organisation, a)]
            return min(allowed, key=_address_order) if allowed else None

        def visit(host: _Host) -> SubjectObservation:
            return _observe(host, client, locate, context)

        with ThreadPoolExecutor(max_workers=min(len(hosts), settings.concurrency.targets)) as pool:
            yield from pool.map(visit, hosts)

    def judge(self, observation: SubjectObservation) -> list[FindingDraft]:
        return rules.judge(observation.facts)

    def software(self, observation: SubjectObservation) -> list[SoftwareSighting]:
        return list(observation.facts.software)


def _address_order(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)


def _hosts(task: ScanTask) -> list[_Host]:
    addresses: dict[str, list[str]] = {}
    assets: dict[str, str] = {}
    for target in task.targets:
        if target.name and target.address:
            addresses.setdefault(target.name, []).append(target.address)
            assets.setdefault(target.name, target.asset)
    hosts = []
    for name, found in addresses.items():
        ordered = sorted(set(found), key=_address_order)
        hosts.append(_Host(name, ordered[0], assets[name], tuple(ordered[1:])))
    return hosts


def _observe(
    host: _Host, client: _fetch.Client, locate: _fetch.Locate, context: ScanContext
) -> SubjectObservation:
    https_url = f"https://{host.name}/"
    verified, cert_error = None, None
    try:
        client.get(https_url, host.address, verify=True)
        verified = True
    except SSLError as exc:
        verified, cert_error = False, str(exc)[:500]
    except Exception as exc:
        if _fetch.classify(exc) is None:
            raise
    https = client.follow(https_url, host.address, locate)
    http = client.follow(f"http://{host.name}/", host.address, locate)
    security_txt, security_txt_error = None, None
    if https.answers:
        try:
            answer, body = client.get(
                f"https://{host.name}/.well-known/security.txt",
                host.address,
                limit=_fetch.MAX_SECURITY_TXT,
            )
            security_txt = _fetch.parse_security_txt(answer.status, body)
        except Exception as exc:
            if _fetch.classify(exc) is None:
                raise
            security_txt_error = f"{_fetch.classify(exc)}: {str(exc)[:300]}"
    sightings, software_error = _software(host, client, https if https.answers else http)
    facts = WebFacts(
        hostname=host.name,
        address=host.address,
        scanned_at=context.clock(),
        http=http,
        https=https,
        certificate_verified=verified if https.answers else None,
        certificate_error=cert_error,
        security_txt=security_txt,
        security_txt_error=security_txt_error,
        other_addresses=host.other_addresses,
        software=sightings,
        software_error=software_error,
    )
    if not https.answers and not http.answers:
        return SubjectObservation(
            host.name, host.asset, SubjectStatus.ERROR, error=_error(https, "HTTPS")
        )
    # Port 80 refusing is a configuration (HTTPS only); any other failure left checks undone.
    incomplete = (
        not https.answers
        or (not http.answers and http.error != "refused")
        or security_txt_error
        or software_error
    )
    if incomplete:
        failed = https if not https.answers else http
        error = _error(failed, "HTTPS" if failed is https else "HTTP") if failed.error else None
        if error is None and security_txt_error:
            error = TargetError(ErrorKind.PROTOCOL, f"security.txt: {security_txt_error}")
        if error is None:
            error = TargetError(ErrorKind.PROTOCOL, f"software identification: {software_error}")
        return SubjectObservation(host.name, host.asset, SubjectStatus.PARTIAL, facts, error)
    return SubjectObservation(host.name, host.asset, SubjectStatus.OK, facts)


def _software(
    host: _Host, client: _fetch.Client, fetch: Fetch
) -> tuple[tuple[SoftwareSighting, ...], str | None]:
    """What the headers, the front page and (for a CMS it shows) one version file name."""
    final = fetch.final
    if final is None:
        return (), None
    parts = urlsplit(final.url)
    scheme, page = parts.scheme, parts.path or "/"
    found: list[Software] = list(software.from_headers(fetch.answers))
    reproduce = {s.key: _curl(host, scheme, page, head=True) for s in found}
    html, error = "", None
    same_host = parts.hostname == host.name
    if final.status == 200 and same_host:
        try:
            _, body = client.get(final.url, host.address, limit=software.MAX_PAGE)
            html = body.decode("utf-8", errors="replace")
        except Exception as exc:
            if _fetch.classify(exc) is None:
                raise
            error = f"{final.url}: {_fetch.classify(exc)}"
    for item in software.from_page(html):
        found.append(item)
        reproduce.setdefault(
            item.key, _curl(host, scheme, page, head=False) + " | grep -i generator"
        )
    for cms in software.cms_seen(html, fetch.answers):
        url = f"{scheme}://{host.name}{cms.version_file}"
        try:
            answer, body = client.get(url, host.address, limit=software.MAX_PAGE)
        except Exception as exc:
            if _fetch.classify(exc) is None:
                raise
            error = f"{url}: {_fetch.classify(exc)}"
            continue
        if answer.status != 200:
            continue
        named = software.from_version_file(cms, body.decode("utf-8", "replace"), url)
        if named is not None:
            found.append(named)
            reproduce[named.key] = _curl(host, scheme, cms.version_file, head=False) + " | head"
    sightings = tuple(
        SoftwareSighting(host.name, item, reproduce.get(item.key, _curl(host, scheme, page, True)))
        for item in best_per_product(found)
    )
    return sightings, error


def _curl(host: _Host, scheme: str, path: str, head: bool) -> str:
    """A curl command that shows what named the software (`--resolve`: no DNS lookup)."""
    port = 443 if scheme == "https" else 80
    return shlex.join(
        [
            "curl",
            "-skI" if head else "-sk",
            "--resolve",
            f"{host.name}:{port}:{host.address}",
            f"{scheme}://{host.name}{path}",
        ]
    )


def _error(fetch: Fetch, what: str) -> TargetError:
    kind = ErrorKind(fetch.error) if fetch.error else ErrorKind.PROTOCOL
    return TargetError(kind, f"{what}: {fetch.error_detail or fetch.error}")
