"""Scans by worker processes: tasks on a Dramatiq queue over Redis, results in PostgreSQL.

With `settings.queue.runner = "workers"`, `riskiturva scan` and the scheduler only plan a
run and enqueue its tasks (`enqueue_run`); `riskiturva worker` processes take them, scan
and judge each with the runner's own `perform_task`, and save it (`complete_task`). The
queue carries only (run, key): the task and its results live in the `scan_task` table.

Exactly once per (run, task): a task's completion is one transaction that first locks the
run row, so completions of one run take turns; a task already done (a message delivered
again after its worker saved it but died before acknowledging, or after Redis came back)
is acknowledged unchanged. When a task is its organisation's last, the same transaction
saves and reconciles that organisation (`runner.save_organisation`); when it is the run's
last, it closes the run. A task that fails every retry (it outlasts its time limit, or
its results cannot be saved) is given up: it is saved as failed, so that its organisation
resolves nothing in this run and the run still closes (`give_up`). A worker that stops
mid-task spends none of the task's retries.

Why Dramatiq rather than Celery: a message is acknowledged only after its actor returns
(late acknowledgement is Dramatiq's default; Celery acknowledges on receipt unless
`acks_late` is set), retries with exponential backoff are a middleware it ships on, and its
Redis broker gives a dead worker's unacknowledged messages back once its heartbeat is
older than `heartbeat_timeout` (our visibility timeout); its API is small enough to run
from our own `riskiturva worker` command. Celery's Redis transport emulates acknowledgement
with a visibility timeout that also re-delivers long-running tasks and ETA retries, and
brings kombu and billiard along.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.time_limit import TimeLimitExceeded
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.checks import Registry, load_registry
from riskiturva.collector import Collector, ScanContext, ScanTask, discover_collectors
from riskiturva.config import Config, QueueSettings
from riskiturva.dberrors import write_with_retry
from riskiturva.intel.snapshot import load_snapshot
from riskiturva.models import RunStatus, ScanRun, ScanTaskRow, ScanTaskStatus
from riskiturva.politeness import Politeness
from riskiturva.runner import (
    RunReport,
    TaskFailed,
    TaskResult,
    build_context,
    close_run,
    perform_task,
    plan_run,
    save_organisation,
    software_checks_for,
    start_run,
    tally,
)
from riskiturva.store import ReconcileCounts

log = logging.getLogger(__name__)

ACTOR = "scan_task"
GIVE_UP_ACTOR = "scan_task_given_up"  # takes a task whose retries ran out
PLAN = "plan"  # the key suffix of an organisation's planning row


@dataclass(frozen=True)
class QueuedRun:
    """A run whose tasks are on the queue."""

    run_id: int
    collector: str
    tasks: int
    status: RunStatus  # running; or already closed when it had no task to queue


def make_broker(settings: QueueSettings) -> RedisBroker:
    """The Redis broker with the queue's limits, and the scan actor declared on it."""
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        url=settings.redis_url,
        namespace="riskiturva",
        heartbeat_timeout=int(settings.visibility_timeout_seconds * 1000),
        maintenance_chance=settings.requeue_checks_per_million,
    )
    min_backoff = int(settings.min_backoff_seconds * 1000)
    max_backoff = int(settings.max_backoff_seconds * 1000)
    dramatiq.actor(
        actor_name=ACTOR,
        queue_name=settings.queue_name,
        broker=broker,
        retry_when=functools.partial(_retry, settings.max_retries),
        on_retry_exhausted=GIVE_UP_ACTOR,
        time_limit=int(settings.task_time_limit_seconds * 1000),
        min_backoff=min_backoff,
        max_backoff=max_backoff,
    )(_perform)
    dramatiq.actor(
        actor_name=GIVE_UP_ACTOR,
        queue_name=settings.queue_name,
        broker=broker,
        max_retries=settings.max_retries,
        min_backoff=min_backoff,
        max_backoff=max_backoff,
    )(_give_up)
    return broker


class _ExpectedFailures(logging.Filter):
    """A task stopped at its time limit, or by its worker stopping, is no bug: Dramatiq's
    log says so in one line rather than with a traceback (retries follow as configured)."""

    def filter(self, record: logging.LogRecord) -> bool:
        failure = record.exc_info[1] if record.exc_info else None
        if isinstance(failure, TimeLimitExceeded | InterruptedError):
            said = ": ".join(filter(None, (type(failure).__name__, str(failure))))
            said = said.replace("%", "%%")
            record.msg = f"{record.msg} ({said})"
            record.exc_info, record.exc_text, record.levelno = None, None, logging.WARNING
            record.levelname = "WARNING"
        return True


