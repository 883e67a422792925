"""Log configuration of the API process (``api.observability.configure_logging``)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import pytest

from api.dialog.orders import WebhookOrderLookup
from api.observability import JsonFormatter, configure_logging

ORDER_ID = "2024010112345"
URL_PASSWORD = "hook-pass-9f3"


@pytest.fixture
def production_logging() -> Iterator[io.StringIO]:
    """Root logging as ``configure_logging("INFO")`` leaves it, captured into a buffer; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    chatty = {n: logging.getLogger(n).level for n in ("httpx", "httpcore")}
    root.handlers = []
    sink = io.StringIO()
    try:
        configure_logging("INFO")
        for h in root.handlers:
            if isinstance(h.formatter, JsonFormatter) and isinstance(h, logging.StreamHandler):
                h.setStream(sink)
        yield sink
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        for name, level in chatty.items():
            logging.getLogger(name).setLevel(level)


async def test_outbound_http_urls_stay_out_of_info_logs(production_logging: io.StringIO) -> None:
    """httpx logged every outbound request at INFO with its full URL: each order lookup wrote the visitor's order
    number and the webhook URL (credentials included, when the shop's URL carries them) into the API log, and
    every readiness probe added a serving /readyz line."""

    def shop(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    lookup = WebhookOrderLookup(
        f"https://xiaoke:{URL_PASSWORD}@shop.example/orders", "s", transport=httpx.MockTransport(shop)
    )
    try:
        assert await lookup.lookup(ORDER_ID, "u_1001") is None
    finally:
        await lookup.aclose()
    logged = production_logging.getvalue()
    assert ORDER_ID not in logged and URL_PASSWORD not in logged, logged
    logging.getLogger("api.test").info("still logging")
    assert "still logging" in production_logging.getvalue()
