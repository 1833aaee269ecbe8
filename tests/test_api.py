"""The REST API: its document, personal tokens and their scopes, rate limits, audited
decisions, findings by pages, and the cross-tenant sweep.

Given Hyvälä and Rapala in one store (`tests.two_tenants`), tokens of Hyvälä's staff,
its management viewer, a partner administrator of Hyvälä only, and a partner
administrator of every organisation whose token is narrowed to Hyvälä call every
operation of the OpenAPI document with Rapala's slugs and ids. Nothing of Rapala's may
come back, nothing of Rapala's may change, and the refusals are in the audit trail.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from dashboard.api import OPENAPI_PATH, openapi_document
from riskiturva import api_tokens, auth, tables
from riskiturva.auth import AccountError
from riskiturva.models import Finding
from riskiturva.models_auth import ApiToken, AuditEvent, User
from riskiturva_cli import commands as cli
from tests.conftest import MINIMAL_CONFIG
from tests.two_tenants import NOW, RAPALA_MARKERS, Clock, bearer, make_tokens

ROOT = Path(__file__).resolve().parents[1]
HYVALA_RDP, RAPALA_RDP, RAPALA_AXFR = (
    "127.60.1.10:3389/tcp",
    "127.60.2.10:3389/tcp",
    "127.60.2.10:53/tcp",
)


@pytest.fixture
def api(make_estate):
    """The app on both municipalities, a token per holder, and a moving clock."""
    clock = Clock()
    app, sessions, finding_ids = make_estate(clock)
    return app, sessions, finding_ids, make_tokens(sessions), clock


def audited(sessions, action: str) -> list[AuditEvent]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


# --- the document ----------------------------------------------------------------------


def test_the_served_document_is_the_committed_one_and_every_operation_needs_a_token(api):
    app, _, _, _, _ = api
    served = app.server.test_client().get(OPENAPI_PATH)  # no token: it holds no data
    assert served.status_code == 200 and served.mimetype == "application/json"
    committed = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert served.get_data(as_text=True) == committed == openapi_document()
    document = json.loads(committed)
    assert document["openapi"] == "3.1.0"
    operations = [op for item in document["paths"].values() for op in item.values()]
    assert len(operations) == 15
    for operation in operations:
        assert operation["security"] == [{"token": []}], operation["operationId"]
        assert {"401", "422", "429"} <= set(operation["responses"]), operation["operationId"]


def test_unknown_paths_and_methods_answer_in_json(api):
    app, _, _, tokens, _ = api
    client = app.server.test_client()
    for path in ("/api/v1/nothing", "/api/v1/findings/1/nothing", "/api/v1"):
        response = client.get(path, headers=bearer(tokens["staff"]))
        assert (response.status_code, response.json) == (404, {"error": "no such resource"})
    response = client.delete("/api/v1/organisations", headers=bearer(tokens["staff"]))
    assert response.status_code == 405 and "error" in response.json
    assert "GET" in response.headers["Allow"]


# --- tokens -------------------------------------------------------------------------------


def test_without_a_live_token_nothing_is_served(api):
    app, sessions, _, tokens, clock = api
    client = app.server.test_client()
    path = "/api/v1/organisations"
    for headers in ({}, bearer("rkt_forged"), bearer("nonsense"), {"Authorization": "Basic x"}):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="riskiturva"'
    assert client.get(path, headers=bearer(tokens["staff"])).status_code == 200
    # Revoked: at once
    with sessions.begin() as session:
        [own] = [
            t for t in api_tokens.list_tokens(session, "hyvala-staff") if t.name == "test staff"
        ]
        api_tokens.revoke_token(session, own.id, now=clock(), actor="hyvala-staff")
    assert client.get(path, headers=bearer(tokens["staff"])).status_code == 401
    # A disabled account's tokens stop with it
    assert client.get(path, headers=bearer(tokens["viewer"])).status_code == 200
    with sessions.begin() as session:
        auth.disable_user(session, "hyvala-boss", now=clock())
    assert client.get(path, headers=bearer(tokens["viewer"])).status_code == 401
    # Expired: 90 days by default
    clock.now = NOW + dt.timedelta(days=90)
    assert client.get(path, headers=bearer(tokens["partner"])).status_code == 401


def test_the_dashboards_session_cookie_does_not_open_the_api(api):
    from tests.test_dashboard_access import sign_in

    app, _, _, _, _ = api
    client, response = sign_in(app, "partner")
    assert response.status_code == 302 and client.get("/_dash-layout").status_code == 200
    assert client.get("/api/v1/organisations").status_code == 401


def test_a_token_is_shown_once_and_stored_as_a_hash(sessions, minimal_config):
    from riskiturva.store import sync_config

    with sessions.begin() as session:
        sync_config(session, minimal_config)
        auth.create_user(
            session,
            username="it",
            password="correct horse battery",
            role="org_staff",
            organisations=["hyvala"],
            now=NOW,
        )
        created = api_tokens.create_token(session, "it", name="Jira", now=NOW, actor="it")
    assert re.fullmatch(r"rkt_[A-Za-z0-9_-]{43}", created.secret)
    with sessions() as session:
        [row] = session.scalars(select(ApiToken))
        columns = {c.name: getattr(row, c.name) for c in ApiToken.__table__.columns}
        listed = api_tokens.list_tokens(session, "it")
    assert row.token_hash == hashlib.sha256(created.secret.encode()).hexdigest()
    assert not any(created.secret in str(value) for value in columns.values())
    assert created.secret.startswith(row.prefix) and len(row.prefix) == 12
    assert [t.id for t in listed] == [row.id] and created.secret not in repr(listed)
    assert (row.scope, row.organisations) == ("read", [])
    assert row.expires_at == NOW + dt.timedelta(days=90)
    [event] = audited(sessions, "token.created")
    assert (event.actor, event.target, event.organisation) == ("it", "it", "hyvala")


def test_a_token_can_only_narrow_its_holders_rights(api):
    _, sessions, _, _, _ = api
    refusals = {
        ("hyvala-boss", "decide", ()): "cannot decide",
        ("partner", "decide", ()): "cannot decide",
        ("hyvala-staff", "read", ("rapala",)): "not among hyvala-staff's organisations",
        ("hyvala-partner", "read", ("hyvala", "rapala")): "not among",
        ("hyvala-staff", "write", ()): "not a token scope",
    }
    with sessions.begin() as session:
        for (user, scope, orgs), message in refusals.items():
            with pytest.raises(AccountError, match=message):
                api_tokens.create_token(
                    session, user, name="x", scope=scope, organisations=orgs, now=NOW, actor="t"
                )
        for days in (0, 367):
            with pytest.raises(AccountError, match="1–366 days"):
                api_tokens.create_token(session, "partner", name="x", days=days, now=NOW, actor="t")
        for name in ("", "  ", "a\nb", "x" * 101):
            with pytest.raises(AccountError, match="needs a name"):
                api_tokens.create_token(session, "partner", name=name, now=NOW, actor="t")


def test_me_says_whom_the_token_acts_as_and_how_far(api):
    app, _, _, tokens, _ = api
    client = app.server.test_client()
    me = client.get("/api/v1/me", headers=bearer(tokens["partner-narrowed"])).json
    assert me | {"expires_at": None} == {
        "username": "partner",
        "role": "partner_admin",
        "scope": "read",
        "token": "test partner-narrowed",
        "organisations": ["hyvala"],
        "expires_at": None,
    }
    assert client.get("/api/v1/me", headers=bearer(tokens["partner"])).json["organisations"] == [
        "hyvala",
        "rapala",
    ]


# --- reads ------------------------------------------------------------------------------


def test_findings_come_by_pages_and_filters_narrow_them(api):
    app, _, finding_ids, tokens, _ = api
    client = app.server.test_client()

    def ids_of(**query: Any) -> list[int]:
        response = client.get(
            "/api/v1/findings", query_string=query, headers=bearer(tokens["partner"])
        )
        assert response.status_code == 200, response.json
        return [f["id"] for f in response.json["items"]]

    everything = sorted(finding_ids.values())
    assert ids_of() == everything
    pages, cursor = [], None
    while True:
        query = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/findings", query_string=query, headers=bearer(tokens["partner"]))
        pages.append([f["id"] for f in page.json["items"]])
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    assert pages == [[i] for i in everything]
    rdp = [finding_ids[HYVALA_RDP], finding_ids[RAPALA_RDP]]
    assert ids_of(status="accepted") == [finding_ids[RAPALA_AXFR]]
    assert ids_of(status=["open", "accepted"]) == everything
    # The registry's severity (critical), not the stored one (high)
    assert ids_of(severity="critical") == sorted(rdp)
    assert ids_of(severity="high", category="dns") == [finding_ids[RAPALA_AXFR]]
    assert ids_of(category="services") == sorted(rdp)
    assert ids_of(asset="127.60.1.10") == [finding_ids[HYVALA_RDP]]
    assert ids_of(organisation="rapala", asset="127.60.1.10") == []
    assert ids_of(since=(NOW - dt.timedelta(days=39)).isoformat()) == []
    assert ids_of(since=(NOW - dt.timedelta(days=41)).isoformat()) == everything
    response = client.get(
        "/api/v1/findings",
        query_string={"since": "2026-11-02T08:00:00"},
        headers=bearer(tokens["partner"]),
    )
    assert response.status_code == 422  # a moment without its zone is ambiguous


def test_a_finding_comes_with_its_history_and_the_decision_in_force(api):
    app, _, finding_ids, tokens, _ = api
    client = app.server.test_client()
    response = client.get(
        f"/api/v1/findings/{finding_ids[RAPALA_AXFR]}", headers=bearer(tokens["partner"])
    ).json
    assert response["finding"]["check_id"] == "dns.axfr.open"
    assert response["organisation"]["names"]["fi"] == "Rapalan kunta"
    assert response["decision"]["reason"] == "salainen siirto ensi kuussa"
    assert [e["kind"] for e in response["events"]] == ["opened", "accepted"]


def test_scores_priorities_exceptions_assets_proposals_and_scans(api):
    app, _, _, tokens, _ = api
    client = app.server.test_client()

    def get(path: str, **query: Any) -> Any:
        response = client.get(
            f"/api/v1/organisations/rapala{path}",
            query_string=query,
            headers=bearer(tokens["partner"]),
        )
        assert response.status_code == 200, (path, response.json)
        return response.json

    score = get("/score", language="sv", target="A")
    assert score["organisation"] == "rapala" and score["grade"] in "ABCDF"
    assert score["plan"]["target"] == "A" and score["explanation"]
    assert score["excluded"][0]["reason"] == "salainen siirto ensi kuussa"
    priorities = get("/priorities", language="en")["items"]
    assert priorities[0]["check_id"] == "services.exposed.rdp"
    assert (
        priorities[0]["title"] == "Remote Desktop (RDP) exposed to the internet"
        or priorities[0]["title"]
    )
    [entry] = get("/exceptions")["entries"]
    assert (entry["check_id"], entry["decided_by"]) == ("dns.axfr.open", "rapala-it")
    assets = {a["value"]: a for a in get("/assets")["items"]}
    assert assets["salainen.rapala.test"]["state"] == "proposed"
    assert assets["127.60.2.10"]["origin"] == "configuration"
    proposals = get("/proposals")
    assert [a["value"] for a in proposals["new_assets"]] == ["salainen.rapala.test"]
    assert proposals["new_assets"][0]["evidence"][0]["source"] == "nsec"
    assert [s["value"] for s in proposals["outside_scope"]] == ["salainen-toimittaja.test"]
    [run] = get("/scans", limit=5)["items"]
    assert run["status"] == "partial" and run["counts"] == {"targets": 3}
    assert [e["message"] for e in run["errors"]] == ["rapala timed out (salainen)"]


def test_a_management_viewer_reads_summaries_only(api):
    app, sessions, finding_ids, tokens, _ = api
    client = app.server.test_client()
    headers = bearer(tokens["viewer"])
    for path in (
        "/organisations",
        "/organisations/hyvala/score",
        "/organisations/hyvala/exceptions",
    ):
        assert client.get(f"/api/v1{path}", headers=headers).status_code == 200, path
    for path in (
        "/findings",
        f"/findings/{finding_ids[HYVALA_RDP]}",
        "/organisations/hyvala/assets",
        "/organisations/hyvala/proposals",
        "/organisations/hyvala/scans",
    ):
        response = client.get(f"/api/v1{path}", headers=headers)
        assert response.status_code == 403 and "management viewers" in response.json["error"]
    refused = audited(sessions, "request.refused")
    assert len(refused) == 5 and {e.actor for e in refused} == {"hyvala-boss"}
    assert {e.detail["via"] for e in refused} == {"api"}
    # The partner administrator reads them on the audit page, with the token named
    from dashboard import ids
    from tests.test_dashboard_access import call, sign_in, text_of

    partner, _ = sign_in(app, "hyvala-partner")
    page = text_of(call(app, partner, "page.children", {(ids.URL, "pathname"): "/audit"}))
    token = refused[0].detail["token"]
    assert f"ei sallittu roolille; API-tunnisteella {token}" in page


# --- decisions ---------------------------------------------------------------------------


def test_staff_decide_through_a_decide_token_and_it_is_audited_like_the_page(api):
    app, sessions, finding_ids, tokens, _ = api
    client = app.server.test_client()
    own = finding_ids[HYVALA_RDP]
    until = (NOW.date() + dt.timedelta(days=30)).isoformat()
    body = {"reason": "Korjataan joulukuussa", "until": until}
    # A read token of the same person may not
    response = client.post(
        f"/api/v1/findings/{own}/accept", json=body, headers=bearer(tokens["staff-read"])
    )
    assert response.status_code == 403 and "scope `decide`" in response.json["error"]
    response = client.post(
        f"/api/v1/findings/{own}/accept", json=body, headers=bearer(tokens["staff"])
    )
    assert response.status_code == 200, response.json
    assert response.json["finding"]["status"] == "accepted"
    assert response.json["decision"]["until"].startswith(until)
    [event] = audited(sessions, "finding.accepted")
    assert (event.actor, event.organisation, event.target, event.note) == (
        "hyvala-staff",
        "hyvala",
        str(own),
        "Korjataan joulukuussa",
    )
    assert event.detail["via"] == "api" and event.detail["check_id"] == "services.exposed.rdp"
    # Revoke: the finding is open again; revoking twice is a conflict
    revoke = {"reason": "Väärä päätös"}
    response = client.post(
        f"/api/v1/findings/{own}/revoke", json=revoke, headers=bearer(tokens["staff"])
    )
    assert response.json["finding"]["status"] == "open" and response.json["decision"] is None
    assert audited(sessions, "finding.revoked")[0].detail["revoked"] == "accepted"
    response = client.post(
        f"/api/v1/findings/{own}/revoke", json=revoke, headers=bearer(tokens["staff"])
    )
    assert response.status_code == 409
    # False positive, then the limits of the date
    response = client.post(
        f"/api/v1/findings/{own}/false-positive", json=body, headers=bearer(tokens["staff"])
    )
    assert response.json["finding"]["status"] == "false_positive"
    for day in (NOW.date(), NOW.date() + dt.timedelta(days=731)):
        response = client.post(
            f"/api/v1/findings/{own}/accept",
            json=body | {"until": day.isoformat()},
            headers=bearer(tokens["staff"]),
        )
        assert response.status_code == 400, day
    for bad in ({"reason": " ", "until": until}, {"until": until}, {"reason": "x", "until": "x"}):
        response = client.post(
            f"/api/v1/findings/{own}/accept", json=bad, headers=bearer(tokens["staff"])
        )
        assert response.status_code == 422, bad


# --- spreadsheets ------------------------------------------------------------------------


def test_tables_come_as_csv_and_xlsx_within_the_tokens_reach_and_are_audited(api):
    app, sessions, _, tokens, _ = api
    client = app.server.test_client()
    response = client.get(
        "/api/v1/exports/findings",
        query_string={"status": "open"},
        headers=bearer(tokens["staff"]),
    )
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="findings-all-{NOW.date().isoformat()}.csv"'
    )
    rows = list(csv.reader(io.StringIO(shown(response)), delimiter=";"))
    assert rows[0][:4] == ["Organisaatio", "Vakavuus", "Havainto", "Kohta"]
    assert [r[0] for r in rows[1:]] == ["Hyvälän kunta"]
    english = client.get(
        "/api/v1/exports/exceptions",
        query_string={"format": "xlsx", "language": "en", "organisation": "rapala"},
        headers=bearer(tokens["partner"]),
    )
    assert english.mimetype == tables.MEDIA_TYPES[tables.Format.XLSX]
    assert "salainen siirto ensi kuussa" in shown(english)  # Rapala's, to Rapala's partner
    narrowed = client.get("/api/v1/exports/portfolio", headers=bearer(tokens["partner-narrowed"]))
    assert "Hyvälän kunta" in shown(narrowed) and "Rapala" not in shown(narrowed)
    viewer = bearer(tokens["viewer"])
    assert client.get("/api/v1/exports/findings", headers=viewer).status_code == 403
    assert client.get("/api/v1/exports/priorities", headers=viewer).status_code == 403
    assert client.get("/api/v1/exports/exceptions", headers=viewer).status_code == 200
    assert client.get("/api/v1/exports/nothing", headers=viewer).status_code == 422
    exported = audited(sessions, "findings.exported")
    assert [(e.actor, e.detail["format"], e.detail["via"]) for e in exported] == [
        ("hyvala-staff", "csv", "api")
    ]
    registers = [
        (e.actor, e.organisation, e.detail["format"])
        for e in audited(sessions, "exceptions.exported")
    ]
    assert registers == [("partner", "rapala", "xlsx"), ("hyvala-boss", "hyvala", "csv")]


# --- rate limits --------------------------------------------------------------------------


def test_each_token_has_its_own_rate_limit(make_estate):
    app, sessions, _ = make_estate(api_requests_per_minute=3)
    tokens = make_tokens(sessions, "staff", "partner")
    client = app.server.test_client()
    statuses = [
        client.get("/api/v1/me", headers=bearer(tokens["staff"])).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    limited = client.get("/api/v1/me", headers=bearer(tokens["staff"]))
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json == {"error": "too many requests with this token"}
    assert client.get("/api/v1/me", headers=bearer(tokens["partner"])).status_code == 200


# --- the command line ---------------------------------------------------------------------


def test_the_tokens_commands_create_list_and_revoke(tmp_path):
    config = tmp_path / "riskiturva.toml"
    config.write_text(MINIMAL_CONFIG.replace('data_dir = "data"', f'data_dir = "{tmp_path}"'))
    runner = CliRunner()

    def run(*args: str, **kwargs: Any):
        return runner.invoke(cli.main, [*args, "--config", str(config)], **kwargs)

    assert (
        run(
            "users",
            "add",
            "it",
            "--role",
            "org_staff",
            "--org",
            "hyvala",
            "--password-stdin",
            input="correct horse battery\n",
        ).exit_code
        == 0
    )
    created = run("tokens", "create", "it", "--name", "Jira", "--scope", "decide", "--days", "30")
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert re.fullmatch(r"rkt_[A-Za-z0-9_-]{43}", secret)
    assert "shown this once" in created.stderr
    refused = run("tokens", "create", "it", "--name", "x", "--org", "rapala")
    assert refused.exit_code == 2 and "not among it's organisations: rapala" in refused.stderr
    listed = json.loads(run("tokens", "list", "it", "--format", "json").stdout)
    assert [(t["name"], t["scope"], t["live"]) for t in listed] == [("Jira", "decide", True)]
    assert secret not in run("tokens", "list").stdout
    assert run("tokens", "revoke", str(listed[0]["id"])).exit_code == 0
    listed = json.loads(run("tokens", "list", "--format", "json").stdout)
    assert listed[0]["live"] is False and listed[0]["revoked_at"]
    again = run("tokens", "revoke", str(listed[0]["id"]))
    assert again.exit_code == 2 and "revoked already" in again.stderr


# --- the cross-tenant sweep ----------------------------------------------------------------

SWEEP_HOLDERS = ("staff", "viewer", "partner-of-hyvala", "partner-narrowed")


def rapala_values(finding_ids: dict[str, int]) -> dict[str, list[Any]]:
    """Values a forger would put in each parameter, all aimed at Rapala."""
    rapala = [finding_ids[RAPALA_RDP], finding_ids[RAPALA_AXFR]]
    return {
        "slug": ["rapala", "RAPALA", "rapala%20", "hyvala%2F..%2Frapala", "rapala.json"],
        "finding_id": [*rapala, f"0{rapala[0]}", f"{rapala[0]}.0", -rapala[0], 10**30],
        "organisation": [["rapala"], ["hyvala", "rapala"], ["RAPALA"]],
        "asset": [["127.60.2.10"]],
        "status": [["open", "accepted"]],
        "cursor": ["0"],
        "kind": ["findings", "priorities", "exceptions", "portfolio"],
        "format": ["csv", "xlsx"],
    }


def sweep_requests(finding_ids: dict[str, int]) -> list[tuple[str, str, dict[str, Any], Any]]:
    """(method, path, query, body) for every operation of the document, with each of
    Rapala's values in its parameters."""
    document = json.loads(openapi_document())
    values = rapala_values(finding_ids)
    until = (NOW.date() + dt.timedelta(days=30)).isoformat()
    bodies = {"post": {"reason": "väärennetty päätös", "until": until}}
    requests = []
    for template, item in document["paths"].items():
        for method, operation in item.items():
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
            queries = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            paths = [template]
            for name in names:
                paths = [p.replace(f"{{{name}}}", str(v)) for p in paths for v in values[name]]
            for path in paths:
                requests.append((method, path, {}, bodies.get(method)))
                for name in queries:
                    for value in values.get(name, []):
                        requests.append((method, path, {name: value}, bodies.get(method)))
    return requests


