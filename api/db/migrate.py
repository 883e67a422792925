"""Run Alembic migrations programmatically (``python -m api migrate``) on SQLite or MySQL."""

from __future__ import annotations

import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(dsn: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if dsn:
        cfg.set_main_option("sqlalchemy.url", dsn.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def schema_is_current(engine: Engine) -> bool:
    """True when the database is at this code's migration head (False if behind, empty or unreachable)."""
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads()) == heads
    except SQLAlchemyError:
        return False


def wait_for_schema(engine: Engine, timeout_s: float, poll_s: float = 2.0) -> bool:
    """Wait until the schema is at head (the migration Job upgrades it); False when ``timeout_s`` runs out.

    The API's init container runs this: a pod of a new version must not take traffic on the old schema."""
    deadline = time.monotonic() + timeout_s
    while not schema_is_current(engine):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True
