"""Live scores: organisations scored from their findings at one moment, in bulk.

Every score a page, a report or the CLI shows comes from here, so a person's decision
or a scan shows everywhere at once; snapshots are for trends only. `live_scores` scores
from the findings; `live_summaries` (the portfolio's numbers) takes each organisation's
current score kept by the store where it still holds at that moment, and scores the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from riskiturva.checks import Check
from riskiturva.current import ScoreSummary, current_summaries
from riskiturva.inputs import checked_organisations, scoring_inputs_of
from riskiturva.scoring import OrganisationScore, ScoringAsset, ScoringFinding, score_organisation
from riskiturva.views.asof import Standing, checked_before, scoring_inputs_at
from riskiturva.views.organisations import OrganisationRef


@dataclass(frozen=True, slots=True)
class LiveScore:
    organisation: OrganisationRef
    score: OrganisationScore
    checked: bool  # something was scanned successfully: "no findings" then means fine
    as_of: dt.datetime


def live_scores(
    session: Session,
    organisations: Sequence[OrganisationRef],
    *,
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> dict[str, LiveScore]:
    """Each organisation's score at `now`, by slug (a handful of queries for all)."""
    ids = [o.id for o in organisations]
    inputs = scoring_inputs_of(session, ids, now=now, registry=registry)
    checked = checked_organisations(session, ids)
    return {
        o.slug: LiveScore(o, score_organisation(o.slug, *inputs[o.id]), o.id in checked, now)
        for o in organisations
    }


def live_score(
    session: Session,
    organisation: OrganisationRef,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> LiveScore:
    return live_scores(session, [organisation], now=now, registry=registry)[organisation.slug]


@dataclass(frozen=True, slots=True)
class ScoredState:
    """An organisation's score at a moment, with what it was computed from."""

    live: LiveScore
    findings: tuple[ScoringFinding, ...]  # open and decided, as scoring saw them
    assets: tuple[ScoringAsset, ...]
    standings: tuple[Standing, ...] | None  # replayed from events; None: the stored state

    @property
    def score(self) -> OrganisationScore:
        return self.live.score


def scores_at(
    session: Session,
    organisations: Sequence[OrganisationRef],
    *,
    at: dt.datetime,
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> dict[str, ScoredState]:
    """Each organisation's score as it stood at `at`, by slug: from the stored findings
    when `at` is `now` or later, else replayed from the findings' events (`views.asof`),
    so a past month's report says what was known at its end."""
    ids = {o.id: o.slug for o in organisations}
    if at >= now:
        inputs = scoring_inputs_of(session, ids, now=at, registry=registry)
        checked = checked_organisations(session, ids)
        standings: dict[int, list[Standing]] | None = None
    else:
        standings, inputs = scoring_inputs_at(session, ids, at, registry=registry)
        checked = checked_before(session, ids, at, standings)
    result = {}
    for o in organisations:
        findings, assets = inputs[o.id]
        score = score_organisation(o.slug, findings, assets)
        result[o.slug] = ScoredState(
            live=LiveScore(o, score, o.id in checked, at),
            findings=tuple(findings),
            assets=tuple(assets),
            standings=None if standings is None else tuple(standings[o.id]),
        )
    return result


@dataclass(frozen=True, slots=True)
class LiveSummary:
    organisation: OrganisationRef
    summary: ScoreSummary
    checked: bool
    as_of: dt.datetime


def live_summaries(
    session: Session,
    organisations: Sequence[OrganisationRef],
    *,
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> dict[str, LiveSummary]:
    """Each organisation's score summary at `now`, by slug: the same numbers as
    `live_scores`, from the kept current scores where they hold."""
    ids = [o.id for o in organisations]
    kept = current_summaries(session, ids, now=now, registry=registry)
    missing = [o for o in organisations if o.id not in kept]
    inputs = scoring_inputs_of(session, [o.id for o in missing], now=now, registry=registry)
    for o in missing:
        kept[o.id] = ScoreSummary.of(score_organisation(o.slug, *inputs[o.id]), registry)
    checked = checked_organisations(session, ids)
    return {o.slug: LiveSummary(o, kept[o.id], o.id in checked, now) for o in organisations}
