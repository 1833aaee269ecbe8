"""The nmap seam: build the command line (pure), run it through python-nmap, parse its XML.

python-nmap finds and runs the binary and reports its failures; its result dictionary drops
what the rules need (the TLS tunnel, whether -sV probed or guessed the name, every CPE, the
host-timeout flag, the closed-port counts), so the XML it hands back is parsed here.
"""

from __future__ import annotations

import ipaddress
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

import nmap

from collectors.services.facts import OpenPort
from collectors.services.options import EXCLUDED_PORTS, TOP_PROFILES, ServicesOptions
from collectors.services.rules import SCRIPTS
from riskiturva.collector import ErrorKind
from riskiturva.politeness import Politeness

APT_HINT = "apt-get install nmap"
_PROCESS_SLACK_S = 60.0  # on top of the per-host budget, before the nmap process is killed


class NmapMissing(RuntimeError):
    """The nmap binary is not installed (or not where the options say)."""

    def __init__(self, path: str):
        super().__init__(f"nmap not found (looked for {path!r}); install it with `{APT_HINT}`")


class NmapBroken(RuntimeError):
    """nmap is there but does not work: it exits with an error or prints no usable report."""

    def __init__(self, path: str, detail: str):
        super().__init__(f"nmap at {path!r} is broken: {detail}")


class NmapFailed(RuntimeError):
    """nmap ran but produced no usable result, or took longer than its whole budget."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.INTERNAL):
        self.kind = kind
        super().__init__(message)


@dataclass(frozen=True)
class NmapCommand:
    """One nmap process for a batch of addresses (never one process per host)."""

    targets: tuple[str, ...]  # IP addresses and networks, already scope-checked
    arguments: tuple[str, ...]
    timeout_s: float  # the whole process; nmap's own --host-timeout bounds each host

    def argv(self, nmap_path: str = "nmap") -> list[str]:
        """As python-nmap runs it (XML to stdout)."""
        return [nmap_path, "-oX", "-", *self.targets, *self.arguments]


@dataclass(frozen=True)
class NmapLimits:
    """One nmap process's share of the politeness limits (riskiturva/politeness.py)."""

    packets_per_second: float  # --max-rate: probes and retransmissions, every host together
    probes_at_once: int  # --max-parallelism: port probes and -sV connections in flight

    @classmethod
    def share(cls, limiter: Politeness, targets: Iterable[str], processes: int) -> NmapLimits:
        """The limits of one of `processes` nmap processes at once over `targets`: its share
        of the process's rate, and the tightest per-network limit among its targets (a batch
        is one organisation's addresses; a network with a limit of its own counts)."""
        networks = [
            limiter.network(str(ipaddress.ip_network(t, strict=False).network_address))[1]
            for t in targets
        ]
        limit = min(networks, default=limiter.settings.connections_per_network)
        return cls(limiter.settings.new_per_second / max(1, processes), max(1, limit))


def build_command(
    targets: Iterable[str],
    options: ServicesOptions,
    *,
    privileged: bool,
    host_timeout_s: float,
    versions: bool = True,
    limits: NmapLimits | None = None,
) -> NmapCommand:
    """nmap's arguments for the options: no DNS, explicit ports, 2024 always excluded, and
    the politeness `limits` when given.

    `versions=False` only finds the open ports (no -sV, no scripts): the follow-up for an
    address whose version detection ran out of time.
    """
    targets = tuple(targets)
    args = ["-n", "-sS" if privileged else "-sT"]
    if any(ipaddress.ip_network(t, strict=False).version == 6 for t in targets):
        args.append("-6")
    if options.udp:
        args.append("-sU")
    if versions:
        args += ["-sV", "--version-intensity", str(options.version_intensity)]
    args += [f"-T{options.timing}", "--host-timeout", f"{max(1, round(host_timeout_s))}s"]
    args += ["--max-rtt-timeout", f"{round(options.max_rtt_timeout * 1000)}ms"]
    args += ["--max-retries", str(options.max_retries)]
    if limits is not None:
        args += ["--max-rate", f"{limits.packets_per_second:g}"]
        args += ["--max-parallelism", str(limits.probes_at_once)]
    if options.skip_host_discovery:
        args.append("-Pn")
    tcp = options.tcp_ports
    if tcp is None:
        assert isinstance(options.ports, str)
        args += ["--top-ports", str(TOP_PROFILES[options.ports])]
    else:
        spec = "T:" + _port_list(tcp)
        if options.udp:
            spec += ",U:" + _port_list(options.udp_ports)
        args += ["-p", spec]
    args += ["--exclude-ports", _port_list(EXCLUDED_PORTS)]
    if options.scripts and versions:
        args += ["--script", ",".join(SCRIPTS)]
        args += ["--script-timeout", f"{max(1, round(options.script_timeout))}s"]
    # Hosts run in parallel groups; this only stops a hung process, never a slow scan.
    timeout = host_timeout_s * max(1, len(targets)) + _PROCESS_SLACK_S
    return NmapCommand(targets, tuple(args), timeout)


def _port_list(ports: Iterable[int]) -> str:
    return ",".join(str(p) for p in ports)


