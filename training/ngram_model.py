"""BERT + hashed token-n-gram branch, one exportable torch model (the "combining signals" recipe).

The classifier's logits are ``bert_head(pooled) + ngram_head(bag of hashed 1..3-grams of input_ids)``. The
n-gram ids are computed *inside the graph* from ``input_ids`` and ``attention_mask`` with integer
multiply / add / modulo (ONNX ``Mul``/``Add``/``Mod``/``Slice``), so the exported ONNX model has exactly the
inputs of a plain BERT classifier (input_ids, attention_mask, token_type_ids) and the same ``logits``
output: serving computes nothing new. Our tokenizer splits CJK text into single characters, so token
n-grams are character n-grams (what a char TF-IDF + logistic regression sees), plus the [CLS]/[SEP]
boundaries.

The n-gram head is a linear model over an L2-normalised bag of hashed n-grams (an embedding table of
``ngram_buckets x num_labels``): the fastText / TF-IDF-LR signal, trained jointly with BERT. The loss is
CE(bert + ngram) + ``aux_weight`` * (CE(bert) + CE(ngram)), so each branch also learns on its own and the
n-gram branch (which fits the training set quickly) cannot starve BERT of gradient.

After training, the weight of the BERT branch in the sum (``bert_weight``, a buffer saved with the model and
part of the exported graph) is chosen on the validation split by :func:`choose_bert_weight`: both branches fit
the training set almost perfectly, so how much each generalizes is only visible on held-out data (measured on
the demo intents: BERT's logits at full weight cost the TF-IDF-LR head 5 points of validation accuracy).

``config.json`` has its own ``model_type: "xiaoke_bert_ngram"`` (a BertConfig subclass), so loading it as a
plain BERT fails loudly instead of silently dropping the n-gram head. Importing this module registers the
type with ``AutoConfig`` / ``AutoModelForSequenceClassification``; :func:`load_classifier_model` loads any
classifier checkpoint of ours. optimum's exporters do not know the type (and refuse classes outside the
``transformers`` package), so :func:`export_onnx` exports it with the plain BERT classifier interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

ARCH_NAME = "XiaokeBertNgramForSequenceClassification"
MODEL_TYPE = "xiaoke_bert_ngram"
_P = 1_000_003  # multiplier of the polynomial hash
_M = 2_147_483_647  # 2^31 - 1: keeps every intermediate product < 2^52 (int64-safe)


def hashed_ngrams(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, n_buckets: int, orders: tuple[int, ...] = (1, 2, 3)
) -> torch.Tensor:
    """[B, sum_n (L-n+1)] int64 bucket ids in [1, n_buckets); 0 where an n-gram touches padding.

    Pure integer tensor ops (exportable). Also used by the unit test as the reference implementation.
    """
    ids = input_ids.to(torch.int64)
    valid = attention_mask.to(torch.int64)
    parts = []
    for n in orders:
        if n == 1:
            h = ids * _P + 1
            m = valid
        else:
            end = -(n - 1)
            h = ids[:, :end]
            m = valid[:, :end]
            for k in range(1, n):
                nxt = ids[:, k : (end + k) if end + k < 0 else None]
                h = (h % _M) * _P + nxt
                m = m * valid[:, k : (end + k) if end + k < 0 else None]
            h = h * 31 + n
        parts.append(((h % _M) % (n_buckets - 1) + 1) * m)
    return torch.cat(parts, dim=1)


class XiaokeBertNgramConfig(BertConfig):
    """A BertConfig with its own ``model_type``: a checkpoint of this model can never be mistaken for (and
    silently loaded as) a plain BERT classifier, which would drop the n-gram head."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        ngram_buckets: int = 1 << 17,
        ngram_orders: tuple[int, ...] | list[int] = (1, 2, 3),
        ngram_aux_weight: float = 1.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.ngram_buckets = ngram_buckets
        self.ngram_orders = list(ngram_orders)
        self.ngram_aux_weight = ngram_aux_weight


