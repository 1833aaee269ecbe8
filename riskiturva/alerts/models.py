"""The alert tables: alerts, their notifications, the outbox messages and every attempt.

- `Alert`: one per (rule, what it is about) — the dedupe key is unique, so a rule never
  says the same thing twice; a throttled repeat only counts up `repeats`.
- `AlertNotification`: one per alert and destination, written in the reconcile's
  transaction, due at once (urgent) or at the next digest time.
- `AlertMessage`: the outbox. The sender gathers due notifications of one destination
  into a message with an idempotency key, then delivers it: pending → sending (leased to
  one process) → sent, or back to pending with a backoff, or failed after the last attempt.
- `AlertAttempt`: every delivery attempt, with its outcome.
- `ScanStreak`: per organisation and collector, the failed runs in a row.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from riskiturva.models import Finding, Organisation
from riskiturva.orm import Base


class Urgency(enum.StrEnum):
    IMMEDIATE = "immediate"
    DIGEST = "digest"


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its due time
    QUEUED = "queued"  # in a message
    CANCELLED = "cancelled"  # its destination is no longer configured


class MessageKind(enum.StrEnum):
    IMMEDIATE = "immediate"
    DIGEST = "digest"
    TEST = "test"


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # the receiver refused it for good, or the attempts ran out
    CANCELLED = "cancelled"


class AttemptOutcome(enum.StrEnum):
    RUNNING = "running"
    SENT = "sent"
    RETRY = "retry"  # failed; another attempt is scheduled
    FAILED = "failed"  # failed; no further attempt
    INTERRUPTED = "interrupted"  # the sending process died: the receiver may have it


class Alert(Base):
    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)  # public id in payloads
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    rule: Mapped[str] = mapped_column(String(30), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("finding.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("scan_run.id"))
    severity: Mapped[str] = mapped_column(String(10))
    urgency: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(500))
    check_id: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    throttle_key: Mapped[str | None] = mapped_column(String(300), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(index=True)
    repeats: Mapped[int] = mapped_column(default=0)  # throttled occurrences since
    last_repeat_at: Mapped[dt.datetime | None]

    organisation: Mapped[Organisation] = relationship()
    finding: Mapped[Finding | None] = relationship()
    notifications: Mapped[list[AlertNotification]] = relationship(back_populates="alert")


class AlertMessage(Base):
    __tablename__ = "alert_message"
    __table_args__ = (Index("ix_alert_message_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # the idempotency key
    destination: Mapped[str] = mapped_column(String(300), index=True)
    language: Mapped[str] = mapped_column(String(2))
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), default=MessageStatus.PENDING)
    created_at: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime]
    lease_until: Mapped[dt.datetime | None]
    claimed_host: Mapped[str | None] = mapped_column(String(255))
    claimed_pid: Mapped[int | None]
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    notifications: Mapped[list[AlertNotification]] = relationship(back_populates="message")
    attempt_rows: Mapped[list[AlertAttempt]] = relationship(
        back_populates="message", order_by="AlertAttempt.id"
    )


class AlertNotification(Base):
    __tablename__ = "alert_notification"
    __table_args__ = (
        UniqueConstraint("alert_id", "destination"),
        Index("ix_alert_notification_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id"), index=True)
    destination: Mapped[str] = mapped_column(String(300))  # "email:…" or "channel:…"
    language: Mapped[str] = mapped_column(String(2))
    urgency: Mapped[str] = mapped_column(String(10))
    due_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(12), default=NotificationStatus.PENDING)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("alert_message.id"), index=True)

    alert: Mapped[Alert] = relationship(back_populates="notifications")
    message: Mapped[AlertMessage | None] = relationship(back_populates="notifications")


class AlertAttempt(Base):
    __tablename__ = "alert_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("alert_message.id"), index=True)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    outcome: Mapped[str] = mapped_column(String(12), default=AttemptOutcome.RUNNING)
    status_code: Mapped[int | None]  # the HTTP status, when there was one
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]

    message: Mapped[AlertMessage] = relationship(back_populates="attempt_rows")


class ScanStreak(Base):
    """How many runs of a collector in a row could not scan an organisation."""

    __tablename__ = "alert_scan_streak"
    __table_args__ = (UniqueConstraint("organisation_id", "collector"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    collector: Mapped[str] = mapped_column(String(50))
    failures: Mapped[int] = mapped_column(default=0)
    first_failed_run_id: Mapped[int | None]
    last_run_id: Mapped[int]
    last_error: Mapped[str | None] = mapped_column(Text)
