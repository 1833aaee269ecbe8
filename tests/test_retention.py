"""Retention: run history is pruned, findings and their events never; SQLite upkeep and
online backups; database errors classified as a person would need them."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from riskiturva.config import RetentionSettings
from riskiturva.dberrors import StoreFault, StoreWriteError, classify, write_with_retry
from riskiturva.models import (
    Asset,
    AssetEvidence,
    ChangeEvent,
    Finding,
    FindingEvent,
    Organisation,
    ScanError,
    ScanRun,
    ScopeSighting,
)
from riskiturva.models_schedule import SchedulerFire
from riskiturva.retention import prune
from riskiturva.store import ObservedFinding, reconcile, sync_config
from riskiturva_cli import commands as cli
from tests.conftest import MINIMAL_CONFIG, T0

NOW = T0 + dt.timedelta(days=1000)


def old_history(sessions, minimal_config) -> dict[str, int]:
    """Runs 900 days ago (one opened a finding), yesterday's run, errors of each."""
    ids = {}
    with sessions.begin() as session:
        sync_config(session, minimal_config)
        org = session.scalar(select(Organisation).filter_by(slug="hyvala"))
        for name, started in (
            ("opening", T0),
            ("quiet", T0 + dt.timedelta(days=1)),
            ("recent", NOW - dt.timedelta(days=1)),
        ):
            run = ScanRun(
                collector="tls", organisations=["hyvala"], started_at=started, status="ok"
            )
            session.add(run)
            session.flush()
            session.add(
                ScanError(
                    run_id=run.id,
                    organisation_id=org.id,
                    subject="127.60.1.11",
                    asset="127.60.1.11",
                    kind="timeout",
                    message="no answer",
                )
            )
            ids[name] = run.id
        reconcile(
            session,
            organisation=org,
            collector="tls",
            run_id=ids["opening"],
            observed=[
                ObservedFinding(
                    "tls.certificate.expired",
                    "127.60.1.10:443",
                    "127.60.1.10",
                    "127.60.1.10",
                    "tls",
                    "high",
                    {},
                )
            ],
            scanned_ok=set(),
            now=T0,
        )
        session.add(
            SchedulerFire(
                job_id="collector:tls", fire_time=T0, outcome="run", holder="h", handled_at=T0
            )
        )
    return ids


def test_prune_deletes_old_history_and_keeps_findings_events_and_their_runs(
    sessions, minimal_config
):
    ids = old_history(sessions, minimal_config)
    result = prune(sessions, RetentionSettings(run_history_days=400), NOW)
    assert (result.runs, result.errors, result.fire_times) == (1, 2, 1)
    with sessions() as session:
        kept = set(session.scalars(select(ScanRun.id)))
        assert kept == {ids["opening"], ids["recent"]}  # the opening run is referenced
        assert session.scalar(select(func.count()).select_from(ScanError)) == 1
        assert session.scalar(select(func.count()).select_from(Finding)) == 1
        assert session.scalar(select(func.count()).select_from(FindingEvent)) == 1


def test_prune_keeps_old_discovery_runs_that_evidence_or_a_change_points_at(
    sessions, minimal_config
):
    # Given three old discovery runs: one is the last to have seen an asset's evidence, one
    # wrote a change event and the last sighting outside scope, one nothing anyone points at
    with sessions.begin() as session:
        sync_config(session, minimal_config)
        org = session.scalar(select(Organisation).filter_by(slug="hyvala"))
        runs = {}
        for name in ("evidence", "changed", "quiet"):
            run = ScanRun(
                collector="discovery", organisations=["hyvala"], started_at=T0, status="ok"
            )
            session.add(run)
            session.flush()
            runs[name] = run.id
        asset = Asset(
            organisation_id=org.id, kind="host", value="uusi.hyvala.test", criticality="low",
            origin="discovered", state="proposed",
        )  # fmt: skip
        asset.evidence.append(
            AssetEvidence(
                source="nsec",
                via="NSEC chain of hyvala.test",
                first_seen=T0,
                last_seen=T0,
                last_run_id=runs["evidence"],
            )
        )
        session.add(asset)
        session.add(
            ChangeEvent(
                organisation_id=org.id,
                kind="asset.proposed",
                subject="uusi.hyvala.test",
                run_id=runs["changed"],
                at=T0,
            )
        )
        session.add(
            ScopeSighting(
                organisation_id=org.id,
                value="mx.palvelu.example",
                kind="name",
                source="mx",
                via="MX of hyvala.test",
                first_seen=T0,
                last_seen=T0,
                last_run_id=runs["changed"],
            )
        )
    # When old history is pruned, then only the run nothing points at is deleted
    result = prune(sessions, RetentionSettings(run_history_days=400), NOW)
    assert result.runs == 1
    with sessions() as session:
        assert set(session.scalars(select(ScanRun.id))) == {runs["evidence"], runs["changed"]}


def test_db_prune_vacuum_and_backup_commands(tmp_path):
    path = tmp_path / "riskiturva.toml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")

    def invoke(*args):
        result = CliRunner().invoke(cli.main, [*args, "--config", str(path)])
        assert result.exit_code == 0, result.output
        return result.output

    assert "deleted 0 scan runs" in invoke("db", "prune")
    assert "compacted" in invoke("db", "vacuum")
    backup = tmp_path / "backup.db"
    assert "integrity ok" in invoke("db", "backup", str(backup))
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(backup) as copy:
        assert copy.execute("SELECT count(*) FROM organisation").fetchone() == (0,)
    refused = CliRunner().invoke(cli.main, ["db", "backup", str(backup), "--config", str(path)])
    assert refused.exit_code == 1 and "exists" in refused.output


def sqlite_error(message: str, code: int) -> OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return OperationalError("UPDATE …", {}, error)


@pytest.mark.parametrize(
    ("message", "code", "fault"),
    [
        ("database is locked", 5, StoreFault.LOCKED),
        ("database is locked", 517, StoreFault.LOCKED),  # SQLITE_BUSY_SNAPSHOT
        ("database or disk is full", 13, StoreFault.DISK_FULL),
        ("disk I/O error", 778, StoreFault.IO_ERROR),
        ("no such table: finding", 1, StoreFault.OTHER),
    ],
)
def test_sqlite_errors_are_classified(message, code, fault):
    assert classify(sqlite_error(message, code)) is fault


def test_a_transient_error_is_retried_and_a_permanent_one_is_not(sessions):
    attempts = []

    def locked_twice(session):
        attempts.append(1)
        if len(attempts) < 3:
            raise sqlite_error("database is locked", 5)
        return "written"

    naps = []
    assert (
        write_with_retry(sessions, locked_twice, what="test", budget_s=60, sleep=naps.append)
        == "written"
    )
    assert naps == [0.5, 1.0]

    def full(session):
        raise sqlite_error("database or disk is full", 13)

    with pytest.raises(StoreWriteError) as caught:
        write_with_retry(sessions, full, what="save the test", budget_s=60, sleep=naps.append)
    paragraph = caught.value.paragraph()
    assert caught.value.attempts == 1
    assert "Riskiturva could not save the test: database or disk is full." in paragraph
    assert "Nothing was resolved" in paragraph and "free space" in paragraph
    assert "\n" not in paragraph
