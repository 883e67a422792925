"""One error hierarchy for the API: a stable code enum, one status table, one JSON shape.

Every error leaves as ``{"error": {"code", "message", "request_id"}}`` with a bilingual message taken from
the table below. Exception text and tracebacks are logged, never returned.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("api.errors")


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    MESSAGE_EMPTY = "MESSAGE_EMPTY"
    MESSAGE_TOO_LONG = "MESSAGE_TOO_LONG"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_FILE = "UNSUPPORTED_FILE"
    TOO_MANY_ROWS = "TOO_MANY_ROWS"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    CONFLICT = "CONFLICT"
    UNAUTHORIZED = "UNAUTHORIZED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    OVERLOADED = "OVERLOADED"
    HANDOFF_STATE = "HANDOFF_STATE"
    DEPENDENCY_UNAVAILABLE = "DEPENDENCY_UNAVAILABLE"
    SERVING_UNAVAILABLE = "SERVING_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    # admin console (api/admin/)
    FAQ_DUPLICATE = "FAQ_DUPLICATE"
    QUESTION_TAKEN = "QUESTION_TAKEN"
    IMPORT_BAD_COLUMNS = "IMPORT_BAD_COLUMNS"
    IMPORT_BAD_ENCODING = "IMPORT_BAD_ENCODING"
    IMPORT_MALFORMED = "IMPORT_MALFORMED"
    TEMPLATE_INVALID = "TEMPLATE_INVALID"
    KB_EMPTY = "KB_EMPTY"
    INDEX_NOT_FOUND = "INDEX_NOT_FOUND"
    INDEX_EMBEDDER_MISMATCH = "INDEX_EMBEDDER_MISMATCH"


# code -> (HTTP status, "中文 / English")
ERROR_TABLE: dict[ErrorCode, tuple[int, str]] = {
    ErrorCode.VALIDATION_ERROR: (422, "请求参数不正确 / The request is invalid"),
    ErrorCode.MESSAGE_EMPTY: (422, "消息不能为空 / The message must not be empty"),
    ErrorCode.MESSAGE_TOO_LONG: (
        422,
        "消息过长（最多 1000 字） / The message is too long (max 1000 characters)",
    ),
    ErrorCode.PAYLOAD_TOO_LARGE: (413, "请求内容过大 / The request body is too large"),
    ErrorCode.UNSUPPORTED_FILE: (
        415,
        "不支持的文件类型，请上传 CSV 或 XLSX / Unsupported file type, upload CSV or XLSX",
    ),
    ErrorCode.TOO_MANY_ROWS: (413, "文件行数超出上限 / The file has too many rows"),
    ErrorCode.SESSION_NOT_FOUND: (404, "会话不存在或已过期 / The session does not exist or has expired"),
    ErrorCode.NOT_FOUND: (404, "资源不存在 / Not found"),
    ErrorCode.METHOD_NOT_ALLOWED: (405, "不支持的请求方法 / Method not allowed"),
    ErrorCode.CONFLICT: (409, "资源冲突 / The resource already exists or was changed"),
    ErrorCode.UNAUTHORIZED: (401, "请先登录 / Authentication required"),
    ErrorCode.INVALID_CREDENTIALS: (401, "用户名或密码错误 / Wrong username or password"),
    ErrorCode.ACCOUNT_LOCKED: (429, "登录失败次数过多，请稍后再试 / Too many failed logins, try again later"),
    ErrorCode.FORBIDDEN: (403, "没有权限 / Permission denied"),
    ErrorCode.RATE_LIMITED: (429, "请求过于频繁，请稍后再试 / Too many requests, slow down"),
    ErrorCode.OVERLOADED: (503, "系统繁忙，请稍后再试 / The service is overloaded, try again later"),
    ErrorCode.HANDOFF_STATE: (
        409,
        "当前会话状态不允许此操作 / The conversation is not in a state that allows this",
    ),
    ErrorCode.DEPENDENCY_UNAVAILABLE: (503, "依赖服务暂不可用 / A dependency is unavailable"),
    ErrorCode.SERVING_UNAVAILABLE: (503, "推理服务暂不可用 / The inference server is unavailable"),
    ErrorCode.INTERNAL_ERROR: (500, "服务器内部错误 / Internal server error"),
    # admin console (api/admin/)
    ErrorCode.FAQ_DUPLICATE: (409, "已存在相同的标准问题 / An FAQ with the same question already exists"),
    ErrorCode.QUESTION_TAKEN: (
        409,
        "问题或相似问题已属于另一条 FAQ / A question or similar question already belongs to another FAQ",
    ),
    ErrorCode.IMPORT_BAD_COLUMNS: (
        422,
        "文件缺少必需列 question、answer / The file must have the columns question and answer",
    ),
    ErrorCode.IMPORT_BAD_ENCODING: (
        422,
        "无法识别文件编码，请使用 UTF-8 或 GBK / Unreadable file encoding, use UTF-8 or GBK",
    ),
    ErrorCode.IMPORT_MALFORMED: (422, "文件内容损坏或格式不正确 / The file is damaged or malformed"),
    ErrorCode.TEMPLATE_INVALID: (
        422,
        "模板内容无效或使用了不支持的变量 / The template is empty or uses an unsupported variable",
    ),
    ErrorCode.KB_EMPTY: (409, "没有可发布的已启用问答 / There are no enabled FAQs to publish"),
    ErrorCode.INDEX_NOT_FOUND: (404, "索引版本不存在 / The index version does not exist"),
    ErrorCode.INDEX_EMBEDDER_MISMATCH: (
        409,
        "该索引由另一版本的向量模型构建，请重新发布索引 / This index was built by another embedder version: "
        "publish a new index",
    ),
}

_STATUS_TO_CODE = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    429: ErrorCode.RATE_LIMITED,
}


class AppError(Exception):
    """Base of every error the API reports to a client."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        code: ErrorCode | None = None,
        *,
        headers: dict[str, str] | None = None,
        detail: Any = None,
    ) -> None:
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.detail = detail  # logged only
        super().__init__(self.code.value)

    @property
    def status(self) -> int:
        return ERROR_TABLE[self.code][0]


