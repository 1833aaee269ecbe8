"""The runner with a tiny collector defined here: tasks, errors as data, failed runs."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import pytest
from rich.console import Console
from rich.progress import Progress, TextColumn
from sqlalchemy import select

from riskiturva.collector import (
    ErrorKind,
    FindingDraft,
    ScanContext,
    ScanTask,
    SubjectObservation,
    SubjectStatus,
    Target,
    TargetError,
)
from riskiturva.config import Asset, AssetKind
from riskiturva.models import Finding, ScanError, ScanRun, SubjectState
from riskiturva.runner import build_context, make_tasks, run_collector
from riskiturva_cli import commands as cli
from tests.conftest import T0


@dataclass(frozen=True)
class PortFacts:
    open_ports: tuple[int, ...]


class TinyCollector:
    """Reports `dns.axfr.open` for every address whose scripted port list includes 53."""

    name: ClassVar[str] = "tiny"
    asset_kinds: ClassVar[frozenset[AssetKind]] = frozenset({AssetKind.IP})
    address_kinds: ClassVar[frozenset[AssetKind]] = frozenset()
    check_ids: ClassVar[frozenset[str]] = frozenset({"dns.axfr.open"})

    def __init__(self, script: dict[str, object], fail_after: int | None = None):
        self.script = script
        self.fail_after = fail_after
        self.tasks: list[ScanTask] = []

    def collect(self, task: ScanTask, context: ScanContext) -> Iterable[SubjectObservation]:
        self.tasks.append(task)
        for index, target in enumerate(task.targets):
            if self.fail_after is not None and index >= self.fail_after:
                raise RuntimeError("collector crashed")
            outcome = self.script[target.address]
            if isinstance(outcome, ErrorKind):
                yield SubjectObservation(
                    target.address,
                    target.asset,
                    SubjectStatus.ERROR,
                    error=TargetError(outcome, "no answer"),
                )
            else:
                yield SubjectObservation(
                    target.address, target.asset, SubjectStatus.OK, facts=PortFacts(tuple(outcome))
                )

    def judge(self, observation: SubjectObservation) -> list[FindingDraft]:
        return [
            FindingDraft(
                "dns.axfr.open", {"port": port}, subject=f"{observation.subject}:{port}/tcp"
            )
            for port in observation.facts.open_ports
            if port == 53
        ]


class Clock:
    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(T0)


def scan(sessions, config, collector, clock, **kwargs):
    return run_collector(
        sessions, config, collector, context=build_context(config, clock=clock), **kwargs
    )


def statuses(sessions) -> dict[str, str]:
    with sessions() as session:
        return {f.subject: f.status for f in session.scalars(select(Finding))}


def test_run_opens_findings_and_records_state(sessions, minimal_config, clock):
    collector = TinyCollector({"127.60.1.10": [53, 443], "127.60.1.11": [443], "127.60.2.10": [53]})
    report = scan(sessions, minimal_config, collector, clock)
    assert report.status == "ok"
    assert (report.targets, report.ok, report.counts.opened) == (3, 3, 2)
    assert statuses(sessions) == {"127.60.1.10:53/tcp": "open", "127.60.2.10:53/tcp": "open"}
    with sessions() as session:
        run = session.get(ScanRun, report.run_id)
        assert (run.status, run.counts["opened"], run.finished_at) == ("ok", 2, T0)
        state = session.scalar(select(SubjectState).filter_by(subject="127.60.1.10"))
        assert state.last_observation == {"open_ports": [53, 443]}
    # One task per organisation, each serialisable to JSON and back (for remote workers).
    assert [t.organisation for t in collector.tasks] == ["hyvala", "rapala"]
    task = collector.tasks[0]
    assert ScanTask.from_dict(json.loads(json.dumps(task.to_dict()))) == task


def test_timed_out_target_is_a_recorded_error_that_resolves_nothing(
    sessions, minimal_config, clock
):
    scan(
        sessions,
        minimal_config,
        TinyCollector({"127.60.1.10": [53], "127.60.1.11": [], "127.60.2.10": [53]}),
        clock,
    )
    clock.now += dt.timedelta(days=1)
    # Given hyvala's host times out and rapala's port 53 was closed
    collector = TinyCollector(
        {"127.60.1.10": ErrorKind.TIMEOUT, "127.60.1.11": [], "127.60.2.10": []}
    )
    report = scan(sessions, minimal_config, collector, clock)
    assert report.status == "partial"
    assert report.errors_by_kind == {"timeout": 1}
    assert statuses(sessions) == {"127.60.1.10:53/tcp": "open", "127.60.2.10:53/tcp": "resolved"}
    with sessions() as session:
        (error,) = session.scalars(select(ScanError).filter_by(run_id=report.run_id))
        assert (error.subject, error.kind) == ("127.60.1.10", "timeout")
        state = session.scalar(select(SubjectState).filter_by(subject="127.60.1.10"))
        assert (state.last_status, state.last_success_at, state.last_scanned_at) == (
            "error",
            T0,
            clock.now,
        )


def test_an_organisation_whose_task_fails_resolves_nothing_and_holds_no_other_back(
    sessions, minimal_config, clock
):
    scan(
        sessions,
        minimal_config,
        TinyCollector({"127.60.1.10": [53], "127.60.1.11": [], "127.60.2.10": [53]}),
        clock,
    )
    clock.now += dt.timedelta(days=1)
    # hyvala's first subject scans fine (port 53 gone), then the collector crashes on its
    # second; rapala's only subject scans fine (port 53 gone too)
    crashing = TinyCollector(
        {"127.60.1.10": [], "127.60.1.11": [], "127.60.2.10": []}, fail_after=1
    )
    report = scan(sessions, minimal_config, crashing, clock)
    assert report.status == "failed"
    assert report.message.startswith("hyvala: ")
    assert "collector crashed" in report.message
    # Then hyvala's finding stays open, and rapala's own resolves
    assert statuses(sessions) == {"127.60.1.10:53/tcp": "open", "127.60.2.10:53/tcp": "resolved"}
    assert report.counts.resolved == 1


def test_unregistered_check_id_fails_the_run(sessions, minimal_config, clock):
    class Sloppy(TinyCollector):
        def judge(self, observation):
            return [FindingDraft("dns.not.registered", {})]

    report = scan(
        sessions,
        minimal_config,
        Sloppy({"127.60.1.10": [], "127.60.1.11": [], "127.60.2.10": []}),
        clock,
    )
    assert report.status == "failed"
    assert "dns.not.registered" in report.message


def test_selected_organisations_only(sessions, minimal_config, clock):
    collector = TinyCollector({"127.60.2.10": [53]})
    report = scan(sessions, minimal_config, collector, clock, organisations=["rapala"])
    assert report.targets == 1
    assert [t.organisation for t in collector.tasks] == ["rapala"]


def test_targets_of_one_name_share_a_batch():
    targets = [Target(f"n{i}.test", AssetKind.HOST, name=f"n{i}.test") for i in range(49)]
    targets += [
        Target("same.test", AssetKind.DOMAIN, name="same.test"),
        Target("same.test", AssetKind.MAIL_DOMAIN, name="same.test", dkim_selectors=("s1",)),
        Target("z.test", AssetKind.HOST, name="z.test"),
    ]
    tasks = list(make_tasks(1, "hyvala", "tiny", targets, {}))
    together = [t for t in tasks if any(x.name == "same.test" for x in t.targets)]
    assert len(together) == 1
    assert sum(x.name == "same.test" for x in together[0].targets) == 2
    assert sum(len(t.targets) for t in tasks) == len(targets)
    assert ScanTask.from_dict(json.loads(json.dumps(together[0].to_dict()))) == together[0]


def test_a_cancelled_scan_is_interrupted_even_if_the_collector_stops_quietly(
    sessions, minimal_config, clock
):
    class Quiet(TinyCollector):
        def collect(self, task, context):
            return iter(())  # stops early without an observation

    context = build_context(minimal_config, clock=clock)
    context.cancelled.set()
    report = run_collector(sessions, minimal_config, Quiet({}), context=context)
    assert report.status == "interrupted", report.message


class Recorder:
    """A progress callback that keeps every (collector, done, total) it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, collector: str, done: int, total: int) -> None:
        self.calls.append((collector, done, total))


