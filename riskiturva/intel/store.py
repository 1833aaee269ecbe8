"""Writing parsed feeds into the store, one source per transaction, and reading its state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from riskiturva.intel.feeds import EolProduct, EpssScores, KevCatalog, NvdCve, NvdPage, Source
from riskiturva.intel.matching import parse_cpe
from riskiturva.intel.models import (
    IntelCpeMatch,
    IntelCve,
    IntelEolProduct,
    IntelEolRelease,
    IntelEpss,
    IntelKev,
    IntelSource,
)

_CHUNK = 5000  # rows per executemany


@dataclass(frozen=True)
class SourceState:
    source: Source
    data_as_of: dt.datetime
    updated_at: dt.datetime
    origin: str
    records: int
    detail: Mapping[str, Any] = field(default_factory=dict)

    def age_days(self, now: dt.datetime) -> float:
        return (now - self.data_as_of).total_seconds() / 86400


def source_states(session: Session) -> dict[Source, SourceState]:
    return {
        Source(row.name): SourceState(
            Source(row.name), row.data_as_of, row.updated_at, row.origin, row.records, row.detail
        )
        for row in session.scalars(select(IntelSource))
    }


def _mark(
    session: Session,
    source: Source,
    *,
    as_of: dt.datetime,
    now: dt.datetime,
    origin: str,
    records: int,
    detail: Mapping[str, Any],
) -> None:
    row = session.get(IntelSource, str(source)) or IntelSource(name=str(source))
    row.data_as_of, row.updated_at, row.origin = as_of, now, origin
    row.records, row.detail = records, dict(detail)
    session.add(row)


def _insert(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """Core executemany on the table: no ORM objects, no primary keys fetched back."""
    table = model.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), _CHUNK):
        session.execute(insert(table), rows[start : start + _CHUNK])


def save_kev(session: Session, catalog: KevCatalog, *, origin: str, now: dt.datetime) -> int:
    session.execute(delete(IntelKev))
    _insert(
        session,
        IntelKev,
        [
            {
                "cve_id": e.cve_id,
                "vendor_project": e.vendor_project[:200],
                "product": e.product[:200],
                "name": e.name,
                "date_added": e.date_added,
                "due_date": e.due_date,
                "ransomware": e.ransomware,
                "required_action": e.required_action,
            }
            for e in {e.cve_id: e for e in catalog.entries}.values()
        ],
    )
    _mark(
        session,
        Source.KEV,
        as_of=catalog.released,
        now=now,
        origin=origin,
        records=len(catalog.entries),
        detail={"catalogVersion": catalog.version},
    )
    return len(catalog.entries)


class NvdWriter:
    """Writes NVD pages as they arrive: a full replacement or changed CVEs only."""

    def __init__(self, session: Session, *, replace: bool):
        self.session = session
        self.records = 0
        self.oldest_timestamp: dt.datetime | None = None
        self.replace = replace
        if replace:
            session.execute(delete(IntelCpeMatch))
            session.execute(delete(IntelCve))

    def add(self, page: NvdPage) -> None:
        cves = list({c.cve_id: c for c in page.cves}.values())
        ids = [c.cve_id for c in cves]
        if not self.replace:
            for start in range(0, len(ids), 900):
                chunk = ids[start : start + 900]
                self.session.execute(delete(IntelCpeMatch).where(IntelCpeMatch.cve_id.in_(chunk)))
                self.session.execute(delete(IntelCve).where(IntelCve.cve_id.in_(chunk)))
        _insert(self.session, IntelCve, [_cve_row(c) for c in cves])
        _insert(self.session, IntelCpeMatch, [row for c in cves for row in _criteria_rows(c)])
        self.records += len(cves)
        if self.oldest_timestamp is None or page.timestamp < self.oldest_timestamp:
            self.oldest_timestamp = page.timestamp

    def finish(self, *, as_of: dt.datetime, now: dt.datetime, origin: str) -> int:
        total = self.session.query(IntelCve).count()
        _mark(
            self.session,
            Source.NVD,
            as_of=as_of,
            now=now,
            origin=origin,
            records=total,
            detail={"changed": self.records, "full": self.replace},
        )
        return self.records


def _cve_row(cve: NvdCve) -> dict[str, Any]:
    return {
        "cve_id": cve.cve_id,
        "published": cve.published,
        "last_modified": cve.last_modified,
        "status": cve.status[:40],
        "cvss_version": cve.cvss.version if cve.cvss else None,
        "cvss_score": cve.cvss.score if cve.cvss else None,
        "cvss_severity": cve.cvss.severity[:10] if cve.cvss else None,
        "cvss_vector": cve.cvss.vector[:200] if cve.cvss else None,
    }


def _criteria_rows(cve: NvdCve) -> Iterable[dict[str, Any]]:
    for criterion in cve.criteria:
        name = parse_cpe(criterion.criteria)
        yield {
            "cve_id": cve.cve_id,
            "vendor": name.vendor[:120],
            "product": name.product[:200],
            "criteria": criterion.criteria,
            "version": criterion.version[:100],
            "start_including": criterion.start_including,
            "start_excluding": criterion.start_excluding,
            "end_including": criterion.end_including,
            "end_excluding": criterion.end_excluding,
        }


def save_epss(session: Session, scores: EpssScores, *, origin: str, now: dt.datetime) -> int:
    session.execute(delete(IntelEpss))
    unique = {cve: (epss, percentile) for cve, epss, percentile in scores.scores}
    _insert(
        session,
        IntelEpss,
        [{"cve_id": c, "epss": e, "percentile": p} for c, (e, p) in unique.items()],
    )
    _mark(
        session,
        Source.EPSS,
        as_of=scores.score_date,
        now=now,
        origin=origin,
        records=len(unique),
        detail={"model_version": scores.model_version},
    )
    return len(unique)


def save_eol(
    session: Session,
    products: Iterable[EolProduct],
    *,
    as_of: dt.datetime,
    origin: str,
    now: dt.datetime,
) -> int:
    session.execute(delete(IntelEolRelease))
    session.execute(delete(IntelEolProduct))
    unique = {p.name: p for p in products}
    for product in unique.values():
        session.add(
            IntelEolProduct(
                name=product.name,
                label=product.label,
                last_modified=product.last_modified,
                cpes=list(product.cpes),
            )
        )
        _insert(
            session,
            IntelEolRelease,
            [
                {
                    "product": product.name,
                    "name": r.name,
                    "release_date": r.release_date,
                    "is_eol": r.is_eol,
                    "eol_from": r.eol_from,
                    "is_maintained": r.is_maintained,
                    "eoes_from": r.eoes_from,
                    "is_eoes": r.is_eoes,
                    "latest": r.latest,
                    "is_lts": r.is_lts,
                }
                for r in product.releases
            ],
        )
    _mark(
        session,
        Source.EOL,
        as_of=as_of,
        now=now,
        origin=origin,
        records=len(unique),
        detail={"products": sorted(unique)},
    )
    return len(unique)
