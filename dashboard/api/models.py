"""The API's edge: what a request may say and what a response says, as pydantic models.

The OpenAPI document is generated from these (flask-openapi3). Responses are built from
the read model's frozen dataclasses (`from_attributes`), so a field here is a field there;
`extra="forbid"` makes every object in the document closed (`additionalProperties: false`),
and a response that strays from its model fails when it is built, not in a client.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from riskiturva.api_tokens import TokenScope
from riskiturva.checks import Category, Effort, Severity
from riskiturva.models import AssetOrigin, AssetState, EventKind, FindingStatus, RunStatus
from riskiturva.models_auth import Role
from riskiturva.scoring import Grade
from riskiturva.tables import Format, Kind

Language = Literal["fi", "sv", "en"]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,63}$", description="an organisation's slug")]
# A moment in a response: in UTC, whatever zone it was stored or computed in.
Moment = Annotated[AwareDatetime, AfterValidator(lambda value: value.astimezone(dt.UTC))]
MAX_PAGE = 500
MAX_REASON = 2000


class _Model(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


class Problem(_Model):
    """Why a request was refused (400, 401, 403, 404, 429)."""

    error: str = Field(description="what was wrong, in English")


class InvalidField(_Model):
    """One part of a request that does not validate (422); the value sent is not echoed."""

    type: str = Field(description="pydantic's error type, e.g. `string_pattern_mismatch`")
    loc: list[str | int] = Field(description="where: query, path or body, then the field")
    msg: str


# --- requests --------------------------------------------------------------------------


class OrganisationPath(_Model):
    slug: Slug


class FindingPath(_Model):
    finding_id: int = Field(ge=1, le=2**63 - 1, description="a finding's id")


class LanguageQuery(_Model):
    language: Language | None = Field(
        None, description="language of titles and the answer; default: the holder's"
    )


class ScoreQuery(LanguageQuery):
    target: Grade = Field(Grade.B, description="the grade the plan aims for")


class ScansQuery(_Model):
    limit: int = Field(20, ge=1, le=100, description="the latest runs, at most this many")


class FindingsQuery(_Model):
    organisation: list[Slug] = Field(
        [], description="only these organisations (repeatable); default: every visible one"
    )
    status: list[FindingStatus] = Field([], description="only these statuses (repeatable)")
    severity: list[Severity] = Field([], description="only these severities (repeatable)")
    category: list[Category] = Field([], description="only these categories (repeatable)")
    asset: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        [], description="only findings on these assets (repeatable)"
    )
    since: AwareDatetime | None = Field(
        None,
        description="only findings with an event at or after this moment (found, evidence"
        " changed, resolved, reopened, decided, expired, revoked); ISO 8601 with a zone",
    )
    cursor: str | None = Field(
        None,
        pattern=r"^[0-9]{1,18}$",
        description="`next_cursor` of the previous page; absent: the first page",
    )
    limit: int = Field(100, ge=1, le=MAX_PAGE, description="findings per page")


class ExportPath(_Model):
    kind: Kind = Field(description="which table: findings, priorities, exceptions, portfolio")


class ExportQuery(_Model):
    format: Format = Field(Format.CSV, description="csv (for Excel) or xlsx")
    language: Language | None = Field(
        None, description="language of the header and the words; default: the holder's"
    )
    organisation: list[Slug] = Field(
        [], description="only these organisations (repeatable); default: every visible one"
    )
    status: list[FindingStatus] = Field([], description="findings only: these statuses")
    severity: list[Severity] = Field([], description="findings only: these severities")
    category: list[Category] = Field([], description="findings only: these categories")
    asset: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        [], description="findings only: on these assets"
    )


class DecisionBody(_Model):
    reason: str = Field(
        min_length=1,
        max_length=MAX_REASON,
        pattern=r"\S",
        description="the justification, shown in the register and the finding's history",
    )
    until: dt.date = Field(
        description="the last day it holds (Europe/Helsinki), after today and at most two"
        " years ahead"
    )


class RevokeBody(_Model):
    reason: str = Field(
        min_length=1, max_length=MAX_REASON, pattern=r"\S", description="why it is revoked"
    )


# --- responses -------------------------------------------------------------------------


class Me(_Model):
    """Whom the token acts as, and how far."""

    username: str
    role: Role
    scope: TokenScope
    token: str = Field(description="the token's name")
    organisations: list[Slug] = Field(description="what the token sees: narrowed by it")
    expires_at: Moment


class Names(_Model):
    fi: str
    sv: str
    en: str


class Organisation(_Model):
    slug: Slug
    names: Names
    partner: str | None


class OrganisationList(_Model):
    items: list[Organisation]


class CategoryLine(_Model):
    score: float
    grade: Grade


class CapLine(_Model):
    id: str
    grade: Grade
    binding: bool
    reason: str


class ExplanationLine(_Model):
    check_id: str
    title: str
    category: str
    severity: Severity
    instances: int
    penalty: float
    points_lost: float
    cap_points: float
    caps: list[str]


class PriorityLine(_Model):
    check_id: str
    title: str
    category: str
    severity: Severity
    instances: int
    subjects: list[str]
    gain: float = Field(description="points gained by fixing it everywhere")
    cap_points: float
    effort: Effort
    first_seen: dt.date
    due: dt.date | None
    overdue: bool


class PlanLine(_Model):
    target: Grade
    check_ids: list[str]
    effort_units: int
    score_after: float
    grade_after: Grade


class ExcludedLine(_Model):
    check_id: str
    subject: str
    status: str
    reason: str | None
    until: dt.date | None


class Score(_Model):
    """The score with its explanation line by line: what the scoring page shows."""

    organisation: Slug
    as_of: Moment
    score: float
    grade: Grade
    scoring_version: str
    answer: str
    checked: bool = Field(description="something was scanned successfully")
    categories: dict[str, CategoryLine]
    open_counts: dict[str, int]
    caps: list[CapLine]
    explanation: list[ExplanationLine]
    priorities: list[PriorityLine]
    plan: PlanLine
    excluded: list[ExcludedLine]


class Priorities(_Model):
    """What to fix first: every remediation, best gain per effort first."""

    organisation: Slug
    as_of: Moment
    items: list[PriorityLine]


class Finding(_Model):
    id: int
    organisation: Slug
    fingerprint: str
    check_id: str
    category: Category
    severity: Severity
    status: FindingStatus
    subject: str
    asset: str
    first_seen: Moment
    last_seen: Moment
    resolved_at: Moment | None
    evidence: dict[str, Any]
    reproduce: str | None


class FindingsPage(_Model):
    items: list[Finding]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")


class Event(_Model):
    kind: EventKind
    at: Moment
    actor: str | None
    note: str | None


class Decision(_Model):
    decision: FindingStatus
    decided_by: str | None
    decided_at: Moment | None
    reason: str | None
    until: Moment | None


class FindingDetail(_Model):
    """One finding with the decision in force and its history, oldest first."""

    finding: Finding
    organisation: Organisation
    decision: Decision | None
    events: list[Event]


class Evidence(_Model):
    source: str
    via: str
    detail: dict[str, Any]
    first_seen: Moment
    last_seen: Moment


class Asset(_Model):
    id: int
    organisation: Slug
    kind: str
    value: str
    origin: AssetOrigin
    state: AssetState
    criticality: str
    tags: list[str]
    owner_note: str | None
    first_seen: Moment
    last_seen: Moment
    decided_at: Moment | None
    decided_by: str | None
    reason: str | None
    gone_runs: int
    retirement_proposed_at: Moment | None
    evidence: list[Evidence]


class AssetList(_Model):
    items: list[Asset]


class Sighting(_Model):
    """A name or address seen outside the declared scope: never contacted or scanned."""

    value: str
    kind: str
    source: str
    via: str
    detail: dict[str, Any]
    first_seen: Moment
    last_seen: Moment
    in_scope_of: list[Slug] = Field(description="the holder's organisations whose scope covers it")
    in_another_scope: bool = Field(description="an organisation the holder does not see covers it")


class ServiceHint(_Model):
    domain: str
    service: str
    record: str


class Proposals(_Model):
    """What discovery proposes and waits for a decision on."""

    organisation: Slug
    new_assets: list[Asset]
    retirements: list[Asset]
    outside_scope: list[Sighting]
    services: list[ServiceHint]
    last_discovery: Moment | None


class ScanError(_Model):
    subject: str
    asset: str
    kind: str
    message: str


class ScanRun(_Model):
    id: int
    collector: str
    status: RunStatus
    started_at: Moment
    finished_at: Moment | None
    scheduled_for: Moment | None
    errors: list[ScanError] = Field(description="this organisation's targets only")
    counts: dict[str, Any] | None = Field(
        description="the run's totals, when the holder sees every organisation it covered"
    )


class ScanRunList(_Model):
    items: list[ScanRun]


class ExceptionEntry(_Model):
    finding_id: int
    check_id: str
    category: str
    severity: Severity
    subject: str
    asset: str
    decision: FindingStatus
    decided_by: str | None
    decided_at: Moment | None
    reason: str
    until: Moment | None
    days_left: int | None
    expiring: bool


class Exceptions(_Model):
    """Accepted risks and false positives in force, worst first."""

    organisation: Slug
    as_of: Moment
    entries: list[ExceptionEntry]
