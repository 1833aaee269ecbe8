"""Zone files and a Knot DNS configuration for the lab estate.

Zones are built from the manifest, signed here with dnspython (one ECDSA P-256 key per
zone, NSEC), and served by Knot DNS as they are. The parent zone `test.` holds the
delegations and DS records; its DNSKEY is the lab's trust anchor. A "bogus" zone is signed
but its parent publishes the DS of a key the zone does not have.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import textwrap
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec
from dns.dnssectypes import Algorithm
from dns.rdtypes.ANY.DNSKEY import DNSKEY

from riskiturva.lab import _intel
from riskiturva.lab._pki import rsa_public_key_b64
from riskiturva.lab.manifest import ChildZone, Manifest, Municipality

TTL = 300
_ALGORITHM = Algorithm.ECDSAP256SHA256


@dataclass(frozen=True)
class ZoneSet:
    """The written zones and what the collectors need to validate them."""

    directory: Path
    zones: tuple[str, ...]
    trust_anchor: str  # `test. 300 IN DNSKEY ...`, the lab's root of trust


def _txt(text: str) -> str:
    """A TXT rdata, split into 255-byte strings (DKIM keys are longer)."""
    return " ".join(f'"{chunk}"' for chunk in textwrap.wrap(text, 255, break_on_hyphens=False))


def nameserver_name(label: str, manifest: Manifest) -> str:
    """A nameserver of the manifest: a label under the partner's domain, or a full name."""
    return label if "." in label else f"{label}.{manifest.partner.domain}"


def _header(origin: str, manifest: Manifest, serial: int, nameservers: list[str]) -> list[str]:
    partner = manifest.partner.domain
    lines = [
        f"$ORIGIN {origin}.",
        f"$TTL {TTL}",
        f"@ SOA ns1.{partner}. hostmaster.{partner}. {serial} 3600 900 1209600 {TTL}",
    ]
    lines += [f"@ NS {nameserver_name(ns, manifest)}." for ns in nameservers]
    return lines


def _municipality_zone(
    m: Municipality, manifest: Manifest, serial: int, tlsa: dict[str, str]
) -> str:
    lines = _header(m.domain, manifest, serial, list(m.nameservers))
    for host in m.hosts:
        if m.zone_of(host.fqdn) != m.domain:
            continue  # in a child zone: written there, never into this zone's NSEC chain
        lines.append(f"{host.fqdn}. A {host.ip}")
        if host.smtp and host.smtp.tlsa:
            lines.append(f"_25._tcp.{host.fqdn}. TLSA 3 1 1 {tlsa[host.fqdn]}")
    for name, address in sorted(m.glue.items()):
        lines.append(f"{name}. A {address}")
    for child in m.zones:
        lines += [f"{child.domain}. NS {nameserver_name(ns, manifest)}." for ns in m.nameservers]
    keys: dict[int, str] = {}
    for d in m.dkim:
        if d.bits not in keys:
            keys[d.bits] = rsa_public_key_b64(d.bits)
        lines.append(f"{d.name} TXT {_txt(f'v=DKIM1; k=rsa; p={keys[d.bits]}')}")
    lines += m.records
    return "\n".join(lines) + "\n"


def _child_zone(m: Municipality, child: ChildZone, manifest: Manifest, serial: int) -> str:
    lines = _header(child.domain, manifest, serial, list(m.nameservers))
    lines += [f"{h.fqdn}. A {h.ip}" for h in m.hosts if m.zone_of(h.fqdn) == child.domain]
    if child.wildcard:
        lines.append(f"* A {child.wildcard}")
    lines += child.records
    return "\n".join(lines) + "\n"


def _reverse_zones(manifest: Manifest, serial: int) -> dict[str, str]:
    """One `c.b.a.in-addr.arpa` zone per /24 of the estate: PTRs of the hosts in the
    municipalities' own zones, of the name servers, and the manifest's extra ones."""
    records: dict[str, str] = {}
    for m in manifest.municipalities:
        records |= {h.ip: h.fqdn for h in m.hosts if m.zone_of(h.fqdn) == m.domain}
        records |= dict(m.ptr)
    for label, address in manifest.partner.nameservers.items():
        records[address] = f"{label}.{manifest.partner.domain}"
    networks = {ipaddress.ip_network(f"{m.network}", strict=False) for m in manifest.municipalities}
    networks |= {ipaddress.ip_network(f"{a}/24", strict=False) for a in manifest.dns_addresses}
    zones = {}
    for network in sorted(networks):
        a, b, c, _ = str(network.network_address).split(".")
        origin = f"{c}.{b}.{a}.in-addr.arpa"
        lines = _header(origin, manifest, serial, sorted(manifest.partner.nameservers))
        for address, name in sorted(records.items()):
            if ipaddress.ip_address(address) in network:
                lines.append(f"{address.rsplit('.', 1)[1]} PTR {name}.")
        zones[origin] = "\n".join(lines) + "\n"
    return zones


