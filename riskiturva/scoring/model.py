"""The algorithm: open findings and assets in, scores with an explanation that adds up out.

* Each open finding group — one check id within a scope — has a penalty of
  `severity weight × Σ criticality multiplier of its i-th worst instance × ½^i`,
  so a problem on many assets costs at most twice its worst instance (diminishing returns),
  and a critical asset weighs three times a low one.
* The score is `100 × exp(−penalty / PENALTY_SCALE)`, then caps limit it (an open critical
  finding: at most D; …). Nothing is averaged over assets, so clean hosts never hide a hole.
* The points lost are attributed to the groups: the points the penalties cost, in
  proportion to the penalties; the points a cap costs, band by band, in equal parts to
  the groups that must all be fixed to lift the score through that band (the Shapley
  value of the caps). In integer tenths (largest remainder), so `100 − Σ = score` exactly
  and each group's share is the gain its fix is credited with in the priorities.

Nothing here touches the database or the clock.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, cached_property
from typing import NamedTuple

from riskiturva.checks import Category, Severity
from riskiturva.scoring.tables import (
    CAP_RULES,
    CAP_RULES_BY_ID,
    COUNTED_INSTANCES,
    CRITICALITY_HALVES,
    DEFAULT_CRITICALITY,
    FULL_SCORE,
    PENALTY_SCALE,
    POINT,
    SCORING_VERSION,
    CapRule,
    Grade,
    Scope,
    check_weight,
    grade_for,
)

# --- inputs ----------------------------------------------------------------------------


class FindingStatus(StrEnum):
    """The effective status: a person's decision that has expired is already `open`."""

    OPEN = "open"
    ACCEPTED = "accepted"
    FALSE_POSITIVE = "false_positive"


@dataclass(frozen=True, slots=True)
class ScoringFinding:
    check_id: str
    category: str
    severity: str
    subject: str
    asset: str
    first_seen: dt.date
    status: str = FindingStatus.OPEN
    decision_reason: str | None = None
    decision_until: dt.date | None = None


@dataclass(frozen=True, slots=True)
class ScoringAsset:
    value: str
    criticality: str = DEFAULT_CRITICALITY
    tags: frozenset[str] = frozenset()


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contribution:
    """One line of an explanation: one finding group's share of the points lost.

    `points_lost` (tenths) is its share of what the penalties cost plus `cap_points`,
    its share of what the caps in `caps` cost; 100 − Σ points_lost is the score.
    """

    check_id: str
    category: str
    severity: Severity
    instances: int
    penalty: int  # tenths, before the exponential
    points_lost: int  # tenths
    cap_points: int = 0  # tenths of points_lost owed to caps
    caps: tuple[str, ...] = ()  # the caps whose cost this group shares

    @property
    def points(self) -> float:
        return self.points_lost / POINT


@dataclass(frozen=True, slots=True)
class AppliedCap:
    rule: CapRule
    binding: bool  # this cap set the score

    @property
    def id(self) -> str:
        return self.rule.id


class _Line(NamedTuple):
    """A finding group within one scope, before settling."""

    penalty: int
    check_id: str
    category: str
    severity: Severity
    instances: int
    caps: frozenset[CapRule]  # the caps of this scope the group triggers


@dataclass(frozen=True)
class ScopeScore:
    """The score of one scope; its explanation is worked out when first read (a portfolio
    of hundreds of organisations reads their scores, not their explanations)."""

    scope: Scope
    key: str
    tenths: int
    grade: Grade
    caps: tuple[AppliedCap, ...]
    uncapped: int = FULL_SCORE  # tenths before the caps
    lines: tuple[_Line, ...] = field(default=(), repr=False)  # worst penalty first
    version: str = SCORING_VERSION

    @property
    def score(self) -> float:
        return self.tenths / POINT

    @cached_property
    def contributions(self) -> tuple[Contribution, ...]:
        """Each group's share of the points lost: 100 − Σ points_lost = the score."""
        bands = tuple(c.rule for c in self.caps if c.rule.ceiling < self.uncapped)
        return _attribute(self.lines, self.uncapped, bands)

    def contribution(self, check_id: str) -> Contribution | None:
        return next((c for c in self.contributions if c.check_id == check_id), None)


