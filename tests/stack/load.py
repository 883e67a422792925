"""Simulated visitors holding multi-turn conversations against a running API (used by the fault tests and by
``benchmarks/api.py`` / ``benchmarks/load.py``).

Each visitor runs scripted conversations drawn from the demo data: an FAQ question (standard or similar
wording), order-status slot filling (ask, then give a real demo order number), chit-chat, with its session
token. Every turn is recorded (scheduled time, latency, HTTP status, error code, reply type). A visitor whose
session disappeared (404) starts a fresh one, as the widget does. Bounded by ``duration_s`` and/or
``max_turns``; stops by itself.

Two ways to pace the visitors (each keeps at most one turn in flight, like a person typing):

* closed loop (``rate=None``): a visitor sends its next turn when the previous answer arrived, after
  ``think_s`` (0: immediately). With no think time the throughput is the stack's saturation throughput and
  latency is ``visitors / throughput`` (Little's law): it says nothing about latency at a given load.
* open loop (``rate=R`` turns/s for all visitors together, wrk2-style): visitor ``i`` is scheduled to send its
  ``k``-th turn at ``(i + k * visitors) / R`` seconds, so together they offer a smooth ``R`` turns/s. A turn's
  latency runs from its *scheduled* time, not from when it was actually sent: when the stack falls behind, a
  visitor sends late and that waiting counts (no coordinated omission). Turns scheduled before ``stop()`` but
  not sent by then are counted as ``unsent``.

HTTP: a minimal keep-alive HTTP/1.1 client on asyncio streams (one connection per visitor). The load generator
shares the machine with the stack, so it must be cheap: this client costs a fraction of httpx's CPU per request.
``LoadResult.cpu_s`` is the CPU time of the thread running the visitors (their event loop) during the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    """One scripted conversation (3 turns)."""
    faqs, orders = _FAQS, _ORDERS
    kind = rng.random()
    if kind < 0.5:
        return [rng.choice(CHITCHAT[:2]), rng.choice(faqs), rng.choice(faqs)]
    if kind < 0.8:
        return ["我的订单到哪了", f"订单号是{rng.choice(orders)}", "谢谢"]
    return [rng.choice(CHITCHAT), rng.choice(faqs), rng.choice(CHITCHAT)]


_FAQS = _faq_questions()
_ORDERS = _order_ids()


# ---- a lean HTTP/1.1 client ----------------------------------------------------------------------------------
class HttpError(Exception):
    """Transport-level failure (connection refused/reset/closed early, malformed response)."""


class Connection:
    """One keep-alive HTTP/1.1 connection: ``await conn.request("POST", "/path", body, headers)``.

    Enough HTTP for our API (Content-Length or chunked bodies, ``Connection: close``); reconnects lazily. On any
    error or timeout the connection is closed so that the next request starts on a fresh one.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._host_header = f"Host: {host}:{port}\r\n".encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @classmethod
    def for_url(cls, url: str) -> Connection:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host:port URLs are supported, not {url!r}")
        return cls(parts.hostname, parts.port or 80)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        try:
            return await self._request(method, path, body, headers)
        except BaseException:  # errors, timeouts and cancellation: the stream state is unknown
            self.close()
            raise

    async def _request(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None
    ) -> tuple[int, bytes]:
        if self._reader is None or self._writer is None or self._reader.at_eof():
            self.close()  # the server closed an idle keep-alive connection: do not reuse it
            try:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                raise HttpError(f"connect: {type(exc).__name__}") from exc
        reader, writer = self._reader, self._writer
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(
            b"".join(
                (
                    f"{method} {path} HTTP/1.1\r\n".encode("latin-1"),
                    self._host_header,
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode(
                        "latin-1"
                    ),
                    body,
                )
            )
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
            raise HttpError(f"response head: {type(exc).__name__}") from exc
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError) as exc:
            raise HttpError("malformed status line") from exc
        length: int | None = None
        chunked = close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                close = value.strip().lower() == "close"
        try:
            if chunked:
                data = await self._read_chunked(reader)
            elif length is not None:
                data = await reader.readexactly(length)
            elif status in (204, 304) or method == "HEAD":
                data = b""
            else:
                data, close = await reader.read(), True
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ValueError) as exc:
            raise HttpError(f"response body: {type(exc).__name__}") from exc
        if close:
            self.close()
        return status, data

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)


