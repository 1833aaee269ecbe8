"""Risk score, grade and recovery priorities: pure functions over findings and assets.

- `tables`: every number of the model (weights, grade bands, deadlines, effort, caps);
- `model`: the algorithm — groups, penalties, the exponential, caps, and the attribution of
  the points lost to the groups (an explanation that adds up exactly);
- `plan`: recovery priorities (gain = a group's share of the points lost) and the exact
  least-effort plan to reach a grade;
- `answer`: the one-sentence answer, in the `scoring` gettext domain's words;
- `document`: all of it as a typed `ScoreDocument` with `to_json()`;
- `example`: the worked example of `docs/scoring.md`.

Explained with its sources in `docs/scoring.md`. Nothing here touches the database or the
clock: callers pass `today`.
"""

from riskiturva.scoring.answer import answer, cap_reason, format_score
from riskiturva.scoring.document import ScoreDocument, score_document
from riskiturva.scoring.example import worked_example_markdown
from riskiturva.scoring.model import (
    AppliedCap,
    Contribution,
    FindingGroup,
    FindingStatus,
    OrganisationScore,
    ScopeScore,
    ScoringAsset,
    ScoringFinding,
    apportion,
    compress,
    score_organisation,
    score_without,
)
from riskiturva.scoring.plan import Action, Plan, due_date, plan_to_reach, priorities
from riskiturva.scoring.tables import (
    CAP_RULES,
    CHECK_WEIGHTS,
    CRITICALITY_HALVES,
    DEADLINE_DAYS,
    EFFORT_UNITS,
    FULL_SCORE,
    GRADE_FLOORS,
    POINT,
    SCORING_VERSION,
    SEVERITY_WEIGHTS,
    CapRule,
    Grade,
    Scope,
    check_weight,
    comparable_versions,
    grade_floor,
    grade_for,
    weights_markdown,
)

__all__ = [
    "CAP_RULES",
    "CHECK_WEIGHTS",
    "CRITICALITY_HALVES",
    "DEADLINE_DAYS",
    "EFFORT_UNITS",
    "FULL_SCORE",
    "GRADE_FLOORS",
    "POINT",
    "SCORING_VERSION",
    "SEVERITY_WEIGHTS",
    "Action",
    "AppliedCap",
    "CapRule",
    "Contribution",
    "FindingGroup",
    "FindingStatus",
    "Grade",
    "OrganisationScore",
    "Plan",
    "Scope",
    "ScopeScore",
    "ScoreDocument",
    "ScoringAsset",
    "ScoringFinding",
    "answer",
    "apportion",
    "cap_reason",
    "check_weight",
    "comparable_versions",
    "compress",
    "due_date",
    "format_score",
    "grade_floor",
    "grade_for",
    "plan_to_reach",
    "priorities",
    "score_document",
    "score_organisation",
    "score_without",
    "weights_markdown",
    "worked_example_markdown",
]
