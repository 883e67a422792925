#!/usr/bin/env python3
"""Validate the demo data: faq/faq.jsonl, templates.json and orders.json.

Standard library only.  Usage:

    python data/demo/faq/check_faq.py            # validate, exit 1 on any error
    python data/demo/faq/check_faq.py --stats    # also print counts as Markdown tables

Errors make the exit status non-zero; warnings are printed but do not fail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import string
import sys
import unicodedata
from collections import Counter
from pathlib import Path

FAQ_DIR = Path(__file__).resolve().parent
DEMO_DIR = FAQ_DIR.parent
FAQ_PATH = FAQ_DIR / "faq.jsonl"
TEMPLATES_PATH = DEMO_DIR / "templates.json"
ORDERS_PATH = DEMO_DIR / "orders.json"

INTENTS = {
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
}
MIN_TOTAL = 130
MIN_SIMILAR = 5
MIN_HELDOUT = 2
MIN_PER_INTENT = {
    "refund_return": 20,
    "logistics": 18,
    "payment": 12,
    "account_password": 10,
    "invoice": 8,
    "coupon_promotion": 12,
    "product_inquiry": 20,
    "technical_support": 15,
    "order_status": 5,
    "other": 5,
}
FAQ_KEYS = ("id", "category", "intent", "question", "answer", "similar", "heldout")
MAX_ANSWER_CHARS = 220
NEAR_DUP_JACCARD = 0.8  # char-bigram Jaccard above which a held-out query is flagged (warning)

# ---- templates -----------------------------------------------------------------------------
TEMPLATE_INTENT_KEYS = dict.fromkeys(
    ("greeting", "goodbye", "thanks", "chitchat", "human_agent", "complaint", "other"), 3
)
# key -> (minimum variants, variables every variant must use, variables a variant may use)
ORDER_VARS = {"order_id", "status", "carrier", "tracking_no", "updated_at", "items"}
DIALOG_KEYS: dict[str, tuple[int, set[str], set[str]]] = {
    "clarify": (3, set(), set()),
    "clarify_offer_human": (2, set(), set()),
    "suggest_intro": (2, set(), set()),
    "fallback": (3, set(), set()),
    "handoff": (2, set(), set()),
    "handoff_offer": (2, set(), set()),
    "handed_back": (2, set(), set()),
    "handoff_declined": (1, set(), set()),
    "handoff_unavailable": (1, set(), set()),
    "degraded": (2, set(), set()),
    "order_id_prompt": (2, set(), set()),
    "order_id_invalid": (2, set(), set()),
    "order_status_answer": (2, ORDER_VARS, ORDER_VARS),
    "order_not_found": (2, {"order_id"}, {"order_id"}),
    "refund_order_prompt": (2, set(), set()),
    "refund_answer": (
        2,
        {"order_id", "items", "refund_deadline"},
        {"order_id", "items", "refund_deadline", "status"},
    ),
    "faq_answer_prefix": (1, set(), set()),
}
# optional keys: validated only if present
OPTIONAL_DIALOG_KEYS: dict[str, tuple[int, set[str], set[str]]] = {
    "refund_not_eligible": (2, {"order_id", "status"}, {"order_id", "status", "items"}),
    "order_status_unshipped": (2, {"order_id", "status"}, {"order_id", "status", "items", "updated_at"}),
    "acknowledged": (2, set(), set()),
    # said to an anonymous visitor whatever order number they gave: no order variables
    "order_login_required": (2, set(), set()),
    # "你是机器人吗": says it is an AI (BOT_WORDS) and how to reach a human
    "bot_identity": (2, set(), set()),
    # "忽略之前的指令…": only shopping questions, no apology, no human offer
    "off_topic_meta": (2, set(), set()),
}
BOT_WORDS = ("AI", "机器人")
MUST_MENTION = {
    "clarify_offer_human": "转人工",
    "degraded": "转人工",
    "handoff_offer": "人工",
    "order_login_required": "登录",
    "bot_identity": "转人工",
}

# ---- orders --------------------------------------------------------------------------------
STATUSES = {"待付款", "待发货", "已发货", "运输中", "派送中", "已签收", "已取消", "退款中", "已退款"}
SHIPPED = {"已发货", "运输中", "派送中", "已签收"}
UNSHIPPED = {"待付款", "待发货"}
CARRIERS = {"顺丰速运", "中通快递", "圆通速递", "韵达快递", "申通快递", "京东物流", "邮政EMS", "极兔速递"}
ORDER_KEYS = (
    "order_id",
    "customer_id",
    "user_hint",
    "status",
    "items",
    "amount",
    "carrier",
    "tracking_no",
    "created_at",
    "updated_at",
    "refundable",
)
MIN_ORDERS = 12
# The demo shop's signed-in customer (api/identity.py DEMO_CUSTOMER_ID): the demo page and the demo dialogs
# chat as this customer, so it owns the orders they look up; the other orders belong to other customers.
DEMO_CUSTOMER = "demo_user_1001"
# Orders the dialog demos and tests rely on (all the demo customer's): id -> (status, refundable)
REQUIRED_ORDERS = {
    "2024112300123": ("运输中", True),
    "2024112300456": ("已签收", True),
    "2024111800789": ("已签收", False),
    "2024110500321": ("待发货", None),
    "2024102000999": ("已取消", None),
}
# "Today" of the demo world: refund deadlines of signed orders are consistent with this date.
REFERENCE_DATE = dt.date(2024, 11, 27)
ORDER_ID_RE = re.compile(r"^2024\d{9}$")


class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, msg: str) -> None:
        self.errors.append(msg)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)


def norm(text: str) -> str:
    """NFKC + lowercase + all whitespace removed (the held-out leakage rule)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).lower())


