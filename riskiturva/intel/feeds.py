"""Parsers of the public feeds, each following its published schema (see `schemas/`).

Pydantic models at the edge mirror the schemas (field names as published); the parsers
return frozen dataclasses. Anything that does not fit raises `FeedError` naming the feed,
so a half-read download never replaces good data.

* CISA KEV — `known_exploited_vulnerabilities.json`
  (`known_exploited_vulnerabilities_schema.json`);
* NVD — CVE API 2.0 responses and the NVD 2.0 JSON feed files (`cve_api_json_2.0.schema.json`);
* FIRST EPSS — the daily `epss_scores-YYYY-MM-DD.csv(.gz)`;
* endoflife.date — API v1 `/products/{product}` (`endoflife_api_v1.openapi.json`).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from riskiturva.intel.matching import ANY, NOT_APPLICABLE, CpeError, Criterion, parse_cpe


class Source(StrEnum):
    KEV = "kev"
    NVD = "nvd"
    EPSS = "epss"
    EOL = "eol"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def all(cls) -> tuple[Source, ...]:
        return tuple(cls)


_LABELS = {
    Source.KEV: "CISA KEV",
    Source.NVD: "NVD",
    Source.EPSS: "FIRST EPSS",
    Source.EOL: "endoflife.date",
}


class FeedError(ValueError):
    """A feed file or response does not follow its published format."""

    def __init__(self, source: Source, message: str):
        self.source = source
        super().__init__(f"{source.label}: {message}")


class _Published(BaseModel):
    # The schemas allow properties they do not list; only the listed ones are read.
    model_config = ConfigDict(extra="ignore", frozen=True)


def _utc(moment: dt.datetime) -> dt.datetime:
    """NVD writes UTC times without a zone."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], data: bytes, source: Source) -> M:
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FeedError(source, f"{where}: {first['msg']} ({exc.error_count()} problems)") from exc


def maybe_gunzip(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


# --- CISA KEV ----------------------------------------------------------------------------


class _KevVulnerability(_Published):
    cveID: str = Field(pattern=r"^CVE-[0-9]{4}-[0-9]{4,19}$")
    vendorProject: str
    product: str
    vulnerabilityName: str
    dateAdded: dt.date
    shortDescription: str
    requiredAction: str
    dueDate: dt.date
    knownRansomwareCampaignUse: str | None = None
    notes: str | None = None


class _KevCatalog(_Published):
    catalogVersion: str
    dateReleased: dt.datetime
    count: int
    vulnerabilities: list[_KevVulnerability]


@dataclass(frozen=True)
class KevEntry:
    cve_id: str
    vendor_project: str
    product: str
    name: str
    date_added: dt.date
    due_date: dt.date
    ransomware: bool  # knownRansomwareCampaignUse == "Known"
    required_action: str


@dataclass(frozen=True)
class KevCatalog:
    version: str
    released: dt.datetime
    entries: tuple[KevEntry, ...]


def parse_kev(data: bytes) -> KevCatalog:
    catalog = _validated(_KevCatalog, maybe_gunzip(data), Source.KEV)
    if catalog.count != len(catalog.vulnerabilities):
        raise FeedError(
            Source.KEV,
            f"the catalogue says {catalog.count} entries but has "
            f"{len(catalog.vulnerabilities)} (truncated download?)",
        )
    return KevCatalog(
        version=catalog.catalogVersion,
        released=_utc(catalog.dateReleased),
        entries=tuple(
            KevEntry(
                cve_id=v.cveID,
                vendor_project=v.vendorProject.strip(),
                product=v.product.strip(),
                name=v.vulnerabilityName,
                date_added=v.dateAdded,
                due_date=v.dueDate,
                ransomware=(v.knownRansomwareCampaignUse or "").strip().lower() == "known",
                required_action=v.requiredAction,
            )
            for v in catalog.vulnerabilities
        ),
    )


# --- NVD CVE API 2.0 ---------------------------------------------------------------------


class _CpeMatch(_Published):
    vulnerable: bool
    criteria: str
    matchCriteriaId: str
    versionStartIncluding: str | None = None
    versionStartExcluding: str | None = None
    versionEndIncluding: str | None = None
    versionEndExcluding: str | None = None


class _Node(_Published):
    operator: Literal["AND", "OR"]
    negate: bool = False
    cpeMatch: list[_CpeMatch]


class _Configuration(_Published):
    operator: Literal["AND", "OR"] | None = None
    negate: bool = False
    nodes: list[_Node]


class _CvssData(_Published):
    version: str
    vectorString: str
    baseScore: float = Field(ge=0, le=10)
    baseSeverity: str | None = None  # inside cvssData from CVSS 3.0 on


class _Metric(_Published):
    source: str
    type: Literal["Primary", "Secondary"]
    cvssData: _CvssData
    baseSeverity: str | None = None  # CVSS 2.0 keeps it beside cvssData


class _Metrics(_Published):
    cvssMetricV40: list[_Metric] = []
    cvssMetricV31: list[_Metric] = []
    cvssMetricV30: list[_Metric] = []
    cvssMetricV2: list[_Metric] = []


class _Cve(_Published):
    id: str = Field(pattern=r"^CVE-[0-9]{4}-[0-9]{4,}$")
    published: dt.datetime
    lastModified: dt.datetime
    vulnStatus: str | None = None
    metrics: _Metrics | None = None
    configurations: list[_Configuration] = []


class _Item(_Published):
    cve: _Cve


class _Page(_Published):
    resultsPerPage: int
    startIndex: int
    totalResults: int
    format: str
    version: str
    timestamp: dt.datetime
    vulnerabilities: list[_Item]


@dataclass(frozen=True)
class Cvss:
    version: str
    score: float
    severity: str
    vector: str


@dataclass(frozen=True)
class NvdCve:
    cve_id: str
    published: dt.datetime
    last_modified: dt.datetime
    status: str
    cvss: Cvss | None
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True)
class NvdPage:
    timestamp: dt.datetime
    start: int
    total: int
    cves: tuple[NvdCve, ...]


