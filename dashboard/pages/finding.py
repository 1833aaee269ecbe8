"""One finding: evidence, the reproduce command, guidance in the reader's language, its
history, and — for organisation staff — accept the risk or mark a false positive."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, dcc, html, no_update

from dashboard import ids
from dashboard.components import (
    PageContext,
    Services,
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
from riskiturva import auth, views
from riskiturva.auth import Viewer
from riskiturva.models import FindingStatus
from riskiturva.store import NotVisible, decide
from riskiturva.views import TIMEZONE

DEFAULT_DECISION_DAYS = 180
MAX_DECISION_DAYS = 730


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
    facts = simple_table(
        [_("Organisation"), _("Subject"), _("Asset"), _("Status"), _("First seen"), _("Last seen")],
        [
            [
                view.organisation.name(context.language),
                finding.subject,
                finding.asset,
                status_label(_, finding.status),
                context.when(finding.first_seen),
                context.when(finding.last_seen),
            ]
        ],
    )
    evidence = json.dumps(finding.evidence, ensure_ascii=False, indent=2, default=str)
    children = [
        org_header(context, view.organisation, "findings"),
        html.H2(
            [severity_badge(_, finding.severity), context.title(finding.check_id)],
            className="finding-title",
        ),
        html.P(html.Code(finding.check_id), className="muted"),
        facts,
        section(
            _("What to do"),
            # Guidance is the registry's own text; shown as text, never as HTML.
            html.P(check.guidance_in(context.language) if check else "", id=ids.GUIDANCE),
            html.Ul([html.Li(html.Code(r)) for r in (check.references if check else ())]),
        ),
        section(_("Evidence"), html.Pre(evidence, id=ids.EVIDENCE, className="evidence")),
        section(
            _("Reproduce"),
            html.Pre(finding.reproduce or _("No command recorded."), id=ids.REPRODUCE),
        ),
        _decision_summary(context, view),
        section(_("History"), html.Div(history(context, view), id=f"{ids.HISTORY}-panel")),
    ]
    if context.viewer.can_decide:
        children.append(_decision_form(context, finding_id))
    return html.Div(children)


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


def _decision_form(context: PageContext, finding_id: str) -> Any:
    _ = context._
    default_until = context.today + dt.timedelta(days=DEFAULT_DECISION_DAYS)
    return section(
        _("Decision"),
        dcc.Store(id=ids.FINDING_ID, data=int(finding_id)),
        dcc.RadioItems(
            id=ids.DECIDE_KIND,
            options=[
                {"label": _("Accept the risk"), "value": FindingStatus.ACCEPTED.value},
                {"label": _("Mark as false positive"), "value": FindingStatus.FALSE_POSITIVE.value},
            ],
            value=FindingStatus.ACCEPTED.value,
            labelClassName="radio",
        ),
        html.Label(_("Justification"), htmlFor=ids.DECIDE_REASON),
        dcc.Textarea(id=ids.DECIDE_REASON, className="form-control", maxLength=2000),
        html.Label(_("Valid until"), htmlFor=ids.DECIDE_UNTIL),
        dcc.Input(
            id=ids.DECIDE_UNTIL,
            type="date",  # type: ignore[arg-type]  # the browser's date input; Dash's hint omits it
            value=default_until.isoformat(),
            min=(context.today + dt.timedelta(days=1)).isoformat(),
            max=(context.today + dt.timedelta(days=MAX_DECISION_DAYS)).isoformat(),
            className="form-control",
        ),
        html.Button(_("Save decision"), id=ids.DECIDE_SUBMIT, className="btn btn-primary"),
        html.Div(id=ids.DECIDE_MESSAGE, role="status"),
    )


def register(secure: SecureCallbacks, services: Services) -> None:
    @secure.callback(
        Output(ids.DECIDE_MESSAGE, "children"),
        Output(f"{ids.HISTORY}-panel", "children"),
        Input(ids.DECIDE_SUBMIT, "n_clicks"),
        State(ids.FINDING_ID, "data"),
        State(ids.DECIDE_KIND, "value"),
        State(ids.DECIDE_REASON, "value"),
        State(ids.DECIDE_UNTIL, "value"),
        permission=Permission.DECIDE,
        prevent_initial_call=True,
    )
    def save_decision(
        viewer: Viewer, _clicks: Any, finding_id: Any, kind: Any, reason: Any, until: Any
    ) -> Any:
        context = services.context(viewer, flask.g.language)
        _ = context._
        try:
            decision = FindingStatus(kind)
            until_day = dt.date.fromisoformat(str(until))
            if (until_day - context.today).days > MAX_DECISION_DAYS:
                raise ValueError("too far")
            expiry = dt.datetime.combine(until_day, dt.time(23, 59), TIMEZONE)
            with services.sessions.begin() as session:
                finding = decide(
                    session,
                    finding_id=row_id(finding_id),
                    visible=viewer.visible,
                    decision=decision,
                    actor=viewer.username,
                    reason=str(reason or "")[:2000],
                    until=expiry,
                    now=context.now,
                )
                auth.audit(
                    session,
                    actor=viewer.username,
                    action=f"finding.{decision.value}",
                    organisation=finding.organisation.slug,
                    target=str(finding.id),
                    address=flask.request.remote_addr,
                    now=context.now,
                    detail={"check_id": finding.check_id, "until": expiry.isoformat()},
                    note=finding.decision_reason,
                )
                view = views.finding(
                    session, viewer.visible, finding.id, registry=services.registry
                )
                events = history(context, view)
        except NotVisible:
            return dbc.Alert(_("Not found"), color="danger"), no_update
        except (ValueError, TypeError):
            return (
                dbc.Alert(
                    _("Write a justification and choose a future date within two years."),
                    color="warning",
                ),
                no_update,
            )
        return dbc.Alert(_("Decision saved."), color="success"), events


def validation_layout() -> list[Any]:
    return [
        dcc.Store(id=ids.FINDING_ID),
        dcc.RadioItems(id=ids.DECIDE_KIND),
        dcc.Textarea(id=ids.DECIDE_REASON),
        dcc.Input(id=ids.DECIDE_UNTIL),
        html.Button(id=ids.DECIDE_SUBMIT),
        html.Div(id=ids.DECIDE_MESSAGE),
        html.Div(id=f"{ids.HISTORY}-panel"),
    ]


PAGE = Page("finding", r"/findings/(?P<finding_id>[0-9]{1,12})", Permission.DETAILS, layout)
