"""What the faces show of alerts: recent alerts of the visible organisations with where
each went, and the outbox. Frozen rows; the CLI and the dashboard only format them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from riskiturva.alerts.models import Alert, AlertMessage, AlertNotification
from riskiturva.alerts.render import alert_view
from riskiturva.checks import load_registry
from riskiturva.config import Config
from riskiturva.models import Organisation


@dataclass(frozen=True)
class Delivery:
    destination: str
    state: str  # waiting (for its digest or the next pass), sending, sent, failed, cancelled


@dataclass(frozen=True)
class AlertRow:
    id: int
    uid: str
    created_at: dt.datetime
    organisation: str
    organisation_name: str
    rule: str
    severity: str
    urgency: str
    title: str
    subject: str
    url: str
    repeats: int
    deliveries: tuple[Delivery, ...]

    @property
    def delivered(self) -> bool:
        return bool(self.deliveries) and all(d.state == "sent" for d in self.deliveries)


@dataclass(frozen=True)
class MessageRow:
    id: int
    key: str
    destination: str
    kind: str
    status: str
    attempts: int
    alerts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    last_error: str | None


def _state(notification: AlertNotification) -> str:
    if notification.message is None:
        return "cancelled" if notification.status == "cancelled" else "waiting"
    status = notification.message.status
    return "waiting" if status == "pending" else status


def recent_alerts(
    session: Session,
    visible: Collection[str],
    config: Config,
    *,
    language: str,
    since: dt.datetime | None = None,
    organisation: str | None = None,
    limit: int = 100,
) -> list[AlertRow]:
    """Alerts of the visible organisations, newest first, with their deliveries."""
    slugs = [s for s in visible if organisation is None or s == organisation]
    query = (
        select(Alert)
        .join(Organisation, Alert.organisation_id == Organisation.id)
        .where(Organisation.slug.in_(slugs))
        .options(
            selectinload(Alert.organisation),
            selectinload(Alert.finding),
            selectinload(Alert.notifications).selectinload(AlertNotification.message),
        )
        .order_by(Alert.created_at.desc(), Alert.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(Alert.created_at >= since)
    registry = load_registry()
    rows = []
    for alert in session.scalars(query):
        view = alert_view(alert, alert.organisation, alert.finding, config, language, registry)
        rows.append(
            AlertRow(
                id=alert.id,
                uid=alert.uid,
                created_at=alert.created_at,
                organisation=view.organisation,
                organisation_name=view.organisation_name,
                rule=alert.rule,
                severity=alert.severity,
                urgency=alert.urgency,
                title=view.title,
                subject=alert.subject,
                url=view.url,
                repeats=alert.repeats,
                deliveries=tuple(
                    Delivery(n.destination, _state(n))
                    for n in sorted(alert.notifications, key=lambda n: n.destination)
                ),
            )
        )
    return rows


def outbox(
    session: Session, *, statuses: Collection[str] = (), limit: int = 100
) -> list[MessageRow]:
    """Outbox messages, newest first (administrators only: a digest spans organisations)."""
    counts = (
        select(AlertNotification.message_id, func.count(AlertNotification.id).label("n"))
        .group_by(AlertNotification.message_id)
        .subquery()
    )
    query = (
        select(AlertMessage, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.message_id == AlertMessage.id)
        .order_by(AlertMessage.created_at.desc(), AlertMessage.id.desc())
        .limit(limit)
    )
    if statuses:
        query = query.where(AlertMessage.status.in_(list(statuses)))
    return [
        MessageRow(
            id=m.id,
            key=m.key,
            destination=m.destination,
            kind=m.kind,
            status=m.status,
            attempts=m.attempts,
            alerts=int(n),
            created_at=m.created_at,
            next_attempt_at=m.next_attempt_at,
            sent_at=m.sent_at,
            last_error=m.last_error,
        )
        for m, n in session.execute(query)
    ]
