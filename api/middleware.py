"""Pure-ASGI edge middleware: request id, security headers, body size limit, access metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ErrorCode, error_payload
from api.observability import Metrics, accept_request_id, request_id_var

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'self'",
    ),
]
# Metric label values must come from a fixed set: the method is client-chosen (any token is a valid method) and
# every distinct label value is a new Prometheus series kept for the life of the process.
_METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The widget script is embedded into customers' pages: it must be loadable cross-origin.
_WIDGET_PREFIX = "/widget"


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed (no Content-Length) body crosses the limit.

    An ``HTTPException`` on purpose: FastAPI's body parsing wraps any other exception into a 400, but re-raises
    HTTP exceptions, so the app's handler answers 413 ``PAYLOAD_TOO_LARGE``. If it escapes the app (raised
    outside the exception middleware), ``EdgeMiddleware`` answers 413 itself.
    """

    def __init__(self) -> None:
        super().__init__(status_code=413)


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        limit_for_path: Callable[[str], int] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.limit_for_path = limit_for_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = accept_request_id(headers.get(b"x-request-id", b"").decode("latin-1") or None)
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        path: str = scope["path"]
        limit = self.limit_for_path(path) if self.limit_for_path else self.max_body_bytes
        start = time.perf_counter()
        status_holder = {"status": 500, "started": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = 1
                hdrs = list(message.get("headers", []))
                present = {k.lower() for k, _ in hdrs}
                hdrs.append((b"x-request-id", rid.encode()))
                hdrs.append((b"x-process-time-ms", f"{(time.perf_counter() - start) * 1000:.1f}".encode()))
                for k, v in SECURITY_HEADERS:
                    if k in present:
                        continue
                    if k == b"x-frame-options" and path.startswith(_WIDGET_PREFIX):
                        continue
                    hdrs.append((k, v))
                message["headers"] = hdrs
            await send(message)

        declared = headers.get(b"content-length")
        try:
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await self._reject(send_wrapper, rid)
                return
            received = 0

            async def receive_limited() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise _BodyTooLarge
                return message

            try:
                await self.app(scope, receive_limited, send_wrapper)
            except _BodyTooLarge:
                if status_holder["started"]:
                    raise
                await self._reject(send_wrapper, rid)
        finally:
            route = scope.get("route")
            route_name = getattr(route, "path", None) or (
                "static" if status_holder["status"] < 400 else "unmatched"
            )
            method = scope["method"] if scope["method"] in _METRIC_METHODS else "OTHER"
            self.metrics.observe_request(
                method, route_name, status_holder["status"], time.perf_counter() - start
            )
            request_id_var.reset(token)

    async def _reject(self, send: Send, rid: str) -> None:
        body = json.dumps(error_payload(ErrorCode.PAYLOAD_TOO_LARGE, rid), ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
