"""The fault proxy itself (no services): forwards bytes, injects latency, refuses and listens again."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.stack.proxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _roundtrip(port: int, payload: bytes = b"ping") -> tuple[bytes, float]:
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    return got, time.perf_counter() - t0


def test_forwards_delays_refuses_and_recovers(echo: int) -> None:
    with FaultProxy(("127.0.0.1", echo)) as proxy:
        got, fast = _roundtrip(proxy.port, b"x" * 200_000)
        assert got == b"x" * 200_000
        proxy.set_delay(0.3)
        got, slow = _roundtrip(proxy.port)
        assert got == b"ping" and slow >= 0.3 > fast
        proxy.set_delay(0)
        port = proxy.port
        proxy.set_refuse(True)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        proxy.set_refuse(False)
        assert proxy.port == port
        assert _roundtrip(port)[0] == b"ping"


def test_unreachable_upstream_closes_the_client(echo: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with FaultProxy(("127.0.0.1", dead)) as proxy:
        got, _ = _roundtrip(proxy.port)
        assert got == b""
        proxy.set_upstream("127.0.0.1", echo)
        assert _roundtrip(proxy.port)[0] == b"ping"
