"""Pure retrieval: BM25 keyword index, dense index type by size + recall check, fusion, FAQ index versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bundle.contracts import KbEntry
from serving.retrieval import (
    CharNgramSegmenter,
    DenseBuildConfig,
    DenseIndex,
    FaqIndex,
    FusionConfig,
    FusionMethod,
    IndexStore,
    IndexStoreError,
    IndexType,
    JiebaSegmenter,
    KeywordIndex,
    collapse_by_faq,
    flatten_entries,
    fuse_scores,
    l2_normalize,
    recall_at_k,
)
from serving.retrieval.dense import DenseIndexMeta
from serving.retrieval.index import check_index_version, derived_version


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory: pytest.TempPathFactory) -> JiebaSegmenter:
    return JiebaSegmenter(tmp_path_factory.mktemp("jieba"))


DOCS = ["如何申请退货退款", "快递多久能到", "怎么修改收货地址", "发票怎么开", "退款多久到账"]


def test_segmenter_drops_stopwords_and_punctuation(segmenter: JiebaSegmenter) -> None:
    toks = segmenter.tokens("请问, 我的快递多久能到呢？")
    assert "快递" in toks
    assert not {"请问", "我的", "呢", ",", "？"} & set(toks)


def test_segmenter_caches_dictionary_in_given_dir(tmp_path: Path) -> None:
    seg = JiebaSegmenter(tmp_path / "cache")
    seg.tokens("退货")
    assert any((tmp_path / "cache").iterdir())


def test_bm25_ranks_matching_document_first(segmenter: JiebaSegmenter) -> None:
    idx = KeywordIndex.from_texts(DOCS, segmenter=segmenter)
    hits = idx.search("退货怎么退款", k=3)
    assert hits[0][0] == 0
    assert all(0 < s <= 1 for _, s in hits)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_bm25_normalization_is_query_coverage(segmenter: JiebaSegmenter) -> None:
    idx = KeywordIndex.from_texts(DOCS, segmenter=segmenter)
    full = idx.score_all("发票怎么开")[3]
    partial = idx.score_all("发票 电子 增值税")[3]  # same doc, query mostly unmatched
    assert full > 0.9
    assert 0 < partial < full


def test_bm25_ranks_by_its_own_order_where_the_normalized_score_saturates(segmenter: JiebaSegmenter) -> None:
    # both short documents cover the whole query and score above sum(idf): clipped to 1.0 they would tie and
    # the first-indexed (the longer one) would win; BM25 prefers the exact, shorter one
    docs = ["退款运费谁出", "退款运费", "快递多久能到我家这边的小区门口呢", "怎么修改收货地址和联系电话号码"]
    idx = KeywordIndex.from_texts(docs, segmenter=segmenter)
    raw = idx.score_all("退款运费", clip=False)
    assert raw[1] > raw[0] > 1.0
    assert idx.search("退款运费", k=2) == [(1, 1.0), (0, 1.0)]  # reported scores stay in [0, 1]
    assert idx.score_all("退款运费").max() == 1.0


def test_bm25_no_match_and_empty_query(segmenter: JiebaSegmenter) -> None:
    idx = KeywordIndex.from_texts(DOCS, segmenter=segmenter)
    assert idx.search("天气晴朗", k=5) == []
    assert idx.search("？？", k=5) == []


def _clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(8, n // 50), d)).astype(np.float32)
    x = centers[rng.integers(0, len(centers), n)] + 0.35 * rng.standard_normal((n, d)).astype(np.float32)
    return l2_normalize(x)


def test_dense_small_is_exact_flat() -> None:
    x = _clustered(500, 32)
    idx = DenseIndex.build(x, DenseBuildConfig(flat_max=1000))
    assert idx.meta.index_type is IndexType.FLAT
    scores, ids = idx.search(x[:3], 1)
    assert ids[:, 0].tolist() == [0, 1, 2]
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", [IndexType.IVF, IndexType.HNSW])
def test_dense_large_is_approximate_with_checked_recall(kind: IndexType, tmp_path: Path) -> None:
    x = _clustered(3000, 32)
    cfg = DenseBuildConfig(flat_max=1000, approximate=kind, recall_queries=100)
    idx = DenseIndex.build(x, cfg)
    assert idx.meta.index_type is kind
    assert idx.meta.recall_at_10 is not None and idx.meta.recall_at_10 >= 0.95
    idx.save(tmp_path)
    again = DenseIndex.load(tmp_path)
    assert again.meta == idx.meta
    assert np.array_equal(again.search(x[:5], 5)[1], idx.search(x[:5], 5)[1])


def test_dense_falls_back_to_flat_when_recall_unreachable() -> None:
    x = _clustered(2000, 16)
    cfg = DenseBuildConfig(flat_max=100, recall_target=1.01, recall_queries=50)
    idx = DenseIndex.build(x, cfg)
    assert idx.meta.index_type is IndexType.FLAT
    assert idx.meta.recall_at_10 == 1.0


def test_recall_at_k() -> None:
    exact = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(exact, exact, 3) == 1.0
    assert recall_at_k(np.array([[1, 9, 9], [4, 5, 9]]), exact, 3) == pytest.approx(0.5)


def test_weighted_fusion_formula() -> None:
    cfg = FusionConfig(dense_weight=0.7)
    fused = fuse_scores(np.array([0.9, -0.2, 0.5]), np.array([0.0, 1.0, 0.5]), cfg)
    assert fused == pytest.approx([0.63, 0.3, 0.5])


def test_rrf_fusion_depends_on_rank_only() -> None:
    cfg = FusionConfig(method=FusionMethod.RRF, dense_weight=0.5, rrf_k=60)
    a = fuse_scores(np.array([0.9, 0.1]), np.array([0.2, 0.0]), cfg)
    b = fuse_scores(np.array([0.3, 0.29]), np.array([0.9, 0.0]), cfg)
    assert a == pytest.approx(b)
    assert a[1] == pytest.approx(0.5 / 62)  # keyword miss contributes nothing


def test_fusion_rejects_bad_weight() -> None:
    with pytest.raises(ValueError):
        FusionConfig(dense_weight=1.5)


def test_collapse_keeps_best_question_per_faq() -> None:
    doc_faq = ["a", "a", "b", "c"]
    hits = collapse_by_faq(
        np.array([0, 1, 2, 3]),
        np.array([0.5, 0.9, 0.8, 0.1]),
        np.array([0.0, 0.0, 0.0, 0.0]),
        doc_faq,
        FusionConfig(dense_weight=1.0),
        top_k=5,
    )
    assert [(h.faq_id, h.doc) for h in hits] == [("a", 1), ("b", 2), ("c", 3)]
    assert (
        collapse_by_faq(np.array([0, 1, 2]), np.ones(3), np.zeros(3), doc_faq, FusionConfig(), 1)[0].faq_id
        == "a"
    )


ENTRIES = [
    KbEntry(faq_id="f1", question="如何申请退货", similar=["怎么退货", "我要退货", "怎么退货"]),
    KbEntry(faq_id="f2", question="快递多久能到", similar=["几天能到货"]),
    KbEntry(faq_id="f3", question="发票怎么开"),
]


def test_flatten_entries_dedupes_per_faq() -> None:
    rows = flatten_entries(ENTRIES)
    assert [r.text for r in rows if r.faq_id == "f1"] == ["如何申请退货", "怎么退货", "我要退货"]
    assert all(r.question == "如何申请退货" for r in rows if r.faq_id == "f1")
    assert len(rows) == 6


def _toy_index(segmenter: JiebaSegmenter, version: str = "v1") -> tuple[FaqIndex, np.ndarray]:
    rows = flatten_entries(ENTRIES)
    rng = np.random.default_rng(3)
    faq_centers = {f: rng.standard_normal(16) for f in ("f1", "f2", "f3")}
    vecs = np.stack([faq_centers[r.faq_id] + 0.1 * rng.standard_normal(16) for r in rows]).astype(np.float32)
    idx = FaqIndex.build(
        rows, vecs, [r.text for r in rows], version=version, embedder_version="e1", segmenter=segmenter
    )
    return idx, l2_normalize(np.stack([faq_centers["f1"], faq_centers["f3"]]))


def test_faq_index_search_collapses_and_fuses(segmenter: JiebaSegmenter) -> None:
    idx, q = _toy_index(segmenter)
    assert idx.info.size == 6 and idx.info.entries == 3 and idx.info.index_type == "flat"
    res = idx.search(["我要退货", "发票"], q, top_k=2)
    top = res[0][0]
    assert top.faq_id == "f1" and top.question == "如何申请退货"
    assert top.matched in {"我要退货", "如何申请退货", "怎么退货"}
    assert top.fused_score == pytest.approx(0.7 * max(top.dense_score, 0) + 0.3 * top.keyword_score, abs=1e-5)
    assert len({c.faq_id for c in res[0]}) == len(res[0]) == 2
    assert res[1][0].faq_id == "f3" and res[1][0].keyword_score > 0


def test_index_store_versions_activate_and_rollback(segmenter: JiebaSegmenter, tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "indexes")
    assert store.active() is None and store.versions() == []
    v1, q = _toy_index(segmenter, "v1")
    v2, _ = _toy_index(segmenter, "v2")
    store.save(v1)
    store.save(v2)
    with pytest.raises(IndexStoreError) as exc:
        store.save(v1)
    assert exc.value.code == "INDEX_EXISTS"
    store.activate("v2")
    assert store.active() == "v2"
    assert [(i.version, i.active) for i in store.versions()] == [("v1", False), ("v2", True)]
    store.activate("v1")  # rollback
    assert store.active() == "v1"
    loaded = store.load("v1", segmenter=segmenter)
    assert loaded.search(["我要退货"], q[:1], 1)[0][0].faq_id == "f1"
    with pytest.raises(IndexStoreError) as exc:
        store.activate("nope")
    assert exc.value.code == "INDEX_NOT_FOUND"
    with pytest.raises(IndexStoreError) as exc:
        store.path("../etc")
    assert exc.value.code == "INDEX_VERSION_INVALID"
    leftovers = [p for p in (tmp_path / "indexes").iterdir() if p.name.startswith(".")]
    assert [p.name for p in leftovers] == [".ACTIVE.lock"]  # the pointer's lock file stays; no temporary file


def test_index_store_conditional_activation_and_lock(segmenter: JiebaSegmenter, tmp_path: Path) -> None:
    """The ingress's re-embedding activates its version only while ACTIVE still names the index it replaces,
    and one store lock keeps a second replica (another process, or another descriptor here) out."""
    store = IndexStore(tmp_path / "indexes")
    for version in ("v1", "v2", "v3"):
        store.save(_toy_index(segmenter, version)[0])
    store.activate("v1")
    store.activate("v2", if_active="v1")
    assert store.active() == "v2"
    with pytest.raises(IndexStoreError) as exc:
        store.activate("v3", if_active="v1")  # a publish moved ACTIVE to v2 meanwhile
    assert exc.value.code == "INDEX_ACTIVE_MOVED" and store.active() == "v2"
    assert store.rows("v3") == store.load("v3", segmenter=segmenter).rows and store.info("v3").version == "v3"

    first, second = store.lock("reembed"), store.lock("reembed")
    assert first.acquire() and not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_derived_versions_are_valid_and_the_same_on_every_replica() -> None:
    long = "a" * 64
    assert derived_version(long, "emb-2") == derived_version(long, "emb-2") != derived_version(long, "emb-3")
    assert check_index_version(derived_version(long, "emb-2")).startswith("a" * 50 + "-re")


def test_index_store_save_race_reports_exists(segmenter: JiebaSegmenter, tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "indexes")
    v1, _ = _toy_index(segmenter, "v1")
    real_exists = store.path("v1").exists
    store.save(v1)
    # a second replica that checked `exists` before the first one renamed its directory into place
    import unittest.mock as mock

    with mock.patch("pathlib.Path.exists", side_effect=[False, True]), pytest.raises(IndexStoreError) as exc:
        store.save(v1)
    assert exc.value.code == "INDEX_EXISTS"
    assert real_exists()
    assert not [p for p in (tmp_path / "indexes").iterdir() if p.name.startswith(".")]


def test_char_ngram_segmenter_splits_on_punctuation() -> None:
    toks = CharNgramSegmenter().tokens("咋退款? 7天")
    assert toks == ["咋", "退", "款", "咋退", "退款", "7", "天", "7天"]
    assert "款?" not in toks and CharNgramSegmenter().tokens("？！") == []


PARAPHRASES = [  # the shipping-cost-of-a-return FAQ is asked two ways; no single question holds 退货 and 邮费
    KbEntry(faq_id="return_fee", question="退货的运费谁出", similar=["寄回去的邮费要我付吗"]),
    KbEntry(faq_id="fee", question="运费怎么算", similar=["邮费多少钱"]),
    KbEntry(faq_id="return", question="怎么退货", similar=["退货流程是什么"]),
]


def test_faq_level_keyword_score_pools_an_faqs_paraphrases(segmenter: JiebaSegmenter, tmp_path: Path) -> None:
    rows = flatten_entries(PARAPHRASES)
    vecs = np.eye(len(rows), 8, dtype=np.float32)  # dense says nothing about the query below
    idx = FaqIndex.build(
        rows, vecs, [r.text for r in rows], version="v1", embedder_version="e", segmenter=segmenter
    )
    query = "退货邮费谁付"
    question_level = idx.keyword.score_all(query)
    faq_level = idx.faq_keyword.score_all(query)
    assert faq_level.shape == (3,)  # one document per FAQ, in the order of their first question
    assert int(np.argmax(faq_level)) == 0  # return_fee: 退货 from one question, 邮费 + 付 from the other
    best = idx.search([query], np.zeros((1, 8), np.float32), top_k=3)[0]
    assert best[0].faq_id == "return_fee"
    assert best[0].keyword_score == pytest.approx(max(faq_level[0], question_level[:2].max()), abs=1e-5)
    assert best[0].keyword_score > question_level[:2].max()  # the pooled FAQ covers more than either question
    ablation = FaqIndex.build(
        rows,
        vecs,
        [r.text for r in rows],
        version="v0",
        embedder_version="e",
        segmenter=segmenter,
        fusion=FusionConfig(faq_keyword=False),
    )
    plain = ablation.search([query], np.zeros((1, 8), np.float32), top_k=3)[0]
    assert {c.faq_id: c.keyword_score for c in plain}["return_fee"] == pytest.approx(question_level[:2].max())
    # persisted with the normalized texts the FAQ-level index is built from; older versions load too
    store = IndexStore(tmp_path / "indexes")
    store.save(idx)
    loaded = store.load("v1", segmenter=segmenter)
    assert loaded.normalized == idx.normalized
    np.testing.assert_allclose(loaded.faq_keyword.score_all(query), faq_level)
    qfile = tmp_path / "indexes" / "v1" / "questions.jsonl"
    legacy = [json.loads(line) for line in qfile.read_text(encoding="utf-8").splitlines()]
    qfile.write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "normalized"}) + "\n" for r in legacy)
    )
    assert (
        store.load("v1", segmenter=segmenter).search([query], np.zeros((1, 8)), 1)[0][0].faq_id
        == "return_fee"
    )


@pytest.mark.parametrize("version", ["v1\n", "../v1", ".v1", "v 1", "", "a" * 65])
def test_index_version_names_are_checked_whole(version: str, tmp_path: Path) -> None:
    # "v1\n" used to pass (`re.match` + `$`): the version directory got a newline in its name while the
    # stripped ACTIVE pointer named "v1", so every replica pointed at an index that does not exist
    with pytest.raises(IndexStoreError) as exc:
        IndexStore(tmp_path).path(version)
    assert exc.value.code == "INDEX_VERSION_INVALID"


def test_corrupt_faiss_file_is_index_corrupt(segmenter: JiebaSegmenter, tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "indexes")
    v1, _ = _toy_index(segmenter, "v1")
    (store.save(v1) / "dense.faiss").write_bytes(b"not a faiss index")  # faiss raises RuntimeError
    with pytest.raises(IndexStoreError) as exc:
        store.load("v1", segmenter=segmenter)
    assert exc.value.code == "INDEX_CORRUPT"


def test_gpu_dense_searches_are_serialized() -> None:
    """FAISS GPU indexes are not thread-safe even for searches; CPU ones are and stay concurrent."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    class _Probe:
        def __init__(self) -> None:
            self.inside = self.most = 0
            self.lock = threading.Lock()

        def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            with self.lock:
                self.inside += 1
                self.most = max(self.most, self.inside)
            time.sleep(0.02)
            with self.lock:
                self.inside -= 1
            return np.zeros((len(q), k), np.float32), np.zeros((len(q), k), np.int64)

    class GpuIndexFlatIP(_Probe):  # named like faiss's GPU classes
        pass

    class IndexFlatIP(_Probe):
        pass

    q = np.ones((1, 4), np.float32)
    for probe, expected in ((GpuIndexFlatIP(), 1), (IndexFlatIP(), 4)):
        dense = DenseIndex(probe, DenseIndexMeta(IndexType.FLAT, 4, 10))
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _, d=dense: d.search(q, 3), range(8)))
        assert probe.most == expected, type(probe).__name__
