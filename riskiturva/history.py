"""Scores from the store: one organisation scored now, and the daily snapshots.

`score_stored` scores an organisation from its findings (`inputs`); `take_snapshots`
stores one `ScoreSnapshot` per organisation and day (an upsert, so the scheduler may call
it after every scan). Current scores are `current`'s; reading trends and changes is the
read model's (`riskiturva.views`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.checks import Check, load_registry
from riskiturva.config import Config
from riskiturva.dberrors import write_with_retry
from riskiturva.inputs import scoring_inputs
from riskiturva.models import Organisation, ScoreSnapshot
from riskiturva.scoring import OrganisationScore, score_organisation
from riskiturva.store import upsert


def score_stored(
    session: Session,
    organisation: Organisation,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check] | None = None,
) -> OrganisationScore:
    """Score one organisation from the store."""
    findings, assets = scoring_inputs(session, organisation, now=now, registry=registry)
    return score_organisation(organisation.slug, findings, assets)


# --- daily snapshots -------------------------------------------------------------------


def snapshot_values(score: OrganisationScore) -> dict[str, Any]:
    """The columns of a `ScoreSnapshot` for one score."""
    return {
        "score": score.score,
        "grade": str(score.grade),
        "scoring_version": score.version,
        "category_scores": {c: s.score for c, s in sorted(score.categories.items())},
        "open_counts": dict(score.open_counts),
    }


def store_snapshot(
    session: Session, organisation: Organisation, day: dt.date, score: OrganisationScore
) -> None:
    """Insert or replace the organisation's snapshot of `day` (one row per day): an upsert,
    so scans ending at the same moment in several processes all succeed."""
    values = snapshot_values(score)
    upsert(
        session,
        ScoreSnapshot,
        [{"organisation_id": organisation.id, "day": day, **values}],
        key=["organisation_id", "day"],
        update_columns=list(values),
    )


def take_snapshots(
    sessions: sessionmaker[Session],
    config: Config,
    today: dt.date,
    *,
    now: dt.datetime | None = None,
    organisations: Collection[str] | None = None,
) -> dict[str, OrganisationScore]:
    """Score the configured organisations that are in the store (or only `organisations`,
    e.g. those just scanned) and keep today's snapshot of each.

    Idempotent per organisation and day: a second call the same day replaces the row.
    `now` decides which people's decisions have expired (default: the current time).
    """
    now = now or dt.datetime.now(dt.UTC)
    registry = load_registry()
    slugs = [
        o.slug for o in config.organisations if organisations is None or o.slug in organisations
    ]
    scores: dict[str, OrganisationScore] = {}

    def write(session: Session) -> None:
        scores.clear()
        for organisation in session.scalars(
            select(Organisation).where(Organisation.slug.in_(slugs)).order_by(Organisation.slug)
        ):
            score = score_stored(session, organisation, now=now, registry=registry)
            store_snapshot(session, organisation, today, score)
            scores[organisation.slug] = score

    write_with_retry(
        sessions,
        write,
        what="store today's score snapshots",
        budget_s=config.settings.write_retry_seconds,
    )
    return scores
