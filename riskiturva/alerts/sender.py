"""The sender: due notifications → outbox messages → delivered, never lost, never twice.

One pass (`deliver_due`, the scheduler's `alerts:send` job and `riskiturva alerts send`):

1. **Batch.** Pending notifications whose time has come are gathered per destination
   into messages — every urgent alert due now in one message, the day's non-urgent ones
   in one digest — each with a fresh idempotency key. One transaction.
2. **Claim.** A message is leased to this process (`sending`, `lease_until`, host, pid)
   by a compare-and-set update, with an attempt row, and committed *before* anything is
   sent. A message whose lease ran out, or whose claiming process on this host is gone
   (kill -9), is claimed again; its unfinished attempt is recorded as interrupted.
3. **Send** outside any transaction, then **settle**: sent; or failed for good (the
   receiver refused it, or the attempts ran out: kept, listed, `alerts retry` requeues
   it); or back to pending after an exponential backoff with jitter.

What this guarantees: a notification committed with its reconcile is delivered at least
once while its destination stays configured and the receiver eventually accepts it.
A crash after the receiver took a message but before the outcome was committed makes the
next pass send it again *with the same key*: webhooks carry it as `Idempotency-Key`
(and the payload's `id`), so the receiver drops the repeat; e-mail carries it as the
Message-ID, so the copy is recognisable as the same message (SMTP itself has no way to
refuse a duplicate). Nothing else ever sends a message twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.alerts.channels import Receipt, post, send_email
from riskiturva.alerts.models import (
    AlertAttempt,
    AlertMessage,
    AlertNotification,
    AttemptOutcome,
    MessageKind,
    MessageStatus,
    NotificationStatus,
)
from riskiturva.alerts.render import (
    MessageView,
    email_message,
    load_message,
    slack_payload,
    teams_payload,
    webhook_payload,
)
from riskiturva.alerts.settings import ChannelKind
from riskiturva.config import Config
from riskiturva.mail import DeliveryError
from riskiturva.store import process_alive

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class SendReport:
    """What one pass did."""

    batched: int = 0  # new messages made from due notifications
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0  # notifications or messages whose destination is gone
    errors: list[str] = field(default_factory=list)


def configured(config: Config, destination: str) -> bool:
    """Whether a destination is still named in the configuration."""
    kind, _, name = destination.partition(":")
    alerts = config.settings.alerts
    if kind == "channel":
        return alerts.channel(name) is not None
    tables = [o.alerts for o in config.organisations] + [p.alerts for p in config.partners]
    return kind == "email" and any(c.email == name for t in tables for c in t.contacts)


# --- 1. batch --------------------------------------------------------------------------


def batch_due(session: Session, config: Config, now: dt.datetime) -> tuple[int, int]:
    """Due notifications into one message per (destination, urgency); (made, cancelled)."""
    rows = session.scalars(
        select(AlertNotification)
        .where(
            AlertNotification.status == NotificationStatus.PENDING,
            AlertNotification.due_at <= now,
        )
        .order_by(AlertNotification.id)
        .with_for_update(skip_locked=True)
    ).all()
    groups: dict[tuple[str, str, str], list[AlertNotification]] = {}
    cancelled = 0
    for row in rows:
        if not configured(config, row.destination):
            row.status = NotificationStatus.CANCELLED
            cancelled += 1
            continue
        groups.setdefault((row.destination, row.urgency, row.language), []).append(row)
    for (destination, urgency, language), members in groups.items():
        message = new_message(session, destination, language, urgency, now)
        for member in members:
            member.message_id, member.status = message.id, NotificationStatus.QUEUED
    session.flush()
    return len(groups), cancelled


def new_message(
    session: Session, destination: str, language: str, kind: str, now: dt.datetime
) -> AlertMessage:
    message = AlertMessage(
        key=uuid.uuid4().hex,
        destination=destination,
        language=language,
        kind=kind,
        status=MessageStatus.PENDING,
        created_at=now,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(message)
    session.flush()
    return message


# --- 2. claim --------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    message_id: int
    attempt_id: int
    attempts: int


def _claimable(message: AlertMessage, now: dt.datetime) -> bool:
    if message.status == MessageStatus.PENDING:
        return message.next_attempt_at <= now
    if message.status != MessageStatus.SENDING:
        return False
    if message.lease_until is None or message.lease_until < now:
        return True
    mine = (message.claimed_host, message.claimed_pid) == (socket.gethostname(), os.getpid())
    return not mine and not process_alive(message.claimed_host, message.claimed_pid)


def claim_next(
    sessions: sessionmaker[Session],
    config: Config,
    now: dt.datetime,
    *,
    skip: Iterable[int] = (),
    only: Iterable[int] | None = None,
) -> Claim | None:
    """Lease the next due message to this process, recording the attempt (committed)."""
    host, pid = socket.gethostname(), os.getpid()
    lease = dt.timedelta(seconds=config.settings.alerts.lease_seconds)
    with sessions.begin() as session:
        query = (
            select(AlertMessage)
            .where(
                or_(
                    and_(
                        AlertMessage.status == MessageStatus.PENDING,
                        AlertMessage.next_attempt_at <= now,
                    ),
                    AlertMessage.status == MessageStatus.SENDING,
                ),
                AlertMessage.id.not_in(list(skip)),
            )
            .order_by(AlertMessage.next_attempt_at, AlertMessage.id)
        )
        if only is not None:
            query = query.where(AlertMessage.id.in_(list(only)))
        for message in session.scalars(query.limit(50)):
            if not _claimable(message, now):
                continue
            won = session.execute(
                update(AlertMessage)
                .where(
                    AlertMessage.id == message.id,
                    AlertMessage.status == message.status,
                    AlertMessage.attempts == message.attempts,
                )
                .values(
                    status=MessageStatus.SENDING,
                    lease_until=now + lease,
                    claimed_host=host,
                    claimed_pid=pid,
                    attempts=message.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], won).rowcount != 1:
                continue  # another sender took it first
            session.execute(
                update(AlertAttempt)
                .where(
                    AlertAttempt.message_id == message.id,
                    AlertAttempt.outcome == AttemptOutcome.RUNNING,
                )
                .values(
                    outcome=AttemptOutcome.INTERRUPTED,
                    finished_at=now,
                    error="the sending process ended before recording the outcome; "
                    "the receiver may have the message (same key on the next attempt)",
                )
                .execution_options(synchronize_session=False)
            )
            attempt = AlertAttempt(
                message_id=message.id,
                started_at=now,
                outcome=AttemptOutcome.RUNNING,
                host=host,
                pid=pid,
            )
            session.add(attempt)
            session.flush()
            return Claim(message.id, attempt.id, message.attempts + 1)
    return None


# --- 3. send and settle ----------------------------------------------------------------


def transmit(config: Config, destination: str, view: MessageView, now: dt.datetime) -> Receipt:
    """Hand the rendered message to its receiver; `DeliveryError` when it did not take it."""
    settings = config.settings
    kind, _, name = destination.partition(":")
    if kind == "email":
        message = email_message(
            view, sender=settings.reports.smtp.from_address, recipient=name, now=now
        )
        return send_email(message, settings)
    channel = settings.alerts.channel(name)
    if channel is None:
        raise DeliveryError(f"the channel {name} is no longer configured", permanent=True)
    payload = {
        ChannelKind.TEAMS: teams_payload,
        ChannelKind.SLACK: slack_payload,
        ChannelKind.WEBHOOK: webhook_payload,
    }[channel.kind](view)
    return post(channel, payload, key=view.key, settings=settings, now=now.timestamp())


def _takes_every_alert(config: Config, destination: str) -> bool:
    kind, _, name = destination.partition(":")
    channel = config.settings.alerts.channel(name) if kind == "channel" else None
    return channel is not None and channel.kind is ChannelKind.WEBHOOK


def backoff(config: Config, attempts: int, retry_after: float | None = None) -> dt.timedelta:
    """Exponential from `retry_seconds`, capped, with jitter; at least what the receiver
    asked for (Retry-After)."""
    settings = config.settings.alerts
    delay = min(settings.retry_seconds * 2 ** max(attempts - 1, 0), settings.retry_max_seconds)
    delay *= random.uniform(0.75, 1.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.retry_max_seconds))
    return dt.timedelta(seconds=delay)


def deliver_claimed(
    sessions: sessionmaker[Session], config: Config, claim: Claim, clock: Clock
) -> MessageStatus:
    """Render, send and settle one claimed message."""
    with sessions() as session:
        message = session.get_one(AlertMessage, claim.message_id)
        destination, is_test = message.destination, message.kind == MessageKind.TEST
        view = load_message(
            session, message, config, complete=_takes_every_alert(config, destination)
        )
    error: DeliveryError | None = None
    receipt = Receipt()
    if not is_test and not configured(config, destination):
        error = DeliveryError(f"{destination} is no longer configured", permanent=True)
    else:
        try:
            receipt = transmit(config, destination, view, clock())
        except DeliveryError as exc:
            error = exc
    now = clock()
    with sessions.begin() as session:
        message = session.get_one(AlertMessage, claim.message_id)
        attempt = session.get_one(AlertAttempt, claim.attempt_id)
        attempt.finished_at = now
        attempt.status_code = getattr(error, "status_code", None) or receipt.status_code
        still_mine = message.status == MessageStatus.SENDING and message.attempts == claim.attempts
        if error is None:
            attempt.outcome = AttemptOutcome.SENT
            outcome = MessageStatus.SENT
            if still_mine:
                message.sent_at, message.last_error = now, None
        else:
            attempt.error = str(error)[:2000]
            outcome = _after_failure(config, claim.attempts, error, destination, is_test)
            attempt.outcome = (
                AttemptOutcome.RETRY if outcome is MessageStatus.PENDING else AttemptOutcome.FAILED
            )
            if still_mine:
                message.last_error = attempt.error
                if outcome is MessageStatus.PENDING:
                    retry_after = getattr(error, "retry_after", None)
                    message.next_attempt_at = now + backoff(config, claim.attempts, retry_after)
        if still_mine:
            message.status, message.lease_until = outcome, None
    if error is not None:
        log.warning("alert message %s to %s: %s (%s)", view.key, destination, error, outcome)
    return outcome


def _after_failure(
    config: Config, attempts: int, error: DeliveryError, destination: str, is_test: bool
) -> MessageStatus:
    if is_test:
        return MessageStatus.FAILED  # a test says what happened now; it is not retried
    if not configured(config, destination):
        return MessageStatus.CANCELLED
    if error.permanent or attempts >= config.settings.alerts.max_attempts:
        return MessageStatus.FAILED
    return MessageStatus.PENDING


def deliver_due(
    sessions: sessionmaker[Session], config: Config, *, clock: Clock = utc_now
) -> SendReport:
    """One pass: batch what is due, then deliver every message due at the pass's start."""
    report = SendReport()
    with sessions.begin() as session:
        report.batched, report.cancelled = batch_due(session, config, clock())
    started = clock()
    done: set[int] = set()
    while (claim := claim_next(sessions, config, started, skip=done)) is not None:
        done.add(claim.message_id)
        _count(report, deliver_claimed(sessions, config, claim, clock))
    return report


