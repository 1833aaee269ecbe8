"""Who sees what: sign-in and its throttle, server-side sessions, forged and malformed
requests, headers, the audit trail, and the cross-tenant test.

Given two municipalities in one store, staff of Hyvälä sign in and send hand-crafted
`/_dash-update-component` requests to every callback of the app, with every route and
every id that names Rapala's organisation, findings and exports. Nothing of Rapala's may
come back, nothing of Rapala's may change, and every attempt is in the audit trail.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json
import re
import threading
import zipfile
from collections import Counter
from typing import Any

import pytest
from dash import Input, Output
from sqlalchemy import delete, func, select

import dashboard
from dashboard import ids
from dashboard.proxies import client_address
from dashboard.security import CALLBACK_PATH, CSRF_HEADER, unsecured_callbacks
from riskiturva import auth, views
from riskiturva.checks import load_registry
from riskiturva.config import DashboardSettings
from riskiturva.models import (
    Asset,
    ChangeEvent,
    Finding,
    FindingEvent,
    ScanError,
    ScopeSighting,
)
from riskiturva.models_auth import ApiToken, AuditEvent, UserSession
from riskiturva.store import NotVisible
from tests.conftest import T0
from tests.dashboard_http import callback_body, client_from, output_of, post_login
from tests.two_tenants import (
    NOW,
    PASSWORD,
    RAPALA_MARKERS,
    Clock,
    asset_id,
    rapala_token_id,
    seed,
)


@pytest.fixture
def estate(make_estate):
    return make_estate()


def sign_in(
    app,
    username: str,
    password: str = PASSWORD,
    *,
    address: str = "127.0.0.1",
    client=None,
    headers: dict[str, str] | None = None,
):
    """Sign in as a browser would: the form, its token, a POST from `address`."""
    client = client or app.server.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login",
        data={"csrf": token, "username": username, "password": password, "next": "/"},
        environ_base={"REMOTE_ADDR": address},
        headers=headers or {},
    )
    return client, response


def audited(sessions, action: str) -> list[AuditEvent]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


def text_of(response) -> str:
    """The response as a reader would see it (JSON decoded, so "ä" is not "\\u00e4")."""
    if response.is_json:
        return json.dumps(response.json, ensure_ascii=False)
    return response.get_data(as_text=True)


def csrf_of(client) -> str:
    cookie = client.get_cookie("_csrf_token")
    assert cookie is not None
    return cookie.value


def call(
    app,
    client,
    output: str,
    values: dict[tuple[str, str], Any],
    *,
    csrf: str | None = "",
    changed: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
):
    """POST one callback as the renderer would, with the given input and state values;
    `changed`: the inputs that fired (default: all of them)."""
    sent = dict(headers or {})
    if csrf is not None:
        sent[CSRF_HEADER] = csrf or csrf_of(client)
    body = callback_body(app, output, values, changed)
    return client.post("/_dash-update-component", json=body, headers=sent)


# --- sign-in, sessions, CSRF -----------------------------------------------------------


def test_nothing_is_served_without_a_session(estate):
    app, _, _ = estate
    client = app.server.test_client()
    assert client.get("/").status_code == 302
    location = client.get("/org/hyvala/findings?status=open&severity=high").headers["Location"]
    assert location == "/login?next=%2Forg%2Fhyvala%2Ffindings%3Fstatus%3Dopen%26severity%3Dhigh"
    for path in (
        "/_dash-layout",
        "/_dash-dependencies",
        "/_dash-component-suites/dash/dcc/async-graph.js",
        "/_reload-hash",
    ):
        assert client.get(path).status_code == 401, path
    assert client.post("/_dash-update-component", json={}).status_code == 401
    assert client.get("/assets/riskiturva.css").status_code == 200  # style only, no data
    assert client.get("/assets/session.js").status_code == 200  # no data either
    assert "Kirjaudu" in client.get("/login").get_data(as_text=True)


def test_session_cookie_is_httponly_samesite_and_signed_with_a_generated_key(estate, tmp_path):
    app, _, _ = estate
    client, response = sign_in(app, "hyvala-staff")
    assert response.status_code == 302
    cookies = response.headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith("riskiturva_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Secure" not in session
    device = next(c for c in cookies if c.startswith("riskiturva_device="))
    assert "HttpOnly" in device and "Max-Age=7776000" in device  # 90 days
    key_file = tmp_path / "dashboard-secret.key"
    assert key_file.stat().st_mode & 0o077 == 0
    assert app.server.secret_key == key_file.read_text().strip().encode()
    assert client.get("/_dash-layout").status_code == 200


def test_the_session_table_holds_only_a_hash_of_the_browsers_token(estate):
    app, sessions, _ = estate
    client, _ = sign_in(app, "hyvala-staff", address="127.0.0.7")
    signed = client.get_cookie("riskiturva_session").value
    cookie = app.server.session_interface.get_signing_serializer(app.server).loads(signed)
    with sessions() as session:
        [row] = session.scalars(select(UserSession))
    assert row.token_hash == hashlib.sha256(cookie["sid"].encode()).hexdigest()
    assert cookie["sid"] not in row.token_hash
    assert (row.address, row.ended_at) == ("127.0.0.7", None)


def replay(app, cookie: str):
    """A second browser (or `requests`) holding a copy of someone's session cookie."""
    thief = app.server.test_client()
    thief.set_cookie("riskiturva_session", cookie)
    return thief


def test_a_cookie_copied_before_sign_out_stops_working_at_once(estate):
    app, sessions, finding_ids = estate
    client, _ = sign_in(app, "hyvala-staff")
    copied = client.get_cookie("riskiturva_session").value
    csrf = csrf_of(client)
    own = finding_ids["127.60.1.10:3389/tcp"]
    thief = replay(app, copied)
    assert thief.get("/_dash-layout").status_code == 200  # a copy works while signed in…
    response = call(app, client, "redirect.href", {(ids.SIGN_OUT, "n_clicks"): 1})
    assert response.json["response"]["redirect"]["href"] == "/login"
    thief = replay(app, copied)  # …and not at all once signed out:
    assert thief.get("/_dash-layout").status_code == 401
    assert thief.get("/org/hyvala").status_code == 302
    route = {(ids.URL, "pathname"): "/org/hyvala"}
    assert call(app, thief, "page.children", route, csrf=csrf).status_code == 401
    export = {(ids.EXPORT, "n_clicks"): 1, (ids.FINDINGS_ORG, "data"): "hyvala"}
    assert call(app, thief, "download.data", export, csrf=csrf).status_code == 401
    decision = {
        (ids.DECIDE_SUBMIT, "n_clicks"): 1,
        (ids.FINDING_ID, "data"): own,
        (ids.DECIDE_KIND, "value"): "accepted",
        (ids.DECIDE_REASON, "value"): "varastettu eväste",
        (ids.DECIDE_UNTIL, "value"): (NOW.date() + dt.timedelta(days=30)).isoformat(),
    }
    response = call(app, thief, output_of(app, ids.DECIDE_MESSAGE), decision, csrf=csrf)
    assert response.status_code == 401
    with sessions() as session:
        assert session.get(Finding, own).status == "open"
    assert [e.actor for e in audited(sessions, "session.signed_out")] == ["hyvala-staff"]


def test_sessions_end_after_the_idle_limit_and_the_lifetime(make_estate):
    clock = Clock()
    app, sessions, _ = make_estate(clock, session_hours=2, session_idle_minutes=30)
    idle, _ = sign_in(app, "hyvala-staff")
    busy, _ = sign_in(app, "hyvala-boss")
    for _ in range(3):  # a request every 29 minutes keeps one session alive
        clock.now += dt.timedelta(minutes=29)
        assert busy.get("/_dash-layout").status_code == 200
    assert idle.get("/_dash-layout").status_code == 401
    clock.now = NOW + dt.timedelta(hours=2)
    assert busy.get("/_dash-layout").status_code == 401  # however busy
    reasons = [(e.actor, e.detail["reason"]) for e in audited(sessions, "session.expired")]
    assert reasons == [("hyvala-staff", "idle"), ("hyvala-boss", "expired")]


