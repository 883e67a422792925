"""Bad input to the training CLIs: one ``error: ...`` line on stderr naming the file, non-zero exit, no traceback.

Everything here fails before a model is built (or uses no model at all), so each test takes well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import intent, sentiment
from training.classifier import TRAINING_META
from training.embedder import PairFileError, load_pair_file
from training.embedder import main as embedder_main
from training.evaluate import main as evaluate_main

TRAIN = "你好\tgreeting\n在吗\tgreeting\n我要退款\trefund\n怎么退货\trefund\n"


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("task", [intent, sentiment], ids=["intent", "sentiment"])
@pytest.mark.parametrize(
    ("train", "eval_", "expect"),
    [
        (b"", None, r"train\.tsv: file is empty"),
        ("你好\tgreeting\n".encode("gbk"), None, r"train\.tsv:1: not valid UTF-8"),
        ("你好\tgreeting\textra\n".encode(), None, r"train\.tsv:1: expected text<TAB>label"),
        ("你好\tgreeting\n在吗\tgreeting\n".encode(), None, r"train\.tsv: need at least 2 labels"),
        (TRAIN.encode(), "投诉\tcomplaint\n", r"eval\.tsv: .*complaint"),
    ],
    ids=["empty", "gbk", "extra-column", "one-class", "unseen-eval-label"],
)
def test_classifier_cli_bad_data_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], task, train: bytes, eval_: str | None, expect: str
) -> None:
    import re

    (tmp_path / "train.tsv").write_bytes(train)
    argv = ["--train", str(tmp_path / "train.tsv"), "--out", str(tmp_path / "out"), "--base", "none"]
    argv += ["--threads", "1", "--epochs", "1"]
    if eval_ is not None:
        (tmp_path / "eval.tsv").write_text(eval_, encoding="utf-8")
        argv += ["--eval", str(tmp_path / "eval.tsv")]
    assert task.main(argv) == 2
    assert re.search(expect, _one_error_line(capsys))
    assert not (tmp_path / "out").exists()


def test_classifier_cli_missing_file_base_and_out_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = tmp_path / "train.tsv"
    train.write_text(TRAIN, encoding="utf-8")
    common = ["--threads", "1", "--epochs", "1"]
    assert intent.main(["--train", str(tmp_path / "nope.tsv"), "--out", str(tmp_path / "o"), *common]) == 2
    assert "nope.tsv: no such file" in _one_error_line(capsys)
    argv = ["--train", str(train), "--out", str(tmp_path / "o"), "--base", str(tmp_path / "nobase"), *common]
    assert intent.main(argv) == 2
    assert "nobase: not a checkpoint directory" in _one_error_line(capsys)
    assert intent.main(["--train", str(train), "--out", str(train), "--base", "none", *common]) == 2
    assert "train.tsv: exists and is not a directory" in _one_error_line(capsys)


def test_evaluate_cli_broken_checkpoint_and_report_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.tsv"
    data.write_text(TRAIN, encoding="utf-8")
    bad_meta = tmp_path / "bad_meta"
    bad_meta.mkdir()
    (bad_meta / TRAINING_META).write_text("{oops", encoding="utf-8")
    assert evaluate_main(["--model", str(bad_meta), "--data", str(data)]) == 2
    assert f"{TRAINING_META}: not valid JSON" in _one_error_line(capsys)
    no_weights = tmp_path / "no_weights"  # metadata copied without the model files
    no_weights.mkdir()
    (no_weights / TRAINING_META).write_text(json.dumps({"labels": ["greeting", "refund"]}), encoding="utf-8")
    assert evaluate_main(["--model", str(no_weights), "--data", str(data)]) == 2
    _one_error_line(capsys)


def test_pair_file_not_utf8_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "lcqmc.txt"
    f.write_bytes("花呗怎么还\t花呗还款\t1\n".encode() + "借呗额度\t借呗能借多少\t1\n".encode("gbk"))
    with pytest.raises(PairFileError, match=r"lcqmc\.txt:2: not valid UTF-8"):
        load_pair_file(f)


def test_pair_tsv_quotes_are_text_not_csv_quoting(tmp_path: Path) -> None:
    f = tmp_path / "lcqmc.txt"
    f.write_text('"花呗"怎么还\t花呗还款\t1\n"借呗额度\t借呗能借多少\t0\n退款\t"退钱"\t1\n', encoding="utf-8")
    assert load_pair_file(f) == [
        ('"花呗"怎么还', "花呗还款", 1),
        ('"借呗额度', "借呗能借多少", 0),
        ("退款", '"退钱"', 1),
    ]


def test_pair_csv_errors_give_the_file_line_and_header_after_blank_lines(tmp_path: Path) -> None:
    f = tmp_path / "bq.csv"
    f.write_text('\nsentence1,sentence2,label\r\n"多行\r\n问题",b,1\r\nc,d,x\r\n', encoding="utf-8")
    with pytest.raises(PairFileError, match=r"bq\.csv:5: label 'x' is not 0/1"):
        load_pair_file(f)
    f.write_text('\nsentence1,sentence2,label\n"多行\n问题",b,1\n', encoding="utf-8")
    assert load_pair_file(f) == [("多行\n问题", "b", 1)]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(PairFileError, match=r"empty\.jsonl: no sentence pairs"):
        load_pair_file(empty)


def test_embedder_cli_errors_go_to_stderr_and_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gbk = tmp_path / "pairs.txt"
    gbk.write_bytes("花呗怎么还\t花呗还款\t1\n".encode("gbk"))
    base = ["--out", str(tmp_path / "out"), "--base", "none", "--threads", "1"]
    assert embedder_main([*base, "--faq", "none", "--pairs", str(gbk)]) == 1
    assert "pairs.txt:1: not valid UTF-8" in _one_error_line(capsys)
    assert embedder_main([*base, "--faq", str(tmp_path / "my_faq.jsonl")]) == 1
    assert "my_faq.jsonl: no such file" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("config", "ngram", "expect"),
    [
        # not BERT: the tokenizer or the model class raised a TypeError traceback from inside transformers
        ({"model_type": "gpt2", "n_layer": 1, "n_embd": 8, "n_head": 2}, False, r"TypeError"),
        # with the n-gram branch a non-BERT base would silently start from random weights
        ({"model_type": "gpt2", "n_layer": 1, "n_embd": 8, "n_head": 2}, True, r"model_type 'gpt2'"),
        ([1, 2], True, r"not a JSON object"),
        ({}, True, r"model_type None"),
    ],
    ids=["gpt2", "gpt2-ngram", "config-not-an-object", "config-without-model-type"],
)
def test_classifier_cli_base_that_is_not_a_bert_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: object, ngram: bool, expect: str
) -> None:
    import re

    (tmp_path / "train.tsv").write_text(TRAIN, encoding="utf-8")
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps(config), encoding="utf-8")
    argv = ["--train", str(tmp_path / "train.tsv"), "--out", str(tmp_path / "out"), "--base", str(base)]
    argv += ["--threads", "1", "--epochs", "1", "--ngram-branch" if ngram else "--no-ngram-branch"]
    assert intent.main(argv) == 2
    line = _one_error_line(capsys)
    assert f"--base {base}: not a usable BERT-style checkpoint" in line and re.search(expect, line), line


def _foreign_model(d: Path, meta: dict[str, str] | None) -> dict[str, bytes]:
    """A directory holding someone else's model (a user's bert-base-chinese, or one of our embedders)."""
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "bert", "hidden_size": 768}', encoding="utf-8")
    (d / "vocab.txt").write_text("[PAD]\n[UNK]\n", encoding="utf-8")
    if meta is not None:
        (d / TRAINING_META).write_text(json.dumps(meta), encoding="utf-8")
        (d / "modules.json").write_text("[]", encoding="utf-8")
    return {p.name: p.read_bytes() for p in d.iterdir()}


@pytest.mark.parametrize(
    ("meta", "expect"),
    [
        (None, "files that are not a model of ours"),
        ({"kind": "embedder"}, "a model of another kind (embedder)"),
    ],
    ids=["not-ours", "embedder"],
)
def test_cli_refuses_an_out_dir_holding_another_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], meta: dict[str, str] | None, expect: str
) -> None:
    """Was: trained and wrote the intent model's config.json / vocab.txt over the other model's files, leaving a
    mixture (an embedder's modules.json beside an intent classifier's config)."""
    (tmp_path / "train.tsv").write_text(TRAIN, encoding="utf-8")
    out = tmp_path / "their_model"
    before = _foreign_model(out, meta)
    argv = ["--train", str(tmp_path / "train.tsv"), "--out", str(out), "--base", "none"]
    assert intent.main([*argv, "--threads", "1", "--epochs", "1"]) == 2
    line = _one_error_line(capsys)
    assert f"--out {out}: already holds {expect}" in line and "--overwrite" in line, line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_embedder_cli_refuses_an_out_dir_holding_another_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(
        "花呗怎么还\t花呗还款\t1\n借呗额度\t借呗能借多少\t1\n退款\t怎么退钱\t1\n", encoding="utf-8"
    )
    out = tmp_path / "intent_model"
    before = _foreign_model(out, {"kind": "intent"})
    argv = ["--out", str(out), "--faq", "none", "--pairs", str(pairs), "--base", "none", "--threads", "1"]
    assert embedder_main([*argv, "--epochs", "1"]) == 1
    assert f"--out {out}: already holds a model of another kind (intent)" in _one_error_line(capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_retrieval_benchmark_cli_bad_input_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: a traceback (exit 1) for a missing / GBK pair file, a store without a LIVE embedder or an --embedder
    that is not one; "give --pairs" went to stdout, where the JSON result line is expected."""
    from training.benchmarks.__main__ import main as bench_main

    gbk = tmp_path / "lcqmc.txt"
    gbk.write_bytes("花呗怎么还\t花呗还款\t1\n".encode("gbk"))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("花呗怎么还\t花呗还款\t1\n", encoding="utf-8")
    intent_model = tmp_path / "intent_model"
    intent_model.mkdir()
    (intent_model / TRAINING_META).write_text(json.dumps({"kind": "intent"}), encoding="utf-8")
    cases = [
        (["--pairs", str(tmp_path / "nope.txt"), "--embedder", str(tmp_path)], "nope.txt: no such file"),
        (["--pairs", str(gbk), "--embedder", str(tmp_path)], "lcqmc.txt:1: not valid UTF-8"),
        (["--pairs", str(pairs), "--store", str(tmp_path / "empty_store")], "no live embedder bundle"),
        (["--pairs", str(pairs), "--embedder", str(intent_model)], "kind 'intent', not an embedder"),
        (["--pairs", str(pairs), "--embedder", str(tmp_path / "nodir")], "nodir: no such directory"),
        (["--embedder", str(tmp_path)], "give --pairs FILE or --faq-heldout"),
    ]
    for argv, expect in cases:
        assert bench_main(["retrieval", *argv]) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == "", argv
        err = [ln for ln in captured.err.splitlines() if ln.strip()]
        assert len(err) == 1 and err[0].startswith("error") and expect in err[0], (argv, captured.err)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--batch-size", "0"),  # was a ZeroDivisionError traceback
        ("--threads", "-1"),  # was a RuntimeError traceback from torch.set_num_threads
        ("--max-len", "1"),  # was accepted: nothing truncated in training, max_seq_len 1 stored for serving
        ("--epochs", "0"),  # was accepted: one step trained
        ("--lr", "0"),  # was accepted: the default learning rate used instead
    ],
)
def test_training_cli_rejects_nonsense_numbers_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    (tmp_path / "train.tsv").write_text(TRAIN, encoding="utf-8")
    argv = [
        "--train",
        str(tmp_path / "train.tsv"),
        "--out",
        str(tmp_path / "out"),
        "--base",
        "none",
        flag,
        value,
    ]
    for cli in (intent.main, sentiment.main):
        with pytest.raises(SystemExit) as exc:
            cli(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {flag}: must be" in err and "Traceback" not in err
    pairs = ["--pairs", str(tmp_path / "train.tsv"), "--faq", "none", "--out", str(tmp_path / "emb")]
    with pytest.raises(SystemExit) as exc:  # the embedder takes the same numbers
        embedder_main([*pairs, flag, value])
    assert exc.value.code == 2 and f"argument {flag}: must be" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        evaluate_main(["--model", str(tmp_path), "--data", str(tmp_path / "train.tsv"), "--batch-size", "0"])
    assert exc.value.code == 2 and "argument --batch-size: must be" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "emb").exists()


