"""`riskiturva intel update` and `intel import` against feeds served on loopback.

The server plays the four publishers with files in their exact published formats (the lab's
feeds, validated against the schemas in test_intel_feeds.py), and NVD's CVE API 2.0 paging
and `lastModStartDate`/`lastModEndDate` filtering. This is the only way the updater is
tested here: the machine has no internet (docs/vulnerabilities.md says so too).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from riskiturva.config import Settings
from riskiturva.intel.feeds import FeedError, Source
from riskiturva.intel.models import IntelCpeMatch, IntelCve, IntelKev
from riskiturva.intel.store import source_states
from riskiturva.intel.update import FeedClient, FeedFetchError, import_directory, update
from riskiturva.resolver import Resolver
from tests.conftest import MINIMAL_CONFIG
from tests.intel_data import DAY
from tests.intel_data import feeds as lab_feeds

RISKITURVA = str(Path(sys.executable).parent / "riskiturva")


@dataclass
class Publisher:
    """What the fake publishers serve, and every request they saw."""

    directory: Path
    cves: list[dict]
    timestamp: str
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    truncate_kev: bool = False

    def nvd_page(self, query: dict[str, list[str]]) -> bytes:
        start = int(query.get("startIndex", ["0"])[0])
        size = int(query.get("resultsPerPage", ["2000"])[0])
        chosen = self.cves
        if "lastModStartDate" in query:
            low = dt.datetime.fromisoformat(query["lastModStartDate"][0])
            high = dt.datetime.fromisoformat(query["lastModEndDate"][0])
            chosen = [
                c
                for c in chosen
                if low <= dt.datetime.fromisoformat(c["cve"]["lastModified"] + "+00:00") <= high
            ]
        page = chosen[start : start + size]
        return json.dumps(
            {
                "resultsPerPage": len(page),
                "startIndex": start,
                "totalResults": len(chosen),
                "format": "NVD_CVE",
                "version": "2.0",
                "timestamp": self.timestamp,
                "vulnerabilities": page,
            }
        ).encode()


@pytest.fixture
def publisher(tmp_path) -> Iterator[tuple[Publisher, str]]:
    directory = lab_feeds(tmp_path)
    page = json.loads((directory / "nvd" / "cves.json").read_text())
    state = Publisher(directory, page["vulnerabilities"], page["timestamp"])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            state.requests.append((self.path, dict(self.headers)))
            if parts.path == "/kev":  # the publisher moved the file
                self.send_response(302)
                self.send_header("Location", "/files/known_exploited_vulnerabilities.json")
                self.end_headers()
                return
            if parts.path == "/nvd":
                body = state.nvd_page(parse_qs(parts.query))
            else:
                path = directory / parts.path.removeprefix("/files/")
                if not path.is_file():
                    self.send_response(404)
                    self.end_headers()
                    return
                body = path.read_bytes()
                if state.truncate_kev and path.name.startswith("known_exploited"):
                    body = body[: len(body) // 2]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def settings_for(base: str, **intel: object) -> Settings:
    return Settings.model_validate(
        {
            "intel": {
                "kev_url": f"{base}/kev",
                "nvd_url": f"{base}/nvd",
                "nvd_page_size": 4,
                "nvd_request_delay": 0,
                "epss_url": f"{base}/files/epss_scores-current.csv.gz",
                "eol_url": f"{base}/files/endoflife/{{product}}.json",
                "eol_products": ["php", "debian", "no-such-product"],
                **intel,
            }
        }
    )


def client(settings: Settings) -> FeedClient:
    return FeedClient(Resolver(settings.resolver), settings.user_agent, 10.0)


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_update_downloads_every_feed_and_stores_its_date(sessions, publisher):
    state, base = publisher
    settings = settings_for(base)
    # When the feeds are updated
    results = update(sessions, settings, client(settings), now=DAY + dt.timedelta(hours=1))
    # Then each source is stored with the publisher's own date
    assert {r.source: r.records for r in results} == {
        Source.KEV: 6, Source.NVD: 9, Source.EPSS: 9, Source.EOL: 2,
    }  # fmt: skip
    with sessions() as session:
        states = source_states(session)
    assert {s: st.data_as_of.date() for s, st in states.items()} == dict.fromkeys(
        Source, DAY.date()
    )
    assert states[Source.EOL].detail["products"] == ["debian", "php"]
    # And NVD was paged (9 CVEs, 4 a page), every request named Riskiturva
    nvd = [path for path, _ in state.requests if path.startswith("/nvd")]
    assert [parse_qs(urlsplit(p).query)["startIndex"] for p in nvd] == [["0"], ["4"], ["8"]]
    assert all(h["User-Agent"].startswith("Riskiturva/") for _, h in state.requests)
    assert count(sessions, IntelCve) == 9 and count(sessions, IntelCpeMatch) == 20


def test_a_later_update_asks_nvd_only_for_what_changed(sessions, publisher):
    state, base = publisher
    settings = settings_for(base)
    update(sessions, settings, client(settings), now=DAY, sources=[Source.NVD])
    # Given NVD modified one CVE after the first download (and dropped a criterion)
    changed = next(c for c in state.cves if c["cve"]["id"] == "CVE-2024-6387")
    changed["cve"]["lastModified"] = (DAY + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000")
    changed["cve"]["configurations"][0]["nodes"][0]["cpeMatch"].pop(0)
    state.timestamp = (DAY + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000")
    state.requests.clear()
    # When the feeds are updated again
    (result,) = update(
        sessions, settings, client(settings), now=DAY + dt.timedelta(days=2), sources=[Source.NVD]
    )
    # Then only the changed CVE was asked for and replaced; the rest stayed
    (path,) = [p for p, _ in state.requests]
    assert "lastModStartDate" in parse_qs(urlsplit(path).query)
    assert (result.records, result.detail["full"]) == (1, False)
    assert count(sessions, IntelCve) == 9 and count(sessions, IntelCpeMatch) == 19
    with sessions() as session:
        assert source_states(session)[Source.NVD].data_as_of == DAY + dt.timedelta(days=2)


def test_a_broken_download_keeps_the_previous_data(sessions, publisher):
    state, base = publisher
    settings = settings_for(base)
    update(sessions, settings, client(settings), now=DAY, sources=[Source.KEV])
    state.truncate_kev = True
    with pytest.raises(FeedError, match="CISA KEV"):
        update(sessions, settings, client(settings), now=DAY, sources=[Source.KEV])
    assert count(sessions, IntelKev) == 6


def test_an_unreachable_publisher_is_a_clear_error(sessions):
    settings = settings_for("http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(FeedFetchError, match=r"127\.0\.0\.1:9"):
        update(sessions, settings, client(settings), now=DAY, sources=[Source.KEV])


def test_import_reads_the_files_of_an_air_gapped_site(sessions, tmp_path):
    directory = lab_feeds(tmp_path, as_of=DAY - dt.timedelta(days=3))
    results = import_directory(sessions, directory, now=DAY)
    assert {r.source: r.data_as_of.date() for r in results} == dict.fromkeys(
        Source, (DAY - dt.timedelta(days=3)).date()
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FeedFetchError, match="no feed files"):
        import_directory(sessions, empty, now=DAY)


def test_cli_status_says_when_data_is_out_of_date(tmp_path):
    # Given feeds imported from files 20 days old, with the default 14-day limit
    config_path = tmp_path / "riskiturva.toml"
    config_path.write_text(
        MINIMAL_CONFIG.replace('data_dir = "data"', f'data_dir = "{tmp_path / "data"}"', 1),
        encoding="utf-8",
    )
    old = lab_feeds(tmp_path, as_of=dt.datetime.now(dt.UTC) - dt.timedelta(days=20))
    imported = subprocess.run(
        [RISKITURVA, "intel", "import", "--config", str(config_path), str(old)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stderr
    assert "CISA KEV: 6 records" in imported.stdout
    # Then the status says so and exits 1
    status = subprocess.run(
        [RISKITURVA, "intel", "status", "--config", str(config_path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 1
    report = json.loads(status.stdout)
    assert report["max_age_days"] == 14
    assert [s["usable"] for s in report["sources"]] == [False] * 4
    assert Settings().intel.max_age_days == 14
