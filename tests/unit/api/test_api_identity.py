"""Visitor identity (api/identity.py): the shop's backend signs its signed-in shopper's id for the widget embed; the
API checks the signature when a session starts and looks orders up only for a verified visitor, and only theirs."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fakes import IDENTITY_SECRET
from pydantic import ValidationError

from api.handoff import message_record
from api.identity import (
    DEMO_CUSTOMER_ID,
    MAX_LIFETIME_S,
    IdentityCheck,
    check_identity,
    demo_signature,
    sign_identity,
)
from api.main import DEMO_IDENTITY_SLOT
from api.sessions import Session, Turn, new_session
from api.settings import DEV_IDENTITY_SECRET, Settings

REPO = Path(__file__).resolve().parents[3]
NOW = 1_767_225_600.0
OTHER_SECRET = "another-shops-identity-secret-0123456789"


def signed(user_id: str, *, ttl: int = 3600, secret: str = IDENTITY_SECRET, now: float = NOW) -> str:
    return sign_identity(secret, user_id, int(now) + ttl)


# ---- signing and checking -------------------------------------------------------------------------------------
def test_a_signature_made_with_the_secret_verifies_its_user() -> None:
    assert check_identity(IDENTITY_SECRET, "u_1001", signed("u_1001"), NOW) is IdentityCheck.VERIFIED
    assert check_identity(IDENTITY_SECRET, "张三@shop", signed("张三@shop"), NOW) is IdentityCheck.VERIFIED


@pytest.mark.parametrize(
    ("user_id", "signature", "expected"),
    [
        (None, None, IdentityCheck.ANONYMOUS),
        ("", signed("u_1001"), IdentityCheck.ANONYMOUS),
        ("u_1001", None, IdentityCheck.UNSIGNED),  # a bare claim: what any visitor could send before
        ("u_1001", "", IdentityCheck.UNSIGNED),
        ("u_1001", signed("u_1002"), IdentityCheck.INVALID),  # another user's signature
        ("u_1001", signed("u_1001", secret=OTHER_SECRET), IdentityCheck.INVALID),  # not our secret
        ("u_1001", signed("u_1001", ttl=-1), IdentityCheck.EXPIRED),
        ("u_1001", signed("u_1001", ttl=MAX_LIFETIME_S + 3600), IdentityCheck.INVALID),  # good for too long
        # the expiry is signed too: a stolen signature cannot be given a later one
        ("u_1001", f"{int(NOW) + 7200}.{signed('u_1001', ttl=-1).split('.')[1]}", IdentityCheck.INVALID),
        ("u_1001", signed("u_1001").split(".")[1], IdentityCheck.INVALID),  # the MAC without its expiry
        ("u_1001", "garbage", IdentityCheck.INVALID),
        ("u_1001", "1.2.3", IdentityCheck.INVALID),
        ("u_1001", "9" * 40 + "." + "a" * 64, IdentityCheck.INVALID),
    ],
)
def test_what_does_not_verify(user_id: str | None, signature: str | None, expected: IdentityCheck) -> None:
    assert check_identity(IDENTITY_SECRET, user_id, signature, NOW) is expected


def test_without_a_secret_nobody_is_verified() -> None:
    assert check_identity(None, "u_1001", signed("u_1001"), NOW) is IdentityCheck.NO_SECRET
    assert IdentityCheck.NO_SECRET.reported == IdentityCheck.EXPIRED.reported == "rejected"


def test_the_identity_secret_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("API_ENV", "API_SECRET_KEY", "API_IDENTITY_SECRET", "API_ORDER_LOOKUP"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name + "_FILE", raising=False)
    assert Settings(_env_file=None).identity_key == DEV_IDENTITY_SECRET  # make run: the demo page signs in
    monkeypatch.setenv("API_ENV", "production")
    monkeypatch.setenv("API_SECRET_KEY", "k" * 40)
    assert Settings(_env_file=None).identity_key is None  # never the public development value
    for weak in ("too-short", DEV_IDENTITY_SECRET):
        monkeypatch.setenv("API_IDENTITY_SECRET", weak)
        with pytest.raises(ValidationError, match="API_IDENTITY_SECRET must be a random value"):
            Settings(_env_file=None)
    monkeypatch.setenv("API_IDENTITY_SECRET", IDENTITY_SECRET)
    s = Settings(_env_file=None)
    assert s.identity_key == IDENTITY_SECRET and IDENTITY_SECRET not in repr(s)


# ---- the chat API -----------------------------------------------------------------------------------------------
def demo_customer(**over: Any) -> dict[str, Any]:
    return {"user_id": DEMO_CUSTOMER_ID, "user_signature": demo_signature(IDENTITY_SECRET), **over}


async def post(client: httpx.AsyncClient, message: str, identity: dict[str, Any] | None = None) -> Any:
    r = await client.post("/api/v1/chat", json={"message": message, **(identity or {})})
    assert r.status_code == 200, r.text  # never an error for the visitor, whatever the shop sent
    return r.json()


def checks(app: Any, result: str) -> float:
    value = app.state.services.metrics.registry.get_sample_value(
        "xiaoke_api_identity_checks_total", {"result": result}
    )
    return float(value or 0.0)


async def test_a_session_started_with_the_shops_signature_sees_its_own_orders(app_client) -> None:  # type: ignore[no-untyped-def]
    app, client = app_client
    data = await post(client, "订单2024112300123到哪了", demo_customer())
    assert data["identity"] == "verified"
    assert data["reply"]["type"] == "answer" and "SF1428373612045" in data["reply"]["text"]
    session = await app.state.services.sessions.get(data["session_id"])
    assert session.verified_user_id == DEMO_CUSTOMER_ID and session.user_verified
    assert checks(app, "verified") == 1
    other = await post(client, "订单2024112600567到哪了", demo_customer())  # another customer's order
    assert other["reply"]["type"] == "slot_prompt" and "YT7512346980221" not in other["reply"]["text"]


@pytest.mark.parametrize(
    ("identity", "result"),
    [
        ({"user_id": DEMO_CUSTOMER_ID}, "unsigned"),  # the claim anyone could make
        (demo_customer(user_signature=sign_identity(IDENTITY_SECRET, "demo_user_1002", int(time.time()) + 60)), "invalid"),
        (demo_customer(user_signature=sign_identity(IDENTITY_SECRET, DEMO_CUSTOMER_ID, int(time.time()) - 1)), "expired"),
        (demo_customer(user_signature=sign_identity(OTHER_SECRET, DEMO_CUSTOMER_ID, int(time.time()) + 60)), "invalid"),
        (demo_customer(user_signature="not-a-signature"), "invalid"),
    ],
)  # fmt: skip
async def test_a_claim_that_does_not_verify_starts_an_anonymous_session(  # type: ignore[no-untyped-def]
    app_client, identity: dict[str, Any], result: str
) -> None:
    """A wrong, expired or missing signature does not fail the chat (a shop's misconfiguration must not take the
    widget down): the session starts anonymous, the response says "rejected", the check is counted; and the
    order behind the claimed id is not shown."""
    app, client = app_client
    data = await post(client, "订单2024112300123到哪了", identity)
    assert data["identity"] == "rejected"
    templates = app.state.services.templates
    assert data["reply"]["type"] == "template" and data["reply"]["quick_replies"] == ["转人工"]
    assert data["reply"]["text"] in templates.variants("dialog:order_login_required")
    session = await app.state.services.sessions.get(data["session_id"])
    assert session.user_id is None and session.verified_user_id is None
    assert checks(app, result) == 1


async def test_the_identity_is_the_one_the_session_started_with(app_client) -> None:  # type: ignore[no-untyped-def]
    """Checked once, when the session starts: a signed id sent with a later turn of an anonymous session does not
    sign it in (the session token, not the body, says which conversation this is)."""
    app, client = app_client
    first = await post(client, "你好")
    assert first["identity"] == "anonymous" and checks(app, "anonymous") == 1
    r = await client.post(
        "/api/v1/chat",
        json={"message": "订单2024112300123到哪了", "session_id": first["session_id"], **demo_customer()},
        headers={"X-Session-Token": first["session_token"]},
    )
    data = r.json()
    assert data["identity"] is None
    assert data["reply"]["text"] in app.state.services.templates.variants("dialog:order_login_required")


def test_only_a_verified_id_is_recorded_as_the_visitors() -> None:
    """visitors.external_user_id (the durable writer's record of a message) gets a verified id only; a session
    saved before verification existed holds an unchecked claim and no user_verified: anonymous."""
    claimed = Session(id="s_old", token_hash="h", visitor_id="v_old", user_id="u_1001")
    assert claimed.verified_user_id is None
    assert message_record(claimed, Turn(role="user", text="你好"))["user_id"] is None
    verified, _ = new_session("u_1001")
    assert message_record(verified, Turn(role="user", text="你好"))["user_id"] == "u_1001"


async def test_the_demo_table_shows_an_order_to_its_owner_only(tmp_path: Path) -> None:
    """DemoOrderLookup on a real (SQLite) demo table: the owner is the order's customer_id. A table seeded before
    orders had owners (a developer's var/xiaoke.db) would show the demo customer nothing: the seed gives each
    order its owner from data/demo/orders.json."""
    from api.db.engine import make_engine, make_session_factory
    from api.db.migrate import upgrade
    from api.db.models import DemoOrder
    from api.db.seed import seed_demo
    from api.dialog.orders import DemoOrderLookup

    engine = make_engine(f"sqlite:///{tmp_path / 'xiaoke.db'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as db:  # as the seed wrote it before
        db.add(
            DemoOrder(id="2024112300123", status="运输中", tracking_no="SF1428373612045", items=[], extra={})
        )
        db.commit()
    lookup = DemoOrderLookup(factory)
    assert await lookup.lookup("2024112300123", DEMO_CUSTOMER_ID) is None
    with factory() as db:
        assert seed_demo(db, REPO / "data" / "demo")["orders"] == 1
    mine = await lookup.lookup("2024112300123", DEMO_CUSTOMER_ID)
    assert mine is not None and mine.tracking_no == "SF1428373612045"
    assert await lookup.lookup("2024112300123", "demo_user_1002") is None
    assert await lookup.lookup("2024112300123", None) is None
    engine.dispose()


# ---- the demo page --------------------------------------------------------------------------------------------
def _page_identity(html: str) -> tuple[str, str] | None:
    m = re.search(
        r'<script src="widget.js" data-user-id="([^"]+)" data-user-signature="([^"]+)" defer>', html
    )
    return (m.group(1), m.group(2)) if m else None


async def test_the_demo_page_signs_the_demo_customer_in(app_settings, fake_nlu, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """make run: the demo page the API serves at / embeds the widget as the demo customer (signed by the API for
    its own page), so the demo's order lookups work; never in production, never without the demo order table."""
    from api.main import create_app

    shipped = (REPO / "frontend" / "widget-public" / "index.html").read_text(encoding="utf-8")
    assert f'<script src="widget.js" {DEMO_IDENTITY_SLOT} defer>' in shipped
    widget = tmp_path / "widget"
    widget.mkdir()
    (widget / "index.html").write_text(shipped, encoding="utf-8")
    settings = app_settings.model_copy(update={"widget_dist": widget})
    app = create_app(settings, serving_transport=httpx.ASGITransport(app=fake_nlu))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            page = await c.get("/")
            assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
            identity = _page_identity(page.text)
            assert identity is not None and identity[0] == DEMO_CUSTOMER_ID, page.text[-400:]
            assert check_identity(IDENTITY_SECRET, *identity) is IdentityCheck.VERIFIED
            assert _page_identity((await c.get("/index.html")).text) is not None
            signed_in = {"user_id": identity[0], "user_signature": identity[1]}
            data = await post(c, "订单2024112300123到哪了", signed_in)
            assert data["identity"] == "verified" and "SF1428373612045" in data["reply"]["text"]
    for update in ({"env": "production"}, {"order_lookup": "none"}):
        app = create_app(
            settings.model_copy(update=update), serving_transport=httpx.ASGITransport(app=fake_nlu)
        )
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                page = await c.get("/")
                assert page.status_code == 200 and "data-user-id" not in page.text, update
                assert '<script src="widget.js"  defer>' in page.text
