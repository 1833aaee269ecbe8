"""Schema migrations (Alembic), run programmatically: `riskiturva db upgrade`."""

from __future__ import annotations

import datetime as dt
from importlib import resources

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from riskiturva.config import Config
from riskiturva.store import make_engine, mark_interrupted_runs, session_factory


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(resources.files("riskiturva") / "migrations"))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (creating it when empty)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a migration from the models (developers only)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True, rev_id=None)


def open_store(config: Config) -> sessionmaker[Session]:
    """Open the database, bring its schema up to date, and mark dead runs interrupted."""
    engine = make_engine(config.settings.effective_database_url)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        mark_interrupted_runs(session, dt.datetime.now(dt.UTC))
    return sessions