def parse_nvd(data: bytes) -> NvdPage:
    """One CVE API 2.0 response page, or one NVD 2.0 JSON feed file (same format)."""
    page = _validated(_Page, maybe_gunzip(data), Source.NVD)
    if page.format != "NVD_CVE" or not page.version.startswith("2."):
        raise FeedError(Source.NVD, f"not CVE API 2.0 data: {page.format} {page.version}")
    return NvdPage(
        timestamp=_utc(page.timestamp),
        start=page.startIndex,
        total=page.totalResults,
        cves=tuple(_nvd_cve(item.cve) for item in page.vulnerabilities),
    )


def _nvd_cve(cve: _Cve) -> NvdCve:
    return NvdCve(
        cve_id=cve.id,
        published=_utc(cve.published),
        last_modified=_utc(cve.lastModified),
        status=cve.vulnStatus or "",
        cvss=_preferred_cvss(cve.metrics),
        criteria=tuple(_criteria(cve)),
    )


def _preferred_cvss(metrics: _Metrics | None) -> Cvss | None:
    """NVD's own (Primary) score of the newest CVSS version, else the first one given."""
    if metrics is None:
        return None
    for scores in (
        metrics.cvssMetricV40,
        metrics.cvssMetricV31,
        metrics.cvssMetricV30,
        metrics.cvssMetricV2,
    ):
        if scores:
            chosen = next((m for m in scores if m.type == "Primary"), scores[0])
            data = chosen.cvssData
            severity = data.baseSeverity or chosen.baseSeverity or ""
            return Cvss(data.version, data.baseScore, severity.upper(), data.vectorString)
    return None


def _criteria(cve: _Cve) -> Iterator[Criterion]:
    """The vulnerable match criteria; negated configurations and nodes are left out."""
    for configuration in cve.configurations:
        if configuration.negate:
            continue
        for node in configuration.nodes:
            if node.negate:
                continue
            for match in node.cpeMatch:
                if not match.vulnerable:
                    continue
                try:
                    name = parse_cpe(match.criteria)
                except CpeError:
                    continue
                version = name.version
                if version not in (ANY, NOT_APPLICABLE):
                    version = name.full_version
                yield Criterion(
                    cve_id=cve.id,
                    criteria=match.criteria,
                    version=version,
                    start_including=match.versionStartIncluding,
                    start_excluding=match.versionStartExcluding,
                    end_including=match.versionEndIncluding,
                    end_excluding=match.versionEndExcluding,
                )


# --- FIRST EPSS --------------------------------------------------------------------------

_EPSS_META = re.compile(r"^#model_version:(?P<model>[^,]+),score_date:(?P<date>\S+)\s*$")
_CVE = re.compile(r"^CVE-[0-9]{4}-[0-9]{4,}$")


@dataclass(frozen=True)
class EpssScores:
    model_version: str
    score_date: dt.datetime
    scores: tuple[tuple[str, float, float], ...]  # (cve id, epss, percentile)


