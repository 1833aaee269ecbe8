"""The exposed-services collector: one nmap run per batch of addresses, pure rules judge.

Finds risky services open to the internet (remote desktop, file sharing, databases, admin
panels), login protocols without TLS, and ports that were not open in the previous
successful scan of the same address. The software the banners name is handed to the
vulnerability rules (riskiturva/intel): known-exploited and end-of-life versions.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from collectors.services._nmap import (
    HostReport,
    HostState,
    NmapBroken,
    NmapFailed,
    NmapLimits,
    NmapMissing,
    build_command,
    parse_report,
    run_nmap,
)
from collectors.services.facts import Baseline, HostFacts
from collectors.services.options import RISKY_PORTS, ServicesOptions
from collectors.services.rules import CHECK_IDS, judge_host, opened_ports, reproduce_command
from collectors.services.software import identify
from riskiturva.collector import (
    ChangeDraft,
    ErrorKind,
    FindingDraft,
    ScanContext,
    ScanTask,
    SubjectObservation,
    SubjectStatus,
    Target,
    TargetError,
)
from riskiturva.config import AssetKind
from riskiturva.intel.software import SoftwareSighting

__all__ = ["NmapBroken", "NmapMissing", "ServicesCollector"]


@dataclass(frozen=True)
class _Planned:
    """A target to scan: an address or a network, with the asset it came from."""

    address: str
    asset: str

    @property
    def is_network(self) -> bool:
        return "/" in self.address

    @property
    def family(self) -> int:
        return ipaddress.ip_network(self.address, strict=False).version


class ServicesCollector:
    name: ClassVar[str] = "services"
    asset_kinds: ClassVar[frozenset[AssetKind]] = frozenset(
        {AssetKind.IP, AssetKind.NETWORK, AssetKind.HOST}
    )
    address_kinds: ClassVar[frozenset[AssetKind]] = frozenset({AssetKind.HOST})
    check_ids: ClassVar[frozenset[str]] = CHECK_IDS
    options_model: ClassVar[type[ServicesOptions]] = ServicesOptions
    # nmap -sV spends most of a host's time waiting on probes: several processes over small
    # batches (the runner runs settings.concurrency.tasks at once) finish sooner than one.
    batch_size: ClassVar[int] = 10
    coverage: ClassVar[Mapping[AssetKind, str]] = {
        AssetKind.IP: "nmap -sV on the TCP ports of `settings.collectors.services.ports`"
        f" (default 'risky': {', '.join(map(str, RISKY_PORTS))}), UDP `udp_ports` when `udp`"
        " is on: risky exposed services, outdated banners, logins without TLS, new ports",
        AssetKind.NETWORK: "as for `ip`, on every address of the network that answers",
        AssetKind.HOST: "as for `ip`, on each in-scope address the name resolves to",
    }

    def collect(self, task: ScanTask, context: ScanContext) -> Iterable[SubjectObservation]:
        options = context.options(self.name, ServicesOptions)
        planned, refused = _plan(task, context)
        yield from refused
        if not planned or context.cancelled.is_set():
            return
        # nmap scans one address family per process (-6 for IPv6).
        for family in (4, 6):
            batch = [p for p in planned if p.family == family]
            if batch:
                yield from _scan(batch, task, context, options)

    def judge(self, observation: SubjectObservation) -> list[FindingDraft]:
        return judge_host(observation.facts)

    def changes(self, previous: object, observation: SubjectObservation) -> list[ChangeDraft]:
        return opened_ports(observation.facts)

    def software(self, observation: SubjectObservation) -> list[SoftwareSighting]:
        return list(observation.facts.software)


def _scan(
    batch: list[_Planned], task: ScanTask, context: ScanContext, options: ServicesOptions
) -> Iterator[SubjectObservation]:
    """One nmap process for the batch, then one observation per address it covers.

    An address whose version detection ran out of its time (a port that accepts and never
    answers keeps -sV waiting) is scanned once more for its open ports alone, so what is
    exposed there is still reported, without versions, next to the timeout.
    """
    budget = min(options.host_timeout, context.settings.timeouts.host)
    privileged = os.geteuid() == 0
    addresses = [p.address for p in batch]
    # The runner runs up to settings.concurrency.tasks nmap processes at once.
    limits = NmapLimits.share(context.limits, addresses, context.settings.concurrency.tasks)
    command = build_command(
        addresses, options, privileged=privileged, host_timeout_s=budget, limits=limits
    )
    try:
        report = parse_report(run_nmap(command, options.nmap_path), options.nmap_path)
        cut = [a for a, h in report.hosts.items() if h.state is HostState.TIMED_OUT]
        if cut:
            ports_only = build_command(
                cut,
                options,
                privileged=privileged,
                host_timeout_s=budget,
                versions=False,
                limits=limits,
            )
            found = parse_report(run_nmap(ports_only, options.nmap_path), options.nmap_path)
            report = report.with_cut_hosts(found, budget)
    except NmapFailed as exc:
        for target in batch:
            yield _error(target.address, target.asset, exc.kind, str(exc))
        return
    seen: set[str] = set()
    for target in batch:
        if target.is_network:
            yield from _network_observations(
                target, report.hosts, seen, task.previous, report.scanned
            )
        elif target.address not in seen:
            seen.add(target.address)
            host = report.hosts.get(target.address)
            yield _observation(target.address, target.asset, host, task.previous, report.scanned)


def _plan(task: ScanTask, context: ScanContext) -> tuple[list[_Planned], list[SubjectObservation]]:
    """Unique addresses to scan; anything the scope guard refuses never reaches nmap."""
    planned: dict[str, _Planned] = {}
    refused = []
    for target in task.targets:
        address = _normalised(target)
        if address is None:
            refused.append(
                _error(
                    target.asset,
                    target.asset,
                    ErrorKind.INTERNAL,
                    "target has no IP address or network",
                )
            )
        elif not context.scope.allows_address(task.organisation, address):
            refused.append(
                _error(
                    address,
                    target.asset,
                    ErrorKind.OUT_OF_SCOPE,
                    f"{address} is outside the declared networks",
                )
            )
        else:
            planned.setdefault(address, _Planned(address, target.asset))
    return list(planned.values()), refused


def _normalised(target: Target) -> str | None:
    """The target's address as nmap must see it: a literal IP or network, never a name."""
    if not target.address:
        return None
    try:
        if "/" in target.address:
            return str(ipaddress.ip_network(target.address, strict=True))
        return str(ipaddress.ip_address(target.address))
    except ValueError:
        return None