def test_a_failed_sign_in_slows_that_name_from_that_client_only(estate):
    app, sessions, _ = estate
    for _attempt in range(5):
        _, response = sign_in(app, "hyvala-staff", "wrong password!", address="203.0.113.9")
        assert response.status_code == 401
    _, response = sign_in(app, "hyvala-staff", address="203.0.113.9")  # right, but too soon
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"
    assert "Liian monta" in response.get_data(as_text=True)
    _, response = sign_in(app, "hyvala-staff", address="127.0.0.1")  # the user, elsewhere
    assert response.status_code == 302
    _, response = sign_in(app, "partner", address="203.0.113.9")  # another name, same client
    assert response.status_code == 302
    with sessions() as session:
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-8:] == ["login.failed"] * 5 + ["login.throttled", "login.ok", "login.ok"]


def test_the_known_browser_signs_in_through_a_distributed_attack(make_estate):
    app, sessions, _ = make_estate(login_account_attempts=8)
    browser, _ = sign_in(app, "hyvala-staff", address="192.0.2.10")  # her own, earlier
    call(app, browser, "redirect.href", {(ids.SIGN_OUT, "n_clicks"): 1})
    for n in range(8):  # a botnet: one guess from each address
        _, response = sign_in(app, "hyvala-staff", "guess", address=f"198.51.100.{n}")
        assert response.status_code == 401
    _, response = sign_in(app, "hyvala-staff", address="198.51.100.99")
    assert response.status_code == 429  # a client the account does not know waits…
    _, response = sign_in(app, "hyvala-staff", address="192.0.2.77", client=browser)
    assert response.status_code == 302  # …her browser, from a new address, does not
    _, response = sign_in(app, "partner", address="198.51.100.99")
    assert response.status_code == 302  # and other accounts are untouched
    assert audited(sessions, "login.ok")[-2].detail == {"known_client": True}


def test_a_forged_device_cookie_is_not_a_known_browser(make_estate):
    app, _, _ = make_estate(login_account_attempts=3)
    for n in range(3):
        sign_in(app, "hyvala-staff", "guess", address=f"198.51.100.{n}")
    forger = app.server.test_client()
    forger.set_cookie("riskiturva_device", '["hyvala-staff"].forged')
    _, response = sign_in(app, "hyvala-staff", client=forger, address="198.51.100.50")
    assert response.status_code == 429


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(make_estate):
    app, sessions, _ = make_estate(trusted_proxies=["127.0.0.20"])
    forwarded = {"X-Forwarded-For": "203.0.113.5"}
    sign_in(app, "hyvala-staff", "wrong", address="127.0.0.20", headers=forwarded)  # proxy
    sign_in(app, "hyvala-staff", "wrong", address="127.0.0.5", headers=forwarded)  # a liar
    addresses = [e.address for e in audited(sessions, "login.failed")]
    assert addresses == ["203.0.113.5", "127.0.0.5"]
    for _ in range(5):  # a liar cannot spend the proxy's clients' attempts
        sign_in(app, "partner", "wrong", address="127.0.0.5", headers=forwarded)
    _, response = sign_in(app, "partner", address="127.0.0.20", headers=forwarded)
    assert response.status_code == 302


def test_the_served_app_sees_the_proxy_headers_and_believes_only_trusted_peers(make_estate):
    """Through waitress itself (which strips X-Forwarded-* by default), over real sockets."""
    app, sessions, _ = make_estate(trusted_proxies=["127.0.0.20"])
    server = dashboard.make_server(app, port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.effective_port}"
    try:
        for peer in ("127.0.0.20", "127.0.0.5"):  # the proxy, then someone else
            client = client_from(peer)
            client.headers["X-Forwarded-For"] = "203.0.113.5"
            assert post_login(client, base, "hyvala-staff", "wrong").status_code == 401
    finally:
        server.close()
        thread.join(timeout=5)
    assert [e.address for e in audited(sessions, "login.failed")] == ["203.0.113.5", "127.0.0.5"]


def test_the_client_is_the_right_most_untrusted_hop():
    trusted = DashboardSettings(trusted_proxies=["127.0.0.20", "10.0.0.0/8"]).trusted_proxies
    assert client_address("127.0.0.20", "203.0.113.5", trusted) == "203.0.113.5"
    assert client_address("127.0.0.20", "1.2.3.4, 203.0.113.5, 10.0.0.3", trusted) == (
        "203.0.113.5"  # the left-most entry is the client's own claim
    )
    assert client_address("127.0.0.20", "10.0.0.3, 10.0.0.4", trusted) == "10.0.0.3"
    assert client_address("127.0.0.20", "junk, 10.0.0.3", trusted) == "10.0.0.3"
    assert client_address("127.0.0.5", "203.0.113.5", trusted) == "127.0.0.5"
    assert client_address("::ffff:127.0.0.20", "2001:db8::1", trusted) == "2001:db8::1"
    assert client_address("127.0.0.20", None, trusted) == "127.0.0.20"
    assert client_address("127.0.0.20", "203.0.113.5", ()) == "127.0.0.20"


def test_callbacks_need_the_csrf_header(estate):
    app, sessions, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    route = {(ids.URL, "pathname"): "/org/hyvala"}
    assert call(app, client, "page.children", route, csrf=None).status_code == 403
    assert call(app, client, "page.children", route, csrf="forged").status_code == 403
    assert call(app, client, "page.children", route).status_code == 200
    reasons = [e.detail["reason"] for e in audited(sessions, "request.refused")]
    assert reasons == ["csrf", "csrf"]


def test_state_changing_requests_from_another_site_are_refused(make_estate):
    app, sessions, _ = make_estate(trusted_proxies=["127.0.0.20"])
    client, _ = sign_in(app, "hyvala-staff", headers={"Origin": "http://localhost"})
    route = {(ids.URL, "pathname"): "/org/hyvala"}
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:8050"},  # another port is another site
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        assert call(app, client, "page.children", route, headers=headers).status_code == 403
    same_site = call(app, client, "page.children", route, headers={"Origin": "http://localhost"})
    assert same_site.status_code == 200
    behind_proxy = {
        "Origin": "https://riskiturva.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "riskiturva.example",
    }
    through_proxy = client.post(
        "/_dash-update-component",
        json={},
        headers={**behind_proxy, CSRF_HEADER: csrf_of(client)},
        environ_base={"REMOTE_ADDR": "127.0.0.20"},
    )
    assert through_proxy.status_code == 400  # past the origin check; the body is empty
    not_through_proxy = client.post(
        "/_dash-update-component", json={}, headers={**behind_proxy, CSRF_HEADER: csrf_of(client)}
    )
    assert not_through_proxy.status_code == 403
    _, login = sign_in(app, "partner", headers={"Origin": "https://evil.example"})
    assert login.status_code == 403  # no sign-in from another site's form either
    refused = audited(sessions, "request.refused")
    assert [e.detail["reason"] for e in refused] == ["cross_site"] * 5 + [
        "malformed",
        "cross_site",
    ]


