"""What scoring reads from the store: findings and assets of organisations, in bulk.

The adapter from the store's rows to `scoring`'s input dataclasses (the severity and
category always the registry's), and whether anything of an organisation was ever
checked. Below `store`, `history`, `current` and the read model, which all use it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskiturva.checks import Check, load_registry
from riskiturva.models import Asset, Finding, Organisation, SubjectState
from riskiturva.scoring import CRITICALITY_HALVES, FindingStatus, ScoringAsset, ScoringFinding

_SCORED_STATUSES = [str(s) for s in FindingStatus]
_DECISIONS = (FindingStatus.ACCEPTED, FindingStatus.FALSE_POSITIVE)


def scoring_inputs(
    session: Session,
    organisation: Organisation,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check] | None = None,
) -> tuple[list[ScoringFinding], list[ScoringAsset]]:
    """The organisation's open and decided findings, and its active assets, for scoring."""
    return scoring_inputs_of(session, [organisation.id], now=now, registry=registry)[
        organisation.id
    ]


def scoring_inputs_of(
    session: Session,
    organisation_ids: Collection[int],
    *,
    now: dt.datetime,
    registry: Mapping[str, Check] | None = None,
) -> dict[int, tuple[list[ScoringFinding], list[ScoringAsset]]]:
    """Scoring inputs of several organisations in two queries, by organisation id.

    The severity and category are the registry's (the one table), or the stored ones for a
    check no longer registered. A decision whose expiry has passed counts as open even
    before `store.expire_decisions` has run.
    """
    registry = load_registry() if registry is None else registry
    ids = list(organisation_ids)
    findings: dict[int, list[ScoringFinding]] = {i: [] for i in ids}
    rows = session.execute(
        select(
            Finding.organisation_id,
            Finding.check_id,
            Finding.category,
            Finding.severity,
            Finding.subject,
            Finding.asset,
            Finding.first_seen,
            Finding.status,
            Finding.decision_reason,
            Finding.decision_until,
        ).where(Finding.organisation_id.in_(ids), Finding.status.in_(_SCORED_STATUSES))
    )
    registered = {c.id: (str(c.category), str(c.severity)) for c in registry.values()}
    for org_id, check_id, category, severity, subject, asset, first, status, reason, until in rows:
        category, severity = registered.get(check_id, (category, severity))
        if status in _DECISIONS and until is not None and until <= now:
            status = FindingStatus.OPEN
        findings[org_id].append(
            ScoringFinding(
                check_id=check_id,
                category=category,
                severity=severity,
                subject=subject,
                asset=asset,
                first_seen=first.date(),
                status=status,
                decision_reason=reason,
                decision_until=until.date() if until else None,
            )
        )
    assets: dict[int, list[tuple[str, str, list[str] | None]]] = {i: [] for i in ids}
    for org_id, value, criticality, tags in session.execute(
        select(Asset.organisation_id, Asset.value, Asset.criticality, Asset.tags).where(
            Asset.organisation_id.in_(ids), Asset.active
        )
    ):
        assets[org_id].append((value, criticality, tags))
    return {i: (findings[i], _merged_assets(assets[i])) for i in ids}


def _merged_assets(rows: Iterable[tuple[str, str, list[str] | None]]) -> list[ScoringAsset]:
    """One scoring asset per value (a domain may be both `domain` and `mail_domain`):
    the highest criticality and every tag. Rows are (value, criticality, tags)."""
    merged: dict[str, ScoringAsset] = {}
    for value, criticality, tags in rows:
        known = merged.get(value)
        every_tag = frozenset(tags or ())
        if known is not None:
            if CRITICALITY_HALVES.get(known.criticality, 0) > CRITICALITY_HALVES.get(
                criticality, 0
            ):
                criticality = known.criticality
            every_tag |= known.tags
        merged[value] = ScoringAsset(value, criticality, every_tag)
    return [merged[v] for v in sorted(merged)]


def has_been_checked(session: Session, organisation: Organisation) -> bool:
    """Whether anything of the organisation has been checked: a subject scanned completely,
    or a finding seen (only a scan that reached the subject can see one)."""
    return organisation.id in checked_organisations(session, [organisation.id])


def checked_organisations(session: Session, organisation_ids: Collection[int]) -> set[int]:
    """The ids among `organisation_ids` of organisations that have been checked."""
    ids = list(organisation_ids)
    checked = set(
        session.scalars(
            select(SubjectState.organisation_id)
            .where(SubjectState.organisation_id.in_(ids), SubjectState.last_success_at.is_not(None))
            .distinct()
        )
    )
    rest = [i for i in ids if i not in checked]
    if rest:
        checked |= set(
            session.scalars(
                select(Finding.organisation_id).where(Finding.organisation_id.in_(rest)).distinct()
            )
        )
    return checked
