"""One scan run: configuration → targets → collector → rules → reconcile.

The runner expands assets into targets (names resolved through the configured resolver,
every address passed through the scope guard), hands the collector small serialisable
tasks, judges its observations with the collector's rules and the check registry, and
reconciles the findings. Only subjects scanned completely can resolve findings, and an
organisation whose tasks failed or did not all run (the run failed or was interrupted)
resolves nothing.

The tasks of every organisation run on one bounded pool per collector; each organisation
is saved (`save_organisation`) as its last task ends. Worker processes on a queue
(riskiturva/workers.py) use the same planning, `perform_task` and `save_organisation`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import functools
import multiprocessing
import os
import signal
import socket
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.alerts.outbox import record_run
from riskiturva.checks import Registry, load_registry
from riskiturva.collector import (
    ChangeDraft,
    Collector,
    ErrorKind,
    IdentifiesSoftware,
    ScanContext,
    ScanTask,
    SubjectObservation,
    SubjectStatus,
    Target,
    TargetError,
    noticed_changes,
    to_jsonable,
)
from riskiturva.config import Asset, AssetKind, Config, Organisation
from riskiturva.dberrors import StoreWriteError, write_with_retry
from riskiturva.intel import rules as software_rules
from riskiturva.intel.snapshot import load_snapshot
from riskiturva.inventory import active_assets
from riskiturva.models import ChangeEvent, RunStatus, ScanError, ScanRun, SubjectState
from riskiturva.models import Organisation as OrganisationRow
from riskiturva.politeness import Politeness, shared_politeness
from riskiturva.resolver import DnsFailure, Resolver
from riskiturva.scope import ScopeGuard
from riskiturva.store import ObservedFinding, ReconcileCounts, reconcile, sync_config

BATCH_SIZE = 50
UNSAVED_RECORD_BUDGET_S = 30.0  # marking a run failed is one row: do not wait as long again


class UnknownCheckError(RuntimeError):
    """A collector's rule emitted a check id that is not in the registry."""


# Error kinds that mean "not checked on purpose" rather than "could not be checked".
SKIPPED_KINDS = frozenset({ErrorKind.OUT_OF_SCOPE, ErrorKind.CANCELLED})


class Outcome(enum.StrEnum):
    """What became of one target (one subject) of a run; every target has exactly one."""

    OK = "ok"  # scanned completely: findings not seen on it are resolved
    PARTIAL = "partial"  # some checks ran: findings seen are recorded, none resolved
    FAILED = "failed"  # nothing could be checked: timeout, refusal, DNS failure, …
    SKIPPED = "skipped"  # not checked on purpose: outside the scope, or cancelled


@dataclass(frozen=True)
class RunError:
    """A target that failed, was skipped, or was checked only in part, and why."""

    organisation: str
    subject: str
    asset: str
    outcome: Outcome
    kind: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {
            "organisation": self.organisation,
            "subject": self.subject,
            "asset": self.asset,
            "outcome": str(self.outcome),
            "kind": self.kind,
            "message": self.message,
        }


@dataclass
class RunReport:
    """What one run did: shown by the CLI and stored on the scan run row.

    Counted per target the run reports on (a subject: `www.kunta.fi:443`, `kunta.fi`,
    `192.0.2.7`): `targets == ok + partial + failed + skipped`, and `errors_by_kind` counts
    the failed and skipped ones by kind. `errors` names each of those, and each partial
    target whose collector said why.
    """

    run_id: int
    collector: str
    status: RunStatus
    ok: int = 0
    partial: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[RunError] = field(default_factory=list)
    errors_by_kind: Counter[str] = field(default_factory=Counter)
    counts: ReconcileCounts = field(default_factory=ReconcileCounts)
    duration_s: float = 0.0
    message: str | None = None
    store_error: StoreWriteError | None = None  # set when the results could not be saved
    # For collectors that identify software: whether the vulnerability rules could judge it.
    vulnerability_data: dict[str, object] | None = None

    @property
    def targets(self) -> int:
        return self.ok + self.partial + self.failed + self.skipped

    @property
    def checked(self) -> int:
        """Targets on which at least some checks ran."""
        return self.ok + self.partial

    def count(self, organisation: str, observation: SubjectObservation) -> None:
        """Add one observation to the tally (and to `errors` when it carries one)."""
        outcome = _outcome(observation)
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)
        if observation.error is not None:
            if outcome is not Outcome.PARTIAL:
                self.errors_by_kind[observation.error.kind] += 1
            self.errors.append(
                RunError(
                    organisation,
                    observation.subject,
                    observation.asset,
                    outcome,
                    str(observation.error.kind),
                    observation.error.message,
                )
            )

    def as_dict(self) -> dict[str, object]:
        """The counters (stored on the scan run row; JSON output adds `errors`)."""
        return {
            "vulnerability_data": self.vulnerability_data,
            "targets": self.targets,
            "ok": self.ok,
            "partial": self.partial,
            "failed": self.failed,
            "skipped": self.skipped,
            "errors_by_kind": dict(self.errors_by_kind),
            "opened": self.counts.opened,
            "still_open": self.counts.seen,
            "resolved": self.counts.resolved,
            "reopened": self.counts.reopened,
            "expired": self.counts.expired,
            "duration_s": round(self.duration_s, 3),
        }