MALFORMED_BODIES = (
    b"not json",
    b"[1, 2]",
    b"{}",
    b'{"output": "page.children"}',
    b'{"output": "nosuch.children", "outputs": {"id": "nosuch", "property": "children"},'
    b' "inputs": []}',
    b'{"output": "page.children", "outputs": {"id": "page", "property": "children"},'
    b' "inputs": [{"id": "url", "property": "pathname"}]}',
    b'{"output": "page.children", "outputs": {"id": "page", "property": "children"},'
    b' "inputs": "everything"}',
    b'{"output": "page.children", "outputs": {"id": "page", "property": "children"},'
    b' "inputs": [{"id": {"type": "x"}, "property": "pathname"},'
    b' {"id": "url", "property": "search"}]}',
    b'{"output": "page.children", "outputs": [{"id": "page", "property": "title"}],'
    b' "inputs": [{"id": "url", "property": "pathname"}, {"id": "url", "property": "search"}]}',
    b'{"output": "page.children", "outputs": {"id": "page", "property": "children"},'
    b' "inputs": [{"id": "url", "property": "pathname"}, {"id": "url", "property": "search"}],'
    b' "changedPropIds": ["sign-out.n_clicks"]}',
    b'{"output": "page.children", "outputs": {"id": "page", "property": "children"},'
    b' "inputs": [{"id": "url", "property": "pathname"}, {"id": "url", "property": "search"}],'
    b' "state": [{"id": "findings-org", "property": "data"}]}',
)


def test_a_malformed_callback_body_is_a_400_not_a_500(estate):
    app, sessions, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    for body in MALFORMED_BODIES:
        response = client.post(
            "/_dash-update-component",
            data=body,
            content_type="application/json",
            headers={CSRF_HEADER: csrf_of(client)},
        )
        assert response.status_code == 400, (body, response.get_data(as_text=True))
    refused = audited(sessions, "request.refused")
    assert len(refused) == len(MALFORMED_BODIES)
    assert {(e.actor, e.detail["reason"]) for e in refused} == {("hyvala-staff", "malformed")}


def test_a_huge_callback_body_is_refused_before_it_is_read(estate):
    app, _, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    response = client.post(
        "/_dash-update-component",
        data=b"[" + b"0," * (1 << 20) + b"0]",
        content_type="application/json",
        headers={CSRF_HEADER: csrf_of(client)},
    )
    assert response.status_code == 413


def test_head_answers_like_get(estate):
    app, _, _ = estate
    anonymous = app.server.test_client()
    assert anonymous.head("/login").status_code == 200
    assert anonymous.head("/").status_code == 302
    assert anonymous.head("/assets/riskiturva.css").status_code == 200
    client, _ = sign_in(app, "hyvala-staff")
    for path in ("/", "/org/hyvala", "/_dash-layout", "/_dash-dependencies"):
        head, get = client.head(path), client.get(path)
        assert head.status_code == get.status_code == 200, path
        assert head.data == b"" and head.headers["Content-Type"] == get.headers["Content-Type"]
    assert client.head("/nowhere").status_code == 404


def test_unknown_paths_are_404(estate):
    app, _, _ = estate
    anonymous = app.server.test_client()
    for path in ("/nowhere", "/org/hyvala/nothing", "/_dash-nothing", "/wp-login.php"):
        response = anonymous.get(path)
        assert response.status_code == 404, path
        assert '<html lang="fi">' in response.get_data(as_text=True)
    client, _ = sign_in(app, "hyvala-staff")
    for path in (
        "/nowhere",
        "/findings/x",
        "/_dash-component-suites/dash/nothing.js",
        "/_dash-component-suites/nothing/x.js",
        "/assets/nothing.css",
    ):
        assert client.get(path).status_code == 404, path
    assert client.get("/org/hyvala").status_code == 200
    # Someone else's organisation has a path like any other: the page itself says "not
    # found", the same as for one that does not exist.
    assert client.get("/org/rapala").status_code == 200
    assert client.get("/org/nowhere").status_code == 200


def test_every_response_carries_the_content_security_policy(estate):
    app, _, _ = estate
    anonymous = app.server.test_client()
    client, _ = sign_in(app, "hyvala-staff")
    for response in (anonymous.get("/login"), client.get("/"), client.get("/_dash-layout")):
        policy = dict(
            d.strip().split(" ", 1) for d in response.headers["Content-Security-Policy"].split(";")
        )
        script = policy["script-src"].split()
        assert script[0] == "'self'" and all(s.startswith("'sha256-") for s in script[1:])
        assert len(script) == 2  # the renderer's start-up line: the one inline script
        assert "'unsafe-eval'" not in policy["script-src"]
        assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
        assert "camera=()" in response.headers["Permissions-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"


def test_the_page_says_its_language(estate):
    app, _, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    assert client.get("/").get_data(as_text=True).startswith('<!DOCTYPE html>\n<html lang="fi">')
    client.get("/language/sv")
    assert '<html lang="sv">' in client.get("/org/hyvala").get_data(as_text=True)
    client.get("/language/en")
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)


def test_disabling_or_a_new_password_ends_existing_sessions(estate):
    app, sessions, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    assert client.get("/_dash-layout").status_code == 200
    with sessions.begin() as session:
        auth.set_password(session, "hyvala-staff", "another long password", now=NOW)
    assert client.get("/_dash-layout").status_code == 401
    client, _ = sign_in(app, "hyvala-staff", "another long password")
    with sessions.begin() as session:
        auth.disable_user(session, "hyvala-staff", now=NOW)
    assert client.get("/_dash-layout").status_code == 401


def test_login_never_redirects_to_another_site(estate):
    app, _, _ = estate
    client = app.server.test_client()
    page = client.get("/login?next=//evil.example/x").get_data(as_text=True)
    assert 'name="next" value="/"' in page


# --- every callback registered through the guard -----------------------------------------


def test_every_callback_is_registered_through_secure_callbacks(estate):
    app, _, _ = estate
    assert unsecured_callbacks(app, app.secure_callbacks) == []


def test_a_callback_added_past_the_registry_is_caught(estate):
    app, _, _ = estate
    app.callback(Output("stray", "children"), Input(ids.URL, "pathname"))(lambda path: path)
    assert unsecured_callbacks(app, app.secure_callbacks) == ["stray.children"]


# --- the cross-tenant test ---------------------------------------------------------------

ROUTES = (
    "/",
    "/portfolio",
    "/org/rapala",
    "/org/rapala/findings",
    "/org/rapala/assets",
    "/org/rapala/score",
    "/org/rapala/exceptions",
    "/org/rapala/scans",
    "/org/rapala/proposals",
    "/org/rapala/alerts",
    "/alerts",
)


