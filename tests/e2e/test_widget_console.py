"""The embeddable widget and the agent console in a real browser against the real stack (Ray Serve models)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN, SCREENSHOTS, wait_until
from tests.e2e.ui import BOT, console_as, no_markup_executed, open_widget, send, session_id

pytestmark = pytest.mark.e2e


def test_markup_is_shown_as_text_in_widget_and_console(stack: str, admin_token: str, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page()
    w = open_widget(page, stack)
    expect(w.locator(".xk-welcome")).to_contain_text("您好，我是小客智能助手")
    hostile = (
        '看这里 <img src=x onerror=alert(1)> <img src=x onerror="window.__pwned=1"> '
        "https://example.com/a 和 javascript:alert(1)"
    )
    send(w, hostile)
    expect(w.locator(BOT)).to_have_count(1)
    user = w.locator(".xk-msg--user .xk-bubble").last
    expect(user).to_have_text(hostile)
    assert user.locator("img").count() == 0
    links = user.locator("a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://example.com/a")
    expect(links).to_have_attribute("rel", re.compile("noopener"))
    # the host page forces green buttons with !important; the shadow root keeps the widget's own colour
    bg = w.locator(".xk-send").evaluate("el => getComputedStyle(el).backgroundColor")
    assert bg != "rgb(0, 170, 0)"
    # thumbs on the bot reply
    w.get_by_role("button", name="有帮助").first.click()
    expect(w.locator(".xk-fb__done")).to_have_text("感谢您的反馈")
    sid = session_id(page)

    page.reload(wait_until="domcontentloaded")
    w = page.locator("#xiaoke-widget")
    w.get_by_role("button", name="打开在线客服").click()
    expect(w.locator(".xk-msg--user .xk-bubble").last).to_have_text(hostile)
    expect(w.locator(BOT)).to_have_count(1)
    assert page.evaluate("window.__pwned") is None
    no_markup_executed(page)

    # the operator reads the same message in the console transcript: text, not markup
    console = new_page()
    console_as(console, stack, admin_token, "conversations", ADMIN[0])
    console.get_by_label("关键词").fill("onerror=alert(1)")
    console.get_by_role("button", name="搜索", exact=True).click()
    row = console.locator(".el-table__body tr").filter(has_text=sid)
    expect(row).to_have_count(1)
    row.get_by_role("button", name="查看").click()
    bubble = console.locator(".transcript .msg--user .bubble").filter(has_text="onerror")
    expect(bubble).to_have_text(hostile)
    expect(console.locator(".transcript img")).to_have_count(0)
    assert console.evaluate("window.__pwned") is None
    no_markup_executed(console)
    console.evaluate("alert('probe')")  # the dialog detector itself works: a real alert is recorded
    assert console.dialogs == ["alert: probe"]


def test_widget_embeds_on_another_origin_with_one_script_tag(stack: str, embed_host, new_page) -> None:  # type: ignore[no-untyped-def]
    origin, root = embed_host
    (root / "shop.html").write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Partner shop</title></head>'
        f'<body><h1>Partner shop</h1><script src="{stack}/widget.js" data-api="{stack}" data-lang="en-US" defer>'
        "</script></body></html>",
        encoding="utf-8",
    )
    page = new_page(locale="en-US")
    page.goto(f"{origin}/shop.html", wait_until="domcontentloaded")
    w = page.locator("#xiaoke-widget")
    w.get_by_role("button", name="Open customer service chat").click()
    expect(w.locator(".xk-welcome")).to_contain_text("I'm XiaoKe")
    send(w, "where is my parcel")
    expect(w.locator(BOT)).to_have_count(1)
    # the session (id + token) lives in the host origin's storage; history comes back cross-origin
    page.reload(wait_until="domcontentloaded")
    w.get_by_role("button", name="Open customer service chat").click()
    expect(w.locator(".xk-msg--user .xk-bubble")).to_have_text(["where is my parcel"])
    expect(w.locator(BOT)).to_have_count(1)

    # the shop's logout ends the session on the API too: a cross-origin DELETE with keepalive (preflighted for its
    # token header), so the token copied before no longer reads the conversation
    saved = page.evaluate(
        "() => JSON.parse(Object.entries(localStorage).find(([k]) => k.startsWith('xiaoke.session'))[1])"
    )
    history = f"{stack}/api/v1/sessions/{saved['id']}/history"
    headers = {"X-Session-Token": saved["token"]}
    assert httpx.get(history, headers=headers, timeout=10).status_code == 200
    page.evaluate("() => window.XiaoKeWidget.logout()")
    wait_until(
        lambda: httpx.get(history, headers=headers, timeout=10).status_code == 404,
        10,
        "the session ended on the API after XiaoKeWidget.logout()",
    )
    expect(w.locator(".xk-msg--user")).to_have_count(0)
    assert (
        page.evaluate("() => Object.keys(localStorage).filter((k) => k.startsWith('xiaoke.session'))") == []
    )
    assert page.js_errors == []


def test_orders_are_shown_to_the_signed_in_shopper_only(stack: str, embed_host, new_page) -> None:  # type: ignore[no-untyped-def]
    """The demo page the API serves is signed in as the demo customer (the API signs its own page): one of their
    order numbers shows the order. The same widget on a shop page without the shop's signature (an anonymous
    visitor, or one claiming that customer's id) is asked to log in, and shown nothing of the order."""
    page = new_page()
    w = open_widget(page, stack)
    send(w, "2024112300123")
    expect(w.locator(BOT)).to_have_count(1)
    expect(w.locator(BOT).last).to_contain_text("SF1428373612045")
    assert page.js_errors == []

    origin, root = embed_host
    (root / "claim.html").write_text(
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>Shop</title></head>'
        f'<body><script src="{stack}/widget.js" data-api="{stack}" data-user-id="demo_user_1001" defer>'
        "</script></body></html>",
        encoding="utf-8",
    )
    page = new_page()
    page.goto(f"{origin}/claim.html", wait_until="domcontentloaded")
    w = page.locator("#xiaoke-widget")
    w.get_by_role("button", name="打开在线客服").click()
    send(w, "2024112300123")
    expect(w.locator(BOT)).to_have_count(1)
    expect(w.locator(BOT).last).to_contain_text("登录")
    assert "SF1428373612045" not in w.locator(BOT).last.inner_text()


