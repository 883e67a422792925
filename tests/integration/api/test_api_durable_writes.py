"""Nothing accepted is lost: chat keeps answering while MariaDB refuses connections, and every accepted
message lands exactly once after it comes back (Redis stream journal + background writer)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from api_fakes import FakeNlu
from api_live_services import MYSQL_HOST, MYSQL_PORT, mysql_url
from redis.asyncio import Redis
from sqlalchemy import func, select

from api.db.engine import make_engine, make_session_factory
from api.db.migrate import upgrade
from api.db.models import Message
from api.db.seed import seed_demo
from api.main import create_app
from api.settings import REPO_ROOT, Settings

pytestmark = [pytest.mark.integration, pytest.mark.faults]


class TcpProxy:
    """A loopback TCP proxy in front of MariaDB that can be switched off (connection refused) and on."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):  # cut live pooled connections too
            w.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def test_messages_survive_a_database_outage(
    mysql_db: str, redis_client: tuple[Redis, str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    redis, prefix = redis_client
    direct = make_engine(mysql_url(mysql_db))
    upgrade(direct)
    direct_factory = make_session_factory(direct)
    with direct_factory() as db:
        seed_demo(db, REPO_ROOT / "data" / "demo")

    proxy = TcpProxy(MYSQL_HOST, MYSQL_PORT)
    await proxy.start()
    settings = Settings(
        env="test",
        secret_key="integration-secret-key-0123456789abcdef",
        data_dir=tmp_path,
        database_url=mysql_url(mysql_db, host="127.0.0.1", port=proxy.port),
        redis_url="redis://127.0.0.1:6379/0",
        redis_prefix=prefix,
        serving_url="http://serving.test",
        writer_retry_max_s=0.5,
        rate_ip_burst=10_000,
        rate_session_burst=10_000,
        widget_dist=tmp_path / "none",
        console_dist=tmp_path / "none",
    )
    app = create_app(settings, serving_transport=httpx.ASGITransport(app=FakeNlu()))

    def count_messages() -> tuple[int, int]:
        with direct_factory() as db:
            total = db.scalar(select(func.count()).select_from(Message)) or 0
            distinct = db.scalar(select(func.count(func.distinct(Message.id)))) or 0
            return total, distinct

    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as client:
            first = (await client.post("/api/v1/chat", json={"message": "你好"})).json()
            sess = (first["session_id"], first["session_token"])
            await wait_for(lambda: asyncio.to_thread(lambda: count_messages()[0] == 2))

            await proxy.stop()  # MariaDB now refuses connections
            questions = ["满多少包邮啊", "退货怎么退", "优惠券怎么用", "付款一直失败怎么办", "你好"] * 4
            for q in questions:
                r = await client.post(
                    "/api/v1/chat",
                    json={"message": q, "session_id": sess[0]},
                    headers={"X-Session-Token": sess[1]},
                )
                assert r.status_code == 200, r.text  # chat keeps working
                assert r.json()["reply"]["type"] in ("answer", "template", "suggest")
            await asyncio.sleep(1.5)  # the writer has been failing and backing off meanwhile
            assert count_messages()[0] == 2
            assert await redis.xlen(f"{prefix}journal") >= len(questions) * 2
            ready = (await client.get("/readyz")).json()
            assert ready["checks"]["database"] is False and ready["checks"]["writer_pending"] > 0
            # history still answers from the session while the database is down
            hist = await client.get(
                f"/api/v1/sessions/{sess[0]}/history", headers={"X-Session-Token": sess[1]}
            )
            assert hist.status_code == 200 and len(hist.json()["messages"]) >= 10

            await proxy.start()  # MariaDB is back on the same port
            expected = 2 + len(questions) * 2
            await wait_for(lambda: asyncio.to_thread(lambda: count_messages()[0] >= expected))
            total, distinct = count_messages()
            assert total == distinct == expected  # every accepted message, exactly once
            await wait_for(lambda: _zero(redis.xlen(f"{prefix}journal")))
    await proxy.stop()
    direct.dispose()


async def _zero(awaitable: Any) -> bool:
    return (await awaitable) == 0
