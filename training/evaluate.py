"""Evaluate a trained classifier (PyTorch checkpoint) on any labelled file.

``python -m training.evaluate --model DIR --data FILE [--report DIR]``

Prints a human table, optionally writes a report folder (``report.md``, ``confusion_matrix.png``,
``confidence_histogram.png``, ``metrics.json``) and always ends stdout with ONE line of JSON: accuracy,
macro_f1, weighted_f1, ece (15 bins), n, per_class {label: precision/recall/f1/support}, plus the share of
examples the calibrated thresholds accept and the accuracy on those (``accepted_rate`` /
``accepted_accuracy``). Labels in the data that the model does not know are an error that lists them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bundle.normalize import NormalizeConfig, normalize
from training.data import DataError, LabelledData, load_labelled
from training.metrics import classification_report, confusion_matrix


class UnknownLabelsError(ValueError):
    pass


def evaluate(
    model_dir: str | Path,
    data: str | Path | LabelledData,
    *,
    report_dir: str | Path | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Metrics dict for ``model_dir`` on ``data``; writes the report folder when ``report_dir`` is given."""
    from training.classifier import _set_threads, load_checkpoint, predict_proba

    _set_threads(None)
    ds = data if isinstance(data, LabelledData) else load_labelled(data)
    model, tokenizer, meta = load_checkpoint(model_dir)
    labels: list[str] = list(meta["labels"])
    unknown = sorted(set(ds.labels) - set(labels))
    if unknown:
        raise UnknownLabelsError(
            f"{ds.path or 'data'}: {len(unknown)} label(s) unknown to the model: {unknown} "
            f"(the model knows: {labels})"
        )
    cfg = NormalizeConfig(**meta.get("normalize", {}))
    texts = [normalize(t, cfg) for t in ds.texts]
    probs = predict_proba(model, tokenizer, texts, int(meta.get("max_seq_len", 64)), batch_size)
    label2id = {y: i for i, y in enumerate(labels)}
    y_true = [label2id[y] for y in ds.labels]
    metrics = classification_report(y_true, probs, labels)

    thr = meta.get("thresholds", {})
    per_label = thr.get("per_label", {})
    default = float(thr.get("default", 0.5))
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    accept = np.array([conf[i] >= per_label.get(labels[p], default) for i, p in enumerate(pred)])
    correct = pred == np.asarray(y_true)
    metrics["accepted_rate"] = round(float(accept.mean()), 6)
    metrics["accepted_accuracy"] = round(float(correct[accept].mean()) if accept.any() else 0.0, 6)
    metrics["model"] = str(model_dir)
    metrics["data"] = str(ds.path) if ds.path else None
    metrics["data_sha256"] = ds.sha256 or None
    metrics["skipped_empty"] = ds.skipped_empty  # rows of the file not scored: their text is empty

    if report_dir is not None:
        write_report(Path(report_dir), metrics, labels, y_true, probs, meta)
    return metrics


