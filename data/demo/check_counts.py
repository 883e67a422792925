#!/usr/bin/env python3
"""Validate the hand-written demo data under data/demo/ (stdlib only).

Checks format, label sets, per-label minimum counts, and that no test text also
appears in train (after NFKC + lowercase + whitespace removal). Prints counts
per label per split. Exits 1 on any problem.

Usage: python data/demo/check_counts.py
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent

INTENT_IDS = [
    "greeting",
    "product_inquiry",
    "order_status",
    "complaint",
    "technical_support",
    "goodbye",
    "refund_return",
    "logistics",
    "payment",
    "account_password",
    "invoice",
    "coupon_promotion",
    "human_agent",
    "thanks",
    "chitchat",
    "other",
]
SENTIMENT_LABELS = ["negative", "neutral", "positive"]
MIN = {
    ("intents", "train"): 64,
    ("intents", "test"): 20,
    ("sentiment", "train"): 150,
    ("sentiment", "test"): 40,
}
REPLY_TYPES = {"answer", "suggest", "clarify", "slot_prompt", "template", "fallback", "handoff"}
MIN_DIALOGS = 12
ORDER_ID_RE = re.compile(r"^2024\d{9}$")

errors: list[str] = []


def err(msg: str) -> None:
    errors.append(msg)


def norm(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).lower())


def load_jsonl(path: Path) -> list[dict]:
    rows: list[dict] = []
    if not path.is_file():
        err(f"missing file: {path}")
        return rows
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                err(f"{path.name}:{n}: blank line")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                err(f"{path}:{n}: invalid JSON ({e})")
                continue
            if not isinstance(obj, dict):
                err(f"{path}:{n}: not a JSON object")
                continue
            obj["_line"] = n
            rows.append(obj)
    return rows


def check_labels_file() -> None:
    path = ROOT / "intents" / "labels.json"
    if not path.is_file():
        err(f"missing file: {path}")
        return
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        err(f"{path}: invalid JSON ({e})")
        return
    if not isinstance(labels, list):
        err(f"{path}: expected a JSON list")
        return
    ids = []
    for i, obj in enumerate(labels):
        if not isinstance(obj, dict) or set(obj) != {"id", "name_zh", "description"}:
            err(f"{path}: entry {i} must have exactly keys id, name_zh, description")
            continue
        if not all(isinstance(obj[k], str) and obj[k].strip() for k in obj):
            err(f"{path}: entry {i} has an empty or non-string field")
        ids.append(obj["id"])
    if sorted(ids) != sorted(INTENT_IDS) or len(ids) != len(set(ids)):
        err(f"{path}: ids {ids} != expected {INTENT_IDS}")
    print(f"intents/labels.json: {len(ids)} labels")


def check_classification(kind: str, allowed: list[str]) -> None:
    splits = {}
    for split in ("train", "test"):
        path = ROOT / kind / f"{split}.jsonl"
        rows: list[dict] = load_jsonl(path)
        seen: dict[str, int] = {}
        for r in rows:
            where = f"{kind}/{split}.jsonl:{r['_line']}"
            if set(r) - {"_line"} != {"text", "label"}:
                err(f"{where}: keys must be exactly text, label")
                continue
            if not isinstance(r["text"], str) or not r["text"].strip():
                err(f"{where}: empty or non-string text")
                continue
            if r["label"] not in allowed:
                err(f"{where}: unknown label {r['label']!r}")
            k = norm(r["text"])
            if k in seen:
                err(f"{where}: duplicate of line {seen[k]} within split: {r['text']!r}")
            seen[k] = r["_line"]
        splits[split] = rows
        counts = Counter(r.get("label") for r in rows)
        minimum = MIN[(kind, split)]
        print(f"\n{kind}/{split}.jsonl: {len(rows)} rows (min {minimum} per label)")
        for lab in allowed:
            c = counts.get(lab, 0)
            flag = "" if c >= minimum else "   <-- BELOW MINIMUM"
            print(f"  {lab:<18} {c:>4}{flag}")
            if c < minimum:
                err(f"{kind}/{split}: label {lab} has {c} < {minimum}")
    train_keys = {norm(r["text"]): r for r in splits["train"] if isinstance(r.get("text"), str)}
    for r in splits["test"]:
        if isinstance(r.get("text"), str) and norm(r["text"]) in train_keys:
            t = train_keys[norm(r["text"])]
            err(f"{kind}: test line {r['_line']} {r['text']!r} also in train line {t['_line']} {t['text']!r}")


def check_dialogs() -> None:
    path = ROOT / "dialogs.jsonl"
    rows: list[dict] = load_jsonl(path)
    names = set()
    n_turns = 0
    rt_counts: Counter = Counter()
    for d in rows:
        where = f"dialogs.jsonl:{d['_line']}"
        if set(d) - {"_line"} != {"name", "turns"}:
            err(f"{where}: keys must be exactly name, turns")
            continue
        if not isinstance(d["name"], str) or not d["name"]:
            err(f"{where}: bad name")
        elif d["name"] in names:
            err(f"{where}: duplicate name {d['name']}")
        names.add(d["name"])
        if not isinstance(d["turns"], list) or not d["turns"]:
            err(f"{where}: turns must be a non-empty list")
            continue
        for i, t in enumerate(d["turns"]):
            w = f"{where} turn {i}"
            if not isinstance(t, dict) or set(t) != {"user", "expect"}:
                err(f"{w}: keys must be exactly user, expect")
                continue
            if not isinstance(t["user"], str) or not t["user"].strip():
                err(f"{w}: empty user text")
            e = t["expect"]
            if not isinstance(e, dict):
                err(f"{w}: expect must be an object")
                continue
            extra = set(e) - {"reply_type", "intent", "slot", "note"}
            if extra or not {"reply_type", "intent"} <= set(e):
                err(f"{w}: expect needs reply_type, intent (+ optional slot, note); extra={extra}")
                continue
            if e["reply_type"] not in REPLY_TYPES:
                err(f"{w}: unknown reply_type {e['reply_type']!r}")
            rt_counts[e["reply_type"]] += 1
            if e["intent"] is not None and e["intent"] not in INTENT_IDS:
                err(f"{w}: unknown intent {e['intent']!r}")
            if "slot" in e:
                s = e["slot"]
                if (
                    not isinstance(s, dict)
                    or set(s) != {"order_id"}
                    or not ORDER_ID_RE.match(str(s["order_id"]))
                ):
                    err(f"{w}: slot must be {{'order_id': <13 digits starting 2024>}}, got {s!r}")
            if "note" in e and not isinstance(e["note"], str):
                err(f"{w}: note must be a string")
            n_turns += 1
    print(f"\ndialogs.jsonl: {len(rows)} dialogs, {n_turns} turns (min {MIN_DIALOGS} dialogs)")
    for rt in sorted(REPLY_TYPES):
        print(f"  {rt:<12} {rt_counts.get(rt, 0):>3}")
    if len(rows) < MIN_DIALOGS:
        err(f"dialogs.jsonl: {len(rows)} dialogs < {MIN_DIALOGS}")


def main() -> int:
    check_labels_file()
    check_classification("intents", INTENT_IDS)
    check_classification("sentiment", SENTIMENT_LABELS)
    check_dialogs()
    if errors:
        print(f"\nFAILED: {len(errors)} problem(s)", file=sys.stderr)
        for e in errors:
            print("  - " + e, file=sys.stderr)
        return 1
    print("\nOK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
