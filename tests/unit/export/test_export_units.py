"""Export pieces that need no model files: checkpoint checks, parity gates and sentences, CLI verify/publish."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bundle.manifest import BundleKind, Manifest, Parity, Variant
from bundle.store import ModelStore, write_manifest
from export.checkpoint import check_checkpoint, embedder_layout, read_training_meta
from export.cli import main as cli_main
from export.errors import ExportError
from export.parity import (
    FP32_MAX_ABS_DIFF,
    INT8_MIN_COSINE,
    INT8_MIN_TOP1_AGREEMENT,
    MIN_SENTENCES,
    check_gates,
    load_parity_sentences,
)
from export.pipeline import default_version

REPO = Path(__file__).resolve().parents[3]


def _checkpoint(d: Path, meta: dict, id2label: dict | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps({"id2label": id2label or {}}), encoding="utf-8")
    (d / "tokenizer.json").write_text("{}", encoding="utf-8")
    (d / "xiaoke_training.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return d


def test_parity_sentences_fixed_varied_chinese() -> None:
    sentences = load_parity_sentences()
    assert len(sentences) >= MIN_SENTENCES
    assert len(set(sentences)) == len(sentences)
    assert not any(s.startswith("#") for s in sentences)
    cjk = [s for s in sentences if any("\u4e00" <= ch <= "\u9fff" for ch in s)]
    assert len(cjk) >= 0.8 * len(sentences)
    assert any(len(s) >= 40 for s in sentences) and any(len(s) <= 2 for s in sentences)


def test_parity_sentences_from_file(tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_text("# comment\n你好\n\n  退款  \n", encoding="utf-8")
    assert load_parity_sentences(f) == ["你好", "退款"]


@pytest.mark.parametrize(
    ("kind", "parity", "expect"),
    [
        (BundleKind.INTENT, Parity(sentences=57, fp32_max_abs_diff=2e-6, int8_top1_agreement=1.0), []),
        (BundleKind.INTENT, Parity(sentences=57, fp32_max_abs_diff=2e-4, int8_top1_agreement=1.0), ["fp32"]),
        (
            BundleKind.INTENT,
            Parity(sentences=57, fp32_max_abs_diff=2e-6, int8_top1_agreement=0.98),
            ["top-1"],
        ),
        (
            BundleKind.INTENT,
            Parity(sentences=10, fp32_max_abs_diff=2e-6, int8_top1_agreement=1.0),
            ["sentences"],
        ),
        (BundleKind.EMBEDDER, Parity(sentences=57, fp32_max_abs_diff=1e-6, int8_min_cosine=0.995), []),
        (BundleKind.EMBEDDER, Parity(sentences=57, fp32_max_abs_diff=1e-6, int8_min_cosine=0.97), ["cosine"]),
        (BundleKind.EMBEDDER, Parity(sentences=57, fp32_max_abs_diff=None, int8_min_cosine=0.999), ["fp32"]),
    ],
)
def test_check_gates(kind: BundleKind, parity: Parity, expect: list[str]) -> None:
    failures = check_gates(parity, kind, [Variant.FP32, Variant.INT8])
    assert len(failures) == len(expect)
    for word, failure in zip(expect, failures, strict=True):
        assert word in failure


def test_gates_skip_int8_when_not_exported() -> None:
    p = Parity(sentences=57, fp32_max_abs_diff=1e-6)
    assert check_gates(p, BundleKind.SENTIMENT, [Variant.FP32]) == []
    assert check_gates(p, BundleKind.SENTIMENT, [Variant.FP32, Variant.INT8]) != []


def test_tolerances_match_the_brief() -> None:
    assert FP32_MAX_ABS_DIFF == 1e-4
    assert INT8_MIN_TOP1_AGREEMENT == 0.99
    assert INT8_MIN_COSINE == 0.99


def test_checkpoint_meta_and_label_checks(tmp_path: Path) -> None:
    meta = {"kind": "intent", "labels": ["a", "b"], "thresholds": {"default": 0.4, "rule": "text"}}
    ok = _checkpoint(tmp_path / "ok", meta, {"0": "a", "1": "b"})
    m = check_checkpoint(ok)
    assert m.labels == ["a", "b"]
    assert m.bundle_thresholds().default == 0.4  # free-text "rule" dropped, schema kept

    swapped = _checkpoint(tmp_path / "swapped", meta, {"0": "b", "1": "a"})
    with pytest.raises(ExportError) as err:
        check_checkpoint(swapped)
    assert err.value.code == "CHECKPOINT_INVALID"

    from_config = _checkpoint(tmp_path / "cfg", {"kind": "sentiment"}, {"1": "pos", "0": "neg"})
    assert check_checkpoint(from_config).labels == ["neg", "pos"]


@pytest.mark.parametrize(
    "breakage",
    ["no_meta", "bad_json", "bad_kind", "no_config", "bad_config_json", "embedder_without_modules"],
)
def test_checkpoint_refused(tmp_path: Path, breakage: str) -> None:
    kind = "embedder" if breakage == "embedder_without_modules" else "intent"
    d = _checkpoint(tmp_path / "c", {"kind": kind, "labels": ["a", "b"]}, {"0": "a", "1": "b"})
    if breakage == "no_meta":
        (d / "xiaoke_training.json").unlink()
    elif breakage == "bad_json":
        (d / "xiaoke_training.json").write_text("{", encoding="utf-8")
    elif breakage == "bad_kind":
        (d / "xiaoke_training.json").write_text('{"kind": "translator"}', encoding="utf-8")
    elif breakage == "no_config":
        (d / "config.json").unlink()
    elif breakage == "bad_config_json":
        (d / "config.json").write_text("{", encoding="utf-8")
    with pytest.raises(ExportError) as err:
        check_checkpoint(d)
    assert err.value.code == "CHECKPOINT_INVALID"


def test_read_training_meta_keeps_unknown_keys(tmp_path: Path) -> None:
    d = _checkpoint(tmp_path / "c", {"kind": "embedder", "recipe": {"epochs": 1}, "max_seq_len": 48})
    meta = read_training_meta(d)
    assert meta.kind is BundleKind.EMBEDDER and meta.max_seq_len == 48
    assert meta.model_dump()["recipe"] == {"epochs": 1}


def test_embedder_layout_both_pooling_config_styles(tmp_path: Path) -> None:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (tmp_path / "1_Pooling" / "config.json").write_text(
        '{"pooling_mode_mean_tokens": true}', encoding="utf-8"
    )
    assert embedder_layout(tmp_path) == {"pooling": "mean", "normalized": False}
    modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "x.Normalize"})
    (tmp_path / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode": "cls"}', encoding="utf-8")
    assert embedder_layout(tmp_path) == {"pooling": "cls", "normalized": True}


def test_default_version_is_valid_and_content_tagged(tmp_path: Path) -> None:
    from bundle.store import check_version

    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    va, vb = default_version(a), default_version(b)
    assert check_version(va) == va
    assert va.split("-")[-1] != vb.split("-")[-1]


def _fake_bundle(d: Path, version: str = "v1") -> Path:
    d.mkdir(parents=True)
    (d / "model.onnx").write_bytes(b"\x08\x01fake")
    (d / "tokenizer.json").write_text("{}", encoding="utf-8")
    write_manifest(
        d,
        Manifest(
            kind=BundleKind.INTENT,
            version=version,
            source_checkpoint="ckpt",
            labels=["a", "b"],
            variants={Variant.FP32: "model.onnx"},
        ),
    )
    return d


def test_cli_verify_ok_and_tampered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = _fake_bundle(tmp_path / "b")
    assert cli_main(["verify", str(b)]) == 0
    assert "OK intent v1" in capsys.readouterr().out
    (b / "tokenizer.json").write_text("{ }", encoding="utf-8")
    assert cli_main(["verify", str(b)]) == 1
    err = capsys.readouterr().err
    assert "BUNDLE_TAMPERED" in err and "tokenizer.json" in err
    assert cli_main(["verify", str(tmp_path / "missing")]) == 1
    assert "BUNDLE_NOT_FOUND" in capsys.readouterr().err


def test_cli_publish_live_and_not_live(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert cli_main(["publish", str(_fake_bundle(tmp_path / "b1", "v1")), "--store", str(store)]) == 0
    assert (
        cli_main(["publish", str(_fake_bundle(tmp_path / "b2", "v2")), "--store", str(store), "--no-live"])
        == 0
    )
    s = ModelStore(store)
    assert s.versions(BundleKind.INTENT) == ["v1", "v2"]
    assert s.live_version(BundleKind.INTENT) == "v1"


def test_cli_bundle_refuses_bad_checkpoint_with_exit_1(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "export",
            "bundle",
            "--checkpoint",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    assert "CHECKPOINT_INVALID" in res.stderr and "Traceback" not in res.stderr


def test_cli_bundle_out_that_is_a_file_is_output_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = _checkpoint(tmp_path / "c", {"kind": "intent", "labels": ["a", "b"]}, {"0": "a", "1": "b"})
    out = tmp_path / "out.onnx"
    out.write_bytes(b"x")
    assert cli_main(["bundle", "--checkpoint", str(ckpt), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "OUTPUT_EXISTS" in err and "out.onnx" in err and "Traceback" not in err
    assert out.read_bytes() == b"x"


def test_cli_publish_into_a_store_that_is_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bundle.manifest import BundleKind, Manifest, Variant
    from bundle.store import write_manifest

    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "model.onnx").write_bytes(b"\x08\x01fake-onnx")
    write_manifest(
        bundle,
        Manifest(
            kind=BundleKind.INTENT,
            version="v1",
            source_checkpoint="c",
            labels=["a", "b"],
            variants={Variant.FP32: "model.onnx"},
        ),
    )
    store = tmp_path / "store"
    store.write_bytes(b"x")
    assert cli_main(["publish", str(bundle), "--store", str(store)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error [") and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_import_is_light() -> None:
    code = "import sys, export, export.cli; print(any(m in sys.modules for m in ('torch', 'optimum', 'onnxruntime')))"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "False", res.stderr


def test_cli_bundle_messages_name_the_flag_and_a_missing_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing --checkpoint said "not a directory"; a non-empty --out said "(use overwrite)", a flag that
    the CLI spells --overwrite."""
    assert cli_main(["bundle", "--checkpoint", str(tmp_path / "typo"), "--out", str(tmp_path / "o")]) == 1
    assert "typo: no such directory" in capsys.readouterr().err
    ckpt = _checkpoint(tmp_path / "c", {"kind": "intent", "labels": ["a", "b"]}, {"0": "a", "1": "b"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x", encoding="utf-8")
    assert cli_main(["bundle", "--checkpoint", str(ckpt), "--out", str(out)]) == 1
    assert "OUTPUT_EXISTS" in (err := capsys.readouterr().err) and "--overwrite" in err