def _partition_holds(report) -> None:
    assert report.targets == report.ok + report.partial + report.failed + report.skipped
    assert sum(report.errors_by_kind.values()) == report.failed + report.skipped
    by_outcome = Counter(error.outcome for error in report.errors)
    assert by_outcome["failed"] == report.failed
    assert by_outcome["skipped"] == report.skipped
    assert by_outcome["partial"] <= report.partial


def test_every_target_has_one_outcome_and_each_error_is_named(sessions, minimal_config, clock):
    # Given one target that answers, one that times out, one whose answer is partial, and
    # one name the runner itself finds outside the scope
    class Mixed(TinyCollector):
        asset_kinds = frozenset({AssetKind.IP, AssetKind.HOST})
        address_kinds = frozenset({AssetKind.HOST})

        def collect(self, task, context):
            for target in task.targets:
                if target.address == "127.60.1.11":
                    yield SubjectObservation(
                        target.address,
                        target.asset,
                        SubjectStatus.PARTIAL,
                        facts=PortFacts(()),
                        error=TargetError(ErrorKind.PROTOCOL, "port 443: \x1b[31mreset\x1b[0m"),
                    )
                else:
                    yield from super().collect(
                        ScanTask(task.run_id, task.organisation, task.collector, (target,)),
                        context,
                    )

    class Resolver:
        def addresses(self, name):
            return ["192.0.2.99"]  # outside every scope

    config = minimal_config.model_copy(
        update={
            "organisations": (
                minimal_config.organisations[0].model_copy(
                    update={
                        "assets": (
                            *minimal_config.organisations[0].assets,
                            Asset(kind="host", value="muualla.hyvala.test"),
                        )
                    }
                ),
                minimal_config.organisations[1],
            )
        }
    )
    context = build_context(config, clock=clock)
    context.resolver = Resolver()
    progress = Recorder()
    collector = Mixed({"127.60.1.10": [53], "127.60.2.10": ErrorKind.TIMEOUT})

    # When the run is over
    report = run_collector(sessions, config, collector, context=context, progress=progress)

    # Then every target is counted once, and each not checked completely is named
    assert (report.targets, report.ok, report.partial, report.failed, report.skipped) == (
        4,
        1,
        1,
        1,
        1,
    )
    _partition_holds(report)
    assert report.status == "partial"
    named = {(e.organisation, e.subject, e.outcome, e.kind) for e in report.errors}
    assert named == {
        ("hyvala", "127.60.1.11", "partial", "protocol"),
        ("hyvala", "muualla.hyvala.test", "skipped", "out_of_scope"),
        ("rapala", "127.60.2.10", "failed", "timeout"),
    }
    # And the progress bar ended at its total, the runner's own refusal counted in it
    assert progress.calls[-1] == ("tiny", 4, 4)
    assert all(done <= total for _, done, total in progress.calls)
    # And the counters stored on the run add up the same way
    with sessions() as session:
        stored = session.get(ScanRun, report.run_id).counts
    assert stored["targets"] == stored["ok"] + stored["partial"] + stored["failed"] + 1


