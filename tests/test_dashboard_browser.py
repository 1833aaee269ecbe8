"""The dashboard in headless Chromium, on a store filled by a real scan of the lab.

Given the lab scanned by every installed collector, a partner administrator, Sekala's
staff and Hyvälä's management viewer sign in, visit every page and see its key content;
a `<script>` TXT record served by the lab's DNS is shown as text and never runs. The
screenshots go to `screenshots/` (git-ignored) for people to look at.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import dashboard
from dashboard import ids
from riskiturva import auth
from riskiturva.collector import discover_collectors
from riskiturva.config import Config, load_config
from riskiturva.db import open_store
from riskiturva.history import take_snapshots
from riskiturva.models import Finding, Organisation, ScoreSnapshot
from riskiturva.runner import run_scan
from tests import browser as browser_tools
from tests.browser import chromium, served

pytestmark = [pytest.mark.browser, pytest.mark.lab, pytest.mark.slow]

PASSWORD = "lab password for tests"
HISTORY_DAYS = 60


@dataclass(frozen=True)
class Estate:
    config: Config
    sessions: sessionmaker[Session]
    hostile_txt: str
    hostile_finding: int


def scanned_store(lab, directory: Path) -> tuple[Config, sessionmaker[Session]]:
    """The lab's configuration, a fresh store in `directory`, and one scan by every collector."""
    config = load_config(lab.config_path)
    settings = config.settings.model_copy(
        update={"data_dir": directory, "database_url": f"sqlite:///{directory / 'lab.db'}"}
    )
    config = config.model_copy(update={"settings": settings})
    sessions = open_store(config)
    run_scan(sessions, config, list(discover_collectors().values()))
    return config, sessions


def add_history(sessions: sessionmaker[Session], config: Config, today: dt.date) -> None:
    """Today's real snapshots, and a made-up steady improvement towards them over the
    previous days (the lab has existed for one day only) so the trend charts have a line."""
    take_snapshots(sessions, config, today)
    with sessions.begin() as session:
        for snapshot in list(session.scalars(select(ScoreSnapshot))):
            for days_ago in range(1, HISTORY_DAYS + 1):
                factor = 1 - 0.4 * days_ago / HISTORY_DAYS
                session.add(
                    ScoreSnapshot(
                        organisation_id=snapshot.organisation_id,
                        day=today - dt.timedelta(days=days_ago),
                        score=round(snapshot.score * factor, 1),
                        grade=snapshot.grade,
                        scoring_version=snapshot.scoring_version,
                        category_scores={
                            k: round(v * factor, 1) for k, v in snapshot.category_scores.items()
                        },
                        open_counts=snapshot.open_counts,
                    )
                )


def plant_hostile_txt(sessions: sessionmaker[Session], lab) -> tuple[str, int]:
    """Put the lab's hostile TXT record of sekala.test (read from the lab's own DNS) into
    the evidence of a Sekala finding on that name, as a collector that keeps TXT records
    would. No collector keeps non-policy TXT records yet."""
    answer = lab.resolver().resolve("sekala.test", "TXT")
    texts = [b"".join(r.strings).decode() for r in answer]
    hostile = next(t for t in texts if "<script>" in t)
    with sessions.begin() as session:
        finding = session.scalar(
            select(Finding)
            .join(Organisation)
            .where(Organisation.slug == "sekala", Finding.subject == "sekala.test")
            .order_by(Finding.id)
        )
        assert finding is not None, "the lab scan found nothing on sekala.test"
        finding.evidence = {**finding.evidence, "txt_records": texts}
        return hostile, finding.id


@pytest.fixture(scope="module")
def estate(lab, tmp_path_factory) -> Estate:
    config, sessions = scanned_store(lab, tmp_path_factory.mktemp("dashboard-lab"))
    add_history(sessions, config, dt.datetime.now(dt.UTC).date())
    hostile, finding_id = plant_hostile_txt(sessions, lab)
    now = dt.datetime.now(dt.UTC)
    with sessions.begin() as session:
        for username, role, orgs in (
            ("kumppani", auth.Role.PARTNER_ADMIN, ()),
            ("sekala-it", auth.Role.ORG_STAFF, ("sekala",)),
            ("hyvala-johto", auth.Role.VIEWER, ("hyvala",)),
        ):
            auth.create_user(
                session,
                username=username,
                password=PASSWORD,
                role=role,
                organisations=orgs,
                now=now,
            )
    return Estate(config, sessions, hostile, finding_id)


@pytest.fixture(scope="module")
def base_url(estate) -> Iterator[str]:
    with served(dashboard.create_app(estate.config, estate.sessions)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


class Visitor(browser_tools.Visitor):
    def __init__(self, driver: webdriver.Chrome, base: str, name: str):
        super().__init__(driver, base, name, PASSWORD)


def test_sign_in_page_refuses_a_wrong_password(browser, base_url):
    visitor = Visitor(browser, base_url, "anonymous")
    browser.get(f"{base_url}/org/sekala")
    assert browser.current_url.startswith(f"{base_url}/login")
    visitor.screenshot("login")
    visitor.sign_in("kumppani", "not the password")
    error = WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "login-error")))
    assert error.text == "Väärä käyttäjätunnus tai salasana."


