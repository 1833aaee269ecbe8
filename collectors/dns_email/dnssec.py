"""DNSSEC validated by Riskiturva itself, from the configured trust anchors down.

The chain is walked anchor → DS → DNSKEY → … → the zone holding the name, and the zone's
SOA signature is checked with its keys (`dns.dnssec.validate`). No resolver's AD bit is
ever trusted. Without a configured anchors file, the IANA root anchors below are used.

An absent DS is taken as an insecure delegation without checking the parent's denial of
existence: a forged absence could only make a zone look unsigned, which is itself reported.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
from dataclasses import dataclass, replace
from pathlib import Path

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset
import dns.zone

from riskiturva.dns_seam import QueryFunction
from riskiturva.trust_files import TrustAnchors, parse_trust_anchors, read_trust_anchors

# IANA root anchors, KSK-2017 and KSK-2024 (https://data.iana.org/root-anchors/root-anchors.xml).
IANA_ROOT_ANCHORS = """
. IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
. IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16
"""
# RFC 8624 §3.1: MUST NOT (1 RSAMD5, 3 DSA, 6 DSA-NSEC3-SHA1, 12 ECC-GOST) and
# NOT RECOMMENDED (5 RSASHA1, 7 RSASHA1-NSEC3-SHA1) for signing.
WEAK_ALGORITHMS = frozenset({1, 3, 5, 6, 7, 12})


class DnssecStatus(enum.StrEnum):
    SECURE = "secure"
    INSECURE = "insecure"  # no DS at a delegation: the zone is not signed (for validators)
    BOGUS = "bogus"  # signed, but the chain does not validate
    NO_ANCHOR = "no_anchor"  # no configured anchor covers the name: not judged


@dataclass(frozen=True)
class DnssecFacts:
    name: str
    zone: str  # the zone apex holding the name
    status: DnssecStatus
    reason: str | None = None
    chain: tuple[str, ...] = ()  # what was checked, top down
    algorithms: tuple[int, ...] = ()  # of the zone's DNSKEYs
    earliest_expiry: dt.datetime | None = None  # of the zone's own DNSKEY and SOA signatures
    records: tuple[str, ...] = ()  # DS and DNSKEY of the zone, as evidence


def load_trust_anchors(path: Path | None) -> TrustAnchors:
    """DS or DNSKEY records in zone-file syntax; the IANA root anchors when `path` is None."""
    return read_trust_anchors(path) if path is not None else parse_trust_anchors(IANA_ROOT_ANCHORS)


class _Bogus(Exception):
    """The chain breaks here; the message says how."""


async def zone_cuts(name: str, query: QueryFunction) -> list[dns.name.Name]:
    """Zone apexes from the root down to `name` (found by asking for SOA at each level)."""
    target = dns.name.from_text(name)
    levels = [target.split(depth)[1] for depth in range(2, len(target) + 1)]
    answers = await asyncio.gather(*(query(level.to_text(), "SOA") for level in levels))
    cuts = [dns.name.root]
    cuts += [
        level
        for level, answer in zip(levels, answers, strict=True)
        if not answer.void and not answer.cnames
    ]
    return cuts


def _matches_ds(owner: dns.name.Name, key: dns.rdata.Rdata, ds: dns.rdata.Rdata) -> bool:
    try:
        # `validating`: a SHA-1 DS (digest type 1) may still be checked, only not created.
        made = dns.dnssec.make_ds(owner, key, ds.digest_type, validating=True)  # type: ignore[attr-defined]
    except (dns.exception.DNSException, ValueError):
        return False
    return bool(made == ds)


def _trusted(
    owner: dns.name.Name, keys: dns.rrset.RRset, anchors: tuple[dns.rdata.Rdata, ...]
) -> dns.rrset.RRset | None:
    """The keys of `keys` that an anchor or a DS record names."""
    trusted = [
        key
        for key in keys
        if any(
            (a.rdtype == dns.rdatatype.DS and _matches_ds(owner, key, a)) or a == key
            for a in anchors
        )
    ]
    return dns.rrset.from_rdata_list(owner, keys.ttl, trusted) if trusted else None


@dataclass(frozen=True)
class _ZoneKeys:
    """A zone's DNSKEY set once validated, with its signatures."""

    keys: dns.rrset.RRset
    signatures: dns.rrset.RRset
    records: tuple[str, ...]


