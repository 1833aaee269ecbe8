"""The audit trail for partner administrators: sign-ins, refused requests, exports,
decisions and account changes of their organisations' people; who is signed in now, and
"sign out everywhere" for an account they look after."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, dcc, html

from dashboard import ids
from dashboard.components import (
    PageContext,
    Services,
    data_table,
    dropdown,
    section,
    simple_table,
    status_label,
)
from dashboard.pages import Page
from dashboard.security import Permission, SecureCallbacks
from riskiturva import auth, views
from riskiturva.auth import Viewer
from riskiturva.i18n import Translator
from riskiturva.oidc import Refusal
from riskiturva.user_sessions import EndReason, SessionLimits
from riskiturva.views import TIMEZONE, AuditEntry

PATH = "/audit"


def action_label(_: Translator, action: str) -> str:
    return {
        "login.ok": _("Signed in"),
        "login.failed": _("Failed sign-in"),
        "login.throttled": _("Sign-in refused: too many failures"),
        "session.signed_out": _("Signed out"),
        "session.expired": _("Session ended by time limit"),
        "sessions.ended": _("Signed out everywhere"),
        "access.refused": _("Refused: not found or not theirs"),
        "request.refused": _("Refused: forged or malformed request"),
        "findings.exported": _("Findings exported"),
        "priorities.exported": _("Priorities exported"),
        "exceptions.exported": _("Exceptions exported"),
        "portfolio.exported": _("Portfolio exported"),
        "report.downloaded": _("Archived report downloaded"),
        "report.rendered": _("Report made now and downloaded"),
        "finding.accepted": _("Risk accepted"),
        "finding.false_positive": _("Marked false positive"),
        "finding.revoked": _("Decision revoked"),
        "asset.accepted": _("Asset accepted into the inventory"),
        "asset.rejected": _("Proposal rejected"),
        "asset.retired": _("Asset retired"),
        "asset.added": _("Asset added by hand"),
        "asset.updated": _("Asset settings changed"),
        "user.created": _("Account created"),
        "user.disabled": _("Account disabled"),
        "user.password_set": _("Password set"),
        "user.totp_enabled": _("Second factor enabled"),
        "user.totp_disabled": _("Second factor removed"),
        "token.created": _("API token created"),
        "token.revoked": _("API token revoked"),
    }.get(action, action)


def _group_options(_: Translator) -> list[dict[str, str]]:
    labels = {
        "signin": _("Sign-ins and sessions"),
        "refused": _("Refused requests"),
        "exports": _("Exports"),
        "decisions": _("Decisions on findings"),
        "inventory": _("Decisions on the inventory"),
        "accounts": _("Accounts"),
    }
    return [{"label": labels[g], "value": g} for g in views.ACTION_GROUPS]


def _detail(context: PageContext, entry: AuditEntry) -> str:
    """What the event's detail says, in words."""
    _ = context._
    detail = entry.detail
    reasons = {
        "cross_site": _("sent from another site"),
        "csrf": _("missing or wrong CSRF token"),
        "malformed": _("malformed request"),
        "permission": _("not allowed for the role"),
        EndReason.IDLE: _("idle too long"),
        EndReason.EXPIRED: _("session lifetime over"),
        Refusal.STATE: _("an answer of the identity provider this browser did not ask for"),
        Refusal.PROVIDER: _("the identity provider refused"),
        Refusal.UNREACHABLE: _("the identity provider could not be reached"),
        Refusal.TOKEN: _("the ID token did not pass the checks"),
        Refusal.NO_USERNAME: _("no user name in the ID token"),
        Refusal.UNMAPPED: _("no role mapped for the account"),
        Refusal.NAME_TAKEN: _("the user name belongs to a local account"),
        Refusal.DISABLED: _("account disabled"),
    }
    things = {
        "organisation": _("organisation"),
        "finding": _("finding"),
        "page": _("page"),
        "account": _("account"),
        "token": _("API token"),
        "api": _("API resource"),
    }
    parts = []
    if detail.get("method") == "oidc":
        parts.append(_("through the identity provider"))
    if detail.get("second_factor"):
        parts.append(_("with a one-time code"))
    if "reason" in detail:
        parts.append(reasons.get(str(detail["reason"]), str(detail["reason"])))
    if "what" in detail:
        parts.append(things.get(str(detail["what"]), str(detail["what"])))
    if "wait_seconds" in detail:
        parts.append(_("wait {seconds} s", seconds=detail["wait_seconds"]))
    if detail.get("known_client"):
        parts.append(_("from a browser known to the account"))
    if "rows" in detail:
        parts.append(_("{rows} rows", rows=detail["rows"]))
    if "sessions_ended" in detail:
        parts.append(_("sessions ended: {count}", count=detail["sessions_ended"]))
    if detail.get("revoked"):
        parts.append(status_label(_, str(detail["revoked"])))
    if detail.get("via") == "api":
        parts.append(_("through API token {token}", token=detail.get("token")))
    if entry.note:
        parts.append(entry.note)
    return "; ".join(parts)


def _when(value: dt.datetime) -> str:
    """Local time as ISO 8601, so that sorting the column by text sorts it by time."""
    return value.astimezone(TIMEZONE).strftime("%Y-%m-%d %H:%M:%S")


def _rows(
    context: PageContext, entries: tuple[AuditEntry, ...], names: Mapping[str, str]
) -> list[dict[str, Any]]:
    _ = context._
    return [
        {
            "at": _when(e.at),
            "actor": e.actor,
            "event": action_label(_, e.action),
            "organisation": names.get(e.organisation or "", e.organisation or ""),
            "target": e.target or "",
            "address": e.address or "",
            "detail": _detail(context, e),
        }
        for e in entries
    ]


