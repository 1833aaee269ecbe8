"""Dashboard accounts: users, password hashes (Argon2id), roles, visible organisations,
sign-in (throttled by `signin_throttle`), the optional TOTP second factor of local accounts,
the audit trail and the session-signing secret. Sessions themselves live in
`user_sessions`; sign-in through an OpenID Connect provider in `oidc`.

The dashboard and the `riskiturva users` commands are thin layers over these functions.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import os
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from riskiturva import user_sessions
from riskiturva._files import private_directory
from riskiturva.config import Settings
from riskiturva.models import Organisation
from riskiturva.models_auth import AuditEvent, Role, User
from riskiturva.signin_throttle import ThrottlePolicy, retry_after
from riskiturva.user_sessions import EndReason

__all__ = [
    "AccountError",
    "AuditEvent",
    "Role",
    "User",
    "Viewer",
    "audit",
    "authenticate",
    "create_user",
    "disable_totp",
    "disable_user",
    "enable_totp",
    "end_sessions",
    "list_users",
    "load_viewer",
    "new_totp_secret",
    "secret_key",
    "set_password",
    "sign_in_method",
    "totp_uri",
    "verify_second_factor",
    "visible_slugs",
]

MIN_PASSWORD_LENGTH = 12
MIN_PASSWORD_SCORE = 3  # zxcvbn: "safely unguessable", about 10⁸ guesses or more
ZXCVBN_MAX_LENGTH = 100  # zxcvbn's time grows with length; the rest adds strength anyway
SECRET_KEY_FILE_NAME = "dashboard-secret.key"  # noqa: S105  (a file name, not a key)
_HASHER = PasswordHasher()  # Argon2id with the library's maintained defaults (stateless)
# Verified against when the user name is unknown, so both answers take the same time.
_DUMMY_HASH = _HASHER.hash("riskiturva: no such user")
TOTP_WINDOW = 1  # a code of the previous or next 30-second step is accepted too (clock drift)


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
    all_organisations: bool = False  # a partner administrator of every organisation
    # Their one organisation (staff, viewers, a one-organisation partner administrator):
    # audit events about them are filed under it.
    home_organisation: str | None = None
    # Acting through a read-only API token (`api_tokens`): the role's reads, no changes.
    read_only: bool = False

    @property
    def can_decide(self) -> bool:
        """Accept a risk or mark a false positive: organisation staff only."""
        return self.role is Role.ORG_STAFF and not self.read_only

    @property
    def can_review_assets(self) -> bool:
        """Accept, reject or retire discovered assets: organisation staff (their own) and
        partner administrators (their partner's organisations)."""
        return self.role in (Role.ORG_STAFF, Role.PARTNER_ADMIN) and not self.read_only

    @property
    def sees_details(self) -> bool:
        """Findings, evidence, assets and scans; management viewers see summaries only."""
        return self.role is not Role.VIEWER

    @property
    def can_audit(self) -> bool:
        """The audit trail and the sessions of their organisations' people."""
        return self.role is Role.PARTNER_ADMIN


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
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    session.flush()
    account_event(
        session,
        user,
        "user.created",
        actor=actor,
        now=now,
        role=str(role),
        organisations=user.organisations,
    )
    return user


def _get(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == _normalise_username(username)))
    if user is None:
        raise AccountError(f"no user {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def sign_in_method(user: User) -> str:
    """How the account signs in: `oidc`, `password+totp` or `password`."""
    if user.signs_in_with_provider:
        return "oidc"
    return "password+totp" if user.totp_secret else "password"


def home_organisation(user: User) -> str | None:
    """The organisation events about the user are filed under: their one organisation."""
    return user.organisations[0] if len(user.organisations) == 1 else None


def account_event(
    session: Session,
    user: User,
    action: str,
    *,
    actor: str,
    now: dt.datetime,
    address: str | None = None,
    **detail: Any,
) -> None:
    """Audit a change to the account (or to its API tokens), filed under its organisation."""
    audit(
        session,
        actor=actor,
        action=action,
        target=user.username,
        organisation=home_organisation(user),
        address=address,
        now=now,
        detail=detail,
    )


def disable_user(session: Session, username: str, *, now: dt.datetime, actor: str = "cli") -> User:
    """Refuse the account's sign-ins and end its sessions."""
    user = _get(session, username)
    user.disabled = True
    ended = user_sessions.end_all(session, user.id, now=now, reason=EndReason.DISABLED)
    account_event(session, user, "user.disabled", actor=actor, now=now, sessions_ended=ended)
    return user


def end_sessions(
    session: Session,
    username: str,
    *,
    now: dt.datetime,
    actor: str = "cli",
    address: str | None = None,
) -> int:
    """Sign the user out everywhere: end every live session now. Returns how many."""
    user = _get(session, username)
    ended = user_sessions.end_all(session, user.id, now=now, reason=EndReason.EVERYWHERE)
    audit(
        session,
        actor=actor,
        action="sessions.ended",
        target=user.username,
        organisation=home_organisation(user),
        address=address,
        now=now,
        detail={"sessions_ended": ended},
    )
    return ended


def _local(session: Session, username: str) -> User:
    user = _get(session, username)
    if user.signs_in_with_provider:
        raise AccountError(
            f"{user.username} signs in through the identity provider: it has no password here"
        )
    return user


def set_password(
    session: Session, username: str, password: str, *, now: dt.datetime, actor: str = "cli"
) -> User:
    """Replace the password (enabling a disabled account) and end its other sessions."""
    user = _local(session, username)
    user.password_hash = hash_password(password, user_inputs=[user.username, user.display_name])
    user.password_changed_at = now
    user.disabled = False
    ended = user_sessions.end_all(session, user.id, now=now, reason=EndReason.NEW_PASSWORD)
    account_event(session, user, "user.password_set", actor=actor, now=now, sessions_ended=ended)
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
        all_organisations=not user.organisations and Role(user.role) is Role.PARTNER_ADMIN,
        home_organisation=home_organisation(user),
    )


