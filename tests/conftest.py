"""Shared fixtures: a migrated database per test, configurations built from small dicts."""

from __future__ import annotations

import datetime as dt
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from riskiturva import db, views
from riskiturva.config import Config, DashboardSettings
from riskiturva.store import make_engine, session_factory
from tests.postgres import postgres_server

pytest_plugins = ["riskiturva.lab.pytest_plugin"]

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A fresh database (SQLite file, or a real PostgreSQL on loopback) at the current schema."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    else:
        engine = make_engine(request.getfixturevalue("postgres_url"))
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


MINIMAL_CONFIG = """
[settings]
data_dir = "data"
[settings.resolver]
nameservers = ["127.0.0.1"]
port = 53

[[organisations]]
slug = "hyvala"
name = { fi = "Hyvälän kunta", sv = "Hyvälä kommun", en = "Municipality of Hyvälä" }
scope = { domains = ["hyvala.test"], networks = ["127.60.1.0/24"] }
assets = [
  { kind = "ip", value = "127.60.1.10", criticality = "high", tags = ["e-service"] },
  { kind = "ip", value = "127.60.1.11", criticality = "low" },
]

[[organisations]]
slug = "rapala"
name = { fi = "Rapalan kunta", sv = "Rapala kommun", en = "Municipality of Rapala" }
scope = { domains = ["rapala.test"], networks = ["127.60.2.0/24"] }
assets = [{ kind = "ip", value = "127.60.2.10" }]
"""


@pytest.fixture
def minimal_config() -> Config:
    return Config.model_validate(tomllib.loads(MINIMAL_CONFIG))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """One store seeded for the whole module (hashing five passwords takes seconds); each
    test gets its own copy of the file (`tests.two_tenants`)."""
    from tests.two_tenants import seed

    path = tmp_path_factory.mktemp("seeded") / "riskiturva.db"
    engine = make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    finding_ids = seed(
        session_factory(engine), Config.model_validate(tomllib.loads(MINIMAL_CONFIG))
    )
    engine.dispose()
    return path, finding_ids


@pytest.fixture
def make_estate(tmp_path, minimal_config, seeded):
    """`make_estate(clock, **dashboard_settings)`: the two municipalities, the app on them."""
    import dashboard
    from tests.two_tenants import NOW

    template, finding_ids = seeded
    shutil.copyfile(template, tmp_path / "riskiturva.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'riskiturva.db'}")
    sessions = session_factory(engine)

    def make(clock=lambda: NOW, **dashboard_settings):
        settings = minimal_config.settings.model_copy(
            update={"data_dir": tmp_path, "dashboard": DashboardSettings(**dashboard_settings)}
        )
        config = minimal_config.model_copy(update={"settings": settings})
        return dashboard.create_app(config, sessions, clock=clock), sessions, finding_ids

    yield make
    engine.dispose()


def queued(session: Session, visible: list[str]) -> list[views.InventoryAsset]:
    """Every visible organisation's review queue, as the read model gives it."""
    return [
        asset
        for slug in visible
        for asset in views.review_queue(session, visible, slug, scopes={}).proposals
    ]


def seen_outside(session: Session, visible: list[str]) -> list[views.SightingView]:
    """Every visible organisation's sightings outside its scope."""
    return [
        seen
        for slug in visible
        for seen in views.review_queue(session, visible, slug, scopes={}).outside_scope
    ]
