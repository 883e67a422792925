"""Live push for SSE: publish/subscribe on topics (``session:<id>`` for the widget, ``agents`` for the console).

In-process fan-out in embedded mode; Redis pub/sub when several API instances run. Subscriber queues
are bounded: a client too slow to read loses the oldest events rather than growing memory (it can
re-sync from the history endpoint).

With Redis, one pub/sub connection per process carries every topic (``RedisEventBus``): a topic's channel
is subscribed while the process has at least one local subscriber of it, and one reader task fans each
message out to that topic's local queues. Live push is best effort: events published while that connection
is down are lost (history is the source of truth); it reconnects with backoff and re-subscribes every live
topic. A subscription that may have missed events (the outage, or its full queue dropping one) is marked
``gap``: the SSE route then ends that stream, and the widget and the console reconnect and re-read what they
missed (their catch-up on every reopen).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    from api.observability import Metrics

log = logging.getLogger("api.events")

Event = dict[str, Any]  # {"event": "message"|"handoff", "data": {...}}


class EventBus(Protocol):
    async def publish(self, topic: str, event: Event) -> None: ...
    def subscribe(self, topic: str) -> Any:  # async context manager yielding an async iterator of events
        ...
    async def aclose(self) -> None: ...


class _Subscription:
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        # events may have been lost since the stream opened: its reader should re-sync from history
        self.gap = False

    def put(self, event: Event) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.gap = True
        self.queue.put_nowait(event)

    async def next(self, timeout: float) -> Event | None:
        """The next event, or None when none came within ``timeout`` seconds; the one way to read. Safe to call
        again after a timeout (a cancelled ``Queue.get`` loses nothing). An async generator would not be:
        cancelling its ``__anext__`` (a keep-alive timeout around ``async for``) closes it for good."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


class _LocalSubscribers:
    """Topic -> open local subscriptions. Adding and removing never await: a stream's exit runs in a task that
    a client disconnect has cancelled (anyio cancels every await there again), so it must not need one."""

    def __init__(self) -> None:
        self.by_topic: dict[str, set[_Subscription]] = {}
        self.count = 0

    def add(self, topic: str, sub: _Subscription) -> bool:
        """Register ``sub``; True when it is the topic's first."""
        subs = self.by_topic.get(topic)
        first = subs is None
        if subs is None:
            subs = self.by_topic[topic] = set()
        subs.add(sub)
        self.count += 1
        return first

    def remove(self, topic: str, sub: _Subscription) -> bool:
        """Unregister ``sub``; True when it was the topic's last."""
        subs = self.by_topic.get(topic)
        if subs is None or sub not in subs:
            return False
        subs.discard(sub)
        self.count -= 1
        if subs:
            return False
        del self.by_topic[topic]
        return True

    def deliver(self, topic: str, event: Event) -> None:
        for sub in list(self.by_topic.get(topic, ())):
            sub.put(event)  # never blocks: a full queue drops its oldest event


class InMemoryEventBus:
    def __init__(self, queue_size: int = 100, *, metrics: Metrics | None = None) -> None:
        self.queue_size = queue_size
        self._local = _LocalSubscribers()
        if metrics:
            metrics.event_subscribers.set_function(lambda: self.subscribers)

    @property
    def subscribers(self) -> int:
        """Open subscriptions (streams) in this process."""
        return self._local.count

    async def publish(self, topic: str, event: Event) -> None:
        self._local.deliver(topic, event)

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[_Subscription]:
        sub = _Subscription(self.queue_size)
        self._local.add(topic, sub)
        try:
            yield sub
        finally:
            self._local.remove(topic, sub)

    async def aclose(self) -> None:
        return None


class _Link:
    """One connected pub/sub connection and what is subscribed on it: ``channels`` by what was sent (SUBSCRIBE
    minus UNSUBSCRIBE), ``confirmed`` by Redis's replies. A reconnect starts a new link from nothing."""

    def __init__(self, conn: AbstractConnection) -> None:
        self.conn = conn
        self.channels: set[str] = set()  # topics
        self.confirmed: set[str] = set()  # topics