class NotFound(AppError):
    code = ErrorCode.NOT_FOUND


class SessionNotFound(AppError):
    code = ErrorCode.SESSION_NOT_FOUND


class Unauthorized(AppError):
    code = ErrorCode.UNAUTHORIZED


class Forbidden(AppError):
    code = ErrorCode.FORBIDDEN


class Conflict(AppError):
    code = ErrorCode.CONFLICT


class RateLimited(AppError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, retry_after_s: float, code: ErrorCode | None = None) -> None:
        retry = max(1, int(retry_after_s + 0.999))
        super().__init__(code, headers={"Retry-After": str(retry)})


class DependencyUnavailable(AppError):
    code = ErrorCode.DEPENDENCY_UNAVAILABLE


class InvalidInput(AppError):
    code = ErrorCode.VALIDATION_ERROR


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_payload(code: ErrorCode, request_id: str | None) -> dict[str, Any]:
    return {"error": {"code": code.value, "message": ERROR_TABLE[code][1], "request_id": request_id}}


def error_response(
    code: ErrorCode, request_id: str | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    status = ERROR_TABLE[code][0]
    return JSONResponse(error_payload(code, request_id), status_code=status, headers=headers)


def validation_code(errors: Sequence[Any]) -> ErrorCode:
    """MESSAGE_TOO_LONG when the only problem is a ``message`` (chat, playground) over its model's raw cap: the
    same code as a message over the 1000 characters the services check after trimming."""
    if errors and all(
        e.get("type") == "string_too_long" and tuple(e.get("loc", ())) == ("body", "message") for e in errors
    ):
        return ErrorCode.MESSAGE_TOO_LONG
    return ErrorCode.VALIDATION_ERROR


def install_error_handlers(app: FastAPI) -> None:
    async def on_app_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AppError)
        if exc.status >= 500:
            log.warning(
                "request failed: %s (%s)", exc.code, exc.detail, extra={"request_id": request_id_of(request)}
            )
        return error_response(exc.code, request_id_of(request), exc.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # Field locations only; never echo the submitted values back.
        errors = exc.errors()
        fields = [".".join(str(p) for p in e.get("loc", ())) for e in errors]
        log.info("validation error on %s: %s", request.url.path, fields)
        return error_response(validation_code(errors), request_id_of(request))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_TO_CODE.get(
            exc.status_code,
            ErrorCode.INTERNAL_ERROR if exc.status_code >= 500 else ErrorCode.VALIDATION_ERROR,
        )
        resp = error_response(code, request_id_of(request), getattr(exc, "headers", None))
        resp.status_code = exc.status_code
        return resp

    async def on_unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path, extra={"request_id": request_id_of(request)})
        return error_response(ErrorCode.INTERNAL_ERROR, request_id_of(request))

    app.add_exception_handler(AppError, on_app_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unhandled)
