"""Knowledge-base answers end to end: the real retriever (FAISS + jieba BM25 over the demo FAQ, tiny but real
ONNX embedder) answers in the widget, feedback reaches the console, and a question imported and published from
the console (serving builds the new index version) is answered in the widget."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN, playground, wait_until
from tests.e2e.ui import BOT, console_as, no_markup_executed, open_widget, send, session_id

pytestmark = pytest.mark.e2e

NEW_QUESTION = "晒单评价有积分奖励吗？"
NEW_SIMILAR = "买家秀晒图送积分吗"
NEW_ANSWER = "有。订单完成后30天内发表带3张以上实拍图的评价，审核通过后赠送20积分，可在「我的-积分」查看。"


def test_visitor_asks_faqs_and_gets_their_answers(stack: str, new_page, demo_faqs) -> None:  # type: ignore[no-untyped-def]
    page = new_page()
    w = open_widget(page, stack)
    faq = demo_faqs["支持7天无理由退货吗？"]
    asked = [
        faq["question"],  # the standard question
        faq["similar"][0],  # a similar question stored with it
        "优惠券怎么使用？",  # another FAQ: the answer follows the question, not the conversation
    ]
    for n, question in enumerate(asked, start=1):
        send(w, question)
        expect(w.locator(BOT)).to_have_count(n)
        bubble = w.locator(BOT).nth(n - 1).locator(".xk-bubble")
        expected = demo_faqs.get(question, faq)["answer"]
        expect(bubble).to_contain_text(expected)
        expect(w.locator(BOT).nth(n - 1).locator(".xk-chips")).to_have_count(0)
    assert demo_faqs["优惠券怎么使用？"]["answer"] != faq["answer"]
    no_markup_executed(page)


def test_thumbs_down_shows_up_in_the_console_filter(stack: str, admin_token: str, new_page) -> None:  # type: ignore[no-untyped-def]
    # a conversation without feedback, which the filter must leave out
    other = new_page()
    wo = open_widget(other, stack)
    send(wo, "怎么开发票？")
    expect(wo.locator(BOT)).to_have_count(1)
    other_sid = session_id(other)

    page = new_page()
    w = open_widget(page, stack)
    send(w, "退货运费谁承担？")
    expect(w.locator(BOT)).to_have_count(1)
    w.locator(BOT).last.get_by_role("button", name="没帮助").click()
    expect(w.locator(BOT).last.locator(".xk-fb__done")).to_have_text("感谢您的反馈")
    sid = session_id(page)

    console = new_page()
    console_as(console, stack, admin_token, "conversations", ADMIN[0])
    rows = console.locator(".el-table__body tr")

    def listed(session: str) -> bool:  # messages and feedback are journaled asynchronously: search again
        console.get_by_role("button", name="搜索", exact=True).click()
        console.wait_for_load_state("networkidle")
        return rows.filter(has_text=session).count() == 1

    wait_until(lambda: listed(other_sid), 15, "conversation without feedback listed without a filter")
    # Element Plus draws the placeholder over the select's input: click the select itself
    console.locator(".el-select").filter(has=console.get_by_role("combobox", name="反馈")).click()
    console.get_by_role("option", name="没帮助").click()
    wait_until(lambda: listed(sid), 15, "down-voted conversation listed under feedback=down")
    row = rows.filter(has_text=sid)
    expect(row.locator(".fb").filter(has_text="−1")).to_have_count(1)
    expect(rows.filter(has_text=other_sid)).to_have_count(0)
    row.get_by_role("button", name="查看").click()
    bot = console.locator(".transcript .msg--bot").last
    expect(bot.locator(".meta")).to_contain_text("没帮助")
    no_markup_executed(console)


def _wait_for_index_everywhere(stack: str, token: str, version: str, question: str) -> dict[str, Any]:
    """Every serving replica picks the ACTIVE index up within its poll interval (2 s): wait until the new version
    answers ``question`` consistently for longer than that, so the widget cannot hit a replica still on the
    old index."""
    deadline = time.monotonic() + 30
    first_hit: float | None = None
    while time.monotonic() < deadline:
        r = playground(stack, token, question)
        if r["index_version"] == version and r["band"] == "answer":
            first_hit = first_hit or time.monotonic()
            if time.monotonic() - first_hit > 3:
                return r
        else:
            first_hit = None
        time.sleep(0.2)
    raise AssertionError(f"index {version} not serving {question!r} after 30 s")


def test_imported_question_is_answered_after_publishing_a_new_index(  # type: ignore[no-untyped-def]
    stack: str, admin_token: str, new_page, tmp_path: Path
) -> None:
    assert playground(stack, admin_token, NEW_QUESTION)["reply"]["text"] != NEW_ANSWER
    csv = tmp_path / "new-faq.csv"
    csv.write_text(
        f"question,answer,category,similar\n{NEW_QUESTION},{NEW_ANSWER},评价晒单,{NEW_SIMILAR}\n",
        encoding="utf-8",
    )
    console = new_page()
    console_as(console, stack, admin_token, "knowledge", ADMIN[0])
    live = console.get_by_test_id("live-version")
    expect(live).not_to_have_text("尚未发布")  # serving bootstrapped an index from the demo FAQ
    old_version = live.inner_text().strip()

    console.get_by_role("button", name="导入").click()
    dialog = console.get_by_role("dialog", name="批量导入问答")
    dialog.locator("input[type=file]").set_input_files(str(csv))
    expect(dialog.get_by_text("未发现错误，可以导入。")).to_be_visible()
    dialog.get_by_role("button", name="确认导入").click()
    expect(console.locator(".el-message--success").filter(has_text="导入完成：新增 1 条")).to_have_count(1)
    dialog.get_by_role("button", name="取消").click()
    expect(console.get_by_text("知识库已修改，尚未发布")).to_be_visible()

    # in the database, not yet in the live index: the bot cannot answer it
    before = playground(stack, admin_token, NEW_QUESTION)
    assert before["reply"]["text"] != NEW_ANSWER
    assert before["index_version"] == old_version

    console.get_by_role("button", name="发布新索引").click()
    expect(console.locator(".el-message--success").filter(has_text="已发布索引版本")).to_have_count(
        1, timeout=60_000
    )
    expect(live).not_to_have_text(old_version)
    new_version = live.inner_text().strip()
    expect(console.get_by_text("知识库已修改，尚未发布")).to_have_count(0)
    _wait_for_index_everywhere(stack, admin_token, new_version, NEW_QUESTION)

    page = new_page()
    w = open_widget(page, stack)
    for n, question in enumerate([NEW_QUESTION, NEW_SIMILAR], start=1):
        send(w, question)
        expect(w.locator(BOT)).to_have_count(n)
        expect(w.locator(BOT).nth(n - 1).locator(".xk-bubble")).to_have_text(NEW_ANSWER)
    no_markup_executed(page)
    no_markup_executed(console)
