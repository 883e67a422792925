"""Idempotent demo seed: FAQ, response templates and demo orders from data/demo/ when the tables are empty."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db.models import DemoOrder, Faq, FaqCategory, FaqSimilar, ResponseTemplate
from api.templates import DEFAULT_TEMPLATES

log = logging.getLogger("api.seed")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def get_or_create_category(
    db: Session, name: str | None, cache: dict[str, FaqCategory] | None = None
) -> FaqCategory | None:
    if not name:
        return None
    if cache is not None and name in cache:
        return cache[name]
    cat = db.scalars(select(FaqCategory).where(FaqCategory.name == name)).first()
    if cat is None:
        cat = FaqCategory(name=name)
        db.add(cat)
        db.flush()
    if cache is not None:
        cache[name] = cat
    return cat


def seed_faqs(db: Session, path: Path) -> int:
    if not path.exists() or db.scalar(select(func.count()).select_from(Faq)):
        return 0
    cache: dict[str, FaqCategory] = {}
    n = 0
    for row in _read_jsonl(path):
        faq = Faq(
            id=str(row["id"]),
            question=row["question"].strip(),
            answer=row["answer"].strip(),
            intent=row.get("intent"),
            category=get_or_create_category(db, row.get("category"), cache),
            enabled=True,
        )
        # "heldout" questions are evaluation data: never indexed as similar questions.
        faq.similar = [FaqSimilar(question=q.strip()) for q in row.get("similar", []) if q and q.strip()]
        db.add(faq)
        n += 1
    return n


def templates_from_file(path: Path) -> dict[str, list[str]]:
    if not path.exists():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for section in ("intents", "dialog"):
        prefix = "intent" if section == "intents" else "dialog"
        for name, variants in (raw.get(section) or {}).items():
            vs = (
                [variants] if isinstance(variants, str) else [v for v in variants if isinstance(v, str) and v]
            )
            if vs:
                out[f"{prefix}:{name}"] = vs
    return out


def seed_templates(db: Session, path: Path) -> int:
    if db.scalar(select(func.count()).select_from(ResponseTemplate)):
        return 0
    merged = dict(DEFAULT_TEMPLATES)
    merged.update(templates_from_file(path))
    for key, variants in merged.items():
        db.add(ResponseTemplate(key=key, variants=variants))
    return len(merged)


def _parse_dt(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def seed_orders(db: Session, path: Path) -> int:
    """The demo orders into an empty ``demo_orders`` table (fields beyond the columns, such as the owner
    ``customer_id`` and ``refundable``, into ``extra``). A table seeded before orders had owners gets each order's
    ``customer_id`` from the file: an order without one is nobody's and would be shown to no visitor."""
    if not path.exists():
        return 0
    raw = json.loads(path.read_text(encoding="utf-8"))
    rows = raw.get("orders", []) if isinstance(raw, dict) else raw
    known = {"id", "order_id", "status", "carrier", "tracking_no", "items", "updated_at", "refund_deadline"}
    existing = {o.id: o for o in db.scalars(select(DemoOrder))}
    n = 0
    for row in rows:
        oid = str(row.get("order_id") or row.get("id"))
        extra = {k: v for k, v in row.items() if k not in known} or None
        if existing:
            have = existing.get(oid)
            owner = (extra or {}).get("customer_id")
            if have is not None and owner and not (have.extra or {}).get("customer_id"):
                have.extra = {**(have.extra or {}), "customer_id": owner}
                n += 1
            continue
        db.add(
            DemoOrder(
                id=oid,
                status=str(row.get("status", "")),
                carrier=row.get("carrier"),
                tracking_no=row.get("tracking_no"),
                items=row.get("items") or [],
                refund_deadline=row.get("refund_deadline"),
                updated_at=_parse_dt(row.get("updated_at")),
                extra=extra,
            )
        )
        n += 1
    return n


def seed_demo(db: Session, demo_dir: Path) -> dict[str, int]:
    counts = {
        "faqs": seed_faqs(db, demo_dir / "faq" / "faq.jsonl"),
        "templates": seed_templates(db, demo_dir / "templates.json"),
        "orders": seed_orders(db, demo_dir / "orders.json"),
    }
    db.commit()
    if any(counts.values()):
        log.info("seeded demo data: %s", counts)
    return counts
