"""Index publish/list/rollback through the (fake) serving app, templates editing, and the playground."""

from __future__ import annotations

from sqlalchemy import func, select, update

from api.db.models import AuditLog, Faq, Message

INDEX = "/api/v1/admin/index"
TEMPLATES = "/api/v1/admin/templates"
PLAY = "/api/v1/admin/playground"


def _enabled_faqs(console) -> int:  # type: ignore[no-untyped-def]
    with console.services.session_factory() as db:
        return int(db.scalar(select(func.count()).select_from(Faq).where(Faq.enabled.is_(True))) or 0)


async def test_publish_list_and_rollback(console) -> None:  # type: ignore[no-untyped-def]
    c, h, fake = console.client, console.admin, console.fake
    # one FAQ disabled: it must not be indexed
    assert (await c.put("/api/v1/admin/faqs/faq-002", json={"enabled": False}, headers=h)).status_code == 200
    enabled = _enabled_faqs(console)

    first = await c.post(f"{INDEX}/publish", headers=h)
    assert first.status_code == 200, first.text
    v1 = first.json()
    assert v1["active"] is True and v1["index_type"] == "flat"
    entries = fake.index_entries[v1["version"]]
    assert len(entries) == enabled == v1["entries"]
    assert "faq-002" not in {e.faq_id for e in entries}
    faq1 = next(e for e in entries if e.faq_id == "faq-001")
    assert (
        faq1.question == "支持7天无理由退货吗？"
        and "能7天无理由退吗" in faq1.similar
        and faq1.category == "退换货"
    )
    assert v1["size"] == sum(1 + len(e.similar) for e in entries)

    listing = (await c.get(INDEX, headers=h)).json()
    assert listing["live_version"] == v1["version"] and listing["stale"] is False
    assert listing["live_kb_revision"] == listing["kb_revision"] == v1["kb_revision"]

    # a KB change makes the live index stale until the next publish
    assert (await c.put("/api/v1/admin/faqs/faq-002", json={"enabled": True}, headers=h)).status_code == 200
    listing = (await c.get(INDEX, headers=h)).json()
    assert listing["stale"] is True and listing["kb_revision"] == v1["kb_revision"] + 1

    v2 = (await c.post(f"{INDEX}/publish", headers=h)).json()
    assert v2["version"] != v1["version"] and v2["entries"] == enabled + 1
    listing = (await c.get(INDEX, headers=h)).json()
    assert listing["live_version"] == v2["version"] and listing["stale"] is False
    assert {v["version"] for v in listing["versions"]} == {v1["version"], v2["version"]}
    assert [v["active"] for v in listing["versions"] if v["version"] == v2["version"]] == [True]

    back = await c.post(f"{INDEX}/{v1['version']}/activate", headers=h)
    assert (
        back.status_code == 200 and back.json()["version"] == v1["version"] and back.json()["active"] is True
    )
    listing = (await c.get(INDEX, headers=h)).json()
    assert listing["live_version"] == v1["version"] and listing["stale"] is True  # rolled back to an older KB

    missing = await c.post(f"{INDEX}/no-such-version/activate", headers=h)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "INDEX_NOT_FOUND"
    weird = await c.post(f"{INDEX}/..%2F..%2Fetc/activate", headers=h)
    assert weird.status_code == 404
    # serving refuses an index built by another embedder: the console gets that reason, not "serving down"
    console.fake.other_embedder.add(v2["version"])
    refused = await c.post(f"{INDEX}/{v2['version']}/activate", headers=h)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "INDEX_EMBEDDER_MISMATCH"
    assert (await c.get(INDEX, headers=h)).json()["live_version"] == v1["version"]

    with console.services.session_factory() as db:
        actions = list(
            db.scalars(select(AuditLog.action).where(AuditLog.action.like("index.%")).order_by(AuditLog.id))
        )
    assert actions == ["index.publish", "index.publish", "index.activate"]


