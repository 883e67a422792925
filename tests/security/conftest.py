"""Fixtures of tests/security: the real app in-process with FakeNlu (helpers in security_world.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from security_world import ADMIN, AGENT, CLIENT_IP, FakeNlu, World, login, make_settings, start_visitor


@pytest.fixture(scope="session")
def fake_nlu_app() -> FakeNlu:
    return FakeNlu()


@pytest.fixture
def fake_nlu(fake_nlu_app: FakeNlu) -> FakeNlu:
    fake_nlu_app.requests.clear()
    fake_nlu_app.fail_with = None
    fake_nlu_app.delay_s = 0.0
    return fake_nlu_app


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def app_client(
    tmp_path: Path, fake_nlu: FakeNlu, settings_overrides: dict[str, Any]
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    from api.main import create_app

    app = create_app(
        make_settings(tmp_path, **settings_overrides), serving_transport=httpx.ASGITransport(app=fake_nlu)
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=30) as client:
            yield app, client


@pytest.fixture
async def world(app_client: tuple[Any, httpx.AsyncClient], fake_nlu: FakeNlu) -> World:
    app, client = app_client
    admin_token = await login(client, ADMIN)
    r = await client.post(
        "/api/v1/admin/users",
        json={"username": AGENT[0], "password": AGENT[1], "role": "agent"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert r.status_code == 201, r.text
    agent_token = await login(client, AGENT)
    a = await start_visitor(client, "你好")
    b = await start_visitor(client, "在吗")
    return World(app, client, fake_nlu, admin_token, agent_token, a, b)
