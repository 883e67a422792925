"""Real MariaDB + Redis for the API room. Each test gets its own database and Redis key prefix, removed afterwards."""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pymysql
import pytest
from redis.asyncio import Redis

# FakeNlu and helpers live with the unit tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "api"))

from api_live_services import MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER, REDIS_URL  # noqa: E402


def _admin_conn() -> pymysql.connections.Connection:
    return pymysql.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password=MYSQL_PASSWORD, charset="utf8mb4"
    )


@pytest.fixture
def mysql_db() -> Iterator[str]:
    """A fresh utf8mb4 database (dropped afterwards); yields its name."""
    name = f"xiaoke_test_{secrets.token_hex(6)}"
    try:
        conn = _admin_conn()
    except pymysql.err.OperationalError:
        pytest.fail("MariaDB is not reachable on 127.0.0.1:3306 -- run `bash scripts/services.sh`")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    conn.close()
    try:
        yield name
    finally:
        conn = _admin_conn()
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
async def redis_client() -> AsyncIterator[tuple[Redis, str]]:
    """(client, key prefix); every key under the prefix is deleted afterwards (never FLUSHALL)."""
    prefix = f"xiaoke-test-{secrets.token_hex(5)}:"
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception:
        pytest.fail("Redis is not reachable on 127.0.0.1:6379 -- run `bash scripts/services.sh`")
    try:
        yield client, prefix
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
