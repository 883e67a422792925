"""Shared by the deployment tests: the repository root, the validator script as a module, one-document lookup, a
Dockerfile stage's instructions, and the check of a Redis server started the way a manifest starts it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def load_script(name: str, path: Path) -> ModuleType:
    """Import a script that is not in a package (scripts/, deploy/) as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


vd = load_script("validate_deploy", ROOT / "scripts" / "validate_deploy.py")


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, got {len(hits)}"
    return hits[0]


def dockerfile_stage(dockerfile: Path, target: str) -> list[str]:
    """Instructions of one stage (FROM ... AS target up to the next FROM)."""
    out: list[str] = []
    inside = False
    for _, instruction in vd._instructions(dockerfile):
        words = instruction.split()
        if words[0].upper() == "FROM":
            inside = len(words) >= 4 and words[2].upper() == "AS" and words[3] == target
            continue
        if inside:
            out.append(instruction)
    assert out, f"no stage {target} in {dockerfile.name}"
    return out


def check_redis_started_with_hidden_password(
    server: subprocess.Popen[bytes], port: int, password: str, config: dict[str, str]
) -> None:
    """The Redis server ``server`` (its shell exec'd into redis-server) refuses clients without the password,
    accepts it, runs with ``config``, and has the password neither on its command line nor in its environment
    (where ``ps`` and ``/proc`` would show it)."""
    import redis

    from tests.stack.harness import listening, wait_for

    wait_for(lambda: listening(port), 10, "redis-server")
    try:
        redis.Redis(port=port).ping()
        raise AssertionError("redis-server answered a client without the password")
    except redis.exceptions.AuthenticationError:
        pass
    client = redis.Redis(port=port, password=password)
    assert client.ping() is True
    for key, value in config.items():
        assert client.config_get(key) == {key: value}
    client.close()
    proc = Path(f"/proc/{server.pid}")  # sh exec'd into redis-server: the same process
    assert b"redis-server" in (proc / "cmdline").read_bytes()
    assert password.encode() not in (proc / "cmdline").read_bytes()
    assert password.encode() not in (proc / "environ").read_bytes()
