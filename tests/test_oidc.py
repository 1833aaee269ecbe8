"""Sign-in through an OpenID Connect provider, over HTTP, against a real provider on loopback.

Given the lab's Authlib-based provider (`tests/oidc_provider.py`: discovery, JWKS, codes
that work once, PKCE required, RS256 ID tokens) and the dashboard configured for it with
Entra-ID-style app-role mappings, people sign in as staff and as partner administrators and
get the dashboard's own server-side session. Every way the answer can be wrong — signature,
audience, expiry, nonce, issuer, a replayed code or answer, a wrong or missing state, a
role nobody mapped, a local account's name, a disabled account, a provider that cannot be
reached — is refused with a page that says so and a `login.failed` audit event.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import socket
import time
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

import dashboard
from riskiturva import auth, db, oidc
from riskiturva.config import Config, ConfigError, DashboardSettings, OIDCSettings, load_config
from riskiturva.models_auth import User, UserSession
from riskiturva.store import make_engine, session_factory, sync_config
from tests.conftest import MINIMAL_CONFIG
from tests.oidc_provider import TAMPERINGS, Person, running_provider
from tests.test_dashboard_access import audit_rows, audited

CLIENT_ID = "riskiturva-lab"
SECRET = "lab client secret for the tests"
PUBLIC_URL = "https://riskiturva.hyvala.test"  # never fetched: the browser is a test client
PEOPLE = [
    Person("anna@hyvala.test", "Anna Hyvälä", ("Riskiturva.Hyvala.Staff",)),
    Person("kaisa@kumppani.test", "Kaisa Kumppani", ("Other.App", "Riskiturva.Partner")),
    Person("olli@hyvala.test", "Olli Ulkopuolinen", ("Riskiturva.Someone.Else",)),
]
MAPPINGS = [
    {"value": "Riskiturva.Partner", "role": "partner_admin"},
    {"value": "Riskiturva.Hyvala.Staff", "role": "org_staff", "organisations": ["hyvala"]},
    {"value": "Riskiturva.Hyvala.Johto", "role": "viewer", "organisations": ["hyvala"]},
]


@pytest.fixture(scope="module")
def provider():
    with running_provider(
        client_id=CLIENT_ID,
        secret=SECRET,
        redirect_uri=f"{PUBLIC_URL}/login/oidc/callback",
        people=PEOPLE,
    ) as running:
        yield running


def oidc_settings(issuer: str, **changes) -> dict:
    return {
        "name": "Lab Entra ID",
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret_file": "oidc-client-secret",
        "public_url": PUBLIC_URL,
        "mappings": MAPPINGS,
        **changes,
    }


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """One migrated store with the two municipalities; each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("oidc-store") / "riskiturva.db"
    engine = make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    with session_factory(engine).begin() as session:
        sync_config(session, Config.model_validate(tomllib.loads(MINIMAL_CONFIG)))
    engine.dispose()
    return path


