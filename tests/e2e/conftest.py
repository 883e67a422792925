"""Browser tests (marker ``e2e``): the API + built frontend on a free port, driven by Debian chromium.

The stack is started here: ``python -m api serve`` with a private data dir (SQLite, demo seed, a bootstrap
admin) and, instead of the Ray inference server, ``fake_serving`` (a deterministic ``/v1/nlu`` over the demo
FAQ), so the real dialog manager answers and suggests while every widget and console path (sessions,
history, SSE, hand-off, agent desk, knowledge base) is real.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.e2e.fake_serving import fake_serving

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def frontend_dist() -> Path:
    dist = REPO / "frontend" / "dist"
    if shutil.which("npm"):
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
def serving_url() -> Iterator[str]:
    with fake_serving(REPO / "data" / "demo" / "faq" / "faq.jsonl") as url:
        yield url


@pytest.fixture(scope="session")
def stack(
    frontend_dist: Path,
    embed_host: tuple[str, Path],
    serving_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    port = _free_port()
    data = tmp_path_factory.mktemp("xiaoke-e2e")
    env = {
        **os.environ,
        "XIAOKE_DATA_DIR": str(data),
        "API_BOOTSTRAP_ADMIN_USERNAME": ADMIN[0],
        "API_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
        "API_SERVING_URL": serving_url,
        "API_WIDGET_DIST": str(frontend_dist / "widget"),
        "API_CONSOLE_DIST": str(frontend_dist / "console"),
        "API_CORS_ORIGINS": embed_host[0],
    }
    log = (data / "api.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"API exited early; log: {data / 'api.log'}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("API did not become healthy within 60 s")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: run `bash scripts/ensure_chromium.sh`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser):  # type: ignore[no-untyped-def]
    contexts = []

    def make(width: int = 1366, height: int = 860, locale: str = "zh-CN"):  # type: ignore[no-untyped-def]
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
        contexts.append(ctx)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.js_errors = errors  # type: ignore[attr-defined]
        return page

    yield make
    for ctx in contexts:
        ctx.close()
