"""Scores from the store: the adapter to `scoring`, daily snapshots and trends.

`scoring` is pure; this module reads findings and assets of one organisation into its
input dataclasses, stores one `ScoreSnapshot` per organisation and day (an upsert, so the
scheduler may call `take_snapshots` after every scan), and answers "how has the score
changed since 30 days ago?".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.checks import Check, load_registry
from riskiturva.config import Config
from riskiturva.dberrors import write_with_retry
from riskiturva.models import Asset, Finding, Organisation, ScoreSnapshot, SubjectState
from riskiturva.scoring import (
    CRITICALITY_HALVES,
    FindingStatus,
    OrganisationScore,
    ScoringAsset,
    ScoringFinding,
    score_organisation,
)
from riskiturva.store import upsert

_SCORED_STATUSES = [str(s) for s in FindingStatus]
_DECISIONS = (FindingStatus.ACCEPTED, FindingStatus.FALSE_POSITIVE)


def scoring_inputs(
    session: Session,
    organisation: Organisation,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check] | None = None,
) -> tuple[list[ScoringFinding], list[ScoringAsset]]:
    """The organisation's open and decided findings, and its active assets, for scoring.

    The severity is the registry's (the one table), or the stored one for a check no
    longer registered. A decision whose expiry has passed counts as open even before
    `store.expire_decisions` has run.
    """
    registry = load_registry() if registry is None else registry
    rows = session.execute(
        select(
            Finding.check_id,
            Finding.category,
            Finding.severity,
            Finding.subject,
            Finding.asset,
            Finding.first_seen,
            Finding.status,
            Finding.decision_reason,
            Finding.decision_until,
        ).where(
            Finding.organisation_id == organisation.id,
            Finding.status.in_(_SCORED_STATUSES),
        )
    )
    findings = []
    for check_id, category, severity, subject, asset, first, status, reason, until in rows:
        check = registry.get(check_id)
        if status in _DECISIONS and until is not None and until <= now:
            status = FindingStatus.OPEN
        findings.append(
            ScoringFinding(
                check_id=check_id,
                category=str(check.category) if check else category,
                severity=str(check.severity) if check else severity,
                subject=subject,
                asset=asset,
                first_seen=first.date(),
                status=status,
                decision_reason=reason,
                decision_until=until.date() if until else None,
            )
        )
    return findings, _merged_assets(
        session.scalars(select(Asset).where(Asset.organisation_id == organisation.id, Asset.active))
    )


def _merged_assets(rows: Iterable[Asset]) -> list[ScoringAsset]:
    """One scoring asset per value (a domain may be both `domain` and `mail_domain`):
    the highest criticality and every tag."""
    merged: dict[str, ScoringAsset] = {}
    for row in rows:
        known = merged.get(row.value)
        criticality = row.criticality
        tags = frozenset(row.tags or ())
        if known is not None:
            if CRITICALITY_HALVES.get(known.criticality, 0) > CRITICALITY_HALVES.get(
                criticality, 0
            ):
                criticality = known.criticality
            tags |= known.tags
        merged[row.value] = ScoringAsset(row.value, criticality, tags)
    return [merged[v] for v in sorted(merged)]


def score_stored(
    session: Session,
    organisation: Organisation,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check] | None = None,
) -> OrganisationScore:
    """Score one organisation from the store."""
    findings, assets = scoring_inputs(session, organisation, now=now, registry=registry)
    return score_organisation(organisation.slug, findings, assets)


# --- daily snapshots -------------------------------------------------------------------


def has_been_checked(session: Session, organisation: Organisation) -> bool:
    """Whether anything of the organisation has been checked: a subject scanned completely,
    or a finding seen (only a scan that reached the subject can see one)."""
    for model, condition in (
        (SubjectState, SubjectState.last_success_at.is_not(None)),
        (Finding, True),
    ):
        query = select(model.id).where(model.organisation_id == organisation.id, condition)
        if session.scalar(query.limit(1)) is not None:
            return True
    return False


def snapshot_values(score: OrganisationScore) -> dict[str, Any]:
    """The columns of a `ScoreSnapshot` for one score."""
    return {
        "score": score.score,
        "grade": str(score.grade),
        "scoring_version": score.version,
        "category_scores": {c: s.score for c, s in sorted(score.categories.items())},
        "open_counts": dict(score.open_counts),
    }


def store_snapshot(
    session: Session, organisation: Organisation, day: dt.date, score: OrganisationScore
) -> None:
    """Insert or replace the organisation's snapshot of `day` (one row per day): an upsert,
    so scans ending at the same moment in several processes all succeed."""
    values = snapshot_values(score)
    upsert(
        session,
        ScoreSnapshot,
        [{"organisation_id": organisation.id, "day": day, **values}],
        key=["organisation_id", "day"],
        update_columns=list(values),
    )


def take_snapshots(
    sessions: sessionmaker[Session],
    config: Config,
    today: dt.date,
    *,
    now: dt.datetime | None = None,
    organisations: Collection[str] | None = None,
) -> dict[str, OrganisationScore]:
    """Score the configured organisations that are in the store (or only `organisations`,
    e.g. those just scanned) and keep today's snapshot of each.

    Idempotent per organisation and day: a second call the same day replaces the row.
    `now` decides which people's decisions have expired (default: the current time).
    """
    now = now or dt.datetime.now(dt.UTC)
    registry = load_registry()
    slugs = [
        o.slug for o in config.organisations if organisations is None or o.slug in organisations
    ]
    scores: dict[str, OrganisationScore] = {}

    def write(session: Session) -> None:
        scores.clear()
        for organisation in session.scalars(
            select(Organisation).where(Organisation.slug.in_(slugs)).order_by(Organisation.slug)
        ):
            score = score_stored(session, organisation, now=now, registry=registry)
            store_snapshot(session, organisation, today, score)
            scores[organisation.slug] = score

    write_with_retry(
        sessions,
        write,
        what="store today's score snapshots",
        budget_s=config.settings.write_retry_seconds,
    )
    return scores


# --- trends ----------------------------------------------------------------------------


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
    """The latest snapshot against the one `days` ago (or the oldest there is)."""

    current: SnapshotPoint
    baseline: SnapshotPoint | None

    @property
    def delta(self) -> float | None:
        if self.baseline is None:
            return None
        return round(self.current.score - self.baseline.score, 1)

    @property
    def comparable(self) -> bool:
        """False when the scoring version changed in between: the delta mixes models."""
        return (
            self.baseline is not None
            and self.baseline.scoring_version == self.current.scoring_version
        )


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


def change_since(
    session: Session,
    visible: Collection[str],
    *,
    today: dt.date,
    days: int = 30,
) -> dict[str, ScoreChange]:
    """Per visible organisation with a snapshot: the change since `days` ago.

    The baseline is the latest snapshot on or before `today − days`; an organisation
    scored for a shorter time is compared with its oldest snapshot (its day is in
    `baseline.day`); with a single snapshot there is no baseline.
    """
    cutoff = today - dt.timedelta(days=days)
    changes: dict[str, ScoreChange] = {}
    for slug, points in score_history(session, visible, since=dt.date.min, until=today).items():
        current = points[-1]
        earlier = [p for p in points[:-1] if p.day <= cutoff]
        if earlier:
            baseline: SnapshotPoint | None = earlier[-1]
        else:
            baseline = points[0] if len(points) > 1 else None
        changes[slug] = ScoreChange(current, baseline)
    return changes
