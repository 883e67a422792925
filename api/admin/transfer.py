"""Bulk FAQ import (CSV / XLSX, dry run, atomic apply) and export (CSV / XLSX, formula-injection safe).

File format: a header row with the columns ``question``, ``answer`` (required), ``category``, ``similar``
(similar questions separated by ``|``), ``enabled`` (optional; 1/0, true/false, 是/否; no column or an empty
cell keeps an existing FAQ's state, a new FAQ is enabled) and ``intent``
(optional: the intent-model label the FAQ belongs to, e.g. ``logistics``; when the classifier reads a
visitor's message as this intent and the FAQ is the top match, the bot answers it directly, see
``api.dialog.manager.answer_level``; an empty cell keeps the FAQ's current intent). Chinese headers
(问题, 答案, 分类, 相似问题, 启用, 意图) are accepted too; unknown columns (e.g. ``id`` from an export) are ignored.
CSV may be UTF-8 (with or without BOM) or GBK/GB18030.

Import: every row is validated (row number, field, stable code); invalid rows are reported and skipped.
A row whose question matches an existing standard question (``kb.question_key``) updates that FAQ instead
of creating a duplicate; unchanged rows are left alone. All valid rows are written in one transaction, so
a database error leaves the KB exactly as it was. ``dry_run`` runs the same validation and matching and
writes nothing.

XLSX uploads are parsed by openpyxl with defusedxml (entity expansion refused) after a zip-size check.

Export: cells starting with ``= + - @``, tab or CR get a leading ``'`` so spreadsheet apps never evaluate
them; the importer strips that one quote again, so export → import round-trips. CSV carries a UTF-8 BOM
so Excel opens Chinese text correctly.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from api.admin import limits
from api.admin.kb import (
    SIMILAR_SEPARATORS,
    FaqFields,
    FieldCode,
    FieldError,
    apply_fields,
    bump_revision,
    new_faq_id,
    question_index,
    question_key,
    question_owners,
    validate_fields,
)
from api.admin.schemas import ImportErrorOut, ImportResult
from api.audit import add_audit
from api.db.models import Faq, FaqCategory
from api.errors import AppError, DependencyUnavailable, ErrorCode

log = logging.getLogger("api.admin.transfer")

COLUMNS = ("question", "answer", "category", "similar", "enabled", "intent")
REQUIRED = ("question", "answer")
ALIASES: dict[str, str] = {
    "question": "question",
    "问题": "question",
    "标准问题": "question",
    "answer": "answer",
    "答案": "answer",
    "回答": "answer",
    "category": "category",
    "分类": "category",
    "类别": "category",
    "similar": "similar",
    "相似问题": "similar",
    "相似问法": "similar",
    "enabled": "enabled",
    "启用": "enabled",
    "是否启用": "enabled",
    "intent": "intent",
    "意图": "intent",
}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
MAX_REPORTED_ERRORS = 1000
_TRUE = {"1", "true", "yes", "y", "是", "启用", "on"}
_FALSE = {"0", "false", "no", "n", "否", "停用", "禁用", "off"}


@dataclass
class RawRow:
    row: int  # 1-based row number in the file (the header is row 1)
    values: dict[str, str]


@dataclass
class ParsedRow:
    row: int
    fields: FaqFields
    keep_enabled: bool = False  # no enabled value: an existing FAQ keeps its state


@dataclass
class ImportPlan:
    total: int
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[tuple[int, FieldError]] = field(default_factory=list)


# ---- reading ---------------------------------------------------------------------------------------------
def unescape_cell(value: str) -> str:
    """Undo the export's formula guard: ``'=SUM(1)`` → ``=SUM(1)``."""
    if len(value) > 1 and value[0] == "'" and value[1] in "=+-@\t\r":
        return value[1:]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unescape_cell(str(value))


def _header_map(header: list[str]) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for i, name in enumerate(header):
        col = ALIASES.get(str(name or "").strip().lstrip("\ufeff").lower())
        if col is None:
            continue
        if col in mapping.values():
            raise AppError(ErrorCode.IMPORT_BAD_COLUMNS, detail=f"duplicate column {col}")
        mapping[i] = col
    if any(c not in mapping.values() for c in REQUIRED):
        raise AppError(ErrorCode.IMPORT_BAD_COLUMNS, detail=f"header={[str(h)[:20] for h in header[:10]]}")
    return mapping


def _rows(cells: Iterator[tuple[int, list[Any]]], max_rows: int) -> list[RawRow]:
    """Header = first non-empty row; skips blank rows; refuses more than ``max_rows`` data rows."""
    mapping: dict[int, str] | None = None
    out: list[RawRow] = []
    for number, values in cells:
        texts = [_cell(v) for v in values]
        if not any(t.strip() for t in texts):
            continue
        if mapping is None:
            mapping = _header_map(texts)
            continue
        if len(out) >= max_rows:
            raise AppError(ErrorCode.TOO_MANY_ROWS, detail=f"more than {max_rows} rows")
        out.append(RawRow(number, {col: texts[i] if i < len(texts) else "" for i, col in mapping.items()}))
    if mapping is None:
        raise AppError(ErrorCode.IMPORT_BAD_COLUMNS, detail="no header row")
    return out


def decode_csv(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AppError(ErrorCode.IMPORT_BAD_ENCODING)


def read_csv(data: bytes, max_rows: int) -> list[RawRow]:
    text = decode_csv(data)
    if "\x00" in text:
        raise AppError(ErrorCode.IMPORT_MALFORMED, detail="NUL in CSV")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        # records, not reader.line_num: a quoted multi-line cell is one spreadsheet row (blank lines are [])
        return _rows(enumerate(reader, start=1), max_rows)
    except csv.Error as exc:
        raise AppError(ErrorCode.IMPORT_MALFORMED, detail="csv") from exc


def read_xlsx(data: bytes, max_rows: int) -> list[RawRow]:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if sum(i.file_size for i in zf.infolist()) > limits.XLSX_MAX_UNCOMPRESSED_BYTES:
                raise AppError(ErrorCode.PAYLOAD_TOO_LARGE, detail="xlsx uncompressed size")
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except AppError:
        raise
    except Exception as exc:  # BadZipFile, KeyError, XML errors: all "not a readable workbook"
        raise AppError(ErrorCode.IMPORT_MALFORMED, detail=type(exc).__name__) from exc
    try:
        ws = wb.worksheets[0]
        cells = ((i, list(r)) for i, r in enumerate(ws.iter_rows(values_only=True), start=1))
        return _rows(cells, max_rows)
    except AppError:
        raise
    except Exception as exc:
        raise AppError(ErrorCode.IMPORT_MALFORMED, detail=type(exc).__name__) from exc
    finally:
        wb.close()


def read_upload(filename: str | None, data: bytes, *, max_rows: int, max_bytes: int) -> list[RawRow]:
    if len(data) > max_bytes:
        raise AppError(ErrorCode.PAYLOAD_TOO_LARGE)
    name = (filename or "").lower()
    if data.startswith(b"PK\x03\x04") and (name.endswith(".xlsx") or not name.endswith(".csv")):
        return read_xlsx(data, max_rows)
    if name.endswith(".csv") or name.endswith(".txt"):
        return read_csv(data, max_rows)
    raise AppError(ErrorCode.UNSUPPORTED_FILE)


# ---- validation ------------------------------------------------------------------------------------------
def _enabled(value: str) -> bool | None:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return None


def split_similar(value: str) -> list[str]:
    for sep in SIMILAR_SEPARATORS[1:]:
        value = value.replace(sep, SIMILAR_SEPARATORS[0])
    return [s.strip() for s in value.split(SIMILAR_SEPARATORS[0]) if s.strip()]


def plan_import(raw: list[RawRow]) -> ImportPlan:
    plan = ImportPlan(total=len(raw))
    seen: set[str] = set()
    for r in raw:
        v = r.values
        enabled_cell = v.get("enabled", "").strip()
        enabled = _enabled(enabled_cell) if enabled_cell else True
        fields, errors = validate_fields(
            v.get("question"),
            v.get("answer"),
            v.get("category"),
            split_similar(v.get("similar", "")),
            enabled is not False,
            v.get("intent"),
        )
        if enabled is None:
            errors.append(FieldError("enabled", FieldCode.INVALID_VALUE))
        if fields is not None and not errors:
            key = question_key(fields.question)
            if key in seen:
                errors.append(FieldError("question", FieldCode.DUPLICATE_IN_FILE))
            else:
                seen.add(key)
                plan.rows.append(ParsedRow(r.row, fields, keep_enabled=not enabled_cell))
        plan.errors.extend((r.row, e) for e in errors)
    return plan


def _same(faq: Faq, f: FaqFields) -> bool:
    return (
        faq.question == f.question
        and faq.answer == f.answer
        and (faq.category.name if faq.category else None) == f.category
        and [s.question for s in faq.similar] == f.similar
        and faq.enabled == f.enabled
        and faq.intent == f.intent
    )


def _drop_taken(db: Session, plan: ImportPlan, matched: dict[int, str | None]) -> None:
    """Rows whose question or similar questions are already another FAQ's wording become row errors
    (``TAKEN``), judged on the knowledge base as it will be: an FAQ the file updates gives up its similar
    questions for the file's, so moving a similar question between two FAQs of one file is fine; within the
    file, the first row to use a wording keeps it."""
    owners = question_owners(db, exclude={fid for fid in matched.values() if fid})
    claimed: dict[str, int] = {}
    keep: list[ParsedRow] = []
    for p in plan.rows:
        own = matched[p.row]
        checks = [("question", question_key(p.fields.question))]
        checks += [("similar", question_key(s)) for s in p.fields.similar]
        clash = next(
            (name for name, k in checks if owners.get(k, own) != own or claimed.get(k, p.row) != p.row),
            None,
        )
        if clash is not None:
            plan.errors.append((p.row, FieldError(clash, FieldCode.TAKEN)))
            continue
        for _, k in checks:
            claimed.setdefault(k, p.row)
        keep.append(p)
    plan.rows = keep
    plan.errors.sort(key=lambda e: e[0])


def run_import(
    db: Session, raw: list[RawRow], *, dry_run: bool, actor: str, filename: str | None
) -> ImportResult:
    plan = plan_import(raw)
    index = question_index(db)
    matched = {p.row: index.get(question_key(p.fields.question)) for p in plan.rows}
    _drop_taken(db, plan, matched)
    existing: dict[str, Faq] = {}
    ids = sorted({fid for fid in matched.values() if fid})
    for i in range(0, len(ids), 500):
        for faq in db.scalars(select(Faq).where(Faq.id.in_(ids[i : i + 500]))).unique():
            existing[faq.id] = faq
    created = updated = 0
    cache: dict[str, FaqCategory] = {}
    try:
        for p in plan.rows:
            fid = matched[p.row]
            if fid is None:
                created += 1
                if not dry_run:
                    faq = Faq(id=new_faq_id(), version=1)
                    db.add(faq)
                    apply_fields(db, faq, p.fields, cache)
                continue
            faq = existing[fid]
            fields = replace(p.fields, enabled=faq.enabled) if p.keep_enabled else p.fields
            if fields.intent is None:  # an empty intent cell keeps the FAQ's intent
                fields = replace(fields, intent=faq.intent)
            if _same(faq, fields):
                continue
            updated += 1
            if not dry_run:
                apply_fields(db, faq, fields, cache)
                faq.version += 1
        if dry_run:
            db.rollback()
        elif created or updated:
            bump_revision(db)
            add_audit(
                db,
                actor,
                "faq.import",
                (filename or "")[:128] or None,
                {"created": created, "updated": updated},
            )
            db.commit()
    except SQLAlchemyError as exc:
        db.rollback()
        log.error("FAQ import rolled back", exc_info=True)
        raise DependencyUnavailable(detail="faq import") from exc
    errors = [
        ImportErrorOut(row=row, field=e.field, code=e.code.value, message=e.message)
        for row, e in plan.errors[:MAX_REPORTED_ERRORS]
    ]
    return ImportResult(
        dry_run=dry_run,
        total=plan.total,
        valid=len(plan.rows),
        created=created,
        updated=updated,
        errors=errors,
        errors_truncated=len(plan.errors) > MAX_REPORTED_ERRORS,
    )


# ---- export ----------------------------------------------------------------------------------------------
EXPORT_COLUMNS = ("question", "answer", "category", "similar", "enabled", "intent", "id")


def safe_cell(value: str) -> str:
    """Formula-injection guard for spreadsheet cells."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def export_rows(db: Session) -> list[list[str]]:
    rows: list[list[str]] = []
    for faq in db.scalars(select(Faq).order_by(Faq.id)).unique():
        values = [
            faq.question,
            faq.answer,
            faq.category.name if faq.category else "",
            SIMILAR_SEPARATORS[0].join(s.question for s in faq.similar),
            "1" if faq.enabled else "0",
            faq.intent or "",
            faq.id,
        ]
        rows.append([safe_cell(v) for v in values])
    return rows


def to_csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    writer.writerows(rows)
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def to_xlsx(rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("FAQ")
    ws.append(list(EXPORT_COLUMNS))
    for row in rows:
        ws.append([ILLEGAL_CHARACTERS_RE.sub("", v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export_file(db: Session, fmt: str, actor: str) -> tuple[bytes, str, str]:
    """(body, media type, file name) of the whole KB; the export itself is audited."""
    rows = export_rows(db)
    body, media = (to_xlsx(rows), XLSX_MEDIA) if fmt == "xlsx" else (to_csv(rows), "text/csv; charset=utf-8")
    add_audit(db, actor, "faq.export", None, {"format": fmt, "rows": len(rows)})
    db.commit()
    return body, media, f"faqs-{datetime.now(UTC):%Y%m%d-%H%M%S}.{fmt}"
