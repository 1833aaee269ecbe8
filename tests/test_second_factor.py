"""The optional TOTP second factor of local accounts: enrolled from the command line,
asked for after the password, throttled and audited like the password, each code once.

Given Hyvälä's staff member with a second factor enrolled five minutes ago, she signs in
with her password and then the code from her app (the codes are computed with pyotp from
the secret, at the dashboard's clock); a wrong code, a code used already, a code with no
password before it and a code after the five minutes the form waits are refused; six wrong
codes from one client are slowed like six wrong passwords. In Chromium, the code's form
follows the password's and signs her in (no CSP violation in the console).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tomllib
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

import dashboard
from riskiturva import auth, db
from riskiturva.config import Config, DashboardSettings
from riskiturva.models_auth import AuditEvent, User, UserSession
from riskiturva.store import make_engine, session_factory, sync_config
from riskiturva_cli import main
from tests.browser import Visitor, chromium, served
from tests.conftest import MINIMAL_CONFIG, T0

PASSWORD = "correct horse battery"
NOW = T0 + dt.timedelta(days=1)
SECRET = pyotp.random_base32(32)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def code_at(moment: dt.datetime, steps: int = 0) -> str:
    return pyotp.TOTP(SECRET).at(moment, counter_offset=steps)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """One store with Anna, her second factor enrolled five minutes before NOW (hashing
    her password takes a second); each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("totp-store") / "riskiturva.db"
    engine = make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    enrolled = NOW - dt.timedelta(minutes=5)
    with session_factory(engine).begin() as session:
        sync_config(session, Config.model_validate(tomllib.loads(MINIMAL_CONFIG)))
        auth.create_user(
            session,
            username="anna",
            password=PASSWORD,
            role="org_staff",
            organisations=["hyvala"],
            now=T0,
        )
        auth.enable_totp(session, "anna", SECRET, code_at(enrolled), now=enrolled)
    engine.dispose()
    return path


@pytest.fixture
def estate(tmp_path, minimal_config, template):
    shutil.copyfile(template, tmp_path / "riskiturva.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    sessions = session_factory(engine)
    clock = Clock()
    settings = minimal_config.settings.model_copy(
        update={"data_dir": tmp_path, "dashboard": DashboardSettings()}
    )
    app = dashboard.create_app(
        minimal_config.model_copy(update={"settings": settings}), sessions, clock=clock
    )
    yield app, sessions, clock
    engine.dispose()


def post(client, **fields):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return client.post(
        "/login",
        data={"csrf": token, "next": "/", **fields},
        environ_base={"REMOTE_ADDR": "127.0.0.9"},
    )


def actions(sessions) -> list[tuple[str, str]]:
    with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.action.like("login.%")).order_by(AuditEvent.id)
        rows = session.scalars(query)
        return [(e.action, e.detail.get("second_factor", "")) for e in rows]


def live_sessions(sessions) -> int:
    with sessions() as session:
        return len(session.scalars(select(UserSession).where(UserSession.ended_at.is_(None))).all())


def test_the_password_then_the_code_signs_in_and_a_code_works_once(estate):
    app, sessions, _ = estate
    client = app.server.test_client()
    asked = post(client, username="anna", password=PASSWORD)
    assert asked.status_code == 200 and 'id="code"' in asked.get_data(as_text=True)
    assert 'id="password"' not in asked.get_data(as_text=True)
    assert client.get("/_dash-layout").status_code == 401  # one factor opens nothing
    assert live_sessions(sessions) == 0
    signed_in = post(client, code=code_at(NOW))
    assert signed_in.status_code == 302 and client.get("/_dash-layout").status_code == 200
    other = app.server.test_client()  # the same code again, with the right password
    post(other, username="anna", password=PASSWORD)
    replayed = post(other, code=code_at(NOW))
    assert replayed.status_code == 401 and "Väärä koodi" in replayed.get_data(as_text=True)
    assert post(other, code=code_at(NOW, 1)).status_code == 302  # the next step's code
    assert actions(sessions) == [
        ("login.ok", "totp"),
        ("login.failed", "totp"),
        ("login.ok", "totp"),
    ]
    with sessions() as session:
        failed = session.scalar(select(AuditEvent).where(AuditEvent.action == "login.failed"))
        assert failed.detail["replayed"] is True and failed.address == "127.0.0.9"


