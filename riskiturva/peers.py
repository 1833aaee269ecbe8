"""Peer figures: an organisation against its partner's other organisations, anonymised.

Only the median and the quartiles of the partner's participating organisations are shown —
never another organisation's name, score, minimum or maximum — and only when at least
`MIN_PEERS` organisations take part (the reader's own included), per figure: a category
checked in fewer organisations is left out. Figures are whole points.

Why five: with n values and three published figures (lower quartile, median, upper
quartile), a reader who knows their own value faces n − 1 unknowns. With four or fewer
organisations the three figures pin the others down (or nearly: with three, the quartiles
are the two other scores), so the comparison would name them in all but words. From five,
the figures describe the group without determining any member, and the extremes, which
would single out the weakest municipality, are never shown. Rounding to whole points and
leaving out organisations that opt out (`peer_comparison = false`, which also hides the
figures from them) keep month-to-month differences from telling one member's change.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

MIN_PEERS = 5


class Position(StrEnum):
    """Where a value lies against the group's quartiles."""

    TOP = "top"  # above the upper quartile
    UPPER = "upper"  # between the median and the upper quartile
    LOWER = "lower"  # between the lower quartile and the median
    BOTTOM = "bottom"  # below the lower quartile


@dataclass(frozen=True, slots=True)
class Distribution:
    count: int
    lower_quartile: int
    median: int
    upper_quartile: int

    def position(self, value: float) -> Position:
        if value > self.upper_quartile:
            return Position.TOP
        if value >= self.median:
            return Position.UPPER
        if value >= self.lower_quartile:
            return Position.LOWER
        return Position.BOTTOM


@dataclass(frozen=True, slots=True)
class PeerFigure:
    """One figure (the score, or one category's score) of the reader against the group."""

    own: float
    group: Distribution

    @property
    def position(self) -> Position:
        return self.group.position(self.own)

    @property
    def difference(self) -> int:
        """Whole points above (+) or below (−) the group's median."""
        return round(self.own - self.group.median)


@dataclass(frozen=True, slots=True)
class PeerComparison:
    partner: str
    partner_name: str
    count: int  # organisations taking part, the reader's own included
    score: PeerFigure
    categories: Mapping[str, PeerFigure]  # only categories with at least MIN_PEERS values


def distribution(values: list[float], minimum: int = MIN_PEERS) -> Distribution | None:
    """Quartiles and median of `values`, or None below `minimum` values."""
    if len(values) < minimum:
        return None
    lower, median, upper = statistics.quantiles(values, n=4, method="inclusive")
    return Distribution(len(values), round(lower), round(median), round(upper))


@dataclass(frozen=True, slots=True)
class MemberScore:
    score: float
    categories: Mapping[str, float]  # categories it has findings or checks in


def compare(
    own: str,
    members: Mapping[str, MemberScore],
    *,
    partner: str,
    partner_name: str,
    minimum: int = MIN_PEERS,
) -> PeerComparison | None:
    """`own` against `members` (the participating organisations, `own` among them).

    None when fewer than `minimum` take part, or `own` does not.
    """
    group = distribution([m.score for m in members.values()], minimum)
    if own not in members or group is None:
        return None
    categories = {}
    for category, own_value in members[own].categories.items():
        values = [m.categories[category] for m in members.values() if category in m.categories]
        figure = distribution(values, minimum)
        if figure is not None:
            categories[category] = PeerFigure(own_value, figure)
    return PeerComparison(
        partner=partner,
        partner_name=partner_name,
        count=len(members),
        score=PeerFigure(members[own].score, group),
        categories=categories,
    )
