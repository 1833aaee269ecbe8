"""The dashboard's read queries. Each takes the viewer's visible organisations (slugs) and
filters by them in SQL; an organisation outside them reads as absent, never as forbidden."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, and_, cast, func, select
from sqlalchemy.orm import Session

from riskiturva.models import (
    Asset,
    Finding,
    FindingStatus,
    Organisation,
    RunStatus,
    ScanError,
    ScanRun,
    ScoreSnapshot,
    SubjectState,
)
from riskiturva.scoring import due_date

SPARK_DAYS = 90
SPARK_STEP = 5  # one sparkline point every 5 days: 19 points, one of them 30 days ago
TREND_DAYS = 30


def organisation(session: Session, visible: Collection[str], slug: str) -> Organisation | None:
    return session.scalar(
        select(Organisation).where(Organisation.slug == slug, Organisation.slug.in_(list(visible)))
    )


@dataclass(frozen=True)
class PortfolioRow:
    slug: str
    name: str
    grade: str | None
    score: float | None
    delta: float | None  # since TREND_DAYS ago
    spark: tuple[float, ...]
    open_critical: int
    open_high: int
    overdue: int
    last_success: dt.datetime | None
    category_scores: Mapping[str, float] = field(default_factory=dict)


def portfolio(
    session: Session, visible: Collection[str], *, today: dt.date, language: str
) -> list[PortfolioRow]:
    """One row per visible organisation: latest daily snapshot, sampled trend, open
    critical/high findings, overdue remediation groups and the last successful scan."""
    organisations = {
        o.id: o
        for o in session.scalars(select(Organisation).where(Organisation.slug.in_(list(visible))))
    }
    ids = list(organisations)
    latest_day = (
        select(ScoreSnapshot.organisation_id, func.max(ScoreSnapshot.day).label("day"))
        .where(
            ScoreSnapshot.organisation_id.in_(ids),
            ScoreSnapshot.day <= today,
            # An organisation not scored for SPARK_DAYS has no current score to show.
            ScoreSnapshot.day >= today - dt.timedelta(days=SPARK_DAYS),
        )
        .group_by(ScoreSnapshot.organisation_id)
        .subquery()
    )
    latest = {
        org_id: (score, grade, categories)
        for org_id, score, grade, categories in session.execute(
            select(
                ScoreSnapshot.organisation_id,
                ScoreSnapshot.score,
                ScoreSnapshot.grade,
                ScoreSnapshot.category_scores,
            ).join(
                latest_day,
                and_(
                    ScoreSnapshot.organisation_id == latest_day.c.organisation_id,
                    ScoreSnapshot.day == latest_day.c.day,
                ),
            )
        )
    }
    sample_days = [today - dt.timedelta(days=d) for d in range(SPARK_DAYS, -1, -SPARK_STEP)]
    spark: dict[int, dict[dt.date, float]] = defaultdict(dict)
    for org_id, day, score in session.execute(
        select(ScoreSnapshot.organisation_id, ScoreSnapshot.day, ScoreSnapshot.score).where(
            ScoreSnapshot.organisation_id.in_(ids), ScoreSnapshot.day.in_(sample_days)
        )
    ):
        spark[org_id][day] = score
    severities: dict[int, dict[str, int]] = defaultdict(dict)
    for org_id, severity, count in session.execute(
        select(Finding.organisation_id, Finding.severity, func.count(Finding.id))
        .where(Finding.organisation_id.in_(ids), Finding.status == FindingStatus.OPEN)
        .group_by(Finding.organisation_id, Finding.severity)
    ):
        severities[org_id][severity] = count
    overdue: dict[int, int] = defaultdict(int)
    for org_id, severity, first_seen in session.execute(
        select(Finding.organisation_id, Finding.severity, func.min(Finding.first_seen))
        .where(Finding.organisation_id.in_(ids), Finding.status == FindingStatus.OPEN)
        .group_by(Finding.organisation_id, Finding.check_id, Finding.severity)
    ):
        due = due_date(severity, _as_date(first_seen))
        if due is not None and today > due:
            overdue[org_id] += 1
    last_success = dict(
        session.execute(
            select(SubjectState.organisation_id, func.max(SubjectState.last_success_at))
            .where(SubjectState.organisation_id.in_(ids))
            .group_by(SubjectState.organisation_id)
        ).all()
    )
    baseline_day = today - dt.timedelta(days=TREND_DAYS)
    rows = []
    for org_id, org in organisations.items():
        score, grade, categories = latest.get(org_id, (None, None, {}))
        baseline = spark[org_id].get(baseline_day)
        rows.append(
            PortfolioRow(
                slug=org.slug,
                name=org.name(language),
                grade=grade,
                score=score,
                delta=None if score is None or baseline is None else round(score - baseline, 1),
                spark=tuple(spark[org_id][d] for d in sample_days if d in spark[org_id]),
                open_critical=severities[org_id].get("critical", 0),
                open_high=severities[org_id].get("high", 0),
                overdue=overdue[org_id],
                last_success=_as_utc(last_success.get(org_id)),
                category_scores=dict(categories or {}),
            )
        )
    return sorted(rows, key=lambda r: (r.score is None, r.score or 0, r.slug))


def _as_date(value: Any) -> dt.date:
    """`min()` over a datetime column comes back as text on SQLite."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.date() if isinstance(value, dt.datetime) else value


