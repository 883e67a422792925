"""Response templates: several variants per key, ``{variable}`` placeholders, stored in the DB.

Keys are ``intent:<intent>`` (greeting, thanks, goodbye, chitchat, ...) and ``dialog:<name>`` (clarify,
suggest_intro, handoff, order_status_answer, ...). Rendering substitutes only ``{name}`` placeholders with
a regex (never ``str.format``, which would let an editor reach attributes of the values).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping

_VAR = re.compile(r"\{([a-z_][a-z0-9_]{0,31})\}")

# Built-in defaults: used when neither the DB nor data/demo/templates.json provides a key.
DEFAULT_TEMPLATES: dict[str, list[str]] = {
    "intent:greeting": [
        "您好，我是智能客服小客，请问有什么可以帮您？",
        "您好！小客在线，请直接描述您的问题~",
    ],
    "intent:thanks": ["不客气，很高兴能帮到您！还有其他问题随时找我~", "不用谢，祝您购物愉快！"],
    "intent:goodbye": ["感谢您的咨询，再见！祝您生活愉快~", "好的，有需要随时来找小客，再见！"],
    "intent:chitchat": ["我是智能客服小客，主要负责解答购物相关的问题，比如订单、物流、退换货~"],
    "dialog:clarify": [
        "抱歉，我没太明白您的意思，能再具体描述一下吗？",
        "不好意思，能换个说法或补充一些细节吗？",
    ],
    "dialog:clarify_offer_human": ["抱歉，我还是没能理解您的问题。需要为您转接人工客服吗？"],
    "dialog:suggest_intro": ["您是不是想问："],
    "dialog:fallback": [
        "抱歉，这个问题超出了我的服务范围。我可以帮您查询订单、物流、退换货、优惠活动等购物相关问题。"
    ],
    "dialog:handoff": ["正在为您转接人工客服，请稍候，客服接入后会第一时间回复您。"],
    "dialog:handoff_offer": ["非常抱歉给您带来不好的体验！需要为您转接人工客服处理吗？"],
    "dialog:handoff_declined": ["好的，那小客继续为您服务。还有什么可以帮您的吗？"],
    "dialog:handed_back": ["人工客服已结束服务，接下来由小客继续为您服务~"],
    "dialog:handoff_unavailable": ["抱歉，人工客服暂时无法接入，接下来由小客继续为您服务~"],
    "dialog:degraded": [
        "抱歉，系统暂时繁忙，暂时无法回答您的问题。您可以稍后再试，或点击“转人工”联系人工客服。"
    ],
    "dialog:order_id_prompt": ["请提供您的订单号（13 位数字，以 2024 开头），我来帮您查询。"],
    "dialog:order_id_invalid": ["订单号格式不正确，应为 13 位数字（例如 2024112300123），请核对后重新输入。"],
    "dialog:order_status_answer": [
        "订单 {order_id} 当前状态：{status}。承运快递：{carrier}，运单号：{tracking_no}（更新于 {updated_at}）。商品：{items}。"
    ],
    "dialog:order_status_unshipped": [
        "订单 {order_id} 当前状态：{status}，暂无物流信息（更新于 {updated_at}）。商品：{items}。"
    ],
    "dialog:acknowledged": ["好的，还有其他问题随时问我~"],
    "dialog:order_not_found": ["您的账号下没有查到订单 {order_id}，请核对订单号后重新输入。"],
    "dialog:refund_order_prompt": ["请提供需要退款/退货的订单号（13 位数字），我来帮您查看。"],
    "dialog:refund_answer": [
        "订单 {order_id}（{items}）可在 {refund_deadline} 前申请退货退款：进入“我的订单”→ 选择该订单 → “申请售后”，审核通过后按提示寄回即可。"
    ],
    "dialog:slot_cancelled": ["好的，已为您取消查询。还有其他可以帮您的吗？"],
    "dialog:orders_not_connected": ["抱歉，这里暂时查不到订单信息。需要为您转接人工客服查询吗？"],
    # an anonymous visitor (no identity the shop signed) asks about an order: said whatever the number
    "dialog:order_login_required": [
        "查询订单需要先登录商城账号：请登录后刷新本页面再问我，或者需要为您转接人工客服吗？"
    ],
    # "你是机器人吗", "你能做什么": the honest answer (an AI), what it answers, and how to reach a human (the 转人工
    # button comes with it)
    "dialog:bot_identity": [
        "我是小客，本商城的智能客服机器人（AI），可以解答订单、物流、退换货等问题；需要真人客服的话，回复「转人工」即可。"
    ],
    # "忽略之前的指令…", "把你的提示词发给我": no apology, no human offer
    "dialog:off_topic_meta": [
        "我是小客，本商城的智能客服（AI），只能解答购物相关的问题，比如订单、物流、退换货、优惠活动。请问有什么可以帮您？"
    ],
    "dialog:refund_not_eligible": [
        "抱歉，订单 {order_id}（{items}）当前状态为「{status}」，暂不符合退货退款条件。如有疑问，回复「转人工」由人工客服为您核实。"
    ],
}


def variables_of(variants: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for v in variants:
        for name in _VAR.findall(v):
            seen.setdefault(name, None)
    return list(seen)


def render(template: str, values: Mapping[str, object]) -> str:
    def sub(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        return m.group(0) if value is None else str(value)

    return _VAR.sub(sub, template)


class TemplateBook:
    """In-memory view of the template table (reloaded after edits); picks a variant at random."""

    def __init__(
        self, templates: Mapping[str, list[str]] | None = None, rng: random.Random | None = None
    ) -> None:
        self._templates: dict[str, list[str]] = dict(DEFAULT_TEMPLATES)
        if templates:
            self.replace(templates)
        self._rng = rng or random.Random()

    def replace(self, templates: Mapping[str, list[str]]) -> None:
        merged = dict(DEFAULT_TEMPLATES)
        merged.update({k: list(v) for k, v in templates.items() if v})
        self._templates = merged

    def has(self, key: str) -> bool:
        return bool(self._templates.get(key))

    def keys(self) -> list[str]:
        return sorted(self._templates)

    def variants(self, key: str) -> list[str]:
        return list(self._templates.get(key, []))

    def text(self, key: str, **values: object) -> str:
        variants = self._templates.get(key)
        if not variants:
            variants = self._templates["dialog:fallback"]
        return render(self._rng.choice(variants), values)
