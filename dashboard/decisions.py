"""A person's decision on a finding — accept the risk, mark a false positive, revoke —
with its audit row in the same transaction: the one way the finding page and the API
change a finding."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from dashboard.security import audit_in
from riskiturva import views
from riskiturva.auth import Viewer
from riskiturva.checks import Registry
from riskiturva.models import Finding, FindingStatus
from riskiturva.store import decide, revoke
from riskiturva.views import TIMEZONE

MAX_DECISION_DAYS = 730


def expiry(until_day: dt.date, today: dt.date) -> dt.datetime:
    """The end of the chosen day in Finland: after today, within `MAX_DECISION_DAYS`
    (`ValueError` otherwise)."""
    if not 0 < (until_day - today).days <= MAX_DECISION_DAYS:
        raise ValueError("not after today, or too far")
    return dt.datetime.combine(until_day, dt.time(23, 59), TIMEZONE)


def record(
    session: Session,
    viewer: Viewer,
    finding_id: int,
    decision: FindingStatus | None,
    *,
    reason: str,
    until: dt.date | None,
    now: dt.datetime,
    registry: Registry,
    via: dict[str, Any] | None = None,
) -> Finding:
    """Decide on the viewer's visible finding (`decision`), or revoke the decision in
    force (`None`), and audit it. `NotVisible` for a finding not theirs; `ValueError` for a
    missing reason, a day out of range or no decision to revoke. `via`: more detail for
    the audit row (the API's token)."""
    if decision is None:
        before = views.finding(session, viewer.visible, finding_id, registry=registry)
        finding = revoke(
            session,
            finding_id=finding_id,
            visible=viewer.visible,
            actor=viewer.username,
            reason=reason,
            now=now,
        )
        previous = before.decision.decision if before.decision else None
        action, detail = "finding.revoked", {"revoked": previous}
    else:
        if until is None:
            raise ValueError("a decision needs the day it ends")
        ends = expiry(until, views.local_day(now))
        finding = decide(
            session,
            finding_id=finding_id,
            visible=viewer.visible,
            decision=decision,
            actor=viewer.username,
            reason=reason,
            until=ends,
            now=now,
        )
        action, detail = f"finding.{decision.value}", {"until": ends.isoformat()}
    audit_in(
        session,
        now,
        viewer,
        action,
        organisation=finding.organisation.slug,
        target=str(finding.id),
        detail={"check_id": finding.check_id, **detail, **(via or {})},
        note=reason.strip() or None,
    )
    return finding
