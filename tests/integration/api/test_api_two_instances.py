"""Two API instances sharing MariaDB + Redis: a visitor on one, an agent on the other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fakes import FakeNlu
from api_live_services import mysql_url
from redis.asyncio import Redis
from sqlalchemy import select

from api.bootstrap import ensure_admin, migrate_and_seed
from api.db.engine import make_engine, make_session_factory
from api.db.models import HandoffTicket, Message
from api.main import create_app
from api.settings import Settings
from tests.fixtures.asgi import AsgiStream

pytestmark = pytest.mark.integration


@asynccontextmanager
async def two_instances(mysql_db: str, prefix: str, tmp_path: Path) -> AsyncIterator[tuple[Any, ...]]:
    """(app_a, client_a, app_b, client_b, session factory): two API processes' worth of apps, lifespans running."""
    settings = Settings(
        env="test",
        secret_key="integration-secret-key-0123456789abcdef",
        data_dir=tmp_path,
        database_url=mysql_url(mysql_db),
        redis_url="redis://127.0.0.1:6379/0",
        redis_prefix=prefix,
        serving_url="http://serving.test",
        widget_dist=tmp_path / "none",
        console_dist=tmp_path / "none",
    )
    engine = make_engine(mysql_url(mysql_db))
    factory = make_session_factory(engine)
    migrate_and_seed(engine, factory, settings)
    fake = FakeNlu()
    app_a = create_app(settings, serving_transport=httpx.ASGITransport(app=fake))
    app_b = create_app(settings, serving_transport=httpx.ASGITransport(app=fake))
    try:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(app_a.router.lifespan_context(app_a))
            await stack.enter_async_context(app_b.router.lifespan_context(app_b))
            a = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app_a), base_url="http://a")
            )
            b = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app_b), base_url="http://b")
            )
            yield app_a, a, app_b, b, factory
    finally:
        engine.dispose()


