"""Alembic environment: runs migrations on the connection or URL given by `riskiturva.db`.

One transaction per migration, the version stamp inside it (SQLite's DDL is transactional
too when pysqlite leaves the transactions to us: see `riskiturva.db`).
"""

from alembic import context
from sqlalchemy import Connection, create_engine

from riskiturva.schema import metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        transactional_ddl=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no database: run migrations through riskiturva.db")
    engine = create_engine(url)
    with engine.connect() as connection:
        _run(connection)


run_migrations()
