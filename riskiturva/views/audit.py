"""The audit trail as a partner administrator reads it, whose accounts they look after,
and who of those is signed in now.

Events about an organisation's people and data are filed under that organisation
(`audit_event.organisation`): sign-ins and refusals of its staff and viewers, its exports
and decisions. A partner administrator sees the events of the organisations they see, and
their own; one who sees every organisation also sees the rest (sign-in attempts with
unknown names, other partner administrators).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from riskiturva.auth import Viewer
from riskiturva.models_auth import AuditEvent, User
from riskiturva.user_sessions import SessionLimits, active_sessions

# Kinds of event a reader filters by; an action may belong to several.
ACTION_GROUPS: Mapping[str, tuple[str, ...]] = {
    "signin": (
        "login.ok",
        "login.failed",
        "login.throttled",
        "session.signed_out",
        "session.expired",
        "sessions.ended",
    ),
    "refused": ("access.refused", "request.refused", "login.throttled"),
    "exports": (
        "findings.exported",
        "priorities.exported",
        "exceptions.exported",
        "portfolio.exported",
        "report.downloaded",
        "report.rendered",
    ),
    "decisions": ("finding.accepted", "finding.false_positive", "finding.revoked"),
    "inventory": (
        "asset.accepted",
        "asset.rejected",
        "asset.retired",
        "asset.added",
        "asset.updated",
    ),
    "accounts": (
        "user.created",
        "user.disabled",
        "user.password_set",
        "user.totp_enabled",
        "user.totp_disabled",
        "sessions.ended",
        "token.created",
        "token.revoked",
    ),
}
DEFAULT_LIMIT = 300


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: dt.datetime
    actor: str
    action: str
    organisation: str | None
    target: str | None
    address: str | None
    detail: Mapping[str, Any]
    note: str | None


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    display_name: str
    role: str
    organisations: tuple[str, ...]


def audit_entries(
    session: Session,
    viewer: Viewer,
    *,
    group: str | None = None,
    organisation: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[AuditEntry, ...]:
    """The newest events the viewer may see, of one kind (`ACTION_GROUPS`) and one
    organisation when given."""
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    if not viewer.all_organisations:
        query = query.where(
            or_(
                AuditEvent.organisation.in_(sorted(viewer.visible)),
                AuditEvent.actor == viewer.username,
                AuditEvent.target == viewer.username,
            )
        )
    if group is not None:
        query = query.where(AuditEvent.action.in_(ACTION_GROUPS.get(group, ())))
    if organisation is not None:
        query = query.where(AuditEvent.organisation == organisation)
    return tuple(
        AuditEntry(
            id=e.id,
            at=e.at,
            actor=e.actor,
            action=e.action,
            organisation=e.organisation,
            target=e.target,
            address=e.address,
            detail=dict(e.detail or {}),
            note=e.note,
        )
        for e in session.scalars(query)
    )


def managed_accounts(session: Session, viewer: Viewer) -> tuple[Account, ...]:
    """Accounts whose every organisation the viewer sees (every account, for one who sees
    every organisation): whose sessions they may end."""
    accounts = tuple(
        Account(u.id, u.username, u.display_name, u.role, tuple(u.organisations))
        for u in session.scalars(select(User).order_by(User.username))
    )
    if viewer.all_organisations:
        return accounts
    return tuple(a for a in accounts if a.organisations and set(a.organisations) <= viewer.visible)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """One live session of a managed account."""

    username: str
    display_name: str
    signed_in_at: dt.datetime
    last_request_at: dt.datetime
    address: str | None


def signed_in_now(
    session: Session, viewer: Viewer, *, now: dt.datetime, limits: SessionLimits
) -> tuple[SignedIn, ...]:
    """The live sessions of the accounts the viewer looks after, latest request first."""
    accounts = {a.id: a for a in managed_accounts(session, viewer)}
    return tuple(
        SignedIn(
            username=s.username,
            display_name=accounts[s.user_id].display_name,
            signed_in_at=s.created_at,
            last_request_at=s.last_seen_at,
            address=s.address,
        )
        for s in active_sessions(session, list(accounts), now=now, limits=limits)
    )
