"""Overhead of the services collector over one plain nmap run with the same options, on the lab.

Run as root in a loopback-only namespace (it starts and stops the lab itself):

    unshare --net sh -c 'ip link set lo up && python benchmarks/bench_services.py'

Every lab address that serves something (web, TLS, exposed services) is one target; all go
in one task, so the collector runs one nmap process, exactly as a plain `nmap -oX -` with the
argument list the collector builds. The two alternate, `--rounds` times each, with the NSE
scripts on (the default) and off; medians go to the "Services collector" section of
docs/benchmarks.md. Target: collector overhead <= 10 %.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from collectors.services import ServicesCollector
from collectors.services._nmap import build_command, parse_report
from collectors.services.facts import HostFacts
from collectors.services.options import ServicesOptions
from collectors.services.rules import judge_host
from riskiturva.collector import ScanTask, SubjectStatus, Target
from riskiturva.config import AssetKind, Config, load_config
from riskiturva.lab.estate import down, up
from riskiturva.lab.manifest import load_manifest
from riskiturva.runner import build_context

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## Services collector"
TARGET_OVERHEAD = 0.10


@dataclass(frozen=True)
class Pair:
    scripts: bool
    collector_s: list[float]
    nmap_s: list[float]
    own_work_s: list[float]
    findings: int
    ok: int

    @property
    def overhead(self) -> float:
        return statistics.median(self.collector_s) / statistics.median(self.nmap_s) - 1


def bench_config(lab_config: Path, addresses: list[str], options: dict) -> Config:
    settings = load_config(lab_config).settings
    return Config.model_validate(
        {
            "settings": {
                "resolver": settings.resolver.model_dump(),
                "collectors": {"services": options},
            },
            "organisations": [
                {
                    "slug": "bench",
                    "name": {"fi": "Bench", "sv": "Bench", "en": "Bench"},
                    "scope": {"networks": ["127.60.0.0/16"]},
                    "assets": [{"kind": "ip", "value": a} for a in addresses],
                }
            ],
        }
    )


def run_collector(config: Config, addresses: list[str]) -> tuple[float, int, int]:
    """Seconds for collect + judge of one task, findings and OK subjects."""
    collector = ServicesCollector()
    task = ScanTask(
        0, "bench", "services", tuple(Target(a, AssetKind.IP, address=a) for a in addresses)
    )
    context = build_context(config)
    start = time.perf_counter()
    observations = list(collector.collect(task, context))
    drafts = [d for o in observations if o.status is SubjectStatus.OK for d in collector.judge(o)]
    seconds = time.perf_counter() - start
    return seconds, len(drafts), sum(o.status is SubjectStatus.OK for o in observations)


def run_plain_nmap(config: Config, addresses: list[str]) -> tuple[float, bytes]:
    options = config.settings.collectors["services"]
    assert isinstance(options, ServicesOptions)
    command = build_command(
        addresses,
        options,
        privileged=os.geteuid() == 0,
        host_timeout_s=options.host_timeout or config.settings.timeouts.host,
    )
    start = time.perf_counter()
    done = subprocess.run(
        command.argv(shutil.which("nmap") or "nmap"), check=True, capture_output=True
    )
    return time.perf_counter() - start, done.stdout


def parse_and_judge_seconds(xml: bytes) -> float:
    """The collector's own work on one report: parse nmap's XML and run every rule."""
    start = time.perf_counter()
    for host in parse_report(xml).hosts.values():
        judge_host(HostFacts(host.address, host.open_ports, {}, host.closed_ports))
    return time.perf_counter() - start


def measure(lab_config: Path, addresses: list[str], rounds: int, scripts: bool) -> Pair:
    config = bench_config(lab_config, addresses, {"timing": 4, "scripts": scripts})
    collector_s, nmap_s, own_work_s, findings, ok = [], [], [], 0, 0
    for _ in range(rounds):
        seconds, findings, ok = run_collector(config, addresses)
        collector_s.append(seconds)
        nmap_seconds, xml = run_plain_nmap(config, addresses)
        nmap_s.append(nmap_seconds)
        own_work_s.append(parse_and_judge_seconds(xml))
        print(f"  scripts={scripts}: collector {seconds:.2f} s, nmap {nmap_seconds:.2f} s")
    return Pair(scripts, collector_s, nmap_s, own_work_s, findings, ok)


def report(pairs: list[Pair], addresses: list[str], rounds: int) -> str:
    nmap_version = subprocess.run(["nmap", "--version"], capture_output=True, text=True).stdout
    lines = [
        SECTION,
        "",
        f"`benchmarks/bench_services.py` on {platform.node()} ({platform.machine()}, Python "
        f"{platform.python_version()}, nmap {nmap_version.split()[2]}), "
        f"{time.strftime('%Y-%m-%d')}: "
        f"{len(addresses)} lab addresses in one task (one nmap process), default 'risky' port "
        f"list, -T4, -sV intensity 7, {'-sS (root)' if os.geteuid() == 0 else '-sT'}; "
        f"{rounds} alternating rounds, medians.",
        "",
        "| NSE scripts | collector (s) | plain nmap (s) | overhead | OK subjects | findings |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for p in pairs:
        lines.append(
            f"| {'on' if p.scripts else 'off'} | {statistics.median(p.collector_s):.2f} | "
            f"{statistics.median(p.nmap_s):.2f} | {p.overhead:+.1%} | {p.ok} | {p.findings} |"
        )
    on, off = (next(p for p in pairs if p.scripts is s) for s in (True, False))
    script_cost = statistics.median(on.nmap_s) - statistics.median(off.nmap_s)
    lines += [
        "",
        f"- Collector overhead with scripts: {on.overhead:+.1%} (target <= {TARGET_OVERHEAD:.0%}).",
        f"- The NSE scripts (ssl-cert, redis-info, memcached-info, mongodb-databases) cost "
        f"{script_cost:+.2f} s of nmap time on this estate.",
        f"- Parsing nmap's XML and judging every address takes "
        f"{statistics.median(on.own_work_s) * 1000:.1f} ms; the rest is nmap's -sV waiting for "
        "probe answers (about 12 s on the lab's TLS web servers, whatever the other options).",
        "",
        "Run as root: `unshare --net sh -c 'ip link set lo up && python "
        "benchmarks/bench_services.py'` (starts and stops the lab itself).",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace this benchmark's section in docs/benchmarks.md, leaving the others alone."""
    current = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    start = current.find(SECTION)
    if start == -1:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        end = current.find("\n## ", start + len(SECTION))
        updated = current[:start] + text + ("" if end == -1 else current[end + 1 :])
    DOCS.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print, do not update the docs")
    args = parser.parse_args()
    manifest = load_manifest()
    addresses = sorted(
        {h.ip for h in manifest.hosts if h.services or h.tls or h.web},
        key=lambda a: tuple(int(p) for p in a.split(".")),
    )
    directory = Path(tempfile.mkdtemp(prefix="riskiturva-bench-services-"))
    try:
        state = up(directory, manifest=manifest)
        pairs = [
            measure(Path(state.config_path), addresses, args.rounds, scripts)
            for scripts in (True, False)
        ]
    finally:
        down(directory)
        shutil.rmtree(directory, ignore_errors=True)
    text = report(pairs, addresses, args.rounds)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
