"""The intelligence the rules read through the scan context: read-only, dated, per scan.

An `IntelSnapshot` is made for one scan (`load_snapshot`). It knows how old each source is
and refuses, per source, to answer when the data is missing or older than
`settings.intel.max_age_days`; the rules then record "vulnerability data out of date"
instead of verdicts. Lookups read the store lazily (only the products a scan sees) and keep
what they read for the rest of the scan; nothing survives the snapshot.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.config import IntelSettings
from riskiturva.intel.feeds import EolRelease, KevEntry, Source
from riskiturva.intel.matching import CompiledCriterion, Criterion, version_key
from riskiturva.intel.models import (
    IntelCpeMatch,
    IntelCve,
    IntelEolProduct,
    IntelEolRelease,
    IntelEpss,
    IntelKev,
)
from riskiturva.intel.software import Software, equivalent_keys
from riskiturva.intel.store import SourceState, source_states


@dataclass(frozen=True)
class CveMatch:
    """A CVE whose NVD match criteria cover the observed version."""

    cve_id: str
    criterion: Criterion  # the first of its criteria that covers the version
    cvss_score: float | None
    cvss_severity: str | None

    @property
    def criteria(self) -> str:
        """The CPE match string."""
        return self.criterion.criteria

    @property
    def range(self) -> str:
        """The affected versions, `>= 8.5p1, < 9.8p1`."""
        return self.criterion.range_text


@dataclass
class _ProductCriteria:
    """One product's criteria: exact versions by their key, ranges in a list."""

    exact: dict[object, list[CompiledCriterion]]
    ranges: list[CompiledCriterion]

    def add(self, compiled: CompiledCriterion) -> None:
        if compiled.none:
            return
        if compiled.exact is not None and not compiled.has_bounds:
            self.exact.setdefault(compiled.exact, []).append(compiled)
        else:
            self.ranges.append(compiled)


@dataclass(frozen=True)
class Lifecycle:
    """The endoflife.date release cycle the software belongs to."""

    product: str  # endoflife.date id
    label: str
    release: EolRelease
    newer_majors: tuple[str, ...]  # supported cycles of a higher major version
    inferred_from: str | None = None  # a newer cycle whose end dates this unlisted one


@dataclass(frozen=True)
class Freshness:
    """How each source stands for this scan: its date, or why it cannot be used."""

    as_of: Mapping[Source, dt.datetime]
    problems: Mapping[Source, str]  # source → "missing" / "out of date: …"
    max_age_days: int

    def usable(self, sources: Iterable[Source]) -> bool:
        return not any(s in self.problems for s in sources)


