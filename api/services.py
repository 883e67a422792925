"""The app's runtime objects, built once in the lifespan and torn down on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from api.auth import TokenSigner
from api.catalog import FaqCatalog, content_stamp, load_templates
from api.db.engine import make_engine, make_session_factory
from api.dialog.manager import DialogManager
from api.dialog.orders import DemoOrderLookup, NoOrderLookup, OrderLookup, WebhookOrderLookup
from api.events import EventBus, InMemoryEventBus, RedisEventBus
from api.inference import InferenceClient, InferenceConfig
from api.journal import DurableWriter, InProcessJournal, Journal, RedisStreamJournal
from api.observability import Metrics
from api.ratelimit import InMemoryRateLimiter, RateLimiter, RedisRateLimiter
from api.sessions import InMemorySessionStore, RedisSessionStore, SessionStore
from api.settings import Settings
from api.templates import TemplateBook

log = logging.getLogger("api.services")


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    engine: Engine
    session_factory: sessionmaker[Session]
    sessions: SessionStore
    journal: Journal
    writer: DurableWriter
    inference: InferenceClient
    events: EventBus
    limiter: RateLimiter
    templates: TemplateBook
    catalog: FaqCatalog
    orders: OrderLookup
    dialog: DialogManager
    signer: TokenSigner
    redis: Redis | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    chat_inflight: int = 0  # turns being processed now (edge backpressure)
    # one reload at a time: a periodic reload that read the tables before an admin write must not publish its
    # older read after the admin's reload (a deleted FAQ or an old template would come back for 30 s)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    _loaded_stamp: tuple[object, ...] | None = field(default=None, repr=False)

    def reload_catalog(self) -> None:
        """Refresh the FAQ and template read models from the database (sync; call in a thread)."""
        with self._reload_lock, self.session_factory() as db:
            stamp = content_stamp(db)  # read first: a write committed after it makes the next poll reload
            self.catalog.load(db)
            self.templates.replace(load_templates(db))
            self._loaded_stamp = stamp

    def reload_if_changed(self) -> bool:
        """Reload when another instance changed the FAQ or the templates since the last load (sync)."""
        with self.session_factory() as db:
            stamp = content_stamp(db)
        if stamp == self._loaded_stamp:
            return False
        self.reload_catalog()
        return True

    async def db_ready(self) -> bool:
        def ping() -> bool:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True

        try:
            return await asyncio.wait_for(asyncio.to_thread(ping), timeout=2.0)
        except Exception:
            return False


def inference_config(settings: Settings) -> InferenceConfig:
    return InferenceConfig(
        base_url=settings.serving_url,
        connect_timeout_s=settings.serving_connect_timeout_s,
        timeout_s=settings.serving_timeout_s,
        max_concurrency=settings.serving_max_concurrency,
        retries=settings.serving_retries,
        batch_window_ms=settings.serving_batch_window_ms,
        batch_max=settings.serving_batch_max,
        max_batches_in_flight=settings.serving_batches_in_flight,
        top_k=settings.serving_top_k,
        breaker_failures=settings.breaker_failure_threshold,
        breaker_reset_s=settings.breaker_reset_s,
    )


def redis_retry_policy() -> Retry:
    """Every Redis command (incl. pipelines and lock scripts) retries connection errors / timeouts with
    exponential backoff: 50, 100, 200, 250, 250, 250 ms (~1.1 s), enough to ride out a Redis restart."""
    return Retry(ExponentialBackoff(cap=0.25, base=0.025), 6, (RedisConnectionError, RedisTimeoutError))


def make_redis(url: str, *, max_connections: int = 100, pool_timeout_s: float = 2.0, **kwargs: Any) -> Redis:
    """The API's Redis client: short socket timeouts plus the explicit retry policy above, on a pool of at most
    ``max_connections`` where a request beyond it waits up to ``pool_timeout_s`` for a free connection. (redis-py's
    default pool fails at once when full: a burst of concurrent requests - widgets reconnecting after a deploy - got
    503s while Redis itself was idle.)"""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout_s,
        socket_timeout=2.0,
        socket_connect_timeout=1.0,
        retry=redis_retry_policy(),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        **kwargs,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


async def build_services(
    settings: Settings, metrics: Metrics, *, inference: InferenceClient | None = None
) -> Services:
    """Create connections and background tasks. ``inference`` lets tests inject a client on a fake transport."""
    engine = make_engine(settings.database_dsn, pool_size=settings.database_pool_size)
    factory = make_session_factory(engine)
    redis: Redis | None = None
    sessions: SessionStore
    journal: Journal
    events: EventBus
    limiter: RateLimiter
    if settings.redis_dsn is not None:
        redis = make_redis(
            settings.redis_dsn,
            max_connections=settings.redis_pool_size,
            pool_timeout_s=settings.redis_pool_timeout_s,
        )
        sessions = RedisSessionStore(
            redis,
            prefix=settings.redis_prefix,
            ttl_s=settings.session_ttl_s,
            handoff_ttl_s=settings.session_handoff_ttl_s,
            lock_timeout_s=settings.session_lock_timeout_s,
        )
        journal = RedisStreamJournal(redis, prefix=settings.redis_prefix)
        events = RedisEventBus(redis, settings.redis_prefix, metrics=metrics)
        limiter = RedisRateLimiter(redis, settings.redis_prefix)
    else:
        sessions = InMemorySessionStore(settings.session_ttl_s, handoff_ttl_s=settings.session_handoff_ttl_s)
        journal = InProcessJournal(settings.writer_queue_max)
        events = InMemoryEventBus(metrics=metrics)
        limiter = InMemoryRateLimiter()
    client = inference or InferenceClient(inference_config(settings), metrics=metrics)
    templates = TemplateBook()
    catalog = FaqCatalog()
    orders: OrderLookup
    if settings.order_lookup == "webhook":
        assert settings.order_webhook_url is not None
        secret = settings.order_webhook_secret.get_secret_value() if settings.order_webhook_secret else None
        orders = WebhookOrderLookup(
            settings.order_webhook_url, secret, timeout_s=settings.order_webhook_timeout_s
        )
    elif settings.order_lookup == "demo":
        orders = DemoOrderLookup(factory)
    else:
        orders = NoOrderLookup()
    writer = DurableWriter(
        journal,
        factory,
        metrics=metrics,
        batch_size=settings.writer_batch_size,
        retry_max_s=settings.writer_retry_max_s,
    )
    services = Services(
        settings=settings,
        metrics=metrics,
        engine=engine,
        session_factory=factory,
        sessions=sessions,
        journal=journal,
        writer=writer,
        inference=client,
        events=events,
        limiter=limiter,
        templates=templates,
        catalog=catalog,
        orders=orders,
        dialog=DialogManager(client, templates, orders, catalog),
        signer=TokenSigner(settings.secret_key.get_secret_value(), settings.access_token_ttl_s),
        redis=redis,
    )
    return services


async def start_background(services: Services) -> None:
    try:
        await asyncio.to_thread(services.reload_catalog)
    except Exception:
        log.warning("could not load FAQ/templates at startup (database down?); using defaults", exc_info=True)
    services.tasks.append(asyncio.create_task(services.writer.run(), name="durable-writer"))
    services.tasks.append(asyncio.create_task(_periodic_reload(services), name="catalog-reload"))


async def _periodic_reload(services: Services, poll_s: float = 2.0, full_every_s: float = 300.0) -> None:
    """Another instance's FAQ or template edit is live here within ``poll_s`` (a deleted FAQ used to be served
    for up to 30 s); a full reload every ``full_every_s`` catches rows changed behind the API's back."""
    last_full = time.monotonic()
    while True:
        await asyncio.sleep(poll_s)
        with contextlib.suppress(Exception):
            if time.monotonic() - last_full >= full_every_s:
                await asyncio.to_thread(services.reload_catalog)
                last_full = time.monotonic()
            else:
                await asyncio.to_thread(services.reload_if_changed)


async def stop_services(services: Services) -> None:
    services.writer.stop()
    for task in services.tasks:
        if task.get_name() != "durable-writer":
            task.cancel()
    writer_tasks = [t for t in services.tasks if t.get_name() == "durable-writer"]
    if writer_tasks:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*writer_tasks), timeout=2.0)
    with contextlib.suppress(Exception):
        await services.writer.flush(timeout_s=5.0)  # best effort; Redis-backed entries survive anyway
    for task in services.tasks:
        task.cancel()
    await services.inference.aclose()
    if isinstance(services.orders, WebhookOrderLookup):
        await services.orders.aclose()
    await services.sessions.close()
    await services.events.aclose()  # the pub/sub connection and its reader / writer tasks
    if services.redis is not None:
        await services.redis.aclose()
    services.engine.dispose()
