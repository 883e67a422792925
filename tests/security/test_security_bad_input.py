"""Hostile and malformed input: each rejected with a clear 4xx and a stable error code, or accepted and stored
as plain text; in every case the data already stored is unchanged (rows counted before and after)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from security_world import World, start_visitor
from sqlalchemy import text

CHAT = "/api/v1/chat"
IMPORT = "/api/v1/admin/faqs/import"
TABLES = ("messages", "faqs", "faq_similar", "feedback", "chat_sessions", "admin_users", "handoff_tickets")


async def counts(w: World) -> dict[str, int]:
    await w.services.writer.flush()
    with w.services.session_factory() as db:
        return {t: int(db.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()) for t in TABLES}


def assert_error(r: httpx.Response, status: int, code: str, case: str = "") -> None:
    assert r.status_code == status, (case, r.status_code, r.text[:300])
    body = r.json()
    assert body["error"]["code"] == code, (case, body)
    assert body["error"]["message"] and body["error"]["request_id"]


# ---- chat messages ---------------------------------------------------------------------------------------
REJECTED_MESSAGES: list[tuple[str, Any, int, str]] = [
    ("empty", "", 422, "MESSAGE_EMPTY"),
    ("spaces", "   ", 422, "MESSAGE_EMPTY"),
    ("whitespace mix", " \t\n\r\u3000 ", 422, "MESSAGE_EMPTY"),
    ("only NUL and controls", "\x00\x01\x02\x1f", 422, "MESSAGE_EMPTY"),
    ("1001 chars", "好" * 1001, 422, "MESSAGE_TOO_LONG"),
    ("1001 chars after trimming spaces", "  " + "a" * 1001 + "  ", 422, "MESSAGE_TOO_LONG"),
    ("number", 12345, 422, "VALIDATION_ERROR"),
    ("list", ["你好"], 422, "VALIDATION_ERROR"),
    ("object", {"text": "你好"}, 422, "VALIDATION_ERROR"),
    ("null", None, 422, "VALIDATION_ERROR"),
    ("bool", True, 422, "VALIDATION_ERROR"),
]


async def test_rejected_messages(world: World) -> None:
    before = await counts(world)
    a = world.a
    for name, message, status, code in REJECTED_MESSAGES:
        r = await world.client.post(CHAT, json={"message": message})
        assert_error(r, status, code, name)
        # and inside an existing conversation
        r = await world.client.post(
            CHAT, json={"message": message, "session_id": a.session_id}, headers=a.headers
        )
        assert_error(r, status, code, name)
    assert await counts(world) == before


async def test_exactly_1000_chars_is_accepted(world: World) -> None:
    r = await world.client.post(CHAT, json={"message": "好" * 1000})
    assert r.status_code == 200


async def test_invisible_only_message_is_empty(world: World) -> None:
    r = await world.client.post(CHAT, json={"message": "\u200b\u200d\u2060\ufeff\u202e"})
    assert_error(r, 422, "MESSAGE_EMPTY")


async def test_wrong_field_types(world: World) -> None:
    c = world.client
    before = await counts(world)
    bodies: list[Any] = [
        {"message": "你好", "session_id": 42},
        {"message": "你好", "session_id": ["s"]},
        {"message": "你好", "user_id": {"x": 1}},
        {"message": "你好", "session_id": "s" * 65},
        {"message": "你好", "user_id": "u" * 129},
        {},
        [],
        "你好",
        42,
    ]
    for body in bodies:
        r = await c.post(CHAT, json=body)
        assert_error(r, 422, "VALIDATION_ERROR")
    assert await counts(world) == before


INVALID_JSON = [
    b"",
    b"{",
    b'{"message": "x",}',
    b"{'message': 'x'}",
    b'{"message": "\xff\xfe\xfd"}',  # invalid UTF-8
    b'{"message": "\xe4\xbd"}',  # truncated UTF-8 sequence
    b"\xef\xbb\xbf" + b'{"message": NaN}',
    b"null",
    b'{"message": "a"' + b" " * 10 + b"}" + b"garbage",
]


async def test_invalid_json_bodies(world: World) -> None:
    before = await counts(world)
    for raw in INVALID_JSON:
        r = await world.client.post(CHAT, content=raw, headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, (raw, r.status_code, r.text)
        assert r.json()["error"]["code"] == "VALIDATION_ERROR", raw
    assert await counts(world) == before


async def test_lone_surrogate_is_refused_not_500(world: World) -> None:
    """A JSON escape for a lone UTF-16 surrogate decodes to a str that cannot be encoded to UTF-8."""
    before = await counts(world)
    r = await world.client.post(
        CHAT, content=b'{"message": "\\ud800 \\udfff hi"}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code < 500, r.text
    assert await counts(world) == before or r.status_code == 200


async def test_wrong_content_type(world: World) -> None:
    before = await counts(world)
    for ctype, body in (
        ("text/plain", b'{"message": "hi"}'),
        ("application/x-www-form-urlencoded", b"message=hi"),
        ("multipart/form-data; boundary=x", b"--x--"),
    ):
        r = await world.client.post(CHAT, content=body, headers={"Content-Type": ctype})
        assert 400 <= r.status_code < 500 and r.json()["error"]["code"] in ("VALIDATION_ERROR",), r.text
    assert await counts(world) == before


async def test_one_megabyte_body(world: World) -> None:
    before = await counts(world)
    big = json.dumps({"message": "好" * (1 << 20)}).encode()
    r = await world.client.post(CHAT, content=big, headers={"Content-Type": "application/json"})
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")

    r = await world.client.post(
        CHAT,
        content=b'{"message": "hi"}',
        headers={"Content-Type": "application/json", "Content-Length": "99999999"},
    )
    assert r.status_code == 413
    assert await counts(world) == before


async def test_one_megabyte_chunked_body(world: World) -> None:
    before = await counts(world)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        yield b'{"message": "'
        for _ in range(16):
            yield b"a" * 65536
        yield b'"}'

    r = await world.client.post(CHAT, content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert await counts(world) == before


# ---- accepted as plain text -------------------------------------------------------------------------------
ACCEPTED = [
    ("emoji", "😀👍🏽👨‍👩‍👧 包邮吗？"),
    ("zero-width inside", "包\u200b邮\u200d吗"),
    ("rtl override", "\u202e包邮吗\u202c"),
    ("sql injection", "'; DROP TABLE messages; --"),
    ("sql union", "1' OR '1'='1' UNION SELECT password_hash FROM admin_users --"),
    ("html script", "<script>alert(document.cookie)</script>"),
    ("html img", '<img src=x onerror="alert(1)">退货'),
    ("template braces", "{{7*7}} ${7*7} {order_id} %s %(x)s"),
    ("path", "../../../../etc/passwd"),
    ("nul inside", "退\x00货"),
    ("crlf", "退货\r\nX-Injected: 1"),
]


async def test_hostile_text_is_stored_as_text(world: World) -> None:
    for name, message in ACCEPTED:
        await _stored_as_text(world, name, message)


async def _stored_as_text(world: World, name: str, message: str) -> None:
    c = world.client
    before = await counts(world)
    v = await start_visitor(c, message)
    r = await c.get(f"/api/v1/sessions/{v.session_id}/history", headers=v.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    stored_user = [m["text"] for m in r.json()["messages"] if m["role"] == "user"]
    expected = message.replace("\x00", "").strip()
    assert stored_user == [expected], (name, stored_user)
    after = await counts(world)
    # exactly one conversation with one user and one bot message more; nothing else changed
    assert after["messages"] == before["messages"] + 2
    assert after["chat_sessions"] == before["chat_sessions"] + 1
    assert {k: v for k, v in after.items() if k not in ("messages", "chat_sessions")} == {
        k: v for k, v in before.items() if k not in ("messages", "chat_sessions")
    }
    with world.services.session_factory() as db:
        rows = db.execute(
            text("SELECT text FROM messages WHERE session_id = :s AND role = 'user'"), {"s": v.session_id}
        ).all()
    assert [row[0] for row in rows] == [expected]
    # the response header block was not split by the CRLF text
    assert "x-injected" not in {k.lower() for k in r.headers}


async def test_path_traversal_in_session_id(world: World) -> None:
    c = world.client
    for sid in ("..%2F..%2Fetc%2Fpasswd", "%00", "s_" + "a" * 300, "' OR 1=1 --"):
        r = await c.get(f"/api/v1/sessions/{sid}/history", headers=world.a.headers)
        assert r.status_code == 404, (sid, r.status_code)


# ---- FAQ import ------------------------------------------------------------------------------------------
def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    import csv

    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


def _xlsx(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_import_rows": 50}


async def _import(
    w: World, name: str, data: bytes, dry_run: bool = False, ctype: str = "text/csv"
) -> httpx.Response:
    return await w.client.post(
        IMPORT,
        params={"dry_run": str(dry_run).lower()},
        files={"file": (name, data, ctype)},
        headers=w.bearer(w.admin_token),
    )


BAD_FILES: list[tuple[str, str, Any, int, str]] = [
    (
        "oversized csv",
        "big.csv",
        lambda: b"question,answer\n" + b"q,a\n" * (6 * 1024 * 1024 // 4),
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    (
        "too many rows",
        "rows.csv",
        lambda: _csv([["question", "answer"]] + [[f"问题{i}", "答案"] for i in range(51)]),
        413,
        "TOO_MANY_ROWS",
    ),
    ("missing columns", "cols.csv", lambda: _csv([["foo", "bar"], ["1", "2"]]), 422, "IMPORT_BAD_COLUMNS"),
    ("binary as csv", "bin.csv", lambda: bytes(range(256)) * 20, 422, "IMPORT_BAD_ENCODING"),
    ("garbage xlsx", "bad.xlsx", lambda: b"PK\x03\x04" + b"\x00" * 200, 422, "IMPORT_MALFORMED"),
    ("xlsx not a zip", "notzip.xlsx", lambda: b"question,answer\nq,a\n", 415, "UNSUPPORTED_FILE"),
    ("exe", "setup.exe", lambda: b"MZ\x90\x00" + b"\x00" * 100, 415, "UNSUPPORTED_FILE"),
    ("no extension", "faq", lambda: _csv([["question", "answer"], ["q", "a"]]), 415, "UNSUPPORTED_FILE"),
    (
        "xlsx too many rows",
        "rows.xlsx",
        lambda: _xlsx([["question", "answer"]] + [[f"问题{i}", "答"] for i in range(51)]),
        413,
        "TOO_MANY_ROWS",
    ),
    ("xlsx missing columns", "cols.xlsx", lambda: _xlsx([["a", "b"], [1, 2]]), 422, "IMPORT_BAD_COLUMNS"),
]


async def test_bad_import_files(world: World) -> None:
    before = await counts(world)
    for name, filename, make, status, code in BAD_FILES:
        for dry_run in (True, False):
            r = await _import(world, filename, make(), dry_run=dry_run)
            assert_error(r, status, code, f"{name} dry_run={dry_run}")
    assert await counts(world) == before


async def test_import_row_errors_write_nothing_for_bad_rows(world: World) -> None:
    before = await counts(world)
    data = _csv(
        [
            ["question", "answer", "category", "similar"],
            ["", "没有问题的答案", "", ""],
            ["问" * 201, "太长的问题", "", ""],
            ["=cmd|' /C calc'!A0", "", "", ""],
        ]
    )
    r = await _import(world, "rows.csv", data, dry_run=False)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] == 0 and body["created"] == 0
    assert {e["code"] for e in body["errors"]} >= {"REQUIRED", "TOO_LONG"}
    assert await counts(world) == before


PATH_NAMES = [
    "../../../../tmp/xiaoke-pwned.csv",
    "..\\..\\xiaoke-pwned.csv",
    "/etc/cron.d/xiaoke-pwned.csv",
    "a\x00b.csv",
    "ｆａｑ.csv",
]


async def test_path_like_filenames_are_not_paths(world: World) -> None:
    before = await counts(world)
    data = _csv([["question", "answer"], ["路径名测试的问题？", "路径名测试的答案"]])
    for filename in PATH_NAMES:
        r = await _import(world, filename, data, dry_run=True)
        assert r.status_code in (200, 415, 422), (filename, r.text)
        if r.status_code == 200:
            assert r.json()["total"] == 1
        else:
            assert r.json()["error"]["code"] in ("UNSUPPORTED_FILE", "VALIDATION_ERROR"), filename
    assert not Path("/tmp/xiaoke-pwned.csv").exists()
    assert not Path("/etc/cron.d/xiaoke-pwned.csv").exists()
    assert await counts(world) == before  # dry run
