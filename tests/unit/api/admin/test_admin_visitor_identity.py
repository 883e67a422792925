"""Who the agent is talking to: the console's ticket queue, transcripts and conversation list say whether the shop
vouched for the visitor (api.identity) and which customer it is, from the verified id only, never from an id the
widget merely claimed; the list finds a customer's conversations by that verified id alone.

An agent told "anonymous" does not discuss orders or accounts on the visitor's word; one told "verified · <id>" does
not make a signed-in customer prove who they are again."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from api_fakes import IDENTITY_SECRET
from sqlalchemy import event, inspect, text

from api.admin import conversations
from api.db.engine import make_engine, make_session_factory
from api.db.migrate import downgrade, upgrade
from api.db.models import HandoffTicket, Visitor
from api.identity import DEMO_CUSTOMER_ID, demo_signature, sign_identity
from api.journal import write_records
from api.sessions import new_session

CONV = "/api/v1/admin/conversations"
VERIFIED = {"verified": True, "customer_id": DEMO_CUSTOMER_ID}
ANONYMOUS = {"verified": False, "customer_id": None}


async def hand_off(console: Any, identity: dict[str, Any]) -> str:
    """A visitor who starts a session with ``identity`` and asks for a human; -> the session id."""
    r = await console.client.post("/api/v1/chat", json={"message": "转人工", **identity})
    assert r.status_code == 200 and r.json()["handoff"] == {"status": "waiting"}, r.text
    return str(r.json()["session_id"])


async def queued(console: Any, session_id: str, status: str = "waiting") -> dict[str, Any]:
    r = await console.client.get("/api/v1/admin/handoffs", params={"status": status}, headers=console.agent)
    assert r.status_code == 200, r.text
    return next(t for t in r.json()["items"] if t["session_id"] == session_id)


async def transcript(console: Any, session_id: str) -> dict[str, Any]:
    r = await console.client.get(f"{CONV}/{session_id}", headers=console.agent)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_agents_see_the_verified_customer_they_talk_to(console) -> None:  # type: ignore[no-untyped-def]
    sid = await hand_off(
        console, {"user_id": DEMO_CUSTOMER_ID, "user_signature": demo_signature(IDENTITY_SECRET)}
    )
    # at once in the queue: the ticket carries it, before the durable writer has landed the visitor's row
    assert (await queued(console, sid))["visitor"] == VERIFIED
    ticket_id = (await queued(console, sid))["ticket_id"]
    taken = await console.client.post(f"/api/v1/admin/handoffs/{ticket_id}/take", headers=console.agent)
    assert taken.status_code == 200 and taken.json()["visitor"] == VERIFIED
    await console.services.writer.flush()
    assert (await transcript(console, sid))["visitor"] == VERIFIED
    # the live session gone (the in-process store after a restart, the Redis TTL): the database still says so
    await console.services.sessions.delete(sid)
    assert (await queued(console, sid, "active"))["visitor"] == VERIFIED
    assert (await transcript(console, sid))["visitor"] == VERIFIED


def _bad_signature() -> str:
    return sign_identity(IDENTITY_SECRET, "demo_user_1002", int(time.time()) + 600)  # another customer's


@pytest.mark.parametrize(
    "identity",
    [
        pytest.param({}, id="no-id"),
        pytest.param({"user_id": DEMO_CUSTOMER_ID}, id="unsigned-claim"),
        pytest.param({"user_id": DEMO_CUSTOMER_ID, "user_signature": "not-a-signature"}, id="bad-signature"),
        pytest.param({"user_id": DEMO_CUSTOMER_ID, "user_signature": _bad_signature()}, id="other-signature"),
    ],
)
async def test_a_visitor_the_shop_did_not_vouch_for_is_anonymous(console, identity: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """Whatever id the widget claims without the shop's signature is shown nowhere in the console."""
    sid = await hand_off(console, identity)
    ticket = await queued(console, sid)
    await console.services.writer.flush()
    history = await transcript(console, sid)
    assert ticket["visitor"] == ANONYMOUS and history["visitor"] == ANONYMOUS
    assert DEMO_CUSTOMER_ID not in str(ticket) and DEMO_CUSTOMER_ID not in str(history)


