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
from riskiturva.scoring import OrganisationScore, score_organisation
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
