"""Schema migrations (Alembic), run programmatically: `riskiturva db upgrade`.

Every migration runs in its own transaction, with the version stamp inside it: a process
killed at any moment leaves the database at the revision before or after a migration, never
between (SQLite has transactional DDL too; pysqlite's own transaction handling is switched
off on the migration connection so that Alembic's BEGIN and COMMIT are the real ones). One
process migrates at a time: the others wait for it and then find nothing left to do.
"""

from __future__ import annotations

import datetime as dt
import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from riskiturva._files import private_file
from riskiturva.config import Config
from riskiturva.store import (
    make_engine,
    mark_interrupted_runs,
    session_factory,
    sqlite_path,
    sqlite_pragmas,
)

# pg_advisory_lock key of the migration lock ("RSKM"); the scheduler's leader lock differs.
MIGRATION_LOCK_KEY = 0x52534B4D


def _script_location() -> str:
    return str(resources.files("riskiturva") / "migrations")


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", _script_location())
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def head_revision() -> str | None:
    return ScriptDirectory(_script_location()).get_current_head()


def revisions() -> list[str]:
    """Every migration's revision id, oldest first."""
    walk = ScriptDirectory(_script_location()).walk_revisions()
    return [script.revision for script in reversed(list(walk))]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (creating it when empty).

    Nothing is locked when the schema is already current (every command opens the store).
    """
    if revision == "head" and current_revision(engine) == head_revision():
        return
    config = alembic_config(engine)
    migrations = _migration_engine(engine)
    try:
        with _one_migrator(migrations) as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        migrations.dispose()


def _migration_engine(engine: Engine) -> Engine:
    """An engine for migrations alone: on SQLite, with real transactions around DDL.

    pysqlite commits on its own around DDL unless its transaction handling is off
    (isolation_level None); then every SQLAlchemy transaction begins with BEGIN IMMEDIATE,
    which also makes the migration wait for, rather than fail on, another writer.
    """
    migrations = create_engine(engine.url, poolclass=NullPool)
    if migrations.dialect.name == "sqlite":

        @event.listens_for(migrations, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            sqlite_pragmas(dbapi_connection)
            dbapi_connection.isolation_level = None

        @event.listens_for(migrations, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return migrations


@contextmanager
def _one_migrator(engine: Engine) -> Iterator[Connection]:
    """A connection for migrating, held by one process at a time (released if it dies).

    PostgreSQL: a session-level advisory lock on the connection itself. SQLite: an exclusive
    `flock` on a lock file beside the database (per-migration transactions leave gaps
    between migrations that SQLite's own lock would not cover).
    """
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                yield connection
            finally:
                connection.rollback()
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()
        elif path is not None:
            lock_path = private_file(path.with_name(path.name + ".migrate-lock"))
            with lock_path.open("rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield connection
        else:
            yield connection


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
