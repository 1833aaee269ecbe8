"""Tools of the fault matrix (tests/test_faults.py): real riskiturva processes in the
background, kill -9, and the counts every case must keep at zero."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from riskiturva.models import EventKind, Finding, FindingEvent, ScanRun

RISKITURVA = str(Path(sys.executable).parent / "riskiturva")
TRACEBACK = "Traceback (most recent call last)"


class Process:
    """A riskiturva command running in the background; its output goes to files."""

    def __init__(self, folder: Path, name: str, *args: str, prefix: Sequence[str] = ()):
        self.name = name
        self.stdout_path = folder / f"{name}.out"
        self.stderr_path = folder / f"{name}.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen([*prefix, RISKITURVA, *args], stdout=out, stderr=err)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill9(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 120) -> int:
        """SIGTERM, as systemd stops a service; the exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout)

    def wait(self, timeout: float = 300) -> int:
        return self.popen.wait(timeout=timeout)

    @property
    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(
            errors="replace"
        )


def run(
    *args: str, prefix: Sequence[str] = (), timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, RISKITURVA, *args], capture_output=True, text=True, timeout=timeout
    )


def wait_until(condition: Callable[[], Any], seconds: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {seconds} s")


def sleep_until(moment: dt.datetime) -> None:
    delay = (moment - dt.datetime.now(dt.UTC)).total_seconds()
    if delay > 0:
        time.sleep(delay)


# --- the store, read from outside -------------------------------------------------------


def query(url: str, statement: Any) -> list[Any]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(statement))
    finally:
        engine.dispose()


def state(url: str) -> dict[str, Any]:
    """What the invariants are counted on: findings' statuses, resolved events, runs."""
    return {
        "findings": finding_statuses(url),
        "resolved_events": len(
            query(url, select(FindingEvent.id).where(FindingEvent.kind == EventKind.RESOLVED))
        ),
        "runs": [r.status for r in runs(url)],
        "integrity": integrity(url),
    }


def state_inside(prefix: Sequence[str], url: str) -> dict[str, Any]:
    """`state(url)` read by a process in another mount namespace (`prefix` enters it)."""
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "tests.faults", url],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def finding_statuses(url: str) -> dict[str, str]:
    return dict(query(url, select(Finding.fingerprint, Finding.status)))


def runs(url: str, collector: str | None = None) -> list[Any]:
    statement = select(ScanRun).order_by(ScanRun.id)
    if collector:
        statement = statement.where(ScanRun.collector == collector)
    return query(url, statement)


def next_run_time(url: str, job_id: str) -> dt.datetime | None:
    try:
        rows = query(
            url,
            text("SELECT next_run_time FROM apscheduler_jobs WHERE id = :id").bindparams(id=job_id),
        )
    except OperationalError:  # not created yet
        return None
    if not rows or rows[0][0] is None:
        return None
    return dt.datetime.fromtimestamp(rows[0][0], dt.UTC)


def integrity(url: str) -> str:
    if not url.startswith("sqlite"):
        return "ok"
    return query(url, text("PRAGMA integrity_check"))[0][0]


# --- the counts -------------------------------------------------------------------------