class XiaokeBertNgramForSequenceClassification(BertPreTrainedModel):
    config_class = XiaokeBertNgramConfig

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.ngram_buckets = int(getattr(config, "ngram_buckets", 1 << 17))
        self.ngram_orders = tuple(getattr(config, "ngram_orders", (1, 2, 3)))
        self.aux_weight = float(getattr(config, "ngram_aux_weight", 1.0))
        self.bert = BertModel(config)
        drop = (
            config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        )
        self.dropout = nn.Dropout(drop)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.ngram = nn.Embedding(self.ngram_buckets, config.num_labels, padding_idx=0)
        self.ngram_bias = nn.Parameter(torch.zeros(config.num_labels))
        # per-bucket IDF weights (ones = plain bag); set by fit_ngram_head, saved with the model
        self.register_buffer("ngram_idf", torch.ones(self.ngram_buckets), persistent=True)
        # weight of the BERT logits in the sum; chosen on validation data by choose_bert_weight
        self.register_buffer("bert_weight", torch.ones(()), persistent=True)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if module is getattr(self, "ngram", None):
            nn.init.zeros_(module.weight)  # a linear model: start at zero like LR
        elif module is self:
            # the model's own parameter/buffers: from_pretrained on a plain BERT checkpoint (--base) allocates
            # them uninitialised and, not being a submodule's, the parent class never sets them
            with torch.no_grad():
                self.ngram_bias.zero_()
                self.ngram_idf.fill_(1.0)  # type: ignore[operator]
                self.bert_weight.fill_(1.0)  # type: ignore[operator]

    def ngram_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        ids = hashed_ngrams(input_ids, attention_mask, self.ngram_buckets, self.ngram_orders)
        emb = self.ngram(ids)  # [B, N, K]; bucket 0 is the zero padding row
        idf: torch.Tensor = self.ngram_idf  # type: ignore[assignment]
        w = idf[ids] * (ids > 0).to(emb.dtype)  # [B, N] tf-idf weight of each occurrence
        norm = torch.sqrt((w * w).sum(dim=1, keepdim=True)).clamp(min=1e-6)
        return (emb * w.unsqueeze(-1)).sum(dim=1) / norm + self.ngram_bias

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        assert input_ids is not None
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        bert_logits = self.classifier(self.dropout(out[1]))
        ng_logits = self.ngram_logits(input_ids, attention_mask)
        bert_weight: torch.Tensor = self.bert_weight  # type: ignore[assignment]
        logits = bert_weight * bert_logits + ng_logits
        loss = None
        if labels is not None:
            loss = self.loss(bert_logits, ng_logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)  # type: ignore[arg-type]

    def loss(
        self,
        bert_logits: torch.Tensor,
        ng_logits: torch.Tensor,
        labels: torch.Tensor,
        weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        ce = nn.functional.cross_entropy
        total = ce((bert_logits + ng_logits).float(), labels, weight=weight, label_smoothing=label_smoothing)
        if self.aux_weight:
            total = total + self.aux_weight * (
                ce(bert_logits.float(), labels, weight=weight, label_smoothing=label_smoothing)
                + ce(ng_logits.float(), labels, weight=weight, label_smoothing=label_smoothing)
            )
        return total

    def branch_logits(self, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(bert_logits, ngram_logits) for the weighted loss in training.classifier."""
        out = self.bert(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            token_type_ids=inputs.get("token_type_ids"),
        )
        return self.classifier(self.dropout(out[1])), self.ngram_logits(
            inputs["input_ids"], inputs["attention_mask"]
        )


def _train_ngrams(
    model: XiaokeBertNgramForSequenceClassification, input_ids: list[list[int]]
) -> list[torch.Tensor]:
    out = []
    with torch.no_grad():
        for ids in input_ids:
            t = torch.tensor([ids], dtype=torch.int64)
            h = hashed_ngrams(t, torch.ones_like(t), model.ngram_buckets, model.ngram_orders)[0]
            out.append(h[h > 0])
    return out


def set_ngram_idf(
    model: XiaokeBertNgramForSequenceClassification,
    input_ids: list[list[int]],
    per_example: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Set the IDF buffer from the training texts: log((1+n)/(1+df)) + 1 (sklearn's smooth idf) for
    n-gram buckets seen in training and **0 for unseen ones**, so that, like a TF-IDF vocabulary, n-grams
    never seen in training neither score nor dilute the L2 norm (else the bias dominates on new text)."""
    per_example = per_example if per_example is not None else _train_ngrams(model, input_ids)
    df = torch.zeros(model.ngram_buckets, dtype=torch.float64)
    for h in per_example:
        df[torch.unique(h)] += 1
    n = max(len(per_example), 1)
    idf = (torch.log((1.0 + n) / (1.0 + df)) + 1.0).to(torch.float32)
    idf[df == 0] = 0.0
    idf[0] = 0.0
    with torch.no_grad():
        model.ngram_idf.copy_(idf)  # type: ignore[operator]
    return idf


def fit_ngram_head(
    model: XiaokeBertNgramForSequenceClassification,
    input_ids: list[list[int]],
    labels: list[int],
    *,
    class_weight: list[float] | None = None,
    C: float = 10.0,
    max_iter: int = 200,
) -> dict[str, float]:
    """Fit the n-gram head as an L2-regularised logistic regression on TF-IDF-weighted hashed n-grams.

    Features are built exactly as :meth:`ngram_logits` computes them (IDF from :func:`set_ngram_idf`,
    L2-normalised), so the fitted table is used unchanged in the graph. The objective is sklearn's
    ``LogisticRegression(C)`` in mean form: CE + ||W||^2 / (2 C n). Full-batch L-BFGS.
    """
    n_b = model.ngram_buckets
    per_example = _train_ngrams(model, input_ids)
    idf = set_ngram_idf(model, input_ids, per_example)
    n = len(per_example)
    with torch.no_grad():
        rows, cols, vals = [], [], []
        for i, h in enumerate(per_example):
            w = idf[h]
            norm = torch.sqrt((w * w).sum()).clamp(min=1e-6)
            rows.append(torch.full_like(h, i))
            cols.append(h)
            vals.append(w / norm)
        x = torch.sparse_coo_tensor(
            torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals), (n, n_b)
        ).coalesce()
    y = torch.tensor(labels, dtype=torch.int64)
    k = model.num_labels
    weight = torch.zeros(n_b, k, requires_grad=True)
    bias = torch.zeros(k, requires_grad=True)
    cw = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float32)
    opt = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, history_size=10, line_search_fn="strong_wolfe"
    )

    def objective() -> torch.Tensor:
        logits = torch.sparse.mm(x, weight) + bias
        return nn.functional.cross_entropy(logits, y, weight=cw) + (weight * weight).sum() / (2 * C * n)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        final = float(objective())
        acc = float(((torch.sparse.mm(x, weight) + bias).argmax(1) == y).float().mean())
        model.ngram.weight.copy_(weight)
        model.ngram.weight[0].zero_()
        model.ngram_bias.copy_(bias)
    return {"objective": round(final, 5), "train_accuracy": round(acc, 5), "examples": n}


