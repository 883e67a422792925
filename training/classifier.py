"""Shared text-classifier training for intent and sentiment (one machinery, two thin CLIs).

Pipeline: load (``training.data``) -> ``bundle.normalize`` -> tokenizer (the base checkpoint's, or our own
character vocabulary from ``training.tokenizer`` when training from scratch) -> BERT sequence classifier
trained with the transformers ``Trainer`` and a class-weighted cross-entropy -> metrics + per-label
thresholds on the eval split (``training.metrics``) -> HF ``save_pretrained`` directory + tokenizer files +
``xiaoke_training.json``.

Why the Trainer: it gives us the optimizer/scheduler/grad-clipping recipe, a progress bar and seeding that
other people already know; the only customisation needed is the weighted loss (``compute_loss``) and a
wall-clock budget (a callback). Nothing here runs at import time.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bundle.normalize import NormalizeConfig, normalize
from training.data import DataError, LabelledData, class_weights, load_labelled, stratified_split

log = logging.getLogger(__name__)

TRAINING_META = "xiaoke_training.json"
PRETRAINED_SUBDIR = "pretrained/mlm-small"


def data_dir() -> Path:
    env = os.environ.get("XIAOKE_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "var"


def default_pretrained_dir() -> Path:
    """Where ``python -m training.pretrain`` puts our MLM checkpoint by default."""
    return data_dir() / PRETRAINED_SUBDIR


def find_pretrained() -> Path | None:
    """The base that ``--base auto`` means: our ``training.pretrain`` checkpoint under
    ``$XIAOKE_DATA_DIR/pretrained/mlm-small`` if there is one, else ``None`` (from scratch)."""
    cand = default_pretrained_dir()
    return cand if (cand / "config.json").is_file() else None


def resolve_base(base: str | Path | None) -> Path | None:
    """``None``/"auto" -> :func:`find_pretrained`; "none" -> from scratch; else a checkpoint directory."""
    if base is None or str(base) == "auto":
        return find_pretrained()
    if str(base).lower() in ("none", "scratch", ""):
        return None
    path = Path(base)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"--base {path}: not a checkpoint directory (no config.json)")
    return path


@dataclass
class ScratchArch:
    """Architecture used when there is no base checkpoint."""

    # measured on SMP2017 fold 1 with the n-gram branch: 2L/128 = 0.890 in 120 s vs 4L/256 = 0.888 in 257 s
    num_hidden_layers: int = 2
    hidden_size: int = 128
    num_attention_heads: int = 2
    intermediate_size: int = 512
    max_position_embeddings: int = 128
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1


@dataclass
class TrainConfig:
    kind: str = "intent"
    epochs: float = 8.0
    lr: float | None = (
        None  # None: 1e-3 from scratch (hidden<=128, else 5e-4), 1e-4 on our small base, 5e-5 on larger bases
    )
    batch_size: int = 32
    seed: int = 13
    max_len: int = 64
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    val_fraction: float = 0.15
    class_weight_power: float = 0.5
    label_smoothing: float = 0.0
    # BERT + in-graph hashed token 1..3-gram branch (training.ngram_model); exports with plain BERT inputs
    ngram_branch: bool = False
    ngram_buckets: int = 1 << 17
    ngram_lr_mult: float = 50.0  # the linear n-gram head wants a much larger step than BERT
    ngram_aux_weight: float = 1.0
    ngram_weight_decay: float = 0.0
    # "lr": fit the n-gram head first as TF-IDF logistic regression (C=ngram_C) and freeze it, then train
    # BERT with the combined logits; "joint": train both from zero together
    ngram_fit: str = "joint"
    ngram_C: float = 10.0
    ngram_idf: bool = (
        False  # joint mode: weight n-grams by training IDF (unseen n-grams ignored); "lr" always does
    )
    max_minutes: float | None = None  # wall-clock budget for the optimisation loop(s)
    # after choosing the mix/temperature/thresholds on the stratified holdout, train again on all of the
    # training file (only when no --eval file is given) and save that model
    refit_full: bool = False
    max_train_examples: int | None = None  # stratified cap (benchmarks on big corpora)
    arch: ScratchArch = field(default_factory=ScratchArch)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    threads: int | None = None
    progress: bool = True
    # replace an --out directory that holds something else than a previous model of this kind (see check_out_dir)
    overwrite: bool = False


@dataclass
class TrainResult:
    out_dir: Path
    labels: list[str]
    metrics: dict[str, Any]
    thresholds: dict[str, Any]
    seconds: float


def auto_threads() -> int:
    """CPU threads for torch: every core when the machine is idle, fewer when it is busy.

    Measured here: with other work on the 2 cores, 2 intra-op threads made a training step ~10x slower
    than 1 thread (OpenMP threads wait on each other); on an idle machine 2 threads are ~1.6x faster."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cores
    return max(1, min(cores, int(cores - load + 0.5)))


def _set_threads(n: int | None) -> int:
    import torch

    n = n or auto_threads()
    torch.set_num_threads(n)
    return n


