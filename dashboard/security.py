"""Sign-in, sessions, CSRF and the one way to register a callback.

Flask (the Dash app's server) refuses every request without a valid signed session — pages,
layouts, `/_dash-*` callbacks, component bundles and downloads — except the sign-in page and
the stylesheet. Every POST carries the session's CSRF token (Dash's renderer sends the
`_csrf_token` cookie back as the `X-CSRFToken` header; the sign-in form as a hidden field).
Callbacks are registered only through `SecureCallbacks.callback`, which hands each one the
signed-in `Viewer` (and its visible organisations) and refuses roles without the permission;
`unsecured_callbacks` lists any that slipped past it.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import dash
import flask
from dash.exceptions import PreventUpdate
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session, sessionmaker

from dashboard.i18n import LANGUAGES, language_of, text
from riskiturva import auth
from riskiturva.config import Settings

CSRF_COOKIE = "_csrf_token"
CSRF_HEADER = "X-CSRFToken"
SESSION_COOKIE = "riskiturva_session"
LOGIN_PATH = "/login"
PUBLIC_PREFIXES = ("/assets/",)  # our stylesheet only: no data, no scripts


class Permission(enum.Enum):
    READ = "read"  # any signed-in user, within their visible organisations
    DETAILS = "details"  # findings, evidence, assets, scans: not management viewers
    DECIDE = "decide"  # accept a risk or mark a false positive: organisation staff
    REVIEW_ASSETS = "review_assets"  # decide on discovered assets: staff, partner admins


def current_viewer() -> auth.Viewer | None:
    """The viewer the guard signed in for this request; None outside a request."""
    return flask.g.get("viewer") if flask.has_request_context() else None


def _allowed(viewer: auth.Viewer, permission: Permission) -> bool:
    if permission is Permission.DECIDE:
        return viewer.can_decide
    if permission is Permission.REVIEW_ASSETS:
        return viewer.can_review_assets
    if permission is Permission.DETAILS:
        return viewer.sees_details
    return True


class SecureCallbacks:
    """Registers Dash callbacks that receive the signed-in viewer as their first argument."""

    def __init__(self, app: dash.Dash):
        self.app = app
        self.registered: set[str] = set()

    def callback(
        self, *dependencies: Any, permission: Permission = Permission.READ, **options: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(function)
            def checked(*values: Any) -> Any:
                viewer = current_viewer()
                if viewer is None or not _allowed(viewer, permission):
                    raise PreventUpdate
                return function(viewer, *values)

            before = set(self.app.callback_map)
            self.app.callback(*dependencies, **options)(checked)
            self.registered |= set(self.app.callback_map) - before
            return function

        return register


def unsecured_callbacks(app: dash.Dash, secure: SecureCallbacks) -> list[str]:
    """Callbacks in the app's map that were not registered through `secure`."""
    return sorted(set(app.callback_map) - secure.registered)


def _safe_next(target: str | None) -> str:
    """Only a local path: never another site (`//evil`, `https://…`)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _login_page(
    language: str, token: str, next_path: str, error: str | None, status: int = 200
) -> flask.Response:
    _ = text(language)
    body = flask.render_template_string(
        LOGIN_TEMPLATE,
        lang=language,
        title=_("Sign in"),
        heading=_("Riskiturva"),
        subtitle=_("Is our IT environment up to date and secure?"),
        username_label=_("User name"),
        password_label=_("Password"),
        submit=_("Sign in"),
        language_label=_("Language"),
        error=error,
        token=token,
        next_path=next_path,
        languages=[(code, name, code == language) for code, name in LANGUAGES.items()],
    )
    response = flask.make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


LOGIN_TEMPLATE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · Riskiturva</title>
<link rel="stylesheet" href="/assets/riskiturva.css"></head>
<body class="login-body"><main class="login-card" aria-labelledby="login-heading">
<h1 id="login-heading">{{ heading }}</h1><p class="muted">{{ subtitle }}</p>
{% if error %}<p class="alert alert-danger" role="alert" id="login-error">{{ error }}</p>{% endif %}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{{ token }}">
<input type="hidden" name="next" value="{{ next_path }}">
<label for="username">{{ username_label }}</label>
<input class="form-control" id="username" name="username" autocomplete="username" required>
<label for="password">{{ password_label }}</label>
<input class="form-control" id="password" name="password" type="password"
 autocomplete="current-password" required>
<button class="btn btn-primary" id="login-submit" type="submit">{{ submit }}</button>
</form>
<nav class="languages" aria-label="{{ language_label }}">{% for code, name, current in languages %}
<a href="/language/{{ code }}?next=/login"
 {%- if current %} aria-current="true"{% endif %}>{{ name }}</a>
{% endfor %}</nav></main></body></html>
"""


