"""FAQ knowledge base: validation, CRUD, categories and the KB revision counter.

Every change to the FAQ table bumps ``faqs.version`` of the row it touches and the global ``kb_state.revision``
in the same transaction, so the console can tell whether the KB changed since the live index was built
(``api.admin.index`` records the revision each published index was built from).

Duplicates are detected on :func:`question_key` -- the shared ``bundle.normalize`` text (NFKC, lower case,
traditional → simplified, collapsed whitespace) without trailing punctuation -- so "支持7天无理由退货吗？" and
"支持７天無理由退貨嗎" are the same standard question.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from api.admin import limits
from api.admin.schemas import FaqOut, FaqPatch
from api.audit import add_audit
from api.db.models import Faq, FaqCategory, FaqSimilar, KbState
from api.db.seed import get_or_create_category
from api.errors import AppError, ErrorCode, InvalidInput, NotFound
from bundle.normalize import normalize

_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))
_TRAILING = re.compile(r"[\s?？!！。.,，~～…]+$")


def question_key(text: str) -> str:
    return _TRAILING.sub("", normalize(text))


def clean(text: str | None) -> str:
    return (text or "").translate(_CONTROL).strip()


# Similar questions are joined with the first in import/export files; both full- and half-width are read back.
SIMILAR_SEPARATORS = ("|", "｜")


def without_separators(text: str) -> str:
    """A visitor's question made safe to store as a similar question (mined questions are not the operator's
    to correct): the file separators become "/"."""
    for sep in SIMILAR_SEPARATORS:
        text = text.replace(sep, "/")
    return text


class FieldCode(StrEnum):
    """Stable per-field validation codes (import rows and FAQ bodies)."""

    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    TOO_MANY_SIMILAR = "TOO_MANY_SIMILAR"
    DUPLICATE_IN_FILE = "DUPLICATE_IN_FILE"
    TAKEN = "TAKEN"
    INVALID_VALUE = "INVALID_VALUE"


FIELD_MESSAGES: dict[FieldCode, str] = {
    FieldCode.REQUIRED: "不能为空 / must not be empty",
    FieldCode.TOO_LONG: "内容过长 / too long",
    FieldCode.TOO_MANY_SIMILAR: f"相似问题最多 {limits.SIMILAR_MAX} 条 / at most {limits.SIMILAR_MAX} similar questions",
    FieldCode.DUPLICATE_IN_FILE: "与文件中前面的行问题重复 / duplicates the question of an earlier row",
    FieldCode.TAKEN: "已是另一条 FAQ 的问题或相似问题 / already a question or similar question of another FAQ",
    FieldCode.INVALID_VALUE: "取值无效 / invalid value",
}


@dataclass
class FieldError:
    field: str
    code: FieldCode

    @property
    def message(self) -> str:
        return FIELD_MESSAGES[self.code]


@dataclass
class FaqFields:
    """Validated, cleaned FAQ content."""

    question: str
    answer: str
    category: str | None = None
    similar: list[str] = field(default_factory=list)
    enabled: bool = True
    intent: str | None = None


def clean_similar(similar: list[str], question: str) -> list[str]:
    """Trim, drop empties, the standard question itself and exact repeats; keep order.

    Variants that only normalize to the same text (e.g. traditional characters) are kept: authors add them
    on purpose and serving normalizes at query time anyway."""
    seen = {question}
    out: list[str] = []
    for s in similar:
        s = clean(s)
        if not s or s in seen:
            continue
        seen.add(s)
        out.append(s)
    return out


def validate_fields(
    question: str | None,
    answer: str | None,
    category: str | None = None,
    similar: list[str] | None = None,
    enabled: bool = True,
    intent: str | None = None,
) -> tuple[FaqFields | None, list[FieldError]]:
    errors: list[FieldError] = []
    q, a, c, i = clean(question), clean(answer), clean(category) or None, clean(intent) or None
    if not q or not question_key(q):
        errors.append(FieldError("question", FieldCode.REQUIRED))
    elif len(q) > limits.QUESTION_MAX_CHARS:
        errors.append(FieldError("question", FieldCode.TOO_LONG))
    if not a:
        errors.append(FieldError("answer", FieldCode.REQUIRED))
    elif len(a) > limits.ANSWER_MAX_CHARS:
        errors.append(FieldError("answer", FieldCode.TOO_LONG))
    if c is not None and len(c) > limits.CATEGORY_MAX_CHARS:
        errors.append(FieldError("category", FieldCode.TOO_LONG))
    if i is not None and len(i) > limits.INTENT_MAX_CHARS:
        errors.append(FieldError("intent", FieldCode.TOO_LONG))
    sims = clean_similar(similar or [], q)
    if len(sims) > limits.SIMILAR_MAX:
        errors.append(FieldError("similar", FieldCode.TOO_MANY_SIMILAR))
    elif any(len(s) > limits.QUESTION_MAX_CHARS for s in sims):
        errors.append(FieldError("similar", FieldCode.TOO_LONG))
    elif any(sep in s for s in sims for sep in SIMILAR_SEPARATORS):
        # the import/export file joins similar questions with these: "运费|邮费谁出" would come back as two
        errors.append(FieldError("similar", FieldCode.INVALID_VALUE))
    if errors:
        return None, errors
    return FaqFields(q, a, c, sims, enabled, i), []


def require_valid(
    question: str | None,
    answer: str | None,
    category: str | None = None,
    similar: list[str] | None = None,
    enabled: bool = True,
    intent: str | None = None,
) -> FaqFields:
    """validate_fields for API bodies: any error is a 422 ``VALIDATION_ERROR`` (fields logged, not echoed)."""
    fields, errors = validate_fields(question, answer, category, similar, enabled, intent)
    if fields is None:
        raise InvalidInput(detail=[(e.field, e.code.value) for e in errors])
    return fields


# ---- KB revision ---------------------------------------------------------------------------------------
def current_revision(db: Session) -> int:
    return int(db.scalar(select(KbState.revision).where(KbState.id == 1)) or 0)


def bump_revision(db: Session) -> None:
    """Increment the KB revision inside the caller's transaction (row-locked on MySQL)."""
    result = db.execute(update(KbState).where(KbState.id == 1).values(revision=KbState.revision + 1))
    if not getattr(result, "rowcount", 0):
        db.add(KbState(id=1, revision=1))


