"""The findings store: engine, configuration sync, reconcile, and people's decisions.

What pages, reports and the CLI read is the read model's (`riskiturva.views`). Every
function here that acts for a person takes the caller's *visible organisations* (a
collection of slugs) and filters by it in SQL: authorization lives here, not in layouts.
Every change to an organisation's findings, decisions or assets refreshes its current
score in the same transaction (`current.refresh_current_score`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, case, create_engine, event, make_url, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from riskiturva._files import private_file, tighten
from riskiturva.config import Config
from riskiturva.current import refresh_current_score
from riskiturva.models import (
    Asset,
    AssetOrigin,
    AssetState,
    CurrentScore,
    EventKind,
    Finding,
    FindingEvent,
    FindingStatus,
    Organisation,
    RunStatus,
    ScanRun,
)

DECISIONS = (FindingStatus.ACCEPTED, FindingStatus.FALSE_POSITIVE)
# Evidence keys refreshed on every sighting that do not count as a change: the date of the
# vulnerability data a finding was last judged with changes with every feed update.
REFRESHED_EVIDENCE = frozenset({"data_as_of"})
UPSERT_CHUNK = 500  # rows per statement: well below SQLite's limit of bound parameters


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for another database or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def sqlite_pragmas(dbapi_connection: Any) -> None:
    """WAL, foreign keys, and a busy timeout: a writer waits 10 s for another's lock."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, **options: Any) -> Engine:
    """An engine that survives a restarted database server (`pool_pre_ping`).

    SQLite gets WAL, foreign keys and a busy timeout, and its file is created 0600 in a
    0700 folder (it holds password hashes, the audit trail and the scheduler's jobs).
    """
    path = sqlite_path(url)
    if path is not None:
        private_file(path)
        for companion in ("-wal", "-shm"):
            tighten(path.with_name(path.name + companion))
    engine = create_engine(url, pool_pre_ping=True, **options)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            sqlite_pragmas(dbapi_connection)

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def fingerprint(organisation: str, check_id: str, subject: str) -> str:
    """A stable id for a finding across scans: (organisation, check id, subject)."""
    return hashlib.sha1(
        f"{organisation}\x1f{check_id}\x1f{subject}".encode(), usedforsecurity=False
    ).hexdigest()


def upsert(
    session: Session,
    model: type[Any],
    rows: list[dict[str, Any]],
    *,
    key: list[str],
    update_columns: Collection[str],
    also_set: Mapping[str, Any] | None = None,
) -> None:
    """INSERT … ON CONFLICT (key) DO UPDATE: safe when other processes write the same rows.

    A conflicting row takes the new values of `update_columns`, and `also_set`'s SQL
    expressions (which see the row as it was)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # same API
    else:  # pragma: no cover - the two supported databases
        raise NotImplementedError(f"no upsert for {dialect}")
    for start in range(0, len(rows), UPSERT_CHUNK):
        statement = insert(model).values(rows[start : start + UPSERT_CHUNK])
        statement = statement.on_conflict_do_update(
            index_elements=key,
            set_={
                **{name: statement.excluded[name] for name in update_columns},
                **(also_set or {}),
            },
        )
        session.execute(statement)


CONFIGURATION_ACTOR = "configuration"


def _asset_state(session: Session) -> dict[int, set[tuple[Any, ...]]]:
    """Every organisation's assets as they stand (what scoring reads of them)."""
    state: dict[int, set[tuple[Any, ...]]] = {}
    for org_id, kind, value, criticality, tags, active in session.execute(
        select(
            Asset.organisation_id,
            Asset.kind,
            Asset.value,
            Asset.criticality,
            Asset.tags,
            Asset.active,
        )
    ):
        state.setdefault(org_id, set()).add((kind, value, criticality, tuple(tags or ()), active))
    return state


