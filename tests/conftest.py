"""Shared pytest fixtures.

Model fixtures (owner: export room): ``tiny_model_store`` is a model store (bundle.ModelStore layout) with
tiny but real intent, sentiment and embedder bundles, all LIVE, built through the real export path by
``tests/fixtures/bundles.py``. It is built once and cached under ``$XIAOKE_TEST_CACHE`` (default
``<repo>/var/test-cache``), keyed by a hash of the builder, export and bundle code and the demo data; each
session gets its own copy, so tests may publish into it or tamper with it freely.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `tests.fixtures` must import whether pytest runs as a script or a module
    sys.path.insert(0, str(REPO))
_TINY_INPUTS = (
    "tests/fixtures/bundles.py",
    "export/*.py",
    "export/parity_sentences.txt",
    "bundle/*.py",
    "training/tokenizer.py",
    "training/embedder.py",
    "training/ngram_model.py",
    "data/demo/intents/labels.json",
    "data/demo/intents/train.jsonl",
    "data/demo/sentiment/train.jsonl",
    "data/demo/faq/faq.jsonl",
)


def _tiny_inputs_hash() -> str:
    h = hashlib.sha256()
    for pattern in _TINY_INPUTS:
        for path in sorted(REPO.glob(pattern)):
            h.update(path.relative_to(REPO).as_posix().encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def _cached_tiny_store() -> Path:
    from tests.fixtures.bundles import build_tiny_bundles

    cache_root = Path(os.environ.get("XIAOKE_TEST_CACHE", REPO / "var" / "test-cache"))
    cache_root.mkdir(parents=True, exist_ok=True)
    target = cache_root / f"tiny-bundles-{_tiny_inputs_hash()}"
    with (cache_root / "tiny-bundles.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time across concurrent sessions
        if not (target / "models").is_dir():
            stage = Path(tempfile.mkdtemp(prefix=".tiny-bundles-", dir=cache_root))
            try:
                build_tiny_bundles(stage)
                os.replace(stage, target)
            except BaseException:
                shutil.rmtree(stage, ignore_errors=True)
                raise
            for stale in cache_root.glob("tiny-bundles-*"):  # older builder versions (copied, never in use)
                if stale != target and stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
    return target / "models"


@pytest.fixture(scope="session")
def tiny_model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a private copy of the tiny model store (intent/, sentiment/, embedder/, each with LIVE)."""
    dest = tmp_path_factory.mktemp("tiny-store") / "models"
    shutil.copytree(_cached_tiny_store(), dest)
    return dest
