"""End to end on a tiny model: train (2 layers, hidden 32, a few steps) -> evaluate -> last-line JSON."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from training.classifier import TRAINING_META, ScratchArch, TrainConfig, train_classifier
from training.evaluate import main as evaluate_main

TEMPLATES = {
    "greeting": ["你好", "在吗", "您好呀", "哈喽", "早上好", "有人吗"],
    "order_status": [
        "我的订单到哪了",
        "查一下物流",
        "快递什么时候到",
        "订单状态",
        "包裹到哪里了",
        "发货了吗",
    ],
    "refund": ["我要退款", "怎么退货", "申请退款", "退钱", "可以退吗", "退款多久到账"],
}


def make_dataset(path, n_per_label: int, seed: int) -> None:
    rng = random.Random(seed)
    rows = []
    for label, texts in TEMPLATES.items():
        for _ in range(n_per_label):
            t = rng.choice(texts) + rng.choice(["", "？", "。", "啊", "呢"])
            rows.append({"text": t, "label": label})
    rng.shuffle(rows)
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")


def tiny_config(layers: int = 1, **overrides) -> TrainConfig:
    """A seconds-long intent recipe: tiny BERT, short sequences, one thread, no progress bar."""
    base = {
        "kind": "intent",
        "lr": 3e-3,
        "batch_size": 16,
        "max_len": 16,
        "arch": ScratchArch(
            num_hidden_layers=layers, hidden_size=32, num_attention_heads=2, intermediate_size=64
        ),
        "progress": False,
        "threads": 1,
    }
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    train = tmp / "train.jsonl"
    make_dataset(train, 20, seed=1)
    cfg = tiny_config(layers=2, epochs=25)
    result = train_classifier(train, tmp / "model", base="none", config=cfg, on_log=lambda m: None)
    return tmp, result


def test_training_output_layout(tiny_model):
    tmp, result = tiny_model
    out = result.out_dir
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt", TRAINING_META):
        assert (out / name).is_file(), name
    meta = json.loads((out / TRAINING_META).read_text(encoding="utf-8"))
    assert meta["kind"] == "intent"
    assert meta["labels"] == sorted(TEMPLATES)
    assert set(meta["thresholds"]["per_label"]) == set(TEMPLATES)
    assert 0.3 <= meta["thresholds"]["default"] <= 0.95
    assert meta["max_seq_len"] == 16
    assert len(meta["training_data_sha256"]) == 64
    assert meta["normalize"]["nfkc"] is True
    assert meta["metrics"]["n"] > 0 and "stratified" in meta["metrics"]["eval_source"]
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert cfg["id2label"] == {str(i): y for i, y in enumerate(sorted(TEMPLATES))}
    assert not (out / ".trainer").exists()


def test_evaluate_cli_last_line_is_json(tiny_model, capsys):
    tmp, result = tiny_model
    data = tmp / "unseen.jsonl"
    make_dataset(data, 5, seed=2)
    report = tmp / "report"
    rc = evaluate_main(["--model", str(result.out_dir), "--data", str(data), "--report", str(report)])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    metrics = json.loads(lines[-1])
    assert metrics["n"] == 15
    assert set(metrics["per_class"]) == set(TEMPLATES)
    for key in ("accuracy", "macro_f1", "ece"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["accuracy"] >= 0.6  # these templates are trivially separable
    assert sum(m["support"] for m in metrics["per_class"].values()) == 15
    for name in ("report.md", "confusion_matrix.png", "confidence_histogram.png"):
        assert (report / name).stat().st_size > 0


def test_evaluate_rejects_unknown_labels(tiny_model, capsys):
    tmp, result = tiny_model
    data = tmp / "other.tsv"
    data.write_text("你好\tgreeting\n我想投诉\tcomplaint\n开发票\tinvoice\n", encoding="utf-8")
    rc = evaluate_main(["--model", str(result.out_dir), "--data", str(data)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "complaint" in err and "invoice" in err and "unknown" in err


def test_tiny_ngram_branch_model_trains_saves_and_reloads(tmp_path):
    from training.classifier import load_checkpoint
    from training.ngram_model import XiaokeBertNgramForSequenceClassification, is_ngram_checkpoint

    train = tmp_path / "train.jsonl"
    make_dataset(train, 20, seed=3)
    cfg = tiny_config(epochs=10, ngram_branch=True, ngram_buckets=4096, ngram_fit="lr", ngram_aux_weight=0.0)
    result = train_classifier(train, tmp_path / "m", base="none", config=cfg, on_log=lambda m: None)
    assert is_ngram_checkpoint(result.out_dir)
    model, _, meta = load_checkpoint(result.out_dir)
    assert isinstance(model, XiaokeBertNgramForSequenceClassification)
    assert model.ngram.weight.abs().sum() > 0  # the n-gram head was trained and saved
    assert meta["recipe"]["ngram_branch"] is True
    assert meta["recipe"]["ngram_fit_result"]["train_accuracy"] >= 0.9  # the TF-IDF LR head fits the data
    assert float(model.ngram_idf.max()) > 1.0  # the IDF buffer was saved and reloaded
    assert result.metrics["accuracy"] >= 0.6


def test_fine_tunes_a_local_base_checkpoint_with_its_own_tokenizer(tmp_path):
    """--base DIR: a local BERT MLM checkpoint (like a user's bert-base-chinese) is fine-tuned, n-gram
    branch included, and its weights (not random ones) are the starting point."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from training.classifier import load_checkpoint
    from training.ngram_model import MODEL_TYPE
    from training.tokenizer import build_tokenizer, build_vocab

    base = tmp_path / "base"
    tok = build_tokenizer(build_vocab([t for ts in TEMPLATES.values() for t in ts]), 32)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    mlm = BertForMaskedLM(cfg)
    mlm.save_pretrained(str(base))
    tok.save_pretrained(str(base))
    emb_before = mlm.bert.embeddings.word_embeddings.weight.detach().clone()

    train = tmp_path / "train.jsonl"
    make_dataset(train, 10, seed=4)
    tc = TrainConfig(
        kind="intent",
        epochs=1,
        lr=1e-9,
        batch_size=16,
        max_len=16,
        ngram_branch=True,
        ngram_buckets=1024,
        progress=False,
        threads=1,
    )
    res = train_classifier(train, tmp_path / "ft", base=base, config=tc, on_log=lambda m: None)
    model, tokenizer, meta = load_checkpoint(res.out_dir)
    assert meta["base"] == str(base)
    assert model.config.model_type == MODEL_TYPE
    assert model.config.num_labels == 3 and model.config.hidden_size == 32
    # lr ~ 0: the encoder still holds the base's weights
    assert torch.allclose(model.bert.embeddings.word_embeddings.weight, emb_before, atol=1e-5)
    assert len(tokenizer) == len(tok)
    # the n-gram branch's own state is not in a plain BERT checkpoint: it starts at its defined values
    assert torch.allclose(model.ngram_bias, torch.zeros(3), atol=1e-3)
    assert bool((model.ngram_idf == 1.0).all())


def test_refit_full_trains_on_every_example_and_keeps_the_holdout_choices(tmp_path):
    """refit_full: metrics, thresholds and the BERT/n-gram mix come from the first model's holdout; the saved
    model is a second one trained on the whole file with that mix folded in."""
    from training.classifier import load_checkpoint

    train = tmp_path / "train.jsonl"
    make_dataset(train, 20, seed=5)
    cfg = tiny_config(epochs=6, ngram_branch=True, ngram_buckets=4096, refit_full=True)
    logs: list[str] = []
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = train_classifier(train, tmp_path / "m", base="none", config=cfg, on_log=logs.append)
        assert torch.get_num_threads() == 2  # trained on cfg.threads=1, then the caller's count is restored
    finally:
        torch.set_num_threads(before)
    model, _, meta = load_checkpoint(result.out_dir)
    recipe = meta["recipe"]
    assert recipe["train_examples"] == 51 and recipe["refit_full"]["examples"] == 60  # 15 % held out first
    # same epochs as the first run: 4 steps/epoch on 51 examples, 4 on 60 at batch 16 -> same step count
    assert recipe["refit_full"]["steps"] == recipe["refit_full"]["planned_steps"] == recipe["steps"]
    mix = recipe["bert_weight"]
    assert float(model.bert_weight) == pytest.approx(mix["bert_weight"] / mix["temperature"], rel=1e-6)
    assert meta["metrics"]["n"] == 9 and result.metrics["n"] == 9  # the holdout's figures, not the refit's
    assert any("refit on all 60" in m for m in logs)

    no_refit = train_classifier(
        train, tmp_path / "m2", base="none", config=replace(cfg, refit_full=False), on_log=lambda m: None
    )
    _, _, meta2 = load_checkpoint(no_refit.out_dir)
    assert meta2["recipe"]["refit_full"] is None
    assert meta2["metrics"]["accuracy"] == meta["metrics"]["accuracy"]  # the first run is the same run


def test_refit_full_is_off_with_an_explicit_eval_file(tmp_path):
    from training.classifier import load_checkpoint

    train, ev = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    make_dataset(train, 12, seed=6)
    make_dataset(ev, 4, seed=7)
    cfg = tiny_config(epochs=2, refit_full=True)
    result = train_classifier(
        train, tmp_path / "m", eval_data=ev, base="none", config=cfg, on_log=lambda m: None
    )
    _, _, meta = load_checkpoint(result.out_dir)
    assert meta["recipe"]["refit_full"] is None and meta["recipe"]["train_examples"] == 36


def _relabel(src, dst, mapping: dict[str, str]) -> None:
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    dst.write_text(
        "".join(
            json.dumps({**r, "label": mapping.get(r["label"], r["label"])}, ensure_ascii=False) + "\n"
            for r in rows
        ),
        encoding="utf-8",
    )


def torch_allclose(a, b) -> bool:
    import torch

    return bool(torch.allclose(a, b, atol=1e-6))


def test_a_previous_classifier_as_base_keeps_each_labels_head_rows_by_name(tiny_model):
    """--base = our last model, trained again on data where one label was renamed: the labels both share keep
    their own head rows (not the row of whichever label had their index in the base), the new one starts
    fresh. Before, a base with as many labels kept its rows in its own order: 0 % accuracy after 4 epochs."""
    from training.classifier import load_checkpoint

    tmp, base = tiny_model  # labels greeting, order_status, refund
    train = tmp / "relabelled.jsonl"
    _relabel(tmp / "train.jsonl", train, {"greeting": "zz_问候"})  # -> order_status, refund, zz_问候
    cfg = tiny_config(layers=2, epochs=1, lr=1e-9)  # lr ~ 0: the saved head is the starting head
    res = train_classifier(
        train, tmp / "relabelled_model", base=base.out_dir, config=cfg, on_log=lambda m: None
    )
    old, _, _ = load_checkpoint(base.out_dir)
    new, _, meta = load_checkpoint(res.out_dir)
    assert meta["labels"] == ["order_status", "refund", "zz_问候"]
    for i, label in enumerate(meta["labels"][:2]):
        j = ["greeting", "order_status", "refund"].index(label)
        assert torch_allclose(new.classifier.weight[i], old.classifier.weight[j])
        assert torch_allclose(new.classifier.bias[i], old.classifier.bias[j])
    assert not torch_allclose(new.classifier.weight[2], old.classifier.weight[0])  # renamed: a fresh row


def test_our_own_ngram_checkpoint_is_a_usable_base(tmp_path):
    """An intent model of ours (n-gram branch: its config.json carries ngram_buckets / ngram_aux_weight) as
    --base was a TypeError ("got multiple values for keyword argument 'ngram_aux_weight'"); with
    --no-ngram-branch, "Transformers does not recognize this architecture"."""
    from training.classifier import load_checkpoint

    train = tmp_path / "train.jsonl"
    make_dataset(train, 10, seed=8)
    cfg = tiny_config(epochs=2, ngram_branch=True, ngram_buckets=1024)
    base = train_classifier(train, tmp_path / "base", base="none", config=cfg, on_log=lambda m: None).out_dir
    again = train_classifier(train, tmp_path / "again", base=base, config=cfg, on_log=lambda m: None)
    model, _, meta = load_checkpoint(again.out_dir)
    assert meta["base"] == str(base) and model.ngram_buckets == 1024
    plain = train_classifier(
        train, tmp_path / "plain", base=base, config=replace(cfg, ngram_branch=False), on_log=lambda m: None
    )
    assert load_checkpoint(plain.out_dir)[0].config.model_type == "bert"

    # the embedder starts from that model's BERT encoder (was: "Transformers does not recognize this
    # architecture", a multi-line error, exit 1)
    from safetensors.torch import load_file

    from training.embedder import EmbedderConfig, train_embedder

    pairs = tmp_path / "pairs.txt"
    pairs.write_text(
        "".join(f"{a}\t{a}{b}\t1\n" for a, b in zip("你在退查怎", "好吗款单么", strict=True)),
        encoding="utf-8",
    )
    ecfg = EmbedderConfig(epochs=1, batch_size=4, max_len=16, lr=1e-9, threads=1)
    emb = train_embedder(
        tmp_path / "emb", pair_files=[pairs], faq=None, base=base, config=ecfg, on_log=lambda m: None
    )
    key = "embeddings.word_embeddings.weight"
    start = load_file(str(base / "model.safetensors"))["bert." + key]
    assert torch_allclose(load_file(str(emb.out_dir / "model.safetensors"))[key], start)


def test_retraining_into_the_same_out_dir_replaces_the_model_as_a_whole(tmp_path):
    """The previous model of the same kind is replaced as a whole (no stale file of it survives beside the new
    one); with overwrite, so is a directory that holds something else."""
    train = tmp_path / "train.jsonl"
    make_dataset(train, 5, seed=9)
    out = tmp_path / "m"
    cfg = tiny_config(epochs=1)
    train_classifier(train, out, base="none", config=cfg, on_log=lambda m: None)
    (out / "added_tokens.json").write_text('{"[OLD]": 99999}', encoding="utf-8")  # e.g. from an earlier base
    train_classifier(train, out, base="none", config=cfg, on_log=lambda m: None)
    assert not (out / "added_tokens.json").exists()
    assert (out / TRAINING_META).is_file() and not list(tmp_path.glob(".m-*"))  # no staging dir left behind
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "pytorch_model.bin").write_bytes(b"someone else's weights")
    train_classifier(train, foreign, base="none", config=replace(cfg, overwrite=True), on_log=lambda m: None)
    assert not (foreign / "pytorch_model.bin").exists() and (foreign / "model.safetensors").is_file()


