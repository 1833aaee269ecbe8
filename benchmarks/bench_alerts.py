"""Alerts: delivery latency from reconcile to receiver, and what the outbox costs a run.

A fresh SQLite store, two organisations with an IT contact each, a partner with a security
team and a Teams channel, and a signed webhook. Receivers on loopback: aiosmtpd (plain SMTP
here; the tests cover STARTTLS) and an HTTP server. Measured:

- **latency**: runs of a small collector each open one critical finding per organisation;
  the time from the reconcile's commit (the alert's `created_at`) to the moment each
  receiver has the message — (a) with the sender pass that follows every scheduled scan and
  `riskiturva scan`, (b) with only the periodic `alerts:send` job of a running scheduler,
  at `@every 10s` (the default is `@every 1m`: the bound scales with it);
- **overhead**: the run's final transaction (reconcile + snapshot of the outbox) for 1,000
  and 10,000 new findings, with alerts on and off; and one sender pass that makes and sends
  the single digest of each destination.

Run: `python benchmarks/bench_alerts.py [--write]` (`--write` updates the "Alerts" section
of docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from aiosmtpd.controller import Controller
from sqlalchemy import select

from riskiturva import scheduler
from riskiturva.alerts.models import Alert, AlertMessage, AlertNotification
from riskiturva.alerts.sender import deliver_due
from riskiturva.collector import (
    FindingDraft,
    ScanContext,
    ScanTask,
    SubjectObservation,
    SubjectStatus,
)
from riskiturva.config import AssetKind, load_config
from riskiturva.db import open_store
from riskiturva.runner import build_context, run_collector

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Alerts"

CONFIG = """
[settings]
data_dir = "{data}"
[settings.resolver]
nameservers = ["127.0.0.1"]
[settings.reports.smtp]
host = "127.0.0.1"
port = {smtp}
starttls = false
from_address = "riskiturva@bench.test"
[settings.alerts]
sender_schedule = "@every 10s"
[[settings.alerts.channels]]
name = "teams"
kind = "teams"
url = "http://127.0.0.1:{http}/teams"
[[settings.alerts.channels]]
name = "tickets"
kind = "webhook"
url = "http://127.0.0.1:{http}/tickets"
secret = "bench-secret-0123456789"
[[partners]]
slug = "p"
name = "Partner"
organisations = ["a", "b"]
alerts = {{ contacts = [{{ email = "soc@p.test" }}], channels = ["teams"] }}
[[organisations]]
slug = "a"
name = {{ fi = "A", sv = "A", en = "A" }}
scope = {{ domains = ["a.test"], networks = ["127.61.1.0/24"] }}
assets = [{{ kind = "ip", value = "127.61.1.1" }}]
alerts = {{ contacts = [{{ email = "it@a.test" }}], channels = ["tickets"] }}
[[organisations]]
slug = "b"
name = {{ fi = "B", sv = "B", en = "B" }}
scope = {{ domains = ["b.test"], networks = ["127.61.2.0/24"] }}
assets = [{{ kind = "ip", value = "127.61.2.1" }}]
alerts = {{ contacts = [{{ email = "it@b.test" }}] }}
"""


class Arrivals:
    """When each message key reached a receiver (e-mail: Message-ID; HTTP: Idempotency-Key)."""

    def __init__(self) -> None:
        self.at: dict[str, dt.datetime] = {}
        self.lock = threading.Lock()

    def add(self, key: str) -> None:
        with self.lock:
            self.at.setdefault(key, dt.datetime.now(dt.UTC))

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for line in envelope.original_content.decode(errors="replace").splitlines():
            if line.lower().startswith("message-id:"):
                self.add(line.split("<", 1)[1].split("@", 1)[0])
                break
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_receiver(arrivals: Arrivals, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrivals.add(self.headers["Idempotency-Key"])
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Findings:
    """Opens `count` new findings per address (subjects numbered from `start`) and still
    sees every earlier one, so nothing resolves: the run's changes are the new findings."""

    count: int
    start: int = 0
    check_id: str = "services.exposed.rdp"
    name: ClassVar[str] = "bench"
    asset_kinds: ClassVar[frozenset[AssetKind]] = frozenset({AssetKind.IP})
    address_kinds: ClassVar[frozenset[AssetKind]] = frozenset()

    def collect(self, task: ScanTask, context: ScanContext) -> Iterable[SubjectObservation]:
        for target in task.targets:
            yield SubjectObservation(target.address or "", target.asset, SubjectStatus.OK, {})

    def judge(self, observation: SubjectObservation) -> list[FindingDraft]:
        return [
            FindingDraft(self.check_id, {}, subject=f"{observation.subject}:{n}/tcp")
            for n in range(self.start + self.count)
        ]


