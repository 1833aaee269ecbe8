"""The persistent schedule: APScheduler 3 with its job store in Riskiturva's own database.

Jobs have stable ids (`collector:tls`, `snapshots:daily`, `intel:daily`, `reports:monthly`), so
restarting with a changed configuration replaces them instead of adding duplicates, and
jobs no longer configured are removed. Every job runs at most once at a time, missed runs
coalesce into one, and a run more than `misfire_grace_seconds` late is skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from riskiturva._cron import parse_schedule
from riskiturva.collector import discover_collectors
from riskiturva.config import Config, load_config
from riskiturva.db import open_store
from riskiturva.runner import build_context, run_collector

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"
SNAPSHOT_SCHEDULE = "50 5 * * *"  # after the nightly scans, before the working day


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: str  # "module:function", so the job store can persist it
    trigger: BaseTrigger
    args: tuple[Any, ...]


# Set when the process is asked to stop: running scans stop after their current target.
# Reset by every `build_scheduler`, so nothing carries over from one scheduler to the next.
_shutdown = threading.Event()


def job_specs(config: Config, config_path: Path, collector_names: list[str]) -> list[JobSpec]:
    """What should be scheduled for this configuration."""
    schedules = config.settings.schedules

    def trigger(expression: str) -> BaseTrigger:
        return parse_schedule(expression, schedules.timezone, schedules.jitter_seconds)

    path = str(config_path.resolve())
    specs = [
        JobSpec(
            f"collector:{name}", f"{__name__}:scheduled_scan", trigger(expression), (path, name)
        )
        for name in collector_names
        if (expression := schedules.for_collector(name))
    ]
    specs.append(
        JobSpec(
            "snapshots:daily",
            f"{__name__}:scheduled_snapshots",
            trigger(SNAPSHOT_SCHEDULE),
            (path,),
        )
    )
    specs.append(
        JobSpec(
            "intel:daily",
            f"{__name__}:scheduled_intel_update",
            trigger(config.settings.intel.schedule),
            (path,),
        )
    )
    specs.append(
        JobSpec(
            "reports:monthly",
            f"{__name__}:scheduled_reports",
            trigger(config.settings.reports.schedule),
            (path,),
        )
    )
    return specs


def build_scheduler(config: Config, config_path: Path) -> BackgroundScheduler:
    """A paused background scheduler on the Riskiturva database, its jobs synced to `config`.

    Call `.resume()` to start running jobs and `stop()` to end.
    """
    _shutdown.clear()
    schedules = config.settings.schedules
    store = SQLAlchemyJobStore(url=config.settings.effective_database_url, tablename=JOBS_TABLE)
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": schedules.misfire_grace_seconds,
        },
        timezone=schedules.timezone,
    )
    specs = job_specs(config, config_path, list(discover_collectors()))
    # Start paused to see the stored jobs: add or replace the configured ones, drop the rest.
    scheduler.start(paused=True)
    wanted = {spec.id for spec in specs}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            log.info("removing job %s: no longer configured", job.id)
            job.remove()
    for spec in specs:
        scheduler.add_job(
            spec.func,
            trigger=spec.trigger,
            args=spec.args,
            id=spec.id,
            name=spec.id,
            replace_existing=True,
        )
    return scheduler


def stop(scheduler: BackgroundScheduler) -> None:
    """Stop taking new jobs; running scans finish their current target and are recorded."""
    _shutdown.set()
    if scheduler.running:
        scheduler.shutdown(wait=True)


def _open(config_path: str) -> tuple[Config, Any]:
    config = load_config(config_path)
    return config, open_store(config)


def scheduled_scan(config_path: str, collector_name: str) -> None:
    """Job: one collector over every organisation, then today's score snapshots."""
    config, sessions = _open(config_path)
    collector = discover_collectors().get(collector_name)
    if collector is None:
        log.error("scheduled collector %s is not installed", collector_name)
        return
    context = build_context(config, sessions=sessions, cancelled=_shutdown)
    report = run_collector(sessions, config, collector, context=context, trigger="scheduler")
    log.info("scheduled %s run %s: %s", collector_name, report.run_id, report.status)
    _snapshots(sessions, config)


def scheduled_snapshots(config_path: str) -> None:
    """Job: store each organisation's score for today."""
    config, sessions = _open(config_path)
    _snapshots(sessions, config)


def scheduled_intel_update(config_path: str) -> None:
    """Job: refresh the vulnerability intelligence (KEV, NVD, EPSS, endoflife.date)."""
    from riskiturva.intel.update import client_for, update

    config, sessions = _open(config_path)
    for result in update(
        sessions, config.settings, client_for(config.settings), now=dt.datetime.now(dt.UTC)
    ):
        log.info("intel %s: %s records, data as of %s", result.source, result.records,
                 result.data_as_of.isoformat())  # fmt: skip


def scheduled_reports(config_path: str) -> None:
    """Job: render, archive and e-mail every organisation's report for the previous month."""
    from riskiturva.reports import deliver_monthly

    config, sessions = _open(config_path)
    for delivery in deliver_monthly(sessions, config):
        log.info("monthly report: %s", delivery)


def _snapshots(sessions: Any, config: Config) -> None:
    from riskiturva.history import take_snapshots

    today = dt.datetime.now(ZoneInfo(config.settings.schedules.timezone)).date()
    take_snapshots(sessions, config, today)
