"""The lab's municipalities, scored from the manifest's ground truth.

The manifest says which findings each planted weakness raises; scoring those must grade
the well-kept Hyvälä A or B (even with every finding a collector *may* raise), and the
neglected Rapala D or F with its caps visible in the explanation.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest

from riskiturva.checks import load_registry
from riskiturva.lab.manifest import Municipality, load_manifest
from riskiturva.scoring import (
    Grade,
    OrganisationScore,
    ScoringAsset,
    ScoringFinding,
    answer,
    plan_to_reach,
    priorities,
    score_organisation,
)

FIRST_SEEN = dt.date(2026, 9, 1)
TODAY = dt.date(2026, 11, 2)
# Until a category's checks are registered, its findings are scored as medium.
UNREGISTERED_SEVERITY = "medium"


def asset_of(subject: str, assets: list[ScoringAsset]) -> str:
    """The configured asset a finding's subject belongs to (as the runner records it)."""
    host = subject.split("/", 1)[0].rsplit(":", 1)[0] if ":" in subject else subject
    values = {a.value for a in assets}
    if host in values:
        return host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # mx.rapala.test:25 comes from the mail domain rapala.test
        parents = [v for v in values if host.endswith("." + v)]
        if parents:
            return max(parents, key=len)
    return host


def lab_score(municipality: Municipality, *, with_may: bool) -> OrganisationScore:
    registry = load_registry()
    assets = [
        ScoringAsset(a["value"], a.get("criticality", "medium"), frozenset(a.get("tags", ())))
        for a in municipality.assets
    ]
    findings = []
    for expectation in municipality.expect:
        if expectation.discovered or (expectation.clean and not with_may):
            continue  # assets only discovery finds are not in this inventory
        checks = expectation.checks + (expectation.may if with_may else ())
        subject = expectation.subject.replace("*", "443/tcp")
        for check_id in checks:
            check = registry.get(check_id)
            findings.append(
                ScoringFinding(
                    check_id=check_id,
                    category=check_id.split(".", 1)[0],
                    severity=str(check.severity) if check else UNREGISTERED_SEVERITY,
                    subject=subject,
                    asset=asset_of(subject, assets),
                    first_seen=FIRST_SEEN,
                )
            )
    return score_organisation(municipality.slug, findings, assets)


@pytest.fixture(scope="module")
def municipalities() -> dict[str, Municipality]:
    return {m.slug: m for m in load_manifest().municipalities}


def test_the_well_kept_municipality_grades_a_or_b(municipalities):
    result = lab_score(municipalities["hyvala"], with_may=True)

    assert result.grade in (Grade.A, Grade.B)
    assert not [c for c in result.caps if c.binding]


def test_the_neglected_municipality_grades_d_or_f_with_its_caps_in_the_explanation(
    municipalities,
):
    result = lab_score(municipalities["rapala"], with_may=False)

    assert result.grade in (Grade.D, Grade.F)
    assert "expired_certificate_e_service" in {c.id for c in result.caps}
    tls = result.categories["tls"]
    assert {c.id for c in tls.caps} >= {"tls_broken", "tls_legacy_protocol"}
    email = result.categories["email"]
    assert "spf_pass_all" in {c.id for c in email.caps}
    # the e-service with the expired certificate carries that cap
    asiointi = result.assets["asiointi.rapala.test"]
    assert "expired_certificate_e_service" in {c.id for c in asiointi.caps}
    assert asiointi.grade in (Grade.C, Grade.D, Grade.F)
    # an e-service whose certificate names another host is held at C, and says so
    lomakkeet = result.assets["lomakkeet.rapala.test"]
    assert "untrusted_certificate_e_service" in {c.id for c in lomakkeet.caps}
    assert lomakkeet.grade in (Grade.C, Grade.D, Grade.F)
    for scope in (result.overall, tls, email, asiointi, lomakkeet):
        assert 1000 - sum(c.points_lost for c in scope.contributions) == scope.tenths


def test_the_mixed_municipality_lies_between_the_two(municipalities):
    good = lab_score(municipalities["hyvala"], with_may=True)
    mixed = lab_score(municipalities["sekala"], with_may=False)
    bad = lab_score(municipalities["rapala"], with_may=False)

    assert bad.tenths <= mixed.tenths < good.tenths


def test_rapala_gets_a_plan_to_b_and_an_answer_in_three_languages(municipalities):
    registry = load_registry()
    result = lab_score(municipalities["rapala"], with_may=False)
    actions = priorities(result, registry=registry, today=TODAY)

    plan = plan_to_reach(result, Grade.B, registry=registry, today=TODAY)
    sentences = {
        lang: answer(result, actions, registry=registry, language=lang)
        for lang in ["fi", "sv", "en"]
    }

    assert plan.grade_after in (Grade.A, Grade.B)
    assert len(plan.actions) < len(actions)
    assert sentences["fi"].startswith("Ei vielä: arvosana ")
    assert sentences["sv"].startswith("Inte ännu: betyg ")
    assert sentences["en"].startswith("Not yet: grade ")
    assert all(s.endswith(").") for s in sentences.values())
