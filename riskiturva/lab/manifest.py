"""The lab's ground truth: the estate it serves and the findings each part must raise.

`load_manifest()` parses `manifest.toml` into frozen dataclasses. `Manifest.verify()` compares
what a collector found with what the manifest says, both ways, so collector tests read as
one assertion: nothing planted was missed, nothing clean was flagged. `load_manifest(
municipalities=N)` adds clones of the lab's municipalities up to N, a partner's estate for
benchmarks (`benchmarks/bench_estate.py`, `riskiturva lab up --municipalities N`).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

MANIFEST_PATH = Path(__file__).with_name("manifest.toml")

Collector = Literal["tls", "web", "dns_email", "services"]
COLLECTORS: tuple[Collector, ...] = ("tls", "web", "dns_email", "services")
DnssecMode = Literal["signed", "unsigned", "bogus"]
# Services the lab serves with a real daemon per host (vsftpd, redis-server): clones leave
# them out, so that an estate of hundreds does not start hundreds of daemons.
REAL_DAEMON_SERVICES = frozenset({"ftp", "redis"})
MAX_MUNICIPALITIES = 5000  # clones take 127.100.0.0/24 onwards, one /24 each


@dataclass(frozen=True)
class Expectation:
    """What one collector must (or must not) report on one subject."""

    collector: Collector
    subject: str
    checks: tuple[str, ...] = ()
    may: tuple[str, ...] = ()
    clean: bool = False
    # About an asset only discovery finds: checked after its proposal is accepted.
    discovered: bool = False
    error: str | None = None  # an ErrorKind value: the subject cannot be checked, no finding

    def covers(self, subject: str) -> bool:
        """Whether this row is about `subject` (clean rows may use glob patterns; an error
        row also covers the subject's ports, `127.60.3.16:443/tcp`)."""
        if self.clean:
            return fnmatch.fnmatchcase(subject, self.subject)
        if self.error:
            return subject == self.subject or subject.startswith(f"{self.subject}:")
        return subject == self.subject


@dataclass(frozen=True)
class MtaSts:
    mode: str
    mx: tuple[str, ...]


@dataclass(frozen=True)
class Smtp:
    starttls: bool
    tlsa: bool


@dataclass(frozen=True)
class Host:
    """A lab machine: one loopback address and what it serves."""

    fqdn: str
    ip: str
    tls: str | None = None
    cert: str | None = None
    web: str | None = None
    mta_sts: MtaSts | None = None
    smtp: Smtp | None = None
    services: tuple[str, ...] = ()
    extra_names: tuple[str, ...] = ()  # further SANs of its certificate
    ct: bool = True  # its certificate is in the lab's CT log
    links: tuple[str, ...] = ()  # URLs its home page links to


@dataclass(frozen=True)
class Dkim:
    name: str
    bits: int


@dataclass(frozen=True)
class ChildZone:
    """A zone delegated from a municipality's zone: unsigned, no zone transfer."""

    domain: str
    wildcard: str | None = None  # the address `*` answers with
    records: tuple[str, ...] = ()


@dataclass(frozen=True)
class Proposal:
    """An asset discovery must propose, and sources that must be among its evidence."""

    value: str
    kind: str = "host"
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class DiscoveryTruth:
    """What discovery must propose, must not, may, and must list as outside the scope."""

    propose: tuple[Proposal, ...] = ()
    may_propose: tuple[str, ...] = ()
    not_proposed: tuple[str, ...] = ()  # decoys
    outside_scope: tuple[str, ...] = ()


@dataclass(frozen=True)
class Municipality:
    slug: str
    name: Mapping[str, str]
    domain: str
    network: str
    nameservers: tuple[str, ...]
    dnssec: DnssecMode
    axfr: bool
    records: tuple[str, ...]
    dkim: tuple[Dkim, ...]
    hosts: tuple[Host, ...]
    assets: tuple[Mapping[str, Any], ...]
    expect: tuple[Expectation, ...]
    zones: tuple[ChildZone, ...] = ()
    glue: Mapping[str, str] = field(default_factory=dict)  # in-zone nameserver → address
    ptr: Mapping[str, str] = field(default_factory=dict)  # address → name, besides the hosts'
    ct_names: tuple[str, ...] = ()  # names of certificates only the CT log knows
    discovery: DiscoveryTruth = DiscoveryTruth()

    def zone_of(self, fqdn: str) -> str:
        """The zone that holds `fqdn`: a child zone, or the municipality's own."""
        inside = [z.domain for z in self.zones if fqdn == z.domain or fqdn.endswith("." + z.domain)]
        return max(inside, key=len) if inside else self.domain


@dataclass(frozen=True)
class Partner:
    slug: str
    name: str
    domain: str
    nameservers: Mapping[str, str]
    records: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """Differences between what a collector found and the ground truth."""

    missing: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    unexpected: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


@dataclass(frozen=True)
class Manifest:
    parent_zone: str
    signature_days: int
    partner: Partner
    municipalities: tuple[Municipality, ...]

    @property
    def hosts(self) -> tuple[Host, ...]:
        return tuple(h for m in self.municipalities for h in m.hosts)

    @property
    def expectations(self) -> tuple[Expectation, ...]:
        return tuple(e for m in self.municipalities for e in m.expect)

    @property
    def dns_addresses(self) -> tuple[str, ...]:
        """Every address the lab's name server answers on."""
        return tuple(sorted(set(self.partner.nameservers.values())))

    def planted(self, *, discovered: bool = False) -> list[tuple[str, str, str]]:
        """Every (collector, subject, check id) the lab must raise on its declared assets
        (and, with `discovered=True`, on the assets only discovery finds)."""
        return [
            (e.collector, e.subject, c)
            for e in self.expectations
            if discovered or not e.discovered
            for c in e.checks
        ]

    def clean(self) -> list[Expectation]:
        return [e for e in self.expectations if e.clean]

    def errors(self, collector: Collector) -> dict[str, str]:
        """Subject → the error kind the collector must record on it."""
        return {
            e.subject: e.error for e in self.expectations if e.collector == collector and e.error
        }

    def verify_errors(self, collector: Collector, found: Mapping[str, str]) -> Verdict:
        """Compare a collector's errors (subject → kind) with the ground truth, both ways:
        each expected error with its kind, and no error on another subject the manifest lists."""
        expected = self.errors(collector)
        listed = {e.subject for e in self.expectations if e.collector == collector}
        missing = {(s, k) for s, k in expected.items() if found.get(s) != k}
        unexpected = {(s, k) for s, k in found.items() if s in listed and expected.get(s) != k}
        return Verdict(frozenset(missing), frozenset(unexpected))

    def verify(
        self, collector: Collector, found: Iterable[tuple[str, str]], *, discovered: bool = False
    ) -> Verdict:
        """Compare a collector's `(subject, check id)` findings with the ground truth.

        Findings on subjects the manifest does not mention are ignored: the manifest
        speaks only for the endpoints it lists. Rows about assets only discovery finds
        count with `discovered=True` (after their proposals were accepted).
        """
        rows = [
            e
            for e in self.expectations
            if e.collector == collector and (discovered or not e.discovered)
        ]
        found_set = set(found)
        missing = {(e.subject, c) for e in rows for c in e.checks} - found_set
        unexpected = set()
        for subject, check in found_set:
            covering = [e for e in rows if e.covers(subject)]
            if covering and not any(check in e.checks or check in e.may for e in covering):
                unexpected.add((subject, check))
        return Verdict(frozenset(missing), frozenset(unexpected))

    def verify_discovery(
        self, proposed: Iterable[tuple[str, str, frozenset[str]]], outside: Iterable[str]
    ) -> Verdict:
        """Compare discovery's proposals `(kind, value, evidence sources)` and the values it
        listed outside the scope with the ground truth, both ways. `missing` holds planted
        assets not proposed (or without a required source) and outside-scope values not
        listed; `unexpected` holds decoys and anything neither planted nor allowed."""
        by_value = {value: (kind, sources) for kind, value, sources in proposed}
        listed = set(outside)
        missing: set[tuple[str, str]] = set()
        unexpected: set[tuple[str, str]] = set()
        allowed: set[str] = set()
        for m in self.municipalities:
            truth = m.discovery
            for planted in truth.propose:
                allowed.add(planted.value)
                got = by_value.get(planted.value)
                if got is None or got[0] != planted.kind:
                    missing.add(("proposal", planted.value))
                for source in planted.sources:
                    if got is not None and source not in got[1]:
                        missing.add((f"source {source}", planted.value))
            allowed |= set(truth.may_propose)
            missing |= {("outside scope", v) for v in truth.outside_scope if v not in listed}
            unexpected |= {("decoy", v) for v in truth.not_proposed if v in by_value}
        unexpected |= {("not planted", v) for v in by_value if v not in allowed}
        return Verdict(frozenset(missing), frozenset(unexpected))


def _host(raw: Mapping[str, Any], domain: str) -> Host:
    mta = raw.get("mta_sts")
    smtp = raw.get("smtp")
    return Host(
        fqdn=f"{raw['name']}.{domain}",
        ip=str(ipaddress.IPv4Address(raw["ip"])),
        tls=raw.get("tls"),
        cert=raw.get("cert"),
        web=raw.get("web"),
        mta_sts=MtaSts(mta["mode"], tuple(mta["mx"])) if mta else None,
        smtp=Smtp(bool(smtp["starttls"]), bool(smtp["tlsa"])) if smtp else None,
        services=tuple(raw.get("services", ())),
        extra_names=tuple(raw.get("extra_names", ())),
        ct=bool(raw.get("ct", True)),
        links=tuple(raw.get("links", ())),
    )


def _expectation(raw: Mapping[str, Any]) -> Expectation:
    if raw["collector"] not in COLLECTORS:
        raise ValueError(f"unknown collector {raw['collector']!r} in the lab manifest")
    exp = Expectation(
        collector=raw["collector"],
        subject=raw["subject"],
        checks=tuple(raw.get("checks", ())),
        may=tuple(raw.get("may", ())),
        clean=bool(raw.get("clean", False)),
        discovered=bool(raw.get("discovered", False)),
        error=raw.get("error"),
    )
    if [exp.clean, bool(exp.checks), bool(exp.error)].count(True) != 1:
        raise ValueError(f"{exp.subject}: an expectation is clean, lists checks, or names an error")
    if exp.error and exp.may:
        raise ValueError(f"{exp.subject}: a subject that cannot be checked raises nothing")
    return exp


def _municipality(raw: Mapping[str, Any]) -> Municipality:
    domain = raw["domain"]
    network = ipaddress.IPv4Network(raw["network"])
    hosts = tuple(_host(h, domain) for h in raw.get("hosts", ()))
    for host in hosts:
        if ipaddress.IPv4Address(host.ip) not in network:
            raise ValueError(f"{host.fqdn}: {host.ip} is outside {network}")
    return Municipality(
        slug=raw["slug"],
        name=dict(raw["name"]),
        domain=domain,
        network=str(network),
        nameservers=tuple(raw["nameservers"]),
        dnssec=raw["dnssec"],
        axfr=bool(raw.get("axfr", False)),
        records=tuple(raw.get("records", ())),
        dkim=tuple(Dkim(d["name"], int(d["bits"])) for d in raw.get("dkim", ())),
        hosts=hosts,
        assets=tuple(dict(a) for a in raw.get("assets", ())),
        expect=tuple(_expectation(e) for e in raw.get("expect", ())),
        zones=tuple(
            ChildZone(f"{z['name']}.{domain}", z.get("wildcard"), tuple(z.get("records", ())))
            for z in raw.get("zones", ())
        ),
        glue=dict(raw.get("glue", {})),
        ptr=dict(raw.get("ptr", {})),
        ct_names=tuple(raw.get("ct_names", ())),
        discovery=_discovery(raw.get("discovery", {})),
    )


def _discovery(raw: Mapping[str, Any]) -> DiscoveryTruth:
    return DiscoveryTruth(
        propose=tuple(
            Proposal(p["value"], p.get("kind", "host"), tuple(p.get("sources", ())))
            for p in raw.get("propose", ())
        ),
        may_propose=tuple(raw.get("may_propose", ())),
        not_proposed=tuple(raw.get("not_proposed", ())),
        outside_scope=tuple(raw.get("outside_scope", ())),
    )


def _clones(templates: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` clones of the lab's municipalities, in turn: each with its own domain
    (kNNN.test), /24 (127.100.0.0/24 onwards), hosts, assets and planted weaknesses, but no
    expectations of its own (the manifest's truth is the originals'), no discovery truth
    and no services served by a real daemon."""
    clones = []
    for index in range(count):
        template = templates[index % len(templates)]
        prefix = template["network"].rsplit(".", 1)[0] + "."  # 127.60.1.
        clone_prefix = f"127.{100 + index // 250}.{index % 250}."
        domain = f"k{index:03d}.test"
        body = (
            json.dumps(template).replace(template["domain"], domain).replace(prefix, clone_prefix)
        )
        clone = json.loads(body)
        clone["slug"] = f"k{index:03d}"
        clone["name"] = {lang: f"{name} {index}" for lang, name in template["name"].items()}
        clone["expect"], clone["discovery"], clone["ct_names"] = [], {}, []
        for host in clone.get("hosts", []):
            host["services"] = [
                s for s in host.get("services", ()) if s not in REAL_DAEMON_SERVICES
            ]
        clones.append(clone)
    return clones


def load_manifest(path: Path = MANIFEST_PATH, *, municipalities: int | None = None) -> Manifest:
    """Parse and sanity-check the lab manifest; with `municipalities`, the lab's and clones
    of them up to that many in all."""
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    if municipalities is not None:
        own = raw["municipalities"]
        if not len(own) <= municipalities <= MAX_MUNICIPALITIES:
            raise ValueError(
                f"an estate of {municipalities} municipalities: from {len(own)} (the lab's"
                f" own) to {MAX_MUNICIPALITIES}"
            )
        raw["municipalities"] = own + _clones(own, municipalities - len(own))
    partner = raw["partner"]
    manifest = Manifest(
        parent_zone=raw["lab"]["parent_zone"],
        signature_days=int(raw["lab"]["signature_days"]),
        partner=Partner(
            slug=partner["slug"],
            name=partner["name"],
            domain=partner["domain"],
            nameservers=dict(partner["nameservers"]),
            records=tuple(partner.get("records", ())),
        ),
        municipalities=tuple(_municipality(m) for m in raw["municipalities"]),
    )
    for address in (*manifest.dns_addresses, *(h.ip for h in manifest.hosts)):
        if not ipaddress.IPv4Address(address).is_loopback:
            raise ValueError(f"lab address {address} is not on loopback")
    return manifest
