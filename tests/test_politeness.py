"""Politeness that knows shared hosting: the limits hold where the other side can see them.

A counting TCP proxy stands in front of a real lab TLS server on three addresses of one
/24 (as a hosting provider serves many municipalities' names); it records how many
connections are open at once per address and in the network. The TLS collector then scans
many names on those addresses. The rate of new connections is checked on the limiter's
token bucket with a clock the test drives (no timing assertions).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from collectors.tls import TLSCollector
from riskiturva import db
from riskiturva.collector import ScanTask, SubjectStatus, Target
from riskiturva.config import AssetKind, ConfigError, PolitenessSettings, load_config
from riskiturva.dns_seam import DnsClient
from riskiturva.politeness import Politeness, shared_politeness
from riskiturva.runner import _gather_remote, _start_remote, build_context
from riskiturva.store import make_engine, session_factory
from riskiturva.workers import worker_context

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "example.toml"
ADDRESSES = ("127.78.0.1", "127.78.0.2", "127.78.0.3")
TCP_ESTABLISHED = 1  # tcpi_state, the first byte of Linux's struct tcp_info


class CountingProxy:
    """Forwards ADDRESSES:443 to one backend; counts connections open at once.

    A connection counts from its accept until the client's end is closed: at every accept,
    connections whose client has already sent its FIN are taken out first, so a close and
    the next connect that the client made in that order are counted in that order.
    """

    def __init__(self, backend: tuple[str, int]) -> None:
        self.backend = backend
        self.lock = threading.Lock()
        self.open: dict[socket.socket, str] = {}
        self.most: dict[str, int] = {}
        self.most_in_network = 0
        self.accepted = 0
        self.listeners = []
        for address in ADDRESSES:
            listener = socket.create_server((address, 443), backlog=128)
            self.listeners.append(listener)
            threading.Thread(target=self._accept, args=(listener, address), daemon=True).start()

    @staticmethod
    def _closed(client: socket.socket) -> bool:
        """Whether the client has closed its end: the kernel's TCP state, which is exact even
        while its last bytes wait unread (the forwarding threads share one busy process)."""
        try:
            state = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
        except OSError:
            return True
        return state != TCP_ESTABLISHED

    def _accept(self, listener: socket.socket, address: str) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self.lock:
                for gone in [c for c in self.open if self._closed(c)]:
                    del self.open[gone]
                self.open[client] = address
                self.accepted += 1
                here = sum(1 for a in self.open.values() if a == address)
                self.most[address] = max(self.most.get(address, 0), here)
                self.most_in_network = max(self.most_in_network, len(self.open))
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.backend, timeout=10)
        except OSError:
            self._forget(client)
            return

        def pump(source: socket.socket, sink: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)  # until the client closes its end
        self._forget(client)
        back.join(10)
        upstream.close()
        client.close()

    def _forget(self, client: socket.socket) -> None:
        with self.lock:
            self.open.pop(client, None)

    def close(self) -> None:
        for listener in self.listeners:  # shutdown wakes the accept() blocked on it
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()


@pytest.fixture
def proxy(lab) -> Iterator[CountingProxy]:
    backend = next(h for h in lab.manifest.hosts if h.tls == "modern")
    counting = CountingProxy((backend.ip, 443))
    yield counting
    counting.close()


@pytest.mark.lab
def test_connections_per_address_and_per_network_hold_at_the_server(lab, proxy):
    # Given 12 names on three addresses of one /24, and limits of 2 per address, 3 in the
    # network, while the collector alone would open 5 per name and scan 20 names at once
    config = load_config(lab.config_path)
    settings = config.settings
    politeness = PolitenessSettings(
        connections_per_address=2, connections_per_network=3, new_per_second=5000, burst=500
    )
    config = config.model_copy(
        update={"settings": settings.model_copy(update={"politeness": politeness})}
    )
    targets = tuple(
        Target(f"n{i}.example.test", AssetKind.HOST, f"n{i}.example.test", ADDRESSES[i % 3])
        for i in range(12)
    )
    # When the TLS collector scans them (through the counting proxy)
    observations = list(
        TLSCollector().collect(ScanTask(0, "x", "tls", targets), build_context(config))
    )
    # Then every name was scanned, and the server never saw more than the limits
    assert {o.status for o in observations} == {SubjectStatus.OK}
    assert proxy.accepted > 12 * 20  # many connections each: the limits were exercised
    assert max(proxy.most.values()) <= 2
    assert proxy.most_in_network <= 3
    assert proxy.most_in_network == 3  # and used: the collector is not simply sequential


@pytest.mark.lab
def test_the_processes_of_one_run_hold_the_limits_together(lab, proxy):
    # Given 3 tasks of 4 names each on the same three addresses, one per process of a
    # pool, and limits of 2 per address, 3 in the network for them all
    config = load_config(lab.config_path)
    politeness = PolitenessSettings(
        connections_per_address=2, connections_per_network=3, new_per_second=5000, burst=500
    )
    config = config.model_copy(
        update={"settings": config.settings.model_copy(update={"politeness": politeness})}
    )
    tasks = [
        ScanTask(0, f"org{t}", "tls", tuple(
            Target(f"n{t}-{i}.example.test", AssetKind.HOST, f"n{t}-{i}.example.test",
                   ADDRESSES[i % 3])
            for i in range(4)
        ))
        for t in range(3)
    ]  # fmt: skip
    # When the pool's processes scan them at once, as the runner runs TLS tasks
    with (
        shared_politeness(politeness) as limits,
        ProcessPoolExecutor(
            3,
            mp_context=multiprocessing.get_context("forkserver"),
            initializer=_start_remote,
            initargs=(config, TLSCollector, build_context(config).clock, limits),
        ) as pool,
    ):
        results = list(pool.map(_gather_remote, tasks))
    # Then every name was scanned, and the server saw no more than the limits in all
    assert [failure for _, failure in results] == [None] * 3
    assert {o.status for observations, _ in results for o in observations} == {SubjectStatus.OK}
    assert max(proxy.most.values()) <= 2
    assert proxy.most_in_network == 3


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_new_connections_keep_to_the_rate_after_the_burst():
    # Given a limit of 10 new connections per second with a burst of 5
    time = FakeTime()
    limiter = Politeness(
        PolitenessSettings(new_per_second=10, burst=5), clock=time.clock, sleep=time.sleep
    )
    # When 105 connections are opened one after another, as fast as allowed
    for _ in range(105):
        with limiter.connection("192.0.2.1"):
            pass
    # Then the first 5 went at once and the other 100 took 10 s: 10 per second
    assert time.slept[:1] == [pytest.approx(0.1)]
    assert sum(time.slept) == pytest.approx(10.0)
    assert len(time.slept) == 100


def test_a_configured_network_overrides_the_default_slash_24():
    limiter = Politeness(
        PolitenessSettings.model_validate(
            {"networks": [{"network": "198.51.100.0/22", "connections": 8}]}
        )
    )
    assert limiter.network("198.51.102.7") == (limiter.network("198.51.100.1")[0], 8)
    assert str(limiter.network("192.0.2.200")[0]) == "192.0.2.0/24"
    assert str(limiter.network("2001:db8:1:2::5")[0]) == "2001:db8:1::/48"
    assert limiter.network("192.0.2.200")[1] == 16


def test_shares_of_the_limits_for_worker_processes_add_up_to_at_most_the_limits():
    settings = PolitenessSettings(connections_per_address=4, connections_per_network=16)
    share = Politeness(settings).share(4).settings
    assert (share.connections_per_address, share.connections_per_network) == (1, 4)
    assert share.new_per_second == 25.0


def test_each_worker_process_keeps_to_its_share_of_the_limits(tmp_path):
    # Given a configuration for 4 worker processes on the queue
    config = load_config(EXAMPLE)
    queue = config.settings.queue.model_copy(update={"workers": 4})
    config = config.model_copy(
        update={"settings": config.settings.model_copy(update={"queue": queue})}
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    db.upgrade(engine)
    # Then a worker's scan context holds a quarter of every limit
    share = worker_context(config, session_factory(engine)).limits.settings
    engine.dispose()
    whole = config.settings.politeness
    assert share.new_per_second == whole.new_per_second / 4
    assert share.connections_per_network == whole.connections_per_network // 4
    assert share.connections_per_address == max(1, whole.connections_per_address // 4)


ADDRESS_LINE = "connections_per_address = 4    # all names on one address together"
RATE_LINE = "new_per_second = 100.0         # new connections and probes per second"


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            ADDRESS_LINE,
            "connections_per_address = 0",
            "settings.politeness.connections_per_address",
            "greater",
        ),
        (
            ADDRESS_LINE,
            "connections_per_address = 40",
            "settings.politeness",
            "could never be used",
        ),
        (RATE_LINE, 'new_per_second = "fast"', "settings.politeness.new_per_second", "number"),
    ],
)
def test_bad_politeness_settings_name_file_line_and_field(tmp_path, old, new, field, message):
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "polite.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.field == field
    assert message in problem.message
    lines = path.read_text(encoding="utf-8").splitlines()
    where = new if field.endswith(new.split(" ")[0]) else "[settings.politeness]"
    assert lines[problem.line - 1].startswith(where)
    assert str(path) in caught.value.describe()


@pytest.mark.lab
def test_queries_straight_to_a_name_server_take_tokens_of_the_same_rate(lab):
    # Given a limiter whose clock stands still: 3 tokens, then a wait of 1 ms each
    time = FakeTime()
    limiter = Politeness(
        PolitenessSettings(new_per_second=1000, burst=3), clock=time.clock, sleep=time.sleep
    )
    settings = load_config(lab.config_path).settings.resolver
    client = DnsClient(settings, lab.dns_port, limits=limiter)
    # When three queries go straight to the lab's name server (as lame-delegation checks do)
    for name in ("hyvala.test", "rapala.test", "sekala.test"):
        asyncio.run(client.ask_server(lab.dns_server, name, "SOA"))
    # Then they took the three tokens: the next connection would wait
    assert limiter.reserve() == pytest.approx(0.001)
