"""Dialog state kept in the session (serializable, small)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class Phase(StrEnum):
    IDLE = "idle"  # ready for any question
    AWAIT_ORDER_ID = "await_order_id"  # slot filling: waiting for a 13-digit order number
    HANDOFF_OFFERED = "handoff_offered"  # we offered a human; a yes goes to an agent
    AGENT = "agent"  # a human has (or waits for) the conversation: the bot stays silent
    ENDED = "ended"  # goodbye said; the next message starts over


class ReplyType(StrEnum):
    ANSWER = "answer"
    SUGGEST = "suggest"
    CLARIFY = "clarify"
    SLOT_PROMPT = "slot_prompt"
    TEMPLATE = "template"
    FALLBACK = "fallback"
    HANDOFF = "handoff"
    DEGRADED = "degraded"
    AGENT_PENDING = "agent_pending"


class DialogState(BaseModel):
    phase: Phase = Phase.IDLE
    task_intent: str | None = None  # the task intent a slot is being filled for
    slots: dict[str, str] = Field(default_factory=dict)
    slot_attempts: int = 0
    misses: int = 0  # consecutive clarify turns
    last_question: str | None = None  # last user text that got an FAQ answer/suggestion (normalized)
    last_intent: str | None = None
    last_faq_id: str | None = None
    # What the previous bot turn offered ("您是不是想问"), in order: the questions shown and their FAQ ids, so
    # that a numbered reply ("2", "第一个", "２") picks one. Cleared by every other turn.
    suggestions: list[str] = Field(default_factory=list)
    suggestion_ids: list[str] = Field(default_factory=list)