def latencies(sessions: Any, arrivals: Arrivals, since_id: int) -> list[float]:
    with sessions() as session:
        rows = session.execute(
            select(AlertMessage.key, Alert.created_at)
            .join(AlertNotification, AlertNotification.message_id == AlertMessage.id)
            .join(Alert, Alert.id == AlertNotification.alert_id)
            .where(Alert.id > since_id)
        ).all()
    return [
        (arrivals.at[key] - created).total_seconds() for key, created in rows if key in arrivals.at
    ]


def last_alert(sessions: Any) -> int:
    with sessions() as session:
        return session.scalar(select(Alert.id).order_by(Alert.id.desc()).limit(1)) or 0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per latency measurement")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="riskiturva-bench-alerts-"))
    arrivals = Arrivals()
    smtp_port, http_port = free_port(), free_port()
    smtp = Controller(arrivals, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    http = http_receiver(arrivals, http_port)
    path = folder / "riskiturva.toml"
    path.write_text(CONFIG.format(data=folder / "data", smtp=smtp_port, http=http_port))
    config = load_config(path)
    sessions = open_store(config)
    results: dict[str, Any] = {}
    subject = 0

    def run(findings: int, *, alerts: bool = True) -> float:
        nonlocal subject
        cfg = config
        if not alerts:
            settings = config.settings.model_copy(
                update={"alerts": config.settings.alerts.model_copy(update={"enabled": False})}
            )
            cfg = config.model_copy(update={"settings": settings})
        collector = Findings(findings, subject)
        subject += findings
        started = time.perf_counter()
        run_collector(sessions, cfg, collector, context=build_context(cfg))
        return time.perf_counter() - started

    # (a) the pass right after each run
    since = last_alert(sessions)
    for _ in range(args.runs):
        run(1)
        deliver_due(sessions, config)
    results["after_run"] = latencies(sessions, arrivals, since)

    # (b) only the periodic job of a running scheduler
    since = last_alert(sessions)
    running = scheduler.build_scheduler(config, path)
    running.resume()
    try:
        for _ in range(max(3, args.runs // 4)):
            run(1)
            time.sleep(4.3)
        time.sleep(12)
    finally:
        scheduler.stop(running)
    results["job_only"] = latencies(sessions, arrivals, since)

    # overhead of the outbox on the run, and one digest pass
    for count in (1000, 10_000):
        off = run(count, alerts=False)
        on = run(count)
        started = time.perf_counter()
        digest_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        report = deliver_due(sessions, config, clock=lambda at=digest_at: at)
        results[f"run_{count}"] = (off, on, time.perf_counter() - started, report.sent)
    smtp.stop()
    http.shutdown()
    section = render(results, args.runs)
    print(section)
    if args.write:
        write_section(section, ROOT / "docs" / "benchmarks.md")


def render(results: dict[str, Any], runs: int) -> str:
    lines = [
        SECTION,
        "",
        f"`benchmarks/bench_alerts.py` ({platform.machine()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores shared with other jobs), SQLite,",
        "receivers on loopback (aiosmtpd, an HTTP server); every urgent message of a run to",
        "five destinations (two IT contacts, the partner's mail and Teams, a signed webhook).",
        "",
        "| delivery latency, reconcile → receiver | deliveries | p50 | p95 | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("after_run", "sender pass after the run (scheduled scans, `riskiturva scan`)"),
        ("job_only", "periodic `alerts:send` job only, `@every 10s`"),
    ):
        values = results[key]
        lines.append(
            f"| {label} | {len(values)} | {statistics.median(values):.2f} s | "
            f"{percentile(values, 0.95):.2f} s | {max(values):.2f} s |"
        )
    lines += [
        "",
        "With only the periodic job the bound is the job's interval plus the delivery (the",
        "default `@every 5m`: five minutes); scheduled scans do not wait for it.",
        "",
        "| new findings in one run (two organisations) | run, alerts off | run, alerts on "
        "| next sender pass | messages |",
        "|---:|---:|---:|---:|---:|",
    ]
    for count in (1000, 10_000):
        off, on, digest, sent = results[f"run_{count}"]
        lines.append(f"| {2 * count:,} | {off:.2f} s | {on:.2f} s | {digest:.2f} s | {sent} |")
    lines += [
        "",
        f"(Latency over {runs} runs. The sender pass after a big run makes one message per",
        "destination, however many alerts it holds, and sends it; the webhook's lists all.)",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str, path: Path) -> None:
    """Replace (or append) only this benchmark's section of the shared results file."""
    current = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(current):
        updated = pattern.sub(lambda _m: text, current)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    path.write_text(updated, encoding="utf-8")


if __name__ == "__main__":
    main()
