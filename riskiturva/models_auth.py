"""Tables of the dashboard's accounts, sign-in sessions, API tokens and audit trail
(SQLAlchemy 2.0; migrations 0002, 0010, 0011 and 0012)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from riskiturva.orm import Base


class Role(enum.StrEnum):
    PARTNER_ADMIN = "partner_admin"  # every organisation, or a named list
    ORG_STAFF = "org_staff"  # their organisation; may accept risks
    VIEWER = "viewer"  # management: read-only overview of their organisation


class User(Base):
    """A dashboard account: local (a password, optionally a TOTP second factor) or signed in
    through the OpenID Connect provider (`oidc_issuer` and `oidc_subject` set, no password;
    role and organisations rewritten from the provider's claims at each sign-in)."""

    __tablename__ = "dashboard_user"
    __table_args__ = (
        UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_dashboard_user_oidc_identity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    # Organisation slugs; an empty list on a partner administrator means every organisation.
    organisations: Mapped[list[Any]] = mapped_column(default=list)
    language: Mapped[str] = mapped_column(String(2), default="fi")
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime]
    password_changed_at: Mapped[dt.datetime]
    last_login_at: Mapped[dt.datetime | None]
    oidc_issuer: Mapped[str | None] = mapped_column(String(255))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))
    # Base32 TOTP secret of a local account's second factor, and the last time step a code
    # was accepted for (a code works once).
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def signs_in_with_provider(self) -> bool:
        return self.oidc_subject is not None


class UserSession(Base):
    """One sign-in. The browser holds a random token; only its SHA-256 is stored, so a copy
    of the database opens no session. Ended sessions are kept (`ended_at`, `ended_reason`)
    until they are older than the longest session, then pruned."""

    __tablename__ = "dashboard_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("dashboard_user.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]  # the absolute end, whatever the activity
    ended_at: Mapped[dt.datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class AuditEvent(Base):
    """Who did what, when, from where: sign-ins, decisions on findings, exports, accounts."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_action_at", "action", "at"),
        Index("ix_audit_event_target_at", "target", "at"),  # the sign-in throttle's counts
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(100))  # a user name, or `cli:<os user>`
    action: Mapped[str] = mapped_column(String(40))
    organisation: Mapped[str | None] = mapped_column(String(63))
    target: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str | None] = mapped_column(Text)


class ApiToken(Base):
    """A personal API token: the holder's own rights, narrowed to a scope (read-only or
    decisions too) and a subset of their organisations, until it expires or is revoked.
    Only the SHA-256 of the secret is stored, and its first characters to tell it apart."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the secret's first characters
    user_id: Mapped[int] = mapped_column(
        ForeignKey("dashboard_user.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(20))  # riskiturva.api_tokens.TokenScope
    # Organisation slugs it is limited to; empty: all of the holder's own.
    organisations: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(100))
