"""Run history retention, SQLite upkeep and online backups (`riskiturva db prune / vacuum /
backup`, and the scheduler's `maintenance:*` jobs).

Pruning deletes scan runs, their target errors and the scheduler's handled fire times
older than `retention.run_history_days`. It never deletes findings or their events, and it
keeps every run that a finding, an event, a change event, discovery's evidence, a
subject's latest state or an alert still points at, so the history a person reads stays
whole.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, Engine, Result, delete, select
from sqlalchemy.orm import Session, sessionmaker

from riskiturva._files import private_file
from riskiturva.alerts.models import Alert
from riskiturva.config import RetentionSettings
from riskiturva.models import (
    AssetEvidence,
    ChangeEvent,
    Finding,
    FindingEvent,
    RunStatus,
    ScanError,
    ScanRun,
    ScanTaskRow,
    ScopeSighting,
    SubjectState,
)
from riskiturva.models_schedule import SchedulerFire
from riskiturva.store import sqlite_path


@dataclass(frozen=True)
class PruneResult:
    cutoff: dt.datetime
    runs: int
    errors: int
    fire_times: int

    def __str__(self) -> str:
        return (
            f"deleted {self.runs} scan runs, {self.errors} target errors and "
            f"{self.fire_times} handled fire times from before {self.cutoff:%Y-%m-%d}"
        )


def prune(
    sessions: sessionmaker[Session], retention: RetentionSettings, now: dt.datetime
) -> PruneResult:
    """Delete run history older than the retention period (findings and events stay)."""
    cutoff = now - dt.timedelta(days=retention.run_history_days)
    referenced = (
        select(FindingEvent.run_id).where(FindingEvent.run_id.is_not(None)),
        select(Finding.last_run_id).where(Finding.last_run_id.is_not(None)),
        select(SubjectState.last_run_id),
        select(ChangeEvent.run_id).where(ChangeEvent.run_id.is_not(None)),
        select(AssetEvidence.last_run_id).where(AssetEvidence.last_run_id.is_not(None)),
        select(ScopeSighting.last_run_id).where(ScopeSighting.last_run_id.is_not(None)),
        select(Alert.run_id).where(Alert.run_id.is_not(None)),
    )
    old_runs = select(ScanRun.id).where(
        ScanRun.started_at < cutoff, ScanRun.status != RunStatus.RUNNING
    )
    with sessions.begin() as session:
        errors = session.execute(delete(ScanError).where(ScanError.run_id.in_(old_runs)))
        session.execute(delete(ScanTaskRow).where(ScanTaskRow.run_id.in_(old_runs)))
        runs = session.execute(
            delete(ScanRun).where(
                ScanRun.id.in_(old_runs), *(ScanRun.id.not_in(ids) for ids in referenced)
            )
        )
        fires = session.execute(delete(SchedulerFire).where(SchedulerFire.handled_at < cutoff))
    return PruneResult(cutoff, _count(runs), _count(errors), _count(fires))


def _count(result: Result[Any]) -> int:
    """Rows a DELETE removed (a DELETE's result is a CursorResult)."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def vacuum(engine: Engine) -> str:
    """Compact an SQLite database (VACUUM) and fold its write-ahead log into it."""
    if engine.dialect.name != "sqlite":
        return "nothing to do: PostgreSQL vacuums itself (autovacuum)"
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    before = path.stat().st_size if path else 0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM")
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.exec_driver_sql("PRAGMA optimize")
    after = path.stat().st_size if path else 0
    return f"compacted {before // 1024} KiB to {after // 1024} KiB"


def backup_sqlite(engine: Engine, destination: Path) -> int:
    """Copy a live SQLite database with its online backup API (consistent while scans
    write); the copy is 0600. Returns its size in bytes."""
    source = sqlite_path(engine.url.render_as_string(hide_password=False))
    if source is None:
        raise ValueError("not an SQLite database: back PostgreSQL up with pg_dump")
    if destination.exists():
        raise FileExistsError(f"{destination} exists; give a new file name")
    private_file(destination)
    with sqlite3.connect(source) as live, sqlite3.connect(destination) as copy:
        live.execute("PRAGMA busy_timeout=10000")
        live.backup(copy)
    with sqlite3.connect(destination) as copy:
        (verdict,) = copy.execute("PRAGMA integrity_check").fetchone()
    if verdict != "ok":
        raise RuntimeError(f"the backup failed its integrity check: {verdict}")
    return destination.stat().st_size
