"""Console analytics over an inclusive UTC date range, computed with portable SQL (SQLite and MySQL).

Definitions (a *turn* is one bot reply; agent messages and visitor messages forwarded to an agent are
not turns):

* ``turns_per_day``: bot replies per UTC day (days without traffic are listed with 0).
* ``resolution_rate``: resolved conversations / conversations with at least one turn in the range. A
  conversation is *resolved* when, within the range, it got at least one ``answer`` reply, no
  ``clarify`` / ``fallback`` / ``handoff`` / ``degraded`` reply, no handoff ticket and no thumbs-down.
* ``suggest_rate`` / ``clarify_rate`` / ``fallback_rate``: share of turns with that reply type.
* ``handoff_rate``: conversations for which a handoff ticket was opened in the range / conversations.
* ``top_intents``: the 10 most frequent recognised intents of the turns.
* ``feedback``: thumbs up/down given in the range; ``ratings_avg`` averages the 1-5 ratings (per-message
  numeric feedback and end-of-chat ratings of conversations active in the range).
* ``latency``: nearest-rank p50 / p99 of the API's per-turn latency (``messages.latency_ms``), in SQL
  (``ORDER BY … LIMIT 1 OFFSET k``), so no rows are pulled into Python.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from api.admin.conversations import day_start
from api.admin.schemas import AnalyticsOut, DayCount, FeedbackSummary, IntentCount, LatencySummary
from api.db.models import ChatSession, Feedback, HandoffTicket, Message

UNRESOLVED = ("clarify", "fallback", "handoff", "degraded")
TOP_INTENTS = 10


def _rate(n: int, d: int) -> float | None:
    return round(min(n / d, 1.0), 4) if d else None


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def percentile(db: Session, where: Any, q: float, n: int) -> float | None:
    if n == 0:
        return None
    k = max(0, math.ceil(q * n) - 1)
    value = db.scalar(
        select(Message.latency_ms)
        .where(where, Message.latency_ms.is_not(None))
        .order_by(Message.latency_ms)
        .offset(k)
        .limit(1)
    )
    return round(float(value), 2) if value is not None else None


def summary(db: Session, start: date, end: date) -> AnalyticsOut:
    lo, hi = day_start(start), day_start(end + timedelta(days=1))
    turn = and_(Message.role == "bot", Message.created_at >= lo, Message.created_at < hi)

    by_type = {
        t or "": int(n)
        for t, n in db.execute(
            select(Message.reply_type, func.count()).where(turn).group_by(Message.reply_type)
        )
    }
    turns = sum(by_type.values())

    day = func.date(Message.created_at)
    per_day = {
        _as_date(d): int(n) for d, n in db.execute(select(day, func.count()).where(turn).group_by(day))
    }
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]

    per_session = (
        select(
            Message.session_id.label("sid"),
            func.sum(case((Message.reply_type == "answer", 1), else_=0)).label("answers"),
            func.sum(case((Message.reply_type.in_(UNRESOLVED), 1), else_=0)).label("misses"),
        )
        .where(turn)
        .group_by(Message.session_id)
        .subquery()
    )
    down = select(Feedback.session_id).where(
        Feedback.rating == "down", Feedback.created_at >= lo, Feedback.created_at < hi
    )
    tickets = select(HandoffTicket.session_id).where(
        HandoffTicket.created_at >= lo, HandoffTicket.created_at < hi
    )
    conversations = int(db.scalar(select(func.count()).select_from(per_session)) or 0)
    resolved = int(
        db.scalar(
            select(func.count())
            .select_from(per_session)
            .where(
                per_session.c.answers > 0,
                per_session.c.misses == 0,
                per_session.c.sid.not_in(down),
                per_session.c.sid.not_in(tickets),
            )
        )
        or 0
    )
    handed = int(
        db.scalar(
            select(func.count(func.distinct(HandoffTicket.session_id))).where(
                HandoffTicket.created_at >= lo, HandoffTicket.created_at < hi
            )
        )
        or 0
    )

    top = db.execute(
        select(Message.intent, func.count().label("n"))
        .where(turn, Message.intent.is_not(None))
        .group_by(Message.intent)
        .order_by(func.count().desc(), Message.intent)
        .limit(TOP_INTENTS)
    ).all()

    up = down_n = 0
    rating_sum = rating_n = 0
    for rating, n in db.execute(
        select(Feedback.rating, func.count())
        .where(Feedback.created_at >= lo, Feedback.created_at < hi)
        .group_by(Feedback.rating)
    ):
        if rating == "up":
            up += int(n)
        elif rating == "down":
            down_n += int(n)
        elif str(rating).isdigit() and 1 <= int(rating) <= 5:
            rating_sum += int(rating) * int(n)
            rating_n += int(n)
    for stars, n in db.execute(
        select(ChatSession.rating, func.count())
        .where(ChatSession.rating.is_not(None), ChatSession.last_at >= lo, ChatSession.last_at < hi)
        .group_by(ChatSession.rating)
    ):
        rating_sum += int(stars or 0) * int(n)
        rating_n += int(n)

    timed = int(db.scalar(select(func.count()).where(turn, Message.latency_ms.is_not(None))) or 0)
    return AnalyticsOut(
        date_from=start,
        date_to=end,
        turns=turns,
        conversations=conversations,
        turns_per_day=[DayCount(date=d, turns=per_day.get(d, 0)) for d in days],
        resolution_rate=_rate(resolved, conversations),
        suggest_rate=_rate(by_type.get("suggest", 0), turns),
        clarify_rate=_rate(by_type.get("clarify", 0), turns),
        fallback_rate=_rate(by_type.get("fallback", 0), turns),
        handoff_rate=_rate(handed, conversations),
        top_intents=[IntentCount(intent=str(i), count=int(n)) for i, n in top],
        feedback=FeedbackSummary(
            up=up,
            down=down_n,
            ratings_avg=round(rating_sum / rating_n, 3) if rating_n else None,
            ratings_count=rating_n,
        ),
        latency=LatencySummary(
            p50_ms=percentile(db, turn, 0.5, timed), p99_ms=percentile(db, turn, 0.99, timed)
        ),
    )