def hostile_values(
    rapala_finding: int,
    rapala_accepted: int,
    rapala_asset: int,
    hyvala_asset: int,
    rapala_token: int,
) -> dict[tuple[str, str], list[Any]]:
    """Values a forger would try for each callback input and state, all aimed at Rapala."""
    return {
        (ids.URL, "pathname"): [
            *ROUTES,
            f"/findings/{rapala_finding}",
            "/findings/999999999999",
            "/org/RAPALA",
            "/org/rapala/",
            "//org/rapala",
            "/org/hyvala/../rapala",
            "/audit",
            5,
        ],
        (ids.URL, "search"): [
            "",
            "?status=open&status=resolved",
            "?check=services.exposed.rdp&due=overdue&new=month&asset=127.60.2.10",
            7,
        ],
        (ids.SIGN_OUT, "n_clicks"): [None],
        (ids.FINDINGS_ORG, "data"): ["rapala", "RAPALA", " rapala", ["rapala"], {"slug": "rapala"}],
        (ids.FILTER_CATEGORY, "value"): [None, 5, {"x": 1}, "high"],
        (ids.FILTER_SEVERITY, "value"): [None, 5, {"x": 1}, "high"],
        (ids.FILTER_STATUS, "value"): [["open", "resolved"]],
        (ids.FILTER_ASSET, "value"): [None, ["127.60.2.10"]],
        (ids.FILTER_REQUIREMENT, "value"): [None, ["tiedonhallintalaki.15_1_integrity"], "x"],
        (ids.FILTER_CHECK, "value"): [None, ["services.exposed.rdp"], {"x": 1}],
        (ids.FILTER_DUE, "value"): [None, "overdue", "-5", ["7"]],
        (ids.FILTER_NEW, "value"): [None, "month", 30],
        (ids.FINDINGS_TABLE, "sort_by"): [
            [{"column_id": "severity", "direction": "desc"}],
            [{"column_id": "__proto__"}],
            "severity",
            [5],
        ],
        (ids.FINDINGS_QUERY, "data"): ["?asset=127.60.2.10"],
        (ids.EXPORT, "n_clicks"): [1],
        (ids.EXPORT_XLSX, "n_clicks"): [1],
        (ids.SHEET_CSV, "n_clicks"): [1],
        (ids.SHEET_XLSX, "n_clicks"): [1],
        (ids.SHEET_SCOPE, "data"): [
            {"kind": "exceptions", "organisation": "rapala"},
            {"kind": "priorities", "organisation": "rapala"},
            {"kind": "portfolio", "organisation": None},
            {"kind": "portfolio", "organisation": "rapala"},
            {"kind": "findings", "organisation": "rapala"},
            {"kind": "exceptions", "organisation": ["rapala"]},
            {"kind": "exceptions", "organisation": "RAPALA"},
            "rapala",
            None,
        ],
        (ids.FINDING_ID, "data"): [
            rapala_finding,
            rapala_accepted,
            str(rapala_finding),
            f" {rapala_finding}",
            -rapala_finding,
            True,
            10**30,
            "x",
            None,
        ],
        (ids.DECIDE_SUBMIT, "n_clicks"): [1],
        (ids.DECIDE_REVOKE, "n_clicks"): [1],
        (ids.REVOKE_SUBMIT, "n_clicks"): [1],
        (ids.DECIDE_KIND, "value"): ["accepted", "false_positive", "open", 5],
        (ids.DECIDE_REASON, "value"): ["hyväksytty"],
        (ids.DECIDE_UNTIL, "value"): [(NOW.date() + dt.timedelta(days=30)).isoformat()],
        (ids.AUDIT_KIND, "value"): [None, "refused", 5],
        (ids.AUDIT_ORG, "value"): ["rapala", "RAPALA", None, ["rapala"]],
        (ids.END_SESSIONS, "n_clicks"): [1],
        (ids.END_SESSIONS_USER, "value"): [
            "rapala-staff",
            "RAPALA-STAFF",
            "partner",
            ["rapala-staff"],
            None,
        ],
        (ids.EXCEPTIONS_ORG, "data"): ["rapala", ["rapala"], None],
        (ids.EXCEPTIONS_TABLE, "selected_row_ids"): [
            [rapala_accepted],
            [rapala_finding, rapala_accepted],
            [str(rapala_accepted)],
            rapala_accepted,
            [10**30],
            ["x"],
            None,
        ],
        (ids.REVOKE_REASON, "value"): ["peruttu"],
        (ids.PROPOSAL_SUBMIT, "n_clicks"): [1],
        (ids.PROPOSAL_DECISION, "value"): ["accept", "reject", "delete", None],
        (ids.PROPOSALS_ORG, "data"): ["rapala", ["rapala"], None, "hyvala"],
        (ids.PROPOSALS_TABLE, "selected_row_ids"): [
            [rapala_asset],
            [hyvala_asset, rapala_asset],
            [str(rapala_asset)],
            rapala_asset,
            [10**30],
            ["x"],
            None,
        ],
        (ids.PROPOSAL_CRITICALITY, "value"): ["high", "bogus", None],
        (ids.PROPOSAL_TAGS, "value"): ["web, uusi", None],
        (ids.PROPOSAL_REASON, "value"): ["hylätty", None],
        (ids.TOKEN_CREATE, "n_clicks"): [1],
        (ids.TOKEN_REVOKE, "n_clicks"): [1],
        (ids.TOKEN_NAME, "value"): ["oma", None, 5, "x" * 200],
        (ids.TOKEN_SCOPE, "value"): ["read", "decide", "admin", None],
        (ids.TOKEN_ORGS, "value"): [None, ["rapala"], ["hyvala", "rapala"], "rapala", [5]],
        (ids.TOKEN_DAYS, "value"): [90, 0, 10**6, "x", None, 1.5],
        (ids.TOKEN_REVOKE_ID, "value"): [rapala_token, str(rapala_token), None, True, -1],
    }


def without_own_rows(body: Any, attacker: str) -> Any:
    """The response, less the audit rows of the attacker's own attempts (which echo what
    they typed, Rapala's slug included): those are theirs to see. Rows are dropped from
    the audit table wherever it is: a page's layout, or a callback's output."""
    if isinstance(body, list):
        return [without_own_rows(item, attacker) for item in body]
    if not isinstance(body, dict):
        return body
    table = body.get(ids.AUDIT_TABLE)  # a callback's output
    if body.get("id") == ids.AUDIT_TABLE:  # a component's props
        table = body
    if isinstance(table, dict) and isinstance(table.get("data"), list):
        table["data"] = [row for row in table["data"] if row["actor"] != attacker]
    return {key: without_own_rows(value, attacker) for key, value in body.items()}


def with_downloads_read(body: Any) -> Any:
    """The response with every download's content as text a leak would show in: CSV
    decoded, an XLSX (a zip) as the text of every part of it."""
    if isinstance(body, list):
        return [with_downloads_read(item) for item in body]
    if not isinstance(body, dict):
        return body
    if body.get("base64") is True and isinstance(body.get("content"), str):
        data = base64.b64decode(body["content"])
        if data.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                text = "".join(archive.read(n).decode("utf-8") for n in archive.namelist())
        else:
            text = data.decode("utf-8-sig")
        return {**body, "content": text}
    return {key: with_downloads_read(value) for key, value in body.items()}


@pytest.mark.parametrize(
    ("attacker", "not_theirs"),
    [
        ("hyvala-staff", {ids.AUDIT_TABLE, ids.END_SESSIONS_MESSAGE}),  # not partner admins
        ("hyvala-partner", {ids.DECIDE_MESSAGE, ids.REVOKE_MESSAGE}),  # decisions: staff's
    ],
)
def test_people_of_one_municipality_get_nothing_of_another(estate, attacker, not_theirs):
    app, sessions, finding_ids = estate
    rapala_finding = finding_ids["127.60.2.10:3389/tcp"]
    rapala_accepted = finding_ids["127.60.2.10:53/tcp"]
    rapala_asset = asset_id(sessions, "salainen.rapala.test")
    hyvala_asset = asset_id(sessions, "uusi.hyvala.test")
    rapala_token = rapala_token_id(sessions)
    values = hostile_values(
        rapala_finding, rapala_accepted, rapala_asset, hyvala_asset, rapala_token
    )
    rapala, _ = sign_in(app, "rapala-staff")
    client, _ = sign_in(app, attacker)
    with sessions() as session:
        events_before = session.scalar(select(func.count(FindingEvent.id)))
        changes_before = session.scalar(select(func.count(ChangeEvent.id)))
    tally: Counter[tuple[str, int]] = Counter()  # (callback, status): attempts
    for output, spec in app.callback_map.items():
        dependencies = [(d["id"], d["property"]) for d in spec["inputs"] + spec["state"]]
        missing = [d for d in dependencies if d not in values]
        assert not missing, f"{output}: add forged values for {missing} to hostile_values()"
        if "callback" not in spec:  # runs in the browser: the server has nothing to run
            chosen = {d: values[d][0] for d in dependencies}
            assert call(app, client, output, chosen).status_code == 400, output
            continue
        for varied in dependencies:
            for value in values[varied]:
                chosen = {d: values[d][0] for d in dependencies} | {varied: value}
                response = call(app, client, output, chosen)
                tally[output.strip(".").split(".")[0], response.status_code] += 1
                assert response.status_code in (200, 204), (output, chosen)
                body = response.json if response.is_json else response.get_data(as_text=True)
                body = with_downloads_read(body)
                shown = json.dumps(without_own_rows(body, attacker), ensure_ascii=False)
                leaked = [m for m in RAPALA_MARKERS if m in shown]
                assert not leaked, f"{output} with {chosen} returned {leaked}: {shown[:300]}"
    assert tally.total() > 75
    with sessions() as session:
        assert session.scalar(select(func.count(FindingEvent.id))) == events_before
        assert session.get(Finding, rapala_finding).status == "open"
        assert session.get(Finding, rapala_accepted).status == "accepted"
        # Not one proposal decided: Rapala's is Rapala's, and a request naming it with
        # Hyvälä's own is refused as a whole
        assert session.get(Asset, rapala_asset).state == "proposed"
        assert session.get(Asset, hyvala_asset).state == "proposed"
        assert session.scalar(select(func.count(ChangeEvent.id))) == changes_before
        assert session.get(ApiToken, rapala_token).revoked_at is None
    assert rapala.get("/_dash-layout").status_code == 200  # her session was not ended
    refusals = audited(sessions, "access.refused") + audited(sessions, "request.refused")
    assert {e.actor for e in refusals} == {attacker}
    assert {e.organisation for e in refusals} == {"hyvala"}  # filed under her organisation
    targets = {e.target for e in audited(sessions, "access.refused")}
    assert {"/org/rapala", "rapala", str([rapala_asset])} <= targets  # page, org, asset
    permission = {e.target for e in audited(sessions, "request.refused")}
    malformed = {CALLBACK_PATH}  # the clientside callback asked of the server: a bad request
    assert permission == {output_of(app, component) for component in not_theirs} | malformed
    print(attack_table(attacker, tally, len(refusals)))  # for the record: `pytest -rP`


