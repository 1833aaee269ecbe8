"""Discovery on the real lab: every planted asset proposed, no decoy, nothing sent outside
the scope (a packet capture on loopback proves it), and accepted proposals scanned."""

from __future__ import annotations

import ipaddress
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from riskiturva.collector import discover_collectors
from riskiturva.config import Config, load_config
from riskiturva.db import open_store
from riskiturva.discovery import run_discovery
from riskiturva.inventory import accept, list_assets
from riskiturva.models import ChangeEvent, Finding
from riskiturva.runner import build_context, run_scan
from tests.conftest import queued, seen_outside

pytestmark = pytest.mark.lab

OUTSIDE_NETWORK = ipaddress.ip_network("127.70.0.0/16")  # the lab's out-of-scope addresses


def lab_config(lab, database: Path) -> Config:
    config = load_config(lab.config_path)
    settings = config.settings.model_copy(update={"database_url": f"sqlite:///{database}"})
    return config.model_copy(update={"settings": settings})


@contextmanager
def capture(path: Path) -> Iterator[None]:
    """tcpdump on loopback into `path` while the block runs (every packet, whole)."""
    tcpdump = shutil.which("tcpdump") or "/usr/bin/tcpdump"
    process = subprocess.Popen(
        [tcpdump, "-i", "lo", "-n", "-U", "-s", "0", "-w", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 10
    line = process.stderr.readline()
    while "listening on" not in line and time.monotonic() < deadline:
        line = process.stderr.readline()
    assert "listening on" in line, "tcpdump did not start"
    try:
        yield
    finally:
        time.sleep(0.3)  # let the last packets reach the file
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


@dataclass(frozen=True)
class Packet:
    source: str
    destination: str
    port: int
    text: str


_LINE = re.compile(r"IP6? (\S+)\.(\d+) > (\S+)\.(\d+): (.*)")


def read_capture(path: Path) -> list[Packet]:
    out = subprocess.run(
        ["tcpdump", "-r", str(path), "-n", "-tt"], capture_output=True, text=True, check=True
    ).stdout
    packets = []
    for line in out.splitlines():
        match = _LINE.search(line)
        if match:
            source, _, destination, port, text = match.groups()
            packets.append(Packet(source, destination, int(port), text))
    return packets


@dataclass(frozen=True)
class Discovered:
    config: Config
    sessions: object
    packets: list[Packet]
    proposals: set[tuple[str, str, frozenset[str]]]
    outside: set[str]


@pytest.fixture(scope="module")
def discovered(lab, tmp_path_factory) -> Discovered:
    """A fresh store: the declared assets scanned by tls and web (their certificates and
    links are sources), then one discovery run under a packet capture."""
    folder = tmp_path_factory.mktemp("discovery")
    config = lab_config(lab, folder / "rt.db")
    sessions = open_store(config)
    collectors = discover_collectors()
    run_scan(sessions, config, [collectors["tls"], collectors["web"]])
    pcap = folder / "discover.pcap"
    with capture(pcap):
        report = run_discovery(sessions, config, context=build_context(config))
    assert report.status == "ok", report
    visible = [o.slug for o in config.organisations]
    with sessions() as session:
        proposals = {
            (a.kind, a.value, frozenset(e.source for e in a.evidence))
            for a in queued(session, visible)
        }
        outside = {s.value for s in seen_outside(session, visible)}
    return Discovered(config, sessions, read_capture(pcap), proposals, outside)


def test_discovery_proposes_every_planted_asset_and_no_decoy(lab, discovered):
    verdict = lab.manifest.verify_discovery(discovered.proposals, discovered.outside)
    assert verdict.ok, verdict


def test_nothing_is_sent_outside_the_scope(lab, discovered):
    config = discovered.config
    packets = discovered.packets
    assert packets, "the capture saw nothing: it did not record the run"
    # Not one packet to or from an address outside the declared networks, although
    # vuokraus.hyvala.test and vpn.seutu.sekala.test resolve there.
    strays = [
        p
        for p in packets
        for a in (p.source, p.destination)
        if ipaddress.ip_address(a) in OUTSIDE_NETWORK
    ]
    assert strays == []
    # Everything discovery sent went to the configured resolver (one in-scope nameserver
    # also gave the open zone transfer there) or to the configured CT service.
    resolver = (config.settings.resolver.nameservers[0], config.settings.resolver.port)
    ct = urlsplit(config.settings.discovery.ct.url)
    ct_service = (ct.hostname, ct.port or 80)
    sent_to = {(p.destination, p.port) for p in packets if p.port in (53, ct_service[1])}
    assert sent_to == {resolver, ct_service}
    # Every DNS question names something inside a scope: a declared domain, or the
    # reverse name of an address in a declared network. The outside names it listed
    # (e.g. autodiscover.outlook.test, ns1.kuntaverkko.test) were never asked about.
    domains = [d for o in config.organisations for d in o.scope.domains]
    networks = [n for o in config.organisations for n in o.scope.networks]
    questions = {
        m.group(1).rstrip(".").lower()
        for p in packets
        if p.port == 53
        for m in re.finditer(r" (?:A|AAAA|NS|MX|TXT|SRV|NSEC|DS|PTR|AXFR)\? (\S+) ", p.text)
    }
    assert questions, "no DNS question was decoded from the capture"
    outside_questions = set()
    for name in questions:
        if name.endswith(".in-addr.arpa"):
            octets = name.removesuffix(".in-addr.arpa").split(".")[::-1]
            if not any(ipaddress.ip_address(".".join(octets)) in n for n in networks):
                outside_questions.add(name)
        elif not any(name == d or name.endswith("." + d) for d in domains):
            outside_questions.add(name)
    assert outside_questions == set()
    for listed in ("autodiscover.outlook.test", "ns1.kuntaverkko.test", "127.70.0.10"):
        assert listed in discovered.outside


def test_guessing_in_a_wildcard_zone_proposes_only_what_differs_from_the_wildcard(discovered):
    in_wildcard_zone = {
        v for _, v, _ in discovered.proposals if v.endswith(".kampanjat.hyvala.test")
    }
    assert in_wildcard_zone == {"palaute.kampanjat.hyvala.test"}


def test_a_second_run_adds_no_proposals_and_no_events(discovered):
    config, sessions = discovered.config, discovered.sessions
    with sessions() as session:
        events = session.scalar(select(ChangeEvent.id).order_by(ChangeEvent.id.desc()).limit(1))
    report = run_discovery(sessions, config, context=build_context(config))
    assert sum(c.proposed for c in report.organisations.values()) == 0
    with sessions() as session:
        later = list(session.scalars(select(ChangeEvent).where(ChangeEvent.id > events)))
    assert [e.kind for e in later] == []


def copy_of_lab_config(lab, folder: Path) -> Path:
    """The lab's configuration file with its own database in `folder`."""
    text_ = lab.config_path.read_text(encoding="utf-8")
    path = folder / "riskiturva.toml"
    database = f'database_url = "sqlite:///{folder / "rt.db"}"'
    path.write_text(text_.replace("[settings]\n", f"[settings]\n{database}\n", 1), "utf-8")
    return path


def test_the_scheduled_discovery_job_runs_from_its_stored_reference(lab, tmp_path):
    import importlib

    from riskiturva import scheduler
    from riskiturva.models import ScanRun

    path = copy_of_lab_config(lab, tmp_path)
    config = load_config(path)
    job = {s.id: s for s in scheduler.job_specs(config, path, [])}["discovery:daily"]
    module, function = job.func.split(":")
    getattr(importlib.import_module(module), function)(*job.args)
    sessions = open_store(config)
    with sessions() as session:
        [run] = session.scalars(select(ScanRun).where(ScanRun.collector == "discovery"))
        queue = {a.value for a in queued(session, [o.slug for o in config.organisations])}
    assert (run.trigger, run.status) == ("scheduler", "ok")
    assert {"budjetti2019.hyvala.test", "varmuuskopio.rapala.test"} <= queue


@pytest.mark.slow
def test_accepted_proposals_are_scanned_and_raise_their_findings(lab, discovered):
    config, sessions = discovered.config, discovered.sessions
    visible = [o.slug for o in config.organisations]
    import datetime as dt

    with sessions.begin() as session:
        ids = [a.id for a in queued(session, visible)]
        accept(session, ids, visible=visible, actor="test", now=dt.datetime.now(dt.UTC))
    run_scan(sessions, config, list(discover_collectors().values()))
    with sessions() as session:
        found = {(f.collector, f.subject, f.check_id) for f in session.scalars(select(Finding))}
        active = {a.value for a in list_assets(session, visible, states=["active"])}
    assert "tulostin-3krs.seutu.sekala.test" in active
    for collector in ("tls", "web", "services"):
        pairs = {(s, c) for name, s, c in found if name == collector}
        verdict = lab.manifest.verify(collector, pairs, discovered=True)
        assert verdict.ok, (collector, verdict)


def test_a_name_gone_on_consecutive_runs_is_proposed_for_retirement_never_deleted(lab, tmp_path):
    import datetime as dt

    from riskiturva.inventory import add

    config = lab_config(lab, tmp_path / "rt.db")
    discovery = config.settings.discovery.model_copy(
        update={"gone_after_runs": 2, "sources": ("dns_records",)}
    )
    config = config.model_copy(
        update={"settings": config.settings.model_copy(update={"discovery": discovery})}
    )
    sessions = open_store(config)
    with sessions.begin() as session:
        from riskiturva.store import sync_config

        sync_config(session, config)
        add(session, config, organisation="rapala", kind="host", value="poistunut.rapala.test",
            visible=["rapala"], actor="test", now=dt.datetime.now(dt.UTC))  # fmt: skip
    kinds = []
    for _ in range(3):
        run_discovery(sessions, config, context=build_context(config))
        with sessions() as session:
            [asset] = [a for a in queued(session, ["rapala"]) if a.value.startswith("poist")] or [
                None
            ]
            kinds.append(asset.gone_runs if asset else None)
    assert kinds == [None, 2, 3]
    with sessions() as session:
        [gone] = session.scalars(select(ChangeEvent).where(ChangeEvent.kind == "asset.gone"))
        assert gone.subject == "poistunut.rapala.test"
        active = {a.value for a in list_assets(session, ["rapala"], states=["active"])}
    assert "poistunut.rapala.test" in active  # still scanned until a person decides
