"""DNS hygiene of a zone and a name: nameservers (count, spread, lame delegation, open
zone transfer), CAA (RFC 8659) and dangling CNAMEs.

Nameservers are asked directly only at addresses the scope guard allows; the others are
listed as skipped so that nothing about them is concluded.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import dns.flags
import dns.rcode
import dns.rdatatype

from riskiturva.dns_seam import DnsClient, LookupFailed, Outcome, QueryFunction, resolve_host


@dataclass(frozen=True)
class Nameserver:
    name: str
    addresses: tuple[str, ...]
    lame: tuple[str, ...] = ()  # `address: why` for addresses giving no authoritative answer
    axfr_open: tuple[str, ...] = ()  # `address: what came back`
    skipped: tuple[str, ...] = ()  # addresses outside the scope: not asked
    failed: tuple[str, ...] = ()  # `address: error` (timeouts): nothing concluded


@dataclass(frozen=True)
class ZoneFacts:
    zone: str
    ns_records: tuple[str, ...]
    nameservers: tuple[Nameserver, ...]
    port: int = 53  # where the nameservers were asked

    def dig_at(self, address: str, query: str) -> str:
        port = "" if self.port == 53 else f" -p {self.port}"
        return f"dig {query} @{address}{port}"

    @property
    def incomplete(self) -> tuple[str, ...]:
        return tuple(
            f"{ns.name} {entry}" for ns in self.nameservers for entry in (*ns.skipped, *ns.failed)
        )

    @property
    def networks(self) -> tuple[str, ...]:
        """The /24 (IPv4) or /48 (IPv6) networks the nameservers sit in."""
        found = set()
        for ns in self.nameservers:
            for address in ns.addresses:
                prefix = 24 if ipaddress.ip_address(address).version == 4 else 48
                found.add(str(ipaddress.ip_network(f"{address}/{prefix}", strict=False)))
        return tuple(sorted(found))


async def _probe(client: DnsClient, zone: str, address: str) -> tuple[str | None, str | None]:
    """(lame reason, AXFR result) of one nameserver address; raises `LookupFailed`."""
    soa, axfr = await asyncio.gather(
        client.ask_server(address, zone, "SOA"),
        _axfr(client, zone, address),
    )
    lame = None
    if soa.rcode() != dns.rcode.NOERROR:
        lame = f"answered {dns.rcode.to_text(soa.rcode())}"
    elif not soa.flags & dns.flags.AA or not soa.get_rrset(
        soa.answer, soa.question[0].name, soa.question[0].rdclass, dns.rdatatype.SOA
    ):
        lame = "answered without authority"
    return lame, axfr


async def _axfr(client: DnsClient, zone: str, address: str) -> str | None:
    """What an AXFR request got, when it was answered with the zone; None when refused."""
    try:
        message = await client.zone_transfer_start(address, zone)
    except LookupFailed as exc:
        if exc.kind in ("refused", "protocol"):
            return None  # no TCP service, or the connection was closed on us: not open
        raise
    if message.rcode() != dns.rcode.NOERROR:
        return None
    has_soa = any(rrset.rdtype == dns.rdatatype.SOA for rrset in message.answer)
    count = sum(len(rrset) for rrset in message.answer)
    return f"transferred {count} records in the first message" if has_soa else None


async def inspect_zone(zone: str, client: DnsClient, allowed: Callable[[str], bool]) -> ZoneFacts:
    """NS set, each nameserver's addresses, and what each in-scope address answers."""
    answer = await client.query(zone, "NS")
    names = sorted({r.target.to_text(omit_final_dot=True) for r in answer.rrset or ()})
    resolved = await asyncio.gather(*(resolve_host(client.query, n) for n in names))

    async def one(name: str, addresses: tuple[str, ...]) -> Nameserver:
        lame, open_, skipped, failed = [], [], [], []
        for address in addresses:
            if not allowed(address):
                skipped.append(f"{address}: outside the scope, not asked")
                continue
            try:
                why_lame, axfr = await _probe(client, zone, address)
            except LookupFailed as exc:
                failed.append(f"{address}: {exc.kind} ({exc.detail})")
                continue
            if why_lame:
                lame.append(f"{address}: {why_lame}")
            if axfr:
                open_.append(f"{address}: {axfr}")
        return Nameserver(name, addresses, tuple(lame), tuple(open_), tuple(skipped), tuple(failed))

    nameservers = await asyncio.gather(*(one(r.name, r.addresses) for r in resolved))
    return ZoneFacts(zone, answer.records, tuple(nameservers), client.nameserver_port)


@dataclass(frozen=True)
class CaaFacts:
    name: str
    found_at: str | None  # the closest name with CAA records (RFC 8659 §3)
    records: tuple[str, ...]
    searched: tuple[str, ...] = ()  # the names asked, from the name up


async def find_caa(name: str, stop_at: str, query: QueryFunction) -> CaaFacts:
    """The relevant CAA set, climbing from `name` up to `stop_at` (the organisational domain)."""
    labels = name.split(".")
    levels = [".".join(labels[i:]) for i in range(len(labels) - len(stop_at.split(".")) + 1)]
    answers = await asyncio.gather(*(query(level, "CAA") for level in levels))
    for level, answer in zip(levels, answers, strict=True):
        if answer.rrset is not None:
            return CaaFacts(name, level, answer.records, tuple(levels))
    return CaaFacts(name, None, (), tuple(levels))


@dataclass(frozen=True)
class CnameFacts:
    name: str
    chain: tuple[str, ...]  # `owner CNAME target` steps
    dangling: bool  # the chain ends at a name that does not exist


async def follow_cname(name: str, query: QueryFunction) -> CnameFacts:
    """Follow `name`'s CNAMEs one query at a time; the end must exist (not NXDOMAIN)."""
    chain: list[str] = []
    current = name
    for _step in range(8):
        answer = await query(current, "CNAME")
        if answer.rrset is None:
            break
        target = answer.rrset[0].target.to_text(omit_final_dot=True)
        chain.append(f"{current} CNAME {target}.")
        current = target
    if not chain:
        return CnameFacts(name, (), False)
    end = await query(current, "A")
    return CnameFacts(name, tuple(chain), end.outcome is Outcome.NXDOMAIN)
