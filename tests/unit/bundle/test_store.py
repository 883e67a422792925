import json
from pathlib import Path

import pytest

from bundle.manifest import BundleKind, Manifest, Variant
from bundle.store import BundleError, ModelStore, read_manifest, verify_bundle, write_manifest


def _make_bundle(d: Path, version: str = "v1") -> Manifest:
    d.mkdir(parents=True)
    (d / "model.onnx").write_bytes(b"\x08\x01fake-onnx")
    (d / "tokenizer.json").write_text('{"x": 1}', encoding="utf-8")
    m = Manifest(
        kind=BundleKind.INTENT,
        version=version,
        source_checkpoint="ckpt",
        labels=["greeting", "goodbye"],
        variants={Variant.FP32: "model.onnx"},
    )
    return write_manifest(d, m)


def _nested(d: Path, rel: str) -> None:
    (d / rel).parent.mkdir(parents=True, exist_ok=True)
    (d / rel).write_text("{}", encoding="utf-8")


def _edit_manifest(d: Path, old: str, new: str) -> None:
    """One hand edit of manifest.json's text (still valid JSON matching the schema)."""
    text = (d / "manifest.json").read_text(encoding="utf-8")
    assert old in text
    (d / "manifest.json").write_text(text.replace(old, new, 1), encoding="utf-8")


def test_write_then_verify_roundtrip(tmp_path: Path) -> None:
    m = _make_bundle(tmp_path / "b")
    assert set(m.files) == {"model.onnx", "tokenizer.json"}
    assert verify_bundle(tmp_path / "b").version == "v1"
    assert read_manifest(tmp_path / "b").labels == ["greeting", "goodbye"]


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (lambda d: (d / "model.onnx").write_bytes(b"\x08\x01fake-onnY"), "BUNDLE_TAMPERED"),
        (lambda d: (d / "extra.bin").write_bytes(b"x"), "BUNDLE_TAMPERED"),
        # only the top-level manifest.json is exempt from hashing, not any file of that name
        (lambda d: _nested(d, "sub/manifest.json"), "BUNDLE_TAMPERED"),
        (lambda d: (d / "tokenizer.json").unlink(), "BUNDLE_INCOMPLETE"),
        (
            lambda d: (d / "manifest.json").write_text("{not json", encoding="utf-8"),
            "BUNDLE_MANIFEST_INVALID",
        ),
        (lambda d: (d / "manifest.json").unlink(), "BUNDLE_NOT_FOUND"),
        # the manifest itself: one byte of a label (index -> label mapping), a threshold
        (lambda d: _edit_manifest(d, '"greeting"', '"greetinG"'), "BUNDLE_TAMPERED"),
        (lambda d: _edit_manifest(d, '"default": 0.5', '"default": 0.1'), "BUNDLE_TAMPERED"),
    ],
)
def test_verify_refuses_tampered(tmp_path: Path, tamper, code: str) -> None:
    _make_bundle(tmp_path / "b")
    tamper(tmp_path / "b")
    with pytest.raises(BundleError) as exc:
        verify_bundle(tmp_path / "b")
    assert exc.value.code == code


def test_manifest_edit_is_named_and_older_manifests_without_a_digest_still_verify(tmp_path: Path) -> None:
    _make_bundle(tmp_path / "b")
    _edit_manifest(tmp_path / "b", '"greeting"', '"goodbye"')
    with pytest.raises(BundleError, match=r"manifest\.json \(content differs"):
        verify_bundle(tmp_path / "b")
    legacy = tmp_path / "legacy"  # written before manifests carried their own digest
    _make_bundle(legacy)
    data = json.loads((legacy / "manifest.json").read_text(encoding="utf-8"))
    del data["manifest_sha256"]
    (legacy / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    assert verify_bundle(legacy).manifest_sha256 is None


def test_store_publish_live_and_rollback(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    _make_bundle(tmp_path / "b1", "v1")
    _make_bundle(tmp_path / "b2", "v2")
    store.publish(tmp_path / "b1")
    assert store.live_version(BundleKind.INTENT) == "v1"
    store.publish(tmp_path / "b2")
    assert store.versions(BundleKind.INTENT) == ["v1", "v2"]
    assert store.resolve(BundleKind.INTENT).name == "v2"
    store.set_live(BundleKind.INTENT, "v1")
    assert store.resolve(BundleKind.INTENT, "live").name == "v1"
    with pytest.raises(BundleError) as exc:
        store.publish(tmp_path / "b1")
    assert exc.value.code == "BUNDLE_EXISTS"


def test_store_refuses_tampered_source_and_bad_versions(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    _make_bundle(tmp_path / "b", "v1")
    (tmp_path / "b" / "model.onnx").write_bytes(b"evil")
    with pytest.raises(BundleError):
        store.publish(tmp_path / "b")
    assert store.versions(BundleKind.INTENT) == []
    with pytest.raises(BundleError) as exc:
        store.resolve(BundleKind.INTENT, "../../etc")
    assert exc.value.code == "BUNDLE_VERSION_INVALID"
    with pytest.raises(BundleError) as exc:
        store.resolve(BundleKind.EMBEDDER)
    assert exc.value.code == "BUNDLE_NOT_FOUND"


@pytest.mark.parametrize("version", ["v1\n", "../v1", ".v1", "v1/x", ""])
def test_bundle_versions_are_checked_whole(tmp_path: Path, version: str) -> None:
    with pytest.raises(BundleError) as exc:
        ModelStore(tmp_path).path(BundleKind.INTENT, version)
    assert exc.value.code == "BUNDLE_VERSION_INVALID"


def test_concurrent_live_switches_never_fail(tmp_path: Path) -> None:
    """Two publishers switching LIVE at once (two `export publish` runs, a build and an operator) shared one
    LIVE.tmp file: one's os.replace could move the other's half-written file, or find none and raise."""
    import threading

    store = ModelStore(tmp_path / "store")
    for v in ("v1", "v2"):
        _make_bundle(tmp_path / v, v)
        store.publish(tmp_path / v)
    errors: list[BaseException] = []

    def flip(version: str) -> None:
        try:
            for _ in range(300):
                store.set_live(BundleKind.INTENT, version)
        except BaseException as exc:  # noqa: BLE001 - the test collects whatever a switch raises
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(v,)) for v in ("v1", "v2", "v1", "v2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.live_version(BundleKind.INTENT) in {"v1", "v2"}
    assert sorted(p.name for p in store.kind_dir(BundleKind.INTENT).iterdir() if not p.is_dir()) == ["LIVE"]
