"""The portfolio: every visible organisation in one row, live.

Score, grade, category scores, open and overdue counts and the exceptions in force are
live at `as_of` (the overview shows the same numbers at the same moment); the sparkline
and the 30-day change come from the daily snapshots, each with its day, and the
sparkline ends at the live score.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from riskiturva.checks import Check
from riskiturva.scoring import Grade
from riskiturva.views.clock import local_day
from riskiturva.views.exceptions import registers
from riskiturva.views.live import live_summaries
from riskiturva.views.organisations import OrganisationRef, organisations
from riskiturva.views.scans import last_successes
from riskiturva.views.trend import CHANGE_DAYS, ScoreChange, baselines, sampled, score_change

SPARK_DAYS = 90
SPARK_STEP = 5  # one sparkline point every 5 days: 19 points, the last one live


@dataclass(frozen=True, slots=True)
class PortfolioRow:
    organisation: OrganisationRef
    checked: bool  # something was scanned successfully; if not, the score says nothing yet
    score: float
    grade: Grade
    categories: Mapping[str, float]
    open_counts: Mapping[str, int]  # open findings by severity (decisions excluded)
    overdue: int  # open finding groups past their due date
    exceptions: Mapping[str, int]  # accepted risks and false positives in force, by severity
    expiring: int  # of those, how many end within the warning period
    change: ScoreChange  # since CHANGE_DAYS ago
    trend: tuple[float, ...]  # sampled snapshot scores, oldest first, then the live score
    last_success: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Portfolio:
    as_of: dt.datetime
    rows: tuple[PortfolioRow, ...]  # lowest score first; organisations not checked last


def portfolio(
    session: Session,
    visible: Collection[str],
    *,
    now: dt.datetime,
    registry: Mapping[str, Check],
    partner: str | None = None,
) -> Portfolio:
    """One row per visible organisation (or per visible organisation of `partner`)."""
    refs = organisations(session, visible, partner=partner)
    today = local_day(now)
    slugs = {o.id: o.slug for o in refs}
    scores = live_summaries(session, refs, now=now, registry=registry)
    exceptions = registers(session, refs, now=now, registry=registry)
    start = today - dt.timedelta(days=SPARK_DAYS)
    days = [start + dt.timedelta(days=d) for d in range(0, SPARK_DAYS, SPARK_STEP)]
    samples = sampled(session, slugs, days)
    base = baselines(session, slugs, today=today, days=CHANGE_DAYS)
    successes = last_successes(session, slugs)
    rows = []
    for ref in refs:
        live = scores[ref.slug]
        score = live.summary
        register = exceptions[ref.slug]
        history = samples[ref.slug]
        rows.append(
            PortfolioRow(
                organisation=ref,
                checked=live.checked,
                score=score.score,
                grade=score.grade,
                categories=score.category_scores,
                open_counts=dict(score.open_counts),
                overdue=score.overdue(today),
                exceptions=register.by_severity(),
                expiring=len(register.expiring),
                change=score_change(score, base.get(ref.slug)),
                trend=(*(history[d] for d in days if d in history), score.score),
                last_success=successes.get(ref.id),
            )
        )
    rows.sort(key=lambda r: (not r.checked, r.score, r.organisation.slug))
    return Portfolio(now, tuple(rows))
