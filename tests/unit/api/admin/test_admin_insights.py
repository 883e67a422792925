"""Conversation search + transcript, analytics and unanswered-question mining over seeded conversations."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import numpy as np
from seeding import Conversation, Turn, seed

from api.admin.unanswered import greedy_clusters

CONV = "/api/v1/admin/conversations"
TODAY = datetime.now(UTC).date()
D0 = datetime.combine(TODAY, time(1, 0), tzinfo=UTC)  # today 01:00 UTC
D1 = D0 - timedelta(days=1)


def conversations() -> list[Conversation]:
    return [
        Conversation(
            "s1", D1, [Turn("支持7天无理由退货吗", "answer", "refund_return", 100, "up", "faq-001")]
        ),
        Conversation(
            "s2",
            D1 + timedelta(hours=1),
            [
                Turn("你们的破服务", "handoff", "complaint", 200),
                Turn("我的电话13812345678", "clarify", None, 300, "down"),
            ],
            ticket=True,
        ),
        Conversation(
            "s3",
            D0,
            [
                Turn("怎么修改收货地址呀", "clarify", None, 400),
                Turn("收货地址怎么改", "fallback", None, 500),
                Turn("能改地址吗", "suggest", "refund_return", 600),
            ],
            rating=2,
        ),
        Conversation("s4", D0 + timedelta(hours=1), [Turn("你好", "template", "greeting", 50, "4")]),
        Conversation("s5", D0 - timedelta(days=10), [Turn("发票抬头写错了", "fallback", "invoice", 999)]),
    ]


async def test_conversation_search_filters(console) -> None:  # type: ignore[no-untyped-def]
    seed(console.services.session_factory, conversations())
    c, h = console.client, console.agent

    async def ids(**params: object) -> list[str]:
        resp = await c.get(CONV, params=params, headers=h)
        assert resp.status_code == 200, resp.text
        return [i["session_id"] for i in resp.json()["items"]]

    assert await ids() == ["s4", "s3", "s2", "s1", "s5"]  # most recent first
    assert await ids(intent="complaint") == ["s2"]
    assert await ids(reply_type="fallback") == ["s3", "s5"]
    assert await ids(feedback="down") == ["s2"]
    assert await ids(feedback="up") == ["s1"]
    assert await ids(handoff="true") == ["s2"]
    assert await ids(handoff="false") == ["s4", "s3", "s1", "s5"]
    assert await ids(date_from=TODAY.isoformat()) == ["s4", "s3"]
    assert await ids(date_to=(TODAY - timedelta(days=2)).isoformat()) == ["s5"]
    assert await ids(q="地址") == ["s3"]
    assert await ids(q="%") == []
    assert await ids(reply_type="fallback", date_from=TODAY.isoformat()) == ["s3"]

    page = (await c.get(CONV, params={"page_size": 2, "page": 2}, headers=h)).json()
    assert page["total"] == 5 and [i["session_id"] for i in page["items"]] == ["s2", "s1"]
    s3 = next(i for i in (await c.get(CONV, headers=h)).json()["items"] if i["session_id"] == "s3")
    assert (
        s3["turns"] == 3
        and s3["last_intent"] == "refund_return"
        and s3["handoff"] is False
        and s3["rating"] == 2
    )
    s2 = next(i for i in (await c.get(CONV, headers=h)).json()["items"] if i["session_id"] == "s2")
    assert s2["feedback"] == {"up": 0, "down": 1} and s2["handoff"] is True

    for bad in ({"page_size": 101}, {"reply_type": "nope"}, {"feedback": "meh"}, {"date_from": "2026-13-01"}):
        assert (await c.get(CONV, params=bad, headers=h)).status_code == 422, bad
    later, earlier = TODAY.isoformat(), (TODAY - timedelta(days=1)).isoformat()
    assert (await c.get(CONV, params={"date_from": later, "date_to": earlier}, headers=h)).status_code == 422


async def test_transcript_is_masked(console) -> None:  # type: ignore[no-untyped-def]
    seed(console.services.session_factory, conversations())
    resp = await console.client.get(f"{CONV}/s2", headers=console.agent)
    assert resp.status_code == 200
    body = resp.json()
    assert "13812345678" not in resp.text and any("138****5678" in m["text"] for m in body["messages"])
    assert [m["role"] for m in body["messages"]] == ["user", "bot", "user", "bot"]
    assert body["messages"][3]["feedback"] == ["down"] and body["messages"][3]["latency_ms"] == 300
    assert body["handoff"] is True
    missing = await console.client.get(f"{CONV}/nope", headers=console.admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"


async def test_analytics(console) -> None:  # type: ignore[no-untyped-def]
    seed(console.services.session_factory, conversations())
    params = {"date_from": (TODAY - timedelta(days=1)).isoformat(), "date_to": TODAY.isoformat()}
    resp = await console.client.get("/api/v1/admin/analytics", params=params, headers=console.admin)
    assert resp.status_code == 200, resp.text
    a = resp.json()
    assert a["turns_per_day"] == [
        {"date": (TODAY - timedelta(days=1)).isoformat(), "turns": 3},
        {"date": TODAY.isoformat(), "turns": 4},
    ]
    assert a["turns"] == 7 and a["conversations"] == 4
    assert a["resolution_rate"] == 0.25  # only s1: answered, no miss, no handoff, no thumbs-down
    assert a["suggest_rate"] == round(1 / 7, 4)
    assert a["clarify_rate"] == round(2 / 7, 4)
    assert a["fallback_rate"] == round(1 / 7, 4)  # s5's fallback is outside the range
    assert a["handoff_rate"] == 0.25
    assert a["top_intents"] == [
        {"intent": "refund_return", "count": 2},
        {"intent": "complaint", "count": 1},
        {"intent": "greeting", "count": 1},
    ]
    assert a["feedback"] == {"up": 1, "down": 1, "ratings_avg": 3.0, "ratings_count": 2}
    assert a["latency"] == {"p50_ms": 300.0, "p99_ms": 600.0}

    empty = (
        await console.client.get(
            "/api/v1/admin/analytics",
            params={"date_from": "2020-01-01", "date_to": "2020-01-02"},
            headers=console.admin,
        )
    ).json()
    assert (
        empty["turns"] == 0
        and empty["resolution_rate"] is None
        and empty["latency"] == {"p50_ms": None, "p99_ms": None}
    )
    assert len(empty["turns_per_day"]) == 2

    default = (await console.client.get("/api/v1/admin/analytics", headers=console.admin)).json()
    assert len(default["turns_per_day"]) == 7 and default["turns"] == 7
    for bad in (
        {"date_from": "2026-02-01", "date_to": "2026-01-01"},
        {"date_from": "2020-01-01", "date_to": "2026-01-01"},
    ):
        resp = await console.client.get("/api/v1/admin/analytics", params=bad, headers=console.admin)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_days_at_the_ends_of_the_calendar_are_refused_not_500(console) -> None:  # type: ignore[no-untyped-def]
    # the day after date_to / the default 7-day window before it would not exist (OverflowError)
    for path, params in (
        (CONV, {"date_to": "9999-12-31"}),
        (CONV, {"date_from": "9999-12-31", "date_to": "9999-12-31"}),
        ("/api/v1/admin/analytics", {"date_from": "9999-12-31", "date_to": "9999-12-31"}),
        ("/api/v1/admin/analytics", {"date_to": "0001-01-03"}),
    ):
        resp = await console.client.get(path, params=params, headers=console.admin)
        assert resp.status_code == 422, (path, params, resp.text)
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"


def test_greedy_clusters() -> None:
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    near_a = np.array([0.95, 0.2, 0.0])  # cos ~0.98 with a
    mid = np.array([0.7, 0.7, 0.1])  # cos ~0.7 with a and b: its own cluster
    vectors = np.stack([a, b, near_a, mid, 2 * b, np.zeros(3)])
    assert greedy_clusters(vectors, 0.8) == [[0, 2], [1, 4], [3], [5]]
    assert greedy_clusters(np.zeros((0, 3))) == []
    assert greedy_clusters(vectors, 0.0)[0][:3] == [
        0,
        1,
        2,
    ]  # threshold 0: everything joins the first cluster


def unanswered_seed() -> list[Conversation]:
    return [
        Conversation("sA", D0, [Turn("收货地址怎么修改", "clarify"), Turn("收货地址怎么修改呀", "fallback")]),
        Conversation(
            "sB",
            D0 + timedelta(minutes=5),
            [
                Turn("收货地址怎么修改", "clarify"),
                Turn("能用花呗分期付款吗", "answer", "payment", None, "down", "faq-047"),
            ],
        ),
        Conversation(
            "sC",
            D0 + timedelta(minutes=9),
            [Turn("支持7天无理由退货吗", "answer", None, None, "up", "faq-001")],
        ),
        Conversation("sD", D0 - timedelta(days=10), [Turn("发票抬头写错了", "fallback")]),
    ]


async def test_unanswered_mining_and_accept(console) -> None:  # type: ignore[no-untyped-def]
    seed(console.services.session_factory, unanswered_seed())
    c, h = console.client, console.admin
    resp = await c.get("/api/v1/admin/unanswered", params={"days": 7}, headers=h)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["messages"] == 4 and body["threshold"] == 0.8
    first, second = body["clusters"]
    assert (first["size"], first["representative"]) == (3, "收货地址怎么修改")
    assert first["questions"] == ["收货地址怎么修改", "收货地址怎么修改呀"]
    assert (
        first["suggested_faq_id"] == "faq-033"
        and first["suggested_faq_question"] == "下单后可以修改收货地址吗？"
    )
    assert (second["size"], second["representative"], second["suggested_faq_id"]) == (
        1,
        "能用花呗分期付款吗",
        "faq-047",
    )
    again = (await c.get("/api/v1/admin/unanswered", headers=h)).json()
    assert [x["id"] for x in again["clusters"]] == [first["id"], second["id"]]  # stable ids
    assert (
        len((await c.get("/api/v1/admin/unanswered", params={"days": 30}, headers=h)).json()["clusters"]) == 3
    )

    rev = (await c.get("/api/v1/admin/faqs", headers=h)).json()["kb_revision"]
    acc = await c.post(
        f"/api/v1/admin/unanswered/{first['id']}/accept", json={"action": "similar"}, headers=h
    )
    assert acc.status_code == 200, acc.text
    assert acc.json()["faq"]["id"] == "faq-033" and acc.json()["added_similar"] == 2
    assert {"收货地址怎么修改", "收货地址怎么修改呀"} <= set(acc.json()["faq"]["similar"])
    assert (await c.get("/api/v1/admin/faqs", headers=h)).json()["kb_revision"] == rev + 1
    dup = await c.post(
        f"/api/v1/admin/unanswered/{first['id']}/accept", json={"action": "similar"}, headers=h
    )
    assert dup.status_code == 409

    left = (await c.get("/api/v1/admin/unanswered", headers=h)).json()["clusters"]
    assert [x["representative"] for x in left] == [
        "能用花呗分期付款吗"
    ]  # accepted messages are not mined again

    no_answer = await c.post(
        f"/api/v1/admin/unanswered/{second['id']}/accept", json={"action": "new_faq"}, headers=h
    )
    assert no_answer.status_code == 422
    new = await c.post(
        f"/api/v1/admin/unanswered/{second['id']}/accept",
        json={
            "action": "new_faq",
            "question": "可以用花呗分期付款吗？",
            "answer": "支持，结算页选择花呗分期。",
            "category": "支付",
        },
        headers=h,
    )
    assert new.status_code == 200, new.text
    faq = new.json()["faq"]
    assert (
        faq["question"] == "可以用花呗分期付款吗？"
        and faq["similar"] == ["能用花呗分期付款吗"]
        and faq["category"] == "支付"
    )
    assert console.services.catalog.answer_for(faq["id"]) == "支持，结算页选择花呗分期。"
    assert (await c.get("/api/v1/admin/unanswered", headers=h)).json()["clusters"] == []

    missing = await c.post(
        "/api/v1/admin/unanswered/nope/accept", json={"action": "similar", "faq_id": "faq-001"}, headers=h
    )
    assert missing.status_code == 404
    bad = await c.post(
        f"/api/v1/admin/unanswered/{second['id']}/accept", json={"action": "delete"}, headers=h
    )
    assert bad.status_code == 422
    assert (await c.get("/api/v1/admin/unanswered", params={"days": 91}, headers=h)).status_code == 422


async def test_unanswered_serving_down(console) -> None:  # type: ignore[no-untyped-def]
    seed(console.services.session_factory, unanswered_seed())
    console.fake.fail_with = 503
    resp = await console.client.get("/api/v1/admin/unanswered", headers=console.admin)
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "SERVING_UNAVAILABLE"


async def test_console_views_over_real_chat_traffic(console) -> None:  # type: ignore[no-untyped-def]
    """Data written by the real chat path + durable writer (not seeded) shows up in every console view."""
    c = console.client
    first = (await c.post("/api/v1/chat", json={"message": "满多少包邮啊"})).json()
    sid, token = first["session_id"], first["session_token"]
    assert first["reply"]["type"] == "answer"
    auth = {"X-Session-Token": token}
    second = (
        await c.post(
            "/api/v1/chat",
            json={"message": "我手机13812345678，今天股票行情怎么样", "session_id": sid},
            headers=auth,
        )
    ).json()
    assert second["reply"]["type"] == "fallback"
    fb = await c.post(
        "/api/v1/feedback",
        json={"message_id": first["message_id"], "rating": "down", "session_id": sid},
        headers=auth,
    )
    assert fb.status_code == 204
    await console.services.writer.flush()

    items = (await c.get(CONV, params={"feedback": "down"}, headers=console.agent)).json()["items"]
    assert [i["session_id"] for i in items] == [sid]
    assert items[0]["turns"] == 2 and items[0]["feedback"] == {"up": 0, "down": 1}
    assert [
        i["session_id"]
        for i in (await c.get(CONV, params={"reply_type": "fallback"}, headers=console.agent)).json()["items"]
    ] == [sid]
    transcript = (await c.get(f"{CONV}/{sid}", headers=console.agent)).json()
    assert "13812345678" not in str(transcript)
    assert [m["reply_type"] for m in transcript["messages"] if m["role"] == "bot"] == ["answer", "fallback"]
    assert transcript["messages"][1]["feedback"] == ["down"] and transcript["messages"][1]["latency_ms"] > 0

    stats = (await c.get("/api/v1/admin/analytics", headers=console.admin)).json()
    assert stats["turns"] == 2 and stats["fallback_rate"] == 0.5 and stats["resolution_rate"] == 0.0
    assert stats["feedback"]["down"] == 1 and stats["latency"]["p50_ms"] is not None

    mined = (await c.get("/api/v1/admin/unanswered", headers=console.admin)).json()
    reps = sorted(x["representative"] for x in mined["clusters"])
    assert reps == ["我手机138****5678，今天股票行情怎么样", "满多少包邮啊"]
    assert "13812345678" not in str(mined)
