"""The REST API under `/api/v1`: JSON for scripts, served by the dashboard's own Flask
server (never through Dash callbacks), documented by an OpenAPI 3.1 document generated
from the routes and their pydantic models (`docs/openapi.json`, `docs/api.md`).

A request carries a personal API token (`Authorization: Bearer rkt_…`,
`riskiturva.api_tokens`), never the dashboard's session cookie, so no other site can
make a browser call it. The token acts as its holder narrowed by its scope and
organisations; each route asks the read model (`riskiturva.views`) with that viewer's
visible organisations — what is not theirs reads as 404, the same as what does not
exist — and the holder's role decides as on the pages: management viewers read summaries
only, organisation staff alone decide on findings. Each token has its own rate limit.
Decisions are audited as on the finding page (`dashboard.decisions`); refusals too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import flask
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.info import Info
from flask_openapi3.models.tag import Tag
from flask_openapi3.openapi import OpenAPI
from flask_openapi3.types import ResponseDict, SecuritySchemesDict
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ValidationError

from dashboard import decisions, exports
from dashboard.api import models
from dashboard.components import Services
from dashboard.security import API_PREFIX, Permission, allowed, audit_request, is_api_path
from riskiturva import api_tokens, tables, views
from riskiturva.auth import Viewer
from riskiturva.models import FindingStatus
from riskiturva.store import NotVisible

__all__ = ["API_PREFIX", "OPENAPI_PATH", "before_request", "install", "openapi_document", "problem"]

OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
EXTENSION = "riskiturva.api"
BEARER = "Bearer "
INFO = Info(
    title="Riskiturva API",
    version="1",
    description="Organisations, scores, findings, assets, scans and exceptions of the"
    " organisations a personal API token sees; decisions on findings. See docs/api.md.",
)
SECURITY_SCHEMES: SecuritySchemesDict = {
    "token": {
        "type": "http",
        "scheme": "bearer",
        "description": "a personal API token (`riskiturva tokens create`, or the dashboard's"
        " API tokens page)",
    }
}
_View = TypeVar("_View", bound=Callable[..., flask.Response])
READ, DETAILS, DECIDE = Permission.READ, Permission.DETAILS, Permission.DECIDE
ORGANISATIONS = Tag(name="organisations", description="organisations, scores, exceptions")
FINDINGS = Tag(name="findings", description="findings and decisions on them")
INVENTORY = Tag(name="inventory", description="assets, discovery proposals, scan runs")

api = APIBlueprint(
    "api",
    __name__,
    url_prefix=API_PREFIX,
    abp_security=[{"token": []}],
    abp_responses={401: models.Problem, 429: models.Problem},
)


class Refused(Exception):
    """The request is refused with `status` and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _State:
    """What the app's API holds between requests: the services and the per-token limits
    (kept in memory, per process: a limit is about one server's load)."""

    services: Services
    limiter: MovingWindowRateLimiter
    per_minute: RateLimitItemPerMinute


@dataclass(frozen=True)
class Holder:
    viewer: Viewer
    token: api_tokens.TokenView


def problem(status: int, message: str, headers: dict[str, str] | None = None) -> flask.Response:
    """A JSON refusal (`models.Problem`), never cached."""
    response = flask.make_response(models.Problem(error=message).model_dump(), status)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _state() -> _State:
    state: _State = flask.current_app.extensions[EXTENSION]
    return state


def before_request(catch_all: bool) -> flask.Response | None:
    """The API's own guard, run by the dashboard's for every path under `/api/v1`:
    a JSON 404 for paths no route takes (`catch_all`: Dash's route took it); the
    document without a token; every other route with a live token within its limit."""
    request = flask.request
    if catch_all:
        return problem(404, "no such resource")
    if request.path == OPENAPI_PATH or request.method == "OPTIONS":
        return None
    header = request.headers.get("Authorization", "")
    secret = header[len(BEARER) :].strip() if header.startswith(BEARER) else ""
    state = _state()
    now = state.services.clock()
    with state.services.sessions.begin() as session:
        found = api_tokens.authenticate(session, secret, now=now) if secret else None
    if found is None:
        return problem(
            401,
            "a live API token is needed: Authorization: Bearer <token>",
            {"WWW-Authenticate": 'Bearer realm="riskiturva"'},
        )
    if not state.limiter.hit(state.per_minute, str(found.token.id)):
        reset = state.limiter.get_window_stats(state.per_minute, str(found.token.id)).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        return problem(429, "too many requests with this token", {"Retry-After": str(wait)})
    flask.g.api_holder = Holder(found.viewer, found.token)
    return None


