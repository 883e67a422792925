"""Direct database seeding of conversations for the console tests (known reply types, times, latencies)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from api.db.models import ChatSession, Feedback, HandoffTicket, Message, Visitor

_ids = itertools.count(1)


@dataclass
class Turn:
    user: str
    reply_type: str
    intent: str | None = None
    latency_ms: float | None = None
    feedback: str | None = None  # "up" | "down" | "1".."5" on the bot message
    faq_id: str | None = None


@dataclass
class Conversation:
    session_id: str
    at: datetime
    turns: list[Turn]
    ticket: bool = False
    rating: int | None = None
    # (external_user_id, verified) of the session's visitor row; None: a session without one
    visitor: tuple[str | None, bool] | None = None
    message_ids: list[str] = field(default_factory=list)


def seed(factory: Any, conversations: list[Conversation]) -> None:
    with factory() as db, db.begin():
        for conv in conversations:
            t = conv.at
            visitor_id = None
            if conv.visitor is not None:
                visitor_id = f"v_{conv.session_id}"
                user_id, verified = conv.visitor
                db.add(Visitor(id=visitor_id, external_user_id=user_id, verified=verified, created_at=t))
                db.flush()
            db.add(
                ChatSession(
                    id=conv.session_id, visitor_id=visitor_id, started_at=t, last_at=t, rating=conv.rating
                )
            )
            db.flush()
            for turn in conv.turns:
                uid, bid = f"m_u{next(_ids):06d}", f"m_b{next(_ids):06d}"
                db.add(
                    Message(
                        id=uid,
                        session_id=conv.session_id,
                        role="user",
                        text=turn.user,
                        intent=turn.intent,
                        created_at=t,
                    )
                )
                t += timedelta(milliseconds=5)
                db.add(
                    Message(
                        id=bid,
                        session_id=conv.session_id,
                        role="bot",
                        text="……",
                        intent=turn.intent,
                        reply_type=turn.reply_type,
                        faq_id=turn.faq_id,
                        latency_ms=turn.latency_ms,
                        created_at=t,
                    )
                )
                conv.message_ids += [uid, bid]
                if turn.feedback:
                    db.add(
                        Feedback(
                            id=f"f_{next(_ids):06d}",
                            session_id=conv.session_id,
                            message_id=bid,
                            rating=turn.feedback,
                            created_at=t + timedelta(seconds=1),
                        )
                    )
                t += timedelta(seconds=30)
            if conv.ticket:
                db.add(
                    HandoffTicket(
                        id=f"t_{conv.session_id}",
                        session_id=conv.session_id,
                        status="waiting",
                        created_at=conv.at,
                    )
                )
            db.query(ChatSession).filter(ChatSession.id == conv.session_id).update(
                {"last_at": t - timedelta(seconds=30)}
            )