def _retry(max_retries: int, retries: int, exception: BaseException) -> bool:
    """Try a task again: always after its worker stopped mid-task, else while retries last."""
    return isinstance(exception, InterruptedError) or retries < max_retries


def enqueue_run(
    sessions: sessionmaker[Session],
    config: Config,
    collector: Collector,
    broker: RedisBroker,
    *,
    organisations: Iterable[str] | None = None,
    context: ScanContext | None = None,
    trigger: str = "cli",
    scheduled_for: dt.datetime | None = None,
) -> QueuedRun:
    """Plan one collector's run, store its tasks and put them on the queue.

    A run that cannot be planned, or whose tasks cannot reach the queue, is closed failed
    at once (nothing scanned, nothing resolved); one with no task at all is saved and
    closed here.
    """
    context = context or build_context(config, sessions=sessions)
    opened = start_run(
        sessions,
        config,
        collector,
        context,
        organisations,
        trigger=trigger,
        scheduled_for=scheduled_for,
    )
    run_id = opened.run_id
    budget = config.settings.write_retry_seconds
    try:
        plans = plan_run(
            sessions, config, collector, context, run_id, opened.selected, opened.inventory
        )
    except Exception as exc:
        _fail_run(sessions, run_id, f"could not plan the run: {exc}", context.clock(), budget)
        raise

    def store(session: Session) -> list[str]:
        keys = []
        for plan in plans:
            session.add(
                ScanTaskRow(
                    run_id=run_id,
                    organisation=plan.slug,
                    key=f"{plan.slug}/{PLAN}",
                    status=ScanTaskStatus.DONE,
                    result=TaskResult(observations=list(plan.errors)).to_dict(),
                    finished_at=context.clock(),
                )
            )
            for index, task in enumerate(plan.tasks):
                key = f"{plan.slug}/{index}"
                session.add(
                    ScanTaskRow(
                        run_id=run_id,
                        organisation=plan.slug,
                        key=key,
                        payload=task.to_dict(),
                        status=ScanTaskStatus.QUEUED,
                    )
                )
                keys.append(key)
        session.flush()
        run = _locked_run(session, run_id)
        _finish(session, run, [p.slug for p in plans if not p.tasks], config, context)
        return keys

    keys = write_with_retry(
        sessions, store, what=f"queue the tasks of run {run_id}", budget_s=budget
    )
    actor = broker.get_actor(ACTOR)
    try:
        for key in keys:
            actor.send(run_id, key)
    except Exception as exc:
        message = f"could not put its tasks on the queue ({config.settings.queue.redis_url}): {exc}"
        _fail_run(sessions, run_id, message, context.clock(), budget)
        raise QueueUnavailable(message) from exc
    status = RunStatus.RUNNING if keys else _status(sessions, run_id)
    return QueuedRun(run_id, collector.name, len(keys), status)


class QueueUnavailable(RuntimeError):
    """The queue (Redis) could not be reached to enqueue a run's tasks."""


def complete_task(
    session: Session,
    *,
    run_id: int,
    key: str,
    result: TaskResult,
    config: Config,
    context: ScanContext,
    registry: Registry,
    unjudged: frozenset[str],
) -> bool:
    """Save one task's result, once: False when it was already done (or its run closed)."""
    run = _locked_run(session, run_id)
    row = session.scalars(
        select(ScanTaskRow).where(ScanTaskRow.run_id == run_id, ScanTaskRow.key == key)
    ).one()
    if row.status == ScanTaskStatus.DONE or run.status != RunStatus.RUNNING:
        return False
    row.status = ScanTaskStatus.DONE
    row.result = result.to_dict()
    row.finished_at = context.clock()
    session.flush()
    _finish(session, run, [row.organisation], config, context, registry, unjudged)
    return True