def _count(report: SendReport, outcome: MessageStatus) -> None:
    if outcome is MessageStatus.SENT:
        report.sent += 1
    elif outcome is MessageStatus.PENDING:
        report.retrying += 1
    elif outcome is MessageStatus.FAILED:
        report.failed += 1
    else:
        report.cancelled += 1


def send_test(
    sessions: sessionmaker[Session],
    config: Config,
    destination: str,
    language: str,
    *,
    clock: Clock = utc_now,
) -> tuple[MessageStatus, str | None]:
    """A test message to one destination, through the outbox like any other (kept in the
    history); (outcome, last error)."""
    with sessions.begin() as session:
        message_id = new_message(session, destination, language, MessageKind.TEST, clock()).id
    claim = claim_next(sessions, config, clock(), only=[message_id])
    assert claim is not None, "a new message is always claimable"
    outcome = deliver_claimed(sessions, config, claim, clock)
    with sessions() as session:
        return outcome, session.get_one(AlertMessage, message_id).last_error


def requeue(
    session: Session, now: dt.datetime, *, message_ids: Iterable[int] = (), failed: bool = False
) -> list[int]:
    """Failed (or named) messages back to pending, due now, with a fresh set of attempts."""
    conditions: list[ColumnElement[bool]] = []
    ids = list(message_ids)
    if ids:
        conditions.append(AlertMessage.id.in_(ids))
    if failed:  # not the test messages: they said what happened at the time
        conditions.append(
            and_(AlertMessage.status == MessageStatus.FAILED, AlertMessage.kind != MessageKind.TEST)
        )
    if not conditions:
        return []
    rows = session.scalars(
        select(AlertMessage).where(
            or_(*conditions), AlertMessage.status.in_([MessageStatus.FAILED, MessageStatus.PENDING])
        )
    ).all()
    for row in rows:
        row.status, row.attempts, row.next_attempt_at = MessageStatus.PENDING, 0, now
    return [r.id for r in rows]
