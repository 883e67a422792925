"""Secrets and raw PII never reach logs, the inference server or the database, whatever path a turn takes."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from security_world import ADMIN, SECRET_KEY, World, start_visitor

from api.observability import JsonFormatter
from api.pii import id_card_valid, luhn_valid

PHONE = "13812345678"
ID_CARD = "11010519491231002X"
EMAIL = "zhang.san.pii@example.com"


def _luhn_card(prefix: str = "622202020011223") -> str:
    for d in "0123456789":
        if luhn_valid(prefix + d):
            return prefix + d
    raise AssertionError("unreachable")


BANK_CARD = _luhn_card()
RAW_PII = [PHONE, ID_CARD, BANK_CARD, EMAIL, "zhang.san.pii"]
SECRETS = [SECRET_KEY, ADMIN[1]]


@pytest.fixture
def log_sink() -> Iterator[io.StringIO]:
    """Every record of every logger at DEBUG, formatted by the API's own JSON formatter (incl. tracebacks)."""
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield sink
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def _assert_clean(where: str, text: str) -> None:
    for value in RAW_PII + SECRETS:
        assert value not in text, f"{value!r} found in {where}"


async def test_pii_and_secrets_never_logged(
    world: World, log_sink: io.StringIO, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    assert id_card_valid(ID_CARD) and luhn_valid(BANK_CARD)
    caplog.set_level(logging.DEBUG)
    c, nlu = world.client, world.nlu
    messages = [
        f"我的手机号是{PHONE}，帮我查下订单",
        f"身份证号 {ID_CARD} 可以开发票吗",
        f"退款打到这张卡 {BANK_CARD}",
        f"发邮件到 {EMAIL} 吧",
        f"{PHONE} {ID_CARD} {BANK_CARD} {EMAIL}",
    ]
    v = await start_visitor(c, messages[0])
    for msg in messages[1:]:
        r = await c.post("/api/v1/chat", json={"message": msg, "session_id": v.session_id}, headers=v.headers)
        assert r.status_code == 200
        assert PHONE not in r.text  # the reply does not echo raw PII either
    # inference server failing / slow: error paths log, still without PII
    nlu.fail_with = 500
    for msg in messages:
        r = await c.post("/api/v1/chat", json={"message": msg})
        assert r.status_code == 200 and r.json()["reply"]["type"] == "degraded"
    nlu.fail_with = None
    # rejected inputs that contain PII (too long, wrong type) are logged by field only
    r = await c.post("/api/v1/chat", json={"message": PHONE * 100})
    assert r.status_code == 422
    r = await c.post("/api/v1/chat", json={"message": {"phone": PHONE}})
    assert r.status_code == 422
    # feedback / rating comments, agent console, failed logins with a password in the username field
    r = await c.post(
        "/api/v1/feedback",
        json={
            "message_id": v.message_id,
            "rating": "down",
            "comment": f"打 {PHONE}",
            "session_id": v.session_id,
        },
        headers=v.headers,
    )
    assert r.status_code == 204
    r = await c.post(
        f"/api/v1/sessions/{v.session_id}/rating", json={"rating": 2, "comment": EMAIL}, headers=v.headers
    )
    assert r.status_code == 204
    r = await c.post("/api/v1/admin/auth/login", json={"username": ADMIN[0], "password": "wrong-" + ADMIN[1]})
    assert r.status_code == 401
    await world.services.writer.flush()
    r = await c.get(f"/api/v1/admin/conversations/{v.session_id}", headers=world.bearer(world.admin_token))
    assert r.status_code == 200

    _assert_clean("API JSON logs", log_sink.getvalue())
    _assert_clean("caplog", "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records))
    out, err = capfd.readouterr()
    _assert_clean("stdout/stderr", out + err)
    _assert_clean("admin transcript", r.text)
    # what left the API towards the inference server was masked too
    sent = [t for req in nlu.requests for t in req.get("texts", [])]
    assert sent, "the fake inference server saw no request"
    _assert_clean("texts sent to the inference server", "\n".join(sent))
    # and what the database holds
    from sqlalchemy import text

    with world.services.session_factory() as db:
        stored = [row[0] or "" for row in db.execute(text("SELECT text FROM messages"))]
        comments = [row[0] or "" for row in db.execute(text("SELECT comment FROM feedback"))]
        ratings = [str(row) for row in db.execute(text("SELECT * FROM chat_sessions"))]
    assert len(stored) >= 2 * len(messages)
    _assert_clean("messages table", "\n".join(stored + comments + ratings))
    assert any("138****5678" in s for s in stored), stored[:3]


async def test_error_responses_carry_no_internals(world: World, fake_nlu: Any) -> None:
    """5xx/4xx bodies: the stable error shape only, never exception text or a traceback."""
    c = world.client
    responses: list[httpx.Response] = [
        await c.post("/api/v1/chat", content=b"{not json", headers={"Content-Type": "application/json"}),
        await c.get("/api/v1/admin/faqs", headers={"Authorization": "Bearer v1.e30.AAAA"}),
        await c.post(
            "/api/v1/admin/faqs/import", files={"file": ("a.xlsx", b"PK\x03\x04garbage", "application/zip")}
        ),
    ]
    for r in responses:
        assert r.status_code >= 400
        body = r.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}, body
        for needle in ("Traceback", 'File "', "Exception", "sqlalchemy", "zipfile", "/work/"):
            assert needle not in r.text, (needle, r.text)


async def test_access_log_has_no_query_strings(tmp_path: Any, fake_nlu: Any, log_sink: io.StringIO) -> None:
    """uvicorn's access line logged the path with its query string at INFO: a phone number an agent searched the
    conversations for (``?q=...``) reached the API's logs. A real uvicorn server on a loopback socket."""
    import asyncio
    import socket

    import uvicorn
    from security_world import make_settings

    from api.main import create_app

    app = create_app(make_settings(tmp_path), serving_transport=httpx.ASGITransport(app=fake_nlu))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    # Another test's uvicorn.Config (default log_config, log_level="warning") leaves uvicorn.access at WARNING and
    # "uvicorn" not propagating to the root logger: listen on uvicorn.access itself, at INFO, for this test only.
    access = logging.getLogger("uvicorn.access")
    saved = (access.level, access.disabled)
    access.setLevel(logging.INFO)
    access.disabled = False
    listener = logging.StreamHandler(log_sink)
    listener.setFormatter(JsonFormatter())
    access.addHandler(listener)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            r = await c.post("/api/v1/admin/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
            bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
            r = await c.get(f"/api/v1/admin/conversations?q={PHONE}&page=1", headers=bearer)
            assert r.status_code == 200, r.text
            r = await c.get(f"/api/v1/admin/faqs?q={EMAIL}", headers=bearer)
            assert r.status_code == 200, r.text
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()
        access.removeHandler(listener)
        access.setLevel(saved[0])
        access.disabled = saved[1]
    logged = log_sink.getvalue()
    assert "GET /api/v1/admin/conversations HTTP/1.1" in logged, logged[
        -2000:
    ]  # the access line is still there
    _assert_clean("uvicorn access log", logged)