def sync_config(
    session: Session, config: Config, *, now: dt.datetime | None = None
) -> dict[str, Organisation]:
    """Import the configuration into the store, idempotently.

    Organisations get their names and partner; every declared asset becomes (or stays) an
    active asset of origin `configuration` — a declaration wins over an earlier proposal,
    rejection or retirement. A configuration asset no longer declared is retired (never
    deleted). Discovered and added assets are the inventory's own and left alone.

    Upserts, so scans started at the same moment on a never-scanned database both succeed.
    An organisation whose assets changed (or that has no current score yet) has its current
    score refreshed.
    """
    now = now or dt.datetime.now(dt.UTC)
    session.flush()  # nothing pending is lost when the rows are refreshed at the end
    before = _asset_state(session)
    partner_of = {slug: p.slug for p in config.partners for slug in p.organisations}
    upsert(
        session,
        Organisation,
        [
            {
                "slug": o.slug,
                "name_fi": o.name.fi,
                "name_sv": o.name.sv,
                "name_en": o.name.en,
                "partner": partner_of.get(o.slug),
            }
            for o in config.organisations
        ],
        key=["slug"],
        update_columns=["name_fi", "name_sv", "name_en", "partner"],
    )
    fresh = {"populate_existing": True}  # rows read earlier in the session are refreshed
    organisations = {
        o.slug: o for o in session.scalars(select(Organisation).execution_options(**fresh))
    }
    changed = or_(
        Asset.state != str(AssetState.ACTIVE), Asset.origin != str(AssetOrigin.CONFIGURATION)
    )
    declaration = {
        "state_changed_at": case((changed, now), else_=Asset.state_changed_at),
        "state_changed_by": case((changed, CONFIGURATION_ACTOR), else_=Asset.state_changed_by),
        "state_reason": case((changed, "declared in the configuration"), else_=Asset.state_reason),
    }
    for org_config in config.organisations:
        org = organisations[org_config.slug]
        declared = {
            (str(a.kind), a.value): {
                "organisation_id": org.id,
                "kind": str(a.kind),
                "value": a.value,
                "criticality": str(a.criticality),
                "tags": list(a.tags),
                "dkim_selectors": list(a.dkim_selectors),
                "origin": str(AssetOrigin.CONFIGURATION),
                "state": str(AssetState.ACTIVE),
                "first_seen": now,
                "last_seen": now,
                "gone_runs": 0,
            }
            for a in org_config.assets
        }
        upsert(
            session,
            Asset,
            list(declared.values()),
            key=["organisation_id", "kind", "value"],
            update_columns=[
                "criticality",
                "tags",
                "dkim_selectors",
                "origin",
                "state",
                "last_seen",
            ],
            also_set=declaration,
        )
        stale = [
            asset.id
            for asset in session.scalars(
                select(Asset)
                .filter_by(organisation_id=org.id, origin=str(AssetOrigin.CONFIGURATION))
                .where(Asset.active)
                .execution_options(**fresh)
            )
            if (asset.kind, asset.value) not in declared
        ]
        if stale:
            session.execute(
                update(Asset)
                .where(Asset.id.in_(stale), Asset.active)
                .values(
                    state=str(AssetState.RETIRED),
                    state_changed_at=now,
                    state_changed_by=CONFIGURATION_ACTOR,
                    state_reason="removed from the configuration",
                )
            )
    session.expire_all()  # objects read earlier in the session see what the statements wrote
    after = _asset_state(session)
    kept = set(session.scalars(select(CurrentScore.organisation_id)))
    for org in organisations.values():
        if before.get(org.id) != after.get(org.id) or org.id not in kept:
            refresh_current_score(session, org.id, now=now)
    return organisations


# --- reconcile -------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservedFinding:
    """A finding as a scan saw it, ready for reconcile."""

    check_id: str
    subject: str
    target: str  # the scanned subject that reported it
    asset: str
    category: str
    severity: str
    evidence: Mapping[str, Any]
    reproduce: str | None = None


