"""Daily snapshots read back: trends, and the one definition of "change over 30 days".

Snapshots are stated numbers (each says its day); the scores pages show are live. The
change is the live score against a baseline snapshot: the latest on or before `days`
ago (looked for up to `BASELINE_WINDOW_DAYS` further back), else — for an organisation
scored for a shorter time — the oldest before today.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from riskiturva.current import ScoreSummary
from riskiturva.models import Organisation, ScoreSnapshot
from riskiturva.scoring import OrganisationScore, comparable_versions

CHANGE_DAYS = 30
BASELINE_WINDOW_DAYS = 60  # how far before the cutoff a baseline is looked for


@dataclass(frozen=True, slots=True)
class SnapshotPoint:
    organisation: str
    day: dt.date
    score: float
    grade: str
    scoring_version: str
    category_scores: Mapping[str, float]
    open_counts: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ScoreChange:
    """The live score against a baseline snapshot (its day says since when)."""

    score: float
    scoring_version: str
    baseline: SnapshotPoint | None

    @property
    def delta(self) -> float | None:
        return None if self.baseline is None else round(self.score - self.baseline.score, 1)

    @property
    def since(self) -> dt.date | None:
        return None if self.baseline is None else self.baseline.day

    @property
    def comparable(self) -> bool:
        """False when the scoring model changed in between: the delta mixes models."""
        return self.baseline is not None and comparable_versions(
            self.baseline.scoring_version, self.scoring_version
        )


def score_change(
    score: OrganisationScore | ScoreSummary, baseline: SnapshotPoint | None
) -> ScoreChange:
    return ScoreChange(score.score, score.version, baseline)


def _point(slug: str, row: ScoreSnapshot) -> SnapshotPoint:
    return SnapshotPoint(
        organisation=slug,
        day=row.day,
        score=row.score,
        grade=row.grade,
        scoring_version=row.scoring_version,
        category_scores=dict(row.category_scores),
        open_counts=dict(row.open_counts),
    )


def score_history(
    session: Session,
    visible: Collection[str],
    *,
    since: dt.date,
    until: dt.date,
    organisation: str | None = None,
) -> dict[str, list[SnapshotPoint]]:
    """Snapshots of the visible organisations between two days (inclusive), oldest first."""
    slugs = [s for s in visible if organisation is None or s == organisation]
    rows = session.execute(
        select(Organisation.slug, ScoreSnapshot)
        .join(Organisation, ScoreSnapshot.organisation_id == Organisation.id)
        .where(Organisation.slug.in_(slugs), ScoreSnapshot.day >= since, ScoreSnapshot.day <= until)
        .order_by(Organisation.slug, ScoreSnapshot.day)
    )
    history: dict[str, list[SnapshotPoint]] = {}
    for slug, row in rows:
        history.setdefault(slug, []).append(_point(slug, row))
    return history


def baselines(
    session: Session, organisations: Mapping[int, str], *, today: dt.date, days: int = CHANGE_DAYS
) -> dict[str, SnapshotPoint]:
    """The baseline snapshot of each organisation (id → slug given) for the change since
    `days` ago; organisations without one are left out."""
    cutoff = today - dt.timedelta(days=days)
    ids = list(organisations)
    before = _days(
        session,
        func.max(ScoreSnapshot.day),
        ids,
        ScoreSnapshot.day <= cutoff,
        ScoreSnapshot.day >= cutoff - dt.timedelta(days=BASELINE_WINDOW_DAYS),
    )
    rest = [i for i in ids if i not in before]
    younger = (
        _days(
            session,
            func.min(ScoreSnapshot.day),
            rest,
            ScoreSnapshot.day > cutoff,
            ScoreSnapshot.day < today,
        )
        if rest
        else {}
    )
    wanted = {**younger, **before}
    found: dict[str, SnapshotPoint] = {}
    if wanted:
        chosen = select(ScoreSnapshot).where(
            ScoreSnapshot.organisation_id.in_(list(wanted)),
            ScoreSnapshot.day.in_(sorted(set(wanted.values()))),
        )
        for row in session.scalars(chosen):
            if wanted.get(row.organisation_id) == row.day:
                slug = organisations[row.organisation_id]
                found[slug] = _point(slug, row)
    return found


def _days(
    session: Session,
    day: ColumnElement[dt.date],
    ids: list[int],
    *conditions: ColumnElement[bool],
) -> dict[int, dt.date]:
    """One aggregate day (max or min) per organisation, under `conditions`."""
    rows = session.execute(
        select(ScoreSnapshot.organisation_id, day)
        .where(ScoreSnapshot.organisation_id.in_(ids), and_(*conditions))
        .group_by(ScoreSnapshot.organisation_id)
    )
    return {org_id: _as_date(value) for org_id, value in rows}


def _as_date(value: object) -> dt.date:
    """An aggregate over a date column comes back as text on SQLite."""
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    assert isinstance(value, dt.date)
    return value


def sampled(
    session: Session, organisations: Mapping[int, str], days: Collection[dt.date]
) -> dict[str, dict[dt.date, float]]:
    """Snapshot scores of the given days (say, every fifth of the last 90), by slug."""
    samples: dict[str, dict[dt.date, float]] = {slug: {} for slug in organisations.values()}
    for org_id, day, score in session.execute(
        select(ScoreSnapshot.organisation_id, ScoreSnapshot.day, ScoreSnapshot.score).where(
            ScoreSnapshot.organisation_id.in_(list(organisations)),
            ScoreSnapshot.day.in_(sorted(days)),
        )
    ):
        samples[organisations[org_id]][day] = score
    return samples
