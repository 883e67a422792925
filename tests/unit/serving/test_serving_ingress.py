"""NluIngress handlers without Ray: the undecorated class with in-process fake models and retriever."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np

from serving.ingress import NluIngress, _Local
from serving.servers import ModelReply, SearchReply
from serving.settings import ServingArgs


def _request(body: dict[str, Any]) -> Any:
    from starlette.requests import Request

    raw = json.dumps(body, ensure_ascii=False).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/v1/nlu", "headers": []}, receive)


class _Classifier:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def infer(self, texts: list[str]) -> ModelReply:
        probs = np.tile(np.array([[0.8, 0.2]], np.float32), (len(texts), 1))
        return ModelReply(self.kind, "c1", list(texts), probs, labels=["refund", "other"])


class _Embedder:
    """Every call answers with the next bundle version, as during a rolling bundle swap."""

    def __init__(self) -> None:
        self.calls = 0

    async def infer(self, texts: list[str]) -> ModelReply:
        self.calls += 1
        answer = {1: 0.9, 2: 0.6}[self.calls]
        vecs = np.ones((len(texts), 4), np.float32) / 2
        return ModelReply("embedder", f"e{self.calls}", list(texts), vecs, answer_threshold=answer)


class _Retriever:
    def __init__(self) -> None:
        self.release_e1 = asyncio.Event()

    async def search(
        self, texts: list[str], vectors: np.ndarray, top_k: int, emb_version: str
    ) -> SearchReply:
        if emb_version == "e1":
            await self.release_e1.wait()  # the first request's search is slow
        return SearchReply([[] for _ in texts], "ix-1", 0.0)


def _ingress(tmp_path: Path) -> Any:
    settings = ServingArgs(model_store=tmp_path, device="cpu", bootstrap=False).settings()
    undecorated = NluIngress.__mro__[1]  # the class as written, before @serve.ingress wrapped it
    ingress = object.__new__(NluIngress)
    fake = object()
    undecorated.__init__(ingress, settings, fake, fake, fake, fake)
    ingress.models = {"intent": _Local(_Classifier("intent")), "sentiment": _Local(_Classifier("sentiment"))}
    ingress.models["embedder"] = _Local(_Embedder())
    ingress.retriever = _Local(_Retriever())
    return ingress


async def test_thresholds_belong_to_the_embedder_that_scored_the_request(tmp_path: Path) -> None:
    ingress = _ingress(tmp_path)
    retriever: _Retriever = ingress.retriever.target
    first = asyncio.ensure_future(ingress._nlu(_request({"texts": ["我要退货"]}), "r1"))
    await asyncio.sleep(0.05)  # first request: embedded by e1, now searching
    second, _ = await ingress._nlu(_request({"texts": ["发票怎么开"]}), "r2")  # embedded by e2, done
    assert (second.model_versions["embedder"], second.thresholds.answer) == ("e2", 0.6)
    retriever.release_e1.set()
    resp, _ = await first
    # candidates were fused from e1's vectors: the thresholds to apply to them are e1's, not the latest
    assert (resp.model_versions["embedder"], resp.thresholds.answer) == ("e1", 0.9)


def _streamed(chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None) -> tuple[Any, list[int]]:
    """A request whose body arrives in ``chunks``; the list counts how many were pulled."""
    from starlette.requests import Request

    pulled: list[int] = []

    async def receive() -> dict[str, Any]:
        i = len(pulled)
        pulled.append(i)
        return {"type": "http.request", "body": chunks[i], "more_body": i + 1 < len(chunks)}

    scope = {"type": "http", "method": "POST", "path": "/v1/indexes", "headers": headers or []}
    return Request(scope, receive), pulled


async def test_an_oversized_body_is_refused_before_it_is_buffered() -> None:
    import pytest

    from serving.errors import ErrorCode, ServingError
    from serving.validation import read_body

    # declared too large: refused without reading a byte
    req, pulled = _streamed([b"x" * 10], [(b"content-length", b"5000000")])
    with pytest.raises(ServingError) as e:
        await read_body(req, 1000)
    assert e.value.code is ErrorCode.PAYLOAD_TOO_LARGE and pulled == []
    # chunked (no length): refused at the chunk that crosses the limit, the rest never pulled
    req, pulled = _streamed([b"x" * 400] * 10)
    with pytest.raises(ServingError) as e:
        await read_body(req, 1000)
    assert e.value.code is ErrorCode.PAYLOAD_TOO_LARGE and len(pulled) == 3
    req, _ = _streamed([b"ab", b"cd"])
    assert await read_body(req, 4) == b"abcd"


async def test_an_index_body_is_parsed_off_the_event_loop(tmp_path: Path, monkeypatch: Any) -> None:
    import threading

    ingress = _ingress(tmp_path)
    # @serve.ingress pickled the class: its methods see a copy of the module's globals, so patch that copy
    scope = NluIngress.__mro__[1]._build_route.__globals__
    seen: list[str] = []
    real = scope["parse_body"]

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real(*args, **kwargs)

    async def no_build(req: Any) -> Any:
        return {"entries": len(req.entries)}

    monkeypatch.setitem(scope, "parse_body", spy)
    monkeypatch.setattr(ingress, "_build", no_build)
    body = {"entries": [{"faq_id": f"f{i}", "question": f"问题{i}", "similar": []} for i in range(50)]}
    out, _ = await ingress._build_route(_request(body), "r1")
    assert out == {"entries": 50}
    assert seen and seen[0] != threading.main_thread().name  # not on the loop's thread


async def test_a_failed_batch_is_logged_with_every_visitor_request_id(tmp_path: Path, caplog: Any) -> None:
    """The API batches several visitors' turns into one /v1/nlu call: its X-Request-ID names the first, and
    X-Batch-Request-IDs all of them. A failure log naming only the first left the others untraceable."""
    import logging

    from starlette.requests import Request

    from serving.errors import ErrorCode, ServingError

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    headers = [(b"x-request-id", b"rid-a"), (b"x-batch-request-ids", b"rid-a,rid-b,bad id!,rid-c")]
    request = Request({"type": "http", "method": "POST", "path": "/v1/nlu", "headers": headers}, receive)

    async def down(_: Any, rid: str) -> Any:
        raise ServingError(ErrorCode.MODEL_UNAVAILABLE, "intent replica gone")

    ingress = _ingress(tmp_path)
    with caplog.at_level(logging.WARNING):
        response = await ingress._handle("nlu", request, down)
    assert response.status_code == 503
    line = next(r.getMessage() for r in caplog.records if "MODEL_UNAVAILABLE" in r.getMessage())
    assert "rid-a" in line and "rid-a,rid-b,rid-c" in line and "bad id" not in line
