"""docker compose secrets: files made by scripts/compose_secrets.sh, mounted at /run/secrets/<name> and read by
each program without passing through an environment variable or a command-line argument."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.stack.harness import free_port
from tests.unit.deploy.common import ROOT, check_redis_started_with_hidden_password

GENERATOR = ROOT / "scripts" / "compose_secrets.sh"
RUN_SECRETS = re.compile(r"/run/secrets/([a-z_]+)")


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return compose


def _generate(directory: Path) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "XIAOKE_SECRETS_DIR": str(directory)}
    subprocess.run(["bash", str(GENERATOR)], env=env, check=True, capture_output=True, timeout=30)
    return {p.name: p.read_text(encoding="utf-8") for p in directory.iterdir()}


def _interpolate(value: str) -> str:
    """Compose interpolation with an empty .env: ${VAR:-default} -> default, $$ -> $."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return value.replace("$$", "$")


def test_generator_creates_every_compose_secret_and_never_overwrites_one(tmp_path: Path) -> None:
    compose = _compose()
    directory = tmp_path / "secrets"
    values = _generate(directory)
    assert set(values) == set(compose["secrets"])
    for name, spec in compose["secrets"].items():
        assert spec == {"file": f"${{XIAOKE_SECRETS_DIR:-./secrets}}/{name}"}
        assert re.fullmatch(r"[A-Za-z0-9_-]{48}\n", values[name]), name
        # bind-mounted with the host mode: readable by the containers' non-root users
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o644
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert len(set(values.values())) == len(values)
    (directory / "order_webhook_secret").write_text("the-shop's-secret\n", encoding="utf-8")
    (directory / "redis_password").unlink()
    again = _generate(directory)
    assert again["order_webhook_secret"] == "the-shop's-secret\n"
    assert again["mysql_password"] == values["mysql_password"]
    assert again["redis_password"] != values["redis_password"]  # only the missing one is new


def test_every_service_mounts_the_secrets_it_reads() -> None:
    for name, svc in _compose()["services"].items():
        text = yaml.safe_dump({k: svc.get(k) for k in ("environment", "command", "healthcheck")})
        read = set(RUN_SECRETS.findall(text))
        assert read <= set(svc.get("secrets") or []), f"{name} reads {read} but mounts {svc.get('secrets')}"


def test_compose_api_settings_load_from_the_secret_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API's compose environment (api and migrations) with the generated files in place of /run/secrets:
    production settings load, and the MySQL/Redis passwords reach the connection URLs."""
    from api.settings import Settings

    values = {k: v.strip() for k, v in _generate(tmp_path / "secrets").items()}
    for service in ("api", "migrations"):
        env = {k: _interpolate(str(v)) for k, v in _compose()["services"][service]["environment"].items()}
        for key in [k for k in os.environ if k.startswith("API_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, RUN_SECRETS.sub(lambda m: str(tmp_path / "secrets" / m.group(1)), value))
        s = Settings()
        assert s.env == "production"
        assert s.secret_key.get_secret_value() == values["api_secret_key"]
        url = make_url(s.database_dsn)
        assert (url.username, url.password, url.host) == ("xiaoke", values["mysql_password"], "mysql")
        assert s.redis_dsn == f"redis://:{values['redis_password']}@redis:6379/0"
        assert s.order_webhook_secret is not None
        assert s.identity_key == values["api_identity_secret"]


@pytest.fixture
def redis_command(tmp_path: Path) -> tuple[list[str], int, str]:
    """The compose redis command, runnable here: its shell script with compose's $$ unescaped, the secret file
    in tmp_path, the image's docker-entrypoint.sh (which drops to the redis user, then execs its arguments)
    as a plain exec, and a free loopback port plus a data directory in tmp_path."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    command = _compose()["services"]["redis"]["command"]
    assert command[:2] == ["sh", "-ec"]
    password = "from-the-secret-file-5Qx"
    (tmp_path / "redis_password").write_text(password + "\n", encoding="utf-8")
    shim = tmp_path / "bin" / "docker-entrypoint.sh"
    shim.parent.mkdir()
    shim.write_text('#!/bin/sh\nexec "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    port = free_port()
    script = command[2].replace("$$", "$").replace("/run/secrets/", f"{tmp_path}/")
    script = script.replace(
        "redis-server ", f"redis-server --port {port} --bind 127.0.0.1 --dir {tmp_path} ", 1
    )
    return ["sh", "-ec", script], port, password


def test_compose_redis_reads_its_password_from_the_secret_file_only(
    redis_command: tuple[list[str], int, str], tmp_path: Path
) -> None:

    argv, port, password = redis_command
    env = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        check_redis_started_with_hidden_password(
            server, port, password, {"appendonly": "yes", "appendfsync": "everysec"}
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
