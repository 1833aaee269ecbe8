"""The inventory in the store: what is scanned, what waits for review, and who decided.

Assets come from the configuration (`store.sync_config`), from discovery (proposals) or
from a person. Only active assets are scanned. A person with the right role decides on
proposals — a new asset, or discovery's proposal to retire one that is gone — one by one
or in bulk; every decision is a change event and a row in the audit trail. Every query
and decision takes the caller's visible organisations: an asset outside them reads as
absent.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import tomlkit
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from riskiturva.auth import audit
from riskiturva.config import Asset as ConfigAsset
from riskiturva.config import AssetKind, Config, Criticality, Scope
from riskiturva.current import refresh_current_score
from riskiturva.models import (
    Asset,
    AssetOrigin,
    AssetState,
    ChangeEvent,
    ChangeKind,
    Organisation,
)
from riskiturva.store import NotVisible


class InventoryError(ValueError):
    """A decision on the inventory was refused; the message says why."""


def record_change(
    session: Session,
    *,
    organisation_id: int,
    kind: ChangeKind,
    subject: str,
    at: dt.datetime,
    asset_id: int | None = None,
    run_id: int | None = None,
    actor: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> ChangeEvent:
    event = ChangeEvent(
        organisation_id=organisation_id,
        kind=str(kind),
        subject=subject,
        asset_id=asset_id,
        run_id=run_id,
        at=at,
        actor=actor,
        detail=dict(detail or {}),
    )
    session.add(event)
    return event


def refresh_scores(session: Session, assets: Iterable[Asset], *, now: dt.datetime) -> None:
    """Keep the current score of every organisation whose assets were decided on (scoring
    weighs findings by the criticality of active assets)."""
    session.flush()
    for organisation_id in sorted({a.organisation_id for a in assets}):
        refresh_current_score(session, organisation_id, now=now)


# --- reading ---------------------------------------------------------------------------


def active_assets(session: Session, organisation: str) -> list[ConfigAsset]:
    """The organisation's active assets, as the runner expands them into targets."""
    rows = session.scalars(
        select(Asset)
        .join(Organisation)
        .where(Organisation.slug == organisation, Asset.active)
        .order_by(Asset.kind, Asset.value)
    )
    return [
        ConfigAsset(
            kind=AssetKind(row.kind),
            value=row.value,
            criticality=Criticality(row.criticality),
            tags=tuple(row.tags or ()),
            dkim_selectors=tuple(row.dkim_selectors or ()),
        )
        for row in rows
    ]


def list_assets(
    session: Session,
    visible: Collection[str],
    *,
    organisation: str | None = None,
    states: Collection[str] = (),
    origins: Collection[str] = (),
    retirement_proposed: bool | None = None,
) -> list[Asset]:
    """Assets of the visible organisations (evidence loaded), by organisation, kind, value."""
    slugs = [s for s in visible if organisation is None or s == organisation]
    query = (
        select(Asset)
        .join(Organisation)
        .where(Organisation.slug.in_(slugs))
        .options(selectinload(Asset.evidence), selectinload(Asset.organisation))
        .order_by(Organisation.slug, Asset.kind, Asset.value)
    )
    if states:
        query = query.where(Asset.state.in_(list(states)))
    if origins:
        query = query.where(Asset.origin.in_(list(origins)))
    if retirement_proposed is not None:
        query = query.where(
            Asset.retirement_proposed_at.is_not(None)
            if retirement_proposed
            else Asset.retirement_proposed_at.is_(None)
        )
    return list(session.scalars(query))


def _get(session: Session, asset_id: int, visible: Collection[str]) -> Asset:
    asset = session.scalar(
        select(Asset)
        .join(Organisation)
        .where(Asset.id == asset_id, Organisation.slug.in_(list(visible)))
    )
    if asset is None:
        raise NotVisible(asset_id)
    return asset


# --- decisions -------------------------------------------------------------------------


