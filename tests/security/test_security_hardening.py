"""Regression tests of the security review: each failed before its fix (see the test's docstring)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from security_world import ADMIN, CLIENT_IP, World, start_visitor
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


async def test_one_address_cannot_open_unbounded_event_streams(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream cap was per session only: one address could create sessions as fast as its chat budget allowed
    (120 a minute) and hold 5 streams on each, thousands of Redis pub/sub connections from one visitor."""
    from api.routes import public

    monkeypatch.setattr(public, "SSE_MAX_STREAMS_PER_IP", 3, raising=False)  # the real cap is 100
    a, b = world.a, world.b
    c = await start_visitor(world.client, "还在吗")
    streams = [_stream(world, f"/api/v1/sessions/{v.session_id}/events", v.headers) for v in (a, a, b, b, c)]
    try:
        statuses = [await asyncio.wait_for(s.status, 5) for s in streams]
        assert statuses == [200, 200, 200, 429, 429], statuses
        # another address is not affected; a closed stream frees its slot
        elsewhere = AsgiStream(
            world.app, f"/api/v1/sessions/{c.session_id}/events", c.headers, client=("198.51.100.8", 4444)
        )
        streams.append(elsewhere)
        assert await asyncio.wait_for(elsewhere.status, 5) == 200
        await streams[0].close()
        again = _stream(world, f"/api/v1/sessions/{c.session_id}/events", c.headers)
        streams.append(again)
        assert await asyncio.wait_for(again.status, 5) == 200
    finally:
        for s in streams:
            await s.close()


@pytest.mark.parametrize("settings_overrides", [{"rate_ip_burst": 4, "rate_ip_per_min": 4}])
async def test_visitor_requests_besides_chat_are_rate_limited_per_ip(
    app_client: tuple[Any, httpx.AsyncClient],
) -> None:
    """Only the chat turn was rate limited: with one session token a visitor could read the history (up to 500
    rows per request), journal feedback and ratings (a database write each) and open event streams as fast as
    they could send."""
    app, c = app_client
    v = await start_visitor(c)
    sid = v.session_id
    calls = [
        ("GET", f"/api/v1/sessions/{sid}/history", None),
        ("POST", f"/api/v1/sessions/{sid}/rating", {"rating": 4}),
        ("POST", "/api/v1/feedback", {"message_id": v.message_id, "rating": "up", "session_id": sid}),
        ("GET", f"/api/v1/sessions/{sid}/history", None),
    ]
    for method, path, body in calls:  # the burst
        r = await c.request(method, path, json=body, headers=v.headers)
        assert r.status_code in (200, 204), (path, r.status_code, r.text)
    ends = ("DELETE", f"/api/v1/sessions/{sid}", None)
    for method, path, body in [*calls, ("POST", f"/api/v1/sessions/{sid}/handoff", None), ends]:
        r = await c.request(method, path, json=body, headers=v.headers)
        assert r.status_code == 429, (path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "RATE_LIMITED" and int(r.headers["Retry-After"]) >= 1
    stream = AsgiStream(app, f"/api/v1/sessions/{sid}/events", v.headers, client=(CLIENT_IP, 5555))
    try:
        assert await asyncio.wait_for(stream.status, 5) == 429
    finally:
        await stream.close()
    # a bucket of its own: the visitor's chat turns are not used up by it
    r = await c.post("/api/v1/chat", json={"message": "在吗", "session_id": sid}, headers=v.headers)
    assert r.status_code == 200, r.text
    # another address is not affected
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 4444))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as other:
        r = await other.get(f"/api/v1/sessions/{sid}/history", headers=v.headers)
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("settings_overrides", [{"rate_ip_burst": 3, "rate_ip_per_min": 3}])
async def test_ipv6_addresses_of_one_network_share_the_ip_limits(
    app_client: tuple[Any, httpx.AsyncClient],
) -> None:
    """Per-IP buckets were keyed by the full address: an IPv6 subscriber holds a whole /64 (2**64 addresses) and
    got a fresh chat and login budget for each address they used."""
    app, _ = app_client

    async def chat_from(host: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(host, 4444))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
            return (await c.post("/api/v1/chat", json={"message": "你好"})).status_code

    statuses = [await chat_from(f"2001:db8:7:7::{i:x}") for i in range(1, 6)]
    assert statuses == [200, 200, 200, 429, 429], statuses
    assert await chat_from("2001:db8:7:7:ffff:ffff:ffff:ffff") == 429
    # another /64 is another client; IPv4 (also as an IPv4-mapped IPv6 address) is keyed by the address
    assert await chat_from("2001:db8:7:8::1") == 200
    assert [
        await chat_from(h) for h in ("192.0.2.5", "::ffff:192.0.2.5", "192.0.2.5", "::ffff:192.0.2.5")
    ] == [
        200,
        200,
        200,
        429,
    ]


async def test_deleting_accounts_with_long_names(world: World) -> None:
    """Deactivation renamed the account to ``name#deleted-<id>`` cut to 64 characters: a 64-character name kept
    its name (never free again), and a second 60-character account of the same name collided with the first
    deleted one's new name (500 on delete)."""
    c, admin = world.client, world.bearer(world.admin_token)
    for name in ("x" * 60, "x" * 60, "y" * 64, "y" * 64):
        r = await c.post(
            "/api/v1/admin/users",
            json={"username": name, "password": "password-123", "role": "agent"},
            headers=admin,
        )
        assert r.status_code == 201, (len(name), r.text)
        r = await c.delete(f"/api/v1/admin/users/{r.json()['id']}", headers=admin)
        assert r.status_code == 204, (len(name), r.text)
    from api.db.models import AdminUser

    with world.services.session_factory() as db:
        gone = db.scalars(select(AdminUser.username).where(AdminUser.active.is_(False))).all()
    assert len(gone) == len(set(gone)) == 4 and all(len(n) <= 64 and "#deleted-" in n for n in gone), gone


async def test_one_console_account_cannot_open_unbounded_event_streams(world: World) -> None:
    """The console's event stream had no limit: any agent token (the least privileged console account) could hold
    any number open, a Redis pub/sub connection each."""
    from api.routes import public

    cap = getattr(public, "SSE_MAX_STREAMS_PER_ACCOUNT", 10)
    agent, admin = world.bearer(world.agent_token), world.bearer(world.admin_token)
    streams = [_stream(world, "/api/v1/admin/events", agent) for _ in range(cap + 1)]
    try:
        # the token is checked in a worker thread: the requests pass the cap in any order
        statuses = [await asyncio.wait_for(s.status, 5) for s in streams]
        assert sorted(statuses) == [200] * cap + [429], statuses
        # another account is not affected; a closed stream frees its slot
        other = _stream(world, "/api/v1/admin/events", admin)
        streams.append(other)
        assert await asyncio.wait_for(other.status, 5) == 200
        await streams[statuses.index(200)].close()
        again = _stream(world, "/api/v1/admin/events", agent)
        streams.append(again)
        assert await asyncio.wait_for(again.status, 5) == 200
    finally:
        for s in streams:
            await s.close()