BERT_WEIGHTS = (0.0, 0.125, 0.25, 0.5, 0.75, 1.0)


def choose_bert_weight(
    model: XiaokeBertNgramForSequenceClassification,
    batches: list[dict[str, torch.Tensor]],
    labels: list[int],
    weights: tuple[float, ...] = BERT_WEIGHTS,
) -> dict[str, Any]:
    """Set ``bert_weight`` to the candidate with the best accuracy on the given (validation) batches, ties
    broken by the lower log-loss, then temperature-scale the sum on the same batches (grid search of T for the
    lowest log-loss; folded into the weights: ``bert_weight`` and the n-gram table are divided by T, so the
    graph is unchanged and the argmax too). Returns the figures of every candidate and T."""
    model.eval()
    bert_parts, ng_parts = [], []
    with torch.inference_mode():
        for b in batches:
            bl, nl = model.branch_logits(**b)
            bert_parts.append(bl.float())
            ng_parts.append(nl.float())
    bert, ng = torch.cat(bert_parts), torch.cat(ng_parts)
    y = torch.tensor(labels, dtype=torch.int64)
    table = {}
    for w in weights:
        logits = w * bert + ng
        table[w] = (
            float((logits.argmax(1) == y).float().mean()),
            float(nn.functional.cross_entropy(logits, y)),
        )
    best = max(weights, key=lambda w: (table[w][0], -table[w][1]))
    logits = best * bert + ng
    temps = torch.logspace(-1.0, 1.0, 41).tolist()  # 0.1 .. 10
    nll = {t: float(nn.functional.cross_entropy(logits / t, y)) for t in temps}
    temperature = min(temps, key=lambda t: nll[t])
    apply_mix(model, best, temperature)
    return {
        "bert_weight": best,
        "temperature": round(temperature, 4),
        "log_loss_after_temperature": round(nll[temperature], 4),
        "candidates": {
            str(w): {"accuracy": round(acc, 4), "log_loss": round(ll, 4)} for w, (acc, ll) in table.items()
        },
    }