def shown(response) -> str:
    """What a response shows: JSON decoded, a CSV as text, an XLSX (a zip) as the text of
    every part of it."""
    data = response.get_data()
    if data.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "".join(archive.read(n).decode("utf-8") for n in archive.namelist())
    if response.is_json:
        return json.dumps(response.json, ensure_ascii=False)
    return data.decode("utf-8-sig")


def test_no_token_of_hyvalas_gets_anything_of_rapalas(api):
    app, sessions, finding_ids, tokens, _ = api
    client = app.server.test_client()
    with sessions() as session:
        before = {f.id: (f.status, f.decision_reason) for f in session.scalars(select(Finding))}
    requests = sweep_requests(finding_ids)
    results: Counter[tuple[str, int]] = Counter()
    for holder in SWEEP_HOLDERS:
        for method, path, query, body in requests:
            response = client.open(
                path,
                method=method.upper(),
                query_string=query,
                json=body,
                headers=bearer(tokens[holder]),
            )
            results[holder, response.status_code] += 1
            text = shown(response)
            assert response.status_code < 500, (holder, method, path, query, text)
            leaked = [m for m in RAPALA_MARKERS if m in text]
            assert not leaked, (holder, method, path, query, leaked, text[:300])
    operations = {(m, p.split("?")[0]) for m, p, _, _ in requests}
    assert len(requests) >= 60 and len(operations) >= 15
    # Only staff got past the role check of a decision; none changed Rapala's findings
    with sessions() as session:
        after = {f.id: (f.status, f.decision_reason) for f in session.scalars(select(Finding))}
    assert after == before
    assert not audited(sessions, "finding.accepted") and not audited(sessions, "finding.revoked")
    assert audited(sessions, "access.refused")  # each miss of a real route is on record
    print(f"sweep: {len(requests)} requests × {len(SWEEP_HOLDERS)} tokens: {dict(results)}")


