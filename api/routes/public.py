"""Visitor (widget) endpoints: chat, history, live events, handoff, feedback, rating, ending the session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from starlette.types import Receive, Scope, Send

from api.chat import ChatService
from api.db.models import Message
from api.deps import ClientIp, ServicesDep, SessionStoreDep, SessionToken
from api.errors import RateLimited
from api.handoff import session_topic
from api.schemas import (
    ChatRequest,
    ChatResponse,
    FeedbackRequest,
    HandoffResponse,
    HandoffStatusOut,
    HistoryMessage,
    HistoryResponse,
    RatingRequest,
    ReplyOut,
)
from api.services import Services
from api.sessions import load_authorized

router = APIRouter(prefix="/api/v1", tags=["visitor"])
SSE_KEEPALIVE_S = 15.0


async def get_chat_service(services: ServicesDep) -> ChatService:
    return ChatService(services)


ChatServiceDep = Annotated[ChatService, Depends(get_chat_service)]


async def limit_visitor_request(chat: ChatServiceDep, ip: ClientIp) -> None:
    await chat.limit_visitor_request(ip)


# Every visitor route but the chat turn itself (limited in ChatService.turn): per client IP, before anything else.
VisitorLimit = Depends(limit_visitor_request)


@router.post("/chat", response_model=ChatResponse)
async def chat(body: ChatRequest, chat: ChatServiceDep, token: SessionToken, ip: ClientIp) -> Response:
    out = await chat.turn(
        message=body.message,
        session_id=body.session_id,
        token=token,
        user_id=body.user_id,
        user_signature=body.user_signature,
        client_ip=ip,
        client_message_id=body.client_message_id,
    )
    r = out.reply
    # Serialized here, once: returning the model would make FastAPI dump, re-validate and re-encode it.
    resp = ChatResponse(
        session_id=out.session_id,
        session_token=out.session_token,
        message_id=out.message_id,
        reply=ReplyOut(
            type=r.type.value,
            text=r.text,
            suggestions=r.suggestions,
            faq_id=r.faq_id,
            quick_replies=r.quick_replies,
        ),
        intent=out.intent,
        confidence=out.confidence,
        handoff=HandoffStatusOut(status=out.handoff_status),  # type: ignore[arg-type]
        identity=out.identity,  # type: ignore[arg-type]
    )
    return Response(resp.model_dump_json(), media_type="application/json")


def _db_history(services: Services, session_id: str) -> list[HistoryMessage]:
    with services.session_factory() as db:
        rows = db.scalars(
            select(Message)
            .where(Message.session_id == session_id)
            .order_by(Message.created_at, Message.id)
            .limit(500)
        )
        return [
            HistoryMessage(
                id=m.id,
                role=m.role,  # type: ignore[arg-type]
                text=m.text,
                created_at=m.created_at,
                reply_type=m.reply_type,
                suggestions=m.suggestions or [],
                faq_id=m.faq_id,
            )
            for m in rows
        ]


@router.get("/sessions/{session_id}/history", response_model=HistoryResponse, dependencies=[VisitorLimit])
async def history(
    session_id: str, services: ServicesDep, store: SessionStoreDep, token: SessionToken
) -> HistoryResponse:
    session = await load_authorized(store, session_id, token)
    try:
        stored = await asyncio.to_thread(_db_history, services, session_id)
    except Exception:
        stored = []  # database down: the session's recent turns below still answer
    seen = {m.id for m in stored}
    recent = [
        HistoryMessage(
            id=t.id,
            role=t.role,
            text=t.text,
            created_at=t.at,
            reply_type=t.reply_type,
            suggestions=t.suggestions,
            faq_id=t.faq_id,
        )
        for t in session.turns
        if t.id not in seen  # accepted but not yet written by the durable writer
    ]
    return HistoryResponse(
        session_id=session_id,
        handoff=HandoffStatusOut(status=session.handoff.status),
        messages=stored + recent,
    )


@router.get("/sessions/{session_id}/events", response_class=StreamingResponse, dependencies=[VisitorLimit])
async def events(
    session_id: str,
    request: Request,
    services: ServicesDep,
    store: SessionStoreDep,
    token: SessionToken,
    ip: ClientIp,
) -> StreamingResponse:
    await load_authorized(store, session_id, token)
    return open_stream(
        services,
        {("session", session_id): SSE_MAX_STREAMS_PER_SESSION, ("ip", ip): SSE_MAX_STREAMS_PER_IP},
        # ends when the session expires (30 min without a turn) or is ended: the widget's reconnect then finds it
        # gone and says so, instead of an open tab holding a stream (a pub/sub connection) for a conversation that
        # is over
        sse_stream(services, session_topic(session_id), request, lambda: store.exists(session_id)),
    )


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Open event streams in this process, per session and per client IP (visitors) or per account (console): each
# holds an open response, a task and a subscription queue (all streams share the process's one Redis pub/sub
# connection) for as long as the client likes, so neither one session token, nor one address (with as many
# sessions as its chat budget creates), nor one console account may open any number.
SSE_MAX_STREAMS_PER_SESSION = 5  # a few browser tabs share one session (localStorage)
SSE_MAX_STREAMS_PER_IP = 100  # visitors behind one NAT each hold one per open tab
SSE_MAX_STREAMS_PER_ACCOUNT = 10  # a console tab each
_open_streams: dict[tuple[str, str], int] = {}


def open_stream(
    services: Services, caps: dict[tuple[str, str], int], stream: AsyncIterator[str]
) -> StreamingResponse:
    """The event-stream response, holding one slot of each key in ``caps`` until it ends; a key at its cap → 429
    ``RATE_LIMITED`` (Retry-After: the keep-alive interval, by which a dead stream has been noticed and freed)."""
    # Checked and taken with no await in between: concurrent opens cannot all pass the check.
    if any(_open_streams.get(key, 0) >= cap for key, cap in caps.items()):
        services.metrics.rate_limited.labels("events").inc()
        raise RateLimited(SSE_KEEPALIVE_S)
    for key in caps:
        _open_streams[key] = _open_streams.get(key, 0) + 1
    return _SlotStreamResponse(tuple(caps), stream, media_type="text/event-stream", headers=SSE_HEADERS)


class _SlotStreamResponse(StreamingResponse):
    """Gives the stream's slots back however the response ends (done, disconnect, cancelled)."""

    def __init__(self, slots: tuple[tuple[str, str], ...], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            for slot in self.slots:
                left = _open_streams.get(slot, 1) - 1
                if left > 0:
                    _open_streams[slot] = left
                else:
                    _open_streams.pop(slot, None)


async def sse_stream(
    services: Services,
    topic: str,
    request: Request,
    still_authorized: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[str]:
    """Events of ``topic`` until the client leaves or, with ``still_authorized``, its credentials lapse (checked
    before every event and keep-alive: a stream outlives the request that authorized it), or the subscription
    may have missed events (``gap``: a pub/sub outage, a full queue): the stream ends, and the widget and the
    console reconnect and catch up from history, as after any reconnect."""
    async with services.events.subscribe(topic) as sub:
        yield ": connected\n\n"
        while True:
            if await request.is_disconnected():
                return
            event = await sub.next(SSE_KEEPALIVE_S)
            if still_authorized is not None and not await still_authorized():
                return
            if sub.gap:
                return
            if event is None:
                yield ": keep-alive\n\n"
                continue
            yield f"event: {event['event']}\ndata: {json.dumps(event['data'], ensure_ascii=False)}\n\n"


@router.post("/sessions/{session_id}/handoff", response_model=HandoffResponse, dependencies=[VisitorLimit])
async def handoff(session_id: str, chat: ChatServiceDep, token: SessionToken) -> HandoffResponse:
    status, ticket_id = await chat.request_handoff(session_id, token)
    return HandoffResponse(status=status, ticket_id=ticket_id)  # type: ignore[arg-type]


@router.post("/feedback", status_code=204, response_class=Response, dependencies=[VisitorLimit])
async def feedback(body: FeedbackRequest, chat: ChatServiceDep, token: SessionToken) -> Response:
    await chat.feedback(
        message_id=body.message_id,
        rating=body.rating,
        comment=body.comment,
        session_id=body.session_id,
        token=token,
    )
    return Response(status_code=204)


@router.post(
    "/sessions/{session_id}/rating", status_code=204, response_class=Response, dependencies=[VisitorLimit]
)
async def rating(
    session_id: str, body: RatingRequest, chat: ChatServiceDep, store: SessionStoreDep, token: SessionToken
) -> Response:
    session = await load_authorized(store, session_id, token)
    await chat.rate_session(session, body.rating, body.comment)
    return Response(status_code=204)


@router.delete(
    "/sessions/{session_id}", status_code=204, response_class=Response, dependencies=[VisitorLimit]
)
async def end_session(session_id: str, chat: ChatServiceDep, token: SessionToken) -> Response:
    """End the session now (the widget's logout and "new conversation"): its token stops working everywhere, its
    hand-off ticket is closed and its event streams end; its messages stay in the history the console shows.

    A wrong token, no token or a session already gone (ended, expired): 404 ``SESSION_NOT_FOUND``, as the history
    answers, so the route tells nobody which session ids exist. Ending twice changes nothing the second time."""
    await chat.end_session(session_id, token)
    return Response(status_code=204)
