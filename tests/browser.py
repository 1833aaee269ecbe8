"""Headless Chromium for the dashboard's browser tests: the browser, a served app, and a
visitor who signs in, opens pages, waits for text and takes screenshots (`screenshots/`,
git-ignored, for people to look at), at a phone's width if asked, and runs axe-core on a
page (`tests/axe/`, installed by `npm ci` in `make install`)."""

from __future__ import annotations

import base64
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

import dashboard
from dashboard import ids

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "screenshots"
AXE = ROOT / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# What axe-core judges: the WCAG 2.1 A and AA rules and its best practices.
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")
DESKTOP = (1400, 1100)
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1400,1100",
    "--lang=fi",  # the browser's own widgets (the date input) as a Finnish user sees them
)


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """Debian's chromium through its chromedriver (the test is skipped without them)."""
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip("needs Debian's chromium and chromium-driver (make system-packages)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for CSP
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app served on a free loopback port; yields its base URL."""
    server = dashboard.make_server(app, port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)


class Visitor:
    """One person at the browser: signs in, opens pages, waits for text, takes pictures,
    and finds the console clean on every page (no CSP violation, no error)."""

    def __init__(self, driver: webdriver.Chrome, base: str, name: str, password: str):
        self.driver, self.base, self.name, self.password = driver, base, name, password
        self.width = DESKTOP[0]
        driver.get_log("browser")  # what an earlier visitor left in the console is theirs

    def sign_in(self, username: str, password: str | None = None) -> None:
        self.driver.delete_all_cookies()
        self.driver.get(f"{self.base}/login")
        self.driver.find_element(By.ID, "username").send_keys(username)
        self.driver.find_element(By.ID, "password").send_keys(password or self.password)
        self.driver.find_element(By.ID, "login-submit").click()

    def open(self, path: str, expect: str, shot: str) -> str:
        """Go to `path`, wait until the page shows `expect`, save a screenshot."""
        self.driver.get(f"{self.base}{path}")
        return self.wait(expect, shot)

    def wait(
        self, expect: str, shot: str, element: str = ids.PAGE, *, expected: tuple[str, ...] = ()
    ) -> str:
        """Wait until #`element` shows `expect`, save a screenshot, find the console clean
        (`expected`: parts of console messages this page is meant to cause)."""
        try:
            WebDriverWait(self.driver, 20).until(
                ec.text_to_be_present_in_element((By.ID, element), expect)
            )
        except TimeoutException:
            self.screenshot(f"{shot}-FAILED")
            raise AssertionError(
                f"{expect!r} never appeared in #{element} for {self.name}"
            ) from None
        self.settle()
        self.screenshot(shot)
        self.console_is_clean(shot, expected=expected)
        return str(self.driver.find_element(By.ID, element).text)

    def console_is_clean(self, shot: str, *, expected: tuple[str, ...] = ()) -> None:
        """Nothing in Chromium's console since the last look: no CSP violation, no error
        (`expected`: parts of messages this page is meant to cause, such as a 404)."""
        problems = [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if (
                entry["level"] in ("SEVERE", "WARNING")
                or "Content Security Policy" in entry["message"]
            )
            and not any(part in entry["message"] for part in expected)
        ]
        assert not problems, f"{self.name} {shot}: the console says {problems}"

    def settle(self) -> None:
        """Wait for Dash to finish its callbacks (no `_dash-loading` state left)."""
        WebDriverWait(self.driver, 20).until(
            lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']")
        )

    def viewport(self, width: int, height: int = 844) -> None:
        """Lay pages out as a phone of `width` CSS pixels does (a mobile viewport that
        honours `<meta name=viewport>`); `DESKTOP`'s width: the desktop window again."""
        self.width = width
        if (width, height) == DESKTOP:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
            return
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True},
        )

    def sideways(self) -> list[str]:
        """What makes the page wider than the window (empty when it does not scroll
        sideways): the outermost elements reaching past the right edge. A phone zooms out
        to fit a page wider than itself, which widens `innerWidth`: so the page's width is
        held to the phone's, too."""
        return list(
            self.driver.execute_script(
                """
                const width = Math.min(window.innerWidth, arguments[0]);
                if (document.documentElement.scrollWidth <= width &&
                    window.innerWidth <= arguments[0]) return [];
                const out = [];
                for (const el of document.querySelectorAll('body *')) {
                  const box = el.getBoundingClientRect();
                  if (box.right <= width + 0.5 || box.width === 0) continue;
                  let parent = el.parentElement, inside = false;
                  while (parent && parent !== document.body) {
                    const style = getComputedStyle(parent);
                    if (parent.getBoundingClientRect().right > width + 0.5 ||
                        /(auto|scroll|hidden|clip)/.test(style.overflowX)) {
                      inside = true; break;
                    }
                    parent = parent.parentElement;
                  }
                  if (!inside) out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                    (el.className && typeof el.className === 'string' ?
                      '.' + el.className.trim().split(/\\s+/).join('.') : '') +
                    ' ' + Math.round(box.right) + 'px');
                }
                return [`scrollWidth ${document.documentElement.scrollWidth}, ` +
                        `innerWidth ${window.innerWidth}, phone ${arguments[0]}`, ...out];
                """,
                self.width,
            )
        )

    def visible_in_window(self, css: str) -> bool:
        """The element is drawn inside the window's width (not cut off at a card's edge,
        not needing a sideways scroll of the page) and not hidden."""
        return bool(
            self.driver.execute_script(
                """
                const el = document.querySelector(arguments[0]);
                if (!el) return false;
                const box = el.getBoundingClientRect();
                let parent = el.parentElement;
                while (parent) {  // a panel that scrolls inside counts as showing it
                  const style = getComputedStyle(parent);
                  if (/(hidden|clip)/.test(style.overflowX)) {
                    const outer = parent.getBoundingClientRect();
                    if (box.left < outer.left - 0.5 || box.right > outer.right + 0.5) return false;
                  }
                  parent = parent.parentElement;
                }
                return box.width > 0 && box.height > 0 && box.left >= 0 &&
                       box.right <= window.innerWidth + 0.5 &&
                       getComputedStyle(el).visibility !== 'hidden';
                """,
                css,
            )
        )

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's violations on the page as it is now (rule id, impact, help, nodes)."""
        if not AXE.exists():
            pytest.skip("needs axe-core: `npm ci` in tests/axe (make install)")
        self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        found = self.driver.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            axe.run(document, {runOnly: {type: 'tag', values: arguments[0]},
                               resultTypes: ['violations']})
              .then(r => done(r.violations.map(v => ({
                 id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}))))
              .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e),
                                 nodes: []}]));
            """,
            list(AXE_TAGS),
        )
        return list(found)

    def screenshot(self, shot: str, *, whole: bool = False) -> None:
        """The window, or (`whole`) the whole page from top to bottom."""
        path = SCREENSHOTS / f"{self.name}-{shot}.png"
        if not whole:
            self.driver.save_screenshot(str(path))
            return
        image = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        path.write_bytes(base64.b64decode(image["data"]))

    def no_alert(self) -> None:
        """No JavaScript `alert()` ran (a hostile string was never parsed as markup)."""
        with pytest.raises(NoAlertPresentException):
            self.driver.switch_to.alert  # noqa: B018
