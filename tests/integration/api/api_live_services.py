"""Connection settings of the real services used by the API integration tests (override by env)."""

from __future__ import annotations

import os

MYSQL_HOST = os.environ.get("XIAOKE_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("XIAOKE_TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("XIAOKE_TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("XIAOKE_TEST_MYSQL_PASSWORD", "")
REDIS_URL = os.environ.get("XIAOKE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def mysql_url(db: str, host: str = MYSQL_HOST, port: int = MYSQL_PORT) -> str:
    auth = MYSQL_USER + (f":{MYSQL_PASSWORD}" if MYSQL_PASSWORD else "")
    return f"mysql+pymysql://{auth}@{host}:{port}/{db}?charset=utf8mb4"
