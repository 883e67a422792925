"""A small keep-alive HTTP/1.1 client on asyncio streams, for the hot /v1/nlu call to the inference server.

httpx costs several hundred microseconds of CPU per request (its transport, httpcore and anyio layers); this
pool does what that one call needs — POST a JSON body on a reused connection, read a Content-Length or
chunked answer — for a fraction of it. Timeouts are the caller's (``asyncio.timeout`` around the call); the
connect step has its own bound. A connection is closed on any error, timeout or cancellation (its state is
unknown) and never reused after the server said ``Connection: close`` or closed it while idle.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class HttpTransportError(Exception):
    """The request failed below HTTP (connection refused/reset/closed early, malformed response)."""


class ConnectFailed(HttpTransportError):
    """No connection could be opened (refused, unreachable, connect timeout): nothing was sent."""


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class Http11Pool:
    """``await pool.request("POST", "/v1/nlu", body, headers)`` -> ``(status, body bytes)``."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float = 1.0,
        max_idle: int = 8,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("Http11Pool supports http://host:port base URLs only")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.connect_timeout_s = connect_timeout_s
        self.max_idle = max_idle
        fixed = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._idle: list[_Conn] = []
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def _connect(self) -> _Conn:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(type(exc).__name__) from exc
        return _Conn(reader, writer)

    def _checkout(self) -> _Conn | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
            conn.close()  # the server closed it while idle
        return None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """One request. A reused connection that turns out dead before any answer byte is retried once on a
        fresh one (only use this for idempotent calls)."""
        if self._closed:
            raise HttpTransportError("pool closed")
        conn = self._checkout()
        if conn is not None:
            try:
                return await self._exchange(conn, method, path, body, headers)
            except _DeadBeforeAnswer:
                pass  # the keep-alive connection was closed under us: once more on a new one
        conn = await self._connect()
        try:
            return await self._exchange(conn, method, path, body, headers)
        except _DeadBeforeAnswer as exc:
            raise HttpTransportError("connection closed before the answer") from exc

    async def _exchange(
        self, conn: _Conn, method: str, path: str, body: bytes, headers: dict[str, str] | None
    ) -> tuple[int, bytes]:
        keep = False
        try:
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items()) if headers else ""
            head = (
                f"{method} {self.prefix}{path} HTTP/1.1\r\n{self._fixed}{extra}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            conn.writer.write(head.encode("latin-1") + body)
            try:
                raw = await conn.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _DeadBeforeAnswer from exc
                raise HttpTransportError("truncated response head") from exc
            except ConnectionResetError as exc:
                raise _DeadBeforeAnswer from exc
            status, data, keep = await self._read_rest(conn.reader, raw, method)
            return status, data
        except (_DeadBeforeAnswer, HttpTransportError):
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise HttpTransportError(type(exc).__name__) from exc
        finally:  # also on timeouts and cancellation: a connection is only reused after a complete answer
            if keep and not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                conn.close()

    @staticmethod
    async def _read_rest(reader: asyncio.StreamReader, raw: bytes, method: str) -> tuple[int, bytes, bool]:
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpTransportError("malformed status line")
        status = int(parts[1])
        length: int | None = None
        chunked = False
        keep = parts[0] == "HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                keep = value.strip().lower() != "close"
        if chunked:
            chunks: list[bytes] = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                        pass
                    return status, b"".join(chunks), keep
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
        if length is not None:
            return status, await reader.readexactly(length), keep
        if status in (204, 304) or method == "HEAD" or 100 <= status < 200:
            return status, b"", keep
        return status, await reader.read(), False  # delimited by close


class _DeadBeforeAnswer(Exception):
    """The connection died before any byte of the answer arrived."""


__all__ = ["ConnectFailed", "Http11Pool", "HttpTransportError"]
