"""Conversation search and transcripts for the console (admins and agents). Texts are PII-masked on output
(they are stored masked already; masking again is idempotent and covers rows written before masking)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, cast, exists, func, not_, select, true
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Session

from api.admin.schemas import ConversationOut, FeedbackCounts, TranscriptMessage, TranscriptOut, VisitorOut
from api.db.models import ChatSession, Feedback, HandoffTicket, Message, Visitor
from api.errors import InvalidInput, NotFound
from api.pii import mask_pii

TRANSCRIPT_MAX_MESSAGES = 2000


def day_range(
    date_from: date | None, date_to: date | None, *, default_days: int, max_days: int
) -> tuple[date, date]:
    """Inclusive UTC day range; defaults to the last ``default_days`` days up to today."""
    end = date_to or datetime.now(UTC).date()
    start = date_from or end - timedelta(days=default_days - 1)
    if start > end or (end - start).days + 1 > max_days:
        raise InvalidInput(detail="bad date range")
    return start, end


def day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _had_handoff() -> Any:
    return exists().where(HandoffTicket.session_id == ChatSession.id)


def _vouched() -> ColumnElement[bool]:
    """Visitor rows whose ``external_user_id`` the shop vouched for (``visitors.verified``): the only ids the console
    shows or searches by. An unverified row holds a claim (or what an older API recorded) and names nobody."""
    return and_(Visitor.verified == true(), Visitor.external_user_id.is_not(None))


def _verified_visitor() -> Any:
    return exists().where(Visitor.id == ChatSession.visitor_id, _vouched())


def _exactly(column: Any, value: str, dialect: str) -> ColumnElement[bool]:
    """``column = value`` character for character. MySQL compares under the tables' utf8mb4_unicode_ci, where
    'U_1' = 'u_1' and 'u_1' = 'u_1 ': the plain comparison keeps the index, the comparison of the UTF-8 bytes then
    drops those other customers' ids (SQLite compares exactly already)."""
    same = column == value
    return and_(same, cast(column, mysql.BINARY()) == value.encode()) if dialect == "mysql" else same