class IntelSnapshot:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        now: dt.datetime,
        max_age_days: int,
        epss_threshold: float,
    ):
        self._sessions = sessions
        self.now = now
        self.today = now.date()
        self.epss_threshold = epss_threshold
        with sessions() as session:
            states = source_states(session)
        self.states: Mapping[Source, SourceState] = states
        self.freshness = _freshness(states, now, max_age_days)
        self._lock = threading.Lock()
        self._criteria: dict[str, _ProductCriteria] = {}
        self._matches: dict[tuple[str, str], list[CveMatch]] = {}
        self._epss: dict[str, float] | None = None
        self._cves: dict[str, tuple[float | None, str | None]] = {}
        self._kev: dict[str, KevEntry] | None = None
        self._eol: dict[str, tuple[str, tuple[str, ...], tuple[EolRelease, ...]]] | None = None

    # --- NVD -----------------------------------------------------------------------------

    def vulnerabilities(self, software: Software) -> list[CveMatch]:
        """CVEs whose vulnerable criteria cover the software's exact version."""
        if not software.version:
            return []
        seen = (software.key, software.version)
        if seen in self._matches:  # hosts run the same few versions
            return self._matches[seen]
        observed = version_key(software.version)
        product = self._criteria_for(software.key)
        found: dict[str, CveMatch] = {}
        # Exact versions by dictionary; only ranges are compared one by one.
        exact = [c.criterion for c in product.exact.get(observed, ())]
        ranged = [c.criterion for c in product.ranges if c.matches(observed)]
        for criterion in exact + ranged:
            if criterion.cve_id not in found:
                score, severity = self._cves.get(criterion.cve_id, (None, None))
                found[criterion.cve_id] = CveMatch(criterion.cve_id, criterion, score, severity)
        result = sorted(found.values(), key=lambda m: m.cve_id)
        self._matches[seen] = result
        return result

    def _criteria_for(self, key: str) -> _ProductCriteria:
        with self._lock:
            cached = self._criteria.get(key)
            if cached is not None:
                return cached
            pairs = [k.split(":", 1) for k in equivalent_keys(key)]
            found = _ProductCriteria({}, [])
            keys: dict[str, object] = {}

            def cached_key(text: str) -> object:
                if text not in keys:
                    keys[text] = version_key(text)
                return keys[text]

            with self._sessions() as session:
                match = IntelCpeMatch
                for vendor, product in pairs:
                    rows = session.execute(
                        select(
                            match.cve_id,
                            match.criteria,
                            match.version,
                            match.start_including,
                            match.start_excluding,
                            match.end_including,
                            match.end_excluding,
                            IntelCve.cvss_score,
                            IntelCve.cvss_severity,
                        )
                        .join(IntelCve, IntelCve.cve_id == match.cve_id, isouter=True)
                        .where(match.vendor == vendor, match.product == product)
                    )
                    for cve_id, criteria, version, *bounds, score, severity in rows:
                        self._cves[cve_id] = (score, severity)
                        criterion = Criterion(cve_id, criteria, version, *bounds)
                        found.add(CompiledCriterion(criterion, cached_key))
            self._criteria[key] = found
            return found

    # --- KEV and EPSS --------------------------------------------------------------------

    def kev(self, cve_id: str) -> KevEntry | None:
        with self._lock:
            if self._kev is None:
                with self._sessions() as session:
                    self._kev = {
                        row.cve_id: KevEntry(
                            row.cve_id,
                            row.vendor_project,
                            row.product,
                            row.name,
                            row.date_added,
                            row.due_date,
                            row.ransomware,
                            row.required_action,
                        )
                        for row in session.scalars(select(IntelKev))
                    }
            return self._kev.get(cve_id)

    def epss(self, cve_ids: Iterable[str]) -> dict[str, float]:
        """EPSS scores of the CVEs that have one (the table is read once per scan)."""
        with self._lock:
            if self._epss is None:
                with self._sessions() as session:
                    self._epss = dict(
                        session.execute(select(IntelEpss.cve_id, IntelEpss.epss)).all()
                    )
            scores = self._epss
        return {c: scores[c] for c in cve_ids if c in scores}

    # --- endoflife.date ------------------------------------------------------------------

    def lifecycle(self, software: Software) -> Lifecycle | None:
        """The release cycle of the software's version (or cycle), when the product is known."""
        version = software.version or software.cycle
        if not version:
            return None
        products = self._eol_products()
        keys = set(equivalent_keys(software.key))
        for name, (label, cpes, releases) in sorted(products.items()):
            if not keys & set(cpes):
                continue
            release = _cycle_of(version, releases)
            if release is not None:
                return Lifecycle(name, label, release, self._newer_majors(release, releases))
            return self._unlisted(name, label, version, releases)
        return None

    def _eol_products(self) -> dict[str, tuple[str, tuple[str, ...], tuple[EolRelease, ...]]]:
        with self._lock:
            if self._eol is None:
                with self._sessions() as session:
                    releases: dict[str, list[EolRelease]] = {}
                    for row in session.scalars(select(IntelEolRelease)):
                        releases.setdefault(row.product, []).append(
                            EolRelease(
                                name=row.name,
                                release_date=row.release_date,
                                is_eol=row.is_eol,
                                eol_from=row.eol_from,
                                is_maintained=row.is_maintained,
                                eoes_from=row.eoes_from,
                                is_eoes=row.is_eoes,
                                latest=row.latest,
                                is_lts=row.is_lts,
                            )
                        )
                    self._eol = {
                        p.name: (p.label, tuple(p.cpes), tuple(releases.get(p.name, ())))
                        for p in session.scalars(select(IntelEolProduct))
                    }
            return self._eol

    def _unlisted(
        self, name: str, label: str, version: str, releases: tuple[EolRelease, ...]
    ) -> Lifecycle | None:
        """An old cycle endoflife.date no longer lists (Elasticsearch 8.15 when 8.16 is the
        oldest 8.x shown): if a newer cycle of the same major has already ended, so has it."""
        major, observed = version.split(".")[0], version_key(version)
        ended = [
            r
            for r in releases
            if r.name.split(".")[0] == major
            and version_key(r.name) > observed
            and r.ended(self.today)
            and r.eol_from is not None
        ]
        if not ended:
            return None
        oldest = min(ended, key=lambda r: version_key(r.name))
        release = EolRelease(
            name=version,
            release_date=oldest.release_date,
            is_eol=True,
            eol_from=oldest.eol_from,
            is_maintained=False,
        )
        newer = self._newer_majors(release, releases)
        return Lifecycle(name, label, release, newer, inferred_from=oldest.name)

    def _newer_majors(
        self, release: EolRelease, releases: tuple[EolRelease, ...]
    ) -> tuple[str, ...]:
        major = version_key(release.name.split(".")[0])
        newer = [
            r.name
            for r in releases
            if version_key(r.name.split(".")[0]) > major and not r.ended(self.today)
        ]
        return tuple(sorted(newer, key=version_key))


def _cycle_of(version: str, releases: Iterable[EolRelease]) -> EolRelease | None:
    """The longest cycle name that is the version or a prefix of it at a boundary."""
    candidates = [
        r
        for r in releases
        if version == r.name or (version.startswith(r.name) and not version[len(r.name)].isdigit())
    ]
    return max(candidates, key=lambda r: len(r.name), default=None)


def _freshness(
    states: Mapping[Source, SourceState], now: dt.datetime, max_age_days: int
) -> Freshness:
    problems: dict[Source, str] = {}
    for source in Source:
        state = states.get(source)
        if state is None:
            problems[source] = "missing"
        elif state.age_days(now) > max_age_days:
            problems[source] = (
                f"out of date: data as of {state.data_as_of.date().isoformat()} "
                f"({state.age_days(now):.0f} days old, the limit is {max_age_days})"
            )
    return Freshness({s: st.data_as_of for s, st in states.items()}, problems, max_age_days)


def load_snapshot(
    sessions: sessionmaker[Session], settings: IntelSettings, now: dt.datetime
) -> IntelSnapshot:
    """The snapshot one scan judges with, under the configured age limit and EPSS line."""
    return IntelSnapshot(
        sessions,
        now=now,
        max_age_days=settings.max_age_days,
        epss_threshold=settings.epss_threshold,
    )
