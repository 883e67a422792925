"""Bulk import (CSV/XLSX, encodings, dry run, row errors, atomicity, limits) and formula-safe export."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from collections.abc import AsyncIterator

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from api.admin import transfer
from api.db.models import Faq
from api.errors import AppError

IMPORT = "/api/v1/admin/faqs/import"
EXPORT = "/api/v1/admin/faqs/export"


def _csv(rows: list[list[str]], header: list[str] | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header or ["question", "answer", "category", "similar"])
    w.writerows(rows)
    return buf.getvalue()


def _xlsx(rows: list[list[object]], header: list[str] | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(header or ["question", "answer", "category", "similar"])
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---- pure functions -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_encodings(encoding: str) -> None:
    data = _csv([["退货要多久到账？", "3-5 个工作日。", "退换货", "退款多久到|退款几天到账"]]).encode(
        encoding
    )
    rows = transfer.read_csv(data, max_rows=10)
    assert rows[0].row == 2
    assert rows[0].values == {
        "question": "退货要多久到账？",
        "answer": "3-5 个工作日。",
        "category": "退换货",
        "similar": "退款多久到|退款几天到账",
    }


def test_undecodable_csv_is_refused() -> None:
    with pytest.raises(AppError) as err:
        transfer.read_csv(b"question,answer\n\x81\xff\xfe\x80,x\n\xff\xff\xff\xff", max_rows=10)
    assert err.value.code == "IMPORT_BAD_ENCODING"


@pytest.mark.parametrize(
    "header",
    [["q", "a"], ["question", "category"], ["question", "answer", "问题"], []],
)
def test_bad_columns(header: list[str]) -> None:
    data = (",".join(header) + "\n" + "x,y\n").encode() if header else b"\n\n"
    with pytest.raises(AppError) as err:
        transfer.read_csv(data, max_rows=10)
    assert err.value.code == "IMPORT_BAD_COLUMNS"


def test_chinese_headers_and_unknown_columns() -> None:
    data = "id,问题,答案,分类,相似问题,启用\nfaq-9,怎么开发票,订单详情页申请,发票,开票入口｜发票在哪开,否\n".encode()
    (row,) = transfer.read_csv(data, max_rows=10)
    assert row.values == {
        "question": "怎么开发票",
        "answer": "订单详情页申请",
        "category": "发票",
        "similar": "开票入口｜发票在哪开",
        "enabled": "否",
    }
    plan = transfer.plan_import([row])
    assert plan.rows[0].fields.similar == ["开票入口", "发票在哪开"] and plan.rows[0].fields.enabled is False


def test_row_numbers_are_spreadsheet_rows_with_multi_line_cells() -> None:
    """An answer with line breaks (Alt+Enter in Excel) is one row: later rows keep the number Excel shows."""
    data = 'question,answer\r\n多行答案,"第一行\r\n第二行\r\n第三行"\r\n\r\n,缺问题\r\n'.encode()
    rows = transfer.read_csv(data, max_rows=10)
    assert [(r.row, r.values["answer"]) for r in rows] == [(2, "第一行\r\n第二行\r\n第三行"), (4, "缺问题")]


def test_too_many_rows_stops_early() -> None:
    data = _csv([[f"问题{i}", "答案", "", ""] for i in range(50_000)]).encode()
    with pytest.raises(AppError) as err:
        transfer.read_csv(data, max_rows=20_000)
    assert err.value.code == "TOO_MANY_ROWS"


def test_row_validation_codes() -> None:
    raw = transfer.read_csv(
        _csv(
            [
                ["", "答案", "", ""],
                ["问题A", "", "", ""],
                ["问" * 201, "答案", "", ""],
                ["问题B", "答案", "", "|".join(f"相似{i}" for i in range(101))],
                ["问题C", "答案", "c" * 65, ""],
                ["问题A？", "答案2", "", ""],
                ["问题D", "答案", "", ""],
                ["问题D!", "答案", "", ""],
            ]
        ).encode(),
        max_rows=100,
    )
    plan = transfer.plan_import(raw)
    got = [(row, e.field, e.code.value) for row, e in plan.errors]
    assert got == [
        (2, "question", "REQUIRED"),
        (3, "answer", "REQUIRED"),
        (4, "question", "TOO_LONG"),
        (5, "similar", "TOO_MANY_SIMILAR"),
        (6, "category", "TOO_LONG"),
        (9, "question", "DUPLICATE_IN_FILE"),
    ]
    assert [p.fields.question for p in plan.rows] == ["问题A？", "问题D"]


def test_formula_cells_are_neutralised_and_round_trip() -> None:
    for value in ["=1+1", "+86 138", "-1", "@SUM(A1)", "\tx", "\rx"]:
        assert transfer.safe_cell(value) == "'" + value
        assert transfer.unescape_cell(transfer.safe_cell(value)) == value
    assert transfer.safe_cell("普通文本") == "普通文本"
    assert transfer.unescape_cell("'普通") == "'普通"


def test_xlsx_read_and_zip_bomb_guard() -> None:
    data = _xlsx([["怎么开发票", "订单详情页", None, "开票|发票"], [12345, 6.0, "数字", None]])
    rows = transfer.read_upload("faq.xlsx", data, max_rows=10, max_bytes=10**6)
    assert rows[1].values["question"] == "12345" and rows[1].values["answer"] == "6"

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b"0" * (65 * 1024 * 1024))
    with pytest.raises(AppError) as err:
        transfer.read_upload("bomb.xlsx", bomb.getvalue(), max_rows=10, max_bytes=10**7)
    assert err.value.code == "PAYLOAD_TOO_LARGE"
    with pytest.raises(AppError) as err:
        transfer.read_upload("broken.xlsx", b"PK\x03\x04garbage", max_rows=10, max_bytes=10**6)
    assert err.value.code == "IMPORT_MALFORMED"
    with pytest.raises(AppError) as err:
        transfer.read_upload("faq.xls", b"\xd0\xcf\x11\xe0", max_rows=10, max_bytes=10**6)
    assert err.value.code == "UNSUPPORTED_FILE"


# ---- HTTP -----------------------------------------------------------------------------------------------------
def _count(console) -> int:  # type: ignore[no-untyped-def]
    with console.services.session_factory() as db:
        return int(db.scalar(select(func.count()).select_from(Faq)) or 0)


async def test_dry_run_then_apply_creates_and_updates(console) -> None:  # type: ignore[no-untyped-def]
    c, h = console.client, console.admin
    before = _count(console)
    rev0 = (await c.get("/api/v1/admin/faqs", headers=h)).json()["kb_revision"]
    body = _csv(
        [
            [
                "支持7天无理由退货吗",
                "新答案：支持 7 天无理由退货。",
                "退换货",
                "能7天无理由退吗",
            ],  # existing faq-001
            ["会员积分怎么兑换？", "在「我的-积分」兑换。", "会员", "积分商城在哪|积分怎么用"],
            ["", "缺问题", "", ""],
        ]
    ).encode("gbk")
    files = {"file": ("faq.csv", body, "text/csv")}
    dry = await c.post(IMPORT, params={"dry_run": "true"}, files=files, headers=h)
    assert dry.status_code == 200, dry.text
    assert dry.json() == {
        "dry_run": True,
        "total": 3,
        "valid": 2,
        "created": 1,
        "updated": 1,
        "errors": [
            {"row": 4, "field": "question", "code": "REQUIRED", "message": dry.json()["errors"][0]["message"]}
        ],
        "errors_truncated": False,
    }
    assert _count(console) == before  # nothing written
    assert (await c.get("/api/v1/admin/faqs", headers=h)).json()["kb_revision"] == rev0

    applied = (await c.post(IMPORT, params={"dry_run": "false"}, files=files, headers=h)).json()
    assert (applied["created"], applied["updated"], applied["dry_run"]) == (1, 1, False)
    assert _count(console) == before + 1  # the existing question was updated, not duplicated
    faq1 = (await c.get("/api/v1/admin/faqs/faq-001", headers=h)).json()
    assert faq1["answer"] == "新答案：支持 7 天无理由退货。" and faq1["version"] == 2
    assert faq1["question"] == "支持7天无理由退货吗"
    assert console.services.catalog.answer_for("faq-001") == "新答案：支持 7 天无理由退货。"
    assert (await c.get("/api/v1/admin/faqs", headers=h)).json()["kb_revision"] == rev0 + 1

    again = (await c.post(IMPORT, params={"dry_run": "false"}, files=files, headers=h)).json()
    assert (again["created"], again["updated"]) == (0, 0)  # idempotent: unchanged rows are left alone


async def test_intent_column_sets_keeps_and_round_trips(console) -> None:  # type: ignore[no-untyped-def]
    """The optional intent column (意图) sets an FAQ's intent (the dialog's intent-agreement rule reads it);
    an empty cell keeps the current one; export writes it, so export -> import changes nothing."""
    c, h = console.client, console.admin
    header = ["问题", "答案", "分类", "相似问题", "意图"]
    rows = [["会员积分怎么兑换？", "在「我的-积分」兑换。", "会员", "积分商城在哪", "coupon_promotion"]]
    files = {"file": ("faq.csv", _csv(rows, header).encode("utf-8"), "text/csv")}
    applied = (await c.post(IMPORT, params={"dry_run": "false"}, files=files, headers=h)).json()
    assert applied["created"] == 1, applied
    listed = (await c.get("/api/v1/admin/faqs", params={"q": "会员积分怎么兑换"}, headers=h)).json()["items"]
    faq_id = listed[0]["id"]
    assert listed[0]["intent"] == "coupon_promotion"
    assert console.services.catalog.intent_for(faq_id) == "coupon_promotion"
    keep = [["会员积分怎么兑换？", "在「我的-积分」兑换。", "会员", "积分商城在哪", ""]]
    files = {"file": ("faq.csv", _csv(keep, header).encode("utf-8"), "text/csv")}
    again = (await c.post(IMPORT, params={"dry_run": "false"}, files=files, headers=h)).json()
    assert (again["created"], again["updated"]) == (0, 0)
    assert (await c.get(f"/api/v1/admin/faqs/{faq_id}", headers=h)).json()["intent"] == "coupon_promotion"
    edited = [
        ["会员积分怎么兑换？", "在「我的-积分」页兑换。", "会员", "积分商城在哪", ""]
    ]  # new answer, empty intent
    files = {"file": ("faq.csv", _csv(edited, header).encode("utf-8"), "text/csv")}
    again = (await c.post(IMPORT, params={"dry_run": "false"}, files=files, headers=h)).json()
    assert (again["created"], again["updated"]) == (0, 1)
    assert (await c.get(f"/api/v1/admin/faqs/{faq_id}", headers=h)).json()["intent"] == "coupon_promotion"

    exported = (await c.get(EXPORT, params={"format": "csv"}, headers=h)).content
    out = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    row = next(r for r in out if r[0] == "会员积分怎么兑换？")
    assert row[out[0].index("intent")] == "coupon_promotion"
    files = {"file": ("export.csv", exported, "text/csv")}
    round_trip = (await c.post(IMPORT, params={"dry_run": "false"}, files=files, headers=h)).json()
    assert (round_trip["created"], round_trip["updated"], round_trip["errors"]) == (0, 0, [])


async def test_an_import_row_using_another_faqs_wording_is_a_row_error(console) -> None:  # type: ignore[no-untyped-def]
    """One wording, one FAQ (as for the API): a row whose similar question is another FAQ's question or
    similar question is reported (TAKEN) and not applied, the other rows are; an FAQ the file updates gives
    up its similar questions for the file's, so a wording may move between two rows' FAQs."""
    c, h = console.client, console.admin
    faq2 = (await c.get("/api/v1/admin/faqs/faq-002", headers=h)).json()
    rest = [s for s in faq2["similar"] if s != "退货流程是什么"]
    rows = [
        [
            "怎么开电子发票？",
            "在订单详情申请。",
            "发票",
            "能开发票吗|支持７天无理由退货吗",
        ],  # faq-001's question
        ["怎么申请退货？", faq2["answer"], faq2["category"], "|".join(rest)],  # faq-002 gives one up...
        ["退货流程在哪看？", "在「我的-退货」查看。", "售后", "退货流程是什么"],  # ...and a new FAQ takes it
        ["发票抬头能改吗？", "开票前可以修改。", "发票", "退货流程是什么"],  # taken by the row above
    ]
    files = {"file": ("faq.csv", _csv(rows).encode("utf-8"), "text/csv")}
    result = (await c.post(IMPORT, params={"dry_run": "false"}, files=files, headers=h)).json()
    assert [(e["row"], e["field"], e["code"]) for e in result["errors"]] == [
        (2, "similar", "TAKEN"),
        (5, "similar", "TAKEN"),
    ]
    assert (result["valid"], result["created"], result["updated"]) == (2, 1, 1), result
    listed = (await c.get("/api/v1/admin/faqs", params={"q": "退货流程在哪看"}, headers=h)).json()["items"]
    assert listed[0]["similar"] == ["退货流程是什么"]
    assert (await c.get("/api/v1/admin/faqs", params={"q": "怎么开电子发票"}, headers=h)).json()["total"] == 0


async def test_import_is_atomic_on_database_error(console, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    before = _count(console)
    calls = {"n": 0}
    real = transfer.apply_fields

    def failing(db, faq, fields, cache=None):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise OperationalError("INSERT", {}, Exception("database went away"))
        return real(db, faq, fields, cache)

    monkeypatch.setattr(transfer, "apply_fields", failing)
    body = _csv([[f"原子性问题{i}", "答案", "", ""] for i in range(5)]).encode()
    resp = await console.client.post(
        IMPORT, params={"dry_run": "false"}, files={"file": ("a.csv", body)}, headers=console.admin
    )
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "DEPENDENCY_UNAVAILABLE"
    assert "went away" not in resp.text
    assert _count(console) == before


async def test_import_limits(console) -> None:  # type: ignore[no-untyped-def]
    c, h = console.client, console.admin
    big_rows = _csv([[f"问题{i}", "答案", "", ""] for i in range(50_000)]).encode()
    assert len(big_rows) < 5 * 1024 * 1024
    resp = await c.post(IMPORT, params={"dry_run": "false"}, files={"file": ("big.csv", big_rows)}, headers=h)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "TOO_MANY_ROWS"

    huge = b"question,answer\n" + b"x" * (5 * 1024 * 1024 + 10)
    resp = await c.post(IMPORT, files={"file": ("huge.csv", huge)}, headers=h)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

    resp = await c.post(IMPORT, files={"file": ("faq.pdf", b"%PDF-1.4")}, headers=h)
    assert resp.status_code == 415 and resp.json()["error"]["code"] == "UNSUPPORTED_FILE"

    resp = await c.post(IMPORT, files={"file": ("cols.csv", "标题,内容\n a,b\n".encode())}, headers=h)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "IMPORT_BAD_COLUMNS"

    resp = await c.post(IMPORT, headers=h)  # no file
    assert resp.status_code == 422
    assert _count(console) >= 100  # nothing above touched the KB


# ---- the upload is read only after the token and the role are checked ------------------------------------
BOUNDARY = "xiaoke-test-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def _part(name: str, filename: str | None, data: bytes) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"


class StalledUpload:
    """A multipart upload whose first chunk arrives at once and the rest only after ``release()``: a server
    that reads the body before deciding waits for the rest; one that checks the token first answers at once."""

    def __init__(self, first: bytes, rest: bytes) -> None:
        self.first, self.rest = first, rest
        self.chunks_read = 0
        self._released = asyncio.Event()

    def release(self) -> None:
        self._released.set()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.chunks_read += 1
        yield self.first
        await self._released.wait()
        self.chunks_read += 1
        yield self.rest


def _stalled_csv() -> StalledUpload:
    body = _part("file", "faq.csv", _csv([["分两段上传的问题", "答案", "", ""]]).encode())
    return StalledUpload(body[:40], body[40:] + f"--{BOUNDARY}--\r\n".encode())


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("anonymous", 401, "UNAUTHORIZED"),
        ("bad token", 401, "UNAUTHORIZED"),
        ("agent", 403, "FORBIDDEN"),
    ],
)
async def test_import_refuses_before_reading_the_upload(console, who: str, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    """FastAPI parses a form body before it runs any dependency: an anonymous caller made the API receive,
    spool and parse up to the 5 MB upload limit before its 401. Now the caller is refused with the body unread
    (a stalled upload is answered at once) and unparsed (malformed multipart is a 401/403, not a 400)."""
    headers = {"anonymous": {}, "bad token": {"Authorization": "Bearer v1.e30.AAAA"}, "agent": console.agent}[
        who
    ]
    malformed = await console.client.post(
        IMPORT, content=b"\x00not multipart" * 1000, headers={**headers, **MULTIPART}
    )
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (status, code)

    upload = _stalled_csv()
    try:
        resp = await asyncio.wait_for(
            console.client.post(IMPORT, content=upload, headers={**headers, **MULTIPART}), timeout=3
        )
    finally:
        upload.release()
    assert (resp.status_code, resp.json()["error"]["code"]) == (status, code)
    assert upload.chunks_read == 0


async def test_admin_import_reads_the_upload_with_its_limits(console) -> None:  # type: ignore[no-untyped-def]
    """The admin's upload is parsed as before, streamed or not, and within the same bounds and error codes."""
    c, h = console.client, console.admin
    before = _count(console)
    upload = _stalled_csv()
    pending = asyncio.create_task(c.post(IMPORT, content=upload, headers={**h, **MULTIPART}))
    await asyncio.sleep(0.05)
    assert upload.chunks_read == 1 and not pending.done()  # the admin's request waits for its body
    upload.release()
    resp = await asyncio.wait_for(pending, timeout=5)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["dry_run"], resp.json()["valid"], resp.json()["created"]) == (True, 1, 1)

    # a streamed body (no Content-Length) over the upload limit: 413 as the middleware decides
    async def oversized() -> AsyncIterator[bytes]:
        yield _part("file", "big.csv", b"")[:-2]
        for _ in range(6):
            yield b"x" * (1024 * 1024)

    resp = await c.post(IMPORT, content=oversized(), headers={**h, **MULTIPART})
    assert (resp.status_code, resp.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")

    malformed = await c.post(IMPORT, content=b"\x00not multipart" * 1000, headers={**h, **MULTIPART})
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "VALIDATION_ERROR")

    row = _csv([["问题", "答案", "", ""]]).encode()
    not_a_file = await c.post(
        IMPORT,
        content=_part("file", None, b"question") + f"--{BOUNDARY}--\r\n".encode(),
        headers={**h, **MULTIPART},
    )
    assert (not_a_file.status_code, not_a_file.json()["error"]["code"]) == (422, "VALIDATION_ERROR")
    other_name = await c.post(IMPORT, files={"upload": ("faq.csv", row)}, headers=h)
    assert (other_name.status_code, other_name.json()["error"]["code"]) == (422, "VALIDATION_ERROR")
    two_files = await c.post(IMPORT, files=[("file", ("a.csv", row)), ("file", ("b.csv", row))], headers=h)
    assert (two_files.status_code, two_files.json()["error"]["code"]) == (400, "VALIDATION_ERROR")
    fields = {f"f{i}": "x" for i in range(9)}  # more text fields than the import's form allows
    many_fields = await c.post(IMPORT, data=fields, files={"file": ("a.csv", row)}, headers=h)
    assert (many_fields.status_code, many_fields.json()["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert _count(console) == before


async def test_export_csv_and_xlsx_are_formula_safe_and_round_trip(console) -> None:  # type: ignore[no-untyped-def]
    c, h = console.client, console.admin
    evil = {
        "question": '=HYPERLINK("http://evil")',
        "answer": "@SUM(1+1)",
        "category": "-cat",
        "similar": ["+86 电话多少"],
    }
    assert (await c.post("/api/v1/admin/faqs", json=evil, headers=h)).status_code == 201

    resp = await c.get(EXPORT, params={"format": "csv"}, headers=h)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    assert resp.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows[0] == ["question", "answer", "category", "similar", "enabled", "intent", "id"]
    row = next(r for r in rows if "HYPERLINK" in r[0])
    assert row[:4] == ['\'=HYPERLINK("http://evil")', "'@SUM(1+1)", "'-cat", "'+86 电话多少"]
    for r in rows[1:]:
        for cell in r:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))

    xlsx = await c.get(EXPORT, params={"format": "xlsx"}, headers=h)
    assert xlsx.status_code == 200
    ws = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    values = [[cell.value for cell in r] for r in ws.iter_rows()]
    xrow = next(r for r in values if r[0] and "HYPERLINK" in str(r[0]))
    assert xrow[0] == '\'=HYPERLINK("http://evil")'
    assert all(cell.data_type != "f" for r in ws.iter_rows() for cell in r)
    assert len(values) == len(rows)

    # export -> import changes nothing (the leading quote is undone)
    for name, data in (("back.csv", resp.content), ("back.xlsx", xlsx.content)):
        back = (
            await c.post(IMPORT, params={"dry_run": "true"}, files={"file": (name, data)}, headers=h)
        ).json()
        assert back["errors"] == [] and back["created"] == 0 and back["updated"] == 0, (name, back)

    bad = await c.get(EXPORT, params={"format": "pdf"}, headers=h)
    assert bad.status_code == 422


