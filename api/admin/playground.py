"""Playground: one message through the real dialog manager on a fresh conversation, with the NLU details.

The band is what ``DialogManager.handle`` decided (its own thresholds logic; nothing is re-implemented here):
``answer`` / ``suggest`` / ``clarify`` / ``template`` / ``fallback`` / ``slot_prompt`` / ``handoff``.
No session, message or journal record is written. The message is read as an anonymous visitor's: an order
question gets the log-in reply (``dialog:order_login_required``), no order is looked up.
"""

from __future__ import annotations

from api.admin.schemas import CandidateOut, LabelScoreOut, PlaygroundOut
from api.chat import clean_message
from api.dialog.manager import confident_label
from api.dialog.state import DialogState, ReplyType
from api.errors import AppError, ErrorCode
from api.inference import InferenceUnavailable, NluOutcome
from api.pii import mask_pii
from api.schemas import ReplyOut
from api.services import Services
from bundle.contracts import Candidate
from bundle.normalize import normalize


async def run(services: Services, message: str) -> PlaygroundOut:
    text = mask_pii(clean_message(message, services.settings.message_max_chars))
    result = await services.dialog.handle(DialogState(), text)
    outcome: NluOutcome | None = result.nlu
    if outcome is None:
        if result.reply.type is ReplyType.DEGRADED:
            raise AppError(ErrorCode.SERVING_UNAVAILABLE)
        try:  # decided without NLU (e.g. an explicit 转人工): still show what the models say
            outcome = await services.inference.analyze(normalize(text))
        except InferenceUnavailable as exc:
            raise AppError(ErrorCode.SERVING_UNAVAILABLE, detail=exc.reason) from exc
    nlu = outcome.result
    reply = result.reply
    read = confident_label(nlu.intent)  # the classifier's confident reading, as the dialog uses it

    def candidate(c: Candidate) -> CandidateOut:
        faq_intent = services.catalog.intent_for(c.faq_id)
        return CandidateOut(
            **c.model_dump(), intent=faq_intent, intent_agrees=read is not None and faq_intent == read
        )

    return PlaygroundOut(
        normalized=nlu.text,
        intent=result.intent,
        confidence=result.confidence,
        intent_top_k=[LabelScoreOut(label=s.label, confidence=s.confidence) for s in nlu.intent.top_k],
        sentiment=LabelScoreOut(label=nlu.sentiment.label, confidence=nlu.sentiment.confidence)
        if nlu.sentiment
        else None,
        candidates=[candidate(c) for c in sorted(nlu.candidates, key=lambda c: c.fused_score, reverse=True)],
        band=reply.type.value,
        thresholds={
            "answer": outcome.thresholds.answer,
            "suggest": outcome.thresholds.suggest,
            "intent": nlu.intent.threshold,
            # a clear lead over the next FAQ, or intent agreement at answer_agree, also answers
            # (api.dialog.manager.answer_level); absent: not calibrated for this embedder
            **{
                k: v
                for k, v in (
                    ("answer_margin", outcome.thresholds.answer_margin),
                    ("answer_agree", outcome.thresholds.answer_agree),
                )
                if v is not None
            },
        },
        reply=ReplyOut(
            type=reply.type.value,
            text=reply.text,
            suggestions=reply.suggestions,
            faq_id=reply.faq_id,
            quick_replies=reply.quick_replies,
        ),
        index_version=outcome.index_version,
    )
