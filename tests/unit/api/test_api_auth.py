"""Console auth: scrypt hashes, signed expiring tokens, lockout, roles, user management + audit, live streams."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select, update

from api.auth import TokenSigner, hash_password, verify_password
from api.bootstrap import ensure_admin
from api.db.models import AdminUser, AuditLog
from api.errors import AppError
from tests.fixtures.asgi import AsgiStream


def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    h1, h2 = hash_password("correct horse"), hash_password("correct horse")
    assert h1 != h2 and h1.startswith("scrypt$32768$8$1$")
    assert verify_password("correct horse", h1) and not verify_password("correct horsE", h1)
    assert not verify_password("x", "garbage") and not verify_password("x", "pbkdf2$1$2$3$4$5")


def test_token_roundtrip_tamper_and_expiry() -> None:
    signer = TokenSigner("s" * 40, ttl_s=60)
    tok = signer.issue(7, "alice", "agent", now=1000)
    claims = signer.verify(tok, now=1010)
    assert (claims.user_id, claims.username, claims.role) == (7, "alice", "agent")
    with pytest.raises(AppError):
        signer.verify(tok, now=1061)  # expired
    head, payload, sig = tok.split(".")
    forged_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    for bad in (f"{head}.{forged_payload}.{sig}", tok + "x", "v2." + payload + "." + sig, "", "a.b"):
        with pytest.raises(AppError):
            signer.verify(bad, now=1010)
    with pytest.raises(AppError):
        TokenSigner("other-secret" * 4, ttl_s=60).verify(tok, now=1010)


async def login(client, username, password):  # type: ignore[no-untyped-def]
    return await client.post("/api/v1/admin/auth/login", json={"username": username, "password": password})


async def test_login_me_and_roles(app_client) -> None:  # type: ignore[no-untyped-def]
    app, client = app_client
    f = app.state.services.session_factory
    ensure_admin(f, "boss", "boss-password-1", role="admin")
    ensure_admin(f, "agentx", "agent-password-1", role="agent")
    r = await login(client, "boss", "boss-password-1")
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["role"] == "admin" and body["expires_in"] > 0
    admin_h = {"Authorization": f"Bearer {body['access_token']}"}
    me = await client.get("/api/v1/admin/me", headers=admin_h)
    assert me.json()["username"] == "boss" and me.json()["role"] == "admin"

    agent_tok = (await login(client, "agentx", "agent-password-1")).json()["access_token"]
    agent_h = {"Authorization": f"Bearer {agent_tok}"}
    assert (await client.get("/api/v1/admin/handoffs", headers=agent_h)).status_code == 200
    forbidden = await client.get("/api/v1/admin/users", headers=agent_h)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "FORBIDDEN"
    assert (await client.get("/api/v1/admin/me")).status_code == 401
    assert (await client.get("/api/v1/admin/me", headers={"Authorization": "Bearer nope"})).status_code == 401


async def test_wrong_password_and_unknown_user_look_the_same(app_client) -> None:  # type: ignore[no-untyped-def]
    app, client = app_client
    ensure_admin(app.state.services.session_factory, "carol", "carol-password", role="admin")
    a = await login(client, "carol", "wrong-password")
    b = await login(client, "nobody", "wrong-password")
    assert a.status_code == b.status_code == 401
    assert a.json()["error"]["code"] == b.json()["error"]["code"] == "INVALID_CREDENTIALS"


async def test_lockout_after_repeated_failures(app_client) -> None:  # type: ignore[no-untyped-def]
    app, client = app_client
    ensure_admin(app.state.services.session_factory, "dave", "dave-password", role="admin")
    for _ in range(5):
        assert (await login(client, "dave", "bad-password")).status_code == 401
    locked = await login(client, "dave", "dave-password")  # even the right password is refused now
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "ACCOUNT_LOCKED"
    assert int(locked.headers["retry-after"]) > 0


async def test_login_rate_limited_per_ip(app_client) -> None:  # type: ignore[no-untyped-def]
    _, client = app_client
    codes = [(await login(client, f"ghost{i}", "whatever-pass")).status_code for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[-1] == 429


async def test_user_management_is_audited_and_revokes_tokens(app_client) -> None:  # type: ignore[no-untyped-def]
    app, client = app_client
    f = app.state.services.session_factory
    ensure_admin(f, "root", "root-password", role="admin")
    admin_h = {
        "Authorization": f"Bearer {(await login(client, 'root', 'root-password')).json()['access_token']}"
    }
    r = await client.post(
        "/api/v1/admin/users",
        json={"username": "eve", "password": "eve-password", "role": "agent"},
        headers=admin_h,
    )
    assert r.status_code == 201 and r.json()["role"] == "agent"
    dup = await client.post(
        "/api/v1/admin/users", json={"username": "eve", "password": "eve-password"}, headers=admin_h
    )
    assert dup.status_code == 409
    short = await client.post(
        "/api/v1/admin/users", json={"username": "frank", "password": "short"}, headers=admin_h
    )
    assert short.status_code == 422
    eve_h = {"Authorization": f"Bearer {(await login(client, 'eve', 'eve-password')).json()['access_token']}"}
    assert (await client.get("/api/v1/admin/me", headers=eve_h)).status_code == 200
    listed = (await client.get("/api/v1/admin/users", headers=admin_h)).json()["items"]
    eve_id = next(u["id"] for u in listed if u["username"] == "eve")
    assert (await client.delete(f"/api/v1/admin/users/{eve_id}", headers=admin_h)).status_code == 204
    assert (await client.get("/api/v1/admin/me", headers=eve_h)).status_code == 401  # token revoked
    for bad_id in (0, 2**31, 10**30):  # out of the id column's range: 422, never a database error (500)
        bad = await client.delete(f"/api/v1/admin/users/{bad_id}", headers=admin_h)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR", bad_id
    with f() as db:
        actions = [a.action for a in db.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == ["user.create", "user.delete"]


def test_signer_default_time_is_now() -> None:
    signer = TokenSigner("k" * 40, ttl_s=5)
    claims = signer.verify(signer.issue(1, "a", "admin"))
    assert claims.expires_at - int(time.time()) <= 5


async def _agent_bearer(app, client, now: float | None = None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    services = app.state.services
    ensure_admin(services.session_factory, "streamer", "streamer-password", role="agent")
    if now is None:
        token = (await login(client, "streamer", "streamer-password")).json()["access_token"]
    else:
        with services.session_factory() as db:
            uid = db.scalar(select(AdminUser.id).where(AdminUser.username == "streamer"))
        token = services.signer.issue(uid, "streamer", "agent", now=now)
    return {"Authorization": f"Bearer {token}"}


async def test_open_agent_event_streams_hold_no_database_connection(app_client) -> None:  # type: ignore[no-untyped-def]
    app, client = app_client
    bearer = await _agent_bearer(app, client)
    streams = [AsgiStream(app, "/api/v1/admin/events", bearer) for _ in range(3)]
    try:
        for s in streams:
            await s.wait_for(": connected")
        # one per open console would exhaust the pool (and block the durable writer) with enough agents online
        assert app.state.services.engine.pool.checkedout() == 0
    finally:
        for s in streams:
            await s.close()


async def test_agent_event_stream_ends_when_the_token_expires(app_client) -> None:  # type: ignore[no-untyped-def]
    app, client = app_client
    services = app.state.services
    issued = time.time() - services.signer.ttl_s + 2  # expires within 1-2 s
    bearer = await _agent_bearer(app, client, now=issued)
    stream = AsgiStream(app, "/api/v1/admin/events", bearer)
    try:
        await stream.wait_for(": connected")
        await services.events.publish("agents", {"event": "message", "data": {"text": "before expiry"}})
        await stream.wait_for("before expiry")
        await asyncio.sleep(int(issued) + services.signer.ttl_s - time.time() + 0.05)
        await services.events.publish("agents", {"event": "message", "data": {"text": "after expiry"}})
        await asyncio.wait_for(stream.ended.wait(), 2)
        assert "after expiry" not in stream.text
    finally:
        await stream.close()


async def test_agent_event_stream_ends_when_the_account_is_deactivated(  # type: ignore[no-untyped-def]
    app_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.routes import public

    monkeypatch.setattr(public, "SSE_KEEPALIVE_S", 0.05)
    app, client = app_client
    services = app.state.services
    stream = AsgiStream(app, "/api/v1/admin/events", await _agent_bearer(app, client))
    try:
        await stream.wait_for(": connected")
        with services.session_factory() as db:
            db.execute(update(AdminUser).where(AdminUser.username == "streamer").values(active=False))
            db.commit()
        await asyncio.wait_for(stream.ended.wait(), 2)
        await services.events.publish("agents", {"event": "message", "data": {"text": "after delete"}})
        await asyncio.sleep(0.1)
        assert "after delete" not in stream.text
    finally:
        await stream.close()


def test_bootstrap_admin_only_while_the_console_has_no_admin(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The bootstrap variables stay in the environment: deleting that account once the console has admins of its
    own must stick across restarts; with every admin gone the account comes back (the way back in)."""
    from api.bootstrap import bootstrap_admin_from_settings, migrate_and_seed
    from api.db.engine import make_engine, make_session_factory
    from api.settings import Settings

    settings = Settings(
        _env_file=None,
        env="test",
        secret_key="unit-test-secret-key-0123456789abcdef",
        data_dir=tmp_path,
        seed_demo=False,
        bootstrap_admin_username="ops",
        bootstrap_admin_password="ops-password-123",
    )
    engine = make_engine(settings.database_dsn)
    f = make_session_factory(engine)
    migrate_and_seed(engine, f, settings)

    def active_admins() -> list[str]:
        with f() as db:
            return sorted(
                db.scalars(
                    select(AdminUser.username).where(AdminUser.role == "admin", AdminUser.active.is_(True))
                )
            )

    bootstrap_admin_from_settings(f, settings)  # first start: the console's only way in
    assert active_admins() == ["ops"]
    ensure_admin(f, "alice", "alice-password-1")
    with f() as db:  # alice deletes the shared bootstrap account (what DELETE /admin/users/{id} does)
        db.execute(
            update(AdminUser)
            .where(AdminUser.username == "ops")
            .values(active=False, username="ops#deleted-1")
        )
        db.commit()
    bootstrap_admin_from_settings(f, settings)  # restart with the same environment
    assert active_admins() == ["alice"]
    with f() as db:
        db.execute(update(AdminUser).where(AdminUser.username == "alice").values(active=False))
        db.commit()
    bootstrap_admin_from_settings(f, settings)  # no admin left: the bootstrap account is the way back
    assert active_admins() == ["ops"]
    engine.dispose()