def _choice(value: Any, allowed: Any) -> str | None:
    """A single-choice dropdown's value from the browser, if it is one of `allowed`."""
    return value if isinstance(value, str) and value in allowed else None


def _entries(context: PageContext, group: Any, organisation: Any) -> list[dict[str, Any]]:
    with context.sessions() as session:
        names = {
            o.slug: o.name(context.language)
            for o in views.organisations(session, context.viewer.visible)
        }
        entries = views.audit_entries(
            session,
            context.viewer,
            group=_choice(group, views.ACTION_GROUPS),
            organisation=_choice(organisation, context.viewer.visible),
        )
    return _rows(context, entries, names)


def _sessions_table(context: PageContext, limits: SessionLimits) -> Any:
    _ = context._
    with context.sessions() as session:
        live = views.signed_in_now(session, context.viewer, now=context.now, limits=limits)
    rows = [
        [
            s.username,
            s.display_name,
            _when(s.signed_in_at),
            _when(s.last_request_at),
            s.address or "",
        ]
        for s in live
    ]
    return simple_table(
        [_("User"), _("Name"), _("Signed in"), _("Last request"), _("Address")],
        rows,
        id=ids.SESSIONS_TABLE,
    )


def layout(context: PageContext) -> Any:
    _ = context._
    limits = SessionLimits.from_settings(context.config.settings.dashboard)
    with context.sessions() as session:
        organisations = [
            {"label": o.name(context.language), "value": o.slug}
            for o in views.organisations(session, context.viewer.visible)
        ]
        accounts = [
            {"label": f"{a.display_name} ({a.username})", "value": a.username}
            for a in views.managed_accounts(session, context.viewer)
        ]
    columns = [
        ("at", _("When")),
        ("actor", _("Who")),
        ("event", _("Event")),
        ("organisation", _("Organisation")),
        ("target", _("Target")),
        ("address", _("Address")),
        ("detail", _("Details")),
    ]
    return html.Div(
        [
            html.H1(_("Audit trail")),
            html.P(
                _(
                    "Sign-ins, refused requests, exports, decisions and account changes"
                    " of the people of your organisations, newest first."
                ),
                className="muted",
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.Label(_("Kind"), htmlFor=ids.AUDIT_KIND),
                            dropdown(_, ids.AUDIT_KIND, options=_group_options(_)),
                        ],
                        className="filter",
                    ),
                    html.Div(
                        [
                            html.Label(_("Organisation"), htmlFor=ids.AUDIT_ORG),
                            dropdown(_, ids.AUDIT_ORG, options=organisations),
                        ],
                        className="filter",
                    ),
                ],
                className="filters",
            ),
            data_table(
                id=ids.AUDIT_TABLE,
                columns=[{"id": key, "name": name} for key, name in columns],
                data=_entries(context, None, None),
                sort_action="native",
                page_size=50,
            ),
            section(
                _("Signed in now"),
                html.Div(_sessions_table(context, limits), id=f"{ids.SESSIONS_TABLE}-panel"),
                html.Label(_("Sign out everywhere"), htmlFor=ids.END_SESSIONS_USER),
                dropdown(_, ids.END_SESSIONS_USER, options=accounts),
                html.Button(
                    _("End every session of the account"),
                    id=ids.END_SESSIONS,
                    className="btn btn-secondary",
                ),
                html.Div(id=ids.END_SESSIONS_MESSAGE, role="status"),
            ),
        ]
    )


def register(secure: SecureCallbacks, services: Services) -> None:
    @secure.callback(
        Output(ids.AUDIT_TABLE, "data"),
        Input(ids.AUDIT_KIND, "value"),
        Input(ids.AUDIT_ORG, "value"),
        permission=Permission.AUDIT,
        prevent_initial_call=True,
    )
    def refilter(viewer: Viewer, group: Any, organisation: Any) -> Any:
        return _entries(services.context(viewer, flask.g.language), group, organisation)

    @secure.callback(
        Output(ids.END_SESSIONS_MESSAGE, "children"),
        Output(f"{ids.SESSIONS_TABLE}-panel", "children"),
        Input(ids.END_SESSIONS, "n_clicks"),
        State(ids.END_SESSIONS_USER, "value"),
        permission=Permission.AUDIT,
        prevent_initial_call=True,
    )
    def end_sessions(viewer: Viewer, _clicks: Any, username: Any) -> Any:
        context = services.context(viewer, flask.g.language)
        _ = context._
        limits = SessionLimits.from_settings(context.config.settings.dashboard)
        ended = None
        with services.sessions.begin() as session:
            managed = {a.username for a in views.managed_accounts(session, viewer)}
            if isinstance(username, str) and username in managed:
                ended = auth.end_sessions(
                    session,
                    username,
                    now=context.now,
                    actor=viewer.username,
                    address=flask.g.client.address,
                )
        if ended is None:
            if username is not None:  # an account that is not theirs, or none at all
                services.refused(viewer, "account", username)
            choose = dbc.Alert(_("Choose an account."), color="warning")
            return choose, _sessions_table(context, limits)
        message = _("{user}: sessions ended: {count}", user=username, count=ended)
        return dbc.Alert(message, color="success"), _sessions_table(context, limits)


def validation_layout() -> list[Any]:
    return [
        dcc.Dropdown(id=ids.AUDIT_KIND),
        dcc.Dropdown(id=ids.AUDIT_ORG),
        data_table(id=ids.AUDIT_TABLE),
        html.Div(id=f"{ids.SESSIONS_TABLE}-panel"),
        dcc.Dropdown(id=ids.END_SESSIONS_USER),
        html.Button(id=ids.END_SESSIONS),
        html.Div(id=ids.END_SESSIONS_MESSAGE),
    ]


PAGE = Page("audit", PATH, Permission.AUDIT, layout)
