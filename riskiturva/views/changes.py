"""What changed in a period: the one event-based definition every face uses.

A change is a finding event in `[since, until)`: found (`new`), `resolved`, `reopened`, a
risk accepted or a false positive marked (`accepted`), a decision `expired` or `revoked`.
Each finding counts once per kind, at its latest event of that kind, so a finding opened
in October, resolved on 5 November and reopened on 20 November is in November's
`resolved` and `reopened` both: the regression shows. A decision that ran out before any
scan noticed it counts as expired at its own end, as the event that scan will write.
Severities come from the registry. The estate's own changes in the period (assets proposed,
accepted, gone; names seen outside the scope; new open ports and certificates) come along in
`estate`, newest first.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskiturva._json import plain
from riskiturva.checks import Check, Severity
from riskiturva.models import EventKind, Finding, FindingEvent, FindingStatus
from riskiturva.views.inventory import EstateChange, estate_changes
from riskiturva.views.organisations import organisation as visible_organisation
from riskiturva.views.severity import COUNTED_SEVERITIES, registry_severity, worst_first_key


class ChangeKind(StrEnum):
    NEW = "new"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    ACCEPTED = "accepted"  # a risk accepted or a false positive marked
    EXPIRED = "expired"
    REVOKED = "revoked"


_KIND_OF_EVENT = {
    EventKind.OPENED: ChangeKind.NEW,
    EventKind.RESOLVED: ChangeKind.RESOLVED,
    EventKind.REOPENED: ChangeKind.REOPENED,
    EventKind.ACCEPTED: ChangeKind.ACCEPTED,
    EventKind.FALSE_POSITIVE: ChangeKind.ACCEPTED,
    EventKind.EXPIRED: ChangeKind.EXPIRED,
    EventKind.REVOKED: ChangeKind.REVOKED,
}
_DECISIONS = (FindingStatus.ACCEPTED, FindingStatus.FALSE_POSITIVE)


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    finding_id: int
    check_id: str
    subject: str
    asset: str
    severity: Severity
    at: dt.datetime
    actor: str | None = None  # who, for a person's decision or revocation
    note: str | None = None
    decision: str | None = None  # accepted or false_positive, for an `accepted` change


@dataclass(frozen=True, slots=True)
class Changes:
    organisation: str
    since: dt.datetime
    until: dt.datetime
    items: tuple[Change, ...]  # worst severity first
    estate: tuple[EstateChange, ...] = ()  # newest first

    def of(self, kind: ChangeKind) -> tuple[Change, ...]:
        return tuple(c for c in self.items if c.kind is kind)

    @property
    def new(self) -> tuple[Change, ...]:
        return self.of(ChangeKind.NEW)

    @property
    def resolved(self) -> tuple[Change, ...]:
        return self.of(ChangeKind.RESOLVED)

    @property
    def reopened(self) -> tuple[Change, ...]:
        return self.of(ChangeKind.REOPENED)

    @property
    def accepted(self) -> tuple[Change, ...]:
        return self.of(ChangeKind.ACCEPTED)

    @property
    def expired(self) -> tuple[Change, ...]:
        return self.of(ChangeKind.EXPIRED)

    @property
    def revoked(self) -> tuple[Change, ...]:
        return self.of(ChangeKind.REVOKED)

    def by_severity(self, kind: ChangeKind) -> dict[str, int]:
        """How many changes of `kind` per severity, critical to low."""
        counts = Counter(str(c.severity) for c in self.of(kind))
        return {str(s): counts.get(str(s), 0) for s in COUNTED_SEVERITIES}

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            **{str(kind): [plain(c) for c in self.of(kind)] for kind in ChangeKind},
            "estate": [plain(c) for c in self.estate],
        }


def changes(
    session: Session,
    visible: Collection[str],
    slug: str,
    *,
    since: dt.datetime,
    until: dt.datetime,
    registry: Mapping[str, Check],
) -> Changes:
    """The visible organisation's changes in `[since, until)`."""
    org = visible_organisation(session, visible, slug)
    rows = session.execute(
        select(FindingEvent, Finding)
        .join(Finding, FindingEvent.finding_id == Finding.id)
        .where(
            Finding.organisation_id == org.id,
            FindingEvent.kind.in_([str(k) for k in _KIND_OF_EVENT]),
            FindingEvent.at >= since,
            FindingEvent.at < until,
        )
        .order_by(FindingEvent.at, FindingEvent.id)
    )
    latest: dict[tuple[ChangeKind, int], Change] = {}
    for event, finding in rows:
        kind = _KIND_OF_EVENT[EventKind(event.kind)]
        latest[(kind, finding.id)] = Change(
            kind=kind,
            finding_id=finding.id,
            check_id=finding.check_id,
            subject=finding.subject,
            asset=finding.asset,
            severity=registry_severity(finding, registry),
            at=event.at,
            actor=event.actor,
            note=event.note,
            decision=_decision_of(event.kind),
        )
    # Decisions that ran out in the period before a scan returned them to open.
    for finding in session.scalars(
        select(Finding).where(
            Finding.organisation_id == org.id,
            Finding.status.in_([str(s) for s in _DECISIONS]),
            Finding.decision_until >= since,
            Finding.decision_until < until,
        )
    ):
        assert finding.decision_until is not None
        latest.setdefault(
            (ChangeKind.EXPIRED, finding.id),
            Change(
                kind=ChangeKind.EXPIRED,
                finding_id=finding.id,
                check_id=finding.check_id,
                subject=finding.subject,
                asset=finding.asset,
                severity=registry_severity(finding, registry),
                at=finding.decision_until,
                note=f"{finding.decision} expired",
            ),
        )
    items = sorted(latest.values(), key=lambda c: (*worst_first_key(c), c.at, c.kind))
    estate = estate_changes(session, visible, slug, since=since, until=until)
    return Changes(org.slug, since, until, tuple(items), estate)


def _decision_of(kind: str) -> str | None:
    if kind == EventKind.ACCEPTED:
        return str(FindingStatus.ACCEPTED)
    if kind == EventKind.FALSE_POSITIVE:
        return str(FindingStatus.FALSE_POSITIVE)
    return None
