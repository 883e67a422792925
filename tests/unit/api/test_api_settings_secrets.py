"""Secrets of the API settings: from files named by API_<NAME>_FILE (docker compose `secrets:`, the Kubernetes
Secret volume) or from the environment, passwords kept out of the URLs, never echoed in errors."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from pydantic_settings import SettingsError

from api.db.engine import make_engine
from api.services import make_redis
from api.settings import Settings
from tests.stack.harness import free_port, listening, wait_for

ROOT = Path(__file__).resolve().parents[3]
KEY = "k3y-from-a-file-0123456789abcdefghij"  # >= 32 characters
# characters a URL would need escaped: the passwords no longer have to be URL-safe
DB_PASSWORD = "p@ss:w/rd#?%&="
REDIS_PASSWORD = "r3d!s p@ss/%"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("API_ENV", "API_SECRET_KEY", "API_DATABASE_URL", "API_DATABASE_PASSWORD", "API_REDIS_URL",
                 "API_REDIS_PASSWORD", "API_ORDER_WEBHOOK_SECRET", "API_ORDER_LOOKUP", "API_IDENTITY_SECRET"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name + "_FILE", raising=False)


def _secret(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value + "\n", encoding="utf-8")  # as `echo` / scripts/compose_secrets.sh write them
    return str(path)


def test_secret_settings_are_read_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_ENV", "production")
    monkeypatch.setenv("API_SECRET_KEY_FILE", _secret(tmp_path, "api_secret_key", KEY))
    monkeypatch.setenv("API_DATABASE_URL", "mysql+pymysql://xiaoke@mysql:3306/xiaoke?charset=utf8mb4")
    monkeypatch.setenv("API_DATABASE_PASSWORD_FILE", _secret(tmp_path, "mysql_password", DB_PASSWORD))
    monkeypatch.setenv("API_REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("API_REDIS_PASSWORD_FILE", _secret(tmp_path, "redis_password", REDIS_PASSWORD))
    monkeypatch.setenv("API_ORDER_WEBHOOK_SECRET_FILE", _secret(tmp_path, "hook", "h" * 20))
    monkeypatch.setenv("API_IDENTITY_SECRET_FILE", _secret(tmp_path, "api_identity_secret", "i" * 40))
    s = Settings()
    assert s.secret_key.get_secret_value() == KEY  # the file's trailing newline is not part of it
    assert s.order_webhook_secret is not None and s.order_webhook_secret.get_secret_value() == "h" * 20
    assert s.identity_key == "i" * 40
    engine = make_engine(s.database_dsn)
    try:
        assert engine.url.password == DB_PASSWORD and engine.url.username == "xiaoke"
        assert engine.url.host == "mysql" and engine.url.database == "xiaoke"
    finally:
        engine.dispose()
    assert s.redis_dsn is not None
    kwargs = make_redis(s.redis_dsn).connection_pool.connection_kwargs
    assert kwargs["password"] == REDIS_PASSWORD and kwargs["host"] == "redis" and kwargs["db"] == 0
    for secret in (KEY, DB_PASSWORD, REDIS_PASSWORD, "i" * 40):
        assert secret not in repr(s)


def test_the_kubernetes_form_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets as environment variables (a secretKeyRef), passwords inside the URLs: still accepted, though
    k8s/base/api.yaml now mounts them as files (API_<NAME>_FILE; every env name there is a setting)."""
    monkeypatch.setenv("API_ENV", "production")
    monkeypatch.setenv("API_SECRET_KEY", KEY)
    monkeypatch.setenv("API_DATABASE_URL", "mysql+pymysql://xiaoke:pw1@mysql:3306/xiaoke?charset=utf8mb4")
    monkeypatch.setenv("API_REDIS_URL", "redis://:pw2@redis:6379/0")
    s = Settings()
    assert s.database_dsn == "mysql+pymysql://xiaoke:pw1@mysql:3306/xiaoke?charset=utf8mb4"
    assert s.redis_dsn == "redis://:pw2@redis:6379/0"
    fields = set(Settings.model_fields)
    for doc in yaml.safe_load_all((ROOT / "k8s" / "base" / "api.yaml").read_text(encoding="utf-8")):
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            for env in container.get("env", []):
                name = env["name"].removeprefix("API_").lower()
                assert name in fields or name.removesuffix("_file") in fields, env["name"]


