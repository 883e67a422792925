"""training.data: format detection, bad input, splits, class weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.data import (
    DataError,
    class_weights,
    load_labelled,
    sha256_file,
    stratified_kfold,
    stratified_split,
)


def write(tmp_path: Path, name: str, content: str) -> Path:
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    return p


def test_jsonl(tmp_path):
    p = write(
        tmp_path,
        "a.jsonl",
        '{"text": "你好", "label": "greeting"}\n\n{"text": "查订单", "label": "order_status"}\n',
    )
    d = load_labelled(p)
    assert d.texts == ["你好", "查订单"]
    assert d.labels == ["greeting", "order_status"]
    assert d.fmt == "jsonl"
    assert d.sha256 == sha256_file(p)
    assert d.label_set == ["greeting", "order_status"]


def test_jsonl_integer_labels_become_strings(tmp_path):
    p = write(tmp_path, "a.jsonl", '{"text": "好评", "label": 1}\n{"text": "差评", "label": 0}\n')
    assert load_labelled(p).labels == ["1", "0"]


def test_tsv_with_smp_header(tmp_path):
    p = write(tmp_path, "t.tsv", "Sentence\tTag\nopera浏览器\tapp\n明天天气\tweather\n")
    d = load_labelled(p)
    assert d.texts == ["opera浏览器", "明天天气"]
    assert d.labels == ["app", "weather"]


def test_tsv_headerless_and_label_first_header(tmp_path):
    d = load_labelled(write(tmp_path, "a.txt", "房间太小\t0\n很好\t1\n"))
    assert d.labels == ["0", "1"] and d.texts == ["房间太小", "很好"]
    d2 = load_labelled(write(tmp_path, "b.tsv", "label\ttext_a\n1\t很好\n0\t很差\n"))
    assert d2.texts == ["很好", "很差"] and d2.labels == ["1", "0"]


def test_two_column_header_naming_only_the_label_column(tmp_path):
    """ "utterance<TAB>intent": the header was taken for an example, adding a one-example class "intent"."""
    d = load_labelled(write(tmp_path, "u.tsv", "utterance\tintent\n你好\tgreeting\n我要退款\trefund\n"))
    assert d.texts == ["你好", "我要退款"] and d.labels == ["greeting", "refund"]
    d2 = load_labelled(write(tmp_path, "u2.tsv", "标签\t话术\ngreeting\t你好\n"))
    assert d2.texts == ["你好"] and d2.labels == ["greeting"]
    d3 = load_labelled(write(tmp_path, "u3.csv", "utterance,intent\n你好,greeting\n"))
    assert d3.texts == ["你好"] and d3.labels == ["greeting"]


def test_csv_waimai_and_online_shopping_layouts(tmp_path):
    d = load_labelled(write(tmp_path, "w.csv", 'label,review\n1,"很快,好吃"\n0,太慢了\n'))
    assert d.texts == ["很快,好吃", "太慢了"] and d.labels == ["1", "0"]
    p = tmp_path / "o.csv"
    p.write_bytes("\ufeffcat,label,review\n书籍,1,\ufeff好书\n水果,0,\n水果,0,烂了\n".encode())
    d2 = load_labelled(p)
    assert d2.labels == ["1", "0"]
    assert d2.texts[1] == "烂了"
    assert d2.skipped_empty == 1  # the empty review is skipped, not silently kept


def test_rows_of_only_invisible_or_control_characters_are_skipped_as_empty(tmp_path):
    """str.strip() keeps U+200B, U+FEFF and NUL, but normalize() deletes them: such a row trained as an empty
    input with its label (and was scored as one by training.evaluate)."""
    p = write(
        tmp_path, "z.tsv", "\u200b\tgreeting\n\x00\tgreeting\n\u200b\u200d \tchat\n你好\tgreeting\n😀\tchat\n"
    )
    d = load_labelled(p)
    assert d.texts == ["你好", "😀"] and d.skipped_empty == 3
    j = write(tmp_path, "z.jsonl", '{"text": "\\ufeff", "label": "x"}\n{"text": "好", "label": "x"}\n')
    assert load_labelled(j).skipped_empty == 1


def test_txt_and_csv_suffixes_do_not_override_an_unmistakable_layout(tmp_path):
    """A JSONL file saved as .txt was read as TSV ("expected text<TAB>label, got 1 field(s)"); a spreadsheet's
    tab-separated "CSV" export was refused for want of a CSV header."""
    d = load_labelled(write(tmp_path, "a.txt", '{"text": "你好", "label": "greeting"}\n'))
    assert d.fmt == "jsonl" and d.labels == ["greeting"]
    d2 = load_labelled(write(tmp_path, "b.csv", "你好\tgreeting\n退款\trefund\n"))
    assert d2.fmt == "tsv" and d2.texts == ["你好", "退款"]
    assert load_labelled(write(tmp_path, "c.txt", "好,吗\tgreeting\n")).fmt == "tsv"
    assert load_labelled(write(tmp_path, "d.csv", "text,label\n好\tx,y\n")).fmt == "csv"


def test_sniffs_format_without_suffix(tmp_path):
    assert load_labelled(write(tmp_path, "noext", '{"text": "a", "label": "x"}\n')).fmt == "jsonl"
    assert load_labelled(write(tmp_path, "noext2", "句子\tx\n")).fmt == "tsv"


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"\n', 2),
        ("bad2.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n', 2),
        ("bad3.jsonl", '{"text": "a", "label": "x"}\n\n[1, 2]\n', 3),
        ("bad.tsv", "a\tx\nb\n", 2),
        ("bad2.tsv", "a\tx\nb\ty\tz\n", 2),
        ("bad.csv", "label,review\n1,好\n0\n", 3),
        ("noheader.csv", "1,好\n0,差\n", 1),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, name, content, line):
    p = write(tmp_path, name, content)
    with pytest.raises(DataError) as ei:
        load_labelled(p)
    assert f"{p}:{line}:" in str(ei.value)


def test_missing_empty_and_non_utf8(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_labelled(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="empty"):
        load_labelled(write(tmp_path, "e.jsonl", "\n\n"))
    p = tmp_path / "gbk.tsv"
    p.write_bytes("好\tx\n".encode() + "差\ty\n".encode("gbk"))
    with pytest.raises(DataError, match=r"gbk\.tsv:2: not valid UTF-8"):
        load_labelled(p)


def test_stratified_split_is_deterministic_and_stratified():
    labels = ["a"] * 40 + ["b"] * 10 + ["c"] * 2 + ["d"]
    tr1, ho1 = stratified_split(labels, 0.2, seed=7)
    tr2, ho2 = stratified_split(list(labels), 0.2, seed=7)
    assert (tr1, ho1) == (tr2, ho2)
    assert sorted(tr1 + ho1) == list(range(len(labels)))
    held = [labels[i] for i in ho1]
    assert held.count("a") == 8 and held.count("b") == 2 and held.count("c") == 1
    assert "d" not in held  # a singleton class stays in training
    _, ho3 = stratified_split(labels, 0.2, seed=8)
    assert ho3 != ho1


def test_split_of_a_label_does_not_depend_on_other_labels():
    labels = ["a"] * 20 + ["b"] * 20
    _, ho = stratified_split(labels, 0.25, seed=1)
    _, ho_more = stratified_split(labels + ["c"] * 8, 0.25, seed=1)
    assert [i for i in ho if labels[i] == "a"] == [i for i in ho_more if i < 20]


def test_kfold_partitions_and_stratifies():
    labels = ["a"] * 50 + ["b"] * 10
    folds = stratified_kfold(labels, 5, seed=3)
    tests = [t for _, t in folds]
    assert sorted(i for t in tests for i in t) == list(range(60))
    for tr, te in folds:
        assert not set(tr) & set(te)
        assert [labels[i] for i in te].count("b") == 2
    assert folds == stratified_kfold(labels, 5, seed=3)


def test_class_weights():
    labels = ["a"] * 90 + ["b"] * 10
    w = class_weights(labels, ["a", "b"], power=1.0)
    assert w[1] / w[0] == pytest.approx(9.0)
    # expected weight over the training examples is 1
    assert (90 * w[0] + 10 * w[1]) / 100 == pytest.approx(1.0)
    ws = class_weights(labels, ["a", "b"], power=0.5)
    assert ws[1] / ws[0] == pytest.approx(3.0)
    assert class_weights(["a", "b"], ["a", "b"]) == pytest.approx([1.0, 1.0])


def test_jsonl_roundtrip_of_unicode(tmp_path):
    rows = [{"text": "退货😡怎么办", "label": "退货"}]
    p = write(tmp_path, "u.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    assert load_labelled(p).texts == ["退货😡怎么办"]


def test_jsonl_keeps_unicode_line_separators_inside_strings(tmp_path):
    # json.dumps(ensure_ascii=False) writes U+2028 / U+2029 / U+0085 raw; they are not line ends in JSONL
    texts = ["你好\u2028在吗", "退款\u0085", "a\u2029b"]
    rows = [{"text": t, "label": "x"} for t in texts]
    p = write(tmp_path, "u.jsonl", "\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\r\n")
    d = load_labelled(p)
    assert d.texts == texts and d.labels == ["x"] * 3
    with pytest.raises(DataError, match=r"u2\.jsonl:3: invalid JSON"):
        load_labelled(write(tmp_path, "u2.jsonl", '{"text": "a\u2028", "label": "x"}\n\n{"text"\n'))


def test_tsv_chinese_header_is_a_header_not_an_example(tmp_path):
    d = load_labelled(write(tmp_path, "zh.tsv", "\ufeff文本\t标签\n你好\tgreeting\n退款\trefund\n"))
    assert d.texts == ["你好", "退款"] and d.labels == ["greeting", "refund"]
    d2 = load_labelled(write(tmp_path, "zh.csv", "类别,句子\nrefund,我要退款\n"))
    assert d2.texts == ["我要退款"] and d2.labels == ["refund"]
