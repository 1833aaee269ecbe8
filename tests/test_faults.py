"""The fault matrix: riskiturva run as a service, with real processes and real faults.

Every case counts what a fault may never cause and asserts each count is zero (`Tally`):
findings lost, findings falsely resolved, fire times run twice, fire times skipped beyond
what the grace rules say, and tracebacks shown to the user. Cases:

- the scheduler down across a fire time, within and beyond the grace (kill -9, restart);
- two and three schedulers with the leader killed -9; PostgreSQL killed under them;
- a write lock held by another process at a run's final write, shorter and longer than
  the retry bound; a full disk (a small tmpfs in a mount namespace of the test's own);
  PostgreSQL killed -9 during a scan; scans killed -9 at random moments;
- `db upgrade` killed -9 before each SQL statement of every migration, and at random times;
- N scans started at once, of different and of the same organisations.

The alert sender's case lives with the alerts (tests/test_alerts_crash.py): the sender
killed -9 between a receiver taking a message and the outbox marking it sent, on SQLite and
PostgreSQL, counting messages lost (0) and processed twice (0).

The schedule cases use the lab's DNS and e-mail collector on an `@every` schedule, so a
fire time comes every few seconds instead of every night.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select, text

from riskiturva import db
from riskiturva.models import Finding, Organisation
from riskiturva.models_schedule import SchedulerFire
from riskiturva.store import make_engine
from tests.faults import (
    Process,
    Tally,
    finding_statuses,
    grace_rules,
    integrity,
    interval_fire_times,
    next_run_time,
    query,
    run,
    runs,
    sleep_until,
    state_inside,
    wait_until,
)
from tests.postgres import postgres_cluster

ROOT = Path(__file__).resolve().parents[1]
EVERY = 15  # seconds between fire times of the scheduled scan (longer than one scan)
JOB = "collector:dns_email"


# --- configurations ---------------------------------------------------------------------


def lab_config(
    lab, folder: Path, *, url: str = "", settings: str = "", schedules: str = ""
) -> Path:
    """The lab's configuration with a database of the test's own."""
    text_ = lab.config_path.read_text(encoding="utf-8")
    top = f'data_dir = "{folder / "data"}"\n'
    if url:
        top += f'database_url = "{url}"\n'
    text_ = text_.replace('data_dir = "data"\n', top + settings, 1)
    if schedules:
        text_ = text_.replace(
            "[settings.resolver]", f"[settings.schedules]\n{schedules}\n[settings.resolver]", 1
        )
    path = folder / "riskiturva.toml"
    path.write_text(text_, encoding="utf-8")
    return path


def schedule_config(lab, folder: Path, *, url: str = "", grace: int = 6) -> Path:
    """dns_email every EVERY seconds; the other jobs far away; short leader leases."""
    return lab_config(
        lab,
        folder,
        url=url,
        schedules=f"""dns_email = "@every {EVERY}s"
