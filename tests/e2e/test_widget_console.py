"""The embeddable widget and the agent console in a real browser against the real API."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ADMIN

pytestmark = pytest.mark.e2e
BOT = ".xk-msg--bot:not(.xk-welcome)"  # bot replies (the welcome bubble is static)


def open_widget(page: Page, base: str):  # type: ignore[no-untyped-def]
    page.goto(base + "/", wait_until="domcontentloaded")
    w = page.locator("#xiaoke-widget")
    w.get_by_role("button", name="打开在线客服").click()
    expect(w.get_by_role("dialog", name="在线客服对话窗口")).to_be_visible()
    return w


def send(w, text: str) -> None:  # type: ignore[no-untyped-def]
    box = w.locator("#xk-input")
    box.fill(text)
    box.press("Enter")


def test_widget_chat_is_escaped_isolated_and_survives_reload(stack: str, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page()
    w = open_widget(page, stack)
    expect(w.locator(".xk-welcome")).to_contain_text("您好，我是小客智能助手")
    hostile = '看这里 <img src=x onerror="window.__pwned=1"> https://example.com/a 和 javascript:alert(1)'
    send(w, hostile)
    expect(w.locator(BOT)).to_have_count(1)
    user = w.locator(".xk-msg--user .xk-bubble").last
    expect(user).to_have_text(hostile)
    assert user.locator("img").count() == 0
    links = user.locator("a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://example.com/a")
    expect(links).to_have_attribute("rel", re.compile("noopener"))
    assert page.evaluate("window.__pwned") is None
    # the host page forces green buttons with !important; the shadow root keeps the widget's own colour
    bg = w.locator(".xk-send").evaluate("el => getComputedStyle(el).backgroundColor")
    assert bg != "rgb(0, 170, 0)"
    # thumbs on the bot reply
    w.get_by_role("button", name="有帮助").first.click()
    expect(w.locator(".xk-fb__done")).to_have_text("感谢您的反馈")

    page.reload(wait_until="domcontentloaded")
    w = page.locator("#xiaoke-widget")
    w.get_by_role("button", name="打开在线客服").click()
    expect(w.locator(".xk-msg--user .xk-bubble").last).to_have_text(hostile)
    expect(w.locator(BOT)).to_have_count(1)
    assert page.js_errors == []


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
    assert page.js_errors == []


def test_suggestion_chips_send_on_click_and_answers_render(stack: str, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page()
    w = open_widget(page, stack)
    send(w, "运费怎么算")
    reply = w.locator(BOT).first  # locators are lazy: pin the first reply
    expect(reply.locator(".xk-chips")).to_contain_text("您是不是想问")
    chip = reply.get_by_role("button", name="运费怎么收？满多少包邮？")
    chip.click()
    expect(w.locator(".xk-msg--user .xk-bubble").last).to_have_text("运费怎么收？满多少包邮？")
    expect(w.locator(BOT)).to_have_count(2)
    expect(w.locator(BOT).last.locator(".xk-bubble")).to_contain_text("包邮")
    expect(chip).to_be_disabled()  # only the latest reply's chips stay active
    # the starter chips under the welcome message disappear once the visitor has written
    expect(w.locator(".xk-welcome .xk-chips")).to_have_count(0)


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


def test_end_of_chat_rating_then_a_fresh_conversation(stack: str, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page()
    w = open_widget(page, stack)
    send(w, "怎么申请退货？")
    expect(w.locator(BOT)).to_have_count(1)
    session_id = page.evaluate(
        "() => JSON.parse(Object.entries(localStorage).find(([k]) => k.startsWith('xiaoke.session'))[1]).id"
    )
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

    # the rating reached the API: the console transcript shows it
    token = httpx.post(
        f"{stack}/api/v1/admin/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=10
    ).json()["access_token"]
    deadline = time.monotonic() + 10  # the API journals asynchronously
    while True:
        transcript = httpx.get(
            f"{stack}/api/v1/admin/conversations/{session_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        if transcript.get("rating") is not None or time.monotonic() > deadline:
            break
        time.sleep(0.3)
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


def test_handoff_agent_takes_over_and_replies_live(stack: str, new_page) -> None:  # type: ignore[no-untyped-def]
    visitor = new_page()
    w = open_widget(visitor, stack)
    send(w, "我要投诉，快递一直没到")
    expect(w.locator(BOT)).to_have_count(1)
    w.get_by_role("button", name="转人工", exact=True).first.click()
    expect(w.locator(".xk-msg--system").last).to_contain_text("已为您转接人工客服")
    expect(w.get_by_role("button", name="转人工", exact=True).first).to_be_disabled()

    agent = new_page()
    agent.goto(stack + "/admin/", wait_until="domcontentloaded")
    agent.get_by_label("用户名").fill(ADMIN[0])
    agent.get_by_label("密码").fill(ADMIN[1])
    agent.get_by_role("button", name="登录").click()
    agent.wait_for_url("**/#/dashboard")
    agent.goto(stack + "/admin/#/agent")
    ticket = agent.locator(".ticket").first
    ticket.wait_for()
    ticket.click()
    agent.get_by_role("button", name="接入").click()
    expect(w.locator(".xk-msg--system").last).to_contain_text("人工客服", timeout=10_000)
    reply = "您好，我是客服小王，请提供订单号 https://shop.example.com/orders"
    agent.get_by_placeholder("输入回复，Enter 发送").fill(reply)
    agent.get_by_role("button", name="发送").click()

    msg = w.locator(".xk-msg--agent .xk-bubble").last
    expect(msg).to_have_text(reply, timeout=10_000)
    expect(msg.locator("a")).to_have_attribute("href", "https://shop.example.com/orders")

    # the visitor writes while the agent has the conversation: the bot stays silent, the agent sees it live
    send(w, "好的，稍等我找一下")
    expect(agent.locator(".transcript .msg--user").last).to_contain_text("好的，稍等我找一下", timeout=10_000)
    expect(w.locator(BOT)).to_have_count(1)

    agent.get_by_role("button", name="交还机器人").click()
    expect(w.locator(".xk-msg--system").last).to_contain_text("小客智能助手继续为您服务", timeout=10_000)
    expect(w.get_by_role("button", name="转人工", exact=True).first).to_be_enabled()
