"""The exceptions register: accepted risks and false positives in force, for management.

Who decided, why, until when, and how severe the finding is (the registry's severity).
A decision ending within `EXPIRY_WARNING_DAYS` is flagged `expiring`, so it can be renewed
or the finding fixed before it counts against the score again. An accepted critical stays
in the register until it is fixed, expires or is revoked: it never just disappears.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from riskiturva._json import plain
from riskiturva.checks import Check, Severity
from riskiturva.models import Finding, FindingStatus
from riskiturva.views.organisations import OrganisationRef
from riskiturva.views.organisations import organisation as visible_organisation
from riskiturva.views.severity import registry_category, registry_severity, worst_first_key

EXPIRY_WARNING_DAYS = 14
_DECISIONS = [str(FindingStatus.ACCEPTED), str(FindingStatus.FALSE_POSITIVE)]


@dataclass(frozen=True, slots=True)
class ExceptionEntry:
    finding_id: int
    check_id: str
    category: str
    severity: Severity
    subject: str
    asset: str
    decision: str  # accepted or false_positive
    decided_by: str | None
    decided_at: dt.datetime | None
    reason: str
    until: dt.datetime | None
    days_left: int | None  # whole days until it ends, rounded up
    expiring: bool  # ends within EXPIRY_WARNING_DAYS


@dataclass(frozen=True, slots=True)
class ExceptionsRegister:
    organisation: str
    as_of: dt.datetime
    entries: tuple[ExceptionEntry, ...]  # worst severity first

    @property
    def expiring(self) -> tuple[ExceptionEntry, ...]:
        return tuple(e for e in self.entries if e.expiring)

    @property
    def accepted(self) -> tuple[ExceptionEntry, ...]:
        return tuple(e for e in self.entries if e.decision == FindingStatus.ACCEPTED)

    def by_severity(self) -> dict[str, int]:
        counts = Counter(str(e.severity) for e in self.entries)
        return {str(s): counts.get(str(s), 0) for s in Severity}

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "by_severity": self.by_severity(),
            "expiring": len(self.expiring),
            "entries": [plain(e) for e in self.entries],
        }


def _in_force(organisation_ids: Collection[int], now: dt.datetime) -> Any:
    return select(Finding).where(
        Finding.organisation_id.in_(list(organisation_ids)),
        Finding.status.in_(_DECISIONS),
        Finding.decision.is_not(None),
        or_(Finding.decision_until.is_(None), Finding.decision_until > now),
    )


def _entry(finding: Finding, now: dt.datetime, registry: Mapping[str, Check]) -> ExceptionEntry:
    until = finding.decision_until
    days_left = None if until is None else math.ceil((until - now) / dt.timedelta(days=1))
    return ExceptionEntry(
        finding_id=finding.id,
        check_id=finding.check_id,
        category=registry_category(finding, registry),
        severity=registry_severity(finding, registry),
        subject=finding.subject,
        asset=finding.asset,
        decision=str(finding.decision),
        decided_by=finding.decided_by,
        decided_at=finding.decided_at,
        reason=finding.decision_reason or "",
        until=until,
        days_left=days_left,
        expiring=days_left is not None and days_left <= EXPIRY_WARNING_DAYS,
    )


def registers(
    session: Session,
    organisations: Sequence[OrganisationRef],
    *,
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> dict[str, ExceptionsRegister]:
    """The registers of several organisations at `now`, by slug (one query)."""
    slug_of = {o.id: o.slug for o in organisations}
    entries: dict[str, list[ExceptionEntry]] = {o.slug: [] for o in organisations}
    for finding in session.scalars(_in_force(slug_of, now)):
        entries[slug_of[finding.organisation_id]].append(_entry(finding, now, registry))
    return {
        slug: ExceptionsRegister(slug, now, tuple(sorted(found, key=worst_first_key)))
        for slug, found in entries.items()
    }


def exceptions(
    session: Session,
    visible: Collection[str],
    slug: str,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> ExceptionsRegister:
    """The visible organisation's exceptions register at `now`."""
    org = visible_organisation(session, visible, slug)
    return registers(session, [org], now=now, registry=registry)[slug]
