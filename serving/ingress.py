"""The NLU ingress: FastAPI routes behind `@serve.ingress`, admission control, error mapping, metrics.

Routes: POST /v1/nlu, POST /v1/embed, POST /v1/indexes, POST /v1/indexes/{version}/activate, GET /v1/indexes,
GET /healthz, GET /readyz, GET /metrics.

Models and the retriever are reached through `Backend`s: `_Remote` wraps a Serve `DeploymentHandle` (split
topology), `_Local` an in-process server object (fused topology). Handlers never see which one.
"""

import asyncio
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException

from bundle.contracts import (
    MAX_TEXTS,
    EmbedRequest,
    EmbedResponse,
    IndexBuildRequest,
    IndexInfo,
    IntentResult,
    KbEntry,
    LabelScore,
    NluRequest,
    NluResponse,
    NluResult,
    RetrievalThresholds,
)
from serving.errors import ErrorCode, ServingError, error_body, error_headers
from serving.metrics import ServingMetrics
from serving.retrieval import IndexedQuestion, IndexStore, IndexStoreError, default_version, flatten_entries
from serving.retrieval.index import check_index_version, derived_version
from serving.servers import ModelReply, ModelServer, RetrieverServer, SearchReply
from serving.settings import IngressUserConfig, ResolvedSettings
from serving.validation import parse_body, read_body

log = logging.getLogger("serving")

INTENT_TOP_K = 3
DEFAULT_ANSWER = 0.8
DEFAULT_SUGGEST = 0.5
MODEL_KINDS = ("intent", "sentiment", "embedder")
BOOTSTRAP_PREFIX = "demo-"  # index versions the bootstrap builds from the demo FAQ file
# <index root>/.reembed.lock: one re-embedding of the active index at a time across all replicas and pods
REEMBED_LOCK = "reembed"
INDEX_JOB_TIMEOUT_S = (
    3600.0  # an index build or a re-embedding's activation: a large KB takes minutes, not seconds
)
STARTUP_REEMBED_WAIT_S = 300.0  # a starting replica waits this long for another one's re-embedding at most
REEMBED_RETRY_S = 30.0  # a failed re-embedding is tried again after this long (each try embeds the whole KB)
_RID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class Backend(Protocol):
    async def call(self, method: str, *args: Any) -> Any: ...


class _Local:
    def __init__(self, target: Any) -> None:
        self.target = target

    async def call(self, method: str, *args: Any) -> Any:
        fn = getattr(self.target, method)
        result = fn(*args)
        if asyncio.iscoroutine(result):
            result = await result
        return result


class _Remote:
    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def call(self, method: str, *args: Any) -> Any:
        return await getattr(self.handle, method).remote(*args)


def map_exception(exc: BaseException) -> ServingError:
    """Any exception from a backend -> a ServingError with a stable code (the detail stays in logs)."""
    if isinstance(exc, ServingError):
        return exc
    cause = getattr(exc, "cause", None)
    if isinstance(cause, ServingError):
        return cause
    from ray import exceptions as ray_exc
    from ray.serve import exceptions as serve_exc

    if isinstance(exc, serve_exc.BackPressureError):
        return ServingError(ErrorCode.OVERLOADED, "downstream queue full", retry_after=1)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError | ray_exc.GetTimeoutError):
        return ServingError(ErrorCode.TIMEOUT, type(exc).__name__)
    if isinstance(exc, ray_exc.RayActorError | ray_exc.ActorUnavailableError):
        return ServingError(ErrorCode.MODEL_UNAVAILABLE, type(exc).__name__)
    return ServingError(ErrorCode.INTERNAL, type(exc).__name__)


def load_faq_jsonl(path: Path) -> list[KbEntry]:
    """Demo FAQ file: one JSON object per line with faq_id (or id), question, similar; other keys ignored."""
    entries: list[KbEntry] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                entries.append(
                    KbEntry(
                        faq_id=str(raw.get("faq_id") or raw.get("id")),
                        question=raw["question"],
                        similar=list(raw.get("similar") or []),
                        category=raw.get("category"),
                    )
                )
            except (ValueError, KeyError, TypeError):
                log.warning("bootstrap FAQ %s line %d skipped (not a valid entry)", path, n)
    return entries


