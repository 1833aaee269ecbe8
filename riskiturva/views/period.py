"""A period summary for the monthly reports: what a report says, no words, no rendering.

`organisation_report` and `portfolio_report` read the store for one month with a fixed
`now` and return frozen dataclasses that render in any language. Like every view they take
the caller's visible organisations: a report of an organisation the caller may not see
raises `NotVisible`.

The score is live at the month's end (or `now`, if earlier), from the findings standing
when the report is made (the monthly job runs on the 1st, so that is the month's end); the
trend and the previous month's figure come from the snapshots, and the month's changes
from the findings' events (`views.changes`), so they are exact for any past month. The
exceptions register is the one in force at the same moment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from riskiturva.checks import Check, Severity
from riskiturva.models import Asset, Finding, FindingStatus, ScanError, ScanRun, SubjectState
from riskiturva.period import Month
from riskiturva.scoring import Action, OrganisationScore, due_date, priorities
from riskiturva.store import NotVisible
from riskiturva.views.changes import Change, ChangeKind, Changes, changes
from riskiturva.views.clock import local_day
from riskiturva.views.exceptions import ExceptionsRegister, registers
from riskiturva.views.live import live_score, live_scores
from riskiturva.views.organisations import OrganisationRef, organisations
from riskiturva.views.organisations import organisation as visible_organisation
from riskiturva.views.severity import registry_severity, worst_first_key
from riskiturva.views.software import PatchStatus, patch_status
from riskiturva.views.trend import SnapshotPoint, score_history

TREND_MONTHS = 12
TOP_PRIORITIES = 5
APPENDIX_SEVERITIES = (Severity.CRITICAL, Severity.HIGH)


@dataclass(frozen=True, slots=True)
class MonthPoint:
    """An organisation's standing at the end of one month (its last snapshot then)."""

    month: Month
    day: dt.date
    score: float
    grade: str
    category_scores: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class OpenFinding:
    """A row of the appendix for the IT staff."""

    check_id: str
    severity: str
    subject: str
    asset: str
    first_seen: dt.date
    due: dt.date | None
    overdue: bool


@dataclass(frozen=True, slots=True)
class AssetCoverage:
    """Whether an asset was checked this month, and which scans of it failed."""

    kind: str
    value: str
    criticality: str
    last_success: dt.datetime | None
    checked: bool  # some scan of it succeeded this month
    failing: tuple[str, ...]  # collectors whose latest attempt on it failed

    @property
    def complete(self) -> bool:
        """Checked this month, and no scan of it is failing."""
        return self.checked and not self.failing


@dataclass(frozen=True, slots=True)
class ErrorSummary:
    """Targets that could not be checked this month, grouped by collector and reason."""

    collector: str
    kind: str
    subjects: tuple[str, ...]
    occurrences: int


@dataclass(frozen=True, slots=True)
class Coverage:
    runs: int
    collectors: tuple[str, ...]
    assets: tuple[AssetCoverage, ...]
    errors: tuple[ErrorSummary, ...]

    @property
    def assets_complete(self) -> int:
        return sum(a.complete for a in self.assets)

    @property
    def incomplete(self) -> tuple[AssetCoverage, ...]:
        """Assets not checked this month, or with a failing scan: not known to be fine."""
        return tuple(a for a in self.assets if not a.complete)

    @property
    def error_count(self) -> int:
        return sum(e.occurrences for e in self.errors)


@dataclass(frozen=True)
class OrganisationReport:
    organisation: str
    names: Mapping[str, str]  # language → name
    month: Month
    as_of: dt.date  # the day the standing findings and priorities are judged on
    at: dt.datetime  # the moment the score is live at: the month's end, or `generated_at`
    generated_at: dt.datetime
    score: OrganisationScore
    checked: bool  # something was scanned successfully at some time
    actions: tuple[Action, ...]  # every priority, best first
    previous: MonthPoint | None  # the end of the previous month
    trend: tuple[MonthPoint | None, ...]  # TREND_MONTHS months, oldest first
    changes: Changes  # during the month
    exceptions: ExceptionsRegister  # in force at `at`
    coverage: Coverage
    appendix: tuple[OpenFinding, ...]
    patch: PatchStatus  # known-exploited vulnerabilities and end of support, on `as_of`

    @property
    def new(self) -> tuple[Change, ...]:
        return self.changes.new

    @property
    def resolved(self) -> tuple[Change, ...]:
        return self.changes.resolved

    @property
    def reopened(self) -> tuple[Change, ...]:
        return self.changes.reopened

    @property
    def worse(self) -> tuple[Change, ...]:
        """New and reopened problems: what got worse during the month."""
        return tuple(sorted((*self.new, *self.reopened), key=worst_first_key))

    @property
    def ended(self) -> tuple[Change, ...]:
        """Decisions that expired or were revoked during the month."""
        return tuple(sorted((*self.changes.expired, *self.changes.revoked), key=worst_first_key))

    @property
    def delta(self) -> float | None:
        if self.previous is None:
            return None
        return round(self.score.score - self.previous.score, 1)

    @property
    def top_actions(self) -> tuple[Action, ...]:
        return self.actions[:TOP_PRIORITIES]

    @property
    def overdue(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.overdue)

    @property
    def new_by_severity(self) -> dict[str, int]:
        return self.changes.by_severity(ChangeKind.NEW)

    @property
    def reopened_by_severity(self) -> dict[str, int]:
        return self.changes.by_severity(ChangeKind.REOPENED)

    @property
    def resolved_by_severity(self) -> dict[str, int]:
        return self.changes.by_severity(ChangeKind.RESOLVED)

    @property
    def trend_months(self) -> tuple[Month, ...]:
        return tuple(self.month.back(TREND_MONTHS - 1 - i) for i in range(TREND_MONTHS))


