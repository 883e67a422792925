"""Order lookup behind a small protocol: the demo table, or a shop's HTTP webhook.

Every lookup names the visitor it is made for: the shop's id of a visitor whose identity the shop signed
(api.identity), None for an anonymous one. An order is returned only to its owner; "not yours" and "no such
order" are the same None, so the dialog's answer cannot tell them apart (no oracle for order numbers)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
import unicodedata
from datetime import timedelta, timezone
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.db.models import DemoOrder

CHINA_TZ = timezone(timedelta(hours=8))  # display time for visitors (China has no DST)
# 13 digits starting with 20, possibly typed in groups ("2024 1123 0012 3", "2024-1123-00123")
ORDER_ID = re.compile(r"(?<![\d-])(2[ -]?0(?:[ -]?\d){11})(?![\d-]?\d)")


def extract_order_id(text: str) -> str | None:
    """The first 13-digit order number (starting with 20) in ``text`` (full-width digits and spaces or hyphens
    between digit groups accepted)."""
    folded = unicodedata.normalize("NFKC", text)
    m = ORDER_ID.search(folded)
    return re.sub(r"[ -]", "", m.group(1)) if m else None


# What accompanies a bare order number without naming a task: "好的，是2024…", "订单号：2024…", "给你 2024…", a
# correction ("不对，是2024…", "搞错了，应该是…") or another order ("换一个订单", "还有一个单子").
_ID_FILLER = re.compile(
    r"不对|不是|搞错了|弄错了|打错了|写错了|输错了|发错了|错了|应该是|另外一个|另一个|换一个|换个|还有|再|一个|"
    r"好的|好|嗯+|是的|是|就是|这个|那个|我的|订单号码?|订单|单子|单号|号码|给你|发你|麻烦|帮我|请|您|你|在这|这里|"
    r"如下|吧|啊|呀|呢|哦|哈|了"
)
_ALNUM_TOKEN = re.compile(r"[A-Za-z0-9]+")
# Six digits or more (groups allowed): an order number typed wrong, whatever surrounds it.
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){5}")


def _rest(folded: str, token: re.Pattern[str]) -> str:
    """What ``folded`` says besides ``token`` matches, punctuation and order-number fillers."""
    return _ID_FILLER.sub("", re.sub(r"[\W_]+", "", token.sub("", folded)))


def names_more_than_order_id(text: str) -> bool:
    """True when ``text`` says something besides an order number and fillers ("我要退款，订单2024…"): only then can
    its intent reading name a task. A bare number is read by the classifier as some order task or other, which
    says nothing about the task being asked for."""
    return len(_rest(unicodedata.normalize("NFKC", text), ORDER_ID)) >= 2


def looks_like_order_attempt(text: str) -> bool:
    """A message that tries to give an id rather than ask a new question: a digit or alphanumeric token with
    no more than fillers around it ("123", "abcdef", "订单号是abc123"), or a run of six digits or more
    ("我的订单号是202411230012"). "满99包邮吗" and "7天无理由能退吗" are questions that happen to hold a number."""
    folded = unicodedata.normalize("NFKC", text)
    if _DIGIT_RUN.search(folded):
        return True
    return bool(_ALNUM_TOKEN.search(folded)) and len(_rest(folded, _ALNUM_TOKEN)) < 2


class OrderInfo(BaseModel):
    order_id: str
    status: str
    carrier: str | None = None
    tracking_no: str | None = None
    items: list[str] = Field(default_factory=list)
    updated_at: str | None = None
    refund_deadline: str | None = None
    refundable: bool | None = None  # None: unknown (the shop did not say)


class OrderLookupError(Exception):
    """The order system could not be reached (not the same as 'no such order')."""


class OrderLookup(Protocol):
    # False: no order system is connected (API_ORDER_LOOKUP=none); the dialog then never asks for an order number
    connected: bool

    async def lookup(self, order_id: str, customer_id: str | None) -> OrderInfo | None:
        """The order if it exists and belongs to ``customer_id`` (the visitor's verified id; None: anonymous,
        never shown an order), else None; OrderLookupError when the order system cannot answer."""
        ...


class NoOrderLookup:
    """No order system connected (a production install before the shop's webhook is set up): order tasks offer a
    human instead of asking for a number nobody can look up, and demo orders are never shown to real visitors."""

    connected = False

    async def lookup(self, order_id: str, customer_id: str | None) -> OrderInfo | None:
        raise OrderLookupError("no order system connected")


def _item_names(items: list[Any]) -> list[str]:
    names: list[str] = []
    for it in items:
        if isinstance(it, str):
            names.append(it)
        elif isinstance(it, dict):
            name = it.get("name") or it.get("title") or ""
            qty = it.get("qty") or it.get("quantity")
            names.append(f"{name}×{qty}" if qty and name else str(name))
    return [n for n in names if n]


class DemoOrderLookup:
    """Looks orders up in the seeded ``demo_orders`` table; an order's owner is its ``customer_id`` (in ``extra``,
    from data/demo/orders.json)."""

    connected = True

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def _lookup_sync(self, order_id: str, customer_id: str) -> OrderInfo | None:
        with self.session_factory() as db:
            row = db.scalars(select(DemoOrder).where(DemoOrder.id == order_id)).first()
            if row is None or (row.extra or {}).get("customer_id") != customer_id:
                return None
            return OrderInfo(
                order_id=row.id,
                status=row.status,
                carrier=row.carrier,
                tracking_no=row.tracking_no,
                items=_item_names(row.items or []),
                updated_at=row.updated_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")
                if row.updated_at
                else None,
                refund_deadline=row.refund_deadline,
                refundable=(row.extra or {}).get("refundable"),
            )

    async def lookup(self, order_id: str, customer_id: str | None) -> OrderInfo | None:
        if customer_id is None:
            return None
        try:
            return await asyncio.to_thread(self._lookup_sync, order_id, customer_id)
        except Exception as exc:  # DB down: report as unavailable, not as 'not found'
            raise OrderLookupError("demo order table unavailable") from exc


class WebhookOrderLookup:
    """GET ``{url}?order_id=...&customer_id=...`` on the shop's system, signed with HMAC-SHA256 over
    ``ts.order_id.customer_id`` (docs/operations.md "Connecting the order system").

    Expected answer: 200 with an OrderInfo-shaped JSON object when the order exists and belongs to that customer,
    else 404. Anonymous visitors are never looked up: the shop's system is not asked.
    """

    connected = True

    def __init__(
        self,
        url: str,
        secret: str | None,
        *,
        timeout_s: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.secret = secret.encode() if secret else None
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    async def lookup(self, order_id: str, customer_id: str | None) -> OrderInfo | None:
        if customer_id is None:
            return None
        ts = str(int(time.time()))
        headers = {"X-XiaoKe-Timestamp": ts}
        if self.secret:
            mac = hmac.new(self.secret, f"{ts}.{order_id}.{customer_id}".encode(), hashlib.sha256)
            headers["X-XiaoKe-Signature"] = f"sha256={mac.hexdigest()}"
        params = {"order_id": order_id, "customer_id": customer_id}
        try:
            resp = await self._http.get(self.url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise OrderLookupError("order webhook unreachable") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise OrderLookupError(f"order webhook status {resp.status_code}")
        try:
            info = OrderInfo.model_validate_json(resp.content)
        except ValidationError as exc:
            raise OrderLookupError("order webhook returned an invalid body") from exc
        return info if info.order_id == order_id else None

    async def aclose(self) -> None:
        await self._http.aclose()
