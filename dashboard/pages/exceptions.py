"""The exceptions register: accepted risks and false positives in force, for every reader.

Who decided, why, until when, how severe; decisions ending within 14 days are flagged.
Organisation staff may revoke decisions (each revocation is audited); what ended in the
last 30 days (expired or revoked) is listed below, so nothing leaves the register silently.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, dcc, html, no_update

from dashboard import exports, ids
from dashboard.components import (
    PageContext,
    Services,
    data_table,
    markdown_text,
    not_found,
    org_header,
    row_id,
    section,
    severity_label,
    simple_table,
    status_label,
)
from dashboard.pages import Page
from dashboard.security import Permission, SecureCallbacks
from riskiturva import tables, views
from riskiturva.auth import Viewer
from riskiturva.store import NotVisible, revoke
from riskiturva.views import EXPIRY_WARNING_DAYS, ExceptionEntry, ExceptionsRegister

ENDED_DAYS = 30
COLUMNS = ("severity", "problem", "subject", "decision", "decided", "reason", "until")


def _cells(context: PageContext, entry: ExceptionEntry, *, links: bool) -> dict[str, Any]:
    """One entry as table cells (text only: the reason and subject are people's words)."""
    _ = context._
    title = context.title(entry.check_id)
    until = context.day(entry.until)
    if entry.expiring:
        until = _("{day} (ends in {days} days)", day=until, days=entry.days_left)
    return {
        "id": entry.finding_id,
        "severity": severity_label(_, entry.severity),
        "problem": f"[{markdown_text(title)}](/findings/{entry.finding_id})" if links else title,
        "subject": entry.subject,
        "decision": status_label(_, entry.decision),
        "decided": f"{entry.decided_by or ''}, {context.day(entry.decided_at)}",
        "reason": entry.reason,
        "until": until,
        "expiring": "yes" if entry.expiring else "",
    }


def _headers(context: PageContext) -> dict[str, str]:
    _ = context._
    return {
        "severity": _("Severity"),
        "problem": _("Finding"),
        "subject": _("Subject"),
        "decision": _("Decision"),
        "decided": _("Decided by"),
        "reason": _("Justification"),
        "until": _("Valid until"),
    }


def summary(context: PageContext, register: ExceptionsRegister, slug: str) -> Any:
    """The register as a plain table, for the overview (every role reads it)."""
    _ = context._
    if not register.entries:
        return html.P(_("No accepted risks or false positives are in force."), className="muted")
    headers = _headers(context)
    rows = [_cells(context, entry, links=False) for entry in register.entries]
    return html.Div(
        [
            simple_table([headers[c] for c in COLUMNS], [[r[c] for c in COLUMNS] for r in rows]),
            dcc.Link(_("The exceptions register"), href=f"/org/{slug}/exceptions"),
        ]
    )


def _rows(context: PageContext, register: ExceptionsRegister) -> list[dict[str, Any]]:
    return [_cells(context, e, links=context.viewer.sees_details) for e in register.entries]


def table(context: PageContext, register: ExceptionsRegister) -> Any:
    """The register as a sortable table; staff select rows in it to revoke decisions."""
    headers = _headers(context)
    links = context.viewer.sees_details
    return data_table(
        id=ids.EXCEPTIONS_TABLE,
        columns=[
            {
                "id": c,
                "name": headers[c],
                **({"presentation": "markdown"} if c == "problem" and links else {}),
            }
            for c in COLUMNS
        ],
        data=_rows(context, register),
        row_selectable="multi" if context.viewer.can_decide else False,
        selected_row_ids=[],
        sort_action="native",
        page_size=50,
        style_data_conditional=[
            {
                "if": {"filter_query": '{expiring} = "yes"', "column_id": "until"},
                "fontWeight": "bold",
            }
        ],
    )


def _ended(context: PageContext, changes: views.Changes) -> Any:
    _ = context._
    ended = [*changes.expired, *changes.revoked]
    if not ended:
        return html.P(_("None."), className="muted")
    rows = [
        [
            context.title(change.check_id),
            change.subject,
            _("Expired") if change.kind is views.ChangeKind.EXPIRED else _("Revoked"),
            context.when(change.at),
            change.actor or "",
        ]
        for change in ended
    ]
    return simple_table([_("Finding"), _("Subject"), _("Event"), _("When"), _("By")], rows)


def layout(context: PageContext, slug: str) -> Any:
    _ = context._
    visible = context.viewer.visible
    with context.sessions() as session:
        try:
            org = views.organisation(session, visible, slug)
            register = views.exceptions(
                session, visible, slug, now=context.now, registry=context.registry
            )
            ended = views.changes(
                session,
                visible,
                slug,
                since=context.now - dt.timedelta(days=ENDED_DAYS),
                until=context.now,
                registry=context.registry,
            )
        except NotVisible:
            return not_found(context)
    register_section: list[Any] = [
        html.P(
            _(
                "Problems a person decided to accept as risks or marked as false positives. "
                "They do not count in the score while the decision holds; decisions ending "
                "within {days} days are marked.",
                days=EXPIRY_WARNING_DAYS,
            ),
            className="muted",
        ),
    ]
    if not register.entries:
        register_section.append(
            html.P(_("No accepted risks or false positives are in force."), className="muted")
        )
    else:
        register_section += [
            dcc.Store(id=ids.EXCEPTIONS_ORG, data=slug),
            table(context, register),
            exports.buttons(context, tables.Kind.EXCEPTIONS, slug),
        ]
    if context.viewer.can_decide and register.entries:
        register_section += [
            html.Label(_("Reason for revoking"), htmlFor=ids.REVOKE_REASON),
            dcc.Textarea(id=ids.REVOKE_REASON, className="form-control", maxLength=2000),
            html.Button(
                _("Revoke the selected decisions"),
                id=ids.REVOKE_SUBMIT,
                className="btn btn-warning",
            ),
            html.Div(id=ids.REVOKE_MESSAGE, role="status"),
        ]
    return html.Div(
        [
            org_header(context, org, "exceptions"),
            section(_("Accepted risks and false positives"), *register_section, id=ids.EXCEPTIONS),
            section(
                _("Decisions ended in the last {days} days", days=ENDED_DAYS),
                _ended(context, ended),
            ),
        ]
    )


def _selection(value: Any) -> list[int]:
    """Selected row ids from the browser: a non-empty list of database ids."""
    if not isinstance(value, list) or not value:
        raise ValueError("nothing selected")
    return [row_id(v) for v in value]


def register(secure: SecureCallbacks, services: Services) -> None:
    @secure.callback(
        Output(ids.REVOKE_MESSAGE, "children"),
        Output(ids.EXCEPTIONS_TABLE, "data"),
        Input(ids.REVOKE_SUBMIT, "n_clicks"),
        State(ids.EXCEPTIONS_ORG, "data"),
        State(ids.EXCEPTIONS_TABLE, "selected_row_ids"),
        State(ids.REVOKE_REASON, "value"),
        permission=Permission.DECIDE,
        prevent_initial_call=True,
    )
    def revoke_selected(viewer: Viewer, _clicks: Any, slug: Any, selected: Any, reason: Any) -> Any:
        context = services.context(viewer, flask.g.language)
        _ = context._
        try:
            finding_ids = _selection(selected)
            with services.sessions.begin() as session:
                # All or nothing: one finding not the viewer's undoes the whole request.
                for finding_id in finding_ids:
                    decided = views.finding(
                        session, viewer.visible, finding_id, registry=services.registry
                    ).decision
                    finding = revoke(
                        session,
                        finding_id=finding_id,
                        visible=viewer.visible,
                        actor=viewer.username,
                        reason=str(reason or "")[:2000],
                        now=context.now,
                    )
                    services.audit(
                        viewer,
                        "finding.revoked",
                        session=session,
                        organisation=finding.organisation.slug,
                        target=str(finding.id),
                        detail={
                            "check_id": finding.check_id,
                            "revoked": decided.decision if decided else None,
                        },
                        note=str(reason or "")[:2000],
                    )
                current = views.exceptions(
                    session, viewer.visible, str(slug), now=context.now, registry=services.registry
                )
                rows = _rows(context, current)
        except NotVisible:
            services.refused(viewer, "finding", selected)
            return dbc.Alert(_("Not found"), color="danger"), no_update
        except (ValueError, TypeError):
            return (
                dbc.Alert(
                    _("Select the decisions to revoke and write the reason."), color="warning"
                ),
                no_update,
            )
        return dbc.Alert(
            _("Decisions revoked: {count}", count=len(finding_ids)), color="success"
        ), rows


def validation_layout() -> list[Any]:
    return [
        dcc.Store(id=ids.EXCEPTIONS_ORG),
        data_table(id=ids.EXCEPTIONS_TABLE),
        dcc.Textarea(id=ids.REVOKE_REASON),
        html.Button(id=ids.REVOKE_SUBMIT),
        html.Div(id=ids.REVOKE_MESSAGE),
    ]


PAGE = Page("exceptions", r"/org/(?P<slug>[a-z0-9-]+)/exceptions", Permission.READ, layout)