def test_evaluate_cli_model_dir_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in --model said "not a training output (no xiaoke_training.json)", as if the directory existed."""
    data = tmp_path / "data.tsv"
    data.write_text(TRAIN, encoding="utf-8")
    assert evaluate_main(["--model", str(tmp_path / "typo"), "--data", str(data)]) == 2
    assert f"{tmp_path / 'typo'}: no such directory" in _one_error_line(capsys)


def test_embedder_cli_base_that_is_not_a_model_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was a TypeError traceback (a config.json of another architecture, no tokenizer files)."""
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("花呗怎么还\t花呗还款\t1\n借呗额度\t借呗能借多少\t1\n", encoding="utf-8")
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1}), encoding="utf-8")
    argv = ["--out", str(tmp_path / "out"), "--faq", "none", "--pairs", str(pairs), "--base", str(base)]
    assert embedder_main([*argv, "--threads", "1", "--epochs", "1"]) == 1
    assert f"--base {base}: not a usable BERT-style checkpoint" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_evaluate_cli_on_an_embedder_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Was: "2 label(s) unknown to the model: [...] (the model knows: [])"."""
    data = tmp_path / "data.tsv"
    data.write_text(TRAIN, encoding="utf-8")
    emb = tmp_path / "embedder"
    emb.mkdir()
    (emb / TRAINING_META).write_text(json.dumps({"kind": "embedder", "labels": []}), encoding="utf-8")
    assert evaluate_main(["--model", str(emb), "--data", str(data)]) == 2
    assert f"{emb}: an embedder, not a classifier" in _one_error_line(capsys)
