"""Response templates editing. The chat path reads them from ``services.templates`` (a TemplateBook), which
``services.reload_catalog()`` refreshes after every edit here (other API instances: periodic reload).

Allowed variables per key are exactly those the dialog manager passes for that key, which the built-in
defaults (``api.templates.DEFAULT_TEMPLATES``) document: e.g. ``dialog:order_status_answer`` may use
``{order_id} {status} {carrier} {tracking_no} {updated_at} {items}``; small-talk keys take none. A variant
may only use its key's variables, and any other ``{...}`` group is refused (it would be shown verbatim).
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.admin import limits
from api.admin.schemas import TemplateOut
from api.audit import add_audit
from api.db.models import ResponseTemplate
from api.errors import AppError, ErrorCode, NotFound
from api.templates import DEFAULT_TEMPLATES, variables_of

_BRACES = re.compile(r"\{([^{}]*)\}")
_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))


def allowed_variables(key: str) -> list[str]:
    return variables_of(DEFAULT_TEMPLATES.get(key, []))


def list_templates(db: Session) -> list[TemplateOut]:
    rows = {t.key: t for t in db.scalars(select(ResponseTemplate))}
    keys = sorted(set(rows) | set(DEFAULT_TEMPLATES))
    out = []
    for key in keys:
        row = rows.get(key)
        variants = (
            list(row.variants) if row is not None and row.variants else list(DEFAULT_TEMPLATES.get(key, []))
        )
        out.append(
            TemplateOut(
                key=key,
                variants=variants,
                variables=allowed_variables(key),
                updated_at=row.updated_at if row is not None else None,
            )
        )
    return out


def validate_variants(key: str, variants: list[str]) -> list[str]:
    allowed = set(allowed_variables(key))
    cleaned = [v.translate(_CONTROL).strip() for v in variants]
    if not cleaned or any(not v or len(v) > limits.TEMPLATE_VARIANT_MAX_CHARS for v in cleaned):
        raise AppError(ErrorCode.TEMPLATE_INVALID, detail="empty or too long variant")
    for v in cleaned:
        used = _BRACES.findall(v)
        unknown = [u for u in used if u not in allowed]
        if unknown or v.count("{") != len(used) or v.count("}") != len(used):
            raise AppError(ErrorCode.TEMPLATE_INVALID, detail={"unknown": unknown[:5]})
    return cleaned


def update_template(db: Session, key: str, variants: list[str], actor: str) -> TemplateOut:
    row = db.get(ResponseTemplate, key)
    if row is None and key not in DEFAULT_TEMPLATES:
        raise NotFound()
    cleaned = validate_variants(key, variants)
    if row is None:
        row = ResponseTemplate(key=key, variants=cleaned)
        db.add(row)
    else:
        row.variants = cleaned
    add_audit(db, actor, "template.update", key, {"variants": len(cleaned)})
    db.commit()
    return TemplateOut(key=key, variants=cleaned, variables=allowed_variables(key), updated_at=row.updated_at)
