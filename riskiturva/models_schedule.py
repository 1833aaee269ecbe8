"""Tables of the scheduler's coordination (migration 0004): who leads, and which fire times
were handled.

`SchedulerLease` is the leader lock on SQLite (a row with a heartbeat, taken over after it
expires); on PostgreSQL the lock is an advisory lock and the row only says who holds it.
`SchedulerFire` has one row per (job, fire time) a scheduler handled, run or skipped: its
primary key makes a second scheduler's attempt at the same fire time fail, so a fire time
yields one run even if two schedulers ever believed they led at once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Float, LargeBinary, String, Table, Unicode
from sqlalchemy.orm import Mapped, mapped_column

from riskiturva.orm import Base

# APScheduler's job store, as `SQLAlchemyJobStore` defines it; created by the migrations so
# that schedulers starting at the same moment on a new database do not race to create it.
APSCHEDULER_JOBS = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class SchedulerLease(Base):
    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))  # host:pid:token of the leading process
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    acquired_at: Mapped[dt.datetime]
    renewed_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


class SchedulerFire(Base):
    __tablename__ = "scheduler_fire"

    job_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    fire_time: Mapped[dt.datetime] = mapped_column(primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20))  # "run" or "skipped"
    holder: Mapped[str] = mapped_column(String(255))
    handled_at: Mapped[dt.datetime] = mapped_column(index=True)
