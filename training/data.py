"""Labelled text datasets: loading (JSONL / TSV / CSV, auto-detected), stratified splits, class weights.

Supported layouts (UTF-8, a leading BOM is tolerated):

* JSONL — one object per line with string fields ``"text"`` and ``"label"`` (``.jsonl`` / ``.json`` or a first
  line that starts with ``{``).
* TSV — ``text<TAB>label`` (``.tsv``, or ``.txt`` / ``.csv`` / no suffix with a first line with a tab; a
  ``.txt`` file whose first line starts with ``{`` is JSONL). A header row is recognised when its cells are
  column names (e.g. SMP2017's ``Sentence<TAB>Tag``, ERNIE's ``label<TAB>text_a``); with a header the columns
  are found by name, so ``label<TAB>text`` works too. Chinese column names count as well (``文本<TAB>标签``;
  see ``TEXT_COLUMNS`` / ``LABEL_COLUMNS``), else such a header became an example. A two-column header that
  names only its label column (``utterance<TAB>intent``) is a header too, the other column being the text (it
  used to become an example of a class "intent").
* CSV — a header row is required; the text column is the first of ``review/text/sentence/content/query``, the
  label column the first of ``label/tag/intent/class`` (waimai_10k ``label,review``; online_shopping_10_cats
  ``cat,label,review``). RFC-4180 quoting.

Rows whose text is empty after stripping (whitespace, and the zero-width / control characters that
``bundle.normalize`` removes: a line of only U+200B or NUL trained as an empty input) are skipped and counted
(real corpora contain a few); every other malformed row raises :class:`DataError` naming the file and the
1-based line number.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bundle.normalize import NormalizeConfig, normalize

TEXT_COLUMNS = (
    "text",
    "review",
    "sentence",
    "text_a",
    "content",
    "query",
    "question",
    "文本",
    "句子",
    "内容",
    "问题",
)
LABEL_COLUMNS = ("label", "tag", "intent", "class", "category", "标签", "意图", "类别", "分类")


class DataError(ValueError):
    """A dataset file is missing, empty or malformed. The message names the file and line."""


@dataclass(frozen=True)
class LabelledData:
    texts: list[str]
    labels: list[str]
    path: Path | None = None
    sha256: str = ""
    fmt: str = ""
    skipped_empty: int = 0
    label_counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def label_set(self) -> list[str]:
        """Sorted distinct labels (a deterministic order for id assignment)."""
        return sorted(set(self.labels))

    def subset(self, indices: Sequence[int]) -> LabelledData:
        texts = [self.texts[i] for i in indices]
        labels = [self.labels[i] for i in indices]
        return LabelledData(texts, labels, self.path, self.sha256, self.fmt, 0, dict(Counter(labels)))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_texts(texts: Sequence[str], labels: Sequence[str]) -> str:
    """Hash of in-memory examples (for data that did not come from one file)."""
    h = hashlib.sha256()
    for t, y in zip(texts, labels, strict=True):
        h.update(json.dumps([t, y], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def _detect_format(path: Path, first_line: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        # a spreadsheet's "CSV" export is often tab-separated: it was refused for want of a CSV header
        return "tsv" if "\t" in first_line and "," not in first_line else "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    # .txt says nothing about the layout (a JSONL file saved as .txt was read as TSV: "expected
    # text<TAB>label, got 1 field(s)"): decided by the content like a file without a suffix
    stripped = first_line.lstrip()
    if stripped.startswith("{"):
        return "jsonl"
    if "\t" in first_line:
        return "tsv"
    if "," in first_line:
        return "csv"
    raise DataError(
        f"{path}: cannot tell the format (expected JSONL, TSV text<TAB>label or CSV with a header)"
    )


def _find_columns(header: list[str]) -> tuple[int, int] | None:
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    text_idx = next((names.index(c) for c in TEXT_COLUMNS if c in names), None)
    label_idx = next((names.index(c) for c in LABEL_COLUMNS if c in names), None)
    if len(names) == 2 and label_idx is not None and text_idx is None:
        # a two-column header naming only its label column ("utterance<TAB>intent", "sentence_a<TAB>label"):
        # the other column is the text, and the header must not become an example of a class "intent"
        text_idx = 1 - label_idx
    if text_idx is None or label_idx is None or text_idx == label_idx:
        return None
    return text_idx, label_idx


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# only what normalize() deletes (invisible and control characters, whitespace): cheap, no NFKC / zhconv
_BLANK_CHECK = NormalizeConfig(nfkc=False, lowercase=False, traditional_to_simplified=False)


def _is_blank(text: str) -> bool:
    """Nothing is left of ``text`` after normalization (whitespace, zero-width or control characters only)."""
    return not text.strip() or not normalize(text, _BLANK_CHECK)


def _load_jsonl(path: Path, raw: str) -> tuple[list[str], list[str], int]:
    texts: list[str] = []
    labels: list[str] = []
    skipped = 0
    # not str.splitlines(): that also splits at U+2028/U+2029/U+0085, which json.dumps(ensure_ascii=False)
    # leaves raw inside strings (pasted web text has them)
    for lineno, line in enumerate(_LINE_BREAK.split(raw), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object with 'text' and 'label'")
        text, label = obj.get("text"), obj.get("label")
        if not isinstance(text, str):
            raise DataError(f"{path}:{lineno}: missing or non-string 'text'")
        if isinstance(label, bool) or not isinstance(label, str | int):
            raise DataError(f"{path}:{lineno}: missing 'label' (a string or integer is required)")
        label = str(label).strip()
        if not label:
            raise DataError(f"{path}:{lineno}: empty 'label'")
        if _is_blank(text):
            skipped += 1
            continue
        texts.append(text)
        labels.append(label)
    return texts, labels, skipped


def _load_table(path: Path, raw: str, delimiter: str) -> tuple[list[str], list[str], int]:
    reader = csv.reader(
        io.StringIO(raw),
        delimiter=delimiter,
        quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE,
    )
    texts: list[str] = []
    labels: list[str] = []
    skipped = 0
    cols: tuple[int, int] | None = None
    first = True
    try:
        for row in reader:
            lineno = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if first:
                first = False
                cols = _find_columns(row)
                if cols is not None:
                    continue  # header row
                if delimiter == ",":
                    raise DataError(
                        f"{path}:{lineno}: CSV needs a header naming a text column "
                        f"({'/'.join(TEXT_COLUMNS)}) and a label column ({'/'.join(LABEL_COLUMNS)})"
                    )
                cols = (0, 1)  # headerless TSV: text<TAB>label
            assert cols is not None
            text_idx, label_idx = cols
            if len(row) <= max(text_idx, label_idx):
                what = "text<TAB>label" if delimiter == "\t" else "a value for every header column"
                raise DataError(f"{path}:{lineno}: expected {what}, got {len(row)} field(s)")
            if delimiter == "\t" and cols == (0, 1) and len(row) > 2:
                raise DataError(f"{path}:{lineno}: expected text<TAB>label, got {len(row)} fields")
            text, label = row[text_idx], row[label_idx].strip()
            if not label:
                raise DataError(f"{path}:{lineno}: empty label")
            if _is_blank(text):
                skipped += 1
                continue
            texts.append(text)
            labels.append(label)
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    return texts, labels, skipped


def decode_utf8(data: bytes, path: Path, error: type[ValueError] = DataError) -> str:
    """The text of a data file's bytes (UTF-8, a leading BOM dropped); a file that is not UTF-8 (e.g. GBK)
    raises ``error`` naming the file and the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        lineno = data[: exc.start].count(b"\n") + 1
        raise error(f"{path}:{lineno}: not valid UTF-8") from None


