"""What the services collector saw on one address: typed, frozen, JSON-friendly."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from riskiturva.intel.software import SoftwareSighting


@dataclass(frozen=True)
class OpenPort:
    """One open port as nmap's service detection described it (banner strings kept as data)."""

    port: int
    protocol: str  # "tcp" or "udp"
    service: str = ""  # nmap's service name, e.g. "ms-wbt-server"
    probed: bool = False  # named by a -sV probe match, not guessed from the port number
    tunnel: str = ""  # "ssl" when the service runs inside TLS
    product: str = ""
    version: str = ""
    extrainfo: str = ""
    cpe: tuple[str, ...] = ()
    scripts: Mapping[str, str] = field(default_factory=dict)  # NSE script id → output

    @property
    def key(self) -> str:
        return f"{self.port}/{self.protocol}"

    @property
    def identified(self) -> bool:
        """nmap recognised the service itself, so its name beats the port-number guess."""
        return self.probed and self.service not in ("", "unknown", "tcpwrapped")

    @property
    def offers_tls(self) -> bool:
        """TLS from the first byte, or an upgrade (AUTH TLS, STLS, STARTTLS) ssl-cert completed."""
        return self.tunnel == "ssl" or bool(self.scripts.get("ssl-cert", "").strip())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OpenPort:
        return cls(
            port=int(data["port"]),
            protocol=str(data["protocol"]),
            service=str(data.get("service", "")),
            probed=bool(data.get("probed", False)),
            tunnel=str(data.get("tunnel", "")),
            product=str(data.get("product", "")),
            version=str(data.get("version", "")),
            extrainfo=str(data.get("extrainfo", "")),
            cpe=tuple(str(c) for c in data.get("cpe", ())),
            scripts={str(k): str(v) for k, v in dict(data.get("scripts", {})).items()},
        )


@dataclass(frozen=True)
class Baseline:
    """The previous successful scan of the same address, reduced to what change detection needs."""

    open: frozenset[str]  # port keys, "22/tcp"
    scanned: Mapping[str, str]  # protocol → nmap port ranges, "21-23,445"

    def covered(self, port: OpenPort) -> bool:
        """Whether the previous scan looked at this port at all (profiles can change)."""
        return port.port in parse_port_ranges(self.scanned.get(port.protocol, ""))

    @classmethod
    def from_previous(cls, data: Any) -> Baseline | None:
        """From the stored JSON form of `HostFacts`; None when there is no usable baseline."""
        try:
            ports = [OpenPort.from_dict(p) for p in data["open_ports"]]
            scanned = {str(k): str(v) for k, v in dict(data["scanned"]).items()}
        except (TypeError, KeyError, ValueError):
            return None
        return cls(frozenset(p.key for p in ports), scanned)


@dataclass(frozen=True)
class HostFacts:
    """One address after one nmap run: its open ports and which ports were looked at."""

    address: str
    open_ports: tuple[OpenPort, ...]
    scanned: Mapping[str, str]  # protocol → nmap port ranges, from nmap's own scaninfo
    closed_ports: int = 0  # answered "closed": proof the host was reachable
    baseline: Baseline | None = None
    software: tuple[SoftwareSighting, ...] = ()  # what the open ports' banners identified


def parse_port_ranges(ranges: str) -> frozenset[int]:
    """nmap's `21-23,445` → {21, 22, 23, 445}; junk is ignored rather than trusted."""
    return frozenset(_expand(ranges))


def _expand(ranges: str) -> Iterator[int]:
    for part in ranges.split(","):
        low, _, high = part.strip().partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            yield from range(int(low), int(high or low) + 1)