@dataclass(frozen=True, slots=True)
class FindingGroup:
    """The open findings of one check in one organisation: one remediation action."""

    check_id: str
    category: str
    severity: Severity
    penalty: int  # tenths
    subjects: tuple[str, ...]
    asset_counts: Mapping[str, int]  # asset value → instances on it
    first_seen: dt.date
    caps: frozenset[str]  # organisation-scope caps this group alone triggers

    @property
    def assets(self) -> tuple[str, ...]:
        return tuple(sorted(self.asset_counts))


class AssetScores(Mapping[str, ScopeScore]):
    """Per-asset scores, each settled from the groups when first read: an estate has many
    assets, and a page or report reads few of them."""

    def __init__(
        self,
        groups: Sequence[FindingGroup],
        assets: Mapping[str, tuple[int, ScoringAsset]],
        values: Sequence[str],
    ):
        self._groups = groups
        self._assets = assets
        self._values = values
        self._index: dict[str, list[tuple[FindingGroup, int]]] | None = None
        self._settled: dict[str, ScopeScore] = {}

    def _groups_of(self, value: str) -> list[tuple[FindingGroup, int]]:
        if self._index is None:  # one pass over every (group, asset) pair, on first read
            self._index = {}
            for group in self._groups:
                for asset_value, count in group.asset_counts.items():
                    self._index.setdefault(asset_value, []).append((group, count))
        return self._index.get(value, [])

    def __getitem__(self, value: str) -> ScopeScore:
        settled = self._settled.get(value)
        if settled is None:
            if value not in self._assets and not self._groups_of(value):
                raise KeyError(value)
            halves, asset = self._assets.get(value, _DEFAULT_ASSET)
            lines = []
            for group, count in self._groups_of(value):
                caps = frozenset(
                    rule
                    for rule in _candidate_rules(group.check_id, group.severity)
                    if Scope.ASSET in rule.scopes and _cap_matches(rule, group.severity, asset)
                )
                penalty = _instance_points(
                    check_weight(group.severity, group.check_id), halves, count
                )
                lines.append(
                    _Line(penalty, group.check_id, group.category, group.severity, count, caps)
                )
            settled = self._settled[value] = _settle(Scope.ASSET, value, lines)
        return settled

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"AssetScores({len(self)} assets)"


@dataclass(frozen=True, slots=True)
class OrganisationScore:
    organisation: str
    overall: ScopeScore
    categories: Mapping[str, ScopeScore]
    assets: Mapping[str, ScopeScore]
    groups: tuple[FindingGroup, ...]
    excluded: tuple[ScoringFinding, ...]
    open_counts: Mapping[str, int]
    version: str = SCORING_VERSION

    @property
    def score(self) -> float:
        return self.overall.score

    @property
    def tenths(self) -> int:
        return self.overall.tenths

    @property
    def grade(self) -> Grade:
        return self.overall.grade

    @property
    def contributions(self) -> tuple[Contribution, ...]:
        return self.overall.contributions

    @property
    def caps(self) -> tuple[AppliedCap, ...]:
        return self.overall.caps


# --- scoring ---------------------------------------------------------------------------

_SEVERITY_BY_RANK = {s.rank: s for s in Severity}
_SEVERITIES = tuple((str(s), s.rank) for s in Severity)
_CATEGORIES = frozenset(c.value for c in Category)
_NO_CAPS: frozenset[CapRule] = frozenset()
_RANK_OF_SEVERITY: Mapping[str, int] = {str(s): s.rank for s in Severity}
_CRITICALITY_ORDER = {"low": 0, "medium": 1, "high": 2}


def _instances_sum(halves_by_count: Sequence[tuple[int, int]]) -> int:
    """Σ multiplier_i × ½^i over instances sorted worst first, scaled by 2^(COUNTED+1).

    `halves_by_count` lists (multiplier in halves, count), largest multiplier first.
    """
    total, position = 0, 0
    for halves, count in halves_by_count:
        top = COUNTED_INSTANCES + 1 - position
        if top <= 0:
            break
        bottom = max(top - count, 0)
        total += halves * ((1 << top) - (1 << bottom))
        position += count
    return total


def _group_points(weight: int, halves_by_count: Sequence[tuple[int, int]]) -> int:
    """Points (tenths) lost by one group, rounded half up: exact integer arithmetic."""
    scaled = weight * _instances_sum(halves_by_count)  # = points × 2^(COUNTED+1)
    shift = COUNTED_INSTANCES + 1
    return (scaled + (1 << (shift - 1))) >> shift


@cache
def _instance_points(weight: int, halves: int, count: int) -> int:
    """Points (tenths) of `count` instances on assets of one criticality (memoised)."""
    return _group_points(weight, ((halves, count),))


