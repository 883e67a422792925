"""In-memory read model of the FAQ table and templates used on the chat path (no DB query per turn).

Reloaded after every admin write on this instance and periodically (other instances' writes).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import Faq, ResponseTemplate


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
        faqs: dict[str, FaqView] = {}
        for f in db.scalars(select(Faq)).unique():
            faqs[f.id] = FaqView(
                f.id, f.question, f.answer, f.intent, f.category.name if f.category else None, f.enabled
            )
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
    return {t.key: list(t.variants) for t in db.scalars(select(ResponseTemplate))}
