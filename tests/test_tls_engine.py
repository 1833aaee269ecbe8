"""The TLS engine (cipher suites by elimination, sslyze's plugins on our pool) finds what
sslyze's full enumeration finds, on the real lab, in far fewer connections.

Given a lab TLS endpoint, when it is scanned once by the engine and once by a plain sslyze
Scanner running every scan command in full (one handshake per suite and version), then the
facts — versions, suites with their key exchange, certificate, flaws, Mozilla deviations —
and the findings the rules draw from them are the same. Connections are counted by the
kernel (TCP active opens in the test's own network namespace).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from sslyze import Scanner

from collectors.tls import _scan, rules
from collectors.tls._engine import Engine
from collectors.tls._scan import Endpoint, ScanOptions
from collectors.tls.facts import TlsFacts
from collectors.tls.trust import TrustAnchors
from riskiturva.collector import TargetError
from riskiturva.config import PolitenessSettings
from riskiturva.lab.estate import tcp_connections_opened
from riskiturva.lab.manifest import Host
from riskiturva.politeness import Politeness

pytestmark = pytest.mark.lab

NOW = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


def _endpoints(hosts: tuple[Host, ...]) -> list[Endpoint]:
    """Every TLS endpoint of the lab: HTTPS servers, and mail servers offering STARTTLS."""
    found = [Endpoint(h.fqdn, h.ip, 443, "https", h.fqdn) for h in hosts if h.tls]
    found += [
        Endpoint(h.fqdn, h.ip, 25, "smtp", h.fqdn) for h in hosts if h.smtp and h.smtp.starttls
    ]
    return found


def _options(ca_file: Path) -> ScanOptions:
    return ScanOptions("riskiturva-test", 5.0, 1, ca_file)


def _full_enumeration(
    endpoints: list[Endpoint], ca_file: Path
) -> dict[str, TlsFacts | TargetError]:
    requests = _scan.scan_requests(endpoints, _options(ca_file))
    by_uuid = {r.uuid: e for r, e in zip(requests, endpoints, strict=True)}
    scanner = Scanner(per_server_concurrent_connections_limit=5, concurrent_server_scans_limit=20)
    scanner.queue_scans(requests)
    store = TrustAnchors.from_settings((ca_file,)).store()
    return {
        by_uuid[r.uuid].subject: _scan.to_facts(by_uuid[r.uuid], r, store, NOW)
        for r in scanner.get_results()
    }


def _engine(endpoints: list[Endpoint], ca_file: Path) -> dict[str, TlsFacts | TargetError]:
    lab_limits = PolitenessSettings(connections_per_address=10, connections_per_network=400,
                                    new_per_second=5000, burst=500)  # fmt: skip
    engine = Engine(20, 5, Politeness(lab_limits))
    store = TrustAnchors.from_settings((ca_file,)).store()
    results = _scan.run(endpoints, _options(ca_file), store, NOW, engine)
    return {e.subject: facts for e, facts in results}


def _comparable(facts: TlsFacts | TargetError) -> object:
    if isinstance(facts, TargetError):
        return facts
    return dataclasses.replace(facts, suites=tuple(sorted(facts.suites, key=repr)))


def _findings(facts: TlsFacts | TargetError) -> set[tuple[str, str, str]]:
    if isinstance(facts, TargetError):
        return set()
    return {(d.check_id, d.subject or "", repr(d.evidence)) for d in rules.judge(facts)}


def _assert_same(ours: dict, full: dict) -> None:
    assert ours.keys() == full.keys()
    for subject in full:
        assert _findings(ours[subject]) == _findings(full[subject]), subject
        assert _comparable(ours[subject]) == _comparable(full[subject]), subject


def test_a_legacy_and_a_modern_endpoint_give_the_full_enumerations_findings(lab):
    # Given the lab's legacy server (TLS 1.0 to 1.2, anonymous suites, weak DH) and a
    # modern one (TLS 1.2 and 1.3 only)
    hosts = {h.fqdn: h for h in lab.manifest.hosts}
    legacy = [h for h in hosts.values() if h.tls == "legacy"][:1]
    modern = [h for h in hosts.values() if h.tls == "modern"][:1]
    endpoints = _endpoints((*legacy, *modern))
    assert len(endpoints) == 2
    # When each is scanned by the full enumeration and by the engine
    before = tcp_connections_opened()
    full = _full_enumeration(endpoints, lab.ca_file)
    sslyze_connections = tcp_connections_opened() - before
    before = tcp_connections_opened()
    ours = _engine(endpoints, lab.ca_file)
    our_connections = tcp_connections_opened() - before
    # Then the facts and findings are the same, in a fraction of the connections
    _assert_same(ours, full)
    assert {p for f in ours.values() for p in f.protocols_offered} >= {"TLSv1.0", "TLSv1.3"}
    assert our_connections * 4 < sslyze_connections, (our_connections, sslyze_connections)


@pytest.mark.slow
def test_every_lab_tls_endpoint_gives_the_full_enumerations_findings(lab):
    # Given every TLS endpoint of the lab (HTTPS and STARTTLS)
    endpoints = _endpoints(lab.manifest.hosts)
    # When each is scanned by the full enumeration and by the engine
    full = _full_enumeration(endpoints, lab.ca_file)
    ours = _engine(endpoints, lab.ca_file)
    # Then every one has the same facts and findings
    _assert_same(ours, full)
