"""Scan health and the asset inventory as one organisation's reader may see them."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from riskiturva.models import Asset, RunStatus, ScanError, ScanRun, SubjectState
from riskiturva.views.organisations import organisation as visible_organisation


@dataclass(frozen=True, slots=True)
class ScanErrorView:
    subject: str
    asset: str
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class RunView:
    """One scan run as one organisation's reader may see it: its own errors only; the run's
    totals only when the reader sees every organisation the run covered."""

    id: int
    collector: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    scheduled_for: dt.datetime | None  # the fire time of a scheduled (or skipped) run
    errors: tuple[ScanErrorView, ...]
    counts: Mapping[str, Any] | None


def runs(
    session: Session, visible: Collection[str], slug: str, *, limit: int = 20
) -> list[RunView]:
    """The visible organisation's latest runs, newest first."""
    org = visible_organisation(session, visible, slug)
    found = list(
        session.scalars(
            select(ScanRun)
            # `organisations` is a JSON list of slugs; slugs are [a-z0-9-], so the quoted
            # slug matches exactly one element on SQLite and PostgreSQL alike.
            .where(cast(ScanRun.organisations, String).like(f'%"{slug}"%'))
            .order_by(ScanRun.id.desc())
            .limit(limit)
        )
    )
    errors: dict[int, list[ScanErrorView]] = defaultdict(list)
    for error in session.scalars(
        select(ScanError)
        .where(ScanError.organisation_id == org.id, ScanError.run_id.in_([r.id for r in found]))
        .order_by(ScanError.id)
    ):
        errors[error.run_id].append(
            ScanErrorView(error.subject, error.asset, error.kind, error.message)
        )
    views = []
    for run in found:
        whole = set(run.organisations) <= set(visible)
        status = run.status
        if not whole and status == RunStatus.PARTIAL and not errors[run.id]:
            status = RunStatus.OK  # the partial part belonged to someone else
        views.append(
            RunView(
                id=run.id,
                collector=run.collector,
                status=str(status),
                started_at=run.started_at,
                finished_at=run.finished_at,
                scheduled_for=run.scheduled_for,
                errors=tuple(errors[run.id]),
                counts=dict(run.counts) if whole else None,
            )
        )
    return views


@dataclass(frozen=True, slots=True)
class SubjectStateView:
    """The latest scan of one subject by one collector."""

    collector: str
    subject: str
    last_status: str
    last_error: str | None
    last_scanned_at: dt.datetime
    last_success_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class AssetView:
    id: int
    kind: str
    value: str
    criticality: str
    tags: tuple[str, ...]
    active: bool  # scanned: in the inventory, not proposed, rejected or retired
    origin: str  # configuration, discovered or added
    state: str  # proposed, active, rejected or retired
    states: tuple[SubjectStateView, ...]  # the latest scan of its subjects, per collector


def assets(
    session: Session, visible: Collection[str], slug: str, *, asset_id: int | None = None
) -> list[AssetView]:
    """The visible organisation's assets (or the one of `asset_id`), active first, with
    their latest scans."""
    org = visible_organisation(session, visible, slug)
    states: dict[str, list[SubjectStateView]] = defaultdict(list)
    for state in session.scalars(
        select(SubjectState)
        .where(SubjectState.organisation_id == org.id)
        .order_by(SubjectState.collector, SubjectState.subject)
    ):
        states[state.asset].append(
            SubjectStateView(
                state.collector,
                state.subject,
                state.last_status,
                state.last_error,
                state.last_scanned_at,
                state.last_success_at,
            )
        )
    query = select(Asset).where(Asset.organisation_id == org.id)
    if asset_id is not None:
        query = query.where(Asset.id == asset_id)
    rows = session.scalars(query.order_by(Asset.active.desc(), Asset.kind, Asset.value))
    return [
        AssetView(
            a.id,
            a.kind,
            a.value,
            a.criticality,
            tuple(a.tags or ()),
            a.active,
            a.origin,
            a.state,
            tuple(states[a.value]),
        )
        for a in rows
    ]


def last_successes(session: Session, organisation_ids: Collection[int]) -> dict[int, dt.datetime]:
    """The last successful scan of any subject, per organisation id."""
    rows = session.execute(
        select(SubjectState.organisation_id, func.max(SubjectState.last_success_at))
        .where(SubjectState.organisation_id.in_(list(organisation_ids)))
        .group_by(SubjectState.organisation_id)
    )
    return {org_id: _as_utc(value) for org_id, value in rows if value is not None}


def _as_utc(value: Any) -> dt.datetime:
    """`max()` over a datetime column comes back as naive text on SQLite."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
