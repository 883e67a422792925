"""Request parsing for the ingress: bytes -> UTF-8 -> JSON -> contract model, each failure a stable code.

The ingress parses bodies itself (instead of FastAPI's automatic body parsing) so that invalid UTF-8, lone
surrogates, oversized bodies and every schema violation map to one documented code and never to exception text.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from serving.errors import ErrorCode, ServingError

M = TypeVar("M", bound=BaseModel)

_TYPE_ERRORS = {"list_type", "string_type", "int_type", "int_parsing", "bool_type", "bool_parsing", "model_type",
                "dict_type", "float_type", "float_parsing", "model_attributes_type"}  # fmt: skip


def _has_surrogates(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, list):
        return any(_has_surrogates(v) for v in value)
    if isinstance(value, dict):
        return any(_has_surrogates(k) or _has_surrogates(v) for k, v in value.items())
    return False


def code_for_validation_error(exc: ValidationError) -> ErrorCode:
    """The code of the first error pydantic reports (stable order: field order of the model)."""
    err = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    etype, loc = err["type"], tuple(err["loc"])
    field = loc[0] if loc else None
    if field in ("texts", "similar", "entries") and len(loc) == 1:
        if etype == "too_short":
            return ErrorCode.TEXTS_EMPTY
        if etype == "too_long":
            return ErrorCode.TOO_MANY_TEXTS
    if etype == "string_too_short":
        return ErrorCode.TEXT_EMPTY
    if etype == "string_too_long":
        return ErrorCode.TEXT_TOO_LONG
    if etype in _TYPE_ERRORS:
        return ErrorCode.INVALID_TYPE
    return ErrorCode.INVALID_REQUEST


async def read_body(request: Any, max_bytes: int) -> bytes:
    """The request body, refused with PAYLOAD_TOO_LARGE as soon as it is known to exceed ``max_bytes``: from a
    Content-Length header before anything is read, else while the chunks arrive. (Starlette's ``body()`` would
    buffer a body of any size first.)"""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ServingError(ErrorCode.PAYLOAD_TOO_LARGE, f"{declared} bytes > {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ServingError(ErrorCode.PAYLOAD_TOO_LARGE, f"more than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(raw: bytes, model: type[M], *, max_bytes: int) -> M:
    if len(raw) > max_bytes:
        raise ServingError(ErrorCode.PAYLOAD_TOO_LARGE, f"{len(raw)} bytes > {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ServingError(ErrorCode.INVALID_ENCODING, "body is not UTF-8") from None
    try:
        data = json.loads(text)
        surrogates = _has_surrogates(data)
    except ValueError:
        raise ServingError(ErrorCode.INVALID_JSON, "body is not JSON") from None
    except RecursionError:  # nesting like [[[[...]]]] deeper than the interpreter's stack: not our schema
        raise ServingError(ErrorCode.INVALID_JSON, "body nests too deeply") from None
    if surrogates:
        raise ServingError(ErrorCode.INVALID_ENCODING, "lone surrogate in a JSON string")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ServingError(code_for_validation_error(exc), "request failed validation") from None
