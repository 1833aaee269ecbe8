"""A small OpenID Connect provider for the tests, built with Authlib's authorisation server.

It serves on a loopback port what a real provider (Microsoft Entra ID, Keycloak) serves: a
discovery document, a JWKS with its RSA public key, an authorisation endpoint where a person
picks who they are (a form: no password, this is a test), and a token endpoint that gives
each code once, only with the PKCE verifier (S256 required) and the client's secret, and an
ID token signed with RS256 that carries `iss`, `aud`, `exp`, `iat`, `nonce`, the user name,
the name and the person's app roles (`roles`, as Entra ID sends them).

`provider.tamper` makes the next ID tokens wrong in one way, as a broken or hostile provider
would: `signature` (signed by a key the JWKS does not have, under the published key id),
`audience` (for another client, naming ours as `azp`), `expired`, `nonce` (another
sign-in's), `issuer`.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import flask
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server

KEY_ID = "lab-key-1"
TAMPERINGS = ("signature", "audience", "expired", "nonce", "issuer")


@dataclass(frozen=True)
class Person:
    username: str
    name: str
    roles: tuple[str, ...]
    subject: str = ""

    @property
    def sub(self) -> str:
        return self.subject or f"sub-{self.username}"


@dataclass
class _Client:
    client_id: str
    secret: str
    redirect_uri: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in ("openid", "profile", "email"))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret == self.secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    person: Person
    auth_time: int

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class Provider:
    issuer: str
    client_id: str
    secret: str
    people: dict[str, Person]
    key: RSAKey
    rogue_key: RSAKey
    tamper: str | None = None
    codes: dict[str, _Code] = field(default_factory=dict)
    codes_issued: int = 0
    tokens_issued: int = 0
    seen_code_challenge_methods: list[str | None] = field(default_factory=list)

    def authorize_url_answer(self, authorize_url: str, person: str) -> str:
        """What the browser does at the provider's form: picks `person`; returns the URL the
        provider sends the browser back to (the dashboard's callback with code and state)."""
        import requests

        with requests.Session() as http:
            http.trust_env = False
            answer = http.post(authorize_url, data={"person": person}, allow_redirects=False)
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    def id_token(self, person: Person, code: _Code) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": person.sub,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 600,
            "auth_time": code.auth_time,
            "nonce": code.nonce,
            "preferred_username": person.username,
            "name": person.name,
            "roles": list(person.roles),
            "tid": "lab-tenant",
        }
        key = self.key
        if self.tamper == "signature":
            key = self.rogue_key
        elif self.tamper == "audience":
            claims["aud"], claims["azp"] = "someone-elses-client", self.client_id
        elif self.tamper == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif self.tamper == "nonce":
            claims["nonce"] = "another-sign-ins-nonce"
        elif self.tamper == "issuer":
            claims["iss"] = "http://127.0.0.1:1/someone-else"
        self.tokens_issued += 1
        return jwt.encode({"alg": "RS256", "kid": KEY_ID}, claims, key)


def _app(provider: Provider, redirect_uri: str) -> flask.Flask:
    app = flask.Flask("lab-oidc-provider")
    client = _Client(provider.client_id, provider.secret, redirect_uri)

    class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")

        def save_authorization_code(self, code: str, request: Any) -> None:
            data = request.payload.data
            provider.seen_code_challenge_methods.append(data.get("code_challenge_method"))
            provider.codes[code] = _Code(
                code=code,
                client_id=client.client_id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.payload.scope,
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                person=request.user,
                auth_time=int(time.time()),
            )
            provider.codes_issued += 1

        def query_authorization_code(self, code: str, _client: Any) -> _Code | None:
            return provider.codes.get(code)

        def delete_authorization_code(self, authorization_code: _Code) -> None:
            provider.codes.pop(authorization_code.code, None)  # a code works once

        def authenticate_user(self, authorization_code: _Code) -> Person:
            return authorization_code.person

    class IdToken(OpenIDCode):  # type: ignore[misc]
        def encode_id_token(self, token: dict[str, Any], request: Any) -> str:
            return provider.id_token(request.user, request.authorization_code)

        def generate_user_info(self, user: Person, scope: str) -> dict[str, Any]:
            return {}

        def exists_nonce(self, nonce: str, request: Any) -> bool:
            return any(c.nonce == nonce for c in provider.codes.values())

    server = AuthorizationServer(
        app,
        query_client=lambda client_id: client if client_id == client.client_id else None,
        save_token=lambda token, request: None,
    )
    server.register_grant(CodeGrant, [IdToken(require_nonce=True), CodeChallenge(required=True)])

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        return {
            "issuer": provider.issuer,
            "authorization_endpoint": f"{provider.issuer}/authorize",
            "token_endpoint": f"{provider.issuer}/token",
            "jwks_uri": f"{provider.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email"],
        }

    @app.get("/jwks")
    def jwks() -> Any:
        return KeySet([provider.key]).as_dict(private=False)

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize() -> Any:
        if flask.request.method == "GET":
            server.get_consent_grant(end_user=None)  # refuses a bad request before the form
            buttons = "".join(
                f'<button type="submit" name="person" value="{html.escape(p.username)}"'
                f' id="person-{html.escape(p.username)}">{html.escape(p.name)}</button>'
                for p in provider.people.values()
            )
            return (
                "<!doctype html><html><head><title>Lab identity provider</title></head><body>"
                f'<h1>Lab identity provider</h1><form method="post">{buttons}</form>'
                "</body></html>"
            )
        person = provider.people.get(flask.request.form.get("person", ""))
        grant = server.get_consent_grant(end_user=person)
        return server.create_authorization_response(grant=grant, grant_user=person)

    @app.get("/favicon.ico")
    def no_icon() -> Any:
        return "", 204  # a browser asks: an empty answer, not a 404 in its console

    @app.post("/token")
    def token() -> Any:
        return server.create_token_response()

    return app


@contextmanager
def running_provider(
    *, client_id: str, secret: str, redirect_uri: str, people: list[Person]
) -> Iterator[Provider]:
    """The provider on a free port of 127.0.0.1, for `redirect_uri`'s client."""
    http = make_server("127.0.0.1", 0, None, threaded=True)  # type: ignore[arg-type]
    issuer = f"http://127.0.0.1:{http.server_port}"
    provider = Provider(
        issuer=issuer,
        client_id=client_id,
        secret=secret,
        people={p.username: p for p in people},
        key=RSAKey.generate_key(2048, parameters={"kid": KEY_ID}),
        rogue_key=RSAKey.generate_key(2048, parameters={"kid": KEY_ID}),
    )
    http.app = _app(provider, redirect_uri)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        http.shutdown()
        thread.join(timeout=5)