def build_tokenizer_for(texts: list[str], max_len: int):
    from training.tokenizer import build_tokenizer, build_vocab

    return build_tokenizer(build_vocab(texts), max_len)


def _default_lr(base: Path | None, hidden: int) -> float:
    if base is None:
        return 1e-3 if hidden <= 128 else 5e-4
    return 1e-4 if hidden <= 384 else 5e-5


def _encode(tokenizer, texts: list[str], max_len: int) -> list[dict[str, Any]]:
    enc = tokenizer(texts, truncation=True, max_length=max_len)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    return [{k: enc[k][i] for k in keys} for i in range(len(texts))]


class _ListDataset:
    def __init__(self, features: list[dict[str, Any]]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.features[i]


def _make_trainer_class():
    import torch
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        """Trainer with class-weighted (optionally label-smoothed) cross-entropy."""

        def __init__(
            self,
            *args,
            class_weight=None,
            label_smoothing: float = 0.0,
            ngram_lr_mult: float = 1.0,
            ngram_weight_decay: float = 0.0,
            **kwargs,
        ):
            super().__init__(*args, **kwargs)
            self._cw = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float32)
            self._ls = label_smoothing
            self._ngram_lr_mult = ngram_lr_mult
            self._ngram_wd = ngram_weight_decay

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            if hasattr(model, "branch_logits") and not return_outputs:
                bert_logits, ng_logits = model.branch_logits(**inputs)
                weight = None if self._cw is None else self._cw.to(bert_logits.device)
                return model.loss(bert_logits, ng_logits, labels, weight, self._ls)
            outputs = model(**inputs)
            logits = outputs.logits
            weight = None if self._cw is None else self._cw.to(logits.device)
            loss = torch.nn.functional.cross_entropy(
                logits.float(), labels, weight=weight, label_smoothing=self._ls
            )
            return (loss, outputs) if return_outputs else loss

        def create_optimizer(self):
            ngram = getattr(self.model, "ngram", None)
            if self.optimizer is None and ngram is not None and self._ngram_lr_mult != 1.0:
                decay = set(self.get_decay_parameter_names(self.model))
                assert self.model is not None
                named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
                lr, wd = self.args.learning_rate, self.args.weight_decay
                groups = [
                    {
                        "params": [p for n, p in named if n in decay and not n.startswith("ngram.")],
                        "weight_decay": wd,
                    },
                    {
                        "params": [p for n, p in named if n not in decay and not n.startswith("ngram.")],
                        "weight_decay": 0.0,
                    },
                    {
                        "params": [ngram.weight],
                        "weight_decay": self._ngram_wd,
                        "lr": lr * self._ngram_lr_mult,
                    },
                ]
                self.optimizer = torch.optim.AdamW(
                    groups,
                    lr=lr,
                    betas=(self.args.adam_beta1, self.args.adam_beta2),
                    eps=self.args.adam_epsilon,
                )
            return super().create_optimizer()

    return WeightedTrainer


def _time_budget_callback(max_minutes: float):
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def __init__(self) -> None:
            self.start = time.monotonic()
            self.stopped_at: int | None = None

        def on_step_end(self, args, state, control, **kwargs):
            if time.monotonic() - self.start > max_minutes * 60:
                control.should_training_stop = True
                self.stopped_at = state.global_step
            return control

    return TimeBudget()


def predict_proba(model, tokenizer, texts: list[str], max_len: int, batch_size: int = 64) -> np.ndarray:
    """Softmax probabilities for already-normalized texts (PyTorch, eval mode, no grad)."""
    import torch

    model.eval()
    out = []
    order = np.argsort([len(t) for t in texts], kind="stable")  # length-sorted batches: less padding
    with torch.inference_mode():
        for s in range(0, len(texts), batch_size):
            idx = order[s : s + batch_size]
            enc = tokenizer(
                [texts[i] for i in idx],
                truncation=True,
                max_length=max_len,
                padding=True,
                return_tensors="pt",
            )
            logits = model(**enc).logits.float()
            out.append((idx, torch.softmax(logits, dim=-1).numpy()))
    probs = np.zeros((len(texts), model.config.num_labels), dtype=np.float64)
    for idx, p in out:
        probs[idx] = p
    return probs


def load_checkpoint(model_dir: str | Path):
    """(model, tokenizer, meta) of a training output directory (PyTorch)."""
    from transformers import AutoTokenizer

    from training.ngram_model import load_classifier_model

    model_dir = Path(model_dir)
    meta_path = model_dir / TRAINING_META
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: no such directory")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{model_dir}: not a training output (no {TRAINING_META})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{meta_path}: not valid JSON ({exc})") from None
    if isinstance(meta, dict) and meta.get("kind") == "embedder":  # was "labels unknown to the model: [...]"
        raise ValueError(f"{model_dir}: an embedder, not a classifier (intent / sentiment) checkpoint")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = load_classifier_model(model_dir)
    model.eval()
    return model, tokenizer, meta


