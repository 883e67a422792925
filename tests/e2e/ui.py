"""Page helpers shared by the browser tests (widget and console)."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

BOT = ".xk-msg--bot:not(.xk-welcome)"  # bot replies (the welcome bubble is static)


def open_widget(page: Page, base: str) -> Locator:
    """Open the demo store page and the chat panel; returns the widget host (locators pierce its shadow root)."""
    page.goto(base + "/", wait_until="domcontentloaded")
    w = page.locator("#xiaoke-widget")
    w.get_by_role("button", name="打开在线客服").click()
    expect(w.get_by_role("dialog", name="在线客服对话窗口")).to_be_visible()
    return w


def send(w: Locator, text: str) -> None:
    box = w.locator("#xk-input")
    box.fill(text)
    box.press("Enter")


def session_id(page: Page) -> str:
    """The widget's session id, from the host page's localStorage."""
    return str(
        page.evaluate(
            "() => JSON.parse(Object.entries(localStorage)"
            ".find(([k]) => k.startsWith('xiaoke.session'))[1]).id"
        )
    )


def login(page: Page, base: str, username: str, password: str, landing: str = "dashboard") -> None:
    page.goto(base + "/admin/", wait_until="domcontentloaded")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"**/#/{landing}")


CONSOLE_AUTH_KEY = "xiaoke.console.auth.v1"  # frontend/src/console/stores/auth.ts


def console_as(page: Page, base: str, token: str, route: str, username: str, role: str = "admin") -> None:
    """Open a console route already signed in with ``token`` (what the login form stores in sessionStorage):
    the login form itself is tested once; the API allows only 10 logins per minute per client IP."""
    auth = {
        "token": token,
        "role": role,
        "username": username,
        "expiresAt": int(time.time() * 1000) + 3_600_000,
    }
    page.add_init_script(
        f"try {{ sessionStorage.setItem({json.dumps(CONSOLE_AUTH_KEY)}, {json.dumps(json.dumps(auth))}) }} catch (e) {{}}"
    )
    page.goto(f"{base}/admin/#/{route}", wait_until="domcontentloaded")
    page.wait_for_url(f"**/#/{route}")


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def no_markup_executed(page: Any) -> None:
    """Nothing the page rendered opened a dialog (alert) or threw."""
    assert page.dialogs == [], page.dialogs
    assert page.js_errors == [], page.js_errors
