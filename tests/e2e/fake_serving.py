"""A deterministic stand-in for the inference server's ``/v1/nlu`` (bundle.contracts wire format).

Browser tests need realistic bot replies (answers, "您是不是想问" suggestions) without Ray or model files. This
server scores the demo FAQ by character-bigram overlap: a near-verbatim question lands in the answer band, a
partial match in the suggest band. The intent is the top FAQ's intent, accepted only on a strong match.
``/v1/embed`` returns hashed character-bigram vectors (so unanswered-question clustering works); index
management answers 503, as a down server would.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ANSWER, SUGGEST = 0.8, 0.35
EMBED_DIM = 128


def _norm(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in t if ch.isalnum())


def _bigrams(text: str) -> set[str]:
    t = _norm(text)
    return {t[i : i + 2] for i in range(len(t) - 1)} or ({t} if t else set())


def _dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def embed(text: str) -> list[float]:
    """L2-normalized hashed bag of character bigrams: similar wording -> high cosine."""
    v = [0.0] * EMBED_DIM
    for g in _bigrams(text):
        v[int(hashlib.md5(g.encode()).hexdigest(), 16) % EMBED_DIM] += 1.0
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


class FakeNlu:
    def __init__(self, faq_path: Path) -> None:
        self.faqs = [
            json.loads(line) for line in faq_path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]

    def score(self, text: str, top_k: int) -> dict[str, Any]:
        q = _bigrams(text)
        scored = []
        for f in self.faqs:
            best, matched = 0.0, f["question"]
            for cand in [f["question"], *f.get("similar", [])]:
                s = _dice(q, _bigrams(cand))
                if s > best:
                    best, matched = s, cand
            scored.append((best, f, matched))
        scored.sort(key=lambda x: -x[0])
        top = scored[:top_k]
        intent = top[0][1].get("intent") or "other"
        conf = round(top[0][0], 4)
        candidates = [
            {
                "faq_id": f["id"],
                "question": f["question"],
                "matched": m,
                "dense_score": round(s, 4),
                "keyword_score": round(s, 4),
                "fused_score": round(s, 4),
            }
            for s, f, m in top
            if s > 0
        ]
        return {
            "text": _norm(text),
            "intent": {
                "label": intent,
                "confidence": conf,
                "threshold": 0.6,
                "top_k": [
                    {"label": intent, "confidence": conf},
                    {"label": "other", "confidence": round(1 - conf, 4)},
                ],
            },
            "sentiment": {"label": "neutral", "confidence": 0.9},
            "candidates": candidates,
        }


def _handler(nlu: FakeNlu) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path in ("/healthz", "/readyz", "/-/healthz"):
                self._send(200, {"status": "ok"})
            else:
                self._send(503, {"error": {"code": "UNAVAILABLE", "message": "fake serving"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/v1/embed":
                texts = body.get("texts", [])
                self._send(
                    200, {"embeddings": [embed(t) for t in texts], "dim": EMBED_DIM, "model_version": "fake"}
                )
                return
            if self.path != "/v1/nlu":
                self._send(503, {"error": {"code": "UNAVAILABLE", "message": "fake serving"}})
                return
            top_k = int(body.get("top_k", 5))
            self._send(
                200,
                {
                    "results": [nlu.score(t, top_k) for t in body.get("texts", [])],
                    "thresholds": {"answer": ANSWER, "suggest": SUGGEST},
                    "model_versions": {"intent": "fake", "sentiment": "fake", "embedder": "fake"},
                    "index_version": "fake-index",
                },
            )

    return Handler


@contextmanager
def fake_serving(faq_path: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(FakeNlu(faq_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
