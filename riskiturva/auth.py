"""Dashboard accounts: users, password hashes (Argon2id), roles, visible organisations,
the sign-in rate limit, the audit trail and the session-signing secret.

The dashboard and the `riskiturva users` commands are thin layers over these functions.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from riskiturva._files import private_directory
from riskiturva.config import Settings
from riskiturva.models import Organisation
from riskiturva.models_auth import AuditEvent, Role, User

__all__ = [
    "AccountError",
    "AuditEvent",
    "Role",
    "User",
    "Viewer",
    "audit",
    "authenticate",
    "create_user",
    "disable_user",
    "list_users",
    "load_viewer",
    "secret_key",
    "set_password",
    "visible_slugs",
]

MIN_PASSWORD_LENGTH = 12
MIN_PASSWORD_SCORE = 3  # zxcvbn: "safely unguessable", about 10⁸ guesses or more
ZXCVBN_MAX_LENGTH = 100  # zxcvbn's time grows with length; the rest adds strength anyway
SECRET_KEY_FILE_NAME = "dashboard-secret.key"  # noqa: S105  (a file name, not a key)
_HASHER = PasswordHasher()  # Argon2id with the library's maintained defaults (stateless)
# Verified against when the user name is unknown, so both answers take the same time.
_DUMMY_HASH = _HASHER.hash("riskiturva: no such user")


class AccountError(ValueError):
    """An account operation was refused (unknown user, bad role, weak password, …)."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in person as every page and callback sees them."""

    user_id: int
    username: str
    display_name: str
    role: Role
    visible: frozenset[str]  # organisation slugs: every query filters by these
    language: str
    session_epoch: int

    @property
    def can_decide(self) -> bool:
        """Accept a risk or mark a false positive: organisation staff only."""
        return self.role is Role.ORG_STAFF

    @property
    def can_review_assets(self) -> bool:
        """Accept, reject or retire discovered assets: organisation staff (their own) and
        partner administrators (their partner's organisations)."""
        return self.role in (Role.ORG_STAFF, Role.PARTNER_ADMIN)

    @property
    def sees_details(self) -> bool:
        """Findings, evidence, assets and scans; management viewers see summaries only."""
        return self.role is not Role.VIEWER


def password_weakness(password: str, *, user_inputs: Collection[str] = ()) -> str | None:
    """Why `password` is refused, or None when it may be used.

    Besides the length: one repeated character or only spaces, and anything zxcvbn (a
    maintained estimator with lists of common passwords, names, words and keyboard
    patterns) guesses in fewer than 10⁸ tries (score below 3), counting the user name and
    the product's own name as known words.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if not password.strip():
        return "a password cannot be only spaces"
    if len(set(password)) == 1:
        return "a password cannot be one character repeated"
    verdict = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=[*user_inputs, "riskiturva"])
    if verdict["score"] < MIN_PASSWORD_SCORE:
        warning = verdict["feedback"].get("warning") or "it is a common pattern"
        return f"this password is too easy to guess ({warning.rstrip('.')}): choose a longer one"
    return None


def hash_password(password: str, *, user_inputs: Collection[str] = ()) -> str:
    weakness = password_weakness(password, user_inputs=user_inputs)
    if weakness:
        raise AccountError(weakness)
    return _HASHER.hash(password)


def _normalise_username(username: str) -> str:
    name = username.strip().lower()
    if not name or len(name) > 100 or any(c.isspace() for c in name):
        raise AccountError(f"not a valid user name: {username!r}")
    return name


def _check_organisations(session: Session, role: Role, organisations: Collection[str]) -> list[str]:
    slugs = sorted(set(organisations))
    known = set(session.scalars(select(Organisation.slug).where(Organisation.slug.in_(slugs))))
    unknown = [s for s in slugs if s not in known]
    if unknown:
        raise AccountError(f"unknown organisation(s): {', '.join(unknown)}")
    if role is not Role.PARTNER_ADMIN and len(slugs) != 1:
        raise AccountError(f"a {role} belongs to exactly one organisation")
    return slugs


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role | str,
    organisations: Collection[str] = (),
    display_name: str = "",
    language: str = "fi",
    now: dt.datetime,
    actor: str = "cli",
) -> User:
    """Add an account. Staff and viewers name one organisation; a partner administrator
    names several, or none for every organisation."""
    role = Role(role)
    name = _normalise_username(username)
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise AccountError(f"user {name!r} exists")
    user = User(
        username=name,
        display_name=display_name.strip() or name,
        password_hash=hash_password(password, user_inputs=[name, display_name]),
        role=str(role),
        organisations=_check_organisations(session, role, organisations),
        language=language if language in ("fi", "sv", "en") else "fi",
        disabled=False,
        session_epoch=0,
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    session.flush()
    audit(
        session,
        actor=actor,
        action="user.created",
        target=name,
        now=now,
        detail={"role": str(role), "organisations": user.organisations},
    )
    return user


def _get(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == _normalise_username(username)))
    if user is None:
        raise AccountError(f"no user {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def disable_user(session: Session, username: str, *, now: dt.datetime, actor: str = "cli") -> User:
    """Refuse the account's sign-ins and end its sessions."""
    user = _get(session, username)
    user.disabled = True
    user.session_epoch += 1
    audit(session, actor=actor, action="user.disabled", target=user.username, now=now)
    return user