# config keys of a base checkpoint that the new classifier sets itself (an intent/sentiment checkpoint of ours
# as --base carries its own n-gram settings: passing them twice was a TypeError)
_BASE_CONFIG_OWN_KEYS = (
    "model_type",
    "architectures",
    "transformers_version",
    "id2label",
    "label2id",
    "ngram_buckets",
    "ngram_aux_weight",
)
# model types whose weights the n-gram model's BertModel can load (anything else would silently start from
# random weights): BERT itself (bert-base-chinese, bge, text2vec, chinese-roberta-wwm-ext) and our own
_NGRAM_BASE_TYPES = ("bert", "xiaoke_bert_ngram")


def base_error(base_dir: Path, reason: str | BaseException) -> ValueError:
    """The one-line error for a ``--base`` directory that cannot be loaded (transformers' own messages run to
    several kilobytes, e.g. the list of every model type it knows)."""
    if isinstance(reason, BaseException):
        reason = f"{type(reason).__name__}: {str(reason).strip().split(chr(10))[0][:300]}"
    return ValueError(f"--base {base_dir}: not a usable BERT-style checkpoint ({reason})")


def read_base_config(base_dir: Path) -> dict[str, Any]:
    """``base_dir/config.json`` as a dict, or :func:`base_error`."""
    try:
        base_cfg = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise base_error(base_dir, f"config.json: {exc}") from None
    if not isinstance(base_cfg, dict):
        raise base_error(base_dir, "config.json is not a JSON object")
    return base_cfg


def plain_bert_config(base_cfg: dict[str, Any]) -> dict[str, Any]:
    """The BertConfig keys of a base's config.json (our n-gram classifier's own keys and labels dropped), e.g.
    to load only the BERT encoder of an intent / sentiment model of ours."""
    return {k: v for k, v in base_cfg.items() if k not in _BASE_CONFIG_OWN_KEYS and k != "ngram_orders"}