@pytest.fixture
def make_app(tmp_path, minimal_config, provider, template):
    """`make_app(dashboard_extra, **oidc_changes)`: the dashboard on a fresh store, signing
    in through the lab provider; returns (app, sessions)."""
    (tmp_path / "oidc-client-secret").write_text(SECRET + "\n")
    shutil.copyfile(template, tmp_path / "riskiturva.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    sessions = session_factory(engine)
    provider.tamper = None

    def make(dashboard_extra: dict | None = None, **changes):
        dashboard_settings = DashboardSettings.model_validate(
            {
                "oidc": oidc_settings(changes.pop("issuer", provider.issuer), **changes),
                **(dashboard_extra or {}),
            }
        )
        settings = minimal_config.settings.model_copy(
            update={"data_dir": tmp_path, "dashboard": dashboard_settings}
        )
        config = minimal_config.model_copy(update={"settings": settings})
        return dashboard.create_app(config, sessions), sessions

    yield make
    engine.dispose()


@pytest.fixture
def estate(make_app):
    return make_app()


def start(client, next_path: str = "/", **headers) -> str:
    """Press "Sign in with …": the provider's authorisation URL the browser is sent to."""
    response = client.get(f"/login/oidc?next={next_path}", headers=headers)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def come_back(client, callback_url: str):
    """The browser arrives back at the dashboard with the provider's answer."""
    parts = urlsplit(callback_url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
    return client.get(f"{parts.path}?{parts.query}")


def sign_in(app, provider, person: str, client=None):
    client = client or app.server.test_client()
    callback = provider.authorize_url_answer(start(client), person)
    return client, come_back(client, callback), callback


def refusal_of(response) -> str:
    """The reason the refusal page states (its `data-reason`), after checking it is one."""
    page = response.get_data(as_text=True)
    assert 'id="oidc-refused"' in page and "Kirjautuminen estettiin" in page, page
    return re.search(r'data-reason="([^"]+)"', page).group(1)


def live_sessions(sessions) -> int:
    with sessions() as session:
        return len(session.scalars(select(UserSession).where(UserSession.ended_at.is_(None))).all())


# --- signed in ----------------------------------------------------------------------------


def test_staff_sign_in_with_pkce_state_and_nonce_and_get_a_server_side_session(estate, provider):
    app, sessions = estate
    client = app.server.test_client()
    authorize = start(client, "/org/hyvala/findings")
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{provider.issuer}/authorize?")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == [f"{PUBLIC_URL}/login/oidc/callback"]
    assert len(query["state"][0]) >= 20 and len(query["nonce"][0]) >= 20
    assert query["scope"] == ["openid profile email"] and query["ui_locales"] == ["fi"]
    assert client.get("/_dash-layout").status_code == 401  # nothing yet
    answer = come_back(client, provider.authorize_url_answer(authorize, "anna@hyvala.test"))
    assert answer.status_code == 302 and answer.headers["Location"] == "/org/hyvala/findings"
    assert client.get("/_dash-layout").status_code == 200
    assert provider.seen_code_challenge_methods[-1] == "S256"
    with sessions() as session:
        user = session.scalar(select(User).where(User.username == "anna@hyvala.test"))
        assert (user.role, user.organisations, user.display_name) == (
            "org_staff",
            ["hyvala"],
            "Anna Hyvälä",
        )
        assert (user.oidc_issuer, user.oidc_subject) == (provider.issuer, "sub-anna@hyvala.test")
        [row] = session.scalars(select(UserSession).where(UserSession.user_id == user.id))
        assert row.ended_at is None
    [ok] = audited(sessions, "login.ok")
    assert (ok.actor, ok.organisation, ok.detail["method"], ok.detail["created"]) == (
        "anna@hyvala.test",
        "hyvala",
        "oidc",
        True,
    )


def test_a_partner_is_mapped_by_the_first_matching_app_role_and_updated_each_time(estate, provider):
    app, sessions = estate
    for _ in range(2):
        _, answer, _ = sign_in(app, provider, "kaisa@kumppani.test")
        assert answer.status_code == 302 and answer.headers["Location"] == "/"
    with sessions() as session:
        [user] = session.scalars(select(User))
        assert (user.role, user.organisations) == ("partner_admin", [])
        viewer = auth.load_viewer(session, user.id)
    assert viewer.all_organisations and viewer.visible == {"hyvala", "rapala"}
    assert [e.detail["created"] for e in audited(sessions, "login.ok")] == [True, False]
    assert live_sessions(sessions) == 2


# --- refused ------------------------------------------------------------------------------


@pytest.mark.parametrize("tamper", TAMPERINGS)
def test_a_wrong_id_token_is_refused_with_a_page_and_an_audit_event(estate, provider, tamper):
    app, sessions = estate
    provider.tamper = tamper
    client, answer, _ = sign_in(app, provider, "anna@hyvala.test")
    assert answer.status_code == 403
    assert refusal_of(answer) == "invalid_token"
    assert client.get("/_dash-layout").status_code == 401
    [failed] = audited(sessions, "login.failed")
    assert failed.actor == "oidc" and failed.target is None  # nobody was proven
    assert failed.detail["reason"] == "invalid_token"
    expected = {
        "signature": "bad_signature",
        "audience": "aud",
        "expired": "expired",
        "nonce": "nonce",
        "issuer": "iss",
    }[tamper]
    assert expected in failed.detail["message"], failed.detail
    assert live_sessions(sessions) == 0
    with sessions() as session:
        assert session.scalar(select(User)) is None


def test_a_replayed_answer_or_code_is_refused(estate, provider):
    app, sessions = estate
    client, answer, callback = sign_in(app, provider, "anna@hyvala.test")
    assert answer.status_code == 302
    again = come_back(client, callback)  # the same answer twice: its state is used up
    assert again.status_code == 403 and refusal_of(again) == "state"
    thief = app.server.test_client()  # the code, with a state of the thief's own
    stolen_code = parse_qs(urlsplit(callback).query)["code"][0]
    own_state = parse_qs(urlsplit(start(thief)).query)["state"][0]
    replayed = thief.get(f"/login/oidc/callback?code={stolen_code}&state={own_state}")
    assert replayed.status_code == 403 and refusal_of(replayed) == "provider_error"
    reasons = [e.detail["reason"] for e in audited(sessions, "login.failed")]
    assert reasons == ["state", "provider_error"]
    assert "invalid_grant" in audited(sessions, "login.failed")[1].detail["message"]
    assert thief.get("/_dash-layout").status_code == 401
    assert live_sessions(sessions) == 1  # the first sign-in only


def test_a_wrong_or_missing_state_is_refused(estate, provider):
    app, sessions = estate
    client = app.server.test_client()
    callback = provider.authorize_url_answer(start(client), "anna@hyvala.test")
    code = parse_qs(urlsplit(callback).query)["code"][0]
    for query in (f"code={code}&state=forged-state-value", f"code={code}", ""):
        answer = client.get(f"/login/oidc/callback?{query}")
        assert answer.status_code == 403 and refusal_of(answer) == "state"
    restarted = app.server.test_client()  # pressed twice: only the newest sign-in counts
    first = provider.authorize_url_answer(start(restarted), "anna@hyvala.test")
    second = provider.authorize_url_answer(start(restarted), "anna@hyvala.test")
    assert refusal_of(come_back(restarted, first)) == "state"
    assert come_back(restarted, second).status_code == 302
    other = app.server.test_client()  # another browser's answer: its state is not ours
    assert refusal_of(come_back(other, callback)) == "state"
    assert come_back(client, callback).status_code == 302  # the real browser still can
    assert [e.detail["reason"] for e in audited(sessions, "login.failed")] == ["state"] * 5


def test_a_person_whose_roles_map_to_nothing_is_refused_and_gets_no_account(estate, provider):
    app, sessions = estate
    _, answer, _ = sign_in(app, provider, "olli@hyvala.test")
    assert answer.status_code == 403 and refusal_of(answer) == "unmapped"
    assert "Pyydä ylläpitäjää" in answer.get_data(as_text=True)
    [failed] = audited(sessions, "login.failed")
    assert (failed.actor, failed.target, failed.detail["reason"]) == (
        "olli@hyvala.test",
        "olli@hyvala.test",
        "unmapped",
    )
    assert "Riskiturva.Someone.Else" in failed.detail["message"]
    with sessions() as session:
        assert session.scalar(select(User)) is None


def test_a_role_taken_away_at_the_provider_ends_the_accounts_sessions(estate, provider):
    app, sessions = estate
    browser, _, _ = sign_in(app, provider, "anna@hyvala.test")
    assert browser.get("/_dash-layout").status_code == 200
    anna = provider.people["anna@hyvala.test"]
    provider.people["anna@hyvala.test"] = Person(anna.username, anna.name, ("Former.Staff",))
    try:
        _, answer, _ = sign_in(app, provider, "anna@hyvala.test")  # on another computer
    finally:
        provider.people["anna@hyvala.test"] = anna
    assert refusal_of(answer) == "unmapped"
    assert browser.get("/_dash-layout").status_code == 401  # the first one ends too
    with sessions() as session:
        assert session.scalar(select(UserSession.ended_reason)) == "role_revoked"


def test_a_local_account_is_never_signed_in_through_the_provider(estate, provider):
    app, sessions = estate
    with sessions.begin() as session:
        auth.create_user(
            session,
            username="anna@hyvala.test",
            password="correct horse battery",
            role="partner_admin",
            now=dt.datetime.now(dt.UTC),
        )
    _, answer, _ = sign_in(app, provider, "anna@hyvala.test")
    assert answer.status_code == 403 and refusal_of(answer) == "name_taken"
    assert live_sessions(sessions) == 0


def test_an_account_disabled_here_is_refused_whatever_the_provider_says(estate, provider):
    app, sessions = estate
    sign_in(app, provider, "anna@hyvala.test")
    with sessions.begin() as session:
        auth.disable_user(session, "anna@hyvala.test", now=dt.datetime.now(dt.UTC))
        with pytest.raises(auth.AccountError, match="identity provider"):
            auth.set_password(
                session, "anna@hyvala.test", "a brand new password", now=dt.datetime.now(dt.UTC)
            )
    _, answer, _ = sign_in(app, provider, "anna@hyvala.test")
    assert answer.status_code == 403 and refusal_of(answer) == "disabled"
    assert live_sessions(sessions) == 0


def test_the_provider_saying_no_is_refused(estate, provider):
    app, sessions = estate
    client = app.server.test_client()
    callback = provider.authorize_url_answer(start(client), "nobody")  # "Cancel"
    assert "error=access_denied" in callback
    answer = come_back(client, callback)
    assert answer.status_code == 403 and refusal_of(answer) == "provider_error"
    assert audited(sessions, "login.failed")[0].detail["message"] == "error=access_denied"


def test_an_unreachable_provider_is_a_502_page_and_local_sign_in_stays(make_app):
    app, sessions = make_app(issuer="http://127.0.0.1:1")  # nothing listens there
    client = app.server.test_client()
    answer = client.get("/login/oidc")
    assert answer.status_code == 502 and refusal_of(answer) == "unreachable"
    assert audited(sessions, "login.failed")[0].detail["reason"] == "unreachable"
    page = client.get("/login").get_data(as_text=True)
    assert 'id="login-oidc"' in page and "Kirjaudu: Lab Entra ID" in page
    assert 'id="password"' in page  # local accounts stay


def test_the_redirect_uri_comes_from_the_configuration_not_the_host_header(estate, provider):
    app, _ = estate
    client = app.server.test_client()
    authorize = start(client, Host="evil.example", **{"X-Forwarded-Host": "evil.example"})
    assert parse_qs(urlsplit(authorize).query)["redirect_uri"] == [
        f"{PUBLIC_URL}/login/oidc/callback"
    ]


def test_behind_a_trusted_proxy_the_audit_trail_has_the_clients_address(make_app, provider):
    app, sessions = make_app({"trusted_proxies": ["127.0.0.20"]})
    behind_proxy = {"REMOTE_ADDR": "127.0.0.20"}
    for forwarded in ("198.51.100.7", "198.51.100.8"):
        client = app.server.test_client()
        client.environ_base.update(behind_proxy, HTTP_X_FORWARDED_FOR=forwarded)
        provider.tamper = "audience" if forwarded.endswith("8") else None
        sign_in(app, provider, "anna@hyvala.test", client)
    provider.tamper = None
    forger = app.server.test_client()  # not the proxy: its X-Forwarded-For is not believed
    forger.environ_base.update(REMOTE_ADDR="127.0.0.66", HTTP_X_FORWARDED_FOR="10.1.1.1")
    come_back(forger, f"{PUBLIC_URL}/login/oidc/callback?code=x&state=y")
    assert [e.address for e in audited(sessions, "login.ok")] == ["198.51.100.7"]
    assert [e.address for e in audited(sessions, "login.failed")] == [
        "198.51.100.8",
        "127.0.0.66",
    ]
    with sessions() as session:
        assert session.scalar(select(UserSession.address)) == "198.51.100.7"


def test_the_pages_of_the_flow_carry_the_content_security_policy(estate, provider):
    app, _ = estate
    client = app.server.test_client()
    provider.tamper = "nonce"
    _, answer, _ = sign_in(app, provider, "anna@hyvala.test", client)
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert "<script" not in answer.get_data(as_text=True)


def test_the_partners_audit_trail_tells_oidc_sign_ins_and_refusals_in_words(estate, provider):
    app, _ = estate
    provider.tamper = "expired"
    sign_in(app, provider, "anna@hyvala.test")
    provider.tamper = None
    sign_in(app, provider, "olli@hyvala.test")
    partner, _, _ = sign_in(app, provider, "kaisa@kumppani.test")
    rows = audit_rows(app, partner, kind="signin")
    told = [(r["event"], r["actor"], r["detail"]) for r in rows]
    assert ("Kirjautui sisään", "kaisa@kumppani.test", "tunnistuspalvelun kautta") in told
    assert (
        "Epäonnistunut kirjautuminen",
        "olli@hyvala.test",
        "tunnistuspalvelun kautta; tunnukselle ei ole määritetty roolia",
    ) in told
    assert (
        "Epäonnistunut kirjautuminen",
        "oidc",
        "tunnistuspalvelun kautta; ID-tunniste ei läpäissyt tarkistuksia",
    ) in told


def test_a_provider_that_never_answers_is_given_up_after_the_timeout(make_app):
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        app, _ = make_app(issuer=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_seconds=1)
        started = time.monotonic()
        answer = app.server.test_client().get("/login/oidc")
        waited = time.monotonic() - started
    assert answer.status_code == 502 and refusal_of(answer) == "unreachable"
    assert waited < 20  # bounded by the setting (1 s), not by a default of minutes


# --- the mapping and the configuration ----------------------------------------------------


def test_the_first_mapping_whose_value_the_claim_holds_decides():
    settings = OIDCSettings.model_validate(
        oidc_settings(
            "https://login.microsoftonline.com/tenant/v2.0",
            mappings=[
                {"value": "g-1", "claim": "groups", "role": "viewer", "organisations": ["a"]},
                *MAPPINGS,
            ],
        )
    )
    assert oidc.mapping_for({"roles": "Riskiturva.Partner"}, settings).role == "partner_admin"
    both = {"roles": ["Riskiturva.Hyvala.Staff"], "groups": ["g-1"]}
    assert oidc.mapping_for(both, settings).role == "viewer"  # listed first
    assert oidc.mapping_for({"roles": [3, None]}, settings) is None
    assert oidc.mapping_for({}, settings) is None


def test_accounts_from_verified_claims_on_both_databases(sessions, minimal_config):
    settings = OIDCSettings.model_validate(oidc_settings("https://idp.example/tenant"))
    now = dt.datetime(2026, 12, 2, 8, tzinfo=dt.UTC)
    claims = {
        "iss": "https://idp.example/tenant",
        "sub": "00000000-aaaa",
        "preferred_username": "Anna@Hyvala.Test",
        "name": "Anna",
        "roles": ["Riskiturva.Hyvala.Staff"],
    }
    with sessions.begin() as session:
        sync_config(session, minimal_config)
        first = oidc.sign_in(session, claims, settings, address="192.0.2.1", now=now)
        moved = {**claims, "roles": ["Riskiturva.Partner"], "preferred_username": "anna@uusi.test"}
        second = oidc.sign_in(session, moved, settings, address="192.0.2.1", now=now)
        nameless = oidc.sign_in(
            session, {**claims, "preferred_username": " "}, settings, address="-", now=now
        )
    assert first.viewer.username == "anna@hyvala.test" and first.viewer.visible == {"hyvala"}
    assert second.viewer.user_id == first.viewer.user_id  # the same (issuer, subject)
    assert second.viewer.username == "anna@uusi.test" and second.viewer.all_organisations
    assert nameless.refusal is oidc.Refusal.NO_USERNAME
    with sessions() as session:
        assert [u.username for u in session.scalars(select(User))] == ["anna@uusi.test"]


def write_config(tmp_path: Path, oidc_toml: str) -> Path:
    path = tmp_path / "riskiturva.toml"
    text = MINIMAL_CONFIG.replace('data_dir = "data"', f'data_dir = "{tmp_path}"')
    path.write_text(text.replace("[settings.resolver]", oidc_toml + "\n[settings.resolver]", 1))
    return path


GOOD_OIDC = """
[settings.dashboard.oidc]
name = "Microsoft Entra ID"
issuer = "https://login.microsoftonline.com/0b5e7c2a-1111-2222-3333-444455556666/v2.0"
client_id = "5f3c7a9e-aaaa-bbbb-cccc-ddddeeeeffff"
public_url = "https://riskiturva.example.fi"

[[settings.dashboard.oidc.mappings]]
value = "Riskiturva.Partner"
role = "partner_admin"

[[settings.dashboard.oidc.mappings]]
value = "Riskiturva.Hyvala.Staff"
role = "org_staff"
organisations = ["hyvala"]
"""


def test_a_good_provider_configuration_loads(tmp_path):
    config = load_config(write_config(tmp_path, GOOD_OIDC))
    provider = config.settings.dashboard.oidc
    assert provider.redirect_uri == "https://riskiturva.example.fi/login/oidc/callback"
    assert provider.claim == "roles" and provider.client_secret_file is None


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            ('organisations = ["hyvala"]', 'organisations = ["hyvala", "rapala"]'),
            "settings.dashboard.oidc.mappings[1].organisations",
            "a org_staff mapping names exactly one organisation",
        ),
        (
            ('organisations = ["hyvala"]', 'organisations = ["nowhere"]'),
            "settings.dashboard.oidc.mappings[1].organisations",
            "unknown organisation(s): nowhere",
        ),
        (
            ("https://login.microsoftonline.com", "http://login.microsoftonline.com"),
            "settings.dashboard.oidc.issuer",
            "must be https:// (http:// only on a loopback address)",
        ),
        (
            ('role = "org_staff"', 'role = "admin"'),
            "settings.dashboard.oidc.mappings[1].role",
            "Input should be 'partner_admin', 'org_staff' or 'viewer'",
        ),
        (
            ('public_url = "https://riskiturva.example.fi"', ""),
            "settings.dashboard.oidc.public_url",
            "required, missing",
        ),
        (
            ('client_id = "5f3c', 'client_secret_file = "missing-secret"\nclient_id = "5f3c'),
            "settings.dashboard.oidc.client_secret_file",
            "no such file, or it is empty",
        ),
        (
            ('role = "partner_admin"', 'role = "partner_admin"\ngroup = "x"'),
            "settings.dashboard.oidc.mappings[0].group",
            "unknown key",
        ),
    ],
)
def test_provider_configuration_errors_name_line_and_field(tmp_path, change, field, message):
    path = write_config(tmp_path, GOOD_OIDC.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = {p.field: p for p in caught.value.problems}
    assert field in problems, caught.value.describe()
    assert message in problems[field].message
    assert problems[field].line is not None, caught.value.describe()
    assert str(path) in caught.value.describe()


def test_scopes_must_include_openid(tmp_path):
    path = write_config(tmp_path, GOOD_OIDC.replace("name =", 'scopes = ["profile"]\nname ='))
    with pytest.raises(ConfigError, match=r"line \d+, settings.dashboard.oidc.scopes: must"):
        load_config(path)
