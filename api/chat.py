"""One visitor turn end to end: validate → rate limit → session (locked) → dialog → journal → push."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from api.db.models import Message
from api.dialog.manager import Reply, declines_human, degraded_reply
from api.dialog.state import Phase, ReplyType
from api.errors import AppError, DependencyUnavailable, ErrorCode, RateLimited
from api.handoff import HandoffService, message_record
from api.identity import IdentityCheck, check_identity
from api.pii import mask_pii
from api.ratelimit import Bucket
from api.services import Services
from api.sessions import Session, Turn, load_authorized, new_session
from bundle.normalize import normalize

log = logging.getLogger(__name__)

_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))


def _has_visible(text: str) -> bool:
    """True when ``text`` has a character that is neither whitespace nor a format character (category Cf:
    zero-width space/joiner, BOM, bidi overrides...). Stops at the first visible one (usually the first)."""
    for ch in text:
        if not ch.isspace() and unicodedata.category(ch) != "Cf":
            return True
    return False


def clean_message(message: str, max_chars: int) -> str:
    """Trim and bound a visitor message: 1..max_chars characters after trimming, no control characters."""
    text = message.translate(_CONTROL).strip()
    if not _has_visible(text):
        raise AppError(ErrorCode.MESSAGE_EMPTY)
    if len(text) > max_chars:
        raise AppError(ErrorCode.MESSAGE_TOO_LONG)
    return text


@dataclass
class ChatOutcome:
    session_id: str
    session_token: str | None
    message_id: str
    reply: Reply
    intent: str | None
    confidence: float
    handoff_status: str = "none"
    identity: str | None = None  # on the turn that started the session: IdentityCheck.reported


class ChatService:
    def __init__(self, services: Services) -> None:
        self.s = services
        self.handoff = HandoffService(services)
        st = services.settings
        self.ip_bucket = Bucket(st.rate_ip_per_min / 60.0, st.rate_ip_burst)
        self.session_bucket = Bucket(st.rate_session_per_min / 60.0, st.rate_session_burst)

    async def _limit(self, scope: str, key: str, bucket: Bucket) -> None:
        decision = await self.s.limiter.hit(f"{scope}:{key}", bucket)
        if not decision.allowed:
            self.s.metrics.rate_limited.labels(scope).inc()
            raise RateLimited(decision.retry_after_s)

    async def limit_visitor_request(self, client_ip: str) -> None:
        """Any other visitor request (history, event-stream opens, handoff, feedback, rating, ending the
        session): a per-IP bucket of its own with the chat turns' settings. Unlimited, one visitor could read the
        database, journal votes and open streams as fast as they could send, and these must not eat into the
        visitor's chat turns either."""
        await self._limit("visitor", client_ip, self.ip_bucket)

    async def turn(
        self,
        *,
        message: str,
        session_id: str | None,
        token: str | None,
        user_id: str | None,
        client_ip: str,
        client_message_id: str | None = None,
        user_signature: str | None = None,
    ) -> ChatOutcome:
        if self.s.chat_inflight >= self.s.settings.chat_max_inflight:
            raise AppError(ErrorCode.OVERLOADED, headers={"Retry-After": "1"})
        self.s.chat_inflight += 1
        try:
            return await self._turn(
                message, session_id, token, user_id, user_signature, client_ip, client_message_id
            )
        finally:
            self.s.chat_inflight -= 1

    async def _turn(
        self,
        message: str,
        session_id: str | None,
        token: str | None,
        user_id: str | None,
        user_signature: str | None,
        client_ip: str,
        client_id: str | None,
    ) -> ChatOutcome:
        started = time.perf_counter()
        text = clean_message(message, self.s.settings.message_max_chars)
        await self._limit("ip", client_ip, self.ip_bucket)
        store = self.s.sessions
        new_token: str | None = None
        identity: IdentityCheck | None = None
        existing = bool(session_id)
        if not session_id:
            # who the visitor is, decided once for the session's life (a later turn's user_id is not read)
            identity = self._check_identity(user_id, user_signature)
            session, new_token = new_session(user_id if identity is IdentityCheck.VERIFIED else None)
            await store.create(session)
            session_id = session.id

        masked = mask_pii(text)
        keep = self.s.settings.session_history_turns
        # The session is read once, under its lock: authorization (a wrong token is SESSION_NOT_FOUND and changes
        # nothing), then the session's rate limit, then the turn.
        async with store.lock(session_id):
            session = await load_authorized(store, session_id, new_token or token)
            if existing and client_id:
                replayed = _replayed(session, client_id, masked)
                if replayed is not None:  # a retry of a turn we already have (its response was lost)
                    self.s.metrics.chat_replays.inc()
                    return replayed
            if existing:
                await self._limit("session", session_id, self.session_bucket)
            user_turn = Turn(role="user", text=masked, client_id=client_id)
            withdrawn = None
            if session.handoff.status == "waiting" and declines_human(normalize(masked)):
                # "算了，不用了" while queued and no agent has taken the ticket: withdrawn, and the dialog
                # acknowledges the no as it would a no to its own offer of a human
                withdrawn = await self.handoff.withdraw_waiting(session)
                if withdrawn:
                    session.dialog.phase = Phase.HANDOFF_OFFERED
            if session.handoff.status != "none":
                # A human has the conversation: store and forward, the bot stays silent.
                user_turn.reply_type = ReplyType.AGENT_PENDING.value
                await self.s.journal.append([message_record(session, user_turn)])
                session.add_turn(user_turn, keep)
                await store.save(session)
                await self.handoff.visitor_message(session, user_turn)
                self.s.metrics.chat_replies.labels(ReplyType.AGENT_PENDING.value).inc()
                pending = Reply(ReplyType.AGENT_PENDING, "")
                return ChatOutcome(
                    session.id, new_token, user_turn.id, pending, None, 0.0, session.handoff.status
                )

            result = await self.s.dialog.handle(session.dialog, masked, session.verified_user_id)
            reply = result.reply
            session.dialog = result.state
            opened_ticket = False
            if result.handoff_requested:
                # The agents' queue preview: what the visitor needs help with. A yes to our offer ("好的")
                # says nothing; the message that made us offer (the visitor's previous one) does.
                accepted = result.handoff_reason == "accepted_offer"
                try:
                    await self.handoff.open_ticket(
                        session,
                        result.handoff_reason or "requested",
                        last_message=None if accepted else masked,
                    )
                    opened_ticket = True
                except DependencyUnavailable:
                    reply = degraded_reply(self.s.templates)
                    session.dialog.phase = Phase.IDLE

            user_turn.intent = result.intent
            bot_turn = Turn(
                role="bot",
                text=reply.text,
                intent=result.intent,
                reply_type=reply.type.value,
                faq_id=reply.faq_id,
                suggestions=reply.suggestions,
                quick_replies=reply.quick_replies,
                confidence=result.confidence,
            )
            latency_ms = round((time.perf_counter() - started) * 1000, 2)
            records = [
                message_record(session, user_turn, confidence=result.confidence),
                message_record(
                    session,
                    bot_turn,
                    confidence=result.confidence,
                    candidates=_candidates(result.nlu),
                    latency_ms=latency_ms,
                ),
            ]
            try:
                await self.s.journal.append(records)  # accepted from here on: the writer will land it
            except BaseException:
                if opened_ticket:  # the turn is refused: withdraw its ticket, or a retry opens a second one
                    await self.handoff.withdraw_ticket(session.handoff.ticket_id)
                if withdrawn:  # ... or put back the ticket it withdrew: the saved session still waits for it
                    await self.handoff.restore_waiting(withdrawn)
                raise
            session.add_turn(user_turn, keep)
            session.add_turn(bot_turn, keep)
            await store.save(session)

        if opened_ticket:
            await self.handoff.announce_ticket(session)
        if withdrawn:
            await self.handoff.announce_withdrawn(session, withdrawn)
        self.s.metrics.chat_replies.labels(reply.type.value).inc()
        if result.about_bot is not None:
            self.s.metrics.dialog_about_bot.labels(result.about_bot).inc()
            if result.about_bot == "instruction_probe":  # who probes the bot, never what they wrote (PII)
                log.info("instruction probe answered by rule (session %s)", session.id)
        return ChatOutcome(
            session.id,
            new_token,
            bot_turn.id,
            reply,
            result.intent,
            result.confidence,
            session.handoff.status,
            identity.reported if identity is not None else None,
        )

    def _check_identity(self, user_id: str | None, signature: str | None) -> IdentityCheck:
        """The check of the identity a new session is started with. One that does not verify is no error for the
        visitor (a shop's misconfiguration must not take the chat down): the session starts anonymous, and the
        failure is counted and logged for the shop to fix."""
        result = check_identity(self.s.settings.identity_key, user_id or None, signature or None)
        self.s.metrics.identity_checks.labels(result.value).inc()
        if result.reported == "rejected":
            log.warning("visitor identity not verified (%s): the session starts anonymous", result.value)
        return result

    async def request_handoff(self, session_id: str, token: str | None) -> tuple[str, str]:
        store = self.s.sessions
        async with store.lock(session_id):
            session = await load_authorized(store, session_id, token)
            already = session.handoff.status != "none"
            ticket_id = await self.handoff.open_ticket(session, "button")
            await store.save(session)
        if not already:
            await self.handoff.announce_ticket(session)
        return session.handoff.status, ticket_id

    async def end_session(self, session_id: str, token: str | None) -> None:
        """The visitor is done with the conversation (the widget's logout or "new conversation"): the session is
        deleted at once, so its token stops working wherever it was copied or is still held (another tab), instead
        of for the rest of its TTL. Deleted under the session's lock: a turn in flight finishes first, and one
        that comes after finds the session gone. Its messages stay in the database (the conversation record);
        its hand-off ticket is closed and its event streams end (HandoffService.visitor_left)."""
        store = self.s.sessions
        async with store.lock(session_id):
            session = await load_authorized(store, session_id, token)
            await store.delete(session_id)
        await self.handoff.visitor_left(session)

    async def feedback(
        self,
        *,
        message_id: str,
        rating: str | int,
        comment: str | None,
        session_id: str | None,
        token: str | None,
    ) -> None:
        """Thumbs or 1-5 on one bot message, checked against the visitor's session token."""
        if isinstance(rating, int) and not 1 <= rating <= 5:
            raise AppError(ErrorCode.VALIDATION_ERROR)
        if session_id is None:
            session_id = await self._message_owner(message_id)
            if session_id is None:
                raise AppError(ErrorCode.NOT_FOUND)
        session = await load_authorized(self.s.sessions, session_id, token)
        # Messages still in the session window are checked there; older ones in the database.
        if not any(t.id == message_id for t in session.turns):
            if await self._message_owner(message_id) != session.id:
                raise AppError(ErrorCode.NOT_FOUND)
        await self.s.journal.append(
            [
                {
                    "kind": "feedback",
                    # one vote per message and session (the first counts): repeats add no row to the
                    # dashboard's counts, however often they are posted
                    "id": "f_" + hashlib.sha256(f"{session.id}\n{message_id}".encode()).hexdigest()[:24],
                    "session_id": session.id,
                    "message_id": message_id,
                    "rating": str(rating),
                    "comment": mask_pii(comment) if comment else None,
                    "created_at": datetime.now(UTC).isoformat(),
                }
            ]
        )

    async def _message_owner(self, message_id: str) -> str | None:
        def query() -> str | None:
            with self.s.session_factory() as db:
                return db.scalar(select(Message.session_id).where(Message.id == message_id))

        try:
            return await asyncio.to_thread(query)
        except Exception as exc:
            raise DependencyUnavailable(detail="message lookup") from exc

    async def rate_session(self, session: Session, rating: int, comment: str | None) -> None:
        await self.s.journal.append(
            [
                {
                    "kind": "rating",
                    "id": "r_" + secrets.token_hex(12),
                    "session_id": session.id,
                    "rating": rating,
                    "comment": mask_pii(comment) if comment else None,
                }
            ]
        )


