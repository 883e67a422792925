"""Shared helpers of tests/security (imported by conftest.py and the tests; a unique module name, unlike
``conftest``). Security tests run the real ASGI app in-process (SQLite in tmp, in-process stores) with the FakeNlu serving
of tests/unit/api/api_fakes.py on an httpx.ASGITransport: no Ray, no services, part of `make test`."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

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
