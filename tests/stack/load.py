"""Simulated visitors holding multi-turn conversations against a running API (used by the fault tests and by
``benchmarks/api.py`` / ``benchmarks/load.py``).

Each visitor runs scripted conversations drawn from the demo data: an FAQ question (standard or similar
wording), order-status slot filling (ask, then give a real demo order number), chit-chat. Every turn is
recorded (start, latency, HTTP status, error code, reply type). A visitor whose session disappeared (404)
starts a fresh one, as the widget does. Bounded by ``duration_s`` and/or ``max_turns``; stops by itself.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data" / "demo"
CHITCHAT = ["你好", "在吗", "你是机器人吗", "谢谢", "今天天气怎么样", "好的，再见"]


def _faq_questions() -> list[str]:
    out: list[str] = []
    for line in (DEMO / "faq" / "faq.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(row["question"])
            out.extend(row.get("similar", [])[:2])
    return out


def _order_ids() -> list[str]:
    return [str(o["order_id"]) for o in json.loads((DEMO / "orders.json").read_text(encoding="utf-8"))]


def conversations(rng: random.Random) -> list[str]:
    """One scripted conversation (2-4 turns)."""
    faqs, orders = _FAQS, _ORDERS
    kind = rng.random()
    if kind < 0.5:
        return [rng.choice(CHITCHAT[:2]), rng.choice(faqs), rng.choice(faqs)]
    if kind < 0.8:
        return ["我的订单到哪了", f"订单号是{rng.choice(orders)}", "谢谢"]
    return [rng.choice(CHITCHAT), rng.choice(faqs), rng.choice(CHITCHAT)]


_FAQS = _faq_questions()
_ORDERS = _order_ids()


@dataclass
class TurnRecord:
    t: float  # start, seconds since the run began
    latency_s: float
    status: int  # HTTP status, 0 = transport error
    code: str | None = None  # error code when not 200
    reply_type: str | None = None
    session_id: str | None = None
    fresh_session: bool = False


@dataclass
class LoadResult:
    turns: list[TurnRecord] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> list[TurnRecord]:
        return [t for t in self.turns if t.status == 200]

    @property
    def errors(self) -> list[TurnRecord]:
        return [t for t in self.turns if t.status != 200]

    @property
    def accepted_records(self) -> int:
        """Message rows the API promised to store: user + bot per answered turn (user only while an agent has
        the conversation)."""
        return sum(1 if t.reply_type == "agent_pending" else 2 for t in self.ok)

    def percentile_ms(self, q: float, since: float = 0.0, until: float = float("inf")) -> float:
        lat = sorted(t.latency_s for t in self.turns if since <= t.t < until)
        if not lat:
            return 0.0
        idx = min(len(lat) - 1, max(0, int(round(q / 100 * len(lat) + 0.5)) - 1))
        return lat[idx] * 1000

    def window(self, since: float, until: float = float("inf")) -> list[TurnRecord]:
        return [t for t in self.turns if since <= t.t < until]

    def summary(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for t in self.turns:
            key = str(t.status) + (f":{t.code}" if t.code else "")
            by_status[key] = by_status.get(key, 0) + 1
        types: dict[str, int] = {}
        for t in self.ok:
            types[str(t.reply_type)] = types.get(str(t.reply_type), 0) + 1
        return {
            "turns": len(self.turns),
            "ok": len(self.ok),
            "errors": len(self.errors),
            "turns_per_s": round(len(self.ok) / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "p50_ms": round(self.percentile_ms(50), 1),
            "p99_ms": round(self.percentile_ms(99), 1),
            "by_status": by_status,
            "reply_types": types,
            "fresh_sessions": sum(1 for t in self.turns if t.fresh_session),
            "accepted_records": self.accepted_records,
        }


class LoadGen:
    """``await LoadGen(api_url, visitors=8).run(duration_s=30)``; or ``start()`` / ``stop()`` around faults."""

    def __init__(
        self,
        api_url: str,
        *,
        visitors: int = 8,
        think_s: float = 0.5,
        timeout_s: float = 10.0,
        seed: int = 7,
        max_turns: int | None = None,
    ) -> None:
        self.api_url = api_url
        self.visitors = visitors
        self.think_s = think_s
        self.timeout_s = timeout_s
        self.seed = seed
        self.max_turns = max_turns
        self.result = LoadResult()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._t0 = 0.0
        self._client: httpx.AsyncClient | None = None

    def now(self) -> float:
        return time.perf_counter() - self._t0

    async def start(self) -> None:
        limits = httpx.Limits(max_connections=self.visitors + 4, max_keepalive_connections=self.visitors + 4)
        self._client = httpx.AsyncClient(base_url=self.api_url, timeout=self.timeout_s, limits=limits)
        self._t0 = time.perf_counter()
        self._tasks = [asyncio.create_task(self._visitor(i)) for i in range(self.visitors)]

    async def stop(self) -> LoadResult:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.result.elapsed_s = self.now()
        if self._client is not None:
            await self._client.aclose()
        return self.result

    async def run(self, duration_s: float) -> LoadResult:
        await self.start()
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=duration_s)
        except TimeoutError:
            pass
        return await self.stop()

    def _budget_left(self) -> bool:
        return self.max_turns is None or len(self.result.turns) < self.max_turns

    async def _visitor(self, i: int) -> None:
        rng = random.Random(self.seed * 1000 + i)
        await asyncio.sleep(rng.random() * self.think_s)  # spread the first requests
        session: tuple[str, str] | None = None
        fresh = False
        while not self._stop.is_set() and self._budget_left():
            for text in conversations(rng):
                if self._stop.is_set() or not self._budget_left():
                    return
                session, fresh = await self._turn(text, session, fresh)
                if self.think_s:
                    await asyncio.sleep(self.think_s * (0.5 + rng.random()))
            if rng.random() < 0.3:
                session = None  # some visitors leave, new ones arrive

    async def _turn(self, text: str, session: tuple[str, str] | None, fresh: bool) -> tuple[Any, bool]:
        assert self._client is not None
        body: dict[str, Any] = {"message": text}
        headers: dict[str, str] = {}
        if session is not None:
            body["session_id"] = session[0]
            headers["X-Session-Token"] = session[1]
        start = self.now()
        t0 = time.perf_counter()
        rec = TurnRecord(t=start, latency_s=0.0, status=0, session_id=session[0] if session else None)
        rec.fresh_session = fresh
        try:
            r = await self._client.post("/api/v1/chat", json=body, headers=headers)
            rec.latency_s = time.perf_counter() - t0
            rec.status = r.status_code
            data = r.json()
            if r.status_code == 200:
                rec.reply_type = data["reply"]["type"]
                rec.session_id = data["session_id"]
                if data.get("session_token"):
                    session = (data["session_id"], data["session_token"])
                self.result.sessions.add(data["session_id"])
                fresh = False
            else:
                rec.code = (data.get("error") or {}).get("code")
                if r.status_code == 404 and session is not None:
                    session, fresh = None, True  # the session is gone: start a fresh one next turn
        except (httpx.HTTPError, ValueError) as exc:
            rec.latency_s = time.perf_counter() - t0
            rec.code = type(exc).__name__
        self.result.turns.append(rec)
        return session, fresh