def attack_table(attacker: str, tally: Counter[tuple[str, int]], audited_refusals: int) -> str:
    """The attempts per callback and what they got, as a Markdown table."""
    rows = [
        f"attacker {attacker}",
        "| callback | attempts | 200 (nothing of Rapala's) | 204 (refused) |",
    ]
    rows.append("|---|---|---|---|")
    for callback in sorted({c for c, _ in tally}):
        answered, refused = tally[callback, 200], tally[callback, 204]
        rows.append(f"| {callback} | {answered + refused} | {answered} | {refused} |")
    rows.append(
        f"| all | {tally.total()} | {sum(n for (_, s), n in tally.items() if s == 200)} "
        f"| {sum(n for (_, s), n in tally.items() if s == 204)} |"
    )
    rows.append(f"leaks 0, changes 0, audited refusals {audited_refusals}")
    return "\n".join(rows)


def test_staff_see_their_own_organisation(estate):
    app, _, finding_ids = estate
    client, _ = sign_in(app, "hyvala-staff")
    own = finding_ids["127.60.1.10:3389/tcp"]
    for path in ("/", "/org/hyvala/findings", f"/findings/{own}", "/org/hyvala/scans"):
        body = text_of(call(app, client, "page.children", {(ids.URL, "pathname"): path}))
        assert "Hyvälän kunta" in body, path
        assert not any(m in body for m in RAPALA_MARKERS), path
    body = call(app, client, "page.children", {(ids.URL, "pathname"): "/org/hyvala/scans"})
    assert "hyvala timed out" in text_of(body)
    assert "3 kohdetta" not in text_of(body)  # the shared run's totals


def test_partner_admin_sees_both_and_the_shared_run_totals(estate):
    app, _, _ = estate
    client, _ = sign_in(app, "partner")
    body = text_of(call(app, client, "page.children", {(ids.URL, "pathname"): "/"}))
    assert "Hyvälän kunta" in body and "Rapalan kunta" in body
    body = call(app, client, "page.children", {(ids.URL, "pathname"): "/org/rapala/scans"})
    assert "3 kohdetta" in text_of(body)


def test_management_viewer_is_refused_details(estate):
    app, _, finding_ids = estate
    client, _ = sign_in(app, "hyvala-boss")
    own = finding_ids["127.60.1.10:3389/tcp"]
    for path in ("/org/hyvala/findings", f"/findings/{own}", "/org/hyvala/assets"):
        body = call(app, client, "page.children", {(ids.URL, "pathname"): path})
        assert '"refused"' in text_of(body), path
    body = call(app, client, "page.children", {(ids.URL, "pathname"): "/org/hyvala/score"})
    assert "Hyvälän kunta" in text_of(body)
    export = {(ids.EXPORT, "n_clicks"): 1, (ids.FINDINGS_ORG, "data"): "hyvala"}
    assert call(app, client, "download.data", export).status_code == 204
    # The priorities name the assets: details; the exceptions register is everyone's
    sheets = output_of(app, ids.SHEET_DOWNLOAD)
    for kind, status in (("priorities", 204), ("exceptions", 200)):
        scope = {(ids.SHEET_CSV, "n_clicks"): 1, (ids.SHEET_SCOPE, "data"): {
            "kind": kind, "organisation": "hyvala"}}  # fmt: skip
        assert call(app, client, sheets, scope).status_code == status, kind


def status_shown(response) -> str:
    """The status the finding page shows after a decision callback."""
    state = response.json["response"][ids.FINDING_STATE]["children"]
    return next(
        c["props"]["children"]
        for c in components(state)
        if c["props"].get("id") == ids.FINDING_STATUS
    )


def test_staff_decision_shows_at_once_and_is_written_to_the_audit_trail(estate):
    app, sessions, finding_ids = estate
    own = finding_ids["127.60.1.10:3389/tcp"]
    client, _ = sign_in(app, "hyvala-staff")
    until = (NOW.date() + dt.timedelta(days=60)).isoformat()
    values = {
        (ids.DECIDE_SUBMIT, "n_clicks"): 1,
        (ids.FINDING_ID, "data"): own,
        (ids.DECIDE_KIND, "value"): "accepted",
        (ids.DECIDE_REASON, "value"): "Palvelu poistuu käytöstä joulukuussa",
        (ids.DECIDE_UNTIL, "value"): until,
    }
    output = output_of(app, ids.DECIDE_MESSAGE)
    response = call(app, client, output, values, changed=[(ids.DECIDE_SUBMIT, "n_clicks")])
    assert response.status_code == 200
    assert status_shown(response) == "Hyväksytty riski"
    assert response.json["response"][ids.DECIDE_REVOKE]["disabled"] is False
    with sessions() as session:
        finding = session.get(Finding, own)
        assert (finding.status, finding.decided_by) == ("accepted", "hyvala-staff")
    [event] = audited(sessions, "finding.accepted")
    assert (event.actor, event.organisation, event.at) == ("hyvala-staff", "hyvala", NOW)
    assert (event.note, event.address) == ("Palvelu poistuu käytöstä joulukuussa", "127.0.0.1")
    viewer_client, _ = sign_in(app, "hyvala-boss")
    assert call(app, viewer_client, output, values).status_code == 204  # no permission


