"""Pure rules: one `HostFacts` in, finding drafts out. No I/O; tested on small facts."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from collectors.services.facts import HostFacts, OpenPort
from riskiturva.collector import ChangeDraft, FindingDraft, Rule, RuleSet

NO_AUTH = "services.database.no_auth"
NEW_PORT = "services.change.new_port"
MAX_SCRIPT_EVIDENCE = 600  # characters of NSE output kept as evidence


@dataclass(frozen=True)
class ServiceRule:
    """An open service that is risky by itself. Severity and words live in the check registry."""

    check_id: str
    services: frozenset[str] = frozenset()  # nmap service names
    products: tuple[str, ...] = ()  # case-insensitive parts of nmap's product name
    ports: frozenset[int] = frozenset()  # only when nmap could not name the service
    protocol: str = "tcp"
    cleartext_only: bool = False  # fires only when no TLS is offered on the port
    database: bool = False  # also look for proof that it answers without authentication

    def matched_by(self, port: OpenPort) -> str | None:
        """How the port matched ("service", "product", "port"), or None."""
        if port.protocol != self.protocol or (self.cleartext_only and port.offers_tls):
            return None
        if port.service in self.services:
            return "service"
        product = port.product.casefold()
        if product and any(p.casefold() in product for p in self.products):
            return "product"
        if port.port in self.ports and not port.identified:
            return "port"
        return None


def _rule(check_id: str, *services: str, ports: tuple[int, ...] = (), **kw: Any) -> ServiceRule:
    return ServiceRule(check_id, frozenset(services), ports=frozenset(ports), **kw)


# One table: service → check id, and why it matters. Severities are in check_data/services.toml.
SERVICE_RULES: tuple[ServiceRule, ...] = (
    # Remote desktop: brute force and pre-auth bugs (BlueKeep); the top ransomware entry point.
    _rule("services.exposed.rdp", "ms-wbt-server", ports=(3389,)),
    # Windows file sharing: wormable bugs (EternalBlue), never meant for the internet.
    _rule("services.exposed.smb", "microsoft-ds", "netbios-ssn", ports=(139, 445)),
    # Remote shells and file transfer that send passwords in clear text.
    _rule("services.exposed.telnet", "telnet", ports=(23,)),
    _rule("services.exposed.ftp", "ftp", ports=(21,), cleartext_only=True),
    # Remote screen control, often with a weak or no password.
    _rule("services.exposed.vnc", "vnc", "vnc-http", ports=(5900, 5901)),
    # Databases: data theft and ransom; critical when they answer without authentication.
    _rule("services.exposed.mysql", "mysql", ports=(3306,), database=True),
    _rule("services.exposed.postgresql", "postgresql", ports=(5432,), database=True),
    _rule("services.exposed.mssql", "ms-sql-s", ports=(1433,), database=True),
    _rule("services.exposed.mongodb", "mongodb", "mongod", ports=(27017,), database=True),
    _rule("services.exposed.redis", "redis", ports=(6379,), database=True),
    _rule(
        "services.exposed.elasticsearch",
        "elasticsearch",
        products=("Elasticsearch",),
        ports=(9200,),
        database=True,
    ),
    _rule("services.exposed.memcached", "memcache", "memcached", ports=(11211,), database=True),
    # SNMP (UDP, only when UDP scanning is on): device configuration readable with a community.
    _rule("services.exposed.snmp", "snmp", ports=(161,), protocol="udp"),
    # Management interfaces of servers, hypervisors and hosting panels.
    _rule(
        "services.exposed.admin_panel",
        "webmin",
        products=(
            "MiniServ",
            "Webmin",
            "cPanel",
            "Plesk",
            "Proxmox",
            "Cockpit",
            "VMware ESXi",
            "Integrated Lights-Out",
            "iDRAC",
            "phpMyAdmin",
        ),
        ports=(2083, 2087, 8006, 9090, 10000),
    ),
    # Login protocols without TLS: passwords readable on the way.
    _rule("services.cleartext.ftp", "ftp", ports=(21,), cleartext_only=True),
    _rule("services.cleartext.telnet", "telnet", ports=(23,), cleartext_only=True),
    _rule("services.cleartext.pop3", "pop3", ports=(110,), cleartext_only=True),
    _rule("services.cleartext.imap", "imap", ports=(143,), cleartext_only=True),
)


@dataclass(frozen=True)
class NoAuthProof:
    """An NSE script whose output shows the server answered a query without credentials.

    Only the `keep` lines go into the evidence: the rest (CPU time, client counts, sizes)
    changes on every scan and would make an unchanged finding look changed.
    """

    script: str
    proof: re.Pattern[str]
    keep: re.Pattern[str]


NO_AUTH_PROOFS: tuple[NoAuthProof, ...] = (
    NoAuthProof(  # INFO answered without AUTH
        "redis-info",
        re.compile(r"^\s*Version:", re.MULTILINE),
        re.compile(r"^\s*(Version|Role):.*$", re.MULTILINE),
    ),
    NoAuthProof(  # stats answered, and the server says SASL is off
        "memcached-info",
        re.compile(r"^\s*Authentication: no\b", re.MULTILINE),
        re.compile(r"^\s*Authentication:.*$", re.MULTILINE),
    ),
    NoAuthProof(  # listDatabases answered
        "mongodb-databases",
        re.compile(r"totalSize"),
        re.compile(r"^\s*name = .*$", re.MULTILINE),
    ),
)
# nmap names Elasticsearch only from a 200 answer carrying the cluster's details.
_OPEN_ELASTICSEARCH = "Elasticsearch REST API"

SCRIPTS: tuple[str, ...] = ("ssl-cert", *(p.script for p in NO_AUTH_PROOFS))


def _services(facts: HostFacts) -> Iterator[FindingDraft]:
    """Risky services by the table above, and databases that answer without a login."""
    for port in facts.open_ports:
        yield from _service_findings(facts.address, port)


def _new_ports(facts: HostFacts) -> Iterator[FindingDraft]:
    baseline = facts.baseline
    for port in facts.open_ports:
        if baseline and baseline.covered(port) and port.key not in baseline.open:
            yield _draft(NEW_PORT, facts.address, port, {"previously_open": sorted(baseline.open)})


def opened_ports(facts: HostFacts) -> list[ChangeDraft]:
    """Ports open now that the previous scan looked at and found closed."""
    if facts.baseline is None:
        return []
    return [
        ChangeDraft(
            "service.port_opened",
            f"{facts.address}:{port.key}",
            {
                "address": facts.address,
                "port": port.port,
                "protocol": port.protocol,
                "service": port.service,
                "product": port.product,
            },
        )
        for port in facts.open_ports
        if facts.baseline.covered(port) and port.key not in facts.baseline.open
    ]


def _service_findings(address: str, port: OpenPort) -> Iterator[FindingDraft]:
    for rule in SERVICE_RULES:
        basis = rule.matched_by(port)
        if basis is None:
            continue
        yield _draft(rule.check_id, address, port, {"matched_by": basis})
        if rule.database:
            proof = no_auth_proof(port)
            if proof is not None:
                script, output = proof
                scripts = (script,) if script else ()
                yield _draft(
                    NO_AUTH,
                    address,
                    port,
                    {"proof": script or "service-probe", "output": output},
                    scripts,
                )


def no_auth_proof(port: OpenPort) -> tuple[str, str] | None:
    """(script id or "" for nmap's probe, what it showed) when the database needed no login."""
    for proof in NO_AUTH_PROOFS:
        output = port.scripts.get(proof.script, "")
        if proof.proof.search(output):
            stable = "\n".join(m.group(0).strip() for m in proof.keep.finditer(output))
            return proof.script, stable[:MAX_SCRIPT_EVIDENCE]
    if port.product == _OPEN_ELASTICSEARCH and port.version:
        return "", f"{port.product} {port.version} ({port.extrainfo})"[:MAX_SCRIPT_EVIDENCE]
    return None


def _draft(
    check_id: str,
    address: str,
    port: OpenPort,
    extra: Mapping[str, Any],
    scripts: tuple[str, ...] = (),
) -> FindingDraft:
    evidence = {
        "address": address,
        "port": port.port,
        "protocol": port.protocol,
        "service": port.service,
        "tunnel": port.tunnel,
        "product": port.product,
        "version": port.version,
        "extrainfo": port.extrainfo,
        "cpe": list(port.cpe),
        **extra,
    }
    return FindingDraft(
        check_id,
        evidence,
        subject=f"{address}:{port.key}",
        reproduce=reproduce_command(address, port, scripts),
    )


def reproduce_command(address: str, port: OpenPort, scripts: tuple[str, ...] = ()) -> str:
    """A command a person can paste: no DNS (-n), no ping (-Pn), only this port."""
    scan = "-sU" if port.protocol == "udp" else "-sT"
    words = ["nmap", "-n", "-Pn", scan, "-sV", "-p", str(port.port)]
    if scripts:
        words += ["--script", ",".join(scripts)]
    return shlex.join([*words, address])


# The collector's check ids are what these rules declare: the service table's ids and two more.
# Outdated and vulnerable software is judged by the vulnerability rules (riskiturva/intel) from
# the software the ports identified (`HostFacts.software`).
RULES: RuleSet[HostFacts] = RuleSet(
    (
        Rule(_services, frozenset({*(r.check_id for r in SERVICE_RULES), NO_AUTH})),
        Rule(_new_ports, frozenset({NEW_PORT})),
    )
)
CHECK_IDS = RULES.check_ids


def judge_host(facts: HostFacts) -> list[FindingDraft]:
    """Every finding for one address: exposure, clear text, no auth, new port."""
    return RULES.judge(facts)
