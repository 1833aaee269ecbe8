"""Sign-in through the lab's OpenID Connect provider in headless Chromium.

Given the dashboard served on loopback and configured for the lab provider
(`tests/oidc_provider.py`), a person presses "Kirjaudu: Lab Entra ID" on the sign-in page,
picks who they are at the provider and comes back signed in: Hyvälä's staff member on
Hyvälä's overview, the partner administrator on the portfolio. An ID token signed with a
key the provider never published, and a person with no mapped role, come back to a page
that says the sign-in was refused, with nothing signed in. No page of the flow logs a
Content-Security-Policy violation or any other error in the console. Screenshots go to
`screenshots/oidc-*.png`.
"""

from __future__ import annotations

import socket
import threading

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

import dashboard
from riskiturva import db
from riskiturva.config import DashboardSettings
from riskiturva.models_auth import AuditEvent
from riskiturva.store import make_engine, session_factory, sync_config
from tests.browser import Visitor, chromium
from tests.oidc_provider import running_provider
from tests.test_oidc import CLIENT_ID, PEOPLE, SECRET, oidc_settings

pytestmark = [pytest.mark.browser]  # ≈ 9 s: in the fast set, the one browser case of it


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_people_sign_in_through_the_provider_and_land_on_their_pages(tmp_path, minimal_config):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    db.upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        sync_config(session, minimal_config)
    (tmp_path / "oidc-client-secret").write_text(SECRET)
    with running_provider(
        client_id=CLIENT_ID,
        secret=SECRET,
        redirect_uri=f"{base}/login/oidc/callback",
        people=PEOPLE,
    ) as provider:
        provider_settings = oidc_settings(provider.issuer, public_url=base)
        settings = minimal_config.settings.model_copy(
            update={
                "data_dir": tmp_path,
                "dashboard": DashboardSettings.model_validate({"oidc": provider_settings}),
            }
        )
        app = dashboard.create_app(
            minimal_config.model_copy(update={"settings": settings}), sessions
        )
        server = dashboard.make_server(app, port=port)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            with chromium() as driver:
                visitor = Visitor(driver, base, "oidc", "")

                def through_provider(person: str) -> None:
                    driver.delete_all_cookies()
                    driver.get(f"{base}/login")
                    visitor.console_is_clean("login")
                    visitor.screenshot("login")
                    driver.find_element(By.ID, "login-oidc").click()
                    WebDriverWait(driver, 20).until(
                        ec.presence_of_element_located((By.ID, f"person-{person}"))
                    )
                    assert driver.current_url.startswith(f"{provider.issuer}/authorize?")
                    driver.find_element(By.ID, f"person-{person}").click()

                through_provider("anna@hyvala.test")
                text = visitor.wait("Korjausten tärkeysjärjestys", "staff-overview")
                assert "Hyvälän kunta" in text
                assert driver.current_url == f"{base}/"
                assert driver.find_element(By.ID, "user-name").text == "Anna Hyvälä"

                through_provider("kaisa@kumppani.test")
                text = visitor.wait("Salkku", "partner-portfolio")
                assert "Hyvälän kunta" in text and "Rapalan kunta" in text

                provider.tamper = "signature"
                through_provider("anna@hyvala.test")
                refused = visitor.wait(
                    "Kirjautuminen estettiin",
                    "refused-signature",
                    element="oidc-refused",
                    expected=("403 (FORBIDDEN)",),  # the refusal page's own status
                )
                assert "allekirjoitus" in refused
                provider.tamper = None

                through_provider("olli@hyvala.test")
                visitor.wait(
                    "ylläpitäjää",
                    "refused-unmapped",
                    element="oidc-refused",
                    expected=("403 (FORBIDDEN)",),
                )
                driver.get(f"{base}/")
                assert driver.current_url.startswith(f"{base}/login")  # nobody signed in
        finally:
            server.close()
            thread.join(timeout=5)
    with sessions() as session:
        events = session.execute(
            select(AuditEvent.action, AuditEvent.actor).where(AuditEvent.action.like("login.%"))
        ).all()
    engine.dispose()
    assert sorted(events) == sorted(
        [
            ("login.ok", "anna@hyvala.test"),
            ("login.ok", "kaisa@kumppani.test"),
            ("login.failed", "oidc"),
            ("login.failed", "olli@hyvala.test"),
        ]
    )
