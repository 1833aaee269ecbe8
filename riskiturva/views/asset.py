"""One asset as its organisation's reader sees it: the inventory row with the latest scan
per collector, its live score and its findings, worst first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from riskiturva.checks import Check
from riskiturva.scoring import ScopeScore
from riskiturva.store import NotVisible
from riskiturva.views.findings import FindingRow, findings
from riskiturva.views.live import live_score
from riskiturva.views.organisations import OrganisationRef, organisation
from riskiturva.views.scans import AssetView, assets


@dataclass(frozen=True, slots=True)
class AssetDetail:
    organisation: OrganisationRef
    asset: AssetView
    score: ScopeScore | None  # None: nothing scored on it (never scanned, or not active)
    findings: tuple[FindingRow, ...]  # every status, worst first


def asset_detail(
    session: Session,
    visible: Collection[str],
    slug: str,
    asset_id: int,
    *,
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> AssetDetail:
    """The asset `asset_id` of the visible organisation `slug`; `NotVisible` when either
    is absent or not the caller's (an id of another organisation's asset included)."""
    org = organisation(session, visible, slug)
    found = assets(session, visible, slug, asset_id=asset_id)
    if not found:
        raise NotVisible(asset_id)
    asset = found[0]
    score = live_score(session, org, now=now, registry=registry).score
    rows = findings(session, visible, registry=registry, organisations=[slug], assets=[asset.value])
    return AssetDetail(org, asset, score.assets.get(asset.value), tuple(rows))
