"""How long retrieval stays keyword-only after an embedder change: time serving's re-embedding of the live index.

    python -m benchmarks.reembed [--store DIR] [--faq FILE]

Copies the store's bundles (not its indexes) to a scratch directory, publishes the demo FAQ (or --faq) as an
index built by the LIVE embedder, publishes a copy of that embedder under another version (as a retrained
embedder ships: another version is another vector space to serving), pins it, and times
`NluIngress.reembed_index()` - the work one replica does after an embedder swap (docs/operations.md, section 5).
Everything runs in this process on the store's real bundles; the window a visitor sees adds the watcher's
2-4 s (two checks `index_poll_s` apart). The last stdout line is a JSON object. Runs inside a private network
namespace like the other serving benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks.api import REPO, reexec_in_netns


async def measure(store: Path, faq: Path, work: Path) -> dict[str, Any]:
    from bundle.contracts import IndexBuildRequest
    from bundle.manifest import BundleKind
    from bundle.store import ModelStore, read_manifest, write_manifest
    from serving.ingress import NluIngress, load_faq_jsonl
    from serving.providers import Device
    from serving.settings import ServingArgs

    scratch = work / "models"
    shutil.copytree(store, scratch, ignore=shutil.ignore_patterns("indexes"))
    live = ModelStore(scratch).resolve(BundleKind.EMBEDDER, None)
    copy = work / "embedder-copy"
    shutil.copytree(live, copy)
    other = f"{live.name}-copy"
    write_manifest(copy, read_manifest(copy).model_copy(update={"version": other}))
    ModelStore(scratch).publish(copy, set_live=False)

    settings = ServingArgs(
        model_store=scratch,
        jieba_cache_dir=work / "jieba",
        device=Device.CPU,
        bootstrap=False,
        index_poll_s=3600,
    ).settings()
    ingress = object.__new__(NluIngress)
    written = NluIngress.__mro__[1]  # the class as written, before @serve.ingress wrapped it
    written.__init__(ingress, settings)  # type: ignore[misc]

    entries = load_faq_jsonl(faq)
    t0 = time.perf_counter()
    info = await ingress._build(IndexBuildRequest(entries=entries, version="kb-bench", activate=True))
    publish_s = time.perf_counter() - t0
    await ingress.reconfigure({"models": {"embedder": {"bundle_version": other}}})
    t0 = time.perf_counter()
    outcome = await ingress.reembed_index()
    reembed_s = time.perf_counter() - t0
    active = ingress.index_store.active()
    return {
        "questions": info.size,
        "publish_s": round(publish_s, 2),
        "reembed_s": round(reembed_s, 2),
        "outcome": outcome,
        "active": active,
        "embedder": live.name,
        "load_avg": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.reembed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    data = Path(os.environ.get("XIAOKE_DATA_DIR", REPO / "var"))
    p.add_argument("--store", type=Path, default=data / "models", help="model store with LIVE bundles")
    p.add_argument("--faq", type=Path, default=REPO / "data" / "demo" / "faq" / "faq.jsonl")
    args = p.parse_args(argv)
    if not (args.store / "embedder" / "LIVE").is_file():
        p.error(f"no LIVE embedder in {args.store}: run `make models` first")
    reexec_in_netns()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import ray.serve.batching as batching

    # Ray 2.60: a @serve.batch queue asks for the replica context, which exists only inside a deployment
    # (tests/integration/serving/conftest.py `local_serve` does the same)
    quiet = mock.patch.object(
        batching._BatchQueue, "_warn_if_max_batch_size_exceeds_max_ongoing_requests", lambda self: None
    )
    with quiet, tempfile.TemporaryDirectory(prefix="xiaoke-reembed-") as tmp:
        result = asyncio.run(measure(args.store, args.faq, Path(tmp)))
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["outcome"] == "rebuilt" else 1


if __name__ == "__main__":
    raise SystemExit(main())
