"""The load generator itself (no services): its HTTP client, the open loop's pacing and its latency accounting
against a tiny in-process chat server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.stack.load import Connection, HttpError, LoadGen


@dataclass
class FakeChat:
    """Answers POST /api/v1/chat like the API (session id + token on the first turn); ``delay_s`` per turn,
    handled one request at a time per connection (HTTP/1.1 keep-alive)."""

    delay_s: float = 0.0
    chunked: bool = False
    close_after: bool = False
    requests: list[dict[str, object]] = field(default_factory=list)
    tokens_seen: list[str | None] = field(default_factory=list)
    connections: int = 0
    _n: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in head.decode().split("\r\n")[1:] if line)
                }
                body = json.loads(await reader.readexactly(int(headers["content-length"])))
                self.requests.append(body)
                self.tokens_seen.append(headers.get("x-session-token"))
                await asyncio.sleep(self.delay_s)
                self._n += 1
                sid = body.get("session_id") or f"s_{self._n}"
                out = {"session_id": sid, "reply": {"type": "answer", "text": "好的"}}
                if not body.get("session_id"):
                    out["session_token"] = f"tok-{sid}"
                payload = json.dumps(out, ensure_ascii=False).encode()
                if self.chunked:
                    half = len(payload) // 2
                    chunks = [payload[:half], payload[half:]]
                    data = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
                    hdr = b"Transfer-Encoding: chunked\r\n"
                else:
                    data, hdr = payload, b"Content-Length: %d\r\n" % len(payload)
                if self.close_after:
                    hdr += b"Connection: close\r\n"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + hdr + b"\r\n" + data)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def chat_server() -> AsyncIterator[tuple[FakeChat, str]]:
    fake = FakeChat()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        server.close()


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("close_after", [False, True])
async def test_connection_reads_length_chunked_and_close(
    chat_server: tuple[FakeChat, str], chunked: bool, close_after: bool
) -> None:
    fake, url = chat_server
    fake.chunked, fake.close_after = chunked, close_after
    conn = Connection.for_url(url)
    for i in range(3):
        status, raw = await conn.request("POST", "/api/v1/chat", json.dumps({"message": f"问题{i}"}).encode())
        assert status == 200 and json.loads(raw)["reply"]["text"] == "好的"
    conn.close()
    assert fake.connections == (3 if close_after else 1)  # keep-alive unless the server closes


async def test_connection_refused_is_an_http_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(HttpError):
        await Connection("127.0.0.1", port).request("POST", "/x", b"{}")


async def test_open_loop_offers_the_rate_with_multi_turn_sessions(chat_server: tuple[FakeChat, str]) -> None:
    fake, url = chat_server
    fake.delay_s = 0.01
    result = await LoadGen(url, visitors=8, rate=80, seed=1).run(2.0)
    s = result.summary()
    assert s["errors"] == 0 and result.unsent == 0
    assert 70 <= s["turns_per_s"] <= 90, s  # 80/s offered and the server keeps up
    assert 8 <= s["p50_ms"] < 60, s  # service time + scheduling, not queueing
    # conversations continue in their session with the token the first answer gave
    follow_ups = [
        (b["session_id"], t)
        for b, t in zip(fake.requests, fake.tokens_seen, strict=True)
        if b.get("session_id")
    ]
    assert follow_ups and all(t == f"tok-{sid}" for sid, t in follow_ups)
    assert len(result.sessions) < len(result.turns)


async def test_open_loop_counts_waiting_when_the_server_falls_behind(
    chat_server: tuple[FakeChat, str],
) -> None:
    fake, url = chat_server
    fake.delay_s = 0.2  # each visitor is offered a turn every 0.1 s but one takes 0.2 s
    result = await LoadGen(url, visitors=4, rate=40, seed=2).run(2.0)
    s = result.summary()
    assert s["errors"] == 0
    assert s["turns_per_s"] < 25, s  # at most 4 / 0.2 s = 20/s get through
    assert result.unsent > 0  # turns scheduled before the stop that never went out
    # latency from the scheduled time grows with the backlog; the service time stays ~0.2 s
    assert s["p99_service_ms"] < 400, s
    assert s["p99_ms"] > 2 * s["p99_service_ms"], s


async def test_closed_loop_latency_is_the_service_time(chat_server: tuple[FakeChat, str]) -> None:
    fake, url = chat_server
    fake.delay_s = 0.02
    result = await LoadGen(url, visitors=4, think_s=0.0, seed=3).run(1.0)
    s = result.summary()
    assert s["mode"] == "closed" and s["errors"] == 0
    assert all(abs(t.latency_s - t.service_s) < 1e-9 for t in result.turns)
    assert 100 <= s["turns_per_s"] <= 200, s  # 4 visitors / ~20 ms
    assert 0 < s["loadgen_cpu_share"] < 1.0
