"""The scoring model: examples that pin the anchors, and what the weights table promises."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from riskiturva.checks import Category, Severity, load_registry
from riskiturva.scoring import (
    CAP_RULES,
    SCORING_VERSION,
    FindingStatus,
    Grade,
    ScoringAsset,
    ScoringFinding,
    answer,
    check_weight,
    compress,
    due_date,
    grade_for,
    plan_to_reach,
    priorities,
    score_organisation,
    score_without,
    weights_markdown,
    worked_example_markdown,
)

DAY = dt.date(2026, 10, 1)
TODAY = dt.date(2026, 11, 2)
DOCS = Path(__file__).parents[1] / "docs" / "scoring.md"

WWW = ScoringAsset("www.kunta.test", "high", frozenset({"website"}))
ASIOINTI = ScoringAsset("asiointi.kunta.test", "high", frozenset({"e-service"}))
TESTI = ScoringAsset("testi.kunta.test", "low")
ASSETS = (WWW, ASIOINTI, TESTI)


def finding(
    check_id: str,
    severity: str,
    asset: ScoringAsset | str,
    *,
    subject: str | None = None,
    first_seen: dt.date = DAY,
    status: str = FindingStatus.OPEN,
) -> ScoringFinding:
    value = asset if isinstance(asset, str) else asset.value
    return ScoringFinding(
        check_id=check_id,
        category=check_id.split(".", 1)[0],
        severity=severity,
        subject=subject or value,
        asset=value,
        first_seen=first_seen,
        status=status,
    )


def assert_adds_up(scored) -> None:
    assert 1000 - sum(c.points_lost for c in scored.contributions) == scored.tenths


# --- anchors ---------------------------------------------------------------------------


def test_no_findings_is_a_perfect_score_in_every_category_and_asset():
    result = score_organisation("kunta", [], ASSETS)

    assert (result.score, result.grade, result.version) == (100.0, Grade.A, SCORING_VERSION)
    assert set(result.categories) == {c.value for c in Category}
    assert all(s.tenths == 1000 for s in result.categories.values())
    assert set(result.assets) == {a.value for a in ASSETS}
    assert result.contributions == ()


def test_one_finding_loses_its_severity_weight_times_criticality():
    # Given one high finding on a high-criticality asset: penalty 1.5 × 20 points
    result = score_organisation("kunta", [finding("dns.axfr.open", "high", WWW)], ASSETS)

    # Then the score is 100 × exp(−30 / 150) = 81.9, the same on the category and the asset
    assert result.score == 81.9
    assert result.grade is Grade.B
    assert result.categories["dns"].score == 81.9
    assert result.assets[WWW.value].score == 81.9
    assert result.assets[ASIOINTI.value].score == 100.0
    assert [(c.check_id, c.penalty, c.points) for c in result.contributions] == [
        ("dns.axfr.open", 300, 18.1)
    ]


def test_small_penalties_cost_about_their_points_and_large_ones_never_reach_zero():
    assert compress(0) == 1000
    assert compress(50) == 967  # 5 points of penalty: 3.3 points lost
    assert compress(1500) == 368  # 100/e
    assert 0 < compress(6000) < compress(3000)


def test_the_same_problem_on_many_assets_costs_at_most_twice_its_worst_instance():
    one = score_organisation("kunta", [finding("web.hsts.missing", "medium", WWW)], ASSETS)
    many = score_organisation(
        "kunta",
        [finding("web.hsts.missing", "medium", f"h{i}.kunta.test") for i in range(50)]
        + [finding("web.hsts.missing", "medium", WWW)],
        ASSETS,
    )

    penalty_one = one.contributions[0].penalty  # 7.5 points on a high asset
    penalty_many = many.contributions[0].penalty
    assert penalty_one == 75
    # worst instance 7.5, then 5 × (½ + ¼ + …) for the medium ones: just under 7.5 + 5
    assert penalty_one < penalty_many <= 75 + 50
    assert many.contributions[0].instances == 51
    assert one.tenths > many.tenths


def test_fifty_clean_hosts_do_not_hide_one_hole():
    clean = [ScoringAsset(f"h{i}.kunta.test") for i in range(50)]
    alone = score_organisation("kunta", [finding("dns.axfr.open", "high", WWW)], [WWW])
    crowd = score_organisation("kunta", [finding("dns.axfr.open", "high", WWW)], [WWW, *clean])

    assert crowd.tenths == alone.tenths


def test_an_open_critical_caps_the_organisation_at_d_and_shows_the_cap():
    # Given a critical finding on a low-criticality test host: a penalty of only 20 points
    result = score_organisation(
        "kunta", [finding("services.exposed.rdp", "critical", TESTI)], ASSETS
    )

    # Then the score is held to the top of D, and the explanation says what the cap costs
    assert result.tenths == 699
    assert result.grade is Grade.D
    (line,) = result.contributions
    assert (line.check_id, line.caps) == ("services.exposed.rdp", ("open_critical",))
    assert line.cap_points == compress(200) - 699
    assert line.points_lost == 1000 - 699
    assert [(c.id, c.binding) for c in result.caps] == [("open_critical", True)]
    assert_adds_up(result)


def test_the_cost_of_caps_goes_band_by_band_to_the_groups_that_hold_the_score_down():
    # Given the worked example: a critical (cap D), a self-signed e-service (cap C), a low
    result = score_organisation(
        "kunta",
        [
            finding("services.exposed.rdp", "critical", TESTI),
            finding("tls.certificate.self_signed", "high", "ajanvaraus.kunta.test"),
            finding("web.headers.csp_missing", "low", WWW),
        ],
        [*ASSETS, ScoringAsset("ajanvaraus.kunta.test", "low", frozenset({"e-service"}))],
    )
    lines = {c.check_id: c for c in result.contributions}

    # Then the band from D (69.9) to C (79.9) is the critical's alone; the band from C to
    # the uncapped 80.3 is shared by both, since both must be fixed to get through it
    assert result.overall.uncapped == 803 and result.tenths == 699
    assert lines["services.exposed.rdp"].cap_points == 100 + 2
    assert lines["tls.certificate.self_signed"].cap_points == 2
    assert lines["web.headers.csp_missing"].cap_points == 0
    assert lines["tls.certificate.self_signed"].caps == ("untrusted_certificate_e_service",)
    assert_adds_up(result)


def test_an_expired_certificate_on_a_high_criticality_e_service_caps_at_c():
    expired = finding("tls.certificate.expired", "low", ASIOINTI)
    on_website = finding("tls.certificate.expired", "low", WWW)

    capped = score_organisation("kunta", [expired], ASSETS)
    not_capped = score_organisation("kunta", [on_website], ASSETS)

    assert (capped.tenths, capped.grade) == (799, Grade.C)
    assert capped.categories["tls"].tenths == 799
    assert capped.assets[ASIOINTI.value].tenths == 799
    assert not_capped.grade is Grade.A


def test_tls_caps_limit_the_tls_category_and_the_asset_but_not_the_organisation():
    result = score_organisation("kunta", [finding("tls.protocol.tls1_0", "low", WWW)], ASSETS)

    assert result.categories["tls"].grade is Grade.B
    assert result.assets[WWW.value].grade is Grade.B
    assert result.grade is Grade.A
    assert result.caps == ()


def test_points_lost_are_shared_in_proportion_to_the_penalties_and_add_up():
    findings = [finding(f"dns.check.n{i}", "critical", WWW) for i in range(5)]
    findings.append(finding("dns.ns.single", "medium", WWW))

    result = score_organisation("kunta", findings, ASSETS)

    assert result.tenths == compress(5 * 600 + 75)
    shares = [c.points_lost for c in result.contributions]
    assert max(shares[:5]) - min(shares[:5]) <= 1
    assert 7 * shares[5] <= shares[0] <= 9 * shares[5]  # 600 : 75
    assert_adds_up(result)


def test_accepted_risks_and_false_positives_are_excluded_but_listed():
    accepted = finding("dns.axfr.open", "high", WWW, status=FindingStatus.ACCEPTED)
    false_positive = finding("dns.ns.single", "medium", WWW, status=FindingStatus.FALSE_POSITIVE)

    result = score_organisation("kunta", [accepted, false_positive], ASSETS)

    assert result.score == 100.0
    assert result.excluded == (accepted, false_positive)
    assert sum(result.open_counts.values()) == 0


def test_grade_bands():
    assert [grade_for(t) for t in (1000, 900, 899, 800, 700, 699, 600, 599, 0)] == list("AABBCDDFF")


# --- priorities, plans, answers --------------------------------------------------------


def rapala_like() -> list[ScoringFinding]:
    return [
        finding("services.exposed.rdp", "critical", TESTI, first_seen=dt.date(2026, 10, 1)),
        finding("dns.axfr.open", "high", WWW, first_seen=dt.date(2026, 10, 20)),
        finding("dns.dnssec.unsigned", "medium", WWW),
        finding("web.hsts.missing", "low", WWW),
        finding("web.hsts.missing", "low", ASIOINTI),
    ]


def test_priorities_rank_gain_per_effort_and_give_cisa_due_dates():
    registry = load_registry()
    result = score_organisation("kunta", rapala_like(), ASSETS)

    actions = priorities(result, registry=registry, today=TODAY)

    by_id = {a.check_id: a for a in actions}
    assert set(by_id) == {g.check_id for g in result.groups}
    # one check on many assets is one action
    assert by_id["web.hsts.missing"].instances == 2
    # critical: 15 days from first seen, overdue; high 30 days, not yet
    assert by_id["services.exposed.rdp"].due == dt.date(2026, 10, 16)
    assert by_id["services.exposed.rdp"].overdue
    assert by_id["dns.axfr.open"].due == dt.date(2026, 11, 19)
    assert not by_id["dns.axfr.open"].overdue
    keys = [a.rank_key() for a in actions]
    assert keys == sorted(keys)
    # every gain is the action's line of the explanation, and together they are the deficit
    lines = {c.check_id: c.points_lost for c in result.contributions}
    assert {a.check_id: a.gain for a in actions} == lines
    assert sum(a.gain for a in actions) == 1000 - result.tenths


def test_a_fix_that_the_cap_hides_is_still_worth_its_share():
    # Given an open critical capping at D and a serious problem beside it
    registry = load_registry()
    findings = [
        finding("services.exposed.rdp", "critical", TESTI),
        finding("dns.axfr.open", "high", WWW),
    ]
    result = score_organisation("kunta", findings, ASSETS)

    axfr = next(
        a
        for a in priorities(result, registry=registry, today=TODAY)
        if a.check_id == "dns.axfr.open"
    )

    # Then fixing it alone would not move the capped score, yet its gain is its share of
    # the points lost, as the explanation says: never "+0, not urgent"
    assert score_without(result, frozenset({"dns.axfr.open"})) == result.tenths
    assert axfr.gain == result.overall.contribution("dns.axfr.open").points_lost > 100


def test_due_dates_follow_severity():
    assert [due_date(s, DAY) for s in Severity] == [
        DAY + dt.timedelta(days=d) if d else None for d in (15, 30, 90, 180, None)
    ]


def test_plan_to_reach_b_lifts_the_cap_and_reaches_the_grade():
    registry = load_registry()
    result = score_organisation("kunta", rapala_like(), ASSETS)

    plan = plan_to_reach(result, "B", registry=registry, today=TODAY)

    assert "services.exposed.rdp" in {a.check_id for a in plan.actions}
    assert plan.tenths_after >= 800 and plan.grade_after in (Grade.A, Grade.B)
    fixed = {a.check_id for a in plan.actions}
    rest = [f for f in rapala_like() if f.check_id not in fixed]
    assert score_organisation("kunta", rest, ASSETS).tenths == plan.tenths_after


def test_plan_for_a_grade_already_reached_is_empty():
    result = score_organisation("kunta", [finding("web.hsts.missing", "low", WWW)], ASSETS)

    plan = plan_to_reach(result, "B", registry=load_registry(), today=TODAY)

    assert plan.actions == () and plan.grade_after is Grade.A


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fi", r"^Ei vielä: arvosana [A-F] \(\d+,\d/100\), 1 kriittinen ongelma; korjaa ensin: "),
        ("sv", r"^Inte ännu: betyg [A-F] \(\d+,\d/100\), 1 kritiskt problem; åtgärda först: "),
        ("en", r"^Not yet: grade [A-F] \(\d+\.\d/100\), 1 critical problem; fix first: "),
    ],
)
def test_the_answer_names_the_problem_and_the_first_fix(language, expected):
    registry = load_registry()
    result = score_organisation("kunta", rapala_like(), ASSETS)
    actions = priorities(result, registry=registry, today=TODAY)

    sentence = answer(result, actions, registry=registry, language=language)

    assert re.match(expected, sentence), sentence
    top = actions[0]
    title = registry[top.check_id].title_in(language) if top.check_id in registry else None
    assert title is None or title in sentence


def test_the_answer_counts_in_plural_and_names_a_cap_that_is_not_a_critical():
    registry = load_registry()
    findings = [
        finding("tls.certificate.expired", "high", ASIOINTI),
        finding("dns.axfr.open", "high", WWW),
    ]
    result = score_organisation("kunta", findings, ASSETS)
    actions = priorities(result, registry=registry, today=TODAY)

    fi = answer(result, actions, registry=registry, language="fi")
    en = answer(result, actions, registry=registry, language="en")

    assert "2 vakavaa ongelmaa" in fi
    assert "2 serious problems" in en


def test_a_clean_organisation_is_answered_yes():
    result = score_organisation("kunta", [], ASSETS)

    assert answer(result, [], registry=load_registry(), language="fi").startswith(
        "Kyllä: arvosana A (100/100)"
    )


# --- the weights table and its documentation ------------------------------------------


def test_every_registered_check_has_a_weight():
    for check in load_registry().values():
        weight = check_weight(check.severity)
        assert weight >= 0, check.id
        assert (weight > 0) == (check.severity is not Severity.INFO), check.id


def test_every_check_a_cap_names_is_registered_once_its_category_is():
    registry = load_registry()
    categories = {c.category for c in registry.values()}
    for rule in CAP_RULES:
        for check_id in rule.check_ids or ():
            if Category(check_id.split(".", 1)[0]) in categories:
                assert check_id in registry, f"cap {rule.id} names unregistered {check_id}"


def test_docs_state_the_weights_table_as_the_code_has_it():
    assert weights_markdown() in DOCS.read_text(encoding="utf-8")


def test_docs_show_the_worked_example_as_the_model_computes_it():
    example = worked_example_markdown()
    assert example in DOCS.read_text(encoding="utf-8")
    assert "**30.1**" in example and "100.0 − 30.1 = 69.9" in example


def _scoring_messages() -> set[str]:
    from babel.messages.extract import extract_from_dir

    folder = Path(__file__).parents[1] / "riskiturva" / "scoring"
    found = extract_from_dir(
        str(folder),
        method_map=[("**.py", "python")],
        keywords={"_": None, "N_": None, "ngettext": (1, 2)},
    )
    return {m[0] if isinstance(m, tuple) else m for _file, _line, m, _c, _x in found}


@pytest.mark.parametrize("language", ["fi", "sv"])
def test_every_word_of_the_answer_and_the_caps_is_translated(language):
    from riskiturva.i18n import catalog

    messages = _scoring_messages()
    assert {rule.reason for rule in CAP_RULES} <= messages
    assert set(catalog(language, "scoring")) == messages