# --- the dashboard's page of one's own tokens ---------------------------------------------


def test_people_create_list_and_revoke_their_own_tokens_on_the_dashboard(api):
    from dashboard import ids
    from tests.dashboard_http import output_of
    from tests.test_dashboard_access import call, sign_in, text_of
    from tests.two_tenants import rapala_token_id

    app, sessions, _, _, _ = api
    client, _ = sign_in(app, "hyvala-staff")
    page = text_of(call(app, client, "page.children", {(ids.URL, "pathname"): "/tokens"}))
    assert "API-tunnisteet" in page and "Lukeminen ja päätökset havainnoista" in page
    assert "test staff" in page and "Rapalan Jira" not in page  # her own only
    output = output_of(app, ids.TOKEN_MESSAGE)
    form = {
        (ids.TOKEN_CREATE, "n_clicks"): 1,
        (ids.TOKEN_NAME, "value"): "TOPdesk",
        (ids.TOKEN_SCOPE, "value"): "decide",
        (ids.TOKEN_ORGS, "value"): ["hyvala"],
        (ids.TOKEN_DAYS, "value"): 30,
    }
    created = call(app, client, output, form, changed=[(ids.TOKEN_CREATE, "n_clicks")])
    secret = re.search(r"rkt_[A-Za-z0-9_-]{43}", text_of(created)).group(0)
    me = app.server.test_client().get("/api/v1/me", headers=bearer(secret)).json
    assert (me["scope"], me["organisations"], me["token"]) == ("decide", ["hyvala"], "TOPdesk")
    [event] = [e for e in audited(sessions, "token.created") if e.actor == "hyvala-staff"][-1:]
    assert (event.detail["name"], event.address) == ("TOPdesk", "127.0.0.1")
    listed = text_of(call(app, client, "page.children", {(ids.URL, "pathname"): "/tokens"}))
    assert secret[:12] in listed and secret not in listed  # shown once, then only its start
    # Rapala's token cannot be revoked from here, and the attempt is on record
    revoke = {
        (ids.TOKEN_REVOKE, "n_clicks"): 1,
        (ids.TOKEN_REVOKE_ID, "value"): rapala_token_id(sessions),
    }
    refused = call(app, client, output, revoke, changed=[(ids.TOKEN_REVOKE, "n_clicks")])
    assert "Peruttu:" not in text_of(refused)
    with sessions() as session:
        assert session.get(ApiToken, rapala_token_id(sessions)).revoked_at is None
    assert audited(sessions, "access.refused")[-1].detail == {"what": "token"}
    # Her own: at once
    with sessions() as session:
        own = session.scalar(select(ApiToken.id).where(ApiToken.name == "TOPdesk"))
    revoke[(ids.TOKEN_REVOKE_ID, "value")] = own
    revoked = call(app, client, output, revoke, changed=[(ids.TOKEN_REVOKE, "n_clicks")])
    assert "Peruttu: TOPdesk" in text_of(revoked)
    assert app.server.test_client().get("/api/v1/me", headers=bearer(secret)).status_code == 401
    # A management viewer is offered reading only, and cannot ask for more
    boss, _ = sign_in(app, "hyvala-boss")
    page = text_of(call(app, boss, "page.children", {(ids.URL, "pathname"): "/tokens"}))
    assert "Vain lukeminen" in page and "Lukeminen ja päätökset" not in page
    refused = call(app, boss, output, form, changed=[(ids.TOKEN_CREATE, "n_clicks")])
    assert "Anna tunnisteelle nimi" in text_of(refused)
    with sessions() as session:
        held = (
            select(ApiToken.id)
            .join(User)
            .where(User.username == "hyvala-boss", ApiToken.name == "TOPdesk")
        )
        assert session.scalar(held) is None


