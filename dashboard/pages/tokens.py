"""The signed-in person's own API tokens (`riskiturva.api_tokens`, docs/api.md): create one
(shown once), list them, revoke one. A token can only narrow its holder's rights: the
scope `decide` is offered to those who may decide, the organisations are their own."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, ctx, dcc, html

from dashboard import ids
from dashboard.components import PageContext, Services, dropdown, section, simple_table
from dashboard.pages import Page
from dashboard.security import Permission, SecureCallbacks, current_client
from riskiturva import api_tokens, views
from riskiturva.api_tokens import DEFAULT_DAYS, MAX_DAYS, TokenScope, TokenView
from riskiturva.auth import AccountError, Viewer
from riskiturva.i18n import Translator

PATH = "/tokens"


def _scope_label(_: Translator, scope: str) -> str:
    return {
        str(TokenScope.READ): _("Read only"),
        str(TokenScope.DECIDE): _("Read and decide on findings"),
    }.get(scope, scope)


def _own(context: PageContext) -> list[TokenView]:
    with context.sessions() as session:
        return api_tokens.list_tokens(session, context.viewer.username)


def _table(context: PageContext, tokens: list[TokenView]) -> Any:
    _ = context._

    def state(token: TokenView) -> str:
        if token.revoked_at is not None:
            return _("Revoked")
        return _("In use") if token.live(context.now) else _("Expired")

    rows = [
        [
            t.name,
            html.Code(t.prefix + "…"),
            _scope_label(_, t.scope),
            ", ".join(t.organisations) or _("All of yours"),
            context.when(t.created_at),
            context.day(t.expires_at),
            context.when(t.last_used_at),
            state(t),
        ]
        for t in tokens
    ]
    headers = [
        _("Name"),
        _("Token"),
        _("Permissions"),
        _("Organisations"),
        _("Created"),
        _("Expires"),
        _("Last used"),
        _("State"),
    ]
    return simple_table(headers, rows, id=ids.TOKENS_LIST)


def _revocable(context: PageContext, tokens: list[TokenView]) -> list[dict[str, Any]]:
    return [
        {"label": f"{t.name} ({t.prefix}…)", "value": t.id} for t in tokens if t.live(context.now)
    ]


def layout(context: PageContext) -> Any:
    _ = context._
    viewer = context.viewer
    with context.sessions() as session:
        organisations = [
            {"label": o.name(context.language), "value": o.slug}
            for o in views.organisations(session, viewer.visible)
        ]
    scopes = [{"label": _scope_label(_, TokenScope.READ), "value": str(TokenScope.READ)}]
    if viewer.can_decide:
        scopes.append(
            {"label": _scope_label(_, TokenScope.DECIDE), "value": str(TokenScope.DECIDE)}
        )
    tokens = _own(context)
    return html.Div(
        [
            html.H1(_("API tokens")),
            html.P(
                _(
                    "A token lets a program read through the API what you see here, never"
                    " more; you can narrow it to reading only and to some of your"
                    " organisations. It is shown once, when it is created: only a hash of it"
                    " is kept."
                ),
                className="muted",
            ),
            html.Div(id=ids.TOKEN_MESSAGE, role="status"),
            section(
                _("Your tokens"),
                html.Div(_table(context, tokens), id=f"{ids.TOKENS_LIST}-panel"),
                html.Label(_("Revoke a token"), htmlFor=ids.TOKEN_REVOKE_ID),
                dropdown(_, ids.TOKEN_REVOKE_ID, options=_revocable(context, tokens)),
                html.Button(_("Revoke"), id=ids.TOKEN_REVOKE, className="btn btn-outline-danger"),
            ),
            section(
                _("New token"),
                html.Label(_("What it is for"), htmlFor=ids.TOKEN_NAME),
                dcc.Input(id=ids.TOKEN_NAME, className="form-control", maxLength=100),
                html.Label(_("Permissions"), htmlFor=ids.TOKEN_SCOPE),
                dcc.RadioItems(
                    id=ids.TOKEN_SCOPE,
                    options=scopes,
                    value=str(TokenScope.READ),
                    labelClassName="radio",
                ),
                html.Label(_("Only these organisations"), htmlFor=ids.TOKEN_ORGS),
                dropdown(_, ids.TOKEN_ORGS, options=organisations, multi=True),
                html.Label(_("Valid for (days)"), htmlFor=ids.TOKEN_DAYS),
                dcc.Input(
                    id=ids.TOKEN_DAYS,
                    type="number",
                    value=DEFAULT_DAYS,
                    min=1,
                    max=MAX_DAYS,
                    className="form-control",
                ),
                html.Button(
                    _("Create the token"), id=ids.TOKEN_CREATE, className="btn btn-primary"
                ),
            ),
        ]
    )


def _days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AccountError("days")
    return value


def _slugs(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AccountError("organisations")
    return value


def register(secure: SecureCallbacks, services: Services) -> None:
    @secure.callback(
        Output(ids.TOKEN_MESSAGE, "children"),
        Output(f"{ids.TOKENS_LIST}-panel", "children"),
        Output(ids.TOKEN_REVOKE_ID, "options"),
        Input(ids.TOKEN_CREATE, "n_clicks"),
        Input(ids.TOKEN_REVOKE, "n_clicks"),
        State(ids.TOKEN_NAME, "value"),
        State(ids.TOKEN_SCOPE, "value"),
        State(ids.TOKEN_ORGS, "value"),
        State(ids.TOKEN_DAYS, "value"),
        State(ids.TOKEN_REVOKE_ID, "value"),
        prevent_initial_call=True,
    )
    def create_or_revoke(
        viewer: Viewer,
        _creates: Any,
        _revokes: Any,
        name: Any,
        scope: Any,
        organisations: Any,
        days: Any,
        token_id: Any,
    ) -> Any:
        context = services.context(viewer, flask.g.language)
        _ = context._
        client = current_client()
        address = client.address if client else None
        message: Any
        try:
            with services.sessions.begin() as session:
                if ctx.triggered_id == ids.TOKEN_REVOKE:
                    if isinstance(token_id, bool) or not isinstance(token_id, int):
                        raise AccountError("no token")
                    revoked = api_tokens.revoke_token(
                        session,
                        token_id,
                        now=context.now,
                        actor=viewer.username,
                        username=viewer.username,
                        address=address,
                    )
                    message = dbc.Alert(_("Revoked: {name}", name=revoked.name), color="success")
                else:
                    created = api_tokens.create_token(
                        session,
                        viewer.username,
                        name=str(name or ""),
                        scope=str(scope),
                        organisations=_slugs(organisations),
                        days=_days(days),
                        now=context.now,
                        actor=viewer.username,
                        address=address,
                    )
                    message = dbc.Alert(
                        [
                            html.P(_("Copy the token now: it is not shown again.")),
                            html.Code(created.secret, id=ids.TOKEN_SECRET),
                        ],
                        color="success",
                    )
        except AccountError:
            if ctx.triggered_id == ids.TOKEN_REVOKE and token_id is not None:
                services.refused(viewer, "token", token_id)
            elif isinstance(organisations, list) and not set(map(str, organisations)) <= set(
                viewer.visible
            ):
                services.refused(viewer, "organisation", organisations)
            message = dbc.Alert(
                _(
                    "Give the token a name, choose permissions your role has, your own"
                    " organisations and 1–366 days; choose a token in use to revoke."
                ),
                color="warning",
            )
        tokens = _own(context)
        return message, _table(context, tokens), _revocable(context, tokens)


def validation_layout() -> list[Any]:
    return [
        html.Div(id=f"{ids.TOKENS_LIST}-panel"),
        dcc.Dropdown(id=ids.TOKEN_REVOKE_ID),
        html.Button(id=ids.TOKEN_REVOKE),
        dcc.Input(id=ids.TOKEN_NAME),
        dcc.RadioItems(id=ids.TOKEN_SCOPE),
        dcc.Dropdown(id=ids.TOKEN_ORGS),
        dcc.Input(id=ids.TOKEN_DAYS),
        html.Button(id=ids.TOKEN_CREATE),
        html.Div(id=ids.TOKEN_MESSAGE),
    ]


PAGE = Page("tokens", PATH, Permission.READ, layout)
