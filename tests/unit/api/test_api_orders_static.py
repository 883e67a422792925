"""Order lookup implementations, order-number extraction, and serving the built frontend."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.dialog.orders import OrderLookupError, WebhookOrderLookup, extract_order_id


@pytest.mark.parametrize(
    ("text", "order_id"),
    [
        ("订单号是2024112300123", "2024112300123"),
        ("請問訂單２０２４１０２０００９９９到哪了", "2024102000999"),
        ("好的，是2024102000999", "2024102000999"),
        ("123", None),
        ("20241123001234", None),  # 14 digits: not an order number
        ("13812345678", None),
        ("订单号是abc123", None),
        ("2024 1123 0012 3", "2024112300123"),  # typed in groups
        ("订单号：2024-1123-00123", "2024112300123"),
        ("2024112300123 2024110500321", "2024112300123"),
        ("2024-11-23 00:12", None),
    ],
)
def test_extract_order_id(text: str, order_id: str | None) -> None:
    assert extract_order_id(text) == order_id


async def test_webhook_lookup_signs_requests_and_maps_404() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        oid = request.url.params["order_id"]
        if oid == "2024112300123":
            return httpx.Response(
                200, json={"order_id": oid, "status": "运输中", "items": ["耳机"], "refundable": True}
            )
        return httpx.Response(404)

    lookup = WebhookOrderLookup(
        "https://shop.example/orders", "hook-secret", transport=httpx.MockTransport(handler)
    )
    info = await lookup.lookup("2024112300123", "u_1001")
    assert info is not None and info.status == "运输中" and info.items == ["耳机"]
    assert await lookup.lookup("2024000000000", "u_1001") is None
    req = seen[0]
    ts = req.headers["x-xiaoke-timestamp"]
    expected = hmac.new(b"hook-secret", f"{ts}.2024112300123.u_1001".encode(), hashlib.sha256).hexdigest()
    assert req.headers["x-xiaoke-signature"] == f"sha256={expected}"
    await lookup.aclose()


async def test_webhook_errors_are_not_reported_as_missing_orders() -> None:
    lookup = WebhookOrderLookup(
        "https://shop.example/orders", None, transport=httpx.MockTransport(lambda r: httpx.Response(502))
    )
    with pytest.raises(OrderLookupError):
        await lookup.lookup("2024112300123", "u_1001")
    bad = WebhookOrderLookup(
        "https://shop.example/orders",
        None,
        transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>")),
    )
    with pytest.raises(OrderLookupError):
        await bad.lookup("2024112300123", "u_1001")


SHOP_SECRET = "shop-webhook-secret-0123456789"
SHOP_ORDERS = {"2024112300123": ("u_1001", "运输中"), "2024112600567": ("u_1002", "已发货")}


class _ShopOrders(BaseHTTPRequestHandler):
    """A shop's order endpoint as docs/operations.md asks for it: checks the signature over
    ``timestamp.order_id.customer_id`` and answers 200 only for an order of that customer, 404 otherwise."""

    seen: list[dict[str, Any]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        ts = self.headers.get("X-XiaoKe-Timestamp", "")
        signed = f"{ts}.{query.get('order_id', '')}.{query.get('customer_id', '')}".encode()
        good = "sha256=" + hmac.new(SHOP_SECRET.encode(), signed, hashlib.sha256).hexdigest()
        self.seen.append(query)
        if not hmac.compare_digest(self.headers.get("X-XiaoKe-Signature", ""), good):
            self._answer(401, {})
            return
        owner, status = SHOP_ORDERS.get(query.get("order_id", ""), (None, ""))
        if owner is None or owner != query.get("customer_id"):
            self._answer(404, {})  # no such order, or another customer's: the same answer
            return
        self._answer(200, {"order_id": query["order_id"], "status": status, "items": ["耳机"]})

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def shop_orders() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(URL, requests seen) of a real HTTP order endpoint on a loopback port."""
    _ShopOrders.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ShopOrders)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/orders", _ShopOrders.seen
    finally:
        server.shutdown()
        server.server_close()


async def test_webhook_asks_the_shop_for_the_verified_customers_order_only(
    shop_orders: tuple[str, list[dict[str, Any]]],
) -> None:
    """The signed request names the visitor's verified id, so the shop's system decides whose order it shows: the
    owner gets it; another customer and an unknown number get the same 404 (None); an anonymous visitor's lookup
    never reaches the shop."""
    url, seen = shop_orders
    lookup = WebhookOrderLookup(url, SHOP_SECRET, timeout_s=5)
    try:
        mine = await lookup.lookup("2024112300123", "u_1001")
        assert mine is not None and mine.status == "运输中"
        assert await lookup.lookup("2024112300123", "u_1002") is None
        assert await lookup.lookup("2024000000000", "u_1001") is None
        assert len(seen) == 3
        assert await lookup.lookup("2024112300123", None) is None
        assert len(seen) == 3  # not asked
        assert seen[0] == {"order_id": "2024112300123", "customer_id": "u_1001"}
    finally:
        await lookup.aclose()


