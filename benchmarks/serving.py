"""Serving benchmark: `python -m benchmarks.serving --out benchmarks/results/serving.json` (`make bench-serving`).

Same run, same bundles, loopback only (the whole run re-executes itself inside a private network namespace).
For 1 / 16 / 64 concurrent callers, each caller submits ONE text and waits for its NLU result (intent +
sentiment + FAQ candidates), for a fixed duration per cell:

  (a) naive   - FastAPI + PyTorch (transformers) per request, one text per request  [needs the checkpoints]
  (b) ort     - FastAPI + ONNX Runtime per request, no batching, same NLU work
  (c) serve   - our Ray Serve /v1/nlu, fed the way the API feeds it: concurrent turns micro-batched
                (up to 64 texts, 5 ms window, at most 4 batches in flight)
  (d) limit   - the same NLU work in-process with ideal batches (batch = number of callers)

plus single-query dense retrieval for 10k / 100k / 1M vectors with the index type chosen by size (build time,
recall@10 vs exact on held-out perturbed queries, p50 / p99 with one FAISS thread, as a replica runs it).

Models: the LIVE bundles of --store (default $XIAOKE_DATA_DIR/models) when all three kinds exist; otherwise
"bench-size" bundles (4 layers, hidden 256, random-ish weights: realistic compute, meaningless quality) are built
through the real export path into a temporary store. Baseline (a) loads each bundle's `source_checkpoint`.
The load generator shares the 2 cores with the servers (same for every system): treat absolute numbers as
rough and ratios as indicative.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]
FAQ = REPO / "data" / "demo" / "faq" / "faq.jsonl"
KINDS = ("intent", "sentiment", "embedder")
NETNS_ENV = "XIAOKE_BENCH_NETNS"


# ---------------------------------------------------------------------------------------------------------------
# statistics
def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


@dataclass
class Cell:
    sentences: int
    requests: int
    elapsed: float
    latencies: list[float]

    def summary(self) -> dict[str, float]:
        return {
            "sentences_per_s": round(self.sentences / self.elapsed, 1),
            "requests_per_s": round(self.requests / self.elapsed, 1),
            "p50_ms": round(1000 * _pct(self.latencies, 50), 2),
            "p99_ms": round(1000 * _pct(self.latencies, 99), 2),
            "sentences": self.sentences,
        }


async def closed_loop(
    send: Callable[[str], Awaitable[int]], texts: Sequence[str], callers: int, duration: float, warmup: float
) -> Cell:
    """`callers` coroutines each send one text, wait, repeat. `send` returns the HTTP requests it caused."""
    lat: list[float] = []
    counts = [0, 0]
    t_start = time.perf_counter()
    t_measure = t_start + warmup
    t_stop = t_measure + duration

    async def caller(i: int) -> None:
        k = i
        while True:
            t0 = time.perf_counter()
            if t0 >= t_stop:
                return
            reqs = await send(texts[k % len(texts)])
            t1 = time.perf_counter()
            if t0 >= t_measure:
                lat.append(t1 - t0)
                counts[0] += 1
                counts[1] += reqs
            k += callers

    await asyncio.gather(*(caller(i) for i in range(callers)))
    return Cell(counts[0], counts[1], max(1e-9, time.perf_counter() - t_measure), lat)


class MicroBatcher:
    """What the API's inference client does: concurrent turns share one /v1/nlu request."""

    def __init__(
        self, client: Any, max_batch: int = 64, window_s: float = 0.005, max_inflight: int = 4
    ) -> None:
        self.client = client
        self.max_batch = max_batch
        self.window_s = window_s
        self.gate = asyncio.Semaphore(max_inflight)
        self.queue: list[tuple[str, asyncio.Future[Any]]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.requests = 0

    async def submit(self, text: str) -> int:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queue.append((text, fut))
        if len(self.queue) >= self.max_batch:
            self._flush_now()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.window_s, self._flush_now)
        await fut
        return 0  # requests are counted by the batcher

    def _flush_now(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        while self.queue:
            batch, self.queue = self.queue[: self.max_batch], self.queue[self.max_batch :]
            asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[tuple[str, asyncio.Future[Any]]]) -> None:
        async with self.gate:
            try:
                r = await self.client.post("/v1/nlu", json={"texts": [t for t, _ in batch], "top_k": 5})
                r.raise_for_status()
                results = r.json()["results"]
                self.requests += 1
                for (_, fut), res in zip(batch, results, strict=True):
                    fut.set_result(res)
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)


