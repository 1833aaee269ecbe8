"""Alerts as a reader may see them: the recent alerts of the visible organisations and
where each went, the outbox messages whose every alert the reader may see, and who hears
of an organisation's alerts under which rules — never a webhook URL or secret.

A digest to a partner's security team spans its organisations: it is listed only to a
reader who sees all of them; each alert's own delivery states are listed to every reader
of its organisation. Test messages (no alerts) are listed only when asked (the CLI).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, selectinload

from riskiturva.alerts.models import Alert, AlertMessage, AlertNotification, MessageKind
from riskiturva.alerts.render import alert_view, dashboard_path
from riskiturva.alerts.settings import Contact
from riskiturva.checks import load_registry
from riskiturva.config import Config
from riskiturva.models import Organisation
from riskiturva.views.organisations import OrganisationRef, ref_of
from riskiturva.views.organisations import organisation as visible_organisation


@dataclass(frozen=True, slots=True)
class Delivery:
    destination: str  # "email:it@…" or "channel:soc-teams"
    state: str  # waiting (for its digest or the next pass), sending, sent, failed, cancelled


@dataclass(frozen=True, slots=True)
class AlertEntry:
    id: int
    uid: str  # the id in every message and webhook payload
    created_at: dt.datetime
    organisation: OrganisationRef
    rule: str
    severity: str
    urgency: str  # immediate or digest
    title: str  # in the reader's language
    subject: str  # from the scanned world: shown as text
    finding_id: int | None
    path: str  # the dashboard page about it: /findings/12, /org/rapala/score, …
    url: str  # the same under settings.alerts.dashboard_url, as in the messages
    repeats: int  # throttled repeats of a flapping finding
    deliveries: tuple[Delivery, ...]

    @property
    def delivered(self) -> bool:
        return bool(self.deliveries) and all(d.state == "sent" for d in self.deliveries)


@dataclass(frozen=True, slots=True)
class MessageEntry:
    """One outbox message: one destination, one immediate batch or digest (or a test)."""

    id: int
    key: str  # the idempotency key
    destination: str
    kind: str  # immediate, digest or test
    status: str  # pending, sending, sent, failed, cancelled
    attempts: int
    alerts: int
    organisations: tuple[str, ...]  # slugs of the organisations its alerts are about
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    last_error: str | None  # names the channel and its host only


def _state(notification: AlertNotification) -> str:
    if notification.message is None:
        return "cancelled" if notification.status == "cancelled" else "waiting"
    status = notification.message.status
    return "waiting" if status == "pending" else status


def alerts(
    session: Session,
    visible: Collection[str],
    config: Config,
    *,
    language: str,
    organisation: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 100,
) -> list[AlertEntry]:
    """Alerts of the visible organisations (or of one: `NotVisible` if not the reader's),
    newest first, with their deliveries."""
    if organisation is not None:
        slugs = [visible_organisation(session, visible, organisation).slug]
    else:
        slugs = list(visible)
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
    entries = []
    for alert in session.scalars(query):
        words = alert_view(alert, alert.organisation, alert.finding, config, language, registry)
        entries.append(
            AlertEntry(
                id=alert.id,
                uid=alert.uid,
                created_at=alert.created_at,
                organisation=ref_of(alert.organisation),
                rule=alert.rule,
                severity=alert.severity,
                urgency=alert.urgency,
                title=words.title,
                subject=alert.subject,
                finding_id=alert.finding_id,
                path=dashboard_path(alert, alert.organisation.slug),
                url=words.url,
                repeats=alert.repeats,
                deliveries=tuple(
                    Delivery(n.destination, _state(n))
                    for n in sorted(alert.notifications, key=lambda n: n.destination)
                ),
            )
        )
    return entries


def outbox(
    session: Session,
    visible: Collection[str],
    *,
    statuses: Collection[str] = (),
    tests: bool = False,
    limit: int = 100,
) -> list[MessageEntry]:
    """Outbox messages, newest first, whose every alert is of a visible organisation (and,
    with `tests`, the test messages, which hold none)."""
    per_message = (
        select(
            AlertNotification.message_id.label("message_id"),
            func.count(AlertNotification.id).label("alerts"),
            func.sum(case((Organisation.slug.in_(list(visible)), 0), else_=1)).label("outside"),
        )
        .join(Alert, AlertNotification.alert_id == Alert.id)
        .join(Organisation, Alert.organisation_id == Organisation.id)
        .where(AlertNotification.message_id.is_not(None))
        .group_by(AlertNotification.message_id)
        .subquery()
    )
    shown = and_(per_message.c.alerts > 0, per_message.c.outside == 0)
    if tests:
        shown = or_(shown, AlertMessage.kind == MessageKind.TEST)
    query = (
        select(AlertMessage, func.coalesce(per_message.c.alerts, 0))
        .outerjoin(per_message, per_message.c.message_id == AlertMessage.id)
        .where(shown)
        .order_by(AlertMessage.created_at.desc(), AlertMessage.id.desc())
        .limit(limit)
    )
    if statuses:
        query = query.where(AlertMessage.status.in_(list(statuses)))
    found = list(session.execute(query))
    organisations = _organisations_of(session, [m.id for m, _ in found])
    return [
        MessageEntry(
            id=m.id,
            key=m.key,
            destination=m.destination,
            kind=m.kind,
            status=m.status,
            attempts=m.attempts,
            alerts=int(n),
            organisations=organisations.get(m.id, ()),
            created_at=m.created_at,
            next_attempt_at=m.next_attempt_at,
            sent_at=m.sent_at,
            last_error=m.last_error,
        )
        for m, n in found
    ]


def _organisations_of(session: Session, message_ids: list[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, set[str]] = {}
    for message_id, slug in session.execute(
        select(AlertNotification.message_id, Organisation.slug)
        .join(Alert, AlertNotification.alert_id == Alert.id)
        .join(Organisation, Alert.organisation_id == Organisation.id)
        .where(AlertNotification.message_id.in_(message_ids))
        .distinct()
    ):
        if message_id is not None:
            found.setdefault(message_id, set()).add(slug)
    return {key: tuple(sorted(slugs)) for key, slugs in found.items()}


@dataclass(frozen=True, slots=True)
class RuleSetting:
    rule: str
    enabled: bool
    settings: Mapping[str, Any]  # the rule's other keys: min_severity, days, points, …
    own: bool  # the organisation's configuration overrides some of it


@dataclass(frozen=True, slots=True)
class Recipient:
    """One destination of the organisation's alerts: an address or a named channel."""

    via: str  # email, teams, slack or webhook
    address: str  # the e-mail address, or the channel's name
    host: str | None  # a channel's receiver host (the URL itself is a secret)
    language: str
    receives: str  # "all" of the organisation's alerts, or only "critical" ones
    digest: bool  # also the daily digest (false: only what is sent at once)
    partner: str | None  # the partner whose security team this is; None: the organisation's


@dataclass(frozen=True, slots=True)
class AlertSetup:
    """Who hears of one organisation's alerts, when, and under which rules."""

    organisation: OrganisationRef
    enabled: bool
    immediate_from: str  # this severity and worse is sent at once
    digest_time: str  # HH:MM local time of the daily digest
    timezone: str
    rules: tuple[RuleSetting, ...]
    recipients: tuple[Recipient, ...]


def alert_setup(
    session: Session, visible: Collection[str], config: Config, slug: str
) -> AlertSetup:
    """The alert settings in force for one visible organisation (`NotVisible` otherwise)."""
    ref = visible_organisation(session, visible, slug)
    settings = config.settings.alerts
    try:
        org_alerts = config.organisation(slug).alerts
    except KeyError:  # removed from the configuration: nobody is told any more
        org_alerts = None
    rules = settings.rules if org_alerts is None else settings.rules.overridden_by(org_alerts.rules)
    written = set() if org_alerts is None else org_alerts.rules.model_fields_set
    recipients: list[Recipient] = []
    if org_alerts is not None:
        recipients += _recipients(config, org_alerts.contacts, org_alerts.channels, "all", None)
        for partner in config.partners:
            if slug in partner.organisations:
                team = partner.alerts
                recipients += _recipients(
                    config, team.contacts, team.channels, team.receives, partner.name
                )
    return AlertSetup(
        organisation=ref,
        enabled=settings.enabled,
        immediate_from=str(settings.immediate_from),
        digest_time=settings.digest_time,
        timezone=config.settings.schedules.timezone,
        rules=tuple(
            RuleSetting(
                rule=name,
                enabled=getattr(rules, name).enabled,
                settings={
                    key: value
                    for key, value in getattr(rules, name).model_dump(mode="json").items()
                    if key != "enabled"
                },
                own=name in written,
            )
            for name in type(rules).model_fields
        ),
        recipients=tuple(recipients),
    )


def _recipients(
    config: Config,
    contacts: Collection[Contact],
    channels: Collection[str],
    receives: str,
    partner: str | None,
) -> list[Recipient]:
    found = [
        Recipient("email", str(c.email), None, c.language, receives, True, partner)
        for c in contacts
    ]
    for name in channels:
        channel = config.settings.alerts.channel(name)
        if channel is not None:
            found.append(
                Recipient(
                    str(channel.kind), name, channel.host, channel.language, receives,
                    channel.digest, partner,
                )
            )  # fmt: skip
    return found
