"""Spreadsheet exports: what 10,000 findings cost as CSV and XLSX.

A fresh SQLite store, one organisation with 200 tagged assets (five tags) and 10,000 open
findings (50 per asset). Measured, best of three: reading the rows from the read model
(`tables.sheet`), writing them as CSV and as XLSX, and the bytes of each; and, when
LibreOffice is installed, how long `soffice --headless --convert-to csv` takes to open the
XLSX (what the slow test does for every kind).

Run: `python benchmarks/bench_exports.py [--write]` (`--write` updates the "Spreadsheet
exports" section of docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from riskiturva import tables
from riskiturva.checks import load_registry
from riskiturva.config import load_config
from riskiturva.db import open_store
from riskiturva.models import Organisation
from riskiturva.store import ObservedFinding, reconcile, sync_config

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Spreadsheet exports"
ASSETS, PER_ASSET = 200, 50
TAGS = ("website", "e-service", "email", "services", "school")
T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


def _config(data: Path) -> str:
    assets = ",\n".join(
        f'  {{ kind = "host", value = "h{i}.bench.test", tags = ["{TAGS[i % 5]}"] }}'
        for i in range(ASSETS)
    )
    return f"""
[settings]
data_dir = "{data}"
[settings.resolver]
nameservers = ["127.0.0.1"]

[[organisations]]
slug = "bench"
name = {{ fi = "Mittakunta", sv = "Mätkommun", en = "Bench municipality" }}
scope = {{ domains = ["bench.test"] }}
assets = [
{assets}
]
"""


def _best(step: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(3):
        start = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "riskiturva.toml"
        path.write_text(_config(Path(folder) / "data"), encoding="utf-8")
        config = load_config(path)
        sessions = open_store(config)
        with sessions.begin() as session:
            orgs = sync_config(session, config, now=T0)
            observed = [
                ObservedFinding(
                    "services.exposed.rdp", f"h{a}.bench.test:{3000 + p}/tcp",
                    f"h{a}.bench.test", f"h{a}.bench.test", "services", "high", {"port": p},
                )
                for a in range(ASSETS)
                for p in range(PER_ASSET)
            ]  # fmt: skip
            reconcile(session, organisation=orgs["bench"], collector="services", run_id=None,
                      observed=observed, scanned_ok=set(), now=T0)  # fmt: skip
        registry = load_registry()
        now = T0 + dt.timedelta(days=3)
        with sessions() as session:
            assert session.query(Organisation).count() == 1
            read, sheet = _best(
                lambda: tables.sheet(
                    session, ["bench"], "findings", language="fi", now=now, registry=registry
                )
            )
        csv_time, csv_bytes = _best(lambda: tables.csv_bytes(sheet))
        xlsx_time, xlsx_bytes = _best(lambda: tables.xlsx_bytes(sheet))
        soffice = shutil.which("soffice")
        convert = None
        if soffice:
            xlsx = Path(folder) / "findings.xlsx"
            xlsx.write_bytes(xlsx_bytes)
            profile = (Path(folder) / "lo").as_uri()
            start = time.perf_counter()
            subprocess.run(
                [soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to",
                 "csv", "--outdir", folder, str(xlsx)],
                check=True, capture_output=True, timeout=600,
            )  # fmt: skip
            convert = time.perf_counter() - start
    rows = len(sheet.rows)
    lines = [
        SECTION,
        "",
        f"`benchmarks/bench_exports.py` on {platform.node() or 'this machine'} "
        f"({platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores shared with other jobs, load average {os.getloadavg()[0]:.0f}), "
        f"{dt.date.today().isoformat()}: "
        f"{rows:,} findings of one organisation on {ASSETS} tagged assets, "
        f"{len(sheet.columns)} columns ({len(TAGS)} of them tags); best of three.",
        "",
        "| step | seconds | bytes |",
        "|---|---:|---:|",
        f"| read the rows (`tables.sheet`, the read model) | {read:.2f} | |",
        f"| write CSV (`csv_bytes`) | {csv_time:.2f} | {len(csv_bytes):,} |",
        f"| write XLSX (`xlsx_bytes`, openpyxl write-only) | {xlsx_time:.2f} | "
        f"{len(xlsx_bytes):,} |",
    ]
    if convert is not None:
        lines.append(
            f"| LibreOffice opens the XLSX and writes CSV (first start) | {convert:.1f} | |"
        )
    lines += [
        "",
        f"XLSX per row: {xlsx_time / rows * 1e6:.0f} µs; CSV per row: "
        f"{csv_time / rows * 1e6:.0f} µs.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if arguments.write:
        docs = ROOT / "docs" / "benchmarks.md"
        current = docs.read_text(encoding="utf-8")
        pattern = re.compile(rf"{re.escape(SECTION)}\n.*?(?=\n## |\Z)", re.DOTALL)
        updated = (
            pattern.sub(text.rstrip("\n"), current)
            if pattern.search(current)
            else current.rstrip("\n") + "\n\n" + text
        )
        docs.write_text(updated, encoding="utf-8")


if __name__ == "__main__":
    main()
