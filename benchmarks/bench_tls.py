"""Throughput of the TLS collector against raw sslyze and testssl.sh, on the lab.

Run as root in a loopback-only namespace (it starts and stops the lab itself):

    unshare --net sh -c 'ip link set lo up && python benchmarks/bench_tls.py'

Each lab HTTPS server is scanned under several SNI names (subjects); the servers that
refuse TLS 1.0/1.1 and those that accept them are measured apart. Riskiturva's collector
and a plain sslyze Scanner run the same scan commands with the same concurrency, side by
side in one run, with no added latency and behind the lab's delay proxy (20 ms).
testssl.sh (`--nodns none --ip ADDRESS`) runs on a few endpoints, one after another.
Endpoints per second and connections per endpoint go to the "TLS collector" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sslyze import (
    Scanner,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
)

from collectors.tls import TLSCollector
from collectors.tls._scan import HTTPS_ONLY_COMMANDS, SCAN_COMMANDS
from riskiturva.collector import ScanTask, SubjectStatus, Target
from riskiturva.config import AssetKind, Config, load_config
from riskiturva.lab.estate import down, tcp_connections_opened, up
from riskiturva.lab.manifest import load_manifest
from riskiturva.runner import build_context

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## TLS collector"


LEGACY = "accept TLS 1.0/1.1"
MODERN = "refuse TLS 1.0/1.1"


@dataclass(frozen=True)
class Result:
    label: str
    kind: str
    endpoints: int
    seconds: float
    ok: int
    connections: int  # TCP connections opened (the namespace's kernel count)

    @property
    def per_second(self) -> float:
        return self.endpoints / self.seconds


def lab_targets(copies: int, legacy: bool) -> list[Target]:
    """Lab HTTPS hosts that accept (or refuse) TLS 1.0/1.1, each under `copies` SNI names."""
    hosts = [h for h in load_manifest().hosts if h.tls and (h.tls == "legacy") == legacy]
    return [
        Target(h.fqdn, AssetKind.HOST, f"b{i}.{h.fqdn}", h.ip) for i in range(copies) for h in hosts
    ]


def _config(config_path: str, copies: int) -> Config:
    """The lab configuration, with as many connections per address as sslyze gets there:
    sslyze counts per name (`copies` names share an address), the limiter per address."""
    config = load_config(config_path)
    settings = config.settings
    per_address = copies * settings.concurrency.per_host_connections
    politeness = settings.politeness.model_copy(update={"connections_per_address": per_address})
    return config.model_copy(
        update={"settings": settings.model_copy(update={"politeness": politeness})}
    )


def run_collector(config: Config, targets: list[Target], kind: str) -> Result:
    context = build_context(config)
    task = ScanTask(0, "bench", "tls", tuple(targets))
    opened, start = tcp_connections_opened(), time.perf_counter()
    observations = list(TLSCollector().collect(task, context))
    seconds, opened = time.perf_counter() - start, tcp_connections_opened() - opened
    ok = sum(o.status is SubjectStatus.OK for o in observations)
    return Result("Riskiturva TLS collector", kind, len(targets), seconds, ok, opened)


def run_sslyze(config: Config, targets: list[Target], kind: str) -> Result:
    """The same scan commands and concurrency, straight through sslyze's Scanner."""
    settings = config.settings
    requests = [
        ServerScanRequest(
            server_location=ServerNetworkLocation(t.name, 443, ip_address=t.address),
            network_configuration=ServerNetworkConfiguration(
                tls_server_name_indication=t.name, network_timeout=5, network_max_retries=2
            ),
            scan_commands=set(SCAN_COMMANDS | HTTPS_ONLY_COMMANDS),
        )
        for t in targets
    ]
    scanner = Scanner(
        per_server_concurrent_connections_limit=settings.concurrency.per_host_connections,
        concurrent_server_scans_limit=settings.concurrency.targets,
    )
    opened, start = tcp_connections_opened(), time.perf_counter()
    scanner.queue_scans(requests)
    results = list(scanner.get_results())
    seconds, opened = time.perf_counter() - start, tcp_connections_opened() - opened
    ok = sum(r.scan_result is not None for r in results)
    return Result("raw sslyze Scanner", kind, len(targets), seconds, ok, opened)


def run_testssl(targets: list[Target]) -> Result:
    start = time.perf_counter()
    ok = 0
    for target in targets:
        completed = subprocess.run(
            ["testssl", "--nodns", "none", "--ip", target.address, "--quiet", "--color", "0",
             "--warnings", "off", f"https://{target.name}/"],
            capture_output=True, text=True, check=False, timeout=900,
        )  # fmt: skip
        ok += completed.returncode in (0, 1) or "Done" in completed.stdout
    seconds = time.perf_counter() - start
    return Result("testssl.sh 3.0.8 (full run)", MODERN, len(targets), seconds, ok, 0)


def with_lab(latency_ms: int, work: Callable[[str], None]) -> None:
    directory = Path(tempfile.mkdtemp(prefix="riskiturva-bench-"))
    try:
        state = up(directory, manifest=load_manifest(), latency_ms=latency_ms)
        work(state.config_path)
    finally:
        down(directory)
        shutil.rmtree(directory, ignore_errors=True)


