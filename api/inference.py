"""HTTP client for the inference server (serving): /v1/nlu, /v1/embed and index management.

Concurrent chat turns are micro-batched into one /v1/nlu request (a few-ms window, up to 64 texts). Batching
adapts to load: at most ``max_batches_in_flight`` /v1/nlu requests are outstanding per API process; texts that
arrive meanwhile wait and leave together as soon as one returns. Every request costs the inference server
several ms of CPU besides the model time (Ray Serve's HTTP proxy and replica plumbing), so under load fewer,
fuller requests leave more CPU for the work itself; when idle a text waits only the window.
Calls are bounded (semaphore), time-limited, retried on connect errors only, and guarded by a circuit
breaker, so that when serving is down or slow every caller gets ``InferenceUnavailable`` quickly and
the dialog manager answers with a ``degraded`` reply instead of a 5xx.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import httpx
from pydantic import ValidationError

from api.http11 import ConnectFailed, Http11Pool, HttpTransportError
from api.observability import Metrics, request_id_var
from bundle.contracts import (
    MAX_TEXT_CHARS,
    EmbedRequest,
    EmbedResponse,
    IndexBuildRequest,
    IndexInfo,
    IndexList,
    KbEntry,
    NluRequest,
    NluResponse,
    NluResult,
    RetrievalThresholds,
)

# httpcore runs ``import sniffio`` on every request to detect the async library; when sniffio is not installed
# (anyio 4 no longer needs it) that is a failed import with a filesystem search each time (~3 % of a visitor
# turn's CPU under load). Marking it absent makes the failure immediate; behaviour is unchanged (httpcore and
# anyio both fall back to asyncio). Has no effect when sniffio is installed.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

log = logging.getLogger("api.inference")
_R = TypeVar("_R")


def _error_code(resp: httpx.Response) -> str:
    """The stable code of a serving error body ``{"error": {"code": ...}}``; ``UNKNOWN`` when it has none."""
    try:
        code = resp.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return "UNKNOWN"
    return code if isinstance(code, str) and code.isidentifier() and len(code) <= 64 else "UNKNOWN"


class InferenceUnavailable(Exception):
    """Serving could not answer in time (down, slow, circuit open, bad response)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class NluOutcome:
    result: NluResult
    thresholds: RetrievalThresholds
    index_version: str | None = None


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after N consecutive failures; after ``reset_s`` lets one probe through (half-open)."""

    def __init__(self, failure_threshold: int, reset_s: float) -> None:
        self.failure_threshold = failure_threshold
        self.reset_s = reset_s
        self._failures = 0
        self._opened_at = 0.0
        self._state = BreakerState.CLOSED
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and time.monotonic() - self._opened_at >= self.reset_s:
            return BreakerState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._state = BreakerState.CLOSED
        self._probe_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        self._probe_in_flight = False
        if self._state is not BreakerState.CLOSED or self._failures >= self.failure_threshold:
            self._state = BreakerState.OPEN
            self._opened_at = time.monotonic()


@dataclass
class _Pending:
    text: str
    future: asyncio.Future[NluOutcome]
    request_id: str | None


@dataclass
class InferenceConfig:
    base_url: str
    connect_timeout_s: float = 0.25
    timeout_s: float = 0.8
    max_concurrency: int = 8
    retries: int = 1
    batch_window_ms: float = 15.0
    batch_max: int = 64
    max_batches_in_flight: int = 1  # /v1/nlu requests outstanding at once; more texts wait and batch up
    top_k: int = 5
    breaker_failures: int = 5
    breaker_reset_s: float = 10.0
    admin_timeout_s: float = 600.0
    extra_headers: dict[str, str] = field(default_factory=dict)


class InferenceClient:
    def __init__(
        self,
        config: InferenceConfig,
        *,
        metrics: Metrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_s)
        if metrics:
            # Read at scrape time: set only on requests, the gauge stayed at 1 all night after an outage with no
            # traffic to probe (a critical alert firing for nothing). 1 while the breaker rejects calls; after
            # reset_s it lets the next call probe, and a failed probe opens it again.
            metrics.breaker_open.set_function(lambda: 1.0 if self.breaker.state is BreakerState.OPEN else 0.0)
        self._http = httpx.AsyncClient(
            base_url=config.base_url,
            transport=transport,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=config.max_concurrency * 2, max_keepalive_connections=config.max_concurrency
            ),
            headers=config.extra_headers,
        )
        # The hot /v1/nlu call goes over a lean keep-alive HTTP/1.1 pool (httpx costs several times its CPU per
        # request); tests that hand in an httpx transport (an in-process fake server) keep httpx for it too.
        self._nlu_pool: Http11Pool | None = (
            Http11Pool(
                config.base_url,
                connect_timeout_s=config.connect_timeout_s,
                max_idle=config.max_concurrency,
                headers=config.extra_headers,
            )
            if transport is None and config.base_url.startswith("http://")
            else None
        )
        self._sem = asyncio.Semaphore(config.max_concurrency)
        self._queue: list[_Pending] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._batches_in_flight = 0
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for p in self._queue:
            if not p.future.done():
                p.future.set_exception(InferenceUnavailable("closed"))
                p.future.exception()  # mark retrieved
        self._queue.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._nlu_pool is not None:
            await self._nlu_pool.aclose()
        await self._http.aclose()

    # ---- NLU (micro-batched) -------------------------------------------------------------------
    async def analyze(self, text: str) -> NluOutcome:
        """NLU for one text; concurrent callers share one /v1/nlu request. Raises InferenceUnavailable."""
        text = text[:MAX_TEXT_CHARS]
        if not self.breaker.allow():
            self._count_failure("circuit_open")
            raise InferenceUnavailable("circuit_open")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[NluOutcome] = loop.create_future()
        self._queue.append(_Pending(text, fut, request_id_var.get()))
        if len(self._queue) >= self.config.batch_max:
            self._flush()
        elif self._flush_handle is None and self._batches_in_flight < self.config.max_batches_in_flight:
            self._flush_handle = loop.call_later(self.config.batch_window_ms / 1000.0, self._flush)
        # else: every request slot is busy; the queue leaves when one returns (``_batch_done``)
        try:
            # The whole budget (queue wait + semaphore + HTTP + one retry) stays under ~1 s.
            return await asyncio.wait_for(asyncio.shield(fut), timeout=self.config.timeout_s + 0.1)
        except TimeoutError as exc:
            fut.cancel()  # still queued: it is dropped instead of sent; in flight: its result is ignored
            self._count_failure("timeout")
            raise InferenceUnavailable("timeout") from exc

    def _flush(self) -> None:
        """Send queued texts, up to ``batch_max`` per request, while a request slot is free."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if any(p.future.done() for p in self._queue):  # callers that gave up while queued
            self._queue = [p for p in self._queue if not p.future.done()]
        while self._queue and self._batches_in_flight < self.config.max_batches_in_flight:
            batch = self._queue[: self.config.batch_max]
            del self._queue[: self.config.batch_max]
            self._batches_in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send_batch(batch))
            self._tasks.add(task)
            task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._batches_in_flight -= 1
        # Texts queued while every slot was busy have waited at least one round trip: send them now.
        if self._queue and self._flush_handle is None and not self._closed:
            self._flush()

    async def _send_batch(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self._post_nlu(batch)
        except InferenceUnavailable as exc:
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(InferenceUnavailable(exc.reason))
                    p.future.exception()  # mark retrieved: a timed-out caller may never read it
            return
        except asyncio.CancelledError:
            for p in batch:
                if not p.future.done():
                    p.future.cancel()
            raise
        for p, outcome in zip(batch, outcomes, strict=True):
            if not p.future.done():
                p.future.set_result(outcome)

    async def _post_nlu(self, batch: list[_Pending]) -> list[NluOutcome]:
        body = NluRequest(texts=[p.text for p in batch], top_k=self.config.top_k).model_dump_json().encode()
        headers = {}
        rids = [p.request_id for p in batch if p.request_id]
        if rids:
            headers["X-Request-ID"] = rids[0]
            if len(rids) > 1:
                headers["X-Batch-Request-IDs"] = ",".join(rids[:64])
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.timeout_s):
                async with self._sem:
                    status, content = await self._post_nlu_bytes(body, headers)
        except TimeoutError as exc:
            self._fail("timeout")
            raise InferenceUnavailable("timeout") from exc
        if self.metrics:
            self.metrics.nlu_latency.observe(time.perf_counter() - started)
            self.metrics.nlu_batch_size.observe(len(batch))
        if status != 200:
            self._fail(f"http_{status // 100}xx")
            raise InferenceUnavailable(f"status {status}")
        try:
            parsed = NluResponse.model_validate_json(content)
        except ValidationError as exc:
            self._fail("bad_response")
            raise InferenceUnavailable("bad_response") from exc
        if len(parsed.results) != len(batch):
            self._fail("bad_response")
            raise InferenceUnavailable("result count mismatch")
        self.breaker.record_success()
        return [NluOutcome(r, parsed.thresholds, parsed.index_version) for r in parsed.results]

    async def _post_nlu_bytes(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST /v1/nlu; connect errors retried (``retries``), anything else not. Returns (status, body)."""
        if self._nlu_pool is None:
            headers = {**headers, "Content-Type": "application/json"}
            resp = await self._request_with_retry("POST", "/v1/nlu", content=body, headers=headers)
            return resp.status_code, resp.content
        pool = self._nlu_pool
        # reset mid-answer, malformed: not retried
        return await self._retrying(
            lambda: pool.request("POST", "/v1/nlu", body, headers), (ConnectFailed,), (HttpTransportError,)
        )

    async def _request_with_retry(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        # read timeout, protocol error: not retried (not idempotent-safe)
        return await self._retrying(
            lambda: self._http.request(method, url, **kwargs),  # type: ignore[arg-type]
            (httpx.ConnectError, httpx.ConnectTimeout),
            (httpx.HTTPError,),
        )

    async def _retrying(
        self,
        call: Callable[[], Awaitable[_R]],
        connect_errors: tuple[type[BaseException], ...],
        other_errors: tuple[type[BaseException], ...],
    ) -> _R:
        """``call()``; a connect failure is retried ``config.retries`` times (short backoff), any other transport
        error is not. Both end as InferenceUnavailable after counting the failure for the breaker."""
        attempt = 0
        while True:
            try:
                return await call()
            except connect_errors as exc:
                if attempt < self.config.retries:
                    attempt += 1
                    await asyncio.sleep(0.02 * attempt)
                    continue
                self._fail("connect")
                raise InferenceUnavailable("connect") from exc
            except other_errors as exc:
                self._fail("http_error")
                raise InferenceUnavailable("http_error") from exc

    def _fail(self, reason: str) -> None:
        self.breaker.record_failure()
        self._count_failure(reason)

    def _count_failure(self, reason: str) -> None:
        if self.metrics:
            self.metrics.nlu_failures.labels(reason).inc()

    # ---- non-batched calls ---------------------------------------------------------------------
    def _rid_headers(self) -> dict[str, str]:
        rid = request_id_var.get()
        return {"X-Request-ID": rid} if rid else {}

    async def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), 64):
            chunk = [t[:MAX_TEXT_CHARS] for t in texts[i : i + 64]]
            body = EmbedRequest(texts=chunk).model_dump()
            resp = await self._admin_call("POST", "/v1/embed", json=body, timeout=30.0)
            out.extend(EmbedResponse.model_validate_json(resp.content).embeddings)
        return out

    async def build_index(self, entries: list[KbEntry], *, activate: bool = True) -> IndexInfo:
        body = IndexBuildRequest(entries=entries, activate=activate).model_dump()
        resp = await self._admin_call("POST", "/v1/indexes", json=body, timeout=self.config.admin_timeout_s)
        return IndexInfo.model_validate_json(resp.content)

    async def activate_index(self, version: str) -> IndexInfo:
        resp = await self._admin_call("POST", f"/v1/indexes/{version}/activate", timeout=60.0)
        return IndexInfo.model_validate_json(resp.content)

    async def list_indexes(self) -> IndexList:
        resp = await self._admin_call("GET", "/v1/indexes", timeout=10.0)
        return IndexList.model_validate_json(resp.content)

    async def ready(self) -> bool:
        try:
            resp = await self._http.get("/readyz", headers=self._rid_headers(), timeout=1.0)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def _admin_call(self, method: str, url: str, *, timeout: float, **kwargs: object) -> httpx.Response:
        try:
            resp = await self._http.request(
                method,
                url,
                headers=self._rid_headers(),
                timeout=timeout,
                **kwargs,  # type: ignore[arg-type]
            )
        except httpx.HTTPError as exc:
            raise InferenceUnavailable(type(exc).__name__) from exc
        if resp.status_code == 404:
            raise InferenceUnavailable("not_found")
        if (
            resp.status_code == 409
        ):  # the serving error code says which conflict (index exists, other embedder...)
            raise InferenceUnavailable(f"conflict {_error_code(resp)}")
        if resp.status_code >= 400:
            raise InferenceUnavailable(f"status {resp.status_code}")
        return resp
