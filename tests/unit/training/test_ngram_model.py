"""The in-graph hashed n-gram branch: ids are char n-grams, padding-safe, batch-independent."""

from __future__ import annotations

import torch

from training.ngram_model import XiaokeBertNgramForSequenceClassification, hashed_ngrams


def _tiny_model(vocab_size: int, num_labels: int, buckets: int) -> XiaokeBertNgramForSequenceClassification:
    from transformers import BertConfig

    cfg = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=num_labels,
    )
    cfg.ngram_buckets = buckets
    return XiaokeBertNgramForSequenceClassification(cfg).eval()


def test_hashed_ngrams_shapes_padding_and_determinism():
    ids = torch.tensor([[2, 10, 11, 12, 3], [2, 10, 11, 3, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    h = hashed_ngrams(ids, mask, n_buckets=1000)
    assert h.shape == (2, 5 + 4 + 3)
    assert h.dtype == torch.int64
    assert int(h.min()) >= 0 and int(h.max()) < 1000
    row0, row1 = h[0].tolist(), h[1].tolist()
    assert 0 not in row0  # no padding in row 0
    # row 1: unigram of the pad token, bigram (3, pad), trigrams (11,3,pad) are zeroed
    uni1, bi1, tri1 = row1[:5], row1[5:9], row1[9:]
    assert uni1[4] == 0 and bi1[3] == 0 and tri1[2] == 0
    assert uni1[:3] == row0[:3]  # same tokens -> same ids, whatever the batch
    assert bi1[:2] == row0[5:7] and tri1[:1] == row0[9:10]
    assert hashed_ngrams(ids, mask, 1000).tolist() == h.tolist()


def test_order_matters_and_orders_do_not_alias():
    a = hashed_ngrams(torch.tensor([[5, 6]]), torch.tensor([[1, 1]]), 1 << 17)[0].tolist()
    b = hashed_ngrams(torch.tensor([[6, 5]]), torch.tensor([[1, 1]]), 1 << 17)[0].tolist()
    assert a[2] != b[2]  # bigram 5-6 vs 6-5
    assert a[2] not in a[:2]


def test_model_forward_and_padding_invariance():
    torch.manual_seed(0)
    model = _tiny_model(50, 3, 257)
    torch.nn.init.normal_(model.ngram.weight)
    with torch.no_grad():
        model.ngram.weight[0].zero_()
    ids = torch.tensor([[2, 7, 8, 9, 3]])
    padded = torch.tensor([[2, 7, 8, 9, 3, 0, 0]])
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        b = model(input_ids=padded, attention_mask=(padded > 0).long()).logits
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([1]))
    assert a.shape == (1, 3)
    assert torch.allclose(a, b, atol=1e-5)
    assert out.loss is not None and float(out.loss) > 0


def test_fit_ngram_head_matches_the_graph_features():
    """The LR fitted on TF-IDF features gives the same logits as the model's in-graph n-gram branch."""
    from training.ngram_model import fit_ngram_head

    model = _tiny_model(40, 2, 1021)
    gen = torch.Generator().manual_seed(0)
    seqs, labels = [], []
    for i in range(40):
        y = i % 2
        body = torch.randint(10, 20, (5,), generator=gen).tolist()
        marker = [30, 31] if y else [32, 33]  # a label-revealing bigram
        seqs.append([2, *body[:2], *marker, *body[2:], 3])
        labels.append(y)
    info = fit_ngram_head(model, seqs, labels, C=10.0)
    assert info["train_accuracy"] == 1.0
    assert float(model.ngram_idf[0]) == 0.0 and float(model.ngram_idf.max()) > 1.0
    ids = torch.tensor(seqs)
    with torch.no_grad():
        graph = model.ngram_logits(ids, torch.ones_like(ids))
    assert (graph.argmax(1) == torch.tensor(labels)).all()


def test_choose_bert_weight_keeps_the_branch_that_generalizes():
    """With a label-revealing n-gram head and a loud label-blind BERT head, validation avoids the BERT weight that
    hurts, and the model's logits (what export traces) use the chosen weight."""
    from training.ngram_model import choose_bert_weight, fit_ngram_head

    torch.manual_seed(0)
    model = _tiny_model(40, 2, 1021)
    torch.nn.init.normal_(model.classifier.weight, std=100.0)  # a loud, label-blind BERT head
    gen = torch.Generator().manual_seed(1)
    seqs, labels = [], []
    for i in range(60):
        y = i % 2
        body = torch.randint(10, 20, (5,), generator=gen).tolist()
        seqs.append([2, *body[:2], *([30, 31] if y else [32, 33]), *body[2:], 3])
        labels.append(y)
    fit_ngram_head(model, seqs[:40], labels[:40], C=10.0)
    ids = torch.tensor(seqs[40:])
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    info = choose_bert_weight(model, [batch], labels[40:])
    w = info["bert_weight"]
    assert info["candidates"]["1.0"]["accuracy"] < 1.0  # the noisy BERT head at full weight hurts ...
    assert info["candidates"][str(w)]["accuracy"] == 1.0 and w < 1.0  # ... so a weight that does not is kept
    t = info["temperature"]
    assert info["log_loss_after_temperature"] <= info["candidates"][str(w)]["log_loss"] + 1e-6
    assert abs(float(model.bert_weight) - w / t) < 1e-4
    with torch.no_grad():  # what export traces: the chosen mix, temperature folded into the weights
        bert, ng = model.branch_logits(**batch)
        assert torch.allclose(model(**batch).logits, float(model.bert_weight) * bert + ng, atol=1e-5)
        assert (model(**batch).logits.argmax(1) == torch.tensor(labels[40:])).all()
