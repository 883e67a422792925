"""Container entrypoint of the inference server (docker compose; not used by KubeRay, which starts Ray itself).

Reads the Serve config of the profile (``serving/config/<profile>.yaml``, written by the serving room), makes
Serve's HTTP proxy listen on all interfaces of the container (the repo's configs bind loopback for local
runs), writes the result to a temp file and ``exec``s the serving room's launcher on it
(``python -m serving --config <file>``: starts Ray without the dashboard, deploys, blocks, logs to stdout).

Env: SERVING_PROFILE (cpu|gpu, default cpu), SERVING_CONFIG (explicit path, overrides the profile),
SERVING_HTTP_HOST (default 0.0.0.0), SERVING_HTTP_PORT (default 8001).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

APP_DIR = Path(os.environ.get("XIAOKE_APP_DIR", "/app"))


def config_path(env: dict[str, str]) -> Path:
    explicit = env.get("SERVING_CONFIG")
    if explicit:
        return Path(explicit)
    profile = env.get("SERVING_PROFILE", "cpu")
    if profile not in ("cpu", "gpu"):
        raise SystemExit(f"SERVING_PROFILE must be cpu or gpu, got {profile!r}")
    return APP_DIR / "serving" / "config" / f"{profile}.yaml"


def render(config: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Return a copy of a Serve config whose HTTP proxy listens where the container needs it."""
    if not isinstance(config, dict) or not isinstance(config.get("applications"), list):
        raise SystemExit("not a Ray Serve config file: no `applications` list")
    out = dict(config)
    http = dict(out.get("http_options") or {})
    http["host"] = env.get("SERVING_HTTP_HOST", "0.0.0.0")
    http["port"] = int(env.get("SERVING_HTTP_PORT", "8001"))
    out["http_options"] = http
    return out


def main() -> None:
    env = dict(os.environ)
    src = config_path(env)
    with src.open(encoding="utf-8") as fh:
        rendered = render(yaml.safe_load(fh), env)
    fd, dst = tempfile.mkstemp(prefix="xiaoke-serve-", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(rendered, fh, sort_keys=False, allow_unicode=True)
    cmd = [sys.executable, "-m", "serving", "--config", dst]
    print(f"[serving-entrypoint] {' '.join(cmd)} (from {src})", file=sys.stderr, flush=True)
    os.execv(sys.executable, cmd)


if __name__ == "__main__":
    main()
