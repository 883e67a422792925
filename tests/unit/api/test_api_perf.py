"""Per-turn waste removed from the hot path, pinned by behaviour: writer batching, no UPDATE per session,
cached metric children, no failed ``import sniffio`` per inference call."""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from api.db.engine import make_engine, make_session_factory
from api.db.migrate import upgrade
from api.db.models import ChatSession
from api.journal import DurableWriter, InProcessJournal, write_records
from api.observability import Metrics


def msg(i: int, sid: str, at: datetime) -> dict[str, Any]:
    return {
        "kind": "message",
        "id": f"m_{sid}_{i}",
        "session_id": sid,
        "visitor_id": f"v_{sid}",
        "session_started_at": at.isoformat(),
        "role": "user",
        "text": f"消息{i}",
        "created_at": at.isoformat(),
    }


@pytest.fixture
def factory(tmp_path) -> sessionmaker[Session]:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade(engine)
    return make_session_factory(engine)


async def test_writer_lingers_after_a_partial_batch_so_turns_share_a_batch(
    factory: sessionmaker[Session],
) -> None:
    journal = InProcessJournal(max_items=100)
    writer = DurableWriter(journal, factory, block_ms=20, linger_s=0.3)
    batches: list[int] = []
    real = writer._write_sync

    def counting(records: list[dict[str, Any]]) -> int:
        batches.append(len(records))
        return real(records)

    writer._write_sync = counting  # type: ignore[method-assign]
    task = asyncio.create_task(writer.run())
    now = datetime.now(UTC)
    try:
        await journal.append([msg(0, "a", now)])
        for _ in range(50):
            if batches:
                break
            await asyncio.sleep(0.01)
        for i in range(1, 4):  # three turns arriving 20 ms apart while the writer lingers
            await journal.append([msg(i, "a", now)])
            await asyncio.sleep(0.02)
        deadline = time.monotonic() + 3
        while sum(batches) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        writer.stop()
        await asyncio.wait_for(task, 5)
    assert batches == [1, 3]


def test_last_at_is_bumped_by_the_sessions_upsert(factory: sessionmaker[Session]) -> None:
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    with factory() as db, db.begin():
        write_records(db, [msg(0, s, t0) for s in ("a", "b", "c")])
    statements: list[str] = []
    bind = factory.kw["bind"]

    @event.listens_for(bind, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.lstrip().upper())

    later = t0 + timedelta(minutes=5)
    earlier = t0 - timedelta(minutes=5)
    with factory() as db, db.begin():
        write_records(db, [msg(1, "a", later), msg(2, "b", later), msg(3, "c", earlier), msg(4, "a", t0)])
    event.remove(bind, "before_cursor_execute", record)
    # one executemany per table (visitors, sessions, messages); last_at rides on the sessions upsert
    assert not [st for st in statements if st.startswith("UPDATE")], statements
    assert len([st for st in statements if "INTO CHAT_SESSIONS" in st]) == 1, statements
    with factory() as db:
        got = {s: db.get(ChatSession, s).last_at.replace(tzinfo=None) for s in ("a", "b", "c")}  # type: ignore[union-attr]
    naive = {k: v.replace(tzinfo=None) for k, v in {"a": later, "b": later, "c": t0}.items()}
    assert got == naive  # moved forward, never backwards


def test_request_metrics_count_through_cached_children() -> None:
    m = Metrics()
    for _ in range(3):
        m.observe_request("POST", "/api/v1/chat", 200, 0.01)
    m.observe_request("POST", "/api/v1/chat", 429, 0.002)
    v = m.registry.get_sample_value
    assert (
        v("xiaoke_api_http_requests_total", {"method": "POST", "route": "/api/v1/chat", "status": "200"}) == 3
    )
    assert (
        v("xiaoke_api_http_requests_total", {"method": "POST", "route": "/api/v1/chat", "status": "429"}) == 1
    )
    assert v("xiaoke_api_http_request_seconds_count", {"route": "/api/v1/chat"}) == 4


def test_no_filesystem_import_search_for_sniffio_per_request() -> None:
    importlib.import_module("api.inference")
    # Either the real module, or marked absent so httpcore's per-request ``import sniffio`` fails at once.
    assert "sniffio" in sys.modules
    t0 = time.perf_counter()
    for _ in range(2000):
        try:
            import sniffio  # noqa: F401
        except ImportError:
            pass
    assert time.perf_counter() - t0 < 0.05