def _network_observations(
    target: _Planned,
    hosts: Mapping[str, HostReport],
    seen: set[str],
    previous: Mapping[str, Any],
    scanned: Mapping[str, str],
) -> Iterator[SubjectObservation]:
    network = ipaddress.ip_network(target.address)
    answering = [
        h
        for a, h in hosts.items()
        if ipaddress.ip_address(a) in network and h.state is not HostState.DOWN
    ]
    if not answering:
        yield _error(
            target.address,
            target.asset,
            ErrorKind.UNREACHABLE,
            "no address in the network answered",
        )
    for host in answering:
        if host.address not in seen:
            seen.add(host.address)
            yield _observation(host.address, target.asset, host, previous, scanned)


def _observation(
    address: str,
    asset: str,
    host: HostReport | None,
    previous: Mapping[str, Any],
    scanned: Mapping[str, str],
) -> SubjectObservation:
    """OK only when the host answered: down, timed out or all-filtered is an error, not "closed"."""
    if host is None or host.state is HostState.DOWN:
        return _error(
            address, asset, ErrorKind.UNREACHABLE, "the host did not answer nmap's host discovery"
        )
    if host.state is HostState.TIMED_OUT:
        return _error(
            address,
            asset,
            ErrorKind.TIMEOUT,
            "nmap's host timeout ran out before the scan finished",
        )
    if not host.open_ports and not host.closed_ports:
        return _error(
            address, asset, ErrorKind.UNREACHABLE, "no scanned port answered (all filtered)"
        )
    facts = HostFacts(
        address=address,
        open_ports=host.open_ports,
        scanned=dict(scanned),
        closed_ports=host.closed_ports,
        baseline=Baseline.from_previous(previous[address]) if address in previous else None,
        software=tuple(
            SoftwareSighting(f"{address}:{port.key}", software, reproduce_command(address, port))
            for port in host.open_ports
            for software in identify(port)
        ),
    )
    if host.versions_cut_after is not None:
        error = TargetError(
            ErrorKind.TIMEOUT,
            f"version detection did not finish within {host.versions_cut_after:g} s"
            " (settings.collectors.services.host_timeout): open ports"
            f" {', '.join(p.key for p in host.open_ports)} are reported without versions",
        )
        return SubjectObservation(address, asset, SubjectStatus.PARTIAL, facts, error)
    return SubjectObservation(address, asset, SubjectStatus.OK, facts=facts)


def _error(subject: str, asset: str, kind: ErrorKind, message: str) -> SubjectObservation:
    return SubjectObservation(subject, asset, SubjectStatus.ERROR, error=TargetError(kind, message))
