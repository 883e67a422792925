"""Console flows in a real browser against the real stack: knowledge base CRUD + import preview, users and
role-based navigation, unanswered-question mining (real embeddings)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN, SCREENSHOTS, wait_until
from tests.e2e.ui import console_as, login

pytestmark = pytest.mark.e2e


def test_knowledge_base_create_search_edit_delete(stack: str, admin_token: str, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page()
    login(page, stack, *ADMIN)  # the login form (other tests open the console with a token)
    page.goto(stack + "/admin/#/knowledge")
    tag = uuid.uuid4().hex[:6]
    question = f"测试问题{tag}：礼品卡能退吗"
    page.get_by_role("button", name="新建问答").click()
    dialog = page.get_by_role("dialog", name="新建问答")
    dialog.get_by_label("标准问题").fill(question)
    dialog.get_by_label("答案").fill("礼品卡一经售出不支持退款，<b>可以</b>转赠。")
    dialog.get_by_placeholder("输入相似问法后回车添加").fill(f"礼品卡退款{tag}")
    dialog.get_by_placeholder("输入相似问法后回车添加").press("Enter")
    dialog.get_by_test_id(
        "faq-intent"
    ).click()  # the FAQ's intent: the dialog answers it when the model agrees
    option = page.locator(".el-select-dropdown__item").filter(has_text="(coupon_promotion)")
    option.click()
    expect(option).to_be_hidden()  # the list has closed (a clean screenshot)
    expect(dialog).to_contain_text("优惠活动 (coupon_promotion)")
    expect(dialog).to_contain_text("机器人直接回答")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "e2e-console-faq-dialog-desktop.png"))
    dialog.get_by_role("button", name="保存").click()
    expect(dialog).to_be_hidden()
    auth = {"Authorization": f"Bearer {admin_token}"}
    items = httpx.get(f"{stack}/api/v1/admin/faqs", params={"q": tag}, headers=auth).json()["items"]
    assert [i["intent"] for i in items] == ["coupon_promotion"]

    page.get_by_placeholder("搜索问题或答案").fill(tag)
    page.get_by_role("button", name="搜索", exact=True).click()
    row = page.locator(".faq-table .el-table__body tr").filter(has_text=question)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("<b>可以</b>")  # rendered as text
    expect(row).to_contain_text(f"礼品卡退款{tag}")

    row.get_by_role("button", name="编辑").click()
    dialog = page.get_by_role("dialog", name="编辑问答")
    dialog.get_by_label("答案").fill("礼品卡不支持退款。")
    dialog.get_by_role("button", name="保存").click()
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("礼品卡不支持退款。")
    items = httpx.get(f"{stack}/api/v1/admin/faqs", params={"q": tag}, headers=auth).json()["items"]
    assert [i["intent"] for i in items] == ["coupon_promotion"]  # an edit that does not touch it keeps it

    row.get_by_role("button", name="删除").click()
    page.get_by_role("dialog").get_by_role("button", name="删除").click()
    expect(page.locator(".faq-table .el-table__body tr").filter(has_text=question)).to_have_count(0)


def test_import_shows_a_dry_run_preview_with_row_errors(
    stack: str, admin_token: str, new_page, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:6]
    csv = tmp_path / "faq.csv"
    csv.write_text(
        "question,answer,category,similar\n"
        f"导入测试{tag},这是答案,测试,相似一{tag}|相似二{tag}\n"
        ",缺少问题,测试,\n",
        encoding="utf-8",
    )
    page = new_page()
    console_as(page, stack, admin_token, "knowledge", ADMIN[0])
    page.get_by_role("button", name="导入").click()
    dialog = page.get_by_role("dialog", name="批量导入问答")
    dialog.locator("input[type=file]").set_input_files(str(csv))
    expect(dialog.locator(".el-descriptions")).to_contain_text("2")
    errors = dialog.locator(".errors .el-table__body tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("question")
    dialog.get_by_role("button", name="确认导入").click()
    expect(dialog.get_by_role("button", name="确认导入")).to_be_disabled()
    dialog.get_by_role("button", name="取消").click()
    page.get_by_placeholder("搜索问题或答案").fill(f"导入测试{tag}")
    page.get_by_role("button", name="搜索", exact=True).click()
    expect(page.locator(".faq-table .el-table__body tr").filter(has_text=f"导入测试{tag}")).to_have_count(1)


def test_agent_role_sees_only_agent_pages(stack: str, admin_token: str, new_page) -> None:  # type: ignore[no-untyped-def]
    username = f"agent_{uuid.uuid4().hex[:6]}"
    admin = new_page()
    console_as(admin, stack, admin_token, "users", ADMIN[0])
    admin.get_by_role("button", name="新建账号").click()
    dialog = admin.get_by_role("dialog", name="新建账号")
    dialog.get_by_label("用户名").fill(username)
    dialog.get_by_label("初始密码").fill("agent-pass-123")
    dialog.get_by_role("button", name="保存").click()
    expect(admin.locator(".el-table__body tr").filter(has_text=username)).to_have_count(1)

    agent = new_page()
    login(agent, stack, username, "agent-pass-123", landing="agent")
    menu = agent.locator(".el-menu")
    expect(menu).to_contain_text("人工坐席")
    expect(menu).to_contain_text("会话记录")
    expect(menu).not_to_contain_text("知识库")
    agent.goto(stack + "/admin/#/knowledge")
    agent.wait_for_url("**/#/agent")  # the router guard sends agents home
    agent.get_by_role("button", name="退出登录").click()
    agent.wait_for_url("**/#/login")


def test_unanswered_question_becomes_a_similar_question(stack: str, admin_token: str, new_page) -> None:  # type: ignore[no-untyped-def]
    question = "直播间的福袋怎么领"  # not in the demo FAQ
    chat = httpx.post(f"{stack}/api/v1/chat", json={"message": question}, timeout=30).json()
    assert chat["reply"]["type"] != "answer"
    # the visitor marks the reply as unhelpful: mined as unanswered, like clarify / fallback replies
    vote = httpx.post(
        f"{stack}/api/v1/feedback",
        json={"message_id": chat["message_id"], "rating": "down", "session_id": chat["session_id"]},
        headers={"X-Session-Token": chat["session_token"]},
        timeout=10,
    )
    assert vote.status_code == 204

    page = new_page()
    console_as(page, stack, admin_token, "unanswered", ADMIN[0])
    card = page.locator(".cluster").filter(has_text=question)

    def mined() -> bool:  # the feedback is journaled asynchronously: reload until the cluster is there
        if card.count() == 1:
            return True
        page.reload(wait_until="networkidle")
        return card.count() == 1

    wait_until(mined, 15, "the unanswered question mined into a cluster")
    suggested = card.locator(".sugg").inner_text()
    card.get_by_role("button", name="加为相似问法").click()
    dialog = page.get_by_role("dialog", name="加为相似问法")
    dialog.get_by_role("button", name="确定").click()
    expect(page.locator(".el-message--success").filter(has_text="已加入知识库")).to_have_count(1)
    expect(card).to_have_count(0)

    page.goto(stack + "/admin/#/knowledge")
    page.get_by_placeholder("搜索问题或答案").fill(suggested)
    page.get_by_role("button", name="搜索", exact=True).click()
    row = page.locator(".faq-table .el-table__body tr").filter(has_text=suggested).first
    row.get_by_role("button", name="编辑").click()
    expect(page.get_by_role("dialog", name="编辑问答")).to_contain_text(question)


def test_template_edits_survive_a_login_that_ends_mid_edit(stack: str, admin_token: str, new_page) -> None:  # type: ignore[no-untyped-def]
    """The operator's account is removed while they edit a reply template: saving gets a 401, the login page
    takes over, and after signing in again the unsaved text is back on the page (drafts.ts), then saved."""
    auth = {"Authorization": f"Bearer {admin_token}"}
    username = f"editor_{uuid.uuid4().hex[:6]}"
    user = httpx.post(
        f"{stack}/api/v1/admin/users",
        json={"username": username, "password": "editor-pass-123", "role": "admin"},
        headers=auth,
    ).json()
    token = httpx.post(
        f"{stack}/api/v1/admin/auth/login", json={"username": username, "password": "editor-pass-123"}
    ).json()["access_token"]
    templates = httpx.get(f"{stack}/api/v1/admin/templates", headers=auth).json()["items"]
    key = templates[0]["key"]
    original = templates[0]["variants"]
    edited = f"草稿{uuid.uuid4().hex[:6]}：您好，这里是小客，请问有什么可以帮您？"
    page = new_page()
    console_as(page, stack, token, "templates", username)
    box = page.get_by_label(f"{key} #1", exact=True)
    box.fill(edited)
    assert httpx.delete(f"{stack}/api/v1/admin/users/{user['id']}", headers=auth).status_code == 204
    card = page.locator(".el-card").filter(has=box)
    card.get_by_role("button", name="保存").click()
    page.wait_for_url("**/#/login**")  # 401: signed out, the login page replaced the templates page
    try:
        page.get_by_label("用户名").fill(ADMIN[0])
        page.get_by_label("密码").fill(ADMIN[1])
        page.get_by_role("button", name="登录").click()
        page.wait_for_url("**/#/templates")  # back where the operator was
        expect(page.get_by_text("已恢复登录过期前未保存的修改")).to_be_visible()
        expect(page.get_by_label(f"{key} #1", exact=True)).to_have_value(edited)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "e2e-console-template-draft-restored.png"))
        page.locator(".el-card").filter(has=page.get_by_label(f"{key} #1", exact=True)).get_by_role(
            "button", name="保存"
        ).click()
        wait_until(
            lambda: (
                httpx.get(f"{stack}/api/v1/admin/templates", headers=auth).json()["items"][0]["variants"][0]
                == edited
            ),
            what="the restored draft saved",
        )
    finally:
        httpx.put(f"{stack}/api/v1/admin/templates/{key}", json={"variants": original}, headers=auth)
