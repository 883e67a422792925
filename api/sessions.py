"""Visitor sessions: one protocol, two stores (Redis for production, in-process for embedded mode).

A session holds the token hash, the last N turns and the dialog state. Every read-modify-write of a
session happens under ``store.lock(session_id)``.

The TTL (30 min by default) runs from the session's last save: a visitor turn, an agent's message, a hand-off
taken or handed back. Reads (history, event-stream opens, feedback, rating) leave it alone: when they slid it too,
whoever held a token (copied from the browser, or kept by a tab of a shopper who logged out) could keep the
session, and with it the conversation, readable for ever by reading it every 29 minutes. A visitor who only
watches an agent type loses nothing: every agent message is a save, and a session queued for or served by a
human lives ``session_handoff_ttl_s`` (4 h by default) after its last save (:func:`session_ttl`). ``delete`` ends a
session at once (the visitor's ``DELETE /api/v1/sessions/{id}``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.dialog.state import DialogState
from api.errors import DependencyUnavailable, ErrorCode, SessionNotFound

HandoffStatus = Literal["none", "waiting", "active"]

T = TypeVar("T")
# Errors a Redis restart / failover produces; anything else (a bad command, WRONGTYPE) is not retried.
TRANSIENT_REDIS_ERRORS: tuple[type[RedisError], ...] = (RedisConnectionError, RedisTimeoutError)


async def retry_transient(
    op: Callable[[], Awaitable[T]], *, budget_s: float = 1.0, base_s: float = 0.05, cap_s: float = 0.25
) -> T:
    """Run ``op``; on a transient Redis error retry with exponential backoff while ``budget_s`` lasts.

    Brief on purpose: a visitor turn waits at most about ``budget_s`` for Redis to come back (a restart is
    typically well under a second) before the caller answers 503. The last error is re-raised.
    """
    deadline = time.monotonic() + budget_s
    delay = base_s
    while True:
        try:
            return await op()
        except TRANSIENT_REDIS_ERRORS:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            await asyncio.sleep(min(delay, remaining))
            delay = min(cap_s, delay * 2)


def new_session_id() -> str:
    return "s_" + secrets.token_urlsafe(18)  # 144 bits


def new_session_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_message_id() -> str:
    return "m_" + secrets.token_hex(12)


class Turn(BaseModel):
    id: str = Field(default_factory=new_message_id)
    role: Literal["user", "bot", "agent"]
    text: str  # masked text
    intent: str | None = None
    reply_type: str | None = None
    faq_id: str | None = None
    suggestions: list[str] = Field(default_factory=list)
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # a visitor turn's client_message_id: a retry of the same turn is answered from the session, not run twice
    client_id: str | None = None
    # a bot turn's reply details the history does not show, kept so a retried turn gets the same answer
    quick_replies: list[str] = Field(default_factory=list)
    confidence: float | None = None


class HandoffInfo(BaseModel):
    status: HandoffStatus = "none"
    ticket_id: str | None = None


class Session(BaseModel):
    id: str
    token_hash: str
    visitor_id: str
    # The shop's id of the visitor, kept only when the embed's signature verified it (api.identity); None: an
    # anonymous visitor. Sessions saved before verification existed hold an unchecked claim and no user_verified:
    # they count as anonymous (verified_user_id).
    user_id: str | None = None
    user_verified: bool = False
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    turns: list[Turn] = Field(default_factory=list)
    dialog: DialogState = Field(default_factory=DialogState)
    handoff: HandoffInfo = Field(default_factory=HandoffInfo)

    @property
    def verified_user_id(self) -> str | None:
        """The shop's id of the visitor when the shop vouched for it, else None (anonymous)."""
        return self.user_id if self.user_verified else None

    def token_matches(self, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(self.token_hash, hash_token(token))

    def add_turn(self, turn: Turn, keep: int) -> None:
        self.turns.append(turn)
        if len(self.turns) > keep:
            del self.turns[: len(self.turns) - keep]


def new_session(verified_user_id: str | None = None) -> tuple[Session, str]:
    """A new session and its token; ``verified_user_id``: the shop's id of the visitor, only once verified."""
    token = new_session_token()
    session = Session(
        id=new_session_id(),
        token_hash=hash_token(token),
        visitor_id="v_" + secrets.token_urlsafe(12),
        user_id=verified_user_id,
        user_verified=verified_user_id is not None,
    )
    return session, token


def session_ttl(session: Session, ttl_s: int, handoff_ttl_s: int) -> int:
    """How long a session lives after this save: a visitor queued for a human, or talking with one, keeps the
    longer ``handoff_ttl_s``. Queues are long on busy days and a waiting visitor sends nothing; with the
    30 minutes they lost their place (the agent taking the ticket found the session gone), and an agent's reply
    to a visitor who stepped away would be lost too, where the widget shows it when they come back."""
    return max(ttl_s, handoff_ttl_s) if session.handoff.status != "none" else ttl_s


class SessionStore(Protocol):
    async def create(self, session: Session) -> None: ...
    async def get(self, session_id: str) -> Session | None:
        """The live session, or None; never moves its expiry (only ``create`` and ``save`` set it)."""
        ...

    async def exists(self, session_id: str) -> bool:
        """Whether the session is alive, without reading it (the event stream asks before every event)."""
        ...

    async def save(self, session: Session) -> None:
        """Store the session and restart its TTL."""
        ...

    async def delete(self, session_id: str) -> None: ...
    def lock(self, session_id: str) -> Any:  # async context manager
        ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


async def load_authorized(store: SessionStore, session_id: str, token: str | None) -> Session:
    """The session if the token matches; otherwise SESSION_NOT_FOUND (no oracle for existing ids)."""
    session = await store.get(session_id)
    if session is None or not session.token_matches(token):
        raise SessionNotFound()
    return session


class InMemorySessionStore:
    """Embedded single-process store: TTL from the last save, bounded size. Entries stay in save order: at the
    bound, the session saved longest ago is evicted."""

    def __init__(self, ttl_s: int, max_sessions: int = 100_000, handoff_ttl_s: int | None = None) -> None:
        self.ttl_s = ttl_s
        self.handoff_ttl_s = handoff_ttl_s or ttl_s
        self.max_sessions = max_sessions
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def _expired(self, expires: float) -> bool:
        return time.monotonic() >= expires

    async def create(self, session: Session) -> None:
        await self.save(session)

    async def get(self, session_id: str) -> Session | None:
        item = self._data.get(session_id)
        if item is None:
            return None
        if self._expired(item[0]):
            self._data.pop(session_id, None)
            return None
        return Session.model_validate_json(item[1])

    async def exists(self, session_id: str) -> bool:
        item = self._data.get(session_id)
        return item is not None and not self._expired(item[0])

    async def save(self, session: Session) -> None:
        ttl = session_ttl(session, self.ttl_s, self.handoff_ttl_s)
        self._data[session.id] = (time.monotonic() + ttl, session.model_dump_json())
        self._data.move_to_end(session.id)
        while len(self._data) > self.max_sessions:
            self._data.popitem(last=False)

    async def delete(self, session_id: str) -> None:
        self._data.pop(session_id, None)

    @asynccontextmanager
    async def lock(self, session_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(session_id, (asyncio.Lock(), 0))
        self._locks[session_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[session_id]
            if users <= 1:
                del self._locks[session_id]
            else:
                self._locks[session_id] = (lock, users - 1)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()


class RedisSessionStore:
    """Sessions as JSON strings with a TTL set by every save; a Redis lock per session guards read-modify-write."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        ttl_s: int,
        handoff_ttl_s: int | None = None,
        lock_timeout_s: float = 5.0,
        lock_ttl_s: float = 3.0,
        retry_budget_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.handoff_ttl_s = handoff_ttl_s or ttl_s
        # How long a turn waits for another turn of the same session before 503 OVERLOADED.
        self.lock_timeout_s = lock_timeout_s
        # The lock key's TTL, renewed every third of it while the turn runs: a lock a failed turn could not
        # release (Redis down at that moment) blocks the session for at most this long.
        self.lock_ttl_s = lock_ttl_s
        self.retry_budget_s = retry_budget_s
        self._background: set[asyncio.Task[None]] = set()

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    async def create(self, session: Session) -> None:
        try:
            ok = await self.redis.set(
                self._key(session.id), session.model_dump_json(), ex=self.ttl_s, nx=True
            )
        except RedisError as exc:
            raise DependencyUnavailable(detail="redis create") from exc
        if not ok:
            raise DependencyUnavailable(ErrorCode.CONFLICT, detail="session id collision")

    async def get(self, session_id: str) -> Session | None:
        try:
            raw = await self.redis.get(self._key(session_id))
        except RedisError as exc:
            raise DependencyUnavailable(detail="redis get") from exc
        if raw is None:
            return None
        return Session.model_validate_json(raw)

    async def exists(self, session_id: str) -> bool:
        try:
            return bool(await self.redis.exists(self._key(session_id)))
        except RedisError as exc:
            raise DependencyUnavailable(detail="redis exists") from exc

    async def save(self, session: Session) -> None:
        try:
            ttl = session_ttl(session, self.ttl_s, self.handoff_ttl_s)
            await self.redis.set(self._key(session.id), session.model_dump_json(), ex=ttl)
        except RedisError as exc:
            raise DependencyUnavailable(detail="redis save") from exc

    async def delete(self, session_id: str) -> None:
        try:
            await self.redis.delete(self._key(session_id))
        except RedisError as exc:
            raise DependencyUnavailable(detail="redis delete") from exc

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _renew(self, lock: Lock) -> None:
        try:
            await lock.reacquire()
        except (LockError, RedisError):
            pass  # lost or Redis down: the TTL bounds how long the key can outlive the turn

    async def _release_later(self, lock: Lock) -> None:
        """Keep trying to release a lock whose release failed (Redis down) until its TTL would expire anyway.

        Token-checked by redis-py's release script: never deletes a lock another turn holds now.
        """
        deadline = time.monotonic() + self.lock_ttl_s
        delay = 0.05
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(0.25, delay * 2)
            try:
                await lock.release()
                return
            except LockError:
                return  # expired or taken over: nothing to undo
            except RedisError:
                continue

    @asynccontextmanager
    async def lock(self, session_id: str) -> AsyncIterator[None]:
        lock = self.redis.lock(
            f"{self.prefix}lock:session:{session_id}",
            timeout=self.lock_ttl_s,
            blocking_timeout=self.lock_timeout_s,
            sleep=0.005,
        )
        try:
            acquired = await retry_transient(lock.acquire, budget_s=self.retry_budget_s)
        except RedisError as exc:
            raise DependencyUnavailable(detail="redis lock") from exc
        if not acquired:
            raise DependencyUnavailable(ErrorCode.OVERLOADED, detail="session lock timeout")
        loop = asyncio.get_running_loop()
        period = self.lock_ttl_s / 3
        renew: asyncio.TimerHandle | None = None

        def schedule_renewal() -> None:
            nonlocal renew

            def fire() -> None:
                self._spawn(self._renew(lock))
                schedule_renewal()

            renew = loop.call_later(period, fire)

        schedule_renewal()
        try:
            yield
        finally:
            if renew is not None:
                renew.cancel()
            try:
                # Bounded: the response must not wait for Redis to come back.
                async with asyncio.timeout(0.25):  # no extra task, unlike wait_for
                    await lock.release()
            except LockError:
                pass  # expired: the next holder already owns it; nothing to undo
            except (RedisError, TimeoutError):
                self._spawn(self._release_later(lock))

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