def test_secret_file_errors_name_the_variable_never_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_SECRET_KEY_FILE", _secret(tmp_path, "key", KEY))
    monkeypatch.setenv("API_SECRET_KEY", KEY)
    with pytest.raises(SettingsError, match="API_SECRET_KEY and API_SECRET_KEY_FILE are both set"):
        Settings()
    monkeypatch.delenv("API_SECRET_KEY")
    monkeypatch.setenv("API_SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match=r"API_SECRET_KEY_FILE: cannot read .*missing"):
        Settings()
    monkeypatch.setenv("API_SECRET_KEY_FILE", _secret(tmp_path, "empty", ""))
    with pytest.raises(SettingsError, match="is empty"):
        Settings()
    monkeypatch.setenv("API_SECRET_KEY_FILE", _secret(tmp_path, "short", "short-but-secret-Q7"))
    monkeypatch.setenv("API_ENV", "production")
    monkeypatch.setenv("API_DATABASE_URL", "mysql+pymysql://xiaoke:url-pw-Z9@mysql/xiaoke")
    with pytest.raises(ValidationError) as refused:
        Settings()
    # pydantic prints the raw inputs of a refused model by default: the secrets among them
    assert "API_SECRET_KEY must be set" in str(refused.value)
    assert "short-but-secret-Q7" not in str(refused.value) and "url-pw-Z9" not in str(refused.value)


def test_file_variables_only_feed_secret_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT_FILE", _secret(tmp_path, "port", "9999"))
    assert Settings().port == 8000


def test_a_password_lives_in_one_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_DATABASE_PASSWORD_FILE", _secret(tmp_path, "pw", DB_PASSWORD))
    with pytest.raises(ValidationError, match="API_DATABASE_PASSWORD is set but API_DATABASE_URL is not"):
        Settings()
    monkeypatch.setenv("API_DATABASE_URL", "mysql+pymysql://xiaoke:other@mysql/xiaoke")
    with pytest.raises(ValidationError, match="API_DATABASE_URL carries a password"):
        Settings()
    monkeypatch.delenv("API_DATABASE_PASSWORD_FILE")
    monkeypatch.setenv("API_REDIS_URL", "redis://:other@redis:6379/0")
    monkeypatch.setenv("API_REDIS_PASSWORD", "x")
    with pytest.raises(ValidationError, match="API_REDIS_URL carries a password"):
        Settings()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[int]:
    """A throwaway redis-server with requirepass REDIS_PASSWORD on a free loopback port (the shared Redis has
    no password)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server not installed")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path
    )
    assert proc.stdin is not None
    proc.stdin.write(f'port {port}\nbind 127.0.0.1\nsave ""\nrequirepass "{REDIS_PASSWORD}"\n'.encode())
    proc.stdin.close()
    try:
        wait_for(lambda: listening(port), 10, "redis-server")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_redis_password_from_a_file_authenticates(
    private_redis: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis.exceptions import AuthenticationError, ResponseError

    monkeypatch.setenv("API_REDIS_URL", f"redis://127.0.0.1:{private_redis}/0")
    s = Settings()
    assert s.redis_dsn is not None
    client = make_redis(s.redis_dsn)
    try:
        with pytest.raises((AuthenticationError, ResponseError), match="(?i)auth"):
            await client.ping()
    finally:
        await client.aclose()
    monkeypatch.setenv("API_REDIS_PASSWORD_FILE", _secret(tmp_path, "redis_password", REDIS_PASSWORD))
    s = Settings()
    assert s.redis_dsn is not None
    client = make_redis(s.redis_dsn)
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()