def norm_strict(text: str) -> str:
    """norm() and punctuation/symbols removed too: catches leaks differing only by '？' or '~'."""
    return "".join(ch for ch in norm(text) if not unicodedata.category(ch).startswith(("P", "S")))


def bigrams(text: str) -> set[str]:
    t = norm_strict(text)
    return {t[i : i + 2] for i in range(len(t) - 1)} or {t}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) and x.strip() for x in value)


# ---- FAQ -----------------------------------------------------------------------------------
def check_faq(rep: Report) -> list[dict]:
    if not FAQ_PATH.exists():
        rep.error(f"missing {FAQ_PATH}")
        return []
    entries: list[dict] = []
    for lineno, line in enumerate(FAQ_PATH.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            rep.error(f"faq.jsonl:{lineno}: blank line")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            rep.error(f"faq.jsonl:{lineno}: invalid JSON ({exc})")
            continue
        if not isinstance(obj, dict):
            rep.error(f"faq.jsonl:{lineno}: not a JSON object")
            continue
        if "\\u" in line:
            rep.warn(f"faq.jsonl:{lineno}: escaped unicode; write with ensure_ascii=False")
        obj["_line"] = lineno
        entries.append(obj)

    ids: Counter[str] = Counter()
    # normalised training text (question + similar) -> entry id, to catch cross-entry clashes
    train_owner: dict[str, str] = {}
    train_owner_strict: dict[str, str] = {}
    heldout_seen: dict[str, str] = {}
    questions_seen: dict[str, str] = {}
    for e in entries:
        where = f"faq.jsonl:{e['_line']}"
        missing = [k for k in FAQ_KEYS if k not in e]
        if missing:
            rep.error(f"{where}: missing keys {missing}")
            continue
        extra = set(e) - set(FAQ_KEYS) - {"_line"}
        if extra:
            rep.warn(f"{where}: unexpected keys {sorted(extra)}")
        fid = e["id"]
        where = f"{where} ({fid})"
        if not isinstance(fid, str) or not re.fullmatch(r"faq-\d{3,}", fid):
            rep.error(f"{where}: id must look like faq-001")
        ids[fid] += 1
        for key in ("category", "question", "answer"):
            if not isinstance(e[key], str) or not e[key].strip():
                rep.error(f"{where}: {key} must be a non-empty string")
        if e["intent"] not in INTENTS:
            rep.error(f"{where}: unknown intent {e['intent']!r}")
        if isinstance(e["answer"], str):
            if len(e["answer"]) > MAX_ANSWER_CHARS:
                rep.warn(f"{where}: answer longer than {MAX_ANSWER_CHARS} chars")
            n_sent = len(re.findall(r"[。！？!?]", e["answer"].rstrip("。！？!?"))) + 1
            if n_sent > 4:
                rep.warn(f"{where}: answer has {n_sent} sentences (aim for 1-4)")
        for key, minimum in (("similar", MIN_SIMILAR), ("heldout", MIN_HELDOUT)):
            if not is_str_list(e[key]):
                rep.error(f"{where}: {key} must be a list of non-empty strings")
                e[key] = [x for x in e[key] if isinstance(x, str)] if isinstance(e[key], list) else []
            elif len(e[key]) < minimum:
                rep.error(f"{where}: {key} has {len(e[key])} items, need >= {minimum}")
            normed = [norm(x) for x in e[key]]
            dups = [x for x, c in Counter(normed).items() if c > 1]
            if dups:
                rep.error(f"{where}: duplicate {key} strings {dups}")
        if not isinstance(e["question"], str):
            continue
        qn = norm(e["question"])
        if qn in questions_seen:
            rep.error(f"{where}: question duplicates {questions_seen[qn]}")
        questions_seen[qn] = fid
        for text in [e["question"], *e["similar"]]:
            reported = False
            for table, key in ((train_owner, norm(text)), (train_owner_strict, norm_strict(text))):
                owner = table.get(key)
                if owner is not None and owner != fid and not reported:
                    rep.error(f"{where}: training text {text!r} also used by {owner}")
                    reported = True
                table.setdefault(key, fid)

    for fid, count in ids.items():
        if count > 1:
            rep.error(f"duplicate id {fid} ({count}x)")

    # held-out rule: no held-out query may equal ANY entry's question/similar after normalisation
    for e in entries:
        if not all(k in e for k in FAQ_KEYS):
            continue
        fid = e["id"]
        own = [bigrams(t) for t in [e["question"], *e["similar"]]]
        for h in e["heldout"]:
            for table, key in ((train_owner, norm(h)), (train_owner_strict, norm_strict(h))):
                if key in table:
                    rep.error(f"{fid}: held-out {h!r} equals training text of {table[key]}")
                    break
            hs = norm_strict(h)
            if hs in heldout_seen and heldout_seen[hs] != fid:
                rep.error(f"{fid}: held-out {h!r} also a held-out query of {heldout_seen[hs]}")
            heldout_seen.setdefault(hs, fid)
            hb = bigrams(h)
            best = max((jaccard(hb, b) for b in own), default=0.0)
            if best >= NEAR_DUP_JACCARD:
                rep.warn(
                    f"{fid}: held-out {h!r} is a near-duplicate of its training text "
                    f"(bigram Jaccard {best:.2f})"
                )

    if len(entries) < MIN_TOTAL:
        rep.error(f"faq.jsonl has {len(entries)} entries, need >= {MIN_TOTAL}")
    per_intent = Counter(e.get("intent") for e in entries)
    for intent, minimum in MIN_PER_INTENT.items():
        if per_intent[intent] < minimum:
            rep.error(f"intent {intent}: {per_intent[intent]} FAQs, need >= {minimum}")
    return entries


# ---- templates -----------------------------------------------------------------------------
def fields_of(template: str) -> set[str]:
    names = set()
    for _, field, _spec, _conv in string.Formatter().parse(template):
        if field is not None:
            names.add(field)
    return names


def check_variants(
    rep: Report, where: str, variants: object, minimum: int, required: set[str], allowed: set[str]
) -> None:
    if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
        rep.error(f"{where}: must be a list of strings")
        return
    if len(variants) < minimum:
        rep.error(f"{where}: {len(variants)} variants, need >= {minimum}")
    sample = {name: f"<{name}>" for name in allowed}
    for i, v in enumerate(variants):
        try:
            names = fields_of(v)
        except ValueError as exc:
            rep.error(f"{where}[{i}]: bad format string ({exc})")
            continue
        bad = sorted(n for n in names if not re.fullmatch(r"[a-z_][a-z0-9_]{0,31}", n))
        if bad:
            rep.error(f"{where}[{i}]: variables must be plain lowercase names like {{order_id}}: {bad}")
            continue
        unknown = names - allowed
        if unknown:
            rep.error(f"{where}[{i}]: unknown variables {sorted(unknown)}")
            continue
        if required - names:
            rep.error(f"{where}[{i}]: missing variables {sorted(required - names)}")
        try:
            v.format(**sample)
        except (KeyError, IndexError, ValueError) as exc:
            rep.error(f"{where}[{i}]: not formattable ({exc!r})")


def check_templates(rep: Report) -> dict:
    if not TEMPLATES_PATH.exists():
        rep.error(f"missing {TEMPLATES_PATH}")
        return {}
    try:
        tpl = json.loads(TEMPLATES_PATH.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        rep.error(f"templates.json: invalid JSON ({exc})")
        return {}
    intents, dialog = tpl.get("intents"), tpl.get("dialog")
    if not isinstance(intents, dict) or not isinstance(dialog, dict):
        rep.error("templates.json: needs objects 'intents' and 'dialog'")
        return {}
    for key, minimum in TEMPLATE_INTENT_KEYS.items():
        if key not in intents:
            rep.error(f"templates.intents: missing {key}")
            continue
        check_variants(rep, f"intents.{key}", intents[key], minimum, set(), set())
    for key in set(intents) - INTENTS:
        rep.error(f"templates.intents: {key!r} is not an intent id")
    for key, (minimum, required, allowed) in DIALOG_KEYS.items():
        if key not in dialog:
            rep.error(f"templates.dialog: missing {key}")
            continue
        check_variants(rep, f"dialog.{key}", dialog[key], minimum, required, allowed)
    for key, (minimum, required, allowed) in OPTIONAL_DIALOG_KEYS.items():
        if key in dialog:
            check_variants(rep, f"dialog.{key}", dialog[key], minimum, required, allowed)
    for key in set(dialog) - set(DIALOG_KEYS) - set(OPTIONAL_DIALOG_KEYS):
        rep.warn(f"templates.dialog: unchecked key {key!r}")
    for key, word in MUST_MENTION.items():
        for i, v in enumerate(dialog.get(key) or []):
            if isinstance(v, str) and word not in v:
                rep.error(f"dialog.{key}[{i}]: must mention {word}")
    for i, v in enumerate(dialog.get("bot_identity") or []):
        if isinstance(v, str) and not any(w in v for w in BOT_WORDS):
            rep.error(f"dialog.bot_identity[{i}]: must say it is an AI ({' or '.join(BOT_WORDS)})")
    for i, v in enumerate(dialog.get("order_id_prompt") or []):
        if isinstance(v, str) and "13" not in v:
            rep.error(f"dialog.order_id_prompt[{i}]: should say the order number has 13 digits")
    return tpl


# ---- orders --------------------------------------------------------------------------------
def parse_date(value: object) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def parse_datetime(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def render_order_vars(order: dict) -> dict[str, str]:
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "carrier": order["carrier"] or "暂无",
        "tracking_no": order["tracking_no"] or "暂无",
        "updated_at": order["updated_at"],
        "items": "、".join(order["items"]),
        "refund_deadline": order.get("refund_deadline") or "签收后7天",
    }


def check_orders(rep: Report, tpl: dict) -> list[dict]:
    if not ORDERS_PATH.exists():
        rep.error(f"missing {ORDERS_PATH}")
        return []
    try:
        orders = json.loads(ORDERS_PATH.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        rep.error(f"orders.json: invalid JSON ({exc})")
        return []
    if not isinstance(orders, list):
        rep.error("orders.json: must be a JSON list")
        return []
    if len(orders) < MIN_ORDERS:
        rep.error(f"orders.json: {len(orders)} orders, need >= {MIN_ORDERS}")
    seen: dict[str, dict] = {}
    good: list[dict] = []
    for i, o in enumerate(orders):
        where = f"orders[{i}]"
        if not isinstance(o, dict):
            rep.error(f"{where}: not an object")
            continue
        missing = [k for k in ORDER_KEYS if k not in o]
        if missing:
            rep.error(f"{where}: missing keys {missing}")
            continue
        oid = o["order_id"]
        where = f"orders[{i}] ({oid})"
        ok = True
        if not isinstance(oid, str) or not ORDER_ID_RE.fullmatch(oid):
            rep.error(f"{where}: order_id must be a 13-digit string starting with 2024")
            ok = False
        elif oid in seen:
            rep.error(f"{where}: duplicate order_id")
        seen[oid] = o
        if o["status"] not in STATUSES:
            rep.error(f"{where}: unknown status {o['status']!r}")
            ok = False
        if not isinstance(o["customer_id"], str) or not o["customer_id"].strip():
            rep.error(f"{where}: customer_id (the shop account that placed it) must be a non-empty string")
        if not isinstance(o["user_hint"], str) or not o["user_hint"].strip():
            rep.error(f"{where}: user_hint must be a non-empty string")
        if not is_str_list(o["items"]) or not o["items"]:
            rep.error(f"{where}: items must be a non-empty list of strings")
            ok = False
        amount = o["amount"]
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            rep.error(f"{where}: amount must be a non-negative number")
        elif round(amount, 2) != amount:
            rep.error(f"{where}: amount has more than 2 decimals")
        if not isinstance(o["refundable"], bool):
            rep.error(f"{where}: refundable must be true/false")
        carrier, tracking = o["carrier"], o["tracking_no"]
        if carrier is not None and carrier not in CARRIERS:
            rep.error(f"{where}: unknown carrier {carrier!r}")
        if tracking is not None and (not isinstance(tracking, str) or not tracking.strip()):
            rep.error(f"{where}: tracking_no must be a string or null")
        if (carrier is None) != (tracking is None):
            rep.error(f"{where}: carrier and tracking_no must both be set or both be null")
        if o["status"] in SHIPPED and carrier is None:
            rep.error(f"{where}: status {o['status']} needs carrier and tracking_no")
        if o["status"] in UNSHIPPED and carrier is not None:
            rep.error(f"{where}: status {o['status']} should have no carrier yet")
        created, updated = parse_date(o["created_at"]), parse_datetime(o["updated_at"])
        if created is None:
            rep.error(f"{where}: created_at must be an ISO date (YYYY-MM-DD)")
        if updated is None:
            rep.error(f"{where}: updated_at must be an ISO datetime")
        elif updated.tzinfo is None:
            rep.warn(f"{where}: updated_at has no timezone offset")
        if created and updated and updated.date() < created:
            rep.error(f"{where}: updated_at before created_at")
        if created and isinstance(oid, str) and not oid.startswith(created.strftime("%Y%m%d")):
            rep.error(f"{where}: order_id prefix does not match created_at {created}")
        if created and created > REFERENCE_DATE:
            rep.error(f"{where}: created after the demo reference date {REFERENCE_DATE}")
        deadline = o.get("refund_deadline")
        if deadline is not None:
            d = parse_date(deadline)
            if d is None:
                rep.error(f"{where}: refund_deadline must be an ISO date or null")
            elif o["status"] == "已签收" and isinstance(o["refundable"], bool):
                if o["refundable"] and d < REFERENCE_DATE:
                    rep.error(f"{where}: refundable but refund_deadline {d} is before {REFERENCE_DATE}")
                if not o["refundable"] and d >= REFERENCE_DATE:
                    rep.error(f"{where}: not refundable but refund_deadline {d} not yet passed")
        if o["status"] in {"已取消", "退款中", "已退款", "待付款"} and o["refundable"] is True:
            rep.error(f"{where}: status {o['status']} cannot be refundable")
        if ok and created and updated:
            good.append(o)

    for oid, (status, refundable) in REQUIRED_ORDERS.items():
        o = seen.get(oid)
        if o is None:
            rep.error(f"orders.json: required order {oid} missing")
            continue
        if o.get("status") != status:
            rep.error(f"orders.json: order {oid} must have status {status}")
        if refundable is not None and o.get("refundable") is not refundable:
            rep.error(f"orders.json: order {oid} must have refundable={str(refundable).lower()}")
        if o.get("customer_id") != DEMO_CUSTOMER:
            rep.error(f"orders.json: order {oid} must belong to the demo customer {DEMO_CUSTOMER}")
    if not any(
        isinstance(o, dict) and o.get("customer_id") not in (None, DEMO_CUSTOMER) for o in seen.values()
    ):
        rep.error("orders.json: no order of another customer (the demo of a number that is not yours)")

    # every order renders with every order template
    dialog = tpl.get("dialog", {}) if isinstance(tpl, dict) else {}
    for o in good:
        values = render_order_vars(o)
        for key in ("order_status_answer", "order_not_found", "refund_answer", "refund_not_eligible"):
            for i, v in enumerate(dialog.get(key) or []):
                try:
                    v.format(**values)
                except (KeyError, IndexError, ValueError) as exc:
                    rep.error(f"dialog.{key}[{i}] fails for order {o['order_id']}: {exc!r}")
    return orders if isinstance(orders, list) else []


# ---- report --------------------------------------------------------------------------------
def print_stats(entries: list[dict], orders: list[dict]) -> None:
    per_intent = Counter(e.get("intent") for e in entries)
    per_cat = Counter(e.get("category") for e in entries)
    n_sim = sum(len(e.get("similar", [])) for e in entries)
    n_held = sum(len(e.get("heldout", [])) for e in entries)
    print(
        f"\nFAQ entries: {len(entries)}; similar: {n_sim}; heldout: {n_held}; "
        f"training texts (question+similar): {len(entries) + n_sim}\n"
    )
    print("| intent | FAQs | similar | heldout |\n|---|---:|---:|---:|")
    for intent, n in sorted(per_intent.items(), key=lambda kv: (-kv[1], kv[0])):
        sims = sum(len(e["similar"]) for e in entries if e.get("intent") == intent)
        held = sum(len(e["heldout"]) for e in entries if e.get("intent") == intent)
        print(f"| {intent} | {n} | {sims} | {held} |")
    print(f"| **total** | **{len(entries)}** | **{n_sim}** | **{n_held}** |")
    print("\n| category | FAQs |\n|---|---:|")
    for cat, n in sorted(per_cat.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"| {cat} | {n} |")
    if orders:
        per_status = Counter(o.get("status") for o in orders if isinstance(o, dict))
        print(f"\nOrders: {len(orders)} — " + ", ".join(f"{s} {n}" for s, n in per_status.items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stats", action="store_true", help="print counts as Markdown tables")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not print warnings")
    args = ap.parse_args(argv)

    rep = Report()
    entries = check_faq(rep)
    tpl = check_templates(rep)
    orders = check_orders(rep, tpl)

    if not args.quiet:
        for w in rep.warnings:
            print(f"WARNING: {w}")
    for e in rep.errors:
        print(f"ERROR: {e}")
    if args.stats:
        print_stats(entries, orders)
    status = "FAILED" if rep.errors else "OK"
    print(
        f"\n{status}: {len(entries)} FAQs, {len(orders)} orders, "
        f"{len(rep.errors)} errors, {len(rep.warnings)} warnings"
    )
    return 1 if rep.errors else 0


if __name__ == "__main__":
    sys.exit(main())
