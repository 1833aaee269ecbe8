"""Workers on the queue with the real servers: Redis and PostgreSQL on loopback, the lab,
`riskiturva worker` processes killed -9, Redis killed and restarted, messages delivered
again. Every case compares with the same scan run in-process: no finding lost, duplicated
or falsely resolved."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from riskiturva.config import QueueSettings
from riskiturva.models import ScanError, ScanTaskRow
from riskiturva.workers import ACTOR, make_broker
from tests.faults import Process, Tally, finding_statuses, query, run, runs, state, wait_until
from tests.redis_server import RedisServer, redis_server
from tests.test_faults import lab_config, postgres_fresh

pytestmark = pytest.mark.lab


def queue_settings(
    redis: RedisServer, *, time_limit: float, visibility: float, retries: int = 5
) -> str:
    """The queue's settings as a line of [settings] (every command checks for dead workers'
    tasks, so that a killed worker's task comes back as soon as its heartbeat is stale)."""
    return (
        f'queue = {{ runner = "workers", redis_url = "{redis.url}", '
        f"task_time_limit_seconds = {time_limit}, visibility_timeout_seconds = {visibility}, "
        "requeue_checks_per_million = 1000000, min_backoff_seconds = 1, "
        f"max_backoff_seconds = 5, max_retries = {retries} }}\n"
    )


def errors_by_subject(url: str, run_id: int) -> Counter[tuple[int, str, str]]:
    rows = query(
        url,
        select(ScanError.organisation_id, ScanError.subject, ScanError.kind).where(
            ScanError.run_id == run_id
        ),
    )
    return Counter((o, s, k) for o, s, k in rows)


def attempts(url: str, run_id: int) -> dict[str, int]:
    rows = query(
        url,
        select(ScanTaskRow.key, ScanTaskRow.attempts).where(
            ScanTaskRow.run_id == run_id, ScanTaskRow.payload.is_not(None)
        ),
    )
    return dict(rows)


class Estate:
    """One lab estate scanned first in-process (the reference), then by workers."""

    def __init__(self, lab, folder: Path, url: str, redis: RedisServer, collector: str, **queue):
        self.url, self.collector, self.folder = url, collector, folder
        (folder / "in-process").mkdir()
        reference = lab_config(lab, folder / "in-process", url=url)
        first = run("scan", "--config", str(reference), "--collector", collector)
        assert first.returncode in (0, 1), first.stderr
        self.reference = runs(url, collector)[-1]
        self.before = finding_statuses(url)
        assert self.before
        self.config = lab_config(lab, folder, url=url, settings=queue_settings(redis, **queue))
        self.workers: list[Process] = []

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            name = f"worker{len(self.workers)}"
            worker = Process(self.folder, name, "worker", "--config", str(self.config))
            self.workers.append(worker)
        for worker in self.workers[-count:]:
            wait_until(lambda w=worker: "worker ready" in w.output, 60, "a worker never started")

    def enqueue(self) -> int:
        queued = run("scan", "--config", str(self.config), "--collector", self.collector)
        assert queued.returncode == 0, queued.stderr
        assert "tasks queued" in queued.stdout
        return int(runs(self.url, self.collector)[-1].id)

    def wait_closed(self, run_id: int, seconds: float) -> object:
        return wait_until(
            lambda: next(
                (
                    r
                    for r in runs(self.url, self.collector)
                    if r.id == run_id and r.status != "running"
                ),
                None,
            ),
            seconds,
            f"run {run_id} never closed",
            every=1,
        )

    def check(self, tally: Tally, run_id: int) -> None:
        """Same findings as the reference run (nothing lost, nothing falsely resolved), each
        target's errors recorded once, and the same outcome."""
        closed = runs(self.url, self.collector)[-1]
        assert closed.id == run_id
        tally.findings(self.url, self.before)
        duplicated = errors_by_subject(self.url, run_id) - errors_by_subject(
            self.url, self.reference.id
        )
        tally.notes["duplicated_errors"] = sum(duplicated.values())
        tally.notes["attempts"] = attempts(self.url, run_id)
        tally.output(*(w.output for w in self.workers))
        tally.check()
        assert not duplicated
        assert errors_by_subject(self.url, run_id) == errors_by_subject(self.url, self.reference.id)
        assert closed.status == self.reference.status, closed.message
        reference, counts = self.reference.counts, closed.counts
        assert counts["targets"] == reference["targets"]
        assert counts["ok"] == reference["ok"]
        assert counts["opened"] == 0 and counts["resolved"] == 0
        assert counts["still_open"] == reference["opened"] + reference["still_open"]

    def stop(self) -> None:
        for worker in self.workers:
            if worker.popen.poll() is None:
                assert worker.stop(timeout=120) == 0, worker.output


@contextmanager
def two_workers(
    lab, folder: Path, postgres_url: str, collector: str, **queue: float
) -> Iterator[tuple[Estate, RedisServer, int]]:
    """The estate scanned in-process, then two workers started and its run enqueued."""
    with redis_server() as redis:
        estate = Estate(lab, folder, postgres_fresh(postgres_url), redis, collector, **queue)
        try:
            estate.start_workers(2)
            yield estate, redis, estate.enqueue()
        finally:
            estate.stop()


