"""What a manager reads first: who fixes the top actions and what they change, which
obligations the findings touch, and how the organisation compares with its peers.

The words live in the faces; this says the facts, for one organisation at one moment,
from the same state the rest of its report uses (`views.live.scores_at`, replayed for a
past month). The configuration decides the owners (`riskiturva.owners`), the requirement
profiles that apply (`riskiturva.requirements`) and who takes part in peer figures
(`riskiturva.peers`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskiturva.checks import Check
from riskiturva.collector import collector_classes
from riskiturva.config import Config, Organisation, Partner
from riskiturva.models import RunStatus, ScanRun
from riskiturva.owners import Responsible, responsible_for
from riskiturva.peers import MemberScore, PeerComparison, compare
from riskiturva.requirements import (
    Evidence,
    Profile,
    RequirementResult,
    RequirementStatus,
    evaluate,
    host_name_of,
    load_profiles,
)
from riskiturva.scoring import (
    Action,
    FindingStatus,
    ScoringFinding,
    priorities,
    score_organisation,
)
from riskiturva.views.clock import local_day
from riskiturva.views.live import ScoredState, scores_at
from riskiturva.views.organisations import organisation as visible_organisation
from riskiturva.views.organisations import organisations

TOP_ACTIONS = 3


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One of the first actions: who does it, and where the grade stands once it and the
    actions before it are done."""

    action: Action
    owners: tuple[Responsible, ...]  # one per distinct owner of the places it is open in
    score_after: float
    grade_after: str


@dataclass(frozen=True, slots=True)
class ProfileResult:
    profile: Profile
    results: tuple[RequirementResult, ...]

    @property
    def applicable(self) -> bool:
        return any(r.status is not RequirementStatus.NOT_APPLICABLE for r in self.results)


class NoPeers(StrEnum):
    """Why a report has no peer comparison."""

    NO_PARTNER = "no_partner"  # no partner runs the organisation
    OPTED_OUT = "opted_out"  # peer_comparison = false
    TOO_FEW = "too_few"  # fewer than peers.MIN_PEERS organisations take part


@dataclass(frozen=True)
class Management:
    plan: tuple[PlannedAction, ...]
    obligations: tuple[ProfileResult, ...]  # the profiles the configuration names
    peers: PeerComparison | None
    no_peers: NoPeers | None


def management(
    session: Session,
    state: ScoredState,
    actions: Sequence[Action],
    config: Config | None,
    *,
    since: dt.datetime,
    at: dt.datetime,
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> Management:
    """The management facts of one organisation's state at `at`; obligations count the
    collectors that completed a scan of it from `since` to `at` as having checked it."""
    slug = state.live.organisation.slug
    peers, no_peers = peer_comparison(session, state, config, at=at, now=now, registry=registry)
    return Management(
        plan=plan(state, actions, config, registry=registry),
        obligations=obligations(
            state, config, completed_collectors(session, slug, since=since, until=at)
        ),
        peers=peers,
        no_peers=no_peers,
    )


def organisation_management(
    session: Session,
    visible: Collection[str],
    slug: str,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check],
    config: Config | None,
    period: dt.timedelta = dt.timedelta(days=31),
) -> Management:
    """The visible organisation's management facts now (the dashboard's view); a collector
    counts as having checked it when it completed a scan of it within `period`."""
    organisation = visible_organisation(session, visible, slug)
    state = scores_at(session, [organisation], at=now, now=now, registry=registry)[slug]
    actions = priorities(state.score, registry=registry, today=local_day(now))
    return management(
        session,
        state,
        actions,
        config,
        since=now - period,
        at=now,
        now=now,
        registry=registry,
    )


def completed_collectors(
    session: Session, slug: str, *, since: dt.datetime, until: dt.datetime
) -> tuple[str, ...]:
    """Collectors with a completed (ok or partial) scan run covering `slug` in the period."""
    rows = session.execute(
        select(ScanRun.collector, ScanRun.organisations).where(
            ScanRun.started_at >= since,
            ScanRun.started_at < until,
            ScanRun.status.in_([RunStatus.OK, RunStatus.PARTIAL]),
        )
    )
    return tuple(sorted({c for c, slugs in rows if slug in (slugs or [])}))