def _as_of(month: Month, now: dt.datetime) -> tuple[dt.date, dt.datetime]:
    """The day and instant the month is judged on: its end, or `now` if that is earlier."""
    return min(local_day(now), month.last_day), min(now, month.end)


def _monthly_points(points: Sequence[SnapshotPoint]) -> dict[Month, MonthPoint]:
    """The last snapshot of each month."""
    last: dict[Month, MonthPoint] = {}
    for point in points:  # oldest first
        month = Month.of(point.day)
        last[month] = MonthPoint(
            month, point.day, point.score, point.grade, dict(point.category_scores)
        )
    return last


def _current_point(month: Month, day: dt.date, score: OrganisationScore) -> MonthPoint:
    categories = {c: s.score for c, s in score.categories.items()}
    return MonthPoint(month, day, score.score, str(score.grade), categories)


def _coverage(session: Session, organisation: OrganisationRef, month: Month) -> Coverage:
    runs = list(
        session.scalars(
            select(ScanRun).where(ScanRun.started_at >= month.start, ScanRun.started_at < month.end)
        )
    )
    runs = [r for r in runs if organisation.slug in (r.organisations or [])]
    run_ids = [r.id for r in runs]
    errors: dict[tuple[str, str], tuple[set[str], int]] = {}
    if run_ids:
        for collector, kind, subject in session.execute(
            select(ScanRun.collector, ScanError.kind, ScanError.subject)
            .join(ScanRun, ScanError.run_id == ScanRun.id)
            .where(ScanError.organisation_id == organisation.id, ScanError.run_id.in_(run_ids))
        ):
            subjects, count = errors.get((collector, kind), (set(), 0))
            subjects.add(subject)
            errors[(collector, kind)] = (subjects, count + 1)
    states = list(
        session.scalars(select(SubjectState).where(SubjectState.organisation_id == organisation.id))
    )
    assets = []
    for asset in session.scalars(
        select(Asset)
        .where(Asset.organisation_id == organisation.id, Asset.active)
        .order_by(Asset.kind, Asset.value)
    ):
        mine = [s for s in states if s.asset == asset.value]
        successes = [s.last_success_at for s in mine if s.last_success_at is not None]
        last_success = max(successes, default=None)
        assets.append(
            AssetCoverage(
                kind=asset.kind,
                value=asset.value,
                criticality=asset.criticality,
                last_success=last_success,
                checked=last_success is not None and last_success >= month.start,
                failing=tuple(sorted({s.collector for s in mine if s.last_status == "error"})),
            )
        )
    return Coverage(
        runs=len(runs),
        collectors=tuple(sorted({r.collector for r in runs})),
        assets=tuple(assets),
        errors=tuple(
            ErrorSummary(collector, kind, tuple(sorted(subjects)), count)
            for (collector, kind), (subjects, count) in sorted(errors.items())
        ),
    )


def _appendix(
    session: Session, organisation: OrganisationRef, registry: Mapping[str, Check], today: dt.date
) -> tuple[OpenFinding, ...]:
    rows = []
    for finding in session.scalars(
        select(Finding).where(
            Finding.organisation_id == organisation.id, Finding.status == FindingStatus.OPEN
        )
    ):
        severity = registry_severity(finding, registry)
        if severity not in APPENDIX_SEVERITIES:
            continue
        first_seen = finding.first_seen.date()
        check = registry.get(finding.check_id)
        due = due_date(severity, first_seen, check.deadline_days if check else None)
        rows.append(
            OpenFinding(
                check_id=finding.check_id,
                severity=str(severity),
                subject=finding.subject,
                asset=finding.asset,
                first_seen=first_seen,
                due=due,
                overdue=due is not None and today > due,
            )
        )
    return tuple(sorted(rows, key=lambda r: (-_RANK[r.severity], r.check_id, r.subject)))


_RANK = {str(s): s.rank for s in Severity}


