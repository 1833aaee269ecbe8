"""pytest plugin: the `lab` fixture, one running lab estate for the whole test session.

Register with `pytest_plugins = ["riskiturva.lab.pytest_plugin"]`. The lab binds the
addresses in the manifest (port 53 needs root); run the suite in a loopback-only network
namespace (`make test` does) so nothing can leave the machine.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dns.resolver
import pytest

from riskiturva.lab.estate import LabError, LabState, down, read_state, up
from riskiturva.lab.manifest import Host, Manifest, load_manifest


@dataclass(frozen=True)
class RunningLab:
    """A started lab: where its files are, its ground truth, and helpers for tests."""

    directory: Path
    manifest: Manifest

    @property
    def lab_state(self) -> LabState:
        """The state as it is now (a test may restart the lab)."""
        state = read_state(self.directory)
        if state is None:
            raise LabError(f"the lab in {self.directory} is not running")
        return state

    @property
    def state(self) -> dict[str, Any]:
        return asdict(self.lab_state)

    @property
    def config_path(self) -> Path:
        return Path(self.lab_state.config_path)

    @property
    def ca_file(self) -> Path:
        return Path(self.lab_state.ca_file)

    @property
    def trust_anchors_file(self) -> Path:
        return Path(self.lab_state.trust_anchors_file)

    @property
    def dns_server(self) -> str:
        return self.lab_state.dns_servers[0]

    @property
    def dns_port(self) -> int:
        return self.lab_state.dns_port

    def resolver(self) -> dns.resolver.Resolver:
        """A stub resolver that asks only the lab's name server."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [self.dns_server]
        resolver.port = self.dns_port
        resolver.timeout = resolver.lifetime = 2.0
        return resolver

    def host(self, fqdn: str) -> Host:
        """The manifest host `fqdn`: connect to its `.ip`, never to its name."""
        for host in self.manifest.hosts:
            if host.fqdn == fqdn:
                return host
        raise KeyError(fqdn)


@pytest.fixture(scope="session")
def lab() -> Iterator[RunningLab]:
    """Start the lab once per session in a fresh directory; stop it at the end."""
    # Not pytest's tmp_path: its 0700 parents would lock out nginx's unprivileged workers.
    interfaces = {name for _, name in socket.if_nameindex()} - {"lo"}
    if interfaces:
        warnings.warn(
            f"the lab tests run with network interfaces {sorted(interfaces)}: run them in a"
            " loopback-only namespace (`make test`, or `unshare --net`) so nothing can leave",
            stacklevel=1,
        )
    directory = Path(tempfile.mkdtemp(prefix="riskiturva-lab-"))
    manifest = load_manifest()
    try:
        up(directory, manifest=manifest)
    except LabError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        pytest.fail(f"could not start the lab: {exc}", pytrace=False)
    try:
        yield RunningLab(directory, manifest)
    finally:
        down(directory)
        shutil.rmtree(directory, ignore_errors=True)