async def _keys_of(
    zone: dns.name.Name,
    query: QueryFunction,
    now: float,
    anchors: tuple[dns.rdata.Rdata, ...],
    label: str,
) -> _ZoneKeys:
    """The zone's DNSKEY set, validated by the keys the anchors or DS records name."""
    answer = await query(zone.to_text(), "DNSKEY")
    if answer.rrset is None:
        raise _Bogus(f"{zone}: {label} exists but the zone publishes no DNSKEY")
    entry = _trusted(zone, answer.rrset, anchors)
    if entry is None:
        raise _Bogus(f"{zone}: no DNSKEY matches the {label}")
    if answer.rrsigs is None:
        raise _Bogus(f"{zone}: the DNSKEY set is not signed")
    try:
        dns.dnssec.validate(answer.rrset, answer.rrsigs, {zone: entry}, now=now)
    except dns.exception.DNSException as exc:  # ValidationFailure, DeniedByPolicy
        raise _Bogus(
            f"{zone}: the DNSKEY set does not validate with the {label} key ({exc})"
        ) from exc
    return _ZoneKeys(answer.rrset, answer.rrsigs, answer.records)


async def validate_name(
    name: str,
    cuts: list[dns.name.Name],
    query: QueryFunction,
    anchors: TrustAnchors,
    now: dt.datetime,
) -> DnssecFacts:
    """Walk the chain of trust down `cuts` (see `zone_cuts`) to the zone holding `name`.

    Raises only `LookupFailed`.
    """
    zone = cuts[-1]
    zone_text = zone.to_text(omit_final_dot=True) or "."
    anchored = [index for index, cut in enumerate(cuts) if cut in anchors]
    if not anchored:
        return DnssecFacts(name, zone_text, DnssecStatus.NO_ANCHOR, "no trust anchor covers it")
    start = anchored[-1]
    stamp = now.timestamp()
    chain: list[str] = []
    try:
        keys = await _keys_of(cuts[start], query, stamp, anchors[cuts[start]], "trust anchor")
        chain.append(f"{cuts[start]} DNSKEY validated by the trust anchor")
        for parent, child in zip(cuts[start:], cuts[start + 1 :], strict=False):
            ds = await query(child.to_text(), "DS")
            if ds.rrset is None:
                chain.append(f"{child} has no DS in {parent}: insecure delegation")
                return await _unsigned(name, zone, query, chain)
            if ds.rrsigs is None:
                raise _Bogus(f"{child}: the DS set in {parent} is not signed")
            try:
                dns.dnssec.validate(ds.rrset, ds.rrsigs, {parent: keys.keys}, now=stamp)
            except dns.exception.DNSException as exc:  # ValidationFailure, DeniedByPolicy
                raise _Bogus(f"{child}: the DS set does not validate ({exc})") from exc
            keys = await _keys_of(child, query, stamp, tuple(ds.rrset), "DS in the parent")
            chain.append(f"{child} DS → DNSKEY validated")
        soa = await query(zone.to_text(), "SOA")
        if soa.rrset is None or soa.rrsigs is None:
            raise _Bogus(f"{zone}: the SOA is not signed")
        try:
            dns.dnssec.validate(soa.rrset, soa.rrsigs, {zone: keys.keys}, now=stamp)
        except dns.exception.DNSException as exc:  # ValidationFailure, DeniedByPolicy
            raise _Bogus(f"{zone}: the SOA signature does not validate ({exc})") from exc
        chain.append(f"{zone} SOA signature validated")
    except _Bogus as exc:
        published = await _unsigned(name, zone, query, chain)
        return replace(published, status=DnssecStatus.BOGUS, reason=str(exc))
    expiries = [r.expiration for r in (*keys.signatures, *soa.rrsigs)]
    return DnssecFacts(
        name=name,
        zone=zone_text,
        status=DnssecStatus.SECURE,
        chain=tuple(chain),
        algorithms=tuple(sorted({k.algorithm for k in keys.keys})),
        earliest_expiry=dt.datetime.fromtimestamp(min(expiries), dt.UTC),
        records=keys.records,
    )


async def _unsigned(
    name: str, zone: dns.name.Name, query: QueryFunction, chain: list[str]
) -> DnssecFacts:
    """What the zone publishes when the chain does not reach it: keys kept as evidence."""
    dnskey, ds = await asyncio.gather(query(zone.to_text(), "DNSKEY"), query(zone.to_text(), "DS"))
    algorithms = tuple(sorted({k.algorithm for k in dnskey.rrset})) if dnskey.rrset else ()
    return DnssecFacts(
        name=name,
        zone=zone.to_text(omit_final_dot=True) or ".",
        status=DnssecStatus.INSECURE,
        chain=tuple(chain),
        algorithms=algorithms,
        records=(*ds.records, *dnskey.records),
    )
