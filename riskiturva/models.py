"""The findings store's tables (SQLAlchemy 2.0). Migrations live in `riskiturva/migrations/`;
`riskiturva.schema` gathers every table (these, the accounts', the report archive's)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from riskiturva.orm import Base


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    PARTIAL = "partial"  # some targets could not be scanned
    FAILED = "failed"  # the collector itself failed: nothing resolved
    INTERRUPTED = "interrupted"  # the process died or was stopped: nothing resolved
    SKIPPED = "skipped"  # a scheduled run missed beyond the grace time: never started


class FindingStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    ACCEPTED = "accepted"
    FALSE_POSITIVE = "false_positive"


class EventKind(enum.StrEnum):
    OPENED = "opened"
    SEEN = "seen"  # seen again with different evidence (unchanged sightings add no rows)
    RESOLVED = "resolved"
    REOPENED = "reopened"
    ACCEPTED = "accepted"
    FALSE_POSITIVE = "false_positive"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Organisation(Base):
    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name_fi: Mapped[str] = mapped_column(String(200))
    name_sv: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    partner: Mapped[str | None] = mapped_column(String(63))

    assets: Mapped[list[Asset]] = relationship(back_populates="organisation")

    def name(self, language: str) -> str:
        return {"fi": self.name_fi, "sv": self.name_sv}.get(language, self.name_en)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AssetOrigin(enum.StrEnum):
    CONFIGURATION = "configuration"  # declared in the TOML file
    DISCOVERED = "discovered"  # proposed by the discovery stage
    ADDED = "added"  # added by a person (dashboard or CLI)


class AssetState(enum.StrEnum):
    PROPOSED = "proposed"  # discovered, waiting for a person's decision: never scanned
    ACTIVE = "active"  # in the inventory: scanned
    REJECTED = "rejected"  # a person said no: stays out even when seen again
    RETIRED = "retired"  # no longer in use (or removed from the configuration)


class Asset(Base):
    """One asset of the inventory, whatever its origin; only active ones are scanned."""

    __tablename__ = "asset"
    __table_args__ = (
        UniqueConstraint("organisation_id", "kind", "value"),
        Index("ix_asset_org_state", "organisation_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(500))
    criticality: Mapped[str] = mapped_column(String(10))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    dkim_selectors: Mapped[list[Any]] = mapped_column(default=list)
    origin: Mapped[str] = mapped_column(String(20), default=AssetOrigin.CONFIGURATION)
    state: Mapped[str] = mapped_column(String(20), default=AssetState.ACTIVE)
    owner_note: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[dt.datetime] = mapped_column(default=_utc_now)
    last_seen: Mapped[dt.datetime] = mapped_column(default=_utc_now)
    # The latest decision on the asset (the audit trail keeps all of them).
    state_changed_at: Mapped[dt.datetime | None]
    state_changed_by: Mapped[str | None] = mapped_column(String(200))
    state_reason: Mapped[str | None] = mapped_column(Text)
    # Consecutive discovery runs in which the name did not exist (NXDOMAIN), and when that
    # made discovery propose retiring it; a person decides, nothing is deleted.
    gone_runs: Mapped[int] = mapped_column(default=0)
    retirement_proposed_at: Mapped[dt.datetime | None]

    organisation: Mapped[Organisation] = relationship(back_populates="assets")
    evidence: Mapped[list[AssetEvidence]] = relationship(
        back_populates="asset", order_by="AssetEvidence.id", cascade="all, delete-orphan"
    )

    @hybrid_property
    def active(self) -> bool:
        """Scanned: in the inventory and not retired, rejected or waiting for review."""
        return self.state == AssetState.ACTIVE

    @active.inplace.expression
    @classmethod
    def _active_expression(cls) -> ColumnElement[bool]:
        return cls.state == str(AssetState.ACTIVE)


class AssetEvidence(Base):
    """Where discovery saw an asset: one row per (source, where), first and last seen."""

    __tablename__ = "asset_evidence"
    __table_args__ = (UniqueConstraint("asset_id", "source", "via"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("asset.id"), index=True)
    source: Mapped[str] = mapped_column(String(30))
    via: Mapped[str] = mapped_column(String(500))  # e.g. "NSEC chain of hyvala.test"
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("scan_run.id"))

    asset: Mapped[Asset] = relationship(back_populates="evidence")


class ScopeSighting(Base):
    """A name or address discovery saw outside the organisation's declared scope.

    Listed so that the owner can extend the authorisation; never resolved further,
    connected to or scanned.
    """

    __tablename__ = "scope_sighting"
    __table_args__ = (UniqueConstraint("organisation_id", "value", "source", "via"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    value: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(10))  # "name" or "address"
    source: Mapped[str] = mapped_column(String(30))
    via: Mapped[str] = mapped_column(String(500))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("scan_run.id"))


class ChangeKind(enum.StrEnum):
    """What changed in an organisation's estate (read by "what changed" and by alerts)."""

    ASSET_PROPOSED = "asset.proposed"
    ASSET_ACCEPTED = "asset.accepted"
    ASSET_REJECTED = "asset.rejected"
    ASSET_RETIRED = "asset.retired"
    ASSET_ADDED = "asset.added"
    ASSET_GONE = "asset.gone"  # NXDOMAIN on N consecutive runs: retirement proposed
    ASSET_RETURNED = "asset.returned"  # a name proposed for retirement exists again
    SEEN_OUTSIDE_SCOPE = "scope.seen_outside"
    PORT_OPENED = "service.port_opened"
    CERTIFICATE_NEW = "certificate.new"