# ---- records -------------------------------------------------------------------------------------------------
@dataclass
class TurnRecord:
    t: float  # scheduled start (open loop) or start (closed loop), seconds since the run began
    latency_s: float  # from ``t`` until the answer arrived
    status: int  # HTTP status, 0 = transport error / timeout
    code: str | None = None  # error code when not 200
    reply_type: str | None = None
    session_id: str | None = None
    fresh_session: bool = False
    service_s: float = 0.0  # from the actual send until the answer (== latency_s in a closed loop)


@dataclass
class LoadResult:
    turns: list[TurnRecord] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    elapsed_s: float = 0.0
    rate: float | None = None  # offered turns/s (open loop) or None (closed loop)
    unsent: int = 0  # open loop: turns scheduled before the stop but not sent by then (the stack was behind)
    cpu_s: float = 0.0  # CPU time of the load generator's event-loop thread during the run
    stopped_at: float = 0.0  # when stop() was called (the open loop schedules turns in [0, stopped_at))

    @property
    def window_s(self) -> float:
        """Seconds the turns/s figure is taken over: the open loop's scheduling window (turns still in flight at
        the stop finish after it), the whole run for the closed loop."""
        return self.stopped_at if self.rate and self.stopped_at else self.elapsed_s

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

    def percentile_ms(
        self, q: float, since: float = 0.0, until: float = float("inf"), *, service: bool = False
    ) -> float:
        lat = sorted(t.service_s if service else t.latency_s for t in self.turns if since <= t.t < until)
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
        out: dict[str, Any] = {
            "mode": "open" if self.rate else "closed",
            "turns": len(self.turns),
            "ok": len(self.ok),
            "errors": len(self.errors),
            "turns_per_s": round(len(self.ok) / self.window_s, 1) if self.window_s else 0.0,
            "p50_ms": round(self.percentile_ms(50), 1),
            "p90_ms": round(self.percentile_ms(90), 1),
            "p99_ms": round(self.percentile_ms(99), 1),
            "max_ms": round(max((t.latency_s for t in self.turns), default=0.0) * 1000, 1),
            "by_status": by_status,
            "reply_types": types,
            "fresh_sessions": sum(1 for t in self.turns if t.fresh_session),
            "accepted_records": self.accepted_records,
            "elapsed_s": round(self.elapsed_s, 2),
            "loadgen_cpu_s": round(self.cpu_s, 2),
            "loadgen_cpu_share": round(self.cpu_s / self.elapsed_s, 3) if self.elapsed_s else 0.0,
        }
        if self.rate:
            out["offered_turns_per_s"] = self.rate
            out["unsent"] = self.unsent
            out["p50_service_ms"] = round(self.percentile_ms(50, service=True), 1)
            out["p99_service_ms"] = round(self.percentile_ms(99, service=True), 1)
        return out