# ---------------------------------------------------------------------------------------------------------------
# the NLU work, in-process (ORT) and with PyTorch
class OrtNlu:
    """intent + sentiment + embedder + fused FAQ search on a list of texts (serving.runtime / serving.retrieval)."""

    def __init__(self, store: Path, threads: int, bucket: int = 64) -> None:
        from bundle.manifest import BundleKind
        from bundle.store import ModelStore
        from serving.providers import Device
        from serving.retrieval import IndexStore, JiebaSegmenter
        from serving.runtime import ClassifierRuntime, EmbedderRuntime

        ms = ModelStore(store)
        kw: dict[str, Any] = {"device": Device.CPU, "intra_op_threads": threads, "bucket_size": bucket}
        self.intent = ClassifierRuntime(ms.resolve(BundleKind.INTENT), **kw)
        self.sentiment = ClassifierRuntime(ms.resolve(BundleKind.SENTIMENT), **kw)
        self.embedder = EmbedderRuntime(ms.resolve(BundleKind.EMBEDDER), **kw)
        istore = IndexStore(store / "indexes")
        active = istore.active()
        self.index = istore.load(active, segmenter=JiebaSegmenter()) if active else None

    def run(self, texts: list[str], pool: ThreadPoolExecutor | None = None) -> list[dict[str, Any]]:
        """With `pool`, the three models run concurrently (ORT releases the GIL), as the fused ingress does."""

        def intent() -> Any:
            return self.intent.predict(self.intent.normalize(texts))[0]

        def sentiment() -> Any:
            return self.sentiment.predict(self.sentiment.normalize(texts))[0]

        def embed() -> Any:
            enorm = self.embedder.normalize(texts)
            vec, _ = self.embedder.embed(enorm)
            return self.index.search(enorm, vec, 5) if self.index else [[] for _ in texts]

        if pool is None:
            p_int, p_sen, cands = intent(), sentiment(), embed()
        else:
            futures = [pool.submit(f) for f in (intent, sentiment, embed)]
            p_int, p_sen, cands = (f.result() for f in futures)
        return [
            {"intent": self.intent.manifest.labels[int(p_int[i].argmax())],
             "sentiment": self.sentiment.manifest.labels[int(p_sen[i].argmax())],
             "candidates": [c.faq_id for c in cands[i]]}
            for i in range(len(texts))
        ]  # fmt: skip