def test_vague_question_gets_suggestions_and_a_click_answers(stack: str, new_page, demo_faqs) -> None:  # type: ignore[no-untyped-def]
    page = new_page()
    w = open_widget(page, stack)
    send(w, "包邮")  # a bare keyword: several FAQs match, too little to answer outright
    reply = w.locator(BOT).first  # locators are lazy: pin the first reply
    expect(reply).to_contain_text("您是不是想问")  # in the bot's text, or as the chips' own label
    chips = reply.locator(".xk-chips").first.locator(".xk-chip")
    expect(chips.first).to_be_visible()
    offered = [t.strip() for t in chips.all_inner_texts()]
    assert 2 <= len(offered) <= 5, offered
    assert all(q in demo_faqs for q in offered), offered  # each one is a FAQ's standard question
    assert "运费怎么收？满多少包邮？" in offered  # the shipping-fee FAQ is among the real retriever's picks
    picked = offered[-1]
    reply.get_by_role("button", name=picked, exact=True).click()
    expect(w.locator(".xk-msg--user .xk-bubble").last).to_have_text(picked)
    expect(w.locator(BOT)).to_have_count(2)
    expect(w.locator(BOT).last.locator(".xk-bubble")).to_contain_text(demo_faqs[picked]["answer"])
    expect(w.locator(BOT).last.locator(".xk-chips")).to_have_count(0)  # an answer, not more suggestions
    expect(reply.get_by_role("button", name=picked, exact=True)).to_be_disabled()  # only the latest chips
    # the starter chips under the welcome message disappear once the visitor has written
    expect(w.locator(".xk-welcome .xk-chips")).to_have_count(0)
    no_markup_executed(page)


def test_widget_works_under_a_strict_host_csp(stack: str, embed_host, new_page) -> None:  # type: ignore[no-untyped-def]
    origin, root = embed_host
    csp = (
        f"default-src 'self'; script-src {stack}; connect-src {stack}; style-src 'self'; img-src 'self' data:"
    )
    (root / "strict.html").write_text(
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}"><title>严格 CSP 的商城</title></head>'
        f'<body><p>商品详情</p><script src="{stack}/widget.js" defer></script></body></html>',
        encoding="utf-8",
    )
    page = new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{origin}/strict.html", wait_until="domcontentloaded")
    w = page.locator("#xiaoke-widget")
    w.get_by_role("button", name="打开在线客服").click()
    # styled although inline <style> is forbidden: the launcher keeps its round look
    assert w.locator(".xk-launcher").evaluate("el => getComputedStyle(el).borderRadius") == "50%"
    send(w, "怎么申请退货？")
    expect(w.locator(BOT)).to_have_count(1)
    assert violations == []


