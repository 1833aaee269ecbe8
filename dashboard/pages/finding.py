"""One finding: evidence, the reproduce command, guidance in the reader's language, its
history, and — for organisation staff — accept the risk, mark a false positive, or revoke
the decision; the status on the page follows at once."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard import decisions, ids
from dashboard.components import (
    PageContext,
    Services,
    choice,
    not_found,
    org_header,
    row_id,
    section,
    severity_badge,
    simple_table,
    status_label,
)
from dashboard.pages import Page
from dashboard.security import Permission, SecureCallbacks
from riskiturva import terms, views
from riskiturva.auth import Viewer
from riskiturva.models import FindingStatus
from riskiturva.store import NotVisible

DEFAULT_DECISION_DAYS = 180


def _event_label(context: PageContext, kind: str) -> str:
    _ = context._
    return {
        "opened": _("Found"),
        "seen": _("Seen again, evidence changed"),
        "resolved": _("Resolved"),
        "reopened": _("Reopened"),
        "accepted": _("Risk accepted"),
        "false_positive": _("Marked false positive"),
        "expired": _("Decision expired"),
        "revoked": _("Decision revoked"),
    }.get(kind, kind)


def history(context: PageContext, view: views.FindingView) -> Any:
    _ = context._
    rows = [
        [context.when(e.at), _event_label(context, e.kind), e.actor or "", e.note or ""]
        for e in reversed(view.events)
    ]
    return simple_table([_("When"), _("Event"), _("By"), _("Note")], rows, id=ids.HISTORY)


def evidence(context: PageContext, facts: Mapping[str, Any]) -> list[Any]:
    """Each top-level key by its label in the reader's language, its value as the scanner
    recorded it (text as text, anything else as compact JSON); the raw JSON, collapsed, for
    whoever wants the record itself."""
    rows = []
    for key, value in facts.items():
        compact = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        shown = value if isinstance(value, str) else html.Code(compact)
        rows += [html.Dt(terms.term(terms.EVIDENCE, key, context.language)), html.Dd(shown)]
    raw = json.dumps(facts, ensure_ascii=False, indent=2, default=str)
    return [
        html.Dl(rows, id=ids.EVIDENCE, className="evidence"),
        html.Details(
            [
                html.Summary(context._("Technical details")),
                html.Pre(raw, id=ids.EVIDENCE_JSON, className="evidence"),
            ]
        ),
    ]


def layout(context: PageContext, finding_id: str) -> Any:
    _ = context._
    with context.sessions() as session:
        try:
            view = views.finding(
                session, context.viewer.visible, int(finding_id), registry=context.registry
            )
        except NotVisible:
            return not_found(context)
    finding = view.finding
    check = context.registry.get(finding.check_id)
    children = [
        org_header(context, view.organisation, "findings"),
        html.H2(
            [severity_badge(_, finding.severity), context.title(finding.check_id)],
            className="finding-title",
        ),
        html.P(html.Code(finding.check_id), className="muted"),
        html.Div(_state(context, view), id=ids.FINDING_STATE),
        section(
            _("What to do"),
            # Guidance is the registry's own text; shown as text, never as HTML.
            html.P(check.guidance_in(context.language) if check else "", id=ids.GUIDANCE),
            html.Ul([html.Li(html.Code(r)) for r in (check.references if check else ())]),
        ),
        section(_("Evidence"), *evidence(context, finding.evidence)),
        section(
            _("Reproduce"),
            html.Pre(finding.reproduce or _("No command recorded."), id=ids.REPRODUCE),
        ),
        section(_("History"), html.Div(history(context, view), id=f"{ids.HISTORY}-panel")),
    ]
    if context.viewer.can_decide:
        children.append(_decision_form(context, finding_id, view.decision is not None))
    return html.Div(children)


def _state(context: PageContext, view: views.FindingView) -> list[Any]:
    """The facts with the current status, and the decision in force, if any."""
    _ = context._
    finding = view.finding
    facts = simple_table(
        [_("Organisation"), _("Subject"), _("Asset"), _("Status"), _("First seen"), _("Last seen")],
        [
            [
                view.organisation.name(context.language),
                finding.subject,
                finding.asset,
                html.Span(status_label(_, finding.status), id=ids.FINDING_STATUS),
                context.when(finding.first_seen),
                context.when(finding.last_seen),
            ]
        ],
    )
    return [facts, _decision_summary(context, view)]


def _decision_summary(context: PageContext, view: views.FindingView) -> Any:
    _ = context._
    decision = view.decision
    if decision is None:
        return html.Div()
    return dbc.Alert(
        [
            _(
                "{decision} by {actor} on {when}, until {until}: {reason}",
                decision=status_label(_, decision.decision),
                actor=decision.decided_by or "",
                when=context.when(decision.decided_at),
                until=context.day(decision.until),
                reason=decision.reason or "",
            ),
            " ",
            dcc.Link(
                _("The exceptions register"),
                href=f"/org/{view.organisation.slug}/exceptions",
            ),
        ],
        color="info",
    )


def _decision_form(context: PageContext, finding_id: str, decided: bool) -> Any:
    _ = context._
    default_until = context.today + dt.timedelta(days=DEFAULT_DECISION_DAYS)
    return section(
        _("Decision"),
        dcc.Store(id=ids.FINDING_ID, data=int(finding_id)),
        choice(
            ids.DECIDE_KIND,
            _("Decision"),
            [
                {"label": _("Accept the risk"), "value": FindingStatus.ACCEPTED.value},
                {"label": _("Mark as false positive"), "value": FindingStatus.FALSE_POSITIVE.value},
            ],
            FindingStatus.ACCEPTED.value,
        ),
        html.Label(_("Justification"), htmlFor=ids.DECIDE_REASON),
        dcc.Textarea(id=ids.DECIDE_REASON, className="form-control", maxLength=2000),
        html.Label(_("Valid until"), htmlFor=ids.DECIDE_UNTIL),
        dcc.Input(
            id=ids.DECIDE_UNTIL,
            type="date",  # type: ignore[arg-type]  # the browser's date input; Dash's hint omits it
            value=default_until.isoformat(),
            min=(context.today + dt.timedelta(days=1)).isoformat(),
            max=(context.today + dt.timedelta(days=decisions.MAX_DECISION_DAYS)).isoformat(),
            className="form-control",
        ),
        html.Div(
            [
                html.Button(_("Save decision"), id=ids.DECIDE_SUBMIT, className="btn btn-primary"),
                html.Button(
                    _("Revoke the decision"),
                    id=ids.DECIDE_REVOKE,
                    className="btn btn-outline-danger",
                    disabled=not decided,
                ),
            ],
            className="decision-buttons",
        ),
        html.Div(id=ids.DECIDE_MESSAGE, role="status"),
    )


def register(secure: SecureCallbacks, services: Services) -> None:
    @secure.callback(
        Output(ids.DECIDE_MESSAGE, "children"),
        Output(ids.FINDING_STATE, "children"),
        Output(f"{ids.HISTORY}-panel", "children"),
        Output(ids.DECIDE_REVOKE, "disabled"),
        Input(ids.DECIDE_SUBMIT, "n_clicks"),
        Input(ids.DECIDE_REVOKE, "n_clicks"),
        State(ids.FINDING_ID, "data"),
        State(ids.DECIDE_KIND, "value"),
        State(ids.DECIDE_REASON, "value"),
        State(ids.DECIDE_UNTIL, "value"),
        permission=Permission.DECIDE,
        prevent_initial_call=True,
    )
    def save_or_revoke(
        viewer: Viewer,
        _saves: Any,
        _revokes: Any,
        finding_id: Any,
        kind: Any,
        reason: Any,
        until: Any,
    ) -> Any:
        context = services.context(viewer, flask.g.language)
        _ = context._
        revoking = ctx.triggered_id == ids.DECIDE_REVOKE
        note = str(reason or "")[:2000].strip()
        try:
            row = row_id(finding_id)
            with services.sessions.begin() as session:
                decisions.record(
                    session,
                    viewer,
                    row,
                    None if revoking else FindingStatus(kind),
                    reason=note,
                    until=None if revoking else dt.date.fromisoformat(str(until)),
                    now=context.now,
                    registry=services.registry,
                )
                view = views.finding(session, viewer.visible, row, registry=services.registry)
        except NotVisible:
            services.refused(viewer, "finding", finding_id)
            return dbc.Alert(_("Not found"), color="danger"), no_update, no_update, no_update
        except (ValueError, TypeError):
            message = (
                _("Write why the decision is revoked; only a decision in force can be.")
                if revoking
                else _("Write a justification and choose a future date within two years.")
            )
            return dbc.Alert(message, color="warning"), no_update, no_update, no_update
        saved = _("Decision revoked.") if revoking else _("Decision saved.")
        state, events = _state(context, view), history(context, view)
        return dbc.Alert(saved, color="success"), state, events, view.decision is None


def validation_layout() -> list[Any]:
    return [
        dcc.Store(id=ids.FINDING_ID),
        dbc.RadioItems(id=ids.DECIDE_KIND),
        dcc.Textarea(id=ids.DECIDE_REASON),
        dcc.Input(id=ids.DECIDE_UNTIL),
        html.Button(id=ids.DECIDE_SUBMIT),
        html.Button(id=ids.DECIDE_REVOKE),
        html.Div(id=ids.DECIDE_MESSAGE),
        html.Div(id=ids.FINDING_STATE),
        html.Div(id=f"{ids.HISTORY}-panel"),
    ]


PAGE = Page("finding", r"/findings/(?P<finding_id>[0-9]{1,12})", Permission.DETAILS, layout)