def _holder(permission: Permission) -> Holder:
    """The request's token holder, if their role (and the token) may do this."""
    holder: Holder = flask.g.api_holder
    if not allowed(holder.viewer, permission):
        state = _state()
        audit_request(
            state.services.sessions,
            state.services.clock(),
            holder.viewer,
            "request.refused",
            target=flask.request.path,
            detail={"reason": "permission", "method": flask.request.method, **_via(holder)},
        )
        raise Refused(403, _REFUSALS[permission])
    return holder


_REFUSALS = {
    DETAILS: "management viewers read organisations, scores, priorities and exceptions only",
    DECIDE: "only organisation staff decide on findings, with a token of scope `decide`",
}


def _via(holder: Holder) -> dict[str, Any]:
    return {"via": "api", "token": holder.token.id}


@api.errorhandler(NotVisible)
def _not_visible(error: NotVisible) -> flask.Response:
    holder: Holder | None = flask.g.get("api_holder")
    if holder is not None:
        state = _state()
        audit_request(
            state.services.sessions,
            state.services.clock(),
            holder.viewer,
            "access.refused",
            target=flask.request.path,
            detail={"what": "api", **_via(holder)},
        )
    return problem(404, "not found, or not yours to see")


@api.errorhandler(Refused)
def _refused(error: Refused) -> flask.Response:
    return problem(error.status, error.message)


