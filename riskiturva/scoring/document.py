"""Everything about one organisation's score, typed, in the reader's language.

`score_document` turns a score into a `ScoreDocument`: grade, the answer, the categories,
the explanation line by line (with what the caps cost), the priorities, the plan to reach a
grade and the findings excluded by a person's decision. `to_json()` is what
`riskiturva score --format json` prints; the dashboard's scoring page shows the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from riskiturva._json import plain
from riskiturva.checks import Check, Effort, Severity
from riskiturva.scoring.answer import answer, cap_reason
from riskiturva.scoring.model import OrganisationScore
from riskiturva.scoring.plan import plan_to_reach, priorities
from riskiturva.scoring.tables import POINT, Grade


@dataclass(frozen=True, slots=True)
class CategoryLine:
    score: float
    grade: Grade


@dataclass(frozen=True, slots=True)
class CapLine:
    id: str
    grade: Grade
    binding: bool  # this cap set the score
    reason: str


@dataclass(frozen=True, slots=True)
class ExplanationLine:
    """What one finding group costs: its share of the points lost, caps included."""

    check_id: str
    title: str
    category: str
    severity: Severity
    instances: int
    penalty: float  # points, before the exponential
    points_lost: float
    cap_points: float  # the part of points_lost owed to the caps in `caps`
    caps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PriorityLine:
    check_id: str
    title: str
    category: str
    severity: Severity
    instances: int
    subjects: tuple[str, ...]
    gain: float  # points: the same as this check's explanation line
    cap_points: float
    effort: Effort
    first_seen: dt.date
    due: dt.date | None
    overdue: bool


@dataclass(frozen=True, slots=True)
class PlanLine:
    target: Grade
    check_ids: tuple[str, ...]
    effort_units: int
    score_after: float
    grade_after: Grade


@dataclass(frozen=True, slots=True)
class ExcludedLine:
    check_id: str
    subject: str
    status: str
    reason: str | None
    until: dt.date | None


@dataclass(frozen=True, slots=True)
class ScoreDocument:
    organisation: str
    score: float
    grade: Grade
    scoring_version: str
    answer: str
    checked: bool  # something was scanned successfully: "no findings" then means fine
    categories: Mapping[str, CategoryLine]
    open_counts: Mapping[str, int]
    caps: tuple[CapLine, ...]
    explanation: tuple[ExplanationLine, ...]
    priorities: tuple[PriorityLine, ...]
    plan: PlanLine
    excluded: tuple[ExcludedLine, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (days in ISO 8601)."""
        document: dict[str, Any] = plain(self)
        return document


def score_document(
    score: OrganisationScore,
    *,
    registry: Mapping[str, Check],
    today: dt.date,
    language: str = "fi",
    target: Grade | str = Grade.B,
    top: int | None = None,
    checked: bool = True,
) -> ScoreDocument:
    """The typed document of one score: every priority (or the first `top`) and the
    plan to reach `target`."""

    def title(check_id: str) -> str:
        check = registry.get(check_id)
        return check.title_in(language) if check else check_id

    actions = priorities(score, registry=registry, today=today)
    plan = plan_to_reach(score, target, registry=registry, today=today)
    return ScoreDocument(
        organisation=score.organisation,
        score=score.score,
        grade=score.grade,
        scoring_version=score.version,
        answer=answer(score, actions, registry=registry, language=language, checked=checked),
        checked=checked,
        categories={c: CategoryLine(s.score, s.grade) for c, s in score.categories.items()},
        open_counts=dict(score.open_counts),
        caps=tuple(
            CapLine(c.id, c.rule.grade, c.binding, cap_reason(c.rule, language)) for c in score.caps
        ),
        explanation=tuple(
            ExplanationLine(
                check_id=c.check_id,
                title=title(c.check_id),
                category=c.category,
                severity=c.severity,
                instances=c.instances,
                penalty=c.penalty / POINT,
                points_lost=c.points,
                cap_points=c.cap_points / POINT,
                caps=c.caps,
            )
            for c in score.contributions
        ),
        priorities=tuple(
            PriorityLine(
                check_id=a.check_id,
                title=title(a.check_id),
                category=a.category,
                severity=a.severity,
                instances=a.instances,
                subjects=a.subjects,
                gain=a.gain / POINT,
                cap_points=a.cap_points / POINT,
                effort=a.effort,
                first_seen=a.first_seen,
                due=a.due,
                overdue=a.overdue,
            )
            for a in actions[:top]
        ),
        plan=PlanLine(
            target=plan.target,
            check_ids=tuple(a.check_id for a in plan.actions),
            effort_units=plan.effort_units,
            score_after=plan.score_after,
            grade_after=plan.grade_after,
        ),
        excluded=tuple(
            ExcludedLine(f.check_id, f.subject, str(f.status), f.decision_reason, f.decision_until)
            for f in score.excluded
        ),
    )
