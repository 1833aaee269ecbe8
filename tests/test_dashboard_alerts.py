"""The alerts in the dashboard: what was raised and whether it arrived, who is alerted.

Given two municipalities scanned through the real runner (alerts recorded in the
reconcile's transaction) and one sender pass against a real SMTP relay and HTTPS receiver,
with the Slack-compatible chat down for good: each reader sees the alerts, deliveries and
set-up of the organisations they may see and nothing of another's, a partner's digest
spanning both only when they see both, no webhook URL or secret anywhere, and a hostile
subject as text — in requests to the app and in headless Chromium.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from sqlalchemy.orm import Session, sessionmaker

import dashboard
from dashboard import ids
from riskiturva import auth, views
from riskiturva.alerts.sender import deliver_due
from riskiturva.config import Config
from riskiturva.db import open_store
from riskiturva.views import NotVisible
from tests.alerting import HYVALA, RAPALA, ScriptedCollector, alert_config, scan
from tests.browser import Visitor, chromium, served
from tests.conftest import T0
from tests.smtp import smtp_relay
from tests.test_dashboard_access import PASSWORD, call, components, sign_in, text_of
from tests.webhook_receiver import Receiver

TEAMS_SECRET = "sig=TEAMS-WORKFLOW-SIGNATURE-0042"
HOSTILE = "<img src=x onerror=alert('salainen')>.hyvala.test"
RDP = ("services.exposed.rdp", f"{RAPALA}:3389/tcp")  # critical
DMARC = ("email.dmarc.policy_none", "rapala.test")  # medium: the digest
TELNET = ("services.exposed.telnet", f"{HYVALA}:23/tcp")  # high
HOSTILE_DMARC = ("email.dmarc.missing", HOSTILE)
HYVALA_DMARC = ("email.dmarc.policy_none", "hyvala.test")  # medium: waits for the digest
NOW = T0 + dt.timedelta(minutes=5)
RAPALA_MARKERS = ("Rapala", "127.60.2.", "it@rapala.test", "tickets")
SECRETS = (TEAMS_SECRET, "RISKITURVA_TEST", "/teams", "/slack", "/tickets")


@dataclass(frozen=True)
class Estate:
    config: Config
    sessions: sessionmaker[Session]
    app: Any


@pytest.fixture(scope="module")
def estate(tmp_path_factory) -> Iterator[Estate]:
    folder = tmp_path_factory.mktemp("dashboard-alerts")
    monkeypatch = pytest.MonkeyPatch()
    receiver = Receiver(folder).start()
    with smtp_relay(folder) as relay:
        config = alert_config(
            folder,
            monkeypatch,
            smtp_port=relay.port,
            smtp_ca=relay.ca_file,
            teams_url=receiver.url(f"/teams?{TEAMS_SECRET}"),
            slack_url="http://127.0.0.1:9/slack",  # nothing listens: the chat never gets it
            receiver_ca=receiver.ca_file,
            tickets_url=receiver.url("/tickets"),
            max_attempts=1,
            rapala_rules='rules = { new_finding = { min_severity = "high" } }',
        )
        sessions = open_store(config)
        collector = ScriptedCollector(
            {RAPALA: [RDP, DMARC], HYVALA: [TELNET, HOSTILE_DMARC, HYVALA_DMARC]}
        )
        scan(sessions, config, collector, T0)
        deliver_due(sessions, config, clock=lambda: T0 + dt.timedelta(minutes=1))
    receiver.stop()
    with sessions.begin() as session:
        for username, role, orgs in (
            ("kumppani", auth.Role.PARTNER_ADMIN, ()),
            ("hyvala-it", auth.Role.ORG_STAFF, ("hyvala",)),
            ("rapala-johto", auth.Role.VIEWER, ("rapala",)),
        ):
            auth.create_user(
                session, username=username, password=PASSWORD, role=role,
                organisations=orgs, now=T0,
            )  # fmt: skip
    yield Estate(config, sessions, dashboard.create_app(config, sessions, clock=lambda: NOW))
    monkeypatch.undo()


def page(estate: Estate, client, path: str) -> str:
    return text_of(call(estate.app, client, "page.children", {(ids.URL, "pathname"): path}))


# --- the read model --------------------------------------------------------------------


def test_the_outbox_lists_a_message_only_to_who_sees_all_its_organisations(estate):
    with estate.sessions() as session:
        both = views.outbox(session, {"hyvala", "rapala"})
        hyvala = views.outbox(session, {"hyvala"})
    partner_mail = [m for m in both if m.destination == "email:soc@kuntaverkko.test"]
    assert [m.organisations for m in partner_mail] == [("hyvala", "rapala")]
    assert {m.destination for m in hyvala} == {"email:it@hyvala.test", "channel:chat"}
    assert all(m.organisations == ("hyvala",) for m in hyvala)
    (chat,) = [m for m in hyvala if m.destination == "channel:chat"]
    assert chat.status == "failed" and "chat (127.0.0.1)" in (chat.last_error or "")


def test_alerts_of_another_organisation_read_as_absent(estate):
    with estate.sessions() as session:
        with pytest.raises(NotVisible):
            views.alerts(session, {"hyvala"}, estate.config, language="fi", organisation="rapala")
        with pytest.raises(NotVisible):
            views.alert_setup(session, {"hyvala"}, estate.config, "rapala")
        entries = views.alerts(session, {"hyvala"}, estate.config, language="en")
    assert {e.organisation.slug for e in entries} == {"hyvala"}
    assert {e.subject for e in entries} == {f"{HYVALA}:23/tcp", HOSTILE, "hyvala.test"}
    (digest,) = [e for e in entries if e.urgency == "digest"]
    assert {d.state for d in digest.deliveries} == {"waiting"}
    assert "channel:chat" not in {d.destination for d in digest.deliveries}  # urgent only


def test_the_setup_names_recipients_and_overrides_but_no_url(estate):
    with estate.sessions() as session:
        setup = views.alert_setup(session, {"rapala"}, estate.config, "rapala")
    by_address = {r.address: r for r in setup.recipients}
    assert set(by_address) == {"it@rapala.test", "tickets", "soc@kuntaverkko.test", "soc-teams"}
    assert by_address["tickets"].via == "webhook" and by_address["tickets"].host == "127.0.0.1"
    assert by_address["soc-teams"].partner == "Kuntaverkko Oy"
    new_finding = next(r for r in setup.rules if r.rule == "new_finding")
    assert new_finding.own and new_finding.settings == {"min_severity": "high"}
    assert not next(r for r in setup.rules if r.rule == "score_drop").own
    assert TEAMS_SECRET not in repr(setup)


# --- the pages -------------------------------------------------------------------------


def test_staff_see_their_alerts_and_deliveries_and_nothing_of_another(estate):
    client, _ = sign_in(estate.app, "hyvala-it")
    own = page(estate, client, "/org/hyvala/alerts")
    assert "Hyvälän kunta" in own
    assert "Telnet" in own and f"{HYVALA}:23/tcp" in own
    assert "it@hyvala.test" in own and "Toimitettu" in own  # delivered by e-mail
    assert "Epäonnistui" in own  # the chat channel is down
    assert "Päivittäinen kooste" in own and "Odottaa" in own  # the medium one, tomorrow
    assert "soc@kuntaverkko.test" in own  # the partner's team hears of it too
    for path in ("/org/hyvala/alerts", "/alerts"):
        body = page(estate, client, path)
        leaked = [m for m in (*RAPALA_MARKERS, *SECRETS) if m in body]
        assert not leaked, (path, leaked)
    assert "Ei löytynyt" in page(estate, client, "/org/rapala/alerts")


def test_partner_sees_every_alert_and_the_digest_across_organisations(estate):
    client, _ = sign_in(estate.app, "kumppani")
    body = page(estate, client, "/alerts")
    assert "Rapalan kunta" in body and "Hyvälän kunta" in body
    assert "soc@kuntaverkko.test" in body
    assert not [s for s in SECRETS if s in body]
    rapala = page(estate, client, "/org/rapala/alerts")
    assert "vakavuusluokasta vakava alkaen" in rapala  # Rapala's own new_finding rule
    assert "Organisaation oma" in rapala and "Yhteinen oletus" in rapala
    assert not [s for s in SECRETS if s in rapala]


def test_management_viewers_get_no_alerts(estate):
    client, _ = sign_in(estate.app, "rapala-johto")
    for path in ("/org/rapala/alerts", "/alerts"):
        body = page(estate, client, path)
        assert "Ei käytettävissä" in body and "3389" not in body, path


def test_a_hostile_subject_is_text_in_the_layout(estate):
    client, _ = sign_in(estate.app, "kumppani")
    layout = call(
        estate.app, client, "page.children", {(ids.URL, "pathname"): "/org/hyvala/alerts"}
    ).json
    found = [c for c in components(layout) if c["props"].get("children") == HOSTILE]
    assert [c["type"] for c in found] == ["Code"]
    assert not [c for c in components(layout) if c["type"] == "Markdown"]


# --- in the browser --------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_url(estate) -> Iterator[str]:
    with served(estate.app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


@pytest.mark.browser
@pytest.mark.slow  # about a minute: two sign-ins and eight pages in Chromium
def test_partner_and_staff_read_the_alerts_in_the_browser(browser, base_url):
    # Given the partner administrator, signed in
    partner = Visitor(browser, base_url, "alerts-partner", PASSWORD)
    partner.sign_in("kumppani")
    partner.wait("Salkku", "portfolio")
    # When they follow the top bar's link to every alert
    browser.find_element(By.LINK_TEXT, "Hälytykset").click()
    every = partner.wait("Viestit ja niiden toimitus", "alerts-all")
    # Then both municipalities' alerts are there, with what arrived and what did not
    assert "Rapalan kunta" in every and "Hyvälän kunta" in every
    assert "Toimitettu" in every and "Epäonnistui" in every
    assert "soc@kuntaverkko.test" in every
    # And Hyvälä's page shows the hostile subject as text, never as an element
    hyvala = partner.open("/org/hyvala/alerts", "Kuka saa hälytykset", "alerts-hyvala")
    table = browser.find_element(By.ID, ids.ALERTS)
    assert HOSTILE in table.text
    assert not table.find_elements(By.TAG_NAME, "img")
    partner.no_alert()
    assert "it@hyvala.test" in browser.find_element(By.ID, ids.ALERT_RECIPIENTS).text
    assert "Slack-yhteensopiva chat (127.0.0.1)" in hyvala
    # And an alert's title leads to its finding
    table.find_element(By.PARTIAL_LINK_TEXT, "Telnet").click()
    partner.wait("Mitä tehdä", "alerts-finding")

    # Given Hyvälä's staff: their tab, their alerts, and Rapala's page is not found
    staff = Visitor(browser, base_url, "alerts-staff", PASSWORD)
    staff.sign_in("hyvala-it")
    staff.wait("Korjausten tärkeysjärjestys", "hyvala-overview")
    browser.find_element(By.ID, "tab-alerts").click()
    own = staff.wait("Kuka saa hälytykset", "alerts-staff-hyvala")
    assert f"{HYVALA}:23/tcp" in own and "Rapala" not in own
    staff.open("/org/rapala/alerts", "Ei löytynyt", "alerts-staff-rapala")
