"""The ping sweep (`nmap -sn`) against addresses this test adds inside its own loopback-only
network namespace: exactly the live addresses of a declared network are proposed."""

from __future__ import annotations

import socket
import subprocess
import tomllib
from collections.abc import Iterator

import pytest

from riskiturva.config import Config
from riskiturva.db import open_store
from riskiturva.discovery import run_discovery
from riskiturva.discovery.sweep import ping_sweep
from riskiturva.runner import build_context
from tests.conftest import queued

NETWORK = "10.213.7.0/28"
LIVE = ["10.213.7.5", "10.213.7.9"]


@pytest.fixture
def live_addresses() -> Iterator[list[str]]:
    """Two addresses that answer, on `lo` — only in a namespace that has nothing but `lo`."""
    if {name for _, name in socket.if_nameindex()} != {"lo"}:
        pytest.skip("needs a loopback-only network namespace (make test runs in one)")
    for address in LIVE:
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
    try:
        yield LIVE
    finally:
        for address in LIVE:
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], check=False)


def test_the_sweep_finds_exactly_the_addresses_that_answer(live_addresses):
    assert ping_sweep(NETWORK) == live_addresses


def test_a_name_is_never_handed_to_nmap():
    with pytest.raises(ValueError):
        ping_sweep("www.example.test")


def test_discovery_proposes_the_live_addresses_of_a_declared_network(live_addresses, tmp_path):
    config = Config.model_validate(
        tomllib.loads(
            f"""
[settings]
data_dir = "{tmp_path}"
[settings.resolver]
nameservers = ["127.0.0.1"]
port = 5399
timeout = 0.2
[settings.discovery]
sources = ["ping_sweep"]

[[organisations]]
slug = "verkko"
name = {{ fi = "Verkko", sv = "Verkko", en = "Verkko" }}
scope = {{ domains = ["verkko.test"], networks = ["{NETWORK}"] }}
"""
        )
    )
    sessions = open_store(config)
    report = run_discovery(sessions, config, context=build_context(config))
    assert report.status == "ok"
    with sessions() as session:
        proposals = [
            (a.kind, a.value, [e.source for e in a.evidence]) for a in queued(session, ["verkko"])
        ]
    assert proposals == [("ip", a, ["ping_sweep"]) for a in live_addresses]
