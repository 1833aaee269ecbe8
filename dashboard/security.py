"""Sign-in, sessions, request checks and the one way to register a callback.

Flask (the Dash app's server) refuses every request without a live server-side session
(`riskiturva.user_sessions`) — pages, layouts, `/_dash-*` callbacks, component bundles and
downloads — except the sign-in page (with its second step, the TOTP code of an account
that has one, and the OpenID Connect routes of `dashboard.oidc` when a provider is
configured), the language links and the stylesheet. A state-changing
request must come from this site (`Origin`, `Sec-Fetch-Site`) and carry the session's CSRF
token (Dash's renderer sends the `_csrf_token` cookie back as the `X-CSRFToken` header; the
sign-in form as a hidden field); a callback body must have the shape of the callback it
names (`dashboard.callback_body`). Callbacks are registered only through
`SecureCallbacks.callback`, which hands each one the signed-in `Viewer` (and its visible
organisations) and refuses roles without the permission; `unsecured_callbacks` lists any
that slipped past it. Refused requests of signed-in people are audited.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hmac
import math
import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import dash
import flask
from dash.exceptions import DependencyException, PreventUpdate
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.wrappers import Response as WerkzeugResponse

from dashboard import callback_body, proxies
from dashboard.headers import cache_control, compressor, security_headers
from dashboard.i18n import LANGUAGES, language_of, text
from riskiturva import auth, user_sessions
from riskiturva.config import Settings
from riskiturva.signin_throttle import ThrottlePolicy
from riskiturva.user_sessions import SessionLimits

CSRF_COOKIE = "_csrf_token"
CSRF_HEADER = "X-CSRFToken"
SESSION_COOKIE = "riskiturva_session"
DEVICE_COOKIE = "riskiturva_device"  # accounts this browser signed in to (signin_throttle)
DEVICE_ACCOUNTS = 10  # at most this many names in it
LOGIN_PATH = "/login"
SIGN_IN_PATHS = (LOGIN_PATH, "/login/oidc", "/login/oidc/callback")  # no session needed
SECOND_FACTOR_KEY = "second_factor"  # in the signed cookie: whose code the form waits for
SECOND_FACTOR_TIME = dt.timedelta(minutes=5)
CALLBACK_PATH = "/_dash-update-component"
PUBLIC_PREFIXES = ("/assets/", "/_favicon.ico")  # our stylesheet and script, an icon: no data
READS = ("GET", "HEAD")  # uptime monitors ask HEAD: it answers like GET
SAFE_METHODS = (*READS, "OPTIONS")
MAX_BODY_BYTES = 1 << 20
CATCH_ALL_RULE = "/<path:path>"  # Dash's: every path no other route took
CSP_CONFIG_KEY = "RISKITURVA_CSP"  # set by create_app once every callback is registered
API_PREFIX = "/api/v1"  # the REST API (`dashboard.api`): tokens, not sessions


class Permission(enum.Enum):
    READ = "read"  # any signed-in user, within their visible organisations
    DETAILS = "details"  # findings, evidence, assets, scans: not management viewers
    DECIDE = "decide"  # accept a risk or mark a false positive: organisation staff
    REVIEW_ASSETS = "review_assets"  # decide on discovered assets: staff, partner admins
    AUDIT = "audit"  # the audit trail and sessions of their organisations: partner admins


def is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def current_viewer() -> auth.Viewer | None:
    """The viewer the guard signed in for this request; None outside a request."""
    return flask.g.get("viewer") if flask.has_request_context() else None


def current_client() -> proxies.Client | None:
    """The client of this request as the guard resolved it (trusted proxies applied)."""
    return flask.g.get("client") if flask.has_request_context() else None


def allowed(viewer: auth.Viewer, permission: Permission) -> bool:
    if permission is Permission.DECIDE:
        return viewer.can_decide
    if permission is Permission.REVIEW_ASSETS:
        return viewer.can_review_assets
    if permission is Permission.DETAILS:
        return viewer.sees_details
    if permission is Permission.AUDIT:
        return viewer.can_audit
    return True


def audit_in(
    session: Session,
    now: dt.datetime,
    viewer: auth.Viewer,
    action: str,
    *,
    organisation: str | None = None,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> None:
    """One audit row, in `session`'s transaction, for something the signed-in viewer did in
    this request, from the client address the guard resolved; filed under the viewer's own
    organisation unless `organisation` says otherwise."""
    client = current_client()
    auth.audit(
        session,
        actor=viewer.username,
        action=action,
        organisation=organisation or viewer.home_organisation,
        target=None if target is None else target[:200],
        address=client.address if client else None,
        now=now,
        detail=detail,
        note=note,
    )


def audit_request(
    sessions: sessionmaker[Session],
    now: dt.datetime,
    viewer: auth.Viewer,
    action: str,
    **fields: Any,
) -> None:
    """`audit_in`, in a transaction of its own."""
    with sessions.begin() as session:
        audit_in(session, now, viewer, action, **fields)


class SecureCallbacks:
    """Registers Dash callbacks that receive the signed-in viewer as their first argument.
    `on_refused(viewer, output)` hears of a role calling a callback it may not."""

    def __init__(
        self, app: dash.Dash, on_refused: Callable[[auth.Viewer, str], None] | None = None
    ):
        self.app = app
        self.registered: set[str] = set()
        self.on_refused = on_refused

    def callback(
        self, *dependencies: Any, permission: Permission = Permission.READ, **options: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            outputs: list[str] = []

            @functools.wraps(function)
            def checked(*values: Any) -> Any:
                viewer = current_viewer()
                if viewer is None:
                    raise PreventUpdate
                if not allowed(viewer, permission):
                    if self.on_refused is not None:
                        self.on_refused(viewer, outputs[0])
                    raise PreventUpdate
                return function(viewer, *values)

            before = set(self.app.callback_map)
            self.app.callback(*dependencies, **options)(checked)
            added = set(self.app.callback_map) - before
            outputs.extend(added)
            self.registered |= added
            return function

        return register

    def browser_only(self, function: Any, *dependencies: Any) -> None:
        """A clientside callback (`dash.ClientsideFunction` from a script in /assets):
        it runs in the browser on what the page already has, and asks the server nothing."""
        before = set(self.app.callback_map)
        self.app.clientside_callback(function, *dependencies)  # type: ignore[no-untyped-call]
        self.registered |= set(self.app.callback_map) - before


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


def _not_found_page(language: str) -> flask.Response:
    _ = text(language)
    body = flask.render_template_string(
        NOT_FOUND_TEMPLATE,
        lang=language,
        title=_("Not found"),
        message=_("There is nothing here, or it is not yours to see."),
        home=_("Home"),
    )
    response = flask.make_response(body, 404)
    response.headers["Cache-Control"] = "no-store"
    return response


# The head of the small pages outside the app: sign-in, not found, a refused sign-in.
CARD_PAGE_HEAD = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · Riskiturva</title>
<link rel="icon" href="/_favicon.ico">
<link rel="stylesheet" href="/assets/riskiturva.css"></head>
"""

