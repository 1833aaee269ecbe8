"""Who sees what: sign-in, sessions, CSRF, and the cross-tenant test.

Given two municipalities in one store, staff of Hyvälä sign in and send hand-crafted
`/_dash-update-component` requests to every callback of the app, with every route and
every id that names Rapala's organisation, findings and exports. Nothing of Rapala's may
come back, and nothing of Rapala's may change.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from dash import Input, Output
from sqlalchemy import delete, func, select

import dashboard
from dashboard import ids
from dashboard.security import CSRF_HEADER, unsecured_callbacks
from riskiturva import auth, views
from riskiturva.checks import load_registry
from riskiturva.models import (
    Asset,
    AssetEvidence,
    ChangeEvent,
    Finding,
    FindingEvent,
    FindingStatus,
    ScanError,
    ScanRun,
    ScopeSighting,
    SubjectState,
)
from riskiturva.models_auth import AuditEvent
from riskiturva.store import NotVisible, ObservedFinding, decide, reconcile, sync_config
from tests.conftest import T0

PASSWORD = "correct horse battery"
NOW = T0 + dt.timedelta(days=40)
RAPALA_MARKERS = ("rapala", "Rapala", "127.60.2.", "salainen")


def _observed(check_id: str, subject: str, category: str, severity: str, **evidence: Any):
    return ObservedFinding(
        check_id=check_id,
        subject=subject,
        target=subject,
        asset=subject.split(":")[0],
        category=category,
        severity=severity,
        evidence=evidence,
        reproduce=f"nmap -Pn -p 3389 {subject.split(':')[0]}",
    )


def seed(sessions, config) -> dict[str, int]:
    """Both municipalities with findings, a run with errors, subject states and users."""
    with sessions.begin() as session:
        orgs = sync_config(session, config)
        run = ScanRun(
            collector="services",
            organisations=["hyvala", "rapala"],
            status="partial",
            started_at=T0,
            finished_at=T0 + dt.timedelta(minutes=1),
            counts={"targets": 3},
        )
        session.add(run)
        session.flush()
        reconcile(
            session,
            organisation=orgs["hyvala"],
            collector="services",
            run_id=run.id,
            observed=[
                _observed(
                    "services.exposed.rdp",
                    "127.60.1.10:3389/tcp",
                    "services",
                    "high",
                    banner="Microsoft Terminal Services",
                )
            ],
            scanned_ok={"127.60.1.10:3389/tcp"},
            now=T0,
        )
        reconcile(
            session,
            organisation=orgs["rapala"],
            collector="services",
            run_id=run.id,
            observed=[
                _observed(
                    "services.exposed.rdp",
                    "127.60.2.10:3389/tcp",
                    "services",
                    "high",
                    banner="<script>alert('salainen')</script>",
                ),
                _observed("dns.axfr.open", "127.60.2.10:53/tcp", "dns", "high"),
            ],
            scanned_ok={"127.60.2.10:3389/tcp"},
            now=T0,
        )
        session.flush()
        # Rapala's own decision: a forger must not revoke it, nor read its reason.
        axfr = session.scalar(select(Finding).where(Finding.subject == "127.60.2.10:53/tcp"))
        decide(
            session,
            finding_id=axfr.id,
            visible=["rapala"],
            decision=FindingStatus.ACCEPTED,
            actor="rapala-it",
            reason="salainen siirto ensi kuussa",
            until=NOW + dt.timedelta(days=10),
            now=T0,
        )
        for slug, ip in (("hyvala", "127.60.1.11"), ("rapala", "127.60.2.10")):
            session.add(
                ScanError(
                    run_id=run.id,
                    organisation_id=orgs[slug].id,
                    subject=ip,
                    asset=ip,
                    kind="timeout",
                    message=f"{slug} timed out" + (" (salainen)" if slug == "rapala" else ""),
                )
            )
            session.add(
                SubjectState(
                    organisation_id=orgs[slug].id,
                    collector="services",
                    subject=ip,
                    asset=ip,
                    last_status="ok",
                    last_scanned_at=T0,
                    last_success_at=T0,
                    last_run_id=run.id,
                )
            )
        for slug, name in (("hyvala", "uusi.hyvala.test"), ("rapala", "salainen.rapala.test")):
            propose(session, orgs[slug].id, name, run_id=run.id)
        session.add(
            ScopeSighting(
                organisation_id=orgs["rapala"].id,
                value="salainen-toimittaja.test",
                kind="name",
                source="cname",
                via="CNAME of vanha.rapala.test",
                first_seen=T0,
                last_seen=T0,
            )
        )
        for username, role, org in (
            ("hyvala-staff", auth.Role.ORG_STAFF, ["hyvala"]),
            ("hyvala-boss", auth.Role.VIEWER, ["hyvala"]),
            ("partner", auth.Role.PARTNER_ADMIN, []),
        ):
            auth.create_user(
                session, username=username, password=PASSWORD, role=role, organisations=org, now=T0
            )
        rows = session.execute(select(Finding.subject, Finding.id)).all()
    return {subject: finding_id for subject, finding_id in rows}


def propose(session, organisation_id: int, name: str, *, run_id: int) -> Asset:
    """A discovered asset waiting for review, seen in its zone's NSEC chain."""
    asset = Asset(
        organisation_id=organisation_id,
        kind="host",
        value=name,
        criticality="medium",
        tags=[],
        dkim_selectors=[],
        origin="discovered",
        state="proposed",
        first_seen=T0,
        last_seen=T0,
        gone_runs=0,
    )
    zone = name.split(".", 1)[1]
    asset.evidence.append(
        AssetEvidence(
            source="nsec",
            via=f"NSEC chain of {zone}",
            detail={"next": f"www.{zone}"},
            first_seen=T0,
            last_seen=T0,
            last_run_id=run_id,
        )
    )
    session.add(asset)
    session.flush()
    session.add(
        ChangeEvent(
            organisation_id=organisation_id,
            kind="asset.proposed",
            subject=name,
            asset_id=asset.id,
            run_id=run_id,
            at=NOW - dt.timedelta(days=1),
            detail={"kind": "host", "sources": ["nsec"]},
        )
    )
    return asset