def _load_base(cfg: TrainConfig, base_dir: Path, labels: list[str]) -> tuple[Any, Any]:
    """(model, tokenizer) for fine-tuning ``base_dir``: any local BERT-style checkpoint, our own intent /
    sentiment output included. A directory that is not one gives a ValueError naming ``--base``, never a
    traceback from deep inside transformers."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    def bad(reason: str) -> ValueError:
        return base_error(base_dir, reason)

    base_cfg = read_base_config(base_dir)
    model_type = base_cfg.get("model_type")
    if cfg.ngram_branch and model_type not in _NGRAM_BASE_TYPES:
        raise bad(
            f"model_type {model_type!r}; the n-gram branch model needs one of {list(_NGRAM_BASE_TYPES)}, "
            "or train with --no-ngram-branch"
        )
    label2id = {y: i for i, y in enumerate(labels)}
    common: dict[str, Any] = {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": label2id,
    }
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
        if cfg.ngram_branch:
            from training.ngram_model import XiaokeBertNgramConfig, XiaokeBertNgramForSequenceClassification

            own = {k: v for k, v in base_cfg.items() if k not in _BASE_CONFIG_OWN_KEYS}
            ng_cfg = XiaokeBertNgramConfig(
                ngram_buckets=cfg.ngram_buckets, ngram_aux_weight=cfg.ngram_aux_weight, **{**own, **common}
            )
            model = XiaokeBertNgramForSequenceClassification.from_pretrained(
                str(base_dir), config=ng_cfg, ignore_mismatched_sizes=True
            )
        elif model_type == "xiaoke_bert_ngram":  # our n-gram checkpoint, --no-ngram-branch: its BERT part
            from transformers import BertConfig, BertForSequenceClassification

            model = BertForSequenceClassification.from_pretrained(
                str(base_dir),
                config=BertConfig(**{**plain_bert_config(base_cfg), **common}),
                ignore_mismatched_sizes=True,
            )
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                str(base_dir), ignore_mismatched_sizes=True, **common
            )
    except Exception as exc:  # transformers raises anything (TypeError, KeyError, OSError, ValueError, ...)
        raise base_error(base_dir, exc) from exc
    _match_head_to_labels(model, base_dir, base_cfg, labels)
    return model, tokenizer


def _base_labels(base_cfg: dict[str, Any]) -> list[str] | None:
    """The labels of a base that is a sequence classifier (e.g. our last intent model), else None."""
    archs = base_cfg.get("architectures") or []
    id2label = base_cfg.get("id2label")
    if not isinstance(id2label, dict) or not any(str(a).endswith("ForSequenceClassification") for a in archs):
        return None
    try:
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    except (TypeError, ValueError):
        return None


# classifier-head tensors and the axis that runs over the labels
_HEAD_TENSORS = (("classifier.weight", 0), ("classifier.bias", 0), ("ngram.weight", 1), ("ngram_bias", 0))


def _match_head_to_labels(model: Any, base_dir: Path, base_cfg: dict[str, Any], labels: list[str]) -> None:
    """A classifier base with other labels than ours: start the head(s) fresh and carry over, by label
    name, the rows of the labels both share. ``from_pretrained`` only re-initialises a head whose size
    differs, so a base with as many labels as ours kept its rows in ITS order: a renamed or reordered label
    set started every label from another label's weights (fine-tuning our intent model on relabelled data
    gave 0 % accuracy)."""
    import torch

    old = _base_labels(base_cfg)
    if old is None or old == labels:
        return
    saved: dict[str, Any] = {}
    weights = base_dir / "model.safetensors"
    if weights.is_file():
        from safetensors import safe_open

        with safe_open(str(weights), "pt") as f:
            saved = {name: f.get_tensor(name) for name, _ in _HEAD_TENSORS if name in f.keys()}
    state = dict(model.named_parameters())
    std = float(getattr(model.config, "initializer_range", 0.02))
    with torch.no_grad():
        for name, axis in _HEAD_TENSORS:
            dst = state.get(name)
            if dst is None:
                continue
            if name == "classifier.weight":
                dst.normal_(0.0, std)
            else:
                dst.zero_()
            src = saved.get(name)
            other_axes = [d for a, d in enumerate(dst.shape) if a != axis]  # hidden size / n-gram buckets
            if src is None or [d for a, d in enumerate(src.shape) if a != axis] != other_axes:
                continue
            for i, label in enumerate(labels):
                if label in old and old.index(label) < src.shape[axis]:
                    dst.select(axis, i).copy_(src.select(axis, old.index(label)))


def _new_model(cfg: TrainConfig, base_dir: Path | None, norm_texts: list[str], labels: list[str]):
    """(model, tokenizer, base description, hidden size): a fresh model for ``labels``, from scratch (our
    character vocabulary over ``norm_texts``) or from ``base_dir``. Same seed -> same initial weights."""
    from transformers import BertConfig, BertForSequenceClassification

    label2id = {y: i for i, y in enumerate(labels)}
    model: Any
    if base_dir is None:
        tokenizer = build_tokenizer_for(norm_texts, cfg.max_len)
        a = cfg.arch
        bert_cfg = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=a.hidden_size,
            num_hidden_layers=a.num_hidden_layers,
            num_attention_heads=a.num_attention_heads,
            intermediate_size=a.intermediate_size,
            max_position_embeddings=max(a.max_position_embeddings, cfg.max_len),
            hidden_dropout_prob=a.hidden_dropout_prob,
            attention_probs_dropout_prob=a.attention_probs_dropout_prob,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id=label2id,
            pad_token_id=tokenizer.pad_token_id,
        )
        if cfg.ngram_branch:
            from training.ngram_model import XiaokeBertNgramConfig, XiaokeBertNgramForSequenceClassification

            plain = {
                k: v
                for k, v in bert_cfg.to_diff_dict().items()
                if k not in ("model_type", "transformers_version")
            }
            ng_cfg = XiaokeBertNgramConfig(
                ngram_buckets=cfg.ngram_buckets, ngram_aux_weight=cfg.ngram_aux_weight, **plain
            )
            model = XiaokeBertNgramForSequenceClassification(ng_cfg)
        else:
            model = BertForSequenceClassification(bert_cfg)
        base_desc = "scratch:" + json.dumps(asdict(a), sort_keys=True)
        hidden = a.hidden_size
    else:
        model, tokenizer = _load_base(cfg, base_dir, labels)
        base_desc = str(base_dir)
        hidden = int(getattr(model.config, "hidden_size", 768))
        max_pos = int(getattr(model.config, "max_position_embeddings", cfg.max_len))
        if cfg.max_len > max_pos:
            raise ValueError(f"--max-len {cfg.max_len} exceeds the base's max_position_embeddings {max_pos}")
    tokenizer.model_max_length = cfg.max_len
    return model, tokenizer, base_desc, hidden


@dataclass
class _Fit:
    model: Any
    steps: int
    stopped_at: int | None
    ngram_fit: dict[str, Any] | None


def _fit(
    model: Any,
    tokenizer: Any,
    feats: list[dict[str, Any]],
    weights: list[float],
    cfg: TrainConfig,
    *,
    lr: float,
    max_steps: int,
    max_minutes: float | None,
    work: Path,
    say: Callable[[str], None],
) -> _Fit:
    """One optimisation run (n-gram head preparation + the Trainer loop) on encoded, labelled ``feats``."""
    import torch
    from transformers import DataCollatorWithPadding, TrainingArguments

    ngram_fit_info = None
    if cfg.ngram_fit not in ("lr", "joint"):
        raise ValueError(f"ngram_fit must be 'lr' or 'joint', got {cfg.ngram_fit!r}")
    if cfg.ngram_branch and cfg.ngram_fit == "joint" and cfg.ngram_idf:
        from training.ngram_model import set_ngram_idf

        set_ngram_idf(model, [f["input_ids"] for f in feats])
    if cfg.ngram_branch and cfg.ngram_fit == "lr":
        from training.ngram_model import fit_ngram_head

        t_fit = time.monotonic()
        ngram_fit_info = fit_ngram_head(
            model,
            [f["input_ids"] for f in feats],
            [f["labels"] for f in feats],
            class_weight=weights,
            C=cfg.ngram_C,
        )
        model.ngram.weight.requires_grad_(False)
        model.ngram_bias.requires_grad_(False)
        say(
            f"[{cfg.kind}] n-gram head fitted as TF-IDF LR in {time.monotonic() - t_fit:.1f}s: {ngram_fit_info}"
        )
    args = TrainingArguments(
        output_dir=str(work),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=lr,
        weight_decay=cfg.weight_decay,
        warmup_ratio=cfg.warmup_ratio,
        lr_scheduler_type="linear",
        max_steps=max_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=max(1, max_steps // 10),
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        disable_tqdm=not cfg.progress,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        group_by_length=False,
    )
    callbacks = []
    budget = None
    if max_minutes:
        budget = _time_budget_callback(max_minutes)
        callbacks.append(budget)
    trainer_cls = _make_trainer_class()
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=_ListDataset(feats),
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=callbacks,
        class_weight=weights,
        label_smoothing=cfg.label_smoothing,
        ngram_lr_mult=cfg.ngram_lr_mult if cfg.ngram_branch else 1.0,
        ngram_weight_decay=cfg.ngram_weight_decay,
    )
    transformers_logging_quiet()
    trainer.train()
    _rm_tree(work)
    return _Fit(
        trainer.model,
        int(trainer.state.global_step),
        budget.stopped_at if budget is not None else None,
        ngram_fit_info,
    )


def train_classifier(
    train: str | Path | LabelledData,
    out_dir: str | Path,
    *,
    eval_data: str | Path | LabelledData | None = None,
    base: str | Path | None = None,
    config: TrainConfig | None = None,
    on_log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train one classifier and write its checkpoint directory. See the module docstring.

    With ``refit_full`` and no eval file (the eval split is a stratified holdout of the training file), the
    model is trained twice: first on the training part, which is scored on the holdout to choose the
    BERT/n-gram mix and temperature, calibrate thresholds and report metrics; then a fresh model is trained
    on all of the file for the same number of epochs, the chosen mix is applied, and that model is saved.
    The reported metrics and thresholds are the first model's (honest: measured on data it never saw)."""
    import torch

    previous_threads = torch.get_num_threads()
    try:
        return _train_classifier(train, out_dir, eval_data, base, config, on_log)
    finally:
        torch.set_num_threads(previous_threads)  # no process-wide side effect on later steps


