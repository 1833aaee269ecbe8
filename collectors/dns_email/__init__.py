"""The DNS and e-mail hygiene collector: SPF, DMARC, DKIM, MX, MTA-STS, TLS-RPT, DANE,
DNSSEC and the DNS hygiene of the organisation's domains.

It talks to the configured resolver through one seam (`riskiturva.dns_seam.DnsClient`); the
only direct connections — AXFR and lame-delegation queries to a zone's nameservers, the
MTA-STS policy fetch and the SMTP STARTTLS handshake for DANE — go to addresses the scope
guard allows.
What a role checks:

* `domain`: SPF and DMARC (a domain that sends no mail should still say so), DNSSEC,
  nameservers, zone transfer and CAA.
* `mail_domain`: SPF, DMARC, MX, DKIM, MTA-STS, TLS-RPT and DANE.
* `host` and `url`: dangling CNAME only — the host's zone is judged through its domain
  asset, and CAA is a property of the domain.

A domain and a mail_domain asset of the same name are one subject with both roles.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from publicsuffixlist import PublicSuffixList
from pydantic import Field

from collectors.dns_email.dkim import COMMON_SELECTORS, find_dkim
from collectors.dns_email.dmarc import find_dmarc, organisational_domain
from collectors.dns_email.dnssec import load_trust_anchors, validate_name, zone_cuts
from collectors.dns_email.facts import DnsEmailFacts
from collectors.dns_email.mail import (
    MtaStsFacts,
    MxHost,
    fetch_mta_sts_policy,
    find_dane,
    find_mta_sts_record,
    find_mx,
    find_tlsrpt,
    tls_client_context,
)
from collectors.dns_email.rules import CHECK_IDS, judge_facts
from collectors.dns_email.spf import expand_spf
from collectors.dns_email.zone import find_caa, follow_cname, inspect_zone
from riskiturva.collector import (
    ErrorKind,
    FindingDraft,
    ScanContext,
    ScanTask,
    SubjectObservation,
    SubjectStatus,
    Target,
    TargetError,
)
from riskiturva.config import AssetKind, CollectorOptions
from riskiturva.dns_seam import DnsClient, LookupFailed, Outcome, resolve_host
from riskiturva.trust_files import TrustAnchors

__all__ = ["DnsEmailCollector", "DnsEmailFacts"]

T = TypeVar("T")


class DnsEmailOptions(CollectorOptions):
    """`[settings.collectors.dns_email]` in the configuration."""

    dkim_selectors: tuple[str, ...] = Field(
        (), description="DKIM selectors asked for every mail domain, besides the common ones"
    )
    nameserver_port: int = Field(
        53,
        ge=1,
        le=65535,
        description="port of the authoritative name servers asked directly (AXFR, lame"
        " delegation): 53 on the internet; a lab on another port sets its own",
    )


@dataclass(frozen=True)
class _Subject:
    name: str
    asset: str
    roles: frozenset[AssetKind]
    dkim_selectors: tuple[str, ...]


@dataclass
class _Scan:
    """Everything one task's subjects share: the DNS client, anchors, scope and TLS trust."""

    client: DnsClient
    context: ScanContext
    organisation: str
    anchors: TrustAnchors
    psl: PublicSuffixList

    def allowed(self, address: str) -> bool:
        return self.context.scope.allows_address(self.organisation, address)

    @cached_property
    def tls(self) -> ssl.SSLContext:
        """Built when a policy is first fetched (loading the CA store costs time)."""
        return tls_client_context(self.context.trusted_ca_files)


