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
from riskiturva.exit_codes import ExitCode
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
    # The operator's first step: the vulnerability feeds, from the lab's publisher on
    # loopback (its name resolved through the lab's name server).
    subprocess.run(
        [RISKITURVA, "intel", "update", "--config", str(path)], check=True, timeout=120,
        capture_output=True,
    )  # fmt: skip
    return path


def scan(config_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [RISKITURVA, "scan", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and result.returncode not in (ExitCode.OK, ExitCode.THRESHOLD):
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


def with_fast_resolver(config_path: Path, nameserver: str | None = None) -> Path:
    """The same configuration and database, with a resolver that gives up quickly (and
    another name server address, if given): for scans in which DNS is meant to fail."""
    lines = []
    for line in config_path.read_text(encoding="utf-8").splitlines():
        if line.startswith("timeout ="):
            line = "timeout = 0.3"
        elif line.startswith("retries ="):
            line = "retries = 0"
        elif line.startswith("nameservers =") and nameserver:
            line = f'nameservers = ["{nameserver}"]'
        lines.append(line)
    path = config_path.with_name("impatient.toml")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def assert_counts_add_up(run: dict) -> None:
    """Every target of a run has one outcome, and each failed or skipped one is named."""
    assert run["targets"] == run["ok"] + run["partial"] + run["failed"] + run["skipped"]
    assert sum(run["errors_by_kind"].values()) == run["failed"] + run["skipped"]
    outcomes = [error["outcome"] for error in run["errors"]]
    assert outcomes.count("failed") == run["failed"]
    assert outcomes.count("skipped") == run["skipped"]
    assert outcomes.count("partial") <= run["partial"]
    assert len({(e["organisation"], e["subject"]) for e in run["errors"]}) == len(run["errors"])


def validate(document: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(
        document
    )


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
    validate(document)
    assert {run["collector"] for run in document["runs"]} == {"dns_email", "services", "tls", "web"}
    assert all(run["status"] in ("ok", "partial") for run in document["runs"])
    for run in document["runs"]:
        assert_counts_add_up(run)
    # Then every planted weakness of the manifest is open on its subject
    opened = {(f["check_id"], f["subject"]) for f in document["findings"] if f["status"] == "open"}
    missing = [p for p in lab.manifest.planted() if (p[2], p[1]) not in opened]
    assert missing == []
    # And nothing the manifest does not expect, from any collector
    collectors = discover_collectors()
    for name, collector in collectors.items():
        theirs = {(subject, check) for check, subject in opened if check in collector.check_ids}
        assert lab.manifest.verify(name, theirs).unexpected == frozenset(), name
    # And every planted error is recorded with its kind, on its subject, and named in the
    # scan's own output exactly as recorded
    runs = {run["collector"]: run for run in document["runs"]}
    for name in collectors:
        recorded = scan_errors(config_path, name)
        assert lab.manifest.verify_errors(name, recorded).ok, (name, recorded)
        assert {e["subject"]: e["kind"] for e in runs[name]["errors"]} == recorded
    assert any(run["errors"] for run in document["runs"])  # the lab plants some
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


def test_scan_with_the_nameserver_stopped_fails_names_every_target_and_resolves_nothing(
    lab, config_path
):
    scan(config_path, "--collector", "dns_email")
    before = findings(config_path)
    assert before
    impatient = with_fast_resolver(config_path)
    knot = next(p for p in lab.lab_state.processes if p.name == "knot")
    os.kill(knot.pid, signal.SIGTERM)
    try:
        result = scan(impatient, "--collector", "dns_email", "--format", "json", check=False)
        table = scan(impatient, "--collector", "dns_email", check=False)
    finally:
        up(lab.directory, manifest=lab.manifest)  # the lab brings back what is missing
    # Then the run checked nothing: it failed, and so does the command, for cron to see
    assert result.returncode == table.returncode == ExitCode.FAILED
    document = json.loads(result.stdout)
    validate(document)
    (run,) = document["runs"]
    assert run["status"] == "failed"
    assert run["message"].startswith(f"nothing could be checked: {run['targets']} targets")
    assert run["failed"] == run["targets"] > 0 and run["ok"] == run["partial"] == 0
    assert_counts_add_up(run)
    # Every configured domain is named with the kind of its error
    domains = {a["value"] for m in lab.manifest.municipalities for a in m.assets
               if a["kind"] in ("domain", "mail_domain")}  # fmt: skip
    assert domains <= {e["subject"] for e in run["errors"]}
    assert {e["kind"] for e in run["errors"]} <= {
        "timeout",
        "unreachable",
        "refused",
        "dns_failure",
    }
    assert run["resolved"] == 0
    after = findings(config_path)
    assert {k: f.status for k, f in after.items()} == {k: f.status for k, f in before.items()}
    # And the table says which targets failed, bounded, and why the command failed
    assert f"Targets not checked completely ({run['targets']}):" in table.stdout
    assert "dns_email: nothing could be checked" in table.stdout
    assert "nothing was checked: every target failed or was skipped" in table.stderr
    shown = [line for line in table.stdout.splitlines() if line.startswith("  dns_email ")]
    assert len(shown) == min(run["targets"], 10)


@pytest.mark.slow  # the stopped name server above covers the fast set
def test_scan_through_an_unreachable_resolver_fails(lab, config_path):
    # Given a resolver address where nothing answers (loopback, nothing listening)
    unreachable = with_fast_resolver(config_path, nameserver="127.53.99.99")
    result = scan(
        unreachable, "--collector", "dns_email", "--collector", "web", "--format", "json",
        check=False,
    )  # fmt: skip
    assert result.returncode == ExitCode.FAILED, result.stderr[-2000:]
    document = json.loads(result.stdout)
    validate(document)
    for run in document["runs"]:
        assert run["status"] == "failed" and run["ok"] == run["partial"] == 0
        assert run["errors"] and all(e["outcome"] == "failed" for e in run["errors"])
        assert_counts_add_up(run)


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
    # Organisations one after another, so targets remain when the signal comes: with the
    # default pool every batch of the lab's hosts may already be in flight, and finishing
    # "the current targets" would then finish the run.
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(
        text.replace('data_dir = "', 'concurrency.tasks = 1\ndata_dir = "', 1), encoding="utf-8"
    )
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
    assert process.returncode == ExitCode.INTERRUPTED
    assert "stopping after the current targets" in stderr
    with sessions() as session:
        (run,) = session.scalars(select(ScanRun)).all()
        assert run.status == "interrupted"
        assert "nothing was resolved" in run.message


def test_fail_on_exits_3_when_an_open_finding_is_that_severe(lab, config_path):
    result = scan(
        config_path, "--collector", "dns_email", "--org", "rapala", "--fail-on", "critical"
    )
    assert result.returncode == ExitCode.THRESHOLD  # rapala publishes SPF +all (critical)
    result = scan(config_path, "--collector", "dns_email", "--org", "hyvala", "--fail-on", "high")
    assert result.returncode == ExitCode.OK