def test_staff_revoke_a_decision_and_the_finding_is_open_again(estate):
    app, sessions, finding_ids = estate
    own = finding_ids["127.60.1.10:3389/tcp"]
    client, _ = sign_in(app, "hyvala-staff")
    output = output_of(app, ids.DECIDE_MESSAGE)
    values = {
        (ids.FINDING_ID, "data"): own,
        (ids.DECIDE_KIND, "value"): "false_positive",
        (ids.DECIDE_REASON, "value"): "Ei ole RDP vaan VPN",
        (ids.DECIDE_UNTIL, "value"): (NOW.date() + dt.timedelta(days=60)).isoformat(),
    }
    revoke = [(ids.DECIDE_REVOKE, "n_clicks")]
    nothing = call(app, client, output, values, changed=revoke)  # nothing to revoke yet
    assert "vain voimassa olevan päätöksen voi perua" in text_of(nothing)
    call(app, client, output, values, changed=[(ids.DECIDE_SUBMIT, "n_clicks")])
    values[(ids.DECIDE_REASON, "value")] = ""
    unexplained = call(app, client, output, values, changed=revoke)
    assert "Kirjoita, miksi päätös perutaan" in text_of(unexplained)
    values[(ids.DECIDE_REASON, "value")] = "Sittenkin RDP"
    response = call(app, client, output, values, changed=revoke)
    assert status_shown(response) == "Avoin"
    assert response.json["response"][ids.DECIDE_REVOKE]["disabled"] is True
    assert "Päätös peruttu" in text_of(response)
    with sessions() as session:
        finding = session.get(Finding, own)
        assert (finding.status, finding.decision, finding.decision_until) == ("open", None, None)
        assert finding.events[-1].kind == "revoked"
        assert finding.events[-1].note == "Sittenkin RDP"  # the words as written, nothing added
    [event] = audited(sessions, "finding.revoked")
    assert (event.actor, event.organisation, event.detail["revoked"]) == (
        "hyvala-staff",
        "hyvala",
        "false_positive",
    )


# --- the audit page ----------------------------------------------------------------------


def audit_rows(app, client, **filters: Any) -> list[dict[str, Any]]:
    values = {
        (ids.AUDIT_KIND, "value"): filters.get("kind"),
        (ids.AUDIT_ORG, "value"): filters.get("org"),
    }
    response = call(app, client, output_of(app, ids.AUDIT_TABLE), values)
    assert response.status_code == 200
    return response.json["response"][ids.AUDIT_TABLE]["data"]


def test_partner_administrators_read_their_organisations_audit_trail(estate):
    app, _, _ = estate
    sign_in(app, "hyvala-staff", "wrong password!", address="203.0.113.1")
    sign_in(app, "rapala-staff", "wrong password!", address="203.0.113.2")
    sign_in(app, "nobody", "wrong password!", address="203.0.113.3")
    staff, _ = sign_in(app, "hyvala-staff")
    call(app, staff, "page.children", {(ids.URL, "pathname"): "/org/rapala"})  # refused
    partner, _ = sign_in(app, "partner")
    everything = audit_rows(app, partner)
    failed = {
        (r["actor"], r["address"])
        for r in everything
        if r["event"] == "Epäonnistunut kirjautuminen"
    }
    assert failed == {
        ("hyvala-staff", "203.0.113.1"),
        ("rapala-staff", "203.0.113.2"),
        ("nobody", "203.0.113.3"),
    }
    hyvala_admin, _ = sign_in(app, "hyvala-partner")
    own = audit_rows(app, hyvala_admin)
    assert {r["organisation"] for r in own} <= {"Hyvälän kunta", ""}
    assert not [r for r in own if "203.0.113.2" in r["address"] or r["actor"] == "nobody"]
    assert {r["actor"] for r in own} == {"cli", "hyvala-staff", "hyvala-partner"}
    refused = audit_rows(app, hyvala_admin, kind="refused")
    assert [(r["actor"], r["target"], r["detail"]) for r in refused] == [
        ("hyvala-staff", "/org/rapala", "sivu")
    ]
    assert {r["organisation"] for r in audit_rows(app, hyvala_admin, org="rapala")} <= {
        "Hyvälän kunta",
        "",
    }
    page = text_of(call(app, hyvala_admin, "page.children", {(ids.URL, "pathname"): "/audit"}))
    assert "Tapahtumaloki" in page
    assert "rapala-staff" not in page and "Rapalan kunta" not in page


def test_only_partner_administrators_have_an_audit_page(estate):
    app, sessions, _ = estate
    for username in ("hyvala-staff", "hyvala-boss"):
        client, _ = sign_in(app, username)
        page = call(app, client, "page.children", {(ids.URL, "pathname"): "/audit"})
        assert '"not-found"' in text_of(page)
        table = call(
            app, client, output_of(app, ids.AUDIT_TABLE), {(ids.AUDIT_KIND, "value"): None}
        )
        assert table.status_code == 204
    refused = [e.detail["what"] for e in audited(sessions, "access.refused")]
    assert refused == ["page", "page"]


def test_a_partner_administrator_signs_out_someone_everywhere(estate):
    app, sessions, _ = estate
    laptop, _ = sign_in(app, "hyvala-staff")
    phone, _ = sign_in(app, "hyvala-staff")
    other, _ = sign_in(app, "rapala-staff")
    admin, _ = sign_in(app, "hyvala-partner")
    page = text_of(call(app, admin, "page.children", {(ids.URL, "pathname"): "/audit"}))
    assert page.count('"hyvala-staff"') >= 2  # both of her sessions are listed
    output = output_of(app, ids.END_SESSIONS_MESSAGE)
    forged = call(
        app,
        admin,
        output,
        {(ids.END_SESSIONS, "n_clicks"): 1, (ids.END_SESSIONS_USER, "value"): "rapala-staff"},
    )
    assert "Valitse tili" in text_of(forged)  # not an account of hers
    assert other.get("/_dash-layout").status_code == 200
    done = call(
        app,
        admin,
        output,
        {(ids.END_SESSIONS, "n_clicks"): 1, (ids.END_SESSIONS_USER, "value"): "hyvala-staff"},
    )
    assert "hyvala-staff: istuntoja päätetty: 2" in text_of(done)
    assert laptop.get("/_dash-layout").status_code == 401
    assert phone.get("/_dash-layout").status_code == 401
    assert admin.get("/_dash-layout").status_code == 200
    [ended] = audited(sessions, "sessions.ended")
    assert (ended.actor, ended.target, ended.organisation, ended.address) == (
        "hyvala-partner",
        "hyvala-staff",
        "hyvala",
        "127.0.0.1",
    )
    assert [e.target for e in audited(sessions, "access.refused")] == ["rapala-staff"]


def test_viewers_read_the_register_and_staff_revoke_with_an_audit_trail(estate):
    app, sessions, finding_ids = estate
    own = finding_ids["127.60.1.10:3389/tcp"]
    staff, _ = sign_in(app, "hyvala-staff")
    decision = {
        (ids.DECIDE_SUBMIT, "n_clicks"): 1,
        (ids.FINDING_ID, "data"): own,
        (ids.DECIDE_KIND, "value"): "accepted",
        (ids.DECIDE_REASON, "value"): "Etätyöpalvelin poistuu joulukuussa",
        (ids.DECIDE_UNTIL, "value"): (NOW.date() + dt.timedelta(days=10)).isoformat(),
    }
    call(app, staff, next(k for k in app.callback_map if "decide-message" in k), decision)
    # Given the management viewer: the overview warns of the accepted critical problem and
    # of the decision ending within 14 days, and the register names who decided and why
    boss, _ = sign_in(app, "hyvala-boss")
    overview = text_of(call(app, boss, "page.children", {(ids.URL, "pathname"): "/org/hyvala"}))
    assert ids.ACCEPTED_WARNING in overview and ids.EXPIRING_WARNING in overview
    register = text_of(
        call(app, boss, "page.children", {(ids.URL, "pathname"): "/org/hyvala/exceptions"})
    )
    assert "Etätyöpalvelin poistuu joulukuussa" in register and "hyvala-staff" in register
    output = next(k for k in app.callback_map if "revoke-message" in k)
    revoke = {
        (ids.REVOKE_SUBMIT, "n_clicks"): 1,
        (ids.EXCEPTIONS_ORG, "data"): "hyvala",
        (ids.EXCEPTIONS_TABLE, "selected_row_ids"): [own],
        (ids.REVOKE_REASON, "value"): "Päätös tehtiin väärään havaintoon",
    }
    assert call(app, boss, output, revoke).status_code == 204  # viewers may not revoke
    # When the staff revoke it
    response = call(app, staff, output, revoke)
    # Then the finding is open again, the register is empty, and the audit trail says who
    assert response.status_code == 200
    assert response.json["response"][ids.EXCEPTIONS_TABLE]["data"] == []
    with sessions() as session:
        assert session.get(Finding, own).status == "open"
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "finding.revoked"))
        assert (event.actor, event.organisation, event.target) == (
            "hyvala-staff",
            "hyvala",
            str(own),
        )
        assert event.note == "Päätös tehtiin väärään havaintoon"
        assert event.detail["revoked"] == "accepted"


