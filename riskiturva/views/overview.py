"""One organisation: the overview, and the explanation of its score.

`overview` is what the organisation page and `riskiturva score` show: the live score and
answer, the categories, the priorities, the change over 30 days, what changed in the last
30 days, the exceptions register, scan health and the manager's line about software.
`explanation` is the scoring page: the typed `ScoreDocument` with the plan to reach a grade.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from riskiturva.checks import Check
from riskiturva.scoring import Action, Grade, OrganisationScore, ScoreDocument, answer, priorities
from riskiturva.scoring import score_document as typed_document
from riskiturva.views.changes import Changes, changes
from riskiturva.views.clock import local_day
from riskiturva.views.exceptions import ExceptionsRegister, registers
from riskiturva.views.live import LiveScore, live_score
from riskiturva.views.organisations import OrganisationRef
from riskiturva.views.organisations import organisation as visible_organisation
from riskiturva.views.scans import RunView, runs
from riskiturva.views.software import PatchStatus, patch_status
from riskiturva.views.trend import (
    CHANGE_DAYS,
    ScoreChange,
    SnapshotPoint,
    baselines,
    score_change,
    score_history,
)

TREND_DAYS = 90
RUNS_SHOWN = 8


@dataclass(frozen=True)
class Overview:
    organisation: OrganisationRef
    live: LiveScore
    actions: tuple[Action, ...]  # every priority, best first
    change: ScoreChange  # live score against the snapshot of CHANGE_DAYS ago
    trend: tuple[SnapshotPoint, ...]  # daily snapshots of the last TREND_DAYS
    changes: Changes  # in the last CHANGE_DAYS
    exceptions: ExceptionsRegister
    runs: tuple[RunView, ...]  # the latest, newest first
    patch: PatchStatus  # the manager's line about known-exploited and end-of-life software

    @property
    def as_of(self) -> dt.datetime:
        return self.live.as_of

    @property
    def score(self) -> OrganisationScore:
        return self.live.score

    def answer(self, *, registry: Mapping[str, Check], language: str) -> str:
        return answer(
            self.score,
            self.actions,
            registry=registry,
            language=language,
            checked=self.live.checked,
        )

    def document(
        self,
        *,
        registry: Mapping[str, Check],
        language: str,
        target: Grade | str = Grade.B,
        top: int | None = None,
    ) -> ScoreDocument:
        return typed_document(
            self.score,
            registry=registry,
            today=local_day(self.as_of),
            language=language,
            target=target,
            top=top,
            checked=self.live.checked,
        )

    def to_json(
        self,
        *,
        registry: Mapping[str, Check],
        language: str,
        target: Grade | str = Grade.B,
        top: int | None = None,
    ) -> dict[str, Any]:
        """What `riskiturva score --format json` prints for the organisation."""
        document = self.document(registry=registry, language=language, target=target, top=top)
        change = self.change
        return {
            **document.to_json(),
            "name": self.organisation.name(language),
            "as_of": self.as_of.isoformat(),
            "change_30d": (
                {
                    "delta": change.delta,
                    "since": change.since.isoformat() if change.since else None,
                    "comparable": change.comparable,
                }
                if change.baseline
                else None
            ),
            "changes": self.changes.to_json(),
            "exceptions": self.exceptions.to_json(),
        }


def overview(
    session: Session,
    visible: Collection[str],
    slug: str,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> Overview:
    """The visible organisation's overview at `now` (`NotVisible` otherwise)."""
    org = visible_organisation(session, visible, slug)
    today = local_day(now)
    live = live_score(session, org, now=now, registry=registry)
    history = score_history(
        session, [slug], since=today - dt.timedelta(days=TREND_DAYS), until=today
    ).get(slug, [])
    baseline = baselines(session, {org.id: slug}, today=today).get(slug)
    return Overview(
        organisation=org,
        live=live,
        actions=tuple(priorities(live.score, registry=registry, today=today)),
        change=score_change(live.score, baseline),
        trend=tuple(history),
        changes=changes(
            session,
            visible,
            slug,
            since=now - dt.timedelta(days=CHANGE_DAYS),
            until=now,
            registry=registry,
        ),
        exceptions=registers(session, [org], now=now, registry=registry)[slug],
        runs=tuple(runs(session, visible, slug, limit=RUNS_SHOWN)),
        patch=patch_status(session, org, today=today, registry=registry),
    )


@dataclass(frozen=True, slots=True)
class ScoreExplanation:
    organisation: OrganisationRef
    as_of: dt.datetime
    document: ScoreDocument


def explanation(
    session: Session,
    visible: Collection[str],
    slug: str,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check],
    language: str,
    target: Grade | str = Grade.B,
) -> ScoreExplanation:
    """The visible organisation's score explained line by line, with the plan to reach
    `target`, in `language`."""
    org = visible_organisation(session, visible, slug)
    live = live_score(session, org, now=now, registry=registry)
    document = typed_document(
        live.score,
        registry=registry,
        today=local_day(now),
        language=language,
        target=target,
        checked=live.checked,
    )
    return ScoreExplanation(org, now, document)