@dataclass
class ReconcileCounts:
    opened: int = 0
    seen: int = 0
    resolved: int = 0
    reopened: int = 0
    expired: int = 0

    def add(self, other: ReconcileCounts) -> None:
        for name in ("opened", "seen", "resolved", "reopened", "expired"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _event(
    finding: Finding, kind: EventKind, at: dt.datetime, run_id: int | None, **extra: Any
) -> None:
    finding.events.append(FindingEvent(kind=kind, at=at, run_id=run_id, **extra))


def expire_decisions(session: Session, now: dt.datetime, organisation_id: int | None = None) -> int:
    """Return accepted risks and false positives whose expiry has passed to open.

    The `expired` event is dated when the decision ran out, not when this noticed it, so
    what changed in a period does not depend on when the next scan ran.
    """
    query = select(Finding).where(
        Finding.status.in_(list(DECISIONS)), Finding.decision_until <= now
    )
    if organisation_id is not None:
        query = query.where(Finding.organisation_id == organisation_id)
    expired = 0
    for finding in session.scalars(query):
        finding.status = FindingStatus.OPEN
        at = finding.decision_until or now
        _event(finding, EventKind.EXPIRED, at, None, note=f"{finding.decision} expired")
        expired += 1
    return expired


def _decision_holds(finding: Finding, now: dt.datetime) -> bool:
    return finding.decision is not None and (
        finding.decision_until is None or finding.decision_until > now
    )


def reconcile(
    session: Session,
    *,
    organisation: Organisation,
    collector: str,
    run_id: int,
    observed: Iterable[ObservedFinding],
    scanned_ok: Collection[str],
    now: dt.datetime,
    unjudged: Collection[str] = (),
) -> ReconcileCounts:
    """Apply one run's observations for one organisation and collector to the findings.

    - new fingerprint → open (event `opened`);
    - open, seen again → `last_seen` only (an event only when the evidence changed);
    - resolved, seen again → reopened (first seen kept), or back to a person's decision
      if it still holds;
    - not seen, and its target was scanned completely (`scanned_ok`) → resolved;
    - targets that failed, were partial or were not scanned: untouched;
    - findings of `unjudged` checks (their data was out of date): untouched.
    """
    counts = ReconcileCounts(expired=expire_decisions(session, now, organisation.id))
    current = {
        f.fingerprint: f
        for f in session.scalars(
            select(Finding).where(
                Finding.organisation_id == organisation.id, Finding.collector == collector
            )
        )
    }
    seen: set[str] = set()
    for item in observed:
        key = fingerprint(organisation.slug, item.check_id, item.subject)
        if key in seen:
            continue
        seen.add(key)
        finding = current.get(key)
        evidence = dict(item.evidence)
        if finding is None:
            finding = Finding(
                fingerprint=key,
                organisation_id=organisation.id,
                collector=collector,
                check_id=item.check_id,
                subject=item.subject,
                first_seen=now,
                status=FindingStatus.OPEN,
            )
            session.add(finding)
            _event(finding, EventKind.OPENED, now, run_id)
            counts.opened += 1
        elif finding.status == FindingStatus.RESOLVED:
            finding.status = (
                FindingStatus(str(finding.decision))
                if _decision_holds(finding, now)
                else FindingStatus.OPEN
            )
            finding.resolved_at = None
            _event(finding, EventKind.REOPENED, now, run_id)
            counts.reopened += 1
        else:
            counts.seen += 1
            if _stable(finding.evidence) != _stable(evidence):
                _event(finding, EventKind.SEEN, now, run_id, note="evidence changed")
        finding.target, finding.asset = item.target, item.asset
        finding.category, finding.severity = item.category, item.severity
        finding.evidence, finding.reproduce = evidence, item.reproduce
        finding.last_seen, finding.last_run_id = now, run_id
    for key, finding in current.items():
        if key in seen or finding.status == FindingStatus.RESOLVED:
            continue
        if finding.check_id in unjudged:
            continue
        if finding.target in scanned_ok:
            finding.status = FindingStatus.RESOLVED
            finding.resolved_at = now
            _event(finding, EventKind.RESOLVED, now, run_id)
            counts.resolved += 1
    session.flush()
    refresh_current_score(session, organisation.id, now=now)
    return counts


def _stable(evidence: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (evidence or {}).items() if k not in REFRESHED_EVIDENCE}


# --- decisions by people ---------------------------------------------------------------


class NotVisible(LookupError):
    """The finding does not exist for this caller (never says which)."""


def decide(
    session: Session,
    *,
    finding_id: int,
    visible: Collection[str],
    decision: FindingStatus,
    actor: str,
    reason: str,
    until: dt.datetime,
    now: dt.datetime,
) -> Finding:
    """Accept a risk or mark a false positive, with a justification and an expiry date."""
    if decision not in DECISIONS:
        raise ValueError(f"not a decision: {decision}")
    if not reason.strip():
        raise ValueError("a justification is required")
    if until <= now:
        raise ValueError("the expiry date must be in the future")
    finding = get_finding(session, finding_id, visible)
    finding.decision, finding.decided_by, finding.decided_at = str(decision), actor, now
    finding.decision_reason, finding.decision_until = reason.strip(), until
    if finding.status != FindingStatus.RESOLVED:
        finding.status = decision
    kind = EventKind.ACCEPTED if decision == FindingStatus.ACCEPTED else EventKind.FALSE_POSITIVE
    _event(finding, kind, now, None, actor=actor, note=reason.strip(), until=until)
    session.flush()
    refresh_current_score(session, finding.organisation_id, now=now)
    return finding


def get_finding(session: Session, finding_id: int, visible: Collection[str]) -> Finding:
    finding = session.scalar(
        select(Finding)
        .join(Organisation)
        .where(Finding.id == finding_id, Organisation.slug.in_(list(visible)))
    )
    if finding is None:
        raise NotVisible(finding_id)
    return finding


def revoke(
    session: Session,
    *,
    finding_id: int,
    visible: Collection[str],
    actor: str,
    reason: str,
    now: dt.datetime,
) -> Finding:
    """End a person's decision on a finding now (undo an acceptance or a false positive):
    the finding counts as open again, and its history keeps who decided and who revoked.
    The event's note is the person's reason as written (shown as it is, in any language);
    the decision revoked is the event before it."""
    if not reason.strip():
        raise ValueError("a reason is required")
    finding = get_finding(session, finding_id, visible)
    if finding.decision is None or (
        finding.decision_until is not None and finding.decision_until <= now
    ):
        raise ValueError("no decision in force")
    note = reason.strip()
    if finding.status in DECISIONS:
        finding.status = FindingStatus.OPEN
    finding.decision = finding.decided_by = finding.decided_at = None
    finding.decision_reason = finding.decision_until = None
    _event(finding, EventKind.REVOKED, now, None, actor=actor, note=note)
    session.flush()
    refresh_current_score(session, finding.organisation_id, now=now)
    return finding


# --- runs ------------------------------------------------------------------------------


def process_alive(host: str | None, pid: int | None) -> bool:
    """Whether process `pid` of `host` may still run (True for another host: who knows)."""
    if host != socket.gethostname():
        return True
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_interrupted_runs(session: Session, now: dt.datetime) -> list[int]:
    """Runs marked running whose process on this host is gone are interrupted.

    Runs of another host are left alone: their process may be alive.
    """
    runs = [
        run
        for run in session.scalars(select(ScanRun).where(ScanRun.status == RunStatus.RUNNING))
        if run.host == socket.gethostname() and not process_alive(run.host, run.pid)
    ]
    for run in runs:
        run.status = RunStatus.INTERRUPTED
        run.finished_at = now
        run.message = (
            "the scanning process ended before the run's outcome was recorded; nothing was resolved"
        )
    session.flush()
    return [r.id for r in runs]
