"""Token-bucket rate limits and live event fan-out, in-process and on the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from api.events import InMemoryEventBus, RedisEventBus
from api.ratelimit import Bucket, InMemoryRateLimiter, RedisRateLimiter

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest, redis_client: tuple[Redis, str]) -> AsyncIterator[Any]:
    client, prefix = redis_client
    yield InMemoryRateLimiter() if request.param == "memory" else RedisRateLimiter(client, prefix)


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest, redis_client: tuple[Redis, str]) -> AsyncIterator[Any]:
    client, prefix = redis_client
    bus = InMemoryEventBus() if request.param == "memory" else RedisEventBus(client, prefix)
    yield bus
    await bus.aclose()


async def test_bucket_allows_burst_then_refuses_with_retry_after(limiter: Any) -> None:
    bucket = Bucket(rate_per_s=5.0, burst=3)
    decisions = [await limiter.hit("session:a", bucket) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 0 < decisions[-1].retry_after_s <= 0.25
    assert (await limiter.hit("session:b", bucket)).allowed  # keys are independent
    await asyncio.sleep(0.25)
    assert (await limiter.hit("session:a", bucket)).allowed  # refilled


async def test_events_fan_out_to_subscribers_of_the_topic(bus: Any) -> None:
    got: list[dict] = []

    async def listen(ready: asyncio.Event) -> None:
        async with bus.subscribe("session:x") as sub:
            ready.set()
            while (ev := await sub.next(10)) is not None:
                got.append(ev)
                if len(got) == 2:
                    return

    ready = asyncio.Event()
    task = asyncio.create_task(listen(ready))
    await ready.wait()
    await asyncio.sleep(0.05)
    await bus.publish("session:other", {"event": "message", "data": {"text": "不是你的"}})
    await bus.publish("session:x", {"event": "handoff", "data": {"status": "active"}})
    await bus.publish("session:x", {"event": "message", "data": {"text": "您好😊"}})
    await asyncio.wait_for(task, 3)
    assert got == [
        {"event": "handoff", "data": {"status": "active"}},
        {"event": "message", "data": {"text": "您好😊"}},
    ]


async def test_a_subscription_survives_keep_alive_timeouts(bus: Any) -> None:
    """The SSE loop waits for the next event with a keep-alive timeout: the subscription must still deliver after
    one (an async generator cancelled on timeout closed for good, and every stream died 15 s after its last event)."""
    async with bus.subscribe("session:k") as sub:
        await asyncio.sleep(0.05)
        assert await sub.next(0.05) is None
        assert await sub.next(0.05) is None
        await bus.publish("session:k", {"event": "message", "data": {"text": "还在吗"}})
        assert await sub.next(2.0) == {"event": "message", "data": {"text": "还在吗"}}
