"""The review page of discovered assets in headless Chromium, on a store filled by a real
scan and discovery run of the lab.

Given the lab's declared assets scanned by tls and web and one discovery run, the partner
administrator sees each municipality's proposals with their evidence and where the names
seen outside a scope belong; Rapala's staff accept a proposal (it moves into the inventory)
and see the neighbour's name as "another organisation's scope" without learning whose;
Sekala's staff reject one with a reason and see a verification TXT record with markup in
it as text. Nobody sees another organisation's queue.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import dashboard
from dashboard import ids
from riskiturva import auth
from riskiturva.collector import discover_collectors
from riskiturva.config import Config, load_config
from riskiturva.db import open_store
from riskiturva.discovery import run_discovery
from riskiturva.models import Asset
from riskiturva.models_auth import AuditEvent
from riskiturva.runner import build_context, run_scan
from tests import test_dashboard_browser
from tests.test_dashboard_browser import PASSWORD, Visitor

pytestmark = [pytest.mark.browser, pytest.mark.lab, pytest.mark.slow]

browser = test_dashboard_browser.browser  # the same headless Chromium, one per module
HOSTILE_VERIFICATION = "atlassian-domain-verification=<img src=x onerror=alert(2)>rt-lab-sekala"


@dataclass(frozen=True)
class Discovered:
    config: Config
    sessions: sessionmaker[Session]


def discovered_store(lab, directory: Path) -> Discovered:
    config = load_config(lab.config_path)
    settings = config.settings.model_copy(
        update={"data_dir": directory, "database_url": f"sqlite:///{directory / 'lab.db'}"}
    )
    config = config.model_copy(update={"settings": settings})
    sessions = open_store(config)
    collectors = discover_collectors()
    run_scan(sessions, config, [collectors["tls"], collectors["web"]])
    report = run_discovery(sessions, config, context=build_context(config))
    assert report.status == "ok", report
    return Discovered(config, sessions)


@pytest.fixture(scope="module")
def estate(lab, tmp_path_factory) -> Discovered:
    found = discovered_store(lab, tmp_path_factory.mktemp("discovery-browser"))
    now = dt.datetime.now(dt.UTC)
    with found.sessions.begin() as session:
        for username, role, orgs in (
            ("kumppani", auth.Role.PARTNER_ADMIN, ()),
            ("rapala-it", auth.Role.ORG_STAFF, ("rapala",)),
            ("sekala-it", auth.Role.ORG_STAFF, ("sekala",)),
        ):
            auth.create_user(
                session, username=username, password=PASSWORD, role=role, organisations=orgs,
                now=now,
            )  # fmt: skip
    return found


@pytest.fixture(scope="module")
def base_url(estate) -> Iterator[str]:
    app = dashboard.create_app(estate.config, estate.sessions)
    server = dashboard.make_server(app, port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=5)


def select_row(driver, value: str) -> None:
    """Tick the review table's checkbox on the row of `value`."""
    driver.find_element(
        By.XPATH,
        f"//div[@id='{ids.PROPOSALS_TABLE}']//tr[.//td[normalize-space(.)='{value}']]"
        "//input[@type='checkbox']",
    ).click()


def open_evidence(driver, value: str) -> str:
    summary = driver.find_element(
        By.XPATH, f"//div[@id='{ids.PROPOSAL_EVIDENCE}']//summary[.//code[text()='{value}']]"
    )
    summary.click()
    return summary.find_element(By.XPATH, "..").text


def test_partner_administrator_sees_every_queue_with_evidence_and_whose_scope(browser, base_url):
    visitor = Visitor(browser, base_url, "partner")
    visitor.sign_in("kumppani")
    visitor.wait("Salkku", "portfolio")
    page = visitor.open("/org/rapala/proposals", "varmuuskopio.rapala.test", "rapala-proposals")
    assert "Vyöhykkeensiirto (AXFR)" in page
    evidence = open_evidence(browser, "varmuuskopio.rapala.test")
    visitor.screenshot("rapala-evidence")
    assert "Vyöhykkeensiirto (AXFR)" in evidence and "rapala.test" in evidence
    outside = browser.find_element(By.ID, ids.OUTSIDE_SCOPE).text
    row = next(line for line in outside.splitlines() if "varaamo.sekala.test" in line)
    assert "Rajauksessa: Sekalan kaupunki" in row
    assert "kampanja.vanhapalvelu.test" in outside
    page = visitor.open("/org/hyvala/proposals", "budjetti2019.hyvala.test", "hyvala-proposals")
    assert "NSEC-ketju (vyöhykkeen läpikäynti)" in page
    services = browser.find_element(By.ID, ids.SERVICE_HINTS).text
    assert "google-site-verification=rt-lab-hyvala-0123456789" in services


