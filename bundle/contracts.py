"""Wire contract between the API and the inference server (serving). Both sides import these models.

serving answers POST /v1/nlu with NluResponse; the API's inference client sends NluRequest. Changing a
field here is a contract change for both rooms: add fields with defaults, never rename.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_TEXTS = 64
MAX_TEXT_CHARS = 512
MAX_TOP_K = 20

NluText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NluRequest(_Strict):
    texts: list[NluText] = Field(min_length=1, max_length=MAX_TEXTS)
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K)
    with_sentiment: bool = True
    with_candidates: bool = True


class LabelScore(BaseModel):
    label: str
    confidence: float


class IntentResult(BaseModel):
    label: str
    confidence: float
    threshold: float  # calibrated per-label acceptance threshold from the bundle
    top_k: list[LabelScore]


class Candidate(BaseModel):
    faq_id: str
    question: str  # the FAQ's standard question
    matched: str  # the question or similar question that matched best
    dense_score: float  # cosine similarity of the best-matching question (0 when not found densely)
    keyword_score: float  # query-coverage BM25 in [0, 1]: max(question-level jieba, FAQ-level char bigrams)
    fused_score: float  # the score the dialog manager thresholds on


class RetrievalThresholds(BaseModel):
    answer: float  # fused_score >= answer -> answer directly
    suggest: float  # suggest <= fused_score < answer -> "您是不是想问"
    # top FAQ in the suggest band whose fused score leads the best other FAQ's by >= this -> answer too
    answer_margin: float | None = None
    # top FAQ at >= this whose intent is the one the intent classifier read (confidently) -> answer too
    answer_agree: float | None = None


class NluResult(BaseModel):
    text: str  # normalized text that was scored
    intent: IntentResult
    sentiment: LabelScore | None = None
    candidates: list[Candidate] = Field(default_factory=list)


class NluResponse(BaseModel):
    results: list[NluResult]
    thresholds: RetrievalThresholds
    model_versions: dict[str, str]  # kind -> bundle version
    index_version: str | None = None


class EmbedRequest(_Strict):
    texts: list[NluText] = Field(min_length=1, max_length=MAX_TEXTS)


class EmbedResponse(BaseModel):
    embeddings: list[list[float]]
    dim: int
    model_version: str


class KbEntry(_Strict):
    faq_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    question: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
    similar: list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]] = Field(
        default_factory=list, max_length=200
    )
    category: str | None = None


class IndexBuildRequest(_Strict):
    entries: list[KbEntry] = Field(min_length=1, max_length=2_000_000)
    activate: bool = True
    version: str | None = None  # default: generated (timestamp + content hash)


class IndexInfo(BaseModel):
    version: str
    size: int  # number of indexed questions (standard + similar)
    entries: int  # number of FAQ entries
    index_type: str  # "flat" | "hnsw" | "ivf"
    recall_at_10: float | None = None  # measured against exact search at build time (approximate indexes)
    build_seconds: float
    created_at: str
    embedder_version: str
    # set when serving re-embedded another version's questions after an embedder change (no KB change): that
    # version (the original publish, through any number of re-embeddings), whose KB content this one carries
    derived_from: str | None = None
    active: bool = False


class IndexList(BaseModel):
    active: str | None
    versions: list[IndexInfo]


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
