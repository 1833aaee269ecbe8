"""Findings as they stood at one moment, replayed from their events.

A report for an earlier month says what was known at that month's end, even when it is
made after later scans: a finding first seen on 1 December did not exist on 30 November,
one resolved on 1 December was still open then, and a risk accepted in December was not
accepted in November. The store keeps every change of a finding as an event (`opened`,
`resolved`, `reopened`, `accepted`, `false_positive`, `expired`, `revoked`; `seen` changes
nothing), so replaying a finding's events before the moment gives its state then. A
decision whose end had passed by then counts as open, as it does live.

Replaying up to now gives the stored state (tested), so live views and reports agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskiturva.checks import Check
from riskiturva.inputs import scoring_assets_of
from riskiturva.models import EventKind, Finding, FindingEvent, FindingStatus, RunStatus, ScanRun
from riskiturva.scoring import ScoringAsset, ScoringFinding
from riskiturva.views.severity import registry_category, registry_severity

_DECISIONS = {
    EventKind.ACCEPTED: FindingStatus.ACCEPTED,
    EventKind.FALSE_POSITIVE: FindingStatus.FALSE_POSITIVE,
}


@dataclass(frozen=True, slots=True)
class Decision:
    """A person's decision on a finding, as it stood."""

    kind: FindingStatus  # accepted or false_positive
    decided_by: str | None
    decided_at: dt.datetime | None  # the store allows none
    reason: str
    until: dt.datetime | None

    def holds(self, at: dt.datetime) -> bool:
        return self.until is None or self.until > at


@dataclass(frozen=True, slots=True)
class Standing:
    """One finding's state at a moment."""

    finding_id: int
    organisation_id: int
    collector: str
    check_id: str
    subject: str
    asset: str
    category: str
    severity: str
    first_seen: dt.datetime
    status: FindingStatus
    decision: Decision | None  # the decision in force at the moment, if any


def replay(finding: Finding, events: Iterable[FindingEvent], at: dt.datetime) -> Standing | None:
    """The finding's state just before `at`, from its events (oldest first); None if it had
    not been found yet."""
    status: FindingStatus | None = None
    decision: Decision | None = None
    for event in events:
        if event.at >= at:
            break
        kind = EventKind(event.kind)
        if kind is EventKind.OPENED:
            status = FindingStatus.OPEN
        elif kind is EventKind.RESOLVED:
            status = FindingStatus.RESOLVED
        elif kind is EventKind.REOPENED:
            status = decision.kind if decision and decision.holds(event.at) else FindingStatus.OPEN
        elif kind in _DECISIONS:
            decision = Decision(
                kind=_DECISIONS[kind],
                decided_by=event.actor,
                decided_at=event.at,
                reason=event.note or "",
                until=_until(finding, event),
            )
            if status is not FindingStatus.RESOLVED:
                status = decision.kind
        elif kind is EventKind.EXPIRED:
            if status in (FindingStatus.ACCEPTED, FindingStatus.FALSE_POSITIVE):
                status = FindingStatus.OPEN
            decision = None if decision is None else replace(decision, until=event.at)
        elif kind is EventKind.REVOKED:
            if status in (FindingStatus.ACCEPTED, FindingStatus.FALSE_POSITIVE):
                status = FindingStatus.OPEN
            decision = None
    if status is None:
        return None
    if decision is not None and not decision.holds(at):
        decision = None
        if status in (FindingStatus.ACCEPTED, FindingStatus.FALSE_POSITIVE):
            status = FindingStatus.OPEN
    return Standing(
        finding_id=finding.id,
        organisation_id=finding.organisation_id,
        collector=finding.collector,
        check_id=finding.check_id,
        subject=finding.subject,
        asset=finding.asset,
        category=finding.category,
        severity=finding.severity,
        first_seen=finding.first_seen,
        status=status,
        decision=decision,
    )


def _until(finding: Finding, event: FindingEvent) -> dt.datetime | None:
    """The end of the decision the event records: its own, or (for the finding's latest
    decision, recorded before events carried it) the finding's."""
    if event.until is not None:
        return event.until
    if finding.decided_at is not None and finding.decided_at == event.at:
        return finding.decision_until
    return None


def standing_at(
    session: Session, organisation_ids: Collection[int], at: dt.datetime
) -> dict[int, list[Standing]]:
    """Every finding of the organisations as it stood just before `at`, by organisation id."""
    ids = list(organisation_ids)
    found: dict[int, list[Standing]] = {i: [] for i in ids}
    rows = session.execute(
        select(FindingEvent, Finding)
        .join(Finding, FindingEvent.finding_id == Finding.id)
        .where(Finding.organisation_id.in_(ids), FindingEvent.at < at)
        .order_by(FindingEvent.finding_id, FindingEvent.at, FindingEvent.id)
    )
    current: Finding | None = None
    events: list[FindingEvent] = []
    for event, finding in [*rows, (None, None)]:
        if finding is not current and current is not None:
            standing = replay(current, events, at)
            if standing is not None:
                found[current.organisation_id].append(standing)
            events = []
        current = finding
        if event is not None:
            events.append(event)
    return found


_SCORED = (FindingStatus.OPEN, FindingStatus.ACCEPTED, FindingStatus.FALSE_POSITIVE)


def scoring_inputs_at(
    session: Session,
    organisation_ids: Collection[int],
    at: dt.datetime,
    *,
    registry: Mapping[str, Check],
) -> tuple[dict[int, list[Standing]], dict[int, tuple[list[ScoringFinding], list[ScoringAsset]]]]:
    """The organisations' findings as they stood just before `at` (by organisation id), and
    scoring's inputs made from them, as `inputs.scoring_inputs_of` makes them from the
    stored state. The assets are today's active ones: the store keeps no asset history."""
    standings = standing_at(session, organisation_ids, at)
    assets = scoring_assets_of(session, organisation_ids)
    inputs = {}
    for organisation_id, found in standings.items():
        findings = [
            ScoringFinding(
                check_id=s.check_id,
                category=registry_category(s, registry),
                severity=str(registry_severity(s, registry)),
                subject=s.subject,
                asset=s.asset,
                first_seen=s.first_seen.date(),
                status=str(s.status),
                decision_reason=s.decision.reason if s.decision else None,
                decision_until=s.decision.until.date() if s.decision and s.decision.until else None,
            )
            for s in found
            if s.status in _SCORED
        ]
        inputs[organisation_id] = (findings, assets[organisation_id])
    return standings, inputs


def checked_before(
    session: Session,
    organisations: Mapping[int, str],
    at: dt.datetime,
    standings: Mapping[int, list[Standing]],
) -> set[int]:
    """The ids (of `organisations`: id → slug) of those checked before `at`: a finding had
    been seen, or a scan covering them had completed (`inputs.checked_organisations` at `at`)."""
    checked = {i for i in organisations if standings.get(i)}
    runs = session.scalars(
        select(ScanRun.organisations).where(
            ScanRun.started_at < at, ScanRun.status.in_([RunStatus.OK, RunStatus.PARTIAL])
        )
    )
    covered = {slug for slugs in runs for slug in (slugs or [])}
    return checked | {i for i, slug in organisations.items() if slug in covered}