def search(
    db: Session,
    *,
    intent: str | None = None,
    reply_type: str | None = None,
    feedback: str | None = None,
    handoff: bool | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    q: str | None = None,
    customer_id: str | None = None,
    verified: bool | None = None,
    page: int = 1,
    page_size: int = 20,
) -> tuple[list[ConversationOut], int]:
    """One page of sessions, most recent first, and the number of matches.

    ``customer_id``: the sessions of the customer the shop verified with that id (exact match), never those of a
    visitor who merely claimed it; an IN over ``ix_visitors_external_user_id`` and ``ix_chat_sessions_visitor_id``
    (migration 0004), so looking one customer up reads their rows only. ``verified``: sessions of verified
    customers, or of anonymous visitors (no visitor row, or one nobody vouched for)."""
    stmt = select(
        ChatSession.id,
        ChatSession.visitor_id,
        ChatSession.started_at,
        ChatSession.last_at,
        ChatSession.rating,
    )
    if customer_id is not None:
        stmt = stmt.where(
            ChatSession.visitor_id.in_(
                select(Visitor.id).where(
                    _exactly(Visitor.external_user_id, customer_id, db.get_bind().dialect.name), _vouched()
                )
            )
        )
    if verified is not None:
        stmt = stmt.where(_verified_visitor() if verified else not_(_verified_visitor()))
    if intent:
        stmt = stmt.where(exists().where(Message.session_id == ChatSession.id, Message.intent == intent))
    if reply_type:
        stmt = stmt.where(
            exists().where(
                Message.session_id == ChatSession.id, Message.role == "bot", Message.reply_type == reply_type
            )
        )
    if feedback:
        stmt = stmt.where(exists().where(Feedback.session_id == ChatSession.id, Feedback.rating == feedback))
    if handoff is not None:
        stmt = stmt.where(_had_handoff() if handoff else not_(_had_handoff()))
    if date_from is not None:
        stmt = stmt.where(ChatSession.last_at >= day_start(date_from))
    if date_to is not None:
        stmt = stmt.where(ChatSession.started_at < day_start(date_to + timedelta(days=1)))
    term = (q or "").strip()
    if term:
        stmt = stmt.where(
            exists().where(Message.session_id == ChatSession.id, Message.text.contains(term, autoescape=True))
        )
    total = int(db.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = db.execute(
        stmt.order_by(ChatSession.last_at.desc(), ChatSession.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    ids = [r.id for r in rows]
    if not ids:
        return [], total

    turns = dict(
        db.execute(  # type: ignore[arg-type]
            select(Message.session_id, func.count())
            .where(Message.session_id.in_(ids), Message.role == "user")
            .group_by(Message.session_id)
        ).all()
    )
    last_intent: dict[str, str] = {}
    for sid, value in db.execute(
        select(Message.session_id, Message.intent)
        .where(Message.session_id.in_(ids), Message.intent.is_not(None))
        .order_by(Message.created_at, Message.id)
    ):
        last_intent[sid] = str(value)
    with_ticket = set(db.scalars(select(HandoffTicket.session_id).where(HandoffTicket.session_id.in_(ids))))
    votes: dict[str, FeedbackCounts] = defaultdict(FeedbackCounts)
    for sid, rating, n in db.execute(
        select(Feedback.session_id, Feedback.rating, func.count())
        .where(Feedback.session_id.in_(ids), Feedback.rating.in_(("up", "down")))
        .group_by(Feedback.session_id, Feedback.rating)
    ):
        setattr(votes[sid], rating, int(n))
    customers = verified_customers(db, [r.visitor_id for r in rows])
    items = [
        ConversationOut(
            session_id=r.id,
            started_at=r.started_at,
            last_at=r.last_at,
            visitor=VisitorOut.of(customers.get(r.visitor_id) if r.visitor_id else None),
            turns=int(turns.get(r.id, 0)),
            last_intent=last_intent.get(r.id),
            handoff=r.id in with_ticket,
            feedback=votes.get(r.id, FeedbackCounts()),
            rating=r.rating,
        )
        for r in rows
    ]
    return items, total


def verified_customers(db: Session, visitor_ids: Iterable[str | None]) -> dict[str, str]:
    """visitor id -> the shop's id of that customer, for the visitors the shop vouched for (``visitors.verified``);
    the others are left out: an id recorded without a verified signature is a claim and never shown to agents as
    the customer's. One query for a page of sessions."""
    ids = {v for v in visitor_ids if v}
    if not ids:
        return {}
    rows = db.execute(select(Visitor.id, Visitor.external_user_id).where(Visitor.id.in_(ids), _vouched()))
    return {vid: str(cid) for vid, cid in rows}


def verified_customer_id(db: Session, visitor_id: str | None) -> str | None:
    """The shop's id of the session's visitor when the shop vouched for it, else None (``verified_customers``)."""
    return verified_customers(db, [visitor_id]).get(visitor_id) if visitor_id else None


def transcript(db: Session, session_id: str) -> TranscriptOut:
    session = db.get(ChatSession, session_id)
    if session is None:
        raise NotFound()
    messages = list(
        db.scalars(
            select(Message)
            .where(Message.session_id == session_id)
            .order_by(Message.created_at, Message.id)
            .limit(TRANSCRIPT_MAX_MESSAGES)
        )
    )
    fb: dict[str, list[str]] = defaultdict(list)
    for mid, rating in db.execute(
        select(Feedback.message_id, Feedback.rating)
        .where(Feedback.session_id == session_id)
        .order_by(Feedback.created_at)
    ):
        fb[mid].append(rating)
    ticket = db.scalar(
        select(func.count()).select_from(HandoffTicket).where(and_(HandoffTicket.session_id == session_id))
    )
    return TranscriptOut(
        session_id=session.id,
        started_at=session.started_at,
        last_at=session.last_at,
        visitor=VisitorOut.of(verified_customer_id(db, session.visitor_id)),
        handoff=bool(ticket),
        rating=session.rating,
        rating_comment=mask_pii(session.rating_comment) if session.rating_comment else None,
        messages=[
            TranscriptMessage(
                id=m.id,
                role=m.role,  # type: ignore[arg-type]
                text=mask_pii(m.text),
                created_at=m.created_at,
                intent=m.intent,
                confidence=m.confidence,
                reply_type=m.reply_type,
                faq_id=m.faq_id,
                suggestions=[mask_pii(s) for s in (m.suggestions or [])],
                latency_ms=m.latency_ms,
                feedback=fb.get(m.id, []),
            )
            for m in messages
        ],
    )
