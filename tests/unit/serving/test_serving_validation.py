"""Request validation: every bad input maps to a stable 4xx code."""

from __future__ import annotations

import json

import pytest

from bundle.contracts import EmbedRequest, IndexBuildRequest, NluRequest
from serving.errors import ErrorCode, ServingError
from serving.validation import parse_body

LIMIT = 1 << 20


def _code(raw: bytes, model: type = NluRequest, limit: int = LIMIT) -> ErrorCode:
    with pytest.raises(ServingError) as exc:
        parse_body(raw, model, max_bytes=limit)
    assert 400 <= exc.value.status < 500
    return exc.value.code


def _j(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"texts": ["\xff\xfe"]}', ErrorCode.INVALID_ENCODING),
        (b'{"texts": ["\\ud800"]}', ErrorCode.INVALID_ENCODING),  # lone surrogate
        (b'{"texts": ["a"', ErrorCode.INVALID_JSON),
        (b"", ErrorCode.INVALID_JSON),
        (_j({"texts": []}), ErrorCode.TEXTS_EMPTY),
        (_j({"texts": ["好"] * 65}), ErrorCode.TOO_MANY_TEXTS),
        (_j({"texts": ["好" * 513]}), ErrorCode.TEXT_TOO_LONG),
        (_j({"texts": [""]}), ErrorCode.TEXT_EMPTY),
        (_j({"texts": "我要退货"}), ErrorCode.INVALID_TYPE),
        (_j({"texts": [123]}), ErrorCode.INVALID_TYPE),
        (_j({"texts": ["a"], "top_k": "many"}), ErrorCode.INVALID_TYPE),
        (_j(["a"]), ErrorCode.INVALID_TYPE),
        (_j({"texts": ["a"], "top_k": 0}), ErrorCode.INVALID_REQUEST),
        (_j({"texts": ["a"], "extra": 1}), ErrorCode.INVALID_REQUEST),
        (_j({}), ErrorCode.INVALID_REQUEST),
    ],
)
def test_bad_nlu_requests(raw: bytes, code: ErrorCode) -> None:
    assert _code(raw) is code


def test_body_size_limit() -> None:
    assert _code(_j({"texts": ["a" * 100]}), limit=50) is ErrorCode.PAYLOAD_TOO_LARGE


def test_valid_requests_parse() -> None:
    req = parse_body(
        _j({"texts": ["我要退货", "好" * 512] + ["x"] * 62, "top_k": 3}), NluRequest, max_bytes=LIMIT
    )
    assert len(req.texts) == 64 and req.top_k == 3 and req.with_sentiment
    assert parse_body(_j({"texts": ["a"]}), EmbedRequest, max_bytes=LIMIT).texts == ["a"]


def test_index_build_validation() -> None:
    ok = parse_body(
        _j({"entries": [{"faq_id": "f1", "question": "q", "similar": ["s"]}]}),
        IndexBuildRequest,
        max_bytes=LIMIT,
    )
    assert ok.activate and ok.entries[0].similar == ["s"]
    assert _code(_j({"entries": []}), IndexBuildRequest) is ErrorCode.TEXTS_EMPTY
    assert (
        _code(_j({"entries": [{"faq_id": "f1", "question": ""}]}), IndexBuildRequest) is ErrorCode.TEXT_EMPTY
    )


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"texts": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"])
def test_deeply_nested_json_is_invalid_json_not_a_500(raw: bytes) -> None:
    """A body of a few kB of nested brackets made json.loads raise RecursionError, which the ingress answered
    as 500 INTERNAL (and logged as an unhandled failure with a traceback) instead of a 400."""
    assert _code(raw) is ErrorCode.INVALID_JSON
