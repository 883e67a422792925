"""Request/response models of the public API (the OpenAPI document the frontend generates from)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

ReplyTypeLiteral = Literal[
    "answer",
    "suggest",
    "clarify",
    "slot_prompt",
    "template",
    "fallback",
    "handoff",
    "degraded",
    "agent_pending",
]


class ChatRequest(BaseModel):
    # The length bound (1..1000 after trimming) is checked by the chat service with a precise error code;
    # this raw cap only stops absurd payloads early.
    message: str = Field(max_length=4000)
    session_id: str | None = Field(default=None, max_length=64)
    # The shop's id of its signed-in shopper and the shop's signature of it (api/identity.py): read when the turn
    # starts a session; an id whose signature does not verify starts an anonymous session.
    user_id: str | None = Field(default=None, max_length=128)
    user_signature: str | None = Field(default=None, max_length=128)
    # The widget's id for this turn, the same on every retry: a turn the session already has is answered again
    # from the session (same message_id and reply) instead of being run and stored a second time.
    client_message_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$")


class ReplyOut(BaseModel):
    type: ReplyTypeLiteral
    text: str
    suggestions: list[str] = Field(default_factory=list)
    faq_id: str | None = None
    quick_replies: list[str] = Field(default_factory=list)


class HandoffStatusOut(BaseModel):
    status: Literal["none", "waiting", "active"]


class ChatResponse(BaseModel):
    session_id: str
    session_token: str | None = None
    message_id: str
    reply: ReplyOut
    intent: str | None  # null when no intent was recognised with enough confidence
    confidence: float
    handoff: HandoffStatusOut = HandoffStatusOut(status="none")  # "waiting" once a ticket is open
    # Only on the turn that started the session: how its user_id was taken. "rejected": sent, but the signature
    # was missing, wrong or expired (the session is anonymous; see the API log and xiaoke_api_identity_checks_total)
    identity: Literal["verified", "anonymous", "rejected"] | None = None


class HistoryMessage(BaseModel):
    id: str
    role: Literal["user", "bot", "agent"]
    text: str
    created_at: datetime
    reply_type: str | None = None
    suggestions: list[str] = Field(default_factory=list)
    faq_id: str | None = None


class HistoryResponse(BaseModel):
    session_id: str
    handoff: HandoffStatusOut
    messages: list[HistoryMessage]


class HandoffResponse(BaseModel):
    status: Literal["waiting", "active"]
    ticket_id: str


class FeedbackRequest(BaseModel):
    message_id: str = Field(min_length=1, max_length=40)
    rating: Literal["up", "down"] | int
    comment: str | None = Field(default=None, max_length=1000)
    session_id: str | None = Field(default=None, max_length=64)


class RatingRequest(BaseModel):
    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=1000)
