"""`riskiturva scan` end to end against the lab: lifecycle, errors, crash safety.

Each test scans into its own database with the real CLI in a subprocess, as an operator
or a cron job would run it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import func, select

from riskiturva.collector import discover_collectors
from riskiturva.config import load_config
from riskiturva.db import open_store
from riskiturva.lab.estate import up
from riskiturva.models import Finding, FindingEvent, ScanError, ScanRun, SubjectState

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[1]
RISKITURVA = str(Path(sys.executable).parent / "riskiturva")
SCHEMA = json.loads((ROOT / "docs" / "scan-output.schema.json").read_text(encoding="utf-8"))


@pytest.fixture
def config_path(lab, tmp_path) -> Path:
    """The lab's configuration with a database of this test's own."""
    text = lab.config_path.read_text(encoding="utf-8")
    path = tmp_path / "riskiturva.toml"
    path.write_text(
        text.replace('data_dir = "data"', f'data_dir = "{tmp_path / "data"}"', 1), encoding="utf-8"
    )
    return path


def scan(config_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [RISKITURVA, "scan", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and result.returncode not in (0, 2):
        raise AssertionError(f"scan failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


def counts(config_path: Path) -> dict[str, int]:
    sessions = open_store(load_config(config_path))
    with sessions() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Finding, FindingEvent, SubjectState, ScanRun, ScanError)
        }


def findings(config_path: Path) -> dict[tuple[str, str], Finding]:
    sessions = open_store(load_config(config_path))
    with sessions() as session:
        return {(f.check_id, f.subject): f for f in session.scalars(select(Finding))}


def scan_errors(config_path: Path, collector: str) -> dict[str, str]:
    """Subject → error kind, from the collector's latest run."""
    sessions = open_store(load_config(config_path))
    with sessions() as session:
        run_id = session.scalar(select(func.max(ScanRun.id)).filter_by(collector=collector))
        rows = session.scalars(select(ScanError).filter_by(run_id=run_id))
        return {e.subject: e.kind for e in rows}


def wait_for_a_running_run(sessions, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with sessions() as session:
            if session.scalar(select(ScanRun).where(ScanRun.status == "running")):
                return
        time.sleep(0.05)
    pytest.fail("the scan never started a run")


def test_full_scan_then_one_fix_resolves_exactly_that_finding(lab, config_path):
    # Given a full scan of the lab estate, printed as JSON
    first = scan(config_path, "--format", "json")
    document = json.loads(first.stdout)
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(
        document
    )
    assert {run["collector"] for run in document["runs"]} == {"dns_email", "services", "tls", "web"}
    assert all(run["status"] in ("ok", "partial") for run in document["runs"])
    # Then every planted weakness of the manifest is open on its subject
    opened = {(f["check_id"], f["subject"]) for f in document["findings"] if f["status"] == "open"}
    missing = [p for p in lab.manifest.planted() if (p[2], p[1]) not in opened]
    assert missing == []
    # And nothing the manifest does not expect, from any collector
    collectors = discover_collectors()
    for name, collector in collectors.items():
        theirs = {(subject, check) for check, subject in opened if check in collector.check_ids}
        assert lab.manifest.verify(name, theirs).unexpected == frozenset(), name
    # And every planted error is recorded with its kind, on its subject
    for name in collectors:
        recorded = scan_errors(config_path, name)
        assert lab.manifest.verify_errors(name, recorded).ok, (name, recorded)
    before = counts(config_path)
    first_seen = {key: f.last_seen for key, f in findings(config_path).items()}

    # When one planted weakness is fixed: www.rapala.test starts publishing security.txt
    docroot = next(lab.directory.rglob("html/www.rapala.test"))
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    security_txt = docroot / ".well-known" / "security.txt"
    security_txt.write_text(
        f"Contact: mailto:tietoturva@rapala.test\nExpires: {expires}\n", encoding="utf-8"
    )
    try:
        scan(config_path)
    finally:
        security_txt.unlink()

    # Then exactly that finding is resolved, the rest only had last_seen bumped
    after = findings(config_path)
    resolved = sorted(key for key, f in after.items() if f.status == "resolved")
    assert resolved == [("web.security_txt.missing", "www.rapala.test")]
    still_open = [f for key, f in after.items() if key not in resolved]
    assert all(f.last_seen > first_seen[(f.check_id, f.subject)] for f in still_open)
    grown = counts(config_path)
    assert grown["finding"] == before["finding"]
    assert grown["subject_state"] == before["subject_state"]
    assert grown["finding_event"] - before["finding_event"] == 1  # the one `resolved` event
    assert grown["scan_run"] - before["scan_run"] == 4


def test_scan_with_the_nameserver_stopped_records_errors_and_resolves_nothing(lab, config_path):
    scan(config_path, "--collector", "dns_email")
    before = findings(config_path)
    assert before
    knot = next(p for p in lab.lab_state.processes if p.name == "knot")
    os.kill(knot.pid, signal.SIGTERM)
    try:
        result = scan(config_path, "--collector", "dns_email", "--format", "json")
    finally:
        up(lab.directory, manifest=lab.manifest)  # the lab brings back what is missing
    (run,) = json.loads(result.stdout)["runs"]
    assert run["status"] == "partial"
    assert run["errors"] > 0 and run["scanned_ok"] == 0
    assert run["resolved"] == 0
    after = findings(config_path)
    assert {k: f.status for k, f in after.items()} == {k: f.status for k, f in before.items()}


def test_kill_9_mid_run_leaves_the_run_interrupted_and_resolves_nothing(lab, config_path):
    scan(config_path, "--collector", "dns_email", "--collector", "services")
    before = {k: f.status for k, f in findings(config_path).items()}
    sessions = open_store(load_config(config_path))
    process = subprocess.Popen(
        [RISKITURVA, "scan", "--config", str(config_path), "--collector", "services"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_a_running_run(sessions)
        assert process.poll() is None, "the scan finished before it could be killed"
        process.kill()  # SIGKILL: no chance to clean up
    finally:
        process.wait(timeout=30)
    # When the next process opens the store
    sessions = open_store(load_config(config_path))
    with sessions() as session:
        runs = session.scalars(select(ScanRun).order_by(ScanRun.id)).all()
        assert runs[-1].status == "interrupted"
        assert runs[-1].finished_at is not None
    assert {k: f.status for k, f in findings(config_path).items()} == before


def test_sigterm_stops_gracefully_and_records_the_run(lab, config_path):
    process = subprocess.Popen(
        [RISKITURVA, "scan", "--config", str(config_path), "--collector", "services"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    sessions = open_store(load_config(config_path))
    wait_for_a_running_run(sessions)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "stopping after the current targets" in stderr
    with sessions() as session:
        (run,) = session.scalars(select(ScanRun)).all()
        assert run.status == "interrupted"
        assert "nothing was resolved" in run.message


def test_fail_on_exits_2_when_an_open_finding_is_that_severe(lab, config_path):
    result = scan(
        config_path, "--collector", "dns_email", "--org", "rapala", "--fail-on", "critical"
    )
    assert result.returncode == 2  # rapala publishes SPF +all (critical)
    result = scan(config_path, "--collector", "dns_email", "--org", "hyvala", "--fail-on", "high")
    assert result.returncode == 0
