"""Services collector against real nmap: our own small listeners, then the lab estate.

Run inside a loopback-only namespace (`make test`). Listeners bind 127.66.x.y with explicit
ports; nmap always gets explicit port lists. nmap is reached through `nmap_path`: a wrapper
script that records every command line and then runs the real binary, so a test can prove
which addresses nmap saw.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from collectors.services import ServicesCollector
from riskiturva import db
from riskiturva.collector import ErrorKind, ScanTask, SubjectStatus, Target
from riskiturva.config import AssetKind, Config, load_config
from riskiturva.intel.update import import_directory
from riskiturva.models import Finding, ScanError, SubjectState
from riskiturva.runner import build_context, run_collector
from riskiturva.store import make_engine, session_factory
from tests.conftest import T0

NMAP = shutil.which("nmap")
pytestmark = pytest.mark.skipif(NMAP is None, reason="nmap is not installed (apt-get install nmap)")

FAST = {"timing": 4, "host_timeout": 20}


# --- helpers -----------------------------------------------------------------------------


class RecordingNmap:
    """A wrapper around the real nmap that appends each scan's arguments to a log."""

    def __init__(self, directory: Path, real: str | None = NMAP):
        self.log = directory / "nmap-calls.log"
        self.path = directory / "nmap"
        self.path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{self.log}"\nexec {real} "$@"\n')
        self.path.chmod(0o755)

    @property
    def scans(self) -> list[list[str]]:
        """Argument lists of the scans run (python-nmap's `-V` version probe left out)."""
        if not self.log.exists():
            return []
        return [line.split() for line in self.log.read_text().splitlines() if line != "-V"]


@contextmanager
def listening(
    address: str, port: int, greeting: bytes = b"", replies: dict | None = None, silent=False
):
    """A TCP listener: greets, answers messages starting with a known word, hangs up on any
    other message (so -sV moves on quickly); a `silent` one holds connections and says nothing."""
    server = socket.create_server((address, port))
    server.settimeout(0.2)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(greeting)
                conn.settimeout(0.2 if silent else 10)
                while not stop.is_set():
                    try:
                        data = conn.recv(4096)
                    except TimeoutError:
                        continue
                    answer = next(
                        (a for w, a in (replies or {}).items() if data.upper().startswith(w)), None
                    )
                    if silent:
                        continue
                    if not data or answer is None:
                        return
                    conn.sendall(answer)
            except OSError:
                pass

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        server.close()