def test_findings_by_pages_and_tokens_on_sqlite_and_postgresql(sessions, minimal_config):
    """The read model's pages and the tokens' narrowing, on both databases."""
    from riskiturva import views
    from riskiturva.checks import load_registry
    from tests.two_tenants import seed

    finding_ids = seed(sessions, minimal_config)
    registry = load_registry()
    with sessions() as session:
        first = views.findings_page(session, {"hyvala", "rapala"}, registry=registry, limit=2)
        rest = views.findings_page(
            session, {"hyvala", "rapala"}, registry=registry, after=first.next_after, limit=2
        )
        critical = views.findings_page(
            session, {"rapala"}, registry=registry, severities=["critical"], categories=["services"]
        )
        changed = views.findings_page(
            session, {"rapala"}, registry=registry, since=NOW - dt.timedelta(days=39)
        )
    assert [r.id for r in first.rows + rest.rows] == sorted(finding_ids.values())
    assert rest.next_after is None
    assert [r.id for r in critical.rows] == [finding_ids[RAPALA_RDP]]
    assert changed.rows == ()
    with sessions.begin() as session:
        secret = api_tokens.create_token(
            session, "partner", name="BI", organisations=["rapala"], now=NOW, actor="t"
        ).secret
    with sessions.begin() as session:
        holder = api_tokens.authenticate(session, secret, now=NOW)
        assert holder is not None
        assert (holder.viewer.visible, holder.viewer.read_only) == (frozenset({"rapala"}), True)
        assert not holder.viewer.all_organisations and not holder.viewer.can_review_assets
        assert api_tokens.authenticate(session, secret + "x", now=NOW) is None