def test_end_of_chat_rating_then_a_fresh_conversation(stack: str, admin_token: str, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page()
    w = open_widget(page, stack)
    send(w, "怎么申请退货？")
    expect(w.locator(BOT)).to_have_count(1)
    sid = session_id(page)
    w.get_by_role("button", name="结束并评价").click()
    rating = w.get_by_role("region", name="请为本次服务打分")
    expect(rating.get_by_role("button", name="提交评价")).to_be_disabled()
    rating.get_by_role("radio", name=re.compile("^4 星")).click()
    rating.get_by_label("您的意见（选填）").fill("回复很快")
    rating.get_by_role("button", name="提交评价").click()
    expect(rating).to_contain_text("感谢您的评价")
    rating.get_by_role("button", name="开始新对话").click()
    expect(w.locator(BOT)).to_have_count(0)
    expect(w.locator(".xk-welcome .xk-chips")).to_be_visible()
    assert (
        page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('xiaoke.session')).length")
        == 0
    )

    # the rating reached the API (journaled asynchronously): the console transcript shows it
    def rated() -> dict[str, Any]:
        r = httpx.get(
            f"{stack}/api/v1/admin/conversations/{sid}",
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=10,
        )
        return dict(r.json()) if r.status_code == 200 and r.json().get("rating") is not None else {}

    transcript = wait_until(rated, 10, "rating stored")
    assert transcript["rating"] == 4
    assert transcript["rating_comment"] == "回复很快"


