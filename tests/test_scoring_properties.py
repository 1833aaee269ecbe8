"""Properties the scoring model promises, tried hard by hypothesis.

Fixing a finding never lowers a score; adding one never raises it; raising an asset's
criticality never raises it; every explanation adds up to its score; the result does not
depend on the order of the input; the gains of the priorities add up to the distance to 100,
follow severity × criticality for single findings and never credit a critical fix less than
a low one; the plan to reach a grade is the least effort there is.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from riskiturva.checks import Severity, load_registry
from riskiturva.scoring import (
    CRITICALITY_HALVES,
    EFFORT_UNITS,
    SEVERITY_WEIGHTS,
    FindingStatus,
    OrganisationScore,
    ScoringAsset,
    ScoringFinding,
    grade_floor,
    plan_to_reach,
    priorities,
    score_organisation,
    score_without,
)

TODAY = dt.date(2026, 11, 2)
CRITICALITIES = list(CRITICALITY_HALVES)[::-1]  # low, medium, high

# Checks that exercise every cap, with their severities, plus every registered check.
CHECKS: dict[str, str] = {
    "services.exposed.rdp": "critical",
    "tls.certificate.expired": "high",
    "tls.certificate.self_signed": "high",
    "tls.protocol.tls1_0": "medium",
    "tls.protocol.sslv2": "high",
    "email.spf.pass_all": "high",
    "web.hsts.missing": "low",
    "web.server.version_disclosure": "info",
    **{c.id: str(c.severity) for c in load_registry().values()},
}
CHECK_IDS = sorted(CHECKS)
ASSET_VALUES = [f"a{i}.kunta.test" for i in range(6)]

assets_strategy = st.lists(
    st.tuples(st.sampled_from(CRITICALITIES), st.booleans()),
    min_size=len(ASSET_VALUES),
    max_size=len(ASSET_VALUES),
).map(
    lambda specs: [
        ScoringAsset(value, crit, frozenset({"e-service"}) if e_service else frozenset())
        for value, (crit, e_service) in zip(ASSET_VALUES, specs, strict=True)
    ]
)


@st.composite
def findings_strategy(draw: st.DrawFn, max_size: int = 25) -> list[ScoringFinding]:
    keys = draw(
        st.lists(
            st.tuples(
                st.sampled_from(CHECK_IDS),
                # an asset the configuration does not know is scored as medium
                st.sampled_from([*ASSET_VALUES, "unknown.kunta.test"]),
                st.integers(0, 2),  # port index: several subjects on one asset
            ),
            max_size=max_size,
            unique=True,
        )
    )
    findings = []
    for check_id, asset, port in keys:
        findings.append(
            ScoringFinding(
                check_id=check_id,
                category=check_id.split(".", 1)[0],
                severity=CHECKS[check_id],
                subject=f"{asset}:{443 + port}",
                asset=asset,
                first_seen=TODAY - dt.timedelta(days=draw(st.integers(0, 400))),
                status=draw(
                    st.sampled_from(
                        [FindingStatus.OPEN] * 4
                        + [FindingStatus.ACCEPTED, FindingStatus.FALSE_POSITIVE]
                    )
                ),
            )
        )
    return findings


def every_scope(score: OrganisationScore) -> dict[str, int]:
    """Every score of a result by name: overall, categories, assets."""
    return {
        "overall": score.tenths,
        **{f"category {k}": s.tenths for k, s in score.categories.items()},
        **{f"asset {k}": s.tenths for k, s in score.assets.items()},
    }


def assert_never_above(lower: OrganisationScore, higher: OrganisationScore) -> None:
    low, high = every_scope(lower), every_scope(higher)
    for name, tenths in low.items():
        assert tenths <= high.get(name, 1000), name


@settings(max_examples=300, deadline=None)
@given(findings_strategy(), assets_strategy, st.data())
def test_fixing_any_finding_never_lowers_a_score(findings, assets, data):
    if not findings:
        return
    index = data.draw(st.integers(0, len(findings) - 1))
    before = score_organisation("kunta", findings, assets)

    fixed = score_organisation("kunta", findings[:index] + findings[index + 1 :], assets)

    assert_never_above(before, fixed)


@settings(max_examples=300, deadline=None)
@given(findings_strategy(), assets_strategy, findings_strategy(max_size=1))
def test_adding_a_finding_never_raises_a_score(findings, assets, extra):
    before = score_organisation("kunta", findings, assets)

    after = score_organisation("kunta", findings + extra, assets)

    assert_never_above(after, before)


@settings(max_examples=300, deadline=None)
@given(findings_strategy(), assets_strategy, st.sampled_from(ASSET_VALUES), st.data())
def test_raising_an_assets_criticality_never_raises_a_score(findings, assets, value, data):
    index = ASSET_VALUES.index(value)
    current = CRITICALITIES.index(assets[index].criticality)
    raised = data.draw(st.sampled_from(CRITICALITIES[current:]))
    higher = list(assets)
    higher[index] = ScoringAsset(value, raised, assets[index].tags)

    before = score_organisation("kunta", findings, assets)
    after = score_organisation("kunta", findings, higher)

    assert_never_above(after, before)


@settings(max_examples=300, deadline=None)
@given(findings_strategy(max_size=40), assets_strategy)
def test_every_explanation_adds_up_to_its_score(findings, assets):
    result = score_organisation("kunta", findings, assets)

    for scope in (result.overall, *result.categories.values(), *result.assets.values()):
        assert 1000 - sum(c.points_lost for c in scope.contributions) == scope.tenths
        assert 0 <= scope.tenths <= 1000
        assert sum(c.binding for c in scope.caps) <= 1


@settings(max_examples=200, deadline=None)
@given(findings_strategy(), assets_strategy, st.randoms(use_true_random=False))
def test_scores_are_deterministic_and_independent_of_input_order(findings, assets, rnd):
    shuffled_findings = list(findings)
    shuffled_assets = list(assets)
    rnd.shuffle(shuffled_findings)
    rnd.shuffle(shuffled_assets)

    first = score_organisation("kunta", findings, assets)
    again = score_organisation("kunta", shuffled_findings, shuffled_assets)

    assert first == again
    assert priorities(first, registry=load_registry(), today=TODAY) == priorities(
        again, registry=load_registry(), today=TODAY
    )


@settings(max_examples=300, deadline=None)
@given(findings_strategy(max_size=30), assets_strategy)
def test_the_gains_add_up_to_the_distance_to_100_and_are_the_explanation(findings, assets):
    result = score_organisation("kunta", findings, assets)

    actions = priorities(result, registry=load_registry(), today=TODAY)

    assert sum(a.gain for a in actions) == 1000 - result.tenths
    assert {a.check_id: a.gain for a in actions if a.gain} == {
        c.check_id: c.points_lost for c in result.contributions if c.points_lost
    }
    assert all(0 <= a.cap_points <= a.gain for a in actions)
    # fixing everything the priorities list is worth exactly what they add up to
    assert score_without(result, frozenset(a.check_id for a in actions)) == 1000


def _weight(finding: ScoringFinding, assets: list[ScoringAsset]) -> int:
    criticality = next((a.criticality for a in assets if a.value == finding.asset), "medium")
    return SEVERITY_WEIGHTS[Severity(finding.severity)] * CRITICALITY_HALVES[criticality]


@settings(max_examples=300, deadline=None)
@given(findings_strategy(max_size=20), assets_strategy)
def test_for_single_findings_gains_follow_severity_times_criticality(findings, assets):
    # one finding per check: every group is a single finding
    singles = list({f.check_id: f for f in findings if f.status == FindingStatus.OPEN}.values())
    result = score_organisation("kunta", singles, assets)
    actions = priorities(result, registry=load_registry(), today=TODAY)
    gains = {a.check_id: a.gain for a in actions}  # info findings are no action: gain 0
    capping = {g.check_id for g in result.groups if g.caps}

    for first, second in itertools.permutations(singles, 2):
        if _weight(first, assets) > _weight(second, assets) and second.check_id not in capping:
            assert gains.get(first.check_id, 0) >= gains.get(second.check_id, 0), (first, second)


@settings(max_examples=300, deadline=None)
@given(findings_strategy(max_size=30), assets_strategy)
def test_a_critical_fix_is_never_credited_less_than_a_low_one(findings, assets):
    result = score_organisation("kunta", findings, assets)

    actions = priorities(result, registry=load_registry(), today=TODAY)

    critical = [a.gain for a in actions if a.severity is Severity.CRITICAL]
    low = [a.gain for a in actions if a.severity is Severity.LOW]
    if critical and low:
        assert min(critical) >= max(low)


@settings(max_examples=150, deadline=None)
@given(findings_strategy(max_size=8), assets_strategy, st.sampled_from("ABCD"))
def test_the_plan_reaches_the_grade_with_the_least_effort_there_is(findings, assets, target):
    registry = load_registry()
    result = score_organisation("kunta", findings, assets)
    actions = priorities(result, registry=registry, today=TODAY)

    plan = plan_to_reach(result, target, registry=registry, today=TODAY)

    # it works: fixing exactly these reaches the target
    fixed = {a.check_id for a in plan.actions}
    rest = [f for f in findings if f.check_id not in fixed]
    assert score_organisation("kunta", rest, assets).tenths == plan.tenths_after
    assert plan.tenths_after >= grade_floor(target)
    # and no cheaper set of actions does (brute force over all subsets)
    cheapest = min(
        (
            sum(EFFORT_UNITS[a.effort] for a in subset)
            for size in range(len(actions) + 1)
            for subset in itertools.combinations(actions, size)
            if score_organisation(
                "kunta",
                [f for f in findings if f.check_id not in {a.check_id for a in subset}],
                assets,
            ).tenths
            >= grade_floor(target)
        ),
    )
    assert plan.effort_units == cheapest


def test_many_instances_of_one_problem_stay_monotone_far_beyond_the_counted_ones():
    rnd = random.Random(7)
    assets = [ScoringAsset(f"h{i}", rnd.choice(CRITICALITIES)) for i in range(80)]
    findings = [
        ScoringFinding("web.hsts.missing", "web", "low", a.value, a.value, TODAY) for a in assets
    ]
    previous = 1001
    for count in range(len(findings) + 1):
        tenths = score_organisation("kunta", findings[:count], assets).tenths
        assert tenths <= previous
        previous = tenths