def run_nmap(command: NmapCommand, nmap_path: str) -> bytes:
    """Run nmap through python-nmap and return its XML report."""
    if shutil.which(nmap_path) is None:
        raise NmapMissing(nmap_path)
    try:
        scanner = nmap.PortScanner(nmap_search_path=(nmap_path,))
    except nmap.PortScannerError as exc:
        # python-nmap says "not found in path" whenever `nmap -V` does not print a version.
        raise NmapBroken(nmap_path, _version_failure(nmap_path)) from exc
    try:
        scanner.scan(
            hosts=shlex.join(command.targets),
            arguments=shlex.join(command.arguments),
            timeout=int(command.timeout_s),
        )
    except nmap.PortScannerTimeout as exc:
        raise NmapFailed(
            f"nmap did not finish within {command.timeout_s:.0f} s", ErrorKind.TIMEOUT
        ) from exc
    except nmap.PortScannerError as exc:
        raise NmapBroken(nmap_path, f"the scan failed: {_shown(str(exc))}") from exc
    output = scanner.get_nmap_last_output()
    return output if isinstance(output, bytes) else output.encode()


def _shown(text: str) -> str:
    return text.strip()[:500] or "no output"


def _version_failure(nmap_path: str) -> str:
    """What `nmap -V` did instead of printing its version."""
    try:
        result = subprocess.run(
            [nmap_path, "-V"], capture_output=True, text=True, errors="replace", timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`nmap -V` could not run: {exc}"
    said = _shown(result.stdout + result.stderr)
    if result.returncode:
        return f"`nmap -V` exited with {result.returncode}: {said}"
    return f"`nmap -V` printed no version: {said}"


class HostState(StrEnum):
    UP = "up"
    DOWN = "down"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class HostReport:
    address: str
    state: HostState
    open_ports: tuple[OpenPort, ...] = ()
    closed_ports: int = 0
    # Seconds after which version detection was cut: the ports come from a port scan alone.
    versions_cut_after: float | None = None


@dataclass(frozen=True)
class NmapReport:
    hosts: Mapping[str, HostReport]
    scanned: Mapping[str, str]  # protocol → port ranges nmap looked at

    def with_cut_hosts(self, ports_only: NmapReport, budget: float) -> NmapReport:
        """This report, its timed-out hosts replaced by what a port scan alone found."""
        hosts = dict(self.hosts)
        for address, host in ports_only.hosts.items():
            cut = address in hosts and hosts[address].state is HostState.TIMED_OUT
            if cut and host.state is HostState.UP:
                hosts[address] = replace(host, versions_cut_after=budget)
        return NmapReport(hosts, self.scanned)


def parse_report(xml: bytes, nmap_path: str = "nmap") -> NmapReport:
    """nmap's XML → reports per address. nmap escapes banner bytes, so the XML is well formed."""
    try:
        root = ET.fromstring(xml)  # noqa: S314 — our own nmap's output; expat refuses entity bombs
    except ET.ParseError as exc:
        raise NmapBroken(nmap_path, f"its XML report could not be read: {exc}") from exc
    scanned = {
        str(info.get("protocol")): str(info.get("services", ""))
        for info in root.iter("scaninfo")
        if info.get("protocol")
    }
    hosts = {}
    for element in root.iter("host"):
        report = _host(element)
        if report is not None:
            hosts[report.address] = report
    return NmapReport(hosts, scanned)


def _host(element: ET.Element) -> HostReport | None:
    address = next(
        (a.get("addr") for a in element.iter("address") if a.get("addrtype") in ("ipv4", "ipv6")),
        None,
    )
    if not address:
        return None
    status = element.find("status")
    if element.get("timedout") == "true":
        return HostReport(address, HostState.TIMED_OUT)
    if status is None or status.get("state") != "up":
        return HostReport(address, HostState.DOWN)
    open_ports, closed = [], 0
    for port in element.iter("port"):
        state = port.find("state")
        port_state = state.get("state") if state is not None else None
        if port_state == "open":
            open_ports.append(_open_port(port))
        elif port_state == "closed":
            closed += 1
    for extra in element.iter("extraports"):
        if extra.get("state") == "closed":
            closed += int(extra.get("count", "0") or 0)
    return HostReport(address, HostState.UP, tuple(open_ports), closed)


def _open_port(element: ET.Element) -> OpenPort:
    service = element.find("service")
    attrs = service.attrib if service is not None else {}
    return OpenPort(
        port=int(element.get("portid", "0")),
        protocol=element.get("protocol", "tcp"),
        service=attrs.get("name", ""),
        probed=attrs.get("method") == "probed",
        tunnel=attrs.get("tunnel", ""),
        product=attrs.get("product", ""),
        version=attrs.get("version", ""),
        extrainfo=attrs.get("extrainfo", ""),
        cpe=tuple(c.text or "" for c in service.iter("cpe")) if service is not None else (),
        scripts={
            s.get("id", ""): s.get("output", "")
            for s in element.iter("script")
            if s.get("id") in SCRIPTS
        },
    )