def parse_epss(data: bytes) -> EpssScores:
    """The daily CSV: `#model_version:…,score_date:…`, `cve,epss,percentile`, rows."""
    text = maybe_gunzip(data).decode("utf-8-sig", errors="strict")
    lines = io.StringIO(text)
    meta = _EPSS_META.match(lines.readline())
    if meta is None:
        raise FeedError(Source.EPSS, "the first line is not #model_version:…,score_date:…")
    try:
        score_date = dt.datetime.fromisoformat(meta.group("date").replace("Z", "+00:00"))
    except ValueError as exc:
        raise FeedError(Source.EPSS, f"score_date is not a date: {meta.group('date')}") from exc
    reader = csv.reader(lines)
    if next(reader, None) != ["cve", "epss", "percentile"]:
        raise FeedError(Source.EPSS, "the header is not cve,epss,percentile")
    scores = []
    for number, row in enumerate(reader, start=3):
        try:
            cve, epss, percentile = row[0], float(row[1]), float(row[2])
        except (IndexError, ValueError) as exc:
            raise FeedError(Source.EPSS, f"line {number}: {row!r}") from exc
        if not _CVE.match(cve) or not (0 <= epss <= 1 and 0 <= percentile <= 1):
            raise FeedError(Source.EPSS, f"line {number}: {row!r}")
        scores.append((cve, epss, percentile))
    if not scores:
        raise FeedError(Source.EPSS, "no scores")
    return EpssScores(meta.group("model"), _utc(score_date), tuple(scores))


# --- endoflife.date API v1 ---------------------------------------------------------------


class _Identifier(_Published):
    id: str
    type: str


class _ProductVersion(_Published):
    name: str
    date: dt.date | None = None
    link: str | None = None


class _ProductRelease(_Published):
    name: str
    codename: str | None
    label: str
    releaseDate: dt.date
    isLts: bool
    ltsFrom: dt.date | None
    isEoas: bool | None = None
    eoasFrom: dt.date | None = None
    isEol: bool
    eolFrom: dt.date | None
    isEoes: bool | None = None
    eoesFrom: dt.date | None = None
    isMaintained: bool
    latest: _ProductVersion | None


class _ProductDetails(_Published):
    name: str
    label: str
    category: str
    identifiers: list[_Identifier]
    releases: list[_ProductRelease]


class _ProductResponse(_Published):
    schema_version: str
    generated_at: dt.datetime | None = None  # API 1.2 on: when the response was made
    last_modified: dt.datetime
    result: _ProductDetails


@dataclass(frozen=True)
class EolRelease:
    """One release cycle (`8.2`, `12`) and its support dates."""

    name: str
    release_date: dt.date
    is_eol: bool
    eol_from: dt.date | None
    is_maintained: bool
    eoes_from: dt.date | None = None  # end of extended support (Debian LTS, ESU, …)
    is_eoes: bool | None = None  # None: no extended support for this cycle
    latest: str | None = None
    is_lts: bool = False  # a long-term support cycle

    def ended(self, today: dt.date) -> bool:
        """Past the end of (regular) security support."""
        return self.eol_from <= today if self.eol_from else self.is_eol

    def extended_until(self, today: dt.date) -> dt.date | None:
        """The end of extended support while it still runs, else None."""
        if self.eoes_from and self.eoes_from > today:
            return self.eoes_from
        return None


@dataclass(frozen=True)
class EolProduct:
    name: str  # endoflife.date's id: "php", "debian"
    label: str
    last_modified: dt.datetime  # when the product's data last changed
    cpes: tuple[str, ...]  # `vendor:product` of its CPE identifiers
    releases: tuple[EolRelease, ...]
    generated_at: dt.datetime | None = None  # when endoflife.date made this response


def eol_as_of(products: list[EolProduct], fetched: dt.datetime | None = None) -> dt.datetime:
    """How current a set of product responses is: the oldest `generated_at`; for responses
    without one, the download time, or (files) the newest `last_modified`."""
    generated = [p.generated_at for p in products if p.generated_at]
    if len(generated) == len(products) and generated:
        return min(generated)
    if fetched is not None:
        return min([fetched, *generated])
    return max(p.last_modified for p in products)


def parse_eol_product(data: bytes) -> EolProduct:
    response = _validated(_ProductResponse, maybe_gunzip(data), Source.EOL)
    product = response.result
    cpes = []
    for identifier in product.identifiers:
        if identifier.type == "cpe":
            try:
                cpes.append(parse_cpe(identifier.id).key)
            except CpeError:
                continue
    return EolProduct(
        name=product.name,
        label=product.label,
        last_modified=_utc(response.last_modified),
        generated_at=_utc(response.generated_at) if response.generated_at else None,
        cpes=tuple(dict.fromkeys(cpes)),
        releases=tuple(
            EolRelease(
                name=r.name,
                release_date=r.releaseDate,
                is_eol=r.isEol,
                eol_from=r.eolFrom,
                is_maintained=r.isMaintained,
                eoes_from=r.eoesFrom,
                is_eoes=r.isEoes,
                latest=r.latest.name if r.latest else None,
                is_lts=r.isLts,
            )
            for r in product.releases
        ),
    )
