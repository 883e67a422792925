"""One error hierarchy for the inference server: a stable code enum, one status table, one JSON shape.

Clients only ever see `{"error": {"code", "message", "request_id"}}` (bundle.contracts.ErrorResponse) with a
fixed bilingual message per code - never exception text or a traceback.
"""

from __future__ import annotations

from enum import StrEnum

from bundle.contracts import ErrorBody, ErrorResponse


class ErrorCode(StrEnum):
    INVALID_ENCODING = "INVALID_ENCODING"
    INVALID_JSON = "INVALID_JSON"
    INVALID_REQUEST = "INVALID_REQUEST"
    INVALID_TYPE = "INVALID_TYPE"
    TEXTS_EMPTY = "TEXTS_EMPTY"
    TOO_MANY_TEXTS = "TOO_MANY_TEXTS"
    TEXT_EMPTY = "TEXT_EMPTY"
    TEXT_TOO_LONG = "TEXT_TOO_LONG"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    INDEX_NOT_FOUND = "INDEX_NOT_FOUND"
    INDEX_VERSION_INVALID = "INDEX_VERSION_INVALID"
    INDEX_EXISTS = "INDEX_EXISTS"
    INDEX_BUILD_IN_PROGRESS = "INDEX_BUILD_IN_PROGRESS"
    INDEX_CORRUPT = "INDEX_CORRUPT"
    INDEX_EMBEDDER_MISMATCH = "INDEX_EMBEDDER_MISMATCH"
    INDEX_ACTIVE_MOVED = (
        "INDEX_ACTIVE_MOVED"  # a conditional activation found ACTIVE moved (not on any route)
    )
    OVERLOADED = "OVERLOADED"
    NOT_READY = "NOT_READY"
    MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
    TIMEOUT = "TIMEOUT"
    INTERNAL = "INTERNAL"


# code -> (HTTP status, fixed client message "中文 / English")
ERROR_TABLE: dict[ErrorCode, tuple[int, str]] = {
    ErrorCode.INVALID_ENCODING: (400, "请求不是有效的 UTF-8 / request body is not valid UTF-8"),
    ErrorCode.INVALID_JSON: (400, "请求不是有效的 JSON / request body is not valid JSON"),
    ErrorCode.INVALID_REQUEST: (422, "请求格式不正确 / request does not match the schema"),
    ErrorCode.INVALID_TYPE: (422, "字段类型不正确 / a field has the wrong type"),
    ErrorCode.TEXTS_EMPTY: (422, "texts 不能为空 / texts must not be empty"),
    ErrorCode.TOO_MANY_TEXTS: (422, "一次最多 64 条文本 / at most 64 texts per request"),
    ErrorCode.TEXT_EMPTY: (422, "文本不能为空 / a text is empty"),
    ErrorCode.TEXT_TOO_LONG: (422, "单条文本最多 512 个字符 / a text is longer than 512 characters"),
    ErrorCode.PAYLOAD_TOO_LARGE: (413, "请求体过大 / request body too large"),
    ErrorCode.NOT_FOUND: (404, "接口不存在 / no such endpoint"),
    ErrorCode.METHOD_NOT_ALLOWED: (405, "不支持该方法 / method not allowed"),
    ErrorCode.INDEX_NOT_FOUND: (404, "索引版本不存在 / index version not found"),
    ErrorCode.INDEX_VERSION_INVALID: (422, "索引版本名无效 / invalid index version name"),
    ErrorCode.INDEX_EXISTS: (409, "索引版本已存在 / index version already exists"),
    ErrorCode.INDEX_BUILD_IN_PROGRESS: (409, "已有索引正在构建 / another index build is running"),
    ErrorCode.INDEX_CORRUPT: (
        409,
        "索引版本已损坏, 无法激活 / index version is corrupt and cannot be activated",
    ),
    ErrorCode.INDEX_EMBEDDER_MISMATCH: (
        409,
        "索引由其他向量模型构建 / index was built with a different embedder version",
    ),
    ErrorCode.INDEX_ACTIVE_MOVED: (409, "当前索引已被更换 / the active index changed meanwhile"),
    ErrorCode.OVERLOADED: (429, "服务繁忙, 请稍后重试 / server overloaded, retry later"),
    ErrorCode.NOT_READY: (503, "服务尚未就绪 / server not ready"),
    ErrorCode.MODEL_UNAVAILABLE: (503, "模型暂不可用 / model unavailable"),
    ErrorCode.TIMEOUT: (504, "推理超时 / inference timed out"),
    ErrorCode.INTERNAL: (500, "内部错误 / internal error"),
}


class ServingError(Exception):
    """Raise anywhere in serving; the ingress turns it into the status and body of ERROR_TABLE."""

    def __init__(
        self, code: ErrorCode, detail: str | None = None, *, retry_after: float | None = None
    ) -> None:
        super().__init__(detail or code.value)  # detail is for logs only, never sent to a client
        self.code = code
        self.detail = detail
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return ERROR_TABLE[self.code][0]

    def __reduce__(self) -> tuple[object, ...]:
        # crosses process boundaries (Ray handles): keep code, detail and retry_after, not just args
        return (_rebuild, (self.code.value, self.detail, self.retry_after))


def _rebuild(code: str, detail: str | None, retry_after: float | None) -> ServingError:
    return ServingError(ErrorCode(code), detail, retry_after=retry_after)


def status_of(code: ErrorCode) -> int:
    return ERROR_TABLE[code][0]


def error_body(code: ErrorCode, request_id: str | None) -> dict[str, object]:
    return ErrorResponse(
        error=ErrorBody(code=code.value, message=ERROR_TABLE[code][1], request_id=request_id)
    ).model_dump(mode="json")


def error_headers(err: ServingError) -> dict[str, str]:
    """Extra response headers of an error (the Serve proxy adds X-Request-ID to every response)."""
    headers: dict[str, str] = {}
    if err.retry_after is not None or err.code is ErrorCode.OVERLOADED:
        headers["retry-after"] = str(max(1, round(err.retry_after or 1)))
    return headers