def install(
    app: dash.Dash,
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Callable[[], dt.datetime],
) -> None:
    """Configure the Flask server's sessions and put the sign-in guard in front of it."""
    server: flask.Flask = app.server
    dashboard = settings.dashboard
    server.secret_key = auth.secret_key(settings)
    server.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=dashboard.secure_cookies,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=dashboard.session_hours),
    )

    @server.before_request
    def guard() -> ResponseReturnValue | None:
        path = flask.request.path
        if path.startswith(PUBLIC_PREFIXES) or path == LOGIN_PATH or path.startswith("/language/"):
            return None
        viewer = None
        user_id, epoch = flask.session.get("uid"), flask.session.get("epoch")
        if isinstance(user_id, int) and isinstance(epoch, int):
            with sessions() as session:
                viewer = auth.load_viewer(session, user_id, epoch)
        if viewer is None:
            if (
                "uid" in flask.session
            ):  # a sign-in that ended: forget it (keep a login form's token)
                flask.session.clear()
            if flask.request.method == "GET" and not path.startswith("/_"):
                target = urlencode({"next": flask.request.full_path.rstrip("?")})
                return flask.redirect(f"{LOGIN_PATH}?{target}")
            return flask.make_response(({"error": "sign in first"}, 401))
        if flask.request.method != "GET" and not _csrf_ok(flask.request.headers.get(CSRF_HEADER)):
            return flask.make_response(({"error": "missing or wrong CSRF token"}, 403))
        flask.g.viewer = viewer
        flask.g.language = language_of(viewer)
        return None

    @server.after_request
    def headers(response: flask.Response) -> flask.Response:
        token = flask.session.get("csrf")
        if token and flask.request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(
                CSRF_COOKIE, token, samesite="Strict", secure=dashboard.secure_cookies
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if flask.g.get("viewer") is not None:
            response.headers["Cache-Control"] = "no-store"
        return response

    @server.route(LOGIN_PATH, methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        language = flask.session.get("lang") or "fi"
        _ = text(language)
        token = flask.session.get("login_csrf") or secrets.token_urlsafe(32)
        flask.session["login_csrf"] = token
        next_path = _safe_next(flask.request.values.get("next"))
        if flask.request.method == "GET":
            return _login_page(language, token, next_path, None)
        if not hmac.compare_digest(str(flask.request.form.get("csrf", "")), token):
            return _login_page(language, token, next_path, _("The form expired. Try again."), 400)
        now = clock()
        with sessions.begin() as session:
            result = auth.authenticate(
                session,
                str(flask.request.form.get("username", "")),
                str(flask.request.form.get("password", "")),
                address=flask.request.remote_addr,
                now=now,
                attempts=dashboard.login_attempts,
                window=dt.timedelta(seconds=dashboard.login_window_seconds),
            )
        if result.viewer is None:
            message = (
                _("Too many failed sign-ins. Wait a while and try again.")
                if result.throttled
                else _("Wrong user name or password.")
            )
            return _login_page(
                language, token, next_path, message, 429 if result.throttled else 401
            )
        chosen_language = flask.session.get("lang")
        flask.session.clear()  # a fresh session: no fixation
        flask.session.permanent = True
        flask.session.update(
            uid=result.viewer.user_id,
            epoch=result.viewer.session_epoch,
            csrf=secrets.token_urlsafe(32),
            lang=chosen_language or result.viewer.language,
        )
        return flask.redirect(next_path)

    @server.route("/language/<code>")
    def choose_language(code: str) -> ResponseReturnValue:
        if code in LANGUAGES:
            flask.session["lang"] = code
        back = urlsplit(flask.request.referrer or "")
        referrer = back.path + (f"?{back.query}" if back.query else "")
        return flask.redirect(_safe_next(flask.request.args.get("next") or referrer))


def _csrf_ok(sent: str | None) -> bool:
    expected = flask.session.get("csrf")
    return bool(expected and sent and hmac.compare_digest(sent, expected))


def sign_out() -> None:
    """End the current session (called from the sign-out callback)."""
    flask.session.clear()