def _locked_run(session: Session, run_id: int) -> ScanRun:
    """The run row, locked until the transaction ends (completions of a run take turns;
    the lock is taken before the tasks are read, so each sees the others' commits)."""
    return session.scalars(
        select(ScanRun)
        .where(ScanRun.id == run_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _finish(
    session: Session,
    run: ScanRun,
    organisations: Sequence[str],
    config: Config,
    context: ScanContext,
    registry: Registry | None = None,
    unjudged: frozenset[str] = frozenset(),
) -> None:
    """Save each of `organisations` whose tasks are all done; close the run when all are."""
    registry = registry or load_registry()
    rows = list(session.scalars(select(ScanTaskRow).where(ScanTaskRow.run_id == run.id)))
    now = context.clock()
    for slug in organisations:
        own = [r for r in rows if r.organisation == slug]
        if any(r.status != ScanTaskStatus.DONE for r in own):
            continue
        results = [TaskResult.from_dict(r.result or {}) for r in own]
        failure = next((r.failure for r in results if r.failure is not None), None)
        counts = save_organisation(
            session,
            config=config,
            registry=registry,
            run_id=run.id,
            collector=run.collector,
            slug=slug,
            results=results,
            failure=failure,
            finished=now,
            unjudged=unjudged,
        )
        plan = next(r for r in own if r.key == f"{slug}/{PLAN}")
        plan.result = {**(plan.result or {}), "counts": asdict(counts)}
    if any(r.status != ScanTaskStatus.DONE for r in rows):
        return
    session.flush()
    _close(session, run, rows, context, now)


def _close(
    session: Session, run: ScanRun, rows: list[ScanTaskRow], context: ScanContext, now: dt.datetime
) -> None:
    report = RunReport(run.id, run.collector, RunStatus.RUNNING)
    collector = discover_collectors().get(run.collector)
    if collector is not None:
        _, unjudged = software_checks_for(collector, context, report)
    results: dict[str, list[TaskResult]] = {}
    for row in sorted(rows, key=lambda r: r.id):
        results.setdefault(row.organisation, []).append(TaskResult.from_dict(row.result or {}))
        if row.key.endswith(f"/{PLAN}"):
            report.counts.add(ReconcileCounts(**(row.result or {}).get("counts", {})))
    failures = {
        slug: next((r.failure for r in found if r.failure is not None), None)
        for slug, found in results.items()
    }
    tally(report, results, None, failures)
    if report.message is None and collector is not None and unjudged:
        report.message = str((report.vulnerability_data or {}).get("reason"))
    report.duration_s = (now - run.started_at).total_seconds()
    close_run(session, report=report, finished=now)
    for row in rows:  # what they held is in the subject states and findings now
        row.result = None


def _fail_run(
    sessions: sessionmaker[Session], run_id: int, message: str, now: dt.datetime, budget: float
) -> None:
    def fail(session: Session) -> None:
        run = _locked_run(session, run_id)
        run.status, run.message, run.finished_at = RunStatus.FAILED, message, now

    write_with_retry(sessions, fail, what=f"record the run {run_id} as failed", budget_s=budget)


def _status(sessions: sessionmaker[Session], run_id: int) -> RunStatus:
    with sessions() as session:
        run = session.get(ScanRun, run_id)
        assert run is not None
        return RunStatus(run.status)


INTEL_REFRESH_S = 3600.0  # a long-lived worker reads the vulnerability data again this often


@dataclass
class _Worker:
    """What one worker process keeps between tasks."""

    config: Config
    sessions: sessionmaker[Session]
    context: ScanContext
    registry: Registry
    collectors: dict[str, Collector]
    intel_read_at: float = field(default_factory=time.monotonic)

    def save(
        self, run_id: int, key: str, result: TaskResult, unjudged: frozenset[str], what: str
    ) -> bool:
        """`complete_task` within the write budget; False when the task was already done."""
        return write_with_retry(
            self.sessions,
            functools.partial(
                complete_task,
                run_id=run_id,
                key=key,
                result=result,
                config=self.config,
                context=self.context,
                registry=self.registry,
                unjudged=unjudged,
            ),
            what=f"{what} task {key}",
            budget_s=self.config.settings.write_retry_seconds,
        )

    def fresh_context(self) -> ScanContext:
        """The scan context, with the vulnerability data `intel update` stored since."""
        if time.monotonic() - self.intel_read_at > INTEL_REFRESH_S:
            self.context.intel = load_snapshot(
                self.sessions, self.config.settings.intel, self.context.clock()
            )
            self.intel_read_at = time.monotonic()
        return self.context


_worker: _Worker | None = None


def _perform(run_id: int, key: str) -> None:
    """The actor: scan one task and save it (raises to have Dramatiq retry it later)."""
    assert _worker is not None, "the scan actor runs only in `riskiturva worker`"
    worker = _worker
    budget = worker.config.settings.write_retry_seconds

    def claim(session: Session) -> dict[str, Any] | None:
        row = session.scalars(
            select(ScanTaskRow).where(ScanTaskRow.run_id == run_id, ScanTaskRow.key == key)
        ).one_or_none()
        run = session.get(ScanRun, run_id)
        if row is None or run is None or row.status == ScanTaskStatus.DONE:
            return None
        if run.status != RunStatus.RUNNING:
            return None
        row.attempts += 1
        log.info("run %s task %s: scanning (attempt %d)", run_id, key, row.attempts)
        return row.payload

    payload = write_with_retry(worker.sessions, claim, what=f"claim task {key}", budget_s=budget)
    if payload is None:
        log.info("run %s task %s: already done, acknowledged", run_id, key)
        return
    task = ScanTask.from_dict(payload)
    collector = worker.collectors[task.collector]
    report = RunReport(run_id, collector.name, RunStatus.RUNNING)
    context = worker.fresh_context()
    software_checks, unjudged = software_checks_for(collector, context, report)
    result = perform_task(
        collector,
        task,
        context,
        worker.registry,
        software_checks,
        stopped=worker.context.cancelled.is_set,
    )
    if isinstance(result.failure, InterruptedError):
        raise InterruptedError(f"run {run_id} task {key}: the worker is stopping; retried later")
    saved = worker.save(
        run_id, key, result, unjudged, f"save the results of the {collector.name} run {run_id}"
    )
    log.info("run %s task %s: %s", run_id, key, "saved" if saved else "already done")


def _give_up(message: dict[str, Any], retried: dict[str, Any]) -> None:
    """The task of a message whose retries ran out, saved as failed: its organisation
    resolves nothing in this run, and the run closes once its other tasks are done."""
    assert _worker is not None, "the scan actor runs only in `riskiturva worker`"
    worker = _worker
    run_id, key = message["args"]
    last = (message.get("options", {}).get("traceback") or "").strip().splitlines()
    error = last[-1] if last else "no error recorded"
    if error.endswith(TimeLimitExceeded.__name__):
        limit = worker.config.settings.queue.task_time_limit_seconds
        error = f"stopped at settings.queue.task_time_limit_seconds ({limit:g} s) every time"
    attempts = int(retried.get("retries", 0)) + 1
    reason = f"gave up after {attempts} attempt(s): {error}"
    log.warning("run %s task %s: %s", run_id, key, reason)
    failed = TaskResult(failure=TaskFailed(reason))
    saved = worker.save(run_id, key, failed, frozenset(), f"record as given up run {run_id}")
    log.info("run %s task %s: %s", run_id, key, "given up" if saved else "already done")


def worker_context(config: Config, sessions: sessionmaker[Session]) -> ScanContext:
    """A worker's scan context: its share of the politeness limits, as one of
    `settings.queue.workers` processes that together hold them."""
    limits = Politeness(config.settings.politeness).share(config.settings.queue.workers)
    return build_context(config, sessions=sessions, politeness=limits)


def serve(config: Config, sessions: sessionmaker[Session], *, threads: int = 1) -> None:
    """Take scan tasks from the queue until SIGTERM or SIGINT (`riskiturva worker`).

    A stop lets the running tasks see the cancellation: they are not saved, and come
    back to the queue for another worker (their message was never acknowledged).
    """
    global _worker
    stop = threading.Event()
    context = worker_context(config, sessions)
    _worker = _Worker(config, sessions, context, load_registry(), discover_collectors())
    broker = make_broker(config.settings.queue)
    logging.getLogger("dramatiq.worker.WorkerThread").addFilter(_ExpectedFailures())
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.queue_prefetch = threads  # no task waits behind a busy worker's running one

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping after the running tasks", signum)
        context.cancelled.set()
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    # What `dramatiq`'s own command tells the middleware: the time limits' watcher starts here.
    broker.emit_after("process_boot")
    worker.start()
    log.info(
        "worker ready: queue %s on %s, %d thread(s)",
        config.settings.queue.queue_name,
        config.settings.queue.redis_url,
        threads,
    )
    try:
        stop.wait()
    finally:
        worker.stop()
        broker.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