def _partner_zone(manifest: Manifest, serial: int) -> str:
    partner = manifest.partner
    lines = _header(partner.domain, manifest, serial, sorted(partner.nameservers))
    lines += [f"{ns} A {ip}" for ns, ip in sorted(partner.nameservers.items())]
    lines += [f"feeds A {_intel.feeds_address(manifest)}"]  # `riskiturva intel update`'s source
    lines += partner.records
    return "\n".join(lines) + "\n"


def _new_key() -> tuple[ec.EllipticCurvePrivateKey, DNSKEY]:
    key = ec.generate_private_key(ec.SECP256R1())
    # Flags 257: a combined signing key with the SEP bit, as Knot's "CSK" does.
    return key, dns.dnssec.make_dnskey(key.public_key(), _ALGORITHM, flags=257)


def _sign(
    text: str,
    origin: str,
    key: tuple[ec.EllipticCurvePrivateKey, DNSKEY],
    now: dt.datetime,
    days: int,
) -> dns.zone.Zone:
    zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=True)
    dns.dnssec.sign_zone(
        zone,
        keys=[key],
        inception=now - dt.timedelta(hours=1),
        expiration=now + dt.timedelta(days=days),
        dnskey_ttl=TTL,
    )
    return zone


def build_zones(
    manifest: Manifest, directory: Path, now: dt.datetime, tlsa: dict[str, str]
) -> ZoneSet:
    """Write every zone file, signed as the manifest says, to `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    serial = int(now.timestamp())
    parent = manifest.parent_zone
    children: list[tuple[str, str, tuple[str, ...], str]] = [
        (m.domain, _municipality_zone(m, manifest, serial, tlsa), m.nameservers, m.dnssec)
        for m in manifest.municipalities
    ]
    partner_ns = tuple(sorted(manifest.partner.nameservers))
    children.append(
        (manifest.partner.domain, _partner_zone(manifest, serial), partner_ns, "signed")
    )

    parent_lines = [*_header(parent, manifest, serial, list(partner_ns))]
    for domain, text, nameservers, mode in children:
        parent_lines += [f"{domain}. NS {nameserver_name(ns, manifest)}." for ns in nameservers]
        if mode == "unsigned":
            zone = dns.zone.from_text(text, origin=domain, relativize=False)
        else:
            key = _new_key()
            zone = _sign(text, domain, key, now, manifest.signature_days)
            # A bogus zone's parent still points at the key it "rolled" away from.
            ds_key = _new_key()[1] if mode == "bogus" else key[1]
            ds = dns.dnssec.make_ds(f"{domain}.", ds_key, "SHA256")
            parent_lines.append(f"{domain}. DS {ds.to_text()}")  # type: ignore[no-untyped-call]
        zone.to_file(str(directory / f"{domain}.zone"), relativize=False)

    extra: list[tuple[str, str]] = [
        (child.domain, _child_zone(m, child, manifest, serial))
        for m in manifest.municipalities
        for child in m.zones
    ]
    extra += sorted(_reverse_zones(manifest, serial).items())
    for domain, text in extra:
        zone = dns.zone.from_text(text, origin=domain, relativize=False)
        zone.to_file(str(directory / f"{domain}.zone"), relativize=False)

    parent_key = _new_key()
    parent_zone = _sign("\n".join(parent_lines) + "\n", parent, parent_key, now,
                        manifest.signature_days)  # fmt: skip
    parent_zone.to_file(str(directory / f"{parent}.zone"), relativize=False)
    anchor = dns.rrset.from_rdata(dns.name.from_text(parent), TTL, parent_key[1])
    return ZoneSet(
        directory=directory,
        zones=(parent, *(c[0] for c in children), *(domain for domain, _ in extra)),
        trust_anchor=anchor.to_text(),
    )


def knot_config(
    manifest: Manifest,
    zones: ZoneSet,
    rundir: Path,
    listen: list[tuple[str, int]],
) -> str:
    """A Knot DNS configuration serving `zones` on the `listen` addresses only."""
    axfr_zones = {m.domain for m in manifest.municipalities if m.axfr}
    zone_lines = []
    for zone in zones.zones:
        zone_lines.append(f'  - domain: "{zone}"')
        if zone in axfr_zones:
            zone_lines.append("    acl: [open_transfer]")
    listen_items = ", ".join(f'"{ip}@{port}"' for ip, port in listen)
    return "\n".join(
        [
            "server:",
            f'    rundir: "{rundir}"',
            f"    listen: [ {listen_items} ]",
            '    identity: "riskiturva-lab"',
            "log:",
            "  - target: stderr",
            "    any: info",
            "database:",
            f'    storage: "{rundir}"',
            "acl:",
            "  - id: open_transfer",
            "    address: [ 0.0.0.0/0, ::/0 ]",
            "    action: transfer",
            "template:",
            "  - id: default",
            f'    storage: "{zones.directory}"',
            '    file: "%s.zone"',
            "    zonefile-sync: -1",
            "    zonefile-load: whole",
            "    journal-content: none",
            "    semantic-checks: off",
            "zone:",
            *zone_lines,
            "",
        ]
    )