def asset_id(sessions, value: str) -> int:
    with sessions() as session:
        return session.scalar(select(Asset.id).where(Asset.value == value))


@pytest.fixture
def estate(tmp_path, minimal_config):
    from riskiturva import db
    from riskiturva.store import make_engine, session_factory

    engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    db.upgrade(engine)
    sessions = session_factory(engine)
    config = minimal_config.model_copy(
        update={"settings": minimal_config.settings.model_copy(update={"data_dir": tmp_path})}
    )
    finding_ids = seed(sessions, config)
    app = dashboard.create_app(config, sessions, clock=lambda: NOW)
    yield app, sessions, finding_ids
    engine.dispose()


def sign_in(app, username: str, password: str = PASSWORD, *, address: str = "127.0.0.1"):
    client = app.server.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login",
        data={"csrf": token, "username": username, "password": password, "next": "/"},
        environ_base={"REMOTE_ADDR": address},
    )
    return client, response


def text_of(response) -> str:
    """The response as a reader would see it (JSON decoded, so "ä" is not "\\u00e4")."""
    if response.is_json:
        return json.dumps(response.json, ensure_ascii=False)
    return response.get_data(as_text=True)


def csrf_of(client) -> str:
    cookie = client.get_cookie("_csrf_token")
    assert cookie is not None
    return cookie.value


def call(app, client, output: str, values: dict[tuple[str, str], Any], *, csrf: str | None = ""):
    """POST one callback as the renderer would, with the given input and state values."""
    spec = app.callback_map[output]

    def items(kind: str) -> list[dict[str, Any]]:
        return [
            {
                "id": d["id"],
                "property": d["property"],
                "value": values.get((d["id"], d["property"])),
            }
            for d in spec[kind]
        ]

    outputs = [
        {"id": o.split(".")[0], "property": o.split(".")[1]} for o in output.strip(".").split("...")
    ]
    body = {
        "output": output,
        "outputs": outputs if output.startswith("..") else outputs[0],
        "inputs": items("inputs"),
        "state": items("state"),
        "changedPropIds": [f"{d['id']}.{d['property']}" for d in spec["inputs"]],
    }
    headers = {} if csrf is None else {CSRF_HEADER: csrf or csrf_of(client)}
    return client.post("/_dash-update-component", json=body, headers=headers)


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
    assert "Kirjaudu" in client.get("/login").get_data(as_text=True)