def organisation_report(
    session: Session,
    slug: str,
    month: Month,
    *,
    visible: Collection[str],
    now: dt.datetime,
    registry: Mapping[str, Check],
) -> OrganisationReport:
    """Everything the monthly report of one organisation says, for `month` as of `now`."""
    organisation = visible_organisation(session, visible, slug)
    today, at = _as_of(month, now)
    live = live_score(session, organisation, now=at, registry=registry)
    history = score_history(
        session,
        [slug],
        since=month.back(TREND_MONTHS - 1).first_day,
        until=month.previous().last_day,
    ).get(slug, [])
    monthly = _monthly_points(history)
    monthly[month] = _current_point(month, today, live.score)
    trend = tuple(monthly.get(month.back(TREND_MONTHS - 1 - i)) for i in range(TREND_MONTHS))
    return OrganisationReport(
        organisation=slug,
        names=organisation.names,
        month=month,
        as_of=today,
        at=at,
        generated_at=now,
        score=live.score,
        checked=live.checked,
        actions=tuple(priorities(live.score, registry=registry, today=today)),
        previous=monthly.get(month.previous()),
        trend=trend,
        changes=changes(session, visible, slug, since=month.start, until=at, registry=registry),
        exceptions=registers(session, [organisation], now=at, registry=registry)[slug],
        coverage=_coverage(session, organisation, month),
        appendix=_appendix(session, organisation, registry, today),
        patch=patch_status(session, organisation, today=today, registry=registry),
    )


# --- the partner's portfolio -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortfolioRow:
    organisation: str
    names: Mapping[str, str]
    score: float
    grade: str
    previous: MonthPoint | None
    trend: tuple[MonthPoint | None, ...]
    open_counts: Mapping[str, int]

    @property
    def delta(self) -> float | None:
        return None if self.previous is None else round(self.score - self.previous.score, 1)

    @property
    def worsened(self) -> bool:
        return self.delta is not None and self.delta < 0


@dataclass(frozen=True, slots=True)
class CommonProblem:
    """One check open in several of the partner's organisations."""

    check_id: str
    severity: str
    organisations: tuple[str, ...]
    instances: int


@dataclass(frozen=True)
class PortfolioReport:
    partner: str
    month: Month
    as_of: dt.date
    generated_at: dt.datetime
    rows: tuple[PortfolioRow, ...]
    common: tuple[CommonProblem, ...]

    @property
    def worsened(self) -> tuple[PortfolioRow, ...]:
        return tuple(sorted((r for r in self.rows if r.worsened), key=lambda r: r.delta or 0))

    @property
    def trend_months(self) -> tuple[Month, ...]:
        return tuple(self.month.back(TREND_MONTHS - 1 - i) for i in range(TREND_MONTHS))


def portfolio_report(
    session: Session,
    partner: str,
    month: Month,
    *,
    visible: Collection[str],
    now: dt.datetime,
    registry: Mapping[str, Check],
    common_limit: int = 10,
) -> PortfolioReport:
    """Every visible organisation of the partner: grade, trend, common problems."""
    refs = organisations(session, visible, partner=partner)
    if not refs:
        raise NotVisible(partner)
    today, at = _as_of(month, now)
    history = score_history(
        session,
        [o.slug for o in refs],
        since=month.back(TREND_MONTHS - 1).first_day,
        until=month.previous().last_day,
    )
    scores = live_scores(session, refs, now=at, registry=registry)
    rows = []
    problems: dict[str, tuple[str, list[str], int]] = {}
    for organisation in refs:
        score = scores[organisation.slug].score
        monthly = _monthly_points(history.get(organisation.slug, []))
        monthly[month] = _current_point(month, today, score)
        rows.append(
            PortfolioRow(
                organisation=organisation.slug,
                names=organisation.names,
                score=score.score,
                grade=str(score.grade),
                previous=monthly.get(month.previous()),
                trend=tuple(
                    monthly.get(month.back(TREND_MONTHS - 1 - i)) for i in range(TREND_MONTHS)
                ),
                open_counts=dict(score.open_counts),
            )
        )
        for group in score.groups:
            severity, slugs, instances = problems.get(group.check_id, (str(group.severity), [], 0))
            slugs.append(organisation.slug)
            problems[group.check_id] = (severity, slugs, instances + len(group.subjects))
    common = sorted(
        (
            CommonProblem(check_id, severity, tuple(slugs), instances)
            for check_id, (severity, slugs, instances) in problems.items()
            if len(slugs) > 1
        ),
        key=lambda p: (-len(p.organisations), -_RANK.get(p.severity, 0), p.check_id),
    )
    return PortfolioReport(
        partner=partner,
        month=month,
        as_of=today,
        generated_at=now,
        rows=tuple(rows),
        common=tuple(common[:common_limit]),
    )
