"""The Riskiturva dashboard: a Dash app behind a Flask sign-in, and the REST API beside it
(`dashboard.api`, under /api/v1, on the same Flask server).

`create_app(config, sessions)` builds it; `run(app)` serves it with waitress on
127.0.0.1:8050. Pages live in `dashboard/pages/`, one module each; every callback is
registered through `SecureCallbacks` (see `dashboard.security`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import dash
import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, dcc, html
from dash.exceptions import PreventUpdate
from sqlalchemy.orm import Session, sessionmaker

from dashboard import api, exports, ids, pages
from dashboard.components import Services, aria
from dashboard.headers import content_security_policy
from dashboard.i18n import LANGUAGES, text
from dashboard.security import (
    CSP_CONFIG_KEY,
    SecureCallbacks,
    audit_request,
    current_viewer,
    install,
    sign_out,
)
from riskiturva.checks import Registry, load_registry
from riskiturva.config import Config

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "create_app", "make_server", "run"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
ASSETS = Path(__file__).parent / "assets"


class _Dash(dash.Dash):
    """Dash, with `<html lang>` set to the reader's language on every page."""

    def interpolate_index(self, **kwargs: Any) -> str:  # type: ignore[override]  # keywords only
        index: str = super().interpolate_index(**kwargs)  # type: ignore[no-untyped-call]
        language = flask.g.get("language") or flask.session.get("lang") or "fi"
        return index.replace("<html>", f'<html lang="{language}">', 1)


def create_app(
    config: Config,
    sessions: sessionmaker[Session],
    *,
    registry: Registry | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> dash.Dash:
    """The dashboard for the organisations in `sessions`' store. `clock` (an aware `now`)
    is for tests; the secret key comes from `config.settings.dashboard` or the data dir."""
    services = Services(sessions, registry or load_registry(), config, clock or _utc_now)
    app = _Dash(
        __name__,
        server=api.new_server(__name__),  # type: ignore[arg-type]  # Dash's hint omits a Flask app
        title="Riskiturva",
        update_title="",  # no "Updating…" in the tab title
        assets_folder=str(ASSETS),
        serve_locally=True,
        suppress_callback_exceptions=False,
    )
    install(app, sessions, config.settings, services.clock, pages.known_path, api.before_request)
    api.install(app.server, services, per_minute=config.settings.dashboard.api_requests_per_minute)
    app.layout = _shell
    secure = SecureCallbacks(
        app,
        on_refused=lambda viewer, output: audit_request(
            sessions,
            services.clock(),
            viewer,
            "request.refused",
            target=output,
            detail={"reason": "permission"},
        ),
    )
    app.secure_callbacks = secure  # type: ignore[attr-defined]  # read by the tests
    _register_shell(secure, services)
    exports.register(secure, services)
    validation: list[Any] = [*exports.validation_layout()]
    for module in pages.page_modules():
        module.register(secure, services)
        validation.extend(module.validation_layout())
    app.validation_layout = html.Div([_shell_components(), *validation])  # type: ignore[assignment]
    # Last: the hashes cover every inline script Dash writes, clientside callbacks included.
    app.server.config[CSP_CONFIG_KEY] = content_security_policy(app.csp_hashes())
    return app


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _shell_components() -> html.Div:
    return html.Div(
        [
            dcc.Location(id=ids.URL),
            dcc.Location(id=ids.REDIRECT, refresh=True),
            html.Button(id=ids.SIGN_OUT),
            html.Main(id=ids.PAGE),
        ]
    )


def _shell() -> Any:
    """The frame around every page, for the signed-in viewer (the guard ran before)."""
    viewer = current_viewer()
    if viewer is None:  # not reachable through the guard; never render data without one
        return html.Div()
    language = flask.g.language
    _ = text(language)
    links = [dbc.NavItem(dbc.NavLink(_("Home"), href="/"))]
    if len(viewer.visible) > 1:
        links.append(dbc.NavItem(dbc.NavLink(_("Portfolio"), href="/portfolio")))
        if viewer.sees_details:
            links.append(dbc.NavItem(dbc.NavLink(_("Alerts"), href="/alerts")))
        links.append(dbc.NavItem(dbc.NavLink(_("Reports"), href="/reports")))
    if viewer.can_audit:
        links.append(dbc.NavItem(dbc.NavLink(_("Audit trail"), href="/audit", id="nav-audit")))
    links.append(dbc.NavItem(dbc.NavLink(_("API tokens"), href="/tokens", id="nav-tokens")))
    current: dict[str, Any] = {"aria-current": "true"}
    languages = [
        html.A(
            name,
            href=f"/language/{code}",
            lang=code,
            className="language" + (" current" if code == language else ""),
            **(current if code == language else {}),
        )
        for code, name in LANGUAGES.items()
    ]
    return html.Div(
        [
            dcc.Location(id=ids.URL),
            dcc.Location(id=ids.REDIRECT, refresh=True),
            html.Header(
                html.Nav(
                    [
                        html.A("Riskiturva", href="/", className="brand"),
                        dbc.Nav(links, className="main-links"),
                        html.Div(languages, className="languages", **aria(_("Language"))),
                        html.Span(viewer.display_name, className="user", id="user-name"),
                        html.Button(_("Sign out"), id=ids.SIGN_OUT, className="btn btn-link"),
                    ],
                    className="topbar",
                    **aria(_("Main")),
                )
            ),
            html.Main(id=ids.PAGE, className="content"),
        ]
    )


def _register_shell(secure: SecureCallbacks, services: Services) -> None:
    @secure.callback(
        Output(ids.PAGE, "children"), Input(ids.URL, "pathname"), Input(ids.URL, "search")
    )
    def route(viewer: Any, path: str | None, search: str | None) -> Any:
        query = parse_qs(str(search or "").lstrip("?"))
        context = services.context(viewer, flask.g.language, query)
        page = pages.render(context, str(path or "/"))
        if getattr(page, "id", None) == ids.NOT_FOUND:
            services.refused(viewer, "page", path)
        return page

    @secure.callback(
        Output(ids.REDIRECT, "href"), Input(ids.SIGN_OUT, "n_clicks"), prevent_initial_call=True
    )
    def sign_out_clicked(viewer: Any, clicks: int | None) -> str:
        if not clicks:
            raise PreventUpdate
        sign_out(services.sessions, services.clock())
        return "/login"


def make_server(app: dash.Dash, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> Any:
    """A waitress server for the app (`port=0`: any free port, see `.effective_port`);
    `.run()` serves until `.close()`."""
    import waitress

    return waitress.create_server(
        app.server,
        host=host,
        port=port,
        threads=8,
        ident="Riskiturva",
        # Waitress would strip X-Forwarded-* from every peer it was not told to trust; the
        # dashboard's guard decides that itself, from settings.dashboard.trusted_proxies.
        clear_untrusted_proxy_headers=False,
    )


def run(app: dash.Dash, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the app with waitress (a production WSGI server) until interrupted."""
    make_server(app, host=host, port=port).run()
