"""The one guard every rule test goes through: each draft a rule returns is checked.

`checked(judge, facts)` runs a rule (a collector's `judge`, a rules module's `judge`, or one
rule function) and fails the test unless every draft is a `FindingDraft` whose check id is in
the registry and among the ids its collector declares, with evidence that stores as JSON and
a subject and reproduce command that are text, and whose every top-level evidence key has a
label (`riskiturva.terms.EVIDENCE`) translated into Finnish and Swedish — the finding page
shows the label, never the key. `assert_every_check_fires` ties a collector's declared ids to
the planted facts of its rule tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from riskiturva import terms
from riskiturva.checks import load_registry
from riskiturva.collector import (
    FindingDraft,
    SubjectObservation,
    SubjectStatus,
    discover_collectors,
    to_jsonable,
)
from riskiturva.i18n import catalog

REGISTRY = load_registry()
COLLECTORS = discover_collectors()
Facts = TypeVar("Facts")


def collector_of(judge: Callable[..., Any]) -> str:
    """The collector a rule belongs to, from its module (`collectors.<name>.…`)."""
    parts = judge.__module__.split(".")
    if parts[0] != "collectors" or len(parts) < 2 or parts[1] not in COLLECTORS:
        raise AssertionError(f"{judge.__qualname__} is not a rule of a registered collector")
    return parts[1]


def validate(collector: str, draft: object) -> FindingDraft:
    """One draft as the runner will store it, or an assertion naming what is wrong."""
    assert isinstance(draft, FindingDraft), f"{collector}: a rule returned {draft!r}"
    check_id = draft.check_id
    assert check_id in REGISTRY, f"{collector}: unregistered check id {check_id!r}"
    declared = COLLECTORS[collector].check_ids
    assert check_id in declared, f"{collector}: {check_id!r} is not among its declared check ids"
    assert isinstance(draft.evidence, Mapping), f"{check_id}: evidence is not a mapping"
    assert draft.evidence, f"{check_id}: evidence is empty"
    json.dumps(to_jsonable(draft.evidence), allow_nan=False)
    assert_evidence_labelled(check_id, draft.evidence)
    for name, value in (("subject", draft.subject), ("reproduce", draft.reproduce)):
        assert value is None or (isinstance(value, str) and value.strip()), (
            f"{check_id}: {name} {value!r} is neither None nor text"
        )
    return draft


def assert_evidence_labelled(check_id: str, evidence: Mapping[str, Any]) -> None:
    """Every top-level key of the evidence has a label, in Finnish and in Swedish."""
    unlabelled = sorted(set(evidence) - set(terms.EVIDENCE))
    assert not unlabelled, f"{check_id}: no label in terms.EVIDENCE for {unlabelled}"
    for language in ("fi", "sv"):
        words = catalog(language, terms.DOMAIN)
        untranslated = sorted(k for k in evidence if terms.EVIDENCE[k] not in words)
        assert not untranslated, f"{check_id}: no {language} label in terms.po for {untranslated}"


def checked(judge: Callable[[Facts], Iterable[FindingDraft]], facts: Facts) -> list[FindingDraft]:
    """`judge(facts)`, every draft validated against the registry and its collector."""
    collector = collector_of(judge)
    return [validate(collector, draft) for draft in judge(facts)]


def assert_every_check_fires(collector: str, planted: Sequence[Any]) -> None:
    """Each id the collector declares is emitted by at least one planted fact object."""
    judge = COLLECTORS[collector].judge
    emitted: set[str] = set()
    for facts in planted:
        observation = SubjectObservation("subject", "asset", SubjectStatus.OK, facts)
        emitted.update(d.check_id for d in checked(judge, observation))
    silent = sorted(COLLECTORS[collector].check_ids - emitted)
    assert silent == [], f"{collector}: no rule-test fixture raises {silent}"