def _outcome(observation: SubjectObservation) -> Outcome:
    if observation.status is SubjectStatus.OK:
        return Outcome.OK
    if observation.status is SubjectStatus.PARTIAL:
        return Outcome.PARTIAL
    if observation.error is not None and observation.error.kind in SKIPPED_KINDS:
        return Outcome.SKIPPED
    return Outcome.FAILED


ProgressCallback = Callable[[str, int, int], None]  # (collector, done, total)


def build_context(
    config: Config, *, sessions: sessionmaker[Session] | None = None, **overrides: object
) -> ScanContext:
    """The scan context; with `sessions`, it carries the vulnerability intelligence too."""
    context = ScanContext(
        settings=config.settings,
        resolver=Resolver(config.settings.resolver),
        scope=ScopeGuard(config.organisations),
        **overrides,  # type: ignore[arg-type]
    )
    if sessions is not None and context.intel is None:
        context.intel = load_snapshot(sessions, config.settings.intel, context.clock())
    return context


def expand_targets(
    organisation: Organisation,
    collector: Collector,
    context: ScanContext,
    assets: Sequence[Asset] | None = None,
) -> tuple[list[Target], list[SubjectObservation]]:
    """Assets of the kinds the collector takes → in-scope targets, plus errors as observations.

    `assets` is the organisation's active inventory (default: the configuration's assets).
    A name outside the declared scope domains is not resolved; an address outside the
    declared networks is not scanned: both are recorded as `out_of_scope`.
    """
    targets: list[Target] = []
    errors: list[SubjectObservation] = []
    for asset in organisation.assets if assets is None else assets:
        if asset.kind not in collector.asset_kinds:
            continue
        name = asset.host_name
        if name is not None and not context.scope.allows_name(organisation.slug, name):
            errors.append(
                _error(name, asset.value, ErrorKind.OUT_OF_SCOPE, "outside the declared domains")
            )
            continue
        url = asset.value if asset.kind is AssetKind.URL else None
        if name is None or asset.kind not in collector.address_kinds:
            address = None if name is not None else asset.value
            if address is not None and not context.scope.allows_address(organisation.slug, address):
                errors.append(
                    _error(
                        asset.value,
                        asset.value,
                        ErrorKind.OUT_OF_SCOPE,
                        "outside the declared networks",
                    )
                )
                continue
            targets.append(
                Target(
                    asset.value,
                    asset.kind,
                    name=name,
                    address=address,
                    url=url,
                    dkim_selectors=asset.dkim_selectors,
                )
            )
            continue
        try:
            addresses = context.resolver.addresses(name)
        except DnsFailure as exc:
            errors.append(_error(name, asset.value, ErrorKind.DNS_FAILURE, str(exc)))
            continue
        if not addresses and asset.kind is AssetKind.DOMAIN:
            continue  # an apex without A/AAAA records has no endpoint to scan: not an error
        if not addresses:
            errors.append(
                _error(name, asset.value, ErrorKind.DNS_FAILURE, "name has no A or AAAA records")
            )
            continue
        for address in addresses:
            if context.scope.allows_address(organisation.slug, address):
                targets.append(Target(asset.value, asset.kind, name=name, address=address, url=url))
            else:
                errors.append(
                    _error(
                        name,
                        asset.value,
                        ErrorKind.OUT_OF_SCOPE,
                        f"{name} resolves to {address}, outside the declared networks",
                    )
                )
    return targets, errors


def _error(subject: str, asset: str, kind: ErrorKind, message: str) -> SubjectObservation:
    return SubjectObservation(subject, asset, SubjectStatus.ERROR, error=TargetError(kind, message))


def make_tasks(
    run_id: int,
    organisation: str,
    collector: str,
    targets: Sequence[Target],
    previous: dict[str, object],
    size: int = BATCH_SIZE,
) -> Iterator[ScanTask]:
    """Batches of about `size` targets; targets of one name always share a batch."""
    batch: list[Target] = []
    for target in sorted(targets, key=_batch_key):
        if len(batch) >= size and _batch_key(batch[-1]) != _batch_key(target):
            yield ScanTask(run_id, organisation, collector, tuple(batch), previous)
            batch = []
        batch.append(target)
    if batch:
        yield ScanTask(run_id, organisation, collector, tuple(batch), previous)


def _batch_key(target: Target) -> str:
    return target.name or target.address or target.asset


