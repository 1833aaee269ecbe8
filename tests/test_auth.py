"""Accounts: password hashes, roles and visible organisations, the sign-in rate limit, the
session-signing secret, and the `riskiturva users` commands."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from riskiturva import auth
from riskiturva.config import DashboardSettings, Settings
from riskiturva.models_auth import AuditEvent, User
from riskiturva.store import sync_config
from riskiturva_cli import main
from tests.conftest import MINIMAL_CONFIG, T0

PASSWORD = "correct horse battery"
WINDOW = dt.timedelta(minutes=15)


@pytest.fixture
def store(sessions, minimal_config):
    with sessions.begin() as session:
        sync_config(session, minimal_config)
    return sessions


def add(session, username="anna", role=auth.Role.ORG_STAFF, orgs=("hyvala",), **extra):
    return auth.create_user(
        session,
        username=username,
        password=PASSWORD,
        role=role,
        organisations=orgs,
        now=T0,
        **extra,
    )


def sign_in(session, username="anna", password=PASSWORD, address="127.0.0.1", at=T0):
    return auth.authenticate(
        session, username, password, address=address, now=at, attempts=3, window=WINDOW
    )


def test_passwords_are_stored_as_argon2id_hashes_and_verified(store):
    with store.begin() as session:
        user = add(session, username=" Anna ")
        assert user.username == "anna"
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert sign_in(session).viewer.username == "anna"
        assert sign_in(session, password="correct horse batterY").viewer is None
        assert sign_in(session, username="nobody").viewer is None


def test_accounts_are_validated(store):
    with store.begin() as session:
        with pytest.raises(auth.AccountError, match="12 characters"):
            auth.create_user(
                session,
                username="x",
                password="short",
                role="org_staff",
                organisations=["hyvala"],
                now=T0,
            )
        with pytest.raises(auth.AccountError, match="unknown organisation"):
            add(session, orgs=("nowhere",))
        with pytest.raises(auth.AccountError, match="exactly one"):
            add(session, orgs=("hyvala", "rapala"))
        with pytest.raises(ValueError):
            add(session, role="superuser")
        add(session)
        with pytest.raises(auth.AccountError, match="exists"):
            add(session, username="ANNA")


def test_each_role_sees_its_organisations(store):
    with store.begin() as session:
        staff = add(session)
        everything = add(session, "partner", auth.Role.PARTNER_ADMIN, ())
        some = add(session, "partner2", auth.Role.PARTNER_ADMIN, ("rapala",))
        viewer = add(session, "boss", auth.Role.VIEWER, ("hyvala",))
        assert auth.visible_slugs(session, staff) == {"hyvala"}
        assert auth.visible_slugs(session, everything) == {"hyvala", "rapala"}
        assert auth.visible_slugs(session, some) == {"rapala"}
        boss = sign_in(session, "boss").viewer
        assert boss.visible == {"hyvala"}
        assert (boss.can_decide, boss.sees_details) == (False, False)
        anna = sign_in(session).viewer
        assert (anna.can_decide, anna.sees_details) == (True, True)
        partner = sign_in(session, "partner").viewer
        assert (partner.can_decide, partner.sees_details) == (False, True)
        assert viewer.role == "viewer"


def test_failures_throttle_by_user_name_and_by_address(store):
    with store.begin() as session:
        add(session)
        add(session, "ville", auth.Role.VIEWER, ("rapala",))
        for minute in range(3):
            at = T0 + dt.timedelta(minutes=minute)
            assert not sign_in(session, password="wrong", address="127.0.0.2", at=at).throttled
        later = T0 + dt.timedelta(minutes=5)
        assert sign_in(session, address="127.0.0.3", at=later).throttled  # same name
        assert sign_in(session, "ville", address="127.0.0.2", at=later).throttled  # same address
        assert sign_in(session, "ville", address="127.0.0.3", at=later).viewer is not None
        after_window = T0 + dt.timedelta(minutes=16)
        assert sign_in(session, address="127.0.0.3", at=after_window).viewer is not None
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions.count("login.failed") == 3
    assert actions.count("login.throttled") == 2
    assert actions.count("login.ok") == 2


def test_disabled_accounts_and_old_sessions_are_refused(store):
    with store.begin() as session:
        user = add(session)
        epoch = user.session_epoch
        assert auth.load_viewer(session, user.id, epoch) is not None
        auth.disable_user(session, "anna", now=T0)
        assert auth.load_viewer(session, user.id, epoch) is None
        assert sign_in(session).viewer is None
        auth.set_password(session, "anna", "a brand new password", now=T0)
        assert auth.load_viewer(session, user.id, epoch) is None
        assert auth.load_viewer(session, user.id, user.session_epoch) is not None
        assert sign_in(session, password="a brand new password").viewer is not None


def test_secret_key_is_generated_once_into_the_data_dir(tmp_path):
    settings = Settings(data_dir=tmp_path)
    first = auth.secret_key(settings)
    assert len(first) == 64
    assert auth.secret_key(settings) == first
    path = tmp_path / "dashboard-secret.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert auth.secret_key(Settings(data_dir=tmp_path / "other")) != first


def test_a_configured_secret_key_file_is_used_and_must_be_long(tmp_path):
    (tmp_path / "key").write_text("k" * 40)
    settings = Settings(data_dir=tmp_path, dashboard=DashboardSettings(secret_key_file="key"))
    assert auth.secret_key(settings) == b"k" * 40
    (tmp_path / "key").write_text("short")
    with pytest.raises(auth.AccountError, match="at least 32"):
        auth.secret_key(settings)


def test_users_commands(tmp_path):
    config = tmp_path / "riskiturva.toml"
    config.write_text(MINIMAL_CONFIG.replace('data_dir = "data"', f'data_dir = "{tmp_path}"'))
    runner = CliRunner()

    def run(*args, password=None):
        return runner.invoke(main, ["users", *args, "--config", str(config)], input=password)

    added = run(
        "add",
        "anna",
        "--role",
        "org_staff",
        "--org",
        "hyvala",
        "--password-stdin",
        password=PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.output
    refused = run(
        "add",
        "bob",
        "--role",
        "viewer",
        "--org",
        "nowhere",
        "--password-stdin",
        password=PASSWORD + "\n",
    )
    assert refused.exit_code == 2 and "unknown organisation" in refused.output
    assert run("disable", "anna").exit_code == 0
    listed = json.loads(run("list", "--format", "json").output)
    assert listed == [
        {
            "username": "anna",
            "name": "anna",
            "role": "org_staff",
            "organisations": ["hyvala"],
            "disabled": True,
            "last_login": None,
        }
    ]
    assert (
        run("set-password", "anna", "--password-stdin", password="a brand new password\n").exit_code
        == 0
    )
    assert json.loads(run("list", "--format", "json").output)[0]["disabled"] is False
    from riskiturva.store import make_engine, session_factory

    engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    with session_factory(engine)() as session:
        actors = set(session.scalars(select(AuditEvent.actor)))
        assert session.scalar(select(User.username)) == "anna"
    engine.dispose()
    assert all(a.startswith("cli:") for a in actors)