def _json(model: BaseModel, status: int = 200) -> flask.Response:
    response = flask.current_app.response_class(
        model.model_dump_json(), status=status, mimetype="application/json"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _read(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`function(session, *args, **kwargs)` in a read-only session of the store."""
    with _state().services.sessions() as session:
        return function(session, *args, **kwargs)


def _operation(method: str, rule: str, **options: Any) -> Callable[[_View], _View]:
    """Register a view on the API for `method` and `rule`, documented by its docstring:
    the first paragraph is the operation's summary, the rest its description (paragraphs
    of Markdown); its name is the operation's id."""

    def register(view: _View) -> _View:
        summary, _, rest = (inspect.getdoc(view) or "").partition("\n\n")
        paragraphs = [" ".join(p.split()) for p in rest.split("\n\n") if p.strip()]
        route = getattr(api, method)(
            rule,
            operation_id=view.__name__,
            summary=" ".join(summary.split()),
            description="\n\n".join(paragraphs) or None,
            **options,
        )
        # flask-openapi3 would read the docstring itself, joining its lines with <br/>.
        doc, view.__doc__ = view.__doc__, None
        try:
            route(view)
        finally:
            view.__doc__ = doc
        return view

    return register


NOT_FOUND: ResponseDict = {404: models.Problem}
REFUSED: ResponseDict = {403: models.Problem, 404: models.Problem}


# --- who am I ----------------------------------------------------------------------------


@_operation("get", "/me", tags=[ORGANISATIONS], responses={200: models.Me})
def me() -> flask.Response:
    """Whom the token acts as, its scope, what it sees and when it expires."""
    holder = _holder(READ)
    return _json(
        models.Me(
            username=holder.viewer.username,
            role=holder.viewer.role,
            scope=holder.token.scope,
            token=holder.token.name,
            organisations=sorted(holder.viewer.visible),
            expires_at=holder.token.expires_at,
        )
    )


# --- organisations, scores, priorities, exceptions ---------------------------------------


@_operation(
    "get",
    "/organisations",
    tags=[ORGANISATIONS],
    responses={200: models.OrganisationList},
)
def list_organisations() -> flask.Response:
    """The organisations the token sees, by slug."""
    holder = _holder(READ)
    found = _read(views.organisations, holder.viewer.visible)
    return _json(models.OrganisationList(items=[_organisation(o) for o in found]))


def _organisation(ref: views.OrganisationRef) -> models.Organisation:
    return models.Organisation.model_validate(ref)


@_operation(
    "get",
    "/organisations/<slug>",
    tags=[ORGANISATIONS],
    responses={200: models.Organisation, **NOT_FOUND},
)
def get_organisation(path: models.OrganisationPath) -> flask.Response:
    """One organisation: its names in Finnish, Swedish and English, and its partner."""
    holder = _holder(READ)
    return _json(_organisation(_read(views.organisation, holder.viewer.visible, path.slug)))


def _explanation(holder: Holder, slug: str, language: str | None, target: Any) -> Any:
    state = _state()
    return _read(
        views.explanation,
        holder.viewer.visible,
        slug,
        now=state.services.clock(),
        registry=state.services.registry,
        language=language or holder.viewer.language,
        target=target,
    )


@_operation(
    "get",
    "/organisations/<slug>/score",
    tags=[ORGANISATIONS],
    responses={200: models.Score, **NOT_FOUND},
)
def get_score(path: models.OrganisationPath, query: models.ScoreQuery) -> flask.Response:
    """The live score and grade, explained line by line.

    With the caps, the priorities, the plan to reach `target` and what a decision
    excludes: what the dashboard's scoring page shows."""
    holder = _holder(READ)
    explained = _explanation(holder, path.slug, query.language, query.target)
    document = explained.document
    fields = {f.name: getattr(document, f.name) for f in dataclasses.fields(document)}
    return _json(models.Score.model_validate({**fields, "as_of": explained.as_of}))


@_operation(
    "get",
    "/organisations/<slug>/priorities",
    tags=[ORGANISATIONS],
    responses={200: models.Priorities, **NOT_FOUND},
)
def get_priorities(path: models.OrganisationPath, query: models.LanguageQuery) -> flask.Response:
    """What to fix first: each remediation with its gain, effort and deadline."""
    holder = _holder(READ)
    explained = _explanation(holder, path.slug, query.language, "B")
    return _json(
        models.Priorities.model_validate(
            {
                "organisation": path.slug,
                "as_of": explained.as_of,
                "items": explained.document.priorities,
            }
        )
    )


@_operation(
    "get",
    "/organisations/<slug>/exceptions",
    tags=[ORGANISATIONS],
    responses={200: models.Exceptions, **NOT_FOUND},
)
def get_exceptions(path: models.OrganisationPath) -> flask.Response:
    """The exceptions register: accepted risks and false positives in force."""
    holder = _holder(READ)
    services = _state().services
    register = _read(
        views.exceptions,
        holder.viewer.visible,
        path.slug,
        now=services.clock(),
        registry=services.registry,
    )
    return _json(models.Exceptions.model_validate(register))


# --- findings ------------------------------------------------------------------------------


@_operation(
    "get",
    "/findings",
    tags=[FINDINGS],
    responses={200: models.FindingsPage, 403: models.Problem},
)
def list_findings(query: models.FindingsQuery) -> flask.Response:
    """Findings of the organisations the token sees, a page at a time.

    In id order: follow `next_cursor` until it is null. Empty filters filter nothing;
    a repeated filter keeps findings matching any of its values."""
    holder = _holder(DETAILS)
    page = _read(
        views.findings_page,
        holder.viewer.visible,
        registry=_state().services.registry,
        organisations=query.organisation or None,
        statuses=[str(s) for s in query.status],
        severities=[str(s) for s in query.severity],
        categories=[str(c) for c in query.category],
        assets=query.asset,
        since=query.since,
        after=int(query.cursor) if query.cursor else None,
        limit=query.limit,
    )
    return _json(
        models.FindingsPage(
            items=[models.Finding.model_validate(row) for row in page.rows],
            next_cursor=None if page.next_after is None else str(page.next_after),
        )
    )


def _finding_detail(view: views.FindingView) -> models.FindingDetail:
    return models.FindingDetail(
        finding=models.Finding.model_validate(view.finding),
        organisation=_organisation(view.organisation),
        decision=None if view.decision is None else models.Decision.model_validate(view.decision),
        events=[models.Event.model_validate(e) for e in view.events],
    )


@_operation(
    "get",
    "/findings/<finding_id>",
    tags=[FINDINGS],
    responses={200: models.FindingDetail, **REFUSED},
)
def get_finding(path: models.FindingPath) -> flask.Response:
    """One finding with the decision in force and its history."""
    holder = _holder(DETAILS)
    view = _read(
        views.finding,
        holder.viewer.visible,
        path.finding_id,
        registry=_state().services.registry,
    )
    return _json(_finding_detail(view))


def _decide(
    finding_id: int, decision: FindingStatus | None, reason: str, until: dt.date | None
) -> flask.Response:
    holder = _holder(DECIDE)
    services = _state().services
    try:
        with services.sessions.begin() as session:
            decisions.record(
                session,
                holder.viewer,
                finding_id,
                decision,
                reason=reason.strip(),
                until=until,
                now=services.clock(),
                registry=services.registry,
                via=_via(holder),
            )
            view = views.finding(
                session, holder.viewer.visible, finding_id, registry=services.registry
            )
    except ValueError as error:
        raise Refused(409 if decision is None else 400, _DECISION_ERRORS[decision is None]) from (
            error
        )
    return _json(_finding_detail(view))


_DECISION_ERRORS = {
    False: "the decision needs a justification and a day after today, at most two years ahead",
    True: "there is no decision in force to revoke",
}
DECISION_RESPONSES: ResponseDict = {200: models.FindingDetail, 400: models.Problem, **REFUSED}


@_operation(
    "post",
    "/findings/<finding_id>/accept",
    tags=[FINDINGS],
    responses=DECISION_RESPONSES,
)
def accept_risk(path: models.FindingPath, body: models.DecisionBody) -> flask.Response:
    """Accept the risk until `until`, with the justification.

    The finding stops counting against the score until the end of that day (Finnish
    time). Organisation staff, with a token of scope `decide`; audited."""
    return _decide(path.finding_id, FindingStatus.ACCEPTED, body.reason, body.until)


@_operation(
    "post",
    "/findings/<finding_id>/false-positive",
    tags=[FINDINGS],
    responses=DECISION_RESPONSES,
)
def mark_false_positive(path: models.FindingPath, body: models.DecisionBody) -> flask.Response:
    """Mark the finding a false positive until `until`, with the justification.

    Organisation staff, with a token of scope `decide`; audited."""
    return _decide(path.finding_id, FindingStatus.FALSE_POSITIVE, body.reason, body.until)


@_operation(
    "post",
    "/findings/<finding_id>/revoke",
    tags=[FINDINGS],
    responses={200: models.FindingDetail, 409: models.Problem, **REFUSED},
)
def revoke_decision(path: models.FindingPath, body: models.RevokeBody) -> flask.Response:
    """End the decision in force now: the finding counts as open again.

    Organisation staff, with a token of scope `decide`; audited."""
    return _decide(path.finding_id, None, body.reason, None)


# --- inventory and scans ----------------------------------------------------------------


@_operation(
    "get",
    "/organisations/<slug>/assets",
    tags=[INVENTORY],
    responses={200: models.AssetList, **REFUSED},
)
def list_assets(path: models.OrganisationPath) -> flask.Response:
    """The inventory: every asset with its origin, state and discovery evidence."""
    holder = _holder(DETAILS)
    found = _read(views.inventory, holder.viewer.visible, path.slug)
    return _json(models.AssetList(items=[models.Asset.model_validate(a) for a in found]))


@_operation(
    "get",
    "/organisations/<slug>/proposals",
    tags=[INVENTORY],
    responses={200: models.Proposals, **REFUSED},
)
def list_proposals(path: models.OrganisationPath) -> flask.Response:
    """Discovery's proposals waiting for a decision: new assets and retirements.

    With what discovery saw outside the declared scope (never contacted or scanned), and
    the cloud services the domains' TXT records name."""
    holder = _holder(DETAILS)
    queue = _read(
        views.review_queue, holder.viewer.visible, path.slug, scopes=_state().services.scopes
    )
    return _json(
        models.Proposals(
            organisation=queue.organisation.slug,
            new_assets=[models.Asset.model_validate(a) for a in queue.new_assets],
            retirements=[models.Asset.model_validate(a) for a in queue.retirements],
            outside_scope=[
                models.Sighting.model_validate(
                    {
                        **{f.name: getattr(s, f.name) for f in dataclasses.fields(s)},
                        "in_scope_of": [o.slug for o in s.in_scope_of],
                    }
                )
                for s in queue.outside_scope
            ],
            services=[models.ServiceHint.model_validate(s) for s in queue.services],
            last_discovery=queue.last_discovery,
        )
    )


@_operation(
    "get",
    "/organisations/<slug>/scans",
    tags=[INVENTORY],
    responses={200: models.ScanRunList, **REFUSED},
)
def list_scans(path: models.OrganisationPath, query: models.ScansQuery) -> flask.Response:
    """The latest scan runs, newest first, with this organisation's errors."""
    holder = _holder(DETAILS)
    found = _read(views.runs, holder.viewer.visible, path.slug, limit=query.limit)
    return _json(models.ScanRunList(items=[models.ScanRun.model_validate(r) for r in found]))


# --- spreadsheets ----------------------------------------------------------------------

SPREADSHEETS = Tag(name="exports", description="findings, priorities, exceptions, portfolio")
# Who may export what: as on the pages (the findings and the priorities name assets).
EXPORT_PERMISSIONS = {
    tables.Kind.FINDINGS: DETAILS,
    tables.Kind.PRIORITIES: DETAILS,
    tables.Kind.EXCEPTIONS: READ,
    tables.Kind.PORTFOLIO: READ,
}
FILE: ResponseDict = {
    200: {
        "description": "the file (`Content-Disposition: attachment` names it)",
        "content": {
            media.split(";")[0]: {"schema": {"type": "string"}}
            for media in tables.MEDIA_TYPES.values()
        },
    },
    403: models.Problem,
}


@_operation("get", "/exports/<kind>", tags=[SPREADSHEETS], responses=FILE)
def export_table(path: models.ExportPath, query: models.ExportQuery) -> flask.Response:
    """A table as a spreadsheet: CSV for Excel, or XLSX with typed cells.

    The same file as the dashboard's export buttons (`riskiturva.tables`): a header in the
    reader's language, one column per asset tag, formulas neutralised. The findings and
    the priorities need a role that sees details; the filters apply to the findings.
    Audited as `<kind>.exported`."""
    holder = _holder(EXPORT_PERMISSIONS[path.kind])
    done = exports.exported(
        _state().services,
        holder.viewer,
        path.kind,
        query.format,
        language=query.language or holder.viewer.language,
        organisations=query.organisation or None,
        filters=tables.FindingFilters(
            statuses=tuple(map(str, query.status)),
            categories=tuple(map(str, query.category)),
            severities=tuple(map(str, query.severity)),
            assets=tuple(query.asset),
        ),
        via=_via(holder),
    )
    response = flask.current_app.response_class(done.content, mimetype=done.media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{done.filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the app --------------------------------------------------------------------------------


def _invalid(error: ValidationError) -> flask.Response:
    """A 422 naming each part of the request that does not validate, without its value
    (nothing sent comes back: no hostile string is reflected)."""
    fields = [
        models.InvalidField(type=e["type"], loc=list(e["loc"]), msg=e["msg"])
        for e in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    body = json.dumps([f.model_dump() for f in fields], ensure_ascii=False)
    response = flask.current_app.response_class(body, 422, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def new_server(import_name: str) -> OpenAPI:
    """The Flask server the dashboard and the API share (flask-openapi3's `OpenAPI` is a
    Flask app that collects the document; its own UI pages are off: they load scripts
    from other sites)."""
    return OpenAPI(
        import_name,
        info=INFO,
        security_schemes=SECURITY_SCHEMES,
        doc_ui=False,
        validation_error_status=422,
        validation_error_model=models.InvalidField,
        validation_error_callback=_invalid,
    )


def install(server: OpenAPI, services: Services, *, per_minute: int) -> None:
    """Serve the API and its document on `server`, `per_minute` requests per token."""
    server.extensions[EXTENSION] = _State(
        services, MovingWindowRateLimiter(MemoryStorage()), RateLimitItemPerMinute(per_minute)
    )
    server.register_api(api)
    server.add_url_rule(OPENAPI_PATH, "api_openapi", lambda: _document_response(server))
    server.register_error_handler(405, _method_not_allowed)


def _method_not_allowed(error: Any) -> Any:
    if is_api_path(flask.request.path):
        allow = ", ".join(error.valid_methods or ())
        return problem(405, "this resource does not take that method", {"Allow": allow})
    return error


def _document_response(server: OpenAPI) -> flask.Response:
    return flask.current_app.response_class(openapi_json(server), mimetype="application/json")


def openapi_json(server: OpenAPI) -> str:
    """The document as committed in docs/openapi.json."""
    return json.dumps(server.api_doc, indent=2, ensure_ascii=False) + "\n"


def openapi_document() -> str:
    """The document of the routes above, without a store (docgen writes it to docs/)."""
    server = new_server(__name__)
    server.register_api(api)
    return openapi_json(server)
