"""Start, stop and inspect the lab estate: real servers on loopback, from the manifest.

`up()` generates a CA, certificates, signed zones and server configurations into one
directory, starts Knot DNS, nginx, the SMTP and banner listeners, redis-server and vsftpd
(plus the delay proxy when asked), waits until every endpoint answers, and writes
`state.json` and a riskiturva configuration for the estate. `down()` stops exactly the
processes recorded there. Nothing binds outside 127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from riskiturva.config import DiscoverySource
from riskiturva.lab import _ct, _dns, _intel, _pki, _web
from riskiturva.lab.manifest import Manifest, load_manifest

DEFAULT_DIRECTORY = Path("lab-state")
CT_PORT = 80
STATE_FILE = "state.json"
CONFIG_FILE = "riskiturva.toml"
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0

# Executable → Debian package that provides it.
SYSTEM_PROGRAMS = {
    "knotd": "knot",
    "nginx": "nginx-light",
    "redis-server": "redis-server",
    "vsftpd": "vsftpd",
}
SERVICE_PORTS = {
    "ftp": 21,
    "ssh_outdated": 22,
    "ssh_current": 22,
    "ssh_debian9": 22,
    "telnet": 23,
    "smtp_exim": 25,
    "http_apache_debian": 80,
    "http_apache": 8080,
    "smb": 445,
    "mysql": 3306,
    "rdp": 3389,
    "redis": 6379,
    "elasticsearch": 9200,
    "silent_https": 443,
}


class LabError(RuntimeError):
    """The lab could not be started or stopped; the message says what to do."""


@dataclass(frozen=True)
class Endpoint:
    """One address the lab answers on, as clients see it."""

    name: str  # host name, or "dns"
    ip: str
    port: int
    proto: str  # "tcp" or "udp"
    service: str  # dns, https, http, smtp, or a manifest service name


@dataclass(frozen=True)
class Process:
    name: str
    pid: int
    argv: tuple[str, ...]
    log: str
    children: tuple[int, ...] = ()


@dataclass(frozen=True)
class LabState:
    """Everything a user, a test or `down()` needs to know about a running lab."""

    directory: str
    config_path: str
    ca_file: str
    trust_anchors_file: str
    dns_servers: tuple[str, ...]
    dns_port: int
    latency_ms: int
    started_at: str
    startup_seconds: float
    processes: tuple[Process, ...]
    endpoints: tuple[Endpoint, ...] = field(default=())
    municipalities: int = 0  # served: the manifest's, or with clones (`up --municipalities`)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> LabState:
        raw = json.loads(text)
        raw["dns_servers"] = tuple(raw["dns_servers"])
        raw["processes"] = tuple(
            Process(**{**p, "argv": tuple(p["argv"]), "children": tuple(p["children"])})
            for p in raw["processes"]
        )
        raw["endpoints"] = tuple(Endpoint(**e) for e in raw["endpoints"])
        return cls(**raw)


# --- processes -------------------------------------------------------------------------


def process_alive(pid: int) -> bool:
    """Whether `pid` is a live (not zombie) process; reaps it if it is our dead child."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _is_ours(pid: int, argv: tuple[str, ...]) -> bool:
    """Whether `pid` still runs the program we started (guards against PID reuse)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    program = shutil.which(argv[0]) or argv[0]
    return os.path.realpath(exe) == os.path.realpath(program)


def _children(pid: int) -> tuple[int, ...]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return ()
    return tuple(int(c) for c in text.split())


def _start(name: str, argv: list[str], directory: Path) -> Process:
    log = directory / "logs" / f"{name}.log"
    with log.open("ab") as out:
        # Started directly (no shell) in its own session: the PID is the server's own, and
        # a Ctrl-C in the terminal that ran `lab up` does not reach it.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=directory,
            start_new_session=True,
        )
    return Process(name=name, pid=proc.pid, argv=tuple(argv), log=str(log))


def _signal(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to `pid`; a process that ended since it was checked is simply gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _stop(processes: Iterable[Process]) -> list[str]:
    """SIGTERM each recorded process and its children, wait, SIGKILL leftovers.

    Children are those recorded at start (nginx workers) and those a server has now (a
    vsftpd session); a child is signalled only while it still runs the same program. A
    process already gone, or one that ends between the check and the signal (nginx's
    workers leave with their master), is skipped: every other one is still stopped.
    """
    targets: list[tuple[str, int, tuple[str, ...]]] = []
    for p in processes:
        targets.append((p.name, p.pid, p.argv))
        children = sorted({*p.children, *_children(p.pid)})
        targets += [(f"{p.name} child", c, p.argv) for c in children]
    live = [(n, pid) for n, pid, argv in targets if process_alive(pid) and _is_ours(pid, argv)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for _, pid in live:
            if process_alive(pid):
                _signal(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(process_alive(pid) for _, pid in live) and time.monotonic() < deadline:
            time.sleep(0.05)
    return [f"{n} ({pid})" for n, pid in live]


def tcp_connections_opened() -> int:
    """TCP connections opened in this network namespace so far: the kernel's own count
    (`ActiveOpens`), for tests and benchmarks that count what a scanner really opened."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    header, values = next((a, b) for a, b in itertools.pairwise(lines) if a[0] == "Tcp:")
    return int(values[header.index("ActiveOpens")])


