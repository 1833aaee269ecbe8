"""Sign-in through the configured OpenID Connect provider (`settings.dashboard.oidc`).

The authorisation code flow with Authlib's Flask client: `/login/oidc` reads the provider's
discovery document (its `issuer` must be the configured one), keeps a fresh `state`, `nonce`
and PKCE verifier (S256) in this browser's signed session and sends the browser to the
provider; `/login/oidc/callback` takes them out again (once: a second use of the same
answer finds nothing), exchanges the code with the verifier, and checks the ID token's
signature against the provider's JWKS and its `iss`, `aud`, `exp`, `iat` and `nonce`.
`riskiturva.oidc` then maps the verified claims to an account; the session that follows
is the same server-side session as a password sign-in's.

The redirect URI is `public_url` + `/login/oidc/callback` from the configuration, never
built from the request's Host header. The sign-in starts from a plain link (a GET that
changes nothing until the provider answers), so the CSP's `form-action 'self'` holds; the
provider's answer is a top-level GET, which carries the `SameSite=Lax` session cookie.
Every connection to the provider goes to the address the configured resolver gives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import flask
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App
from authlib.integrations.requests_client import OAuth2Session
from flask.typing import ResponseReturnValue
from joserfc.errors import JoseError
from requests.adapters import HTTPAdapter
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.wrappers import Response as WerkzeugResponse

from dashboard.i18n import text
from dashboard.security import CARD_PAGE_HEAD
from riskiturva import auth, oidc
from riskiturva.config import OIDCSettings, ResolverSettings, Settings
from riskiturva.mail import DeliveryError, relay_address
from riskiturva.oidc import Refusal
from riskiturva.resolver import DnsFailure

START_PATH = "/login/oidc"
CALLBACK_PATH = "/login/oidc/callback"
CLIENT_NAME = "oidc"
DEFAULT_PORTS = {"http": 80, "https": 443}


class _ThroughResolver(HTTPAdapter):
    """requests' adapter, connecting to the address the configured resolver gives for the
    URL's host (TLS still verifies the host's name; `Host` says the name)."""

    def __init__(self, resolver: ResolverSettings):
        self.resolver = resolver
        super().__init__()

    def get_connection_with_tls_context(
        self, request: requests.PreparedRequest, verify: Any, proxies: Any = None, cert: Any = None
    ) -> Any:
        parts = urlsplit(request.url or "")
        host = parts.hostname or ""
        try:
            address = relay_address(host, self.resolver)
        except (DeliveryError, DnsFailure) as exc:
            raise requests.ConnectionError(f"{host}: {exc}") from None
        scheme = parts.scheme or "https"
        extra = {"server_hostname": host, "assert_hostname": host} if scheme == "https" else {}
        return self.poolmanager.connection_from_host(
            address, parts.port or DEFAULT_PORTS[scheme], scheme=scheme, pool_kwargs=extra
        )

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        request.headers.setdefault("Host", urlsplit(request.url or "").netloc)
        return super().send(request, stream, timeout, verify, cert, proxies)


def _session_class(resolver: ResolverSettings) -> type[OAuth2Session]:
    class ResolvedSession(OAuth2Session):  # type: ignore[misc]  # Authlib has no types
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.trust_env = False  # no proxy or netrc from the environment
            adapter = _ThroughResolver(resolver)
            self.mount("https://", adapter)
            self.mount("http://", adapter)

    return ResolvedSession


def client_for(settings: Settings) -> FlaskOAuth2App:
    """Authlib's client for the configured provider (discovery read at the first sign-in)."""
    provider = settings.dashboard.oidc
    assert provider is not None
    secret = None
    if provider.client_secret_file is not None:
        path = settings.data_dir / provider.client_secret_file
        secret = path.read_text(encoding="utf-8").strip()
    client_kwargs: dict[str, Any] = {
        "scope": " ".join(provider.scopes),
        "code_challenge_method": "S256",
        "default_timeout": provider.timeout_seconds,
    }
    if secret is None:
        client_kwargs["token_endpoint_auth_method"] = "none"  # noqa: S105  (a public client)
    client = FlaskOAuth2App(
        FlaskIntegration(CLIENT_NAME),
        name=CLIENT_NAME,
        client_id=provider.client_id,
        client_secret=secret,
        server_metadata_url=provider.issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs=client_kwargs,
        user_agent=settings.user_agent,
    )
    client.client_cls = _session_class(settings.resolver)
    return client


class _Refused(Exception):
    def __init__(self, refusal: Refusal, message: str):
        self.refusal, self.message = refusal, message
        super().__init__(message)


def _messages(language: str) -> dict[Refusal, str]:
    _ = text(language)
    return {
        Refusal.STATE: _(
            "This answer from the identity provider belongs to no sign-in started here, or it"
            " was used already. Start the sign-in again."
        ),
        Refusal.PROVIDER: _("The identity provider did not sign you in. Try again."),
        Refusal.UNREACHABLE: _(
            "The identity provider cannot be reached just now. Try again later, or sign in"
            " with a local account."
        ),
        Refusal.TOKEN: _(
            "The identity provider's answer did not pass the checks (signature, issuer,"
            " audience, validity or nonce). The attempt was recorded."
        ),
        Refusal.NO_USERNAME: _("The identity provider did not say your user name."),
        Refusal.UNMAPPED: _(
            "Your account at the identity provider has no role in Riskiturva. Ask your"
            " administrator to assign you one."
        ),
        Refusal.NAME_TAKEN: _(
            "A local Riskiturva account already has your user name. Ask your administrator."
        ),
        Refusal.DISABLED: _("Your Riskiturva account is disabled. Ask your administrator."),
    }