def test_exports_are_in_the_readers_language_neutralise_formulas_and_are_audited(estate):
    app, sessions, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    values = {
        (ids.EXPORT, "n_clicks"): 1,
        (ids.EXPORT_XLSX, "n_clicks"): 1,
        (ids.FINDINGS_ORG, "data"): "hyvala",
        (ids.FILTER_STATUS, "value"): ["open"],
    }
    response = call(app, client, "download.data", values, changed=[(ids.EXPORT, "n_clicks")])
    sent = json.loads(response.get_data(as_text=True))["response"]["download"]["data"]
    assert sent["filename"] == f"findings-hyvala-{NOW.date().isoformat()}.csv"
    rows = list(csv.reader(io.StringIO(with_downloads_read(sent)["content"]), delimiter=";"))
    assert rows[0][:4] == ["Organisaatio", "Vakavuus", "Havainto", "Kohta"]
    assert any("127.60.1.10:3389/tcp" in row for row in rows)
    response = call(app, client, "download.data", values, changed=[(ids.EXPORT_XLSX, "n_clicks")])
    sent = json.loads(response.get_data(as_text=True))["response"]["download"]["data"]
    assert sent["filename"].endswith(".xlsx")
    assert base64.b64decode(sent["content"]).startswith(b"PK")
    # The register's and the portfolio's buttons: one callback, the viewer's own rows
    sheets = output_of(app, ids.SHEET_DOWNLOAD)
    for scope in ({"kind": "exceptions", "organisation": "hyvala"}, {"kind": "portfolio"}):
        response = call(
            app,
            client,
            sheets,
            {(ids.SHEET_CSV, "n_clicks"): 1, (ids.SHEET_SCOPE, "data"): scope},
            changed=[(ids.SHEET_CSV, "n_clicks")],
        )
        assert response.status_code == 200, scope
    with sessions() as session:
        exported = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("%.exported")).order_by(AuditEvent.id)
        ).all()
    assert [(e.action, e.detail["format"]) for e in exported] == [
        ("findings.exported", "csv"),
        ("findings.exported", "xlsx"),
        ("exceptions.exported", "csv"),
        ("portfolio.exported", "csv"),
    ]


# --- outside-world strings are text -------------------------------------------------------

SAFE_NAMESPACES = {
    "dash_html_components",
    "dash_core_components",
    "dash_bootstrap_components",
    "dash_table",
}


def components(tree: Any):
    """Every component in a serialised layout."""
    if isinstance(tree, dict):
        if "namespace" in tree and "props" in tree:
            yield tree
        for value in tree.values():
            yield from components(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from components(item)


def test_no_page_renders_raw_html_and_hostile_evidence_stays_text(estate):
    app, _, finding_ids = estate
    client, _ = sign_in(app, "partner")
    hostile = "<script>alert('salainen')</script>"
    paths = [*ROUTES, *(f"/findings/{i}" for i in finding_ids.values()), "/org/hyvala"]
    for path in paths:
        response = call(app, client, "page.children", {(ids.URL, "pathname"): path}).json
        for component in components(response):
            assert component["namespace"] in SAFE_NAMESPACES, (path, component["type"])
            assert component["type"] != "Markdown", path
            assert not component["props"].get("dangerously_allow_html"), path
            markdown = component["props"].get("markdown_options")
            assert markdown is None or markdown == {"html": False}, path
    finding = call(
        app,
        client,
        "page.children",
        {(ids.URL, "pathname"): f"/findings/{finding_ids['127.60.2.10:3389/tcp']}"},
    ).json
    shown = {c["props"].get("id"): c for c in components(finding)}
    # The labelled evidence holds the hostile banner as a text child, never as markup…
    assert shown[ids.EVIDENCE]["type"] == "Dl"
    values = [c["props"]["children"] for c in components(shown[ids.EVIDENCE])]
    assert any(isinstance(v, str) and hostile in v for v in values)
    # …and the raw record, for engineers, is the JSON the scanner stored.
    assert shown[ids.EVIDENCE_JSON]["type"] == "Pre"
    assert hostile in json.loads(shown[ids.EVIDENCE_JSON]["props"]["children"])["product"]


def test_cookies_are_secure_when_configured(make_estate):
    app, _, _ = make_estate(secure_cookies=True)
    _, response = sign_in(app, "hyvala-staff")
    cookies = response.headers.getlist("Set-Cookie")
    assert all("Secure" in c for c in cookies), cookies
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_shared_runs_show_each_reader_their_own_part(sessions, minimal_config):
    """On SQLite and PostgreSQL: the run list is found through the JSON list of slugs."""
    seed(sessions, minimal_config)
    with sessions() as session:
        [own] = views.runs(session, {"hyvala"}, "hyvala")
        [whole] = views.runs(session, {"hyvala", "rapala"}, "hyvala")
        with pytest.raises(NotVisible):
            views.runs(session, {"hyvala"}, "rapala")
    assert [e.message for e in own.errors] == ["hyvala timed out"]
    assert (own.status, own.counts) == ("partial", None)  # its own target timed out
    assert (whole.status, whole.counts) == ("partial", {"targets": 3})
    with sessions.begin() as session:
        session.execute(delete(ScanError).where(ScanError.message == "hyvala timed out"))
    with sessions() as session:
        [own] = views.runs(session, {"hyvala"}, "hyvala")
    assert (own.status, own.errors) == ("ok", ())  # the partial part was Rapala's


def test_filters_narrow_the_findings_table(estate):
    app, _, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    output = next(k for k in app.callback_map if "findings-table" in k)

    def shown(**filters: Any) -> list[str]:
        values = {(ids.FINDINGS_ORG, "data"): "hyvala", (ids.FILTER_STATUS, "value"): ["open"]}
        values |= {(getattr(ids, f"FILTER_{k.upper()}"), "value"): v for k, v in filters.items()}
        response = call(app, client, output, values).json["response"]
        return [row["subject"] for row in response[ids.FINDINGS_TABLE]["data"]]

    assert shown() == ["127.60.1.10:3389/tcp"]
    # stored as high, but the registry (the one table) says critical
    assert shown(severity=["critical"], category=["services"]) == ["127.60.1.10:3389/tcp"]
    assert shown(severity=["high"]) == []
    assert shown(severity=["low"]) == []
    assert shown(asset=["127.60.1.99"]) == []
    assert shown(status=["resolved"]) == []
    # By obligation: exposed remote desktop bears on integrity (tiedonhallintalaki 15 §),
    # not on the name-server rules of Traficom's M68.
    assert shown(requirement=["tiedonhallintalaki.15_1_integrity"]) == ["127.60.1.10:3389/tcp"]
    assert shown(requirement=["traficom-m68.ns_independent"]) == []
    assert shown(requirement=["no-such.requirement"]) == []  # bears on nothing
    # By check, and by time: first seen 40 days ago, critical (15 days to fix) is overdue
    assert shown(check=["services.exposed.rdp"]) == ["127.60.1.10:3389/tcp"]
    assert shown(check=["dns.axfr.open"]) == []
    assert shown(due="overdue") == ["127.60.1.10:3389/tcp"]
    assert shown(due="7") == ["127.60.1.10:3389/tcp"]  # due by a week from now: yes, long ago
    assert shown(new="month") == shown(new="30") == []
    assert shown(due="tomorrow") == ["127.60.1.10:3389/tcp"]  # an unknown choice is none


def test_the_management_section_speaks_plainly_and_links_obligations_to_findings(estate):
    app, _, _ = estate
    client, _ = sign_in(app, "hyvala-boss")
    body = text_of(call(app, client, "page.children", {(ids.URL, "pathname"): "/org/hyvala"}))
    registry = load_registry()
    assert "Johdolle" in body and "Mitä on tehtävä ensin, ja kuka sen tekee" in body
    # The first action in plain words, with the technical title beside it for staff.
    rdp = registry["services.exposed.rdp"]
    assert rdp.headline_in("fi") in body and rdp.title_in("fi") in body
    assert "Oma IT" in body or "Kumppani" in body or "Palveluntarjoaja" in body
    assert "Velvoitteet, joita havainnot koskevat" in body and "Ei täyty" in body
    assert "/org/hyvala/findings?requirement=tiedonhallintalaki.15_1_integrity" in body
    assert "Vertailu" in body or "vertailua" in body
    # Following the link filters the findings to the obligation (staff only: details).
    staff, _ = sign_in(app, "hyvala-staff")
    url = {
        (ids.URL, "pathname"): "/org/hyvala/findings",
        (ids.URL, "search"): "?requirement=traficom-m68.ns_independent",
    }
    response = call(app, staff, "page.children", url)
    assert "127.60.1.10:3389/tcp" not in text_of(response)


# --- the review queue of discovered assets -----------------------------------------------


def _decide_on_proposals(slug: str, selected: Any, **fields: Any) -> dict[tuple[str, str], Any]:
    return {
        (ids.PROPOSAL_SUBMIT, "n_clicks"): 1,
        (ids.PROPOSAL_DECISION, "value"): fields.get("decision", "accept"),
        (ids.PROPOSALS_ORG, "data"): slug,
        (ids.PROPOSALS_TABLE, "selected_row_ids"): selected,
        (ids.PROPOSAL_CRITICALITY, "value"): fields.get("criticality", "medium"),
        (ids.PROPOSAL_TAGS, "value"): fields.get("tags"),
        (ids.PROPOSAL_REASON, "value"): fields.get("reason"),
    }


def _proposal_output(app) -> str:
    return next(k for k in app.callback_map if ids.PROPOSAL_MESSAGE in k)


def test_staff_accept_their_own_proposal_with_criticality_and_tags_and_it_is_audited(estate):
    app, sessions, _ = estate
    own = asset_id(sessions, "uusi.hyvala.test")
    staff, _ = sign_in(app, "hyvala-staff")
    page = text_of(
        call(app, staff, "page.children", {(ids.URL, "pathname"): "/org/hyvala/proposals"})
    )
    assert "uusi.hyvala.test" in page and "NSEC chain of hyvala.test" in page
    assert "NSEC-ketju (vyöhykkeen läpikäynti)" in page  # the source, in the reader's words
    assert not any(m in page for m in RAPALA_MARKERS)
    # A management viewer may neither open the queue nor decide on it
    boss, _ = sign_in(app, "hyvala-boss")
    refused = call(app, boss, "page.children", {(ids.URL, "pathname"): "/org/hyvala/proposals"})
    assert '"refused"' in text_of(refused)
    values = _decide_on_proposals("hyvala", [own], criticality="high", tags="web, uusi ,")
    assert call(app, boss, _proposal_output(app), values).status_code == 204
    with sessions() as session:
        assert session.get(Asset, own).state == "proposed"
    # When the staff accept it
    response = call(app, staff, _proposal_output(app), values)
    assert response.status_code == 200
    assert response.json["response"][ids.PROPOSALS_TABLE]["data"] == []  # the queue is empty
    assert "Hyväksytty: 1" in text_of(response)
    with sessions() as session:
        asset = session.get(Asset, own)
        assert (asset.state, asset.criticality, asset.tags) == ("active", "high", ["uusi", "web"])
        assert (asset.state_changed_by, asset.state_changed_at) == ("hyvala-staff", NOW)
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "asset.accepted"))
        assert (event.actor, event.organisation, event.target) == (
            "hyvala-staff",
            "hyvala",
            "host uusi.hyvala.test",
        )
    # The overview's "what changed" lists the estate's changes of the last 30 days
    overview = text_of(call(app, staff, "page.children", {(ids.URL, "pathname"): "/org/hyvala"}))
    assert "Inventaariossa (1)" in overview and "Uusi kohde ehdotettu" in overview
    assert "uusi.hyvala.test" in overview and ids.ESTATE_CHANGES in overview


