"""RedisEventBus on the real Redis: one pub/sub connection per process for every topic, reference-counted
channels, reconnect, cancellation. Connections are told apart by their client name (the test's key prefix):
other tests and processes share this Redis."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest
from prometheus_client import generate_latest
from redis.asyncio import Redis

from api.events import RedisEventBus
from api.observability import Metrics

pytestmark = pytest.mark.integration


@pytest.fixture
async def bus_factory(redis_client: tuple[Redis, str]) -> AsyncIterator[Callable[..., RedisEventBus]]:
    client, prefix = redis_client
    made: list[RedisEventBus] = []

    def make(**kwargs: Any) -> RedisEventBus:
        bus = RedisEventBus(client, prefix, **kwargs)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.aclose()


async def _numsub(client: Redis, prefix: str, *topics: str) -> list[int]:
    reply = await client.pubsub_numsub(*(f"{prefix}events:{t}" for t in topics))
    return [int(n) for _, n in reply]


async def _pubsub_clients(client: Redis, bus: RedisEventBus) -> list[dict[str, Any]]:
    return [c for c in await client.client_list(_type="pubsub") if c.get("name") == bus.client_name]


async def _eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def _gauge(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None
    return value


async def test_streams_on_many_topics_share_one_pubsub_connection(
    bus_factory: Callable[..., RedisEventBus], redis_client: tuple[Redis, str]
) -> None:
    client, prefix = redis_client
    metrics = Metrics()
    bus = bus_factory(metrics=metrics)
    topics = {"session:a": 3, "session:b": 2, "agents": 1}  # 6 streams on 3 topics
    async with contextlib.AsyncExitStack() as stack:
        subs = {
            t: [await stack.enter_async_context(bus.subscribe(t)) for _ in range(n)]
            for t, n in topics.items()
        }
        assert await _numsub(client, prefix, *topics) == [1, 1, 1]  # one subscriber (connection) per channel
        assert len(await _pubsub_clients(client, bus)) == 1
        assert _gauge(metrics, "xiaoke_api_event_channels") == 3
        assert _gauge(metrics, "xiaoke_api_event_subscribers") == 6
        assert b"xiaoke_api_event_channels 3.0" in generate_latest(metrics.registry)
        await bus.publish("session:a", {"event": "message", "data": {"text": "三个都收到"}})
        for sub in subs["session:a"]:
            assert await sub.next(2.0) == {"event": "message", "data": {"text": "三个都收到"}}
    assert _gauge(metrics, "xiaoke_api_event_subscribers") == 0


async def test_fan_out_reaches_the_topic_only_and_one_cancelled_stream_leaves_the_other(
    bus_factory: Callable[..., RedisEventBus], redis_client: tuple[Redis, str]
) -> None:
    client, prefix = redis_client
    bus = bus_factory()
    got: dict[str, list[dict]] = {"a1": [], "a2": [], "b": []}

    async def listen(name: str, topic: str, ready: asyncio.Event) -> None:
        async with bus.subscribe(topic) as sub:
            ready.set()
            while (ev := await sub.next(10)) is not None:
                got[name].append(ev)

    async def cancelled_like_a_disconnect(ready: asyncio.Event) -> None:
        # Starlette cancels a stream through an anyio cancel scope, which cancels every later await too
        with anyio.CancelScope() as scope:
            async with bus.subscribe("session:a"):
                ready.set()
                await asyncio.sleep(0.05)
                scope.cancel()
                await asyncio.sleep(10)

    readies = [asyncio.Event() for _ in range(4)]
    tasks = [
        asyncio.create_task(listen("a1", "session:a", readies[0])),
        asyncio.create_task(listen("a2", "session:a", readies[1])),
        asyncio.create_task(listen("b", "session:b", readies[2])),
    ]
    leaver = asyncio.create_task(cancelled_like_a_disconnect(readies[3]))
    for ready in readies:
        await ready.wait()
    await asyncio.wait_for(leaver, 2)
    assert await _numsub(client, prefix, "session:a", "session:b") == [1, 1]
    await bus.publish("session:a", {"event": "handoff", "data": {"status": "active"}})
    await _eventually(lambda: _async(len(got["a1"]) == len(got["a2"]) == 1))
    await asyncio.sleep(0.1)
    handoff = {"event": "handoff", "data": {"status": "active"}}
    assert got == {"a1": [handoff], "a2": [handoff], "b": []}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _async(value: bool) -> bool:
    return value


async def test_the_last_unsubscribe_releases_the_channel_and_a_new_subscriber_works(
    bus_factory: Callable[..., RedisEventBus], redis_client: tuple[Redis, str]
) -> None:
    client, prefix = redis_client
    bus = bus_factory()
    async with bus.subscribe("session:x"), bus.subscribe("session:x"):
        assert await _numsub(client, prefix, "session:x") == [1]
    await _eventually(lambda: _numsub_is(client, prefix, "session:x", 0))
    async with bus.subscribe("session:x") as sub:
        assert await _numsub(client, prefix, "session:x") == [1]
        await bus.publish("session:x", {"event": "message", "data": {"text": "又来了"}})
        assert await sub.next(2.0) == {"event": "message", "data": {"text": "又来了"}}


async def _numsub_is(client: Redis, prefix: str, topic: str, n: int) -> bool:
    return await _numsub(client, prefix, topic) == [n]


async def test_open_streams_survive_a_killed_pubsub_connection(
    bus_factory: Callable[..., RedisEventBus], redis_client: tuple[Redis, str]
) -> None:
    client, prefix = redis_client
    bus = bus_factory(reconnect_min_s=0.05)
    async with bus.subscribe("session:r") as sub_r, bus.subscribe("agents") as sub_agents:
        ours = await _pubsub_clients(client, bus)
        assert len(ours) == 1
        assert not (sub_r.gap or sub_agents.gap)
        assert await client.execute_command("CLIENT", "KILL", "ID", ours[0]["id"]) == 1
        # the bus reconnects (a new client id) and re-subscribes both topics
        await _eventually(
            lambda: _reconnected(client, bus, ours[0]["id"], prefix, ["session:r", "agents"]), timeout_s=5.0
        )
        await bus.publish("session:r", {"event": "message", "data": {"text": "重连后"}})
        await bus.publish("agents", {"event": "handoff", "data": {"status": "waiting"}})
        assert await sub_r.next(2.0) == {"event": "message", "data": {"text": "重连后"}}
        assert await sub_agents.next(2.0) == {"event": "handoff", "data": {"status": "waiting"}}
        # what was published while it was down never came: the streams are told to re-sync from history
        assert sub_r.gap and sub_agents.gap


async def _reconnected(
    client: Redis, bus: RedisEventBus, old_id: str, prefix: str, topics: list[str]
) -> bool:
    now = await _pubsub_clients(client, bus)
    if len(now) != 1 or now[0]["id"] == old_id:
        return False
    return await _numsub(client, prefix, *topics) == [1] * len(topics)


async def test_a_storm_of_subscribes_and_cancelled_streams_ends_with_no_channel_and_no_task(
    bus_factory: Callable[..., RedisEventBus], redis_client: tuple[Redis, str]
) -> None:
    client, prefix = redis_client
    metrics = Metrics()
    bus = bus_factory(metrics=metrics)
    topics = [f"session:s{i}" for i in range(8)]
    rng = random.Random(7)
    before = asyncio.all_tasks()

    async def stream(topic: str, hold_s: float, disconnect: bool) -> None:
        with anyio.CancelScope() as scope:
            async with bus.subscribe(topic) as sub:
                if disconnect:  # a client leaving: the scope cancels the read and every await after it
                    asyncio.get_running_loop().call_later(hold_s, scope.cancel)
                    await sub.next(10)
                else:
                    await asyncio.sleep(hold_s)

    await asyncio.gather(
        *(stream(rng.choice(topics), rng.uniform(0, 0.05), rng.random() < 0.5) for _ in range(300))
    )
    assert _gauge(metrics, "xiaoke_api_event_subscribers") == 0
    await _eventually(lambda: _numsub_all_zero(client, prefix, topics))
    await _eventually(lambda: _async(_gauge(metrics, "xiaoke_api_event_channels") == 0))
    assert len(await _pubsub_clients(client, bus)) <= 1
    leftover = (
        asyncio.all_tasks() - before
    )  # the bus's reader and writer (and the writer's wait): nothing per stream
    assert {t.get_coro().__qualname__ for t in leftover} <= {  # type: ignore[union-attr]
        "RedisEventBus._read_loop",
        "RedisEventBus._write_loop",
        "Event.wait",
    }
    await bus.aclose()
    assert not (asyncio.all_tasks() - before)
    await _eventually(lambda: _async_len_is(_pubsub_clients(client, bus), 0))
    # a topic of the storm still works on a fresh bus
    fresh = bus_factory()
    async with fresh.subscribe(topics[0]) as sub:
        await fresh.publish(topics[0], {"event": "message", "data": {"text": "风暴过后"}})
        assert await sub.next(2.0) == {"event": "message", "data": {"text": "风暴过后"}}


async def _numsub_all_zero(client: Redis, prefix: str, topics: list[str]) -> bool:
    return not any(await _numsub(client, prefix, *topics))


async def _async_len_is(value: Awaitable[list[Any]], n: int) -> bool:
    return len(await value) == n


async def test_a_slow_subscriber_loses_its_oldest_events_without_holding_up_the_others(
    bus_factory: Callable[..., RedisEventBus],
) -> None:
    bus = bus_factory(queue_size=3)
    async with bus.subscribe("session:q") as slow, bus.subscribe("session:q") as fast:
        received: list[int] = []
        for i in range(10):  # the fast reader takes each event as it comes; the slow one reads nothing
            await bus.publish("session:q", {"event": "message", "data": {"i": i}})
            ev = await fast.next(2.0)
            assert ev is not None
            received.append(ev["data"]["i"])
        assert received == list(range(10))
        assert [(await slow.next(0.1) or {}).get("data", {}).get("i") for _ in range(4)] == [7, 8, 9, None]


async def test_a_stream_opens_while_redis_is_unreachable(redis_client: tuple[Redis, str]) -> None:
    """Live push is best effort: with the pub/sub connection down a stream opens (and would get events once
    Redis is back) instead of failing the request."""
    _, prefix = redis_client
    unreachable = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    bus = RedisEventBus(unreachable, prefix, subscribe_wait_s=0.3)
    try:
        async with asyncio.timeout(3):
            async with bus.subscribe("session:down") as sub:
                assert await sub.next(0.05) is None
    finally:
        await bus.aclose()
        await unreachable.aclose()
