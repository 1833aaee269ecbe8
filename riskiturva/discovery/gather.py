"""Gathering: every source's queries, through the configured resolver only, scope first.

A name enters through `_Gatherer.name()`: outside the declared domains it becomes an
`OutsideSighting` and nothing more is sent about it; inside, it is resolved once (A, then
AAAA unless the name does not exist). Zones — the scope domains and the zone cuts found
under them — are read with their records, an NSEC walk, an AXFR at nameservers inside the
scope, and, when neither read the whole zone, a word list with wildcard detection.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rdatatype
import dns.reversename

from riskiturva.config import DiscoverySettings, DiscoverySource, Scope, normalise_name
from riskiturva.discovery.facts import (
    AddressSighting,
    CtEntry,
    Observations,
    OutsideSighting,
    Resolution,
    ServiceHint,
    Sighting,
    Source,
    ZoneFacts,
)
from riskiturva.dns_seam import DnsClient, LookupFailed, Outcome

# SRV names that reveal mail, calendar, telephony and directory hosts.
SRV_SERVICES = (
    "_autodiscover._tcp",
    "_sip._tls",
    "_sip._tcp",
    "_sipfederationtls._tcp",
    "_collab-edge._tls",
    "_submission._tcp",
    "_submissions._tcp",
    "_imap._tcp",
    "_imaps._tcp",
    "_pop3s._tcp",
    "_caldavs._tcp",
    "_carddavs._tcp",
    "_xmpp-client._tcp",
    "_xmpp-server._tcp",
    "_matrix._tcp",
    "_ldap._tcp",
    "_kerberos._tcp",
)
# TXT records by which a cloud service checks that the domain is the customer's.
VERIFICATIONS = (
    ("google-site-verification=", "Google"),
    ("ms=ms", "Microsoft 365"),
    ("facebook-domain-verification=", "Meta"),
    ("apple-domain-verification=", "Apple"),
    ("atlassian-domain-verification=", "Atlassian"),
    ("docusign=", "DocuSign"),
    ("adobe-idp-site-verification=", "Adobe"),
    ("zoom_verify_", "Zoom"),
    ("webexdomainverification.", "Cisco Webex"),
    ("citrix-verification-code=", "Citrix"),
    ("dropbox-domain-verification=", "Dropbox"),
    ("slack-domain-verification=", "Slack"),
    ("miro-verification=", "Miro"),
    ("globalsign-domain-verification=", "GlobalSign"),
    ("onetrust-domain-verification=", "OneTrust"),
    ("amazonses:", "Amazon SES"),
    ("stripe-verification=", "Stripe"),
    ("knowbe4-site-verification=", "KnowBe4"),
    ("teamviewer-sso-verification=", "TeamViewer"),
    ("yandex-verification:", "Yandex"),
)
_SPF_NAME = re.compile(r"^[+?~-]?(include|a|mx|exists|ptr|redirect)[:=]([^/\s]+)", re.IGNORECASE)
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_WILDCARD_PROBES = 2
_MAX_ZONES = 200  # zone cuts followed per organisation

CertificateSearch = Callable[[str], Sequence[CtEntry]]
Sweep = Callable[[str], Sequence[str]]


def clean_name(text: str) -> str | None:
    """A DNS name from a record, a certificate or a page, or None when it is not one."""
    try:
        name = normalise_name(text)
    except ValueError:
        return None
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return None
    return name


@dataclass(frozen=True)
class Plan:
    """What to look at for one organisation (built by `riskiturva.discovery.plan`)."""

    organisation: str
    scope: Scope
    sources: frozenset[DiscoverySource]
    zones: tuple[str, ...]  # the declared scope domains
    known_names: tuple[str, ...] = ()  # active assets' names: resolved to see what is gone
    labels: tuple[str, ...] = ()  # the word list
    partner_labels: tuple[str, ...] = ()
    certificate_names: tuple[tuple[str, str], ...] = ()  # (name, where) from the TLS collector
    web_names: tuple[tuple[str, str, Source], ...] = ()  # (name, where, source)
    ptr_networks: tuple[str, ...] = ()
    sweep_networks: tuple[str, ...] = ()


@dataclass
class _Gatherer:
    plan: Plan
    client: DnsClient
    settings: DiscoverySettings
    search_ct: CertificateSearch | None
    sweep: Sweep | None
    now: dt.datetime
    cancelled: Callable[[], bool]
    sightings: list[Sighting] = field(default_factory=list)
    outside: list[OutsideSighting] = field(default_factory=list)
    addresses: list[AddressSighting] = field(default_factory=list)
    hints: list[ServiceHint] = field(default_factory=list)
    zones: dict[str, ZoneFacts] = field(default_factory=dict)
    certificates: dict[str, tuple[CtEntry, ...]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _resolving: dict[str, asyncio.Future[Resolution]] = field(default_factory=dict)
    _zone_tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def uses(self, source: DiscoverySource) -> bool:
        return source in self.plan.sources

    # --- names -----------------------------------------------------------------------

    async def name(
        self, text: str, source: Source, via: str, *, kind: str = "host", **detail: object
    ) -> Resolution | None:
        """Take in a name seen by `source`: inside the scope it is resolved, outside only
        listed. Returns its resolution (None outside the scope or not a name)."""
        name = clean_name(text)
        if name is None:
            return None
        if not self.plan.scope.covers_name(name):
            self.outside.append(OutsideSighting(name, "name", source, via, dict(detail)))
            return None
        self.sightings.append(Sighting(name, source, via, kind, dict(detail)))
        return await self.resolve(name)

    async def resolve(self, name: str) -> Resolution:
        """A and AAAA of an in-scope name, asked once per run."""
        assert self.plan.scope.covers_name(name), name  # the one gate before any query
        future = self._resolving.get(name)
        if future is None:
            future = asyncio.ensure_future(self._resolve(name))
            self._resolving[name] = future
        return await asyncio.shield(future)

    async def _resolve(self, name: str) -> Resolution:
        try:
            v4 = await self.client.query(name, "A")
            if v4.outcome is Outcome.NXDOMAIN:
                return Resolution(name, cnames=v4.cnames, nxdomain=True)
            v6 = await self.client.query(name, "AAAA")
        except LookupFailed as exc:
            return Resolution(name, failed=f"{exc.kind}: {exc.detail}")
        return Resolution(name, (*v4.records, *v6.records), v4.cnames)

    async def _names(self, items: Iterable[tuple[str, Source, str]]) -> None:
        await asyncio.gather(*(self.name(n, s, v) for n, s, v in items))

    # --- zones -----------------------------------------------------------------------

    def follow_zone(self, zone: str) -> None:
        if zone in self.zones or len(self.zones) >= _MAX_ZONES or self.cancelled():
            return
        self.zones[zone] = ZoneFacts(zone, "skipped", "skipped")
        self._zone_tasks.append(asyncio.ensure_future(self._zone(zone)))

    async def _zone(self, zone: str) -> None:
        if self.uses(DiscoverySource.DNS_RECORDS):
            await self._records(zone)
        walk = await self._walk(zone) if self.uses(DiscoverySource.NSEC) else "skipped"
        axfr = "skipped"
        if self.uses(DiscoverySource.AXFR) and walk != "complete":
            axfr = await self._axfr(zone)
        facts = ZoneFacts(zone, walk, axfr)
        guessing = self.uses(DiscoverySource.WORDLIST) or self.uses(DiscoverySource.PARTNER_LABELS)
        if guessing and not facts.enumerated and not self.cancelled():
            wildcard, tried = await self._guess(zone)
            facts = ZoneFacts(zone, walk, axfr, wildcard, tried)
        self.zones[zone] = facts

    async def _records(self, zone: str) -> None:
        try:
            ns, mx, txt = await asyncio.gather(
                self.client.query(zone, "NS"),
                self.client.query(zone, "MX"),
                self.client.query(zone, "TXT"),
            )
            srv = await asyncio.gather(
                *(self.client.query(f"{s}.{zone}", "SRV") for s in SRV_SERVICES)
            )
        except LookupFailed as exc:
            self.errors.append(f"records of {zone}: {exc}")
            return
        jobs: list[Awaitable[object]] = []
        for record in ns.rrset or ():
            jobs.append(self.name(record.target.to_text(), Source.NS, f"NS of {zone}"))
        for record in mx.rrset or ():
            jobs.append(self.name(record.exchange.to_text(), Source.MX, f"MX of {zone}"))
        for answer in srv:
            for record in answer.rrset or ():
                target = record.target.to_text()
                if target != ".":
                    via = f"SRV {answer.name}"
                    jobs.append(self.name(target, Source.SRV, via, port=record.port))
        for text in txt.texts:
            lowered = text.lower()
            for prefix, service in VERIFICATIONS:
                if lowered.startswith(prefix):
                    self.hints.append(ServiceHint(zone, service, text[:300]))
            if lowered.startswith("v=spf1"):
                jobs.append(self._spf(zone, text, depth=0))
        await asyncio.gather(*jobs)

    async def _spf(self, owner: str, record: str, depth: int) -> None:
        """Names in an SPF record (`a:`, `mx:`, `include:`…), includes followed in scope."""
        for term in record.split()[1:]:
            match = _SPF_NAME.match(term)
            if not match or "%{" in match.group(2):
                continue
            mechanism, target = match.group(1).lower(), match.group(2)
            if mechanism in ("include", "redirect"):
                name = clean_name(target)
                if name is None:
                    continue
                if not self.plan.scope.covers_name(name):
                    self.outside.append(
                        OutsideSighting(name, "name", Source.SPF, f"SPF of {owner}")
                    )
                elif depth < 10:
                    try:
                        answer = await self.client.query(name, "TXT")
                    except LookupFailed:
                        continue
                    for text in answer.texts:
                        if text.lower().startswith("v=spf1"):
                            await self._spf(name, text, depth + 1)
            else:
                await self.name(target, Source.SPF, f"SPF of {owner}")

    async def _walk(self, zone: str) -> str:
        """Follow the NSEC chain from the apex: every owner name and its types."""
        current, seen = zone, 0
        try:
            while seen < self.settings.walk_max_names and not self.cancelled():
                nsec = await self._nsec_at(current, apex=current == zone)
                if nsec is None:
                    if current == zone:
                        return await self._why_not_walkable(zone)
                    return f"failed: no NSEC at {current}"
                types, following = nsec
                seen += 1
                if current != zone:
                    await self._owner(zone, current, types, Source.NSEC, f"NSEC chain of {zone}")
                if following == zone or not dns.name.from_text(following).is_subdomain(
                    dns.name.from_text(zone)
                ):
                    return "complete"
                current = following
        except LookupFailed as exc:
            return f"failed: {exc.kind}"
        return "failed: too many names"

    async def _nsec_at(self, owner: str, apex: bool) -> tuple[set[str], str] | None:
        """(types, next owner) of the NSEC record at `owner`; the parent's NSEC at a zone
        cut comes with a DS query (the child answers NSEC queries there). At the apex only
        the zone's own NSEC counts (a DS query would read the parent's chain)."""
        for rdtype in ("NSEC",) if apex else ("NSEC", "DS"):
            response = await self.client.message(owner, rdtype)
            qname = dns.name.from_text(owner)
            for section in (response.answer, response.authority):
                for rrset in section:
                    if rrset.rdtype == dns.rdatatype.NSEC and rrset.name == qname:
                        rdata = rrset[0]
                        types = set(rdata.to_text().split()[1:])
                        return types, rdata.next.to_text(omit_final_dot=True).lower()
        return None

    async def _why_not_walkable(self, zone: str) -> str:
        response = await self.client.message(f"{secrets.token_hex(8)}.{zone}", "A")
        if any(r.rdtype == dns.rdatatype.NSEC3 for r in response.authority):
            return "nsec3"
        return "unsigned"

    async def _owner(
        self, zone: str, owner: str, types: set[str], source: Source, via: str
    ) -> None:
        """A name read from a zone (walk or transfer), by the types it holds."""
        labels = owner.split(".")
        if labels[0] == "*":
            return  # a wildcard owner: guessing detects what it answers
        if "NS" in types:
            await self.name(owner, source, via, kind="domain")
            if self.plan.scope.covers_name(owner):
                self.follow_zone(owner)
            return
        if any(label.startswith("_") for label in labels):
            return  # service records (SRV, TXT policies), not hosts
        if types & {"A", "AAAA", "CNAME"}:
            await self.name(owner, source, via)
        elif "MX" in types:
            await self.name(owner, source, via, kind="mail_domain")

    async def _axfr(self, zone: str) -> str:
        """The records of a zone transfer from a nameserver whose name and address are in scope."""
        try:
            answer = await self.client.query(zone, "NS")
        except LookupFailed as exc:
            return f"failed: {exc.kind}"
        servers: list[str] = []
        for record in answer.rrset or ():
            name = clean_name(record.target.to_text())
            if name is None or not self.plan.scope.covers_name(name):
                continue  # an outside nameserver: listed by the NS records, never asked
            resolved = await self.resolve(name)
            servers += [a for a in resolved.addresses if self.plan.scope.covers_address(a)]
        if not servers:
            return "no nameserver in scope"
        for server in servers:
            try:
                rrsets = await self.client.zone_transfer(server, zone, self.settings.walk_max_names)
            except LookupFailed:
                continue
            by_owner: dict[str, set[str]] = {}
            targets: list[tuple[str, str]] = []
            for rrset in rrsets:
                owner = rrset.name.to_text(omit_final_dot=True).lower()
                by_owner.setdefault(owner, set()).add(dns.rdatatype.to_text(rrset.rdtype))
                if rrset.rdtype == dns.rdatatype.CNAME:
                    targets.append((rrset[0].target.to_text(), owner))
            via = f"zone transfer of {zone} from {server}"
            await asyncio.gather(
                *(
                    self._owner(zone, o, t, Source.AXFR, via)
                    for o, t in by_owner.items()
                    if o != zone
                ),
                *(self.name(t, Source.CNAME, f"CNAME of {o} ({via})") for t, o in targets),
            )
            return f"open at {server}"
        return "refused"

    async def _guess(self, zone: str) -> tuple[tuple[str, ...], int]:
        """Word-list and partner labels under `zone`, after two random labels tell whether
        the zone has a wildcard (whose answers a guess must differ from to count)."""
        probes = [
            await self.resolve(f"rt-{secrets.token_hex(6)}.{zone}") for _ in range(_WILDCARD_PROBES)
        ]
        wildcard = tuple(sorted({a for p in probes for a in p.addresses}))
        labels: list[tuple[str, Source]] = []
        if self.uses(DiscoverySource.WORDLIST):
            labels += [(label, Source.WORDLIST) for label in self.plan.labels]
        if self.uses(DiscoverySource.PARTNER_LABELS):
            words = set(self.plan.labels)
            labels += [
                (lb, Source.PARTNER_LABEL) for lb in self.plan.partner_labels if lb not in words
            ]

        async def guess(label: str, source: Source) -> None:
            if self.cancelled():
                return
            name = f"{label}.{zone}"
            resolved = await self.resolve(name)
            if resolved.addresses or (resolved.cnames and not resolved.nxdomain):
                via = f"{'word list' if source is Source.WORDLIST else 'partner labels'} on {zone}"
                self.sightings.append(Sighting(name, source, via))

        await asyncio.gather(*(guess(label, source) for label, source in labels))
        return wildcard, len(labels)

    # --- addresses, certificates -------------------------------------------------------

    async def _ptr(self, network: str) -> None:
        net = ipaddress.ip_network(network)
        if net.num_addresses > self.settings.ptr_max_addresses:
            self.errors.append(
                f"PTR: {network} has {net.num_addresses} addresses, more than"
                f" ptr_max_addresses ({self.settings.ptr_max_addresses}); skipped"
            )
            return
        failed: dict[str, int] = {}

        async def one(address: str) -> None:
            if self.cancelled():
                return
            try:
                answer = await self.client.query(
                    dns.reversename.from_address(address).to_text(), "PTR"
                )
            except LookupFailed as exc:
                failed[str(exc.kind)] = failed.get(str(exc.kind), 0) + 1
                return
            names = tuple(r.target.to_text(omit_final_dot=True).lower() for r in answer.rrset or ())
            if not names:
                return
            self.addresses.append(AddressSighting(address, Source.PTR, f"PTR of {address}", names))
            await asyncio.gather(
                *(self.name(n, Source.PTR, f"PTR of {address}", address=address) for n in names)
            )

        hosts = [str(a) for a in (net.hosts() if net.num_addresses > 2 else net)]
        await asyncio.gather(*(one(a) for a in hosts))
        if failed:
            summary = ", ".join(f"{count} {kind}" for kind, count in sorted(failed.items()))
            self.errors.append(f"PTR lookups in {network} not answered: {summary}")

    async def _certificate_log(self) -> None:
        assert self.search_ct is not None
        for zone in self.plan.zones:
            if self.cancelled():
                return
            try:
                entries = tuple(await asyncio.to_thread(self.search_ct, zone))
            except OSError as exc:
                self.errors.append(f"CT search for {zone}: {exc}")
                continue
            self.certificates[zone] = entries
            await asyncio.gather(
                *(
                    self.name(name, Source.CT, f"CT log entry {entry.id}", issuer=entry.issuer)
                    for entry in entries
                    for name in entry.names
                    if not name.startswith("*.")
                )
            )

    async def _sweep(self, network: str) -> None:
        assert self.sweep is not None
        net = ipaddress.ip_network(network)
        if net.num_addresses > self.settings.sweep_max_addresses:
            self.errors.append(
                f"ping sweep: {network} is larger than sweep_max_addresses"
                f" ({self.settings.sweep_max_addresses}); skipped"
            )
            return
        try:
            live = await asyncio.to_thread(self.sweep, network)
        except OSError as exc:
            self.errors.append(f"ping sweep of {network}: {exc}")
            return
        for address in live:
            if self.plan.scope.covers_address(address):
                self.addresses.append(
                    AddressSighting(address, Source.PING_SWEEP, f"ping sweep of {network}")
                )

    # --- the run -------------------------------------------------------------------------

    async def run(self) -> Observations:
        for zone in self.plan.zones:
            self.follow_zone(zone)
        jobs: list[Awaitable[object]] = [self.resolve(n) for n in self.plan.known_names]
        if self.uses(DiscoverySource.TLS_SAN):
            jobs.append(self._names((n, Source.TLS_SAN, v) for n, v in self.plan.certificate_names))
        if self.uses(DiscoverySource.WEB_LINKS):
            jobs.append(self._names((n, s, v) for n, v, s in self.plan.web_names))
        if self.uses(DiscoverySource.PTR):
            jobs += [self._ptr(n) for n in self.plan.ptr_networks]
        if self.uses(DiscoverySource.CT) and self.search_ct is not None:
            jobs.append(self._certificate_log())
        if self.uses(DiscoverySource.PING_SWEEP) and self.sweep is not None:
            jobs += [self._sweep(n) for n in self.plan.sweep_networks]
        await asyncio.gather(*jobs)
        while pending := [t for t in self._zone_tasks if not t.done()]:
            await asyncio.gather(*pending)
        resolutions = {}
        for name, future in self._resolving.items():
            if future.done() and not future.cancelled():
                resolutions[name] = future.result()
        return Observations(
            organisation=self.plan.organisation,
            scanned_at=self.now,
            sightings=tuple(self.sightings),
            resolutions=resolutions,
            zones=tuple(self.zones[z] for z in sorted(self.zones)),
            addresses=tuple(self.addresses),
            outside=tuple(self.outside),
            hints=tuple(self.hints),
            certificates=dict(self.certificates),
            errors=tuple(self.errors),
        )


async def gather_observations(
    plan: Plan,
    client: DnsClient,
    settings: DiscoverySettings,
    *,
    now: dt.datetime,
    search_ct: CertificateSearch | None = None,
    sweep: Sweep | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Observations:
    """Everything the enabled sources see for one organisation."""
    gatherer = _Gatherer(plan, client, settings, search_ct, sweep, now, cancelled)
    return await gatherer.run()
