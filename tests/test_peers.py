"""Peer figures: quartiles and median only, never below five organisations, per category."""

from __future__ import annotations

import itertools

import pytest

from riskiturva.peers import MIN_PEERS, MemberScore, Position, compare, distribution


def _members(scores, categories=None):
    return {
        f"org{i}": MemberScore(s, (categories or {}).get(f"org{i}", {"tls": s}))
        for i, s in enumerate(scores)
    }


def test_five_organisations_give_quartiles_and_median_in_whole_points():
    members = _members([40.0, 55.5, 70.0, 81.2, 90.0])
    comparison = compare("org1", members, partner="seutu", partner_name="Seutu")
    assert comparison is not None and comparison.count == 5
    group = comparison.score.group
    assert (group.lower_quartile, group.median, group.upper_quartile) == (56, 70, 81)
    assert comparison.score.position is Position.BOTTOM
    assert comparison.score.difference == -14


@pytest.mark.parametrize("count", range(1, MIN_PEERS))
def test_fewer_than_five_organisations_give_no_figures(count):
    members = _members([50.0 + i for i in range(count)])
    assert compare("org0", members, partner="seutu", partner_name="Seutu") is None


def _consistent(own, others):
    """Every set of the others' scores (on a 5-point grid) that publishes the same figures."""
    published = distribution(sorted((own, *others)), minimum=1)
    grid = range(0, 101, 5)
    return [
        combo
        for combo in itertools.combinations_with_replacement(grid, len(others))
        if distribution(sorted((own, *combo)), minimum=1) == published
    ]


def test_why_five_with_three_or_four_the_figures_give_the_others_away():
    assert _consistent(60, (50, 90)) == [(50, 90)]
    assert _consistent(60, (50, 70, 90)) == [(50, 70, 90)]
    assert len(_consistent(60, (40, 50, 70, 90))) > 50


def test_a_category_checked_in_too_few_organisations_is_left_out():
    categories = {f"org{i}": {"tls": 50.0 + i} for i in range(5)}
    categories["org0"]["email"] = 80.0
    categories["org1"]["email"] = 40.0
    members = _members([60.0] * 5, categories)
    comparison = compare("org0", members, partner="seutu", partner_name="Seutu")
    assert set(comparison.categories) == {"tls"}


def test_an_organisation_not_taking_part_sees_nothing():
    members = _members([40.0, 55.0, 70.0, 80.0, 90.0])
    assert compare("elsewhere", members, partner="seutu", partner_name="Seutu") is None


@pytest.mark.parametrize(
    ("value", "position"),
    [
        (95, Position.TOP),
        (80, Position.UPPER),
        (70, Position.UPPER),
        (60, Position.LOWER),
        (30, Position.BOTTOM),
    ],
)
def test_positions_against_the_quartiles(value, position):
    group = distribution([40.0, 55.0, 70.0, 80.0, 90.0])
    assert group.position(value) is position
