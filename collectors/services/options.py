"""The collector's options (`[settings.collectors.services]`), validated at the edge."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from riskiturva.config import CollectorOptions

# Ports whose services are risky on the internet, plus the common ones around them (web,
# mail, SSH) so that version checks and change detection see the usual surface.
RISKY_PORTS: tuple[int, ...] = (
    21, 22, 23, 25, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1433, 1521,
    2049, 2082, 2083, 2086, 2087, 2375, 3306, 3389, 4848, 5432, 5900, 5901, 5985, 5986,
    6379, 8006, 8080, 8443, 9090, 9200, 9300, 10000, 11211, 27017,
)  # fmt: skip
# Another program owns this port on the machines we run on; nmap is told to skip it always.
EXCLUDED_PORTS: tuple[int, ...] = (2024,)
TOP_PROFILES = {"top100": 100, "top1000": 1000}


class ServicesOptions(CollectorOptions):
    """How nmap is run. Defaults are polite and fit a weekly scan of a municipality; each
    nmap process also keeps to its share of `[settings.politeness]` (--max-rate,
    --max-parallelism)."""

    ports: Literal["risky", "top100", "top1000"] | tuple[int, ...] = Field(
        "risky", description="'risky' (about 40 ports), 'top100', 'top1000' or a list of ports"
    )
    udp: bool = Field(False, description="also scan `udp_ports` (needs root and a port list)")
    udp_ports: tuple[int, ...] = Field((161,), description="UDP ports when `udp` is on")
    timing: int = Field(3, ge=0, le=5, description="nmap timing template -T0 … -T5")
    host_timeout: float = Field(
        60.0,
        gt=0,
        description="seconds nmap may spend on one address (--host-timeout; never more than"
        " settings.timeouts.host). A port that accepts and never answers keeps -sV waiting"
        " for minutes: the address is then cut, recorded as a timeout, and its open ports are"
        " reported without versions",
    )
    max_rtt_timeout: float = Field(
        1.0,
        gt=0,
        le=10,
        description="seconds nmap waits for a probe's answer before it retransmits"
        " (--max-rtt-timeout; nmap's own default is 10)",
    )
    max_retries: int = Field(
        2, ge=0, le=10, description="port-scan retransmissions per probe (--max-retries)"
    )
    script_timeout: float = Field(
        20.0, gt=0, description="seconds one NSE script may run on one port (--script-timeout)"
    )
    version_intensity: int = Field(7, ge=0, le=9, description="-sV --version-intensity")
    scripts: bool = Field(
        True, description="run the safe NSE scripts that establish TLS and no-auth facts"
    )
    skip_host_discovery: bool = Field(False, description="-Pn: treat every address as up")
    nmap_path: str = Field("nmap", min_length=1, description="the nmap binary")

    @field_validator("ports", "udp_ports")
    @classmethod
    def _valid_ports(cls, value: Any) -> Any:
        if isinstance(value, tuple):
            if not value:
                raise ValueError("the port list is empty")
            bad = [p for p in value if not 1 <= p <= 65535]
            if bad:
                raise ValueError(f"not port numbers: {bad}")
            return tuple(sorted(set(value)))
        return value

    @model_validator(mode="after")
    def _udp_needs_a_port_list(self) -> ServicesOptions:
        if self.udp and self.tcp_ports is None:
            raise ValueError(
                "UDP scanning needs an explicit TCP port list ('risky' or a list);"
                " nmap cannot combine --top-ports with a UDP list"
            )
        return self

    @property
    def tcp_ports(self) -> tuple[int, ...] | None:
        """The explicit TCP port list, or None for a top-N profile."""
        if self.ports == "risky":
            return RISKY_PORTS
        return self.ports if isinstance(self.ports, tuple) else None
