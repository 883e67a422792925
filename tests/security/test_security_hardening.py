"""Regression tests of the security review: each failed before its fix (see the test's docstring)."""

from __future__ import annotations

import asyncio

import httpx
from security_world import ADMIN, CLIENT_IP, World
from sqlalchemy import select

from tests.fixtures.asgi import AsgiStream


async def test_arbitrary_http_methods_do_not_grow_the_metrics(world: World) -> None:
    """Every distinct request method used to become a new Prometheus series (memory grows without bound and
    /metrics with it): the method label must come from a fixed set."""
    c = world.client
    for i in range(30):
        r = await c.request(f"XMETHOD{i}", "/api/v1/chat")
        assert r.status_code in (404, 405), r.status_code
    body = (await c.get("/metrics")).text
    assert "XMETHOD" not in body
    series = [line for line in body.splitlines() if line.startswith("xiaoke_api_http_requests_total{")]
    assert len(series) < 20, series


async def test_concurrent_wrong_passwords_still_lock_the_account(world: World) -> None:
    """Failed logins were counted read-modify-write in Python: concurrent wrong guesses all read the same count
    and wrote the same +1, so an attacker sending guesses in parallel never reached the lockout."""
    from api.db.models import AdminUser

    attempts = 8  # above login_max_failures (5), within one IP's login burst (10)
    transport = httpx.ASGITransport(app=world.app, client=("198.51.100.77", 4444))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=60) as c:
        rs = await asyncio.gather(
            *(
                c.post("/api/v1/admin/auth/login", json={"username": ADMIN[0], "password": f"wrong-{i}"})
                for i in range(attempts)
            )
        )
    assert all(r.status_code in (401, 429) for r in rs), [r.status_code for r in rs]
    with world.services.session_factory() as db:
        user = db.scalars(select(AdminUser).where(AdminUser.username == ADMIN[0])).one()
        assert user.locked_until is not None, user.failed_logins


def _stream(world: World, path: str, headers: dict[str, str]) -> AsgiStream:
    return AsgiStream(world.app, path, headers, client=(CLIENT_IP, 5555))


async def test_one_session_cannot_open_unbounded_event_streams(world: World) -> None:
    """A visitor's event stream had no limit: one session token could hold any number of streams open (each one a
    Redis pub/sub connection in production), exhausting Redis connections and sockets for everyone."""
    from api.routes import public

    cap = getattr(public, "SSE_MAX_STREAMS_PER_SESSION", 5)
    path = f"/api/v1/sessions/{world.a.session_id}/events"
    streams = [_stream(world, path, world.a.headers) for _ in range(cap + 1)]
    try:
        statuses = [await asyncio.wait_for(s.status, 5) for s in streams]
        assert statuses == [200] * cap + [429], statuses
        # another session is not affected; a closed stream frees its slot
        other = _stream(world, f"/api/v1/sessions/{world.b.session_id}/events", world.b.headers)
        streams.append(other)
        assert await asyncio.wait_for(other.status, 5) == 200
        await streams[0].close()
        again = _stream(world, path, world.a.headers)
        streams.append(again)
        assert await asyncio.wait_for(again.status, 5) == 200
    finally:
        for s in streams:
            await s.close()
