"""Server-side sign-in sessions of the dashboard: each one a row that can be ended at once.

Why a table and not a per-user generation number: a generation ends *every* session of the
account together, so signing out on one computer would sign the user out on all of them,
and it cannot time out an idle browser or list who is signed in where. A row per sign-in
does all three: sign-out ends that one row, a new password, disabling or "sign out
everywhere" end all the account's rows, and each request checks the row's idle and
absolute limits.

The browser holds a random 256-bit token (inside Flask's signed cookie); the table keeps
only its SHA-256, so a copy of the database (a backup) opens no session. A fast hash is
enough for a random token of that length: there is nothing to guess.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from riskiturva.config import DashboardSettings
from riskiturva.models_auth import User, UserSession

__all__ = [
    "ActiveSession",
    "EndReason",
    "Resumed",
    "SessionLimits",
    "active_sessions",
    "end",
    "end_all",
    "resume",
    "start",
]

# `last_seen_at` is written at most this often: a request does not need a write, and idle
# limits are minutes long.
TOUCH_INTERVAL = dt.timedelta(seconds=60)


class EndReason:
    """Why a session ended (`dashboard_session.ended_reason`)."""

    SIGNED_OUT = "signed_out"
    IDLE = "idle"
    EXPIRED = "expired"
    NEW_PASSWORD = "password_changed"  # noqa: S105  (a reason, not a password)
    DISABLED = "disabled"
    EVERYWHERE = "ended_everywhere"
    ROLE_REVOKED = "role_revoked"  # the identity provider no longer gives them a role


@dataclass(frozen=True)
class SessionLimits:
    """How long a sign-in lasts: `lifetime` in all, `idle` without a request."""

    lifetime: dt.timedelta
    idle: dt.timedelta

    @classmethod
    def from_settings(cls, settings: DashboardSettings) -> SessionLimits:
        return cls(
            lifetime=dt.timedelta(hours=settings.session_hours),
            idle=dt.timedelta(minutes=settings.session_idle_minutes),
        )


@dataclass(frozen=True)
class ActiveSession:
    id: int
    user_id: int
    username: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    address: str | None


@dataclass(frozen=True)
class Resumed:
    """A token of a session that was live until now: its user, and whether it still is."""

    user_id: int
    ended: str | None = None  # EndReason, when this request found the session over

    @property
    def live(self) -> bool:
        return self.ended is None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    session: Session,
    user_id: int,
    *,
    now: dt.datetime,
    limits: SessionLimits,
    address: str | None = None,
    user_agent: str | None = None,
) -> str:
    """Open a session for the user; returns the token for the browser (never stored)."""
    session.execute(  # ended or expired sessions older than any live one: no longer needed
        delete(UserSession).where(UserSession.expires_at < now - limits.lifetime)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            token_hash=_hash(token),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + limits.lifetime,
            address=address,
            user_agent=(user_agent or "")[:200] or None,
        )
    )
    session.flush()
    return token


def resume(
    session: Session, token: str, *, now: dt.datetime, limits: SessionLimits
) -> Resumed | None:
    """The session of `token`, marked as used; one past its limits ends here. None: the
    token names no session, or one that had already ended."""
    row = session.scalar(select(UserSession).where(UserSession.token_hash == _hash(token)))
    if row is None or row.ended_at is not None:
        return None
    if now >= row.expires_at:
        _end(row, EndReason.EXPIRED, now)
        return Resumed(row.user_id, EndReason.EXPIRED)
    if now - row.last_seen_at >= limits.idle:
        _end(row, EndReason.IDLE, now)
        return Resumed(row.user_id, EndReason.IDLE)
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = now
    return Resumed(row.user_id)


def _end(row: UserSession, reason: str, now: dt.datetime) -> None:
    row.ended_at, row.ended_reason = now, reason


def end(
    session: Session, token: str, *, now: dt.datetime, reason: str = EndReason.SIGNED_OUT
) -> int | None:
    """End the session of `token` (signing out); returns its user, None if it was not live."""
    row = session.scalar(select(UserSession).where(UserSession.token_hash == _hash(token)))
    if row is None or row.ended_at is not None:
        return None
    _end(row, reason, now)
    return row.user_id


def end_all(session: Session, user_id: int, *, now: dt.datetime, reason: str) -> int:
    """End every live session of the user; returns how many were live."""
    live = session.scalars(
        select(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
    ).all()
    for row in live:
        _end(row, reason, now)
    return len(live)


def active_sessions(
    session: Session, user_ids: Collection[int] | None, *, now: dt.datetime, limits: SessionLimits
) -> list[ActiveSession]:
    """Live sessions (within both limits) of the given users, or of everyone, newest first."""
    query = (
        select(UserSession, User.username)
        .join(User)
        .where(
            UserSession.ended_at.is_(None),
            UserSession.expires_at > now,
            UserSession.last_seen_at > now - limits.idle,
        )
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    )
    if user_ids is not None:
        query = query.where(UserSession.user_id.in_(list(user_ids)))
    return [
        ActiveSession(
            id=row.id,
            user_id=row.user_id,
            username=username,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            address=row.address,
        )
        for row, username in session.execute(query)
    ]