def set_password(
    session: Session, username: str, password: str, *, now: dt.datetime, actor: str = "cli"
) -> User:
    """Replace the password (enabling a disabled account) and end its other sessions."""
    user = _get(session, username)
    user.password_hash = hash_password(password, user_inputs=[user.username, user.display_name])
    user.password_changed_at = now
    user.disabled = False
    user.session_epoch += 1
    audit(session, actor=actor, action="user.password_set", target=user.username, now=now)
    return user


def visible_slugs(session: Session, user: User) -> frozenset[str]:
    """The organisations the user may see: their list, or every one for an unrestricted
    partner administrator; slugs no longer in the store are dropped."""
    query = select(Organisation.slug)
    if user.organisations or Role(user.role) is not Role.PARTNER_ADMIN:
        query = query.where(Organisation.slug.in_(list(user.organisations)))
    return frozenset(session.scalars(query))


def _viewer(session: Session, user: User) -> Viewer:
    return Viewer(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        visible=visible_slugs(session, user),
        language=user.language,
        session_epoch=user.session_epoch,
    )


def load_viewer(session: Session, user_id: int, session_epoch: int) -> Viewer | None:
    """The viewer of a signed session, or None when the account is gone, disabled, or its
    password changed since the session began."""
    user = session.get(User, user_id)
    if user is None or user.disabled or user.session_epoch != session_epoch:
        return None
    return _viewer(session, user)


@dataclass(frozen=True)
class SignIn:
    viewer: Viewer | None
    throttled: bool = False


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    address: str | None,
    now: dt.datetime,
    attempts: int,
    window: dt.timedelta,
) -> SignIn:
    """Check a sign-in; every attempt is audited. After `attempts` failures within `window`
    for the same user name or address, further attempts are refused unchecked."""
    try:
        name = _normalise_username(username)
    except AccountError:
        name = username.strip().lower()[:100]
    recent_failures = session.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.action == "login.failed",
            AuditEvent.at > now - window,
            or_(AuditEvent.target == name, AuditEvent.address == address),
        )
    )
    if (recent_failures or 0) >= attempts:
        audit(session, actor=name, action="login.throttled", target=name, address=address, now=now)
        return SignIn(None, throttled=True)
    user = session.scalar(select(User).where(User.username == name))
    if (
        _verify(user.password_hash if user else _DUMMY_HASH, password)
        and user
        and not user.disabled
    ):
        if _HASHER.check_needs_rehash(user.password_hash):
            user.password_hash = _HASHER.hash(password)
        user.last_login_at = now
        audit(session, actor=name, action="login.ok", target=name, address=address, now=now)
        return SignIn(_viewer(session, user))
    audit(session, actor=name, action="login.failed", target=name, address=address, now=now)
    return SignIn(None)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    now: dt.datetime,
    organisation: str | None = None,
    target: str | None = None,
    address: str | None = None,
    detail: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> AuditEvent:
    """Append one row to the audit trail."""
    event = AuditEvent(
        at=now,
        actor=actor,
        action=action,
        organisation=organisation,
        target=target,
        address=address,
        detail=dict(detail or {}),
        note=note,
    )
    session.add(event)
    session.flush()
    return event


def secret_key(settings: Settings) -> bytes:
    """The key that signs session cookies: the configured file, or one generated once into
    the data directory (mode 0600). Never a constant."""
    configured = settings.dashboard.secret_key_file
    path = Path(configured) if configured else Path(SECRET_KEY_FILE_NAME)
    if not path.is_absolute():
        path = settings.data_dir / path
    if not path.exists():
        private_directory(path.parent)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process wrote it first: use theirs
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise AccountError(f"{path}: the secret key must be at least 32 characters")
    return key.encode()