@cache
def collector_of_check() -> Mapping[str, str]:
    """Check id → the collector whose rules raise it."""
    return {c: name for name, cls in collector_classes().items() for c in cls.check_ids}


def plan(
    state: ScoredState,
    actions: Sequence[Action],
    config: Config | None,
    *,
    registry: Mapping[str, Check],
    count: int = TOP_ACTIONS,
) -> tuple[PlannedAction, ...]:
    """The first `count` actions with their owners and the grade after each (cumulative)."""
    slug = state.live.organisation.slug
    org_config = _organisation_config(config, slug)
    partner = _partner_of(config, slug)
    remaining: list[ScoringFinding] = list(state.findings)
    planned = []
    for action in actions[:count]:
        remaining = [
            f
            for f in remaining
            if not (f.check_id == action.check_id and f.status == FindingStatus.OPEN)
        ]
        after = score_organisation(slug, remaining, state.assets)
        check = registry.get(action.check_id)
        owners: list[Responsible] = []
        for asset in action.assets:
            if check is None:
                break
            if org_config is None:
                owner = Responsible(check.owner, None)
            else:
                owner = responsible_for(check, org_config, partner, asset)
            if owner not in owners:
                owners.append(owner)
        planned.append(PlannedAction(action, tuple(owners), after.score, str(after.grade)))
    return tuple(planned)


def obligations(
    state: ScoredState,
    config: Config | None,
    checked_collectors: Collection[str],
) -> tuple[ProfileResult, ...]:
    """Each requirement profile that applies to the organisation, evaluated on its state."""
    org_config = _organisation_config(config, state.live.organisation.slug)
    if org_config is None:
        return ()
    evidence = [
        Evidence(f.check_id, host_name_of(f.asset), f.status == FindingStatus.ACCEPTED)
        for f in state.findings
        if f.status != FindingStatus.FALSE_POSITIVE
    ]
    names = [a.host_name for a in org_config.assets]
    profiles = load_profiles()
    return tuple(
        ProfileResult(
            profiles[p],
            evaluate(profiles[p], evidence, checked_collectors, collector_of_check(), names),
        )
        for p in org_config.requirements
    )


def peer_comparison(
    session: Session,
    own: ScoredState,
    config: Config | None,
    *,
    at: dt.datetime,
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> tuple[PeerComparison | None, NoPeers | None]:
    """The organisation against the participating organisations of its partner, at `at`.

    Peers are scored whether or not the reader may see them: only the group's quartiles
    and median are shown (`riskiturva.peers`). Organisations never checked take no part
    (an unchecked organisation would score 100)."""
    slug = own.live.organisation.slug
    partner = _partner_of(config, slug)
    if config is None or partner is None:
        return None, NoPeers.NO_PARTNER
    taking_part = {
        o.slug
        for o in config.organisations
        if o.peer_comparison and o.slug in partner.organisations
    }
    if slug not in taking_part:
        return None, NoPeers.OPTED_OUT
    refs = list(organisations(session, taking_part - {slug}))
    states = scores_at(session, refs, at=at, now=now, registry=registry)
    states[slug] = own
    members = {
        s: MemberScore(state.score.score, {c: v.score for c, v in state.score.categories.items()})
        for s, state in states.items()
        if state.live.checked
    }
    comparison = compare(slug, members, partner=partner.slug, partner_name=partner.name)
    return comparison, None if comparison is not None else NoPeers.TOO_FEW


def _organisation_config(config: Config | None, slug: str) -> Organisation | None:
    if config is None:
        return None
    return next((o for o in config.organisations if o.slug == slug), None)


def _partner_of(config: Config | None, slug: str) -> Partner | None:
    if config is None:
        return None
    return next((p for p in config.partners if slug in p.organisations), None)
