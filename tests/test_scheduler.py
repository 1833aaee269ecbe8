"""The persistent schedule: jobs from the configuration, no duplicates, real runs."""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from riskiturva import scheduler
from riskiturva._cron import parse_schedule
from riskiturva.config import ConfigError, load_config
from riskiturva.db import open_store
from riskiturva.intel.store import source_states
from riskiturva.models import ScanRun
from riskiturva.store import sync_config
from tests.conftest import MINIMAL_CONFIG
from tests.intel_data import feeds as lab_feeds

COLLECTORS = ["dns_email", "services", "tls", "web"]


def write_config(folder: Path, schedules: str = "", base: str = MINIMAL_CONFIG) -> Path:
    path = folder / "riskiturva.toml"
    path.write_text(
        base.replace("[settings.resolver]", f"{schedules}\n[settings.resolver]", 1),
        encoding="utf-8",
    )
    return path


@contextmanager
def leading(path: Path) -> Iterator[scheduler.Schedule]:
    """A started schedule on `path`'s database that holds the lead."""
    config = load_config(path)
    open_store(config)
    schedule = scheduler.Schedule(config, path)
    schedule.start()
    try:
        assert schedule.leading.wait(30), "the schedule never took the lead"
        yield schedule
    finally:
        schedule.stop()


def jobs(path: Path) -> dict[str, str]:
    with leading(path) as schedule:
        return {job.id: str(job.trigger) for job in schedule.jobs()}


def next_runs(path: Path) -> dict[str, dt.datetime]:
    with leading(path) as schedule:
        return {job.id: job.next_run_time for job in schedule.jobs()}


def test_cron_weekdays_count_from_sunday_like_cron():
    trigger = parse_schedule("30 3 * * 1")
    assert isinstance(trigger, CronTrigger)
    assert "day_of_week='mon'" in str(trigger)
    assert isinstance(parse_schedule("@every 90s"), IntervalTrigger)


@pytest.mark.parametrize("expression", ["61 * * * *", "* * *", "@every 0s", "daily"])
def test_bad_schedule_is_a_config_error(tmp_path, expression):
    path = write_config(tmp_path, f'[settings.schedules]\ntls = "{expression}"')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].field == "settings.schedules.tls"


def test_jobs_follow_the_configuration_without_duplicates(tmp_path):
    path = write_config(tmp_path)
    first = jobs(path)
    assert set(first) == {f"collector:{name}" for name in COLLECTORS} | {
        "discovery:daily",
        "snapshots:daily",
        "intel:daily",
        "alerts:send",
        "reports:monthly",
        "maintenance:prune",
        "maintenance:vacuum",
    }
    # A restart with the same configuration changes nothing
    assert jobs(path) == first
    # A changed schedule replaces the job, it is not added twice
    path = write_config(tmp_path, '[settings.schedules]\nservices = "0 5 * * 3"')
    changed = jobs(path)
    assert set(changed) == set(first)
    assert "day_of_week='wed'" in changed["collector:services"]
    assert changed["collector:tls"] == first["collector:tls"]


def test_jobs_no_longer_configured_are_removed(tmp_path):
    path = write_config(tmp_path)
    with leading(path) as schedule:
        schedule._scheduler.add_job(
            "riskiturva.scheduler:scheduled_snapshots",
            "interval",
            hours=1,
            id="collector:retired",
            args=(str(path),),
        )
    assert "collector:retired" not in jobs(path)


def test_a_restart_keeps_the_stored_next_run_times(tmp_path):
    # Given a schedule whose next runs are stored
    path = write_config(tmp_path, '[settings.schedules]\ntls = "@every 1h"\njitter_seconds = 0')
    first = next_runs(path)
    time.sleep(1.5)
    # When the scheduler restarts with the same configuration, the times are kept (a
    # restart that recomputed them would skip a run missed while it was down)
    assert next_runs(path) == first
    # A changed schedule starts afresh
    changed = write_config(tmp_path, '[settings.schedules]\ntls = "@every 2h"\njitter_seconds = 0')
    later = next_runs(changed)
    assert later["collector:tls"] > first["collector:tls"]
    assert later["collector:dns_email"] == first["collector:dns_email"]