async def test_a_session_saved_before_the_signature_check_is_anonymous(console) -> None:  # type: ignore[no-untyped-def]
    """A live session an older API saved holds the widget's claim in ``user_id`` and no ``user_verified``: its
    ticket, and the messages it journals, say anonymous."""
    session, token = new_session()
    session.user_id = DEMO_CUSTOMER_ID  # claimed, never checked
    await console.services.sessions.create(session)
    auth = {"X-Session-Token": token}
    r = await console.client.post(f"/api/v1/sessions/{session.id}/handoff", headers=auth)
    assert r.status_code == 200, r.text
    ticket = await queued(console, session.id)
    r = await console.client.post(
        "/api/v1/chat", json={"message": "我的订单呢", "session_id": session.id}, headers=auth
    )
    assert r.status_code == 200, r.text
    await console.services.writer.flush()
    history = await transcript(console, session.id)
    assert ticket["visitor"] == ANONYMOUS and history["visitor"] == ANONYMOUS
    assert DEMO_CUSTOMER_ID not in str(ticket) and DEMO_CUSTOMER_ID not in str(history)


def legacy_message(now: str) -> dict[str, object]:
    """A message record as an API before the signature check journaled it: the widget's ``user_id``, unchecked,
    and no ``user_verified``."""
    return {
        "kind": "message",
        "id": "m_legacy",
        "session_id": "s_legacy",
        "visitor_id": "v_legacy",
        "user_id": DEMO_CUSTOMER_ID,  # claimed, never checked
        "session_started_at": now,
        "role": "user",
        "text": "我的订单呢",
        "created_at": now,
    }


async def test_an_id_recorded_before_the_signature_check_is_not_shown(console) -> None:  # type: ignore[no-untyped-def]
    """A message an older API journaled (no ``user_verified``) carries the widget's unchecked ``user_id``: it lands,
    and the console shows its visitor as anonymous."""
    now = datetime.now(UTC).isoformat()
    legacy = legacy_message(now)
    with console.services.session_factory() as db, db.begin():
        write_records(db, [legacy])
    history = await transcript(console, "s_legacy")
    assert history["visitor"] == ANONYMOUS and DEMO_CUSTOMER_ID not in str(history)


async def start(console: Any, identity: dict[str, Any], message: str = "你好") -> str:
    """A visitor who starts a session with ``identity``; -> the session id."""
    r = await console.client.post("/api/v1/chat", json={"message": message, **identity})
    assert r.status_code == 200, r.text
    return str(r.json()["session_id"])


async def listed(console: Any, **params: object) -> dict[str, dict[str, Any]]:
    """The conversation list (agent's token): session id -> item, most recent first."""
    r = await console.client.get(CONV, params=params, headers=console.agent)
    assert r.status_code == 200, r.text
    assert r.json()["total"] == len(r.json()["items"])
    return {i["session_id"]: i for i in r.json()["items"]}


def _signed(user_id: str) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "user_signature": sign_identity(IDENTITY_SECRET, user_id, int(time.time()) + 600),
    }


async def test_the_list_shows_each_visitor_and_finds_a_customers_conversations(console) -> None:  # type: ignore[no-untyped-def]
    """A customer calls about an earlier chat: the admin finds all of that customer's conversations by the id the
    shop verified, and none of a visitor who merely typed that id into a page."""
    first = await start(console, _signed(DEMO_CUSTOMER_ID), "我的订单呢")
    claimed = await start(console, {"user_id": DEMO_CUSTOMER_ID})  # unsigned: a claim
    forged = await start(console, {"user_id": DEMO_CUSTOMER_ID, "user_signature": _bad_signature()})
    other = await start(console, _signed("demo_user_1002"))
    anonymous = await start(console, {})
    second = await start(console, _signed(DEMO_CUSTOMER_ID), "发票抬头写错了")
    await console.services.writer.flush()

    everyone = await listed(console)
    assert {sid: item["visitor"] for sid, item in everyone.items()} == {
        first: VERIFIED,
        claimed: ANONYMOUS,
        forged: ANONYMOUS,
        other: {"verified": True, "customer_id": "demo_user_1002"},
        anonymous: ANONYMOUS,
        second: VERIFIED,
    }
    assert list(await listed(console, customer_id=DEMO_CUSTOMER_ID)) == [second, first]  # most recent first
    assert list(await listed(console, customer_id="demo_user_1002")) == [other]
    assert list(await listed(console, customer_id="demo_user_100")) == []  # exact, not a prefix
    assert list(await listed(console, customer_id="DEMO_USER_1001")) == []  # the shop's id as it signed it
    assert set(await listed(console, verified="true")) == {first, other, second}
    assert set(await listed(console, verified="false")) == {claimed, forged, anonymous}
    assert list(await listed(console, customer_id=DEMO_CUSTOMER_ID, verified="false")) == []
    assert list(await listed(console, customer_id=DEMO_CUSTOMER_ID, q="抬头写错")) == [second]
    # admins too, and the transcript says the same as the list
    r = await console.client.get(CONV, params={"customer_id": DEMO_CUSTOMER_ID}, headers=console.admin)
    assert [i["session_id"] for i in r.json()["items"]] == [second, first]
    assert (await transcript(console, claimed))["visitor"] == everyone[claimed]["visitor"] == ANONYMOUS


