"""What one port that accepts TCP and never answers costs a scan, before and after the bounds.

Run as root in a loopback-only namespace (it starts its own listener, not the lab):

    unshare --net sh -c 'ip link set lo up && python benchmarks/bench_silent.py'

One address, 127.66.9.9, accepts connections on 443 and says nothing. Measured:

* sslyze alone on it, as the TLS collector used it before (no ClientHello probe first):
  eleven handshakes, each waiting the network timeout (settings.timeouts.connect, 5 s);
* the TLS collector now: one ClientHello probe, then the error;
* the services collector with the old bound (nmap's host timeout = settings.timeouts.host,
  300 s), where -sV waits out every probe on the silent port;
* the services collector with today's default (`host_timeout` 60 s, then a port scan alone).

The figures go to the "One silent port" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from collectors.services import ServicesCollector
from collectors.tls import TLSCollector, _scan
from collectors.tls._engine import Engine
from collectors.tls._scan import Endpoint, ScanOptions
from collectors.tls.trust import TrustAnchors
from riskiturva.collector import ScanTask, SubjectObservation, Target, TargetError
from riskiturva.config import AssetKind, Config, PolitenessSettings
from riskiturva.politeness import Politeness
from riskiturva.runner import build_context

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## One silent port"
ADDRESS, PORT = "127.66.9.9", 443


@contextmanager
def silent_listener() -> Iterator[None]:
    server = socket.create_server((ADDRESS, PORT))
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for sock in (server, *held):
            sock.close()


def config(services: dict[str, Any]) -> Config:
    return Config.model_validate(
        {
            "settings": {
                "resolver": {"nameservers": ["127.0.0.1"]},
                "collectors": {"services": services},
            },
            "organisations": [
                {
                    "slug": "hiljaisuus",
                    "name": {"fi": "Hiljaisuus", "sv": "Hiljaisuus", "en": "Hiljaisuus"},
                    "scope": {"domains": ["hiljainen.test"], "networks": ["127.66.9.0/24"]},
                    "assets": [{"kind": "ip", "value": ADDRESS}],
                }
            ],
        }
    )


def timed(work: Callable[[], list[SubjectObservation] | list[Any]]) -> tuple[float, str]:
    started = time.monotonic()
    outcome = work()
    seconds = time.monotonic() - started
    described = []
    for item in outcome:
        error = item.error if isinstance(item, SubjectObservation) else item[1]
        if isinstance(error, TargetError):
            described.append(f"{error.kind}: {error.message[:90]}")
        else:
            described.append(str(getattr(item, "status", "facts")))
    return seconds, "; ".join(described)


def sslyze_alone() -> list[Any]:
    endpoint = Endpoint("hiljainen.test", ADDRESS, PORT, "https", "hiljainen.test")
    options = ScanOptions("bench", 5.0, 2, None)
    store = TrustAnchors.from_settings(()).store()
    engine = Engine(1, 1, Politeness(PolitenessSettings()))
    return list(_scan.run([endpoint], options, store, dt.datetime.now(dt.UTC), engine))


def tls_collector() -> list[SubjectObservation]:
    cfg = config({})
    task = ScanTask(
        1,
        "hiljaisuus",
        "tls",
        (Target("hiljainen.test", AssetKind.HOST, "hiljainen.test", ADDRESS),),
    )
    return list(TLSCollector().collect(task, build_context(cfg)))


def services(options: dict[str, Any]) -> Callable[[], list[SubjectObservation]]:
    def run() -> list[SubjectObservation]:
        task = ScanTask(
            1, "hiljaisuus", "services", (Target(ADDRESS, AssetKind.IP, address=ADDRESS),)
        )
        return list(ServicesCollector().collect(task, build_context(config(options))))

    return run


def write(rows: list[tuple[str, str, float, str]]) -> None:
    lines = [
        SECTION,
        "",
        f"`benchmarks/bench_silent.py` on {platform.node()} ({platform.machine()}, Python"
        f" {platform.python_version()}), {dt.date.today().isoformat()}: one address whose port"
        f" {PORT} accepts TCP and never answers; every other risky port closed.",
        "",
        "| collector | how | seconds | recorded as |",
        "|---|---|---:|---|",
        *(f"| {c} | {how} | {s:.1f} | {outcome} |" for c, how, s, outcome in rows),
        "",
    ]
    text = DOCS.read_text(encoding="utf-8")
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip() + "\n\n" + "\n".join(lines)
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + "\n".join(lines) + (text[end:] if end != -1 else "")
    DOCS.write_text(text.rstrip() + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-old-nmap", action="store_true", help="skip the ~4 min run")
    args = parser.parse_args()
    rows = []
    with silent_listener():
        cases: list[tuple[str, str, Callable[[], list[Any]]]] = [
            ("tls", "before: sslyze alone, 5 s network timeout", sslyze_alone),
            ("tls", "now: one ClientHello probe first (5 s)", tls_collector),
            ("services", "now: host_timeout 60 s, then ports alone", services({})),
        ]
        if not args.skip_old_nmap:
            cases.append(
                ("services", "before: bound 300 s (settings.timeouts.host)",
                 services({"host_timeout": 300})),
            )  # fmt: skip
        for collector, how, work in cases:
            seconds, outcome = timed(work)
            print(f"{collector:9} {how:48} {seconds:7.1f} s  {outcome}")
            rows.append((collector, how, seconds, outcome.replace("|", "/")))
    write(rows)


if __name__ == "__main__":
    main()
