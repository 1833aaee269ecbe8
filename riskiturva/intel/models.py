"""Tables of the vulnerability-intelligence store (in Riskiturva's own database).

One row per source says what the data is and how old: `data_as_of` is the publisher's own
date (KEV `dateReleased`, NVD `timestamp`, EPSS `score_date`, the endoflife.date fetch).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from riskiturva.orm import Base


class IntelSource(Base):
    __tablename__ = "intel_source"

    name: Mapped[str] = mapped_column(String(10), primary_key=True)  # kev, nvd, epss, eol
    data_as_of: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    origin: Mapped[str] = mapped_column(Text)  # the URL or the imported folder
    records: Mapped[int]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)  # catalogVersion, model, …


class IntelKev(Base):
    __tablename__ = "intel_kev"

    cve_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    vendor_project: Mapped[str] = mapped_column(String(200))
    product: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(Text)
    date_added: Mapped[dt.date]
    due_date: Mapped[dt.date]
    ransomware: Mapped[bool]
    required_action: Mapped[str] = mapped_column(Text)


class IntelCve(Base):
    __tablename__ = "intel_cve"

    cve_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    published: Mapped[dt.datetime]
    last_modified: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(40))
    cvss_version: Mapped[str | None] = mapped_column(String(5))
    cvss_score: Mapped[float | None]
    cvss_severity: Mapped[str | None] = mapped_column(String(10))
    cvss_vector: Mapped[str | None] = mapped_column(String(200))


class IntelCpeMatch(Base):
    """One vulnerable `cpeMatch` of a CVE, indexed by the CPE's vendor and product."""

    __tablename__ = "intel_cpe_match"
    __table_args__ = (Index("ix_intel_cpe_match_product", "vendor", "product"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cve_id: Mapped[str] = mapped_column(String(30), index=True)
    vendor: Mapped[str] = mapped_column(String(120))
    product: Mapped[str] = mapped_column(String(200))
    criteria: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(String(100))  # exact, "*" or "-"
    start_including: Mapped[str | None] = mapped_column(String(100))
    start_excluding: Mapped[str | None] = mapped_column(String(100))
    end_including: Mapped[str | None] = mapped_column(String(100))
    end_excluding: Mapped[str | None] = mapped_column(String(100))


class IntelEpss(Base):
    __tablename__ = "intel_epss"

    cve_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    epss: Mapped[float]
    percentile: Mapped[float]


class IntelEolProduct(Base):
    __tablename__ = "intel_eol_product"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    last_modified: Mapped[dt.datetime]
    cpes: Mapped[list[Any]] = mapped_column(default=list)  # "vendor:product" keys


class IntelEolRelease(Base):
    __tablename__ = "intel_eol_release"

    id: Mapped[int] = mapped_column(primary_key=True)
    product: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(100))
    release_date: Mapped[dt.date]
    is_eol: Mapped[bool]
    eol_from: Mapped[dt.date | None]
    is_maintained: Mapped[bool]
    eoes_from: Mapped[dt.date | None]
    is_eoes: Mapped[bool | None]
    latest: Mapped[str | None] = mapped_column(String(100))
    is_lts: Mapped[bool] = mapped_column(default=False)