async def test_frontend_is_served_when_built(app_settings, fake_nlu, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from api.main import create_app

    widget = tmp_path / "dist" / "widget"
    console = tmp_path / "dist" / "console"
    (console / "assets").mkdir(parents=True)
    widget.mkdir(parents=True)
    (widget / "index.html").write_text("<html>demo shop</html>", encoding="utf-8")
    (widget / "widget.js").write_text("console.log('widget')", encoding="utf-8")
    (console / "index.html").write_text("<html>console</html>", encoding="utf-8")
    (console / "assets" / "app.js").write_text("app()", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("nope", encoding="utf-8")
    settings = app_settings.model_copy(update={"widget_dist": widget, "console_dist": console})
    app = create_app(settings, serving_transport=httpx.ASGITransport(app=fake_nlu))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            assert "demo shop" in (await c.get("/")).text
            assert (await c.get("/widget.js")).text == "console.log('widget')"
            assert (await c.get("/admin")).text == "<html>console</html>"
            assert (await c.get("/admin/faqs/12")).text == "<html>console</html>"  # SPA fallback
            assert (await c.get("/admin/assets/app.js")).text == "app()"
            assert "nope" not in (await c.get("/admin/..%2F..%2Fsecret.txt")).text
            assert (await c.get("/healthz")).json() == {"status": "ok"}  # API routes still win
            r = await c.post("/api/v1/chat", json={"message": "你好"})
            assert r.status_code == 200 and json.loads(r.text)["reply"]["type"] == "template"


async def test_missing_frontend_is_not_an_error(app_client) -> None:  # type: ignore[no-untyped-def]
    _, client = app_client
    assert (await client.get("/admin")).status_code == 404
    assert (await client.get("/")).status_code == 404


async def test_sse_stream_formats_events_and_stops_on_disconnect() -> None:
    import asyncio
    from types import SimpleNamespace

    from api.events import InMemoryEventBus
    from api.routes.public import sse_stream

    bus = InMemoryEventBus()
    disconnected = {"v": False}

    class FakeRequest:
        async def is_disconnected(self) -> bool:
            return disconnected["v"]

    services = SimpleNamespace(events=bus)
    gen = sse_stream(services, "session:s1", FakeRequest())  # type: ignore[arg-type]
    assert await gen.__anext__() == ": connected\n\n"
    nxt = asyncio.ensure_future(gen.__anext__())
    await asyncio.sleep(0.01)
    await bus.publish("session:s1", {"event": "message", "data": {"role": "agent", "text": "您好"}})
    chunk = await asyncio.wait_for(nxt, 1)
    assert chunk == 'event: message\ndata: {"role": "agent", "text": "您好"}\n\n'
    disconnected["v"] = True
    await bus.publish("session:s1", {"event": "handoff", "data": {"status": "none"}})
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(gen.__anext__(), 1)
    assert bus.subscribers == 0  # the subscription was released


async def test_sse_stream_ends_when_its_subscription_missed_events() -> None:
    """A reader too slow for its queue (or a pub/sub outage) loses events: the stream ends instead of carrying on
    with a hole, and the widget / console reconnect and catch up from history (their catch-up on every reopen)."""
    import asyncio
    from types import SimpleNamespace

    from api.events import InMemoryEventBus
    from api.routes.public import sse_stream

    class FakeRequest:
        async def is_disconnected(self) -> bool:
            return False

    bus = InMemoryEventBus(queue_size=2)
    gen = sse_stream(SimpleNamespace(events=bus), "session:s1", FakeRequest())  # type: ignore[arg-type]
    assert await gen.__anext__() == ": connected\n\n"
    for i in range(2):
        await bus.publish("session:s1", {"event": "message", "data": {"n": i}})
    assert '"n": 0' in await asyncio.wait_for(gen.__anext__(), 1)  # no gap yet: delivered
    for i in range(2, 5):  # three more into a queue of two (one still queued): the oldest are dropped
        await bus.publish("session:s1", {"event": "message", "data": {"n": i}})
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(gen.__anext__(), 1)
    assert bus.subscribers == 0
