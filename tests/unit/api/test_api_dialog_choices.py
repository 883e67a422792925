"""Questions about human agents vs. requests for one, and numbered choices among offered suggestions."""

from __future__ import annotations

import pytest
from api_fakes import FakeNlu

from api.dialog.manager import DialogManager, choice_index, explicit_human_request
from api.dialog.state import DialogState, Phase, ReplyType
from bundle.normalize import normalize

# ---- a question about human agents is answered, a request for one is handed off --------------------------


async def test_question_about_human_agents_gets_the_faq_answer(dialog: DialogManager) -> None:
    r = await dialog.handle(DialogState(), "人工客服的工作时间是什么时候？")
    assert r.reply.type is ReplyType.ANSWER and r.reply.faq_id == "faq-139", r.reply
    assert "9:00-22:00" in r.reply.text
    assert not r.handoff_requested and r.state.phase is Phase.IDLE


async def test_question_about_human_agents_during_slot_filling_answers_and_leaves_the_slot(
    dialog: DialogManager,
) -> None:
    s = (await dialog.handle(DialogState(), "我的订单到哪了")).state
    assert s.phase is Phase.AWAIT_ORDER_ID
    r = await dialog.handle(s, "人工客服的工作时间是什么时候？")
    assert r.reply.type is ReplyType.ANSWER and r.reply.faq_id == "faq-139"
    assert r.state.phase is Phase.IDLE and r.state.task_intent is None


@pytest.mark.parametrize(
    "text",
    [
        "转人工",
        "人工客服",
        "人工！",
        "我要人工服务",
        "给我找个真人",
        "算了，直接转人工吧",
        "怎么转人工客服？",
    ],
)
async def test_explicit_requests_still_hand_off(dialog: DialogManager, text: str) -> None:
    r = await dialog.handle(DialogState(), text)
    assert r.handoff_requested and r.reply.type is ReplyType.HANDOFF and r.intent == "human_agent", text


@pytest.mark.parametrize(
    ("text", "explicit"),
    [
        ("转人工", True),
        ("人工客服", True),
        ("人工客服吧", True),
        ("帮我转接人工", True),
        ("我要找真人", True),
        ("联系人工客服", True),
        ("人工客服的工作时间是什么时候？", False),
        ("人工客服几点上班", False),
        ("换绑手机号需要人工审核吗", False),
        ("维修的人工费怎么算", False),
        ("不用转人工", False),  # a no to a human
        ("我不要人工客服", False),
        ("别转人工，帮我查下订单", False),
        ("别给我转人工", False),  # words between the "no" and the human
        ("不要再帮我找人工客服了", False),
        ("为什么还不给我转人工", True),
        ("为什么还不转人工", True),  # an impatient request
        ("不行，转人工", True),
    ],
)
def test_explicit_human_request(text: str, explicit: bool) -> None:
    assert explicit_human_request(normalize(text)) is explicit


# ---- numbered choices among offered suggestions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ("1", 0),
        ("2", 1),
        ("３", 2),
        ("②", 1),
        ("1.", 0),
        ("第一个", 0),
        ("第2个", 1),
        ("第三条", 2),
        ("选2", 1),
    ],
)
def test_choice_index(text: str, index: int) -> None:
    assert choice_index(normalize(text)) == index


@pytest.mark.parametrize("text", ["12", "2024112300123", "一二", "第一个问题怎么退", "好的", ""])
def test_not_a_choice(text: str) -> None:
    assert choice_index(normalize(text)) is None


async def _offer(dialog: DialogManager) -> DialogState:
    r = await dialog.handle(DialogState(), "优惠")
    assert r.reply.type is ReplyType.SUGGEST and len(r.reply.suggestions) >= 2
    assert r.state.suggestions == r.reply.suggestions
    assert len(r.state.suggestion_ids) == len(r.reply.suggestions)
    return r.state


@pytest.mark.parametrize(("reply", "index"), [("1", 0), ("２", 1), ("第2个", 1), ("第一个", 0)])
async def test_number_answers_that_suggestion_without_nlu(
    dialog: DialogManager, fake_nlu: FakeNlu, reply: str, index: int
) -> None:
    s = await _offer(dialog)
    fake_nlu.requests.clear()
    r = await dialog.handle(s, reply)
    faq_id = s.suggestion_ids[index]
    assert r.reply.type is ReplyType.ANSWER and r.reply.faq_id == faq_id
    assert r.reply.text == dialog.answers.answer_for(faq_id)
    assert fake_nlu.requests == []  # the choice itself needs no model
    assert r.state.suggestions == [] and r.state.suggestion_ids == []
    assert r.state.last_faq_id == faq_id and r.state.last_question == normalize(s.suggestions[index])