async def test_a_version_serving_re_embedded_carries_its_sources_kb_revision(console) -> None:  # type: ignore[no-untyped-def]
    """After an embedder change serving re-embeds the live index's own questions into a new version
    (`derived_from`): the console showed it with an unknown KB revision, i.e. stale, though the KB had not moved."""
    c, h, fake = console.client, console.admin, console.fake
    v1 = (await c.post(f"{INDEX}/publish", headers=h)).json()
    derived = fake.indexes[v1["version"]].model_copy(
        update={
            "version": "derived-1",
            "embedder_version": "fake-2",
            "derived_from": v1["version"],
            "created_at": "2026-01-02T00:00:00Z",
        }
    )
    fake.indexes["derived-1"], fake.active_index = derived, "derived-1"  # what serving did by itself

    listing = (await c.get(INDEX, headers=h)).json()
    assert listing["live_version"] == "derived-1" and listing["stale"] is False
    assert listing["live_kb_revision"] == listing["kb_revision"] == v1["kb_revision"]
    assert [v["kb_revision"] for v in listing["versions"]] == [v1["kb_revision"], v1["kb_revision"]]
    assert (await c.post(f"{INDEX}/{v1['version']}/activate", headers=h)).status_code == 200
    back = await c.post(f"{INDEX}/derived-1/activate", headers=h)
    assert back.status_code == 200 and back.json()["kb_revision"] == v1["kb_revision"]

    # a KB change makes it stale like any live index
    assert (await c.put("/api/v1/admin/faqs/faq-002", json={"enabled": False}, headers=h)).status_code == 200
    assert (await c.get(INDEX, headers=h)).json()["stale"] is True


async def test_index_endpoints_report_serving_down_with_a_stable_code(console) -> None:  # type: ignore[no-untyped-def]
    c, h = console.client, console.admin
    console.fake.fail_with = 503
    for method, path in (("POST", f"{INDEX}/publish"), ("GET", INDEX), ("POST", f"{INDEX}/v1/activate")):
        resp = await c.request(method, path, headers=h)
        assert resp.status_code == 503, path
        assert resp.json()["error"]["code"] == "SERVING_UNAVAILABLE"
        assert "fake failure" not in resp.text


async def test_publish_refuses_an_empty_kb(console) -> None:  # type: ignore[no-untyped-def]
    with console.services.session_factory() as db, db.begin():
        db.execute(update(Faq).values(enabled=False))
    resp = await console.client.post(f"{INDEX}/publish", headers=console.admin)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "KB_EMPTY"
    assert console.fake.indexes == {}


async def test_templates_list_and_update_reach_the_chat_path(console) -> None:  # type: ignore[no-untyped-def]
    c, h = console.client, console.admin
    items = {t["key"]: t for t in (await c.get(TEMPLATES, headers=h)).json()["items"]}
    order = items["dialog:order_status_answer"]
    assert set(order["variables"]) == {"order_id", "status", "carrier", "tracking_no", "updated_at", "items"}
    assert items["intent:greeting"]["variables"] == [] and len(items["intent:greeting"]["variants"]) >= 1

    new = {"variants": ["  您好！我是新版小客，请问有什么可以帮您？ "]}
    resp = await c.put(f"{TEMPLATES}/intent:greeting", json=new, headers=h)
    assert resp.status_code == 200, resp.text
    assert resp.json()["variants"] == ["您好！我是新版小客，请问有什么可以帮您？"]
    chat = (await c.post("/api/v1/chat", json={"message": "你好"})).json()
    assert chat["reply"]["type"] == "template"
    assert chat["reply"]["text"] == "您好！我是新版小客，请问有什么可以帮您？"

    ok = await c.put(
        f"{TEMPLATES}/dialog:order_not_found", json={"variants": ["查不到 {order_id}，请核对。"]}, headers=h
    )
    assert ok.status_code == 200
    assert console.services.templates.variants("dialog:order_not_found") == ["查不到 {order_id}，请核对。"]


