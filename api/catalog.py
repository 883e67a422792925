"""In-memory read model of the FAQ table and templates used on the chat path (no DB query per turn).

Reloaded after every admin write on this instance; other instances' writes are picked up by a cheap poll of
:func:`content_stamp` every couple of seconds (a full reload only when it changed), plus a periodic full reload
as a safety net for rows changed behind the API's back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import Faq, FaqCategory, KbState, ResponseTemplate


@dataclass(frozen=True)
class FaqView:
    id: str
    question: str
    answer: str
    intent: str | None
    category: str | None
    enabled: bool


class FaqCatalog:
    def __init__(self) -> None:
        self._faqs: dict[str, FaqView] = {}

    def load(self, db: Session) -> int:
        # Plain rows, not ORM objects: every API process reloads this periodically, and loading Faq entities
        # would also pull every similar question (the relationship is eager) for nothing.
        rows = db.execute(
            select(Faq.id, Faq.question, Faq.answer, Faq.intent, FaqCategory.name, Faq.enabled).outerjoin(
                FaqCategory, Faq.category_id == FaqCategory.id
            )
        )
        faqs = {r[0]: FaqView(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}
        self._faqs = faqs
        return len(faqs)

    def set_all(self, faqs: list[FaqView]) -> None:
        self._faqs = {f.id: f for f in faqs}

    def answer_for(self, faq_id: str) -> str | None:
        f = self._faqs.get(faq_id)
        return f.answer if f is not None and f.enabled else None

    def intent_for(self, faq_id: str) -> str | None:
        f = self._faqs.get(faq_id)
        return f.intent if f is not None else None

    def get(self, faq_id: str) -> FaqView | None:
        return self._faqs.get(faq_id)

    def __len__(self) -> int:
        return len(self._faqs)


def load_templates(db: Session) -> dict[str, list[str]]:
    rows = db.execute(select(ResponseTemplate.key, ResponseTemplate.variants))
    return {key: list(variants) for key, variants in rows}


def content_stamp(db: Session) -> tuple[object, ...]:
    """What the read models were loaded from, in two small queries: the KB revision (bumped in the same
    transaction as every FAQ change) and every template's ``updated_at`` (a couple of dozen rows; compared
    as a whole, so an edit is seen whatever the writing instance's clock says)."""
    revision = db.scalar(select(KbState.revision).where(KbState.id == 1))
    rows = db.execute(select(ResponseTemplate.key, ResponseTemplate.updated_at))
    templates = tuple(sorted((str(key), updated) for key, updated in rows))
    return (revision, templates)
