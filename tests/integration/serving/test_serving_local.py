"""The Serve application in Serve's local testing mode (`serve.run(..., _local_testing_mode=True)`): real tiny
bundles, real ORT sessions, real FAISS + BM25; both topologies; routes called through the ingress handle."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from bundle_edits import (  # tests/integration/serving (not a package)
    publish_embedder_copy,
    publish_permuted_intent,
    tamper,
)
from ray import serve

from bundle.contracts import IndexBuildRequest
from bundle.manifest import BundleKind
from bundle.store import ModelStore, read_manifest
from serving.app import build_app
from serving.ingress import NluIngress
from serving.retrieval import IndexStore
from serving.settings import ServingArgs


def make_request(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    from starlette.requests import Request

    raw = (
        body
        if isinstance(body, bytes)
        else (b"" if body is None else json.dumps(body, ensure_ascii=False).encode())
    )

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    return Request(scope, receive)


REPO = Path(__file__).resolve().parents[3]
FAQ = REPO / "data" / "demo" / "faq" / "faq.jsonl"
KB = [
    {"faq_id": "refund", "question": "怎么申请退货", "similar": ["我要退货", "商品不想要了能退吗"]},
    {"faq_id": "ship", "question": "快递多久能到", "similar": ["几天能到货", "什么时候发货"]},
    {"faq_id": "invoice", "question": "发票怎么开", "similar": ["能开发票吗"]},
]


@pytest.fixture
def store(tiny_model_store: Path, tmp_path: Path) -> Path:
    root = tmp_path / "models"
    shutil.copytree(tiny_model_store, root, ignore=shutil.ignore_patterns("indexes"))
    return root


def _run(store: Path, tmp_path: Path, **kw: Any) -> Any:
    args = ServingArgs(
        model_store=store, jieba_cache_dir=tmp_path / "jieba", device="cpu", index_poll_s=0.1, **kw
    )
    return serve.run(build_app(args), _local_testing_mode=True)


def _call(handle: Any, method: str, *args: Any) -> Any:
    return getattr(handle, method).remote(*args).result()


def _json(resp: Any) -> Any:
    return json.loads(resp.body)


@pytest.mark.parametrize("topology", ["fused", "split"])
def test_nlu_and_index_lifecycle(local_serve: None, store: Path, tmp_path: Path, topology: str) -> None:
    h = _run(store, tmp_path, topology=topology, bootstrap=False)
    texts = ["我要退货！", "ＦＡＱ 快递几天到", "发票怎么开"]

    r = _call(h, "nlu", make_request("POST", "/v1/nlu", {"texts": texts}, {"x-request-id": "req-1"}))
    assert r.status_code == 200
    body = _json(r)
    assert [x["text"] for x in body["results"]] == ["我要退货!", "faq 快递几天到", "发票怎么开"]  # normalized
    labels = read_manifest(store / "intent" / "tiny-1").labels
    for res in body["results"]:
        assert res["intent"]["label"] in labels and len(res["intent"]["top_k"]) == 3
        assert res["intent"]["top_k"][0]["confidence"] >= res["intent"]["top_k"][1]["confidence"]
        assert res["sentiment"]["label"] in {"negative", "neutral", "positive"}
        assert res["candidates"] == []  # no index yet
    assert body["model_versions"] == {"intent": "tiny-1", "sentiment": "tiny-1", "embedder": "tiny-1"}
    assert body["thresholds"] == {"answer": 0.8, "suggest": 0.5, "answer_margin": None, "answer_agree": None}
    assert float(r.headers["x-inference-time"]) > 0

    # build v1 (not active), list, activate
    r = _call(
        h,
        "build_index",
        make_request("POST", "/v1/indexes", {"entries": KB, "activate": False, "version": "v1"}),
    )
    assert r.status_code == 201 and _json(r)["size"] == 8 and _json(r)["active"] is False
    r = _call(h, "list_indexes", make_request("GET", "/v1/indexes"))
    assert _json(r)["active"] is None and [v["version"] for v in _json(r)["versions"]] == ["v1"]
    r = _call(h, "activate_index", "v1", make_request("POST", "/v1/indexes/v1/activate"))
    assert r.status_code == 200 and _json(r)["active"] is True

    r = _call(h, "nlu", make_request("POST", "/v1/nlu", {"texts": ["我要退货", "发票怎么开"], "top_k": 2}))
    body = _json(r)
    assert body["index_version"] == "v1"
    first = body["results"][0]["candidates"]
    assert first[0]["faq_id"] == "refund" and first[0]["matched"] == "我要退货"
    assert first[0]["fused_score"] >= first[-1]["fused_score"] and len(first) == 2
    assert body["results"][1]["candidates"][0]["faq_id"] == "invoice"
    assert float(r.headers["x-retrieval-time"]) >= 0

    # v2 without the invoice FAQ, activate, then roll back to v1
    kb2 = [e for e in KB if e["faq_id"] != "invoice"]
    r = _call(h, "build_index", make_request("POST", "/v1/indexes", {"entries": kb2, "version": "v2"}))
    assert r.status_code == 201 and _json(r)["active"] is True
    r = _call(h, "nlu", make_request("POST", "/v1/nlu", {"texts": ["发票怎么开"], "top_k": 5}))
    assert _json(r)["index_version"] == "v2"
    assert "invoice" not in {c["faq_id"] for c in _json(r)["results"][0]["candidates"]}
    _call(h, "activate_index", "v1", make_request("POST", "/v1/indexes/v1/activate"))
    r = _call(h, "nlu", make_request("POST", "/v1/nlu", {"texts": ["发票怎么开"]}))
    assert _json(r)["index_version"] == "v1"

    # index errors
    r = _call(h, "activate_index", "nope", make_request("POST", "/v1/indexes/nope/activate"))
    assert r.status_code == 404 and _json(r)["error"]["code"] == "INDEX_NOT_FOUND"
    r = _call(h, "activate_index", ".hidden", make_request("POST", "/v1/indexes/.hidden/activate"))
    assert r.status_code == 422 and _json(r)["error"]["code"] == "INDEX_VERSION_INVALID"
    r = _call(h, "build_index", make_request("POST", "/v1/indexes", {"entries": KB, "version": "v1"}))
    assert r.status_code == 409 and _json(r)["error"]["code"] == "INDEX_EXISTS"

    # embed
    r = _call(h, "embed", make_request("POST", "/v1/embed", {"texts": ["你好", "退货"]}))
    emb = _json(r)
    assert emb["dim"] == 32 and len(emb["embeddings"]) == 2 and emb["model_version"] == "tiny-1"
    assert abs(sum(x * x for x in emb["embeddings"][0]) - 1.0) < 1e-3

    metrics = _call(h, "metrics_route").body.decode()
    for series in ("xiaoke_serving_requests_total", "xiaoke_serving_batch_rows_bucket", "xiaoke_serving_queue_seconds",
                   "xiaoke_serving_inference_seconds", "xiaoke_serving_retrieval_seconds"):  # fmt: skip
        assert series in metrics
    assert 'xiaoke_serving_requests_total{code="INDEX_NOT_FOUND",endpoint="index_activate"} 1.0' in metrics


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"texts": []}, 422, "TEXTS_EMPTY"),
        ({"texts": ["好"] * 65}, 422, "TOO_MANY_TEXTS"),
        ({"texts": ["好" * 513]}, 422, "TEXT_TOO_LONG"),
        ({"texts": [1, 2]}, 422, "INVALID_TYPE"),
        (b'{"texts": ["\xc3\x28"]}', 400, "INVALID_ENCODING"),
        (b"not json", 400, "INVALID_JSON"),
    ],
)
def test_bad_input_is_4xx_with_stable_code(
    local_serve: None, store: Path, tmp_path: Path, payload: Any, status: int, code: str
) -> None:
    h = _run(store, tmp_path, bootstrap=False)
    r = _call(h, "nlu", make_request("POST", "/v1/nlu", payload, {"x-request-id": "rid-42"}))
    assert r.status_code == status
    body = _json(r)
    assert body["error"]["code"] == code and body["error"]["request_id"] == "rid-42"
    assert "Traceback" not in r.body.decode()


def test_bootstrap_from_demo_faq_then_ready(local_serve: None, store: Path, tmp_path: Path) -> None:
    if not FAQ.is_file():
        pytest.skip("no demo FAQ")
    h = _run(store, tmp_path, bootstrap=True, bootstrap_faq=FAQ)
    deadline = time.monotonic() + 60
    while True:
        r = _call(h, "readyz", make_request("GET", "/readyz"))
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        assert _json(r)["error"]["code"] == "NOT_READY"
        time.sleep(0.2)
    assert r.status_code == 200
    ready = _json(r)
    assert ready["bootstrap"] == "done" and ready["index_version"].startswith("demo-")
    assert ready["models"]["intent"]["variant"] == "int8"  # CPU profile picks the int8 variant
    r = _call(h, "nlu", make_request("POST", "/v1/nlu", {"texts": ["能7天无理由退吗"]}))
    assert _json(r)["results"][0]["candidates"], "bootstrapped index answers out of the box"


def test_bootstrap_rebuilds_its_index_when_the_embedder_changed(
    local_serve: None, store: Path, tmp_path: Path
) -> None:
    """Found by `make bench-dialogs` after a `make models` rebuild: the bootstrap kept the active demo index built
    by the previous embedder, so every FAQ question got keyword-only scores (10 of 37 demo turns missed)."""
    if not FAQ.is_file():
        pytest.skip("no demo FAQ")
    h = _run(store, tmp_path, bootstrap=False)
    stale = "demo-builtbyold"
    r = _call(
        h,
        "build_index",
        make_request("POST", "/v1/indexes", {"entries": KB, "version": stale, "activate": True}),
    )
    assert r.status_code == 201, r.body
    info = store / "indexes" / stale / "info.json"
    info.write_text(
        info.read_text(encoding="utf-8").replace('"embedder_version": "', '"embedder_version": "old-')
    )
    serve.shutdown()

    h = _run(store, tmp_path, bootstrap=True, bootstrap_faq=FAQ)
    deadline = time.monotonic() + 60
    while (r := _call(h, "readyz", make_request("GET", "/readyz"))).status_code != 200:
        assert time.monotonic() < deadline, r.body
        time.sleep(0.2)
    ready = _json(r)
    assert ready["bootstrap"] == "done" and ready["index_version"].startswith("demo-")
    assert ready["index_version"] != stale  # rebuilt with the embedder serving now


def _wait_ready(h: Any, done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        r = _call(h, "readyz", make_request("GET", "/readyz"))
        if r.status_code == 200 and done(_json(r)):
            return dict(_json(r))
        assert time.monotonic() < deadline, r.body
        time.sleep(0.1)


def _reembeds(h: Any, outcome: str) -> float:
    metrics = _call(h, "metrics_route").body.decode()
    series = f'xiaoke_serving_index_reembeds_total{{outcome="{outcome}"}} '
    return next((float(x.split()[-1]) for x in metrics.splitlines() if x.startswith(series)), 0.0)


def test_an_embedder_change_re_embeds_the_published_index_and_a_rollback_reactivates_it(
    local_serve: None, store: Path, tmp_path: Path
) -> None:
    """A new embedder pinned in place left the index the API had published built by the old one: retrieval
    stayed keyword-only until someone republished from the console. Now the ingress re-embeds the active index's
    own questions by itself, and pinning the old embedder back reactivates the index that embedder built."""
    emb2 = publish_embedder_copy(store, tmp_path)
    h = _run(store, tmp_path, bootstrap=False)
    r = _call(h, "build_index", make_request("POST", "/v1/indexes", {"entries": KB, "version": "kb-1"}))
    assert r.status_code == 201 and _json(r)["embedder_version"] == "tiny-1"

    _call(h, "reconfigure", {"models": {"embedder": {"bundle_version": emb2}}})
    ready = _wait_ready(h, lambda b: b["index_version"] != "kb-1")
    derived = ready["index_version"]
    listing = _json(_call(h, "list_indexes", make_request("GET", "/v1/indexes")))
    info = next(v for v in listing["versions"] if v["version"] == derived)
    assert (
        listing["active"] == derived and info["embedder_version"] == emb2 and info["derived_from"] == "kb-1"
    )
    indexes = IndexStore(store / "indexes")
    assert indexes.rows(derived) == indexes.rows("kb-1")  # the same faq_ids and questions
    body = _json(_call(h, "nlu", make_request("POST", "/v1/nlu", {"texts": ["我要退货"]})))
    assert body["index_version"] == derived and body["model_versions"]["embedder"] == emb2
    assert body["results"][0]["candidates"][0]["dense_score"] > 0.5  # dense evidence again, not keyword only
    assert _reembeds(h, "rebuilt") == 1

    # rollback of the embedder: kb-1 (built by tiny-1) is still there and becomes active again; nothing is built
    _call(h, "reconfigure", {"models": {"embedder": {"bundle_version": "tiny-1"}}})
    ready = _wait_ready(h, lambda b: b["index_version"] == "kb-1")
    listing = _json(_call(h, "list_indexes", make_request("GET", "/v1/indexes")))
    assert sorted(v["version"] for v in listing["versions"]) == sorted(["kb-1", derived])
    assert _reembeds(h, "reactivated") == 1 and _reembeds(h, "rebuilt") == 1
    body = _json(_call(h, "nlu", make_request("POST", "/v1/nlu", {"texts": ["我要退货"]})))
    assert body["index_version"] == "kb-1" and body["results"][0]["candidates"][0]["dense_score"] > 0.5
    ready = _wait_ready(h, lambda b: b["index_reembed"] == "idle")


def test_a_replica_started_on_a_new_embedder_re_embeds_the_index_before_it_is_ready(
    local_serve: None, store: Path, tmp_path: Path
) -> None:
    """`make models` (or a new image) then a restart: the active index was built by the previous embedder. The
    replica used to report ready at once and answer its first requests keyword-only until the watcher caught up
    (a benchmark run right after `make models` saw 5 of 60 demo turns fall to "clarify")."""
    h = _run(store, tmp_path, bootstrap=False)
    r = _call(h, "build_index", make_request("POST", "/v1/indexes", {"entries": KB, "version": "kb-1"}))
    assert r.status_code == 201 and _json(r)["embedder_version"] == "tiny-1"
    serve.shutdown()
    emb2 = publish_embedder_copy(store, tmp_path)
    ModelStore(store).set_live(BundleKind.EMBEDDER, emb2)

    h = _run(store, tmp_path, bootstrap=False)
    ready = _wait_ready(h, lambda b: True)  # the first ready answer
    indexes = IndexStore(store / "indexes")
    active = indexes.active()
    assert active is not None and indexes.info(active).embedder_version == emb2, ready
    assert ready["index_version"] == active and indexes.info(active).derived_from == "kb-1"
    body = _json(_call(h, "nlu", make_request("POST", "/v1/nlu", {"texts": ["我要退货"]})))
    assert body["results"][0]["candidates"][0]["dense_score"] > 0.5  # dense evidence from the first request


def _ingress(store: Path, tmp_path: Path) -> Any:
    """A fused ingress replica as a plain object (no Serve) over `store`. Its index watch runs once an hour:
    these tests call `reembed_index` themselves."""
    settings = ServingArgs(
        model_store=store,
        jieba_cache_dir=tmp_path / "jieba",
        device="cpu",
        bootstrap=False,
        index_poll_s=3600,
    ).settings()
    ingress = object.__new__(NluIngress)
    NluIngress.__mro__[1].__init__(
        ingress, settings
    )  # the class as written, before @serve.ingress wrapped it
    return ingress


async def test_a_publish_landing_during_the_re_embedding_stays_active(
    local_serve: None, store: Path, tmp_path: Path
) -> None:
    emb2 = publish_embedder_copy(store, tmp_path)
    ingress = _ingress(store, tmp_path)
    await ingress._build(IndexBuildRequest.model_validate({"entries": KB, "version": "kb-1"}))
    await ingress.reconfigure({"models": {"embedder": {"bundle_version": emb2}}})
    kb2 = {"entries": KB[:2], "version": "kb-2", "activate": False}  # the console's next publish (newer KB)
    await ingress._build(IndexBuildRequest.model_validate(kb2))
    retriever = ingress.retriever.target
    build = retriever.build

    async def build_then_publish(*args: Any) -> Any:
        info = await build(*args)
        await retriever.activate(
            "kb-2", emb2
        )  # the publish activates while the re-embedded copy is unactivated
        return info

    retriever.build = build_then_publish
    assert await ingress.reembed_index() == "superseded"
    indexes = IndexStore(store / "indexes")
    assert indexes.active() == "kb-2" and retriever.active_version == "kb-2"  # the newer KB stays
    assert await ingress.reembed_index() == "current"


async def test_concurrent_checks_of_two_replicas_re_embed_once(
    local_serve: None, store: Path, tmp_path: Path
) -> None:
    emb2 = publish_embedder_copy(store, tmp_path)
    replicas = [_ingress(store, tmp_path), _ingress(store, tmp_path)]
    await replicas[0]._build(IndexBuildRequest.model_validate({"entries": KB, "version": "kb-1"}))
    built: list[str] = []
    for ingress in replicas:
        await ingress.reconfigure({"models": {"embedder": {"bundle_version": emb2}}})
        retriever = ingress.retriever.target

        async def counted(*args: Any, build: Any = retriever.build) -> Any:
            built.append(args[3])
            return await build(*args)

        retriever.build = counted
    outcomes = await asyncio.gather(*(i.reembed_index() for i in replicas))
    assert sorted(outcomes) == ["busy", "rebuilt"] and len(built) == 1
    assert IndexStore(store / "indexes").active() == built[0]
    assert [await i.reembed_index() for i in replicas] == ["current", "current"]


def test_model_roll_and_shadow_via_user_config(local_serve: None, store: Path, tmp_path: Path) -> None:
    v2 = publish_permuted_intent(store, tmp_path)
    h = _run(store, tmp_path, bootstrap=False)
    req = {"texts": ["我要退货", "你好", "发票"], "with_candidates": False}

    # shadow: every text also scored by tiny-2; reversed labels -> disagreements counted
    _call(h, "reconfigure", {"models": {"intent": {"shadow_version": v2, "shadow_sample_rate": 1.0}}})
    for _ in range(3):
        assert _call(h, "nlu", make_request("POST", "/v1/nlu", req)).status_code == 200
        time.sleep(0.1)
    metrics = _call(h, "metrics_route").body.decode()
    line = next(
        x
        for x in metrics.splitlines()
        if x.startswith('xiaoke_serving_shadow_disagreements_total{model="intent"}')
    )
    assert float(line.split()[-1]) > 0

    # roll the live bundle while requests are flowing: none fails, later ones report tiny-2
    def fire(i: int) -> tuple[int, str]:
        r = _call(h, "nlu", make_request("POST", "/v1/nlu", req))
        return r.status_code, _json(r)["model_versions"]["intent"] if r.status_code == 200 else ""

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(fire, i) for i in range(12)]
        _call(h, "reconfigure", {"models": {"intent": {"bundle_version": v2}}})
        results = [f.result() for f in futures]
    assert all(status == 200 for status, _ in results)
    r = _call(h, "nlu", make_request("POST", "/v1/nlu", req))
    assert _json(r)["model_versions"]["intent"] == v2
    assert ModelStore(store).live_version(BundleKind.INTENT) == "tiny-1"  # LIVE pointer untouched


def test_overload_is_429_with_retry_after(local_serve: None, store: Path, tmp_path: Path) -> None:
    h = _run(store, tmp_path, bootstrap=False)
    _call(h, "reconfigure", {"max_inflight": 1})
    req = {"texts": ["我要退货"] * 64}
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: _call(h, "nlu", make_request("POST", "/v1/nlu", req)), range(16)))
    codes = [r.status_code for r in responses]
    assert 200 in codes and 429 in codes
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.headers["retry-after"] == "1" and _json(rejected)["error"]["code"] == "OVERLOADED"


def test_a_broken_bundle_pin_is_refused_and_the_old_one_keeps_serving(
    local_serve: None, store: Path, tmp_path: Path
) -> None:
    """Pinning a tampered / missing bundle (or shadow) used to raise from reconfigure(); Serve answers a failed
    in-place update by stopping the replica that was serving fine (with one replica: an outage)."""
    v2 = publish_permuted_intent(store, tmp_path)
    tamper(store / "intent" / v2)
    h = _run(store, tmp_path, bootstrap=False)
    req = {"texts": ["我要退货"], "with_candidates": False}
    for pin in (
        {"bundle_version": v2},
        {"bundle_version": "no-such-version"},
        {"shadow_version": v2, "shadow_sample_rate": 1.0},
    ):
        _call(h, "reconfigure", {"models": {"intent": pin}})  # refused, not raised
        r = _call(h, "nlu", make_request("POST", "/v1/nlu", req))
        assert r.status_code == 200 and _json(r)["model_versions"]["intent"] == "tiny-1"
        ready = _call(h, "readyz", make_request("GET", "/readyz"))
        assert ready.status_code == 200
        intent = _json(ready)["models"]["intent"]
        assert intent["version"] == "tiny-1" and intent["shadow_version"] is None
        assert intent["load_error"] and (
            "BUNDLE_TAMPERED" in intent["load_error"] or "BUNDLE_NOT_FOUND" in intent["load_error"]
        )
        metrics = _call(h, "metrics_route").body.decode()
        assert 'xiaoke_serving_bundle_refused{model="intent"} 1.0' in metrics
    # the fixed bundle can be pinned afterwards and clears the refusal
    shutil.rmtree(store / "intent" / v2)
    publish_permuted_intent(store, tmp_path / "again")
    _call(h, "reconfigure", {"models": {"intent": {"bundle_version": v2}}})
    r = _call(h, "nlu", make_request("POST", "/v1/nlu", req))
    assert _json(r)["model_versions"]["intent"] == v2
    ready = _json(_call(h, "readyz", make_request("GET", "/readyz")))
    assert ready["models"]["intent"]["load_error"] is None


async def test_a_replica_starts_on_its_pinned_bundle_when_live_is_broken(store: Path, tmp_path: Path) -> None:
    """The constructor loaded LIVE and raised when it could not, so a replica could not start even though its
    user_config pins a good version (e.g. LIVE still names a bad bundle that was rolled back and deleted)."""
    from serving.servers import ModelServer

    v2 = publish_permuted_intent(store, tmp_path)
    tamper(store / "intent" / "tiny-1")  # LIVE
    settings = ServingArgs(model_store=store, device="cpu", bootstrap=False).settings()
    server = ModelServer("intent", settings)  # what Serve runs first ...
    assert server.status().version is None and "BUNDLE_TAMPERED" in (server.status().load_error or "")
    with pytest.raises(RuntimeError):
        await server.check_health()  # ... not healthy without a bundle ...
    await server.reconfigure({"bundle_version": v2})  # ... then the user_config
    assert server.status().version == v2 and server.status().load_error is None
    await server.check_health()
    with pytest.raises(Exception, match="BUNDLE_TAMPERED"):  # no bundle at all: the replica must not start
        await ModelServer("intent", settings).reconfigure({"bundle_version": None})


def test_activating_an_index_built_by_another_embedder_is_409(
    local_serve: None, store: Path, tmp_path: Path
) -> None:
    h = _run(store, tmp_path, bootstrap=False)
    r = _call(h, "build_index", make_request("POST", "/v1/indexes", {"entries": KB, "version": "v1"}))
    assert r.status_code == 201 and _json(r)["embedder_version"] == "tiny-1"
    old = store / "indexes" / "v-old"  # the same questions, embedded by a previous embedder bundle
    shutil.copytree(store / "indexes" / "v1", old)
    info = json.loads((old / "info.json").read_text(encoding="utf-8"))
    (old / "info.json").write_text(
        json.dumps({**info, "version": "v-old", "embedder_version": "tiny-0"}), "utf-8"
    )
    r = _call(h, "activate_index", "v-old", make_request("POST", "/v1/indexes/v-old/activate"))
    assert r.status_code == 409 and _json(r)["error"]["code"] == "INDEX_EMBEDDER_MISMATCH"
    r = _call(h, "nlu", make_request("POST", "/v1/nlu", {"texts": ["我要退货"]}))
    assert _json(r)["index_version"] == "v1"  # still the index of the serving embedder