def _decided(
    session: Session,
    asset: Asset,
    *,
    kind: ChangeKind,
    actor: str,
    now: dt.datetime,
    reason: str | None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    asset.state_changed_at, asset.state_changed_by, asset.state_reason = now, actor, reason
    record_change(
        session,
        organisation_id=asset.organisation_id,
        kind=kind,
        subject=asset.value,
        at=now,
        asset_id=asset.id,
        actor=actor,
        detail={"kind": asset.kind, **(detail or {})},
    )
    audit(
        session,
        actor=actor,
        action=str(kind),
        now=now,
        organisation=asset.organisation.slug,
        target=f"{asset.kind} {asset.value}"[:200],
        detail={"asset_id": asset.id, "state": asset.state, **(detail or {})},
        note=reason,
    )


def _apply_settings(
    asset: Asset,
    criticality: str | None,
    tags: Sequence[str] | None,
    owner_note: str | None,
) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    if criticality is not None:
        asset.criticality = str(Criticality(criticality))
        changed["criticality"] = asset.criticality
    if tags is not None:
        asset.tags = sorted({t.strip() for t in tags if t.strip()})
        changed["tags"] = asset.tags
    if owner_note is not None:
        asset.owner_note = owner_note.strip() or None
        changed["owner_note"] = asset.owner_note
    return changed


def accept(
    session: Session,
    asset_ids: Iterable[int],
    *,
    visible: Collection[str],
    actor: str,
    now: dt.datetime,
    criticality: str | None = None,
    tags: Sequence[str] | None = None,
    note: str | None = None,
) -> list[Asset]:
    """Accept proposals: a proposed asset becomes active (scanned from the next run on); a
    retirement proposal retires the asset."""
    decided = []
    for asset_id in asset_ids:
        asset = _get(session, asset_id, visible)
        if asset.state == AssetState.ACTIVE and asset.retirement_proposed_at is not None:
            reason = note or "gone: retirement proposal accepted"
            decided += retire(
                session, [asset.id], visible=visible, actor=actor, now=now, reason=reason
            )
            continue
        if asset.state != AssetState.PROPOSED:
            raise InventoryError(f"{asset.value}: not a proposal (it is {asset.state})")
        changed = _apply_settings(asset, criticality, tags, None)
        asset.state = AssetState.ACTIVE
        _decided(
            session,
            asset,
            kind=ChangeKind.ASSET_ACCEPTED,
            actor=actor,
            now=now,
            reason=note,
            detail=changed,
        )
        decided.append(asset)
    refresh_scores(session, decided, now=now)
    return decided


def reject(
    session: Session,
    asset_ids: Iterable[int],
    *,
    visible: Collection[str],
    actor: str,
    now: dt.datetime,
    reason: str,
) -> list[Asset]:
    """Reject proposals: a proposed asset stays out even when seen again; a rejected
    retirement proposal keeps the asset active and starts counting again."""
    if not reason.strip():
        raise InventoryError("a reason is required")
    decided = []
    for asset_id in asset_ids:
        asset = _get(session, asset_id, visible)
        if asset.state == AssetState.ACTIVE and asset.retirement_proposed_at is not None:
            asset.retirement_proposed_at, asset.gone_runs = None, 0
            _decided(
                session,
                asset,
                kind=ChangeKind.ASSET_REJECTED,
                actor=actor,
                now=now,
                reason=reason.strip(),
                detail={"proposal": "retirement"},
            )
        elif asset.state == AssetState.PROPOSED:
            asset.state = AssetState.REJECTED
            _decided(
                session,
                asset,
                kind=ChangeKind.ASSET_REJECTED,
                actor=actor,
                now=now,
                reason=reason.strip(),
            )
        else:
            raise InventoryError(f"{asset.value}: not a proposal (it is {asset.state})")
        decided.append(asset)
    refresh_scores(session, decided, now=now)
    return decided


def retire(
    session: Session,
    asset_ids: Iterable[int],
    *,
    visible: Collection[str],
    actor: str,
    now: dt.datetime,
    reason: str,
) -> list[Asset]:
    """Retire assets no longer in use: not scanned, kept with their history."""
    if not reason.strip():
        raise InventoryError("a reason is required")
    decided = []
    for asset_id in asset_ids:
        asset = _get(session, asset_id, visible)
        if asset.origin == AssetOrigin.CONFIGURATION:
            raise InventoryError(
                f"{asset.value}: declared in the configuration; remove it there to retire it"
            )
        if asset.state == AssetState.RETIRED:
            raise InventoryError(f"{asset.value}: already retired")
        asset.state, asset.retirement_proposed_at = AssetState.RETIRED, None
        _decided(
            session,
            asset,
            kind=ChangeKind.ASSET_RETIRED,
            actor=actor,
            now=now,
            reason=reason.strip(),
        )
        decided.append(asset)
    refresh_scores(session, decided, now=now)
    return decided


def update(
    session: Session,
    asset_id: int,
    *,
    visible: Collection[str],
    actor: str,
    now: dt.datetime,
    criticality: str | None = None,
    tags: Sequence[str] | None = None,
    owner_note: str | None = None,
) -> Asset:
    """Set criticality, tags or the owner's note (audited; configuration assets keep what
    the configuration says, so they are refused)."""
    asset = _get(session, asset_id, visible)
    if asset.origin == AssetOrigin.CONFIGURATION and (criticality or tags is not None):
        raise InventoryError(
            f"{asset.value}: criticality and tags come from the configuration; change them there"
        )
    changed = _apply_settings(asset, criticality, tags, owner_note)
    if changed:
        audit(
            session,
            actor=actor,
            action="asset.updated",
            now=now,
            organisation=asset.organisation.slug,
            target=f"{asset.kind} {asset.value}"[:200],
            detail={"asset_id": asset.id, **changed},
        )
    refresh_scores(session, [asset], now=now)
    return asset


def outside_scope(scope: Scope, declared: ConfigAsset, organisation: str) -> str | None:
    """Why the asset lies outside the organisation's declared scope; None when inside."""
    name = declared.host_name
    if name is not None and not scope.covers_name(name):
        return f"{name}: outside the declared scope domains of {organisation}"
    if declared.kind is AssetKind.IP and not scope.covers_address(declared.value):
        return f"{declared.value}: outside the declared scope networks"
    if declared.kind is AssetKind.NETWORK and not scope.covers_network(
        ipaddress.ip_network(declared.value)
    ):
        return f"{declared.value}: outside the declared scope networks"
    return None


def add(
    session: Session,
    config: Config,
    *,
    organisation: str,
    kind: str,
    value: str,
    visible: Collection[str],
    actor: str,
    now: dt.datetime,
    criticality: str = "medium",
    tags: Sequence[str] = (),
    owner_note: str | None = None,
) -> Asset:
    """Add an asset by hand (origin `added`, active); it must lie inside the declared scope."""
    if organisation not in visible:
        raise NotVisible(organisation)
    try:
        declared = ConfigAsset.model_validate(
            {"kind": kind, "value": value, "criticality": criticality, "tags": tuple(tags)}
        )
    except ValidationError as exc:
        raise InventoryError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from exc
    problem = outside_scope(config.organisation(organisation).scope, declared, organisation)
    if problem is not None:
        raise InventoryError(problem)
    org = session.scalar(select(Organisation).where(Organisation.slug == organisation))
    if org is None:
        raise NotVisible(organisation)
    asset = session.scalar(
        select(Asset).where(
            Asset.organisation_id == org.id,
            Asset.kind == str(declared.kind),
            Asset.value == declared.value,
        )
    )
    if asset is not None and asset.state == AssetState.ACTIVE:
        raise InventoryError(f"{declared.value}: already in the inventory")
    if asset is None:
        asset = Asset(
            organisation_id=org.id,
            kind=str(declared.kind),
            value=declared.value,
            origin=AssetOrigin.ADDED,
            first_seen=now,
            gone_runs=0,
            dkim_selectors=[],
        )
        session.add(asset)
    asset.organisation = org
    asset.state, asset.last_seen = AssetState.ACTIVE, now
    asset.criticality, asset.tags = str(declared.criticality), list(declared.tags)
    asset.owner_note = owner_note
    session.flush()
    _decided(session, asset, kind=ChangeKind.ASSET_ADDED, actor=actor, now=now, reason=None)
    refresh_scores(session, [asset], now=now)
    return asset


def export_document(config: Config, inventory: dict[str, list[Asset]]) -> str:
    """The configuration file with each organisation's assets replaced by its active
    inventory (comments and settings kept), so the inventory can become the seed."""
    assert config.source is not None
    document = tomlkit.parse(config.source.read_text(encoding="utf-8"))
    for table in document.get("organisations", []):
        rows = inventory.get(str(table["slug"]), [])
        assets = tomlkit.aot()
        for row in rows:
            item = tomlkit.table()
            item.add("kind", row.kind)
            item.add("value", row.value)
            item.add("criticality", row.criticality)
            if row.tags:
                item.add("tags", list(row.tags))
            if row.dkim_selectors:
                item.add("dkim_selectors", list(row.dkim_selectors))
            if row.origin != "configuration":
                item.add(tomlkit.comment(f"{row.origin}; accepted by {row.state_changed_by}"))
            assets.append(item)
        if "assets" in table:
            del table["assets"]
        if rows:
            table.append("assets", assets)
    return tomlkit.dumps(document)