@pytest.mark.lab
def test_a_fast_trigger_records_a_scheduled_run(lab, tmp_path):
    text = lab.config_path.read_text(encoding="utf-8").replace(
        'data_dir = "data"', f'data_dir = "{tmp_path / "data"}"', 1
    )
    path = tmp_path / "riskiturva.toml"
    path.write_text(
        text.replace(
            "[settings.resolver]",
            '[settings.schedules]\ndns_email = "@every 1s"\n[settings.resolver]',
            1,
        ),
        encoding="utf-8",
    )
    sessions = open_store(load_config(path))
    with leading(path):
        deadline = time.monotonic() + 90
        run = None
        while time.monotonic() < deadline and run is None:
            time.sleep(0.5)
            with sessions() as session:
                # (a fire time that came while the previous run was still going is
                # recorded as skipped: look past those)
                run = session.scalar(
                    select(ScanRun).where(
                        ScanRun.trigger == "scheduler",
                        ScanRun.status.not_in(["running", "skipped"]),
                    )
                )
    assert run is not None, "no scheduled run was recorded within 90 s"
    assert (run.collector, run.status) == ("dns_email", "ok")
    assert run.scheduled_for is not None  # the fire time it ran for
    # A restart of the scheduler over the same database keeps one job per id
    assert list(jobs(path)).count("collector:dns_email") == 1


@pytest.mark.lab
def test_the_discovery_job_records_a_scheduled_discovery_run(lab, tmp_path):
    # Given the lab's configuration with discovery due every few seconds
    text = lab.config_path.read_text(encoding="utf-8").replace(
        'data_dir = "data"', f'data_dir = "{tmp_path / "data"}"', 1
    )
    path = write_config(
        tmp_path, '[settings.schedules]\ndiscovery = "@every 2s"\njitter_seconds = 0', base=text
    )
    sessions = open_store(load_config(path))
    # When the scheduler leads, then a discovery run is recorded for its fire time
    with leading(path):
        deadline = time.monotonic() + 120
        run = None
        while time.monotonic() < deadline and run is None:
            time.sleep(0.5)
            with sessions() as session:
                run = session.scalar(
                    select(ScanRun).where(
                        ScanRun.collector == "discovery",
                        ScanRun.status.not_in(["running", "skipped"]),
                    )
                )
    assert run is not None, "no scheduled discovery run was recorded within 120 s"
    assert (run.trigger, run.status) == ("scheduler", "ok")
    assert run.scheduled_for is not None
    assert run.counts["proposed"] > 0


def test_a_discovery_fire_time_missed_beyond_the_grace_is_a_skipped_discovery_run(tmp_path):
    # Given a leading schedule whose discovery job has a fire time two hours ago (grace 1 h)
    path = write_config(tmp_path)
    missed = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    with leading(path) as schedule:
        job = next(j for j in schedule.jobs() if j.id == "discovery:daily")
        executor = schedule._scheduler._lookup_executor("default")
        # When the executor is handed that fire time (as after downtime)
        executor._run(job, "default", [missed])
    # Then it did not run, and is recorded as a skipped discovery run, like a scan's
    with open_store(load_config(path))() as session:
        runs = list(session.scalars(select(ScanRun)))
    assert [(r.collector, r.status, r.trigger) for r in runs] == [
        ("discovery", "skipped", "scheduler")
    ]
    assert runs[0].scheduled_for == missed
    assert "did not start" in runs[0].message


def test_the_monthly_report_job_runs_from_its_stored_reference(tmp_path):
    path = write_config(tmp_path)
    config = load_config(path)
    sessions = open_store(config)
    with sessions.begin() as session:
        sync_config(session, config)
    # The job store keeps "module:function" and the config path; resolve and run it as the
    # scheduler would. Organisations without recipients are archived, not mailed.
    job = {spec.id: spec for spec in scheduler.job_specs(config, path, [])}["reports:monthly"]
    module, function = job.func.split(":")
    getattr(importlib.import_module(module), function)(*job.args)
    assert sorted(p.parent.name for p in (tmp_path / "data" / "reports").rglob("*.pdf")) == [
        "hyvala",
        "rapala",
    ]


def test_the_daily_intel_job_updates_the_feeds_from_its_stored_reference(tmp_path):
    # Given a publisher on loopback serving the lab's feed files (static, as a mirror would)
    directory = lab_feeds(tmp_path)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    intel = (
        "[settings.intel]\n"
        f'kev_url = "{base}/known_exploited_vulnerabilities.json"\n'
        f'nvd_url = "{base}/nvd/cves.json"\n'
        "nvd_request_delay = 0\n"
        f'epss_url = "{base}/epss_scores-current.csv.gz"\n'
        f'eol_url = "{base}/endoflife/{{product}}.json"\n'
        'eol_products = ["php", "debian"]\n'
    )
    path = write_config(tmp_path, intel)
    config = load_config(path)
    sessions = open_store(config)
    try:
        # When the job runs as the scheduler would run it, from its stored reference
        job = {spec.id: spec for spec in scheduler.job_specs(config, path, [])}["intel:daily"]
        module, function = job.func.split(":")
        getattr(importlib.import_module(module), function)(*job.args)
    finally:
        server.shutdown()
        server.server_close()
    # Then all four sources are stored
    with sessions() as session:
        assert {str(s): st.records for s, st in source_states(session).items()} == {
            "kev": 6, "nvd": 9, "epss": 9, "eol": 2,
        }  # fmt: skip
