"""Sign-in through an OpenID Connect provider: from verified ID-token claims to an account.

The dashboard (`dashboard.oidc`) runs the authorisation code flow with Authlib — discovery,
PKCE, `state` and `nonce`, the ID token's signature checked against the provider's JWKS and
its `iss`, `aud`, `exp` and `nonce` claims — and hands the verified claims here. This module
decides who that is in the dashboard:

- the **role and organisations** come from the configuration's mappings
  (`settings.dashboard.oidc.mappings`): the first mapping whose value the person's claim
  holds (Entra ID app roles arrive in `roles`, groups in `groups`) decides; none: refused.
- the **account** is a `dashboard_user` row keyed by (issuer, subject), created at the first
  sign-in and rewritten from the claims at each one (every live session of the account sees
  the new role at its next request); a person whose roles no longer map is refused and
  their live sessions end. It has no password. A local account of the same name is never
  signed in this way (refused: the name is taken), and `riskiturva users disable` refuses
  the person whatever the provider says.

Every attempt is audited like a password sign-in: `login.ok` or `login.failed`, with
`method: oidc` and, when refused, the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskiturva import auth, user_sessions
from riskiturva.config import OIDCMapping, OIDCSettings
from riskiturva.models_auth import Role, User
from riskiturva.user_sessions import EndReason

UNIDENTIFIED = "oidc"  # the actor of a refusal before anyone was identified


class Refusal(StrEnum):
    """Why an OpenID Connect sign-in was refused (the audit trail's `reason`)."""

    STATE = "state"  # the answer belongs to no sign-in this browser began (or was used)
    PROVIDER = "provider_error"  # the provider answered with an error (or refused the code)
    UNREACHABLE = "unreachable"  # discovery, keys or token could not be fetched
    TOKEN = "invalid_token"  # noqa: S105  ID token: signature, issuer, audience, expiry or nonce
    NO_USERNAME = "no_username"  # the token lacks the claim that names the account
    UNMAPPED = "unmapped"  # no mapping matches the person's claim
    NAME_TAKEN = "name_taken"  # a local account (or another identity) has that name
    DISABLED = "disabled"  # the account was disabled here


@dataclass(frozen=True)
class Outcome:
    """A finished sign-in: the viewer, or the reason it was refused."""

    viewer: auth.Viewer | None
    refusal: Refusal | None = None


def claim_values(claims: Mapping[str, Any], claim: str) -> frozenset[str]:
    """The claim's values: a string is one value, an array its string members."""
    value = claims.get(claim)
    if isinstance(value, str):
        return frozenset([value])
    if isinstance(value, list | tuple):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def mapping_for(claims: Mapping[str, Any], settings: OIDCSettings) -> OIDCMapping | None:
    """The first mapping whose value the person's claim holds, or None."""
    for mapping in settings.mappings:
        if mapping.value in claim_values(claims, mapping.claim or settings.claim):
            return mapping
    return None


def refuse(
    session: Session,
    refusal: Refusal,
    *,
    address: str,
    now: dt.datetime,
    message: str,
    username: str | None = None,
    organisation: str | None = None,
) -> Outcome:
    """Audit a refused sign-in (`username`: only when the provider's token proved it)."""
    auth.audit(
        session,
        actor=username or UNIDENTIFIED,
        action="login.failed",
        target=username,
        organisation=organisation,
        address=address,
        now=now,
        detail={"method": "oidc", "reason": str(refusal), "message": message[:300]},
    )
    return Outcome(None, refusal)


def sign_in(
    session: Session,
    claims: Mapping[str, Any],
    settings: OIDCSettings,
    *,
    address: str,
    now: dt.datetime,
) -> Outcome:
    """The account of a person whose ID token was verified (`claims`), created or updated
    from the mappings; refused when nothing maps or the name belongs to someone else."""
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    raw_name = claims.get(settings.username_claim)
    username = raw_name.strip().lower()[:100] if isinstance(raw_name, str) else ""
    if not username or any(c.isspace() for c in username):
        return refuse(
            session,
            Refusal.NO_USERNAME,
            address=address,
            now=now,
            message=f"the ID token has no usable {settings.username_claim!r} claim",
        )
    user = session.scalar(
        select(User).where(User.oidc_issuer == issuer, User.oidc_subject == subject)
    )
    mapping = mapping_for(claims, settings)
    if mapping is None:
        held = sorted(claim_values(claims, settings.claim))
        if user is not None:  # their role was taken away at the provider: sessions end too
            user_sessions.end_all(session, user.id, now=now, reason=EndReason.ROLE_REVOKED)
        return refuse(
            session,
            Refusal.UNMAPPED,
            address=address,
            now=now,
            username=username,
            message=f"no mapping for {settings.claim}={held}"[:300],
        )
    organisation = mapping.organisations[0] if len(mapping.organisations) == 1 else None
    same_name = session.scalar(select(User).where(User.username == username))
    if same_name is not None and same_name is not user:
        return refuse(
            session,
            Refusal.NAME_TAKEN,
            address=address,
            now=now,
            username=username,
            organisation=organisation,
            message="a local account, or another identity, already has this user name",
        )
    if user is not None and user.disabled:
        return refuse(
            session,
            Refusal.DISABLED,
            address=address,
            now=now,
            username=username,
            organisation=organisation,
            message="the account is disabled in Riskiturva",
        )
    created = user is None
    display = claims.get(settings.name_claim)
    if user is None:
        user = User(
            username=username,
            password_hash="",  # never verifies: no password sign-in for this account
            language="fi",
            disabled=False,
            created_at=now,
            password_changed_at=now,
            oidc_issuer=issuer,
            oidc_subject=subject,
        )
        session.add(user)
    user.username = username
    user.display_name = (display.strip() if isinstance(display, str) else "")[:200] or username
    user.role = str(Role(mapping.role))
    user.organisations = list(mapping.organisations)
    user.last_login_at = now
    session.flush()
    auth.audit(
        session,
        actor=username,
        action="login.ok",
        target=username,
        organisation=auth.home_organisation(user),
        address=address,
        now=now,
        detail={
            "method": "oidc",
            "created": created,
            "role": user.role,
            "organisations": user.organisations,
            "mapping": mapping.value,
        },
    )
    viewer = auth.load_viewer(session, user.id)
    assert viewer is not None  # just written, not disabled
    return Outcome(viewer)
