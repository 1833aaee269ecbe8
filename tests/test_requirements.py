"""Requirement profiles: every mapping cites a source section; evaluation says met / not met /
not checked / not applicable from findings and coverage; bad profiles name file and key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from riskiturva.checks import LANGUAGES, load_registry
from riskiturva.collector import discover_collectors
from riskiturva.config import DEFAULT_REQUIREMENTS, Config, ConfigError, load_config
from riskiturva.requirements import (
    Evidence,
    RequirementProfileError,
    RequirementStatus,
    Verification,
    evaluate,
    load_profiles,
    parse_profile,
)

ROOT = Path(__file__).resolve().parents[1]
PROFILES = load_profiles()
REQUIREMENTS = [r for p in PROFILES.values() for r in p.requirements]
COLLECTOR_OF = {c: name for name, col in discover_collectors().items() for c in col.check_ids}


def test_the_four_profiles_ship_and_the_defaults_exist():
    assert set(PROFILES) == {
        "kyberturvallisuuskeskus",
        "kyberturvallisuuslaki",
        "tiedonhallintalaki",
        "traficom-m68",
    }
    assert set(DEFAULT_REQUIREMENTS) <= set(PROFILES)
    assert "kyberturvallisuuslaki" not in DEFAULT_REQUIREMENTS  # declared, never assumed


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=lambda r: r.id)
def test_every_requirement_names_a_source_section_and_registered_checks(requirement):
    assert requirement.citations
    for citation in requirement.citations:
        assert set(citation.section) == {"fi", "sv", "en"}
        assert all(text.strip() for text in citation.section.values())
        assert citation.source.title and citation.source.url.startswith("https://")
        assert len(citation.source.note) > 40, "say what was and was not read"
        assert isinstance(citation.source.verified, Verification)
    assert set(requirement.checks) <= set(load_registry())
    assert len(set(requirement.checks)) == len(requirement.checks)
    for language in LANGUAGES:
        assert len(requirement.title[language]) > 20


def test_a_source_known_only_by_its_title_is_never_the_only_support_of_an_obligation():
    for requirement in REQUIREMENTS:
        if requirement.kind == "obligation":
            assert any(c.source.verified != Verification.TITLE for c in requirement.citations), (
                requirement.id
            )


def test_docs_name_every_profile_version_and_source():
    text = (ROOT / "docs" / "requirements.md").read_text(encoding="utf-8")
    for profile in PROFILES.values():
        assert f"`{profile.id}`" in text and profile.version in text
        for source in profile.sources.values():
            assert source.url in text, source.id
        for requirement in profile.requirements:
            assert f"`{requirement.id}`" in text


def _profile_data(**changes):
    data = tomllib.loads((ROOT / "riskiturva/requirement_data/traficom-m68.toml").read_text())
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "m68"}, "id must be 'traficom-m68'"),
        ({"version": ""}, "version must be a non-empty string"),
        ({"sources": {}}, "sources must name at least one source"),
    ],
)
def test_malformed_profiles_are_rejected(change, message):
    with pytest.raises(RequirementProfileError, match=message):
        parse_profile("traficom-m68", _profile_data(**change), "traficom-m68.toml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cite": []}, r"requirements\[0\]: cite must name at least one source section"),
        ({"cite": [{"source": "m68"}]}, r"each cite is \{ source, section \}"),
        ({"cite": [{"source": "finlex", "section": "1 §"}]}, "unknown source 'finlex'"),
        ({"cite": [{"source": "m68", "section": "1 §"}]}, "cite.section must be a table of fi/sv"),
        (
            {"cite": [{"source": "m68", "section": {"fi": "1 §", "sv": "1 §", "en": " "}}]},
            r"requirements\[0\]: cite.section lacks en",
        ),
        ({"checks": ["dns.ns.nonexistent"]}, r"unknown check ids \['dns.ns.nonexistent'\]"),
        ({"kind": "wish"}, "kind: 'wish' is not a valid RequirementKind"),
    ],
)
def test_a_requirement_without_a_proper_citation_or_known_checks_is_rejected(change, message):
    data = _profile_data()
    data["requirements"][0].update(change)
    with pytest.raises(RequirementProfileError, match=message):
        parse_profile("traficom-m68", data, "traficom-m68.toml")


M68 = PROFILES["traficom-m68"]
DNS_ONLY = {"dns_email"}


def _status(results, local_id):
    return next(r for r in results if r.requirement.id.endswith("." + local_id))


def test_m68_not_met_by_a_single_name_server_of_a_fi_domain():
    evidence = [Evidence("dns.ns.single", "kunta.fi", accepted=False)]
    results = evaluate(M68, evidence, DNS_ONLY, COLLECTOR_OF, ["kunta.fi", None])
    single = _status(results, "ns_independent")
    assert single.status is RequirementStatus.NOT_MET and single.findings == 1
    assert _status(results, "ns_all_answer").status is RequirementStatus.MET


def test_m68_counts_only_fi_and_ax_names():
    evidence = [Evidence("dns.axfr.open", "kunta.com", accepted=False)]
    results = evaluate(M68, evidence, DNS_ONLY, COLLECTOR_OF, ["kunta.fi", "kunta.com"])
    assert _status(results, "axfr_refused").status is RequirementStatus.MET
    lab = evaluate(M68, evidence, DNS_ONLY, COLLECTOR_OF, ["rapala.test"])
    assert {r.status for r in lab} == {RequirementStatus.NOT_APPLICABLE}


def test_an_accepted_risk_still_leaves_the_requirement_not_met_and_is_counted():
    evidence = [Evidence("dns.axfr.open", "kunta.fi", accepted=True)]
    result = _status(evaluate(M68, evidence, DNS_ONLY, COLLECTOR_OF, ["kunta.fi"]), "axfr_refused")
    assert result.status is RequirementStatus.NOT_MET and result.accepted == 1


def test_a_requirement_is_not_checked_until_every_collector_concerned_has_checked():
    tihl = PROFILES["tiedonhallintalaki"]
    lifecycle = _status(evaluate(tihl, [], {"tls"}, COLLECTOR_OF, [None]), "13_1_lifecycle")
    assert lifecycle.status is RequirementStatus.NOT_CHECKED
    assert set(lifecycle.unchecked) == {"dns_email", "services", "web"}
    everything = set(discover_collectors())
    lifecycle = _status(evaluate(tihl, [], everything, COLLECTOR_OF, [None]), "13_1_lifecycle")
    assert lifecycle.status is RequirementStatus.MET and lifecycle.unchecked == ()


def test_an_organisation_declares_profiles_and_unknown_ones_are_refused(tmp_path, minimal_config):
    assert minimal_config.organisations[0].requirements == DEFAULT_REQUIREMENTS
    data = minimal_config.model_dump(mode="json", exclude={"source"})
    data["organisations"][0]["requirements"] = ["kyberturvallisuuslaki", "tiedonhallintalaki"]
    assert Config.model_validate(data).organisations[0].requirements == (
        "kyberturvallisuuslaki",
        "tiedonhallintalaki",
    )
    path = tmp_path / "bad.toml"
    text = (ROOT / "config" / "example.toml").read_text(encoding="utf-8")
    path.write_text(
        text.replace('slug = "harjuniemi"\n', 'slug = "harjuniemi"\nrequirements = ["nis3"]\n', 1),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.field == "organisations[1].requirements"
    assert "unknown requirement profiles ['nis3']" in problem.message
    assert problem.line == text.splitlines().index('slug = "harjuniemi"') + 2