async def _as_is(push: Any) -> Any:
    return push


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisEventBus:
    """Topics over Redis pub/sub, all on one connection per bus (per API process).

    Two tasks, started by the first subscription and stopped by ``aclose``: the reader owns the connection
    (connect, read, reconnect with backoff) and fans messages out; the writer alone sends SUBSCRIBE /
    UNSUBSCRIBE / PING on it, reconciling each changed topic with its local subscriber count. Subscribing and
    unsubscribing only change that count and mark the topic, so concurrent opens and closes of one topic end
    with its channel subscribed exactly while it has local subscribers, and a cancelled stream leaves
    nothing half done.
    """

    _CHUNK = 500  # channels per SUBSCRIBE / UNSUBSCRIBE command

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        queue_size: int = 100,
        *,
        metrics: Metrics | None = None,
        ping_interval_s: float = 20.0,
        subscribe_wait_s: float = 1.0,
        reconnect_min_s: float = 0.1,
        reconnect_max_s: float = 5.0,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.queue_size = queue_size
        self.ping_interval_s = ping_interval_s
        # no reply at all (not even to our PINGs) for this long: the connection is dead without a FIN/RST
        self.read_timeout_s = 2.5 * ping_interval_s
        self.subscribe_wait_s = subscribe_wait_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        # visible in CLIENT LIST (CLIENT SETNAME refuses spaces and control characters)
        self.client_name = "".join(c if "!" <= c <= "~" else "_" for c in f"{prefix}events")
        self._channel_prefix = f"{prefix}events:"
        self._local = _LocalSubscribers()
        self._link: _Link | None = None
        self._dirty: set[str] = set()  # topics whose channel may need (un)subscribing
        self._wake = asyncio.Event()
        self._ready: dict[str, asyncio.Event] = {}  # topic -> set when Redis confirms its SUBSCRIBE
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._down_since: float | None = None
        if metrics:
            metrics.event_subscribers.set_function(lambda: self.subscribers)
            metrics.event_channels.set_function(lambda: self.channels)

    @property
    def subscribers(self) -> int:
        """Open subscriptions (streams) in this process."""
        return self._local.count

    @property
    def channels(self) -> int:
        """Channels subscribed on the pub/sub connection, as Redis confirmed (0 while it is down)."""
        return len(self._link.confirmed) if self._link else 0

    def _channel(self, topic: str) -> str:
        return f"{self._channel_prefix}{topic}"

    async def publish(self, topic: str, event: Event) -> None:
        try:
            await self.redis.publish(self._channel(topic), json.dumps(event, ensure_ascii=False))
        except Exception:  # live push is best effort; history is the source of truth
            log.warning("event publish failed", exc_info=True)

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[_Subscription]:
        if self._closed:
            raise RuntimeError("event bus closed")
        self._start()
        sub = _Subscription(self.queue_size)
        if self._local.add(topic, sub):
            self._mark(topic)
        try:
            await self._until_subscribed(topic)
            yield sub
        finally:  # no await here (see _LocalSubscribers)
            if self._local.remove(topic, sub):
                self._ready.pop(topic, None)
                self._mark(topic)

    async def aclose(self) -> None:
        """Stop the reader and writer and close the pub/sub connection (idempotent)."""
        self._closed = True
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        link, self._link = self._link, None
        if link is not None:
            await link.conn.disconnect(nowait=True)

    # -- internals ---------------------------------------------------------------------------------------------

    def _start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._read_loop(), name="event-bus-reader"),
                asyncio.create_task(self._write_loop(), name="event-bus-writer"),
            ]

    def _mark(self, topic: str) -> None:
        self._dirty.add(topic)
        self._wake.set()

    async def _until_subscribed(self, topic: str) -> None:
        """Wait (bounded) until the topic's channel is subscribed, so that what is published after the stream
        opened reaches it. With Redis down the stream opens anyway and gets events once it is back."""
        link = self._link
        if link is not None and topic in link.channels and topic in link.confirmed:
            return
        ready = self._ready.setdefault(topic, asyncio.Event())
        try:
            await asyncio.wait_for(ready.wait(), self.subscribe_wait_s)
        except TimeoutError:  # one warning per outage (the reader's), not one per stream opened during it
            (log.debug if self._down_since is not None else log.warning)(
                "event pub/sub not subscribed within %.1f s; the stream opens anyway", self.subscribe_wait_s
            )

    def _new_connection(self) -> AbstractConnection:
        pool = self.redis.connection_pool
        conn = pool.connection_class(**{**pool.connection_kwargs, "client_name": self.client_name})
        # as redis-py's PubSub does: pushes come back from read_response as they are, without the default
        # handler's DEBUG line carrying every event's payload (visitor messages) into the logs
        set_handler = getattr(conn._parser, "set_pubsub_push_handler", None)  # RESP3-capable parsers
        if set_handler is not None:
            set_handler(_as_is)
        return conn

    async def _read_loop(self) -> None:
        delay = self.reconnect_min_s
        while not self._closed:
            conn = self._new_connection()
            link: _Link | None = None
            try:
                await conn.connect()
                link = self._link = _Link(conn)
                if self._down_since is not None:
                    for subs in self._local.by_topic.values():  # what was published meanwhile never came
                        for sub in subs:
                            sub.gap = True
                    log.warning(
                        "event pub/sub reconnected after %.1f s; re-subscribing %d topics (events published "
                        "meanwhile were not pushed)",
                        time.monotonic() - self._down_since,
                        len(self._local.by_topic),
                    )
                    self._down_since = None
                delay = self.reconnect_min_s
                self._dirty.update(self._local.by_topic)
                self._wake.set()
                while True:
                    # push_request: RESP3 (redis-py's default) delivers pub/sub messages as pushes, which a plain
                    # read hands to a logging handler and skips
                    reply = await conn.read_response(timeout=self.read_timeout_s, push_request=True)
                    if reply is None:
                        raise RedisTimeoutError(f"no reply from Redis for {self.read_timeout_s:.0f} s")
                    self._on_reply(link, reply)
            except Exception:
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.warning("event pub/sub connection down; reconnecting", exc_info=True)
                else:
                    log.debug("event pub/sub reconnect failed", exc_info=True)
            finally:
                if link is not None and self._link is link:
                    self._link = None
                await conn.disconnect(nowait=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max_s)

    def _on_reply(self, link: _Link, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 3:
            return  # a reply to our PING ("PONG" in RESP3, ["pong", ""] in RESP2): liveness only
        kind = _text(reply[0])
        channel = _text(reply[1])
        if not channel.startswith(self._channel_prefix):
            return
        topic = channel[len(self._channel_prefix) :]
        if kind == "message":
            try:
                event = json.loads(reply[2])
            except ValueError:
                log.warning("undecodable event on %s dropped", channel)
                return
            self._local.deliver(topic, event)
        elif kind == "subscribe":
            link.confirmed.add(topic)
            ready = self._ready.pop(topic, None)
            if ready is not None:
                ready.set()
        elif kind == "unsubscribe":
            link.confirmed.discard(topic)

    async def _write_loop(self) -> None:
        last_sent = time.monotonic()
        # the flag, not cancellation alone, ends the loops: Python 3.11's wait_for can swallow a cancel that
        # lands as the awaited send fails
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.ping_interval_s)
            self._wake.clear()
            link = self._link
            # never send on a connection the reader has given up: send_command would silently reconnect it
            # without the other channels; the reader's next link re-marks every live topic
            if link is None or not link.conn.is_connected:
                continue
            dirty, self._dirty = self._dirty, set()
            wanted = self._local.by_topic
            add = sorted(t for t in dirty if t in wanted and t not in link.channels)
            drop = sorted(t for t in dirty if t not in wanted and t in link.channels)
            try:
                for i in range(0, len(add), self._CHUNK):
                    chunk = add[i : i + self._CHUNK]
                    await link.conn.send_command("SUBSCRIBE", *map(self._channel, chunk), check_health=False)
                    link.channels.update(chunk)
                    last_sent = time.monotonic()
                for i in range(0, len(drop), self._CHUNK):
                    chunk = drop[i : i + self._CHUNK]
                    await link.conn.send_command(
                        "UNSUBSCRIBE", *map(self._channel, chunk), check_health=False
                    )
                    link.channels.difference_update(chunk)
                    last_sent = time.monotonic()
                if time.monotonic() - last_sent >= self.ping_interval_s:
                    await link.conn.send_command("PING", check_health=False)
                    last_sent = time.monotonic()
            except Exception:
                log.warning("event pub/sub write failed; reconnecting", exc_info=True)
                # the reader's read fails on the closed connection and starts a new link with every live topic
                await link.conn.disconnect(nowait=True)