def load_viewer(session: Session, user_id: int) -> Viewer | None:
    """The viewer of a live session, or None when the account is gone or disabled."""
    user = session.get(User, user_id)
    if user is None or user.disabled:
        return None
    return _viewer(session, user)


def new_totp_secret() -> str:
    """A random 160-bit TOTP secret (base32), as authenticator apps expect."""
    return pyotp.random_base32(32)


def totp_uri(secret: str, username: str, issuer: str) -> str:
    """The `otpauth://` URI an authenticator app reads (as text or a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def _totp_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step `code` is right for (within the window), or None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for offset in range(-TOTP_WINDOW, TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.at(now, counter_offset=offset), code):
            return step + offset
    return None


def enable_totp(
    session: Session,
    username: str,
    secret: str,
    code: str,
    *,
    now: dt.datetime,
    actor: str = "cli",
) -> User:
    """Require a TOTP code at sign-in from now on: `code` proves the app holds `secret`.
    Ends the account's sessions (they were opened with one factor)."""
    user = _local(session, username)
    step = _totp_step(secret, code, now)
    if step is None:
        raise AccountError("the code does not match: check the app's clock and try again")
    user.totp_secret, user.totp_last_step = secret, step
    ended = user_sessions.end_all(session, user.id, now=now, reason=EndReason.EVERYWHERE)
    account_event(session, user, "user.totp_enabled", actor=actor, now=now, sessions_ended=ended)
    return user


def disable_totp(session: Session, username: str, *, now: dt.datetime, actor: str = "cli") -> User:
    """Sign in with the password alone again (a lost phone: enrol anew afterwards)."""
    user = _local(session, username)
    user.totp_secret, user.totp_last_step = None, None
    account_event(session, user, "user.totp_disabled", actor=actor, now=now)
    return user


@dataclass(frozen=True)
class SignIn:
    viewer: Viewer | None
    retry_after: dt.timedelta | None = None  # throttled: refused unchecked, try again then
    # The password was right and the account has a second factor: ask for its code next.
    second_factor_of: int | None = None

    @property
    def throttled(self) -> bool:
        return self.retry_after is not None


def _attempts(
    session: Session,
    name: str,
    organisation: str | None,
    address: str,
    now: dt.datetime,
    **always: Any,
) -> Callable[..., None]:
    """`attempt(action, **detail)`: audit one sign-in attempt on the account `name`."""

    def attempt(action: str, **detail: Any) -> None:
        audit(
            session,
            actor=name,
            action=action,
            target=name,
            organisation=organisation,
            address=address,
            now=now,
            detail={**always, **detail},
        )

    return attempt


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    address: str,
    known_client: bool,
    now: dt.datetime,
    policy: ThrottlePolicy,
) -> SignIn:
    """Check a sign-in from the client at `address`; every attempt is audited. A client
    that has failed too often for this name is refused unchecked until its wait is over
    (`signin_throttle`); `known_client`: this browser signed in to the account before."""
    try:
        name = _normalise_username(username)
    except AccountError:
        name = username.strip().lower()[:100]
    user = session.scalar(select(User).where(User.username == name))
    attempt = _attempts(session, name, home_organisation(user) if user else None, address, now)

    wait = retry_after(
        session, name, address=address, known_client=known_client, now=now, policy=policy
    )
    if wait is not None:
        attempt("login.throttled", wait_seconds=math.ceil(wait.total_seconds()))
        return SignIn(None, retry_after=wait)
    local = user is not None and not user.signs_in_with_provider
    if (
        _verify(user.password_hash if user and local else _DUMMY_HASH, password)
        and user
        and local
        and not user.disabled
    ):
        if _HASHER.check_needs_rehash(user.password_hash):
            user.password_hash = _HASHER.hash(password)
        if user.totp_secret:
            return SignIn(None, second_factor_of=user.id)
        user.last_login_at = now
        attempt("login.ok", known_client=known_client)
        return SignIn(_viewer(session, user))
    attempt("login.failed", known_client=known_client)
    return SignIn(None)


def verify_second_factor(
    session: Session,
    user_id: int,
    code: str,
    *,
    address: str,
    known_client: bool,
    now: dt.datetime,
    policy: ThrottlePolicy,
) -> SignIn:
    """The second step of a sign-in whose password was right: the TOTP code. Throttled and
    audited like the password (a wrong code is a `login.failed` of the account); a code
    works once (its time step must be later than the last one accepted)."""
    user = session.get(User, user_id)
    if user is None or user.disabled or not user.totp_secret:
        return SignIn(None)
    name = user.username
    attempt = _attempts(session, name, home_organisation(user), address, now, second_factor="totp")

    wait = retry_after(
        session, name, address=address, known_client=known_client, now=now, policy=policy
    )
    if wait is not None:
        attempt("login.throttled", wait_seconds=math.ceil(wait.total_seconds()))
        return SignIn(None, retry_after=wait)
    step = _totp_step(user.totp_secret, code, now)
    if step is None or step <= (user.totp_last_step or -1):
        attempt("login.failed", known_client=known_client, replayed=step is not None)
        return SignIn(None)
    user.totp_last_step = step
    user.last_login_at = now
    attempt("login.ok", known_client=known_client)
    return SignIn(_viewer(session, user))


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
