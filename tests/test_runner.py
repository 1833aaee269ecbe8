"""The runner with a tiny collector defined here: tasks, errors as data, failed runs."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import pytest
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
from riskiturva.config import AssetKind
from riskiturva.models import Finding, ScanError, ScanRun, SubjectState
from riskiturva.runner import build_context, make_tasks, run_collector
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


def test_run_that_fails_half_way_resolves_nothing(sessions, minimal_config, clock):
    scan(
        sessions,
        minimal_config,
        TinyCollector({"127.60.1.10": [53], "127.60.1.11": [], "127.60.2.10": [53]}),
        clock,
    )
    clock.now += dt.timedelta(days=1)
    # The first subject scans fine (port 53 gone), then the collector crashes
    crashing = TinyCollector(
        {"127.60.1.10": [], "127.60.1.11": [], "127.60.2.10": []}, fail_after=1
    )
    report = scan(sessions, minimal_config, crashing, clock)
    assert report.status == "failed"
    assert "collector crashed" in report.message
    assert report.counts.resolved == 0
    assert set(statuses(sessions).values()) == {"open"}


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
    assert report.status == "interrupted"