def _train_classifier(
    train: str | Path | LabelledData,
    out_dir: str | Path,
    eval_data: str | Path | LabelledData | None,
    base: str | Path | None,
    config: TrainConfig | None,
    on_log: Callable[[str], None] | None,
) -> TrainResult:
    from transformers import set_seed

    cfg = config or TrainConfig()
    say = on_log or (lambda msg: print(msg, flush=True))
    t0 = time.monotonic()
    threads = _set_threads(cfg.threads)
    out_dir = Path(out_dir)
    check_out_dir(out_dir, cfg.kind, overwrite=cfg.overwrite)

    train_data = train if isinstance(train, LabelledData) else load_labelled(train)
    eval_source = "file"
    full = train_data
    if eval_data is None:
        tr_idx, ev_idx = stratified_split(train_data.labels, cfg.val_fraction, cfg.seed)
        ev = train_data.subset(ev_idx)
        tr = train_data.subset(tr_idx)
        eval_source = f"stratified {cfg.val_fraction:.0%} holdout of the training file (seed {cfg.seed})"
    else:
        ev = eval_data if isinstance(eval_data, LabelledData) else load_labelled(eval_data)
        tr = train_data
    if cfg.max_train_examples and len(tr) > cfg.max_train_examples:
        keep, _ = stratified_split(tr.labels, 1.0 - cfg.max_train_examples / len(tr), cfg.seed)
        tr = tr.subset(keep)
        if eval_data is None:
            keep_full, _ = stratified_split(full.labels, 1.0 - cfg.max_train_examples / len(full), cfg.seed)
            full = full.subset(keep_full)
    refit = cfg.refit_full and eval_data is None and len(ev) > 0
    labels = train_data.label_set
    unknown = sorted(set(ev.labels) - set(labels))
    if unknown:
        raise DataError(
            f"{ev.path or 'eval data'}: label(s) not present in the training data "
            f"({train_data.path or 'train'}): {unknown}"
        )
    if len(labels) < 2:
        raise DataError(f"{train_data.path or 'training data'}: need at least 2 labels, got {labels}")
    label2id = {y: i for i, y in enumerate(labels)}

    norm_tr = [normalize(t, cfg.normalize) for t in tr.texts]
    norm_ev = [normalize(t, cfg.normalize) for t in ev.texts]

    base_dir = resolve_base(base)
    set_seed(cfg.seed)
    model, tokenizer, base_desc, hidden = _new_model(cfg, base_dir, norm_tr, labels)
    lr = cfg.lr or _default_lr(base_dir, hidden)
    n_params = sum(p.numel() for p in model.parameters())
    say(
        f"[{cfg.kind}] train={len(tr)} eval={len(ev)} ({eval_source}) labels={len(labels)} "
        f"base={base_desc[:60]} params={n_params / 1e6:.1f}M lr={lr} epochs={cfg.epochs} threads={threads}"
        + (f"; then refit on all {len(full)}" if refit else "")
    )
    for name, d in (("--train", train_data), ("--eval", ev if eval_data is not None else None)):
        if d is not None and d.skipped_empty:
            say(f"[{cfg.kind}] {name} {d.path}: skipped {d.skipped_empty} row(s) whose text is empty")

    def encode(tokenizer: Any, texts: list[str], ys: list[str]) -> list[dict[str, Any]]:
        feats = _encode(tokenizer, texts, cfg.max_len)
        for f, y in zip(feats, ys, strict=True):
            f["labels"] = label2id[y]
        return feats

    train_feats = encode(tokenizer, norm_tr, tr.labels)
    weights = class_weights(tr.labels, labels, cfg.class_weight_power)
    steps_per_epoch = math.ceil(len(train_feats) / cfg.batch_size)
    max_steps = max(1, int(round(steps_per_epoch * cfg.epochs)))
    # the refit shares the wall-clock budget: the first run gets about half of it
    first_budget = cfg.max_minutes * 0.5 if (cfg.max_minutes and refit) else cfg.max_minutes
    fit = _fit(
        model, tokenizer, train_feats, weights, cfg,
        lr=lr, max_steps=max_steps, max_minutes=first_budget, work=out_dir / ".trainer", say=say,
    )  # fmt: skip
    model = fit.model

    bert_weight_info = None
    if cfg.ngram_branch and len(norm_ev):
        from training.ngram_model import choose_bert_weight

        batches = [
            dict(tokenizer(norm_ev[s : s + 64], truncation=True, max_length=cfg.max_len, padding=True,
                           return_tensors="pt"))
            for s in range(0, len(norm_ev), 64)
        ]  # fmt: skip
        bert_weight_info = choose_bert_weight(model, batches, [label2id[y] for y in ev.labels])
        say(f"[{cfg.kind}] BERT branch weight chosen on the eval split: {bert_weight_info}")

    probs = predict_proba(model, tokenizer, norm_ev, cfg.max_len)
    from training.metrics import calibrate_thresholds, classification_report

    y_ev = [label2id[y] for y in ev.labels]
    metrics = classification_report(y_ev, probs, labels)
    thresholds = calibrate_thresholds(y_ev, probs, labels)
    metrics["eval_source"] = eval_source
    if fit.stopped_at is not None:
        metrics["stopped_by_time_budget_at_step"] = fit.stopped_at
    if not y_ev:
        # every label has a single example, so the holdout is empty: "accuracy 0.0" would read as a measured
        # failure (it was printed and stored so); nothing was measured and the thresholds are the defaults
        metrics.update(accuracy=None, macro_f1=None, weighted_f1=None, ece=None)
        metrics["eval_source"] = f"none: no eval examples ({eval_source} is empty)"
        say(
            f"[{cfg.kind}] no eval examples (every label of the training file has one example, and none "
            f"can be held out): metrics not measured, default thresholds; give --eval FILE or more examples"
        )
    else:
        say(
            f"[{cfg.kind}] eval accuracy={metrics['accuracy']:.4f} macro_f1={metrics['macro_f1']:.4f} "
            f"ece={metrics['ece']:.4f} n={metrics['n']} ({time.monotonic() - t0:.0f}s)"
        )

    refit_info = None
    if refit:
        # same epochs as the first run actually trained (it may have stopped on its budget)
        norm_full = [normalize(t, cfg.normalize) for t in full.texts]
        set_seed(cfg.seed)
        model, tokenizer, _, _ = _new_model(cfg, base_dir, norm_full, labels)
        full_feats = encode(tokenizer, norm_full, full.labels)
        epochs_done = fit.steps / steps_per_epoch
        refit_steps = max(1, int(round(math.ceil(len(full_feats) / cfg.batch_size) * epochs_done)))
        left = cfg.max_minutes - (time.monotonic() - t0) / 60 if cfg.max_minutes else None
        refit_fit = _fit(
            model, tokenizer, full_feats, class_weights(full.labels, labels, cfg.class_weight_power), cfg,
            lr=lr, max_steps=refit_steps, max_minutes=max(left, 0.1) if left is not None else None,
            work=out_dir / ".trainer", say=say,
        )  # fmt: skip
        model = refit_fit.model
        if bert_weight_info is not None:
            from training.ngram_model import apply_mix

            apply_mix(model, bert_weight_info["bert_weight"], bert_weight_info["temperature"])
        refit_info = {
            "examples": len(full_feats),
            "steps": refit_fit.steps,
            "planned_steps": refit_steps,
            "stopped_by_time_budget_at_step": refit_fit.stopped_at,
            "ngram_fit_result": refit_fit.ngram_fit,
            "note": "served model = refit on all examples with the mix, temperature and thresholds "
            "chosen on the first model's holdout; metrics are the first model's on that holdout",
        }
        say(f"[{cfg.kind}] refit on all {len(full_feats)} examples: {refit_fit.steps} steps")
    train_seconds = time.monotonic() - t0

    meta = {
        "kind": cfg.kind,
        "labels": labels,
        "thresholds": thresholds,
        "normalize": cfg.normalize.model_dump(),
        "metrics": metrics,
        "max_seq_len": cfg.max_len,
        "training_data_sha256": train_data.sha256,
        "training_data": str(train_data.path) if train_data.path else None,
        "eval_data": str(ev.path) if eval_data is not None and ev.path else None,
        "base": base_desc,
        "recipe": {
            "epochs": cfg.epochs,
            "lr": lr,
            "batch_size": cfg.batch_size,
            "seed": cfg.seed,
            "max_len": cfg.max_len,
            "warmup_ratio": cfg.warmup_ratio,
            "weight_decay": cfg.weight_decay,
            "class_weight_power": cfg.class_weight_power,
            "label_smoothing": cfg.label_smoothing,
            "ngram_branch": cfg.ngram_branch,
            "ngram_buckets": cfg.ngram_buckets if cfg.ngram_branch else None,
            "ngram_lr_mult": cfg.ngram_lr_mult if cfg.ngram_branch else None,
            "ngram_fit": cfg.ngram_fit if cfg.ngram_branch else None,
            "ngram_idf": (cfg.ngram_idf or cfg.ngram_fit == "lr") if cfg.ngram_branch else None,
            "ngram_C": cfg.ngram_C if cfg.ngram_branch and cfg.ngram_fit == "lr" else None,
            "ngram_fit_result": fit.ngram_fit,
            "bert_weight": bert_weight_info,
            "steps": fit.steps,
            "train_examples": len(tr),
            "refit_full": refit_info,
        },
        "train_seconds": round(train_seconds, 1),
    }

    def save(stage: Path) -> None:
        model.save_pretrained(str(stage))
        tokenizer.save_pretrained(str(stage))
        (stage / TRAINING_META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")

    write_output_dir(out_dir, save)
    return TrainResult(out_dir, labels, metrics, thresholds, time.monotonic() - t0)


def check_out_dir(out_dir: Path, kind: str, *, overwrite: bool = False) -> None:
    """Refuse an output directory that holds something else than a previous ``kind`` model of ours (no
    ``xiaoke_training.json``, or one of another kind), unless ``overwrite``: retraining into the same
    directory is the normal workflow, but writing an intent model over a user's bert-base-chinese (or an
    embedder) replaced its config and vocabulary and left a mixture of both models' files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out {out_dir}: exists and is not a directory")
    if overwrite or not out_dir.is_dir():
        return
    if all(p.name == ".trainer" for p in out_dir.iterdir()):  # empty, or the work dir of an interrupted run
        return
    try:
        existing = json.loads((out_dir / TRAINING_META).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        existing = None
    if existing == kind:
        return
    what = (
        f"a model of another kind ({existing})"
        if isinstance(existing, str)
        else f"files that are not a model of ours (no valid {TRAINING_META})"
    )
    raise FileExistsError(
        f"--out {out_dir}: already holds {what}; choose another directory or pass --overwrite to replace it"
    )


def write_output_dir(out_dir: Path, save: Callable[[Path], None]) -> None:
    """Run ``save(stage)`` on a fresh sibling directory and move it into place as ``out_dir``, replacing what
    was there as a whole: no file of an earlier model is left beside the new one's, and a failure (or Ctrl-C)
    while saving leaves the earlier model intact."""
    from bundle.store import staged_dir

    if out_dir.is_symlink():  # e.g. var/ckpt/intent -> /data/...: replace the directory it points to
        out_dir = out_dir.resolve()
    with staged_dir(out_dir) as stage:
        save(stage)


def transformers_logging_quiet() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


def _rm_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a batch size of 0 was a ZeroDivisionError traceback, 0 threads a
    RuntimeError from torch)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (``--epochs 0`` or ``--lr 0`` trained something else silently)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


MIN_MAX_LEN = 8  # [CLS] + [SEP] + a few tokens; below 3 the tokenizer silently did not truncate at all


def max_len_arg(text: str) -> int:
    """argparse type for ``--max-len``: the stored ``max_seq_len`` serving truncates to."""
    value = positive_int(text)
    if value < MIN_MAX_LEN:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_MAX_LEN}, got {value}")
    return value


def add_cli_args(ap, defaults: TrainConfig) -> None:
    """The CLI shared by ``training.intent`` and ``training.sentiment``."""
    ap.add_argument("--train", type=Path, required=True, help="JSONL / TSV / CSV with text + label")
    ap.add_argument("--eval", type=Path, default=None, help="eval file (default: stratified holdout)")
    ap.add_argument("--out", type=Path, required=True, help="output checkpoint directory")
    ap.add_argument(
        "--base",
        default="auto",
        help="checkpoint dir to fine-tune; 'auto' (default): our MLM checkpoint under "
        "$XIAOKE_DATA_DIR/pretrained/mlm-small if present, else from scratch; 'none': from scratch",
    )
    ap.add_argument("--epochs", type=positive_float, default=defaults.epochs)
    ap.add_argument("--lr", type=positive_float, default=defaults.lr)
    ap.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    ap.add_argument("--seed", type=int, default=defaults.seed)
    ap.add_argument("--max-len", type=max_len_arg, default=defaults.max_len)
    ap.add_argument("--max-minutes", type=positive_float, default=defaults.max_minutes)
    ap.add_argument("--max-train-examples", type=positive_int, default=defaults.max_train_examples)
    ap.add_argument(
        "--threads", type=positive_int, default=None, help="torch threads (default: auto by load)"
    )
    ap.add_argument(
        "--ngram-branch",
        action=argparse.BooleanOptionalAction,
        default=defaults.ngram_branch,
        help="add the in-graph hashed char-n-gram branch (training.ngram_model)",
    )
    ap.add_argument(
        "--ngram-fit",
        choices=("lr", "joint"),
        default=defaults.ngram_fit,
        help="lr: fit the n-gram head first as TF-IDF logistic regression, then BERT on the residual; "
        "joint: train both together from zero",
    )
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an --out directory that holds something else than a previous model of this kind",
    )
    ap.add_argument(
        "--refit-full",
        action=argparse.BooleanOptionalAction,
        default=defaults.refit_full,
        help="without --eval: after choosing the mix and thresholds on the holdout, retrain on the whole "
        "training file and save that model (metrics stay the holdout's)",
    )


def config_from_args(args, defaults: TrainConfig) -> TrainConfig:
    return replace(
        defaults,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        max_len=args.max_len,
        max_minutes=args.max_minutes,
        max_train_examples=args.max_train_examples,
        threads=args.threads,
        ngram_branch=args.ngram_branch,
        ngram_fit=args.ngram_fit,
        refit_full=args.refit_full,
        overwrite=args.overwrite,
    )


def run_cli(defaults: TrainConfig, argv: list[str] | None = None) -> TrainResult:
    """``python -m training.<kind>``: parse the shared CLI and train."""
    ap = argparse.ArgumentParser(
        prog=f"python -m training.{defaults.kind}", description=f"Train the {defaults.kind} classifier."
    )
    add_cli_args(ap, defaults)
    args = ap.parse_args(argv)
    cfg = config_from_args(args, defaults)
    return train_classifier(args.train, args.out, eval_data=args.eval, base=args.base, config=cfg)


def train_kind(
    defaults: TrainConfig,
    train_path: str | Path | LabelledData,
    out_dir: str | Path,
    *,
    eval_path: str | Path | LabelledData | None = None,
    base: str | Path | None = "auto",
    **overrides: Any,
) -> TrainResult:
    """Programmatic entry (build orchestrator, benchmarks): ``overrides`` are TrainConfig fields."""
    cfg = replace(defaults, **overrides)
    return train_classifier(train_path, out_dir, eval_data=eval_path, base=base, config=cfg)


@dataclass(frozen=True)
class ClassifierTask:
    """One classifier kind (intent, sentiment): its defaults plus the three entry points every kind has."""

    defaults: TrainConfig

    def train(
        self,
        train_path: str | Path | LabelledData,
        out_dir: str | Path,
        *,
        eval_path: str | Path | LabelledData | None = None,
        base: str | Path | None = "auto",
        **overrides: Any,
    ) -> Path:
        """Train into ``out_dir`` and return it. ``overrides``: TrainConfig fields."""
        return self.train_full(train_path, out_dir, eval_path=eval_path, base=base, **overrides).out_dir

    def train_full(
        self,
        train_path: str | Path | LabelledData,
        out_dir: str | Path,
        *,
        eval_path: str | Path | LabelledData | None = None,
        base: str | Path | None = "auto",
        **overrides: Any,
    ) -> TrainResult:
        """Like :meth:`train` but returns metrics and thresholds too."""
        return train_kind(self.defaults, train_path, out_dir, eval_path=eval_path, base=base, **overrides)

    def main(self, argv: list[str] | None = None) -> int:
        """The CLI: 0 on success; bad input -> one ``error: ...`` line on stderr and exit code 2."""
        try:
            run_cli(self.defaults, argv)
        # DataError (bad data file) is a ValueError; a missing --base or an --out that is a file, OSErrors
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
