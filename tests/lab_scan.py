"""Scan the lab estate with one collector, driven as the runner drives it (no database)."""

from __future__ import annotations

from riskiturva.collector import Collector, IdentifiesSoftware, SubjectObservation, SubjectStatus
from riskiturva.config import Config
from riskiturva.intel import rules as software_rules
from riskiturva.intel.snapshot import IntelSnapshot
from riskiturva.lab.manifest import Manifest
from riskiturva.runner import build_context, expand_targets, make_tasks
from tests.rule_checks import checked


def observe(collector: Collector, config: Config) -> list[SubjectObservation]:
    """Every observation of one scan of every organisation, the runner's own errors included."""
    context = build_context(config)
    seen: list[SubjectObservation] = []
    for organisation in config.organisations:
        targets, errors = expand_targets(organisation, collector, context)
        seen.extend(errors)
        for task in make_tasks(1, organisation.slug, collector.name, targets, {}):
            seen.extend(collector.collect(task, context))
    return seen


def found(
    collector: Collector,
    observations: list[SubjectObservation],
    intel: IntelSnapshot | None = None,
) -> set[tuple[str, str]]:
    """(subject, check id) of every finding the collector's rules draw from the observations,
    and with `intel`, the vulnerability rules' findings on the software it identified."""
    drafts = [
        (observation, draft)
        for observation in observations
        if observation.status is not SubjectStatus.ERROR
        for draft in checked(collector.judge, observation)
    ]
    if intel is not None and isinstance(collector, IdentifiesSoftware):
        allowed = software_rules.CHECK_IDS - software_rules.unavailable_checks(intel).keys()
        drafts += [
            (observation, draft)
            for observation in observations
            if observation.status is not SubjectStatus.ERROR
            for draft in software_rules.judge_software(
                collector.software(observation), intel, allowed
            )
        ]
    return {(draft.subject or observation.subject, draft.check_id) for observation, draft in drafts}


def errors(observations: list[SubjectObservation]) -> dict[str, str]:
    """Subject → the kind of the error recorded on it."""
    return {o.subject: str(o.error.kind) for o in observations if o.error is not None}


def complete(collector: str, manifest: Manifest, observations: list[SubjectObservation]) -> dict:
    """Each subject the manifest lists for `collector` → its status, or its error's kind when
    the manifest expects that error: equal to `expected_complete` when all went as planned."""
    status = {o.subject: o.status for o in observations}
    kinds = errors(observations)
    expected = manifest.errors(collector)  # type: ignore[arg-type]
    subjects = _observed_subjects(collector, manifest)
    return {s: kinds.get(s) if s in expected else status.get(s) for s in subjects}


def expected_complete(collector: str, manifest: Manifest) -> dict:
    expected = manifest.errors(collector)  # type: ignore[arg-type]
    subjects = _observed_subjects(collector, manifest)
    return {s: expected.get(s, SubjectStatus.OK) for s in subjects}


def _observed_subjects(collector: str, manifest: Manifest) -> set[str]:
    """The declared (not discovered) subjects the manifest names for `collector`, as
    observed: a software finding's subject is its host's with `#vendor:product` after it."""
    return {
        e.subject.split("#")[0]
        for e in manifest.expectations
        if e.collector == collector and not e.discovered
    }
