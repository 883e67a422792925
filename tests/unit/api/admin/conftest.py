"""Admin console fixtures: the app on SQLite + FakeNlu serving, with an admin and an agent logged in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from api_fakes import FakeNlu


@dataclass
class Console:
    app: Any
    client: httpx.AsyncClient
    admin: dict[str, str]
    agent: dict[str, str]
    fake: FakeNlu

    @property
    def services(self) -> Any:
        return self.app.state.services


async def _login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    resp = await client.post("/api/v1/admin/auth/login", json={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


@pytest.fixture
async def console(app_client: Any, fake_nlu: FakeNlu) -> AsyncIterator[Console]:
    from api.bootstrap import ensure_admin

    app, client = app_client
    fake_nlu.reset_indexes()
    factory = app.state.services.session_factory
    ensure_admin(factory, "root", "root-password-1", role="admin")
    ensure_admin(factory, "helper", "agent-password-1", role="agent")
    yield Console(
        app,
        client,
        await _login(client, "root", "root-password-1"),
        await _login(client, "helper", "agent-password-1"),
        fake_nlu,
    )
    fake_nlu.reset_indexes()