def test_wrong_codes_are_throttled_like_passwords(estate):
    app, sessions, _ = estate
    client = app.server.test_client()
    post(client, username="anna", password=PASSWORD)
    wrong = str((int(code_at(NOW)) + 500000) % 1000000).zfill(6)  # no step's code near NOW
    for _ in range(5):
        assert post(client, code=wrong).status_code == 401
    throttled = post(client, code=code_at(NOW))  # right, but too soon
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "30"
    assert [a for a, _ in actions(sessions)] == ["login.failed"] * 5 + ["login.throttled"]
    assert live_sessions(sessions) == 0


def test_a_code_needs_the_password_first_and_the_form_waits_five_minutes(estate):
    app, sessions, clock = estate
    client = app.server.test_client()
    alone = post(client, code=code_at(NOW))
    assert alone.status_code == 401 and "Väärä käyttäjätunnus" in alone.get_data(as_text=True)
    post(client, username="anna", password=PASSWORD)
    clock.now = NOW + dt.timedelta(minutes=6)
    late = post(client, code=code_at(clock.now))
    assert late.status_code == 401 and live_sessions(sessions) == 0


@pytest.mark.browser
@pytest.mark.slow  # ≈ 14 s; the HTTP-level tests above are the fast set
def test_in_the_browser_the_code_form_follows_the_password(estate):
    app, _, _ = estate
    with chromium() as driver, served(app) as base:
        visitor = Visitor(driver, base, "totp", PASSWORD)
        visitor.sign_in("anna")
        WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "code")))
        visitor.screenshot("code-form")
        visitor.console_is_clean("code-form")
        driver.find_element(By.ID, "code").send_keys(code_at(NOW))
        driver.find_element(By.ID, "login-submit").click()
        assert "Hyvälän kunta" in visitor.wait("Korjausten tärkeysjärjestys", "signed-in")


def test_totp_is_enrolled_and_removed_from_the_command_line(tmp_path, monkeypatch):
    config = tmp_path / "riskiturva.toml"
    config.write_text(MINIMAL_CONFIG.replace('data_dir = "data"', f'data_dir = "{tmp_path}"'))
    runner = CliRunner()
    # The secret the command prints is random; the test knows it to play the phone's part.
    monkeypatch.setattr(auth, "new_totp_secret", lambda: SECRET)

    def run(*args, given=None):
        return runner.invoke(main, ["users", *args, "--config", str(config)], input=given)

    def sign_in_method() -> str:
        return json.loads(run("list", "--format", "json").output)[0]["sign_in"]

    added = run("add", "anna", "--role", "viewer", "--org", "hyvala", "--password-stdin",
                given=PASSWORD + "\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    wrong = str((int(pyotp.TOTP(SECRET).now()) + 500000) % 1000000).zfill(6)
    refused = run("totp-enable", "anna", given=f"{wrong}\n")
    assert refused.exit_code == 2 and "does not match" in refused.output
    assert f"secret: {SECRET}" in refused.output
    assert f"otpauth://totp/Riskiturva:anna?secret={SECRET}&issuer=Riskiturva" in refused.output
    assert sign_in_method() == "password"  # a wrong code enrols nothing
    enrolled = run("totp-enable", "anna", given=pyotp.TOTP(SECRET).now() + "\n")
    assert enrolled.exit_code == 0, enrolled.output
    assert sign_in_method() == "password+totp"
    assert run("totp-disable", "anna").exit_code == 0
    assert sign_in_method() == "password"
    engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    with session_factory(engine)() as session:
        assert session.scalar(select(User.totp_secret)) is None
        done = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    engine.dispose()
    assert done[-2:] == ["user.totp_enabled", "user.totp_disabled"]
