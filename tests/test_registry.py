"""One registry: ids well formed, words in three languages, every id has a rule and vice versa."""

from __future__ import annotations

import pytest

from riskiturva.checks import CHECK_ID, LANGUAGES, CheckRegistryError, load_registry, parse_check
from riskiturva.collector import IdentifiesSoftware, discover_collectors
from riskiturva.intel import rules as software_rules
from riskiturva.lab.manifest import load_manifest

REGISTRY = load_registry()
COLLECTORS = discover_collectors()


def test_the_four_collectors_are_registered_entry_points():
    assert set(COLLECTORS) == {"dns_email", "services", "tls", "web"}


@pytest.mark.parametrize("check_id", sorted(REGISTRY))
def test_check_is_well_formed_and_translated(check_id):
    check = REGISTRY[check_id]
    assert CHECK_ID.match(check.id)
    assert check.id.split(".")[0] == check.category
    for language in LANGUAGES:
        assert len(check.title[language]) >= 5
        assert len(check.guidance[language]) >= 30, (
            f"{check_id}: guidance in {language} is too thin"
        )
    assert check.title["fi"] != check.title["en"]


@pytest.mark.parametrize("name", sorted(COLLECTORS))
def test_every_id_a_collector_can_emit_is_registered(name):
    assert sorted(COLLECTORS[name].check_ids - set(REGISTRY)) == []


def test_every_registered_check_has_a_rule():
    emitted = set().union(*(c.check_ids for c in COLLECTORS.values()), software_rules.CHECK_IDS)
    assert sorted(set(REGISTRY) - emitted) == []


def test_software_checks_are_registered_and_judged_for_the_collectors_that_name_software():
    registered = {c for c in REGISTRY if c.startswith("software.")}
    assert registered == software_rules.CHECK_IDS
    assert {n for n, c in COLLECTORS.items() if isinstance(c, IdentifiesSoftware)} == {
        "services",
        "web",
    }
    # Known-exploited vulnerabilities are fixed within 14 days (CISA KEV practice, CyHy).
    assert REGISTRY[software_rules.KEV].deadline_days == 14
    assert REGISTRY[software_rules.KEV_RANSOMWARE].deadline_days == 14


def test_the_lab_manifest_names_only_registered_checks():
    named = {check for e in load_manifest().expectations for check in (*e.checks, *e.may)}
    assert sorted(named - set(REGISTRY)) == []


@pytest.mark.parametrize(
    ("check_id", "data", "message"),
    [
        ("TLS.Protocol", {}, "malformed id"),
        (
            "tls.protocol.x",
            {"severity": "high", "effort": "low", "title": {"fi": "a", "sv": "b"}},
            "title lacks en",
        ),
        (
            "tls.protocol.x",
            {
                "severity": "urgent",
                "effort": "low",
                "title": dict.fromkeys(LANGUAGES, "t"),
                "guidance": dict.fromkeys(LANGUAGES, "g"),
            },
            "urgent",
        ),
        ("tls.protocol.x", {"severity": "high", "owner": "x"}, "unknown keys"),
    ],
)
def test_malformed_declarations_are_rejected(check_id, data, message):
    with pytest.raises(CheckRegistryError, match=message):
        parse_check(check_id, data, "test.toml")
