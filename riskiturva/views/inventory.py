"""The inventory as one organisation's reader may see it: its assets with their origin and
state, the review queue (proposals with their evidence), what discovery saw outside the
declared scope, the cloud services its TXT records name, and the estate's changes.

A sighting outside one organisation's scope may lie inside another's (a neighbour's booking
system behind a CNAME): the reader is told so, naming the other organisation only when it is
one of theirs, and saying "another organisation's scope" otherwise. The scopes come from the
configuration (`scopes`: slug → declared scope), which is the authorisation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from riskiturva.config import Scope
from riskiturva.models import (
    Asset,
    AssetState,
    ChangeEvent,
    Organisation,
    ScopeSighting,
    SubjectState,
)
from riskiturva.views.organisations import OrganisationRef, organisations
from riskiturva.views.organisations import organisation as visible_organisation

DISCOVERY = "discovery"  # the collector name of discovery's runs and subject states


class ProposalKind(StrEnum):
    NEW_ASSET = "new_asset"  # discovered, waiting for a decision: never scanned
    RETIREMENT = "retirement"  # an active asset gone (NXDOMAIN) on consecutive runs


@dataclass(frozen=True, slots=True)
class EvidenceView:
    """Where discovery saw an asset: the source, where exactly, and what it read there."""

    source: str
    via: str
    detail: Mapping[str, Any]
    first_seen: dt.datetime
    last_seen: dt.datetime


@dataclass(frozen=True, slots=True)
class InventoryAsset:
    id: int
    organisation: str  # slug
    kind: str
    value: str
    origin: str  # configuration, discovered, added
    state: str  # proposed, active, rejected, retired
    criticality: str
    tags: tuple[str, ...]
    owner_note: str | None
    first_seen: dt.datetime
    last_seen: dt.datetime
    decided_at: dt.datetime | None  # the latest decision (the audit trail keeps them all)
    decided_by: str | None
    reason: str | None
    gone_runs: int
    retirement_proposed_at: dt.datetime | None
    evidence: tuple[EvidenceView, ...]

    @property
    def proposal(self) -> ProposalKind | None:
        """What this asset waits for a person to decide, if anything."""
        if self.state == AssetState.PROPOSED:
            return ProposalKind.NEW_ASSET
        if self.state == AssetState.ACTIVE and self.retirement_proposed_at is not None:
            return ProposalKind.RETIREMENT
        return None

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted({e.source for e in self.evidence}))


@dataclass(frozen=True, slots=True)
class SightingView:
    """A name or address seen outside the organisation's declared scope: never resolved
    further, contacted or scanned. `in_scope_of` names the reader's own organisations whose
    scope covers it; `in_another_scope` says an organisation the reader does not see does."""

    value: str
    kind: str  # name or address
    source: str
    via: str
    detail: Mapping[str, Any]
    first_seen: dt.datetime
    last_seen: dt.datetime
    in_scope_of: tuple[OrganisationRef, ...]
    in_another_scope: bool


@dataclass(frozen=True, slots=True)
class ServiceHint:
    """A cloud service a domain's TXT verification record names: shown, never scanned."""

    domain: str
    service: str
    record: str


@dataclass(frozen=True, slots=True)
class ReviewQueue:
    organisation: OrganisationRef
    proposals: tuple[InventoryAsset, ...]  # new assets first, then retirements; by value
    outside_scope: tuple[SightingView, ...]
    services: tuple[ServiceHint, ...]
    last_discovery: dt.datetime | None  # the latest discovery of the organisation's zones

    @property
    def new_assets(self) -> tuple[InventoryAsset, ...]:
        return tuple(a for a in self.proposals if a.proposal is ProposalKind.NEW_ASSET)

    @property
    def retirements(self) -> tuple[InventoryAsset, ...]:
        return tuple(a for a in self.proposals if a.proposal is ProposalKind.RETIREMENT)


@dataclass(frozen=True, slots=True)
class EstateChange:
    """A change in the estate rather than in a finding: an asset proposed, accepted,
    rejected, retired, added or gone; a name seen outside the scope; a new open port; a
    new certificate."""

    id: int
    kind: str  # riskiturva.models.ChangeKind
    subject: str
    at: dt.datetime
    actor: str | None
    detail: Mapping[str, Any]


def _asset_view(row: Asset, slug: str) -> InventoryAsset:
    return InventoryAsset(
        id=row.id,
        organisation=slug,
        kind=row.kind,
        value=row.value,
        origin=row.origin,
        state=row.state,
        criticality=row.criticality,
        tags=tuple(row.tags or ()),
        owner_note=row.owner_note,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        decided_at=row.state_changed_at,
        decided_by=row.state_changed_by,
        reason=row.state_reason,
        gone_runs=row.gone_runs,
        retirement_proposed_at=row.retirement_proposed_at,
        evidence=tuple(
            EvidenceView(e.source, e.via, dict(e.detail or {}), e.first_seen, e.last_seen)
            for e in row.evidence
        ),
    )


