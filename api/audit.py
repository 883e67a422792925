"""Audit log of admin/agent writes (who, what, target, request id)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from api.db.models import AuditLog
from api.observability import request_id_var

log = logging.getLogger("api.audit")


def add_audit(
    db: Session, actor: str, action: str, target: str | None, detail: dict[str, Any] | None = None
) -> None:
    """Add an audit row to the caller's transaction (committed together with the change)."""
    db.add(
        AuditLog(actor=actor, action=action, target=target, detail=detail, request_id=request_id_var.get())
    )


def write_audit(
    services: Any, actor: str, action: str, target: str | None, detail: dict[str, Any] | None = None
) -> None:
    try:
        with services.session_factory() as db, db.begin():
            add_audit(db, actor, action, target, detail)
    except Exception:
        log.error("audit write failed for %s %s", action, target, exc_info=True)
