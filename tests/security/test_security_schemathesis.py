"""Property-based fuzzing of every documented operation (schemathesis over the app's own OpenAPI document).

The real app (SQLite in tmp, in-process stores, FakeNlu serving) runs under uvicorn in a thread on a free
loopback port; each operation gets a bounded number of positive (schema-valid) and negative (schema-violating)
examples, called with an admin bearer token so the handlers really run. Checks: no 5xx, documented responses
conform to their schema, and the content type is the documented one. Total budget: well under 2 minutes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from security_world import ADMIN, FakeNlu, make_settings

schemathesis = pytest.importorskip("schemathesis")

EXAMPLES_PER_MODE = 12
# Endless SSE streams: their auth paths are covered by test_security_authz.
SKIP_PATHS = {"/api/v1/sessions/{session_id}/events", "/api/v1/admin/events"}


class _Server:
    def __init__(self, app: Any) -> None:
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_api(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    from api.main import create_app

    settings = make_settings(
        tmp_path,
        rate_session_burst=100_000,
        rate_ip_burst=100_000,
        login_max_failures=1000,
    )
    app = create_app(settings, serving_transport=httpx.ASGITransport(app=FakeNlu()))
    with _Server(app) as url:
        yield app, url


def _make_run(
    op: Any,
    mode: Any,
    strategy: Any,
    auth: dict[str, str],
    checks: list[Any],
    failures: list[str],
    calls: dict[str, int],
) -> Any:
    from hypothesis import HealthCheck, Phase, given, settings

    label = f"{op.method.upper()} {op.path} [{mode.value}]"

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        headers = dict(case.headers or {})
        if "authorization" not in {k.lower() for k in headers}:
            headers.update(auth)
        response = case.call(headers=headers, timeout=10)
        calls["n"] += 1
        if response.status_code >= 500:
            calls["5xx"] += 1
        try:
            case.validate_response(response, checks=checks)
        except Exception as exc:  # collect every operation's failure, not only the first
            first = str(exc).strip().splitlines()[:8]
            failures.append(f"{label}: " + " | ".join(first))
            raise

    return run


def test_fuzz_openapi_no_5xx_and_conforming(live_api: tuple[Any, str]) -> None:
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

    app, url = live_api
    token = httpx.post(
        f"{url}/api/v1/admin/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=10
    ).json()["access_token"]
    spec = httpx.get(f"{url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(spec)
    schema.config.update(base_url=url)
    auth = {"Authorization": f"Bearer {token}"}
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]

    failures: list[str] = []
    calls = {"n": 0, "5xx": 0}
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 35, "the OpenAPI document lost operations"
    started = time.monotonic()
    for op in operations:
        if op.path in SKIP_PATHS:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                strategy = op.as_strategy(generation_mode=mode)
            except Exception:  # some operations have nothing to violate in negative mode
                continue

            run = _make_run(op, mode, strategy, auth, checks, failures, calls)
            try:
                run()
            except Unsatisfiable:
                continue  # nothing in this operation can be made invalid (negative mode) / no valid input
            except Exception as exc:
                if not failures or not failures[-1].startswith(
                    f"{op.method.upper()} {op.path} [{mode.value}]"
                ):
                    failures.append(
                        f"{op.method.upper()} {op.path} [{mode.value}]: runner error {exc!r}"[:400]
                    )
    elapsed = time.monotonic() - started
    assert calls["n"] >= 300, calls
    assert elapsed < 150, f"fuzzing took {elapsed:.0f} s"
    assert not failures, f"{len(failures)} failing operations ({calls}):\n" + "\n".join(sorted(set(failures)))