# ---- visitors ------------------------------------------------------------------------------------------------
class LoadGen:
    """``await LoadGen(api_url, visitors=8).run(duration_s=30)``; or ``start()`` / ``stop()`` around faults.

    ``rate`` (turns/s for all visitors together) switches to the open loop described in the module docstring;
    ``think_s`` applies to the closed loop only.
    """

    def __init__(
        self,
        api_url: str,
        *,
        visitors: int = 8,
        think_s: float = 0.5,
        timeout_s: float = 10.0,
        seed: int = 7,
        max_turns: int | None = None,
        rate: float | None = None,
        identity: dict[str, str] | None = None,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be > 0 turns/s")
        self.api_url = api_url
        self.visitors = visitors
        self.think_s = think_s
        self.timeout_s = timeout_s
        self.seed = seed
        self.max_turns = max_turns
        self.rate = rate
        # user_id + user_signature for every new session (Stack.demo_identity()): the demo customer owns the demo
        # orders, so the order conversations are looked up as a signed-in shopper's are; None: anonymous visitors
        self.identity = identity
        self.result = LoadResult(rate=rate)
        self._stop = asyncio.Event()
        self._stop_at = float("inf")
        self._tasks: list[asyncio.Task[None]] = []
        self._conns: list[Connection] = []
        self._t0 = 0.0
        self._cpu0 = 0.0

    def now(self) -> float:
        return time.perf_counter() - self._t0

    async def start(self) -> None:
        self._conns = [Connection.for_url(self.api_url) for _ in range(self.visitors)]
        self._t0 = time.perf_counter()
        self._cpu0 = time.thread_time()
        self._tasks = [asyncio.create_task(self._visitor(i)) for i in range(self.visitors)]

    async def stop(self) -> LoadResult:
        self._stop_at = self.result.stopped_at = self.now()
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.result.elapsed_s = self.now()
        self.result.cpu_s = time.thread_time() - self._cpu0
        for conn in self._conns:
            conn.close()
        return self.result

    async def run(self, duration_s: float) -> LoadResult:
        await self.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=duration_s)
        return await self.stop()

    def _budget_left(self) -> bool:
        return self.max_turns is None or len(self.result.turns) < self.max_turns

    async def _visitor(self, i: int) -> None:
        rng = random.Random(self.seed * 1000 + i)
        conn = self._conns[i]
        session: tuple[str, str] | None = None
        fresh = False
        if self.rate:
            interval = self.visitors / self.rate
            next_at = i / self.rate
        else:
            await asyncio.sleep(rng.random() * self.think_s)  # spread the first requests
        while self._budget_left():
            for text in conversations(rng):
                if not self._budget_left():
                    return
                if self.rate:
                    delay = next_at - self.now()
                    if delay > 0.5 and not self._stop.is_set():  # long waits end early on stop()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._stop.wait(), timeout=delay)
                    elif delay > 0:
                        await asyncio.sleep(delay)  # cheaper than a wait_for task per turn
                    if next_at >= self._stop_at or self._stop.is_set():
                        self.result.unsent += self._unsent_from(next_at, interval)
                        return
                    scheduled = next_at
                    next_at += interval
                else:
                    if self._stop.is_set():
                        return
                    scheduled = None  # closed loop: latency runs from the actual send
                session, fresh = await self._turn(conn, text, session, fresh, scheduled)
                if not self.rate and self.think_s:
                    await asyncio.sleep(self.think_s * (0.5 + rng.random()))
            if rng.random() < 0.3:
                session = None  # some visitors leave, new ones arrive

    def _unsent_from(self, next_at: float, interval: float) -> int:
        """Turns of this visitor scheduled in [next_at, stop) that were never sent."""
        if next_at >= self._stop_at:
            return 0
        return int((self._stop_at - next_at) // interval) + 1

    async def _turn(
        self,
        conn: Connection,
        text: str,
        session: tuple[str, str] | None,
        fresh: bool,
        scheduled: float | None,
    ) -> tuple[Any, bool]:
        body: dict[str, Any] = {"message": text}
        headers: dict[str, str] = {}
        if session is not None:
            body["session_id"] = session[0]
            headers["X-Session-Token"] = session[1]
        elif self.identity:
            body.update(self.identity)
        sent = self.now()
        if scheduled is None:
            scheduled = sent
        rec = TurnRecord(t=scheduled, latency_s=0.0, status=0, session_id=session[0] if session else None)
        rec.fresh_session = fresh
        try:
            async with asyncio.timeout(self.timeout_s):
                status, raw = await conn.request(
                    "POST", "/api/v1/chat", json.dumps(body, ensure_ascii=False).encode(), headers
                )
            done = self.now()
            rec.status = status
            data = json.loads(raw)
            if status == 200:
                rec.reply_type = data["reply"]["type"]
                rec.session_id = data["session_id"]
                if data.get("session_token"):
                    session = (data["session_id"], data["session_token"])
                self.result.sessions.add(data["session_id"])
                fresh = False
            else:
                rec.code = (data.get("error") or {}).get("code")
                if status == 404 and session is not None:
                    session, fresh = None, True  # the session is gone: start a fresh one next turn
        except (HttpError, TimeoutError, ValueError, KeyError, TypeError, AttributeError) as exc:
            done = self.now()
            rec.code = type(exc).__name__
            if rec.status == 200:
                rec.status = 0  # an unreadable 200 is not an answered turn
        rec.latency_s = done - scheduled
        rec.service_s = done - sent
        self.result.turns.append(rec)
        return session, fresh
