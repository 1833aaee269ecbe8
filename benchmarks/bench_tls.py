"""Throughput of the TLS collector against raw sslyze and testssl.sh, on the lab.

Run as root in a loopback-only namespace (it starts and stops the lab itself):

    unshare --net sh -c 'ip link set lo up && python benchmarks/bench_tls.py'

Each lab HTTPS server is scanned under several SNI names (subjects), so one run covers
N >= 20 endpoints. Riskiturva's collector and a plain sslyze Scanner run the same scan
commands with the same concurrency, with no added latency and behind the lab's delay proxy
(20 ms). testssl.sh (`--nodns none --ip ADDRESS`) runs on 3 endpoints, one after another.
Endpoints per second go to the "TLS collector" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
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
from riskiturva.config import AssetKind, load_config
from riskiturva.lab.estate import down, up
from riskiturva.lab.manifest import load_manifest
from riskiturva.runner import build_context

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## TLS collector"


@dataclass(frozen=True)
class Result:
    label: str
    endpoints: int
    seconds: float
    ok: int

    @property
    def per_second(self) -> float:
        return self.endpoints / self.seconds


def lab_targets(copies: int) -> list[Target]:
    """Every lab HTTPS host under `copies` SNI names each (`b0.www.rapala.test`, …)."""
    hosts = [h for h in load_manifest().hosts if h.tls]
    return [
        Target(h.fqdn, AssetKind.HOST, f"b{i}.{h.fqdn}", h.ip) for i in range(copies) for h in hosts
    ]


def run_collector(config_path: str, targets: list[Target]) -> Result:
    config = load_config(config_path)
    context = build_context(config)
    task = ScanTask(0, "bench", "tls", tuple(targets))
    start = time.perf_counter()
    observations = list(TLSCollector().collect(task, context))
    seconds = time.perf_counter() - start
    ok = sum(o.status is SubjectStatus.OK for o in observations)
    return Result("Riskiturva TLS collector", len(targets), seconds, ok)


def run_sslyze(config_path: str, targets: list[Target]) -> Result:
    """The same scan commands and concurrency, straight through sslyze's Scanner."""
    settings = load_config(config_path).settings
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
    start = time.perf_counter()
    scanner.queue_scans(requests)
    results = list(scanner.get_results())
    seconds = time.perf_counter() - start
    ok = sum(r.scan_result is not None for r in results)
    return Result("raw sslyze Scanner", len(targets), seconds, ok)


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
    return Result("testssl.sh 3.0.8 (full run)", len(targets), seconds, ok)


def with_lab(latency_ms: int, work: Callable[[str], None]) -> None:
    directory = Path(tempfile.mkdtemp(prefix="riskiturva-bench-"))
    try:
        state = up(directory, manifest=load_manifest(), latency_ms=latency_ms)
        work(state.config_path)
    finally:
        down(directory)
        shutil.rmtree(directory, ignore_errors=True)


def write_section(rows: list[tuple[str, Result]], testssl: Result | None, n: int) -> None:
    lines = [
        SECTION,
        "",
        f"`benchmarks/bench_tls.py` on {platform.node()} ({platform.machine()}, "
        f"Python {platform.python_version()}), {time.strftime('%Y-%m-%d')}: {n} lab HTTPS "
        "endpoints (each lab HTTPS server under two SNI names) in one run; concurrency from the "
        "lab configuration (20 servers at once, 5 connections per server).",
        "",
        "| latency | scanner | endpoints | complete | seconds | endpoints/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for latency, r in rows:
        lines.append(
            f"| {latency} | {r.label} | {r.endpoints} | {r.ok} | {r.seconds:.1f} | "
            f"{r.per_second:.2f} |"
        )
    if testssl:
        lines.append(
            f"| none | {testssl.label} | {testssl.endpoints} | {testssl.ok} | "
            f"{testssl.seconds:.1f} | {testssl.per_second:.4f} |"
        )
    ratios = []
    by = {(lat, r.label): r for lat, r in rows}
    for latency in ("none", "20 ms"):
        ours, raw = by.get((latency, rows[0][1].label)), by.get((latency, "raw sslyze Scanner"))
        if ours and raw:
            ratios.append(
                f"- {latency}: Riskiturva / raw sslyze = {ours.per_second / raw.per_second:.2f}× "
                "(target ≥ 0.9×)"
            )
    if testssl and by.get(("none", rows[0][1].label)):
        ours = by[("none", rows[0][1].label)]
        ratios.append(
            f"- Riskiturva / testssl.sh per endpoint = {ours.per_second / testssl.per_second:.0f}× "
            "(target ≥ 100×)"
        )
    lines += ["", *ratios, ""]
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
    parser.add_argument("--copies", type=int, default=2, help="SNI names per lab server")
    parser.add_argument("--testssl", type=int, default=3, help="endpoints for testssl.sh (0: skip)")
    args = parser.parse_args()
    targets = lab_targets(args.copies)
    rows: list[tuple[str, Result]] = []
    testssl: Result | None = None

    def plain(config_path: str) -> None:
        nonlocal testssl
        rows.append(("none", run_collector(config_path, targets)))
        rows.append(("none", run_sslyze(config_path, targets)))
        if args.testssl:
            testssl = run_testssl(targets[: args.testssl])

    def delayed(config_path: str) -> None:
        rows.append(("20 ms", run_collector(config_path, targets)))
        rows.append(("20 ms", run_sslyze(config_path, targets)))

    with_lab(0, plain)
    with_lab(20, delayed)
    for latency, r in rows:
        print(f"{latency:6} {r.label:28} {r.endpoints} endpoints, {r.ok} complete, "
              f"{r.seconds:.1f} s, {r.per_second:.2f}/s")  # fmt: skip
    if testssl:
        print(f"testssl: {testssl.endpoints} endpoints in {testssl.seconds:.1f} s")
    write_section(rows, testssl, len(targets))


if __name__ == "__main__":
    main()