class TorchNlu:
    """The naive baseline: the training checkpoints in PyTorch, one text at a time, default threads."""

    def __init__(self, store: Path, checkpoints: dict[str, str]) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from bundle.manifest import BundleKind
        from bundle.normalize import normalize
        from bundle.store import ModelStore, read_manifest
        from serving.retrieval import IndexStore, JiebaSegmenter
        from training.ngram_model import load_classifier_model

        self.torch = torch
        self.normalize = normalize
        ms = ModelStore(store)
        self.manifests = {k: read_manifest(ms.resolve(BundleKind(k))) for k in KINDS}
        self.tok = {k: AutoTokenizer.from_pretrained(checkpoints[k], local_files_only=True) for k in KINDS}
        # our classifiers may carry the in-graph n-gram branch (model type xiaoke_bert_ngram)
        self.cls = {k: load_classifier_model(checkpoints[k]).eval() for k in ("intent", "sentiment")}
        self.emb = AutoModel.from_pretrained(checkpoints["embedder"], local_files_only=True).eval()
        istore = IndexStore(store / "indexes")
        active = istore.active()
        self.index = istore.load(active, segmenter=JiebaSegmenter()) if active else None

    def run(self, text: str) -> dict[str, Any]:
        torch = self.torch
        out: dict[str, Any] = {}
        with torch.inference_mode():
            for k in ("intent", "sentiment"):
                m = self.manifests[k]
                enc = self.tok[k](self.normalize(text, m.normalize), truncation=True, max_length=m.max_seq_len,
                                  return_tensors="pt")  # fmt: skip
                out[k] = m.labels[int(self.cls[k](**enc).logits[0].argmax())]
            m = self.manifests["embedder"]
            t = self.normalize(text, m.normalize)
            enc = self.tok["embedder"](t, truncation=True, max_length=m.max_seq_len, return_tensors="pt")
            hidden = self.emb(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            vec = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
        cands = self.index.search([t], vec, 5)[0] if self.index else []
        out["candidates"] = [c.faq_id for c in cands]
        return out


class OneText(BaseModel):
    text: str


def baseline_app(kind: str, store: Path, checkpoints: dict[str, str]) -> Any:
    """FastAPI app for baselines (a) torch and (b) ort: POST /nlu {"text": ...}, one text per request, sync
    handler in FastAPI's threadpool - what a first implementation looks like."""
    from fastapi import FastAPI

    app = FastAPI()
    engine: Any = TorchNlu(store, checkpoints) if kind == "torch" else OrtNlu(store, threads=0, bucket=1)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/nlu")
    def nlu(body: OneText) -> dict[str, Any]:
        result: dict[str, Any] = engine.run(body.text) if kind == "torch" else engine.run([body.text])[0]
        return result

    return app


# ---------------------------------------------------------------------------------------------------------------
# models and workload
def _live_store(store: Path) -> bool:
    return all((store / k / "LIVE").is_file() for k in KINDS)


def _checkpoints(store: Path) -> dict[str, str]:
    from bundle.manifest import BundleKind
    from bundle.store import ModelStore, read_manifest

    ms = ModelStore(store)
    out = {}
    for k in KINDS:
        src = read_manifest(ms.resolve(BundleKind(k))).source_checkpoint
        if src and (Path(src) / "config.json").is_file():
            out[k] = src
    return out


def build_bench_bundles(dest: Path) -> Path:
    """Bench-size bundles (4 x 256, intermediate 1024) via the test fixture's trainer + the real export path;
    checkpoints are kept next to the store so baseline (a) can load them."""
    import tests.fixtures.bundles as fx
    from bundle.store import ModelStore
    from export.pipeline import export_bundle

    def bert_config(vocab_size: int, **extra: Any) -> Any:
        from transformers import BertConfig

        return BertConfig(vocab_size=vocab_size, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                          intermediate_size=1024, max_position_embeddings=64, **extra)  # fmt: skip

    fx._bert_config = bert_config  # type: ignore[attr-defined]
    fx.MAX_LEN, fx.STEPS = 64, 2
    store = ModelStore(dest / "models")
    ck = dest / "checkpoints"
    labels = fx.intent_labels()
    ckpts = [
        fx.train_tiny_classifier("intent", labels, fx._labelled(fx.DEMO / "intents" / "train.jsonl", labels), ck / "intent"),
        fx.train_tiny_classifier("sentiment", fx.SENTIMENTS,
                                 fx._labelled(fx.DEMO / "sentiment" / "train.jsonl", fx.SENTIMENTS), ck / "sentiment"),
        fx.train_tiny_embedder(fx._pairs(), ck / "embedder"),
    ]  # fmt: skip
    for c in ckpts:
        export_bundle(c, dest / "bundles" / c.name, version="bench-1")
        store.publish(dest / "bundles" / c.name, set_live=True)
    return store.root


def workload_texts(limit: int = 2000) -> list[str]:
    texts: list[str] = []
    for path in (REPO / "data" / "demo" / "intents" / "train.jsonl", FAQ):
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    texts.extend([row.get("text") or row.get("question"), *(row.get("similar") or [])])
    texts = [t for t in texts if t][:limit]
    if not texts:
        texts = ["我要退货", "快递几天能到", "发票怎么开", "你好", "订单一直没发货怎么回事"]
    rng = np.random.default_rng(0)
    rng.shuffle(texts)  # type: ignore[arg-type]
    return texts


def build_faq_index(store: Path) -> str | None:
    from bundle.contracts import KbEntry
    from serving.ingress import load_faq_jsonl
    from serving.retrieval import FaqIndex, IndexStore, default_version, flatten_entries

    if not FAQ.is_file():
        return None
    entries: list[KbEntry] = load_faq_jsonl(FAQ)
    nlu = OrtNlu(store, threads=1)
    rows = flatten_entries(entries)
    norm = nlu.embedder.normalize([r.text for r in rows])
    vec, _ = nlu.embedder.embed(norm)
    version = default_version(rows, nlu.embedder.version)
    idx = FaqIndex.build(rows, vec, norm, version=version, embedder_version=nlu.embedder.version)
    istore = IndexStore(store / "indexes")
    istore.save(idx)
    istore.activate(version)
    return version


# ---------------------------------------------------------------------------------------------------------------
# processes
@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as f:
        proc = subprocess.Popen(
            cmd, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)  # only the process group this benchmark started
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before {url} answered")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - t0
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout} s")


