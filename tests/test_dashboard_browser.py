"""The dashboard in headless Chromium, on a store filled by a real scan of the lab.

Given the lab scanned by every installed collector, a partner administrator, Sekala's
staff and Hyvälä's management viewer sign in, visit every page and see its key content;
a `<script>` TXT record served by the lab's DNS is shown as text and never runs; no page
logs a Content-Security-Policy violation or any other error in Chromium's console.
Security as a user meets it: a cookie copied before "Sign out" is refused afterwards; five
wrong passwords from someone else, through a real nginx reverse proxy, do not lock the
user out, and a forged `X-Forwarded-For` is not believed; a partner administrator reads
the audit trail and signs someone out everywhere. The screenshots go to `screenshots/`
(git-ignored) for people to look at.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import dashboard
from dashboard import ids
from dashboard.security import CSRF_HEADER
from riskiturva import auth
from riskiturva.collector import discover_collectors
from riskiturva.config import Config, DashboardSettings, load_config
from riskiturva.db import open_store
from riskiturva.history import take_snapshots
from riskiturva.models import Finding, Organisation, ScoreSnapshot
from riskiturva.models_auth import AuditEvent
from riskiturva.runner import run_scan
from tests import browser as browser_tools
from tests.browser import chromium, served
from tests.dashboard_http import callback_body, client_from, output_of, post_login

pytestmark = [pytest.mark.browser, pytest.mark.lab, pytest.mark.slow]

PASSWORD = "lab password for tests"
HISTORY_DAYS = 60
PROXY_ADDRESS = "127.0.0.20"  # nginx connects to the dashboard from here: a trusted proxy
ATTACKER_ADDRESS = "127.0.0.66"  # someone else, on another machine as far as anyone can tell


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
    dashboard_settings = DashboardSettings(trusted_proxies=[PROXY_ADDRESS])
    settings = config.settings.model_copy(update={"dashboard": dashboard_settings})
    config = config.model_copy(update={"settings": settings})
    add_history(sessions, config, dt.datetime.now(dt.UTC).date())
    hostile, finding_id = plant_hostile_txt(sessions, lab)
    add_people(sessions)
    return Estate(config, sessions, hostile, finding_id)


def add_people(sessions: sessionmaker[Session]) -> None:
    """A partner administrator, Sekala's staff and Hyvälä's management viewer."""
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


@pytest.fixture(scope="module")
def app(estate) -> Any:
    return dashboard.create_app(estate.config, estate.sessions)


@pytest.fixture(scope="module")
def base_url(app) -> Iterator[str]:
    with served(app) as url:
        yield url


def free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port != 2024:  # another program's, never ours
            return port


NGINX_CONFIG = """worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_bind {proxy};
            proxy_max_temp_file_size 0;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def proxy_url(base_url) -> Iterator[str]:
    """The dashboard behind a real nginx reverse proxy (the set-up docs/dashboard.md shows)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    directory = Path(tempfile.mkdtemp(prefix="riskiturva-proxy-"))
    (directory / "tmp").mkdir(mode=0o777)
    (directory / "tmp").chmod(0o777)  # nginx's workers run as nobody
    port = free_port()
    conf = directory / "nginx.conf"
    upstream = base_url.rsplit(":", 1)[1]
    conf.write_text(
        NGINX_CONFIG.format(dir=directory, port=port, upstream=upstream, proxy=PROXY_ADDRESS)
    )
    process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(directory), "-g", "daemon off;"])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"nginx did not start: {(directory / 'error.log').read_text()}")
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


class Visitor(browser_tools.Visitor):
    def __init__(self, driver: webdriver.Chrome, base: str, name: str):
        super().__init__(driver, base, name, PASSWORD)

    def session_cookie(self) -> dict[str, str]:
        """The browser's cookies for the dashboard, as a cookie thief would copy them."""
        return {c["name"]: c["value"] for c in self.driver.get_cookies()}

    def status(self) -> str:
        return str(self.driver.find_element(By.ID, ids.FINDING_STATUS).text)