def test_no_eval_examples_is_said_not_reported_as_accuracy_zero(tmp_path):
    """Every label with one example: nothing can be held out. This was printed and stored as "eval
    accuracy=0.0000" (a measured failure to anyone reading the manifest); now it is not measured."""
    train = tmp_path / "singletons.tsv"
    train.write_text("你好\tgreeting\n我要退款\trefund\n查物流\torder_status\n", encoding="utf-8")
    logs: list[str] = []
    res = train_classifier(
        train, tmp_path / "m", base="none", config=tiny_config(epochs=1), on_log=logs.append
    )
    assert res.metrics["n"] == 0 and res.metrics["accuracy"] is None and res.metrics["macro_f1"] is None
    assert res.metrics["eval_source"].startswith("none")
    assert any("no eval examples" in m for m in logs) and not any("accuracy=0.0000" in m for m in logs)


def test_report_table_rows_survive_a_label_with_a_pipe(tmp_path):
    """A label "退款|退货" split its report.md table row into an extra column."""
    import numpy as np

    from training.evaluate import write_report
    from training.metrics import classification_report

    labels = ["退款|退货", "greeting"]
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y_true = [0, 1, 1]
    metrics = classification_report(y_true, probs, labels)
    metrics.update(accepted_rate=1.0, accepted_accuracy=0.5, model="m", data="d", data_sha256=None)
    write_report(tmp_path, metrics, labels, y_true, probs, {"thresholds": {"default": 0.5}})
    rows = [ln for ln in (tmp_path / "report.md").read_text(encoding="utf-8").splitlines() if "退款" in ln]
    assert len(rows) == 2  # the per-label row and the confusion row
    for row in rows:
        cells = row.replace("\\|", "").split("|")
        assert len(cells) == (9 if row.startswith("| 0 | ") else 5), row
