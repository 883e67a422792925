"""Request/response models of the console endpoints (the OpenAPI document the console generates from)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.admin import limits
from api.schemas import ReplyOut


# ---- FAQ -------------------------------------------------------------------------------------------------
class FaqIn(BaseModel):
    question: str = Field(min_length=1, max_length=limits.QUESTION_MAX_CHARS)
    answer: str = Field(min_length=1, max_length=limits.ANSWER_MAX_CHARS)
    category: str | None = Field(default=None, max_length=limits.CATEGORY_MAX_CHARS)
    similar: list[str] = Field(default_factory=list, max_length=limits.SIMILAR_MAX * 2)
    enabled: bool = True
    intent: str | None = Field(default=None, max_length=limits.INTENT_MAX_CHARS)


class FaqPatch(BaseModel):
    """PUT body: fields left out keep their value; ``version`` (optional) guards against lost updates."""

    question: str | None = Field(default=None, min_length=1, max_length=limits.QUESTION_MAX_CHARS)
    answer: str | None = Field(default=None, min_length=1, max_length=limits.ANSWER_MAX_CHARS)
    category: str | None = Field(default=None, max_length=limits.CATEGORY_MAX_CHARS)
    similar: list[str] | None = Field(default=None, max_length=limits.SIMILAR_MAX * 2)
    enabled: bool | None = None
    intent: str | None = Field(default=None, max_length=limits.INTENT_MAX_CHARS)
    version: int | None = Field(default=None, ge=1)


class FaqOut(BaseModel):
    id: str
    question: str
    answer: str
    category: str | None
    similar: list[str]
    enabled: bool
    intent: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class FaqList(BaseModel):
    items: list[FaqOut]
    total: int
    kb_revision: int


class CategoryOut(BaseModel):
    name: str
    count: int


class CategoryList(BaseModel):
    items: list[CategoryOut]


class ImportErrorOut(BaseModel):
    row: int  # 1-based line/row number in the file, header = row 1
    field: str
    code: str
    message: str


class ImportResult(BaseModel):
    dry_run: bool
    total: int
    valid: int
    created: int
    updated: int
    errors: list[ImportErrorOut]
    errors_truncated: bool = False


# ---- index -----------------------------------------------------------------------------------------------
class IndexVersionOut(BaseModel):
    version: str
    size: int
    entries: int
    index_type: str
    active: bool
    created_at: str
    build_seconds: float
    embedder_version: str
    recall_at_10: float | None = None
    # the KB revision it was built from (null: not published from here); a version serving re-embedded after an
    # embedder change carries the revision of the version it was made from
    kb_revision: int | None = None


class PublishOut(BaseModel):
    version: str
    size: int
    index_type: str
    active: bool
    entries: int
    kb_revision: int


class IndexListOut(BaseModel):
    live_version: str | None
    versions: list[IndexVersionOut]
    kb_revision: int
    live_kb_revision: int | None
    stale: bool  # the KB changed since the live index was built (or the live index is unknown here)


# ---- templates -------------------------------------------------------------------------------------------
class TemplateOut(BaseModel):
    key: str
    variants: list[str]
    variables: list[str]  # the {variables} this key may use
    updated_at: datetime | None = None


class TemplateList(BaseModel):
    items: list[TemplateOut]


class TemplateIn(BaseModel):
    variants: list[str] = Field(min_length=1, max_length=limits.TEMPLATE_VARIANTS_MAX)


# ---- playground ------------------------------------------------------------------------------------------
class PlaygroundIn(BaseModel):
    message: str = Field(max_length=4000)


class LabelScoreOut(BaseModel):
    label: str
    confidence: float


class CandidateOut(BaseModel):
    faq_id: str
    question: str
    matched: str
    dense_score: float
    keyword_score: float
    fused_score: float
    intent: str | None = None  # the FAQ's intent in the knowledge base (null: none set)
    # the FAQ's intent is the classifier's confident reading of the message (the dialog's agreement rule)
    intent_agrees: bool = False


class PlaygroundOut(BaseModel):
    normalized: str
    intent: str | None  # null: below the intent's calibrated threshold
    confidence: float
    intent_top_k: list[LabelScoreOut]
    sentiment: LabelScoreOut | None
    candidates: list[CandidateOut]
    band: str  # the reply type the dialog manager chose on a fresh conversation
    thresholds: dict[str, float]
    reply: ReplyOut
    index_version: str | None = None


# ---- conversations ---------------------------------------------------------------------------------------
class VisitorOut(BaseModel):
    """Who the agent is talking to: a customer the shop vouched for (api.identity), or an anonymous visitor whose
    claims about orders or accounts nobody has checked. ``customer_id`` only ever comes from a verified id."""

    verified: bool
    customer_id: str | None  # the shop's id of the customer; null: anonymous

    @classmethod
    def of(cls, verified_customer_id: str | None) -> VisitorOut:
        return cls(verified=verified_customer_id is not None, customer_id=verified_customer_id)


class FeedbackCounts(BaseModel):
    up: int = 0
    down: int = 0


class ConversationOut(BaseModel):
    session_id: str
    started_at: datetime
    last_at: datetime
    visitor: VisitorOut  # as on the transcript: the verified customer, else anonymous
    turns: int  # visitor messages
    last_intent: str | None
    handoff: bool
    feedback: FeedbackCounts
    rating: int | None = None


class ConversationList(BaseModel):
    items: list[ConversationOut]
    total: int


class TranscriptMessage(BaseModel):
    id: str
    role: Literal["user", "bot", "agent"]
    text: str
    created_at: datetime
    intent: str | None = None
    confidence: float | None = None
    reply_type: str | None = None
    faq_id: str | None = None
    suggestions: list[str] = Field(default_factory=list)
    latency_ms: float | None = None
    feedback: list[str] = Field(default_factory=list)  # "up" | "down" | "1".."5"


class TranscriptOut(BaseModel):
    session_id: str
    started_at: datetime
    last_at: datetime
    visitor: VisitorOut
    handoff: bool
    rating: int | None
    rating_comment: str | None
    messages: list[TranscriptMessage]


# ---- unanswered ------------------------------------------------------------------------------------------
class ClusterOut(BaseModel):
    id: str
    size: int  # messages in the cluster
    representative: str
    questions: list[str]  # distinct questions (up to 20)
    suggested_faq_id: str | None
    suggested_faq_question: str | None
    suggested_score: float | None = None


class ClusterList(BaseModel):
    clusters: list[ClusterOut]
    messages: int  # unanswered messages considered
    threshold: float


class AcceptIn(BaseModel):
    action: Literal["new_faq", "similar"]
    faq_id: str | None = Field(default=None, max_length=64)
    answer: str | None = Field(default=None, max_length=limits.ANSWER_MAX_CHARS)
    question: str | None = Field(default=None, max_length=limits.QUESTION_MAX_CHARS)
    category: str | None = Field(default=None, max_length=limits.CATEGORY_MAX_CHARS)


class AcceptOut(BaseModel):
    cluster_id: str
    action: Literal["new_faq", "similar"]
    faq: FaqOut
    added_similar: int


# ---- analytics -------------------------------------------------------------------------------------------
class DayCount(BaseModel):
    date: date
    turns: int


class IntentCount(BaseModel):
    intent: str
    count: int


class FeedbackSummary(BaseModel):
    up: int
    down: int
    ratings_avg: float | None
    ratings_count: int


class LatencySummary(BaseModel):
    p50_ms: float | None
    p99_ms: float | None


class AnalyticsOut(BaseModel):
    date_from: date
    date_to: date
    turns: int
    conversations: int
    turns_per_day: list[DayCount]
    resolution_rate: float | None
    suggest_rate: float | None
    clarify_rate: float | None
    fallback_rate: float | None
    handoff_rate: float | None
    top_intents: list[IntentCount]
    feedback: FeedbackSummary
    latency: LatencySummary
