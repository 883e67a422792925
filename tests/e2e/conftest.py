"""Browser tests (marker ``e2e``): Debian chromium, driven by Playwright, against the real stack.

The stack is started once per session by the whole-stack harness (``tests.stack.Stack``): the real inference
server (Ray Serve, ``scripts/serve.sh cpu``) on the tiny but real ONNX bundles of ``tests/fixtures/bundles.py``,
its FAQ index bootstrapped from ``data/demo/faq/faq.jsonl`` (FAISS + jieba BM25, fused), a private Redis, and
the API (``python -m api serve``: embedded SQLite with the demo seed, a bootstrap admin) serving the built
widget and console. Nothing is faked: every answer and suggestion comes from the real retriever.

Ray binds ports on all interfaces, so the session must run inside a private network namespace:
``scripts/in_netns.sh .venv/bin/python -m pytest tests/e2e -m e2e`` (``make e2e``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("XIAOKE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN = ("e2e-admin", "e2e-admin-pass")
SCREENSHOTS = Path(os.environ.get("XIAOKE_SCREENSHOTS", REPO / "artifacts" / "screenshots"))
FAQ_PATH = REPO / "data" / "demo" / "faq" / "faq.jsonl"
# The API's production budget for one /v1/nlu call is 0.8 s (then the reply is `degraded`). Browser, Ray and
# the API share two busy cores here, so the e2e stack allows more: these tests are about behaviour, latency
# is measured by `make bench-api`.
SERVING_TIMEOUT_S = "10"


@pytest.fixture(scope="session")
def demo_faqs() -> dict[str, dict[str, Any]]:
    """The demo FAQ (the API seeds its database from it, serving bootstraps its index from it), by question."""
    rows = [json.loads(line) for line in FAQ_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["question"]: row for row in rows}


@pytest.fixture(scope="session")
def frontend_dist() -> Path:
    dist = REPO / "frontend" / "dist"
    if not os.environ.get("XIAOKE_E2E_SKIP_BUILD") and shutil.which("npm"):
        subprocess.run(["bash", str(REPO / "scripts" / "build_frontend.sh")], check=True, cwd=REPO)
    if not (dist / "widget" / "widget.js").is_file() or not (dist / "console" / "index.html").is_file():
        pytest.skip("frontend not built (needs npm): run `make frontend`")
    return dist


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="session")
def embed_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A third-party page on another origin (static server) that embeds the widget cross-origin."""
    root = tmp_path_factory.mktemp("embed-host")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: run `bash scripts/ensure_tools.sh`")
    return CHROMIUM


@pytest.fixture(scope="session")
def netns() -> None:
    if os.environ.get("XIAOKE_IN_NETNS") != "1":
        pytest.skip("e2e starts Ray: run it in a private network namespace (`make e2e`, scripts/in_netns.sh)")


@pytest.fixture(scope="session")
def live_stack(
    netns: None,
    chromium_path: str,
    frontend_dist: Path,
    embed_host: tuple[str, Path],
    tiny_model_store: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    """The whole stack (real Ray Serve + API + Redis, SQLite), started once for the session."""
    from tests.stack import Stack

    workdir = tmp_path_factory.mktemp("stack")
    t0 = time.monotonic()
    with Stack(
        serving="ray",
        database="sqlite",
        redis=True,
        model_store=tiny_model_store,  # a private copy: serving writes index versions into it
        workdir=workdir,
        admin=ADMIN,
        api_env={
            "API_CORS_ORIGINS": embed_host[0],
            "API_SERVING_TIMEOUT_S": SERVING_TIMEOUT_S,
        },
    ) as st:
        print(f"\n[e2e] stack up in {time.monotonic() - t0:.1f} s: {st.api_url} (logs: {st.logs})")
        yield st


@pytest.fixture(scope="session")
def stack(live_stack: Any) -> str:
    """Base URL of the API (widget demo page at /, console at /admin/)."""
    return str(live_stack.api_url)


@pytest.fixture(scope="session")
def admin_token(live_stack: Any) -> str:
    return str(live_stack.login())


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``new_page(width, height, locale, mobile)``: a page in a fresh context; ``page.js_errors`` collects uncaught
    errors and ``page.dialogs`` every alert/confirm/prompt (dismissed) the page opened."""
    contexts = []

    def make(width: int = 1366, height: int = 860, locale: str = "zh-CN", mobile: bool = False) -> Any:
        ctx = browser.new_context(
            viewport={"width": width, "height": height},
            locale=locale,
            is_mobile=mobile,  # a phone: the page's meta viewport applies, touch events
            has_touch=mobile,
        )
        contexts.append(ctx)
        page = ctx.new_page()
        errors: list[str] = []
        dialogs: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        def on_dialog(d: Any) -> None:
            dialogs.append(f"{d.type}: {d.message}")
            d.dismiss()

        page.on("dialog", on_dialog)
        page.js_errors = errors
        page.dialogs = dialogs
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def wait_until(check: Callable[[], Any], timeout_s: float = 15, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (for API-side state the browser cannot see)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s:.0f} s")
        time.sleep(0.25)


def playground(base: str, token: str, message: str) -> dict[str, Any]:
    """What the dialog manager does with ``message`` on a fresh conversation (nothing is stored)."""
    r = httpx.post(
        f"{base}/api/v1/admin/playground",
        json={"message": message},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    r.raise_for_status()
    return dict(r.json())