def apply_mix(
    model: XiaokeBertNgramForSequenceClassification, bert_weight: float, temperature: float
) -> None:
    """Fold a chosen BERT weight and temperature into the model: logits become
    ``(bert_weight * bert + ngram) / temperature`` with the graph unchanged. Expects a freshly trained
    model (``bert_weight`` buffer still 1): the refit in training.classifier applies the mix chosen on the
    first model's validation split to the model refit on all the data."""
    with torch.no_grad():
        model.bert_weight.fill_(bert_weight / temperature)  # type: ignore[operator]
        model.ngram.weight.div_(temperature)
        model.ngram_bias.div_(temperature)


def register_auto_classes() -> None:
    """Make ``AutoConfig`` / ``AutoModelForSequenceClassification`` know our model type (idempotent)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    AutoConfig.register(MODEL_TYPE, XiaokeBertNgramConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(
        XiaokeBertNgramConfig, XiaokeBertNgramForSequenceClassification, exist_ok=True
    )


register_auto_classes()


def is_ngram_checkpoint(model_dir: str | Path) -> bool:
    import json

    cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    return cfg.get("model_type") == MODEL_TYPE or ARCH_NAME in (cfg.get("architectures") or [])


def load_classifier_model(model_dir: str | Path):
    """The right class for a classifier checkpoint of ours (n-gram branch or plain sequence classifier)."""
    from transformers import AutoModelForSequenceClassification

    if is_ngram_checkpoint(model_dir):
        return XiaokeBertNgramForSequenceClassification.from_pretrained(str(model_dir))
    return AutoModelForSequenceClassification.from_pretrained(str(model_dir))


def export_onnx(model_dir: str | Path, out_path: str | Path, *, opset: int = 17) -> Path:
    """Export an n-gram-branch checkpoint to ONNX (inputs input_ids / attention_mask / token_type_ids,
    dynamic batch and sequence axes, output ``logits``) — the same interface as optimum's BERT
    text-classification export, which cannot be used directly because optimum infers the library from
    the model class's module. Returns ``out_path``."""
    model = XiaokeBertNgramForSequenceClassification.from_pretrained(str(model_dir)).eval()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ids = torch.tensor([[2, 10, 11, 12, 3], [2, 10, 11, 3, 0]], dtype=torch.int64)
    mask = (ids > 0).to(torch.int64)
    types = torch.zeros_like(ids)

    class _Wrapper(nn.Module):
        def __init__(self, inner: XiaokeBertNgramForSequenceClassification):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits

    dyn = {0: "batch_size", 1: "sequence_length"}
    with torch.no_grad():
        torch.onnx.export(
            _Wrapper(model),
            (ids, mask, types),
            str(out_path),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["logits"],
            dynamic_axes={
                "input_ids": dyn,
                "attention_mask": dyn,
                "token_type_ids": dyn,
                "logits": {0: "batch_size"},
            },
            opset_version=opset,
            dynamo=False,
        )
    return out_path
