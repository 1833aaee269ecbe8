"""Headless Chromium for the dashboard's browser tests: the browser, a served app, and a
visitor who signs in, opens pages, waits for text and takes screenshots (`screenshots/`,
git-ignored, for people to look at)."""

from __future__ import annotations

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

    def screenshot(self, shot: str) -> None:
        self.driver.save_screenshot(str(SCREENSHOTS / f"{self.name}-{shot}.png"))

    def no_alert(self) -> None:
        """No JavaScript `alert()` ran (a hostile string was never parsed as markup)."""
        with pytest.raises(NoAlertPresentException):
            self.driver.switch_to.alert  # noqa: B018
