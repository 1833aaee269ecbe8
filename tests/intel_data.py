"""Vulnerability intelligence for tests: the lab's feed files imported into a real store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from riskiturva.db import upgrade
from riskiturva.intel.snapshot import IntelSnapshot
from riskiturva.intel.update import import_directory
from riskiturva.lab._intel import write_feeds
from riskiturva.store import make_engine, session_factory

# The day the rules tests judge on: lifecycle dates are compared with it, not with today.
DAY = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)


def feeds(directory: Path, as_of: dt.datetime = DAY) -> Path:
    """The lab's feeds, in their published formats, dated `as_of`."""
    return write_feeds(directory / f"feeds-{as_of:%Y%m%d}", as_of)


def store(directory: Path, as_of: dt.datetime = DAY) -> sessionmaker[Session]:
    """A SQLite store holding the lab's feeds dated `as_of`."""
    engine = make_engine(f"sqlite:///{directory / 'intel.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    import_directory(sessions, feeds(directory, as_of), now=as_of)
    return sessions


def snapshot(
    sessions: sessionmaker[Session], now: dt.datetime = DAY, max_age_days: int = 14
) -> IntelSnapshot:
    return IntelSnapshot(sessions, now=now, max_age_days=max_age_days, epss_threshold=0.1)


def fresh_snapshot(directory: Path) -> IntelSnapshot:
    """The lab's feeds dated now, judged now (for the lab tests, which run on today)."""
    now = dt.datetime.now(dt.UTC)
    return snapshot(store(directory, as_of=now), now=now)
