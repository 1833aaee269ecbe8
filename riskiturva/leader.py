"""The scheduler's leader lock: exactly one process on a database fires the schedule.

- PostgreSQL: a session-level advisory lock on a connection of its own. It is released by
  the server the moment the leader's connection ends (a stop, a kill -9, a lost network);
  the leader checks its connection at every heartbeat and steps down when it broke.
- SQLite: the `scheduler_lease` row, renewed at every heartbeat. A standby takes it over
  once it has expired, or at once when its holder is a process of this host that no longer
  exists (SQLite databases are local).

Both write who holds the lead into `scheduler_lease`, so a standby can say who leads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import socket
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import NullPool

from riskiturva.models_schedule import SchedulerLease
from riskiturva.store import make_engine, process_alive

LEASE_NAME = "scheduler"
ADVISORY_LOCK_KEY = 0x52534B53  # "RSKS"; the migration lock uses another key


class LeaderLock(Protocol):
    holder: str
    heartbeat_seconds: float

    def acquire(self) -> bool: ...

    def renew(self) -> bool: ...

    def release(self) -> None: ...

    def describe_holder(self) -> str: ...


def leader_lock(url: str, lease_seconds: float) -> LeaderLock:
    if url.startswith("postgresql"):
        return AdvisoryLock(url, lease_seconds)
    return LeaseRow(make_engine(url), lease_seconds)


def _holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _LeaseWriter:
    """Who holds the lead, as a row (the lock itself on SQLite, a note on PostgreSQL)."""

    engine: Engine
    holder: str
    lease: dt.timedelta

    def _values(self, now: dt.datetime, acquired: dt.datetime) -> dict[str, object]:
        return {
            "holder": self.holder,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "acquired_at": acquired,
            "renewed_at": now,
            "expires_at": now + self.lease,
        }

    def describe_holder(self) -> str:
        with self.engine.connect() as connection:
            row = connection.execute(select(SchedulerLease).filter_by(name=LEASE_NAME)).first()
        if row is None:
            return "no scheduler has led yet"
        return (
            f"the schedule is led by process {row.pid} on {row.host} (since "
            f"{row.acquired_at:%Y-%m-%d %H:%M} UTC, last heartbeat {row.renewed_at:%H:%M:%S})"
        )


class LeaseRow(_LeaseWriter):
    """The lead as a row with an expiry: taken over when it expired or its process died."""

    def __init__(self, engine: Engine, lease_seconds: float):
        self.engine = engine
        self.holder = _holder_id()
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.heartbeat_seconds = lease_seconds / 3

    def acquire(self) -> bool:
        now = _now()
        with self.engine.begin() as connection:
            row = connection.execute(select(SchedulerLease).filter_by(name=LEASE_NAME)).first()
            if row is None:  # the first lead on this database; another may insert it first
                inserted = connection.execute(
                    sqlite_insert(SchedulerLease)
                    .values(name=LEASE_NAME, **self._values(now, now))
                    .on_conflict_do_nothing()
                )
                return inserted.rowcount == 1
            free = (
                row.holder == self.holder
                or row.expires_at <= now
                or not process_alive(row.host, row.pid)
            )
            if not free:
                return False
            # Compare and set: only if nobody renewed or took it since we read it.
            taken = connection.execute(
                update(SchedulerLease)
                .where(
                    SchedulerLease.name == LEASE_NAME,
                    SchedulerLease.holder == row.holder,
                    SchedulerLease.renewed_at == row.renewed_at,
                )
                .values(**self._values(now, now))
            )
            return taken.rowcount == 1

    def renew(self) -> bool:
        now = _now()
        with self.engine.begin() as connection:
            renewed = connection.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == self.holder)
                .values(renewed_at=now, expires_at=now + self.lease)
            )
            return renewed.rowcount == 1

    def release(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == self.holder)
                .values(expires_at=_now())
            )
        self.engine.dispose()


class AdvisoryLock(_LeaseWriter):
    """The lead as a PostgreSQL advisory lock held by a connection of its own."""

    def __init__(self, url: str, lease_seconds: float):
        # No pool: closing the connection must end the server session (and so the lock).
        self._lock_engine = create_engine(url, poolclass=NullPool)
        self.engine = make_engine(url)
        self.holder = _holder_id()
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.heartbeat_seconds = lease_seconds / 3
        self._connection: Connection | None = None
        self._acquired_at = _now()

    def acquire(self) -> bool:
        connection = self._lock_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
        except BaseException:
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self._connection = connection
        self._acquired_at = _now()
        self._note()
        return True

    def renew(self) -> bool:
        """True while the lock's connection is alive (a broken one lost the lock)."""
        if self._connection is None:
            return False
        try:
            self._connection.scalar(text("SELECT 1"))
        except Exception:
            self._drop()
            return False
        self._note()
        return True

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.scalar(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
            finally:
                self._drop()
        self.engine.dispose()
        self._lock_engine.dispose()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # a broken connection: nothing to close
                connection.close()

    def _note(self) -> None:
        """Write who leads (informational on PostgreSQL: the advisory lock decides)."""
        from sqlalchemy.dialects.postgresql import insert

        now = _now()
        values = self._values(now, self._acquired_at)
        statement = insert(SchedulerLease).values(name=LEASE_NAME, **values)
        with self.engine.begin() as connection:
            connection.execute(
                statement.on_conflict_do_update(index_elements=["name"], set_=values)
            )