def test_a_rejection_needs_its_reason_and_partner_administrators_decide_too(estate):
    app, sessions, _ = estate
    rapalas = asset_id(sessions, "salainen.rapala.test")
    partner, _ = sign_in(app, "partner")
    values = _decide_on_proposals("rapala", [rapalas], decision="reject")
    response = call(app, partner, _proposal_output(app), values)
    assert "hylkääminen vaatii perustelun" in text_of(response)
    with sessions() as session:
        assert session.get(Asset, rapalas).state == "proposed"
    values[(ids.PROPOSAL_REASON, "value")] = "Toimittajan testipalvelin, ei meidän"
    response = call(app, partner, _proposal_output(app), values)
    assert "Hylätty: 1" in text_of(response)
    with sessions() as session:
        asset = session.get(Asset, rapalas)
        assert (asset.state, asset.state_reason) == (
            "rejected",
            "Toimittajan testipalvelin, ei meidän",
        )
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "asset.rejected"))
        assert (event.actor, event.organisation) == ("partner", "rapala")


def test_a_sighting_outside_the_scope_says_whose_scope_it_lies_in(estate, minimal_config):
    # Given Hyvälä's discovery saw a name in Rapala's scope, and Rapala's saw one in nobody's
    app, sessions, _ = estate
    with sessions.begin() as session:
        hyvala = session.scalar(
            select(Asset.organisation_id).where(Asset.value == "uusi.hyvala.test")
        )
        session.add(
            ScopeSighting(
                organisation_id=hyvala,
                value="varaamo.rapala.test",
                kind="name",
                source="cname",
                via="CNAME of liikunta.hyvala.test",
                first_seen=T0,
                last_seen=T0,
            )
        )
    scopes = {o.slug: o.scope for o in minimal_config.organisations}
    with sessions() as session:
        own = views.review_queue(session, {"hyvala"}, "hyvala", scopes=scopes)
        both = views.review_queue(session, {"hyvala", "rapala"}, "hyvala", scopes=scopes)
        rapalas = views.review_queue(session, {"rapala"}, "rapala", scopes=scopes)
    # Then Hyvälä's staff learn it is another organisation's, without its name
    [seen] = own.outside_scope
    assert (seen.in_scope_of, seen.in_another_scope) == ((), True)
    # the partner administrator, whose it is
    [seen] = both.outside_scope
    assert [o.slug for o in seen.in_scope_of] == ["rapala"] and not seen.in_another_scope
    # and a name in no declared scope is simply outside
    [seen] = rapalas.outside_scope
    assert (seen.in_scope_of, seen.in_another_scope) == ((), False)
    staff, _ = sign_in(app, "hyvala-staff")
    page = text_of(
        call(app, staff, "page.children", {(ids.URL, "pathname"): "/org/hyvala/proposals"})
    )
    assert "Toisen organisaation rajauksessa" in page and "Rapalan kunta" not in page
    partner, _ = sign_in(app, "partner")
    page = text_of(
        call(app, partner, "page.children", {(ids.URL, "pathname"): "/org/hyvala/proposals"})
    )
    assert "Rajauksessa: Rapalan kunta" in page
