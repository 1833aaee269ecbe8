"""Personal API tokens: created by a user for a script, shown once, stored hashed.

A token acts as its holder, never as more: its scope (`read`, or `decide` for organisation
staff who may decide) and its organisations (a subset of the holder's) only narrow what the
holder may do, and they are narrowed again at every request by what the holder may do then
(a disabled account, or one moved to other organisations, takes its tokens' rights along).
Every token expires; a revoked one stops at once.

The secret is `rkt_` and 43 random URL-safe characters (256 bits); the table keeps its
SHA-256 and its first characters (to tell tokens apart in a list), so a copy of the
database opens nothing. A fast hash is enough for a random secret of that length.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskiturva.auth import AccountError, Viewer, account_event, load_viewer
from riskiturva.models_auth import ApiToken, User

__all__ = [
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "TOKEN_PREFIX",
    "TokenScope",
    "TokenView",
    "authenticate",
    "create_token",
    "list_tokens",
    "revoke_token",
]

TOKEN_PREFIX = "rkt_"  # noqa: S105  (a prefix, not a secret)
SHOWN_CHARACTERS = 12  # of the secret, kept to tell tokens apart: the prefix and 8 more
DEFAULT_DAYS = 90
MAX_DAYS = 366
MAX_NAME_LENGTH = 100
# `last_used_at` is written at most this often: a script may call many times a minute.
TOUCH_INTERVAL = dt.timedelta(seconds=60)


class TokenScope(enum.StrEnum):
    READ = "read"  # reads only
    DECIDE = "decide"  # reads, and accept / false positive / revoke on findings


@dataclass(frozen=True, slots=True)
class TokenView:
    """A token as its holder (or the CLI) lists it; never the secret."""

    id: int
    username: str
    name: str
    prefix: str
    scope: TokenScope
    organisations: tuple[str, ...]  # empty: all of the holder's
    created_at: dt.datetime
    expires_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def live(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class Created:
    token: TokenView
    secret: str  # shown once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _view(row: ApiToken, username: str) -> TokenView:
    return TokenView(
        id=row.id,
        username=username,
        name=row.name,
        prefix=row.prefix,
        scope=TokenScope(row.scope),
        organisations=tuple(row.organisations),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise AccountError(f"no user {username!r}")
    return user


def create_token(
    session: Session,
    username: str,
    *,
    name: str,
    scope: TokenScope | str = TokenScope.READ,
    organisations: Collection[str] = (),
    days: int = DEFAULT_DAYS,
    now: dt.datetime,
    actor: str,
    address: str | None = None,
) -> Created:
    """A new token of the user's, within their own rights (`AccountError` otherwise)."""
    user = _user(session, username)
    viewer = load_viewer(session, user.id)
    if viewer is None:
        raise AccountError(f"user {user.username!r} is disabled")
    try:
        scope = TokenScope(scope)
    except ValueError:
        raise AccountError(f"not a token scope: {scope!r} (read or decide)") from None
    label = name.strip()
    if not label or len(label) > MAX_NAME_LENGTH or not label.isprintable():
        raise AccountError(f"a token needs a name of 1–{MAX_NAME_LENGTH} printable characters")
    if not 1 <= days <= MAX_DAYS:
        raise AccountError(f"a token lasts 1–{MAX_DAYS} days, not {days}")
    if scope is TokenScope.DECIDE and not viewer.can_decide:
        raise AccountError(f"a {viewer.role} cannot decide on findings: only a read token")
    slugs = sorted(set(organisations))
    outside = [s for s in slugs if s not in viewer.visible]
    if outside:
        raise AccountError(f"not among {user.username}'s organisations: {', '.join(outside)}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        token_hash=_hash(secret),
        prefix=secret[:SHOWN_CHARACTERS],
        user_id=user.id,
        name=label,
        scope=str(scope),
        organisations=slugs,
        created_at=now,
        expires_at=now + dt.timedelta(days=days),
    )
    session.add(row)
    session.flush()
    detail = {"token": row.id, "name": label, "scope": str(scope), "organisations": slugs}
    account_event(session, user, "token.created", actor=actor, now=now, address=address, **detail)
    return Created(_view(row, user.username), secret)


def list_tokens(session: Session, username: str | None = None) -> list[TokenView]:
    """The user's tokens (everyone's when None), newest first."""
    query = select(ApiToken, User.username).join(User).order_by(ApiToken.id.desc())
    if username is not None:
        query = query.where(User.id == _user(session, username).id)
    return [_view(row, name) for row, name in session.execute(query)]


def revoke_token(
    session: Session,
    token_id: int,
    *,
    now: dt.datetime,
    actor: str,
    username: str | None = None,
    address: str | None = None,
) -> TokenView:
    """Stop the token at once. `username`: only one of theirs (the dashboard's own page);
    `AccountError` for one that is not (or not found, or already revoked)."""
    found = session.execute(
        select(ApiToken, User).join(User).where(ApiToken.id == token_id)
    ).one_or_none()
    if found is None or (username is not None and found[1].username != username):
        raise AccountError(f"no token {token_id}")
    row, user = found
    if row.revoked_at is not None:
        raise AccountError(f"token {token_id} was revoked already")
    row.revoked_at, row.revoked_by = now, actor
    account_event(
        session, user, "token.revoked", actor=actor, now=now, address=address,
        token=row.id, name=row.name,
    )  # fmt: skip
    return _view(row, user.username)


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """Who a request's token acts as: the holder's viewer, narrowed by the token."""

    viewer: Viewer
    token: TokenView


def authenticate(session: Session, secret: str, *, now: dt.datetime) -> TokenHolder | None:
    """The holder of a live token, narrowed to its scope and organisations; None for a
    secret that names no token, or one expired, revoked or of a disabled account."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(secret)))
    if row is None or row.revoked_at is not None or now >= row.expires_at:
        return None
    viewer = load_viewer(session, row.user_id)
    if viewer is None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_INTERVAL:
        row.last_used_at = now
    visible = viewer.visible & frozenset(row.organisations) if row.organisations else None
    narrowed = dataclasses.replace(
        viewer,
        visible=viewer.visible if visible is None else visible,
        all_organisations=viewer.all_organisations and visible is None,
        read_only=row.scope != TokenScope.DECIDE,
    )
    return TokenHolder(narrowed, _view(row, viewer.username))
