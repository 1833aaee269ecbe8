"""Database errors as data: which are worth a retry, and what to tell the operator.

A write that meets another writer's lock, a serialisation conflict or a database server
that is restarting is retried with backoff within a bound; a full disk or any other error
is not. When a write gives up, `StoreWriteError` carries one paragraph for the person at
the terminal or reading the log: what happened, what it means for the findings, what to do.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0


class StoreFault(enum.StrEnum):
    LOCKED = "locked"  # another writer held the database (SQLite lock, PostgreSQL conflict)
    UNREACHABLE = "unreachable"  # the server is down, restarting or the connection broke
    DISK_FULL = "disk_full"
    IO_ERROR = "io_error"  # SQLite could not read or write its files (often: no space left)
    OTHER = "other"

    @property
    def transient(self) -> bool:
        return self in (StoreFault.LOCKED, StoreFault.UNREACHABLE)


# SQLite primary result codes (sqlite3 exceptions carry the extended code).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_IOERR, _SQLITE_FULL = 5, 6, 10, 13
# PostgreSQL SQLSTATEs: serialization_failure, deadlock_detected, lock_not_available;
# admin_shutdown, crash_shutdown, cannot_connect_now; disk_full.
_PG_CONFLICT = {"40001", "40P01", "55P03"}
_PG_RESTARTING = {"57P01", "57P02", "57P03"}
_PG_DISK_FULL = "53100"


def classify(error: BaseException) -> StoreFault:
    """What kind of database failure `error` is (OTHER when it is not one we know)."""
    original = getattr(error, "orig", None) or error
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return StoreFault.UNREACHABLE
    code = getattr(original, "sqlite_errorcode", None)
    if code is not None:
        primary = code & 0xFF
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return StoreFault.LOCKED
        if primary == _SQLITE_FULL:
            return StoreFault.DISK_FULL
        if primary == _SQLITE_IOERR:
            return StoreFault.IO_ERROR
        return StoreFault.OTHER
    state = getattr(original, "sqlstate", None)
    if state in _PG_CONFLICT:
        return StoreFault.LOCKED
    if state == _PG_DISK_FULL:
        return StoreFault.DISK_FULL
    if state in _PG_RESTARTING or (state or "").startswith("08"):
        return StoreFault.UNREACHABLE
    if state is None and type(original).__name__ == "OperationalError":
        # psycopg: connection refused, server closed the connection, … (no SQLSTATE)
        return StoreFault.UNREACHABLE
    if isinstance(original, OSError) and original.errno == 28:  # ENOSPC
        return StoreFault.DISK_FULL
    return StoreFault.OTHER


def cause(error: BaseException) -> str:
    """The database's own one-line message, without SQLAlchemy's statement and link."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


_WHAT_TO_DO = {
    StoreFault.LOCKED: (
        "Another program held the database the whole time: find it (another riskiturva "
        "process writing, a backup, or an sqlite3 shell with an open transaction) and let it "
        "finish, then try again."
    ),
    StoreFault.UNREACHABLE: (
        "The database server could not be reached: check that it is running and reachable "
        "from this machine, then try again (the scheduler reconnects by itself)."
    ),
    StoreFault.DISK_FULL: (
        "The disk that holds the database is full: free space there (old reports, logs, "
        "`riskiturva db prune`), then try again."
    ),
    StoreFault.IO_ERROR: (
        "The database's files could not be read or written: check that the disk holding them "
        "is not full (df) and is healthy (the kernel log), then try again."
    ),
    StoreFault.OTHER: (
        "Check the database's own log and docs/operations.md, fix the cause, then try again."
    ),
}


@dataclass
class StoreWriteError(Exception):
    """A write to the database gave up; `paragraph()` explains it to a person."""

    what: str  # e.g. "save the results of the tls run 12"
    fault: StoreFault
    detail: str  # the database's own message
    attempts: int
    waited_s: float
    recorded: str = ""  # what is in the database instead (set by the caller)

    def __str__(self) -> str:
        return f"could not {self.what}: {self.detail}"

    def paragraph(self) -> str:
        tried = (
            f" after {self.attempts} attempts over {self.waited_s:.0f} s"
            if self.attempts > 1
            else ""
        )
        recorded = f" {self.recorded}" if self.recorded else ""
        return (
            f"Riskiturva could not {self.what}{tried}: {self.detail}. Nothing was resolved and "
            f"no stored finding was changed.{recorded} {_WHAT_TO_DO[self.fault]} "
            '(docs/operations.md, "What a failure looks like")'
        )


def write_with_retry(
    sessions: sessionmaker[Session],
    write: Callable[[Session], T],
    *,
    what: str,
    budget_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `write` (or a read) in a transaction; on a transient failure roll back and run
    it again.

    `write` must build everything it writes from scratch on each call. Backoff doubles
    from 0.5 s to 8 s; after `budget_s` seconds, or at once on a permanent failure,
    `StoreWriteError` is raised.
    """
    started = time.monotonic()
    backoff = FIRST_BACKOFF_S
    attempts = 0
    while True:
        attempts += 1
        try:
            with sessions.begin() as session:
                return write(session)
        except SQLAlchemyError as error:
            fault = classify(error)
            waited = time.monotonic() - started
            if not fault.transient or waited + backoff > budget_s:
                raise StoreWriteError(what, fault, cause(error), attempts, waited) from error
            log.warning(
                "could not %s (%s: %s); trying again in %.1f s", what, fault, cause(error), backoff
            )
            sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)


def store_failure_paragraph(error: SQLAlchemyError) -> str:
    """One paragraph for a database failure that reached a command (not a retried write)."""
    fault = classify(error)
    return (
        f"Riskiturva could not use its database: {cause(error)}. The command stopped; what "
        f"was saved before it is unchanged. {_WHAT_TO_DO[fault]} "
        '(docs/operations.md, "What a failure looks like")'
    )