def inventory(
    session: Session,
    visible: Collection[str],
    slug: str,
    *,
    states: Collection[str] = (),
) -> tuple[InventoryAsset, ...]:
    """The visible organisation's assets (only `states` when given), by kind and value."""
    org = visible_organisation(session, visible, slug)
    query = (
        select(Asset)
        .where(Asset.organisation_id == org.id)
        .options(selectinload(Asset.evidence))
        .order_by(Asset.kind, Asset.value)
    )
    if states:
        query = query.where(Asset.state.in_([str(s) for s in states]))
    return tuple(_asset_view(row, org.slug) for row in session.scalars(query))


def _covers(scope: Scope, kind: str, value: str) -> bool:
    if kind == "address":
        try:
            return scope.covers_address(value)
        except ValueError:
            return False
    return scope.covers_name(value)


def review_queue(
    session: Session,
    visible: Collection[str],
    slug: str,
    *,
    scopes: Mapping[str, Scope],
) -> ReviewQueue:
    """What waits for the visible organisation's decision, with what discovery saw
    outside its scope and the cloud services its domains verified."""
    org = visible_organisation(session, visible, slug)
    rows = session.scalars(
        select(Asset)
        .where(
            Asset.organisation_id == org.id,
            or_(
                Asset.state == str(AssetState.PROPOSED),
                Asset.active & Asset.retirement_proposed_at.is_not(None),
            ),
        )
        .options(selectinload(Asset.evidence))
        .order_by(Asset.kind, Asset.value)
    )
    proposals = sorted(
        (_asset_view(row, org.slug) for row in rows),
        key=lambda a: (a.proposal is not ProposalKind.NEW_ASSET, a.value, a.kind),
    )
    mine = {ref.slug: ref for ref in organisations(session, visible)}
    outside = []
    for row in session.scalars(
        select(ScopeSighting)
        .where(ScopeSighting.organisation_id == org.id)
        .order_by(ScopeSighting.value, ScopeSighting.source, ScopeSighting.via)
    ):
        covering = [
            other
            for other, scope in sorted(scopes.items())
            if other != org.slug and _covers(scope, row.kind, row.value)
        ]
        outside.append(
            SightingView(
                value=row.value,
                kind=row.kind,
                source=row.source,
                via=row.via,
                detail=dict(row.detail or {}),
                first_seen=row.first_seen,
                last_seen=row.last_seen,
                in_scope_of=tuple(mine[s] for s in covering if s in mine),
                in_another_scope=any(s not in mine for s in covering),
            )
        )
    services: list[ServiceHint] = []
    last: dt.datetime | None = None
    for state in session.scalars(
        select(SubjectState)
        .where(
            SubjectState.organisation_id == org.id,
            SubjectState.collector == DISCOVERY,
            SubjectState.subject.like("zone:%"),
        )
        .order_by(SubjectState.subject)
    ):
        last = state.last_success_at if last is None else max(last, state.last_success_at or last)
        for hint in (state.last_observation or {}).get("services", ()):
            services.append(
                ServiceHint(
                    str(state.subject).removeprefix("zone:"),
                    str(hint.get("service", "")),
                    str(hint.get("record", "")),
                )
            )
    return ReviewQueue(org, tuple(proposals), tuple(outside), tuple(services), last)


def estate_changes(
    session: Session,
    visible: Collection[str],
    slug: str,
    *,
    since: dt.datetime,
    until: dt.datetime,
    kinds: Collection[str] = (),
) -> tuple[EstateChange, ...]:
    """The visible organisation's estate changes in `[since, until)`, newest first."""
    org = visible_organisation(session, visible, slug)
    query = (
        select(ChangeEvent)
        .where(
            ChangeEvent.organisation_id == org.id,
            ChangeEvent.at >= since,
            ChangeEvent.at < until,
        )
        .order_by(ChangeEvent.at.desc(), ChangeEvent.id.desc())
    )
    if kinds:
        query = query.where(ChangeEvent.kind.in_([str(k) for k in kinds]))
    return tuple(
        EstateChange(e.id, e.kind, e.subject, e.at, e.actor, dict(e.detail or {}))
        for e in session.scalars(query)
    )


def asset_tags(
    session: Session, visible: Collection[str], slugs: Collection[str]
) -> dict[str, dict[str, tuple[str, ...]]]:
    """The tags of every asset of the visible organisations among `slugs` that has any:
    slug → asset value → tags (findings name their asset by its value)."""
    allowed = [s for s in slugs if s in visible]
    found: dict[str, dict[str, tuple[str, ...]]] = {s: {} for s in allowed}
    rows = session.execute(
        select(Organisation.slug, Asset.value, Asset.tags)
        .join(Organisation)
        .where(Organisation.slug.in_(allowed))
    )
    for slug, value, tags in rows:
        if tags:
            merged = {*found[slug].get(value, ()), *tags}
            found[slug][value] = tuple(sorted(merged))
    return found