def judge(
    collector: Collector,
    observation: SubjectObservation,
    registry: Registry,
    context: ScanContext | None = None,
    software_checks: frozenset[str] = frozenset(),
) -> list[ObservedFinding]:
    """The collector's rules, and the vulnerability rules for the software it identified
    (`software_checks`: those whose data is fresh), checked against the registry."""
    drafts = collector.judge(observation)
    if software_checks and context is not None and context.intel is not None:
        assert isinstance(collector, IdentifiesSoftware)
        drafts += software_rules.judge_software(
            collector.software(observation), context.intel, software_checks
        )
    observed = []
    for draft in drafts:
        check = registry.get(draft.check_id)
        if check is None:
            raise UnknownCheckError(
                f"{collector.name} emitted unregistered check {draft.check_id!r}"
            )
        observed.append(
            ObservedFinding(
                check_id=check.id,
                subject=draft.subject or observation.subject,
                target=observation.subject,
                asset=observation.asset,
                category=str(check.category),
                severity=str(check.severity),
                evidence=to_jsonable(draft.evidence),
                reproduce=draft.reproduce,
            )
        )
    return observed


@dataclass
class TaskResult:
    """What one task gathered and its rules judged, ready to be saved.

    `failure` is what stopped the task (the collector raised, or the scan was cancelled):
    its organisation then resolves nothing in this run. The dict form is what a worker
    stores in `scan_tasks` (facts in their JSON form, as subject states keep them).
    """

    observations: list[SubjectObservation] = field(default_factory=list)
    findings: list[ObservedFinding] = field(default_factory=list)
    changes: list[ChangeDraft] = field(default_factory=list)
    failure: BaseException | None = None

    def to_dict(self) -> dict[str, Any]:
        failure = self.failure
        return {
            "observations": [
                {
                    "subject": o.subject,
                    "asset": o.asset,
                    "status": str(o.status),
                    "facts": to_jsonable(o.facts),
                    "error": None
                    if o.error is None
                    else {"kind": str(o.error.kind), "message": o.error.message},
                }
                for o in self.observations
            ],
            "findings": [to_jsonable(f) for f in self.findings],
            "changes": [to_jsonable(c) for c in self.changes],
            "failure": None
            if failure is None
            else {
                "interrupted": isinstance(failure, InterruptedError),
                "message": _failure_text(failure),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskResult:
        failure = data.get("failure")
        return cls(
            observations=[
                SubjectObservation(
                    o["subject"],
                    o["asset"],
                    SubjectStatus(o["status"]),
                    o["facts"],
                    None
                    if o["error"] is None
                    else TargetError(ErrorKind(o["error"]["kind"]), o["error"]["message"]),
                )
                for o in data["observations"]
            ],
            findings=[ObservedFinding(**f) for f in data["findings"]],
            changes=[ChangeDraft(**c) for c in data["changes"]],
            failure=None
            if failure is None
            else (InterruptedError if failure["interrupted"] else TaskFailed)(failure["message"]),
        )


class TaskFailed(RuntimeError):
    """A task's failure as a worker stored it (the original exception stayed there)."""


def _failure_text(failure: BaseException) -> str:
    if isinstance(failure, TaskFailed):
        return str(failure)
    return "".join(traceback.format_exception_only(failure)).strip()


@dataclass
class OrganisationPlan:
    """One organisation's share of a run: the errors found while planning, and its tasks."""

    slug: str
    errors: list[SubjectObservation]
    tasks: list[ScanTask]


@dataclass(frozen=True)
class StartedRun:
    """A run row just opened: its organisations and their active inventory."""

    run_id: int
    selected: list[Organisation]
    inventory: dict[str, list[Asset]]
    started: dt.datetime


def start_run(
    sessions: sessionmaker[Session],
    config: Config,
    collector: Collector,
    context: ScanContext,
    organisations: Iterable[str] | None,
    *,
    trigger: str,
    scheduled_for: dt.datetime | None,
) -> StartedRun:
    """Open the run row for the selected organisations (all by default), after syncing
    the configuration."""
    chosen = None if organisations is None else set(organisations)
    selected = [o for o in config.organisations if chosen is None or o.slug in chosen]
    started = context.clock()

    def start(session: Session) -> tuple[int, dict[str, list[Asset]]]:
        unsaved_outcomes.write_pending(session)
        sync_config(session, config, now=started)
        inventory = {o.slug: active_assets(session, o.slug) for o in selected}
        run = ScanRun(
            collector=collector.name,
            organisations=[o.slug for o in selected],
            trigger=trigger,
            scheduled_for=scheduled_for,
            status=RunStatus.RUNNING,
            started_at=started,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        session.add(run)
        session.flush()
        return run.id, inventory

    run_id, inventory = write_with_retry(
        sessions,
        start,
        what=f"start a {collector.name} run",
        budget_s=config.settings.write_retry_seconds,
    )
    return StartedRun(run_id, selected, inventory, started)


def plan_run(
    sessions: sessionmaker[Session],
    config: Config,
    collector: Collector,
    context: ScanContext,
    run_id: int,
    selected: Sequence[Organisation],
    inventory: dict[str, list[Asset]],
) -> list[OrganisationPlan]:
    """Every organisation's targets (resolved, scope-checked) in tasks, with the previous
    observations each task needs for change detection."""
    plans = []
    for organisation in selected:
        targets, errors = expand_targets(
            organisation, collector, context, inventory[organisation.slug]
        )
        previous = write_with_retry(
            sessions,
            functools.partial(
                _previous_observations, organisation=organisation.slug, collector=collector.name
            ),
            what=f"read the previous {collector.name} observations",
            budget_s=config.settings.write_retry_seconds,
        )
        size = getattr(collector, "batch_size", BATCH_SIZE)
        tasks = list(make_tasks(run_id, organisation.slug, collector.name, targets, previous, size))
        plans.append(OrganisationPlan(organisation.slug, errors, tasks))
    return plans


def gather(
    collector: Collector,
    task: ScanTask,
    context: ScanContext,
    *,
    stopped: Callable[[], bool] = lambda: False,
    on_subject: Callable[[], object] = lambda: None,
) -> tuple[list[SubjectObservation], BaseException | None]:
    """The collector's observations of one task, and what stopped it early (if anything)."""
    observations: list[SubjectObservation] = []
    try:
        for observation in collector.collect(task, context):
            if stopped():
                raise InterruptedError("scan cancelled")
            observations.append(observation)
            on_subject()
        if stopped():  # a collector may stop early without an observation
            raise InterruptedError("scan cancelled")
    except Exception as exc:  # the task's failure: its organisation resolves nothing
        return observations, exc
    return observations, None


def assess(
    collector: Collector,
    task: ScanTask,
    observations: list[SubjectObservation],
    failure: BaseException | None,
    registry: Registry,
    context: ScanContext,
    software_checks: frozenset[str],
) -> TaskResult:
    """Judge one task's observations and notice what changed since the previous scan."""
    result = TaskResult(failure=failure)
    try:
        for observation in observations:
            result.observations.append(observation)
            if observation.status is not SubjectStatus.ERROR:
                result.findings.extend(
                    judge(collector, observation, registry, context, software_checks)
                )
            if observation.status is SubjectStatus.OK:
                before = task.previous.get(observation.subject)
                result.changes.extend(noticed_changes(collector, before, observation))
    except Exception as exc:  # an unregistered check id: a bug that fails the organisation
        result.failure = result.failure or exc
    return result


def perform_task(
    collector: Collector,
    task: ScanTask,
    context: ScanContext,
    registry: Registry,
    software_checks: frozenset[str],
    *,
    stopped: Callable[[], bool] = lambda: False,
    on_subject: Callable[[], object] = lambda: None,
) -> TaskResult:
    """One task, gathered and judged here (a thread of the runner, or a worker)."""
    observations, failure = gather(collector, task, context, stopped=stopped, on_subject=on_subject)
    return assess(collector, task, observations, failure, registry, context, software_checks)


def run_collector(
    sessions: sessionmaker[Session],
    config: Config,
    collector: Collector,
    *,
    organisations: Iterable[str] | None = None,
    context: ScanContext | None = None,
    trigger: str = "cli",
    scheduled_for: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
    registry: Registry | None = None,
) -> RunReport:
    """Run one collector over the selected organisations and reconcile its findings.

    Every organisation's tasks go onto one bounded pool (`settings.concurrency.tasks` at
    once: threads, or processes for a collector whose work holds the interpreter lock);
    each organisation is saved and reconciled as soon as its last task ends, so a slow or
    failing organisation holds no other back, and resolves nothing itself.

    Raises `StoreWriteError` only when the run could not even be started in the database;
    a run whose results could not be saved is returned failed, with `store_error` set.
    """
    registry = registry or load_registry()
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
    run = _InProcessRun(sessions, config, collector, context, registry, opened.run_id, progress)
    return run.execute(opened.selected, opened.inventory, opened.started)


class _InProcessRun:
    """One collector's run in this process: tasks on a pool, organisations saved as they
    complete, the run closed at the end."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: Config,
        collector: Collector,
        context: ScanContext,
        registry: Registry,
        run_id: int,
        progress: ProgressCallback | None,
    ) -> None:
        self.sessions, self.config, self.collector = sessions, config, collector
        self.context, self.registry = context, registry
        self.report = RunReport(run_id, collector.name, RunStatus.RUNNING)
        self.software_checks, self.unjudged = software_checks_for(collector, context, self.report)
        self.bar = _Bar(collector.name, progress)
        self.results: dict[str, list[TaskResult]] = {}
        self.pending: dict[str, int] = {}
        self.saved: set[str] = set()
        self.failure: BaseException | None = None  # what failed the run as a whole
        self.stop = threading.Event()  # no further tasks: cancelled, or the store gave up

    def stopped(self) -> bool:
        return self.stop.is_set() or self.context.cancelled.is_set()

    def execute(
        self,
        selected: Sequence[Organisation],
        inventory: dict[str, list[Asset]],
        started: dt.datetime,
    ) -> RunReport:
        report = self.report
        try:
            plans = plan_run(
                self.sessions,
                self.config,
                self.collector,
                self.context,
                report.run_id,
                selected,
                inventory,
            )
            for plan in plans:
                self.results[plan.slug] = [TaskResult(observations=list(plan.errors))]
                self.pending[plan.slug] = len(plan.tasks)
                self.bar.total += sum(len(t.targets) for t in plan.tasks) + len(plan.errors)
                self.bar.done += len(plan.errors)
            self.bar.show()
            for plan in plans:
                if not plan.tasks and not self.stopped():
                    self._save(plan.slug)
            self._run_tasks([task for plan in plans for task in plan.tasks])
            if self.context.cancelled.is_set():
                raise InterruptedError("scan cancelled")
        except BaseException as exc:  # recorded on the run; an interrupt is re-raised below
            self.failure = self.failure or exc
        for slug in self.results:  # interrupted or failed part-way: saved, resolving nothing
            if slug not in self.saved and report.store_error is None:
                self._save(slug)
        finished = self.context.clock()
        report.duration_s = (finished - started).total_seconds()
        self._close(finished)
        self.bar.finish()
        if isinstance(self.failure, KeyboardInterrupt | SystemExit):
            raise self.failure
        return report

    def _run_tasks(self, tasks: list[ScanTask]) -> None:
        if not tasks:
            return
        slots = _task_pool_size(self.context, len(tasks))
        remote = getattr(self.collector, "holds_interpreter_lock", False) and slots > 1
        with contextlib.ExitStack() as stack:
            if remote:  # the pool's processes hold one set of politeness limits together
                limits = stack.enter_context(shared_politeness(self.config.settings.politeness))
                pool: Executor = ProcessPoolExecutor(
                    slots,
                    mp_context=multiprocessing.get_context("forkserver"),
                    initializer=_start_remote,
                    initargs=(self.config, type(self.collector), self.context.clock, limits),
                )
            else:
                pool = ThreadPoolExecutor(slots, thread_name_prefix=f"{self.collector.name}-task")
            self._run_on(stack.enter_context(pool), tasks, remote)

    def _run_on(self, pool: Executor, tasks: list[ScanTask], remote: bool) -> None:
        """Every task on `pool`; each organisation saved as its last task completes."""
        futures: dict[Future[Any], ScanTask] = {
            pool.submit(_gather_remote, task) if remote else pool.submit(self._task, task): task
            for task in tasks
        }
        try:
            for future in as_completed(futures):
                if future.cancelled():  # never ran: its organisation resolves nothing
                    continue
                task = futures[future]
                result = self._assess_remote(task, *future.result()) if remote else future.result()
                self.results[task.organisation].append(result)
                self.pending[task.organisation] -= 1
                if self.pending[task.organisation] == 0 and not self.stopped():
                    self._save(task.organisation)
                if self.stopped():
                    for other in futures:
                        other.cancel()
        except BaseException:
            self.stop.set()
            for other in futures:
                other.cancel()
            raise

    def _task(self, task: ScanTask) -> TaskResult:
        if self.stopped():
            return TaskResult(failure=InterruptedError("scan cancelled"))
        share = self.bar.share(len(task.targets))
        result = perform_task(
            self.collector,
            task,
            self.context,
            self.registry,
            self.software_checks,
            stopped=self.stopped,
            on_subject=share.advance,
        )
        share.end()
        return result

    def _assess_remote(
        self, task: ScanTask, observations: list[SubjectObservation], failure: str | None
    ) -> TaskResult:
        """A task gathered in a worker process, judged here."""
        self.bar.share(len(task.targets)).end()
        return assess(
            self.collector,
            task,
            observations,
            None if failure is None else TaskFailed(failure),
            self.registry,
            self.context,
            self.software_checks,
        )

    def _organisation_failure(self, slug: str) -> BaseException | None:
        if self.pending.get(slug, 0) > 0:  # some of its tasks never ran
            return self.failure or InterruptedError("scan cancelled")
        own = next((r.failure for r in self.results[slug] if r.failure is not None), None)
        return own or self.failure

    def _save(self, slug: str) -> None:
        self.saved.add(slug)
        failure = self._organisation_failure(slug)
        finished = self.context.clock()
        try:
            counts = write_with_retry(
                self.sessions,
                functools.partial(
                    save_organisation,
                    config=self.config,
                    registry=self.registry,
                    run_id=self.report.run_id,
                    collector=self.collector.name,
                    slug=slug,
                    results=self.results[slug],
                    failure=failure,
                    finished=finished,
                    unjudged=self.unjudged,
                ),
                what=f"save the results of the {self.collector.name} run {self.report.run_id}"
                f" for {slug}",
                budget_s=self.config.settings.write_retry_seconds,
            )
        except StoreWriteError as error:
            self.report.store_error = self.report.store_error or error
            self.stop.set()  # the store gives up: stop scanning what cannot be saved
        else:
            self.report.counts.add(counts)

    def _close(self, finished: dt.datetime) -> None:
        report = self.report
        failures = {slug: self._organisation_failure(slug) for slug in self.results}
        tally(report, self.results, self.failure, failures)
        if report.message is None and self.unjudged:
            report.message = str((report.vulnerability_data or {}).get("reason"))
        budget = self.config.settings.write_retry_seconds
        if report.store_error is None:
            try:
                write_with_retry(
                    self.sessions,
                    functools.partial(close_run, report=report, finished=finished),
                    what=f"close the {report.collector} run {report.run_id}",
                    budget_s=budget,
                )
                return
            except StoreWriteError as error:
                report.store_error = error
        _record_unsaved_run(self.sessions, report, report.store_error, finished, budget)


def _task_pool_size(context: ScanContext, tasks: int) -> int:
    slots: int = context.settings.concurrency.tasks
    return max(1, min(tasks, slots))


# A worker process of a collector that holds the interpreter lock (TLS handshakes): its
# collector and scan context, built once per process.
_remote: tuple[Collector, ScanContext] | None = None


def _start_remote(
    config: Config,
    collector_class: type[Collector],
    clock: Callable[[], dt.datetime],
    limits: Politeness,
) -> None:
    # The parent decides when to stop (SIGTERM, Ctrl-C): it lets running tasks end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    global _remote
    _remote = (collector_class(), build_context(config, clock=clock, politeness=limits))


def _gather_remote(task: ScanTask) -> tuple[list[SubjectObservation], str | None]:
    assert _remote is not None
    collector, context = _remote
    observations, failure = gather(collector, task, context)
    return observations, None if failure is None else _failure_text(failure)


def tally(
    report: RunReport,
    results: dict[str, list[TaskResult]],
    failure: BaseException | None,
    failures: dict[str, BaseException | None],
) -> None:
    """The run's outcome counts, status and message, from its observations alone (the
    run's own `failure`, else the first organisation's, decides a failed run's message)."""
    for slug, organisation_results in results.items():
        for result in organisation_results:
            for observation in result.observations:
                report.count(slug, observation)
    failed = {slug: f for slug, f in failures.items() if f is not None}
    interrupted = next((f for f in failed.values() if isinstance(f, InterruptedError)), None)
    first = failure or interrupted or next(iter(failed.values()), None)
    report.status, report.message = _verdict(report, first)
    if failure is None and interrupted is None and failed:
        slug = next(iter(failed))
        others = f" (and {len(failed) - 1} other organisations)" if len(failed) > 1 else ""
        report.message = f"{slug}{others}: {report.message}"


def save_organisation(
    session: Session,
    *,
    config: Config,
    registry: Registry,
    run_id: int,
    collector: str,
    slug: str,
    results: Sequence[TaskResult],
    failure: BaseException | None,
    finished: dt.datetime,
    unjudged: frozenset[str] = frozenset(),
) -> ReconcileCounts:
    """Save one organisation's observations and the changes its collector noticed (change
    events), reconcile its findings and record its alerts, in `session`'s transaction.

    Writers of the same organisation take turns (the run row's update takes SQLite's write
    lock before anything is read; PostgreSQL locks the run and organisation rows), so two
    runs never both insert a finding. An organisation with a `failure` (a task failed or
    never ran) resolves nothing; findings of `unjudged` checks (vulnerability data out of
    date) are left as they were.
    """
    session.execute(
        update(ScanRun).where(ScanRun.id == run_id).values(finished_at=ScanRun.finished_at)
    )
    org_row = session.scalars(
        select(OrganisationRow).where(OrganisationRow.slug == slug).with_for_update()
    ).one()
    run = session.get(ScanRun, run_id)
    assert run is not None
    observations = [o for result in results for o in result.observations]
    states = {
        state.subject: state
        for state in session.scalars(
            select(SubjectState).filter_by(organisation_id=org_row.id, collector=collector)
        )
    }
    for observation in observations:
        _record_observation(session, run, org_row.id, states, observation, finished)
    for change in (c for result in results for c in result.changes):
        session.add(
            ChangeEvent(
                organisation_id=org_row.id,
                kind=change.kind,
                subject=change.subject,
                run_id=run_id,
                at=finished,
                detail=to_jsonable(change.detail),
            )
        )
    counts = reconcile(
        session,
        organisation=org_row,
        collector=collector,
        run_id=run_id,
        observed=[f for result in results for f in result.findings],
        # A failed or interrupted organisation resolves nothing.
        scanned_ok=_subjects_ok(observations) if failure is None else set(),
        now=finished,
        unjudged=unjudged,
    )
    # The alerts' outbox: findings and their alerts are written together or not at all.
    record_run(
        session,
        config,
        organisation=org_row,
        collector=collector,
        run_id=run_id,
        failure=failure,
        observations=observations,
        now=finished,
        registry=registry,
    )
    return counts


def close_run(session: Session, *, report: RunReport, finished: dt.datetime) -> None:
    """Write the run's outcome on its row."""
    run = session.get(ScanRun, report.run_id)
    assert run is not None
    _close_run(run, report, finished)


def _close_run(run: ScanRun, report: RunReport, finished: dt.datetime) -> None:
    run.status, run.finished_at = report.status, finished
    run.counts, run.message = report.as_dict(), report.message


def _record_unsaved_run(
    sessions: sessionmaker[Session],
    report: RunReport,
    error: StoreWriteError,
    finished: dt.datetime,
    budget_s: float,
) -> None:
    """The results could not be saved: mark the run failed with the cause (or, if even
    that cannot be written, keep the outcome for this process's next run to write)."""
    report.status, report.message = RunStatus.FAILED, str(error)
    report.store_error = error

    def close(session: Session) -> None:
        run = session.get(ScanRun, report.run_id)
        assert run is not None
        _close_run(run, report, finished)

    try:
        write_with_retry(
            sessions,
            close,
            what=f"record the {report.collector} run {report.run_id} as failed",
            budget_s=min(budget_s, UNSAVED_RECORD_BUDGET_S),
        )
    except StoreWriteError:
        unsaved_outcomes.keep(report, finished)
        error.recorded = (
            f"The run {report.run_id} could not be marked failed either: it is closed later "
            "(by the scheduler's next run, or as interrupted by the next riskiturva command)."
        )
    else:
        error.recorded = f"The run {report.run_id} is recorded as failed."


class _Outcome(Protocol):
    """What a run ended with: a scan's `RunReport` or discovery's report."""

    run_id: int
    status: RunStatus
    message: str | None

    def as_dict(self) -> dict[str, Any]: ...


class _UnsavedOutcomes:
    """Outcomes of this process's runs (scans and discovery) that could not be written when
    they ended.

    A long-lived process (the scheduler) writes them with its next run, so a run does not
    stay `running` while the process lives; when the process ends first, the next command
    marks the run interrupted (`store.mark_interrupted_runs`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[str, str | None, dt.datetime, dict[str, object]]] = {}

    def keep(self, report: _Outcome, finished: dt.datetime) -> None:
        with self._lock:
            self._pending[report.run_id] = (
                str(report.status),
                report.message,
                finished,
                report.as_dict(),
            )

    def write_pending(self, session: Session) -> None:
        """Write the kept outcomes in `session`'s transaction (forgotten once it commits)."""
        with self._lock:
            pending = dict(self._pending)
        if not pending:
            return
        for run_id, (status, message, finished, counts) in pending.items():
            session.execute(
                update(ScanRun)
                .where(ScanRun.id == run_id, ScanRun.status == RunStatus.RUNNING)
                .values(status=status, message=message, finished_at=finished, counts=counts)
            )

        @event.listens_for(session, "after_commit", once=True)
        def _forget(_session: Session) -> None:
            with self._lock:
                for run_id in pending:
                    self._pending.pop(run_id, None)


unsaved_outcomes = _UnsavedOutcomes()


def _subjects_ok(observations: Iterable[SubjectObservation]) -> set[str]:
    return {o.subject for o in observations if o.status is SubjectStatus.OK}


def _verdict(report: RunReport, failure: BaseException | None) -> tuple[RunStatus, str | None]:
    """The run's status and message: a run that checked none of its targets has failed."""
    if isinstance(failure, InterruptedError | KeyboardInterrupt):
        return RunStatus.INTERRUPTED, "interrupted before the run finished; nothing was resolved"
    if isinstance(failure, StoreWriteError):
        return RunStatus.FAILED, f"{failure}; nothing was resolved"
    if failure is not None:
        return RunStatus.FAILED, "".join(traceback.format_exception_only(failure)).strip()
    if report.targets and not report.checked:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(report.errors_by_kind.items()))
        return RunStatus.FAILED, f"nothing could be checked: {report.targets} targets ({kinds})"
    if report.errors_by_kind or report.partial:
        return RunStatus.PARTIAL, None
    return RunStatus.OK, None


@dataclass
class _Bar:
    """One collector's progress, in targets: ends at its total whatever became of them.

    Tasks run at once, each within its share (its number of targets): a collector reports
    on subjects, not targets (a mail domain becomes its MX hosts, a network its hosts), so
    the bar moves per subject within the task's share and lands on its end when it ends.
    """

    collector: str
    callback: ProgressCallback | None
    total: int = 0
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def share(self, size: int) -> _Share:
        return _Share(self, size)

    def move(self, steps: int) -> None:
        with self.lock:
            self.done = min(self.done + steps, self.total)
            self.show()

    def show(self) -> None:
        if self.callback is not None and self.total:
            self.callback(self.collector, self.done, self.total)

    def finish(self) -> None:
        with self.lock:
            self.done = self.total
            self.show()


@dataclass
class _Share:
    """One task's part of the bar."""

    bar: _Bar
    size: int
    moved: int = 0

    def advance(self) -> None:
        step = 1 if self.moved < self.size else 0
        self.moved += step
        self.bar.move(step)

    def end(self) -> None:
        self.bar.move(self.size - self.moved)
        self.moved = self.size


def software_checks_for(
    collector: Collector, context: ScanContext, report: RunReport
) -> tuple[frozenset[str], frozenset[str]]:
    """(checks to judge, checks left unjudged) for the software a collector identifies.

    Checks whose vulnerability data is missing or out of date are not judged: their open
    findings stay as they were, and the run says why ("vulnerability data out of date").
    """
    if not isinstance(collector, IdentifiesSoftware):
        return frozenset(), frozenset()
    refused = software_rules.unavailable_checks(context.intel)
    intel = context.intel
    as_of = (
        {str(s): d.date().isoformat() for s, d in intel.freshness.as_of.items()} if intel else {}
    )
    status = "ok"
    if refused:
        status = (
            "missing"
            if intel is None or all("missing" in r for r in refused.values())
            else "out_of_date"
        )
    reason = None
    if refused:
        reasons = sorted(set(refused.values()))
        label = (
            "vulnerability data missing"
            if status == "missing"
            else "vulnerability data out of date"
        )
        reason = (
            f"{label}: {'; '.join(reasons)}. Software was identified but not judged for "
            f"{', '.join(sorted(refused))}; run `riskiturva intel update`"
        )
    report.vulnerability_data = {
        "status": status,
        "as_of": as_of,
        "max_age_days": intel.freshness.max_age_days if intel else None,
        "not_judged": sorted(refused),
        "reason": reason,
    }
    return software_rules.CHECK_IDS - refused.keys(), frozenset(refused)


def run_scan(
    sessions: sessionmaker[Session],
    config: Config,
    collectors: Sequence[Collector],
    *,
    organisations: Iterable[str] | None = None,
    context: ScanContext | None = None,
    trigger: str = "cli",
    progress: ProgressCallback | None = None,
) -> list[RunReport]:
    """Run several collectors at once (one thread each, one scan run each).

    Each collector keeps its own limits on targets in flight (`settings.concurrency`); a
    cancelled context (SIGTERM) makes every run stop after its current target, recorded as
    interrupted, resolving nothing.
    """
    context = context or build_context(config, sessions=sessions)
    selected = list(organisations) if organisations is not None else None
    # Create the organisation and asset rows once, before the runs race to insert them.
    write_with_retry(
        sessions,
        lambda session: sync_config(session, config),
        what="store the configuration's organisations",
        budget_s=config.settings.write_retry_seconds,
    )
    with ThreadPoolExecutor(max_workers=max(1, len(collectors)), thread_name_prefix="scan") as pool:
        futures = [
            pool.submit(
                run_collector,
                sessions,
                config,
                collector,
                organisations=selected,
                context=context,
                trigger=trigger,
                progress=progress,
            )
            for collector in collectors
        ]
        return [future.result() for future in futures]


def _previous_observations(
    session: Session, organisation: str, collector: str
) -> dict[str, object]:
    rows = session.execute(
        select(SubjectState.subject, SubjectState.last_observation)
        .join(OrganisationRow, OrganisationRow.id == SubjectState.organisation_id)
        .where(OrganisationRow.slug == organisation, SubjectState.collector == collector)
    )
    return {subject: observation for subject, observation in rows if observation is not None}


def _record_observation(
    session: Session,
    run: ScanRun,
    organisation_id: int,
    states: dict[str, SubjectState],
    observation: SubjectObservation,
    at: dt.datetime,
) -> None:
    """Per-target errors go on the run; the subject's latest state is updated in place.

    `states` holds the organisation's subject states for this collector by subject; a new
    one is added to it.
    """
    if observation.error is not None:
        session.add(
            ScanError(
                run_id=run.id,
                organisation_id=organisation_id,
                subject=observation.subject,
                asset=observation.asset,
                kind=str(observation.error.kind),
                message=observation.error.message,
            )
        )
    state = states.get(observation.subject)
    if state is None:
        state = SubjectState(
            organisation_id=organisation_id, collector=run.collector, subject=observation.subject
        )
        states[observation.subject] = state
        session.add(state)
    state.asset = observation.asset
    state.last_status = str(observation.status)
    state.last_error = observation.error.message if observation.error else None
    state.last_scanned_at = at
    state.last_run_id = run.id
    if observation.status is SubjectStatus.OK:
        state.last_success_at = at
        state.last_observation = to_jsonable(observation.facts)
