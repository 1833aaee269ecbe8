"""A full scan of the lab estate, repeated: time per scan and database rows after each.

Run as root in a loopback-only namespace (it starts the lab):

    unshare --net sh -c 'ip link set lo up && .venv/bin/python benchmarks/bench_scan.py'

Writes the "Full lab scan" section of docs/benchmarks.md. The findings and finding_event
tables must not grow while nothing changes; scan_run grows by one row per collector run and
scan_error by the targets that failed in it.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from riskiturva.config import load_config
from riskiturva.db import open_store
from riskiturva.lab.estate import down, up
from riskiturva.models import Finding, FindingEvent, ScanError, ScanRun, SubjectState

ROOT = Path(__file__).resolve().parents[1]
RISKITURVA = str(Path(sys.executable).parent / "riskiturva")
TABLES = (Finding, FindingEvent, SubjectState, ScanRun, ScanError)


def row_counts(config_path: Path) -> dict[str, int]:
    sessions = open_store(load_config(config_path))
    with sessions() as session:
        return {
            t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in TABLES
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scans", type=int, default=11, help="1 first scan + N-1 unchanged repeats"
    )
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="riskiturva-bench-scan-"))
    state = up(directory)
    config_path = Path(state.config_path)
    rows: list[tuple[int, float, dict[str, int]]] = []
    try:
        for number in range(1, args.scans + 1):
            started = time.perf_counter()
            subprocess.run(
                [RISKITURVA, "scan", "--config", str(config_path)], check=True, capture_output=True
            )
            rows.append((number, time.perf_counter() - started, row_counts(config_path)))
            print(f"scan {number}: {rows[-1][1]:.1f} s {rows[-1][2]}", flush=True)
    finally:
        down(directory)
    section = render(rows)
    print(section)
    if args.write:
        path = ROOT / "docs" / "benchmarks.md"
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\n## Full lab scan\n.*?(?=\n## |\Z)", "", text, flags=re.DOTALL).rstrip()
        path.write_text(text + "\n\n" + section, encoding="utf-8")


def render(rows: list[tuple[int, float, dict[str, int]]]) -> str:
    names = [t.__tablename__ for t in TABLES]
    lines = [
        "## Full lab scan",
        "",
        f"`benchmarks/bench_scan.py` ({platform.machine()}, Python {platform.python_version()}):",
        "`riskiturva scan` over the whole lab estate (3 municipalities; dns_email, services, tls",
        "and web at once), into a fresh SQLite database, then repeated with nothing changed.",
        "",
        "| scan | seconds | " + " | ".join(names) + " |",
        "|---:|---:|" + "---:|" * len(names),
    ]
    lines += [
        f"| {n} | {s:.1f} | " + " | ".join(str(c[k]) for k in names) + " |" for n, s, c in rows
    ]
    first, last = rows[0][2], rows[-1][2]
    lines += [
        "",
        f"After {len(rows) - 1} unchanged repeats: finding {first['finding']} → {last['finding']},"
        f" finding_event {first['finding_event']} → {last['finding_event']},"
        f" subject_state {first['subject_state']} → {last['subject_state']}. scan_run grows by"
        " one row per collector run and scan_error by the targets that failed in it (the lab's"
        " dangling name `vanha.rapala.test` has no address, for three collectors): that is the",
        "run history, not growth with unchanged findings.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
