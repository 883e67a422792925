"""FAQ index publishing through the inference server: build + activate, list, roll back.

The KB entries come from the enabled FAQs in the database (the source of truth); serving embeds them and
swaps every retriever replica to the new version atomically. Each version published from the console is
recorded with the KB revision it was built from, so the console can show whether the KB changed since
the live index ("stale"). A version serving made by re-embedding a published one after an embedder change
(`IndexInfo.derived_from`) carries the KB revision of the version it was made from.
"""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import select

from api.admin.kb import current_revision
from api.admin.schemas import IndexListOut, IndexVersionOut, PublishOut
from api.audit import add_audit
from api.db.models import Faq, KbIndexBuild
from api.errors import AppError, ErrorCode
from api.inference import InferenceUnavailable
from api.services import Services
from bundle.contracts import MAX_TEXT_CHARS, IndexInfo, KbEntry

VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_VERSION = re.compile(VERSION_PATTERN)
_MAX_SIMILAR = 200  # KbEntry.similar bound in the wire contract


def kb_entries(services: Services) -> tuple[list[KbEntry], int]:
    """Enabled FAQs as index entries, with the KB revision they were read at (one snapshot)."""
    with services.session_factory() as db, db.begin():
        revision = current_revision(db)
        entries: list[KbEntry] = []
        for faq in db.scalars(select(Faq).where(Faq.enabled.is_(True)).order_by(Faq.id)).unique():
            question = faq.question.strip()[:MAX_TEXT_CHARS]
            if not question:
                continue
            similar = [s.question.strip()[:MAX_TEXT_CHARS] for s in faq.similar if s.question.strip()]
            entries.append(
                KbEntry(
                    faq_id=faq.id,
                    question=question,
                    similar=similar[:_MAX_SIMILAR],
                    category=faq.category.name if faq.category else None,
                )
            )
    return entries, revision


def _record_build(services: Services, info: IndexInfo, revision: int, faq_count: int, actor: str) -> None:
    with services.session_factory() as db, db.begin():
        row = db.get(KbIndexBuild, info.version)
        if row is None:
            db.add(
                KbIndexBuild(
                    version=info.version,
                    kb_revision=revision,
                    faq_count=faq_count,
                    size=info.size,
                    index_type=info.index_type,
                    actor=actor,
                )
            )
        add_audit(db, actor, "index.publish", info.version, {"kb_revision": revision, "size": info.size})


def _serving_error(exc: InferenceUnavailable) -> AppError:
    if exc.reason == "not_found":
        return AppError(ErrorCode.INDEX_NOT_FOUND)
    if exc.reason == "conflict INDEX_EMBEDDER_MISMATCH":  # built by another embedder than the one serving
        return AppError(ErrorCode.INDEX_EMBEDDER_MISMATCH)
    if exc.reason.startswith("conflict "):  # serving: another build is running / version exists
        return AppError(ErrorCode.CONFLICT, detail=exc.reason)
    return AppError(ErrorCode.SERVING_UNAVAILABLE, detail=exc.reason)


async def publish(services: Services, actor: str) -> PublishOut:
    entries, revision = await asyncio.to_thread(kb_entries, services)
    if not entries:
        raise AppError(ErrorCode.KB_EMPTY)
    try:
        info = await services.inference.build_index(entries, activate=True)
    except InferenceUnavailable as exc:
        raise _serving_error(exc) from exc
    await asyncio.to_thread(_record_build, services, info, revision, len(entries), actor)
    return PublishOut(
        version=info.version,
        size=info.size,
        index_type=info.index_type,
        active=info.active,
        entries=info.entries,
        kb_revision=revision,
    )


def _kb_revision(revisions: dict[str, int], info: IndexInfo) -> int | None:
    """The KB revision a version was built from: its own publish record, or (re-embedded by serving after an
    embedder change: the same questions) that of the version it was derived from."""
    revision = revisions.get(info.version)
    if revision is None and info.derived_from:
        revision = revisions.get(info.derived_from)
    return revision


def _builds(services: Services) -> tuple[dict[str, int], int]:
    with services.session_factory() as db:
        revisions: dict[str, int] = {
            str(v): int(r) for v, r in db.execute(select(KbIndexBuild.version, KbIndexBuild.kb_revision))
        }
        return revisions, current_revision(db)


async def list_versions(services: Services) -> IndexListOut:
    try:
        listing = await services.inference.list_indexes()
    except InferenceUnavailable as exc:
        raise _serving_error(exc) from exc
    revisions, current = await asyncio.to_thread(_builds, services)
    versions = [
        IndexVersionOut(
            version=v.version,
            size=v.size,
            entries=v.entries,
            index_type=v.index_type,
            active=v.version == listing.active,
            created_at=v.created_at,
            build_seconds=v.build_seconds,
            embedder_version=v.embedder_version,
            recall_at_10=v.recall_at_10,
            kb_revision=_kb_revision(revisions, v),
        )
        for v in sorted(listing.versions, key=lambda v: v.created_at, reverse=True)
    ]
    live = next((v for v in listing.versions if v.version == listing.active), None)
    live_revision = _kb_revision(revisions, live) if live is not None else None
    return IndexListOut(
        live_version=listing.active,
        versions=versions,
        kb_revision=current,
        live_kb_revision=live_revision,
        stale=live_revision != current,
    )


async def activate(services: Services, version: str, actor: str) -> IndexVersionOut:
    if not _VERSION.match(version):
        raise AppError(ErrorCode.INDEX_NOT_FOUND)
    try:
        info = await services.inference.activate_index(version)
    except InferenceUnavailable as exc:
        raise _serving_error(exc) from exc

    def audit() -> int | None:
        with services.session_factory() as db, db.begin():
            add_audit(db, actor, "index.activate", version)
            recorded = [v for v in (info.version, info.derived_from) if v]
            rows = db.execute(
                select(KbIndexBuild.version, KbIndexBuild.kb_revision).where(
                    KbIndexBuild.version.in_(recorded)
                )
            )
            return _kb_revision({str(v): int(r) for v, r in rows}, info)

    revision = await asyncio.to_thread(audit)
    return IndexVersionOut(
        version=info.version,
        size=info.size,
        entries=info.entries,
        index_type=info.index_type,
        active=True,
        created_at=info.created_at,
        build_seconds=info.build_seconds,
        embedder_version=info.embedder_version,
        recall_at_10=info.recall_at_10,
        kb_revision=revision,
    )
