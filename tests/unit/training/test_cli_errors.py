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
