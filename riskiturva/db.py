"""Schema migrations (Alembic), run programmatically: `riskiturva db upgrade`."""

from __future__ import annotations

import datetime as dt
from importlib import resources

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
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


class StoreUnavailable(RuntimeError):
    """The database could not be opened: unreachable, refused, or not a database."""


def open_store(config: Config) -> sessionmaker[Session]:
    """Open the database, bring its schema up to date, and mark dead runs interrupted.

    Raises `StoreUnavailable` naming the database (its password hidden) and the reason.
    """
    try:
        engine = make_engine(config.settings.effective_database_url)
        upgrade(engine)
        sessions = session_factory(engine)
        with sessions.begin() as session:
            mark_interrupted_runs(session, dt.datetime.now(dt.UTC))
    except (SQLAlchemyError, OSError) as exc:
        url = config.settings.shown_database_url
        password = make_url(config.settings.effective_database_url).password
        raise StoreUnavailable(f"cannot open the database {url}: {_reason(exc, password)}") from exc
    return sessions


def _reason(exc: BaseException, password: str | None) -> str:
    """The driver's own words, first line only (SQLAlchemy appends SQL and a link), never
    with the password in them."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    reason = lines[0] if lines else type(cause).__name__
    return reason.replace(password, "***") if password else reason