REFUSED_TEMPLATE = (
    CARD_PAGE_HEAD
    + """\
<body class="login-body"><main class="login-card" id="oidc-refused" data-reason="{{ reason }}">
<h1>{{ title }}</h1>
<p class="alert alert-danger" role="alert" id="oidc-error">{{ message }}</p>
<p><a href="/login" id="back-to-login">{{ back }}</a></p></main></body></html>
"""
)


def _refused_page(language: str, refusal: Refusal) -> flask.Response:
    _ = text(language)
    body = flask.render_template_string(
        REFUSED_TEMPLATE,
        lang=language,
        title=_("Sign-in refused"),
        message=_messages(language)[refusal],
        back=_("Back to sign-in"),
        reason=str(refusal),
    )
    status = 502 if refusal is Refusal.UNREACHABLE else 403
    response = flask.make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def install(
    server: flask.Flask,
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Callable[[], dt.datetime],
    safe_next: Callable[[str | None], str],
    begin: Callable[[Session, auth.Viewer, dt.datetime], str],
    signed_in: Callable[[auth.Viewer, str, str], WerkzeugResponse],
) -> None:
    """The two routes of the flow. `begin(session, viewer, now)` opens the dashboard session
    in that transaction and returns its token; `signed_in(viewer, token, next_path)` hands
    it to the browser."""
    provider = settings.dashboard.oidc
    assert provider is not None
    client = client_for(settings)

    def metadata() -> dict[str, Any]:
        try:
            found: dict[str, Any] = client.load_server_metadata()
        except (requests.RequestException, ValueError) as exc:
            raise _Refused(Refusal.UNREACHABLE, f"discovery: {type(exc).__name__}") from None
        if found.get("issuer") != provider.issuer:
            client.server_metadata.clear()  # read it again next time
            raise _Refused(
                Refusal.PROVIDER, f"the discovery document names issuer {found.get('issuer')!r}"
            )
        return found

    def refused(error: _Refused) -> flask.Response:
        with sessions.begin() as session:
            oidc.refuse(
                session,
                error.refusal,
                address=flask.g.client.address,
                now=clock(),
                message=error.message,
            )
        return _refused_page(flask.session.get("lang") or "fi", error.refusal)

    @server.route(START_PATH)
    def oidc_start() -> ResponseReturnValue:
        try:
            metadata()
            language = flask.session.get("lang") or "fi"
            found = client.create_authorization_url(provider.redirect_uri, ui_locales=language)
        except _Refused as error:
            return refused(error)
        for key in [k for k in flask.session if k.startswith(f"_state_{CLIENT_NAME}_")]:
            del flask.session[key]  # one sign-in in flight: the cookie stays small
        client.save_authorize_data(
            redirect_uri=provider.redirect_uri,
            next=safe_next(flask.request.args.get("next")),
            **found,
        )
        return flask.redirect(found["url"])

    @server.route(CALLBACK_PATH)
    def oidc_callback() -> ResponseReturnValue:
        args = flask.request.args
        state = args.get("state")
        data = client.framework.get_state_data(flask.session, state) if state else None
        try:
            if data is None:
                raise _Refused(Refusal.STATE, "no sign-in in this browser has this state")
            if args.get("error"):
                client.framework.clear_state_data(flask.session, state)
                raise _Refused(Refusal.PROVIDER, f"error={args['error']}")
            metadata()
            claims = _verified_claims(client, provider)
        except _Refused as error:
            return refused(error)
        now = clock()
        with sessions.begin() as session:
            outcome = oidc.sign_in(
                session, claims, provider, address=flask.g.client.address, now=now
            )
            token = begin(session, outcome.viewer, now) if outcome.viewer else None
        if outcome.viewer is None or token is None:
            assert outcome.refusal is not None
            return _refused_page(flask.session.get("lang") or "fi", outcome.refusal)
        return signed_in(outcome.viewer, token, safe_next(data.get("next")))


def _verified_claims(client: FlaskOAuth2App, provider: OIDCSettings) -> dict[str, Any]:
    """Exchange the code (with the PKCE verifier) and check the ID token; the state data is
    used up whatever happens."""
    options = {
        "iss": {"essential": True, "values": [provider.issuer]},
        # The audience must be us: Authlib alone would accept another client's token that
        # names us only as its authorised party (`azp`).
        "aud": {"essential": True, "values": [provider.client_id]},
        "exp": {"essential": True},
        "nonce": {"essential": True},
    }
    try:
        token = client.authorize_access_token(claims_options=options, leeway=60)
    except OAuthError as exc:
        raise _Refused(Refusal.PROVIDER, f"token endpoint: {exc.error}") from None
    except requests.RequestException as exc:
        raise _Refused(Refusal.UNREACHABLE, f"token: {type(exc).__name__}") from None
    except JoseError as exc:
        raise _Refused(Refusal.TOKEN, f"ID token: {exc.error}: {exc.description}") from None
    except ValueError as exc:  # a key set or token that does not parse
        raise _Refused(Refusal.TOKEN, f"ID token: {exc}") from None
    claims = token.get("userinfo")
    if not claims:
        raise _Refused(Refusal.TOKEN, "the token response has no ID token")
    return dict(claims)


def start_link(next_path: str) -> str:
    return f"{START_PATH}?{urlencode({'next': next_path})}"
