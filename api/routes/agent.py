"""Console endpoints shared by agents and admins: login, me, handoff tickets, live events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.admin.schemas import VisitorOut
from api.audit import write_audit
from api.auth import TokenClaims, authenticate
from api.db.models import HandoffTicket
from api.deps import ClientIp, CurrentAgent, ServicesDep, load_principal
from api.errors import RateLimited
from api.handoff import AGENTS_TOPIC, HandoffService
from api.ratelimit import Bucket
from api.routes import public
from api.routes.public import sse_stream
from api.services import Services

router = APIRouter(prefix="/api/v1/admin", tags=["console"])

LOGIN_BUCKET = Bucket(rate_per_s=10 / 60, burst=10)  # per client IP, on top of the per-account lockout


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class LoginResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    role: Literal["admin", "agent"]
    username: str


class MeResponse(BaseModel):
    id: int
    username: str
    role: Literal["admin", "agent"]


@router.post("/auth/login", response_model=LoginResponse)
async def login(body: LoginRequest, services: ServicesDep, ip: ClientIp) -> LoginResponse:
    decision = await services.limiter.hit(f"login:{ip}", LOGIN_BUCKET)
    if not decision.allowed:
        services.metrics.rate_limited.labels("login").inc()
        raise RateLimited(decision.retry_after_s)
    st = services.settings

    def check() -> tuple[int, str, str]:
        with services.session_factory() as db:
            user = authenticate(
                db, body.username, body.password, max_failures=st.login_max_failures, lock_s=st.login_lock_s
            )
            return user.id, user.username, user.role

    user_id, username, role = await asyncio.to_thread(check)
    token = services.signer.issue(user_id, username, role)  # type: ignore[arg-type]
    return LoginResponse(access_token=token, expires_in=st.access_token_ttl_s, role=role, username=username)  # type: ignore[arg-type]


@router.get("/me", response_model=MeResponse)
def me(user: CurrentAgent) -> MeResponse:
    return MeResponse(id=user.id, username=user.username, role=user.role)  # type: ignore[arg-type]


class TicketOut(BaseModel):
    ticket_id: str
    session_id: str
    status: Literal["waiting", "active", "closed"]
    created_at: datetime
    agent: str | None
    last_message: str | None
    visitor: VisitorOut  # verified customer or anonymous visitor: what the agent may discuss with them


class TicketList(BaseModel):
    items: list[TicketOut]


class AgentMessageRequest(BaseModel):
    text: str = Field(min_length=1, max_length=1000)


class AgentMessageOut(BaseModel):
    id: str
    role: Literal["agent"]
    text: str
    created_at: datetime


def _ticket_out(t: HandoffTicket) -> TicketOut:
    return TicketOut(
        ticket_id=t.id,
        session_id=t.session_id,
        status=t.status,  # type: ignore[arg-type]
        created_at=t.created_at,
        agent=t.agent_username,
        last_message=t.last_message,
        visitor=VisitorOut.of(t.customer_id),
    )


@router.get("/handoffs", response_model=TicketList)
async def list_handoffs(
    services: ServicesDep, user: CurrentAgent, status: Literal["waiting", "active", "closed"] | None = None
) -> TicketList:
    rows = await asyncio.to_thread(HandoffService(services).list_tickets, status)
    return TicketList(items=[_ticket_out(t) for t in rows])


@router.post("/handoffs/{ticket_id}/take", response_model=TicketOut)
async def take(ticket_id: str, services: ServicesDep, user: CurrentAgent) -> TicketOut:
    ticket = await HandoffService(services).take(ticket_id, user)
    await _audit(services, user.username, "handoff.take", ticket_id)
    return _ticket_out(ticket)


@router.post("/handoffs/{ticket_id}/messages", response_model=AgentMessageOut)
async def agent_message(
    ticket_id: str, body: AgentMessageRequest, services: ServicesDep, user: CurrentAgent
) -> AgentMessageOut:
    turn = await HandoffService(services).agent_message(ticket_id, user, body.text.strip() or body.text)
    return AgentMessageOut(id=turn.id, role="agent", text=turn.text, created_at=turn.at)


@router.post("/handoffs/{ticket_id}/release", response_model=TicketOut)
async def release(ticket_id: str, services: ServicesDep, user: CurrentAgent) -> TicketOut:
    ticket = await HandoffService(services).release(ticket_id, user)
    await _audit(services, user.username, "handoff.release", ticket_id)
    return _ticket_out(ticket)


def principal_check(services: Services, claims: TokenClaims) -> Callable[[], Awaitable[bool]]:
    """For a console stream: False once the bearer token has expired (checked every time) or the account was
    deactivated (checked in the database at most every ``SSE_KEEPALIVE_S``; a database outage keeps the stream)."""
    checked = time.monotonic()

    async def check() -> bool:
        nonlocal checked
        if time.time() >= claims.expires_at:
            return False
        if time.monotonic() - checked >= public.SSE_KEEPALIVE_S:
            checked = time.monotonic()
            try:
                return await asyncio.to_thread(load_principal, services, claims) is not None
            except Exception:
                return True
        return True

    return check


@router.get("/events", response_class=StreamingResponse)
async def agent_events(request: Request, services: ServicesDep, user: CurrentAgent) -> StreamingResponse:
    return public.open_stream(
        services,
        {("account", str(user.id)): public.SSE_MAX_STREAMS_PER_ACCOUNT},
        sse_stream(services, AGENTS_TOPIC, request, principal_check(services, request.state.claims)),
    )


async def _audit(
    services: object, actor: str, action: str, target: str | None, detail: dict | None = None
) -> None:

    await asyncio.to_thread(write_audit, services, actor, action, target, detail)


__all__ = ["router", "ClientIp"]
