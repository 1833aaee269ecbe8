"""Alembic environment: runs migrations on the connection or URL given by `riskiturva.db`.

One transaction per migration, the version stamp inside it (SQLite's DDL is transactional
too when pysqlite leaves the transactions to us: see `riskiturva.db`).
"""

from alembic import context
from sqlalchemy import create_engine

from riskiturva.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
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
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _run(connection)


run_migrations()