@contextmanager
def redis_with_password(address: str) -> Iterator[None]:
    redis = shutil.which("redis-server")
    if redis is None:
        pytest.skip("redis-server is not installed")
    process = subprocess.Popen(
        [redis, "--bind", address, "--port", "6379", "--save", "", "--appendonly", "no",
         "--requirepass", "lab-secret-1", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex((address, 6379)) == 0:
                    break
            time.sleep(0.02)
        yield
    finally:
        process.terminate()
        process.wait(5)


def config(options: dict, assets: list[dict], networks: list[str]) -> Config:
    return Config.model_validate(
        {
            "settings": {
                "resolver": {"nameservers": ["127.0.0.1"]},
                "collectors": {"services": options},
            },
            "organisations": [
                {
                    "slug": "testila",
                    "name": {"fi": "Testilä", "sv": "Testilä", "en": "Testilä"},
                    "scope": {"domains": ["testila.test"], "networks": networks},
                    "assets": assets,
                }
            ],
        }
    )


def ip_assets(*addresses: str) -> list[dict]:
    return [{"kind": "ip", "value": a} for a in addresses]


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """SQLite only: these tests are about nmap, and each scan takes seconds."""
    engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    db.upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def scan(sessions, cfg: Config, clock: Clock):
    context = build_context(cfg, sessions=sessions, clock=clock)
    return run_collector(sessions, cfg, ServicesCollector(), context=context)


def findings(sessions) -> dict[tuple[str, str], str]:
    """(subject, check id) → status."""
    with sessions() as session:
        return {(f.subject, f.check_id): f.status for f in session.scalars(select(Finding))}


def errors(sessions, run_id: int) -> dict[str, str]:
    with sessions() as session:
        rows = session.scalars(select(ScanError).filter_by(run_id=run_id))
        return {e.subject: e.kind for e in rows}


# --- our own listeners -------------------------------------------------------------------

TELNETD = b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27"  # a Linux telnetd's negotiation
POP3 = ("127.66.0.3", 110, b"+OK Dovecot ready.\r\n", {b"CAPA": b"+OK\r\nUSER\r\nTOP\r\n.\r\n"})
IMAP = (
    "127.66.0.3",
    143,
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE AUTH=PLAIN] Dovecot ready.\r\n",
    {b"A": b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nA OK done\r\n"},
)


def test_mail_login_without_tls_in_one_nmap_process(sessions, tmp_path):
    # Given POP3 and IMAP without STARTTLS on one address, and nothing on another
    nmap = RecordingNmap(tmp_path)
    cfg = config(
        {**FAST, "ports": [110, 143], "nmap_path": str(nmap.path)},
        ip_assets("127.66.0.3", "127.66.0.4"),
        ["127.66.0.0/24"],
    )
    with listening(*POP3), listening(*IMAP):
        # When the collector scans both addresses
        report = scan(sessions, cfg, Clock())
    # Then clear-text mail logins are reported, and the quiet address is scanned clean
    assert (report.status, report.ok) == ("ok", 2), report.message
    assert set(findings(sessions)) == {
        ("127.66.0.3:110/tcp", "services.cleartext.pop3"),
        ("127.66.0.3:143/tcp", "services.cleartext.imap"),
    }
    # And both addresses went to one nmap process, 2024 excluded, no DNS
    (argv,) = nmap.scans
    assert {"127.66.0.3", "127.66.0.4"} <= set(argv)
    assert "-n" in argv and argv[argv.index("--exclude-ports") + 1] == "2024"


class CountingListeners:
    """SSH greetings on `ports` of one address; the most connections open there at once (a
    connection counts until the kernel sees the client's end closed, read at each accept)."""

    def __init__(self, address: str, ports: list[int]) -> None:
        self.servers = [socket.create_server((address, port), backlog=64) for port in ports]
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        self.most = self.accepted = 0
        for server in self.servers:
            threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with self.lock:
                self.open = [c for c in self.open if _established(c)] + [conn]
                self.accepted += 1
                self.most = max(self.most, len(self.open))
            threading.Thread(target=self._greet, args=(conn,), daemon=True).start()

    @staticmethod
    def _greet(conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n")
                conn.settimeout(10)
                while conn.recv(4096):
                    pass
            except OSError:
                pass

    def close(self) -> None:
        for server in self.servers:
            server.close()


def _established(conn: socket.socket) -> bool:
    try:
        return conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == 1
    except OSError:
        return False


def test_nmap_keeps_to_its_share_of_the_politeness_limits(sessions, tmp_path):
    # Given eight open SSH ports on one address, and politeness of 2 connections in its network
    # and 40 new ones per second, shared by 4 tasks at once
    nmap = RecordingNmap(tmp_path)
    ports = [22, *range(2201, 2208)]
    cfg = config(
        {**FAST, "ports": ports, "nmap_path": str(nmap.path)},
        ip_assets("127.66.0.9"),
        ["127.66.0.0/24"],
    )
    limits = {"connections_per_address": 2, "connections_per_network": 2, "new_per_second": 40}
    settings = cfg.settings.model_copy(
        update={"politeness": cfg.settings.politeness.model_validate(limits)}
    )
    cfg = cfg.model_copy(update={"settings": settings})
    listeners = CountingListeners("127.66.0.9", ports)
    try:
        # When the collector scans it
        report = scan(sessions, cfg, Clock())
    finally:
        listeners.close()
    # Then nmap was given its share (the rate over the 4 tasks, the network's connections)
    (argv,) = nmap.scans
    assert argv[argv.index("--max-rate") + 1] == "10"
    assert argv[argv.index("--max-parallelism") + 1] == "2"
    # And the server never saw more than 2 connections at once, for all 8 ports found
    assert (report.status, report.ok) == ("ok", 1), report.message
    assert listeners.accepted >= len(ports)
    assert listeners.most <= 2
    with sessions() as session:
        state = session.scalars(select(SubjectState)).one()
    assert sorted(p["port"] for p in state.last_observation["open_ports"]) == ports


@pytest.mark.slow  # nmap's -sV waits ~16 s on a Redis that answers NOAUTH
def test_redis_that_requires_a_password_is_exposed_but_not_open(sessions):
    cfg = config({**FAST, "ports": [6379]}, ip_assets("127.66.0.4"), ["127.66.0.0/24"])
    with redis_with_password("127.66.0.4"):
        report = scan(sessions, cfg, Clock())
    assert report.status == "ok", report.message
    assert set(findings(sessions)) == {("127.66.0.4:6379/tcp", "services.exposed.redis")}


def test_new_port_is_reported_once_against_the_previous_successful_scan(sessions, tmp_path):
    clock = Clock()
    cfg = config({**FAST, "ports": [22, 8080]}, ip_assets("127.66.0.5"), ["127.66.0.0/24"])
    ssh = ("127.66.0.5", 22, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    # Given a first scan with only SSH open: a baseline, no "new" findings
    with listening(*ssh):
        assert scan(sessions, cfg, clock).status == "ok"
        assert findings(sessions) == {}
        # When port 8080 opens before next week's scan
        clock.now += dt.timedelta(days=7)
        answer = b"HTTP/1.0 200 OK\r\nServer: Jetty(9.4.z)\r\n\r\n"
        with listening("127.66.0.5", 8080, answer):
            scan(sessions, cfg, clock)
        # Then it is a new exposed service
        assert findings(sessions) == {("127.66.0.5:8080/tcp", "services.change.new_port"): "open"}
        # And when it is still open (or closed) a week later, the change is no longer news
        clock.now += dt.timedelta(days=7)
        scan(sessions, cfg, clock)
    assert findings(sessions) == {("127.66.0.5:8080/tcp", "services.change.new_port"): "resolved"}


def test_host_timeout_is_an_error_that_keeps_earlier_findings_open(sessions, tmp_path):
    clock = Clock()
    telnet = ("127.66.0.6", 23, TELNETD + b"\r\nDebian GNU/Linux 12\r\npalvelin login: ")
    cfg = config({**FAST, "ports": [23, 8081]}, ip_assets("127.66.0.6"), ["127.66.0.0/24"])
    with listening(*telnet):
        scan(sessions, cfg, clock)
    assert set(findings(sessions)) == {
        ("127.66.0.6:23/tcp", "services.exposed.telnet"),
        ("127.66.0.6:23/tcp", "services.cleartext.telnet"),
    }
    # Given telnet is gone but a port that never answers keeps -sV waiting past the budget
    clock.now += dt.timedelta(days=7)
    slow = config(
        {"timing": 4, "host_timeout": 2, "ports": [23, 8081]},
        ip_assets("127.66.0.6"),
        ["127.66.0.0/24"],
    )
    with listening("127.66.0.6", 8081, silent=True):
        report = scan(sessions, slow, clock)
    # Then the run records a timeout, and nothing is resolved as "port closed"
    assert report.status == "partial"
    assert errors(sessions, report.run_id) == {"127.66.0.6": "timeout"}
    assert set(findings(sessions).values()) == {"open"}
    # And the silent port is still reported as open, without a version
    with sessions() as session:
        state = session.scalar(select(SubjectState).filter_by(subject="127.66.0.6"))
        message = session.scalar(select(ScanError.message).filter_by(run_id=report.run_id))
    assert state.last_status == "partial"
    assert "8081/tcp are reported without versions" in message


FAKE_NMAP = """#!/bin/sh
if [ "$1" = "-V" ]; then echo "Nmap version 7.93 ( https://nmap.org )"; exit 0; fi
cat "{xml}"
"""
REPORT = """<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" version="7.93">
<scaninfo type="connect" protocol="tcp" numservices="2" services="23,3389"/>
<host><status state="down" reason="no-response"/><address addr="127.66.1.1" addrtype="ipv4"/>
</host>
<host><status state="up" reason="syn-ack"/><address addr="127.66.1.2" addrtype="ipv4"/>
<ports><extraports state="filtered" count="2"/></ports></host>
<runstats><finished time="1" elapsed="0.1" exit="success"/><hosts up="1" down="1" total="3"/>
</runstats></nmaprun>
"""


def test_down_filtered_and_missing_hosts_are_errors_never_closed_ports(sessions, tmp_path):
    # Given nmap's report (canned here: loopback always answers) of a down host, a host whose
    # every port is filtered, and a host nmap left out of its report altogether
    (tmp_path / "report.xml").write_text(REPORT)
    fake = tmp_path / "nmap"
    fake.write_text(FAKE_NMAP.format(xml=tmp_path / "report.xml"))
    fake.chmod(0o755)
    cfg = config(
        {"ports": [23, 3389], "nmap_path": str(fake)},
        ip_assets("127.66.1.1", "127.66.1.2", "127.66.1.3"),
        ["127.66.1.0/24"],
    )
    # When the collector reads it
    report = scan(sessions, cfg, Clock())
    # Then all three are recorded errors: no data, so nothing could be resolved
    assert report.ok == 0
    assert errors(sessions, report.run_id) == {
        "127.66.1.1": "unreachable",
        "127.66.1.2": "unreachable",
        "127.66.1.3": "unreachable",
    }


def test_collector_refuses_out_of_scope_addresses_even_without_the_runner(tmp_path):
    # Given a task that (wrongly) carries an address outside the organisation's networks
    nmap = RecordingNmap(tmp_path)
    cfg = config(
        {**FAST, "ports": [22], "nmap_path": str(nmap.path)},
        ip_assets("127.66.0.7"),
        ["127.66.0.0/24"],
    )
    task = ScanTask(
        1,
        "testila",
        "services",
        (
            Target("127.66.0.7", AssetKind.IP, address="127.66.0.7"),
            Target("127.67.0.7", AssetKind.IP, address="127.67.0.7"),
            Target("bad", AssetKind.IP, address="not-an-address; id"),
        ),
    )
    # When the collector runs it
    observations = {o.subject: o for o in ServicesCollector().collect(task, build_context(cfg))}
    # Then only the in-scope address reached nmap; the others are errors on the run
    (argv,) = nmap.scans
    assert "127.66.0.7" in argv and not any("127.67" in a or a == "id" for a in argv)
    assert observations["127.67.0.7"].error.kind is ErrorKind.OUT_OF_SCOPE
    assert observations["bad"].error.kind is ErrorKind.INTERNAL
    assert observations["127.66.0.7"].status is SubjectStatus.OK


def test_network_asset_yields_one_observation_per_answering_address(tmp_path):
    cfg = config(
        {**FAST, "ports": [22]}, [{"kind": "network", "value": "127.66.2.0/30"}], ["127.66.2.0/24"]
    )
    task = ScanTask(
        1,
        "testila",
        "services",
        (Target("127.66.2.0/30", AssetKind.NETWORK, address="127.66.2.0/30"),),
    )
    with listening("127.66.2.1", 22, b"SSH-2.0-OpenSSH_7.4\r\n"):
        observations = list(ServicesCollector().collect(task, build_context(cfg)))
    by_subject = {o.subject: o for o in observations}
    # Loopback answers for every address of the /30; each is its own subject under the asset
    assert set(by_subject) == {f"127.66.2.{i}" for i in range(4)}
    assert {o.asset for o in observations} == {"127.66.2.0/30"}
    (ssh,) = by_subject["127.66.2.1"].facts.open_ports
    assert (ssh.service, ssh.version) == ("ssh", "7.4")


def test_missing_nmap_fails_the_run_with_the_package_to_install(sessions, tmp_path):
    cfg = config(
        {"nmap_path": str(tmp_path / "no-nmap-here")}, ip_assets("127.66.0.8"), ["127.66.0.0/24"]
    )
    report = scan(sessions, cfg, Clock())
    assert report.status == "failed"
    assert "apt-get install nmap" in report.message


@pytest.mark.parametrize(
    ("script", "detail"),
    [
        ('echo "Segmentation fault" >&2; exit 139', "`nmap -V` exited with 139: Segmentation"),
        ("echo 'garbage'", "`nmap -V` printed no version: garbage"),
        (
            'if [ "$1" = "-V" ]; then echo "Nmap version 7.93 ( https://nmap.org )"; exit 0; fi\n'
            "echo '<nmaprun><host>'",
            "the scan failed: b'<nmaprun><host>",
        ),
    ],
)
def test_an_nmap_that_does_not_work_is_named_broken_and_fails_the_run(
    sessions, tmp_path, script, detail
):
    # Given an nmap binary that is there but crashes, prints garbage, or reports nonsense
    broken = tmp_path / "nmap"
    broken.write_text(f"#!/bin/sh\n{script}\n")
    broken.chmod(0o755)
    cfg = config({"nmap_path": str(broken)}, ip_assets("127.66.0.8"), ["127.66.0.0/24"])
    # When a scan runs
    report = scan(sessions, cfg, Clock())
    # Then the run failed, and says nmap is broken (not "not found")
    assert report.status == "failed"
    assert f"nmap at '{broken}' is broken" in report.message and detail in report.message
    assert "not found" not in report.message


def test_bad_options_are_refused_with_the_configuration_naming_the_setting():
    # Options are part of the configuration: refused when it loads, before any scan
    with pytest.raises(ValidationError, match=r"settings\.collectors\.services\.ports"):
        config({"ports": "everything"}, ip_assets("127.66.0.8"), ["127.66.0.0/24"])


# --- the lab -----------------------------------------------------------------------------


def lab_findings(sessions) -> set[tuple[str, str]]:
    return {key for key, status in findings(sessions).items() if status == "open"}


@pytest.mark.lab
@pytest.mark.slow  # ~40 s: nmap -sV waits ~12 s on each municipality's TLS web servers
def test_lab_every_planted_service_is_found_and_the_clean_host_raises_nothing(lab, sessions):
    # Given the lab's own configuration (every ip and host asset of the three municipalities)
    cfg = load_config(lab.config_path)
    cfg = cfg.model_copy(
        update={
            "settings": cfg.settings.model_copy(update={"collectors": {"services": {"timing": 4}}})
        }
    )
    # And the lab's vulnerability feeds in the store
    import_directory(sessions, lab.directory / "intel", now=dt.datetime.now(dt.UTC))
    # When the services collector runs over it
    report = scan(sessions, cfg, Clock())
    # Then every address was scanned (the lab's dangling names have nothing to scan), but the
    # silent one, which is cut as a timeout
    assert report.message is None
    recorded = errors(sessions, report.run_id)
    assert lab.manifest.verify_errors("services", recorded).ok, recorded
    assert set(recorded.values()) <= {"dns_failure", "timeout"}
    with sessions() as session:
        scanned = {
            s.subject for s in session.scalars(select(SubjectState)) if s.last_status == "ok"
        }
    assert {"127.60.1.20", "127.60.2.20", "127.60.3.20"} <= scanned
    # And the manifest's ground truth holds both ways
    verdict = lab.manifest.verify("services", lab_findings(sessions))
    assert verdict.ok, verdict
    assert not {s for s, _ in lab_findings(sessions) if s.startswith("127.60.1.20:")}


@pytest.mark.lab
def test_lab_name_resolving_outside_the_networks_never_reaches_nmap(lab, sessions, tmp_path):
    # Given an organisation that declares rapala.test but only Sekala's network, with the
    # host name palvelin.rapala.test (which the lab DNS resolves to 127.60.2.20) and one
    # in-scope address
    lab_config = load_config(lab.config_path)
    nmap = RecordingNmap(tmp_path)
    cfg = Config.model_validate(
        {
            "settings": {
                "resolver": lab_config.settings.resolver.model_dump(),
                "collectors": {
                    "services": {**FAST, "ports": [22, 6379, 3389], "nmap_path": str(nmap.path)}
                },
            },
            "organisations": [
                {
                    "slug": "sekoitus",
                    "name": {"fi": "Sekoitus", "sv": "Sekoitus", "en": "Sekoitus"},
                    "scope": {"domains": ["rapala.test"], "networks": ["127.60.3.0/24"]},
                    "assets": [
                        {"kind": "host", "value": "palvelin.rapala.test"},
                        {"kind": "ip", "value": "127.60.3.20"},
                    ],
                }
            ],
        }
    )
    # When the whole path runs: runner (resolve, scope) → collector → real nmap
    report = scan(sessions, cfg, Clock())
    # Then nmap never saw the out-of-scope address, and the run says why it was skipped
    (argv,) = nmap.scans
    assert "127.60.3.20" in argv
    assert not any("127.60.2" in a for a in argv)
    assert errors(sessions, report.run_id) == {"palvelin.rapala.test": "out_of_scope"}
    # And the in-scope part was really scanned
    assert ("127.60.3.20:6379/tcp", "services.exposed.redis") in lab_findings(sessions)