def test_xlsx_with_xml_entities_is_refused() -> None:
    good = _xlsx([["问题", "答案", None, None]])
    src = zipfile.ZipFile(io.BytesIO(good))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                lol = '<!DOCTYPE worksheet [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
                data = (lol + data.decode().replace("<t>问题</t>", "<t>&lol2;</t>", 1)).encode()
            zf.writestr(item, data)
    with pytest.raises(AppError) as err:
        transfer.read_upload("lol.xlsx", out.getvalue(), max_rows=10, max_bytes=10**6)
    assert err.value.code == "IMPORT_MALFORMED"


async def test_import_without_an_enabled_value_keeps_a_disabled_faq_disabled(console) -> None:  # type: ignore[no-untyped-def]
    """A sheet of answer corrections (no enabled column, or an empty cell) must not switch back on an FAQ
    the operator disabled; new FAQs are enabled."""
    c, h = console.client, console.admin
    assert (await c.put("/api/v1/admin/faqs/faq-002", json={"enabled": False}, headers=h)).status_code == 200
    question = (await c.get("/api/v1/admin/faqs/faq-002", headers=h)).json()["question"]
    sheets = [
        _csv([[question, "新的退货流程。", "退换货", ""], ["新问题甲", "新答案", "", ""]]),
        _csv(
            [[question, "新的退货流程 2。", "退换货", "", ""]],
            ["question", "answer", "category", "similar", "enabled"],
        ),
    ]
    for sheet in sheets:
        files = {"file": ("fix.csv", sheet.encode(), "text/csv")}
        applied = (await c.post(IMPORT, params={"dry_run": "false"}, files=files, headers=h)).json()
        assert applied["updated"] == 1 and applied["errors"] == [], applied
        faq = (await c.get("/api/v1/admin/faqs/faq-002", headers=h)).json()
        assert faq["answer"].startswith("新的退货流程") and faq["enabled"] is False
        assert console.services.catalog.answer_for("faq-002") is None
    new = (await c.get("/api/v1/admin/faqs", params={"q": "新问题甲"}, headers=h)).json()["items"]
    assert new[0]["enabled"] is True
