"""Bytes on the wire per page load of the dashboard, in headless Chromium.

The synthetic store of `bench_dashboard.py` (309 organisations of one partner), served by
waitress on loopback; Debian's chromium signs in and loads a page with an empty cache
(first visit), then loads it again (the next page of a visit: the browser's cache holds
what the server let it keep). Bytes come from the browser's Resource Timing entries:
`transferSize` (headers and body as sent, 0 for what came from the cache) and
`decodedBodySize` (the bodies as the page uses them).

Run: `python benchmarks/bench_dashboard_weight.py [--label before|after] [--write]`
(`--write` updates the "Dashboard: bytes per page load" section of docs/benchmarks.md
with the rows of this run under its label, keeping the rows of the other label).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import dashboard
from benchmarks.bench_dashboard import NOW, PASSWORD, build
from dashboard import ids
from riskiturva.store import make_engine, session_factory
from tests.browser import chromium, served

ROOT = Path(__file__).resolve().parent.parent
CASES = (
    ("portfolio, partner administrator (309 organisations)", "partner", "/portfolio"),
    ("findings, organisation staff", "staff", "/org/kunta-000/findings"),
)
ENTRIES = """
const all = [...performance.getEntriesByType('navigation'),
             ...performance.getEntriesByType('resource')];
return all.map(e => [e.name, e.transferSize, e.encodedBodySize, e.decodedBodySize]);
"""


def settled(driver, expect: str) -> list[list]:
    """Wait until the page shows `expect` and no request has started for a second."""
    WebDriverWait(driver, 60).until(lambda d: expect in d.find_element(By.ID, ids.PAGE).text)
    count, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < 1.0:
        entries = driver.execute_script(ENTRIES)
        if len(entries) != count:
            count, quiet_since = len(entries), time.monotonic()
        time.sleep(0.2)
    WebDriverWait(driver, 60).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']")
    )
    return driver.execute_script(ENTRIES)


def load(driver, base: str, path: str, expect: str) -> dict[str, float]:
    driver.get(f"{base}{path}")
    entries = settled(driver, expect)
    return {
        "requests": len(entries),
        "wire": sum(e[1] for e in entries) / 1024,
        "decoded": sum(e[3] for e in entries) / 1024,
        "cached": sum(1 for e in entries if e[1] == 0 and e[3] > 0),
        "largest": [
            f"{e[0].removeprefix(base)}: {e[1] / 1024:,.0f} KiB"
            for e in sorted(entries, key=lambda e: -e[1])[:4]
        ],
    }


def measure(base: str, username: str, path: str) -> dict[str, dict[str, float]]:
    with chromium() as driver:
        driver.get(f"{base}/login")
        driver.find_element(By.ID, "username").send_keys(username)
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "login-submit").click()
        WebDriverWait(driver, 60).until(lambda d: "/login" not in d.current_url)
        settled(driver, "Kunta")
        driver.execute_cdp_cmd("Network.clearBrowserCache", {})
        first = load(driver, base, path, "Kunta")
        again = load(driver, base, path, "Kunta")
    return {"first": first, "again": again}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="riskiturva-bench-weight-"))
    config = build(directory)
    engine = make_engine(config.settings.effective_database_url)
    app = dashboard.create_app(config, session_factory(engine), clock=lambda: NOW)
    with served(app) as base:
        results = {name: measure(base, user, path) for name, user, path in CASES}
    print(json.dumps(results, indent=1))
    if args.write:
        write(args.label, results)


HEADING = "## Dashboard: bytes per page load"


def write(label: str, results: dict[str, dict[str, dict[str, float]]]) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text(encoding="utf-8")
    found = re.search(rf"\n{HEADING}\n.*?(?=\n## |\Z)", text, flags=re.DOTALL)
    rows = [
        line
        for line in (found.group(0).splitlines() if found else [])
        if line.startswith("| ") and not line.startswith("| page") and f"| {label} |" not in line
    ]
    for name, loads in results.items():
        first, again = loads["first"], loads["again"]
        rows.append(
            f"| {name} | {label} | {first['requests']} | {first['decoded']:,.0f} "
            f"| {first['wire']:,.0f} | {again['wire']:,.0f} |"
        )
    rows.sort(key=lambda row: (row.split("|")[1], row.split("|")[2] != " before "))
    section = "\n".join(
        [
            HEADING,
            "",
            "`benchmarks/bench_dashboard_weight.py`: the store of `bench_dashboard.py` (309",
            "organisations), headless Chromium on loopback; KiB from Resource Timing. *First*:",
            "a signed-in page load with an empty cache; *again*: the same page loaded once",
            "more, as the next page of a visit does (what the browser's cache spared).",
            "*before* (`860b9a6`): every response uncompressed, `Cache-Control: no-store` on",
            "the bundles too; *after*: Brotli or gzip (flask-compress), the fingerprinted",
            "bundles kept for a year, the on-demand ones (Plotly, the table) revalidated by",
            "ETag (`304`). Pages, layouts and callbacks stay `no-store` and are fetched again:",
            "they are what *again* still moves.",
            "",
            "| page | build | requests | decoded KiB | first load on the wire KiB | again KiB |",
            "|---|---|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )
    text = text.replace(found.group(0), "") if found else text
    path.write_text(text.rstrip() + "\n\n" + section, encoding="utf-8")


if __name__ == "__main__":
    main()
