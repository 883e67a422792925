"""Live push for SSE: publish/subscribe on topics (``session:<id>`` for the widget, ``agents`` for the console).

In-process fan-out in embedded mode; Redis pub/sub when several API instances run. Subscriber queues
are bounded: a client too slow to read loses the oldest events rather than growing memory (it can
re-sync from the history endpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from redis.asyncio import Redis

log = logging.getLogger("api.events")

Event = dict[str, Any]  # {"event": "message"|"handoff", "data": {...}}


class EventBus(Protocol):
    async def publish(self, topic: str, event: Event) -> None: ...
    def subscribe(self, topic: str) -> Any:  # async context manager yielding an async iterator of events
        ...


class _Subscription:
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)

    def put(self, event: Event) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(event)

    async def next(self, timeout: float) -> Event | None:
        """The next event, or None when none came within ``timeout`` seconds; the one way to read. Safe to call
        again after a timeout (a cancelled ``Queue.get`` loses nothing). An async generator would not be:
        cancelling its ``__anext__`` (a keep-alive timeout around ``async for``) closes it for good."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


class InMemoryEventBus:
    def __init__(self, queue_size: int = 100) -> None:
        self.queue_size = queue_size
        self._subs: dict[str, set[_Subscription]] = {}

    async def publish(self, topic: str, event: Event) -> None:
        for sub in list(self._subs.get(topic, ())):
            sub.put(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[_Subscription]:
        sub = _Subscription(self.queue_size)
        self._subs.setdefault(topic, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[topic]


class RedisEventBus:
    def __init__(self, redis: Redis, prefix: str, queue_size: int = 100) -> None:
        self.redis = redis
        self.prefix = prefix
        self.queue_size = queue_size

    def _channel(self, topic: str) -> str:
        return f"{self.prefix}events:{topic}"

    async def publish(self, topic: str, event: Event) -> None:
        try:
            await self.redis.publish(self._channel(topic), json.dumps(event, ensure_ascii=False))
        except Exception:  # live push is best effort; history is the source of truth
            log.warning("event publish failed", exc_info=True)

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[_Subscription]:
        sub = _Subscription(self.queue_size)
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channel(topic))

        async def pump() -> None:
            async for msg in pubsub.listen():
                if msg and msg.get("type") == "message":
                    data = msg["data"]
                    sub.put(json.loads(data.decode() if isinstance(data, bytes) else data))

        task = asyncio.create_task(pump())
        try:
            yield sub
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            await pubsub.unsubscribe()
            await pubsub.aclose()
