"""The model store: <root>/<kind>/<version>/ bundle directories, plus a LIVE pointer per kind.

A bundle directory holds model.onnx (+ variants), tokenizer files, manifest.json. `verify_bundle` re-hashes
every file listed in the manifest and refuses a bundle whose files were changed, added to or removed.
Publishing writes into a temporary directory and renames it into place, so readers never see half a bundle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bundle.manifest import MANIFEST_NAME, BundleKind, Manifest, manifest_digest

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LIVE_POINTER = "LIVE"


class BundleError(Exception):
    """A bundle is missing, malformed or tampered with. `code` is stable; message is human-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@contextlib.contextmanager
def staged_dir(dest: Path) -> Iterator[Path]:
    """A fresh sibling directory of ``dest`` to write into. When the block succeeds it replaces ``dest`` as a
    whole (mode 0755: serving may run as another user); on any failure, Ctrl-C included, it is removed and
    ``dest`` is left as it was. No file of an earlier output survives beside the new one's."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        yield stage
        stage.chmod(0o755)  # mkdtemp creates 0700
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(stage, dest)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def write_pointer(path: Path, value: str) -> None:
    """Atomically make the one-line file ``path`` say ``value`` (LIVE, ACTIVE): written to a private temporary
    file beside it, then ``os.replace``. Concurrent writers never share a temporary file (a fixed ``.tmp``
    name let one publisher move another's half-written file, or find none and fail); the last one wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text_lines(lines: list[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def hash_directory(directory: Path) -> dict[str, str]:
    """sha256 of every regular file below `directory` except the top-level manifest.json, keyed by posix
    relative path (a manifest.json in a subdirectory is an ordinary file: hashed, so an added one is caught)."""
    out: dict[str, str] = {}
    for p in sorted(directory.rglob("*")):
        rel = p.relative_to(directory).as_posix()
        if p.is_file() and rel != MANIFEST_NAME:
            out[rel] = sha256_file(p)
    return out


def read_manifest(directory: Path) -> Manifest:
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise BundleError("BUNDLE_NOT_FOUND", f"no {MANIFEST_NAME} in {directory}")
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BundleError("BUNDLE_MANIFEST_INVALID", f"{path}: manifest does not match the schema") from exc


def write_manifest(directory: Path, manifest: Manifest) -> Manifest:
    """Hash every file in `directory`, store the hashes in the manifest and write it."""
    directory = Path(directory)
    manifest = manifest.model_copy(update={"files": hash_directory(directory), "manifest_sha256": None})
    # through JSON first: the digest must be of what a reader will load (e.g. integer keys become strings)
    data = json.loads(json.dumps(manifest.model_dump(mode="json"), ensure_ascii=False))
    data["manifest_sha256"] = manifest_digest(data)
    (directory / MANIFEST_NAME).write_text(
        json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return manifest.model_copy(update={"manifest_sha256": data["manifest_sha256"]})


def _check_manifest_digest(directory: Path) -> None:
    """The manifest's own ``manifest_sha256`` against its content: a hand edit (a label renamed, a threshold
    changed, a file hash replaced) is refused like a changed model file. Older manifests have none."""
    path = directory / MANIFEST_NAME
    data = json.loads(path.read_text(encoding="utf-8"))  # read_manifest already parsed it
    recorded = data.get("manifest_sha256")
    if recorded is not None and recorded != manifest_digest(data):
        raise BundleError(
            "BUNDLE_TAMPERED",
            f"{directory}: refusing tampered bundle: {MANIFEST_NAME} (content differs from its manifest_sha256)",
        )


def verify_bundle(directory: Path | str) -> Manifest:
    """Re-check every hash. Raises BundleError(BUNDLE_TAMPERED / BUNDLE_INCOMPLETE) on any mismatch."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    _check_manifest_digest(directory)
    if not manifest.files:
        raise BundleError("BUNDLE_INCOMPLETE", f"{directory}: manifest lists no files")
    actual = hash_directory(directory)
    missing = sorted(set(manifest.files) - set(actual))
    extra = sorted(set(actual) - set(manifest.files))
    changed = sorted(k for k in manifest.files.keys() & actual.keys() if manifest.files[k] != actual[k])
    if missing:
        raise BundleError("BUNDLE_INCOMPLETE", f"{directory}: files missing: {', '.join(missing)}")
    if changed or extra:
        detail = ", ".join(
            [*(f"{c} (hash differs)" for c in changed), *(f"{e} (not in manifest)" for e in extra)]
        )
        raise BundleError("BUNDLE_TAMPERED", f"{directory}: refusing tampered bundle: {detail}")
    for variant, name in manifest.variants.items():
        if name not in manifest.files:
            raise BundleError("BUNDLE_INCOMPLETE", f"{directory}: variant {variant} file {name} missing")
    return manifest


def check_version(version: str) -> str:
    if not _VERSION_RE.fullmatch(version):  # not match(): its `$` also accepts a trailing newline
        raise BundleError("BUNDLE_VERSION_INVALID", f"invalid bundle version {version!r}")
    return version


class ModelStore:
    """A directory of published bundles: <root>/<kind>/<version>/, <root>/<kind>/LIVE holds the live version."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def kind_dir(self, kind: BundleKind) -> Path:
        return self.root / kind.value

    def path(self, kind: BundleKind, version: str) -> Path:
        return self.kind_dir(kind) / check_version(version)

    def versions(self, kind: BundleKind) -> list[str]:
        d = self.kind_dir(kind)
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if p.is_dir() and (p / MANIFEST_NAME).is_file())

    def live_version(self, kind: BundleKind) -> str | None:
        pointer = self.kind_dir(kind) / LIVE_POINTER
        if not pointer.is_file():
            return None
        return pointer.read_text(encoding="utf-8").strip() or None

    def resolve(self, kind: BundleKind, version: str | None = None) -> Path:
        """The directory of `version`, or of the live version when None / "live"."""
        if version in (None, "", "live"):
            live = self.live_version(kind)
            if live is None:
                raise BundleError("BUNDLE_NOT_FOUND", f"no live {kind.value} bundle in {self.root}")
            version = live
        path = self.path(kind, version)
        if not (path / MANIFEST_NAME).is_file():
            raise BundleError("BUNDLE_NOT_FOUND", f"{kind.value} bundle {version} not in {self.root}")
        return path

    def publish(self, source: Path | str, *, set_live: bool = True, replace: bool = False) -> Manifest:
        """Verify `source`, copy it in atomically under its manifest's kind/version, optionally set LIVE."""
        manifest = verify_bundle(source)
        dest = self.path(manifest.kind, manifest.version)
        if dest.exists():
            if not replace:
                raise BundleError(
                    "BUNDLE_EXISTS", f"{manifest.kind.value} {manifest.version} already published"
                )
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{manifest.version}-", dir=dest.parent))
        try:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
            verify_bundle(tmp)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if set_live:
            self.set_live(manifest.kind, manifest.version)
        return manifest

    def set_live(self, kind: BundleKind, version: str) -> None:
        self.resolve(kind, version)  # must exist
        write_pointer(self.kind_dir(kind) / LIVE_POINTER, version)
