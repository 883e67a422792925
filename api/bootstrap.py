"""Migrate + seed + first admin: shared by the CLI and the embedded start."""

from __future__ import annotations

import logging

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from api.auth import create_user
from api.db.migrate import upgrade
from api.db.models import AdminUser
from api.db.seed import seed_demo
from api.settings import Settings

log = logging.getLogger("api.bootstrap")


def migrate_and_seed(engine: Engine, factory: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    upgrade(engine)
    if not settings.seed_demo:
        return {}
    with factory() as db:
        return seed_demo(db, settings.demo_data_dir)


def ensure_admin(factory: sessionmaker[Session], username: str, password: str, role: str = "admin") -> bool:
    """Create the user if missing. Returns True when created."""
    with factory() as db:
        if db.scalars(select(AdminUser).where(AdminUser.username == username)).first() is not None:
            return False
        create_user(db, username, password, "agent" if role == "agent" else "admin")
        db.commit()
        return True


def bootstrap_admin_from_settings(factory: sessionmaker[Session], settings: Settings) -> None:
    """API_BOOTSTRAP_ADMIN_USERNAME / _PASSWORD create the first admin: only while no active admin exists. Once
    the console has admins of its own, deleting the bootstrap account keeps it deleted across restarts (the
    variables stay in the environment); with every admin gone it comes back, the way back into the console."""
    if not (settings.bootstrap_admin_username and settings.bootstrap_admin_password):
        return
    with factory() as db:
        has_admin = db.scalars(
            select(AdminUser.id).where(AdminUser.role == "admin", AdminUser.active.is_(True)).limit(1)
        ).first()
    if has_admin is not None:
        return
    if ensure_admin(
        factory, settings.bootstrap_admin_username, settings.bootstrap_admin_password.get_secret_value()
    ):
        log.info("bootstrap admin %s created", settings.bootstrap_admin_username)
