"""The persistent schedule: APScheduler 3 with its job store in Riskiturva's own database.

- **One scheduler fires.** Every `serve` and `scheduler` process builds a `Schedule`; the one
  holding the leader lock (`riskiturva.leader`) runs the jobs, the others wait as hot
  standbys and take over when the leader stops or dies.
- **A fire time yields one outcome.** Each (job, fire time) is claimed in `scheduler_fire`
  before it runs or is recorded as skipped; a second claim fails, so even two schedulers
  that both believed they led would not run it twice.
- **Missed runs are caught up or recorded.** Jobs keep their stored next run time across
  restarts (they are replaced only when their schedule changed), so after downtime the
  latest missed fire time of a scan still runs if it is at most `misfire_grace_seconds`
  late; fire times missed beyond that are recorded as *skipped* scan runs, visible on the
  scans page. Snapshots, reports and maintenance always catch up, once.
- Jobs have stable ids (`collector:tls`, `discovery:daily`, `snapshots:daily`,
  `intel:daily`, `alerts:send`, `reports:monthly`, `maintenance:prune`,
  `maintenance:vacuum`); jobs no longer configured are removed.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import datetime as dt
import functools
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from riskiturva._cron import parse_schedule
from riskiturva.collector import Collector, ScanContext, discover_collectors
from riskiturva.config import Config, load_config
from riskiturva.db import open_store
from riskiturva.dberrors import StoreWriteError, cause, write_with_retry
from riskiturva.leader import LeaderLock, leader_lock
from riskiturva.models import RunStatus, ScanRun
from riskiturva.models_schedule import SchedulerFire
from riskiturva.runner import build_context, run_collector
from riskiturva.store import make_engine, session_factory

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"
DISCOVERY_JOB = "discovery:daily"
SNAPSHOT_SCHEDULE = "50 5 * * *"  # after the nightly scans, before the working day
EXECUTOR_THREADS = 4


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: str  # "module:function", so the job store can persist it
    schedule: str  # the configured expression: a changed one replaces the stored job
    trigger: BaseTrigger
    args: tuple[Any, ...]
    grace_seconds: int | None  # None: always catch up (once) after downtime

    @property
    def signature(self) -> str:
        """Stored as the job's name: what decides whether the stored job is still current."""
        return f"{self.id} [{self.schedule}]"


# Set when the process is asked to stop: running scans stop after their current target.
# Reset by every `Schedule`, so nothing carries over from one scheduler to the next.
_shutdown = threading.Event()
# The fire time of the job running in this thread (set by the executor, read by the jobs).
_fire_time: contextvars.ContextVar[dt.datetime | None] = contextvars.ContextVar(
    "riskiturva_fire_time", default=None
)


def job_specs(config: Config, config_path: Path, collector_names: list[str]) -> list[JobSpec]:
    """What should be scheduled for this configuration."""
    settings = config.settings
    schedules = settings.schedules

    def spec(
        job_id: str, function: str, expression: str, args: tuple[Any, ...], grace: Any
    ) -> JobSpec:
        trigger = parse_schedule(expression, schedules.timezone, schedules.jitter_seconds)
        schedule = f"{expression}; {schedules.timezone}; jitter {schedules.jitter_seconds}s"
        return JobSpec(job_id, f"{__name__}:{function}", schedule, trigger, args, grace)

    path = str(config_path.resolve())
    grace = schedules.misfire_grace_seconds
    specs = [
        spec(f"collector:{name}", "scheduled_scan", expression, (path, name), grace)
        for name in collector_names
        if (expression := schedules.for_collector(name))
    ]
    specs.append(spec(DISCOVERY_JOB, "scheduled_discovery", schedules.discovery, (path,), grace))
    specs.append(spec("snapshots:daily", "scheduled_snapshots", SNAPSHOT_SCHEDULE, (path,), None))
    specs.append(
        spec("intel:daily", "scheduled_intel_update", settings.intel.schedule, (path,), None)
    )
    specs.append(
        spec("alerts:send", "scheduled_alerts", settings.alerts.sender_schedule, (path,), None)
    )
    specs.append(
        spec("reports:monthly", "scheduled_reports", settings.reports.schedule, (path,), None)
    )
    retention = settings.retention
    specs.append(
        spec("maintenance:prune", "scheduled_prune", retention.prune_schedule, (path,), None)
    )
    if settings.effective_database_url.startswith("sqlite"):
        specs.append(
            spec("maintenance:vacuum", "scheduled_vacuum", retention.vacuum_schedule, (path,), None)
        )
    return specs


