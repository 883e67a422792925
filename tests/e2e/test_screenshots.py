"""Screenshots of the widget and the console on a desktop (1366 px) and a phone (390 px) viewport, written to
``artifacts/screenshots/e2e-*.png`` by every e2e run (real answers from the real stack on them)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN, SCREENSHOTS, wait_until
from tests.e2e.ui import BOT, console_as, no_markup_executed, open_widget, png_size, send, session_id

pytestmark = pytest.mark.e2e

VIEWPORTS = {"desktop": (1366, 860), "mobile": (390, 844)}


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_screenshots_of_widget_and_console(stack: str, admin_token: str, new_page, device: str) -> None:  # type: ignore[no-untyped-def]
    width, height = VIEWPORTS[device]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = []

    page = new_page(width=width, height=height, mobile=device == "mobile")
    w = open_widget(page, stack)
    send(w, "怎么申请退货？")
    expect(w.locator(BOT)).to_have_count(1)
    send(w, "发票")  # a bare keyword after a question: suggestions
    expect(w.locator(BOT)).to_have_count(2)
    expect(w.locator(BOT).last).to_contain_text("您是不是想问")
    panel = w.locator(".xk-panel").bounding_box()
    assert panel is not None and panel["x"] >= 0 and panel["x"] + panel["width"] <= width + 1
    shots.append(SCREENSHOTS / f"e2e-widget-{device}-{width}.png")
    page.screenshot(path=str(shots[-1]))
    sid = session_id(page)
    no_markup_executed(page)

    console = new_page(width=width, height=height, mobile=device == "mobile")
    console_as(console, stack, admin_token, "conversations", ADMIN[0])
    row = console.locator(".el-table__body tr").filter(has_text=sid)
    expect(row).to_have_count(1, timeout=15_000)
    shots.append(SCREENSHOTS / f"e2e-console-conversations-{device}-{width}.png")
    console.screenshot(path=str(shots[-1]))
    row.get_by_role("button", name="查看").click()
    transcript = console.locator(".transcript")
    expect(transcript.locator(".msg--user")).to_have_count(2)
    expect(transcript.locator(".msg--bot").first).to_contain_text("退货")
    drawer = console.locator(".el-drawer")

    def on_screen() -> bool:  # the drawer slides in: wait until it is on screen, whole
        box = drawer.bounding_box()
        return box is not None and box["x"] >= -1 and box["x"] + box["width"] <= width + 1

    wait_until(on_screen, 5, "transcript drawer fully on screen")
    assert console.evaluate("document.documentElement.scrollWidth") <= width  # no sideways page scroll
    shots.append(SCREENSHOTS / f"e2e-console-transcript-{device}-{width}.png")
    console.screenshot(path=str(shots[-1]))
    no_markup_executed(console)

    for shot in shots:
        assert png_size(shot) == (width, height), shot
        assert shot.stat().st_size > 10_000, f"{shot} looks blank"