def _as_utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


@dataclass(frozen=True)
class Changes:
    new: list[Finding]
    resolved: list[Finding]


def changes_since(
    session: Session, visible: Collection[str], slug: str, *, since: dt.datetime
) -> Changes:
    """Findings first seen (still open) and findings resolved since `since`."""
    base = (
        select(Finding)
        .join(Organisation)
        .where(Organisation.slug == slug, Organisation.slug.in_(list(visible)))
    )
    new = session.scalars(
        base.where(Finding.first_seen >= since, Finding.status == FindingStatus.OPEN).order_by(
            Finding.first_seen.desc()
        )
    )
    resolved = session.scalars(
        base.where(Finding.resolved_at >= since, Finding.status == FindingStatus.RESOLVED).order_by(
            Finding.resolved_at.desc()
        )
    )
    return Changes(list(new), list(resolved))


@dataclass(frozen=True)
class RunView:
    """One scan run as one organisation's reader may see it: its own errors only; the run's
    totals only when the reader sees every organisation the run covered."""

    id: int
    collector: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    scheduled_for: dt.datetime | None  # the fire time of a scheduled (or skipped) run
    errors: tuple[ScanError, ...]
    counts: Mapping[str, Any] | None


def runs_for(
    session: Session, visible: Collection[str], slug: str, *, limit: int = 20
) -> list[RunView]:
    org = organisation(session, visible, slug)
    if org is None:
        return []
    runs = list(
        session.scalars(
            select(ScanRun)
            # `organisations` is a JSON list of slugs; slugs are [a-z0-9-], so the quoted
            # slug matches exactly one element on SQLite and PostgreSQL alike.
            .where(cast(ScanRun.organisations, String).like(f'%"{slug}"%'))
            .order_by(ScanRun.id.desc())
            .limit(limit)
        )
    )
    errors: dict[int, list[ScanError]] = defaultdict(list)
    for error in session.scalars(
        select(ScanError)
        .where(ScanError.organisation_id == org.id, ScanError.run_id.in_([r.id for r in runs]))
        .order_by(ScanError.id)
    ):
        errors[error.run_id].append(error)
    views = []
    for run in runs:
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


@dataclass(frozen=True)
class AssetView:
    asset: Asset
    states: tuple[SubjectState, ...]  # the latest scan of its subjects, per collector


def assets_of(session: Session, visible: Collection[str], slug: str) -> list[AssetView]:
    org = organisation(session, visible, slug)
    if org is None:
        return []
    states: dict[str, list[SubjectState]] = defaultdict(list)
    for state in session.scalars(
        select(SubjectState)
        .where(SubjectState.organisation_id == org.id)
        .order_by(SubjectState.collector, SubjectState.subject)
    ):
        states[state.asset].append(state)
    assets = session.scalars(
        select(Asset)
        .where(Asset.organisation_id == org.id)
        .order_by(Asset.active.desc(), Asset.kind, Asset.value)
    )
    return [AssetView(a, tuple(states.get(a.value, ()))) for a in assets]