class Schedule:
    """The schedule of one process: a hot standby until it holds the leader lock, then the
    one scheduler that fires jobs; it steps down when it loses the lock."""

    def __init__(self, config: Config, config_path: Path):
        _shutdown.clear()
        self.config = config
        self.specs = job_specs(config, config_path, list(discover_collectors()))
        url = config.settings.effective_database_url
        self._engine = make_engine(url)
        self._sessions = session_factory(self._engine)
        self.lock: LeaderLock = leader_lock(url, config.settings.schedules.leader_lease_seconds)
        self._scheduler = BackgroundScheduler(
            jobstores={"default": _ResilientJobStore(engine=self._engine, tablename=JOBS_TABLE)},
            executors={"default": ClaimingExecutor(self._sessions, self._record_missed)},
            job_defaults={"coalesce": False, "max_instances": 1},
            timezone=config.settings.schedules.timezone,
        )
        self._scheduler.add_listener(self._on_max_instances, EVENT_JOB_MAX_INSTANCES)
        self.leading = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start as a standby; lead as soon as the lock is free (checked every few seconds)."""
        self._scheduler.start(paused=True)
        self._thread = threading.Thread(target=self._lead_or_wait, name="leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop taking new jobs; running scans finish their current target and are recorded;
        the lock is released so a standby takes over at once."""
        _shutdown.set()
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        try:
            self.lock.release()
        except SQLAlchemyError as error:
            log.warning("could not release the leader lock (%s): it expires", cause(error))
        self._engine.dispose()

    def jobs(self) -> list[Job]:
        jobs: list[Job] = self._scheduler.get_jobs()
        return jobs

    # --- leadership ---------------------------------------------------------------------

    def _lead_or_wait(self) -> None:
        waiting_logged = False
        while not self._stopping.is_set():
            try:
                if self.leading.is_set():
                    if not self.lock.renew():
                        self._step_down("another scheduler holds the leader lock now")
                elif self.lock.acquire():
                    self._take_lead()
                    waiting_logged = False
                elif not waiting_logged:
                    log.info("standing by: %s", self.lock.describe_holder())
                    waiting_logged = True
            except SQLAlchemyError as error:
                if self.leading.is_set():
                    self._step_down(f"the database is unreachable ({cause(error)})")
                else:
                    log.warning("cannot reach the database to check the lead: %s", cause(error))
            self._stopping.wait(self.lock.heartbeat_seconds)

    def _take_lead(self) -> None:
        sync_jobs(self._scheduler, self.specs)
        self.leading.set()
        self._scheduler.resume()
        log.info("leading the schedule (%s)", self.lock.holder)

    def _step_down(self, why: str) -> None:
        self._scheduler.pause()
        self.leading.clear()
        log.warning("no longer leading the schedule: %s", why)

    # --- skipped fire times ---------------------------------------------------------------

    def _on_max_instances(self, event: JobSubmissionEvent) -> None:
        job = self._scheduler.get_job(event.job_id)
        if job is None:
            return
        times = sorted(event.scheduled_run_times)
        if claim_fire(self._sessions, job.id, times[-1], "skipped"):
            self._record_missed(job, times, "the previous run of this job was still going")

    def _record_missed(self, job: Job, times: Sequence[dt.datetime], why: str) -> None:
        """Fire times that will not run: a skipped run for a collector or discovery, a log line
        for the rest (they catch up by themselves)."""
        when = ", ".join(t.isoformat(timespec="minutes") for t in times[:3])
        more = f" and {len(times) - 3} more" if len(times) > 3 else ""
        log.warning("%s: skipped the run(s) scheduled for %s%s: %s", job.id, when, more, why)
        collector = _run_collector(job.id)
        if collector is None:
            return
        now = dt.datetime.now(dt.UTC)
        message = (
            f"{len(times)} scheduled run(s), the last at {times[-1].isoformat(timespec='minutes')},"
            f" did not start: {why}; nothing was scanned or resolved"
        )

        def record(session: Session) -> None:
            session.add(
                ScanRun(
                    collector=collector,
                    organisations=[o.slug for o in self.config.organisations],
                    trigger="scheduler",
                    scheduled_for=times[-1],
                    status=RunStatus.SKIPPED,
                    started_at=now,
                    finished_at=now,
                    host=socket.gethostname(),
                    counts={"missed": len(times), "first_missed": times[0].isoformat()},
                    message=message,
                )
            )

        try:
            write_with_retry(
                self._sessions,
                record,
                what=f"record skipped runs of {job.id}",
                budget_s=self.config.settings.write_retry_seconds,
            )
        except StoreWriteError as error:
            log.error("%s", error.paragraph())


