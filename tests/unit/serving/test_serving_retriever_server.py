"""RetrieverServer without Ray: build, activate, rollback, and activation reaching every replica via the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from bundle.contracts import KbEntry
from serving.errors import ErrorCode, ServingError
from serving.retrieval import flatten_entries
from serving.servers import RetrieverServer
from serving.settings import ServingArgs

ENTRIES = [
    KbEntry(faq_id="f1", question="如何申请退货", similar=["怎么退货"]),
    KbEntry(faq_id="f2", question="快递多久能到", similar=["几天能到货"]),
]


def _settings(tmp_path: Path):
    return ServingArgs(
        model_store=tmp_path / "models",
        jieba_cache_dir=tmp_path / "jieba",
        index_poll_s=0.05,
        device="cpu",
        bootstrap=False,
    ).settings()


def _payload(seed: int):
    rows = flatten_entries(ENTRIES)
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((len(rows), 8)).astype(np.float32)
    return rows, vecs, [r.text for r in rows]


async def test_activation_reaches_other_replicas_and_rollback(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    a, b = RetrieverServer(settings, num_gpus=0), RetrieverServer(settings, num_gpus=0)
    await b.check_health()  # starts b's poller
    rows, vecs, texts = _payload(1)
    info = await a.build(rows, vecs, texts, "v1", "emb-1", True)
    assert info.active and info.version == "v1" and info.entries == 2
    assert a.active_version == "v1"
    for _ in range(100):
        if b.active_version == "v1":
            break
        await asyncio.sleep(0.02)
    assert b.active_version == "v1"  # b never served the activate call

    rows2, vecs2, texts2 = _payload(2)
    await a.build(rows2, vecs2, texts2, "v2", "emb-1", False)
    assert a.active_version == "v1"  # built but not active
    await b.activate("v2")
    assert b.active_version == "v2"
    await a.sync()
    assert a.active_version == "v2"
    await a.activate("v1")  # rollback
    await b.sync()
    assert (a.active_version, b.active_version) == ("v1", "v1")
    listed = await b.list()
    assert listed.active == "v1" and [v.version for v in listed.versions] == ["v1", "v2"]

    q = vecs[:1]
    reply = await b.search(["怎么退货"], q, 2, "emb-1")
    assert reply.index_version == "v1" and reply.candidates[0][0].faq_id == "f1"
    assert not reply.embedder_mismatch
    other = await b.search(["怎么退货"], np.ones((1, 4), np.float32), 2, "emb-2")  # wrong dim: keyword only
    assert other.embedder_mismatch and other.candidates[0][0].dense_score == 0.0


async def test_new_replica_loads_active_index_at_start(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    a = RetrieverServer(settings, num_gpus=0)
    rows, vecs, texts = _payload(1)
    await a.build(rows, vecs, texts, "v1", "emb-1", True)
    assert RetrieverServer(settings, num_gpus=0).active_version == "v1"


async def test_build_errors_have_stable_codes(tmp_path: Path) -> None:
    a = RetrieverServer(_settings(tmp_path), num_gpus=0)
    rows, vecs, texts = _payload(1)
    await a.build(rows, vecs, texts, "v1", "emb-1", False)
    with pytest.raises(ServingError) as exc:
        await a.build(rows, vecs, texts, "v1", "emb-1", False)
    assert exc.value.code is ErrorCode.INDEX_EXISTS
    with pytest.raises(ServingError) as exc:
        await a.activate("missing")
    assert exc.value.code is ErrorCode.INDEX_NOT_FOUND
    empty = await RetrieverServer(_settings(tmp_path / "other"), num_gpus=0).search(["x"], vecs[:1], 3, "e")
    assert empty.candidates == [[]] and empty.index_version is None


async def test_corrupt_version_is_refused_before_the_pointer_moves(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    a = RetrieverServer(settings, num_gpus=0)
    rows, vecs, texts = _payload(1)
    await a.build(rows, vecs, texts, "v1", "emb-1", True)
    await a.build(rows, vecs, texts, "v2", "emb-1", False)
    (settings.index_root / "v2" / "dense.faiss").write_bytes(b"truncated")
    with pytest.raises(ServingError) as exc:
        await a.activate("v2")
    assert exc.value.code is ErrorCode.INDEX_CORRUPT
    assert a.store.active() == "v1" and a.active_version == "v1"  # every replica keeps serving v1
    reply = await a.search(["怎么退货"], vecs[:1], 2, "emb-1")
    assert reply.index_version == "v1" and reply.candidates[0]

    (settings.index_root / "v1" / "dense.faiss").write_bytes(b"truncated")  # the active one breaks on disk
    assert RetrieverServer(settings, num_gpus=0).active_version is None  # a new replica starts without it


async def test_rollback_during_a_slow_poll_load_ends_on_the_rolled_back_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    a = RetrieverServer(settings, num_gpus=0)
    rows, vecs, texts = _payload(1)
    await a.build(rows, vecs, texts, "v1", "emb-1", True)
    await a.build(rows, vecs, texts, "v2", "emb-1", False)
    real_load = a._load

    def slow_load(version: str):
        if version == "v2":
            import time

            time.sleep(0.3)
        return real_load(version)

    monkeypatch.setattr(a, "_load", slow_load)
    a.store.activate("v2")  # another replica activates v2 ...
    poll = asyncio.ensure_future(a.sync())  # ... this replica's poller starts loading it
    await asyncio.sleep(0.05)
    await a.activate("v1")  # ... and the admin rolls back while that load runs
    await poll
    assert a.store.active() == "v1"
    assert a.active_version == "v1"  # the poller's late v2 swap must not win over the rollback


async def test_an_index_of_another_embedder_is_searched_by_keyword_only(tmp_path: Path) -> None:
    """Same dimension, other embedder (e.g. a new embedder bundle pinned, index not yet rebuilt): the cosine of a
    query from one vector space with index vectors of another is noise, yet it was fused at weight 0.7, enough
    to put an unrelated FAQ above the answer / suggest thresholds."""
    a = RetrieverServer(_settings(tmp_path), num_gpus=0)
    rows, vecs, texts = _payload(1)
    await a.build(rows, vecs, texts, "v1", "emb-1", True)
    query = vecs[:1]  # by chance (other space) identical to row 0, f1's question; the text shares no word
    same = await a.search(["你好呀"], query, 2, "emb-1")
    assert same.candidates[0][0].faq_id == "f1" and same.candidates[0][0].fused_score > 0.6  # meaningful here
    other = await a.search(["你好呀"], query, 2, "emb-2")
    assert other.embedder_mismatch and other.index_version == "v1"
    assert other.candidates == [[]]  # no evidence left: no candidate (was f1 at fused 0.7, "answer")
    kw = await a.search(["怎么退货"], query, 2, "emb-2")  # the keyword half keeps working
    assert kw.candidates[0][0].faq_id == "f1" and kw.candidates[0][0].keyword_score > 0


async def test_activating_an_index_of_another_embedder_is_refused(tmp_path: Path) -> None:
    a = RetrieverServer(_settings(tmp_path), num_gpus=0)
    rows, vecs, texts = _payload(1)
    await a.build(rows, vecs, texts, "v1", "emb-1", True)
    await a.build(rows, vecs, texts, "v2", "emb-2", False)
    with pytest.raises(ServingError) as exc:
        await a.activate("v2", "emb-1")  # e.g. a rollback to an index of the previous embedder
    assert exc.value.code is ErrorCode.INDEX_EMBEDDER_MISMATCH
    assert a.store.active() == "v1" and a.active_version == "v1"
    assert (await a.activate("v2", "emb-2")).active  # built by the serving embedder: fine
    with pytest.raises(ServingError) as exc:
        await a.activate("missing", "emb-2")
    assert exc.value.code is ErrorCode.INDEX_NOT_FOUND


async def test_an_unloadable_active_version_is_not_reloaded_on_every_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ACTIVE names a version this replica cannot load (damaged on the shared volume, written by a newer
    serving during an upgrade): every poll (2 s) loaded and warmed the whole index again on every replica,
    and logged an error each time."""
    import shutil

    settings = _settings(tmp_path)
    a = RetrieverServer(settings, num_gpus=0)
    rows, vecs, texts = _payload(1)
    await a.build(rows, vecs, texts, "v1", "emb-1", True)
    await a.build(rows, vecs, texts, "v2", "emb-1", False)
    good = tmp_path / "v2-good"
    shutil.copytree(settings.index_root / "v2", good)
    (settings.index_root / "v2" / "dense.faiss").write_bytes(b"truncated")
    a.store.activate("v2")  # another replica (or a person) moved the pointer
    loads: list[str] = []
    real_load = a._load

    def counting_load(version: str):
        loads.append(version)
        return real_load(version)

    monkeypatch.setattr(a, "_load", counting_load)
    for _ in range(5):
        assert await a.sync() == "v1"  # keeps serving v1
    assert loads == ["v2"]
    # the version is repaired on disk (its file restored): the next poll loads it
    shutil.copyfile(good / "dense.faiss", settings.index_root / "v2" / "dense.faiss")
    assert await a.sync() == "v2" and a.active_version == "v2"
    assert loads == ["v2", "v2"]
