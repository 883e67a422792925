"""A small asyncio TCP proxy with injectable latency and refusal, run in a background thread.

Put it between the API and the inference server to simulate a slow or unreachable dependency:

    with FaultProxy(upstream=("127.0.0.1", 8001)) as proxy:
        proxy.port                 # listen here (127.0.0.1)
        proxy.set_delay(2.0)       # every client->upstream chunk waits 2 s (each request is delayed)
        proxy.set_refuse(True)     # close the listener and drop live connections: ECONNREFUSED
        proxy.set_refuse(False)    # listen again on the same port
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from types import TracebackType
from typing import Any


class FaultProxy:
    def __init__(self, upstream: tuple[str, int], listen_port: int = 0, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self._port = listen_port
        self.delay_s = 0.0
        self.refusing = False
        self.connections_total = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # ---- public API (thread-safe) -------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close(drop=True))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def set_delay(self, seconds: float) -> None:
        self.delay_s = max(0.0, float(seconds))

    def set_refuse(self, refuse: bool) -> None:
        if refuse and not self.refusing:
            self.refusing = True
            self._call(self._close(drop=True))
        elif not refuse and self.refusing:
            self._call(self._listen())
            self.refusing = False

    def set_upstream(self, host: str, port: int) -> None:
        """Point new connections at another upstream (e.g. a restarted server on a new port)."""
        self.upstream = (host, port)

    def drop_connections(self) -> None:
        self._call(self._drop())

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- loop side ----------------------------------------------------------------------------------
    def _call(self, coro: object) -> object:
        fut: Any = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return fut.result(timeout=10)

    async def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self._port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._handle, sock=sock)

    async def _close(self, drop: bool) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=1)
            self._server = None
        if drop:
            await self._drop()

    async def _drop(self) -> None:
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_total += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, delayed: bool) -> None:
            try:
                while data := await src.read(65536):
                    if delayed and self.delay_s:
                        await asyncio.sleep(self.delay_s)
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))
        self._writers.discard(writer)
        self._writers.discard(up_writer)