async def test_choice_works_while_serving_is_down(dialog: DialogManager, fake_nlu: FakeNlu) -> None:
    s = await _offer(dialog)
    fake_nlu.fail_with = 503
    r = await dialog.handle(s, "2")
    assert r.reply.type is ReplyType.ANSWER and r.reply.faq_id == s.suggestion_ids[1]


async def test_clicked_chip_text_answers_that_suggestion(dialog: DialogManager, fake_nlu: FakeNlu) -> None:
    s = await _offer(dialog)
    fake_nlu.requests.clear()
    r = await dialog.handle(s, s.suggestions[-1])
    assert r.reply.type is ReplyType.ANSWER and r.reply.faq_id == s.suggestion_ids[-1]
    assert fake_nlu.requests == []


async def test_number_beyond_the_offer_is_not_a_choice(dialog: DialogManager) -> None:
    s = await _offer(dialog)
    r = await dialog.handle(s, str(len(s.suggestions) + 1))
    assert r.reply.type is not ReplyType.ANSWER or r.reply.faq_id not in s.suggestion_ids


async def test_suggestions_are_valid_for_one_turn_only(dialog: DialogManager) -> None:
    s = await _offer(dialog)
    s = (await dialog.handle(s, "你好")).state  # another turn in between
    assert s.suggestions == [] and s.suggestion_ids == []
    r = await dialog.handle(s, "1")
    assert r.reply.type is not ReplyType.ANSWER


async def test_number_without_an_offer_is_not_a_choice(dialog: DialogManager) -> None:
    r = await dialog.handle(DialogState(), "1")
    assert r.reply.type is not ReplyType.ANSWER


async def test_disabled_faq_falls_back_to_looking_the_question_up(dialog: DialogManager) -> None:
    s = await _offer(dialog)
    gone = s.suggestion_ids[0]
    catalog = dialog.answers
    view = catalog.get(gone)  # type: ignore[attr-defined]
    catalog.set_all([v for v in catalog._faqs.values() if v.id != gone])  # type: ignore[attr-defined]
    try:
        r = await dialog.handle(s, "1")
    finally:
        catalog.set_all([*catalog._faqs.values(), view])  # type: ignore[attr-defined]
    assert r.reply.faq_id != gone  # no answer from a FAQ that is gone; the question went through NLU


# ---- end to end through the chat endpoint (the offer survives in the session store) -------------------------


async def test_chat_numbered_reply_answers_the_offered_suggestion(app_client) -> None:  # type: ignore[no-untyped-def]
    _, client = app_client
    r = await client.post("/api/v1/chat", json={"message": "优惠", "session_id": None})
    first = r.json()
    assert first["reply"]["type"] == "suggest" and len(first["reply"]["suggestions"]) >= 2
    headers = {"X-Session-Token": first["session_token"]}
    r = await client.post(
        "/api/v1/chat", json={"message": "第2个", "session_id": first["session_id"]}, headers=headers
    )
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["reply"]["type"] == "answer" and second["reply"]["faq_id"]
    history = (await client.get(f"/api/v1/sessions/{first['session_id']}/history", headers=headers)).json()
    assert [m["reply_type"] for m in history["messages"] if m["role"] == "bot"] == ["suggest", "answer"]
    assert history["messages"][1]["suggestions"] == first["reply"]["suggestions"]


# ---- "where is my order" does not depend on a confident intent model ----------------------------------------


@pytest.mark.parametrize("text", ["我的订单到哪了", "我的快递怎么还没到", "我买的货到哪了"])
@pytest.mark.parametrize("model_says", ["zzzz", "这个手机内存多大"])  # unsure "other" / confidently wrong
async def test_my_order_asks_for_the_number_whatever_a_weak_model_says(
    dialog: DialogManager, fake_nlu: FakeNlu, monkeypatch: pytest.MonkeyPatch, text: str, model_says: str
) -> None:
    wrong = FakeNlu.intent(fake_nlu, model_says)
    assert wrong.label != "order_status"
    monkeypatch.setattr(fake_nlu, "intent", lambda _text: wrong)
    r = await dialog.handle(DialogState(), text)
    assert r.reply.type is ReplyType.SLOT_PROMPT and r.state.phase is Phase.AWAIT_ORDER_ID, r.reply


async def test_how_to_question_about_orders_still_gets_the_faq(
    dialog: DialogManager, fake_nlu: FakeNlu, monkeypatch: pytest.MonkeyPatch
) -> None:
    unsure = FakeNlu.intent(fake_nlu, "zzzz")  # no rule matches: label "other", confidence 0.3
    monkeypatch.setattr(fake_nlu, "intent", lambda _text: unsure)
    r = await dialog.handle(DialogState(), "怎么查看订单状态？")
    assert r.reply.type is not ReplyType.SLOT_PROMPT and r.state.phase is not Phase.AWAIT_ORDER_ID, r.reply
