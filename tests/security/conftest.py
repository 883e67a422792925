"""Security tests run the real ASGI app in-process (SQLite in tmp, in-process stores) with the FakeNlu serving
of tests/unit/api/api_fakes.py on an httpx.ASGITransport: no Ray, no services, part of `make test`."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "api"))

from api_fakes import FakeNlu  # noqa: E402

ADMIN = ("sec-admin", "sec-admin-password-1")
AGENT = ("sec-agent", "sec-agent-password-1")
SECRET_KEY = "security-test-secret-key-0123456789abcdef"
CLIENT_IP = "203.0.113.9"


@dataclass
class Visitor:
    session_id: str
    token: str
    message_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Session-Token": self.token}


@dataclass
class World:
    app: Any
    client: httpx.AsyncClient
    nlu: FakeNlu
    admin_token: str
    agent_token: str
    a: Visitor
    b: Visitor

    @property
    def services(self) -> Any:
        return self.app.state.services

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def make_settings(tmp_path: Path, **overrides: Any) -> Any:
    from api.settings import Settings

    values: dict[str, Any] = {
        "env": "test",
        "secret_key": SECRET_KEY,
        "data_dir": tmp_path,
        "serving_url": "http://serving.test",
        "widget_dist": tmp_path / "no-widget",
        "console_dist": tmp_path / "no-console",
        "bootstrap_admin_username": ADMIN[0],
        "bootstrap_admin_password": ADMIN[1],
        "rate_session_burst": 1000,
        "rate_ip_burst": 1000,
        "rate_ip_per_min": 6000,
        "rate_session_per_min": 6000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def start_visitor(client: httpx.AsyncClient, text: str = "你好") -> Visitor:
    r = await client.post("/api/v1/chat", json={"message": text})
    assert r.status_code == 200, r.text
    body = r.json()
    return Visitor(body["session_id"], body["session_token"], body["message_id"])


async def login(client: httpx.AsyncClient, user: tuple[str, str]) -> str:
    r = await client.post("/api/v1/admin/auth/login", json={"username": user[0], "password": user[1]})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


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
