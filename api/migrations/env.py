"""Alembic environment. The URL comes from the caller (api.db.migrate) or from Settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from api.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from api.db.engine import make_engine
    from api.settings import get_settings

    engine = make_engine(config.get_main_option("sqlalchemy.url") or get_settings().database_dsn)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `python -m api migrate`")
run_migrations_online()