def test_two_workers_scan_as_the_runner_does_and_a_task_delivered_again_changes_nothing(
    lab, tmp_path, postgres_url
):
    with two_workers(lab, tmp_path, postgres_url, "dns_email", time_limit=120, visibility=180) as (
        estate,
        redis,
        run_id,
    ):
        estate.wait_closed(run_id, 300)
        tally = Tally("two workers, then a task delivered again after it was saved")
        estate.check(tally, run_id)
        # When a task's message comes again after its results were saved
        saved = state(estate.url)
        key = sorted(attempts(estate.url, run_id))[0]
        settings = QueueSettings.model_validate({"redis_url": redis.url})
        broker = make_broker(settings)
        broker.get_actor(ACTOR).send(run_id, key)
        broker.close()
        wait_until(
            lambda: any(f"task {key}: already done" in w.output for w in estate.workers),
            60,
            "the message delivered again was never taken",
        )
        # Then it is acknowledged unchanged: no second reconcile, no second attempt
        assert state(estate.url) == saved
        assert attempts(estate.url, run_id)[key] == 1
        assert query(estate.url, select(func.count()).select_from(ScanTaskRow))[0][0] > 0


@pytest.mark.slow
def test_a_worker_killed_mid_task_loses_and_duplicates_nothing(lab, tmp_path, postgres_url):
    with two_workers(lab, tmp_path, postgres_url, "tls", time_limit=60, visibility=75) as (
        estate,
        _,
        run_id,
    ):
        # When the first worker to start a task is killed -9 in the middle of it
        victim = wait_until(
            lambda: next((w for w in estate.workers if "scanning (attempt 1)" in w.output), None),
            120,
            "no worker started a task",
            every=0.05,
        )
        claimed = [
            line.split("task ")[1].split(":")[0]
            for line in victim.output.splitlines()
            if "scanning (attempt 1)" in line
        ]
        victim.kill9()
        # Then another worker takes the task again once the victim's heartbeat is stale
        estate.wait_closed(run_id, 600)
        tally = Tally("one of two workers killed -9 mid-task")
        tally.notes["killed_during"] = claimed
        estate.check(tally, run_id)
        tried = attempts(estate.url, run_id)
        assert tried[claimed[-1]] == 2, tried


@pytest.mark.slow
def test_redis_killed_and_restarted_mid_run_loses_and_duplicates_nothing(
    lab, tmp_path, postgres_url
):
    with two_workers(lab, tmp_path, postgres_url, "tls", time_limit=60, visibility=75) as (
        estate,
        redis,
        run_id,
    ):
        # When Redis is killed -9 once the first task was saved, and comes back 5 s later
        wait_until(
            lambda: any("saved" in w.output for w in estate.workers), 300, "nothing saved", 0.1
        )
        redis.kill()
        time.sleep(5)
        redis.start()
        # Then the run still ends with every task done once
        estate.wait_closed(run_id, 600)
        tally = Tally("Redis killed -9 and restarted mid-run")
        estate.check(tally, run_id)


def test_a_task_that_outlasts_its_time_limit_every_time_is_given_up_and_its_run_closes(
    lab, tmp_path, postgres_url
):
    # Given TLS tasks that take longer than their 1 ms time limit, and one retry each
    with two_workers(
        lab, tmp_path, postgres_url, "tls", time_limit=0.001, visibility=60, retries=1
    ) as (estate, _, run_id):
        # Then the run does not stay running: each task stopped twice is saved as failed
        closed = estate.wait_closed(run_id, 300)
        tried = attempts(estate.url, run_id)
        given_up = [k for k in tried if any(
            f"task {k}: gave up after 2 attempt(s)" in w.output for w in estate.workers
        )]  # fmt: skip
        assert given_up, tried
        assert all(tried[k] == 2 for k in given_up), tried
        assert closed.status == "failed"
        assert "gave up after 2 attempt(s)" in closed.message
        assert "stopped at settings.queue.task_time_limit_seconds (0.001 s)" in closed.message
        # And nothing was resolved: every finding as the reference run left it
        assert finding_statuses(estate.url) == estate.before
        assert closed.counts["resolved"] == 0
        tally = Tally("every task outlasting its time limit")
        tally.notes["given_up"] = len(given_up)
        tally.output(*(w.output for w in estate.workers))
        tally.check()


def test_a_worker_stopped_mid_task_spends_none_of_its_retries(lab, tmp_path, postgres_url):
    # Given tasks with no retry at all
    with two_workers(
        lab, tmp_path, postgres_url, "tls", time_limit=60, visibility=75, retries=0
    ) as (estate, _, run_id):
        # When the first worker to start a task is stopped (SIGTERM) in the middle of it
        victim = wait_until(
            lambda: next((w for w in estate.workers if "scanning (attempt 1)" in w.output), None),
            120,
            "no worker started a task",
            every=0.05,
        )
        assert victim.stop() == 0, victim.output
        assert "the worker is stopping" in victim.output, victim.output
        stopped = victim.output.split("InterruptedError: run ")[1].split(":")[0].split()[-1]
        # Then the other worker scans that task again, and the run ends as in-process
        estate.wait_closed(run_id, 300)
        tally = Tally("one of two workers stopped mid-task, no retries allowed")
        estate.check(tally, run_id)
        assert attempts(estate.url, run_id)[stopped] == 2
        assert "gave up" not in "".join(w.output for w in estate.workers)