# --- readiness -------------------------------------------------------------------------


# Servers that answer a few bytes of plain text on their own: nginx says "400" to a plain
# HTTP request even on a TLS port, an SMTP server greets. Accepting TCP is not enough for
# them: nginx's master holds the listening sockets while a worker that could not start
# (too few worker_connections for its sockets) accepts nothing.
_SPEAKS = {"http": b"HEAD / HTTP/1.0\r\n\r\n", "https": b"HEAD / HTTP/1.0\r\n\r\n", "smtp": b""}


def _answers(endpoint: Endpoint, ip: str, speak: bool = True) -> bool:
    """Whether `endpoint` answers at `ip`: its server, or (`speak` off) a TCP listener."""
    if endpoint.proto == "udp":
        query = dns.message.make_query("test.", dns.rdatatype.SOA)
        try:
            dns.query.udp(query, ip, port=endpoint.port, timeout=0.2)
        except (OSError, dns.exception.DNSException):
            return False
        return True
    try:
        with socket.create_connection((ip, endpoint.port), timeout=0.5) as connection:
            if not speak or endpoint.service not in _SPEAKS:
                return True
            connection.sendall(_SPEAKS[endpoint.service])
            return bool(connection.recv(1))
    except OSError:
        return False


def _bindable(ip: str, port: int, proto: str) -> bool:
    """True when nothing else holds `ip:port`: binding it ourselves is the exact test."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:  # a connection in TIME_WAIT does not hold the port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def _refuse_taken_addresses(plan: _Plan) -> None:
    """Refuse to start when another program already answers on one of the lab's addresses:
    readiness checks would take its answers for ours (two labs sharing an address did)."""
    wanted = {(e.ip, e.port, e.proto) for e in plan.endpoints}
    wanted |= {(backend, port, proto) for (_, port, proto), backend in plan.backends.items()}
    taken = sorted(w for w in wanted if not _bindable(*w))
    if taken:
        listed = ", ".join(f"{ip}:{port}/{proto}" for ip, port, proto in taken[:5])
        raise LabError(f"another program already listens on the lab's {listed}: stop it first")


Check = tuple[Endpoint, str, bool]  # endpoint, address to ask, whether its server must speak


def readiness_checks(plan: _Plan) -> list[Check]:
    """Every server at its own address, then each delay-proxy listener in front of one.

    Through the proxy alone a check passes on the proxy's accept while the server behind it
    is down; so the servers are asked directly, and the proxy only whether it listens.
    """
    direct = [(e, plan.backends[(e.ip, e.port, e.proto)], True) for e in plan.endpoints]
    proxied = [(e, e.ip, False) for e, backend, _ in direct if backend != e.ip]
    return direct + proxied


def _wait_ready(checks: list[Check], processes: list[Process], timeout: float) -> None:
    pending = list(checks)
    deadline = time.monotonic() + timeout
    while pending:
        dead = [p for p in processes if not process_alive(p.pid)]
        if dead:
            tail = Path(dead[0].log).read_text(errors="replace")[-1500:]
            raise LabError(f"{dead[0].name} exited during start; its log ends:\n{tail}")
        pending = [(e, ip, speak) for e, ip, speak in pending if not _answers(e, ip, speak)]
        if pending and time.monotonic() > deadline:
            waiting = ", ".join(f"{e.service} {ip}:{e.port}/{e.proto}" for e, ip, _ in pending[:5])
            raise LabError(f"lab endpoints not answering after {timeout:.0f} s: {waiting}")
        if pending:
            time.sleep(0.02)


# --- generation ------------------------------------------------------------------------


def _backend(ip: str, latency_ms: int) -> str:
    """Where a server really binds: behind the delay proxy, 100 added to the second octet."""
    if not latency_ms:
        return ip
    octets = ip.split(".")
    shifted = f"127.{int(octets[1]) + 100}.{octets[2]}.{octets[3]}"
    if int(octets[1]) + 100 > 255 or not ipaddress.IPv4Address(shifted).is_loopback:
        raise LabError(f"cannot place a backend for {ip} behind the delay proxy")
    return shifted


def check_system_programs() -> None:
    """Raise a `LabError` naming the `apt-get install` to run if a server is missing."""
    missing = sorted({pkg for prog, pkg in SYSTEM_PROGRAMS.items() if not _which(prog)})
    if missing:
        raise LabError(
            "the lab needs system packages that are not installed; run:\n"
            f"  apt-get install -y {' '.join(missing)}"
        )


def _which(program: str) -> str | None:
    return shutil.which(program, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


LAB_DISCOVERY_SOURCES = [str(s) for s in DiscoverySource if s is not DiscoverySource.PING_SWEEP]


def ct_address(manifest: Manifest) -> tuple[str, int]:
    """Where the lab's CT log listens: beside its first name server, one up in the second
    octet (127.53.0.1 → 127.54.0.1), so two labs with their own name servers never clash."""
    octets = [int(o) for o in manifest.dns_addresses[0].split(".")]
    return f"127.{octets[1] + 1}.{octets[2]}.{octets[3]}", CT_PORT


def riskiturva_config(manifest: Manifest, ca_file: Path, anchors: Path, dns_port: int) -> str:
    """The riskiturva configuration that scans the lab estate (see `riskiturva.config`).

    Its vulnerability feeds are the lab's own, served on loopback (`riskiturva/lab/_intel.py`).
    """
    feeds = f"http://{_intel.feeds_host(manifest)}"  # resolved through the lab's name server
    dns_networks = sorted({str(ipaddress.ip_network(f"{ip}/24", strict=False))
                           for ip in manifest.dns_addresses})  # fmt: skip
    lines = [
        "# Generated by `riskiturva lab up`: the lab estate, on loopback. Do not edit.",
        "[settings]",
        'data_dir = "data"',
        "[settings.resolver]",
        f"nameservers = {_toml_value([manifest.dns_addresses[0]])}",
        f"port = {dns_port}",
        "timeout = 2.0",
        "retries = 1",
        # The lab's servers are ours, on loopback: the production politeness defaults
        # (4 connections per address, 16 per /24, 100 new per second) would only slow it.
        "[settings.politeness]",
        "connections_per_address = 10",
        "connections_per_network = 400",
        "new_per_second = 5000.0",
        "burst = 500",
        "[settings.tls]",
        f"extra_ca_files = {_toml_value([str(ca_file)])}",
        "[settings.dnssec]",
        f"trust_anchors_file = {_toml_value(str(anchors))}",
        "[settings.discovery]",
        # Every source but the ping sweep: on loopback every address answers one.
        f"sources = {_toml_value(LAB_DISCOVERY_SOURCES)}",
        "[settings.discovery.ct]",
        f'url = "http://{ct_address(manifest)[0]}/"',
        "min_interval_seconds = 0.0",
        "[settings.intel]",
        f'kev_url = "{feeds}/known_exploited_vulnerabilities.json"',
        f'nvd_url = "{feeds}/nvd/cves.json"',
        "nvd_request_delay = 0",
        f'epss_url = "{feeds}/epss_scores-current.csv.gz"',
        f'eol_url = "{feeds}/endoflife/{{product}}.json"',
        f"eol_products = {_toml_value(_intel.lab_products())}",
        # Loopback answers at once: half a minute is ample for nmap -sV on a lab address, and
        # the silent one is cut there instead of after the default minute.
        "[settings.collectors.services]",
        "host_timeout = 30",
        "",
        "[[partners]]",
        f"slug = {_toml_value(manifest.partner.slug)}",
        f"name = {_toml_value(manifest.partner.name)}",
        f"organisations = {_toml_value([m.slug for m in manifest.municipalities])}",
    ]
    if len(manifest.municipalities) > 1:
        lines += [
            "",
            "# The partner's name servers serve every municipality's zones: each checks them.",
            "[[shared_scope]]",
            f"organisations = {_toml_value([m.slug for m in manifest.municipalities])}",
            f"networks = {_toml_value(dns_networks)}",
            f"reason = {_toml_value(f'the name servers of {manifest.partner.name}')}",
        ]
    for m in manifest.municipalities:
        scope = {"domains": [m.domain], "networks": [m.network, *dns_networks]}
        lines += [
            "",
            "[[organisations]]",
            f"slug = {_toml_value(m.slug)}",
            f"name = {_toml_value(dict(m.name))}",
            f"scope = {_toml_value(scope)}",
        ]
        for asset in m.assets:
            lines.append("[[organisations.assets]]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in asset.items()]
    return "\n".join(lines) + "\n"


def _write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


def _vsftpd_config(ip: str, directory: Path) -> Path:
    empty = directory / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    (directory / "pub").mkdir(exist_ok=True)
    (directory / "pub" / "LUEMINUT.txt").write_text("Rapalan kunnan tiedostopalvelu\n")
    conf = directory / "vsftpd.conf"
    conf.write_text(
        "\n".join(
            [
                "listen=YES",
                "listen_ipv6=NO",
                f"listen_address={ip}",
                "listen_port=21",
                "background=NO",
                "anonymous_enable=YES",
                "no_anon_password=YES",
                f"anon_root={directory}",
                "local_enable=NO",
                "write_enable=NO",
                "pasv_enable=YES",
                f"pasv_address={ip}",
                "pasv_min_port=40000",
                "pasv_max_port=40100",
                "connect_from_port_20=NO",
                f"secure_chroot_dir={empty}",
                "ftpd_banner=",
                "seccomp_sandbox=NO",
                "",
            ]
        )
    )
    conf.chmod(0o600)
    return conf


def _redis_config(ip: str, directory: Path) -> Path:
    conf = directory / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                f"bind {ip}",
                "port 6379",
                "protected-mode no",  # no password, reachable: the planted weakness
                "daemonize no",
                f"dir {directory}",
                'save ""',
                "appendonly no",
                "",
            ]
        )
    )
    return conf


@dataclass
class _Plan:
    """What to start, built from the manifest before anything runs."""

    processes: list[tuple[str, list[str]]] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)
    backends: dict[tuple[str, int, str], str] = field(default_factory=dict)

    def expose(self, endpoint: Endpoint, backend_ip: str) -> None:
        self.endpoints.append(endpoint)
        self.backends[(endpoint.ip, endpoint.port, endpoint.proto)] = backend_ip


def _plan(
    manifest: Manifest, directory: Path, dns_port: int, latency_ms: int, now: dt.datetime
) -> tuple[_Plan, Path, Path]:
    for sub in ("pki", "dns", "web", "mail", "services", "logs", "proxy", "intel"):
        shutil.rmtree(directory / sub, ignore_errors=True)
        (directory / sub).mkdir(parents=True)
    plan = _Plan()

    ca = _pki.LabCA(directory / "pki", now)
    certs: dict[str, _pki.IssuedCert] = {}
    logged: list[Path] = []
    for host in manifest.hosts:
        if host.cert:
            certs[host.fqdn] = ca.issue(host.fqdn, host.cert, host.extra_names)
        elif host.smtp and host.smtp.starttls:
            certs[host.fqdn] = ca.issue(host.fqdn, "valid")
        if host.fqdn in certs and host.ct:
            logged.append(certs[host.fqdn].leaf)
    logged += [ca.issue(n, "valid").leaf for m in manifest.municipalities for n in m.ct_names]

    # DNS
    tlsa = {h.fqdn: certs[h.fqdn].spki_sha256 for h in manifest.hosts if h.smtp and h.smtp.tlsa}
    zones = _dns.build_zones(manifest, directory / "dns" / "zones", now, tlsa)
    anchors = directory / "trust-anchors.txt"
    anchors.write_text(zones.trust_anchor + "\n")
    listen = []
    for ip in manifest.dns_addresses:
        backend = _backend(ip, latency_ms)
        listen.append((backend, dns_port))
        for proto in ("udp", "tcp"):
            plan.expose(Endpoint("dns", ip, dns_port, proto, "dns"), backend)
    knot_conf = directory / "dns" / "knot.conf"
    rundir = directory / "dns" / "run"
    rundir.mkdir()
    knot_conf.write_text(_dns.knot_config(manifest, zones, rundir, listen))
    plan.processes.append(("knot", [_which("knotd") or "knotd", "-c", str(knot_conf)]))

    # HTTPS and HTTP
    web_hosts = [h for h in manifest.hosts if h.web]
    servers = [(h, _backend(h.ip, latency_ms), certs[h.fqdn]) for h in web_hosts]
    for host, backend, _ in servers:
        for port in _web.web_ports(host):
            service = "https" if port == 443 else "http"
            plan.expose(Endpoint(host.fqdn, host.ip, port, "tcp", service), backend)
    web_dir = directory / "web"
    (web_dir / "tmp").mkdir()
    dh = _pki.write_weak_dh_params(directory / "pki" / "dh1024.pem")
    # Vulnerability feeds in their published formats, dated today, for `intel update`.
    feeds = _intel.write_feeds(directory / "intel", now)
    feeds_ip = _intel.feeds_address(manifest)
    plan.expose(Endpoint("feeds", feeds_ip, 80, "tcp", "http"), feeds_ip)
    nginx_conf = web_dir / "nginx.conf"
    nginx_conf.write_text(
        _web.nginx_config(servers, web_dir, dh, now, (_web.feeds_block(feeds_ip, feeds),))
    )
    nginx = _which("nginx") or "nginx"
    plan.processes.append(
        ("nginx", [nginx, "-c", str(nginx_conf), "-p", str(web_dir), "-g", "daemon off;"])
    )

    # SMTP
    smtp_spec = []
    for host in (h for h in manifest.hosts if h.smtp):
        backend = _backend(host.ip, latency_ms)
        cert = certs.get(host.fqdn) if host.smtp.starttls else None  # type: ignore[union-attr]
        smtp_spec.append(
            {
                "ip": backend,
                "port": 25,
                "hostname": host.fqdn,
                "cert": str(cert.chain) if cert else None,
                "key": str(cert.key) if cert else None,
            }
        )
        plan.expose(Endpoint(host.fqdn, host.ip, 25, "tcp", "smtp"), backend)
    spec = _write_json(directory / "mail" / "smtp.json", smtp_spec)
    plan.processes.append(("smtp", [sys.executable, "-m", "riskiturva.lab._smtp", str(spec)]))

    # Exposed services: real daemons where cheap, banner listeners otherwise.
    banners = []
    for host in manifest.hosts:
        for service in host.services:
            port = SERVICE_PORTS[service]
            plan.expose(Endpoint(host.fqdn, host.ip, port, "tcp", service), host.ip)
            if service == "ftp":
                conf = _vsftpd_config(host.ip, directory / "services" / "ftp")
                plan.processes.append(("vsftpd", [_which("vsftpd") or "vsftpd", str(conf)]))
            elif service == "redis":
                conf = _redis_config(host.ip, directory / "services")
                plan.processes.append(("redis", [_which("redis-server") or "redis", str(conf)]))
            else:
                banners.append({"ip": host.ip, "port": port, "kind": service})
    spec = _write_json(directory / "services" / "banners.json", banners)
    plan.processes.append(("banners", [sys.executable, "-m", "riskiturva.lab._banners", str(spec)]))

    # Certificate Transparency: the certificates issued above, as crt.sh serves them.
    rows = [_ct.certificate_row(i, p.read_bytes()) for i, p in enumerate(logged, start=1000)]
    ct_ip, ct_port = ct_address(manifest)
    spec = _write_json(directory / "pki" / "ct.json", {"listen": [ct_ip, ct_port], "rows": rows})
    plan.expose(Endpoint("ct", ct_ip, ct_port, "tcp", "ct"), ct_ip)
    plan.processes.append(("ct-log", [sys.executable, "-m", "riskiturva.lab._ct", str(spec)]))

    # Delay proxy in front of DNS, HTTPS/HTTP and SMTP.
    if latency_ms:
        backend_of = {e: plan.backends[(e.ip, e.port, e.proto)] for e in plan.endpoints}
        routes = [
            {"proto": e.proto, "listen": [e.ip, e.port], "target": [backend_of[e], e.port]}
            for e in plan.endpoints
            if backend_of[e] != e.ip
        ]
        spec = _write_json(directory / "proxy" / "routes.json",
                           {"rtt_ms": latency_ms, "routes": routes})  # fmt: skip
        plan.processes.append(
            ("latency-proxy", [sys.executable, "-m", "riskiturva.lab._latency", str(spec)])
        )
    return plan, ca.root_path, anchors


# --- public API ------------------------------------------------------------------------


def read_state(directory: Path = DEFAULT_DIRECTORY) -> LabState | None:
    path = directory / STATE_FILE
    return LabState.from_json(path.read_text()) if path.exists() else None


def running(state: LabState) -> dict[str, bool]:
    """Each recorded process name → whether it still runs."""
    return {p.name: process_alive(p.pid) and _is_ours(p.pid, p.argv) for p in state.processes}


def up(
    directory: Path = DEFAULT_DIRECTORY,
    *,
    dns_port: int = 53,
    latency_ms: int = 0,
    manifest: Manifest | None = None,
) -> LabState:
    """Start the lab in `directory`, or return the running one if it matches. Idempotent."""
    directory = directory.resolve()
    manifest = manifest or load_manifest()
    current = read_state(directory)
    if current is not None:
        if (
            all(running(current).values())
            and current.dns_port == dns_port
            and current.latency_ms == latency_ms
            and current.municipalities == len(manifest.municipalities)
        ):
            return current
        down(directory)
    check_system_programs()
    if os.geteuid() != 0:
        raise LabError(
            "the lab binds privileged ports (25, 53, 80, 443, ...) on loopback addresses: run it"
            " as root, or in its own namespaces: unshare --user --map-root-user --net"
        )
    if latency_ms < 0:
        raise LabError("--latency-ms must be zero or positive")

    started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # nginx workers run as nobody and read the document roots
    plan, ca_file, anchors = _plan(manifest, directory, dns_port, latency_ms, now)
    config_path = directory / CONFIG_FILE
    config_path.write_text(riskiturva_config(manifest, ca_file, anchors, dns_port))

    _refuse_taken_addresses(plan)
    processes: list[Process] = []
    try:
        for name, argv in plan.processes:
            processes.append(_start(name, argv, directory))
        checks = readiness_checks(plan)
        # A large generated estate has thousands of endpoints (and zones to sign).
        _wait_ready(checks, processes, READY_TIMEOUT + 0.01 * len(checks))
    except BaseException:
        _stop(processes)
        raise
    processes = [Process(p.name, p.pid, p.argv, p.log, _children(p.pid)) for p in processes]
    state = LabState(
        directory=str(directory),
        config_path=str(config_path),
        ca_file=str(ca_file),
        trust_anchors_file=str(anchors),
        dns_servers=manifest.dns_addresses,
        dns_port=dns_port,
        latency_ms=latency_ms,
        started_at=now.isoformat(timespec="seconds"),
        startup_seconds=round(time.monotonic() - started, 2),
        processes=tuple(processes),
        endpoints=tuple(plan.endpoints),
        municipalities=len(manifest.municipalities),
    )
    (directory / STATE_FILE).write_text(state.to_json())
    return state


def down(directory: Path = DEFAULT_DIRECTORY) -> list[str]:
    """Stop the processes recorded in `directory`'s state file; return what was stopped."""
    directory = directory.resolve()
    state = read_state(directory)
    if state is None:
        return []
    stopped = _stop(reversed(state.processes))
    (directory / STATE_FILE).unlink(missing_ok=True)
    return stopped
