"""Scan the lab estate with one collector, driven as the runner drives it (no database)."""

from __future__ import annotations

from riskiturva.collector import Collector, IdentifiesSoftware, SubjectObservation, SubjectStatus
from riskiturva.config import Config
from riskiturva.intel import rules as software_rules
from riskiturva.intel.snapshot import IntelSnapshot
from riskiturva.runner import build_context, expand_targets, make_tasks


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
        for draft in collector.judge(observation)
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
