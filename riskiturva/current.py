"""Current scores: each organisation's score summary, kept as of its last change.

The store calls `refresh_current_score` in the same transaction as every change to an
organisation's findings, decisions or assets; the portfolio reads `current_summaries` and
scores live whatever no longer holds (another scoring version or registry, kept after the
moment asked about, or outlived by a decision that has run out since).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riskiturva.checks import Check, load_registry
from riskiturva.inputs import scoring_inputs_of
from riskiturva.models import CurrentScore, Finding, FindingStatus, Organisation
from riskiturva.scoring import (
    POINT,
    SCORING_VERSION,
    Grade,
    OrganisationScore,
    due_date,
    grade_for,
    score_organisation,
)


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
    def of(cls, score: OrganisationScore, registry: Mapping[str, Check]) -> ScoreSummary:
        """The summary of a score; each group is due by its check's deadline."""
        dues = (
            due_date(g.severity, g.first_seen, _deadline_days(g.check_id, registry))
            for g in score.groups
        )
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


def _deadline_days(check_id: str, registry: Mapping[str, Check]) -> int | None:
    check = registry.get(check_id)
    return check.deadline_days if check else None


def registry_digest(registry: Mapping[str, Check]) -> str:
    """A fingerprint of what scoring takes from the registry (ids, categories, severities,
    deadlines)."""
    text = "\n".join(
        f"{c.id} {c.category} {c.severity} {c.deadline_days}" for c in registry.values()
    )
    return hashlib.sha256(text.encode()).hexdigest()


_DECISION_STATUSES = [str(FindingStatus.ACCEPTED), str(FindingStatus.FALSE_POSITIVE)]


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
    summary = ScoreSummary.of(score_organisation(str(organisation_id), findings, assets), registry)
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
