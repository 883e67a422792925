"""Alembic migrations on the real MariaDB (utf8mb4), emoji round trip, idempotent seed and writes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from api_live_services import mysql_url
from sqlalchemy import inspect, select, text

from api.db.engine import make_engine, make_session_factory
from api.db.migrate import alembic_config, downgrade, schema_is_current, upgrade, wait_for_schema
from api.db.models import Base, ChatSession, Faq, FaqSimilar, Message, Visitor
from api.db.seed import seed_demo
from api.journal import write_records
from api.settings import REPO_ROOT

pytestmark = pytest.mark.integration

TABLES = {
    "visitors",
    "chat_sessions",
    "messages",
    "faq_categories",
    "faqs",
    "faq_similar",
    "response_templates",
    "feedback",
    "handoff_tickets",
    "admin_users",
    "audit_log",
    "demo_orders",
    "alembic_version",
}


def test_migrations_apply_and_roll_back(mysql_db: str) -> None:
    engine = make_engine(mysql_url(mysql_db))
    upgrade(engine)
    names = set(inspect(engine).get_table_names())
    assert names >= TABLES
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT table_name, table_collation FROM information_schema.tables WHERE table_schema = :db"
            ),
            {"db": mysql_db},
        ).all()
        assert all(coll.startswith("utf8mb4") for _, coll in rows), rows
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)  # and up again
    engine.dispose()


def test_a_new_api_pod_waits_for_the_migration_job(mysql_db: str) -> None:
    """`python -m api migrate --wait` (the API pod's init container): not ready on an older schema, ready as soon
    as the migration Job has upgraded it, and a clear failure when it never does."""
    import threading

    engine = make_engine(mysql_url(mysql_db))
    downgrade(engine, "base")
    assert not schema_is_current(engine)
    assert wait_for_schema(engine, timeout_s=0.3, poll_s=0.05) is False
    job = threading.Timer(0.5, upgrade, args=(engine,))  # the Job, applied together with the rollout
    job.start()
    assert wait_for_schema(engine, timeout_s=30, poll_s=0.1) is True
    job.join()
    assert schema_is_current(engine)
    engine.dispose()
    assert not schema_is_current(
        make_engine("mysql+pymysql://nobody@127.0.0.1:1/none")
    )  # unreachable: not ready


def test_emoji_and_chinese_survive(mysql_db: str) -> None:
    engine = make_engine(mysql_url(mysql_db))
    upgrade(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    record = {
        "kind": "message",
        "id": "m_emoji",
        "session_id": "s_emoji",
        "visitor_id": "v_emoji",
        "user_id": None,
        "session_started_at": now.isoformat(),
        "role": "user",
        "text": "退货运费谁出😊👍🏻 𠮷野家",
        "intent": "refund_return",
        "confidence": 0.9,
        "reply_type": None,
        "faq_id": None,
        "candidates": [{"faq_id": "faq-003", "question": "退货运费谁承担？😀"}],
        "created_at": now.isoformat(),
    }
    with factory() as db, db.begin():
        write_records(db, [record])
        db.add(
            Faq(
                id="faq-emoji",
                question="表情包🎉能退吗",
                answer="可以😄",
                similar=[FaqSimilar(question="🎉")],
            )
        )
    with factory() as db:
        msg = db.get(Message, "m_emoji")
        assert msg is not None and msg.text == "退货运费谁出😊👍🏻 𠮷野家"
        assert msg.candidates and msg.candidates[0]["question"] == "退货运费谁承担？😀"
        assert msg.created_at.tzinfo is not None and abs((msg.created_at - now).total_seconds()) < 1e-3
        faq = db.get(Faq, "faq-emoji")
        assert faq is not None and faq.answer == "可以😄" and faq.similar[0].question == "🎉"
    engine.dispose()


def test_seed_is_idempotent_and_writes_ignore_duplicates(mysql_db: str) -> None:
    engine = make_engine(mysql_url(mysql_db))
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as db:
        first = seed_demo(db, REPO_ROOT / "data" / "demo")
    with factory() as db:
        second = seed_demo(db, REPO_ROOT / "data" / "demo")
    assert first["faqs"] > 100 and first["orders"] > 0 and first["templates"] > 10
    assert second == {"faqs": 0, "templates": 0, "orders": 0}
    now = datetime.now(UTC).isoformat()
    recs = [
        {
            "kind": "message",
            "id": f"m_{i}",
            "session_id": "s_1",
            "visitor_id": "v_1",
            "session_started_at": now,
            "role": "user",
            "text": f"第{i}条",
            "created_at": now,
        }
        for i in range(5)
    ]
    for _ in range(3):  # a batch replayed after a crash between commit and ack
        with factory() as db, db.begin():
            write_records(db, recs)
    with factory() as db:
        assert db.scalar(select(text("count(*)")).select_from(Message)) == 5
        assert db.scalar(select(text("count(*)")).select_from(ChatSession)) == 1
    engine.dispose()


def test_visitor_identity_on_mariadb(mysql_db: str) -> None:
    """0003 on MariaDB: visitors recorded before the signature check (their external_user_id an unchecked claim)
    come out unverified; a message journaled for a verified visitor lands verified, one without the flag does not;
    what the agent console reads after a restart."""
    engine = make_engine(mysql_url(mysql_db))
    upgrade(engine, "0002_admin")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO visitors (id, external_user_id, created_at) VALUES ('v_old', 'u_claimed', NOW())"
            )
        )
    upgrade(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC).isoformat()

    def record(n: int, **identity: object) -> dict[str, object]:
        return {
            "kind": "message",
            "id": f"m_id{n}",
            "session_id": f"s_id{n}",
            "visitor_id": f"v_id{n}",
            "session_started_at": now,
            "role": "user",
            "text": "我的订单",
            "created_at": now,
            **identity,
        }

    with factory() as db, db.begin():
        write_records(
            db,
            [
                record(1, user_id="u_1001", user_verified=True),
                record(2, user_id="u_1002"),  # journaled by an older API: a claim
                record(3, user_id=None, user_verified=False),
            ],
        )
    with factory() as db:
        rows = {v.id: (v.external_user_id, v.verified) for v in db.scalars(select(Visitor))}
    assert rows == {
        "v_old": ("u_claimed", False),
        "v_id1": ("u_1001", True),
        "v_id2": ("u_1002", False),
        "v_id3": (None, False),
    }
    engine.dispose()


def test_the_sessions_by_visitor_index_on_mariadb(mysql_db: str) -> None:
    """0004 on MariaDB: its index replaces the one InnoDB made for the foreign key (no two equal indexes), the
    downgrade gives that one back (InnoDB refuses to leave the foreign key without an index) and up, down, up again
    ends where a fresh upgrade does; the migrated schema is what the models declare."""
    engine = make_engine(mysql_url(mysql_db))

    def indexes() -> set[str]:
        return {str(i["name"]) for i in inspect(engine).get_indexes("chat_sessions")}

    upgrade(engine, "0003_identity")
    before = indexes()
    assert "fk_chat_sessions_visitor_id_visitors" in before
    for _ in range(2):
        upgrade(engine)
        assert indexes() == before - {"fk_chat_sessions_visitor_id_visitors"} | {
            "ix_chat_sessions_visitor_id"
        }
        downgrade(engine, "0003_identity")
        assert indexes() == before
    upgrade(engine)
    with engine.connect() as conn:
        assert (
            compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
            == []
        )
    engine.dispose()
