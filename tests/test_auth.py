"""Accounts: password hashes, roles and visible organisations, the sign-in throttle,
server-side sessions, the session-signing secret, and the `riskiturva users` commands."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from riskiturva import auth, user_sessions
from riskiturva.config import DashboardSettings, Settings, load_config
from riskiturva.models_auth import AuditEvent, User, UserSession
from riskiturva.signin_throttle import ThrottlePolicy
from riskiturva.store import sync_config
from riskiturva.user_sessions import SessionLimits
from riskiturva_cli import main
from tests.conftest import MINIMAL_CONFIG, T0

PASSWORD = "correct horse battery"
POLICY = ThrottlePolicy(
    attempts=3,
    window=dt.timedelta(minutes=15),
    backoff=dt.timedelta(seconds=30),
    account_attempts=10,
    account_window=dt.timedelta(hours=24),
)
LIMITS = SessionLimits(lifetime=dt.timedelta(hours=12), idle=dt.timedelta(minutes=60))


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


def sign_in(session, username="anna", password=PASSWORD, address="127.0.0.1", at=T0, known=False):
    return auth.authenticate(
        session, username, password, address=address, known_client=known, now=at, policy=POLICY
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


def test_failures_slow_that_name_from_that_client_only(store):
    with store.begin() as session:
        add(session)
        add(session, "ville", auth.Role.VIEWER, ("rapala",))
        for second in range(3):  # the free failures
            at = T0 + dt.timedelta(seconds=second)
            assert not sign_in(session, password="wrong", address="127.0.0.2", at=at).throttled
        at = T0 + dt.timedelta(seconds=5)
        refused = sign_in(session, address="127.0.0.2", at=at)  # the right password, unchecked
        assert refused.viewer is None
        assert refused.retry_after == dt.timedelta(seconds=30 - 3)  # 30 s after the last one
        assert sign_in(session, address="127.0.0.3", at=at).viewer is not None  # other client
        assert (
            sign_in(session, "ville", address="127.0.0.2", at=at).viewer is not None
        )  # other name
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions.count("login.failed") == 3
    assert actions.count("login.throttled") == 1
    assert actions.count("login.ok") == 2


def test_the_wait_doubles_with_each_failure_and_waiting_is_enough(store):
    with store.begin() as session:
        add(session)
        at = T0
        for _ in range(3):
            sign_in(session, password="wrong", at=at)
        for wait in (30, 60, 120):  # after the 3rd, 4th, 5th failure
            assert sign_in(session, at=at + dt.timedelta(seconds=wait - 1)).throttled
            at += dt.timedelta(seconds=wait)
            assert not sign_in(session, password="wrong", at=at).throttled
        assert sign_in(session, at=at + dt.timedelta(seconds=239)).throttled  # refusals: free
        assert sign_in(session, at=at + dt.timedelta(seconds=240)).viewer is not None


def test_no_wait_is_longer_than_the_window():
    waits = [POLICY.wait_after(failures, 3).total_seconds() for failures in range(2, 9)]
    assert waits == [0, 30, 60, 120, 240, 480, 900]
    assert POLICY.wait_after(10**6, 3) == POLICY.window


def test_a_distributed_attack_slows_unknown_clients_not_the_known_browser(store):
    with store.begin() as session:
        add(session)
        for n in range(POLICY.account_attempts):  # one failure each from many addresses
            at = T0 + dt.timedelta(seconds=n)
            assert not sign_in(
                session, password="wrong", address=f"198.51.100.{n}", at=at
            ).throttled
        at = T0 + dt.timedelta(seconds=POLICY.account_attempts + 1)
        assert sign_in(session, address="203.0.113.9", at=at).throttled  # a new client waits
        assert sign_in(session, address="203.0.113.9", at=at, known=True).viewer is not None
        add(session, "ville", auth.Role.VIEWER, ("rapala",))
        assert sign_in(session, "ville", address="203.0.113.9", at=at).viewer is not None
        later = at + POLICY.backoff
        assert sign_in(session, address="203.0.113.9", at=later).viewer is not None


def test_sign_in_events_are_filed_under_the_users_organisation(store):
    with store.begin() as session:
        add(session)
        sign_in(session, password="wrong", address="127.0.0.2")
        sign_in(session, "nobody", password="wrong", address="127.0.0.2")
        rows = session.execute(
            select(AuditEvent.target, AuditEvent.organisation, AuditEvent.address).where(
                AuditEvent.action == "login.failed"
            )
        ).all()
    assert sorted(rows) == [("anna", "hyvala", "127.0.0.2"), ("nobody", None, "127.0.0.2")]


def test_sessions_are_stored_hashed_and_end_on_sign_out(store):
    with store.begin() as session:
        user = add(session)
        token = user_sessions.start(session, user.id, now=T0, limits=LIMITS, address="127.0.0.1")
        [row] = session.scalars(select(UserSession))
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() != token
        assert user_sessions.resume(session, token, now=T0, limits=LIMITS).user_id == user.id
        assert user_sessions.resume(session, "forged", now=T0, limits=LIMITS) is None
        assert user_sessions.end(session, token, now=T0) == user.id
        assert user_sessions.resume(session, token, now=T0, limits=LIMITS) is None
        assert (row.ended_at, row.ended_reason) == (T0, "signed_out")


def test_sessions_end_when_idle_and_at_their_lifetime(store):
    with store.begin() as session:
        user = add(session)
        idle = user_sessions.start(session, user.id, now=T0, limits=LIMITS)
        busy = user_sessions.start(session, user.id, now=T0, limits=LIMITS)
        at = T0
        for _ in range(23):  # a request every 30 minutes keeps `busy` alive…
            at += dt.timedelta(minutes=30)
            assert user_sessions.resume(session, busy, now=at, limits=LIMITS).live
        ended = user_sessions.resume(session, idle, now=at, limits=LIMITS)
        assert (ended.live, ended.ended) == (False, "idle")
        at += dt.timedelta(minutes=30)  # …until 12 hours after it began
        assert user_sessions.resume(session, busy, now=at, limits=LIMITS).ended == "expired"
        assert user_sessions.resume(session, busy, now=at, limits=LIMITS) is None
        assert user_sessions.active_sessions(session, None, now=at, limits=LIMITS) == []


def test_a_request_within_a_minute_writes_nothing(store):
    with store.begin() as session:
        user = add(session)
        token = user_sessions.start(session, user.id, now=T0, limits=LIMITS)
        user_sessions.resume(session, token, now=T0 + dt.timedelta(seconds=59), limits=LIMITS)
        row = session.scalar(select(UserSession))
        assert row.last_seen_at == T0
        user_sessions.resume(session, token, now=T0 + dt.timedelta(seconds=61), limits=LIMITS)
        assert row.last_seen_at == T0 + dt.timedelta(seconds=61)


def test_disabling_a_new_password_and_sign_out_everywhere_end_every_session(store):
    with store.begin() as session:
        user = add(session)

        def two_sessions():
            return [user_sessions.start(session, user.id, now=T0, limits=LIMITS) for _ in "ab"]

        def live(tokens):
            return [user_sessions.resume(session, t, now=T0, limits=LIMITS) for t in tokens]

        tokens = two_sessions()
        auth.disable_user(session, "anna", now=T0)
        assert live(tokens) == [None, None]
        assert sign_in(session).viewer is None
        assert auth.load_viewer(session, user.id) is None
        tokens = two_sessions()
        auth.set_password(session, "anna", "a brand new password", now=T0)
        assert live(tokens) == [None, None]
        assert auth.load_viewer(session, user.id) is not None
        tokens = two_sessions()
        assert auth.end_sessions(session, "anna", now=T0, actor="partner") == 2
        assert live(tokens) == [None, None]
        assert sign_in(session, password="a brand new password").viewer is not None
        ended = session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "sessions.ended")
        ).one()
    assert ended == {"sessions_ended": 2}


def test_trusted_proxies_are_addresses_or_networks(tmp_path):
    """(Malformed dashboard settings are in tests/test_config_corpus.py.)"""
    path = tmp_path / "riskiturva.toml"
    path.write_text(
        MINIMAL_CONFIG.replace(
            "[settings.resolver]",
            '[settings.dashboard]\ntrusted_proxies = ["10.0.0.5", "fd00::/64"]\n'
            "[settings.resolver]",
        )
    )
    proxies = load_config(path).settings.dashboard.trusted_proxies
    assert [str(p) for p in proxies] == ["10.0.0.5/32", "fd00::/64"]


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
            "sign_in": "password",
            "last_login": None,
        }
    ]
    assert (
        run("set-password", "anna", "--password-stdin", password="a brand new password\n").exit_code
        == 0
    )
    assert json.loads(run("list", "--format", "json").output)[0]["disabled"] is False
    signed_out = run("sign-out", "anna")
    assert signed_out.exit_code == 0 and "anna: 0 session(s) ended." in signed_out.output
    assert "anna: 0 session(s) ended." in run("sign-out", "--all").output
    assert run("sign-out").exit_code == 2  # neither names nor --all
    assert run("sign-out", "nobody").exit_code == 2
    from riskiturva.store import make_engine, session_factory

    engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    with session_factory(engine)() as session:
        actors = set(session.scalars(select(AuditEvent.actor)))
        assert session.scalar(select(User.username)) == "anna"
    engine.dispose()
    assert all(a.startswith("cli:") for a in actors)
