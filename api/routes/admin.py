"""Admin console endpoints (FAQ, import/export, index, templates, playground, conversations, mining, analytics).

Thin routes: the work lives in ``api/admin/``. Admin role everywhere except the playground and the
conversation views, which agents may use too. Every write is audited in the same transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.datastructures import UploadFile

from api.admin import analytics, conversations, index, kb, playground, templates, transfer, unanswered
from api.admin import limits as lim
from api.admin.schemas import (
    AcceptIn,
    AcceptOut,
    AnalyticsOut,
    CategoryList,
    CategoryOut,
    ClusterList,
    ConversationList,
    FaqIn,
    FaqList,
    FaqOut,
    FaqPatch,
    ImportResult,
    IndexListOut,
    IndexVersionOut,
    PlaygroundIn,
    PlaygroundOut,
    PublishOut,
    TemplateIn,
    TemplateList,
    TemplateOut,
    TranscriptOut,
)
from api.deps import CurrentAdmin, CurrentAgent, DbDep, ServicesDep
from api.errors import AppError, ErrorCode
from api.schemas import ReplyTypeLiteral

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

Page = Annotated[int, Query(ge=1, le=100_000)]
PageSize = Annotated[int, Query(ge=1, le=lim.PAGE_SIZE_MAX)]
SearchText = Annotated[str | None, Query(max_length=lim.SEARCH_MAX_CHARS)]
FaqId = Annotated[str, Path(min_length=1, max_length=64)]
Day = Annotated[date | None, Query(ge=lim.DATE_MIN, le=lim.DATE_MAX)]


# ---- FAQ ---------------------------------------------------------------------------------------------------
@router.get("/faqs", response_model=FaqList)
def list_faqs(
    db: DbDep,
    user: CurrentAdmin,
    q: SearchText = None,
    category: Annotated[str | None, Query(max_length=lim.CATEGORY_MAX_CHARS)] = None,
    enabled: bool | None = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> FaqList:
    rows, total = kb.list_faqs(db, q=q, category=category, enabled=enabled, page=page, page_size=page_size)
    return FaqList(items=[kb.faq_out(f) for f in rows], total=total, kb_revision=kb.current_revision(db))


@router.get("/faqs/categories", response_model=CategoryList)
def list_categories(db: DbDep, user: CurrentAdmin) -> CategoryList:
    return CategoryList(items=[CategoryOut(name=n, count=c) for n, c in kb.list_categories(db)])


@router.get("/faqs/export", response_class=Response)
def export_faqs(db: DbDep, user: CurrentAdmin, format: Literal["csv", "xlsx"] = "csv") -> Response:
    body, media, filename = transfer.export_file(db, format, user.username)
    return Response(
        content=body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


async def admin_upload(request: Request, user: CurrentAdmin) -> AsyncIterator[UploadFile]:
    """The import's ``file`` part, read only once the caller is known to be an admin.

    A ``File()`` parameter made FastAPI receive and parse the whole multipart body before it ran any
    dependency: anyone without a token had the API spool up to the upload limit (``max_upload_bytes``, enforced
    by ``EdgeMiddleware`` on the bytes received) before their 401. Depending on ``CurrentAdmin``, this reads the
    body after the 401/403 checks. Parse errors stay a 400 (Starlette's), a missing or non-file ``file`` the
    422 FastAPI gave; the spooled files are closed after the response.
    """
    form = await request.form(
        max_files=lim.UPLOAD_MAX_FILES,
        max_fields=lim.UPLOAD_MAX_FIELDS,
        max_part_size=lim.UPLOAD_MAX_FIELD_BYTES,
    )
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise AppError(ErrorCode.VALIDATION_ERROR)
        yield file
    finally:
        await form.close()


# The body is read by ``admin_upload``, not declared as a parameter: documented here as FastAPI documented it.
IMPORT_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "string",
                            "contentMediaType": "application/octet-stream",
                            "title": "File",
                            "description": ".csv or .xlsx",
                        }
                    },
                    "required": ["file"],
                }
            }
        },
    }
}


@router.post("/faqs/import", response_model=ImportResult, openapi_extra=IMPORT_BODY_DOC)
def import_faqs(
    services: ServicesDep,
    db: DbDep,
    user: CurrentAdmin,
    file: Annotated[UploadFile, Depends(admin_upload)],
    dry_run: bool = True,
) -> ImportResult:
    settings = services.settings
    data = file.file.read(settings.max_upload_bytes + 1)
    raw = transfer.read_upload(
        file.filename, data, max_rows=settings.max_import_rows, max_bytes=settings.max_upload_bytes
    )
    result = transfer.run_import(db, raw, dry_run=dry_run, actor=user.username, filename=file.filename)
    if not dry_run and (result.created or result.updated):
        services.reload_catalog()
    return result


@router.post("/faqs", response_model=FaqOut, status_code=201)
def create_faq(body: FaqIn, services: ServicesDep, db: DbDep, user: CurrentAdmin) -> FaqOut:
    fields = kb.require_valid(**body.model_dump())
    out = kb.faq_out(kb.create_faq(db, fields, user.username))
    services.reload_catalog()
    return out


@router.get("/faqs/{faq_id}", response_model=FaqOut)
def get_faq(faq_id: FaqId, db: DbDep, user: CurrentAdmin) -> FaqOut:
    return kb.faq_out(kb.get_faq(db, faq_id))


@router.put("/faqs/{faq_id}", response_model=FaqOut)
def update_faq(faq_id: FaqId, body: FaqPatch, services: ServicesDep, db: DbDep, user: CurrentAdmin) -> FaqOut:
    fields = kb.patched_fields(kb.get_faq(db, faq_id, lock=True), body)
    out = kb.faq_out(kb.update_faq(db, faq_id, fields, user.username, expected_version=body.version))
    services.reload_catalog()
    return out


@router.delete("/faqs/{faq_id}", status_code=204, response_class=Response)
def delete_faq(faq_id: FaqId, services: ServicesDep, db: DbDep, user: CurrentAdmin) -> Response:
    kb.delete_faq(db, faq_id, user.username)
    services.reload_catalog()
    return Response(status_code=204)


# ---- index -------------------------------------------------------------------------------------------------
@router.post("/index/publish", response_model=PublishOut)
async def publish_index(services: ServicesDep, user: CurrentAdmin) -> PublishOut:
    return await index.publish(services, user.username)


@router.get("/index", response_model=IndexListOut)
async def list_indexes(services: ServicesDep, user: CurrentAdmin) -> IndexListOut:
    return await index.list_versions(services)


@router.post("/index/{version}/activate", response_model=IndexVersionOut)
async def activate_index(
    version: Annotated[str, Path(min_length=1, max_length=64)], services: ServicesDep, user: CurrentAdmin
) -> IndexVersionOut:
    return await index.activate(services, version, user.username)


# ---- templates ---------------------------------------------------------------------------------------------
@router.get("/templates", response_model=TemplateList)
def list_templates(db: DbDep, user: CurrentAdmin) -> TemplateList:
    return TemplateList(items=templates.list_templates(db))


@router.put("/templates/{key}", response_model=TemplateOut)
def update_template(
    key: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+:[a-z0-9_]+$")],
    body: TemplateIn,
    services: ServicesDep,
    db: DbDep,
    user: CurrentAdmin,
) -> TemplateOut:
    out = templates.update_template(db, key, body.variants, user.username)
    services.reload_catalog()
    return out


# ---- playground (admin, agent) -----------------------------------------------------------------------------
@router.post("/playground", response_model=PlaygroundOut)
async def run_playground(body: PlaygroundIn, services: ServicesDep, user: CurrentAgent) -> PlaygroundOut:
    return await playground.run(services, body.message)


# ---- conversations (admin, agent) --------------------------------------------------------------------------
@router.get("/conversations", response_model=ConversationList)
def list_conversations(
    db: DbDep,
    user: CurrentAgent,
    intent: Annotated[str | None, Query(max_length=lim.INTENT_MAX_CHARS)] = None,
    reply_type: ReplyTypeLiteral | None = None,
    feedback: Literal["up", "down"] | None = None,
    handoff: bool | None = None,
    date_from: Day = None,
    date_to: Day = None,
    q: SearchText = None,
    customer_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=lim.CUSTOMER_ID_MAX_CHARS,
            description="sessions of the customer the shop verified with this id (exact match); never a claimed id",
        ),
    ] = None,
    verified: Annotated[
        bool | None, Query(description="true: verified customers only; false: anonymous visitors only")
    ] = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> ConversationList:
    if date_from and date_to and date_from > date_to:
        raise AppError(ErrorCode.VALIDATION_ERROR)
    items, total = conversations.search(
        db,
        intent=intent,
        reply_type=reply_type,
        feedback=feedback,
        handoff=handoff,
        date_from=date_from,
        date_to=date_to,
        q=q,
        customer_id=customer_id,
        verified=verified,
        page=page,
        page_size=page_size,
    )
    return ConversationList(items=items, total=total)


@router.get("/conversations/{session_id}", response_model=TranscriptOut)
def get_conversation(
    session_id: Annotated[str, Path(min_length=1, max_length=64)], db: DbDep, user: CurrentAgent
) -> TranscriptOut:
    return conversations.transcript(db, session_id)


# ---- unanswered-question mining ----------------------------------------------------------------------------
@router.get("/unanswered", response_model=ClusterList)
async def list_unanswered(
    services: ServicesDep,
    user: CurrentAdmin,
    days: Annotated[int, Query(ge=1, le=lim.UNANSWERED_MAX_DAYS)] = 7,
) -> ClusterList:
    return await unanswered.mine(services, days)


@router.post("/unanswered/{cluster_id}/accept", response_model=AcceptOut)
def accept_unanswered(
    cluster_id: Annotated[str, Path(min_length=1, max_length=32)],
    body: AcceptIn,
    services: ServicesDep,
    user: CurrentAdmin,
) -> AcceptOut:
    out = unanswered.accept(services, cluster_id, body, user.username)
    services.reload_catalog()
    return out


# ---- analytics ---------------------------------------------------------------------------------------------
@router.get("/analytics", response_model=AnalyticsOut)
def get_analytics(db: DbDep, user: CurrentAdmin, date_from: Day = None, date_to: Day = None) -> AnalyticsOut:
    start, end = conversations.day_range(date_from, date_to, default_days=7, max_days=lim.ANALYTICS_MAX_DAYS)
    return analytics.summary(db, start, end)
