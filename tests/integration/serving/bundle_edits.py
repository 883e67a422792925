"""Bundle edits shared by the serving tests (local testing mode and the real-Serve probes): a second intent
bundle that disagrees with the first, a second embedder version, and a tampered file. Not a test module."""

from __future__ import annotations

import shutil
from pathlib import Path

from bundle.store import ModelStore, read_manifest, write_manifest


def publish_permuted_intent(store: Path, work_dir: Path, version: str = "tiny-2") -> str:
    """A second intent bundle whose label order is reversed: same logits, different top-1 label."""
    src = store / "intent" / "tiny-1"
    work = work_dir / f"intent-{version}"
    shutil.copytree(src, work)
    m = read_manifest(work)
    write_manifest(work, m.model_copy(update={"version": version, "labels": list(reversed(m.labels))}))
    ModelStore(store).publish(work, set_live=False)
    return version


def publish_embedder_copy(store: Path, work_dir: Path, version: str = "tiny-emb-2") -> str:
    """The embedder bundle under another version, as a retrained embedder ships: an index records the version
    that built it, and serving treats another version as another vector space."""
    work = work_dir / f"embedder-{version}"
    shutil.copytree(store / "embedder" / "tiny-1", work)
    write_manifest(work, read_manifest(work).model_copy(update={"version": version}))
    ModelStore(store).publish(work, set_live=False)
    return version


def tamper(bundle_dir: Path) -> None:
    with (bundle_dir / "model.int8.onnx").open("ab") as f:
        f.write(b"\0")  # one byte more: its sha256 no longer matches the manifest