# ---- queries -------------------------------------------------------------------------------------------
def list_faqs(
    db: Session,
    *,
    q: str | None = None,
    category: str | None = None,
    enabled: bool | None = None,
    page: int = 1,
    page_size: int = 20,
) -> tuple[list[Faq], int]:
    stmt = select(Faq)
    if q and clean(q):
        term = clean(q)
        similar_hit = exists().where(
            FaqSimilar.faq_id == Faq.id, FaqSimilar.question.contains(term, autoescape=True)
        )
        stmt = stmt.where(
            or_(
                Faq.question.contains(term, autoescape=True),
                Faq.answer.contains(term, autoescape=True),
                similar_hit,
            )
        )
    if category:
        stmt = stmt.join(FaqCategory, Faq.category_id == FaqCategory.id).where(FaqCategory.name == category)
    if enabled is not None:
        stmt = stmt.where(Faq.enabled.is_(enabled))
    total = int(db.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = db.scalars(
        stmt.order_by(Faq.updated_at.desc(), Faq.id).offset((page - 1) * page_size).limit(page_size)
    ).unique()
    return list(rows), total


def get_faq(db: Session, faq_id: str, *, lock: bool = False) -> Faq:
    """``lock``: read the latest committed row and hold its lock until commit (SELECT ... FOR UPDATE), so a
    version check and the write that follows cannot interleave with another request's edit."""
    faq = db.get(Faq, faq_id, with_for_update=lock, populate_existing=lock)
    if faq is None:
        raise NotFound()
    return faq


def list_categories(db: Session) -> list[tuple[str, int]]:
    rows = db.execute(
        select(FaqCategory.name, func.count(Faq.id))
        .select_from(FaqCategory)
        .outerjoin(Faq, Faq.category_id == FaqCategory.id)
        .group_by(FaqCategory.id, FaqCategory.name)
        .order_by(FaqCategory.name)
    ).all()
    return [(str(name), int(n)) for name, n in rows]


def question_index(db: Session) -> dict[str, str]:
    """question_key → faq id over all standard questions (dedupe for create/update/import)."""
    return {question_key(q): fid for fid, q in db.execute(select(Faq.id, Faq.question))}


def question_owners(db: Session, exclude: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """question_key → faq id over every standard *and* similar question, FAQs in ``exclude`` left out.

    One wording belongs to one FAQ: a similar question that is also another FAQ's question makes the two tie
    in retrieval for a visitor who types exactly it, and which one answers is then an accident of ordering."""
    owners: dict[str, str] = {}
    for fid, q in db.execute(select(FaqSimilar.faq_id, FaqSimilar.question)):
        if fid not in exclude:
            owners.setdefault(question_key(q), fid)
    for fid, q in db.execute(select(Faq.id, Faq.question)):
        if fid not in exclude:
            owners[question_key(q)] = fid
    return owners


def untaken(db: Session, questions: list[str], own_id: str | None = None) -> list[str]:
    """The questions no other FAQ (than ``own_id``) already has as a question or similar question."""
    owners = question_owners(db)
    return [q for q in questions if owners.get(question_key(q), own_id) == own_id]


def _ensure_unique(db: Session, fields: FaqFields, own_id: str | None) -> None:
    """409 ``FAQ_DUPLICATE`` for another FAQ's standard question; 409 ``QUESTION_TAKEN`` when the question or a
    similar question is already another FAQ's question or similar question (see :func:`question_owners`)."""
    key = question_key(fields.question)
    other = question_index(db).get(key)
    if other is not None and other != own_id:
        raise AppError(ErrorCode.FAQ_DUPLICATE)
    owners = question_owners(db, exclude={own_id} if own_id else frozenset())
    taken = {owners[k] for k in [key, *map(question_key, fields.similar)] if k in owners}
    if taken:
        raise AppError(ErrorCode.QUESTION_TAKEN, detail={"faq_ids": sorted(taken)})


def new_faq_id() -> str:
    return "faq-" + secrets.token_hex(6)


def apply_fields(
    db: Session, faq: Faq, fields: FaqFields, cache: dict[str, FaqCategory] | None = None
) -> None:
    """Write validated fields onto a row (the caller sets ``version`` and bumps the KB revision once)."""
    faq.question = fields.question
    faq.answer = fields.answer
    faq.category = get_or_create_category(db, fields.category, cache)
    faq.enabled = fields.enabled
    faq.intent = fields.intent  # None clears it (an import's empty cell is merged with the current one first)
    if [s.question for s in faq.similar] != fields.similar:
        faq.similar = [FaqSimilar(question=s) for s in fields.similar]


# ---- writes --------------------------------------------------------------------------------------------
def create_faq(db: Session, fields: FaqFields, actor: str) -> Faq:
    _ensure_unique(db, fields, None)
    faq = Faq(id=new_faq_id(), version=1)
    db.add(faq)
    apply_fields(db, faq, fields)
    bump_revision(db)
    add_audit(db, actor, "faq.create", faq.id, {"question": fields.question})
    db.commit()
    return faq


def update_faq(
    db: Session, faq_id: str, fields: FaqFields, actor: str, expected_version: int | None = None
) -> Faq:
    faq = get_faq(db, faq_id, lock=True)
    if expected_version is not None and expected_version != faq.version:
        raise AppError(ErrorCode.CONFLICT)
    _ensure_unique(db, fields, faq.id)
    apply_fields(db, faq, fields)
    faq.version += 1
    bump_revision(db)
    add_audit(db, actor, "faq.update", faq.id, {"version": faq.version})
    db.commit()
    return faq


def delete_faq(db: Session, faq_id: str, actor: str) -> None:
    faq = get_faq(db, faq_id)
    question = faq.question
    db.delete(faq)  # similar questions go with it (ORM cascade)
    bump_revision(db)
    add_audit(db, actor, "faq.delete", faq_id, {"question": question})
    db.commit()


def add_similar(db: Session, faq: Faq, questions: list[str]) -> int:
    """Append new similar questions (deduplicated by question_key, capped); returns how many were added.

    The caller bumps the KB revision and commits."""
    seen = {question_key(faq.question)} | {question_key(s.question) for s in faq.similar}
    seen |= set(question_owners(db, exclude={faq.id}))  # another FAQ's wording stays that FAQ's
    added = 0
    for q in questions:
        q = clean(without_separators(q))
        key = question_key(q) if q else ""
        if (
            not key
            or key in seen
            or len(q) > limits.QUESTION_MAX_CHARS
            or len(faq.similar) >= limits.SIMILAR_MAX
        ):
            continue
        seen.add(key)
        faq.similar.append(FaqSimilar(question=q))
        added += 1
    if added:
        faq.version += 1
    return added


def faq_out(faq: Faq) -> FaqOut:
    return FaqOut(
        id=faq.id,
        question=faq.question,
        answer=faq.answer,
        category=faq.category.name if faq.category else None,
        similar=[s.question for s in faq.similar],
        enabled=faq.enabled,
        intent=faq.intent,
        version=faq.version,
        created_at=faq.created_at,
        updated_at=faq.updated_at,
    )


def patched_fields(faq: Faq, patch: FaqPatch) -> FaqFields:
    """Merge a PUT body onto the current row and validate the result."""
    given = patch.model_fields_set
    return require_valid(
        question=patch.question if "question" in given else faq.question,
        answer=patch.answer if "answer" in given else faq.answer,
        category=patch.category if "category" in given else (faq.category.name if faq.category else None),
        similar=patch.similar
        if "similar" in given and patch.similar is not None
        else [s.question for s in faq.similar],
        enabled=patch.enabled if patch.enabled is not None else faq.enabled,
        intent=patch.intent if "intent" in given else faq.intent,
    )