tls = "@every 1000h"
web = "@every 1000h"
services = "@every 1000h"
jitter_seconds = 0
misfire_grace_seconds = {grace}
leader_lease_seconds = 3""",
    )


def sqlite_url(config: Path) -> str:
    return f"sqlite:///{config.parent / 'data' / 'riskiturva.db'}"


def scheduler(folder: Path, name: str, config: Path) -> Process:
    """`riskiturva scheduler`; returns once its signal handlers are in place (it printed
    its jobs), so a SIGTERM is a graceful stop."""
    process = Process(folder, name, "scheduler", "--config", str(config))
    wait_until(lambda: "collector:" in process.output, 60, f"{name} did not start")
    return process


def leader_pid(url: str) -> int | None:
    rows = query(url, text("SELECT pid, expires_at FROM scheduler_lease"))
    return rows[0][0] if rows else None


def first_fire_time(url: str) -> dt.datetime:
    return wait_until(lambda: next_run_time(url, JOB), 60, "the scan job was never stored")


def finished_run_for(url: str, moment: dt.datetime):
    def found():
        for scan_run in runs(url, "dns_email"):
            if (
                scan_run.scheduled_for is not None
                and abs((scan_run.scheduled_for - moment).total_seconds()) < 0.01
                and scan_run.status != "running"
            ):
                return scan_run
        return None

    return wait_until(found, 90, f"no finished run for the fire time {moment:%H:%M:%S}")


# --- 1. missed fire times -----------------------------------------------------------------


def lead_taken_at(url: str, pid: int) -> dt.datetime:
    """When process `pid` took the lead (the lease row's `acquired_at`)."""

    def taken():
        rows = query(url, text("SELECT pid, acquired_at FROM scheduler_lease"))
        return rows[0][1] if rows and rows[0][0] == pid else None

    moment = wait_until(taken, 60, f"process {pid} never took the lead")
    if isinstance(moment, str):  # SQLite through a plain text() query
        moment = dt.datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@pytest.mark.lab
@pytest.mark.parametrize(
    ("late", "grace"),
    [("within", 30), pytest.param("beyond", 6, id="beyond-6", marks=pytest.mark.slow)],
)
def test_missed_fire_time_is_caught_up_within_the_grace_and_recorded_beyond_it(
    lab, tmp_path, late, grace
):
    config = schedule_config(lab, tmp_path, grace=grace)
    url = sqlite_url(config)
    tally = Tally(f"scheduler down across a fire time, restarted {late} the grace")
    # Given a scheduler that stored the next fire time T, killed before T
    first = scheduler(tmp_path, "first", config)
    try:
        fire = first_fire_time(url)
    finally:
        first.kill9()
    assert dt.datetime.now(dt.UTC) < fire, "the job fired before the kill: machine too slow"
    # When it starts again after T: a little late, or later than the grace allows
    sleep_until(fire + dt.timedelta(seconds=2 if late == "within" else grace + 2))
    second = scheduler(tmp_path, "second", config)
    try:
        resumed = lead_taken_at(url, second.pid)
        missed = interval_fire_times(fire, EVERY, resumed)
        recorded = grace_rules(missed, resumed, grace)
        last = missed[-1] + dt.timedelta(seconds=EVERY)  # the first fire time after resuming
        finished_run_for(url, missed[-1])
        finished_run_for(url, last)
    finally:
        assert second.stop() == 0
    # Then the latest missed fire time ran once, late (earlier ones coalesce into it); or,
    # beyond the grace, every missed one is recorded as skipped; later ones ran on time
    latest = [r for r in runs(url, "dns_email") if _at(r.scheduled_for, missed[-1])]
    if late == "within":
        assert recorded == missed[:-1]
        (caught_up,) = latest
        assert caught_up.status == "ok"
        assert caught_up.started_at > missed[-1] + dt.timedelta(seconds=1)
    else:  # T is beyond the grace (a later missed one may not be, if start-up was slow)
        assert fire in recorded
        assert [r.status for r in latest] == (["skipped"] if recorded == missed else ["ok"])
    tally.fire_times(
        url, "dns_email", interval_fire_times(fire, EVERY, last), every=EVERY, may_skip=recorded
    )
    tally.output(first.output, second.output)
    tally.notes.update(resumed_after_s=round((resumed - fire).total_seconds(), 1), grace=grace)
    tally.check()
    if late == "beyond":
        skipped = next(r for r in runs(url, "dns_email") if r.status == "skipped")
        assert "did not start" in skipped.message
        assert_shown_on_the_scans_page(config, skipped)


def _at(moment: dt.datetime | None, fire: dt.datetime) -> bool:
    return moment is not None and abs((moment - fire).total_seconds()) < 0.01


def assert_shown_on_the_scans_page(config: Path, skipped) -> None:
    """The skipped run is on the organisation's scans page, as a person signed in sees it."""
    import dashboard
    from riskiturva.auth import create_user
    from riskiturva.config import load_config
    from riskiturva.db import open_store
    from tests.test_dashboard_access import call, sign_in, text_of

    settings = load_config(config)
    sessions = open_store(settings)
    with sessions.begin() as session:
        create_user(
            session,
            username="operator",
            password="correct horse battery",
            role="partner_admin",
            now=dt.datetime.now(dt.UTC),
        )
    app = dashboard.create_app(settings, sessions)
    client, _ = sign_in(app, "operator", "correct horse battery")
    from dashboard import ids

    page = text_of(call(app, client, "page.children", {(ids.URL, "pathname"): "/org/rapala/scans"}))
    assert "Ohitettu: ei käynnistynyt" in page
    assert str(skipped.id) in page


# --- 2. one scheduler fires -------------------------------------------------------------------


def run_schedulers(
    tmp_path: Path, config: Path, url: str, count: int, kills: int, tally: Tally
) -> None:
    """`count` schedulers on one database; the leader is killed -9 `kills` times (a new
    process replaces it); every fire time in between must run exactly once."""
    processes = [scheduler(tmp_path, "scheduler0", config)]
    try:
        fire = first_fire_time(url)
        processes += [scheduler(tmp_path, f"scheduler{i}", config) for i in range(1, count)]
        for round_ in range(kills):
            sleep_until(fire + dt.timedelta(seconds=EVERY * (round_ + 1) + EVERY / 2))
            pid = leader_pid(url)
            leader = next(p for p in processes if p.pid == pid)
            leader.kill9()
            processes.remove(leader)
            processes.append(scheduler(tmp_path, f"scheduler{count + round_}", config))
        last = fire + dt.timedelta(seconds=EVERY * (kills + 2))
        finished_run_for(url, last)
    finally:
        for process in processes:
            assert process.stop() == 0
    tally.fire_times(url, "dns_email", interval_fire_times(fire, EVERY, last), every=EVERY)
    tally.output(*(p.output for p in processes))
    tally.notes["fire_claims"] = len(query(url, select(SchedulerFire.job_id)))


@pytest.mark.lab
def test_two_schedulers_on_sqlite_fire_once_and_a_standby_takes_over_from_a_killed_leader(
    lab, tmp_path
):
    config = schedule_config(lab, tmp_path)
    url = sqlite_url(config)
    tally = Tally("two schedulers on SQLite, leader killed -9 once")
    run_schedulers(tmp_path, config, url, count=2, kills=1, tally=tally)
    before = finding_statuses(url)
    assert before, "the scheduled scans found nothing: the lab is not being scanned"
    tally.findings(url, before)
    tally.check()


@pytest.mark.slow
@pytest.mark.lab
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_three_schedulers_fire_once_while_leaders_are_killed(lab, tmp_path, postgres_url, database):
    url = postgres_fresh(postgres_url) if database == "postgresql" else ""
    config = schedule_config(lab, tmp_path, url=url)
    url = url or sqlite_url(config)
    tally = Tally(f"three schedulers on {database}, leader killed -9 twice")
    run_schedulers(tmp_path, config, url, count=3, kills=2, tally=tally)
    tally.findings(url, finding_statuses(url))
    tally.check()


def postgres_fresh(postgres_url: str) -> str:
    """A new empty database on the session's PostgreSQL server."""
    import uuid

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = make_engine(postgres_url).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.mark.slow
@pytest.mark.lab
def test_schedulers_ride_out_a_postgresql_crash(lab, tmp_path):
    with postgres_cluster() as cluster:
        config = schedule_config(lab, tmp_path, url=cluster.url, grace=20)
        tally = Tally("two schedulers on PostgreSQL, the server killed -9 for 5 s")
        processes = [scheduler(tmp_path, "scheduler0", config)]
        try:
            fire = first_fire_time(cluster.url)
            processes.append(scheduler(tmp_path, "scheduler1", config))
            sleep_until(fire + dt.timedelta(seconds=EVERY + 3))
            before = finding_statuses(cluster.url)
            cluster.kill()
            time.sleep(5)
            cluster.start()
            last = fire + dt.timedelta(seconds=EVERY * 4)
            finished_run_for(cluster.url, last)
        finally:
            for process in processes:
                assert process.stop() == 0
        tally.fire_times(
            cluster.url, "dns_email", interval_fire_times(fire, EVERY, last), every=EVERY
        )
        tally.findings(cluster.url, before)
        tally.output(*(p.output for p in processes))
        tally.check()


# --- 3. a run's final write meets a fault -------------------------------------------------


@contextmanager
def write_lock_held(database: Path, seconds: float) -> Iterator[subprocess.Popen]:
    """Another process holds SQLite's write lock (BEGIN IMMEDIATE) for `seconds`."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n"
            "c.execute('ROLLBACK')\n",
            str(database),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.wait(timeout=seconds + 30)


# Organisations one after another: with the default pool a dns_email run over the lab can
# save everything before the test has taken the lock, and the lock would then meet nothing.
SERIAL = "concurrency.tasks = 1\n"


def scan_with_lock_at_the_end(config: Path, url: str, hold: float, tmp_path: Path):
    """A dns_email scan whose final write meets a write lock held for `hold` seconds."""
    database = config.parent / "data" / "riskiturva.db"
    scan = Process(tmp_path, "scan", "scan", "--config", str(config), "--collector", "dns_email")
    wait_until(
        lambda: any(r.status == "running" for r in runs(url)), 60, "the scan never started a run"
    )
    with write_lock_held(database, hold):
        code = scan.wait(timeout=hold + 300)
    return scan, code


@pytest.mark.lab
@pytest.mark.parametrize(
    "hold", [pytest.param(15, id="15s"), pytest.param(30, id="30s", marks=pytest.mark.slow)]
)
def test_a_write_lock_at_the_final_write_is_waited_out(lab, tmp_path, hold):
    config = lab_config(lab, tmp_path, settings=SERIAL)
    url = sqlite_url(config)
    baseline = run("scan", "--config", str(config), "--collector", "dns_email")
    assert baseline.returncode == 0, baseline.stderr
    before = finding_statuses(url)
    tally = Tally(f"write lock held {hold} s during the final write")
    scan, code = scan_with_lock_at_the_end(config, url, hold, tmp_path)
    assert code == 0, scan.output
    last = runs(url, "dns_email")[-1]
    assert last.status == "ok"
    assert "dns_email" in scan.stdout_path.read_text()  # the summary table
    tally.findings(url, before)
    tally.output(scan.output)
    tally.notes["integrity"] = integrity(url)
    tally.check()
    assert integrity(url) == "ok"


@pytest.mark.lab
def test_a_write_lock_longer_than_the_bound_fails_the_run_with_one_paragraph(lab, tmp_path):
    config = lab_config(lab, tmp_path, settings="write_retry_seconds = 4\n" + SERIAL)
    url = sqlite_url(config)
    assert run("scan", "--config", str(config), "--collector", "dns_email").returncode == 0
    before = finding_statuses(url)
    tally = Tally("write lock held longer than the retry bound")
    scan, code = scan_with_lock_at_the_end(config, url, 25, tmp_path)
    # Then exit 1 and one paragraph: what happened, nothing resolved, what to do
    assert code == 1
    stderr = scan.stderr_path.read_text()
    assert "could not save the results of the dns_email run" in stderr
    assert "Nothing was resolved" in stderr
    assert "find it (another riskiturva process" in stderr
    # And the next run proceeds; the stuck run is closed, not left running
    after = run("scan", "--config", str(config), "--collector", "dns_email")
    assert after.returncode == 0, after.stderr
    statuses = [r.status for r in runs(url, "dns_email")]
    assert statuses[-1] == "ok" and "running" not in statuses
    assert statuses[-2] in ("failed", "interrupted")
    tally.findings(url, before)
    tally.output(scan.output, after.stdout, after.stderr)
    tally.check()


@contextmanager
def small_tmpfs(size: str) -> Iterator[tuple[list[str], Path]]:
    """A mount namespace of its own holding a tmpfs at /mnt/riskiturva-full; yields the
    command prefix that enters it and the folder as seen from here (/proc/PID/root/…)."""
    folder = "/mnt/riskiturva-full"
    holder = subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"mkdir -p {folder} && mount -t tmpfs -o size={size},mode=0755 tmpfs {folder} "
            "&& echo ready && exec sleep 3600",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield (
            ["nsenter", "-t", str(holder.pid), "-m", "--"],
            Path(f"/proc/{holder.pid}/root{folder}"),
        )
    finally:
        holder.kill()  # the namespace, and with it the tmpfs, ends with its last process
        holder.wait(timeout=30)


def running_inside(prefix: list[str], url: str) -> int:
    """How many runs are `running` in an SQLite database of another mount namespace."""
    result = subprocess.run(
        [
            *prefix,
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1])\n"
            "q = \"SELECT count(*) FROM scan_run WHERE status = 'running'\"\n"
            "print(c.execute(q).fetchone()[0])",
            url.removeprefix("sqlite:///"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return int(result.stdout) if result.returncode == 0 else -1


def fill(folder: Path, leave: int) -> Path:
    """Fill the file system of `folder` until about `leave` bytes are free."""
    filler = folder / "filler"
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.lab
def test_a_full_disk_fails_the_run_with_one_paragraph_and_loses_nothing(lab, tmp_path):
    with small_tmpfs("8m") as (inside, folder):
        # Given a scanned estate whose database lives on a small file system
        config = lab_config(lab, tmp_path)
        text_ = config.read_text().replace(
            f'data_dir = "{tmp_path / "data"}"', 'data_dir = "/mnt/riskiturva-full/data"'
        )
        config.write_text(text_)
        url = "sqlite:////mnt/riskiturva-full/data/riskiturva.db"  # inside the namespace
        first = run("scan", "--config", str(config), "--collector", "dns_email", prefix=inside)
        assert first.returncode == 0, first.stderr
        before = state_inside(inside, url)["findings"]
        assert before
        tally = Tally("disk full at the final write")
        # When the disk fills while a scan runs (after its run was started)
        scan = Process(
            tmp_path, "full", "scan", "--config", str(config), "--collector", "dns_email",
            "--collector", "web", prefix=inside,
        )  # fmt: skip
        wait_until(lambda: running_inside(inside, url) == 2, 60, "the scan never started")
        filler = fill(folder, leave=0)
        scan.wait(timeout=300)
        full = subprocess.CompletedProcess(
            scan.popen.args,
            scan.popen.returncode,
            scan.stdout_path.read_text(),
            scan.stderr_path.read_text(),
        )
        # Then exit 1 with a paragraph that names the full disk, and no traceback
        assert full.returncode == 1, full.stdout + full.stderr
        assert "disk that holds the database is full" in full.stderr, full.stderr
        tally.output(full.stdout, full.stderr)
        # And once space is freed, the next scan proceeds and nothing was lost
        filler.unlink()
        again = run("scan", "--config", str(config), "--collector", "dns_email", prefix=inside)
        assert again.returncode == 0, again.stderr
        tally.output(again.stdout, again.stderr)
        after = state_inside(inside, url)
        tally.compare(before, after)
        tally.notes["runs"] = after["runs"]
        assert "running" not in after["runs"]
        assert after["integrity"] == "ok"
        tally.check()


@pytest.mark.slow
@pytest.mark.lab
@pytest.mark.parametrize("down_for", [3, 40])
def test_postgresql_dies_during_a_scan(lab, tmp_path, down_for):
    """The server is killed -9 while a scan runs and comes back after `down_for` seconds:
    within the retry bound (30 s here) the run is recorded; beyond it, one paragraph."""
    with postgres_cluster() as cluster:
        config = lab_config(lab, tmp_path, url=cluster.url, settings="write_retry_seconds = 30\n")
        assert run("scan", "--config", str(config), "--collector", "dns_email").returncode == 0
        before = finding_statuses(cluster.url)
        tally = Tally(f"PostgreSQL killed -9 during a scan, back after {down_for} s")
        scan = Process(
            tmp_path, "scan", "scan", "--config", str(config), "--collector", "tls",
            "--collector", "dns_email",
        )  # fmt: skip
        wait_until(
            lambda: sum(r.status == "running" for r in runs(cluster.url)) == 2, 60, "no runs"
        )
        cluster.kill()
        time.sleep(down_for)
        cluster.start()
        code = scan.wait(timeout=300)
        stderr = scan.stderr_path.read_text()
        if down_for < 30:
            assert code in (0, 1), scan.output
        else:
            assert code == 1
            assert "database server could not be reached" in stderr, stderr
        after = run("scan", "--config", str(config), "--collector", "dns_email")
        assert after.returncode == 0, after.stderr
        statuses = [r.status for r in runs(cluster.url)]
        tally.notes.update(runs=statuses, exit=code)
        assert "running" not in statuses
        tally.findings(cluster.url, before)
        tally.output(scan.output, after.stdout, after.stderr)
        tally.check()


@pytest.mark.slow
@pytest.mark.lab
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_scans_killed_at_random_moments(lab, tmp_path, postgres_url, database):
    url = postgres_fresh(postgres_url) if database == "postgresql" else ""
    config = lab_config(lab, tmp_path, url=url)
    url = url or sqlite_url(config)
    assert run("scan", "--config", str(config), "--collector", "dns_email").returncode == 0
    before = finding_statuses(url)
    tally = Tally(f"scan killed -9 at random moments ({database})")
    rng = random.Random(18)
    for index in range(12):
        scan = Process(
            tmp_path, f"scan{index}", "scan", "--config", str(config),
            "--collector", "dns_email", "--collector", "web",
        )  # fmt: skip
        # at a random moment after its runs started: mid-scan, or in the final writes
        wait_until(
            lambda scan=scan: (
                scan.popen.poll() is not None or any(r.status == "running" for r in runs(url))
            ),
            120,
            "the scan never started",
            every=0.05,
        )
        time.sleep(rng.uniform(0.0, 4.0))
        scan.kill9()
        assert integrity(url) == "ok"
    final = run("scan", "--config", str(config), "--collector", "dns_email", "--collector", "web")
    assert final.returncode == 0, final.stderr
    statuses = [r.status for r in runs(url)]
    tally.notes["runs"] = {s: statuses.count(s) for s in sorted(set(statuses))}
    assert "running" not in statuses
    tally.findings(url, before)
    tally.output(final.stdout, final.stderr)
    tally.check()


# --- 4. migrations killed -----------------------------------------------------------------

# Runs the real upgrade and kills its own process with SIGKILL right before the N-th SQL
# statement: every statement boundary of every migration can be hit exactly.
KILL_AT_STATEMENT = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from riskiturva import db
from riskiturva.store import make_engine

target, seen = int(sys.argv[2]), [0]

@event.listens_for(Engine, "before_cursor_execute")
def _kill(*_args):
    seen[0] += 1
    if seen[0] == target:
        os.kill(os.getpid(), signal.SIGKILL)

db.upgrade(make_engine(sys.argv[1]))
print(seen[0])
"""


def schema_of(url: str) -> tuple[str | None, frozenset[tuple[str, str]]]:
    """(revision, {(table, column)}) of a database."""
    engine = make_engine(url)
    try:
        from sqlalchemy import inspect

        inspector = inspect(engine)
        columns = frozenset(
            (table, column["name"])
            for table in inspector.get_table_names()
            if table != "alembic_version"
            for column in inspector.get_columns(table)
        )
        return db.current_revision(engine), columns
    finally:
        engine.dispose()


def reference_schemas(make_url) -> dict[str | None, frozenset]:
    """The schema at every revision, from an upgrade done one step at a time."""
    url = make_url()
    schemas = {None: schema_of(url)[1]}
    engine = make_engine(url)
    for revision in db.revisions():
        db.upgrade(engine, revision)
        schemas[revision] = schema_of(url)[1]
    engine.dispose()
    return schemas


def kill_at(url: str, statement: int) -> int:
    result = subprocess.run(
        [sys.executable, "-c", KILL_AT_STATEMENT, url, str(statement)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, -signal.SIGKILL), result.stderr
    return int(result.stdout) if result.returncode == 0 else -1


def check_migration_kills(make_url, sample: int | None, tally: Tally) -> None:
    """Kill before `sample` statements spread evenly over the upgrade (None: before each)."""
    schemas = reference_schemas(make_url)
    total = kill_at(make_url(), 0)  # no kill: how many statements a full upgrade has
    chosen = list(range(1, total + 1))
    if sample is not None:
        chosen = sorted({chosen[i * (total - 1) // (sample - 1)] for i in range(sample)})
    between = []
    for statement in chosen:
        url = make_url()
        kill_at(url, statement)
        revision, columns = schema_of(url)
        if schemas.get(revision) != columns:
            between.append((statement, revision))
        # and the next upgrade completes it
        engine = make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        head = db.head_revision()
        if schema_of(url) != (head, schemas[head]):
            between.append((statement, "not completed"))
    tally.notes.update(statements=total, kills=len(chosen), between=between)
    tally.lost += len(between)  # a database left between revisions counts as lost


def sqlite_urls(tmp_path: Path):
    counter = iter(range(10_000))
    return lambda: f"sqlite:///{tmp_path / f'db{next(counter)}' / 'riskiturva.db'}"


def postgres_urls(postgres_url: str):
    return lambda: postgres_fresh(postgres_url)


def test_kill_during_a_migration_leaves_the_schema_before_or_after_it(tmp_path):
    # A sample of statement boundaries, spread over the migrations (all: slow test)
    tally = Tally("db upgrade killed -9 before chosen statements (SQLite)")
    check_migration_kills(sqlite_urls(tmp_path), 8, tally)
    tally.check()


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_kill_before_every_statement_of_every_migration(tmp_path, postgres_url, database):
    urls = sqlite_urls(tmp_path) if database == "sqlite" else postgres_urls(postgres_url)
    tally = Tally(f"db upgrade killed -9 before every statement ({database})")
    check_migration_kills(urls, None, tally)
    tally.check()


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_kill_of_db_upgrade_at_random_times(tmp_path, postgres_url, database):
    """The real command killed after a random delay (mostly in start-up, some mid-way)."""
    urls = sqlite_urls(tmp_path) if database == "sqlite" else postgres_urls(postgres_url)
    schemas = reference_schemas(urls)
    rng = random.Random(4)
    tally = Tally(f"riskiturva db upgrade killed -9 at random times ({database})")
    between = []
    for attempt in range(20):
        url = urls()
        config = tmp_path / f"upgrade{attempt}.toml"
        config.write_text(f'[settings]\ndatabase_url = "{url}"\n', encoding="utf-8")
        upgrade = Process(tmp_path, f"upgrade{attempt}", "db", "upgrade", "--config", str(config))
        time.sleep(rng.uniform(0.3, 1.5))
        upgrade.kill9()
        revision, columns = schema_of(url)
        if schemas.get(revision) != columns:
            between.append(revision)
    tally.notes["between"] = between
    tally.lost += len(between)
    tally.check()


# --- 5. scans at the same time ------------------------------------------------------------


def parallel_scans(config: Path, tmp_path: Path, organisations: list[str]) -> list[Process]:
    start = threading.Barrier(len(organisations))
    processes: list[Process] = []
    lock = threading.Lock()

    def launch(index: int, org: str) -> None:
        start.wait()
        process = Process(
            tmp_path, f"parallel{index}", "scan", "--config", str(config),
            "--collector", "dns_email", "--org", org, "--format", "json",
        )  # fmt: skip
        with lock:
            processes.append(process)

    threads = [threading.Thread(target=launch, args=(i, o)) for i, o in enumerate(organisations)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for process in processes:
        process.wait(timeout=300)
    return processes


@pytest.mark.lab
@pytest.mark.parametrize(
    ("fresh", "organisations"),
    [
        pytest.param(True, ["hyvala", "rapala", "sekala", "rapala"], id="fresh-database"),
        pytest.param(
            False,
            ["hyvala", "rapala", "sekala"] * 2,
            id="initialised-database",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            False, ["hyvala", "rapala", "sekala"] * 3, id="nine-scans", marks=pytest.mark.slow
        ),
    ],
)
def test_parallel_scans_of_different_and_the_same_organisations(
    lab, tmp_path, fresh, organisations
):
    config = patient_resolver(lab_config(lab, tmp_path))
    url = sqlite_url(config)
    if not fresh:
        assert run("db", "upgrade", "--config", str(config)).returncode == 0
    tally = Tally(f"{len(organisations)} scans at once ({'fresh' if fresh else 'initialised'})")
    processes = parallel_scans(config, tmp_path, organisations)
    failed = [p.output[-2000:] for p in processes if p.popen.returncode != 0]
    assert failed == []
    for process in processes:
        document = json.loads(process.stdout_path.read_text())
        assert [r["status"] for r in document["runs"]] == ["ok"]
    tally.output(*(p.output for p in processes))
    # Then the store holds the findings one scan of those organisations holds, once each
    reference_folder = tmp_path / "reference"
    reference_folder.mkdir()
    reference = patient_resolver(lab_config(lab, reference_folder))
    single = run("scan", "--config", str(reference), "--collector", "dns_email")
    assert single.returncode == 0, single.stderr
    expected = {
        key for key, slug in findings_by_organisation(sqlite_url(reference)).items()
        if slug in organisations
    }  # fmt: skip
    found = findings_by_organisation(url)
    tally.lost += len(expected - set(found))
    tally.notes.update(findings=len(found), expected=len(expected))
    assert set(found) == expected
    snapshots = query(
        url, text("SELECT organisation_id, day, count(*) FROM score_snapshot GROUP BY 1, 2")
    )
    assert sorted(count for *_, count in snapshots) == [1] * len(set(organisations))
    tally.duplicate_runs += len(runs(url)) - len(organisations)
    tally.check()


def patient_resolver(config: Path) -> Path:
    """N scans on two cores answer slowly: DNS waits 10 s, so no lookup times out."""
    config.write_text(
        config.read_text(encoding="utf-8").replace("timeout = 2.0", "timeout = 10.0", 1),
        encoding="utf-8",
    )
    return config


def findings_by_organisation(url: str) -> dict[str, str]:
    return dict(query(url, select(Finding.fingerprint, Organisation.slug).join(Organisation)))
