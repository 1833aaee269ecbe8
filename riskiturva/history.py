"""Scores from the store: the adapter to `scoring`, current scores and daily snapshots.

`scoring` is pure; this module reads findings and assets of organisations into its input
dataclasses, keeps each organisation's `CurrentScore` (the summary a portfolio row needs,
rewritten by the store in the same transaction as every change to its inputs) and stores
one `ScoreSnapshot` per organisation and day (an upsert, so the scheduler may call
`take_snapshots` after every scan). Reading trends and changes is the read model's
(`riskiturva.views`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.checks import Check, load_registry
from riskiturva.config import Config
from riskiturva.models import (
    Asset,
    CurrentScore,
    Finding,
    Organisation,
    ScoreSnapshot,
    SubjectState,
)
from riskiturva.scoring import (
    CRITICALITY_HALVES,
    POINT,
    SCORING_VERSION,
    FindingStatus,
    Grade,
    OrganisationScore,
    ScoringAsset,
    ScoringFinding,
    due_date,
    grade_for,
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
    registered = {c.id: (str(c.category), str(c.severity)) for c in registry.values()}
    for org_id, check_id, category, severity, subject, asset, first, status, reason, until in rows:
        category, severity = registered.get(check_id, (category, severity))
        if status in _DECISIONS and until is not None and until <= now:
            status = FindingStatus.OPEN
        findings[org_id].append(
            ScoringFinding(
                check_id=check_id,
                category=category,
                severity=severity,
                subject=subject,
                asset=asset,
                first_seen=first.date(),
                status=status,
                decision_reason=reason,
                decision_until=until.date() if until else None,
            )
        )
    assets: dict[int, list[tuple[str, str, list[str] | None]]] = {i: [] for i in ids}
    for org_id, value, criticality, tags in session.execute(
        select(Asset.organisation_id, Asset.value, Asset.criticality, Asset.tags).where(
            Asset.organisation_id.in_(ids), Asset.active
        )
    ):
        assets[org_id].append((value, criticality, tags))
    return {i: (findings[i], _merged_assets(assets[i])) for i in ids}


def _merged_assets(rows: Iterable[tuple[str, str, list[str] | None]]) -> list[ScoringAsset]:
    """One scoring asset per value (a domain may be both `domain` and `mail_domain`):
    the highest criticality and every tag. Rows are (value, criticality, tags)."""
    merged: dict[str, ScoringAsset] = {}
    for value, criticality, tags in rows:
        known = merged.get(value)
        every_tag = frozenset(tags or ())
        if known is not None:
            if CRITICALITY_HALVES.get(known.criticality, 0) > CRITICALITY_HALVES.get(
                criticality, 0
            ):
                criticality = known.criticality
            every_tag |= known.tags
        merged[value] = ScoringAsset(value, criticality, every_tag)
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


# --- current scores --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    """What a portfolio row needs of a score: the numbers, not their explanation."""

    tenths: int
    categories: Mapping[str, int]  # category → tenths
    open_counts: Mapping[str, int]
    dues: tuple[dt.date, ...]  # the due date of each open finding group that has one
    version: str = SCORING_VERSION

    @property
    def score(self) -> float:
        return self.tenths / POINT

    @property
    def grade(self) -> Grade:
        return grade_for(self.tenths)

    @property
    def category_scores(self) -> dict[str, float]:
        return {c: tenths / POINT for c, tenths in self.categories.items()}

    def overdue(self, today: dt.date) -> int:
        """Open finding groups past their due date on `today`."""
        return sum(today > due for due in self.dues)

    @classmethod
    def of(cls, score: OrganisationScore) -> ScoreSummary:
        dues = (due_date(g.severity, g.first_seen) for g in score.groups)
        return cls(
            tenths=score.tenths,
            categories={c: s.tenths for c, s in score.categories.items()},
            open_counts=dict(score.open_counts),
            dues=tuple(sorted(d for d in dues if d is not None)),
            version=score.version,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "tenths": self.tenths,
            "categories": dict(self.categories),
            "open_counts": dict(self.open_counts),
            "dues": [d.isoformat() for d in self.dues],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], version: str) -> ScoreSummary:
        return cls(
            tenths=data["tenths"],
            categories=dict(data["categories"]),
            open_counts=dict(data["open_counts"]),
            dues=tuple(dt.date.fromisoformat(d) for d in data["dues"]),
            version=version,
        )


def registry_digest(registry: Mapping[str, Check]) -> str:
    """A fingerprint of what scoring takes from the registry (ids, categories, severities)."""
    text = "\n".join(f"{c.id} {c.category} {c.severity}" for c in registry.values())
    return hashlib.sha256(text.encode()).hexdigest()


_DECISION_STATUSES = [str(s) for s in _DECISIONS]


def refresh_current_score(
    session: Session,
    organisation_id: int,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check] | None = None,
) -> ScoreSummary:
    """Score the organisation as it now stands in this transaction and keep the summary.

    The store calls this after every change to an organisation's findings, decisions or
    assets. The organisation's row is locked first (PostgreSQL), so a concurrent change
    to the same organisation is either seen here or waits and refreshes after it.
    """
    registry = load_registry() if registry is None else registry
    session.execute(
        select(Organisation.id).where(Organisation.id == organisation_id).with_for_update()
    )
    findings, assets = scoring_inputs_of(session, [organisation_id], now=now, registry=registry)[
        organisation_id
    ]
    summary = ScoreSummary.of(score_organisation(str(organisation_id), findings, assets))
    row = session.get(CurrentScore, organisation_id) or CurrentScore(
        organisation_id=organisation_id
    )
    row.computed_at, row.scoring_version = now, SCORING_VERSION
    row.registry_digest = registry_digest(registry)
    row.valid_until = session.scalar(
        select(func.min(Finding.decision_until)).where(
            Finding.organisation_id == organisation_id,
            Finding.status.in_(_DECISION_STATUSES),
            Finding.decision_until > now,
        )
    )
    row.summary = summary.to_json()
    session.add(row)
    session.flush()
    return summary


def current_summaries(
    session: Session,
    organisation_ids: Collection[int],
    *,
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> dict[int, ScoreSummary]:
    """The kept summaries that still hold at `now`, by organisation id: of this scoring
    version and registry, kept no later than `now`, and outliving no decision. The others
    are left out: the caller scores those organisations live."""
    digest = registry_digest(registry)
    rows = session.execute(
        select(
            CurrentScore.organisation_id,
            CurrentScore.computed_at,
            CurrentScore.valid_until,
            CurrentScore.summary,
        ).where(
            CurrentScore.organisation_id.in_(list(organisation_ids)),
            CurrentScore.scoring_version == SCORING_VERSION,
            CurrentScore.registry_digest == digest,
        )
    )
    return {
        org_id: ScoreSummary.from_json(summary, SCORING_VERSION)
        for org_id, computed_at, valid_until, summary in rows
        if computed_at <= now and (valid_until is None or now < valid_until)
    }


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
