"""``python -m export {bundle,verify,publish}``.

    python -m export bundle --checkpoint DIR --out DIR [--version V] [--no-int8] [--fp16] [--publish STORE]
                            [--no-live] [--allow-parity-failure] [--parity-sentences FILE] [--overwrite]
    python -m export verify DIR
    python -m export publish DIR --store STORE [--no-live] [--replace]

Exit codes: 0 ok, 1 a bundle/export error (message on stderr names the code and the file), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from bundle.store import BundleError, ModelStore, verify_bundle
from export.errors import ExportError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m export", description="ONNX export, verify and publish bundles."
    )
    sub = ap.add_subparsers(dest="command", required=True)

    b = sub.add_parser("bundle", help="export a training checkpoint into a bundle directory")
    b.add_argument("--checkpoint", type=Path, required=True)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--version", default=None, help="bundle version (default: UTC timestamp + model hash)")
    b.add_argument("--no-int8", action="store_true", help="skip the int8 (CPU) variant")
    b.add_argument("--fp16", action="store_true", help="also write the fp16 (CUDA) variant")
    b.add_argument(
        "--publish", type=Path, default=None, metavar="STORE", help="publish into this model store"
    )
    b.add_argument("--no-live", action="store_true", help="with --publish: do not make it the LIVE version")
    b.add_argument(
        "--allow-parity-failure", action="store_true", help="write the bundle even if a gate fails"
    )
    b.add_argument("--parity-sentences", type=Path, default=None, help="override the fixed parity set")
    b.add_argument("--overwrite", action="store_true", help="replace a non-empty --out directory")

    v = sub.add_parser("verify", help="re-hash every file of a bundle against its manifest")
    v.add_argument("bundle_dir", type=Path)

    p = sub.add_parser("publish", help="verify a bundle and copy it atomically into a model store")
    p.add_argument("bundle_dir", type=Path)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--no-live", action="store_true", help="publish without moving the LIVE pointer")
    p.add_argument("--replace", action="store_true", help="replace an already published same version")
    return ap


def _fail(code: str, message: str) -> int:
    print(f"error [{code}]: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "bundle":
            return _bundle(args)
        if args.command == "verify":
            m = verify_bundle(args.bundle_dir)
            print(f"OK {m.kind.value} {m.version}: {len(m.files)} files verified ({args.bundle_dir})")
            return 0
        if args.command == "publish":
            store = ModelStore(args.store)
            m = store.publish(args.bundle_dir, set_live=not args.no_live, replace=args.replace)
            live = " (LIVE)" if not args.no_live else ""
            print(f"published {m.kind.value} {m.version} -> {store.path(m.kind, m.version)}{live}")
            return 0
    except (ExportError, BundleError) as exc:
        return _fail(exc.code, exc.message)
    except OSError as exc:  # e.g. --store is a file, or not writable: the path and the reason, no traceback
        return _fail("IO_ERROR", f"{exc.filename or ''}: {exc.strerror or type(exc).__name__}")
    return 2


def _bundle(args: argparse.Namespace) -> int:
    from export.parity import load_parity_sentences
    from export.pipeline import export_bundle

    sentences = load_parity_sentences(args.parity_sentences) if args.parity_sentences else None
    manifest = export_bundle(
        args.checkpoint,
        args.out,
        version=args.version,
        quantize=not args.no_int8,
        fp16=args.fp16,
        parity_sentences=sentences,
        allow_parity_failure=args.allow_parity_failure,
        overwrite=args.overwrite,
        on_log=lambda msg: print(msg, flush=True),
    )
    if args.publish is not None:
        store = ModelStore(args.publish)
        store.publish(args.out, set_live=not args.no_live)
        print(
            f"published {manifest.kind.value} {manifest.version} -> {store.path(manifest.kind, manifest.version)}"
        )
    print(
        json.dumps(
            {
                "version": manifest.version,
                "kind": manifest.kind.value,
                "parity": manifest.parity.model_dump(mode="json"),
            },
            ensure_ascii=False,
        )
    )
    return 0 if manifest.parity.passed or args.allow_parity_failure else 1
