"""Politeness that knows shared hosting: one limiter every collector asks before it connects.

Names differ, addresses repeat: dozens of municipalities may sit on one hosting provider's
address or /24. So the limits are on what the other side sees — connections open at once
per destination address and per network (the address's /24 or /48, or a network listed
in `[[settings.politeness.networks]]`) — plus one rate of new connections and probes per
second for the whole process (a token bucket with a burst).

`Politeness` is thread-safe; the collectors of one process share the one in their
`ScanContext`. The processes of one scan (the TLS worker processes) share one set of
counters kept in a manager process (`shared_politeness`): an address's 4 connections are 4
among them all, whichever process opens them. Processes that cannot share counters
(`riskiturva worker`s on several machines) each take their share of every limit instead
(`Politeness.share`), so that together they still hold.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.managers import BaseManager
from typing import Protocol

from riskiturva.config import PolitenessSettings

Key = ipaddress.IPv4Network | ipaddress.IPv6Network
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class _Counters:
    """The limits' state: connections open per address and per network, the rate's tokens."""

    def __init__(self, settings: PolitenessSettings, clock: Callable[[], float]) -> None:
        self.settings, self._clock = settings, clock
        self._condition = threading.Condition()
        self._open: dict[str, int] = {}
        self._open_in: dict[Key, int] = {}
        self._tokens = float(settings.burst)
        self._filled = clock()
        self._rate_lock = threading.Lock()

    def acquire(self, address: str, network: Key, network_limit: int) -> None:
        """Wait for a connection slot at `address` (in `network`), and take it."""
        per_address = min(self.settings.connections_per_address, network_limit)
        with self._condition:
            while (
                self._open.get(address, 0) >= per_address
                or self._open_in.get(network, 0) >= network_limit
            ):
                self._condition.wait()
            self._open[address] = self._open.get(address, 0) + 1
            self._open_in[network] = self._open_in.get(network, 0) + 1

    def release(self, address: str, network: Key) -> None:
        with self._condition:
            self._open[address] -= 1
            if not self._open[address]:
                del self._open[address]
            self._open_in[network] -= 1
            if not self._open_in[network]:
                del self._open_in[network]
            self._condition.notify_all()

    def reserve(self) -> float:
        """Take one token of the rate now; the seconds to wait before using it."""
        rate, burst = self.settings.new_per_second, float(self.settings.burst)
        with self._rate_lock:
            now = self._clock()
            self._tokens = min(burst, self._tokens + (now - self._filled) * rate)
            self._filled = now
            self._tokens -= 1.0
            return -self._tokens / rate if self._tokens < 0 else 0.0

    def open_now(self, address: str) -> int:
        with self._condition:
            return self._open.get(address, 0)


class _CounterAccess(Protocol):
    """The counters, here or in the manager process (through a proxy)."""

    def acquire(self, address: str, network: Key, network_limit: int) -> None: ...
    def release(self, address: str, network: Key) -> None: ...
    def reserve(self) -> float: ...
    def open_now(self, address: str) -> int: ...


class Politeness:
    """Connection slots per address and per network, and a global rate of new ones."""

    def __init__(
        self,
        settings: PolitenessSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        counters: _CounterAccess | None = None,
    ) -> None:
        self.settings = settings
        self._clock, self._sleep = clock, sleep
        self._counters: _CounterAccess = counters or _Counters(settings, clock)

    def share(self, workers: int) -> Politeness:
        """A limiter for one of `workers` processes: each gets its share of every limit."""
        s = self.settings
        share = s.model_copy(
            update={
                "connections_per_address": max(1, s.connections_per_address // workers),
                "connections_per_network": max(1, s.connections_per_network // workers),
                "new_per_second": s.new_per_second / workers,
                "burst": max(1, s.burst // workers),
                "networks": tuple(
                    n.model_copy(update={"connections": max(1, n.connections // workers)})
                    for n in s.networks
                ),
            }
        )
        return Politeness(share, clock=self._clock, sleep=self._sleep)

    def network(self, address: str) -> tuple[Key, int]:
        """The network `address` counts against, and that network's limit."""
        ip = ipaddress.ip_address(address)
        for limit in self.settings.networks:
            if ip in limit.network:
                return limit.network, limit.connections
        prefix = self.settings.ipv4_prefix if ip.version == 4 else self.settings.ipv6_prefix
        return ipaddress.ip_network(f"{ip}/{prefix}", strict=False), (
            self.settings.connections_per_network
        )

    def connection(self, address: str) -> _Slot:
        """A context holding one connection slot at `address` (waits for one), after a rate
        token. A class, not a generator: sslyze raises frozen exceptions through it, whose
        traceback a generator-based context manager cannot set."""
        return _Slot(self, address)

    def probe(self) -> None:
        """Take one token of the global rate (a new connection, a datagram), waiting if none."""
        wait = self.reserve()
        if wait:
            self._sleep(wait)

    def reserve(self) -> float:
        """Take one token of the global rate now; the seconds to wait before using it
        (asynchronous callers await that themselves)."""
        return self._counters.reserve()

    def open_now(self, address: str) -> int:
        """Connections open at `address` now, by every process sharing the counters."""
        return self._counters.open_now(address)

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled for another process: shared counters travel as their proxy; counters of
        this process's own cannot be shared, and are refused."""
        if isinstance(self._counters, _Counters):
            raise TypeError("a Politeness of one process's own cannot go to another process")
        return (_rebuilt, (self.settings, self._counters))


def _rebuilt(settings: PolitenessSettings, counters: _CounterAccess) -> Politeness:
    return Politeness(settings, counters=counters)


class _Manager(BaseManager):
    """The process that keeps the counters shared by the processes of one scan."""


_Manager.register("Counters", _Counters)


def _serve_quietly() -> None:
    """The manager process: its parent decides when it stops (a signal to the terminal's
    process group leaves it be), and it goes when the scan does, even one killed -9."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):  # Linux: prctl(PR_SET_PDEATHSIG)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@contextmanager
def shared_politeness(settings: PolitenessSettings) -> Iterator[Politeness]:
    """One set of limits for several processes: picklable (to a process pool's initializer),
    it reaches the counters in a manager process that lives as long as the context."""
    manager = _Manager(ctx=multiprocessing.get_context("forkserver"))
    manager.start(_serve_quietly)
    try:
        counters = manager.Counters(settings, time.monotonic)  # type: ignore[attr-defined]
        yield Politeness(settings, counters=counters)
    finally:
        manager.shutdown()


class _Slot:
    def __init__(self, limiter: Politeness, address: str) -> None:
        self.limiter, self.address = limiter, address

    def __enter__(self) -> None:
        self.network, limit = self.limiter.network(self.address)
        counters = self.limiter._counters
        counters.acquire(self.address, self.network, limit)
        try:
            self.limiter.probe()
        except BaseException:
            counters.release(self.address, self.network)
            raise

    def __exit__(self, *exc: object) -> None:
        self.limiter._counters.release(self.address, self.network)
