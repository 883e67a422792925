"""Console auth: scrypt hashes, signed expiring tokens, lockout, roles, user management + audit."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from api.auth import TokenSigner, hash_password, verify_password
from api.bootstrap import ensure_admin
from api.db.models import AuditLog
from api.errors import AppError


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
    with f() as db:
        actions = [a.action for a in db.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == ["user.create", "user.delete"]


def test_signer_default_time_is_now() -> None:
    signer = TokenSigner("k" * 40, ttl_s=5)
    claims = signer.verify(signer.issue(1, "a", "admin"))
    assert claims.expires_at - int(time.time()) <= 5
