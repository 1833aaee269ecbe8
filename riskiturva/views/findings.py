"""Findings as readers see them: a filterable list, the same by pages (for the API), and
one finding with its history.

Severity and category are the registry's; filters apply to them, not to stored copies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from riskiturva._json import plain
from riskiturva.checks import Check, Severity
from riskiturva.models import Finding, FindingEvent, Organisation
from riskiturva.requirements import host_name_of, load_profiles
from riskiturva.scoring import due_date
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
    due: dt.date | None = None  # first seen + the check's or the severity's deadline

    def overdue_on(self, day: dt.date) -> bool:
        """Open and past its due date on `day` (the rule the recovery priorities use)."""
        return self.status == "open" and self.due is not None and day > self.due

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
    check = registry.get(finding.check_id)
    severity = registry_severity(finding, registry)
    return FindingRow(
        id=finding.id,
        organisation=slug,
        fingerprint=finding.fingerprint,
        check_id=finding.check_id,
        category=registry_category(finding, registry),
        severity=severity,
        status=finding.status,
        subject=finding.subject,
        asset=finding.asset,
        first_seen=finding.first_seen,
        last_seen=finding.last_seen,
        resolved_at=finding.resolved_at,
        evidence=dict(finding.evidence),
        reproduce=finding.reproduce,
        due=due_date(severity, finding.first_seen.date(), check.deadline_days if check else None),
    )


@dataclass(frozen=True, slots=True)
class Timing:
    """Filters on time: open findings past their due date on `today`, or due by a day;
    findings first seen since a moment."""

    today: dt.date
    overdue: bool = False
    due_by: dt.date | None = None
    seen_since: dt.datetime | None = None

    def keeps(self, row: FindingRow) -> bool:
        if self.overdue and not row.overdue_on(self.today):
            return False
        if self.due_by is not None and (
            row.status != "open" or row.due is None or row.due > self.due_by
        ):
            return False
        return self.seen_since is None or _aware(row.first_seen) >= self.seen_since


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def findings(
    session: Session,
    visible: Collection[str],
    *,
    registry: Mapping[str, Check],
    organisations: Collection[str] | None = None,
    statuses: Collection[str] | None = None,
    categories: Collection[str] | None = None,
    severities: Collection[str] | None = None,
    requirements: Collection[str] | None = None,
    checks: Collection[str] | None = None,
    assets: Collection[str] | None = None,
    timing: Timing | None = None,
) -> list[FindingRow]:
    """Findings of the visible organisations (or those of them named), by organisation,
    worst severity first; empty filters filter nothing. `requirements` (ids of requirement
    profiles' requirements) keeps the findings that bear on any of them: one of their
    checks, on a name their profile covers. `checks` and `assets` keep those of the check
    ids and assets named; `timing` those due or first seen when it says."""
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
    bears = _bears_on(requirements) if requirements else None
    shown = [
        r
        for r in rows
        if (not categories or r.category in categories)
        and (not severities or r.severity in severities)
        and (bears is None or bears(r))
        and (not checks or r.check_id in checks)
        and (not assets or r.asset in assets)
        and (timing is None or timing.keeps(r))
    ]
    return sorted(shown, key=lambda r: (r.organisation, *worst_first_key(r)))


@dataclass(frozen=True, slots=True)
class FindingsPage:
    rows: tuple[FindingRow, ...]  # by id
    next_after: int | None  # the last id on this page, when more follow


def _registry_filter(
    registry: Mapping[str, Check], attribute: str, wanted: Collection[str]
) -> ColumnElement[bool]:
    """Findings whose registry `attribute` (severity, category) is one of `wanted`; a
    check no longer registered by its stored value (as `registry_severity` does)."""
    checks = [c.id for c in registry.values() if str(getattr(c, attribute)) in wanted]
    stored = getattr(Finding, attribute)
    return or_(
        Finding.check_id.in_(checks),
        and_(Finding.check_id.not_in(list(registry)), stored.in_(list(wanted))),
    )


def findings_page(
    session: Session,
    visible: Collection[str],
    *,
    registry: Mapping[str, Check],
    organisations: Collection[str] | None = None,
    statuses: Collection[str] = (),
    categories: Collection[str] = (),
    severities: Collection[str] = (),
    assets: Collection[str] = (),
    since: dt.datetime | None = None,
    after: int | None = None,
    limit: int = 100,
) -> FindingsPage:
    """Findings of the visible organisations (or those of them named) in id order, `limit`
    after the id `after` (keyset pagination: a page is the same however many findings
    arrive meanwhile); empty filters filter nothing. `since`: findings with an event at
    or after it (found, evidence changed, resolved, reopened, decided, expired, revoked)."""
    slugs = [s for s in visible if organisations is None or s in organisations]
    query = (
        select(Finding, Organisation.slug)
        .join(Organisation)
        .where(Organisation.slug.in_(slugs))
        .order_by(Finding.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Finding.id > after)
    if statuses:
        query = query.where(Finding.status.in_(list(statuses)))
    if assets:
        query = query.where(Finding.asset.in_(list(assets)))
    if categories:
        query = query.where(_registry_filter(registry, "category", categories))
    if severities:
        query = query.where(_registry_filter(registry, "severity", severities))
    if since is not None:
        query = query.where(
            Finding.id.in_(select(FindingEvent.finding_id).where(FindingEvent.at >= since))
        )
    rows = [_row(finding, slug, registry) for finding, slug in session.execute(query)]
    more = len(rows) > limit
    return FindingsPage(tuple(rows[:limit]), rows[limit - 1].id if more else None)


def _bears_on(requirement_ids: Collection[str]) -> Callable[[FindingRow], bool]:
    """Whether a finding bears on any of the requirements (unknown ids bear on nothing)."""
    profiles = load_profiles()
    wanted = []
    for requirement_id in requirement_ids:
        try:
            requirement = profiles.requirement(requirement_id)
        except KeyError:
            continue
        wanted.append((profiles[requirement.profile_id], frozenset(requirement.checks)))

    def bears(row: FindingRow) -> bool:
        name = host_name_of(row.asset)
        return any(row.check_id in checks and p.covers(name) for p, checks in wanted)

    return bears


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