def test_sign_in_page_refuses_a_wrong_password(browser, base_url):
    visitor = Visitor(browser, base_url, "anonymous")
    browser.get(f"{base_url}/org/sekala")
    assert browser.current_url.startswith(f"{base_url}/login")
    visitor.screenshot("login")
    visitor.sign_in("kumppani", "not the password")
    error = WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "login-error")))
    assert error.text == "Väärä käyttäjätunnus tai salasana."
    assert browser.execute_script("return document.documentElement.lang") == "fi"
    visitor.console_is_clean("login-refused", expected=("status of 401",))
    browser.get(f"{base_url}/no/such/page")
    assert browser.find_element(By.ID, "not-found").text.startswith("Ei löytynyt")
    visitor.console_is_clean("not-found", expected=("status of 404",))


def test_partner_administrator_visits_every_page(browser, base_url, estate):
    visitor = Visitor(browser, base_url, "partner")
    visitor.sign_in("kumppani")
    portfolio = visitor.wait("Salkku", "portfolio")
    for name in ("Hyvälän kunta", "Rapalan kunta", "Sekalan kaupunki"):
        assert name in portfolio
    assert browser.find_elements(By.CSS_SELECTOR, f"#{ids.PORTFOLIO_HEATMAP} td.heat a")
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
    audit = visitor.open("/audit", "Kirjautuneina nyt", "audit")
    assert "Tapahtumaloki" in audit and "kumppani" in audit


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
    assert visitor.status() == "Avoin"
    assert not browser.find_element(By.ID, ids.DECIDE_REVOKE).is_enabled()
    browser.find_element(By.ID, ids.DECIDE_SUBMIT).click()
    visitor.wait("Päätös tallennettu.", "sekala-decided", element=ids.DECIDE_MESSAGE)
    assert visitor.status() == "Hyväksytty riski"  # at once, on the same page
    assert "sekala-it" in browser.find_element(By.ID, ids.FINDING_STATE).text
    history = browser.find_element(By.ID, ids.HISTORY).text
    assert "Riski hyväksytty" in history and "sekala-it" in history
    visitor.open("/org/rapala", "Ei löytynyt", "sekala-looks-at-rapala")
    visitor.open(
        "/org/sekala/findings?status=accepted", "Havaintoja näkyvissä: 1", "sekala-accepted"
    )
    visitor.open(f"/findings/{estate.hostile_finding}", "Näyttö", "sekala-before-revoking")
    assert visitor.status() == "Hyväksytty riski"
    browser.find_element(By.ID, ids.DECIDE_REASON).send_keys("Tietue poistettiin jo.")
    browser.find_element(By.ID, ids.DECIDE_REVOKE).click()
    visitor.wait("Päätös peruttu.", "sekala-revoked", element=ids.DECIDE_MESSAGE)
    assert visitor.status() == "Avoin"
    assert not browser.find_element(By.ID, ids.DECIDE_REVOKE).is_enabled()
    history = browser.find_element(By.ID, ids.HISTORY).text
    assert "Päätös peruttu" in history and "Tietue poistettiin jo." in history
    assert "revoked" not in history and "accepted" not in history  # no identifiers
    decision = browser.find_element(By.ID, ids.DECIDE_REASON)  # decided again…
    decision.clear()
    decision.send_keys("Kuvausteksti on tarkoituksellinen; poistetaan seuraavassa DNS-muutoksessa.")
    browser.find_element(By.ID, ids.DECIDE_SUBMIT).click()
    visitor.wait("Päätös tallennettu.", "sekala-decided-again", element=ids.DECIDE_MESSAGE)
    assert visitor.status() == "Hyväksytty riski"
    # …the decision is in the register, and the staff revoke it there
    register = visitor.open("/org/sekala/exceptions", "Perumisen syy", "sekala-exceptions")
    assert "Kuvausteksti on tarkoituksellinen" in register and "sekala-it" in register
    table = browser.find_element(By.ID, ids.EXCEPTIONS_TABLE)
    table.find_element(By.CSS_SELECTOR, "input[type='checkbox']").click()
    browser.find_element(By.ID, ids.REVOKE_REASON).send_keys("Päätös peruttiin kokeeksi.")
    browser.find_element(By.ID, ids.REVOKE_SUBMIT).click()
    visitor.wait("Peruttuja päätöksiä: 1", "sekala-revoked-in-register", element=ids.REVOKE_MESSAGE)
    visitor.open(
        "/org/sekala/findings?status=accepted", "Havaintoja näkyvissä: 0", "sekala-none-accepted"
    )