def load_labelled(path: str | Path, *, fmt: str | None = None) -> LabelledData:
    """Load a labelled dataset, auto-detecting JSONL / TSV / CSV (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    data = path.read_bytes()
    raw = decode_utf8(data, path)
    first_line = next((ln for ln in raw.splitlines() if ln.strip()), "")
    if not first_line:
        raise DataError(f"{path}: file is empty")
    fmt = fmt or _detect_format(path, first_line)
    if fmt == "jsonl":
        texts, labels, skipped = _load_jsonl(path, raw)
    elif fmt == "tsv":
        texts, labels, skipped = _load_table(path, raw, "\t")
    elif fmt == "csv":
        texts, labels, skipped = _load_table(path, raw, ",")
    else:
        raise DataError(f"{path}: unknown format {fmt!r} (jsonl, tsv or csv)")
    if not texts:
        raise DataError(f"{path}: no labelled examples found")
    return LabelledData(
        texts=texts,
        labels=labels,
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        fmt=fmt,
        skipped_empty=skipped,
        label_counts=dict(Counter(labels)),
    )


def _label_seed(seed: int, label: str) -> int:
    # Stable across processes (unlike hash()): the split of one label never depends on the others.
    digest = hashlib.sha256(f"{seed}\x00{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def stratified_split(
    labels: Sequence[str], fraction: float = 0.15, seed: int = 13
) -> tuple[list[int], list[int]]:
    """Deterministic stratified split -> (train_indices, holdout_indices), both sorted.

    Each label contributes ``round(fraction * n)`` examples to the holdout, at least 1 when it has 2 or more
    examples, and always keeps at least one for training. Same input, same seed -> same split.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must be in (0, 1)")
    by_label: dict[str, list[int]] = {}
    for i, y in enumerate(labels):
        by_label.setdefault(y, []).append(i)
    train: list[int] = []
    hold: list[int] = []
    for label in sorted(by_label):
        idx = by_label[label]
        random.Random(_label_seed(seed, label)).shuffle(idx)
        n = len(idx)
        k = round(fraction * n)
        if n >= 2:
            k = min(max(k, 1), n - 1)
        else:
            k = 0
        hold.extend(idx[:k])
        train.extend(idx[k:])
    return sorted(train), sorted(hold)


