"""Human handoff: tickets in the database, live state in the session, events to widget and console."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from api.db.models import AdminUser, HandoffTicket
from api.dialog.state import DialogState, Phase, ReplyType
from api.errors import AppError, DependencyUnavailable, ErrorCode, NotFound
from api.pii import mask_pii
from api.services import Services
from api.sessions import HandoffInfo, Session, Turn

log = logging.getLogger(__name__)

AGENTS_TOPIC = "agents"


def session_topic(session_id: str) -> str:
    return f"session:{session_id}"


def new_ticket_id() -> str:
    return "t_" + secrets.token_hex(10)


def message_record(session: Session, turn: Turn, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "message",
        "id": turn.id,
        "session_id": session.id,
        "visitor_id": session.visitor_id,
        "user_id": session.verified_user_id,  # visitors.external_user_id: never an unchecked claim
        # visitors.verified: a record without it (journaled by an older API) lands as an anonymous visitor
        "user_verified": session.verified_user_id is not None,
        "session_started_at": session.created_at.isoformat(),
        "role": turn.role,
        "text": turn.text,
        "intent": turn.intent,
        "reply_type": turn.reply_type,
        "faq_id": turn.faq_id,
        "suggestions": turn.suggestions or None,
        "created_at": turn.at.isoformat(),
        **extra,
    }


def event_message(turn: Turn) -> dict[str, Any]:
    return {"id": turn.id, "role": turn.role, "text": turn.text, "created_at": turn.at.isoformat()}


class HandoffService:
    def __init__(self, services: Services) -> None:
        self.s = services

    # ---- visitor side ------------------------------------------------------------------------------
    async def open_ticket(self, session: Session, reason: str, last_message: str | None = None) -> str:
        """Create (or reuse) a waiting ticket and mark the session; the caller holds the session lock and saves.

        ``last_message`` is the (masked) preview agents see; default: the visitor's last message.
        """
        if session.handoff.status != "none" and session.handoff.ticket_id:
            return session.handoff.ticket_id
        ticket_id = new_ticket_id()
        last = last_message or next((t.text for t in reversed(session.turns) if t.role == "user"), None)

        def create() -> None:
            with self.s.session_factory() as db, db.begin():
                db.add(
                    HandoffTicket(
                        id=ticket_id,
                        session_id=session.id,
                        status="waiting",
                        reason=reason,
                        last_message=last,
                        customer_id=session.verified_user_id,  # what agents are shown: never a claim
                    )
                )

        try:
            await asyncio.to_thread(create)
        except Exception as exc:
            raise DependencyUnavailable(detail="handoff ticket create") from exc
        session.handoff = HandoffInfo(status="waiting", ticket_id=ticket_id)
        session.dialog.phase = Phase.AGENT
        return ticket_id

    async def withdraw_ticket(self, ticket_id: str | None) -> None:
        """Close a ticket that was never announced because its turn was refused (best effort: a database that is
        down leaves it waiting, and agents see it as they would a visitor who left)."""
        if not ticket_id:
            return

        def close() -> None:
            with self.s.session_factory() as db, db.begin():
                db.execute(
                    update(HandoffTicket)
                    .where(HandoffTicket.id == ticket_id, HandoffTicket.status == "waiting")
                    .values(status="closed", closed_at=datetime.now(UTC))
                )

        try:
            await asyncio.to_thread(close)
        except Exception:
            log.warning("could not withdraw handoff ticket %s", ticket_id)

    async def withdraw_waiting(self, session: Session) -> str | None:
        """The visitor no longer wants a human while still queued: close the ticket no agent has taken yet and
        clear the session's handoff (the caller holds the session lock and saves). -> the closed ticket's id, or
        None when an agent took it meanwhile or the database cannot say (the message then goes to the agent).
        A ticket found already closed counts as withdrawn: the retry of a turn whose journal write failed."""
        ticket_id = session.handoff.ticket_id
        if session.handoff.status != "waiting" or not ticket_id:
            return None

        def close() -> bool:
            with self.s.session_factory() as db, db.begin():
                res = db.execute(
                    update(HandoffTicket)
                    .where(HandoffTicket.id == ticket_id, HandoffTicket.status == "waiting")
                    .values(status="closed", closed_at=datetime.now(UTC))
                )
                if res.rowcount:  # type: ignore[attr-defined]
                    return True
                ticket = db.get(HandoffTicket, ticket_id)
                return ticket is None or ticket.status == "closed"

        try:
            closed = await asyncio.to_thread(close)
        except Exception:
            log.warning("could not withdraw handoff ticket %s", ticket_id)
            return None
        if not closed:
            return None
        session.handoff = HandoffInfo()
        return ticket_id

    async def restore_waiting(self, ticket_id: str) -> None:
        """Undo :meth:`withdraw_waiting` when its turn is refused (best effort, like :meth:`withdraw_ticket`): the
        session still says waiting, and a closed ticket would leave the visitor waiting for nobody."""

        def reopen() -> None:
            with self.s.session_factory() as db, db.begin():
                db.execute(
                    update(HandoffTicket)
                    .where(HandoffTicket.id == ticket_id, HandoffTicket.status == "closed")
                    .values(status="waiting", closed_at=None)
                )

        try:
            await asyncio.to_thread(reopen)
        except Exception:
            log.warning("could not restore handoff ticket %s", ticket_id)

    async def announce_withdrawn(self, session: Session, ticket_id: str) -> None:
        payload = {"ticket_id": ticket_id, "session_id": session.id, "status": "closed"}
        await self.s.events.publish(AGENTS_TOPIC, {"event": "handoff", "data": payload})
        await self.s.events.publish(
            session_topic(session.id), {"event": "handoff", "data": {"status": "none"}}
        )

    async def announce_ticket(self, session: Session) -> None:
        payload = {
            "ticket_id": session.handoff.ticket_id,
            "session_id": session.id,
            "status": session.handoff.status,
        }
        await self.s.events.publish(AGENTS_TOPIC, {"event": "handoff", "data": payload})
        await self.s.events.publish(
            session_topic(session.id), {"event": "handoff", "data": {"status": session.handoff.status}}
        )

    async def visitor_message(self, session: Session, turn: Turn) -> None:
        ticket_id = session.handoff.ticket_id
        data = {**event_message(turn), "ticket_id": ticket_id, "session_id": session.id}
        await self.s.events.publish(AGENTS_TOPIC, {"event": "message", "data": data})
        if ticket_id:

            def touch() -> None:
                with self.s.session_factory() as db, db.begin():
                    db.execute(
                        update(HandoffTicket)
                        .where(HandoffTicket.id == ticket_id)
                        .values(last_message=turn.text[:500])
                    )

            try:
                await asyncio.to_thread(touch)
            except Exception:  # preview only; the message itself is journaled
                pass

    # ---- agent side --------------------------------------------------------------------------------
    def _get_ticket(self, ticket_id: str) -> HandoffTicket:
        with self.s.session_factory() as db:
            ticket = db.get(HandoffTicket, ticket_id)
            if ticket is None:
                raise NotFound()
            db.expunge(ticket)
            return ticket

    async def take(self, ticket_id: str, agent: AdminUser) -> HandoffTicket:
        def claim() -> HandoffTicket:
            with self.s.session_factory() as db, db.begin():
                res = db.execute(
                    update(HandoffTicket)
                    .where(HandoffTicket.id == ticket_id, HandoffTicket.status == "waiting")
                    .values(
                        status="active",
                        agent_id=agent.id,
                        agent_username=agent.username,
                        taken_at=datetime.now(UTC),
                    )
                )
                ticket = db.get(HandoffTicket, ticket_id)
                if ticket is None:
                    raise NotFound()
                if res.rowcount == 0 and not (ticket.status == "active" and ticket.agent_id == agent.id):  # type: ignore[attr-defined]
                    raise AppError(ErrorCode.HANDOFF_STATE)
                db.expunge(ticket)
                return ticket

        ticket = await asyncio.to_thread(claim)
        if not await self._set_session_handoff(
            ticket.session_id, HandoffInfo(status="active", ticket_id=ticket_id)
        ):
            # The visitor left while queued (the session expired): nobody would read the agent's messages.
            await self._close_for_departed_visitor(ticket_id, ticket.session_id)
            raise AppError(ErrorCode.SESSION_NOT_FOUND)
        payload = {
            "ticket_id": ticket_id,
            "session_id": ticket.session_id,
            "status": "active",
            "agent": agent.username,
        }
        await self.s.events.publish(AGENTS_TOPIC, {"event": "handoff", "data": payload})
        await self.s.events.publish(
            session_topic(ticket.session_id), {"event": "handoff", "data": {"status": "active"}}
        )
        return ticket

    async def agent_message(self, ticket_id: str, agent: AdminUser, text: str) -> Turn:
        ticket = await asyncio.to_thread(self._get_ticket, ticket_id)
        if ticket.status != "active" or (ticket.agent_id != agent.id and agent.role != "admin"):
            raise AppError(ErrorCode.HANDOFF_STATE)
        turn = Turn(role="agent", text=mask_pii(text))
        store = self.s.sessions
        async with store.lock(ticket.session_id):
            session = await store.get(ticket.session_id)
            if session is None:
                raise AppError(ErrorCode.SESSION_NOT_FOUND)
            await self.s.journal.append([message_record(session, turn)])
            session.add_turn(turn, self.s.settings.session_history_turns)
            await store.save(session)
        await self.s.events.publish(
            session_topic(ticket.session_id), {"event": "message", "data": event_message(turn)}
        )
        data = {**event_message(turn), "ticket_id": ticket_id, "session_id": ticket.session_id}
        await self.s.events.publish(AGENTS_TOPIC, {"event": "message", "data": data})
        return turn

    async def release(self, ticket_id: str, agent: AdminUser) -> HandoffTicket:
        def close() -> tuple[HandoffTicket, str]:
            with self.s.session_factory() as db, db.begin():
                ticket = db.get(HandoffTicket, ticket_id)
                if ticket is None:
                    raise NotFound()
                before = ticket.status
                if before == "closed":
                    raise AppError(ErrorCode.HANDOFF_STATE)
                if before == "active" and ticket.agent_id != agent.id and agent.role != "admin":
                    raise AppError(ErrorCode.HANDOFF_STATE)
                ticket.status = "closed"
                ticket.closed_at = datetime.now(UTC)
                db.flush()
                db.expunge(ticket)
                return ticket, before

        ticket, before = await asyncio.to_thread(close)
        store = self.s.sessions
        # closed while still waiting, no agent ever joined: "the agent has finished" would be untrue
        key = "dialog:handoff_unavailable" if before == "waiting" else "dialog:handed_back"
        turn = Turn(role="bot", text=self.s.templates.text(key), reply_type=ReplyType.TEMPLATE.value)
        async with store.lock(ticket.session_id):
            session = await store.get(ticket.session_id)
            if session is not None:
                session.handoff = HandoffInfo()
                session.dialog = DialogState()
                await self.s.journal.append([message_record(session, turn)])
                session.add_turn(turn, self.s.settings.session_history_turns)
                await store.save(session)
        topic = session_topic(ticket.session_id)
        await self.s.events.publish(topic, {"event": "handoff", "data": {"status": "none"}})
        await self.s.events.publish(topic, {"event": "message", "data": event_message(turn)})
        payload = {"ticket_id": ticket_id, "session_id": ticket.session_id, "status": "closed"}
        await self.s.events.publish(AGENTS_TOPIC, {"event": "handoff", "data": payload})
        return ticket

    async def _set_session_handoff(self, session_id: str, info: HandoffInfo) -> bool:
        """Mark the live session; False when it is gone (expired)."""
        store = self.s.sessions
        async with store.lock(session_id):
            session = await store.get(session_id)
            if session is None:
                return False
            session.handoff = info
            session.dialog.phase = Phase.AGENT
            await store.save(session)
            return True

    async def visitor_left(self, session: Session) -> None:
        """The visitor ended the session (``DELETE /sessions/{id}``; the caller deleted it): its ticket, queued or
        with an agent, is closed as when an agent takes the ticket of a visitor whose session expired (agents get
        the same ``handoff`` event, and the console shows the conversation as ended), and the session's open event
        streams end now rather than at their next keep-alive. Best effort like :meth:`withdraw_ticket`: a
        database that is down leaves the ticket open, and taking it or replying then finds the session gone."""
        ticket_id = session.handoff.ticket_id
        if session.handoff.status != "none" and ticket_id:
            try:
                await self._close_for_departed_visitor(ticket_id, session.id)
            except Exception:
                log.warning("could not close handoff ticket %s of an ended session", ticket_id)
        # Wakes every stream of the session: each checks that its session still exists before it forwards an
        # event, finds it gone and ends (the event itself reaches nobody).
        await self.s.events.publish(
            session_topic(session.id), {"event": "handoff", "data": {"status": "none"}}
        )

    async def _close_for_departed_visitor(self, ticket_id: str, session_id: str) -> None:
        await asyncio.to_thread(self._close_ticket, ticket_id)
        payload = {"ticket_id": ticket_id, "session_id": session_id, "status": "closed"}
        await self.s.events.publish(AGENTS_TOPIC, {"event": "handoff", "data": payload})

    def _close_ticket(self, ticket_id: str) -> None:
        with self.s.session_factory() as db, db.begin():
            db.execute(
                update(HandoffTicket)
                .where(HandoffTicket.id == ticket_id, HandoffTicket.status != "closed")
                .values(status="closed", closed_at=datetime.now(UTC))
            )

    def list_tickets(self, status: str | None) -> list[HandoffTicket]:
        with self.s.session_factory() as db:
            stmt = select(HandoffTicket).order_by(HandoffTicket.created_at.desc()).limit(200)
            if status:
                stmt = stmt.where(HandoffTicket.status == status)
            rows = list(db.scalars(stmt))
            for r in rows:
                db.expunge(r)
            return rows