def _replayed(session: Session, client_id: str, text: str) -> ChatOutcome | None:
    """The outcome the visitor turn with this client id and text already had, rebuilt from the session (None if
    new: a client id is only trusted together with the same message)."""
    turns = session.turns
    at = next(
        (i for i, t in enumerate(turns) if t.role == "user" and t.client_id == client_id and t.text == text),
        None,
    )
    if at is None:
        return None
    user = turns[at]
    status = session.handoff.status
    if user.reply_type == ReplyType.AGENT_PENDING.value:  # forwarded to the agent, the bot stayed silent
        return ChatOutcome(session.id, None, user.id, Reply(ReplyType.AGENT_PENDING, ""), None, 0.0, status)
    bot = turns[at + 1] if at + 1 < len(turns) and turns[at + 1].role == "bot" else None
    if bot is None or bot.reply_type is None:
        return None
    reply = Reply(
        ReplyType(bot.reply_type), bot.text, list(bot.suggestions), bot.faq_id, list(bot.quick_replies)
    )
    return ChatOutcome(session.id, None, bot.id, reply, bot.intent, bot.confidence or 0.0, status)


def _candidates(nlu: Any) -> list[dict[str, Any]] | None:
    if nlu is None:
        return None
    return [c.model_dump() for c in nlu.result.candidates[:5]]