def intent_results(reply: ModelReply, i: int) -> IntentResult:
    probs = reply.outputs[i]
    order = np.argsort(-probs, kind="stable")[:INTENT_TOP_K]
    label = reply.labels[int(order[0])]
    return IntentResult(
        label=label,
        confidence=round(float(probs[order[0]]), 6),
        threshold=reply.label_thresholds.get(label, reply.default_threshold),
        top_k=[LabelScore(label=reply.labels[int(k)], confidence=round(float(probs[k]), 6)) for k in order],
    )


def top_label(reply: ModelReply, i: int) -> LabelScore:
    k = int(np.argmax(reply.outputs[i]))
    return LabelScore(label=reply.labels[k], confidence=round(float(reply.outputs[i][k]), 6))


app = FastAPI(
    title="XiaoKe inference server",
    description="NLU (intent, sentiment, FAQ retrieval), embeddings and FAQ index versions.",
    version="1.0",
)


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
        exc.status_code, ErrorCode.INVALID_REQUEST
    )
    return JSONResponse(error_body(code, _request_id(request)), status_code=exc.status_code)


def _request_id(request: Request) -> str:
    """The id the Serve proxy put on the request (it echoes it as the X-Request-ID response header)."""
    rid = request.headers.get("x-request-id")
    return rid if rid and _RID.match(rid) else uuid.uuid4().hex


def _batch_note(request: Request) -> str:
    """ " (batch: id1,id2,...)" from the API's X-Batch-Request-IDs (the visitors' requests this one carries beside
    its own id), for failure logs: every visitor of a failed batch can be traced, not only the first."""
    raw = request.headers.get("x-batch-request-ids")
    if not raw:
        return ""
    ids = [i for i in (x.strip() for x in raw.split(",")[:64]) if _RID.match(i)]
    return f" (batch: {','.join(ids)})" if ids else ""


async def _none() -> None:
    return None


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


Handler = Callable[[Request, str], Awaitable[tuple[Any, dict[str, str]]]]


