"""A partner's estate: every collector over N generated municipalities, serial vs concurrent
in-process, then 1, 2 and 4 worker processes on the queue.

Run as root in a loopback-only namespace (it starts the lab, PostgreSQL and Redis itself):

    unshare --net sh -c 'ip link set lo up && .venv/bin/python benchmarks/bench_estate.py'

The estate is the lab's municipalities plus clones of them (`load_manifest(municipalities=N)`,
as `riskiturva lab up --municipalities N` serves it: own domain, own /24, every host, asset
and planted weakness; the real FTP and Redis daemons stay with the originals), behind the
lab's 20 ms delay proxy. Each configuration scans the same estate into a fresh
database with the same collectors:

- serial: `settings.concurrency.tasks = 1`, the organisations one after another inside each
  collector, as the runner did before tasks ran concurrently;
- concurrent: the default pool (`tasks = 4`; TLS tasks in worker processes);
- workers: `scan --queue` and 1, 2, 4 `riskiturva worker` processes (PostgreSQL, Redis).

Reported: wall time, CPU seconds (user + system of every process involved), peak RSS of
the largest process, database size, and per collector the run's own duration; with
--profile, py-spy's view of where the concurrent run spends its time (py-spy must be
installed: pip install py-spy). Writes the "Estate scan" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.pool import NullPool

from riskiturva.lab.estate import down, up
from riskiturva.lab.manifest import load_manifest
from riskiturva.models import Finding, ScanRun

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.postgres and tests.redis_server start the servers

from tests.postgres import postgres_cluster  # noqa: E402
from tests.redis_server import redis_server  # noqa: E402

RISKITURVA = str(Path(sys.executable).parent / "riskiturva")
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Estate scan"
DAILY = ("dns_email", "tls", "web")


@dataclass
class Measured:
    label: str
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    db_mib: float
    runs: dict[str, tuple[str, float]] = field(default_factory=dict)  # collector → status, s
    findings: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    proxy_cpu_s: float = 0.0  # the lab's delay proxy (one Python process) meanwhile


def config_with(lab_config: Path, folder: Path, settings: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = lab_config.read_text(encoding="utf-8")
    body = body.replace('data_dir = "data"\n', f'data_dir = "{folder / "data"}"\n{settings}', 1)
    path = folder / "riskiturva.toml"
    path.write_text(body, encoding="utf-8")
    return path


def database_facts(url: str) -> tuple[dict[str, tuple[str, float]], int, Counter[str], float]:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        runs = {
            r.collector: (r.status, float((r.counts or {}).get("duration_s", 0)))
            for r in connection.execute(select(ScanRun).order_by(ScanRun.id))
        }
        statuses = Counter(s for (s,) in connection.execute(select(Finding.status)))
        if url.startswith("sqlite"):
            size = Path(url.removeprefix("sqlite:///")).stat().st_size
        else:
            size = connection.execute(text("SELECT pg_database_size(current_database())")).scalar()
    engine.dispose()
    return runs, sum(statuses.values()), statuses, (size or 0) / 2**20


class TreeSampler(threading.Thread):
    """CPU seconds and peak RSS of a process and every descendant (the TLS worker
    processes are the forkserver's children: no rusage of ours ever counts them), read from
    /proc every 0.2 s; a process's last reading stands for it."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.cpu: dict[int, float] = {}
        self.rss: dict[int, float] = {}
        self.done = threading.Event()

    def descendants(self) -> set[int]:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                parents[int(entry.name)] = int(fields[1])
        found = {self.root}
        grew = True
        while grew:
            more = {pid for pid, parent in parents.items() if parent in found} - found
            found |= more
            grew = bool(more)
        return found

    def run(self) -> None:
        while not self.done.is_set():
            for pid in self.descendants():
                try:
                    cpu, rss = _proc_cpu_and_rss(pid, children=False)
                except (OSError, IndexError):
                    continue
                self.cpu[pid] = cpu
                self.rss[pid] = max(rss, self.rss.get(pid, 0.0))
            time.sleep(0.2)


def in_process(label: str, config: Path, collectors: list[str], profile: Path | None) -> Measured:
    command = [RISKITURVA, "scan", "--config", str(config), "--format", "json"]
    command += [a for c in collectors for a in ("--collector", c)]
    if profile is not None:
        spy = str(Path(sys.executable).parent / "py-spy")
        command = [spy, "record", "--subprocesses", "--format", "raw", "--rate", "20",
                   "-o", str(profile), "--", *command]  # fmt: skip
    out, err = config.parent / "scan.out", config.parent / "scan.err"
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        scan = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        sampler = TreeSampler(scan.pid)
        sampler.start()
        code = scan.wait()
    wall = time.monotonic() - started
    sampler.done.set()
    sampler.join()
    if code not in (0, 1):
        raise SystemExit(f"{label}: scan exited {code}\n{err.read_text()[-3000:]}")
    url = f"sqlite:///{config.parent / 'data' / 'riskiturva.db'}"
    runs, findings, statuses, size = database_facts(url)
    return Measured(
        label,
        wall,
        sum(sampler.cpu.values()),
        max(sampler.rss.values(), default=0.0),
        size,
        runs,
        findings,
        statuses,
    )


def _proc_cpu_and_rss(pid: int, *, children: bool = True) -> tuple[float, float]:
    """CPU seconds of a live process (and of its waited-for children); its peak RSS (MiB)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = sum(int(fields[i]) for i in ((11, 12, 13, 14) if children else (11, 12))) / ticks
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return cpu, (int(match.group(1)) / 1024 if match else 0.0)


def with_workers(
    count: int, lab_config: Path, folder: Path, collectors: list[str], url: str, redis_url: str
) -> Measured:
    queue = (
        f'queue = {{ runner = "workers", redis_url = "{redis_url}", '
        "task_time_limit_seconds = 1800, visibility_timeout_seconds = 2400 }\n"
        f'database_url = "{url}"\n'
    )
    config = config_with(lab_config, folder, queue)
    logs = [(folder / f"worker{i}.err").open("wb") for i in range(count)]
    workers = [
        subprocess.Popen(
            [RISKITURVA, "worker", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        for log in logs
    ]
    deadline = time.monotonic() + 120
    while not all("worker ready" in (folder / f"worker{i}.err").read_text() for i in range(count)):
        if time.monotonic() > deadline:
            raise SystemExit(f"workers did not start: see {folder}")
        time.sleep(0.2)
    before = sum(_proc_cpu_and_rss(w.pid)[0] for w in workers)
    own = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    command = [RISKITURVA, "scan", "--config", str(config)]
    command += [a for c in collectors for a in ("--collector", c)]
    queued = subprocess.run(command, capture_output=True, text=True)
    if queued.returncode != 0:
        raise SystemExit(f"scan --queue exited {queued.returncode}\n{queued.stderr[-3000:]}")
    engine = create_engine(url, poolclass=NullPool)
    while True:
        with engine.connect() as connection:
            running = connection.execute(
                select(ScanRun.id).where(ScanRun.status == "running")
            ).all()
        if not running:
            break
        time.sleep(0.5)
    engine.dispose()
    wall = time.monotonic() - started
    measured = [_proc_cpu_and_rss(w.pid) for w in workers]
    enqueue = resource.getrusage(resource.RUSAGE_CHILDREN)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=300)
    runs, findings, statuses, size = database_facts(url)
    cpu = sum(c for c, _ in measured) - before
    cpu += (enqueue.ru_utime - own.ru_utime) + (enqueue.ru_stime - own.ru_stime)
    return Measured(
        f"{count} worker{'s' if count > 1 else ''}",
        wall,
        cpu,
        max(r for _, r in measured),
        size,
        runs,
        findings,
        statuses,
    )


def hot_spots(profile: Path, top: int = 12, *, leaf: bool = False) -> list[tuple[str, float]]:
    """py-spy's raw (collapsed) stacks → share of samples per innermost project or library
    frame (or per innermost frame of all: `leaf`), whichever process and thread it ran in."""
    samples: Counter[str] = Counter()
    total = 0
    for line in profile.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        interesting = frames[-1]
        if not leaf:
            interesting = next(
                (
                    f
                    for f in reversed(frames)
                    if "riskiturva" in f or "collectors" in f or "sslyze" in f
                ),
                interesting,
            )
        name = re.sub(r"\s*\(.*?([^/]+\.py):\d+\)", r" (\1)", interesting)
        samples[name] += int(count)
        total += int(count)
    return [(name, n / total) for name, n in samples.most_common(top)] if total else []


def render(
    orgs: int,
    assets: int,
    endpoints: int,
    latency: int,
    collectors: list[str],
    rows: list[Measured],
    spots: tuple[list[tuple[str, float]], list[tuple[str, float]]],
) -> str:
    serial = rows[0] if rows[0].label.startswith("serial") else None

    def ratio(row: Measured) -> str:
        return f"{serial.wall_s / row.wall_s:.2f}×" if serial else "–"

    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        SECTION,
        "",
        f"`python benchmarks/bench_estate.py --orgs {orgs}` on {platform.node()}"
        f" ({os.cpu_count()} CPUs, Python {platform.python_version()}), "
        f"{time.strftime('%Y-%m-%d')}: {orgs} municipalities (the lab's and clones of them),"
        f" {assets} assets, {endpoints} endpoints served by the lab (DNS, web, mail and"
        f" service ports), behind the lab's {latency} ms delay proxy; collectors"
        f" {', '.join(collectors)}; every configuration into a fresh database. Load average"
        f" at the end: {load} (other work shared the machine).",
        "",
        "| configuration | wall s | vs serial | CPU s | delay proxy CPU s | peak RSS MiB |"
        f" database MiB | {' | '.join(f'{c} s' for c in collectors)} | findings |",
        "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(collectors) + "---:|",
    ]
    for row in rows:
        per = " | ".join(
            f"{row.runs[c][1]:.1f} ({row.runs[c][0]})" if c in row.runs else "–" for c in collectors
        )
        lines.append(
            f"| {row.label} | {row.wall_s:.1f} | {ratio(row)} |"
            f" {row.cpu_s:.1f} | {row.proxy_cpu_s:.1f} | {row.peak_rss_mib:.0f} |"
            f" {row.db_mib:.1f} | {per} |"
            f" {row.findings} |"
        )
    by_frame, by_leaf = spots
    if by_frame:
        lines += [
            "",
            "Where a concurrent in-process run (a run of its own, under py-spy at 20 Hz) spends"
            " its time, every process and thread, by innermost project or sslyze frame; then"
            " by innermost frame of all (a thread blocked in a C call, a handshake waiting on"
            " the network, counts as busy):",
            "",
        ]
        lines += [f"- {share:.1%} {name}" for name, share in by_frame]
        lines += ["", "Innermost frames:", ""]
        lines += [f"- {share:.1%} {name}" for name, share in by_leaf]
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    body = DOCS.read_text(encoding="utf-8")
    if SECTION in body:
        start = body.index(SECTION)
        rest = body[start + len(SECTION) :]
        following = re.search(r"\n## ", rest)
        end = start + len(SECTION) + (following.start() + 1 if following else len(rest))
        body = body[:start] + section + ("\n" if following else "") + body[end:]
    else:
        body = body.rstrip("\n") + "\n\n" + section
    DOCS.write_text(body, encoding="utf-8")


def proxy_cpu(pid: int) -> float:
    return _proc_cpu_and_rss(pid)[0] if pid else 0.0


def measured_with_proxy(pid: int, measure: Callable[[], Measured]) -> Measured:
    before = proxy_cpu(pid)
    row = measure()
    row.proxy_cpu_s = proxy_cpu(pid) - before
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=42, help="municipalities in the estate")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--collectors", default=",".join(DAILY))
    parser.add_argument("--workers", default="1,2,4", help="worker counts ('' for none)")
    parser.add_argument("--serial", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--profile", action="store_true", help="one more concurrent run, under py-spy"
    )
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    collectors = [c for c in args.collectors.split(",") if c]
    manifest = load_manifest(municipalities=args.orgs)
    assets = sum(len(m.assets) for m in manifest.municipalities)
    endpoints = 0
    rows: list[Measured] = []
    spots: tuple[list[tuple[str, float]], list[tuple[str, float]]] = ([], [])
    with tempfile.TemporaryDirectory(prefix="riskiturva-estate-") as scratch:
        folder = Path(scratch)
        state = up(folder / "lab", latency_ms=args.latency_ms, manifest=manifest)
        endpoints = len(state.endpoints)
        try:
            lab_config = Path(state.config_path)
            proxy = next((p.pid for p in state.processes if p.name == "latency-proxy"), 0)
            if args.serial:
                serial = config_with(lab_config, folder / "serial", "concurrency = { tasks = 1 }\n")
                rows.append(
                    measured_with_proxy(
                        proxy, lambda: in_process("serial (tasks = 1)", serial, collectors, None)
                    )
                )
            concurrent = config_with(lab_config, folder / "concurrent", "")
            rows.append(
                measured_with_proxy(
                    proxy,
                    lambda: in_process("concurrent (tasks = 4)", concurrent, collectors, None),
                )
            )
            if args.profile:  # apart: py-spy's sampling takes a share of the CPU itself
                profiled = config_with(lab_config, folder / "profiled", "")
                profile = folder / "profile.txt"
                print(in_process("profiled", profiled, collectors, profile), flush=True)
                spots = hot_spots(profile), hot_spots(profile, 8, leaf=True)
            counts = [int(n) for n in args.workers.split(",") if n]
            if counts:
                with postgres_cluster() as cluster, redis_server() as redis:
                    for count in counts:
                        url = cluster.new_database()
                        rows.append(
                            measured_with_proxy(
                                proxy,
                                functools.partial(
                                    with_workers,
                                    count,
                                    lab_config,
                                    folder / f"workers{count}",
                                    collectors,
                                    url,
                                    redis.url,
                                ),
                            )
                        )
        finally:
            down(folder / "lab")
    section = render(args.orgs, assets, endpoints, args.latency_ms, collectors, rows, spots)
    print(section)
    if not args.no_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