def test_a_run_that_checked_nothing_has_failed(sessions, minimal_config, clock):
    # Given every target times out (the name server down, say)
    collector = TinyCollector(
        {
            "127.60.1.10": ErrorKind.TIMEOUT,
            "127.60.1.11": ErrorKind.TIMEOUT,
            "127.60.2.10": ErrorKind.DNS_FAILURE,
        }
    )
    progress = Recorder()
    report = scan(sessions, minimal_config, collector, clock, progress=progress)
    # Then the run is failed, not partial, and says why
    assert report.status == "failed"
    assert report.message == "nothing could be checked: 3 targets (dns_failure 1, timeout 2)"
    assert (report.targets, report.failed, report.checked) == (3, 3, 0)
    _partition_holds(report)
    assert progress.calls[-1] == ("tiny", 3, 3)


def test_progress_ends_at_the_total_when_the_run_fails_or_is_interrupted(
    sessions, minimal_config, clock
):
    crashing = TinyCollector(
        {"127.60.1.10": [], "127.60.1.11": [], "127.60.2.10": []}, fail_after=1
    )
    progress = Recorder()
    assert scan(sessions, minimal_config, crashing, clock, progress=progress).status == "failed"
    assert progress.calls[-1] == ("tiny", 3, 3)

    context = build_context(minimal_config, clock=clock)
    context.cancelled.set()
    progress = Recorder()
    report = run_collector(
        sessions, minimal_config, TinyCollector({}), context=context, progress=progress
    )
    assert report.status == "interrupted"
    assert progress.calls[-1] == ("tiny", 3, 3)


def test_progress_moves_per_subject_but_never_past_the_task(sessions, minimal_config, clock):
    # Given a collector that reports more subjects than it was given targets (a network
    # becomes its hosts), then the bar stays within the task's share until the task ends
    class Fanning(TinyCollector):
        def collect(self, task, context):
            for target in task.targets:
                for port in (1, 2, 3):
                    yield SubjectObservation(
                        f"{target.address}:{port}", target.asset, SubjectStatus.OK, PortFacts(())
                    )

    # (one task at a time, so that the order of the calls is known)
    settings = minimal_config.settings
    one_at_a_time = settings.concurrency.model_copy(update={"tasks": 1})
    config = minimal_config.model_copy(
        update={"settings": settings.model_copy(update={"concurrency": one_at_a_time})}
    )
    progress = Recorder()
    report = scan(sessions, config, Fanning({}), clock, progress=progress)
    assert report.targets == 9  # subjects, each with its outcome
    # hyvala's task has two targets (six subjects), rapala's one (three subjects)
    dones = [done for _, done, _ in progress.calls]
    assert dones == [0, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3]
    assert {total for _, _, total in progress.calls} == {3}


def test_the_cli_bars_end_full_and_say_how_each_run_ended(sessions, minimal_config, clock):
    # Given the CLI's bars on a (forced) terminal, and a run whose collector crashes
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    crashing = TinyCollector(
        {"127.60.1.10": [], "127.60.1.11": [], "127.60.2.10": []}, fail_after=1
    )
    with Progress(TextColumn("{task.description}"), console=console) as progress:
        bars = cli._Bars(progress)
        report = scan(sessions, minimal_config, crashing, clock, progress=bars)
        bars.label([report])
        (task,) = progress.tasks
    # Then its bar is full and names the outcome
    assert (task.completed, task.total) == (3, 3)
    assert task.description == "tiny (failed)"
