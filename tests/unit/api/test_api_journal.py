"""Embedded durable write path: in-process journal + writer over SQLite, through a database outage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.db.engine import make_engine, make_session_factory
from api.db.migrate import upgrade
from api.db.models import ChatSession, Feedback, Message
from api.errors import DependencyUnavailable
from api.journal import DurableWriter, InProcessJournal


def msg(i: int, sid: str = "s_1") -> dict:
    now = datetime.now(UTC).isoformat()
    return {
        "kind": "message",
        "id": f"m_{i}",
        "session_id": sid,
        "visitor_id": "v_1",
        "session_started_at": now,
        "role": "user",
        "text": f"消息{i}",
        "created_at": now,
    }


class Switchable:
    """A session factory that refuses (like a database that is down) until switched back on."""

    def __init__(self, real: sessionmaker[Session]) -> None:
        self.real = real
        self.down = False
        self.attempts = 0

    def __call__(self) -> Session:
        self.attempts += 1
        if self.down:
            raise ConnectionRefusedError("database is down")
        return self.real()


@pytest.fixture
def factory(tmp_path) -> sessionmaker[Session]:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'j.db'}")
    upgrade(engine)
    return make_session_factory(engine)


def count(factory: sessionmaker[Session]) -> int:
    with factory() as db:
        return db.scalar(select(func.count()).select_from(Message)) or 0


async def test_outage_then_recovery_loses_nothing(factory: sessionmaker[Session]) -> None:
    journal = InProcessJournal(max_items=1000)
    switch = Switchable(factory)
    writer = DurableWriter(journal, switch, batch_size=7, retry_max_s=0.05, block_ms=20)  # type: ignore[arg-type]
    task = asyncio.create_task(writer.run())
    switch.down = True
    for i in range(50):
        await journal.append([msg(i)])
    await asyncio.sleep(0.3)
    assert switch.attempts > 1 and not writer.healthy  # it kept retrying
    assert count(factory) == 0 and await journal.pending() == 50
    switch.down = False
    for _ in range(100):
        if await journal.pending() == 0:
            break
        await asyncio.sleep(0.02)
    writer.stop()
    await asyncio.wait_for(task, 2)
    assert count(factory) == 50 and writer.healthy
    with factory() as db:
        assert db.scalar(select(func.count()).select_from(ChatSession)) == 1


async def test_replayed_batches_are_idempotent(factory: sessionmaker[Session]) -> None:
    journal = InProcessJournal(max_items=100)
    writer = DurableWriter(journal, factory, block_ms=10)
    recs = [msg(i) for i in range(5)] + [
        {
            "kind": "feedback",
            "id": "f_1",
            "session_id": "s_1",
            "message_id": "m_1",
            "rating": "down",
            "created_at": datetime.now(UTC).isoformat(),
        },
        {"kind": "rating", "id": "r_1", "session_id": "s_1", "rating": 4, "comment": "还行"},
    ]
    for _ in range(3):
        await journal.append(recs)
        await writer.flush()
    assert count(factory) == 5
    with factory() as db:
        assert db.scalar(select(func.count()).select_from(Feedback)) == 1
        assert db.get(ChatSession, "s_1").rating == 4  # type: ignore[union-attr]


async def test_full_journal_refuses_instead_of_dropping() -> None:
    journal = InProcessJournal(max_items=3)
    await journal.append([msg(1), msg(2)])
    with pytest.raises(DependencyUnavailable):
        await journal.append([msg(3), msg(4)])
    assert await journal.pending() == 2


async def test_unknown_record_kind_does_not_block_the_queue(factory: sessionmaker[Session]) -> None:
    journal = InProcessJournal(max_items=10)
    writer = DurableWriter(journal, factory, block_ms=10)
    await journal.append([{"kind": "mystery", "id": "x"}, msg(1)])
    await writer.flush()
    assert count(factory) == 1 and await journal.pending() == 0