@dataclass
class Tally:
    """What a fault may never cause. `check()` asserts every count is zero."""

    case: str
    lost: int = 0  # findings stored before the fault and missing after it
    falsely_resolved: int = 0  # resolved although nothing changed in the lab
    duplicate_runs: int = 0  # a fire time with more than one run
    skipped: int = 0  # fire times without a run that the grace rules do not explain
    tracebacks: int = 0  # tracebacks shown to the user (terminal or log)
    notes: dict[str, Any] = field(default_factory=dict)

    def findings(self, url: str, before: dict[str, str]) -> None:
        self.compare(before, state(url))

    def compare(self, before: dict[str, str], after: dict[str, Any]) -> None:
        """`before`: statuses by fingerprint; `after`: a `state()`. Nothing changed in the
        lab, so any resolved finding (or resolved event) is a false one."""
        statuses = after["findings"]
        self.lost += sum(1 for key in before if key not in statuses)
        newly_resolved = sum(
            1
            for key, status in statuses.items()
            if status == "resolved" and before.get(key) != status
        )
        self.falsely_resolved += max(newly_resolved, after["resolved_events"])

    def output(self, *texts: str) -> None:
        self.tracebacks += sum(t.count(TRACEBACK) for t in texts)

    def fire_times(
        self,
        url: str,
        collector: str,
        expected: Sequence[dt.datetime],
        *,
        every: float,
        may_skip: Sequence[dt.datetime] = (),
    ) -> list[Any]:
        """Every expected fire time has exactly one run, or is covered by one skipped record
        when it is in `may_skip` (the grace rules); nothing else ran. A skipped record
        stands for `counts.missed` fire times ending at its `scheduled_for`."""
        scheduled = [r for r in runs(url, collector) if r.trigger == "scheduler"]
        outcomes: Counter[float] = Counter()
        skipped: set[float] = set()
        overlaps = set()
        for scan_run in scheduled:
            if scan_run.status == "skipped" and "still going" in (scan_run.message or ""):
                overlaps.add(_key(scan_run.scheduled_for))  # max one instance: explained
            if scan_run.status == "skipped":
                for k in range(int(scan_run.counts["missed"])):
                    moment = _key(scan_run.scheduled_for - dt.timedelta(seconds=every * k))
                    skipped.add(moment)
                    outcomes[moment] += 1
            else:
                outcomes[_key(scan_run.scheduled_for)] += 1
        self.duplicate_runs += sum(n - 1 for n in outcomes.values() if n > 1)
        allowed = {_key(t) for t in may_skip}
        wanted = {_key(t) for t in expected}
        start = _key(expected[0])
        # Fire times after the last expected one (the schedulers ran on while stopping)
        # count when they are on the schedule's grid.
        wanted |= {m for m in outcomes if m > max(wanted) and _on_grid(m - start, every)}
        self.skipped += sum(1 for moment in wanted if outcomes[moment] == 0)
        self.skipped += len(skipped - allowed - overlaps)  # skipped although it should run
        self.skipped += len(allowed - skipped)  # ran although the rules say skip
        self.duplicate_runs += len(set(outcomes) - wanted)  # runs at no expected time
        self.notes["runs"] = dict(Counter(r.status for r in scheduled))
        if overlaps:
            self.notes["skipped_as_the_previous_run_was_still_going"] = len(overlaps)
        return scheduled

    def check(self) -> None:
        print(f"fault case {self.case}: {self.summary()}")
        assert (
            self.lost,
            self.falsely_resolved,
            self.duplicate_runs,
            self.skipped,
            self.tracebacks,
        ) == (0, 0, 0, 0, 0), self.summary()

    def summary(self) -> str:
        return (
            f"lost {self.lost}, falsely resolved {self.falsely_resolved}, duplicate runs "
            f"{self.duplicate_runs}, skipped {self.skipped}, tracebacks {self.tracebacks}; "
            f"{self.notes}"
        )


def _on_grid(offset: float, every: float) -> bool:
    steps = offset / every
    return abs(steps - round(steps)) < 0.01


def _key(moment: dt.datetime) -> float:
    """A fire time to compare: float seconds to 10 ms (the job store keeps a float)."""
    return round(moment.timestamp(), 2)


def grace_rules(
    missed: Sequence[dt.datetime], resumed: dt.datetime, grace: float
) -> list[dt.datetime]:
    """Of the fire times missed while no scheduler ran, those that must be recorded as
    skipped once one leads again at `resumed`: all but the latest, and the latest too when
    it is more than `grace` seconds late."""
    if not missed:
        return []
    late = (resumed - missed[-1]).total_seconds()
    return list(missed) if late > grace else list(missed[:-1])


def interval_fire_times(first: dt.datetime, every: float, until: dt.datetime) -> list[dt.datetime]:
    moments = []
    moment = first
    while moment <= until:
        moments.append(moment)
        moment += dt.timedelta(seconds=every)
    return moments


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":  # python -m tests.faults URL: print state(URL) as JSON
    print(json.dumps(state(sys.argv[1])))