def test_management_viewer_reads_the_overview_in_swedish(browser, base_url):
    visitor = Visitor(browser, base_url, "viewer")
    visitor.sign_in("hyvala-johto")
    visitor.wait("Arvosanan perusteet", "hyvala-overview-fi")
    browser.find_element(By.LINK_TEXT, "svenska").click()
    overview = visitor.wait("Betygets grunder", "hyvala-overview-sv")
    assert browser.execute_script("return document.documentElement.lang") == "sv"
    assert "Ja" in browser.find_element(By.ID, ids.ANSWER).text
    assert "Godkända risker och falsklarm" in overview  # management reads the register
    assert "Observationer" not in overview  # no findings tab for management
    visitor.open("/org/hyvala/findings", "Inte tillgängligt", "hyvala-findings-refused")
    visitor.open("/org/hyvala/score", "Hur poängen bildas", "hyvala-score-sv")
    browser.find_element(By.LINK_TEXT, "English").click()
    visitor.wait("How the score is made", "hyvala-score-en")
    assert browser.execute_script("return document.documentElement.lang") == "en"
    browser.find_element(By.ID, ids.SIGN_OUT).click()
    WebDriverWait(browser, 10).until(ec.url_contains("/login"))
    browser.get(f"{base_url}/org/hyvala")
    assert "/login" in browser.current_url


def replayed(app, client: requests.Session, base: str, output: str, values: Any, csrf: str) -> int:
    body = callback_body(app, output_of(app, output), values)
    return client.post(
        f"{base}/_dash-update-component", json=body, headers={CSRF_HEADER: csrf}
    ).status_code


def test_a_cookie_copied_before_sign_out_is_refused_afterwards(browser, base_url, app, estate):
    visitor = Visitor(browser, base_url, "replay")
    visitor.sign_in("sekala-it")
    visitor.wait("Korjausten tärkeysjärjestys", "replay-signed-in")
    copied = visitor.session_cookie()  # what malware or a shared computer would leave
    thief = client_from(ATTACKER_ADDRESS)
    thief.cookies.update(copied)
    csrf = copied["_csrf_token"]
    route = {(ids.URL, "pathname"): "/org/sekala", (ids.URL, "search"): ""}
    assert thief.get(f"{base_url}/_dash-layout").status_code == 200  # the copy works…
    assert replayed(app, thief, base_url, ids.PAGE, route, csrf) == 200
    browser.find_element(By.ID, ids.SIGN_OUT).click()
    WebDriverWait(browser, 10).until(ec.url_contains("/login"))
    assert thief.get(f"{base_url}/_dash-layout").status_code == 401  # …until she signs out
    assert replayed(app, thief, base_url, ids.PAGE, route, csrf) == 401
    export = {(ids.EXPORT, "n_clicks"): 1, (ids.FINDINGS_ORG, "data"): "sekala"}
    assert replayed(app, thief, base_url, ids.DOWNLOAD, export, csrf) == 401
    decision = {
        (ids.DECIDE_SUBMIT, "n_clicks"): 1,
        (ids.FINDING_ID, "data"): estate.hostile_finding,
        (ids.DECIDE_KIND, "value"): "accepted",
        (ids.DECIDE_REASON, "value"): "kopioitu eväste",
        (ids.DECIDE_UNTIL, "value"): (dt.date.today() + dt.timedelta(days=30)).isoformat(),
    }
    assert replayed(app, thief, base_url, ids.DECIDE_MESSAGE, decision, csrf) == 401
    browser.delete_all_cookies()  # and in a browser: the copied cookie opens nothing
    for name, value in copied.items():
        browser.add_cookie({"name": name, "value": value})
    browser.get(f"{base_url}/org/sekala")
    assert "/login" in browser.current_url
    visitor.screenshot("replay-refused")


def test_five_failures_by_someone_else_do_not_lock_you_out(browser, proxy_url, estate):
    attacker = client_from(ATTACKER_ADDRESS)  # through the same reverse proxy as everyone
    for _ in range(5):
        assert post_login(attacker, proxy_url, "sekala-it", "arvaus123456").status_code == 401
    refused = post_login(attacker, proxy_url, "sekala-it", PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    visitor = Visitor(browser, proxy_url, "proxied")
    visitor.sign_in("sekala-it")  # the user, from her own computer, through the proxy
    home = visitor.wait("Korjausten tärkeysjärjestys", "signed-in-through-the-proxy")
    assert "Sekalan kaupunki" in home
    with estate.sessions() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.address)
            .where(AuditEvent.target == "sekala-it", AuditEvent.action.like("login.%"))
            .order_by(AuditEvent.id)
        ).all()
    assert rows.count(("login.failed", ATTACKER_ADDRESS)) == 5  # X-Forwarded-For believed
    assert ("login.throttled", ATTACKER_ADDRESS) in rows
    assert tuple(rows[-1]) == ("login.ok", "127.0.0.1")