def _cap_matches(rule: CapRule, severity: Severity, asset: ScoringAsset) -> bool:
    if rule.severity is not None and severity is not rule.severity:
        return False
    if rule.min_criticality is not None and _CRITICALITY_ORDER.get(
        asset.criticality, 1
    ) < _CRITICALITY_ORDER.get(rule.min_criticality, 1):
        return False
    return rule.tag is None or rule.tag in asset.tags


def compress(penalty: int) -> int:
    """Score (tenths) for a penalty (tenths): 1000 × exp(−penalty / scale), rounded half up."""
    return int(FULL_SCORE * math.exp(-penalty / (PENALTY_SCALE * POINT)) + 0.5)


def apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` in proportion to `weights` so the parts add up exactly (largest
    remainder; ties to the earlier weight). A larger weight never gets a smaller part.
    All-zero weights share equally."""
    if not weights:
        return []
    whole = sum(weights)
    if whole == 0:
        weights, whole = [1] * len(weights), len(weights)
    parts = [total * w // whole for w in weights]
    short = total - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: -(total * weights[i] % whole))
    for i in by_remainder[:short]:
        parts[i] += 1
    return parts


def _settle(scope: Scope, key: str, lines: Iterable[_Line]) -> ScopeScore:
    """The score of finding groups in one scope: the penalties, then the caps."""
    ordered = tuple(
        sorted(
            (line for line in lines if line.penalty > 0 or line.caps),
            key=lambda line: (-line.penalty, line.check_id),
        )
    )
    uncapped = compress(sum(line.penalty for line in ordered))
    triggered = sorted(
        {rule for line in ordered if line.caps for rule in line.caps},
        key=lambda r: (r.ceiling, r.id),
    )
    binding = triggered[0] if triggered and triggered[0].ceiling < uncapped else None
    tenths = binding.ceiling if binding else uncapped
    applied = tuple(AppliedCap(rule, rule is binding) for rule in triggered)
    return ScopeScore(scope, key, tenths, grade_for(tenths), applied, uncapped, ordered)


def _attribute(
    lines: tuple[_Line, ...], uncapped: int, bands: tuple[CapRule, ...]
) -> tuple[Contribution, ...]:
    """Share the points lost among the groups: the penalty part in proportion to the
    penalties; each band between two cap ceilings (`bands`: the caps below the uncapped
    score, lowest first) equally among the groups that must all be fixed to pass it."""
    points = apportion(FULL_SCORE - uncapped, [line.penalty for line in lines])
    cap_points = [0] * len(lines)
    shared: list[set[str]] = [set() for _ in lines]
    blocking: list[int] = []
    for index, rule in enumerate(bands):
        top = bands[index + 1].ceiling if index + 1 < len(bands) else uncapped
        blocking += [i for i, line in enumerate(lines) if rule in line.caps and i not in blocking]
        blocking.sort()  # worst penalty first: an odd tenth goes to the worse group
        parts = apportion(top - rule.ceiling, [1] * len(blocking))
        for i, part in zip(blocking, parts, strict=True):
            cap_points[i] += part
            if part:
                shared[i].add(rule.id)
    return tuple(
        Contribution(
            line.check_id,
            line.category,
            line.severity,
            line.instances,
            line.penalty,
            points[i] + cap_points[i],
            cap_points[i],
            tuple(sorted(shared[i])),
        )
        for i, line in enumerate(lines)
        if points[i] + cap_points[i] > 0 or line.penalty > 0
    )


@cache
def _perfect(scope: Scope, key: str) -> ScopeScore:
    """The score of a scope with nothing open (shared: scores are immutable)."""
    return ScopeScore(scope, key, FULL_SCORE, grade_for(FULL_SCORE), ())


@cache
def _candidate_rules(check_id: str, severity: Severity) -> tuple[CapRule, ...]:
    """The cap rules a group of this check and severity may trigger (asset aside)."""
    return tuple(
        rule
        for rule in CAP_RULES
        if (rule.check_ids is None or check_id in rule.check_ids)
        and (rule.severity is None or rule.severity is severity)
    )


_DEFAULT_ASSET = (CRITICALITY_HALVES[DEFAULT_CRITICALITY], ScoringAsset(""))


def score_organisation(
    organisation: str,
    findings: Iterable[ScoringFinding],
    assets: Iterable[ScoringAsset] = (),
) -> OrganisationScore:
    """Score one organisation's findings: overall, per category and per asset.

    A check's severity is the highest among its findings (normally all the registry's).
    An asset the findings name but `assets` does not is scored as medium, untagged.
    """
    by_check: dict[str, list[ScoringFinding]] = {}
    excluded: list[ScoringFinding] = []
    open_status = FindingStatus.OPEN
    for finding in findings:
        if finding.status != open_status:
            excluded.append(finding)
            continue
        same = by_check.get(finding.check_id)
        if same is None:
            by_check[finding.check_id] = [finding]
        else:
            same.append(finding)
    asset_info = {
        a.value: (CRITICALITY_HALVES.get(a.criticality, _DEFAULT_ASSET[0]), a) for a in assets
    }
    rank_of = _RANK_OF_SEVERITY
    groups: list[FindingGroup] = []
    overall_lines: list[_Line] = []
    category_lines: dict[str, list[_Line]] = {}
    count_by_rank = [0] * len(_SEVERITIES)
    for check_id in sorted(by_check):
        same = by_check[check_id]
        first = same[0]
        category = first.category
        if len(same) == 1:  # the common case: one instance
            severity = _SEVERITY_BY_RANK[rank_of[first.severity]]
            asset_counts = {first.asset: 1}
            halves = asset_info.get(first.asset, _DEFAULT_ASSET)[0]
            penalty = _instance_points(check_weight(severity, check_id), halves, 1)
            subjects: tuple[str, ...] = (first.subject,)
            first_seen = first.first_seen
        else:
            severity = _SEVERITY_BY_RANK[max(rank_of[f.severity] for f in same)]
            asset_counts = {}
            for finding in same:
                asset_counts[finding.asset] = asset_counts.get(finding.asset, 0) + 1
            by_halves: dict[int, int] = {}
            for value, count in asset_counts.items():
                halves = asset_info.get(value, _DEFAULT_ASSET)[0]
                by_halves[halves] = by_halves.get(halves, 0) + count
            penalty = _group_points(
                check_weight(severity, check_id), sorted(by_halves.items(), reverse=True)
            )
            subjects = tuple(sorted(f.subject for f in same))
            first_seen = min(f.first_seen for f in same)
        count_by_rank[severity.rank] += len(same)
        organisation_caps: frozenset[CapRule] = _NO_CAPS
        category_caps: frozenset[CapRule] = _NO_CAPS
        candidates = _candidate_rules(check_id, severity)
        if candidates:
            matched = [
                rule
                for rule in candidates
                if any(
                    _cap_matches(rule, severity, asset_info.get(value, _DEFAULT_ASSET)[1])
                    for value in asset_counts
                )
            ]
            organisation_caps = frozenset(r for r in matched if Scope.ORGANISATION in r.scopes)
            category_caps = frozenset(r for r in matched if Scope.CATEGORY in r.scopes)
        groups.append(
            FindingGroup(
                check_id=check_id,
                category=category,
                severity=severity,
                penalty=penalty,
                subjects=subjects,
                asset_counts=asset_counts,
                first_seen=first_seen,
                caps=frozenset(r.id for r in organisation_caps),
            )
        )
        overall_lines.append(
            _Line(penalty, check_id, category, severity, len(same), organisation_caps)
        )
        category_lines.setdefault(category, []).append(
            _Line(penalty, check_id, category, severity, len(same), category_caps)
        )
    categories = {
        category: _settle(Scope.CATEGORY, category, category_lines[category])
        if category in category_lines
        else _perfect(Scope.CATEGORY, category)
        for category in sorted(_CATEGORIES.union(category_lines))
    }
    values = sorted(set(asset_info).union(*(g.asset_counts for g in groups)))
    return OrganisationScore(
        organisation=organisation,
        overall=_settle(Scope.ORGANISATION, organisation, overall_lines),
        categories=categories,
        assets=AssetScores(groups, asset_info, values),
        groups=tuple(groups),
        excluded=tuple(sorted(excluded, key=lambda f: (f.check_id, f.subject, f.asset))),
        open_counts={name: count_by_rank[rank] for name, rank in _SEVERITIES},
    )


def score_without(score: OrganisationScore, removed: frozenset[str]) -> int:
    """The organisation's score (tenths) if the groups with these check ids were fixed."""
    uncapped = compress(sum(g.penalty for g in score.groups if g.check_id not in removed))
    still_capped = {cap for g in score.groups if g.check_id not in removed for cap in g.caps}
    return min([uncapped, *(CAP_RULES_BY_ID[c].ceiling for c in still_capped)])
