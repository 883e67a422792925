"""The Redis stream journal: ordered delivery, ack, retry of a failed batch, take-over from a dead writer."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from api.journal import RedisStreamJournal

pytestmark = pytest.mark.integration


def rec(i: int) -> dict:
    return {"kind": "message", "id": f"m_{i}", "text": f"第{i}条 😊"}


async def test_append_read_ack(redis_client: tuple[Redis, str]) -> None:
    client, prefix = redis_client
    j = RedisStreamJournal(client, prefix=prefix, consumer="w1")
    await j.append([rec(i) for i in range(5)])
    assert await j.pending() == 5
    got = await j.read(3, block_ms=100)
    assert [r["id"] for _, r in got] == ["m_0", "m_1", "m_2"] and got[0][1]["text"] == "第0条 😊"
    # not acknowledged (the batch failed): the same consumer gets the same entries again first
    again = await j.read(3, block_ms=100)
    assert [e for e, _ in again] == [e for e, _ in got]
    await j.ack([e for e, _ in got])
    rest = await j.read(10, block_ms=100)
    assert [r["id"] for _, r in rest] == ["m_3", "m_4"]
    await j.ack([e for e, _ in rest])
    assert await j.pending() == 0
    assert await j.read(10, block_ms=50) == []


async def test_entries_of_a_dead_writer_are_taken_over(redis_client: tuple[Redis, str]) -> None:
    client, prefix = redis_client
    dead = RedisStreamJournal(client, prefix=prefix, consumer="dead", claim_idle_ms=100)
    alive = RedisStreamJournal(client, prefix=prefix, consumer="alive", claim_idle_ms=100)
    await dead.append([rec(i) for i in range(3)])
    taken = await dead.read(10, block_ms=100)  # ...and the process dies before writing/acking
    assert len(taken) == 3
    assert await alive.read(10, block_ms=50) == []  # not yet idle long enough
    await asyncio.sleep(0.15)
    claimed = await alive.read(10, block_ms=50)
    assert sorted(r["id"] for _, r in claimed) == ["m_0", "m_1", "m_2"]
    await alive.ack([e for e, _ in claimed])
    assert await alive.pending() == 0
