"""The persistent schedule: jobs from the configuration, no duplicates, real runs."""

from __future__ import annotations

import functools
import importlib
import threading
import time
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


def jobs(path: Path) -> dict[str, str]:
    config = load_config(path)
    open_store(config)
    running = scheduler.build_scheduler(config, path)
    try:
        return {job.id: str(job.trigger) for job in running.get_jobs()}
    finally:
        scheduler.stop(running)


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
        "snapshots:daily",
        "intel:daily",
        "reports:monthly",
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
    config = load_config(path)
    open_store(config)
    running = scheduler.build_scheduler(config, path)
    running.add_job(
        "riskiturva.scheduler:scheduled_snapshots",
        "interval",
        hours=1,
        id="collector:retired",
        args=(str(path),),
    )
    scheduler.stop(running)
    assert "collector:retired" not in jobs(path)


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
    config = load_config(path)
    sessions = open_store(config)
    running = scheduler.build_scheduler(config, path)
    running.resume()
    try:
        deadline = time.monotonic() + 90
        run = None
        while time.monotonic() < deadline and run is None:
            time.sleep(0.5)
            with sessions() as session:
                run = session.scalar(
                    select(ScanRun).where(
                        ScanRun.trigger == "scheduler", ScanRun.status != "running"
                    )
                )
    finally:
        scheduler.stop(running)
    assert run is not None, "no scheduled run was recorded within 90 s"
    assert (run.collector, run.status) == ("dns_email", "ok")
    # A restart of the scheduler over the same database keeps one job per id
    assert list(jobs(path)).count("collector:dns_email") == 1


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
