"""The archive of delivered reports: one row per organisation, month, language and format."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from riskiturva.models import Organisation
from riskiturva.orm import Base


class ArchivedReport(Base):
    """A rendered report kept in the data directory, and whether it was e-mailed."""

    __tablename__ = "report_archive"
    __table_args__ = (UniqueConstraint("organisation_id", "month", "language", "format"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))  # 2026-10
    language: Mapped[str] = mapped_column(String(2))
    format: Mapped[str] = mapped_column(String(4))
    path: Mapped[str] = mapped_column(String(500))  # relative to the reports folder
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    recipients: Mapped[list[Any]] = mapped_column(default=list)
    sent_at: Mapped[dt.datetime | None]
    delivery_error: Mapped[str | None] = mapped_column(Text)

    organisation: Mapped[Organisation] = relationship()
