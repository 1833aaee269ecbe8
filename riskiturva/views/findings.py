"""Findings as readers see them: a filterable list, and one finding with its history.

Severity and category are the registry's; filters apply to them, not to stored copies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskiturva._json import plain
from riskiturva.checks import Check, Severity
from riskiturva.models import Finding, FindingEvent, Organisation
from riskiturva.store import get_finding
from riskiturva.views.organisations import OrganisationRef, ref_of
from riskiturva.views.severity import registry_category, registry_severity, worst_first_key


@dataclass(frozen=True, slots=True)
class FindingRow:
    id: int
    organisation: str
    fingerprint: str
    check_id: str
    category: str
    severity: Severity
    status: str
    subject: str
    asset: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    resolved_at: dt.datetime | None
    evidence: Mapping[str, Any]
    reproduce: str | None

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = plain(self)
        return record


@dataclass(frozen=True, slots=True)
class EventView:
    kind: str
    at: dt.datetime
    actor: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class Decision:
    decision: str
    decided_by: str | None
    decided_at: dt.datetime | None
    reason: str | None
    until: dt.datetime | None


@dataclass(frozen=True, slots=True)
class FindingView:
    """One finding with its organisation, the decision in force and its history."""

    finding: FindingRow
    organisation: OrganisationRef
    decision: Decision | None
    events: tuple[EventView, ...]  # oldest first


def _row(finding: Finding, slug: str, registry: Mapping[str, Check]) -> FindingRow:
    return FindingRow(
        id=finding.id,
        organisation=slug,
        fingerprint=finding.fingerprint,
        check_id=finding.check_id,
        category=registry_category(finding, registry),
        severity=registry_severity(finding, registry),
        status=finding.status,
        subject=finding.subject,
        asset=finding.asset,
        first_seen=finding.first_seen,
        last_seen=finding.last_seen,
        resolved_at=finding.resolved_at,
        evidence=dict(finding.evidence),
        reproduce=finding.reproduce,
    )


def findings(
    session: Session,
    visible: Collection[str],
    *,
    registry: Mapping[str, Check],
    organisations: Collection[str] | None = None,
    statuses: Collection[str] | None = None,
    categories: Collection[str] | None = None,
    severities: Collection[str] | None = None,
) -> list[FindingRow]:
    """Findings of the visible organisations (or those of them named), by organisation,
    worst severity first; empty filters filter nothing."""
    slugs = [s for s in visible if organisations is None or s in organisations]
    query = (
        select(Finding, Organisation.slug)
        .join(Organisation)
        .where(Organisation.slug.in_(slugs))
        .order_by(Organisation.slug, Finding.id)
    )
    if statuses:
        query = query.where(Finding.status.in_(list(statuses)))
    rows = [_row(finding, slug, registry) for finding, slug in session.execute(query)]
    shown = [
        r
        for r in rows
        if (not categories or r.category in categories)
        and (not severities or r.severity in severities)
    ]
    return sorted(shown, key=lambda r: (r.organisation, *worst_first_key(r)))


def finding(
    session: Session, visible: Collection[str], finding_id: int, *, registry: Mapping[str, Check]
) -> FindingView:
    """One visible finding (`NotVisible` otherwise)."""
    row = get_finding(session, finding_id, visible)
    events = session.scalars(
        select(FindingEvent)
        .where(FindingEvent.finding_id == row.id)
        .order_by(FindingEvent.at, FindingEvent.id)
    )
    decision = (
        Decision(
            row.decision, row.decided_by, row.decided_at, row.decision_reason, row.decision_until
        )
        if row.decision is not None
        else None
    )
    return FindingView(
        finding=_row(row, row.organisation.slug, registry),
        organisation=ref_of(row.organisation),
        decision=decision,
        events=tuple(EventView(e.kind, e.at, e.actor, e.note) for e in events),
    )
