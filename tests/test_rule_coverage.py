"""Tests that cannot be fooled: every collector's rules, their declared ids and the registry.

* Each collector's check ids are the union of what its rules declare (`RuleSet`); a rule
  that emits anything else raises.
* Every id a collector declares is raised by at least one planted fact object in its rule
  tests (`PLANTED` in `tests/test_<collector>_rules.py`), through the shared guard that
  checks each draft against the registry (`tests/rule_checks.py`).
* Every top-level evidence key a rule emits has a label in Finnish and Swedish
  (`riskiturva.terms.EVIDENCE`), checked on every draft by the same guard.
* No check-id-shaped string in a collector's source is left out of its declared ids: a rule
  branch no test reaches still cannot emit an unregistered id unnoticed.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from riskiturva.checks import CHECK_ID
from riskiturva.collector import FindingDraft, Rule, RuleSet, UndeclaredCheckError
from tests.rule_checks import (
    COLLECTORS,
    REGISTRY,
    assert_every_check_fires,
    assert_evidence_labelled,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(COLLECTORS))
def test_every_declared_check_fires_in_a_rule_test_fixture(name):
    module = importlib.import_module(f"tests.test_{name}_rules")
    planted = getattr(module, "PLANTED", None)
    assert planted, f"tests/test_{name}_rules.py has no PLANTED facts"
    assert_every_check_fires(name, planted)


@pytest.mark.parametrize("name", sorted(COLLECTORS))
def test_every_declared_check_is_registered(name):
    assert sorted(COLLECTORS[name].check_ids - set(REGISTRY)) == []


def _check_id_literals(package: Path) -> dict[str, str]:
    """Every string constant in the package's source that has the shape of a check id."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            literal = node.value if isinstance(node, ast.Constant) else None
            if isinstance(literal, str) and CHECK_ID.match(literal):
                found[literal] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


@pytest.mark.parametrize("name", sorted(COLLECTORS))
def test_no_check_id_in_a_collector_s_source_escapes_its_declared_ids(name):
    package = Path(importlib.import_module(f"collectors.{name}").__file__).parent
    stray = {
        literal: where
        for literal, where in _check_id_literals(package).items()
        if literal not in COLLECTORS[name].check_ids
    }
    assert stray == {}, f"check ids in {name}'s source that its rules do not declare"


def test_a_rule_that_emits_an_id_it_did_not_declare_raises():
    def sloppy(_: object) -> list[FindingDraft]:
        return [FindingDraft("tls.protocol.tls1_0", {"x": 1})]

    rules = RuleSet((Rule(sloppy, frozenset({"tls.protocol.tls1_1"})),))
    assert rules.check_ids == {"tls.protocol.tls1_1"}
    with pytest.raises(UndeclaredCheckError, match=r"sloppy emitted 'tls\.protocol\.tls1_0'"):
        rules.judge(object())


def test_an_evidence_key_without_a_label_fails_the_rule_guard():
    """The guard every rule draft passes refuses a key the finding page could not label."""
    assert_evidence_labelled("tls.certificate.expired", {"days_left": 3})
    with pytest.raises(AssertionError, match="no_such_key"):
        assert_evidence_labelled("tls.certificate.expired", {"days_left": 3, "no_such_key": 1})
