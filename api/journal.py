"""The durable write path: nothing the API accepted is lost when the database is slow or down.

The chat path appends records (messages, feedback, ratings) to a journal and returns; a background
``DurableWriter`` drains the journal in batches and inserts them idempotently (each record carries its
own id; duplicates are ignored), acknowledging only after the transaction commits. When the database
refuses, the writer backs off and retries; records stay in the journal until they land.

* Production: ``RedisStreamJournal`` (a Redis stream + consumer group; pending entries of a crashed writer
  are re-claimed), so accepted records survive an API restart.
* Embedded mode: ``InProcessJournal`` (a bounded in-memory queue). It survives database outages but not a
  crash of the API process itself; full queue → 503 (the message is refused, not silently dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import Connection, Table, func, update
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.orm import Session, sessionmaker

from api.db.models import ChatSession, Feedback, Message, Visitor
from api.errors import DependencyUnavailable, ErrorCode
from api.observability import Metrics
from api.sessions import retry_transient

log = logging.getLogger("api.journal")

Record = dict[str, Any]


class Journal(Protocol):
    async def append(self, records: Sequence[Record]) -> None: ...
    async def read(self, max_n: int, block_ms: int) -> list[tuple[str, Record]]: ...
    async def ack(self, entry_ids: Sequence[str]) -> None: ...
    async def pending(self) -> int: ...


class InProcessJournal:
    """Embedded mode: bounded FIFO; ``read`` returns the head without removing it until ``ack``."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._items: deque[tuple[str, Record]] = deque()
        self._seq = 0
        self._event = asyncio.Event()

    async def append(self, records: Sequence[Record]) -> None:
        if len(self._items) + len(records) > self.max_items:
            raise DependencyUnavailable(ErrorCode.OVERLOADED, detail="in-process journal full")
        for rec in records:
            self._seq += 1
            self._items.append((str(self._seq), rec))
        self._event.set()

    async def read(self, max_n: int, block_ms: int) -> list[tuple[str, Record]]:
        if not self._items:
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), timeout=block_ms / 1000)
            except TimeoutError:
                return []
        return [self._items[i] for i in range(min(max_n, len(self._items)))]

    async def ack(self, entry_ids: Sequence[str]) -> None:
        done = set(entry_ids)
        while self._items and self._items[0][0] in done:
            self._items.popleft()

    async def pending(self) -> int:
        return len(self._items)


# KEYS[1] stream; ARGV: one JSON record each. A script runs atomically: all entries or none.
_APPEND_MANY_LUA = """
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'r', ARGV[i])
end
return #ARGV
"""


class RedisStreamJournal:
    """A Redis stream with one consumer group; entries are XACKed and XDELed once written."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        group: str = "db-writer",
        consumer: str | None = None,
        claim_idle_ms: int = 60_000,
        retry_budget_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.retry_budget_s = retry_budget_s
        self._append_many = redis.register_script(_APPEND_MANY_LUA)
        # Entries a dead writer left unacknowledged this long are taken over by a live one.
        self.claim_idle_ms = claim_idle_ms
        self.stream = f"{prefix}journal"
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self._group_ready = False

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def append(self, records: Sequence[Record]) -> None:
        """Append atomically: one XADD, or a Lua script adding all entries (one round trip, no MULTI/EXEC).
        Retried briefly on connection errors (a Redis restart): a retry after a reply was lost can duplicate
        entries, which the writer's idempotent inserts absorb."""
        if not records:
            return
        payloads = [json.dumps(rec, ensure_ascii=False, default=_json_default) for rec in records]

        async def once() -> None:
            if len(payloads) == 1:
                await self.redis.xadd(self.stream, {"r": payloads[0]})
            else:
                await self._append_many(keys=[self.stream], args=payloads)

        try:
            await retry_transient(once, budget_s=self.retry_budget_s)
        except RedisError as exc:
            raise DependencyUnavailable(detail="journal append") from exc

    async def read(self, max_n: int, block_ms: int) -> list[tuple[str, Record]]:
        await self._ensure_group()
        # First anything delivered to this consumer but not acknowledged (a failed batch), then entries
        # abandoned by dead consumers, then new entries.
        resp = await self.redis.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=max_n)
        entries = _entries(resp)
        if entries:
            return entries
        claimed = await self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id="0-0",
            count=max_n,
        )
        if claimed and claimed[1]:
            return [
                (_s(eid), json.loads(_s(fields[b"r"] if b"r" in fields else fields["r"])))
                for eid, fields in claimed[1]
                if fields
            ]
        resp = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=max_n, block=block_ms
        )
        return _entries(resp)

    async def ack(self, entry_ids: Sequence[str]) -> None:
        if not entry_ids:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, *entry_ids)
            pipe.xdel(self.stream, *entry_ids)
            await pipe.execute()

    async def pending(self) -> int:
        return int(await self.redis.xlen(self.stream))


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _entries(resp: Any) -> list[tuple[str, Record]]:
    out: list[tuple[str, Record]] = []
    for _stream, items in resp or []:
        for eid, fields in items:
            if not fields:  # deleted while pending
                continue
            raw = fields.get(b"r") if b"r" in fields else fields.get("r")
            out.append((_s(eid), json.loads(_s(raw))))
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# ---- writer ----------------------------------------------------------------------------------------


