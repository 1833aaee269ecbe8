"""Scan the lab estate with one collector, driven as the runner drives it (no database)."""

from __future__ import annotations

from riskiturva.collector import Collector, SubjectObservation, SubjectStatus
from riskiturva.config import Config
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


def found(collector: Collector, observations: list[SubjectObservation]) -> set[tuple[str, str]]:
    """(subject, check id) of every finding the collector's rules draw from the observations."""
    return {
        (draft.subject or observation.subject, draft.check_id)
        for observation in observations
        if observation.status is not SubjectStatus.ERROR
        for draft in collector.judge(observation)
    }