async def test_visitor_event_stream_ends_when_the_session_expires(  # type: ignore[no-untyped-def]
    app_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream outlives keep-alives and still delivers (the first keep-alive timeout used to close the event
    subscription: every stream broke 15 s after its last event). An open tab kept its stream (a pub/sub
    connection) for a conversation whose session had expired; it now ends at the next keep-alive, and the
    widget's reconnect finds the session gone and says so."""
    from api.routes import public

    monkeypatch.setattr(public, "SSE_KEEPALIVE_S", 0.05)
    app, client = app_client
    services = app.state.services
    r = await client.post("/api/v1/chat", json={"message": "你好"})
    sid, token = r.json()["session_id"], r.json()["session_token"]
    stream = AsgiStream(app, f"/api/v1/sessions/{sid}/events", {"X-Session-Token": token})
    try:
        await stream.wait_for(": connected")
        await asyncio.sleep(0.3)  # several keep-alives: the stream lives on, and still delivers
        assert not stream.ended.is_set() and stream.text.count(": keep-alive") >= 2
        await services.events.publish(
            f"session:{sid}", {"event": "message", "data": {"text": "客服小王来了"}}
        )
        await stream.wait_for("客服小王来了")
        assert not stream.ended.is_set()  # alive session: keep-alives, no end
        await services.sessions.delete(sid)  # what the TTL does
        await asyncio.wait_for(stream.ended.wait(), 2)
    finally:
        await stream.close()
