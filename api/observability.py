"""Request ids, structured JSON logs and Prometheus metrics (one registry per app instance)."""

from __future__ import annotations

import json
import logging
import re
import secrets
from contextvars import ContextVar
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

request_id_var: ContextVar[str | None] = ContextVar("xiaoke_request_id", default=None)

_VALID_RID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_request_id() -> str:
    return secrets.token_hex(8)


def accept_request_id(header_value: str | None) -> str:
    """Use the caller's X-Request-ID when it is a sane token, else mint one (never log arbitrary input)."""
    if header_value and _VALID_RID.match(header_value):
        return header_value
    return new_request_id()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


# httpx/httpcore log every request at INFO with its full URL: the order webhook's URL and query (order numbers,
# any credentials in the configured URL) and a serving /readyz line per readiness probe. Only at DEBUG.
_CHATTY_LOGGERS = ("httpx", "httpcore")


class PathOnlyAccessLog(logging.Filter):
    """uvicorn's access line carries the request path *with its query string*: search terms typed in the console
    (``/admin/conversations?q=<a name, a phone number>``) would reach the logs at INFO. Keep the path only, as
    the web tier's nginx log does (``$uri``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn.access: (client address, method, path with query, HTTP version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    chatty = logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(chatty)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, PathOnlyAccessLog) for f in access.filters):
        access.addFilter(PathOnlyAccessLog())
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())


class Metrics:
    """All API metrics on a private registry so several apps (tests) can coexist in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "xiaoke_api_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "xiaoke_api_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.chat_replies = Counter(
            "xiaoke_api_chat_replies_total", "Chat replies by type", ["reply_type"], registry=self.registry
        )
        self.chat_replays = Counter(
            "xiaoke_api_chat_replays_total",
            "Retried visitor turns (same client_message_id) answered from the session instead of run again",
            registry=self.registry,
        )
        self.dialog_about_bot = Counter(
            "xiaoke_api_dialog_about_bot_total",
            "Visitor messages about the bot itself answered by rule, before the models (api.dialog.manager): "
            'bot_identity ("are you a bot", "what can you do"), instruction_probe (attempts to override or '
            "read the bot's instructions)",
            ["kind"],
            registry=self.registry,
        )
        self.identity_checks = Counter(
            "xiaoke_api_identity_checks_total",
            "Sessions started, by the check of the visitor identity they were started with (api.identity: "
            "verified, anonymous; unsigned, invalid, expired, no_secret start anonymous)",
            ["result"],
            registry=self.registry,
        )
        self.nlu_latency = Histogram(
            "xiaoke_api_nlu_seconds",
            "Inference server /v1/nlu latency per batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=self.registry,
        )
        self.nlu_batch_size = Histogram(
            "xiaoke_api_nlu_batch_size",
            "Texts per /v1/nlu call",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.nlu_failures = Counter(
            "xiaoke_api_nlu_failures_total", "Failed inference calls", ["reason"], registry=self.registry
        )
        self.breaker_open = Gauge(
            "xiaoke_api_breaker_open", "1 when the serving circuit is open", registry=self.registry
        )
        self.writer_pending = Gauge(
            "xiaoke_api_writer_pending", "Accepted records not yet in the database", registry=self.registry
        )
        self.event_subscribers = Gauge(
            "xiaoke_api_event_subscribers",
            "Open live-event subscriptions in this process (SSE streams of the widget and the console)",
            registry=self.registry,
        )
        self.event_channels = Gauge(
            "xiaoke_api_event_channels",
            "Redis pub/sub channels subscribed on this process's one pub/sub connection (one per topic with local "
            "subscribers; 0 while that connection is down, and in embedded mode)",
            registry=self.registry,
        )
        self.writer_written = Counter(
            "xiaoke_api_writer_written_total", "Records written by the durable writer", registry=self.registry
        )
        self.writer_failures = Counter(
            "xiaoke_api_writer_failures_total", "Durable writer batch failures", registry=self.registry
        )
        # Per-request children, looked up once per (method, route, status): ``labels()`` takes a lock and
        # validates label values on every call.
        self._request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self.rate_limited = Counter(
            "xiaoke_api_rate_limited_total",
            "Requests refused by rate limits",
            ["scope"],
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, elapsed_s: float) -> None:
        key = (method, route, str(status))
        children = self._request_children.get(key)
        if children is None:
            children = (self.http_requests.labels(*key), self.http_latency.labels(route))
            if len(self._request_children) < 4096:  # bounded: routes are templates, methods/statuses few
                self._request_children[key] = children
        children[0].inc()
        children[1].observe(elapsed_s)