def test_session_cookie_is_httponly_samesite_and_signed_with_a_generated_key(estate, tmp_path):
    app, _, _ = estate
    client, response = sign_in(app, "hyvala-staff")
    assert response.status_code == 302
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if "riskiturva_session" in h)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    key_file = tmp_path / "dashboard-secret.key"
    assert key_file.stat().st_mode & 0o077 == 0
    assert app.server.secret_key == key_file.read_text().strip().encode()
    assert client.get("/_dash-layout").status_code == 200


def test_wrong_password_and_rate_limit_are_audited(estate):
    app, sessions, _ = estate
    for _attempt in range(5):
        _, response = sign_in(app, "hyvala-staff", "wrong password!", address="127.0.0.9")
        assert response.status_code == 401
    _, response = sign_in(app, "hyvala-staff", address="127.0.0.9")  # right, but too late
    assert response.status_code == 429
    _, response = sign_in(app, "partner", address="127.0.0.9")  # same address, other name
    assert response.status_code == 429
    with sessions() as session:
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-7:] == ["login.failed"] * 5 + ["login.throttled"] * 2


def test_callbacks_need_the_csrf_header(estate):
    app, _, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    route = {(ids.URL, "pathname"): "/org/hyvala"}
    assert call(app, client, "page.children", route, csrf=None).status_code == 403
    assert call(app, client, "page.children", route, csrf="forged").status_code == 403
    assert call(app, client, "page.children", route).status_code == 200


def test_disabling_or_a_new_password_ends_existing_sessions(estate):
    app, sessions, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    assert client.get("/_dash-layout").status_code == 200
    with sessions.begin() as session:
        auth.set_password(session, "hyvala-staff", "another long password", now=NOW)
    assert client.get("/_dash-layout").status_code == 401


def test_sign_out_clears_the_session(estate):
    app, _, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    response = call(app, client, "redirect.href", {(ids.SIGN_OUT, "n_clicks"): 1})
    assert response.json["response"]["redirect"]["href"] == "/login"
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
    rapala_finding: int, rapala_accepted: int, rapala_asset: int, hyvala_asset: int
) -> dict[tuple[str, str], list[Any]]:
    """Values a forger would try for each callback input and state, all aimed at Rapala."""
    return {
        (ids.URL, "pathname"): [
            *ROUTES,
            f"/findings/{rapala_finding}",
            "/findings/999999999999",
            5,
        ],
        (ids.URL, "search"): ["", "?status=open&status=resolved", 7],
        (ids.SIGN_OUT, "n_clicks"): [None],
        (ids.FINDINGS_ORG, "data"): ["rapala", ["rapala"], {"slug": "rapala"}],
        (ids.FILTER_CATEGORY, "value"): [None, 5, {"x": 1}, "high"],
        (ids.FILTER_SEVERITY, "value"): [None, 5, {"x": 1}, "high"],
        (ids.FILTER_STATUS, "value"): [["open", "resolved"]],
        (ids.FILTER_ASSET, "value"): [None, ["127.60.2.10"]],
        (ids.FILTER_REQUIREMENT, "value"): [None, ["tiedonhallintalaki.15_1_integrity"], "x"],
        (ids.EXPORT, "n_clicks"): [1],
        (ids.FINDING_ID, "data"): [rapala_finding, str(rapala_finding), 10**30, "x", None],
        (ids.DECIDE_SUBMIT, "n_clicks"): [1],
        (ids.DECIDE_KIND, "value"): ["accepted", "false_positive"],
        (ids.DECIDE_REASON, "value"): ["hyväksytty"],
        (ids.DECIDE_UNTIL, "value"): [(NOW.date() + dt.timedelta(days=30)).isoformat()],
        (ids.REVOKE_SUBMIT, "n_clicks"): [1],
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
    }