class ChangeEvent(Base):
    """One change: new asset proposed, asset gone, new open port, new certificate, …"""

    __tablename__ = "change_event"
    __table_args__ = (
        Index("ix_change_event_org_at", "organisation_id", "at"),
        Index("ix_change_event_kind_at", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(500))
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("asset.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("scan_run.id"))
    at: Mapped[dt.datetime]
    actor: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ScanRun(Base):
    __tablename__ = "scan_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    collector: Mapped[str] = mapped_column(String(50), index=True)
    organisations: Mapped[list[Any]] = mapped_column(default=list)
    trigger: Mapped[str] = mapped_column(String(20), default="cli")
    # The fire time of a scheduled run (or the last one a skipped row stands for).
    scheduled_for: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.RUNNING, index=True)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message: Mapped[str | None] = mapped_column(Text)

    errors: Mapped[list[ScanError]] = relationship(back_populates="run")


class ScanTaskStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for a worker (or being scanned by one)
    DONE = "done"  # its results are saved: a redelivered message is acknowledged unchanged


class ScanTaskRow(Base):
    """One task of a run scanned by workers (`settings.queue.runner = "workers"`).

    The message on the queue names only the run and the key; the task itself and, once
    done, its results live here. A task is done exactly once: its completion, and the save
    of its organisation when it was that organisation's last, is one transaction under the
    run row's lock. The key `<organisation>/plan` holds what planning found (errors).
    """

    __tablename__ = "scan_task"
    __table_args__ = (UniqueConstraint("run_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("scan_run.id"), index=True)
    organisation: Mapped[str] = mapped_column(String(63))
    key: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any] | None]  # the ScanTask's dict form (None: the plan row)
    status: Mapped[str] = mapped_column(String(20), default=ScanTaskStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    result: Mapped[dict[str, Any] | None]  # a TaskResult's dict form; cleared at the run's end
    finished_at: Mapped[dt.datetime | None]


class ScanError(Base):
    """A target that could not be checked in a run (timeout, refused, out of scope, …)."""

    __tablename__ = "scan_error"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("scan_run.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    subject: Mapped[str] = mapped_column(String(500))
    asset: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(30))
    message: Mapped[str] = mapped_column(Text)

    run: Mapped[ScanRun] = relationship(back_populates="errors")


class SubjectState(Base):
    """The latest scan of one subject by one collector, updated in place."""

    __tablename__ = "subject_state"
    __table_args__ = (UniqueConstraint("organisation_id", "collector", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    collector: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(500))
    asset: Mapped[str] = mapped_column(String(500))
    last_status: Mapped[str] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_scanned_at: Mapped[dt.datetime]
    last_success_at: Mapped[dt.datetime | None]
    last_run_id: Mapped[int] = mapped_column(ForeignKey("scan_run.id"))
    last_observation: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Finding(Base):
    """One problem on one subject: fingerprint (organisation, check id, subject)."""

    __tablename__ = "finding"
    __table_args__ = (
        UniqueConstraint("organisation_id", "check_id", "subject"),
        Index("ix_finding_org_status", "organisation_id", "status"),
        Index("ix_finding_org_collector_target", "organisation_id", "collector", "target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(40), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    collector: Mapped[str] = mapped_column(String(50))
    target: Mapped[str] = mapped_column(String(500))  # the scanned subject that reported it
    check_id: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(500))
    asset: Mapped[str] = mapped_column(String(500))
    category: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default=FindingStatus.OPEN)
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]
    resolved_at: Mapped[dt.datetime | None]
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("scan_run.id"))
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reproduce: Mapped[str | None] = mapped_column(Text)
    # A person's decision (accepted risk or false positive) and until when it holds.
    decision: Mapped[str | None] = mapped_column(String(20))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decision_until: Mapped[dt.datetime | None]

    organisation: Mapped[Organisation] = relationship()
    events: Mapped[list[FindingEvent]] = relationship(
        back_populates="finding", order_by="FindingEvent.id"
    )


class FindingEvent(Base):
    __tablename__ = "finding_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("finding.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("scan_run.id"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime]
    actor: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    # For a decision (accepted, false_positive): until when it holds, so that the state at
    # any past moment can be replayed from the events (riskiturva.views.asof).
    until: Mapped[dt.datetime | None]

    finding: Mapped[Finding] = relationship(back_populates="events")


class ScoreSnapshot(Base):
    """An organisation's score on one day (one row per organisation and day)."""

    __tablename__ = "score_snapshot"
    __table_args__ = (UniqueConstraint("organisation_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    day: Mapped[dt.date]
    score: Mapped[float]
    grade: Mapped[str] = mapped_column(String(2))
    scoring_version: Mapped[str] = mapped_column(String(20))
    category_scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    open_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CurrentScore(Base):
    """An organisation's score summary as of its last change (one row per organisation).

    Written by the store in the same transaction as every change to the organisation's
    findings, decisions or assets; read by the portfolio, which scores live instead when
    the row is missing, of another scoring version or registry, or outlived by a decision
    (`valid_until`). See `riskiturva.current`.
    """

    __tablename__ = "current_score"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), primary_key=True)
    computed_at: Mapped[dt.datetime]
    scoring_version: Mapped[str] = mapped_column(String(20))
    registry_digest: Mapped[str] = mapped_column(String(64))
    valid_until: Mapped[dt.datetime | None]  # the first decision in force to run out
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