async def _http_cell(base: str, mode: str, texts: list[str], c: int, duration: float, warmup: float) -> Cell:
    import httpx

    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        if mode == "serve":
            batcher = MicroBatcher(client)
            cell = await closed_loop(batcher.submit, texts, c, duration, warmup)
            # the batcher counted warm-up requests too: keep the measured share
            cell.requests = round(batcher.requests * cell.elapsed / (cell.elapsed + warmup))
            return cell

        async def one(text: str) -> int:
            r = await client.post("/nlu", json={"text": text})
            r.raise_for_status()
            return 1

        return await closed_loop(one, texts, c, duration, warmup)


def http_system(
    base: str, mode: str, texts: list[str], duration: float, warmup: float
) -> Callable[[int], Cell]:
    return lambda c: asyncio.run(_http_cell(base, mode, texts, c, duration, warmup))


def inprocess_system(store: Path, texts: list[str], duration: float) -> Callable[[int], Cell]:
    """(d) Ideal batches (one batch = every caller's text), one ORT thread per session, the three models in
    parallel threads, length-sorted buckets of 32: the best one process does on these cores."""
    nlu = OrtNlu(store, threads=1, bucket=32)
    pool = ThreadPoolExecutor(3)

    def cell(c: int) -> Cell:
        nlu.run(texts[:c], pool)  # warm
        lat: list[float] = []
        n = k = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < duration:
            batch = [texts[(k + i) % len(texts)] for i in range(c)]
            k += c
            t1 = time.perf_counter()
            nlu.run(batch, pool)
            lat.extend([time.perf_counter() - t1] * c)
            n += c
        return Cell(n, n // c, time.perf_counter() - t0, lat)

    return cell


def measure_interleaved(
    systems: dict[str, Callable[[int], Cell]], conc: Sequence[int], rounds: int
) -> dict[str, Any]:
    """Every system at every concurrency, interleaved, `rounds` times; the machine is shared, so drift hits all
    systems alike. Per cell the round with the median sentences/s is reported (all rounds listed)."""
    samples: dict[str, dict[int, list[dict[str, float]]]] = {n: {c: [] for c in conc} for n in systems}
    for r in range(rounds):
        for c in conc:
            for name, fn in systems.items():
                load = os.getloadavg()[0]
                summary: dict[str, Any]
                try:
                    summary = dict(fn(c).summary())
                except Exception as exc:
                    summary = {"error": type(exc).__name__, "sentences_per_s": 0.0}
                summary["loadavg_1m"] = round(load, 2)
                samples[name][c].append(summary)
                print(f"  round {r + 1} {name:12s} c={c:<3d} {summary}", flush=True)
    out: dict[str, Any] = {}
    for name, per_c in samples.items():
        out[name] = {}
        for c, runs in per_c.items():
            # a round that failed (e.g. the baseline server reset connections under 64 callers) is reported as
            # such and left out of the (lower) median of the rounds that ran; all failed: the error stays
            ok = [s for s in runs if "error" not in s] or runs
            ordered = sorted(ok, key=lambda s: s["sentences_per_s"])
            out[name][f"c{c}"] = {**ordered[(len(ordered) - 1) // 2],
                                  "rounds_sentences_per_s": [s["sentences_per_s"] for s in runs],
                                  "failed_rounds": [s["error"] for s in runs if "error" in s]}  # fmt: skip
    return out


def _guarded(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one system; a failure is recorded (type only) instead of losing the whole run."""
    load_before = os.getloadavg()[0]
    try:
        out = fn()
    except Exception as exc:
        print(f"  failed: {type(exc).__name__}: {exc}", flush=True)
        out = {"error": type(exc).__name__}
    out["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # other work on the machine
    return out


def serve_config(dest: Path, topology: str) -> Path:
    import yaml

    cfg = yaml.safe_load((REPO / "serving" / "config" / "cpu.yaml").read_text(encoding="utf-8"))
    app = cfg["applications"][0]
    app["args"]["bootstrap"] = False
    if topology == "split":
        app["args"]["topology"] = "split"
        model_cfg = app["deployments"][0]["user_config"]["models"]
        app["deployments"] = [
            {"name": "NluIngress", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.2}},
            *({"name": n, "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.4}, "user_config": model_cfg[k]}
              for n, k in (("IntentClassifier", "intent"), ("SentimentClassifier", "sentiment"),
                           ("Embedder", "embedder"))),
            {"name": "Retriever", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.2}},
        ]  # fmt: skip
    path = dest / f"serve-{topology}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------------
# retrieval
def clustered_unit_vectors(n: int, d: int, seed: int) -> np.ndarray:
    from serving.retrieval import l2_normalize

    rng = np.random.default_rng(seed)
    n_centers = max(16, n // 100)
    centers = rng.standard_normal((n_centers, d), dtype=np.float32)
    out = np.empty((n, d), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        block = centers[rng.integers(0, n_centers, m)] + 0.6 * rng.standard_normal((m, d), dtype=np.float32)
        out[s : s + m] = l2_normalize(block)
    return out


def bench_retrieval(sizes: Sequence[int], dim: int, n_queries: int = 400) -> dict[str, Any]:
    import faiss

    from serving.retrieval import DenseBuildConfig, DenseIndex, l2_normalize, recall_at_k

    out: dict[str, Any] = {}
    for n in sizes:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        x = clustered_unit_vectors(n, dim, seed=n)
        t0 = time.perf_counter()
        index = DenseIndex.build(x, DenseBuildConfig())
        build_s = time.perf_counter() - t0
        rng = np.random.default_rng(n + 1)
        base = x[rng.choice(n, n_queries, replace=False)]
        noise = rng.standard_normal(base.shape, dtype=np.float32)
        noise *= 0.6 / np.linalg.norm(noise, axis=1, keepdims=True)
        queries = l2_normalize(base + noise)
        exact = faiss.IndexFlatIP(dim)
        exact.add(x)
        _, truth = exact.search(queries, 10)
        del exact
        faiss.omp_set_num_threads(1)  # as one replica runs it
        lat = []
        got = np.empty((n_queries, 10), dtype=np.int64)
        for i in range(n_queries):
            t1 = time.perf_counter()
            _, ids = index.search(queries[i : i + 1], 10)
            lat.append(time.perf_counter() - t1)
            got[i] = ids[0]
        out[str(n)] = {
            "index_type": index.meta.index_type.value,
            "search_params": index.meta.search_params,
            "build_s": round(build_s, 2),
            "build_check_recall_at_10": index.meta.recall_at_10,
            "recall_at_10": round(recall_at_k(got, truth, 10), 4),
            "p50_ms": round(1000 * _pct(lat, 50), 3),
            "p99_ms": round(1000 * _pct(lat, 99), 3),
            "dim": dim,
        }
        print(f"  retrieval n={n}: {out[str(n)]}", flush=True)
        del x, index
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return out


# ---------------------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "duration_s": args.duration,
            "concurrency": args.concurrency,
            "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
        }
    }
    conc = [int(c) for c in args.concurrency.split(",")]
    work = Path(tempfile.mkdtemp(prefix="xk-bench-serving-"))
    try:
        if not args.skip_nlu:
            src = (
                Path(args.store)
                if args.store
                else Path(os.environ.get("XIAOKE_DATA_DIR", REPO / "var")) / "models"
            )
            if _live_store(src):
                label = f"store {src}"
            else:
                print(f"no LIVE bundles in {src}: building bench-size bundles (4x256) ...", flush=True)
                src = build_bench_bundles(work / "bench")
                label = "bench-size bundles (4 layers, hidden 256; untrained weights)"
            data = work / "data"
            shutil.copytree(src, data / "models", ignore=shutil.ignore_patterns("indexes"))
            store = data / "models"
            results["meta"]["models"] = label
            results["meta"]["bundle_versions"] = {k: (store / k / "LIVE").read_text().strip() for k in KINDS}
            results["meta"]["index_version"] = build_faq_index(store)
            texts = workload_texts()
            checkpoints = _checkpoints(store)
            env = {
                **os.environ,
                "XIAOKE_DATA_DIR": str(data),
                "PYTHONPATH": str(REPO),
                "RAY_USAGE_STATS_ENABLED": "0",
            }
            systems: dict[str, Any] = {}
            limit = inprocess_system(store, texts, args.duration)
            procs = contextlib.ExitStack()
            with procs:
                phase1: dict[str, Callable[[int], Cell]] = {"limit": limit}
                for mode, name, port in (("ort", "ort", 8101), ("torch", "naive", 8102)):
                    if mode == "torch" and set(checkpoints) != set(KINDS):
                        systems[name] = {"skipped": "no PyTorch checkpoints for the bundles in this store"}
                        continue
                    cmd = [sys.executable, "-m", "benchmarks.serving", "--baseline", mode, "--store", str(store),
                           "--port", str(port)]  # fmt: skip
                    proc = procs.enter_context(process(cmd, env, work / f"baseline-{mode}.log"))
                    wait_http(f"http://127.0.0.1:{port}/health", proc, 180)
                    phase1[name] = http_system(
                        f"http://127.0.0.1:{port}", mode, texts, args.duration, args.warmup
                    )
                topologies = args.topologies.split(",")
                for i, topology in enumerate(topologies):
                    cfg = serve_config(work, topology)
                    senv = {
                        **env,
                        "SERVING_CONFIG": str(cfg),
                        "SERVING_RAY_TEMP_DIR": str(work / f"ray-{topology}"),
                    }
                    log_path = work / f"serve-{topology}.log"
                    with process(["bash", "scripts/serve.sh", "cpu"], senv, log_path) as proc:
                        ready_s = wait_http("http://127.0.0.1:8001/readyz", proc, 240)
                        name = f"serve_{topology}"
                        phase = dict(phase1) if i == 0 else {"limit": limit}
                        phase[name] = http_system(
                            "http://127.0.0.1:8001", "serve", texts, args.duration, args.warmup
                        )
                        print(f"phase {i + 1}: {', '.join(phase)}", flush=True)
                        measured = measure_interleaved(phase, conc, args.rounds)
                        measured[name]["ready_s"] = round(ready_s, 1)
                        rss = [
                            ln for ln in log_path.read_text(errors="replace").splitlines() if "MB RSS" in ln
                        ]
                        measured[name]["startup"] = (
                            rss[-1].split("serving ready", 1)[-1].strip() if rss else None
                        )
                    if i == 0:
                        systems.update(measured)
                        procs.close()  # the baselines only take part in the first phase
                    else:
                        systems[name] = measured[name]
                        systems[f"limit_during_{name}"] = measured["limit"]
            results["nlu"] = systems

            top = max(conc)
            serve_key = "serve_" + args.topologies.split(",")[0]

            def sps(name: str, c: int) -> float | None:
                cell = systems.get(name, {}).get(f"c{c}")
                return cell["sentences_per_s"] if cell else None

            def ratio(a: float | None, b: float | None) -> float | None:
                return round(a / b, 2) if a and b else None

            results["ratios"] = {
                f"serve_vs_naive_c{top}": ratio(sps(serve_key, top), sps("naive", top)),
                f"serve_vs_ort_c{top}": ratio(sps(serve_key, top), sps("ort", top)),
                f"serve_vs_limit_c{top}": ratio(sps(serve_key, top), sps("limit", top)),
            }
            c16 = systems.get(serve_key, {}).get("c16")
            results["p99_ms_c16"] = c16["p99_ms"] if c16 else None
            for t in args.topologies.split(","):
                results["ratios"][f"serve_{t}_vs_limit_c{top}"] = ratio(
                    sps(f"serve_{t}", top), sps("limit", top)
                )
        if not args.skip_retrieval:
            print("retrieval", flush=True)
            results["retrieval"] = bench_retrieval([int(s) for s in args.sizes.split(",")], args.dim)
    finally:
        if args.keep:
            print(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "serving.json")
    p.add_argument("--store", default=None, help="model store (default $XIAOKE_DATA_DIR/models)")
    p.add_argument("--duration", type=float, default=6.0, help="seconds measured per cell")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds per cell (median reported)")
    p.add_argument("--concurrency", default="1,16,64")
    p.add_argument("--topologies", default="fused,split", help="serve topologies; the first one is reported")
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--skip-nlu", action="store_true")
    p.add_argument("--skip-retrieval", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temporary work dir (logs, stores)")
    p.add_argument("--no-netns", action="store_true", help="do not re-run inside a private network namespace")
    p.add_argument("--baseline", choices=["ort", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=8101, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.baseline:  # child process: one baseline server on loopback
        import uvicorn

        app = baseline_app(args.baseline, Path(args.store), _checkpoints(Path(args.store)))
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
        return 0

    if not args.no_netns and os.environ.get(NETNS_ENV) != "1" and shutil.which("unshare"):
        inner = " ".join(
            [sys.executable, "-m", "benchmarks.serving", *map(_quote, sys.argv[1:] if argv is None else argv)]
        )
        env = {**os.environ, NETNS_ENV: "1", "PYTHONPATH": str(REPO)}
        cmd = ["unshare", "--net", "--fork", "bash", "-c", f"ip link set lo up && exec {inner}"]
        return subprocess.call(cmd, env=env, cwd=REPO)

    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: results.get(k) for k in ("ratios", "p99_ms_c16")}, indent=2))
    print(f"wrote {args.out}")
    return 0


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


if __name__ == "__main__":
    sys.exit(main())