def _run_collector(job_id: str) -> str | None:
    """The `scan_run.collector` of a job that records runs: a collector, or discovery."""
    if job_id.startswith("collector:"):
        return job_id.removeprefix("collector:")
    if job_id == DISCOVERY_JOB:
        from riskiturva.discovery import COLLECTOR

        return COLLECTOR
    return None


def sync_jobs(scheduler: BackgroundScheduler, specs: Sequence[JobSpec]) -> None:
    """Make the stored jobs match `specs` without losing their state.

    A job whose schedule is unchanged keeps its stored next run time, so a fire time
    missed while no scheduler ran is still seen (and caught up or recorded as skipped);
    a changed schedule replaces the job; jobs not configured any more are removed.
    """
    wanted = {spec.id: spec for spec in specs}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            log.info("removing job %s: no longer configured", job.id)
            job.remove()
    stored = {job.id: job for job in scheduler.get_jobs()}
    for spec in specs:
        options = {
            "func": spec.func,
            "args": spec.args,
            "name": spec.signature,
            "misfire_grace_time": spec.grace_seconds,
        }
        job = stored.get(spec.id)
        if job is None:
            scheduler.add_job(id=spec.id, trigger=spec.trigger, **options)
        elif job.name != spec.signature:
            log.info("job %s: schedule changed to %s", spec.id, spec.schedule)
            scheduler.add_job(id=spec.id, trigger=spec.trigger, replace_existing=True, **options)
        elif (job.func_ref, tuple(job.args), job.misfire_grace_time) != (
            spec.func,
            spec.args,
            spec.grace_seconds,
        ):
            job.modify(**options)


def claim_fire(
    sessions: sessionmaker[Session], job_id: str, fire_time: dt.datetime, outcome: str
) -> bool:
    """Claim one (job, fire time) for this process; False when another already did."""
    try:
        with sessions.begin() as session:
            session.add(
                SchedulerFire(
                    job_id=job_id,
                    fire_time=fire_time,
                    outcome=outcome,
                    holder=f"{socket.gethostname()}:{os.getpid()}",
                    handled_at=dt.datetime.now(dt.UTC),
                )
            )
    except IntegrityError:
        log.info("%s at %s was handled by another scheduler", job_id, fire_time.isoformat())
        return False
    return True