def test_widget_offline_state_and_retry(stack: str, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page()
    w = open_widget(page, stack)
    page.route("**/api/v1/chat", lambda route: route.abort("connectionrefused"))
    send(w, "在吗")
    expect(w.locator(".xk-offline")).to_contain_text("暂时无法连接到客服服务", timeout=30_000)
    expect(w.locator(".xk-msg--user").last).to_have_attribute("data-status", "failed")
    page.unroute("**/api/v1/chat")
    w.locator(".xk-offline").get_by_role("button", name="重试").click()
    expect(w.locator(".xk-offline")).to_have_count(0, timeout=15_000)
    expect(w.locator(".xk-msg--user").last).to_have_attribute("data-status", "sent")
    expect(w.locator(BOT)).to_have_count(1)


def test_widget_fills_a_phone_screen(stack: str, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(width=360, height=740)
    w = open_widget(page, stack)
    box = w.locator(".xk-panel").bounding_box()
    assert box is not None
    assert box["x"] == 0
    assert box["width"] == pytest.approx(360, abs=1)
    assert box["height"] == pytest.approx(740, abs=1)
    # keyboard: Escape closes the panel and focus returns to the launcher
    w.locator("#xk-input").press("Escape")
    expect(w.locator(".xk-panel")).to_have_count(0)
    expect(w.get_by_role("button", name="打开在线客服")).to_be_focused()


# The panel's and the composer's boxes (layout-viewport coordinates, as visualViewport.offsetTop is) and whether
# the panel covers exactly the visual viewport.
_GEOMETRY = """() => {
  const root = document.querySelector('#xiaoke-widget').shadowRoot
  const box = (sel) => { const r = root.querySelector(sel).getBoundingClientRect(); return { top: r.top, bottom: r.bottom } }
  const vvTop = visualViewport.offsetTop, vvHeight = visualViewport.height, panel = box('.xk-panel')
  const fits = Math.abs(panel.top - vvTop) <= 1 && Math.abs(panel.bottom - vvTop - vvHeight) <= 1
  return { vvTop, vvHeight, panel, composer: box('.xk-composer'), fits }
}"""


def test_phone_composer_stays_within_the_visual_viewport(stack: str, new_page) -> None:  # type: ignore[no-untyped-def]
    """iOS Safari's keyboard shrinks only the visual viewport, over an unchanged layout viewport, and pans it to
    the focused field. Chromium has no on-screen keyboard; a page scale (CDP) and a wheel give the same geometry
    (a 370 px visualViewport over the 740 px layout, offsetTop > 0). Android's resizes-content shrinks the layout
    viewport too (a device-metrics override): the panel is then exactly that height, not compensated twice."""
    page = new_page(width=360, height=740, mobile=True)
    page.emulate_media(reduced_motion="reduce")  # no slide-in: measure the panel where it stays
    w = open_widget(page, stack)
    cdp = page.context.new_cdp_session(page)

    def fits_visual_viewport() -> dict[str, Any]:
        try:  # the visualViewport event and the panel's re-render follow the viewport change
            page.wait_for_function(f"() => ({_GEOMETRY})().fits", timeout=5_000)
        except PlaywrightTimeout:
            pass  # the assertions below say how it does not fit
        g: dict[str, Any] = page.evaluate(_GEOMETRY)
        assert g["panel"]["top"] == pytest.approx(g["vvTop"], abs=1), g
        assert g["panel"]["bottom"] == pytest.approx(g["vvTop"] + g["vvHeight"], abs=1), g
        assert g["composer"]["bottom"] <= g["vvTop"] + g["vvHeight"] + 1, g
        return g

    cdp.send("Emulation.setPageScaleFactor", {"pageScaleFactor": 2})
    page.wait_for_function("() => visualViewport.height < 400")
    fits_visual_viewport()
    page.mouse.move(100, 20)  # over the panel header: nothing there scrolls, the visual viewport pans
    page.mouse.wheel(0, 150)
    page.wait_for_function("() => visualViewport.offsetTop > 0")
    assert fits_visual_viewport()["vvTop"] > 0

    cdp.send("Emulation.setPageScaleFactor", {"pageScaleFactor": 1})
    cdp.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": 400, "deviceScaleFactor": 1, "mobile": True},
    )
    page.wait_for_function("() => innerHeight === 400 && visualViewport.height === 400")
    g = fits_visual_viewport()
    # the layout viewport's own height: the panel is not shortened a second time
    assert (g["panel"]["top"], g["panel"]["bottom"]) == pytest.approx((0, 400), abs=1)
    expect(w.locator("#xk-input")).to_be_in_viewport()


def test_handoff_agent_takes_over_replies_live_and_hands_back(  # type: ignore[no-untyped-def]
    stack: str, admin_token: str, new_page, demo_faqs
) -> None:
    visitor = new_page()
    w = open_widget(visitor, stack)
    send(w, "怎么查询物流信息？")
    expect(w.locator(BOT)).to_have_count(1)
    handoff = w.get_by_role("button", name="转人工", exact=True).first  # the header button
    handoff.click()  # the visitor asks for a human
    expect(w.locator(".xk-msg--system").last).to_contain_text("已为您转接人工客服")
    expect(handoff).to_be_disabled()
    sid = session_id(visitor)

    agent = new_page()
    console_as(agent, stack, admin_token, "agent", ADMIN[0])
    ticket = agent.locator(".ticket").filter(has_text=sid[:12])
    expect(ticket).to_have_count(1)  # the queue shows the visitor's session
    # the demo page is signed for the demo customer: the agent sees a verified visitor, with the shop's id
    expect(ticket.locator(".visitor-badge")).to_have_text("已验证 · demo_user_1001")
    ticket.click()
    agent.get_by_role("button", name="接入").click()
    expect(w.locator(".xk-msg--system").last).to_contain_text("人工客服", timeout=10_000)
    reply = "您好，我是客服小王，请提供订单号 https://shop.example.com/orders"
    agent.get_by_placeholder("输入回复，Enter 发送").fill(reply)
    agent.get_by_role("button", name="发送").click()

    msg = w.locator(".xk-msg--agent .xk-bubble").last
    expect(msg).to_have_text(reply, timeout=10_000)  # pushed live over SSE, no reload
    expect(msg.locator("a")).to_have_attribute("href", "https://shop.example.com/orders")

    # the visitor writes while the agent has the conversation: the bot stays silent, the agent sees it live
    send(w, "好的，稍等我找一下")
    expect(agent.locator(".transcript .msg--user").last).to_contain_text("好的，稍等我找一下", timeout=10_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    agent.screenshot(path=str(SCREENSHOTS / "e2e-console-agent-desk-desktop.png"))
    time.sleep(1)  # give a (wrong) bot reply the time to show up
    expect(w.locator(BOT)).to_have_count(1)

    agent.get_by_role("button", name="交还机器人").click()
    expect(w.locator(".xk-msg--system").last).to_contain_text("小客智能助手继续为您服务", timeout=10_000)
    expect(handoff).to_be_enabled()

    # the bot answers again, from the knowledge base
    bots_before = w.locator(BOT).count()
    question = "怎么申请退货？"
    send(w, question)
    expect(w.locator(BOT)).to_have_count(bots_before + 1)
    expect(w.locator(BOT).last.locator(".xk-bubble")).to_contain_text(demo_faqs[question]["answer"])

    # the console lists the conversation as handed off
    listed: dict[str, Any] = httpx.get(
        f"{stack}/api/v1/admin/conversations",
        params={"handoff": "true"},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=10,
    ).json()
    assert sid in [c["session_id"] for c in listed["items"]]
    no_markup_executed(visitor)


def test_complaint_gets_a_human_offer_and_the_quick_reply_opens_a_ticket(  # type: ignore[no-untyped-def]
    stack: str, admin_token: str, new_page
) -> None:
    visitor = new_page()
    w = open_widget(visitor, stack)
    send(w, "客服态度太差了我要投诉")
    offer = w.locator(BOT).last
    expect(offer.locator(".xk-chip--quick")).to_have_text(["转人工"])  # an offer, not a transfer yet
    header = w.locator(".xk-handoff")
    expect(header).to_be_enabled()  # nobody is queued: the visitor can still ask for a human
    offer.locator(".xk-chip--quick").click()
    expect(w.locator(BOT).last).to_contain_text("转接人工客服")
    expect(header).to_be_disabled()
    sid = session_id(visitor)
    waiting = httpx.get(
        f"{stack}/api/v1/admin/handoffs",
        params={"status": "waiting"},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=10,
    ).json()
    assert sid in [t["session_id"] for t in waiting["items"]]