async def test_handoff_across_instances(mysql_db: str, redis_client: tuple[Redis, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, prefix = redis_client
    async with two_instances(mysql_db, prefix, tmp_path) as (app_a, a, app_b, b, factory):
        ensure_admin(factory, "agent-b", "agent-b-password", role="agent")
        first = (await a.post("/api/v1/chat", json={"message": "我要投诉，东西坏了三次了"})).json()
        sid, tok = first["session_id"], first["session_token"]
        # the session lives in Redis: instance B serves the same visitor
        on_b = await b.post(
            "/api/v1/chat", json={"message": "转人工", "session_id": sid}, headers={"X-Session-Token": tok}
        )
        assert on_b.json()["handoff"] == {"status": "waiting"}

        login = await b.post(
            "/api/v1/admin/auth/login", json={"username": "agent-b", "password": "agent-b-password"}
        )
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        agent_events: list[dict] = []

        async def listen(ready: asyncio.Event) -> None:
            async with app_b.state.services.events.subscribe("agents") as sub:
                ready.set()
                while (ev := await sub.next(10)) is not None:
                    agent_events.append(ev)
                    if ev["event"] == "message":
                        return

        ready = asyncio.Event()
        task = asyncio.create_task(listen(ready))
        await ready.wait()
        await asyncio.sleep(0.05)
        tickets = (await b.get("/api/v1/admin/handoffs?status=waiting", headers=bearer)).json()["items"]
        ticket = next(t["ticket_id"] for t in tickets if t["session_id"] == sid)
        assert (await b.post(f"/api/v1/admin/handoffs/{ticket}/take", headers=bearer)).status_code == 200
        # visitor talks to instance A; the agent listening on instance B gets it through Redis pub/sub
        r = await a.post(
            "/api/v1/chat",
            json={"message": "我的耳机坏了😭", "session_id": sid},
            headers={"X-Session-Token": tok},
        )
        assert r.json()["reply"]["type"] == "agent_pending"
        await asyncio.wait_for(task, 3)
        msg = next(e for e in agent_events if e["event"] == "message")
        assert msg["data"]["text"] == "我的耳机坏了😭" and msg["data"]["ticket_id"] == ticket
        hist = await a.get(f"/api/v1/sessions/{sid}/history", headers={"X-Session-Token": tok})
        assert hist.json()["handoff"]["status"] == "active"


async def test_an_faq_deleted_on_one_instance_is_gone_on_the_other_within_seconds(
    mysql_db: str, redis_client: tuple[Redis, str], tmp_path: Path
) -> None:
    """Found in the knowledge-base review: the other API processes kept answering a deleted FAQ (and the old
    text of an edited template) for up to 30 s, until their periodic reload. They now poll a change stamp."""
    _, prefix = redis_client
    async with two_instances(mysql_db, prefix, tmp_path) as (_, a, app_b, _b, factory):
        ensure_admin(factory, "root", "root-password-1", role="admin")
        login = await a.post(
            "/api/v1/admin/auth/login", json={"username": "root", "password": "root-password-1"}
        )
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        on_b = app_b.state.services
        assert on_b.catalog.answer_for("faq-001") is not None
        assert (await a.delete("/api/v1/admin/faqs/faq-001", headers=admin)).status_code == 204
        new = ["您好，这里是小客，请问有什么可以帮您？"]
        put = await a.put("/api/v1/admin/templates/intent:greeting", json={"variants": new}, headers=admin)
        assert put.status_code == 200, put.text
        t0 = time.monotonic()
        while time.monotonic() - t0 < 8 and (
            on_b.catalog.get("faq-001") is not None or on_b.templates.variants("intent:greeting") != new
        ):
            await asyncio.sleep(0.1)
        assert on_b.catalog.get("faq-001") is None and on_b.templates.variants("intent:greeting") == new
        assert time.monotonic() - t0 < 5


async def test_a_session_lives_by_turns_and_agent_messages_and_ends_everywhere_when_the_visitor_ends_it(
    mysql_db: str, redis_client: tuple[Redis, str], tmp_path: Path
) -> None:
    """On the real Redis: reading the history leaves the session's TTL where it was (every read used to restart
    it, so a held token kept the session readable for ever), while an agent's message restarts it (a visitor
    who only watches an agent type keeps the session). The visitor's DELETE on instance A ends it for instance B
    too: B's event stream ends at once, the ticket is closed, and the messages stay in MariaDB."""
    redis, prefix = redis_client
    async with two_instances(mysql_db, prefix, tmp_path) as (app_a, a, app_b, b, factory):
        ensure_admin(factory, "agent-c", "agent-c-password", role="agent")
        first = (await a.post("/api/v1/chat", json={"message": "转人工"})).json()
        sid, tok = first["session_id"], {"X-Session-Token": first["session_token"]}
        key = f"{prefix}session:{sid}"
        login = await b.post(
            "/api/v1/admin/auth/login", json={"username": "agent-c", "password": "agent-c-password"}
        )
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        tickets = (await b.get("/api/v1/admin/handoffs?status=waiting", headers=bearer)).json()["items"]
        ticket = next(t["ticket_id"] for t in tickets if t["session_id"] == sid)
        assert (await b.post(f"/api/v1/admin/handoffs/{ticket}/take", headers=bearer)).status_code == 200

        await redis.pexpire(key, 60_000)  # as if the last turn were 29 minutes ago
        assert (await b.get(f"/api/v1/sessions/{sid}/history", headers=tok)).status_code == 200
        assert 0 < await redis.pttl(key) <= 60_000
        r = await b.post(f"/api/v1/admin/handoffs/{ticket}/messages", json={"text": "您好"}, headers=bearer)
        assert r.status_code == 200
        assert await redis.pttl(key) > 1_700_000  # 30 minutes again

        stream = AsgiStream(app_b, f"/api/v1/sessions/{sid}/events", tok)
        try:
            await stream.wait_for(": connected")
            assert (await a.delete(f"/api/v1/sessions/{sid}", headers=tok)).status_code == 204
            await asyncio.wait_for(stream.ended.wait(), 3)
        finally:
            await stream.close()
        assert not await redis.exists(key)
        assert (await b.get(f"/api/v1/sessions/{sid}/history", headers=tok)).status_code == 404
        await app_a.state.services.writer.flush()
        await app_b.state.services.writer.flush()
        with factory() as db:
            assert db.get(HandoffTicket, ticket).status == "closed"
            roles = list(db.scalars(select(Message.role).where(Message.session_id == sid)))
        assert sorted(roles) == ["agent", "bot", "user"]
