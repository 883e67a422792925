"""ONE contract suite for every SessionStore: in-process and Redis (the real server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

import pytest
from redis.asyncio import Redis

from api.dialog.state import Phase
from api.errors import SessionNotFound
from api.sessions import (
    HandoffInfo,
    InMemorySessionStore,
    RedisSessionStore,
    SessionStore,
    Turn,
    load_authorized,
    new_session,
)

pytestmark = pytest.mark.integration
TTL = 2
HANDOFF_TTL = 30


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, redis_client: tuple[Redis, str]
) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        yield InMemorySessionStore(ttl_s=TTL, handoff_ttl_s=HANDOFF_TTL)
    else:
        client, prefix = redis_client
        yield RedisSessionStore(client, prefix=prefix, ttl_s=TTL, handoff_ttl_s=HANDOFF_TTL, lock_timeout_s=2)


async def test_create_get_roundtrip(store: SessionStore) -> None:
    s, token = new_session(verified_user_id="u-1")
    s.dialog.phase = Phase.AWAIT_ORDER_ID
    s.dialog.slots = {"order_id": "2024112300123"}
    await store.create(s)
    got = await store.get(s.id)
    assert got is not None and got.id == s.id and got.verified_user_id == "u-1"
    assert got.dialog.phase is Phase.AWAIT_ORDER_ID and got.dialog.slots == {"order_id": "2024112300123"}
    assert got.token_matches(token) and not got.token_matches(token + "x") and not got.token_matches(None)
    assert token not in got.model_dump_json()  # only the hash is stored


async def test_unknown_and_wrong_token_are_not_found(store: SessionStore) -> None:
    s, token = new_session()
    await store.create(s)
    assert await store.get("s_nope") is None
    with pytest.raises(SessionNotFound):
        await load_authorized(store, s.id, "wrong")
    with pytest.raises(SessionNotFound):
        await load_authorized(store, "s_nope", token)
    assert (await load_authorized(store, s.id, token)).id == s.id


async def test_ids_and_tokens_are_random_and_long() -> None:
    pairs = [new_session() for _ in range(200)]
    assert len({s.id for s, _ in pairs}) == 200 and len({t for _, t in pairs}) == 200
    assert all(len(t) >= 43 for _, t in pairs)  # >= 256 bits url-safe


async def test_ttl_expires_and_saves_slide_it(store: SessionStore) -> None:
    s, _ = new_session()
    await store.create(s)
    for _ in range(3):  # 3 x 0.9 s > TTL, but every save (a turn, an agent's message) restarts it
        await asyncio.sleep(0.9)
        got = await store.get(s.id)
        assert got is not None
        await store.save(got)
    await asyncio.sleep(TTL + 0.3)
    assert await store.get(s.id) is None


async def test_reads_do_not_slide_the_expiry(store: SessionStore) -> None:
    """Every read (history, event-stream opens, feedback) used to slide the expiry: whoever held a token could keep
    the session, and the conversation with it, readable for ever by reading it every 29 minutes."""
    s, _ = new_session()
    await store.create(s)
    for _ in range(2):
        await asyncio.sleep(0.8)
        assert await store.get(s.id) is not None
    await asyncio.sleep(0.7)  # 2.3 s after the create: past the TTL, whatever the reads did
    assert await store.get(s.id) is None


@pytest.mark.parametrize("status", ["waiting", "active"])
async def test_a_session_with_a_human_lives_the_handoff_ttl(
    store: SessionStore, status: Literal["waiting", "active"]
) -> None:
    """A visitor queued for a human sends nothing while they wait: with the 30 minutes, a long queue lost them
    (the agent taking the ticket found the session gone). Back with the bot, the short TTL applies again."""
    s, _ = new_session()
    await store.create(s)
    s.handoff = HandoffInfo(status=status, ticket_id="t-1")
    await store.save(s)
    await asyncio.sleep(TTL + 0.5)
    got = await store.get(s.id)
    assert got is not None and got.handoff.status == status
    got.handoff = HandoffInfo()
    await store.save(got)
    await asyncio.sleep(TTL + 0.3)
    assert await store.get(s.id) is None


async def test_exists_does_not_slide_the_expiry(store: SessionStore) -> None:
    """The visitor's event stream asks this every keep-alive: an open tab must not keep a session alive."""
    s, _ = new_session()
    await store.create(s)
    assert await store.exists(s.id) and not await store.exists("s_unknown")
    for _ in range(3):  # 3 x 0.9 s > TTL: reads by exists() leave the expiry alone
        await asyncio.sleep(0.9)
        await store.exists(s.id)
    assert not await store.exists(s.id)
    assert await store.get(s.id) is None


async def test_history_keeps_last_n_turns(store: SessionStore) -> None:
    s, _ = new_session()
    for i in range(15):
        s.add_turn(Turn(role="user" if i % 2 == 0 else "bot", text=f"t{i}"), keep=10)
    await store.create(s)
    got = await store.get(s.id)
    assert got is not None and [t.text for t in got.turns] == [f"t{i}" for i in range(5, 15)]


async def test_lock_serializes_read_modify_write(store: SessionStore) -> None:
    s, _ = new_session()
    await store.create(s)

    async def bump() -> None:
        async with store.lock(s.id):
            cur = await store.get(s.id)
            assert cur is not None
            await asyncio.sleep(0.005)  # widen the race window
            cur.dialog.misses += 1
            await store.save(cur)

    await asyncio.gather(*(bump() for _ in range(20)))
    final = await store.get(s.id)
    assert final is not None and final.dialog.misses == 20


async def test_delete(store: SessionStore) -> None:
    s, _ = new_session()
    await store.create(s)
    await store.delete(s.id)
    assert await store.get(s.id) is None
    assert await store.ping()
