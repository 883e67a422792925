"""Test doubles for the API room: ``FakeNlu``, a deterministic in-process stand-in for the inference server.

FakeNlu is an ASGI app that answers ``POST /v1/nlu`` and ``POST /v1/embed`` with the real wire contract
(bundle.contracts) using transparent rules over the demo data: keyword rules for intents and sentiment, and
character-bigram overlap (IDF-weighted) against the demo FAQ questions + similar questions for retrieval.
It is NOT a model; it exists so that the HTTP client, the dialog manager and the chat flow can be tested
turn by turn without model files.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

from api.dialog.manager import DialogManager, TurnResult
from api.dialog.state import DialogState
from api.identity import DEMO_CUSTOMER_ID
from bundle.contracts import (
    Candidate,
    EmbedRequest,
    EmbedResponse,
    IndexBuildRequest,
    IndexInfo,
    IndexList,
    IntentResult,
    KbEntry,
    LabelScore,
    NluRequest,
    NluResponse,
    NluResult,
    RetrievalThresholds,
)
from bundle.normalize import normalize

REPO = Path(__file__).resolve().parents[3]
FAQ_PATH = REPO / "data" / "demo" / "faq" / "faq.jsonl"

# Ordered: the first rule whose pattern matches wins.
INTENT_RULES: list[tuple[str, str]] = [
    ("human_agent", r"转人工|人工客服|真人|找人工"),
    ("complaint", r"投诉|破服务|踢皮球|太差劲|垃圾"),
    ("order_status", r"订单.*(到哪|发货|状态|查)|查.*订单|到哪了|怎么还没发货|还没发货"),
    ("refund_return", r"退货|退款|退宽|退钱|无理由|换货"),
    ("logistics", r"包邮|运费|配送|快递|物流|偏远|送货"),
    ("payment", r"付款|支付|花呗|分期|扣款"),
    ("invoice", r"发票|开票|专票"),
    ("coupon_promotion", r"优惠|满减|促销|积分|领券"),
    ("account_password", r"密码|登录|验证码|账号"),
    ("technical_support", r"开不了机|连不上|闪退|蓝牙|固件"),
    ("product_inquiry", r"现货|正品|尺码|iphone|参数|有货"),
    ("greeting", r"^(你好|您好|在吗|哈喽|hi|hello)"),
    ("thanks", r"谢"),
    ("goodbye", r"再见|拜拜|没事了"),
    ("chitchat", r"机器人|天气|笑话|你是谁"),
    ("other", r"作业|股票|菜谱|彩票|考试"),
]
NEGATIVE = re.compile(r"破|垃圾|太差|失望|气死|坑人|踢皮球|坏了")
INTENT_THRESHOLD = 0.6
ANSWER, SUGGEST = 0.45, 0.25
_STOP = set(
    "的 了 吗 呢 啊 吧 呀 么 嘛 哦 哈 那 这 是 我 你 你们 他 有 个 一下 就 还 都 很 怎么 怎么办 什么 如何 可以 能 "
    "吗 一般 多少 请问 我的 要 想 会 给 在 呀 哪 哪里 好 好的 一直 就是 那个 这个 东西".split()
)


_STOP_CHARS = set("的了吗呢啊吧呀么嘛哦哈那这是我你他怎什个就还都很要想")


def _grams(text: str) -> list[str]:
    """Content words (jieba) plus character bigrams of the normalized text (both IDF-weighted later)."""
    import jieba

    norm = normalize(text)
    words = [w for w in jieba.lcut(norm) if re.search(r"\w", w) and w not in _STOP]
    chars = re.sub(r"[^\w]", "", norm)
    bigrams = [
        "~" + a + b
        for a, b in zip(chars, chars[1:], strict=False)
        if a not in _STOP_CHARS and b not in _STOP_CHARS and a + b not in _STOP
    ]
    return words + bigrams


class FakeNlu:
    """ASGI app. ``fail_with`` (status code) or ``delay_s`` simulate a broken or slow inference server."""

    def __init__(self, faq_path: Path = FAQ_PATH) -> None:
        self.thresholds = RetrievalThresholds(answer=ANSWER, suggest=SUGGEST)
        self.entries: list[tuple[str, str, str]] = []  # (faq_id, standard question, text)
        for line in faq_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                for text in [row["question"], *row.get("similar", [])]:
                    self.entries.append((row["id"], row["question"], text))
        df: Counter[str] = Counter()
        self._grams = [set(_grams(t)) for _, _, t in self.entries]
        for g in self._grams:
            df.update(g)
        n = len(self.entries)
        self.idf = {g: math.log(1 + n / c) for g, c in df.items()}
        self.requests: list[dict[str, Any]] = []  # recorded bodies + headers (tests assert batching / ids)
        self.fail_with: int | None = None
        self.delay_s: float = 0.0
        # normalized text -> label: a weak model's misreading of that exact text (dialog tests)
        self.misread: dict[str, str] = {}
        # normalized text -> sentiment label: the real sentiment model's reading of that exact text
        self.sentiment_misread: dict[str, str] = {}
        # index management (admin console tests): version -> IndexInfo, and the built entries
        self.indexes: dict[str, IndexInfo] = {}
        self.other_embedder: set[str] = (
            set()
        )  # versions whose activation serving refuses (built by another embedder)
        self.index_entries: dict[str, list[KbEntry]] = {}
        self.active_index: str | None = None

    # ---- rules --------------------------------------------------------------------------------------
    def intent(self, text: str) -> IntentResult:
        norm = normalize(text)
        for label, pattern in [(y, f"^{re.escape(t)}$") for t, y in self.misread.items()] + INTENT_RULES:
            if re.search(pattern, norm):
                conf = 0.95
                return IntentResult(
                    label=label,
                    confidence=conf,
                    threshold=INTENT_THRESHOLD,
                    top_k=[LabelScore(label=label, confidence=conf)],
                )
        return IntentResult(
            label="other",
            confidence=0.3,
            threshold=INTENT_THRESHOLD,
            top_k=[LabelScore(label="other", confidence=0.3)],
        )

    def sentiment(self, text: str) -> LabelScore:
        misread = self.sentiment_misread.get(normalize(text))
        if misread is not None:
            return LabelScore(label=misread, confidence=0.95)
        if NEGATIVE.search(normalize(text)):
            return LabelScore(label="negative", confidence=0.95)
        return LabelScore(label="neutral", confidence=0.8)

    def _w(self, grams: set[str]) -> float:
        return sum(self.idf.get(g, math.log(1 + len(self.entries))) for g in grams)

    def candidates(self, text: str, top_k: int) -> list[Candidate]:
        q = set(_grams(text))
        best: dict[str, tuple[float, str, str]] = {}
        for (faq_id, question, matched), g in zip(self.entries, self._grams, strict=True):
            common = q & g
            if not common:
                continue
            score = 2 * self._w(common) / (self._w(q) + self._w(g))
            if score > best.get(faq_id, (0.0, "", ""))[0]:
                best[faq_id] = (score, question, matched)
        ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)[:top_k]
        return [
            Candidate(
                faq_id=fid,
                question=qn,
                matched=m,
                dense_score=round(s, 4),
                keyword_score=round(s, 4),
                fused_score=round(s, 4),
            )
            for fid, (s, qn, m) in ranked
        ]

    def analyze(self, text: str, top_k: int = 5) -> NluResult:
        return NluResult(
            text=normalize(text),
            intent=self.intent(text),
            sentiment=self.sentiment(text),
            candidates=self.candidates(text, top_k),
        )

    def embed(self, text: str, dim: int = 32) -> list[float]:
        vec = [0.0] * dim
        for g in _grams(text):
            h = int(hashlib.md5(g.encode()).hexdigest(), 16)
            vec[h % dim] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    # ---- ASGI ---------------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        import asyncio

        assert scope["type"] == "http"
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        path = scope["path"]
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status, payload = 404, {"error": {"code": "NOT_FOUND", "message": "not found"}}
        if self.fail_with is not None:
            status, payload = self.fail_with, {"error": {"code": "FAKE", "message": "fake failure"}}
        elif path == "/v1/nlu" and scope["method"] == "POST":
            req = NluRequest.model_validate_json(body)
            self.requests.append({"path": path, "texts": req.texts, "headers": headers})
            resp = NluResponse(
                results=[self.analyze(t, req.top_k) for t in req.texts],
                thresholds=self.thresholds,
                model_versions={"intent": "fake", "embedder": "fake"},
                index_version="fake-index",
            )
            status, payload = 200, resp.model_dump()
        elif path == "/v1/embed" and scope["method"] == "POST":
            ereq = EmbedRequest.model_validate_json(body)
            self.requests.append({"path": path, "texts": ereq.texts, "headers": headers})
            status, payload = (
                200,
                EmbedResponse(
                    embeddings=[self.embed(t) for t in ereq.texts], dim=32, model_version="fake"
                ).model_dump(),
            )
        elif path.startswith("/v1/indexes"):
            status, payload = self.index_route(scope["method"], path, body)
        elif path == "/readyz":
            status, payload = 200, {"status": "ready"}
        data = json.dumps(payload, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    # ---- index management (POST /v1/indexes, POST /v1/indexes/{v}/activate, GET /v1/indexes) ------------
    def reset_indexes(self) -> None:
        self.other_embedder.clear()
        self.indexes.clear()
        self.index_entries.clear()
        self.active_index = None

    def index_route(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        parts = path.strip("/").split("/")  # v1 indexes [version activate]
        if method == "POST" and len(parts) == 2:
            req = IndexBuildRequest.model_validate_json(body)
            self.requests.append({"path": path, "entries": len(req.entries)})
            version = req.version or f"idx-{len(self.indexes) + 1:04d}"
            if version in self.indexes:
                return 409, {"error": {"code": "INDEX_EXISTS", "message": "exists"}}
            size = sum(1 + len(e.similar) for e in req.entries)
            info = IndexInfo(
                version=version,
                size=size,
                entries=len(req.entries),
                index_type="flat",
                build_seconds=0.01,
                created_at=f"2026-01-01T00:00:{len(self.indexes):02d}Z",
                embedder_version="fake",
            )
            self.indexes[version] = info
            self.index_entries[version] = list(req.entries)
            if req.activate:
                self.active_index = version
            return 201, info.model_copy(update={"active": version == self.active_index}).model_dump()
        if method == "POST" and len(parts) == 4 and parts[3] == "activate":
            if parts[2] not in self.indexes:
                return 404, {"error": {"code": "INDEX_NOT_FOUND", "message": "not found"}}
            if parts[2] in self.other_embedder:
                return 409, {"error": {"code": "INDEX_EMBEDDER_MISMATCH", "message": "other embedder"}}
            self.active_index = parts[2]
            return 200, self.indexes[parts[2]].model_copy(update={"active": True}).model_dump()
        if method == "GET" and len(parts) == 2:
            versions = [
                i.model_copy(update={"active": v == self.active_index}) for v, i in self.indexes.items()
            ]
            return 200, IndexList(active=self.active_index, versions=versions).model_dump()
        return 404, {"error": {"code": "NOT_FOUND", "message": "not found"}}


# ---- helpers shared by the API unit tests ---------------------------------------------------------------
ORDERS_PATH = REPO / "data" / "demo" / "orders.json"
TEMPLATES_PATH = REPO / "data" / "demo" / "templates.json"
DIALOGS_PATH = REPO / "data" / "demo" / "dialogs.jsonl"
# API_IDENTITY_SECRET of conftest's app_settings: signs the unit tests' shoppers
IDENTITY_SECRET = "unit-test-identity-secret-0123456789abcdef"


class DictOrderLookup:
    """OrderLookup over data/demo/orders.json, for dialog tests that run without a database: an order is shown to
    its owner only (``customer_id``), as DemoOrderLookup does."""

    connected = True

    def __init__(self, path: Path = ORDERS_PATH) -> None:
        from api.dialog.orders import OrderInfo

        self.orders: dict[str, Any] = {}
        self.owners: dict[str, str] = {}
        for row in json.loads(path.read_text(encoding="utf-8")):
            self.owners[row["order_id"]] = row["customer_id"]
            self.orders[row["order_id"]] = OrderInfo(
                order_id=row["order_id"],
                status=row["status"],
                carrier=row.get("carrier"),
                tracking_no=row.get("tracking_no"),
                items=row.get("items", []),
                updated_at=row.get("updated_at"),
                refund_deadline=row.get("refund_deadline"),
                refundable=row.get("refundable"),
            )
        self.calls: list[str] = []

    async def lookup(self, order_id: str, customer_id: str | None) -> Any:
        self.calls.append(order_id)
        if customer_id is None or self.owners.get(order_id) != customer_id:
            return None
        return self.orders.get(order_id)


class ShopperDialog(DialogManager):
    """The dialog as the demo shop's signed-in customer meets it (the chat passes the session's verified id): the
    demo dialogs (data/demo/dialogs.jsonl) are that customer's, and so are the orders they look up. An anonymous
    visitor's turn: ``handle(state, text, None)``."""

    async def handle(
        self, state: DialogState, text: str, customer_id: str | None = DEMO_CUSTOMER_ID
    ) -> TurnResult:
        return await super().handle(state, text, customer_id)


def faq_catalog(path: Path = FAQ_PATH) -> Any:
    from api.catalog import FaqCatalog, FaqView

    catalog = FaqCatalog()
    views = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            views.append(
                FaqView(
                    row["id"], row["question"], row["answer"], row.get("intent"), row.get("category"), True
                )
            )
    catalog.set_all(views)
    return catalog


def demo_templates() -> Any:
    import random

    from api.db.seed import templates_from_file
    from api.templates import TemplateBook

    return TemplateBook(templates_from_file(TEMPLATES_PATH), rng=random.Random(7))


def load_dialogs() -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in DIALOGS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