class DnsEmailCollector:
    name: ClassVar[str] = "dns_email"
    asset_kinds: ClassVar[frozenset[AssetKind]] = frozenset(
        {AssetKind.DOMAIN, AssetKind.MAIL_DOMAIN, AssetKind.HOST, AssetKind.URL}
    )
    address_kinds: ClassVar[frozenset[AssetKind]] = frozenset()
    check_ids: ClassVar[frozenset[str]] = CHECK_IDS
    options_model: ClassVar[type[DnsEmailOptions]] = DnsEmailOptions
    coverage: ClassVar[Mapping[AssetKind, str]] = {
        AssetKind.DOMAIN: "DNS through the configured resolver: SPF and DMARC, MX, DNSSEC"
        " from the trust anchors down, zone transfer (AXFR) and lame delegation at each"
        " in-scope name server (`nameserver_port`), name-server count and networks, CAA",
        AssetKind.MAIL_DOMAIN: "SPF, DMARC, MX and, when it receives mail, DKIM (common and"
        " declared selectors), MTA-STS (its policy over HTTPS at an in-scope address),"
        " TLS-RPT and DANE of its MX hosts",
        AssetKind.HOST: "a CNAME that points at a name that does not exist (dangling)",
        AssetKind.URL: "the URL's host name, as a host: a dangling CNAME",
    }

    @cached_property
    def public_suffixes(self) -> PublicSuffixList:
        """The packaged Public Suffix List: static reference data, parsed once."""
        return PublicSuffixList()

    def collect(self, task: ScanTask, context: ScanContext) -> Iterable[SubjectObservation]:
        return asyncio.run(self.collect_async(task, context))

    async def collect_async(self, task: ScanTask, context: ScanContext) -> list[SubjectObservation]:
        options = context.options(self.name, DnsEmailOptions)
        scan = _Scan(
            client=DnsClient(
                context.settings.resolver, options.nameserver_port, limits=context.limits
            ),
            context=context,
            organisation=task.organisation,
            anchors=load_trust_anchors(context.settings.dnssec.trust_anchors_file),
            psl=self.public_suffixes,
        )
        limit = asyncio.Semaphore(context.settings.concurrency.targets)
        budget = context.settings.timeouts.host

        async def bounded(subject: _Subject) -> SubjectObservation:
            """One subject within the per-target budget; a crash is its error, not the run's."""
            async with limit:
                try:
                    async with asyncio.timeout(budget):
                        return await observe(subject, scan)
                except TimeoutError:
                    error = TargetError(ErrorKind.TIMEOUT, f"not finished within {budget} s")
                except Exception as exc:
                    error = TargetError(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")
                return SubjectObservation(
                    subject.name, subject.asset, SubjectStatus.ERROR, error=error
                )

        subjects = merge_targets(task.targets, options.dkim_selectors)
        return list(await asyncio.gather(*(bounded(s) for s in subjects)))

    def judge(self, observation: SubjectObservation) -> list[FindingDraft]:
        return judge_facts(observation.facts)


def merge_targets(targets: Iterable[Target], extra_selectors: tuple[str, ...]) -> list[_Subject]:
    """One subject per name: the union of the roles of the assets that name it."""
    merged: dict[str, _Subject] = {}
    for target in targets:
        name = target.name or target.asset
        known = merged.get(name)
        # The asset's own selectors, plus any the `dkim_selectors` option lists for all.
        selectors = target.dkim_selectors
        merged[name] = _Subject(
            name=name,
            asset=known.asset if known else target.asset,
            roles=(known.roles if known else frozenset()) | {target.asset_kind},
            dkim_selectors=tuple(
                dict.fromkeys((*(known.dkim_selectors if known else extra_selectors), *selectors))
            ),
        )
    return list(merged.values())


class _Sections:
    """Runs each check group, turning a failed lookup into a `not_checked` note."""

    def __init__(self) -> None:
        self.not_checked: list[str] = []
        self.failures: list[LookupFailed] = []
        self.attempted = 0

    async def run(self, section: str, work: Awaitable[T]) -> T | None:
        self.attempted += 1
        try:
            return await work
        except LookupFailed as exc:
            self.failures.append(exc)
            self.not_checked.append(f"{section}: {exc}")
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.not_checked.append(f"{section}: {exc!r}")
        return None


async def observe(subject: _Subject, scan: _Scan) -> SubjectObservation:
    """Look at one name in every way its roles ask for; never raises for the target's faults."""
    name, query = subject.name, scan.client.query
    try:
        exists = await query(name, "TXT")  # asked anyway for SPF, so this costs nothing
    except LookupFailed as exc:
        return SubjectObservation(name, subject.asset, SubjectStatus.ERROR, error=exc.as_error())
    if exists.outcome is Outcome.NXDOMAIN and not exists.cnames:
        # A configured name that does not exist is an error of the configuration or of DNS,
        # not a domain missing every record.
        error = TargetError(ErrorKind.DNS_FAILURE, f"{name} does not exist (NXDOMAIN)")
        return SubjectObservation(name, subject.asset, SubjectStatus.ERROR, error=error)
    sections = _Sections()
    is_domain = AssetKind.DOMAIN in subject.roles
    is_mail = AssetKind.MAIL_DOMAIN in subject.roles
    mail_or_domain = is_domain or is_mail
    results: dict[str, Any] = {}

    async def zone_and_dnssec() -> None:
        cuts = await zone_cuts(name, query)
        zone = cuts[-1].to_text(omit_final_dot=True)
        dnssec, zone_facts = await asyncio.gather(
            sections.run(
                "dnssec", validate_name(name, cuts, query, scan.anchors, scan.context.clock())
            ),
            sections.run("zone", inspect_zone(zone, scan.client, scan.allowed)),
        )
        results["dnssec"], results["zone"] = dnssec, zone_facts
        if zone_facts is not None and zone_facts.incomplete:
            sections.not_checked.extend(f"zone: {entry}" for entry in zone_facts.incomplete)

    async def mail() -> None:
        mx = await sections.run("mx", find_mx(name, query))
        results["mx"] = mx
        if not is_mail or mx is None or not mx.receives_mail:
            return
        selectors = tuple(dict.fromkeys((*subject.dkim_selectors, *COMMON_SELECTORS)))
        (
            results["dkim"],
            results["tlsrpt"],
            results["mta_sts"],
            results["dane"],
        ) = await asyncio.gather(
            sections.run("dkim", find_dkim(name, selectors, query)),
            sections.run("tlsrpt", find_tlsrpt(name, query)),
            sections.run("mta_sts", _mta_sts(name, mx.hosts, scan, sections)),
            sections.run(
                "dane", find_dane(mx, query, scan.allowed, scan.context.settings.timeouts.read)
            ),
        )
        for host in results["dane"] or ():
            if host.note and host.matched is None and host.tlsa:
                sections.not_checked.append(f"dane: {host.host}: {host.note}")

    async def run(key: str, work: Awaitable[Any]) -> None:
        results[key] = await sections.run(key, work)

    jobs: list[Awaitable[Any]] = []
    if mail_or_domain:
        jobs += [
            run("spf", expand_spf(name, query)),
            run("dmarc", find_dmarc(name, query, scan.psl)),
            mail(),
        ]
    if is_domain:
        jobs += [
            sections.run("dnssec", zone_and_dnssec()),
            run("caa", find_caa(name, organisational_domain(name, scan.psl), query)),
        ]
    if subject.roles & {AssetKind.HOST, AssetKind.URL}:
        jobs.append(run("cname", follow_cname(name, query)))
    await asyncio.gather(*jobs)

    facts = DnsEmailFacts(
        name=name,
        roles=tuple(sorted(str(r) for r in subject.roles)),
        server=scan.client.server,
        checked_at=scan.context.clock(),
        not_checked=tuple(sections.not_checked),
        **{key: value for key, value in results.items() if value is not None},
    )
    if sections.failures and len(sections.failures) >= sections.attempted:
        first = sections.failures[0]
        error = TargetError(first.kind, "; ".join(sections.not_checked))
        return SubjectObservation(name, subject.asset, SubjectStatus.ERROR, facts, error)
    status = SubjectStatus.PARTIAL if sections.not_checked else SubjectStatus.OK
    return SubjectObservation(name, subject.asset, status, facts)


async def _mta_sts(
    domain: str, mx_hosts: tuple[MxHost, ...], scan: _Scan, sections: _Sections
) -> MtaStsFacts:
    """The policy record, then the policy itself from an in-scope address of `mta-sts.`."""
    facts = await find_mta_sts_record(domain, scan.client.query)
    if not facts.records:
        return facts
    resolved = await resolve_host(scan.client.query, f"mta-sts.{domain}")
    addresses = [a for a in resolved.addresses if scan.allowed(a)]
    if not resolved.addresses:
        return MtaStsFacts(domain, facts.records, problem=f"mta-sts.{domain} has no address")
    if not addresses:
        sections.not_checked.append(f"mta_sts: mta-sts.{domain} is outside the scope, not fetched")
        return MtaStsFacts(domain, facts.records)
    timeouts = scan.context.settings.timeouts
    return await fetch_mta_sts_policy(
        facts,
        addresses[0],
        scan.tls,
        scan.context.settings.user_agent,
        timeouts.connect + timeouts.read,
        tuple(h.name for h in mx_hosts if h.name != "."),
    )