def test_a_forged_x_forwarded_for_is_not_believed(browser, base_url, estate):
    attacker = client_from(ATTACKER_ADDRESS)  # straight to the dashboard, not the proxy
    attacker.headers["X-Forwarded-For"] = "127.0.0.1"  # claiming to be the user's computer
    for _ in range(5):
        assert post_login(attacker, base_url, "hyvala-johto", "arvaus123456").status_code == 401
    assert post_login(attacker, base_url, "hyvala-johto", PASSWORD).status_code == 429
    visitor = Visitor(browser, base_url, "direct")
    visitor.sign_in("hyvala-johto")  # from 127.0.0.1: not the address the attacker named
    visitor.wait("Arvosanan perusteet", "signed-in-despite-forged-header")
    with estate.sessions() as session:
        addresses = set(
            session.scalars(
                select(AuditEvent.address).where(
                    AuditEvent.target == "hyvala-johto", AuditEvent.action == "login.failed"
                )
            )
        )
    assert addresses == {ATTACKER_ADDRESS}


def choose(browser: webdriver.Chrome, dropdown: str, option: str) -> None:
    """Pick `option` in a Dash dropdown as a user does: open it, click the option."""
    browser.find_element(By.ID, dropdown).click()
    WebDriverWait(browser, 10).until(
        ec.element_to_be_clickable((By.XPATH, f"//*[@role='option'][contains(., '{option}')]"))
    ).click()


def test_partner_administrator_reads_the_audit_trail_and_signs_someone_out(
    browser, base_url, estate
):
    post_login(client_from(ATTACKER_ADDRESS), base_url, "tuntematon", "arvaus123456")
    staff = client_from("127.0.0.1")
    assert post_login(staff, base_url, "sekala-it", PASSWORD).status_code == 302
    assert staff.get(f"{base_url}/_dash-layout").status_code == 200
    visitor = Visitor(browser, base_url, "audit")
    visitor.sign_in("kumppani")
    visitor.wait("Salkku", "audit-portfolio")
    browser.find_element(By.ID, "nav-audit").click()
    trail = visitor.wait("Kirjautuneina nyt", "audit-trail")
    assert "Epäonnistunut kirjautuminen" in trail and "tuntematon" in trail
    assert ATTACKER_ADDRESS in trail
    choose(browser, ids.AUDIT_KIND, "Torjutut pyynnöt")
    visitor.wait("Kirjautuminen estetty", "audit-refused", element=ids.AUDIT_TABLE)
    table = browser.find_element(By.ID, ids.AUDIT_TABLE).text
    assert "Kirjautui sisään" not in table  # only refusals now
    assert "sekala-it" in browser.find_element(By.ID, ids.SESSIONS_TABLE).text
    choose(browser, ids.END_SESSIONS_USER, "sekala-it")
    browser.find_element(By.ID, ids.END_SESSIONS).click()
    message = visitor.wait(
        "istuntoja päätetty", "audit-signed-out", element=ids.END_SESSIONS_MESSAGE
    )
    assert message.startswith("sekala-it: istuntoja päätetty:")
    assert staff.get(f"{base_url}/_dash-layout").status_code == 401
    assert "sekala-it" not in browser.find_element(By.ID, ids.SESSIONS_TABLE).text
    choose(browser, ids.END_SESSIONS_USER, "kumppani")  # and her own, on this very page
    browser.find_element(By.ID, ids.END_SESSIONS).click()
    visitor.wait("kumppani: istuntoja", "audit-own-sessions", element=ids.END_SESSIONS_MESSAGE)
    browser.find_element(By.LINK_TEXT, "Salkku").click()  # the page is still open…
    WebDriverWait(browser, 10).until(ec.url_contains("/login?next="))  # …its next click signs in
    visitor.console_is_clean("audit-after-signing-out", expected=("status of 401",))