@functools.cache
def _insert_ignore_stmt(dialect: str, table: Table) -> Any:
    """Built once per (dialect, table): statement construction is not free and the writer runs per batch."""
    if dialect == "mysql":
        pk = next(iter(table.primary_key.columns)).name
        stmt: Any = mysql_dialect.insert(table)
        return stmt.on_duplicate_key_update({pk: stmt.inserted[pk]})
    if dialect == "sqlite":
        return sqlite_dialect.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import postgresql  # pragma: no cover - postgres and friends

    return postgresql.insert(table).on_conflict_do_nothing()  # pragma: no cover


def _insert_ignore(db: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    db.execute(_insert_ignore_stmt(db.dialect.name, table), rows)


_sessions_table: Table = ChatSession.__table__  # type: ignore[assignment]


@functools.cache
def _upsert_sessions_stmt(dialect: str) -> Any:
    """Insert the batch's sessions and move ``last_at`` of existing ones forward (never backwards) in one
    statement: no UPDATE round trip per session."""
    t = _sessions_table
    if dialect == "mysql":
        stmt: Any = mysql_dialect.insert(t)
        return stmt.on_duplicate_key_update(last_at=func.greatest(t.c.last_at, stmt.inserted.last_at))
    if dialect == "sqlite":
        stmt = sqlite_dialect.insert(t)
        return stmt.on_conflict_do_update(
            index_elements=[t.c.id], set_={"last_at": func.max(t.c.last_at, stmt.excluded.last_at)}
        )
    from sqlalchemy.dialects import postgresql  # pragma: no cover - postgres and friends

    stmt = postgresql.insert(t)  # pragma: no cover
    return stmt.on_conflict_do_update(  # pragma: no cover
        index_elements=[t.c.id], set_={"last_at": func.greatest(t.c.last_at, stmt.excluded.last_at)}
    )


def _dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def write_records(db: Session, records: Sequence[Record]) -> int:
    """Insert a batch idempotently in the caller's transaction. Returns the number of records handled."""
    visitors: dict[str, dict[str, Any]] = {}
    sessions: dict[str, dict[str, Any]] = {}
    messages: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    ratings: list[Record] = []
    last_at: dict[str, datetime] = {}
    for rec in records:
        kind = rec.get("kind")
        if kind == "message":
            created = _dt(rec["created_at"])
            sid = rec["session_id"]
            if rec.get("visitor_id"):
                visitors.setdefault(
                    rec["visitor_id"],
                    {
                        "id": rec["visitor_id"],
                        "external_user_id": rec.get("user_id"),
                        # only a record that says so: one journaled before the check held the widget's claim
                        "verified": bool(rec.get("user_id") and rec.get("user_verified") is True),
                        "created_at": _dt(rec["session_started_at"]),
                    },
                )
            sessions.setdefault(
                sid,
                {
                    "id": sid,
                    "visitor_id": rec.get("visitor_id"),
                    "started_at": _dt(rec["session_started_at"]),
                    "last_at": created,
                },
            )
            last_at[sid] = max(last_at.get(sid, created), created)
            messages.append(
                {
                    "id": rec["id"],
                    "session_id": sid,
                    "role": rec["role"],
                    "text": rec["text"],
                    "intent": rec.get("intent"),
                    "confidence": rec.get("confidence"),
                    "reply_type": rec.get("reply_type"),
                    "faq_id": rec.get("faq_id"),
                    "candidates": rec.get("candidates"),
                    "suggestions": rec.get("suggestions"),
                    "latency_ms": rec.get("latency_ms"),
                    "created_at": created,
                }
            )
        elif kind == "feedback":
            feedback.append(
                {
                    "id": rec["id"],
                    "session_id": rec["session_id"],
                    "message_id": rec["message_id"],
                    "rating": str(rec["rating"]),
                    "comment": rec.get("comment"),
                    "created_at": _dt(rec["created_at"]),
                }
            )
        elif kind == "rating":
            ratings.append(rec)
        else:
            log.error("journal record of unknown kind %r skipped", kind)
    # Core statements on the session's connection (same transaction), past the ORM execution layer.
    conn = db.connection()
    _insert_ignore(conn, Visitor.__table__, list(visitors.values()))  # type: ignore[arg-type]
    for sid, at in last_at.items():
        sessions[sid]["last_at"] = at
    if sessions:
        conn.execute(_upsert_sessions_stmt(conn.dialect.name), list(sessions.values()))
    _insert_ignore(conn, Message.__table__, messages)  # type: ignore[arg-type]
    _insert_ignore(conn, Feedback.__table__, feedback)  # type: ignore[arg-type]
    for rec in ratings:
        db.execute(
            update(ChatSession)
            .where(ChatSession.id == rec["session_id"])
            .values(rating=int(rec["rating"]), rating_comment=rec.get("comment"))
        )
    return len(records)


class DurableWriter:
    """Background task: journal → database in batches, ack after commit, back off while the DB is down."""

    def __init__(
        self,
        journal: Journal,
        session_factory: sessionmaker[Session],
        *,
        metrics: Metrics | None = None,
        batch_size: int = 200,
        retry_max_s: float = 5.0,
        block_ms: int = 500,
        linger_s: float = 0.05,
    ) -> None:
        self.journal = journal
        self.session_factory = session_factory
        self.metrics = metrics
        self.batch_size = batch_size
        self.retry_max_s = retry_max_s
        self.block_ms = block_ms
        # After a partial batch, wait this long before reading again so the next batch is bigger: the
        # per-batch cost (3-4 Redis round trips, a thread hop, a DB transaction) is paid per ~N turns instead
        # of per turn. Records are already durable in the journal; only their arrival in the DB is delayed.
        self.linger_s = linger_s
        self.healthy = True
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    def _write_sync(self, records: list[Record]) -> int:
        with self.session_factory() as db, db.begin():
            return write_records(db, records)

    async def drain_once(self) -> int:
        entries = await self.journal.read(self.batch_size, self.block_ms)
        if not entries:
            return 0
        written = await asyncio.to_thread(self._write_sync, [rec for _, rec in entries])
        await self.journal.ack([eid for eid, _ in entries])
        if self.metrics:
            self.metrics.writer_written.inc(written)
        return written

    async def run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                written = await self.drain_once()
                self.healthy = True
                backoff = 0.05
                if 0 < written < self.batch_size and self.linger_s > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), timeout=self.linger_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.healthy = False
                if self.metrics:
                    self.metrics.writer_failures.inc()
                log.warning("durable writer: batch failed; retrying in %.2fs", backoff, exc_info=True)
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, self.retry_max_s)
            if self.metrics:
                try:
                    self.metrics.writer_pending.set(await self.journal.pending())
                except Exception:  # metrics must never stop the writer
                    pass

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Drain until the journal is empty (shutdown, tests)."""
        async with asyncio.timeout(timeout_s):
            while await self.journal.pending():
                await self.drain_once()