def test_partner_administrator_visits_every_page(browser, base_url, estate):
    visitor = Visitor(browser, base_url, "partner")
    visitor.sign_in("kumppani")
    portfolio = visitor.wait("Salkku", "portfolio")
    for name in ("Hyvälän kunta", "Rapalan kunta", "Sekalan kaupunki"):
        assert name in portfolio
    assert browser.find_elements(By.CSS_SELECTOR, f"#{ids.PORTFOLIO_HEATMAP} .main-svg")
    assert browser.find_elements(By.CSS_SELECTOR, f"#{ids.PORTFOLIO_GRADES} .main-svg")
    overview = visitor.open("/org/rapala", "Korjausten tärkeysjärjestys", "rapala-overview")
    assert "Ei vielä: arvosana" in browser.find_element(By.ID, ids.ANSWER).text
    assert "Skannausten tila" in overview
    findings = visitor.open("/org/rapala/findings", "Havaintoja näkyvissä:", "rapala-findings")
    assert "Havainto" in findings
    browser.find_element(By.CSS_SELECTOR, f"#{ids.FINDINGS_TABLE} td a").click()
    detail = visitor.wait("Mitä tehdä", "rapala-finding")
    assert "Näyttö" in detail and "Historia" in detail
    assert not browser.find_elements(By.ID, ids.DECIDE_SUBMIT)  # decisions are staff's
    visitor.open("/org/rapala/assets", "Kriittisyys", "rapala-assets")
    score = visitor.open("/org/rapala/score", "Suunnitelma arvosanaan B", "rapala-score")
    assert "Miten pisteet muodostuvat" in score
    register = visitor.open(
        "/org/rapala/exceptions", "Hyväksytyt riskit ja väärät hälytykset", "rapala-exceptions"
    )
    assert "Voimassa ei ole hyväksyttyjä riskejä" in register  # nobody decided anything
    assert not browser.find_elements(By.ID, ids.REVOKE_SUBMIT)  # and revoking is staff's
    assert "Viimeisten 30 päivän aikana päättyneet päätökset" in register
    visitor.open("/org/rapala/scans", "Viimeisimmät skannaukset", "rapala-scans")


def test_staff_see_hostile_text_as_text_and_accept_a_risk(browser, base_url, estate):
    visitor = Visitor(browser, base_url, "staff")
    visitor.sign_in("sekala-it")
    home = visitor.wait("Korjausten tärkeysjärjestys", "sekala-overview")
    assert "Sekalan kaupunki" in home
    assert not browser.find_elements(By.LINK_TEXT, "Salkku")
    detail = visitor.open(f"/findings/{estate.hostile_finding}", "Näyttö", "sekala-hostile")
    evidence = browser.find_element(By.ID, ids.EVIDENCE).text
    assert estate.hostile_txt in evidence  # shown literally…
    assert not browser.find_elements(By.CSS_SELECTOR, f"#{ids.EVIDENCE} script")  # …not parsed
    visitor.no_alert()
    assert "Päätös" in detail
    browser.find_element(By.ID, ids.DECIDE_REASON).send_keys(
        "Kuvausteksti on tarkoituksellinen; poistetaan seuraavassa DNS-muutoksessa."
    )
    browser.find_element(By.ID, ids.DECIDE_SUBMIT).click()
    visitor.wait("Päätös tallennettu.", "sekala-decided", element=ids.DECIDE_MESSAGE)
    history = browser.find_element(By.ID, ids.HISTORY).text
    assert "Riski hyväksytty" in history and "sekala-it" in history
    visitor.open("/org/rapala", "Ei löytynyt", "sekala-looks-at-rapala")
    visitor.open(
        "/org/sekala/findings?status=accepted", "Havaintoja näkyvissä: 1", "sekala-accepted"
    )
    # The decision is in the register, and the staff revoke it there
    register = visitor.open("/org/sekala/exceptions", "Perumisen syy", "sekala-exceptions")
    assert "Kuvausteksti on tarkoituksellinen" in register and "sekala-it" in register
    table = browser.find_element(By.ID, ids.EXCEPTIONS_TABLE)
    table.find_element(By.CSS_SELECTOR, "input[type='checkbox']").click()
    browser.find_element(By.ID, ids.REVOKE_REASON).send_keys("Päätös peruttiin kokeeksi.")
    browser.find_element(By.ID, ids.REVOKE_SUBMIT).click()
    visitor.wait("Peruttuja päätöksiä: 1", "sekala-revoked", element=ids.REVOKE_MESSAGE)
    visitor.open(
        "/org/sekala/findings?status=accepted", "Havaintoja näkyvissä: 0", "sekala-none-accepted"
    )


def test_management_viewer_reads_the_overview_in_swedish(browser, base_url):
    visitor = Visitor(browser, base_url, "viewer")
    visitor.sign_in("hyvala-johto")
    visitor.wait("Arvosanan perusteet", "hyvala-overview-fi")
    browser.find_element(By.LINK_TEXT, "svenska").click()
    overview = visitor.wait("Betygets grunder", "hyvala-overview-sv")
    assert "Ja" in browser.find_element(By.ID, ids.ANSWER).text
    assert "Godkända risker och falsklarm" in overview  # management reads the register
    assert "Observationer" not in overview  # no findings tab for management
    visitor.open("/org/hyvala/findings", "Inte tillgängligt", "hyvala-findings-refused")
    visitor.open("/org/hyvala/score", "Hur poängen bildas", "hyvala-score-sv")
    browser.find_element(By.LINK_TEXT, "English").click()
    visitor.wait("How the score is made", "hyvala-score-en")
    browser.find_element(By.ID, ids.SIGN_OUT).click()
    WebDriverWait(browser, 10).until(ec.url_contains("/login"))
    browser.get(f"{base_url}/org/hyvala")
    assert "/login" in browser.current_url