def format_table(metrics: dict[str, Any]) -> str:
    rows = [f"{'id':>3}  {'label':<24} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
    for i, (label, m) in enumerate(metrics["per_class"].items()):
        rows.append(
            f"{i:>3}  {label:<24} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>7.3f} {m['support']:>8}"
        )
    rows.append("")
    rows.append(
        f"n={metrics['n']}  accuracy={metrics['accuracy']:.4f}  macro_f1={metrics['macro_f1']:.4f}  "
        f"ece={metrics['ece']:.4f}  accepted={metrics['accepted_rate']:.3f} "
        f"(accuracy when accepted {metrics['accepted_accuracy']:.4f})"
    )
    if metrics.get("skipped_empty"):
        rows.append(f"skipped {metrics['skipped_empty']} row(s) of the file whose text is empty")
    return "\n".join(rows)


def write_report(
    out: Path,
    metrics: dict[str, Any],
    labels: list[str],
    y_true: list[int],
    probs: np.ndarray,
    meta: dict[str, Any],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    k = len(labels)
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    correct = pred == np.asarray(y_true)
    cm = confusion_matrix(y_true, pred.tolist(), k)

    size = max(5.0, 0.35 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted label id")
    ax.set_ylabel("true label id")
    ax.set_title(f"confusion matrix (n={len(y_true)}; ids in report.md)")
    if k <= 40:
        vmax = cm.max() or 1
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    color = "white" if cm[i, j] > vmax / 2 else "black"
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7, color=color)
    fig.tight_layout()
    fig.savefig(out / "confusion_matrix.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = [i / 15 for i in range(16)]
    ax.hist(conf[correct], bins=bins, alpha=0.7, label=f"correct ({int(correct.sum())})")
    ax.hist(conf[~correct], bins=bins, alpha=0.7, label=f"wrong ({int((~correct).sum())})")
    ax.set_xlabel("confidence (max softmax)")
    ax.set_ylabel("examples")
    ax.set_title(f"confidence histogram; ECE(15 bins) = {metrics['ece']:.4f}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "confidence_histogram.png", dpi=110)
    plt.close(fig)

    thr = meta.get("thresholds", {})
    lines = [
        f"# Evaluation: {meta.get('kind', 'classifier')} model",
        "",
        f"- model: `{metrics['model']}` (base: `{str(meta.get('base', '?'))[:120]}`)",
        f"- data: `{metrics['data']}` (sha256 `{metrics['data_sha256']}`)",
        f"- n = {metrics['n']}, accuracy = **{metrics['accuracy']:.4f}**, macro-F1 = **{metrics['macro_f1']:.4f}**,"
        f" weighted-F1 = {metrics['weighted_f1']:.4f}, ECE (15 bins) = {metrics['ece']:.4f}",
        f"- calibrated thresholds accept {metrics['accepted_rate']:.1%} of examples; accuracy on those "
        f"{metrics['accepted_accuracy']:.4f}",
        f"- threshold rule: {thr.get('rule', 'n/a')}",
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "![confidence histogram](confidence_histogram.png)",
        "",
        "| id | label | precision | recall | f1 | support | threshold |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    per_label = thr.get("per_label", {})
    cell = [_md_cell(label) for label in labels]  # a label such as "退款|退货" must not split its table row
    for i, label in enumerate(labels):
        m = metrics["per_class"][label]
        t = per_label.get(label, thr.get("default", ""))
        lines.append(
            f"| {i} | {cell[i]} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} | {t} |"
        )
    lines += ["", "## Most frequent confusions", "", "| true | predicted | count |", "|---|---|---:|"]
    off = [(int(cm[i, j]), i, j) for i in range(k) for j in range(k) if i != j and cm[i, j]]
    for c, i, j in sorted(off, reverse=True)[:15]:
        lines.append(f"| {i} {cell[i]} | {j} {cell[j]} | {c} |")
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")


def _md_cell(text: str) -> str:
    """Text for one markdown table cell: pipes escaped, line breaks flattened."""
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="training output directory (PyTorch)")
    ap.add_argument("--data", type=Path, required=True, help="labelled JSONL / TSV / CSV file")
    ap.add_argument("--report", type=Path, default=None, help="write report.md + PNGs here")
    from training.classifier import positive_int, transformers_logging_quiet

    ap.add_argument("--batch-size", type=positive_int, default=64)
    args = ap.parse_args(argv)

    transformers_logging_quiet()
    try:
        metrics = evaluate(args.model, args.data, report_dir=args.report, batch_size=args.batch_size)
    except (DataError, UnknownLabelsError, ValueError, OSError) as exc:
        # ValueError / OSError: an unreadable checkpoint (broken metadata, missing model files) or --report
        # pointing at a file; the one-line message instead of a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(metrics))
    if args.report:
        print(f"report: {args.report / 'report.md'}")
    print(json.dumps(metrics, ensure_ascii=False, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