def stratified_kfold(labels: Sequence[str], k: int = 5, seed: int = 13) -> list[tuple[list[int], list[int]]]:
    """Deterministic stratified k-fold -> [(train_indices, test_indices)] * k."""
    by_label: dict[str, list[int]] = {}
    for i, y in enumerate(labels):
        by_label.setdefault(y, []).append(i)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for label in sorted(by_label):
        idx = by_label[label]
        random.Random(_label_seed(seed, label)).shuffle(idx)
        for j, i in enumerate(idx):
            folds[(j + offset) % k].append(i)
        offset += len(idx)  # rotate so small classes do not all start in fold 0
    out = []
    all_idx = set(range(len(labels)))
    for f in folds:
        test = sorted(f)
        out.append((sorted(all_idx - set(test)), test))
    return out


def class_weights(labels: Sequence[str], label_list: Sequence[str], power: float = 0.5) -> list[float]:
    """Per-class loss weights ``(n / (k * count)) ** power`` renormalised to mean 1 over examples.

    ``power=1`` is sklearn's "balanced"; the default 0.5 softens it so a 30x-rarer class is not weighted
    30x (which over-predicts rare classes on small data). Unseen classes get the largest weight.
    """
    counts = Counter(labels)
    n, k = len(labels), len(label_list)
    raw = []
    for y in label_list:
        c = counts.get(y, 0)
        raw.append((n / (k * c)) ** power if c else None)
    top = max((w for w in raw if w is not None), default=1.0)
    weights = [w if w is not None else top for w in raw]
    # expected weight of a training example == 1, so the loss scale (and the learning rate) is unchanged
    mean = sum(weights[label_list.index(y)] * c for y, c in counts.items() if y in label_list) / max(n, 1)
    return [w / mean for w in weights]
