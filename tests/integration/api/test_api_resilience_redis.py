"""Redis restarts seen by a visitor turn: journal append and session lock ride out a short outage.

A tiny TCP proxy in front of the real Redis (127.0.0.1:6379) plays the restart: it drops every connection
and refuses new ones for a while, then forwards again. Keys live under a per-test prefix (never FLUSHALL).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from api.errors import DependencyUnavailable
from api.journal import RedisStreamJournal
from api.services import make_redis
from api.sessions import RedisSessionStore

pytestmark = pytest.mark.integration


class FlakyRedisProxy:
    """Forwards 127.0.0.1:<port> to the real Redis; ``outage(s)`` = connections dropped + refused for s seconds."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.down = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        up_r, up_w = await asyncio.open_connection(*self.upstream)
        self._conns.update((writer, up_w))
        try:
            await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))
        finally:
            self._conns.discard(writer)
            self._conns.discard(up_w)

    def drop(self) -> None:
        self.down = True
        for w in list(self._conns):
            w.close()

    def restore(self) -> None:
        self.down = False

    async def outage(self, seconds: float) -> None:
        self.drop()
        await asyncio.sleep(seconds)
        self.restore()

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def flaky(redis_client: tuple[Redis, str]) -> AsyncIterator[tuple[Redis, Redis, str, FlakyRedisProxy]]:
    """(client through the proxy built like the API's, direct client, prefix, proxy)."""
    direct, prefix = redis_client
    kw = direct.connection_pool.connection_kwargs
    proxy = FlakyRedisProxy((kw.get("host", "127.0.0.1"), int(kw.get("port", 6379))))
    await proxy.start()
    client = make_redis(f"redis://127.0.0.1:{proxy.port}/{kw.get('db', 0)}")
    try:
        yield client, direct, prefix, proxy
    finally:
        await client.aclose()
        await proxy.close()


async def test_journal_append_rides_out_a_redis_restart(
    flaky: tuple[Redis, Redis, str, FlakyRedisProxy],
) -> None:
    client, direct, prefix, proxy = flaky
    journal = RedisStreamJournal(client, prefix=prefix)
    await journal.append([{"kind": "message", "id": "m0"}])  # pooled connection exists, then dies
    outage = asyncio.create_task(proxy.outage(0.5))
    await asyncio.sleep(0.05)
    t0 = time.monotonic()
    await journal.append([{"kind": "message", "id": "m1"}, {"kind": "message", "id": "m2"}])
    took = time.monotonic() - t0
    await outage
    assert 0.3 < took < 1.5, took  # waited for Redis to come back, did not hang
    entries: list[Any] = await direct.xrange(f"{prefix}journal") or []
    ids = [fields[b"r"] for _, fields in entries]
    assert len(ids) == 3 and b"m2" in ids[-1]


async def test_journal_append_gives_up_after_its_budget(
    flaky: tuple[Redis, Redis, str, FlakyRedisProxy],
) -> None:
    client, _, prefix, proxy = flaky
    journal = RedisStreamJournal(client, prefix=prefix, retry_budget_s=0.3)
    proxy.drop()
    t0 = time.monotonic()
    with pytest.raises(DependencyUnavailable):
        await journal.append([{"kind": "message", "id": "m1"}])
    assert time.monotonic() - t0 < 3.0


async def test_session_lock_is_free_soon_after_a_restart_during_release(
    flaky: tuple[Redis, Redis, str, FlakyRedisProxy],
) -> None:
    """The turn's release fails (Redis down); the visitor's next turn must not wait out a long TTL / get 503."""
    client, direct, prefix, proxy = flaky
    store = RedisSessionStore(client, prefix=prefix, ttl_s=60, lock_timeout_s=5.0)
    key = f"{prefix}lock:session:s1"
    async with store.lock("s1"):
        assert await direct.exists(key)
        proxy.drop()  # Redis "restarts" while the turn finishes
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 0.5  # the failed release did not hold the response
    await asyncio.sleep(1.5)  # longer than the client's own retry budget: the inline release gave up
    proxy.restore()
    t1 = time.monotonic()
    async with store.lock("s1"):  # the next turn of the same visitor
        pass
    assert time.monotonic() - t1 < 1.5
    await store.close()


async def test_session_lock_is_renewed_while_held(flaky: tuple[Redis, Redis, str, FlakyRedisProxy]) -> None:
    client, direct, prefix, _ = flaky
    store = RedisSessionStore(client, prefix=prefix, ttl_s=60, lock_ttl_s=0.6)
    key = f"{prefix}lock:session:s2"
    async with store.lock("s2"):
        await asyncio.sleep(1.5)  # 2.5 TTLs: without renewal another turn could take the lock now
        assert await direct.exists(key)
    assert not await direct.exists(key)
    await store.close()


async def test_a_burst_beyond_the_pool_waits_for_a_connection_instead_of_failing(
    redis_client: tuple[Redis, str],
) -> None:
    """Six requests that each hold a connection for 0.3 s on a pool of two: they queue for a connection and all
    succeed (~0.9 s). redis-py's default pool raised "Too many connections" at the third: a burst of widget
    requests got 503s while Redis itself was idle. A wait longer than pool_timeout_s is still an error."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    _, prefix = redis_client
    client = make_redis("redis://127.0.0.1:6379/0", max_connections=2, pool_timeout_s=5)
    try:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(client.blpop([f"{prefix}empty"], timeout=0.3) for _ in range(6)))
        assert results == [None] * 6
        assert time.perf_counter() - t0 >= 0.8  # three rounds of two: they did wait
    finally:
        await client.aclose()
    impatient = make_redis("redis://127.0.0.1:6379/0", max_connections=1, pool_timeout_s=0.2)
    try:
        outcomes = await asyncio.gather(
            impatient.blpop([f"{prefix}empty"], timeout=1), impatient.ping(), return_exceptions=True
        )
        assert outcomes[0] is None and isinstance(outcomes[1], RedisConnectionError), outcomes
    finally:
        await impatient.aclose()