class ClaimingExecutor(BaseExecutor):  # type: ignore[misc]  # APScheduler ships no types
    """Runs a job's fire times the way Riskiturva promises (an APScheduler executor).

    It gets every fire time due (the scheduler does not coalesce), claims the latest in
    the database and, if the claim succeeds: runs it when it is at most the job's grace
    late (the job reads it with `current_fire_time()`), and records the others as missed.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        record_missed: Callable[[Job, Sequence[dt.datetime], str], None],
        max_workers: int = EXECUTOR_THREADS,
    ):
        super().__init__()
        self._sessions = sessions
        self._record_missed = record_missed
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="job")

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait)

    def _do_submit_job(self, job: Job, run_times: list[dt.datetime]) -> None:
        future = self._pool.submit(self._run, job, job._jobstore_alias, sorted(run_times))
        future.add_done_callback(lambda done: self._run_job_success(job.id, done.result()))

    def _run(self, job: Job, jobstore: str, times: list[dt.datetime]) -> list[JobExecutionEvent]:
        latest = times[-1]
        late = dt.datetime.now(dt.UTC) - latest
        runs = job.misfire_grace_time is None or late <= dt.timedelta(
            seconds=job.misfire_grace_time
        )
        try:
            if not claim_fire(self._sessions, job.id, latest, "run" if runs else "skipped"):
                return []
            missed = times[:-1] if runs else times
            if missed:
                grace = dt.timedelta(seconds=job.misfire_grace_time or 0)
                self._record_missed(
                    job,
                    missed,
                    f"no scheduler was running then, and a scan more than {grace} late"
                    " is not started"
                    if job.misfire_grace_time is not None
                    else "a later fire time ran instead",
                )
            if not runs:
                return [JobExecutionEvent(EVENT_JOB_MISSED, job.id, jobstore, latest)]
            token = _fire_time.set(latest)
            try:
                job.func(*job.args, **job.kwargs)
            finally:
                _fire_time.reset(token)
        except Exception as error:  # a job must never kill the scheduler
            log.error("job %s (scheduled for %s) failed: %s", job.id, latest, error)
        return [JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, jobstore, latest)]


class _ResilientJobStore(SQLAlchemyJobStore):  # type: ignore[misc]  # APScheduler: no types
    """A job store whose failed update leaves the stored job as it was instead of killing
    the scheduler's thread: the same fire time comes due again, and its claim stops it from
    running twice."""

    def update_job(self, job: Job) -> None:
        try:
            super().update_job(job)
        except SQLAlchemyError as error:
            log.warning("could not store the next run of %s: %s", job.id, cause(error))


def current_fire_time() -> dt.datetime | None:
    """The fire time of the scheduled job running in this thread (None outside one)."""
    return _fire_time.get()


# --- the jobs -----------------------------------------------------------------------------


@contextmanager
def _store(config_path: str) -> Iterator[tuple[Config, sessionmaker[Session]]]:
    """The configuration and a store for one job; its connections close when it ends."""
    config = load_config(config_path)
    sessions = open_store(config)
    try:
        yield config, sessions
    finally:
        engine = sessions.kw["bind"]
        assert isinstance(engine, Engine)
        engine.dispose()


def _reported(job: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A job's database failures become one log paragraph, not a traceback."""

    def decorate(function: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(function)
        def run(*args: Any) -> None:
            try:
                function(*args)
            except StoreWriteError as error:
                log.error("%s: %s", job, error.paragraph())
            except SQLAlchemyError as error:
                log.error("%s: database error (%s); the next run tries again", job, cause(error))

        return run

    return decorate


@_reported("scheduled scan")
def scheduled_scan(config_path: str, collector_name: str) -> None:
    """Job: one collector over every organisation, then today's score snapshots."""
    with _store(config_path) as (config, sessions):
        collector = discover_collectors().get(collector_name)
        if collector is None:
            log.error("scheduled collector %s is not installed", collector_name)
            return
        context = build_context(config, sessions=sessions, cancelled=_shutdown)
        if config.settings.queue.runner == "workers":
            _enqueue(sessions, config, collector, context)
            return
        report = run_collector(
            sessions,
            config,
            collector,
            context=context,
            trigger="scheduler",
            scheduled_for=current_fire_time(),
        )
        if report.store_error is not None:
            log.error("%s", report.store_error.paragraph())
            return
        log.info("scheduled %s run %s: %s", collector_name, report.run_id, report.status)
        _snapshots(sessions, config)
        _send_alerts(sessions, config)  # the run's urgent alerts now, not at the next pass


def _enqueue(
    sessions: sessionmaker[Session], config: Config, collector: Collector, context: ScanContext
) -> None:
    """Workers scan (settings.queue.runner = "workers"): only put the run's tasks on the
    queue; the worker that saves a run's last task closes it."""
    from riskiturva.workers import QueueUnavailable, enqueue_run, make_broker

    broker = make_broker(config.settings.queue)
    try:
        queued = enqueue_run(
            sessions,
            config,
            collector,
            broker,
            context=context,
            trigger="scheduler",
            scheduled_for=current_fire_time(),
        )
    except QueueUnavailable as error:
        log.error("scheduled %s run: %s; the run is recorded as failed", collector.name, error)
        return
    finally:
        broker.close()
    log.info("scheduled %s run %s: %d tasks queued", collector.name, queued.run_id, queued.tasks)


@_reported("scheduled discovery")
def scheduled_discovery(config_path: str) -> None:
    """Job: discovery for every organisation; proposals wait for a person."""
    from riskiturva.discovery import run_discovery

    with _store(config_path) as (config, sessions):
        context = build_context(config, cancelled=_shutdown)
        report = run_discovery(
            sessions,
            config,
            context=context,
            trigger="scheduler",
            scheduled_for=current_fire_time(),
        )
        log.info("scheduled discovery run %s: %s", report.run_id, report.status)


@_reported("score snapshots")
def scheduled_snapshots(config_path: str) -> None:
    """Job: store each organisation's score for today."""
    with _store(config_path) as (config, sessions):
        _snapshots(sessions, config)


@_reported("intel update")
def scheduled_intel_update(config_path: str) -> None:
    """Job: refresh the vulnerability intelligence (KEV, NVD, EPSS, endoflife.date)."""
    from riskiturva.intel.feeds import FeedError
    from riskiturva.intel.update import FeedFetchError, client_for, update

    with _store(config_path) as (config, sessions):
        now = dt.datetime.now(dt.UTC)
        try:
            results = update(sessions, config.settings, client_for(config.settings), now=now)
        except (FeedError, FeedFetchError, OSError) as error:
            log.error("intel update: %s; the stored data is kept, the next run tries again", error)
            return
        for result in results:
            log.info("intel %s: %s records, data as of %s", result.source, result.records,
                     result.data_as_of.isoformat())  # fmt: skip


@_reported("alerts")
def scheduled_alerts(config_path: str) -> None:
    """Job: deliver due alerts (urgent ones, digests at their hour, retries)."""
    with _store(config_path) as (config, sessions):
        _send_alerts(sessions, config)


def _send_alerts(sessions: sessionmaker[Session], config: Config) -> None:
    from riskiturva.alerts.sender import deliver_due

    report = deliver_due(sessions, config)
    if report.batched or report.sent or report.retrying or report.failed:
        log.info("alerts: %s", report)


@_reported("monthly reports")
def scheduled_reports(config_path: str) -> None:
    """Job: render, archive and e-mail every organisation's report for the previous month."""
    from riskiturva.reports import deliver_monthly

    with _store(config_path) as (config, sessions):
        for delivery in deliver_monthly(sessions, config):
            log.info("monthly report: %s", delivery)


@_reported("prune")
def scheduled_prune(config_path: str) -> None:
    """Job: delete run history older than `settings.retention.run_history_days`."""
    from riskiturva.retention import prune

    with _store(config_path) as (config, sessions):
        log.info("prune: %s", prune(sessions, config.settings.retention, dt.datetime.now(dt.UTC)))


@_reported("vacuum")
def scheduled_vacuum(config_path: str) -> None:
    """Job: compact the SQLite file (VACUUM)."""
    from riskiturva.retention import vacuum

    with _store(config_path) as (_config, sessions):
        log.info("vacuum: %s", vacuum(sessions.kw["bind"]))


def _snapshots(sessions: sessionmaker[Session], config: Config) -> None:
    from riskiturva.history import take_snapshots

    today = dt.datetime.now(ZoneInfo(config.settings.schedules.timezone)).date()
    take_snapshots(sessions, config, today)
