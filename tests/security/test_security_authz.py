"""Authorization: who may call what, session-token binding, bearer token integrity, brute force, rate limits.

The matrix is table-driven: ``ROUTES`` has one row per (method, path) of the app. ``app.routes`` is enumerated,
so a route added without a row here fails ``test_every_route_has_a_row`` (decide its access class first).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from security_world import ADMIN, AGENT, CLIENT_IP, World, login, start_visitor

from tests.fixtures.asgi import AsgiStream

Access = Literal["public", "visitor", "agent", "admin"]
Principal = Literal["anonymous", "visitor", "other_visitor", "agent", "admin"]


# A request builder gets the world and returns (path, kwargs for httpx).
Req = Callable[[World], tuple[str, dict[str, Any]]]


def _p(path: str, **kw: Any) -> Req:
    return lambda w: (path.format(sid=w.a.session_id, mid=w.a.message_id), dict(kw))


def _feedback(w: World) -> tuple[str, dict[str, Any]]:
    return "/api/v1/feedback", {
        "json": {"message_id": w.a.message_id, "rating": "up", "session_id": w.a.session_id}
    }


LOGIN = {"json": {"username": ADMIN[0], "password": ADMIN[1]}}
STREAM = {"stream": True}

# (METHOD, route path) -> (access class, request builder). Mounts use method "MOUNT".
ROUTES: dict[tuple[str, str], tuple[Access, Req]] = {
    ("GET", "/openapi.json"): ("public", _p("/openapi.json")),
    ("GET", "/docs"): ("public", _p("/docs")),
    ("GET", "/docs/oauth2-redirect"): ("public", _p("/docs/oauth2-redirect")),
    ("GET", "/healthz"): ("public", _p("/healthz")),
    ("GET", "/readyz"): ("public", _p("/readyz")),
    ("GET", "/metrics"): ("public", _p("/metrics")),
    ("GET", "/admin"): ("public", _p("/admin")),  # console SPA shell (static; data needs a token)
    ("GET", "/admin/{path:path}"): ("public", _p("/admin/faqs")),
    ("GET", "/"): ("public", _p("/")),  # the demo page (the demo customer's signed identity in development)
    ("GET", "/index.html"): ("public", _p("/index.html")),
    ("MOUNT", ""): ("public", _p("/widget.js")),  # widget static files
    ("POST", "/api/v1/chat"): ("public", _p("/api/v1/chat", json={"message": "你好"})),
    ("POST", "/api/v1/admin/auth/login"): ("public", _p("/api/v1/admin/auth/login", **LOGIN)),
    # visitor: bound to the session token (X-Session-Token); anything else -> 404
    ("GET", "/api/v1/sessions/{session_id}/history"): ("visitor", _p("/api/v1/sessions/{sid}/history")),
    ("GET", "/api/v1/sessions/{session_id}/events"): (
        "visitor",
        _p("/api/v1/sessions/{sid}/events", **STREAM),
    ),
    ("POST", "/api/v1/sessions/{session_id}/handoff"): ("visitor", _p("/api/v1/sessions/{sid}/handoff")),
    ("POST", "/api/v1/sessions/{session_id}/rating"): (
        "visitor",
        _p("/api/v1/sessions/{sid}/rating", json={"rating": 5}),
    ),
    ("POST", "/api/v1/feedback"): ("visitor", _feedback),
    # console, agents and admins
    ("GET", "/api/v1/admin/me"): ("agent", _p("/api/v1/admin/me")),
    ("GET", "/api/v1/admin/handoffs"): ("agent", _p("/api/v1/admin/handoffs")),
    ("POST", "/api/v1/admin/handoffs/{ticket_id}/take"): ("agent", _p("/api/v1/admin/handoffs/t_nope/take")),
    ("POST", "/api/v1/admin/handoffs/{ticket_id}/messages"): (
        "agent",
        _p("/api/v1/admin/handoffs/t_nope/messages", json={"text": "您好"}),
    ),
    ("POST", "/api/v1/admin/handoffs/{ticket_id}/release"): (
        "agent",
        _p("/api/v1/admin/handoffs/t_nope/release"),
    ),
    ("GET", "/api/v1/admin/events"): ("agent", _p("/api/v1/admin/events", **STREAM)),
    ("POST", "/api/v1/admin/playground"): ("agent", _p("/api/v1/admin/playground", json={"message": "你好"})),
    ("GET", "/api/v1/admin/conversations"): ("agent", _p("/api/v1/admin/conversations")),
    ("GET", "/api/v1/admin/conversations/{session_id}"): ("agent", _p("/api/v1/admin/conversations/{sid}")),
    # console, admins only
    ("GET", "/api/v1/admin/faqs"): ("admin", _p("/api/v1/admin/faqs")),
    ("GET", "/api/v1/admin/faqs/categories"): ("admin", _p("/api/v1/admin/faqs/categories")),
    ("GET", "/api/v1/admin/faqs/export"): ("admin", _p("/api/v1/admin/faqs/export")),
    ("POST", "/api/v1/admin/faqs/import"): (
        "admin",
        _p("/api/v1/admin/faqs/import", files={"file": ("x.txt", b"hello", "text/plain")}),
    ),
    ("POST", "/api/v1/admin/faqs"): ("admin", _p("/api/v1/admin/faqs", json={})),
    ("GET", "/api/v1/admin/faqs/{faq_id}"): ("admin", _p("/api/v1/admin/faqs/nope")),
    ("PUT", "/api/v1/admin/faqs/{faq_id}"): ("admin", _p("/api/v1/admin/faqs/nope", json={})),
    ("DELETE", "/api/v1/admin/faqs/{faq_id}"): ("admin", _p("/api/v1/admin/faqs/nope")),
    ("POST", "/api/v1/admin/index/publish"): ("admin", _p("/api/v1/admin/index/publish")),
    ("GET", "/api/v1/admin/index"): ("admin", _p("/api/v1/admin/index")),
    ("POST", "/api/v1/admin/index/{version}/activate"): ("admin", _p("/api/v1/admin/index/nope/activate")),
    ("GET", "/api/v1/admin/templates"): ("admin", _p("/api/v1/admin/templates")),
    ("PUT", "/api/v1/admin/templates/{key}"): (
        "admin",
        _p("/api/v1/admin/templates/no:such", json={"variants": ["x"]}),
    ),
    ("GET", "/api/v1/admin/unanswered"): ("admin", _p("/api/v1/admin/unanswered")),
    ("POST", "/api/v1/admin/unanswered/{cluster_id}/accept"): (
        "admin",
        _p("/api/v1/admin/unanswered/999999/accept", json={"action": "new_faq", "answer": "好的"}),
    ),
    ("GET", "/api/v1/admin/analytics"): ("admin", _p("/api/v1/admin/analytics")),
    ("GET", "/api/v1/admin/users"): ("admin", _p("/api/v1/admin/users")),
    ("POST", "/api/v1/admin/users"): ("admin", _p("/api/v1/admin/users", json={})),
    ("DELETE", "/api/v1/admin/users/{user_id}"): ("admin", _p("/api/v1/admin/users/999999")),
    # last: the visitor's 2xx ends session A, which the rows above need alive
    ("DELETE", "/api/v1/sessions/{session_id}"): ("visitor", _p("/api/v1/sessions/{sid}")),
}

# Expected outcome per access class and principal: "ok" = neither 401/403 nor 5xx (the handler ran; a 404 for
# a made-up id or a 422 for an empty body is fine), otherwise the exact status.
EXPECT: dict[Access, dict[Principal, int | str]] = {
    "public": {"anonymous": "ok", "visitor": "ok", "other_visitor": "ok", "agent": "ok", "admin": "ok"},
    "visitor": {"anonymous": 404, "visitor": "2xx", "other_visitor": 404, "agent": 404, "admin": 404},
    "agent": {"anonymous": 401, "visitor": 401, "other_visitor": 401, "agent": "ok", "admin": "ok"},
    "admin": {"anonymous": 401, "visitor": 401, "other_visitor": 401, "agent": 403, "admin": "ok"},
}


def app_route_keys(app: Any) -> set[tuple[str, str]]:
    from fastapi.routing import iter_route_contexts
    from starlette.routing import Mount

    keys: set[tuple[str, str]] = set()
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        if isinstance(route, Mount):
            keys.add(("MOUNT", str(route.path)))
            continue
        for method in getattr(rc, "methods", None) or getattr(route, "methods", None) or ():
            if method != "HEAD":
                keys.add((str(method), str(rc.path)))
    return keys


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    """Built console + widget dirs so the static routes exist too."""
    console, widget = tmp_path / "console", tmp_path / "widget"
    console.mkdir()
    widget.mkdir()
    (console / "index.html").write_text("<!doctype html><title>console</title>", encoding="utf-8")
    (widget / "index.html").write_text("<!doctype html><title>widget</title>", encoding="utf-8")
    return {"console_dist": console, "widget_dist": widget}


def headers_for(w: World, who: Principal) -> dict[str, str]:
    return {
        "anonymous": {},
        "visitor": w.a.headers,
        "other_visitor": w.b.headers,
        "agent": w.bearer(w.agent_token),
        "admin": w.bearer(w.admin_token),
    }[who]


async def first_status(app: Any, method: str, path: str, headers: dict[str, str]) -> int:
    """Status of a (possibly endless, SSE) response: call the ASGI app and stop at http.response.start."""
    stream = AsgiStream(app, path, headers, method=method, client=(CLIENT_IP, 5555))
    try:
        return await asyncio.wait_for(asyncio.shield(stream.status), timeout=10)
    finally:
        await stream.close()


async def call(w: World, method: str, build: Req, who: Principal) -> int:
    path, kwargs = build(w)
    headers = {**headers_for(w, who), **kwargs.pop("headers", {})}
    if kwargs.pop("stream", False):
        return await first_status(w.app, method, path, headers)
    r = await w.client.request(method, path, headers=headers, **kwargs)
    return r.status_code


def check(expected: int | str, status: int) -> bool:
    if expected == "ok":
        return status not in (401, 403) and status < 500
    if expected == "2xx":
        return 200 <= status < 300
    return status == expected


async def test_every_route_has_a_row(world: World) -> None:
    missing = sorted(app_route_keys(world.app) - set(ROUTES))
    assert not missing, f"routes without an authorization row in ROUTES: {missing}"


async def test_authorization_matrix(world: World) -> None:
    keys = app_route_keys(world.app)
    failures: list[str] = []
    tested = 0
    order: list[Principal] = ["anonymous", "other_visitor", "visitor", "agent", "admin"]
    for (method, route), (access, build) in ROUTES.items():
        if (method, route) not in keys:
            continue  # e.g. a row kept for a route that only exists in some configurations
        m = "GET" if method == "MOUNT" else method
        for who in order:
            expected = EXPECT[access][who]
            status = await call(world, m, build, who)
            tested += 1
            if not check(expected, status):
                failures.append(f"{method} {route} as {who}: got {status}, expected {expected}")
    assert tested >= 5 * 40
    assert not failures, "\n".join(failures)


# ---- session-token binding --------------------------------------------------------------------------------
def _one_char_off(token: str) -> str:
    """The token with its last character replaced by a different one (never equal to the real token)."""
    return token[:-1] + ("B" if token.endswith("A") else "A")


async def test_other_visitors_session_is_invisible(world: World) -> None:
    c, a, b = world.client, world.a, world.b
    sid = a.session_id
    for headers in (
        {},
        {"X-Session-Token": "x" * 43},
        b.headers,
        {"X-Session-Token": _one_char_off(a.token)},
    ):
        r = await c.get(f"/api/v1/sessions/{sid}/history", headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "SESSION_NOT_FOUND", r.text
        assert a.token not in r.text and "你好" not in r.text
        assert await first_status(world.app, "GET", f"/api/v1/sessions/{sid}/events", headers) == 404
        r = await c.post(f"/api/v1/sessions/{sid}/handoff", headers=headers)
        assert r.status_code == 404, r.text
        r = await c.post(f"/api/v1/sessions/{sid}/rating", json={"rating": 1}, headers=headers)
        assert r.status_code == 404, r.text
        for body in (
            {"message_id": a.message_id, "rating": "down", "session_id": sid},
            {"message_id": a.message_id, "rating": "down"},
        ):
            r = await c.post("/api/v1/feedback", json=body, headers=headers)
            assert r.status_code == 404, (headers, body, r.text)
        # continuing someone else's conversation, or ending it
        r = await c.post("/api/v1/chat", json={"message": "我的订单", "session_id": sid}, headers=headers)
        assert r.status_code == 404, r.text
        r = await c.delete(f"/api/v1/sessions/{sid}", headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "SESSION_NOT_FOUND", r.text
    # B's own message id with A's session id and B's token: also refused
    r = await c.post(
        "/api/v1/feedback",
        json={"message_id": b.message_id, "rating": "up", "session_id": sid},
        headers=b.headers,
    )
    assert r.status_code == 404
    # nothing leaked into A's conversation, nothing opened for A, and it was not ended
    r = await c.get(f"/api/v1/sessions/{sid}/history", headers=a.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["handoff"]["status"] == "none"
    assert [m["role"] for m in body["messages"]] == ["user", "bot"]


async def test_unknown_session_and_wrong_token_are_indistinguishable(world: World) -> None:
    r1 = await world.client.get(f"/api/v1/sessions/{world.a.session_id}/history", headers=world.b.headers)
    r2 = await world.client.get(
        "/api/v1/sessions/s_doesnotexist000000000000/history", headers=world.b.headers
    )
    assert r1.status_code == r2.status_code == 404
    assert r1.json()["error"]["code"] == r2.json()["error"]["code"]


# ---- bearer tokens ----------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_expired_and_tampered_tokens_are_rejected(world: World) -> None:
    c = world.client
    signer = world.services.signer
    me = "/api/v1/admin/me"
    assert (await c.get(me, headers=world.bearer(world.agent_token))).status_code == 200
    agent_id = (await c.get(me, headers=world.bearer(world.agent_token))).json()["id"]

    expired = signer.issue(agent_id, AGENT[0], "agent", now=time.time() - signer.ttl_s - 5)
    version, payload, sig = world.agent_token.split(".")
    claims = json.loads(_unb64(payload))
    forged_role = f"{version}.{_b64(json.dumps({**claims, 'role': 'admin'}).encode())}.{sig}"
    forged_exp = f"{version}.{_b64(json.dumps({**claims, 'exp': claims['exp'] + 10**6}).encode())}.{sig}"
    flipped = world.agent_token[:-2] + ("A" if world.agent_token[-2] != "A" else "B") + world.agent_token[-1]
    from api.auth import TokenSigner

    other_key = TokenSigner("another-secret-key-0123456789abcdef-xyz", 3600).issue(
        agent_id, AGENT[0], "admin"
    )
    bad = {
        "expired": expired,
        "forged_role": forged_role,
        "forged_exp": forged_exp,
        "flipped_sig": flipped,
        "other_key": other_key,
        "no_sig": f"{version}.{payload}",
        "garbage": "not-a-token",
        "empty_sig": f"{version}.{payload}.",
        "alg_none": f"v0.{payload}.{sig}",
    }
    for name, token in bad.items():
        for path in (me, "/api/v1/admin/users"):
            r = await c.get(path, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, (name, path, r.status_code)
            assert r.json()["error"]["code"] == "UNAUTHORIZED"
    for header in ("Basic abc", "Bearer", "bearer  ", world.admin_token):
        r = await c.get(me, headers={"Authorization": header})
        assert r.status_code == 401, header
    # a signed agent token never reaches admin-only routes
    assert (await c.get("/api/v1/admin/users", headers=world.bearer(world.agent_token))).status_code == 403


async def test_deactivated_users_token_stops_working(world: World) -> None:
    c = world.client
    agent_id = (await c.get("/api/v1/admin/me", headers=world.bearer(world.agent_token))).json()["id"]
    r = await c.delete(f"/api/v1/admin/users/{agent_id}", headers=world.bearer(world.admin_token))
    assert r.status_code == 204
    assert (await c.get("/api/v1/admin/me", headers=world.bearer(world.agent_token))).status_code == 401
    r = await c.post("/api/v1/admin/auth/login", json={"username": AGENT[0], "password": AGENT[1]})
    assert r.status_code == 401


# ---- brute force ------------------------------------------------------------------------------------------
async def test_login_brute_force_locks_the_account(world: World) -> None:
    c = world.client
    codes = []
    for i in range(5):
        r = await c.post("/api/v1/admin/auth/login", json={"username": ADMIN[0], "password": f"wrong-{i}"})
        codes.append((r.status_code, r.json()["error"]["code"]))
    assert codes == [(401, "INVALID_CREDENTIALS")] * 5
    # locked now: even the right password is refused, with Retry-After
    r = await c.post("/api/v1/admin/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 429 and r.json()["error"]["code"] == "ACCOUNT_LOCKED"
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= world.services.settings.login_lock_s + 1
    # an existing token is unaffected by the lock of new logins
    assert (await c.get("/api/v1/admin/me", headers=world.bearer(world.admin_token))).status_code == 200


async def test_login_is_rate_limited_per_ip(world: World) -> None:
    c = world.client
    statuses = []
    for i in range(12):  # the world fixture already logged in twice from this IP (bucket: 10/min)
        r = await c.post("/api/v1/admin/auth/login", json={"username": f"nobody{i}", "password": "whatever1"})
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert r.json()["error"]["code"] == "RATE_LIMITED"
            assert int(r.headers["Retry-After"]) >= 1
            break
    assert statuses[-1] == 429, statuses
    assert len(statuses) <= 9
    # another client IP is not affected
    transport = httpx.ASGITransport(app=world.app, client=("198.51.100.3", 4444))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as other:
        assert (await login(other, ADMIN)).startswith("v1.")


# ---- chat rate limits -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings_overrides",
    [{"rate_session_burst": 3, "rate_session_per_min": 6, "rate_ip_burst": 1000, "rate_ip_per_min": 6000}],
)
async def test_chat_rate_limited_per_session(app_client: tuple[Any, httpx.AsyncClient]) -> None:
    _app, c = app_client
    v = await start_visitor(c)  # session creation is not a session-bucket hit
    statuses = []
    for _ in range(6):
        r = await c.post(
            "/api/v1/chat", json={"message": "包邮吗", "session_id": v.session_id}, headers=v.headers
        )
        statuses.append(r.status_code)
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429, 429], statuses
    assert r.json()["error"]["code"] == "RATE_LIMITED"
    assert int(r.headers["Retry-After"]) >= 1
    # other visitors are not affected
    assert (await c.post("/api/v1/chat", json={"message": "你好"})).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"rate_ip_burst": 5, "rate_ip_per_min": 5}])
async def test_chat_rate_limited_per_ip(app_client: tuple[Any, httpx.AsyncClient]) -> None:
    _app, c = app_client
    statuses = [(await c.post("/api/v1/chat", json={"message": "你好"})).status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}, statuses
    r = await c.post("/api/v1/chat", json={"message": "你好"})
    assert r.headers.get("Retry-After", "").isdigit()
