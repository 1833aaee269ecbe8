"""Host discovery of a network asset: `nmap -sn`, no name resolution by nmap (`-n`)."""

from __future__ import annotations

import ipaddress

import nmap

HOST_TIMEOUT = "30s"


class SweepFailed(OSError):
    """nmap could not run (missing, no privileges, bad target)."""


def ping_sweep(network: str) -> list[str]:
    """Addresses of `network` that answer nmap's host discovery probes, in order."""
    ipaddress.ip_network(network, strict=True)  # a network, never a name for nmap to resolve
    scanner = nmap.PortScanner()
    try:
        scanner.scan(
            hosts=network, arguments=f"-sn -n --max-retries 1 --host-timeout {HOST_TIMEOUT}"
        )
    except nmap.PortScannerError as exc:
        raise SweepFailed(str(exc)) from exc
    live = [h for h in scanner.all_hosts() if scanner[h].state() == "up"]
    return sorted(live, key=lambda a: int(ipaddress.ip_address(a)))
