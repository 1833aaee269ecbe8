"""Scores from the store: the adapter to `scoring` and the daily snapshots.

`scoring` is pure; this module reads findings and assets of organisations into its input
dataclasses and stores one `ScoreSnapshot` per organisation and day (an upsert, so the
scheduler may call `take_snapshots` after every scan). Reading trends and changes is the
read model's (`riskiturva.views.trend`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.checks import Check, load_registry
from riskiturva.config import Config
from riskiturva.models import Asset, Finding, Organisation, ScoreSnapshot, SubjectState
from riskiturva.scoring import (
    CRITICALITY_HALVES,
    FindingStatus,
    OrganisationScore,
    ScoringAsset,
    ScoringFinding,
    score_organisation,
)

_SCORED_STATUSES = [str(s) for s in FindingStatus]
_DECISIONS = (FindingStatus.ACCEPTED, FindingStatus.FALSE_POSITIVE)


def scoring_inputs(
    session: Session,
    organisation: Organisation,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check] | None = None,
) -> tuple[list[ScoringFinding], list[ScoringAsset]]:
    """The organisation's open and decided findings, and its active assets, for scoring."""
    return scoring_inputs_of(session, [organisation.id], now=now, registry=registry)[
        organisation.id
    ]


def scoring_inputs_of(
    session: Session,
    organisation_ids: Collection[int],
    *,
    now: dt.datetime,
    registry: Mapping[str, Check] | None = None,
) -> dict[int, tuple[list[ScoringFinding], list[ScoringAsset]]]:
    """Scoring inputs of several organisations in two queries, by organisation id.

    The severity and category are the registry's (the one table), or the stored ones for a
    check no longer registered. A decision whose expiry has passed counts as open even
    before `store.expire_decisions` has run.
    """
    registry = load_registry() if registry is None else registry
    ids = list(organisation_ids)
    findings: dict[int, list[ScoringFinding]] = {i: [] for i in ids}
    rows = session.execute(
        select(
            Finding.organisation_id,
            Finding.check_id,
            Finding.category,
            Finding.severity,
            Finding.subject,
            Finding.asset,
            Finding.first_seen,
            Finding.status,
            Finding.decision_reason,
            Finding.decision_until,
        ).where(Finding.organisation_id.in_(ids), Finding.status.in_(_SCORED_STATUSES))
    )
    for org_id, check_id, category, severity, subject, asset, first, status, reason, until in rows:
        check = registry.get(check_id)
        if status in _DECISIONS and until is not None and until <= now:
            status = FindingStatus.OPEN
        findings[org_id].append(
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
    assets: dict[int, list[Asset]] = {i: [] for i in ids}
    for row in session.scalars(select(Asset).where(Asset.organisation_id.in_(ids), Asset.active)):
        assets[row.organisation_id].append(row)
    return {i: (findings[i], _merged_assets(assets[i])) for i in ids}


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
    return organisation.id in checked_organisations(session, [organisation.id])


def checked_organisations(session: Session, organisation_ids: Collection[int]) -> set[int]:
    """The ids among `organisation_ids` of organisations that have been checked."""
    ids = list(organisation_ids)
    checked = set(
        session.scalars(
            select(SubjectState.organisation_id)
            .where(SubjectState.organisation_id.in_(ids), SubjectState.last_success_at.is_not(None))
            .distinct()
        )
    )
    rest = [i for i in ids if i not in checked]
    if rest:
        checked |= set(
            session.scalars(
                select(Finding.organisation_id).where(Finding.organisation_id.in_(rest)).distinct()
            )
        )
    return checked


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
) -> ScoreSnapshot:
    """Insert or update the organisation's snapshot of `day` (one row per day)."""
    snapshot = session.scalar(
        select(ScoreSnapshot).where(
            ScoreSnapshot.organisation_id == organisation.id, ScoreSnapshot.day == day
        )
    )
    if snapshot is None:
        snapshot = ScoreSnapshot(organisation_id=organisation.id, day=day)
        session.add(snapshot)
    for name, value in snapshot_values(score).items():
        setattr(snapshot, name, value)
    session.flush()
    return snapshot


def take_snapshots(
    sessions: sessionmaker[Session],
    config: Config,
    today: dt.date,
    *,
    now: dt.datetime | None = None,
) -> dict[str, OrganisationScore]:
    """Score every configured organisation that is in the store and keep today's snapshot.

    Idempotent per organisation and day: a second call the same day replaces the row.
    `now` decides which people's decisions have expired (default: the current time).
    """
    now = now or dt.datetime.now(dt.UTC)
    registry = load_registry()
    slugs = [o.slug for o in config.organisations]
    scores: dict[str, OrganisationScore] = {}
    with sessions.begin() as session:
        for organisation in session.scalars(
            select(Organisation).where(Organisation.slug.in_(slugs)).order_by(Organisation.slug)
        ):
            score = score_stored(session, organisation, now=now, registry=registry)
            store_snapshot(session, organisation, today, score)
            scores[organisation.slug] = score
    return scores