async def test_the_list_of_a_customer_leaves_out_ids_recorded_before_the_signature_check(console) -> None:  # type: ignore[no-untyped-def]
    """A visitor row an older API wrote holds the widget's unchecked id: the list shows it anonymous and the
    customer filter does not find it."""
    now = datetime.now(UTC).isoformat()
    legacy = legacy_message(now)
    orphan = {
        **legacy,
        "id": "m_orphan",
        "session_id": "s_orphan",
        "visitor_id": None,
    }  # no visitor row at all
    with console.services.session_factory() as db, db.begin():
        write_records(db, [legacy, orphan])
    items = await listed(console)
    assert items["s_legacy"]["visitor"] == ANONYMOUS and items["s_orphan"]["visitor"] == ANONYMOUS
    assert await listed(console, customer_id=DEMO_CUSTOMER_ID) == {}
    assert await listed(console, verified="true") == {}
    assert set(await listed(console, verified="false")) == {"s_legacy", "s_orphan"}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"customer_id": "u" * 129}, id="too-long"),
        pytest.param({"customer_id": ""}, id="empty"),
        pytest.param({"verified": "maybe"}, id="not-a-bool"),
    ],
)
async def test_a_bad_customer_filter_is_refused(console, params: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """An empty id would list every customer's conversations to an admin who thinks they filtered."""
    r = await console.client.get(CONV, params=params, headers=console.agent)
    assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR", r.text
    assert "u" * 129 not in r.text  # the value is never echoed


async def test_the_longest_customer_id_the_widget_may_send_is_searchable(console) -> None:  # type: ignore[no-untyped-def]
    long_id = "u" * 128
    sid = await start(console, _signed(long_id))
    await console.services.writer.flush()
    assert list(await listed(console, customer_id=long_id)) == [sid]


def test_one_customers_conversations_are_found_through_indexes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The customer filter reads that customer's visitor rows (``ix_visitors_external_user_id``) and their sessions
    (``ix_chat_sessions_visitor_id``, 0004), not every session: SQLite had no index on visitor_id before."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    upgrade(engine)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        statements.append((statement, params))

    with make_session_factory(engine)() as db:
        conversations.search(db, customer_id=DEMO_CUSTOMER_ID)
    count_sql, params = next((s, p) for s, p in statements if s.lstrip().upper().startswith("SELECT COUNT"))
    with engine.connect() as conn:
        plan = " | ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {count_sql}", params))
    assert "ix_chat_sessions_visitor_id" in plan and "ix_visitors_external_user_id" in plan, plan
    assert "SCAN chat_sessions" not in plan, plan
    downgrade(engine, "0003_identity")  # and back: 0004 only adds the index
    with engine.connect() as conn:
        assert "ix_chat_sessions_visitor_id" not in {
            i["name"] for i in inspect(conn).get_indexes("chat_sessions")
        }
    upgrade(engine)
    engine.dispose()


def test_the_migration_leaves_existing_visitors_and_tickets_anonymous(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Rows written before 0003 hold ids nobody verified: upgraded, they say anonymous (and the downgrade drops
    the columns again)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0002_admin")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO visitors (id, external_user_id, created_at) VALUES ('v_old', 'u_claimed', :at)"
            ),
            {"at": datetime(2026, 11, 1)},
        )
        conn.execute(
            text(
                "INSERT INTO handoff_tickets (id, session_id, status, created_at) "
                "VALUES ('t_old', 's_old', 'waiting', :at)"
            ),
            {"at": datetime(2026, 11, 1)},
        )
    upgrade(engine)
    with make_session_factory(engine)() as db:
        visitor, ticket = db.get(Visitor, "v_old"), db.get(HandoffTicket, "t_old")
        assert visitor is not None and visitor.external_user_id == "u_claimed" and visitor.verified is False
        assert ticket is not None and ticket.customer_id is None
    downgrade(engine, "0002_admin")
    upgrade(engine)
    engine.dispose()