def test_staff_of_one_municipality_get_nothing_of_another(estate):
    app, sessions, finding_ids = estate
    rapala_finding = finding_ids["127.60.2.10:3389/tcp"]
    rapala_accepted = finding_ids["127.60.2.10:53/tcp"]
    rapala_asset = asset_id(sessions, "salainen.rapala.test")
    hyvala_asset = asset_id(sessions, "uusi.hyvala.test")
    values = hostile_values(rapala_finding, rapala_accepted, rapala_asset, hyvala_asset)
    client, _ = sign_in(app, "hyvala-staff")
    with sessions() as session:
        events_before = session.scalar(select(func.count(FindingEvent.id)))
        changes_before = session.scalar(select(func.count(ChangeEvent.id)))
    calls = 0
    for output, spec in app.callback_map.items():
        dependencies = [(d["id"], d["property"]) for d in spec["inputs"] + spec["state"]]
        missing = [d for d in dependencies if d not in values]
        assert not missing, f"{output}: add forged values for {missing} to hostile_values()"
        for varied in dependencies:
            for value in values[varied]:
                chosen = {d: values[d][0] for d in dependencies} | {varied: value}
                response = call(app, client, output, chosen)
                calls += 1
                assert response.status_code in (200, 204), (output, chosen)
                body = text_of(response)
                leaked = [m for m in RAPALA_MARKERS if m in body]
                assert not leaked, f"{output} with {chosen} returned {leaked}: {body[:300]}"
    assert calls > 20
    with sessions() as session:
        assert session.scalar(select(func.count(FindingEvent.id))) == events_before
        assert session.get(Finding, rapala_finding).status == "open"
        assert session.get(Finding, rapala_accepted).status == "accepted"
        # Not one proposal decided: Rapala's is Rapala's, and a request naming it with
        # Hyvälä's own is refused as a whole
        assert session.get(Asset, rapala_asset).state == "proposed"
        assert session.get(Asset, hyvala_asset).state == "proposed"
        assert session.scalar(select(func.count(ChangeEvent.id))) == changes_before


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


def test_staff_decision_is_written_to_the_audit_trail(estate):
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
    output = next(k for k in app.callback_map if "decide-message" in k)
    response = call(app, client, output, values)
    assert response.status_code == 200
    with sessions() as session:
        finding = session.get(Finding, own)
        assert (finding.status, finding.decided_by) == ("accepted", "hyvala-staff")
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "finding.accepted"))
        assert (event.actor, event.organisation, event.at) == ("hyvala-staff", "hyvala", NOW)
        assert event.note == "Palvelu poistuu käytöstä joulukuussa"
    viewer_client, _ = sign_in(app, "hyvala-boss")
    assert call(app, viewer_client, output, values).status_code == 204  # no permission


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


def test_csv_export_neutralises_formulas_and_is_audited(estate):
    app, sessions, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    values = {
        (ids.EXPORT, "n_clicks"): 1,
        (ids.FINDINGS_ORG, "data"): "hyvala",
        (ids.FILTER_STATUS, "value"): ["open"],
    }
    response = call(app, client, "download.data", values)
    content = json.loads(response.get_data(as_text=True))["response"]["download"]["data"]
    assert content["content"].splitlines()[0].startswith("severity,title,subject")
    assert "127.60.1.10:3389/tcp" in content["content"]
    with sessions() as session:
        assert (
            session.scalar(
                select(func.count(AuditEvent.id)).where(AuditEvent.action == "findings.exported")
            )
            == 1
        )


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
    evidence = next(c for c in components(finding) if c["props"].get("id") == ids.EVIDENCE)
    assert evidence["type"] == "Pre"
    assert hostile in json.loads(evidence["props"]["children"])["banner"]


def test_cookies_are_secure_when_configured(tmp_path, minimal_config):
    from riskiturva import db
    from riskiturva.config import DashboardSettings
    from riskiturva.store import make_engine, session_factory

    engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    db.upgrade(engine)
    sessions = session_factory(engine)
    settings = minimal_config.settings.model_copy(
        update={"data_dir": tmp_path, "dashboard": DashboardSettings(secure_cookies=True)}
    )
    config = minimal_config.model_copy(update={"settings": settings})
    seed(sessions, config)
    app = dashboard.create_app(config, sessions, clock=lambda: NOW)
    _, response = sign_in(app, "hyvala-staff")
    cookies = response.headers.getlist("Set-Cookie")
    assert all("Secure" in c for c in cookies), cookies
    engine.dispose()


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
