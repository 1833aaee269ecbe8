"""Alerts into the outbox, inside the caller's transaction.

`record_run` is called by the runner right after `store.reconcile`, in the same
transaction: it reads what the reconcile wrote (the run's finding events), the
certificates seen, the score against yesterday's snapshot, the failure streak and the
decisions about to expire, evaluates the rules, and writes each new alert with one
notification per destination. If the transaction fails, neither findings nor alerts
exist; if it commits, both do — nothing is lost between the two, nothing announced that
did not happen. Delivery is the sender's job (`riskiturva.alerts.sender`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from riskiturva.alerts.models import (
    Alert,
    AlertNotification,
    NotificationStatus,
    ScanStreak,
    Urgency,
)
from riskiturva.alerts.rules import (
    CERTIFICATE_EXPIRY_CHECKS,
    DIGEST_ONLY,
    AlertDraft,
    CertificateSeen,
    ExpiringDecision,
    FindingChange,
    ProposedAsset,
    RunFacts,
    ScanHealth,
    ScoreComparison,
    at_least,
    evaluate,
    grade_worse,
)
from riskiturva.checks import Check, Severity, load_registry
from riskiturva.collector import SubjectObservation, SubjectStatus
from riskiturva.config import Config
from riskiturva.models import (
    EventKind,
    Finding,
    FindingEvent,
    FindingStatus,
    Organisation,
    ScoreSnapshot,
    SubjectState,
)

_CHANGES = (EventKind.OPENED, EventKind.REOPENED, EventKind.RESOLVED)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Destination:
    """Where a notification goes: `email:<address>` or `channel:<name>`, in a language."""

    key: str
    language: str
    digest: bool = True  # also takes the daily digest of non-urgent alerts


def destinations(config: Config, organisation: str, severity: str) -> list[Destination]:
    """The organisation's IT contacts and channels, and its partners' security teams (all
    alerts, or only critical ones). Management — the report recipients — is not here."""
    alerts = config.settings.alerts
    try:
        org = config.organisation(organisation)
    except KeyError:
        return []
    found: dict[str, Destination] = {}

    def add(contacts: Iterable[Any], channels: Iterable[str]) -> None:
        for contact in contacts:
            key = f"email:{contact.email}"
            found.setdefault(key, Destination(key, contact.language))
        for name in channels:
            channel = alerts.channel(name)
            if channel is not None:
                key = f"channel:{name}"
                found.setdefault(key, Destination(key, channel.language, channel.digest))

    add(org.alerts.contacts, org.alerts.channels)
    for partner in config.partners:
        if organisation not in partner.organisations:
            continue
        if partner.alerts.receives == "critical" and severity != Severity.CRITICAL:
            continue
        add(partner.alerts.contacts, partner.alerts.channels)
    return list(found.values())


def next_digest(now: dt.datetime, digest_time: str, timezone: str) -> dt.datetime:
    """The first digest time strictly after `now` (local wall-clock time, in UTC)."""
    zone = ZoneInfo(timezone)
    hour, minute = (int(p) for p in digest_time.split(":"))
    local = now.astimezone(zone)
    day = local.date()
    for _ in range(3):
        candidate = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)
        if candidate > local:
            return candidate.astimezone(dt.UTC)
        day += dt.timedelta(days=1)
    raise AssertionError("unreachable: a digest time exists within two days")


def urgency(config: Config, draft: AlertDraft) -> Urgency:
    if draft.rule in DIGEST_ONLY:
        return Urgency.DIGEST
    immediate = at_least(draft.severity, config.settings.alerts.immediate_from)
    return Urgency.IMMEDIATE if immediate else Urgency.DIGEST


# --- recording -------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """An alert as written: its id, the draft it came from, and when it is due."""

    id: int
    draft: AlertDraft
    urgency: Urgency

    @property
    def rule(self) -> str:
        return str(self.draft.rule)


def record(
    session: Session,
    config: Config,
    organisation: Organisation,
    drafts: Sequence[AlertDraft],
    *,
    now: dt.datetime,
    run_id: int | None = None,
) -> list[Recorded]:
    """Write the drafts that are new (dedupe key) and not throttled, with notifications.

    A few statements for the whole batch, whatever its size: a run that opens 10,000
    findings must not cost 10,000 round trips (nor an ORM flush per alert).
    """
    settings = config.settings.alerts
    window = dt.timedelta(hours=settings.flap_window_hours)
    fresh = _not_throttled(session, drafts, since=now - window, now=now)
    unique = list({d.dedupe_key: d for d in fresh}.values())
    if not unique:
        return []
    rows = [
        {
            "uid": uuid.uuid4().hex,
            "dedupe_key": d.dedupe_key,
            "throttle_key": d.throttle_key,
            "rule": str(d.rule),
            "organisation_id": organisation.id,
            "finding_id": d.finding_id,
            "run_id": run_id,
            "severity": d.severity,
            "urgency": str(urgency(config, d)),
            "subject": d.subject[:500],
            "check_id": d.check_id,
            "details": dict(d.details),
            "created_at": now,
            "repeats": 0,
        }
        for d in unique
    ]
    inserted = dict(_insert_new(session, rows))  # dedupe key → id; said before: absent
    digest_at = next_digest(now, settings.digest_time, config.settings.schedules.timezone)
    recorded, notifications = [], []
    for draft in unique:
        alert_id = inserted.get(draft.dedupe_key)
        if alert_id is None:
            continue  # one alert per (rule, what it is about)
        when = urgency(config, draft)
        recorded.append(Recorded(alert_id, draft, when))
        notifications += [
            {
                "alert_id": alert_id,
                "destination": destination.key,
                "language": destination.language,
                "urgency": str(when),
                "due_at": now if when is Urgency.IMMEDIATE else digest_at,
                "status": NotificationStatus.PENDING,
            }
            for destination in destinations(config, organisation.slug, draft.severity)
            if when is Urgency.IMMEDIATE or destination.digest
        ]
    if notifications:
        session.execute(insert(cast(Table, AlertNotification.__table__)), notifications)
    return recorded


def _not_throttled(
    session: Session, drafts: Sequence[AlertDraft], *, since: dt.datetime, now: dt.datetime
) -> list[AlertDraft]:
    """Drafts whose throttle key has no alert inside the window; for the others, a repeat
    is counted on the latest such alert."""
    keys = {d.throttle_key for d in drafts if d.throttle_key}
    latest: dict[str, Alert] = {}
    for chunk in _chunks(sorted(keys)):
        for alert in session.scalars(
            select(Alert).where(Alert.throttle_key.in_(chunk), Alert.created_at >= since)
        ):
            known = latest.get(alert.throttle_key or "")
            if known is None or alert.created_at > known.created_at:
                latest[alert.throttle_key or ""] = alert
    fresh = []
    for draft in drafts:
        repeat = latest.get(draft.throttle_key or "")
        if repeat is None:
            fresh.append(draft)
        else:
            repeat.repeats += 1
            repeat.last_repeat_at = now
    return fresh


def _chunks(values: Sequence[_T], size: int = 500) -> Iterator[Sequence[_T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """INSERT … ON CONFLICT (dedupe_key) DO NOTHING: (key, id) of the rows inserted.

    Two runs of one organisation (two collectors in parallel) may raise the same alert;
    the database, not a read before the write, decides which one records it.
    """
    dialect = session.get_bind().dialect.name
    insert_into = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, Alert.__table__)
    statement = (
        insert_into(table)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.dedupe_key, table.c.id)
    )
    found: list[tuple[str, int]] = []
    for start in range(0, len(rows), 500):
        result = session.execute(statement, rows[start : start + 500])
        found += [(key, alert_id) for key, alert_id in result]
    return found


# --- the facts of a run ----------------------------------------------------------------


def scan_outcome(
    failure: BaseException | None, observations: Sequence[SubjectObservation]
) -> tuple[bool | None, str | None]:
    """Whether the run failed to scan the organisation (None: interrupted, not counted),
    and the first error. Failed: the collector crashed, or no target could be reached."""
    if isinstance(failure, InterruptedError | KeyboardInterrupt | SystemExit):
        return None, None
    if failure is not None:
        return True, f"{type(failure).__name__}: {failure}"[:500]
    errors = [o for o in observations if o.status is SubjectStatus.ERROR]
    reached = any(o.status is not SubjectStatus.ERROR for o in observations)
    first = errors[0].error if errors else None
    message = f"{first.kind}: {first.message}"[:500] if first else None
    return (bool(errors) and not reached), message


def _update_streak(
    session: Session,
    organisation: Organisation,
    collector: str,
    run_id: int,
    failed: bool | None,
    error: str | None,
) -> ScanHealth | None:
    if failed is None:
        return None
    streak = session.scalar(
        select(ScanStreak).where(
            ScanStreak.organisation_id == organisation.id, ScanStreak.collector == collector
        )
    )
    if streak is None:
        streak = ScanStreak(organisation_id=organisation.id, collector=collector, failures=0)
        session.add(streak)
    if failed:
        if not streak.failures:
            streak.first_failed_run_id = run_id
        streak.failures += 1
        streak.last_error = error
    else:
        streak.failures, streak.first_failed_run_id, streak.last_error = 0, None, None
    streak.last_run_id = run_id
    return ScanHealth(collector, streak.failures, streak.first_failed_run_id, streak.last_error)


def _changes(
    session: Session, organisation: Organisation, run_id: int, registry: Mapping[str, Check]
) -> tuple[FindingChange, ...]:
    rows = session.execute(
        select(
            FindingEvent.kind,
            Finding.id,
            Finding.fingerprint,
            Finding.check_id,
            Finding.subject,
            Finding.target,
            Finding.collector,
            Finding.severity,
            Finding.status,
        )
        .join(Finding, FindingEvent.finding_id == Finding.id)
        .where(
            FindingEvent.run_id == run_id,
            Finding.organisation_id == organisation.id,
            FindingEvent.kind.in_([str(k) for k in _CHANGES]),
        )
        .order_by(FindingEvent.id)
    )
    changes = []
    for kind, finding_id, fingerprint, check_id, subject, target, collector, stored, status in rows:
        check = registry.get(check_id)
        changes.append(
            FindingChange(
                kind=kind,
                finding_id=finding_id,
                fingerprint=fingerprint,
                check_id=check_id,
                subject=subject,
                target=target,
                collector=collector,
                severity=str(check.severity) if check else stored,
                status=status,
            )
        )
    return tuple(changes)


def _alerted(session: Session, finding_ids: Iterable[int]) -> frozenset[int]:
    ids = sorted(set(finding_ids))
    alerted: set[int] = set()
    for chunk in _chunks(ids):
        query = select(Alert.finding_id).where(Alert.finding_id.in_(chunk)).distinct()
        alerted.update(i for i in session.scalars(query) if i is not None)
    return frozenset(alerted)


def _certificates(
    session: Session, organisation: Organisation, collector: str, run_id: int
) -> tuple[CertificateSeen, ...]:
    """Certificates in the facts of the subjects this run scanned (any collector whose
    facts carry `certificate.not_after` and `certificate.sha256_fingerprint`)."""
    states = session.scalars(
        select(SubjectState).where(
            SubjectState.organisation_id == organisation.id,
            SubjectState.collector == collector,
            SubjectState.last_run_id == run_id,
            SubjectState.last_status == str(SubjectStatus.OK),
        )
    )
    expiry_findings = {
        f.subject: f.id
        for f in session.scalars(
            select(Finding).where(
                Finding.organisation_id == organisation.id,
                Finding.check_id.in_(sorted(CERTIFICATE_EXPIRY_CHECKS)),
                Finding.status == FindingStatus.OPEN,
            )
        )
    }
    seen = []
    for state in states:
        certificate = (state.last_observation or {}).get("certificate")
        if not isinstance(certificate, dict):
            continue
        try:
            not_after = dt.datetime.fromisoformat(str(certificate["not_after"]))
            sha256 = str(certificate["sha256_fingerprint"])
        except (KeyError, ValueError):
            continue
        if not_after.tzinfo is None:
            not_after = not_after.replace(tzinfo=dt.UTC)
        seen.append(
            CertificateSeen(state.subject, sha256, not_after, expiry_findings.get(state.subject))
        )
    return tuple(seen)


def _score(
    session: Session,
    config: Config,
    organisation: Organisation,
    now: dt.datetime,
    points: float,
) -> ScoreComparison | None:
    """The live score against the last snapshot of an earlier day (None without one, or
    when the scoring model changed in between), and the score without the findings that
    were alerted since then."""
    from riskiturva.inputs import scoring_inputs
    from riskiturva.scoring import score_organisation

    zone = ZoneInfo(config.settings.schedules.timezone)
    today = now.astimezone(zone).date()
    baseline = session.scalar(
        select(ScoreSnapshot)
        .where(ScoreSnapshot.organisation_id == organisation.id, ScoreSnapshot.day < today)
        .order_by(ScoreSnapshot.day.desc())
        .limit(1)
    )
    if baseline is None:
        return None
    findings, assets = scoring_inputs(session, organisation, now=now)
    score = score_organisation(organisation.slug, findings, assets)
    if score.version != baseline.scoring_version:
        return None
    dropped = grade_worse(str(score.grade), baseline.grade) or (
        baseline.score - score.score >= points
    )
    if not dropped:  # nothing to explain
        return ScoreComparison(
            baseline.day, baseline.score, baseline.grade, score.score, str(score.grade),
            score.score, str(score.grade),
        )  # fmt: skip
    since = dt.datetime.combine(baseline.day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    told = set(
        session.execute(
            select(Finding.check_id, Finding.subject)
            .join(Alert, Alert.finding_id == Finding.id)
            .where(Alert.organisation_id == organisation.id, Alert.created_at >= since)
        ).all()
    )
    untold = [f for f in findings if (f.check_id, f.subject) not in told]
    unexplained = score_organisation(organisation.slug, untold, assets)
    return ScoreComparison(
        baseline.day, baseline.score, baseline.grade, score.score, str(score.grade),
        unexplained.score, str(unexplained.grade),
    )  # fmt: skip


def _decisions(
    session: Session, organisation: Organisation, now: dt.datetime, days: int
) -> tuple[ExpiringDecision, ...]:
    rows = session.scalars(
        select(Finding).where(
            Finding.organisation_id == organisation.id,
            Finding.status.in_([FindingStatus.ACCEPTED, FindingStatus.FALSE_POSITIVE]),
            Finding.decision_until > now,
            Finding.decision_until <= now + dt.timedelta(days=days),
        )
    )
    return tuple(
        ExpiringDecision(
            finding_id=f.id,
            fingerprint=f.fingerprint,
            check_id=f.check_id,
            subject=f.subject,
            severity=f.severity,
            decision=str(f.decision or f.status),
            decided_at=f.decided_at or now,
            until=f.decision_until,
            decided_by=f.decided_by,
        )
        for f in rows
        if f.decision_until is not None
    )


def record_run(
    session: Session,
    config: Config,
    *,
    organisation: Organisation,
    collector: str,
    run_id: int,
    failure: BaseException | None,
    observations: Sequence[SubjectObservation],
    now: dt.datetime,
    registry: Mapping[str, Check] | None = None,
) -> list[Recorded]:
    """After a reconcile, in its transaction: the alerts this run of `collector` calls for."""
    settings = config.settings.alerts
    if not settings.enabled:
        return []
    registry = load_registry() if registry is None else registry
    try:
        org_config = config.organisation(organisation.slug)
    except KeyError:
        return []
    rules = settings.rules.overridden_by(org_config.alerts.rules)
    failed, error = scan_outcome(failure, observations)
    changes = _changes(session, organisation, run_id, registry)
    facts = RunFacts(
        organisation=organisation.slug,
        changes=changes,
        alerted_findings=_alerted(session, (c.finding_id for c in changes if c.kind == "resolved")),
        certificates=_certificates(session, organisation, collector, run_id)
        if rules.certificate_expiry.enabled
        else (),
        scan=_update_streak(session, organisation, collector, run_id, failed, error),
        decisions=_decisions(session, organisation, now, rules.decision_expiring.days)
        if rules.decision_expiring.enabled
        else (),
    )
    drafts = evaluate(rules, facts, now)
    created = record(session, config, organisation, drafts, now=now, run_id=run_id)
    if rules.score_drop.enabled:
        # After the run's own alerts: a drop they tell is not told again as a score drop.
        comparison = _score(session, config, organisation, now, rules.score_drop.points)
        score = RunFacts(organisation.slug, score=comparison)
        drafts = evaluate(rules, score, now)
        created += record(session, config, organisation, drafts, now=now, run_id=run_id)
    return created


def record_proposals(
    session: Session,
    config: Config,
    organisation: Organisation,
    proposals: Sequence[ProposedAsset],
    *,
    now: dt.datetime,
) -> list[Recorded]:
    """Discovery's hook: alerts for assets it proposes, in its own transaction."""
    settings = config.settings.alerts
    if not settings.enabled or not proposals:
        return []
    try:
        org_config = config.organisation(organisation.slug)
    except KeyError:
        return []
    rules = settings.rules.overridden_by(org_config.alerts.rules)
    facts = RunFacts(organisation=organisation.slug, proposals=tuple(proposals))
    return record(session, config, organisation, evaluate(rules, facts, now), now=now)