def write_section(
    rows: list[tuple[str, Result]], testssl: Result | None, copies: dict[str, int]
) -> None:
    lines = [
        SECTION,
        "",
        f"`benchmarks/bench_tls.py` on {platform.node()} ({platform.machine()}, "
        f"Python {platform.python_version()}), {time.strftime('%Y-%m-%d')}: lab HTTPS endpoints "
        f"in one run — the servers that refuse TLS 1.0/1.1 under {copies[MODERN]} SNI names each,"
        f" the ones that accept them under {copies[LEGACY]} —, both scanners side by side on the"
        " same lab; concurrency from the lab configuration (20 servers at once, 5 connections"
        " per server; the collector's per-address limit set to what sslyze gets per address)."
        " Connections are the kernel's count of TCP connections opened in the benchmark's"
        " network namespace (behind the delay proxy, halved: the proxy opens one to the server"
        " for each it accepts).",
        "",
        "| latency | servers | scanner | endpoints | complete | seconds | endpoints/s |"
        " connections/endpoint |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for latency, r in rows:
        lines.append(
            f"| {latency} | {r.kind} | {r.label} | {r.endpoints} | {r.ok} | {r.seconds:.1f} | "
            f"{r.per_second:.2f} | {r.connections / r.endpoints:.0f} |"
        )
    if testssl:
        lines.append(
            f"| none | {testssl.kind} | {testssl.label} | {testssl.endpoints} | {testssl.ok} | "
            f"{testssl.seconds:.1f} | {testssl.per_second:.4f} | |"
        )
    ratios = []
    by = {(lat, r.kind, r.label): r for lat, r in rows}
    targets = {MODERN: 1.8, LEGACY: 1.0}
    for latency in ("none", "20 ms"):
        for kind, target in targets.items():
            ours = by.get((latency, kind, "Riskiturva TLS collector"))
            raw = by.get((latency, kind, "raw sslyze Scanner"))
            if ours and raw:
                ratios.append(
                    f"- {latency}, servers that {kind}: Riskiturva / raw sslyze = "
                    f"{ours.per_second / raw.per_second:.2f}× (target ≥ {target}×), "
                    f"{raw.connections / ours.connections:.1f}× fewer connections"
                )
    ours_plain = by.get(("none", MODERN, "Riskiturva TLS collector"))
    if testssl and ours_plain:
        ratios.append(
            f"- Riskiturva / testssl.sh per endpoint = "
            f"{ours_plain.per_second / testssl.per_second:.0f}× (target ≥ 100×)"
        )
    if testssl is None:
        ratios.append("- testssl.sh was not run this time (`--testssl 0`, or not installed).")
    lines += [
        "",
        *ratios,
        "",
        "Where the difference comes from: sslyze tests every suite it knows for every version,"
        " one handshake each; the collector (`collectors/tls/_engine.py`) checks each version"
        " with one handshake offering all of them and enumerates by elimination only the"
        " versions a server accepts, in partitions side by side — a server that accepts TLS"
        " 1.0 to 1.2 with OpenSSL's `ALL:COMPLEMENTOFALL` suites still costs a third of"
        " sslyze's connections. It also runs sslyze's other checks on its own pool, without"
        " the Scanner's 0.2 s polling."
        " `tests/test_tls_engine.py` shows the findings equal the full enumeration's on every"
        " lab TLS endpoint. On servers that accept the old versions and many suites the gain"
        " without latency is smallest: both scanners complete one full handshake per accepted"
        " suite (the costly part on 2 cores); only sslyze's cheap refusals are saved.",
        "",
    ]
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n\n"
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines)
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + "\n".join(lines) + ("\n" + text[end + 1 :] if end != -1 else "")
    DOCS.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2, help="SNI names per modern lab server")
    parser.add_argument(
        "--legacy-copies", type=int, default=10, help="SNI names per legacy lab server"
    )
    parser.add_argument("--testssl", type=int, default=3, help="endpoints for testssl.sh (0: skip)")
    args = parser.parse_args()
    copies = {MODERN: args.copies, LEGACY: args.legacy_copies}
    targets = {kind: lab_targets(n, kind == LEGACY) for kind, n in copies.items()}
    rows: list[tuple[str, Result]] = []
    testssl: Result | None = None

    def measure(latency: str, config_path: str) -> None:
        nonlocal testssl
        for kind, kind_targets in targets.items():
            config = _config(config_path, copies[kind])
            for run in (run_sslyze, run_collector):
                result = run(config, kind_targets, kind)
                if latency != "none":  # the proxy's own connection to the server, each time
                    result = dataclasses.replace(result, connections=result.connections // 2)
                rows.append((latency, result))
        if args.testssl and latency == "none":
            testssl = run_testssl(targets[MODERN][: args.testssl])

    with_lab(0, lambda path: measure("none", path))
    with_lab(20, lambda path: measure("20 ms", path))
    for latency, r in rows:
        print(f"{latency:6} {r.kind:26} {r.label:26} {r.endpoints} endpoints, {r.ok} complete, "
              f"{r.seconds:.1f} s, {r.per_second:.2f}/s, "
              f"{r.connections / r.endpoints:.0f} connections/endpoint")  # fmt: skip
    if testssl:
        print(f"testssl: {testssl.endpoints} endpoints in {testssl.seconds:.1f} s")
    write_section(rows, testssl, copies)


if __name__ == "__main__":
    main()
