"""The dashboard as people live in it: on a phone, by keyboard and screen reader, and by
following links from a summary to the findings behind it.

Given a small store (fast, in CI): Hyvälä's staff at 390 px read the overview without
scrolling sideways, see each priority's gain, effort and due date, find no serious
accessibility problem (axe-core), follow a priority to its findings, narrow them, reload
the address and get the same view, and sort by severity in severity order.

Given the lab scanned by every collector (slow): every page of every role (partner
administrator, organisation staff, management viewer) fits 390 px, and some 360 px;
axe-core finds no serious or critical violation on any of them, in the light and the dark
theme; Tab reaches the main controls with a visible focus. Screenshots: `screenshots/`.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import dashboard
from dashboard import ids
from dashboard.pages.findings import FILTER_IDS
from riskiturva import auth
from riskiturva.config import Config
from riskiturva.db import open_store
from riskiturva.models import Asset, Finding, Organisation, ScanRun
from riskiturva.store import ObservedFinding, reconcile, sync_config
from riskiturva.terms import SEVERITY, term
from tests.browser import DESKTOP, Visitor, chromium, served
from tests.conftest import MINIMAL_CONFIG, T0

pytestmark = pytest.mark.browser

PASSWORD = "lab password for tests"
NOW = T0 + dt.timedelta(days=40)  # critical (15 days) and high (30) are overdue by then
SERIOUS = ("serious", "critical")
SEVERITY_ORDER = tuple(term(SEVERITY, key, "fi") for key in SEVERITY)  # most severe first
HYVALA_FINDINGS = (  # (check, subject): every severity, two RDP hosts
    ("services.exposed.rdp", "127.60.1.10:3389/tcp"),
    ("services.exposed.rdp", "127.60.1.11:3389/tcp"),
    ("dns.axfr.open", "127.60.1.10:53/tcp"),
    ("dns.dnssec.unsigned", "hyvala.test"),
    ("dns.caa.missing", "hyvala.test"),
    ("tls.certificate.no_ocsp_stapling", "127.60.1.10:443"),
)


def _observed(check_id: str, subject: str, registry: Any) -> ObservedFinding:
    check = registry[check_id]
    return ObservedFinding(
        check_id=check_id,
        subject=subject,
        target=subject,
        asset=subject.split(":")[0] if subject[0].isdigit() else "hyvala.test",
        category=str(check.category),
        severity=str(check.severity),
        evidence={},
        reproduce=None,
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Iterator[str]:
    """Hyvälä with six findings of every severity first seen 40 days ago, its staff, and
    the app served on them (its clock at NOW)."""
    from riskiturva.checks import load_registry

    folder = tmp_path_factory.mktemp("living")
    config = Config.model_validate(tomllib.loads(MINIMAL_CONFIG))
    settings = config.settings.model_copy(
        update={"data_dir": folder, "database_url": f"sqlite:///{folder / 'small.db'}"}
    )
    config = config.model_copy(update={"settings": settings})
    sessions = open_store(config)
    registry = load_registry()
    with sessions.begin() as session:
        orgs = sync_config(session, config)
        run = ScanRun(
            collector="scripted",
            organisations=["hyvala"],
            status="ok",
            started_at=T0,
            finished_at=T0,
            counts={},
        )
        session.add(run)
        session.flush()
        observed = [_observed(c, s, registry) for c, s in HYVALA_FINDINGS]
        reconcile(
            session,
            organisation=orgs["hyvala"],
            collector="scripted",
            run_id=run.id,
            observed=observed,
            scanned_ok={o.subject for o in observed},
            now=T0,
        )
        auth.create_user(
            session,
            username="hyvala-it",
            password=PASSWORD,
            role=auth.Role.ORG_STAFF,
            organisations=["hyvala"],
            now=T0,
        )
    app = dashboard.create_app(config, sessions, clock=lambda: NOW)
    with served(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


def serious(violations: list[dict[str, Any]]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['nodes'][:2]}" for v in violations if v["impact"] in SERIOUS
    ]


def column(browser: webdriver.Chrome, table: str, name: str) -> list[str]:
    cells = browser.find_elements(By.CSS_SELECTOR, f"#{table} td[data-dash-column='{name}']")
    return [c.text for c in cells]


def test_staff_on_a_phone_follow_a_priority_to_its_findings_and_share_the_view(browser, small):
    # Given Hyvälä's staff on a phone 390 px wide
    visitor = Visitor(browser, small, "phone", PASSWORD)
    visitor.viewport(390)
    try:
        visitor.sign_in("hyvala-it")
        visitor.wait("Korjausten tärkeysjärjestys", "overview-390", element=ids.PAGE)
        visitor.screenshot("overview-390-whole", whole=True)
        # Then the page does not scroll sideways, and each priority says its gain, effort
        # and due date inside the window
        assert visitor.sideways() == []
        assert browser.execute_script("return window.innerWidth") == 390
        assert browser.execute_script("return document.documentElement.lang") == "fi"
        for label in ("Hyöty", "Työmäärä", "Määräaika"):
            assert visitor.visible_in_window(f"#{ids.PRIORITIES} td[data-label='{label}']"), label
        # And axe-core finds nothing serious
        assert serious(visitor.axe()) == []

        # When they follow the first priority (exposed RDP on two hosts)
        browser.find_element(By.CSS_SELECTOR, f"#{ids.PRIORITIES} td a").click()
        shown = visitor.wait("Havaintoja näkyvissä: 2", "priority-findings-390")
        # Then the findings are those of its check, and the address says so
        assert "check=services.exposed.rdp" in browser.current_url
        assert set(column(browser, ids.FINDINGS_TABLE, "subject")) == {
            "127.60.1.10:3389/tcp",
            "127.60.1.11:3389/tcp",
        }
        assert "Havainto" in shown and visitor.sideways() == []
    finally:
        visitor.viewport(*DESKTOP)

    # When they narrow to one asset, the address follows; reloaded, it shows the same
    choose(browser, ids.FILTER_ASSET, "127.60.1.11")
    visitor.wait("Havaintoja näkyvissä: 1", "priority-one-asset", element=ids.FINDINGS_COUNT)
    WebDriverWait(browser, 10).until(ec.url_contains("asset=127.60.1.11"))
    shared = browser.current_url
    browser.get(shared)  # as a colleague opens the link
    visitor.wait("Havaintoja näkyvissä: 1", "shared-view")
    assert column(browser, ids.FINDINGS_TABLE, "subject") == ["127.60.1.11:3389/tcp"]
    assert "127.60.1.11" in browser.find_element(By.ID, ids.FILTER_ASSET).text

    # And a shared address with a timing filter: the overdue ones (critical and high)
    visitor.open("/org/hyvala/findings?due=overdue", "Havaintoja näkyvissä: 3", "overdue")
    assert all("Myöhässä" in d for d in column(browser, ids.FINDINGS_TABLE, "due"))

    # When they sort all open findings by severity, it is severity order, both ways
    visitor.open("/org/hyvala/findings", "Havaintoja näkyvissä: 6", "all-open")
    sort = f"#{ids.FINDINGS_TABLE} th[data-dash-column='severity'] .column-header--sort"
    browser.find_element(By.CSS_SELECTOR, sort).click()
    WebDriverWait(browser, 10).until(
        lambda d: (
            column(d, ids.FINDINGS_TABLE, "severity")[0] in (SEVERITY_ORDER[0], SEVERITY_ORDER[-1])
        )
    )
    visitor.settle()
    order = column(browser, ids.FINDINGS_TABLE, "severity")
    ranked = sorted(order, key=SEVERITY_ORDER.index)
    assert order in (ranked, ranked[::-1]), order
    assert len(set(order)) == 5 and order != sorted(order)  # five severities, not A–Z
    browser.find_element(By.CSS_SELECTOR, sort).click()
    WebDriverWait(browser, 10).until(
        lambda d: column(d, ids.FINDINGS_TABLE, "severity") == order[::-1]
    )
    visitor.console_is_clean("sorted")


def choose(browser: webdriver.Chrome, dropdown: str, option: str) -> None:
    """Pick `option` in a Dash dropdown as a user does: open it, click the option."""
    browser.find_element(By.ID, dropdown).click()
    WebDriverWait(browser, 10).until(
        ec.element_to_be_clickable((By.XPATH, f"//*[@role='option'][contains(., '{option}')]"))
    ).click()
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)


# --- every page, every role: the lab ---------------------------------------------------


@dataclass(frozen=True)
class Lab:
    base: str
    paths: dict[str, tuple[str, tuple[str, ...]]]  # role: (user, paths)


@pytest.fixture(scope="module")
def lab_dashboard(lab, tmp_path_factory) -> Iterator[Lab]:
    from tests.test_dashboard_browser import add_history, add_people, scanned_store

    config, sessions = scanned_store(lab, tmp_path_factory.mktemp("living-lab"))
    add_history(sessions, config, dt.datetime.now(dt.UTC).date())
    add_people(sessions)
    paths = _paths(sessions)
    app = dashboard.create_app(config, sessions)
    with served(app) as url:
        yield Lab(url, paths)


def _paths(sessions: sessionmaker[Session]) -> dict[str, tuple[str, tuple[str, ...]]]:
    with sessions() as session:
        finding = session.scalar(
            select(Finding.id).join(Organisation).where(Organisation.slug == "sekala")
        )
        asset = session.scalar(
            select(Asset.id).join(Organisation).where(Organisation.slug == "sekala")
        )
    sekala = (
        "/org/sekala",
        "/org/sekala/findings",
        f"/findings/{finding}",
        "/org/sekala/assets",
        f"/org/sekala/assets/{asset}",
        "/org/sekala/proposals",
        "/org/sekala/score",
        "/org/sekala/exceptions",
        "/org/sekala/scans",
        "/org/sekala/alerts",
        "/org/sekala/reports",
    )
    return {
        "partner": ("kumppani", ("/", "/alerts", "/audit", "/reports", *sekala)),
        "staff": ("sekala-it", ("/alerts", *sekala)),
        "viewer": (
            "hyvala-johto",
            (
                "/org/hyvala",
                "/org/hyvala/score",
                "/org/hyvala/exceptions",
                "/org/hyvala/reports",
                "/org/hyvala/findings",
            ),
        ),
    }


NARROWEST = {"/", "/org/sekala", "/org/sekala/findings", "/org/hyvala"}  # also at 360 px


def _visit(visitor: Visitor, path: str, shot: str) -> None:
    visitor.driver.get(f"{visitor.base}{path}")
    WebDriverWait(visitor.driver, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.PAGE} h1, #{ids.PAGE} h2")
    )
    visitor.settle()
    visitor.screenshot(shot, whole=True)
    visitor.console_is_clean(shot, expected=("status of 404",))


@pytest.mark.lab
@pytest.mark.slow  # ~2.5 min: a lab scan (~90 s), three sign-ins, 34 page loads
def test_every_page_of_every_role_fits_a_phone(browser, lab_dashboard):
    wide: dict[str, list[str]] = {}
    checked = Counter()
    for role, (user, paths) in lab_dashboard.paths.items():
        visitor = Visitor(browser, lab_dashboard.base, f"fit-{role}", PASSWORD)
        visitor.sign_in(user)
        WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.ID, ids.PAGE)))
        try:
            for path in paths:
                for width in (390, 360) if path in NARROWEST else (390,):
                    visitor.viewport(width)
                    name = path.strip("/").replace("/", "-") or "home"
                    _visit(visitor, path, f"{name}-{width}")
                    checked[width] += 1
                    if problems := visitor.sideways():
                        wide[f"{role} {path} @{width}"] = problems[:4]
                    if path == "/org/sekala":  # Hyvälä has nothing to fix
                        for label in ("Hyöty", "Työmäärä", "Määräaika"):
                            css = f"#{ids.PRIORITIES} td[data-label='{label}']"
                            assert visitor.visible_in_window(css), (role, path, width, label)
        finally:
            visitor.viewport(*DESKTOP)
    print(f"pages checked by width: {dict(checked)}; sideways: {len(wide)}")
    assert checked[390] == sum(len(p) for _, p in lab_dashboard.paths.values())
    assert wide == {}


@pytest.mark.lab
@pytest.mark.slow  # ~1.5 min: axe-core on 28 pages, light and dark
def test_axe_finds_nothing_serious_on_any_page_of_any_role(browser, lab_dashboard):
    found: dict[str, list[str]] = {}
    rules: Counter[str] = Counter()
    for scheme in ("light", "dark"):
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )
        for role, (user, paths) in lab_dashboard.paths.items():
            visitor = Visitor(browser, lab_dashboard.base, f"axe-{scheme}-{role}", PASSWORD)
            visitor.sign_in(user)
            WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.ID, ids.PAGE)))
            for path in paths:
                _visit(visitor, path, path.strip("/").replace("/", "-") or "home")
                assert browser.execute_script("return document.documentElement.lang") == "fi"
                violations = visitor.axe()
                rules.update(v["id"] for v in violations if v["impact"] in SERIOUS)
                if bad := serious(violations):
                    found[f"{scheme} {role} {path}"] = bad
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    print(f"serious or critical axe violations by rule: {dict(rules)}")
    assert found == {}


@pytest.mark.lab
@pytest.mark.slow  # a sign-in and a few pages
def test_tab_reaches_the_main_controls_with_a_visible_focus(browser, lab_dashboard):
    visitor = Visitor(browser, lab_dashboard.base, "keyboard", PASSWORD)
    visitor.sign_in("sekala-it")
    _visit(visitor, "/org/sekala/findings", "keyboard-findings")
    browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    controls = {ids.SIGN_OUT, "tab-overview", *FILTER_IDS, ids.EXPORT}
    reached: list[str] = []
    for _ in range(40):  # from the top of the page, as it loaded
        browser.switch_to.active_element.send_keys(Keys.TAB)
        focused = browser.switch_to.active_element
        outline = browser.execute_script(
            "const s = getComputedStyle(arguments[0]);"
            "return [s.outlineStyle, parseFloat(s.outlineWidth)];",
            focused,
        )
        html = focused.get_attribute("outerHTML")[:200]
        assert outline[0] != "none" and outline[1] >= 2, (html, outline)
        reached.append(focused.get_attribute("id") or focused.text)
        if controls <= set(reached):
            break
    assert controls <= set(reached), reached
    # And a dropdown opens from the keyboard and takes a choice
    browser.find_element(By.ID, ids.FILTER_SEVERITY).send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(
        ec.visibility_of_element_located(
            (By.XPATH, f"//*[@role='option'][contains(., '{term(SEVERITY, 'high', 'fi')}')]")
        )
    )
    visitor.screenshot("keyboard-dropdown-open")