def test_staff_accept_a_proposal_and_see_a_neighbours_name_only_as_another_scope(
    browser, base_url, estate
):
    visitor = Visitor(browser, base_url, "rapala-staff")
    visitor.sign_in("rapala-it")
    visitor.wait("Rapalan kunta", "rapala-home")
    page = visitor.open("/org/rapala/proposals", "varmuuskopio.rapala.test", "rapala-own-queue")
    outside = browser.find_element(By.ID, ids.OUTSIDE_SCOPE).text
    row = next(line for line in outside.splitlines() if "varaamo.sekala.test" in line)
    assert "Toisen organisaation rajauksessa" in row
    assert "Sekalan kaupunki" not in page
    # When they accept the forgotten backup server, with a tag
    select_row(browser, "varmuuskopio.rapala.test")
    browser.find_element(By.ID, ids.PROPOSAL_TAGS).send_keys("varmuuskopiot")
    browser.find_element(By.ID, ids.PROPOSAL_SUBMIT).click()
    visitor.wait("Hyväksytty: 1", "rapala-accepted", element=ids.PROPOSAL_MESSAGE)
    # Then it leaves the queue, joins the inventory and is scanned from the next run on
    assert "varmuuskopio.rapala.test" not in browser.find_element(By.ID, ids.PROPOSALS_TABLE).text
    assets = visitor.open("/org/rapala/assets", "varmuuskopio.rapala.test", "rapala-assets")
    row = next(line for line in assets.splitlines() if "varmuuskopio.rapala.test" in line)
    assert "Löytämisen löytämä" in row and "Inventaariossa" in row
    with estate.sessions() as session:
        asset = session.scalar(select(Asset).where(Asset.value == "varmuuskopio.rapala.test"))
        assert (asset.state, asset.tags, asset.state_changed_by) == (
            "active",
            ["varmuuskopiot"],
            "rapala-it",
        )
        audit = session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "asset.accepted", AuditEvent.actor == "rapala-it"
            )
        )
        assert audit is not None and audit.organisation == "rapala"
    overview = visitor.open("/org/rapala", "Kohde hyväksytty inventaarioon", "rapala-changes")
    assert "varmuuskopio.rapala.test" in overview
    # Another organisation's queue is not there for them
    visitor.open("/org/sekala/proposals", "Ei löytynyt", "rapala-looks-at-sekala")


def test_staff_reject_with_a_reason_and_hostile_text_stays_text(browser, base_url, estate):
    visitor = Visitor(browser, base_url, "sekala-staff")
    visitor.sign_in("sekala-it")
    visitor.wait("Sekalan kaupunki", "sekala-home")
    visitor.open("/org/sekala/proposals", "tulostin-3krs.seutu.sekala.test", "sekala-queue")
    services = browser.find_element(By.ID, ids.SERVICE_HINTS)
    assert HOSTILE_VERIFICATION in services.text  # shown literally…
    assert not services.find_elements(By.TAG_NAME, "img")  # …never parsed
    visitor.no_alert()
    # A rejection without its reason is refused
    select_row(browser, "tulostin-3krs.seutu.sekala.test")
    browser.find_element(By.CSS_SELECTOR, f"#{ids.PROPOSAL_DECISION} input[value='reject']").click()
    browser.find_element(By.ID, ids.PROPOSAL_SUBMIT).click()
    visitor.wait("hylkääminen vaatii perustelun", "sekala-no-reason", element=ids.PROPOSAL_MESSAGE)
    browser.find_element(By.ID, ids.PROPOSAL_REASON).send_keys("Kerroksen tulostin, ei verkosta")
    browser.find_element(By.ID, ids.PROPOSAL_SUBMIT).click()
    visitor.wait("Hylätty: 1", "sekala-rejected", element=ids.PROPOSAL_MESSAGE)
    with estate.sessions() as session:
        asset = session.scalar(
            select(Asset).where(Asset.value == "tulostin-3krs.seutu.sekala.test")
        )
        assert (asset.state, asset.state_reason) == ("rejected", "Kerroksen tulostin, ei verkosta")