NOT_FOUND_TEMPLATE = (
    CARD_PAGE_HEAD
    + """\
<body class="login-body"><main class="login-card" id="not-found">
<h1>{{ title }}</h1><p>{{ message }}</p><p><a href="/">{{ home }}</a></p></main></body></html>
"""
)


def _pending_second_factor(now: dt.datetime) -> dict[str, Any] | None:
    """The account whose password this browser gave right within SECOND_FACTOR_TIME and
    whose TOTP code is still to come."""
    pending = flask.session.get(SECOND_FACTOR_KEY)
    if not isinstance(pending, dict) or float(pending.get("until", 0)) < now.timestamp():
        return None
    return pending


def _login_page(
    language: str,
    token: str,
    next_path: str,
    error: str | None,
    status: int = 200,
    *,
    second_factor: bool = False,
    provider: tuple[str, str] | None = None,
) -> flask.Response:
    """The sign-in form; `second_factor`: the TOTP code's form instead; `provider`: the
    name and start link of the OpenID Connect provider, when one is configured."""
    _ = text(language)
    body = flask.render_template_string(
        LOGIN_TEMPLATE,
        lang=language,
        title=_("Sign in"),
        heading=_("Riskiturva"),
        subtitle=_("Is our IT environment up to date and secure?"),
        username_label=_("User name"),
        password_label=_("Password"),
        code_label=_("Code from your authenticator app"),
        second_factor=second_factor,
        provider_link=provider[1] if provider else None,
        provider_label=_("Sign in with {provider}", provider=provider[0]) if provider else "",
        or_label=_("or with a local account"),
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


LOGIN_TEMPLATE = (
    CARD_PAGE_HEAD
    + """\
<body class="login-body"><main class="login-card" aria-labelledby="login-heading">
<h1 id="login-heading">{{ heading }}</h1><p class="muted">{{ subtitle }}</p>
{% if error %}<p class="alert alert-danger" role="alert" id="login-error">{{ error }}</p>{% endif %}
{% if provider_link and not second_factor %}
<p><a class="btn btn-primary" id="login-oidc"
 href="{{ provider_link }}">{{ provider_label }}</a></p>
<p class="muted or-local">{{ or_label }}</p>{% endif %}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{{ token }}">
<input type="hidden" name="next" value="{{ next_path }}">
{% if second_factor %}
<label for="code">{{ code_label }}</label>
<input class="form-control" id="code" name="code" inputmode="numeric" pattern="[0-9 ]*"
 autocomplete="one-time-code" required autofocus>
{% else %}
<label for="username">{{ username_label }}</label>
<input class="form-control" id="username" name="username" autocomplete="username" required>
<label for="password">{{ password_label }}</label>
<input class="form-control" id="password" name="password" type="password"
 autocomplete="current-password" required>
{% endif %}
<button class="btn btn-primary" id="login-submit" type="submit">{{ submit }}</button>
</form>
<nav class="languages" aria-label="{{ language_label }}">{% for code, name, current in languages %}
<a href="/language/{{ code }}?next=/login"
 {%- if current %} aria-current="true"{% endif %}>{{ name }}</a>
{% endfor %}</nav></main></body></html>
"""
)


def install(
    app: dash.Dash,
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Callable[[], dt.datetime],
    known_path: Callable[[str], bool],
    api_guard: Callable[[bool], flask.Response | None],
) -> None:
    """Configure the Flask server's cookies and put the guard in front of it.
    `known_path(path)`: a page path the router knows (anything else is 404);
    `api_guard(catch_all)`: the API's own check of a request under `API_PREFIX`, which
    carries a token instead of a session (`catch_all`: no API route took the path)."""
    server: flask.Flask = app.server
    dashboard = settings.dashboard
    server.secret_key = auth.secret_key(settings)
    server.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=dashboard.secure_cookies,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=dashboard.session_hours),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    limits = SessionLimits.from_settings(dashboard)
    policy = ThrottlePolicy.from_settings(dashboard)
    devices = URLSafeTimedSerializer(server.secret_key, salt="riskiturva.known-device")
    device_max_age = dt.timedelta(days=dashboard.known_device_days)
    compression = compressor(server)

    def refuse(
        viewer: auth.Viewer | None, status: int, reason: str, message: str
    ) -> flask.Response:
        """Refuse the request; audit it when it came with a live session (`reason`: a
        code, `message`: for the client)."""
        if viewer is not None:
            audit_request(
                sessions,
                clock(),
                viewer,
                "request.refused",
                target=flask.request.path,
                detail={"reason": reason, "method": flask.request.method, "message": message},
            )
        return flask.make_response(({"error": message}, status))

    def resume_viewer() -> auth.Viewer | None:
        token = flask.session.get("sid")
        if not isinstance(token, str):
            return None
        now = clock()
        with sessions.begin() as session:
            resumed = user_sessions.resume(session, token, now=now, limits=limits)
            if resumed is None:
                return None
            user = session.get(auth.User, resumed.user_id)
            if resumed.ended is not None and user is not None:
                auth.audit(
                    session,
                    actor=user.username,
                    action="session.expired",
                    target=user.username,
                    organisation=auth.home_organisation(user),
                    address=flask.g.client.address,
                    now=now,
                    detail={"reason": resumed.ended},
                )
            return auth.load_viewer(session, resumed.user_id) if resumed.live else None

    @server.errorhandler(404)
    @server.errorhandler(DependencyException)  # a component bundle Dash does not have
    def not_found(_error: Exception) -> flask.Response:
        if is_api_path(flask.request.path):
            return flask.make_response(({"error": "no such resource"}, 404))
        return _not_found_page(flask.session.get("lang") or "fi")

    @server.before_request
    def guard() -> ResponseReturnValue | None:
        request = flask.request
        path, method = request.path, request.method
        flask.g.client = proxies.client_of(
            request.remote_addr,
            {k.lower(): v for k, v in request.headers.items()},
            request.scheme,
            request.host,
            dashboard.trusted_proxies,
        )
        if path.startswith(PUBLIC_PREFIXES) or path.startswith("/language/"):
            return None  # no data, nothing changes: no session to look up
        if is_api_path(path):  # a token, never the session cookie: no CSRF to forge
            if request.routing_exception is not None:
                return None  # 404 or 405, answered in JSON
            return api_guard(
                request.url_rule is not None and request.url_rule.rule == CATCH_ALL_RULE
            )
        viewer = resume_viewer()
        if viewer is None and "sid" in flask.session:
            # A sign-in that ended: forget it, keep the chosen language.
            language = flask.session.get("lang")
            flask.session.clear()
            if language:
                flask.session["lang"] = language
        if method not in SAFE_METHODS and not _from_this_site(flask.g.client):
            return refuse(viewer, 403, "cross_site", "a request from another site")
        unknown = request.url_rule is not None and request.url_rule.rule == CATCH_ALL_RULE
        if unknown and not known_path(path):
            if viewer is None:
                return _not_found_page(flask.session.get("lang") or "fi")
            flask.g.not_found = True  # the app renders its own "not found" with this status
        if path in SIGN_IN_PATHS:
            return None
        if viewer is None:
            if method in READS and not path.startswith("/_"):
                target = urlencode({"next": request.full_path.rstrip("?")})
                return flask.redirect(f"{LOGIN_PATH}?{target}")
            return flask.make_response(({"error": "sign in first"}, 401))
        if method not in SAFE_METHODS and not _csrf_ok(request.headers.get(CSRF_HEADER)):
            return refuse(viewer, 403, "csrf", "missing or wrong CSRF token")
        if path == CALLBACK_PATH and method == "POST":
            problem = callback_body.problem(request.get_json(silent=True), app.callback_map)
            if problem is not None:
                return refuse(viewer, 400, "malformed", f"malformed callback: {problem}")
        flask.g.viewer = viewer
        flask.g.language = language_of(viewer)
        return None

    @server.after_request
    def headers(response: flask.Response) -> flask.Response:
        if flask.g.get("not_found") and response.status_code == 200:
            response.status_code = 404
        token = flask.session.get("csrf")
        if token and flask.request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(
                CSRF_COOKIE, token, samesite="Strict", secure=dashboard.secure_cookies
            )
        csp = server.config[CSP_CONFIG_KEY]
        for name, value in security_headers(csp, https=dashboard.secure_cookies).items():
            response.headers.setdefault(name, value)
        request = flask.request
        caching = cache_control(
            request.path,
            request.args,
            status=response.status_code,
            signed_in=flask.g.get("viewer") is not None,
        )
        if caching is not None:
            response.headers["Cache-Control"] = caching
        if request.path in SIGN_IN_PATHS:
            return response  # secret tokens next to a chosen `next`: never compressed
        return compression.after_request(response)

    def known_accounts() -> list[str]:
        cookie = flask.request.cookies.get(DEVICE_COOKIE)
        if not cookie:
            return []
        try:
            names = devices.loads(cookie, max_age=int(device_max_age.total_seconds()))
        except BadSignature:
            return []
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []

    def begin(session: Session, viewer: auth.Viewer, now: dt.datetime) -> str:
        """Open the server-side session of a sign-in, in its transaction: its token."""
        return user_sessions.start(
            session,
            viewer.user_id,
            now=now,
            limits=limits,
            address=flask.g.client.address,
            user_agent=flask.request.user_agent.string,
        )

    def signed_in(viewer: auth.Viewer, session_token: str, next_path: str) -> WerkzeugResponse:
        """Hand a new sign-in to the browser: a fresh cookie (no fixation), then `next`."""
        chosen_language = flask.session.get("lang")
        flask.session.clear()
        flask.session.permanent = True
        flask.session.update(
            sid=session_token,
            csrf=secrets.token_urlsafe(32),
            lang=chosen_language or viewer.language,
        )
        return flask.redirect(next_path)

    def remember_device(response: WerkzeugResponse, known: list[str], username: str) -> None:
        remembered = [n for n in known if n != username][-(DEVICE_ACCOUNTS - 1) :]
        response.set_cookie(
            DEVICE_COOKIE,
            devices.dumps([*remembered, username]),
            max_age=int(device_max_age.total_seconds()),
            httponly=True,
            samesite="Lax",
            secure=dashboard.secure_cookies,
        )

    oidc_link: Callable[[str], str] | None = None
    if dashboard.oidc is not None:
        from dashboard import oidc as oidc_routes

        oidc_routes.install(server, sessions, settings, clock, _safe_next, begin, signed_in)
        oidc_link = oidc_routes.start_link

    @server.route(LOGIN_PATH, methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        language = flask.session.get("lang") or "fi"
        _ = text(language)
        token = flask.session.get("login_csrf") or secrets.token_urlsafe(32)
        flask.session["login_csrf"] = token
        next_path = _safe_next(flask.request.values.get("next"))
        pending = _pending_second_factor(clock())

        def page(error: str | None, status: int = 200, *, second: bool = False) -> flask.Response:
            return _login_page(
                language,
                token,
                next_path,
                error,
                status,
                second_factor=second,
                provider=(dashboard.oidc.name, oidc_link(next_path))
                if dashboard.oidc and oidc_link
                else None,
            )

        if flask.request.method != "POST":
            return page(None)
        if not hmac.compare_digest(str(flask.request.form.get("csrf", "")), token):
            return page(_("The form expired. Try again."), 400)
        now = clock()
        client = flask.g.client
        known = known_accounts()
        second_step = "code" in flask.request.form and pending is not None
        with sessions.begin() as session:
            if second_step and pending is not None:
                username = pending["name"]
                result = auth.verify_second_factor(
                    session,
                    pending["user"],
                    str(flask.request.form.get("code", "")),
                    address=client.address,
                    known_client=username in known,
                    now=now,
                    policy=policy,
                )
            else:
                username = str(flask.request.form.get("username", ""))
                result = auth.authenticate(
                    session,
                    username,
                    str(flask.request.form.get("password", "")),
                    address=client.address,
                    known_client=username.strip().lower() in known,
                    now=now,
                    policy=policy,
                )
            if result.viewer is not None:
                session_token = begin(session, result.viewer, now)
        if result.retry_after is not None:
            flask.session.pop(SECOND_FACTOR_KEY, None)
            response = page(_("Too many failed sign-ins. Wait a while and try again."), 429)
            response.headers["Retry-After"] = str(math.ceil(result.retry_after.total_seconds()))
            return response
        if result.second_factor_of is not None:
            flask.session[SECOND_FACTOR_KEY] = {
                "user": result.second_factor_of,
                "name": username.strip().lower(),
                "until": (now + SECOND_FACTOR_TIME).timestamp(),
            }
            return page(None, second=True)
        if result.viewer is None:
            if second_step:
                return page(_("Wrong code. Try the next one."), 401, second=True)
            return page(_("Wrong user name or password."), 401)
        answer = signed_in(result.viewer, session_token, next_path)
        remember_device(answer, known, result.viewer.username)
        return answer

    @server.route("/language/<code>")
    def choose_language(code: str) -> ResponseReturnValue:
        if code in LANGUAGES:
            flask.session["lang"] = code
        back = urlsplit(flask.request.referrer or "")
        referrer = back.path + (f"?{back.query}" if back.query else "")
        return flask.redirect(_safe_next(flask.request.args.get("next") or referrer))


def _from_this_site(client: proxies.Client) -> bool:
    """A state-changing request a browser sent from one of our own pages: `Origin` (sent
    by browsers on every POST) names this site, and `Sec-Fetch-Site` does not say
    otherwise. Requests without either come from no browser page, so from no other site."""
    headers = flask.request.headers
    origin = headers.get("Origin")
    if origin is not None and not proxies.same_origin(origin, client):
        return False
    return headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")


def _csrf_ok(sent: str | None) -> bool:
    expected = flask.session.get("csrf")
    return bool(expected and sent and hmac.compare_digest(sent, expected))


def sign_out(sessions: sessionmaker[Session], now: dt.datetime) -> None:
    """End the current session on the server (a copied cookie stops working at once) and
    forget it in the browser; the chosen language stays for the sign-in page."""
    token, viewer = flask.session.get("sid"), current_viewer()
    if isinstance(token, str):
        with sessions.begin() as session:
            user_sessions.end(session, token, now=now)
    if viewer is not None:
        audit_request(sessions, now, viewer, "session.signed_out", target=viewer.username)
    language = flask.session.get("lang")
    flask.session.clear()
    if language:
        flask.session["lang"] = language
