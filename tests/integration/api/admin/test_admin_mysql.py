"""Console endpoints on the real MariaDB (utf8mb4): import + export with emoji, and the portable SQL of
analytics / conversation search / mining (func.date, percentile offsets, JSON columns) on MySQL."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fakes import FakeNlu
from api_live_services import mysql_url
from openpyxl import load_workbook

from api.bootstrap import ensure_admin
from api.db.engine import make_engine, make_session_factory
from api.db.migrate import upgrade
from api.db.seed import seed_demo
from api.settings import REPO_ROOT, Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "unit" / "api" / "admin"))
from seeding import Conversation, Turn, seed  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture
async def mysql_console(
    mysql_db: str, tmp_path: Path
) -> AsyncIterator[tuple[Any, httpx.AsyncClient, dict[str, str]]]:
    from api.main import create_app

    url = mysql_url(mysql_db)
    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine)() as db:
        seed_demo(db, REPO_ROOT / "data" / "demo")
    engine.dispose()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        secret_key="integration-secret-key-0123456789abcdef",  # type: ignore[arg-type]
        data_dir=tmp_path,
        database_url=url,  # type: ignore[arg-type]
        serving_url="http://serving.test",
        widget_dist=tmp_path / "none",
        console_dist=tmp_path / "none",
    )
    app = create_app(settings, serving_transport=httpx.ASGITransport(app=FakeNlu()))
    async with app.router.lifespan_context(app):
        ensure_admin(app.state.services.session_factory, "root", "root-password-1")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            login = await client.post(
                "/api/v1/admin/auth/login", json={"username": "root", "password": "root-password-1"}
            )
            assert login.status_code == 200, login.text
            yield app, client, {"Authorization": f"Bearer {login.json()['access_token']}"}


EMOJI_Q = "包装坏了怎么办😭"
EMOJI_A = "请拍照上传👍🏻，𠮷野家同款包装也可以换～"


async def test_import_export_with_emoji_on_mariadb(mysql_console) -> None:  # type: ignore[no-untyped-def]
    app, c, h = mysql_console
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["question", "answer", "category", "similar"])
    w.writerow([EMOJI_Q, EMOJI_A, "售后🛠", "盒子破了😡|外包装破损"])
    w.writerow(["支持7天无理由退货吗？", "支持（已更新）", "退换货", "能7天无理由退吗"])  # existing faq-001
    w.writerow(["=cmd|' /C calc'!A0", "公式注入测试", "", ""])
    data = b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")

    dry = (
        await c.post(
            "/api/v1/admin/faqs/import",
            params={"dry_run": "true"},
            files={"file": ("e.csv", data)},
            headers=h,
        )
    ).json()
    assert (dry["created"], dry["updated"], dry["errors"]) == (2, 1, [])
    applied = await c.post(
        "/api/v1/admin/faqs/import", params={"dry_run": "false"}, files={"file": ("e.csv", data)}, headers=h
    )
    assert applied.status_code == 200, applied.text
    assert (applied.json()["created"], applied.json()["updated"]) == (2, 1)

    found = (await c.get("/api/v1/admin/faqs", params={"q": "包装坏了"}, headers=h)).json()
    item = next(i for i in found["items"] if i["question"] == EMOJI_Q)
    assert (
        item["answer"] == EMOJI_A
        and item["category"] == "售后🛠"
        and item["similar"] == ["盒子破了😡", "外包装破损"]
    )
    assert (await c.get("/api/v1/admin/faqs/faq-001", headers=h)).json()["answer"] == "支持（已更新）"
    cats = {x["name"] for x in (await c.get("/api/v1/admin/faqs/categories", headers=h)).json()["items"]}
    assert "售后🛠" in cats

    exported = await c.get("/api/v1/admin/faqs/export", params={"format": "csv"}, headers=h)
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    row = next(r for r in rows if r[0] == EMOJI_Q)
    assert row[1:4] == [EMOJI_A, "售后🛠", "盒子破了😡|外包装破损"]
    assert any(r[0] == "'=cmd|' /C calc'!A0" for r in rows)

    xlsx = await c.get("/api/v1/admin/faqs/export", params={"format": "xlsx"}, headers=h)
    ws = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    values = [[cell.value for cell in r] for r in ws.iter_rows()]
    assert [EMOJI_Q, EMOJI_A, "售后🛠", "盒子破了😡|外包装破损"] in [v[:4] for v in values]
    assert any(v[0] == "'=cmd|' /C calc'!A0" for v in values)

    back = (
        await c.post(
            "/api/v1/admin/faqs/import",
            params={"dry_run": "false"},
            files={"file": ("b.xlsx", xlsx.content)},
            headers=h,
        )
    ).json()
    assert (back["created"], back["updated"], back["errors"]) == (0, 0, [])


async def test_insights_sql_on_mariadb(mysql_console) -> None:  # type: ignore[no-untyped-def]
    app, c, h = mysql_console
    today = datetime.now(UTC).date()
    d0 = datetime.combine(today, time(1, 0), tzinfo=UTC)
    seed(
        app.state.services.session_factory,
        [
            Conversation(
                "m1",
                d0 - timedelta(days=1),
                [Turn("支持7天无理由退货吗😀", "answer", "refund_return", 120, "up", "faq-001")],
            ),
            Conversation(
                "m2",
                d0,
                [
                    Turn("收货地址怎么修改", "clarify", None, 80, "down"),
                    Turn("收货地址怎么修改呀", "fallback", None, 40),
                ],
                rating=5,
            ),
        ],
    )
    params = {"date_from": (today - timedelta(days=1)).isoformat(), "date_to": today.isoformat()}
    a = (await c.get("/api/v1/admin/analytics", params=params, headers=h)).json()
    assert [d["turns"] for d in a["turns_per_day"]] == [1, 2]
    assert a["resolution_rate"] == 0.5 and a["latency"] == {"p50_ms": 80.0, "p99_ms": 120.0}
    assert a["feedback"] == {"up": 1, "down": 1, "ratings_avg": 5.0, "ratings_count": 1}

    conv = (
        await c.get("/api/v1/admin/conversations", params={"reply_type": "fallback", "q": "地址"}, headers=h)
    ).json()
    assert [i["session_id"] for i in conv["items"]] == ["m2"]
    transcript = (await c.get("/api/v1/admin/conversations/m1", headers=h)).json()
    assert transcript["messages"][0]["text"] == "支持7天无理由退货吗😀"

    clusters = (await c.get("/api/v1/admin/unanswered", headers=h)).json()["clusters"]
    assert clusters[0]["questions"] == ["收货地址怎么修改", "收货地址怎么修改呀"]
    acc = await c.post(
        f"/api/v1/admin/unanswered/{clusters[0]['id']}/accept", json={"action": "similar"}, headers=h
    )
    assert acc.status_code == 200 and acc.json()["added_similar"] == 2


async def test_a_customers_conversations_on_mariadb(mysql_console) -> None:  # type: ignore[no-untyped-def]
    """The customer filter on MySQL's utf8mb4_unicode_ci tables: the exact id the shop verified, not another
    customer's id that differs in case or by trailing spaces (equal under that collation), nor a claimed one."""
    app, c, h = mysql_console
    d0 = datetime.combine(datetime.now(UTC).date(), time(1, 0), tzinfo=UTC)
    seed(
        app.state.services.session_factory,
        [
            Conversation("c1", d0, [Turn("我的订单呢", "answer")], visitor=("u_Anna", True)),
            Conversation("c2", d0 + timedelta(minutes=1), [Turn("退货", "answer")], visitor=("u_anna", True)),
            Conversation(
                "c3", d0 + timedelta(minutes=2), [Turn("发票", "answer")], visitor=("u_Anna ", True)
            ),
            Conversation(
                "c4", d0 + timedelta(minutes=3), [Turn("在吗", "answer")], visitor=("u_Anna", False)
            ),
            Conversation("c5", d0 + timedelta(minutes=4), [Turn("你好", "answer")]),
            Conversation("c6", d0 + timedelta(minutes=5), [Turn("换货", "answer")], visitor=("u_Anna", True)),
        ],
    )

    async def listed(**params: str) -> list[tuple[str, Any]]:
        r = await c.get("/api/v1/admin/conversations", params=params, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(r.json()["items"])
        return [(i["session_id"], i["visitor"]["customer_id"]) for i in r.json()["items"]]

    assert await listed(customer_id="u_Anna") == [("c6", "u_Anna"), ("c1", "u_Anna")]
    assert await listed(customer_id="u_anna") == [("c2", "u_anna")]
    assert await listed(customer_id="u_Anna ") == [("c3", "u_Anna ")]
    assert await listed(customer_id="U_ANNA") == []
    assert [sid for sid, _ in await listed(verified="true")] == ["c6", "c3", "c2", "c1"]
    assert await listed(verified="false") == [("c5", None), ("c4", None)]  # the claim shows no id