async def test_template_validation(console) -> None:  # type: ignore[no-untyped-def]
    c, h = console.client, console.admin
    invalid = [
        ("dialog:order_not_found", ["订单 {order_id} 的手机号 {phone}"]),  # variable not passed for this key
        ("intent:greeting", ["您好 {order_id}"]),  # small talk takes no variables
        ("dialog:order_not_found", ["订单 {order_id"]),  # unbalanced brace
        ("dialog:order_not_found", ["订单 {0.__class__}"]),
        ("dialog:clarify", ["正常", "   "]),  # empty variant
        ("dialog:clarify", ["长" * 1001]),
    ]
    for key, variants in invalid:
        resp = await c.put(f"{TEMPLATES}/{key}", json={"variants": variants}, headers=h)
        assert resp.status_code == 422, (key, variants)
        assert resp.json()["error"]["code"] == "TEMPLATE_INVALID"
    assert (await c.put(f"{TEMPLATES}/dialog:clarify", json={"variants": []}, headers=h)).status_code == 422
    unknown = await c.put(f"{TEMPLATES}/intent:no_such_key", json={"variants": ["x"]}, headers=h)
    assert unknown.status_code == 404
    bad_key = await c.put(f"{TEMPLATES}/Robert');DROP", json={"variants": ["x"]}, headers=h)
    assert bad_key.status_code in (404, 422)
    assert console.services.templates.variants("dialog:clarify")[0] != "正常"


async def test_playground_uses_the_dialog_manager(console) -> None:  # type: ignore[no-untyped-def]
    c = console.client
    for headers in (console.admin, console.agent):
        resp = await c.post(PLAY, json={"message": "支持7天无理由退货吗？"}, headers=headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["band"] == "answer" and body["reply"]["faq_id"] == "faq-001"
        assert body["intent"] == "refund_return" and body["intent_top_k"][0]["label"] == "refund_return"
        assert body["candidates"][0]["faq_id"] == "faq-001"
        assert {"dense_score", "keyword_score", "fused_score", "matched"} <= set(body["candidates"][0])
        # the FAQ's intent and whether the classifier's confident reading agrees with it
        assert body["candidates"][0]["intent"] == "refund_return" and body["candidates"][0]["intent_agrees"]
        assert not any(x["intent_agrees"] for x in body["candidates"] if x["intent"] != "refund_return")
        assert body["thresholds"] == {"answer": 0.45, "suggest": 0.25, "intent": 0.6}
        assert body["candidates"][0]["fused_score"] >= body["thresholds"]["answer"]
        assert body["sentiment"]["label"] == "neutral"

    greet = (await c.post(PLAY, json={"message": "你好"}, headers=console.admin)).json()
    assert greet["band"] == "template"
    human = (await c.post(PLAY, json={"message": "转人工"}, headers=console.admin)).json()
    assert human["band"] == "handoff" and human["intent_top_k"]
    pii = (
        await c.post(PLAY, json={"message": "我手机13812345678，退货运费谁出"}, headers=console.admin)
    ).json()
    assert "13812345678" not in str(pii) and "138****5678" in pii["normalized"]

    with console.services.session_factory() as db:
        assert db.scalar(select(func.count()).select_from(Message)) == 0  # nothing recorded

    for message, code in (
        ("   ", "MESSAGE_EMPTY"),
        ("长" * 1001, "MESSAGE_TOO_LONG"),
        ("长" * 4001, "MESSAGE_TOO_LONG"),
    ):
        resp = await c.post(PLAY, json={"message": message}, headers=console.admin)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == code

    console.fake.fail_with = 503
    down = await c.post(PLAY, json={"message": "退货运费谁出"}, headers=console.admin)
    assert down.status_code == 503 and down.json()["error"]["code"] == "SERVING_UNAVAILABLE"
