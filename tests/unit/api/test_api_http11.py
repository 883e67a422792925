"""The lean HTTP/1.1 pool of the /v1/nlu path, against local servers (no services): keep-alive reuse, chunked
answers, a keep-alive connection the server closed, refused connections, and the inference client over it."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from api_fakes import FakeNlu

from api.http11 import ConnectFailed, Http11Pool
from api.inference import InferenceClient, InferenceConfig, InferenceUnavailable


class Echo:
    """Answers every request with its body (JSON), optionally chunked / closing / closing idle connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.chunked = False
        self.close_idle_after_first = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                body = await reader.readexactly(length)
                if self.chunked:
                    payload = (
                        b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:3], body[3:]) if c)
                        + b"0\r\n\r\n"
                    )
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + payload)
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
                served += 1
                if self.close_idle_after_first and served == 1:
                    break  # a keep-alive connection the server drops while the client holds it idle
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[tuple[Echo, str]]:
    e = Echo()
    server = await asyncio.start_server(e.handle, "127.0.0.1", 0)
    try:
        yield e, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


@pytest.mark.parametrize("chunked", [False, True])
async def test_keep_alive_reuses_one_connection(echo: tuple[Echo, str], chunked: bool) -> None:
    e, url = echo
    e.chunked = chunked
    pool = Http11Pool(url)
    for i in range(5):
        body = json.dumps({"texts": [f"你好{i}"]}, ensure_ascii=False).encode()
        assert await pool.request("POST", "/v1/nlu", body) == (200, body)
    await pool.aclose()
    assert e.connections == 1


async def test_connection_closed_while_idle_is_replaced(echo: tuple[Echo, str]) -> None:
    e, url = echo
    e.close_idle_after_first = True
    pool = Http11Pool(url)
    for i in range(3):
        await asyncio.sleep(0.05)
        assert (await pool.request("POST", "/x", b'{"n": %d}' % i))[1] == b'{"n": %d}' % i
    await pool.aclose()
    assert e.connections == 3


async def test_refused_connection_is_connect_failed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(ConnectFailed):
            await Http11Pool(f"http://127.0.0.1:{port}").request("POST", "/v1/nlu", b"{}")


async def test_a_cancelled_request_does_not_leave_its_connection_in_the_pool(echo: tuple[Echo, str]) -> None:
    _, url = echo
    pool = Http11Pool(url)
    task = asyncio.create_task(pool.request("POST", "/x", b"{}"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool._idle == []
    assert (await pool.request("POST", "/x", b"[1]")) == (200, b"[1]")
    await pool.aclose()


@pytest.fixture
async def fake_serving_url(fake_nlu: FakeNlu) -> AsyncIterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(fake_nlu, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_inference_client_batches_over_the_pool(fake_serving_url: str, fake_nlu: FakeNlu) -> None:
    client = InferenceClient(InferenceConfig(base_url=fake_serving_url, batch_window_ms=20))
    assert client._nlu_pool is not None  # no test transport: the lean pool carries /v1/nlu
    texts = [f"满多少包邮啊{i}" for i in range(6)]
    outs = await asyncio.gather(*(client.analyze(t) for t in texts))
    assert [o.result.text for o in outs] == texts
    assert outs[0].result.candidates[0].faq_id == "faq-025"
    assert [len(r["texts"]) for r in fake_nlu.requests if r["path"] == "/v1/nlu"] == [6]
    fake_nlu.fail_with = 503
    with pytest.raises(InferenceUnavailable):
        await client.analyze("你好")
    await client.aclose()


async def test_inference_client_gives_up_on_a_server_that_is_gone() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        client = InferenceClient(InferenceConfig(base_url=f"http://127.0.0.1:{port}", retries=1))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(InferenceUnavailable) as exc:
            await client.analyze("你好")
        assert exc.value.reason == "connect" and loop.time() - t0 < 0.5
        await client.aclose()
