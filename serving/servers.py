"""Model and retriever servers: plain classes that become Ray Serve deployments (serving.app) or run inside the
ingress replica (fused topology). They need a running asyncio loop for their methods, nothing else from Ray
except `serve.batch`.

* `ModelServer`: one ORT runtime (intent, sentiment or embedder) behind `serve.batch`. A call carries one
  request's texts (up to 64); the batch queue counts texts (`batch_size_fn`), so one model run covers several
  requests. Bundle version, shadow bundle and batching knobs come from `reconfigure(user_config)`: a new
  version loads in a worker thread while the old one keeps serving, then the reference swaps (requests already
  batched finish on the old runtime).
* `RetrieverServer`: the active `FaqIndex`; builds, persists and activates versions; polls the store's ACTIVE
  pointer so activation (and rollback) reaches every replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray import serve

from bundle.contracts import Candidate, IndexInfo, IndexList
from bundle.manifest import BundleKind
from bundle.store import BundleError, ModelStore
from serving.errors import ErrorCode, ServingError
from serving.providers import select_faiss
from serving.retrieval import FaqIndex, IndexedQuestion, IndexStore, IndexStoreError, JiebaSegmenter
from serving.runtime import ClassifierRuntime, EmbedderRuntime, OnnxModel, RunStats, load_runtime
from serving.settings import ModelUserConfig, ResolvedSettings

log = logging.getLogger("serving")

EMBED_SHADOW_MIN_COSINE = 0.95  # an embedder shadow "disagrees" below this cosine with the live embedding
# shadow runs in flight per model; beyond this batches are not sampled, so a shadow slower than the traffic
# never piles work into the thread pool that the live batches share
MAX_SHADOW_INFLIGHT = 2


@dataclass
class _Job:
    texts: list[str]
    enqueued: float


def _job_rows(jobs: list[_Job]) -> int:
    return sum(len(j.texts) for j in jobs)


@dataclass
class ModelReply:
    """One request's slice of a batched model run, with the batch's timing for metrics."""

    kind: str
    version: str
    texts: list[str]  # normalized with this bundle's normalize config
    outputs: np.ndarray  # classifier: probabilities (n, labels); embedder: unit vectors (n, d)
    labels: list[str] = field(default_factory=list)
    label_thresholds: dict[str, float] = field(default_factory=dict)
    default_threshold: float = 0.5
    answer_threshold: float | None = None
    suggest_threshold: float | None = None
    answer_margin: float | None = None
    answer_agree: float | None = None
    batch_rows: int = 0
    queue_s: float = 0.0
    infer_s: float = 0.0
    padding_ratio: float = 1.0
    shadow_compared: int = 0
    shadow_disagreed: int = 0


@dataclass
class ModelStatus:
    kind: str
    version: str | None
    variant: str | None
    provider: str | None
    shadow_version: str | None
    max_batch_size: int
    batch_wait_timeout_s: float
    # why the bundle (or shadow bundle) that user_config asks for was refused; the replica keeps serving `version`
    load_error: str | None = None


class ModelServer:
    def __init__(
        self, kind: str, settings: ResolvedSettings, available_providers: Sequence[str] | None = None
    ):
        self.kind = BundleKind(kind)
        self.settings = settings
        self._store = ModelStore(settings.model_store)
        self._providers = available_providers
        self._cfg = ModelUserConfig()
        self._runtime: OnnxModel | None = None
        self._shadow: OnnxModel | None = None
        self._load_lock = threading.Lock()
        self._shadow_tasks: set[asyncio.Future[Any]] = set()
        self._shadow_counts = [0, 0]  # compared, disagreed since the last reply
        self._load_error: str | None = None  # primary bundle refused (None: the requested one is serving)
        self._shadow_error: str | None = None
        self._batched = serve.batch(
            max_batch_size=self._cfg.max_batch_size,
            batch_wait_timeout_s=self._cfg.batch_wait_timeout_s,
            batch_size_fn=_job_rows,
        )(self._run_jobs)
        # Load the LIVE bundle now; reconfigure() switches when user_config names another version. A LIVE bundle
        # that cannot be loaded is not fatal yet: Serve calls reconfigure() right after the constructor, and the
        # version user_config pins may load. Until some bundle is loaded the replica is not healthy
        # (check_health raises) and not ready (/readyz 503).
        try:
            self._runtime = self._load(None)
        except ServingError as exc:
            self._load_error = exc.detail

    # -- lifecycle -----------------------------------------------------------------------------------------
    def _load(self, version: str | None) -> OnnxModel:
        try:
            path = self._store.resolve(self.kind, version)
            return load_runtime(
                self.kind,
                path,
                device=self.settings.device,
                intra_op_threads=self.settings.intra_op_threads,
                bucket_size=self.settings.bucket_size,
                available_providers=self._providers,
            )
        except BundleError as exc:
            log.error("cannot load %s bundle %s: %s", self.kind.value, version or "LIVE", exc.code)
            raise ServingError(
                ErrorCode.MODEL_UNAVAILABLE, f"{self.kind.value} {version or 'LIVE'}: {exc.code}"
            ) from exc
        except Exception as exc:  # verified files that still do not load: ONNX, tokenizer, another kind, ...
            log.error("cannot load %s bundle %s: %s", self.kind.value, version or "LIVE", type(exc).__name__)
            raise ServingError(
                ErrorCode.MODEL_UNAVAILABLE, f"{self.kind.value} {version or 'LIVE'}: {type(exc).__name__}"
            ) from exc

    def _wanted(self, version: str | None) -> str:
        try:
            return self._store.resolve(self.kind, version).name
        except BundleError as exc:
            raise ServingError(
                ErrorCode.MODEL_UNAVAILABLE, f"{self.kind.value} {version or 'LIVE'}: {exc.code}"
            ) from exc

    async def reconfigure(self, user_config: dict[str, Any] | ModelUserConfig) -> None:
        """Apply user_config in place. A bundle (or shadow bundle) that cannot be loaded - missing, tampered,
        broken - is refused: the replica keeps serving the bundle it has, logs the refusal and reports it in
        `status().load_error`. (Raising here would make Serve stop this replica: an in-place update that fails
        kills the replica that was serving fine.) Only a replica with no bundle at all raises."""
        cfg = ModelUserConfig.model_validate(user_config)
        self._batched.set_max_batch_size(cfg.max_batch_size)  # type: ignore[attr-defined]
        self._batched.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)  # type: ignore[attr-defined]
        primary = cfg.bundle_version if cfg.bundle_version not in ("", "live") else None
        try:
            target = await asyncio.to_thread(self._wanted, primary)
            if self._runtime is None or self._runtime.version != target:
                new = await asyncio.to_thread(self._load, target)
                old, self._runtime = self._runtime, new  # atomic swap; running batches hold `old`
                log.info("%s bundle %s -> %s", self.kind.value, old.version if old else None, new.version)
            self._load_error = None
        except ServingError as exc:
            self._load_error = exc.detail
            if self._runtime is None:
                raise  # nothing to keep serving
            log.error(
                "%s bundle %s refused (%s); still serving %s",
                self.kind.value,
                primary or "LIVE",
                exc.detail,
                self._runtime.version,
            )
        if cfg.shadow_version and (self._shadow is None or self._shadow.version != cfg.shadow_version):
            try:
                self._shadow = await asyncio.to_thread(self._load, cfg.shadow_version)
                self._shadow_error = None
            except ServingError as exc:
                self._shadow, self._shadow_error = None, exc.detail  # no shadow beats a wrong one
                log.error("%s shadow bundle refused (%s); no shadow scoring", self.kind.value, exc.detail)
        elif not cfg.shadow_version:
            self._shadow, self._shadow_error = None, None
        self._cfg = cfg

    def status(self) -> ModelStatus:
        rt = self._runtime
        return ModelStatus(
            kind=self.kind.value,
            version=rt.version if rt else None,
            variant=rt.plan.variant.value if rt else None,
            provider=rt.plan.provider if rt else None,
            shadow_version=self._shadow.version if self._shadow else None,
            max_batch_size=self._cfg.max_batch_size,
            batch_wait_timeout_s=self._cfg.batch_wait_timeout_s,
            load_error="; ".join(e for e in (self._load_error, self._shadow_error) if e) or None,
        )

    async def check_health(self) -> None:
        if self._runtime is None:
            raise RuntimeError(f"{self.kind.value} model not loaded ({self._load_error})")

    # -- inference -----------------------------------------------------------------------------------------
    async def infer(self, texts: list[str]) -> ModelReply:
        if not texts:
            raise ServingError(ErrorCode.TEXTS_EMPTY)
        reply: ModelReply = await self._batched(_Job(list(texts), time.perf_counter()))
        return reply

    async def _run_jobs(self, jobs: list[_Job]) -> list[ModelReply]:
        runtime = self._runtime
        if runtime is None:
            raise ServingError(ErrorCode.MODEL_UNAVAILABLE, "no runtime")
        started = time.perf_counter()
        texts = [t for j in jobs for t in j.texts]
        normalized, outputs, stats = await asyncio.to_thread(self._forward, runtime, texts)
        self._maybe_shadow(runtime, normalized, outputs)
        compared, disagreed = self._shadow_counts
        self._shadow_counts = [0, 0]
        m = runtime.manifest
        replies: list[ModelReply] = []
        offset = 0
        for j in jobs:
            n = len(j.texts)
            replies.append(
                ModelReply(
                    kind=self.kind.value,
                    version=runtime.version,
                    texts=normalized[offset : offset + n],
                    outputs=outputs[offset : offset + n],
                    labels=list(m.labels),
                    label_thresholds=dict(m.thresholds.per_label),
                    default_threshold=m.thresholds.default,
                    answer_threshold=m.thresholds.answer,
                    suggest_threshold=m.thresholds.suggest,
                    answer_margin=m.thresholds.answer_margin,
                    answer_agree=m.thresholds.answer_agree,
                    batch_rows=len(texts),
                    queue_s=max(0.0, started - j.enqueued),
                    infer_s=stats.tokenize_s + stats.infer_s,
                    padding_ratio=stats.padded_tokens / max(1, stats.real_tokens),
                    # shadow results arrive asynchronously: report them once, on the first reply
                    shadow_compared=compared if not replies else 0,
                    shadow_disagreed=disagreed if not replies else 0,
                )
            )
            offset += n
        return replies

    @staticmethod
    def _forward(runtime: OnnxModel, texts: list[str]) -> tuple[list[str], np.ndarray, RunStats]:
        normalized = runtime.normalize(texts)
        if isinstance(runtime, EmbedderRuntime):
            out, stats = runtime.embed(normalized)
        else:
            assert isinstance(runtime, ClassifierRuntime)
            out, stats = runtime.predict(normalized)
        return normalized, out, stats

    def _maybe_shadow(self, live: OnnxModel, normalized: list[str], outputs: np.ndarray) -> None:
        shadow = self._shadow
        rate = self._cfg.shadow_sample_rate
        if shadow is None or rate <= 0 or not normalized or len(self._shadow_tasks) >= MAX_SHADOW_INFLIGHT:
            return
        picked = [i for i in range(len(normalized)) if random.random() < rate]
        if not picked:
            return
        texts = [normalized[i] for i in picked]
        live_out = outputs[picked]

        async def run() -> None:
            try:
                _, shadow_out, _ = await asyncio.to_thread(self._forward, shadow, texts)
                if isinstance(shadow, EmbedderRuntime):
                    sims = np.sum(shadow_out * live_out, axis=1)
                    differ = [i for i, s in enumerate(sims) if s < EMBED_SHADOW_MIN_COSINE]
                    what = [f"cosine={float(s):.3f}" for s in sims]
                else:
                    live_lab = [live.manifest.labels[k] for k in live_out.argmax(axis=1)]
                    shadow_lab = [shadow.manifest.labels[k] for k in shadow_out.argmax(axis=1)]
                    differ = [i for i in range(len(texts)) if live_lab[i] != shadow_lab[i]]
                    what = [
                        f"live_label={a} shadow_label={b}" for a, b in zip(live_lab, shadow_lab, strict=True)
                    ]
            except Exception as exc:  # e.g. a shadow embedder of another dimension: log, never fail traffic
                log.warning("shadow %s %s failed: %s", self.kind.value, shadow.version, type(exc).__name__)
                return
            self._shadow_counts[0] += len(texts)
            self._shadow_counts[1] += len(differ)
            for i in differ[:20]:
                # visitor text (names, phone numbers, addresses) never goes to INFO logs: a digest to group
                # repeats and the length; the text itself only at DEBUG, for a deliberate investigation
                digest = hashlib.sha256(texts[i].encode("utf-8")).hexdigest()[:12]
                log.info(
                    "shadow_disagreement kind=%s live=%s shadow=%s %s text_sha256=%s text_len=%d",
                    self.kind.value,
                    live.version,
                    shadow.version,
                    what[i],
                    digest,
                    len(texts[i]),
                )
                log.debug("shadow_disagreement text_sha256=%s text=%r", digest, texts[i][:64])

        task = asyncio.ensure_future(run())
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)


# ---------------------------------------------------------------------------------------------------------------
@dataclass
class SearchReply:
    candidates: list[list[Candidate]]
    index_version: str | None
    search_s: float
    embedder_mismatch: bool = False


class RetrieverServer:
    def __init__(self, settings: ResolvedSettings, num_gpus: int | None = None) -> None:
        self.settings = settings
        self.store = IndexStore(settings.index_root)
        self.segmenter = JiebaSegmenter(settings.jieba_cache_dir)
        self.faiss_plan = select_faiss(settings.device, num_gpus)
        self._index: FaqIndex | None = None
        self._build_lock = asyncio.Lock()
        self._sync_lock = asyncio.Lock()  # one load-and-swap at a time (poller, activate): the last word wins
        self._swap_lock = threading.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._mismatch_warned: set[tuple[str, str]] = set()  # (index version, query embedder) already logged
        # (version, identity of its directory) that failed to load: the poller does not reload it every
        # index_poll_s (a whole index load + warm-up each time, on every replica) until it changes on disk
        self._failed: tuple[str, Any] | None = None
        active = self.store.active()
        if active is not None:
            try:
                self._index = self._load(active)
            except IndexStoreError as exc:
                log.error("active index %s cannot be loaded (%s); serving without an index", active, exc.code)

    def _load(self, version: str) -> FaqIndex:
        """Load, place and warm up a version; any failure is an IndexStoreError (never a half-usable index)."""
        index = self.store.load(version, segmenter=self.segmenter)
        try:
            if self.faiss_plan.on_gpu:
                from serving.providers import place_faiss_index

                index.dense.index = place_faiss_index(index.dense.index, self.faiss_plan)
            # warm up (jieba dictionary, FAISS / BLAS thread pools) before the index takes traffic
            index.search([index.rows[0].text], np.asarray(index.vectors[:1]), 1)
        except Exception as exc:
            raise IndexStoreError("INDEX_CORRUPT", f"index {version} fails its warm-up search") from exc
        log.info("index %s loaded (%d questions, %s)", version, index.info.size, index.info.index_type)
        return index

    @property
    def active_version(self) -> str | None:
        return self._index.version if self._index else None

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.index_poll_s)
            with contextlib.suppress(Exception):  # a transient store error must not kill the poller
                await self.sync()

    def _identity(self, version: str) -> Any:
        """What changes when a version directory is replaced or one of its files rewritten (a few stat calls)."""
        try:
            d = self.store.path(version)
            st = d.stat()
            files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in d.iterdir())
        except (OSError, IndexStoreError):
            return None
        return st.st_ino, st.st_mtime_ns, tuple(files)

    async def sync(self) -> str | None:
        """Load the version named by the ACTIVE pointer if it is not the one being served."""
        async with self._sync_lock:
            wanted = await asyncio.to_thread(self.store.active)
            if wanted is None or wanted == self.active_version:
                return self.active_version
            identity = await asyncio.to_thread(self._identity, wanted)
            if self._failed == (wanted, identity):
                return self.active_version  # already failed as it is on disk; logged then
            try:
                new = await asyncio.to_thread(self._load, wanted)
            except IndexStoreError as exc:
                self._failed = (wanted, identity)
                log.error(
                    "cannot load index %s: %s; keeping %s (retried when that version changes on disk)",
                    wanted,
                    exc.code,
                    self.active_version,
                )
                return self.active_version
            self._failed = None
            self._swap(new)
            return wanted

    def _swap(self, new: FaqIndex) -> None:
        with self._swap_lock:
            self._index = new  # atomic reference swap; searches in flight keep the old index object
        log.info("index %s is now active in this replica", new.version)

    async def check_health(self) -> None:
        self._ensure_poller()

    async def status(self) -> dict[str, Any]:
        self._ensure_poller()
        return {"index_version": self.active_version, "building": self._build_lock.locked()}

    async def search(
        self, texts: list[str], vectors: np.ndarray, top_k: int, embedder_version: str
    ) -> SearchReply:
        self._ensure_poller()
        index = self._index
        t0 = time.perf_counter()
        if index is None:
            return SearchReply([[] for _ in texts], None, 0.0)
        mismatch = index.info.embedder_version != embedder_version
        q = np.asarray(vectors, dtype=np.float32)
        if mismatch:
            # The index's vectors come from another embedder: cosines between two vector spaces mean nothing
            # (whatever the dimension), and fused on them they would pass the answer threshold for unrelated
            # FAQs. Keyword evidence only (dense 0) until an index is built with this embedder.
            q = np.zeros((len(texts), index.vectors.shape[1]), dtype=np.float32)
            if (index.version, embedder_version) not in self._mismatch_warned:
                self._mismatch_warned.add((index.version, embedder_version))
                log.warning(
                    "index %s was built by embedder %s, queries come from %s: dense retrieval off "
                    "(keyword only) until the FAQ index is rebuilt",
                    index.version,
                    index.info.embedder_version,
                    embedder_version,
                )
        cands = await asyncio.to_thread(index.search, texts, q, top_k)
        if mismatch:  # the zero query's FAISS hits carry no evidence at all: not candidates
            cands = [[c for c in row if c.fused_score > 0] for row in cands]
        return SearchReply(cands, index.version, time.perf_counter() - t0, mismatch)

    async def build(
        self,
        rows: list[IndexedQuestion],
        vectors: np.ndarray,
        normalized: list[str],
        version: str,
        embedder_version: str,
        activate: bool,
        derived_from: str | None = None,
    ) -> IndexInfo:
        self._ensure_poller()
        if self._build_lock.locked():
            raise ServingError(ErrorCode.INDEX_BUILD_IN_PROGRESS)
        async with self._build_lock:
            try:
                if await asyncio.to_thread(self.store.exists, version):
                    raise ServingError(ErrorCode.INDEX_EXISTS, version)
                index = await asyncio.to_thread(
                    FaqIndex.build,
                    rows,
                    vectors,
                    normalized,
                    version=version,
                    embedder_version=embedder_version,
                    segmenter=self.segmenter,
                    derived_from=derived_from,
                )
                await asyncio.to_thread(self.store.save, index)
            except IndexStoreError as exc:
                raise ServingError(ErrorCode(exc.code), exc.message) from exc
            log.info("index %s built: %s", version, index.info.model_dump_json())
        if activate:
            return await self.activate(version)
        return index.info

    async def activate(
        self, version: str, embedder_version: str | None = None, if_active: str | None = None
    ) -> IndexInfo:
        """Activate (or roll back to) `version`. With `embedder_version` (the embedder serving queries now), a
        version built by another embedder is refused (INDEX_EMBEDDER_MISMATCH): its dense scores would be
        meaningless for these queries. With `if_active`: only while ACTIVE still names that version (else
        INDEX_ACTIVE_MOVED; the ingress's re-embedding never overwrites a publish that landed meanwhile)."""
        async with self._sync_lock:
            try:
                if embedder_version is not None:
                    built_by = (await asyncio.to_thread(self.store.info, version)).embedder_version
                    if built_by != embedder_version:
                        raise ServingError(
                            ErrorCode.INDEX_EMBEDDER_MISMATCH,
                            f"index {version} built by {built_by}, serving embedder {embedder_version}",
                        )
                # load before the pointer moves: a version this replica cannot serve is never activated
                new = None if version == self.active_version else await asyncio.to_thread(self._load, version)
                await asyncio.to_thread(self.store.activate, version, if_active=if_active)
            except IndexStoreError as exc:
                raise ServingError(ErrorCode(exc.code), exc.message) from exc
            if new is not None:
                self._swap(new)
        return await self.info(version)

    async def info(self, version: str) -> IndexInfo:
        for i in await asyncio.to_thread(self.store.versions):
            if i.version == version:
                return i
        raise ServingError(ErrorCode.INDEX_NOT_FOUND, version)

    async def list(self) -> IndexList:
        versions = await asyncio.to_thread(self.store.versions)
        return IndexList(active=await asyncio.to_thread(self.store.active), versions=versions)