@serve.ingress(app)
class NluIngress:
    def __init__(
        self,
        settings: ResolvedSettings,
        intent: Any = None,
        sentiment: Any = None,
        embedder: Any = None,
        retriever: Any = None,
    ) -> None:
        self.settings = settings
        self.metrics = ServingMetrics()
        self.models: dict[str, Backend]
        self._local_models: dict[str, ModelServer] = {}
        if intent is None or sentiment is None or embedder is None or retriever is None:
            # fused topology: every model and the retriever live in this replica
            self._local_models = {k: ModelServer(k, settings) for k in MODEL_KINDS}
            self.models = {k: _Local(v) for k, v in self._local_models.items()}
            self.retriever: Backend = _Local(RetrieverServer(settings))
        else:
            self.models = {
                "intent": _Remote(intent),
                "sentiment": _Remote(sentiment),
                "embedder": _Remote(embedder),
            }
            self.retriever = _Remote(retriever)
        self.index_store = IndexStore(settings.index_root)
        self._max_inflight = settings.max_inflight
        self._timeout = settings.request_timeout_s
        self._inflight = 0
        self._thresholds = RetrievalThresholds(answer=DEFAULT_ANSWER, suggest=DEFAULT_SUGGEST)
        self._bootstrap_state = "pending"
        self._bootstrap_task: asyncio.Task[None] | None = None
        self._index_watch: asyncio.Task[None] | None = None
        # the active index vs the serving embedder (`reembed_index`): idle (they match, or nothing to do yet),
        # rebuilding (this replica is at it), waiting (another replica holds the lock), failed (retried)
        self._reembed_state = "idle"
        self._reembed_seen: tuple[str, str, str] | None = None  # the mismatch the previous check saw
        self._reembed_retry_at = 0.0
        try:
            asyncio.get_running_loop()
            self._start_bootstrap()
        except RuntimeError:
            pass  # no loop in the constructor: started by the first request / health check

    # -- lifecycle -----------------------------------------------------------------------------------------
    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        cfg = IngressUserConfig.model_validate(user_config)
        if cfg.max_inflight is not None:
            self._max_inflight = cfg.max_inflight
        if cfg.request_timeout_s is not None:
            self._timeout = cfg.request_timeout_s
        for kind, model_cfg in cfg.models.items():
            if kind in self._local_models:
                await self._local_models[kind].reconfigure(model_cfg)
                self._observe_status(self._local_models[kind].status())

    async def check_health(self) -> None:
        self._start_bootstrap()
        for model in self._local_models.values():  # fused: a model without any loaded bundle is unhealthy
            await model.check_health()

    def _observe_status(self, status: Any) -> None:
        self.metrics.bundle_refused.labels(status.kind).set(1 if status.load_error else 0)

    def _start_bootstrap(self) -> None:
        if self._bootstrap_task is None:
            loop = asyncio.get_running_loop()
            self._bootstrap_task = loop.create_task(self._bootstrap())
            self._index_watch = loop.create_task(self._watch_index())

    async def _bootstrap(self) -> None:
        s = self.settings
        try:
            active = await asyncio.to_thread(self.index_store.active)
            if active is not None and not await self._stale_bootstrap_index(active):
                await self._startup_reembed()
                self._bootstrap_state = "done"
                return
            path = s.bootstrap_faq
            if not s.bootstrap or path is None or not path.is_file():
                self._bootstrap_state = "skipped"
                log.info("no active FAQ index and no bootstrap FAQ; candidates stay empty until one is built")
                return
            entries = await asyncio.to_thread(load_faq_jsonl, path)
            if not entries:
                self._bootstrap_state = "skipped"
                return
            emb = await self._call("embedder", "status")
            digest = hashlib.sha256(path.read_bytes() + str(emb.version).encode()).hexdigest()[:12]
            version = f"{BOOTSTRAP_PREFIX}{digest}"
            try:
                await self._build(IndexBuildRequest(entries=entries, activate=True, version=version))
            except ServingError as exc:
                if exc.code is not ErrorCode.INDEX_EXISTS:
                    raise
                await self.retriever.call("activate", version, emb.version)
            self._bootstrap_state = "done"
            log.info("bootstrapped FAQ index %s from %s (%d entries)", version, path, len(entries))
        except Exception:
            self._bootstrap_state = "failed"
            log.exception("FAQ index bootstrap failed; serving without an index")

    async def _startup_reembed(self) -> None:
        """At startup, an active index built by another embedder (a new embedder bundle, then a restart: `make
        models`, a new image) is re-embedded before this replica reports ready (/readyz waits for the bootstrap),
        so its first requests do not get keyword-only retrieval. A replica holding the re-embedding lock is waited
        for, up to STARTUP_REEMBED_WAIT_S; a failure is left to the watcher (`_watch_index`), which retries."""
        deadline = time.monotonic() + STARTUP_REEMBED_WAIT_S
        while await self._mismatch() is not None:
            if await self.reembed_index() != "busy" or time.monotonic() >= deadline:
                return
            await asyncio.sleep(self.settings.index_poll_s)

    async def _stale_bootstrap_index(self, active: str) -> bool:
        """True when the active index is a bootstrap (demo FAQ) index built by another embedder than the one
        serving now: `make models` re-ran, and keeping it would serve keyword-only answers (see
        `RetrieverServer.search`). It is rebuilt from the demo FAQ file (which a new image may have changed).
        Any other index (published by the API) is re-embedded from its own questions by `reembed_index`."""
        if not (self.settings.bootstrap and active.startswith(BOOTSTRAP_PREFIX)):
            return False
        emb = await self._call("embedder", "status")
        try:
            built_by: str | None = (await asyncio.to_thread(self.index_store.info, active)).embedder_version
        except IndexStoreError:
            built_by = None
        if built_by == emb.version:
            return False
        log.warning(
            "bootstrap index %s was built by embedder %s, serving %s: rebuilding it",
            active,
            built_by,
            emb.version,
        )
        return True

    # -- the active index follows the embedder ---------------------------------------------------------------
    async def _watch_index(self) -> None:
        """After the bootstrap, and then every `index_poll_s`: re-embed the active index when another embedder
        built it (`reembed_index`). It acts when two checks in a row saw the same mismatch: while an embedder
        swap rolls over the replicas they disagree for a moment, and a replica still on the old embedder would
        undo the work of one already on the new."""
        if self._bootstrap_task is not None:
            await asyncio.wait([self._bootstrap_task])
        failing: str | None = None
        while True:
            try:
                await self._check_index_embedder()
                failing = None
            except Exception as exc:  # a transient store or model error must not end the watch
                if isinstance(exc, RuntimeError) and "after shutdown" in str(exc):
                    return  # asyncio.to_thread's executor is gone: the process is exiting
                if type(exc).__name__ != failing:  # once per kind of failure, not every index_poll_s
                    failing = type(exc).__name__
                    log.warning("index embedder check failed: %s", failing)
            await asyncio.sleep(self.settings.index_poll_s)

    async def _check_index_embedder(self) -> None:
        found = await self._mismatch()
        seen = (found[0].version, found[0].embedder_version, found[1]) if found else None
        previous, self._reembed_seen = self._reembed_seen, seen
        if seen is None:
            self._reembed_state = "idle"
        elif seen == previous and time.monotonic() >= self._reembed_retry_at:
            await self.reembed_index()

    async def _mismatch(self) -> tuple[IndexInfo, str] | None:
        """(the active index's info, the serving embedder's version) when another embedder built that index."""
        emb = await self._call("embedder", "status")
        if emb.version is None:
            return None

        def active_info() -> IndexInfo | None:
            active = self.index_store.active()
            try:
                return self.index_store.info(active) if active else None
            except IndexStoreError:  # ACTIVE names a missing / unreadable version: the retriever logs that
                return None

        info = await asyncio.to_thread(active_info)
        if info is None or info.embedder_version == emb.version:
            return None
        return info, emb.version

    async def reembed_index(self) -> str:
        """When another embedder than the one serving built the active index (a new embedder bundle was pinned,
        or the previous one pinned back), make a version of the same questions built by the serving embedder
        active: an existing one (embedder rollback), else the active index's own questions re-embedded into
        `derived_version(...)` (recorded as `derived_from`, so the API treats it as its source's KB revision).
        One replica of the whole deployment does it (the store's reembed lock; the others answer "busy"), and
        the result replaces the active index only while ACTIVE still names it: a console publish that landed
        meanwhile stays. Returns current | busy | rebuilt | reactivated | superseded | failed."""
        if await self._mismatch() is None:
            return "current"
        lock = self.index_store.lock(REEMBED_LOCK)
        if not await asyncio.to_thread(lock.acquire):
            self._reembed_state = "waiting"
            return "busy"
        try:
            found = await self._mismatch()  # again under the lock: another replica may just have finished
            if found is None:
                self._reembed_state = "idle"
                return "current"
            self._reembed_state = "rebuilding"
            outcome = await self._reembed(*found)
            self._reembed_state = "idle"
        except Exception as exc:
            err = map_exception(exc)
            self._reembed_state = "failed"
            self._reembed_retry_at = time.monotonic() + REEMBED_RETRY_S
            log.warning(
                "re-embedding the active FAQ index failed: %s (%s); retrieval stays keyword-only, "
                "next try in %.0f s",
                err.code.value,
                err.detail,
                REEMBED_RETRY_S,
                exc_info=err.code is ErrorCode.INTERNAL,
            )
            outcome = "failed"
        finally:
            await asyncio.to_thread(lock.release)
        self.metrics.index_reembeds.labels(outcome).inc()
        return outcome

    async def _reembed(self, source: IndexInfo, serving: str) -> str:
        t0 = time.perf_counter()
        origin = source.derived_from or source.version  # the publish whose questions (KB revision) these are
        infos = await asyncio.to_thread(self.index_store.versions)
        ready = [
            i for i in infos if i.embedder_version == serving and (i.derived_from or i.version) == origin
        ]
        if ready:
            target, outcome = ready[-1].version, "reactivated"  # the newest (versions are sorted by creation)
            log.warning(
                "active FAQ index %s was built by embedder %s, serving %s: activating %s "
                "(the same questions, built by it)",
                source.version,
                source.embedder_version,
                serving,
                target,
            )
        else:
            target, outcome = derived_version(origin, serving), "rebuilt"
            rows = await asyncio.to_thread(self.index_store.rows, source.version)
            log.warning(
                "active FAQ index %s was built by embedder %s, serving %s: re-embedding its %d questions as %s "
                "(keyword-only retrieval until it is active)",
                source.version,
                source.embedder_version,
                serving,
                len(rows),
                target,
            )
            try:
                await self._build_rows(rows, target, False, derived_from=origin, embedder=serving)
            except Exception as exc:
                if map_exception(exc).code is not ErrorCode.INDEX_EXISTS:
                    raise  # INDEX_EXISTS: built by a replica that did not see the lock; activation checks it
        emb = await self._call("embedder", "status")  # the embedder may have moved on: then refused, retried
        try:
            await asyncio.wait_for(  # loads the version first (a large one: longer than request_timeout_s)
                self.retriever.call("activate", target, emb.version, source.version),
                max(self._timeout, INDEX_JOB_TIMEOUT_S),
            )
        except Exception as exc:
            if map_exception(exc).code is not ErrorCode.INDEX_ACTIVE_MOVED:
                raise
            log.warning(
                "FAQ index %s was not activated: ACTIVE moved away from %s meanwhile (a publish), "
                "which stays",
                target,
                source.version,
            )
            return "superseded"
        log.info(
            "FAQ index %s (embedder %s) active in place of %s after %.1f s",
            target,
            serving,
            source.version,
            time.perf_counter() - t0,
        )
        return outcome

    # -- plumbing ------------------------------------------------------------------------------------------
    async def _call(self, kind: str, method: str, *args: Any) -> Any:
        backend = self.retriever if kind == "retriever" else self.models[kind]
        return await asyncio.wait_for(backend.call(method, *args), self._timeout)

    def _observe(self, reply: ModelReply) -> None:
        m = self.metrics
        m.batch_rows.labels(reply.kind).observe(reply.batch_rows)
        m.queue.labels(reply.kind).observe(reply.queue_s)
        m.inference.labels(reply.kind).observe(reply.infer_s)
        m.padding.labels(reply.kind).observe(reply.padding_ratio)
        if reply.shadow_compared:
            m.shadow_compared.labels(reply.kind).inc(reply.shadow_compared)
            m.shadow_disagreed.labels(reply.kind).inc(reply.shadow_disagreed)

    async def _handle(self, endpoint: str, request: Request, fn: Handler, *, admit: bool = False) -> Response:
        rid = _request_id(request)
        t0 = time.perf_counter()
        admitted = False
        try:
            if admit:
                if self._inflight >= self._max_inflight:
                    raise ServingError(ErrorCode.OVERLOADED, "admission limit", retry_after=1)
                self._inflight += 1
                admitted = True
                self.metrics.inflight.set(self._inflight)
            body, headers = await fn(request, rid)
            status = 201 if endpoint == "index_build" else 200
            if isinstance(body, Response):
                response = body
            else:
                payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
                response = JSONResponse(payload, status_code=status)
            response.headers.update(headers)
            code = "OK"
        except Exception as exc:  # every failure leaves as the one JSON error shape
            err = map_exception(exc)
            if err.code is ErrorCode.INTERNAL:
                log.error("request %s%s %s failed", rid, _batch_note(request), endpoint, exc_info=exc)
            elif err.status >= 500:
                log.warning(
                    "request %s%s %s: %s (%s)",
                    rid,
                    _batch_note(request),
                    endpoint,
                    err.code.value,
                    err.detail,
                )
            response = JSONResponse(
                error_body(err.code, rid), status_code=err.status, headers=error_headers(err)
            )
            code = err.code.value
        finally:
            if admitted:
                self._inflight -= 1
                self.metrics.inflight.set(self._inflight)
        self.metrics.requests.labels(endpoint, code).inc()
        self.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
        return response

    # -- /v1/nlu -------------------------------------------------------------------------------------------
    @app.post("/v1/nlu", response_model=NluResponse, openapi_extra=_schema(NluRequest))
    async def nlu(self, request: Request) -> Response:
        return await self._handle("nlu", request, self._nlu, admit=True)

    async def _nlu(self, request: Request, rid: str) -> tuple[NluResponse, dict[str, str]]:
        limit = self.settings.max_body_bytes
        req = parse_body(await read_body(request, limit), NluRequest, max_bytes=limit)
        self.metrics.texts.observe(len(req.texts))
        intent_f = self._call("intent", "infer", req.texts)
        sent_f = self._call("sentiment", "infer", req.texts) if req.with_sentiment else _none()
        retr_f = self._retrieve(req.texts, req.top_k) if req.with_candidates else _none()
        intent, sentiment, retrieved = await asyncio.gather(intent_f, sent_f, retr_f)
        replies: list[ModelReply] = [intent]
        if sentiment is not None:
            replies.append(sentiment)
        search: SearchReply | None = None
        thresholds = self._thresholds  # no retrieval: the latest embedder's
        if retrieved is not None:
            emb, search, thresholds = retrieved  # this request's embedder (others may have swapped meanwhile)
            replies.append(emb)
        for r in replies:
            self._observe(r)
        results = []
        for i, text in enumerate(intent.texts):
            results.append(
                NluResult(
                    text=text,
                    intent=intent_results(intent, i),
                    sentiment=top_label(sentiment, i) if sentiment is not None else None,
                    candidates=search.candidates[i] if search is not None else [],
                )
            )
        response = NluResponse(
            results=results,
            thresholds=thresholds,
            model_versions={r.kind: r.version for r in replies},
            index_version=search.index_version if search is not None else None,
        )
        headers = {
            "x-queue-time": f"{1000 * max(r.queue_s for r in replies):.2f}",
            "x-inference-time": f"{1000 * sum(r.infer_s for r in replies):.2f}",
        }
        if search is not None:
            headers["x-retrieval-time"] = f"{1000 * search.search_s:.2f}"
        return response, headers

    async def _retrieve(
        self, texts: list[str], top_k: int
    ) -> tuple[ModelReply, SearchReply, RetrievalThresholds]:
        emb: ModelReply = await self._call("embedder", "infer", texts)
        thresholds = RetrievalThresholds(
            answer=emb.answer_threshold if emb.answer_threshold is not None else DEFAULT_ANSWER,
            suggest=emb.suggest_threshold if emb.suggest_threshold is not None else DEFAULT_SUGGEST,
            answer_margin=emb.answer_margin,
            answer_agree=emb.answer_agree,
        )
        self._thresholds = thresholds
        search: SearchReply = await self._call(
            "retriever", "search", emb.texts, emb.outputs, top_k, emb.version
        )
        self.metrics.retrieval.observe(search.search_s)
        if search.embedder_mismatch:
            self.metrics.embedder_mismatch.inc()
        return emb, search, thresholds

    # -- /v1/embed -----------------------------------------------------------------------------------------
    @app.post("/v1/embed", response_model=EmbedResponse, openapi_extra=_schema(EmbedRequest))
    async def embed(self, request: Request) -> Response:
        return await self._handle("embed", request, self._embed, admit=True)

    async def _embed(self, request: Request, rid: str) -> tuple[EmbedResponse, dict[str, str]]:
        limit = self.settings.max_body_bytes
        req = parse_body(await read_body(request, limit), EmbedRequest, max_bytes=limit)
        self.metrics.texts.observe(len(req.texts))
        reply: ModelReply = await self._call("embedder", "infer", req.texts)
        self._observe(reply)
        body = EmbedResponse(
            embeddings=np.round(reply.outputs, 7).tolist(),
            dim=int(reply.outputs.shape[1]),
            model_version=reply.version,
        )
        return body, {
            "x-queue-time": f"{1000 * reply.queue_s:.2f}",
            "x-inference-time": f"{1000 * reply.infer_s:.2f}",
        }

    # -- index management ----------------------------------------------------------------------------------
    @app.post("/v1/indexes", status_code=201, openapi_extra=_schema(IndexBuildRequest))
    async def build_index(self, request: Request) -> Response:
        return await self._handle("index_build", request, self._build_route)

    async def _build_route(self, request: Request, rid: str) -> tuple[Any, dict[str, str]]:
        limit = self.settings.max_index_body_bytes
        raw = await read_body(request, limit)
        # A knowledge base's entries can be tens of MB of JSON: decode and validate them off the event loop,
        # which meanwhile keeps serving /v1/nlu for the widget.
        req = await asyncio.to_thread(parse_body, raw, IndexBuildRequest, max_bytes=limit)
        return await self._build(req), {}

    async def _build(self, req: IndexBuildRequest) -> Any:
        return await self._build_rows(flatten_entries(req.entries), req.version, req.activate)

    async def _build_rows(
        self,
        rows: list[IndexedQuestion],
        version: str | None,
        activate: bool,
        *,
        derived_from: str | None = None,
        embedder: str | None = None,
    ) -> IndexInfo:
        """Embed the rows' texts in chunks, then have the retriever build (and optionally activate) `version`.
        Every chunk must come from one embedder version (`embedder`, when given): a bundle swapped mid-build
        would mix two vector spaces in one index."""
        texts = [r.text for r in rows]
        chunks = [texts[i : i + MAX_TEXTS] for i in range(0, len(texts), MAX_TEXTS)]
        gate = asyncio.Semaphore(8)

        async def embed(chunk: list[str]) -> ModelReply:
            async with gate:
                reply: ModelReply = await self._call("embedder", "infer", chunk)
                return reply

        replies = await asyncio.gather(*(embed(c) for c in chunks))
        versions = {r.version for r in replies}
        if len(versions) != 1 or (embedder is not None and versions != {embedder}):
            raise ServingError(
                ErrorCode.MODEL_UNAVAILABLE, "embedder version changed during the build; retry"
            )
        embedder_version = versions.pop()
        vectors = np.concatenate([r.outputs for r in replies]).astype(np.float32)
        normalized = [t for r in replies for t in r.texts]
        try:
            version = check_index_version(version) if version else default_version(rows, embedder_version)
        except IndexStoreError as exc:
            raise ServingError(ErrorCode.INDEX_VERSION_INVALID) from exc
        info: IndexInfo = await asyncio.wait_for(
            self.retriever.call(
                "build", rows, vectors, normalized, version, embedder_version, activate, derived_from
            ),
            max(self._timeout, INDEX_JOB_TIMEOUT_S),
        )
        return info

    @app.post("/v1/indexes/{version}/activate")
    async def activate_index(self, version: str, request: Request) -> Response:
        async def run(_: Request, rid: str) -> tuple[Any, dict[str, str]]:
            try:
                check_index_version(version)
            except IndexStoreError as exc:
                raise ServingError(ErrorCode.INDEX_VERSION_INVALID) from exc
            emb = await self._call("embedder", "status")  # refuse an index built by another embedder (409)
            return await self._call("retriever", "activate", version, emb.version), {}

        return await self._handle("index_activate", request, run)

    @app.get("/v1/indexes")
    async def list_indexes(self, request: Request) -> Response:
        async def run(_: Request, rid: str) -> tuple[Any, dict[str, str]]:
            return await self._call("retriever", "list"), {}

        return await self._handle("index_list", request, run)

    # -- health / metrics ----------------------------------------------------------------------------------
    @app.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(self, request: Request) -> Response:
        async def run(_: Request, rid: str) -> tuple[Any, dict[str, str]]:
            self._start_bootstrap()
            statuses = await asyncio.gather(*(self._call(k, "status") for k in MODEL_KINDS))
            retr = await self._call("retriever", "status")
            for st in statuses:
                self._observe_status(st)
            if any(s.version is None for s in statuses) or self._bootstrap_state == "pending":
                raise ServingError(ErrorCode.NOT_READY, f"bootstrap={self._bootstrap_state}")
            return {
                "status": "ready",
                "models": {
                    s.kind: {
                        "version": s.version,
                        "variant": s.variant,
                        "provider": s.provider,
                        "shadow_version": s.shadow_version,
                        "load_error": s.load_error,  # a requested bundle was refused; `version` keeps serving
                    }
                    for s in statuses
                },  # fmt: skip
                "index_version": retr["index_version"],
                "bootstrap": self._bootstrap_state,
                "index_reembed": self._reembed_state,
            }, {}

        return await self._handle("readyz", request, run)

    @app.get("/metrics")
    async def metrics_route(self) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)


__all__ = ["NluIngress", "app", "load_faq_jsonl", "map_exception"]
