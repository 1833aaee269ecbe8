"""Recovery priorities and the plan to reach a grade.

An action fixes one check everywhere it is open. Its gain is its group's line of the
explanation — its share of the points lost — so the gains of all actions add up to
100 − score, and the priorities tell the same story as the explanation. The plan is a
real what-if: the least effort whose re-score reaches the target grade.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass

from riskiturva.checks import Check, Effort, Severity
from riskiturva.scoring.model import OrganisationScore, compress, score_without
from riskiturva.scoring.tables import (
    CAP_RULES,
    DEADLINE_DAYS,
    DEFAULT_EFFORT,
    EFFORT_UNITS,
    FULL_SCORE,
    PENALTY_SCALE,
    POINT,
    Grade,
    grade_floor,
    grade_for,
)


@dataclass(frozen=True, slots=True)
class Action:
    """One remediation: fix one check everywhere it is open."""

    check_id: str
    category: str
    severity: Severity
    subjects: tuple[str, ...]
    assets: tuple[str, ...]
    penalty: int  # tenths, before the exponential
    gain: int  # tenths: this group's share of the points lost (its explanation line)
    cap_points: int  # tenths of the gain owed to caps the group holds down
    effort: Effort
    first_seen: dt.date
    due: dt.date | None
    overdue: bool

    @property
    def effort_units(self) -> int:
        return EFFORT_UNITS[self.effort]

    @property
    def instances(self) -> int:
        return len(self.subjects)

    def rank_key(self) -> tuple[float, float, int, str]:
        """Gain per effort, then penalty per effort, then severity, then id."""
        units = self.effort_units
        return (-self.gain / units, -self.penalty / units, -self.severity.rank, self.check_id)


def due_date(
    severity: Severity | str, first_seen: dt.date, deadline_days: int | None = None
) -> dt.date | None:
    """First seen + the check's own deadline (KEV: 14 days), else the severity's."""
    days = deadline_days if deadline_days is not None else DEADLINE_DAYS[Severity(severity)]
    return None if days is None else first_seen + dt.timedelta(days=days)


def _effort(check_id: str, registry: Mapping[str, Check]) -> Effort:
    check = registry.get(check_id)
    return check.effort if check is not None else DEFAULT_EFFORT


def priorities(
    score: OrganisationScore, *, registry: Mapping[str, Check], today: dt.date
) -> list[Action]:
    """Every open finding group as an action, best gain per effort first."""
    lines = {c.check_id: c for c in score.contributions}
    actions = []
    for group in score.groups:
        if group.penalty == 0 and not group.caps:
            continue
        line = lines.get(group.check_id)
        check = registry.get(group.check_id)
        due = due_date(group.severity, group.first_seen, check.deadline_days if check else None)
        actions.append(
            Action(
                check_id=group.check_id,
                category=group.category,
                severity=group.severity,
                subjects=group.subjects,
                assets=group.assets,
                penalty=group.penalty,
                gain=line.points_lost if line else 0,
                cap_points=line.cap_points if line else 0,
                effort=_effort(group.check_id, registry),
                first_seen=group.first_seen,
                due=due,
                overdue=due is not None and today > due,
            )
        )
    return sorted(actions, key=Action.rank_key)


@dataclass(frozen=True, slots=True)
class Plan:
    """The least total effort that reaches `target` (exact, see `plan_to_reach`)."""

    target: Grade
    actions: tuple[Action, ...]
    tenths_after: int
    grade_after: Grade

    @property
    def effort_units(self) -> int:
        return sum(a.effort_units for a in self.actions)

    @property
    def score_after(self) -> float:
        return self.tenths_after / POINT


def _largest_penalty_reaching(threshold: int) -> int:
    """The largest penalty (tenths) whose score is still at least `threshold` (> 0)."""
    penalty = max(0, int(PENALTY_SCALE * POINT * math.log(FULL_SCORE / threshold)))
    while compress(penalty + 1) >= threshold:
        penalty += 1
    while penalty > 0 and compress(penalty) < threshold:
        penalty -= 1
    return penalty


def plan_to_reach(
    score: OrganisationScore,
    target: Grade | str,
    *,
    registry: Mapping[str, Check],
    today: dt.date,
) -> Plan:
    """The set of actions with the least total effort that lifts the score to `target`.

    Exact: every cap whose ceiling is below the target's band must be lifted (its groups
    are forced into the plan); the remaining penalty must fall to the largest one whose
    score still reaches the band, a 0/1 knapsack over effort units (small integers)
    solved by dynamic programming for the most penalty removed per effort budget. Ties go
    to the most penalty removed, then to the check ids in sorted order.
    """
    target = Grade(target)
    threshold = grade_floor(target)
    actions = {a.check_id: a for a in priorities(score, registry=registry, today=today)}
    if score.tenths >= threshold:
        return Plan(target, (), score.tenths, score.grade)
    blocking = {r.id for r in CAP_RULES if r.ceiling < threshold}
    forced = {g.check_id for g in score.groups if g.caps & blocking}
    needed = sum(
        g.penalty for g in score.groups if g.check_id not in forced
    ) - _largest_penalty_reaching(threshold)
    optional = [
        actions[g.check_id]
        for g in score.groups
        if g.check_id not in forced and g.penalty > 0 and g.check_id in actions
    ]
    chosen = set(forced)
    if needed > 0:
        budget = sum(a.effort_units for a in optional)
        best = [0] * (budget + 1)
        picks = [0] * (budget + 1)
        for index, action in enumerate(optional):
            units, points = action.effort_units, action.penalty
            for spent in range(budget, units - 1, -1):
                candidate = best[spent - units] + points
                if candidate > best[spent]:
                    best[spent] = candidate
                    picks[spent] = picks[spent - units] | (1 << index)
        spent = next(e for e in range(budget + 1) if best[e] >= needed)
        chosen.update(a.check_id for i, a in enumerate(optional) if picks[spent] >> i & 1)
    tenths_after = score_without(score, frozenset(chosen))
    plan_actions = tuple(sorted((actions[c] for c in chosen), key=Action.rank_key))
    return Plan(target, plan_actions, tenths_after, grade_for(tenths_after))
