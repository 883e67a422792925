"""Unanswered-question mining: what visitors asked that the bot could not answer, grouped for one-click fixes.

1. Collect the visitor messages of the last ``days`` days whose bot reply was ``clarify`` or ``fallback``,
   or whose reply got a thumbs-down (at most ``MAX_MESSAGES``, newest first); messages already accepted
   from an earlier cluster are skipped. Identical questions (``kb.question_key``) are merged.
2. Embed the distinct questions with the serving embedder (``POST /v1/embed``).
3. Greedy threshold clustering (:func:`greedy_clusters`): questions in order of frequency; each joins the
   cluster whose centroid is most similar if the cosine is >= ``THRESHOLD`` (0.8), else starts a new one.
   One pass, O(n·k), deterministic, no cluster count to choose; the most frequent phrasing represents the
   cluster.
4. For each cluster the nearest existing FAQ is the top ``/v1/nlu`` candidate of its representative.

Clusters are stored (``unanswered_clusters``) under an id derived from their member messages, so the
console can accept one by id: as a new FAQ (the representative or an edited question + an answer, the
other questions as similar questions) or as similar questions of an existing FAQ.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.admin import kb, limits
from api.admin.schemas import AcceptIn, AcceptOut, ClusterList, ClusterOut
from api.audit import add_audit
from api.db.models import Faq, Feedback, Message, UnansweredCluster
from api.errors import AppError, ErrorCode, InvalidInput, NotFound
from api.inference import InferenceUnavailable
from api.pii import mask_pii
from api.services import Services
from bundle.contracts import MAX_TEXT_CHARS
from bundle.normalize import normalize

log = logging.getLogger("api.admin.unanswered")

MISSED_REPLIES = ("clarify", "fallback")
MAX_MESSAGES = 2000
THRESHOLD = 0.8
MAX_CLUSTERS = 50
QUESTIONS_PER_CLUSTER = 20
OPEN_CLUSTER_TTL = timedelta(days=1)


@dataclass
class Question:
    text: str
    message_ids: list[str] = field(default_factory=list)


@dataclass
class Cluster:
    members: list[int]  # indexes into the question list, most frequent first


def greedy_clusters(vectors: np.ndarray, threshold: float = THRESHOLD) -> list[list[int]]:
    """Cluster rows of ``vectors`` (in the given order) by cosine to running centroids."""
    if len(vectors) == 0:
        return []
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms == 0, 1.0, norms)
    clusters: list[list[int]] = []
    sums: list[np.ndarray] = []
    centroids = np.zeros((0, unit.shape[1]), dtype=np.float64)
    for i, v in enumerate(unit):
        if len(clusters):
            sims = centroids @ v
            j = int(np.argmax(sims))
            if sims[j] >= threshold:
                clusters[j].append(i)
                sums[j] = sums[j] + v
                centroids[j] = sums[j] / (np.linalg.norm(sums[j]) or 1.0)
                continue
        clusters.append([i])
        sums.append(v.astype(np.float64))
        centroids = np.vstack([centroids, v])
    return clusters


def collect(db: Session, since: datetime) -> list[Question]:
    """Distinct unanswered visitor questions since ``since``, most frequent first."""
    down = select(Feedback.message_id).where(Feedback.rating == "down", Feedback.created_at >= since)
    flagged = db.execute(
        select(Message.id, Message.session_id, Message.role, Message.text, Message.created_at)
        .where(
            Message.created_at >= since,
            ((Message.role == "bot") & Message.reply_type.in_(MISSED_REPLIES)) | Message.id.in_(down),
        )
        .order_by(Message.created_at.desc())
        .limit(MAX_MESSAGES)
    ).all()
    accepted: set[str] = set()
    for ids in db.scalars(
        select(UnansweredCluster.message_ids).where(
            UnansweredCluster.status == "accepted", UnansweredCluster.accepted_at >= since
        )
    ):
        accepted.update(ids or [])

    picked: dict[str, str] = {}  # user message id -> text
    bots: dict[str, list[datetime]] = defaultdict(list)
    for m in flagged:
        if m.role == "user":
            picked[m.id] = m.text
        elif m.role == "bot":
            bots[m.session_id].append(m.created_at)
    sessions = sorted(bots)
    for i in range(0, len(sessions), 500):
        chunk = sessions[i : i + 500]
        users: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
        for mid, sid, text, at in db.execute(
            select(Message.id, Message.session_id, Message.text, Message.created_at)
            .where(
                Message.session_id.in_(chunk),
                Message.role == "user",
                Message.created_at >= since - timedelta(hours=1),
            )
            .order_by(Message.created_at, Message.id)
        ):
            users[sid].append((at, mid, text))
        for sid in chunk:
            turns = users.get(sid, [])
            times = [t[0] for t in turns]
            for bot_at in bots[sid]:
                k = bisect.bisect_right(times, bot_at) - 1
                if k >= 0:
                    _, mid, text = turns[k]
                    picked[mid] = text

    groups: dict[str, Question] = {}
    for mid, text in picked.items():
        if mid in accepted:
            continue
        key = kb.question_key(text)
        if len(key) < 2:
            continue
        groups.setdefault(key, Question(text.strip()[: limits.QUESTION_MAX_CHARS])).message_ids.append(mid)
    return sorted(groups.values(), key=lambda q: (-len(q.message_ids), q.text))


def cluster_id(message_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(message_ids)).encode()).hexdigest()[:24]


def _store(services: Services, clusters: list[ClusterOut], members: dict[str, list[str]]) -> None:
    now = datetime.now(UTC)
    with services.session_factory() as db, db.begin():
        db.execute(
            delete(UnansweredCluster).where(
                UnansweredCluster.status == "open", UnansweredCluster.created_at < now - OPEN_CLUSTER_TTL
            )
        )
        for c in clusters:
            row = db.get(UnansweredCluster, c.id)
            if row is None:
                row = UnansweredCluster(id=c.id, status="open")
                db.add(row)
            elif row.status != "open":
                continue
            row.representative = c.representative
            row.questions = c.questions
            row.message_ids = members[c.id]
            row.suggested_faq_id = c.suggested_faq_id
            row.created_at = now


async def mine(services: Services, days: int) -> ClusterList:
    since = datetime.now(UTC) - timedelta(days=days)

    def load() -> list[Question]:
        with services.session_factory() as db:
            return collect(db, since)

    questions = await asyncio.to_thread(load)
    if not questions:
        return ClusterList(clusters=[], messages=0, threshold=THRESHOLD)
    try:
        vectors = await services.inference.embed([q.text[:MAX_TEXT_CHARS] for q in questions])
    except InferenceUnavailable as exc:
        raise AppError(ErrorCode.SERVING_UNAVAILABLE, detail=exc.reason) from exc
    groups = greedy_clusters(np.asarray(vectors, dtype=np.float64))
    groups.sort(key=lambda g: (-sum(len(questions[i].message_ids) for i in g), g[0]))
    groups = groups[:MAX_CLUSTERS]

    async def nearest(text: str) -> tuple[str, str, float] | None:
        try:
            outcome = await services.inference.analyze(normalize(text))
        except InferenceUnavailable:
            return None
        cands = sorted(outcome.result.candidates, key=lambda c: c.fused_score, reverse=True)
        return (cands[0].faq_id, cands[0].question, cands[0].fused_score) if cands else None

    suggestions = await asyncio.gather(*(nearest(questions[g[0]].text) for g in groups))
    clusters: list[ClusterOut] = []
    members: dict[str, list[str]] = {}
    for g, hint in zip(groups, suggestions, strict=True):
        ids = [mid for i in g for mid in questions[i].message_ids]
        cid = cluster_id(ids)
        members[cid] = ids
        clusters.append(
            ClusterOut(
                id=cid,
                size=len(ids),
                representative=mask_pii(questions[g[0]].text),
                questions=[mask_pii(questions[i].text) for i in g[:QUESTIONS_PER_CLUSTER]],
                suggested_faq_id=hint[0] if hint else None,
                suggested_faq_question=hint[1] if hint else None,
                suggested_score=round(hint[2], 4) if hint else None,
            )
        )
    await asyncio.to_thread(_store, services, clusters, members)
    return ClusterList(
        clusters=clusters, messages=sum(len(q.message_ids) for q in questions), threshold=THRESHOLD
    )


def accept(services: Services, cid: str, body: AcceptIn, actor: str) -> AcceptOut:
    with services.session_factory() as db:
        cluster = db.get(UnansweredCluster, cid)
        if cluster is None:
            raise NotFound()
        if cluster.status != "open":
            raise AppError(ErrorCode.CONFLICT)
        cluster.status, cluster.accepted_at, cluster.accepted_by = "accepted", datetime.now(UTC), actor
        if body.action == "new_faq":
            question = kb.clean(body.question) or cluster.representative
            if not kb.clean(body.answer):
                raise InvalidInput(detail="answer required")
            fields = kb.require_valid(
                question=question,
                answer=body.answer,
                category=body.category,
                similar=kb.untaken(db, [kb.without_separators(q) for q in cluster.questions]),
            )
            cluster.faq_id = None
            add_audit(db, actor, "unanswered.accept", cid, {"action": "new_faq"})
            faq = kb.create_faq(db, fields, actor)  # commits the cluster update in the same transaction
            added = len(faq.similar)
        else:
            faq_id = body.faq_id or cluster.suggested_faq_id
            if not faq_id:
                raise InvalidInput(detail="faq_id required")
            found = db.get(Faq, faq_id)
            if found is None:
                raise NotFound()
            faq = found
            added = kb.add_similar(db, faq, list(cluster.questions))
            if added:
                kb.bump_revision(db)
            add_audit(
                db, actor, "unanswered.accept", cid, {"action": "similar", "faq_id": faq.id, "added": added}
            )
            cluster.faq_id = faq.id
            db.commit()
        if cluster.faq_id is None:
            cluster.faq_id = faq.id
            db.commit()
        return AcceptOut(cluster_id=cid, action=body.action, faq=kb.faq_out(faq), added_similar=added)
