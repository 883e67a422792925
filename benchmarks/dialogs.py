"""The demo dialogs (data/demo/dialogs.jsonl) against the real stack with the real model bundles.

    python -m benchmarks.dialogs [--out benchmarks/results/dialogs.json] [--store DIR]     (make bench-dialogs)

tests/unit/api/test_api_dialog.py checks the dialog manager turn by turn against a scripted fake NLU: it proves
the state machine, not the models. This script sends the same conversations through the real path - the API
over HTTP (sessions in Redis, MariaDB) and the Ray Serve inference server on the LIVE bundles of the model
store ($XIAOKE_DATA_DIR/models, built by `make models`) - and reports, per turn, whether the reply type, the
intent and the filled order slot are the ones the dialog expects. Every conversation starts signed in as the demo
customer (api.identity), as on the demo page: orders are shown to their owner only. A turn that misses is printed with what came
back; the figures go to docs/benchmarks.md. Runs inside a private network namespace (Ray binds every
interface), stops every process it started.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DIALOGS = REPO / "data" / "demo" / "dialogs.jsonl"


def load_dialogs(path: Path = DIALOGS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check_turn(expect: dict[str, Any], body: dict[str, Any]) -> list[str]:
    """What differs between a turn's expectation and the API's 200 body (empty list: the turn passes)."""
    misses = []
    reply = body.get("reply") or {}
    if reply.get("type") != expect["reply_type"]:
        misses.append(f"reply {reply.get('type')} != {expect['reply_type']}")
    if body.get("intent") != expect["intent"]:
        misses.append(f"intent {body.get('intent')} != {expect['intent']}")
    slot = expect.get("slot") or {}
    if slot.get("order_id") and slot["order_id"] not in (reply.get("text") or ""):
        misses.append(f"order {slot['order_id']} not in the reply")
    return misses


def run_dialogs(api_url: str, dialogs: list[dict[str, Any]], identity: dict[str, str]) -> dict[str, Any]:
    """``identity``: the ``user_id`` + ``user_signature`` every conversation starts with (the demo customer's,
    who owns the orders the dialogs look up, as on the demo page)."""
    import httpx

    rows: list[dict[str, Any]] = []
    with httpx.Client(base_url=api_url, timeout=10) as client:
        for d in dialogs:
            session_id: str | None = None
            token: str | None = None
            for i, turn in enumerate(d["turns"]):
                headers = {"X-Session-Token": token} if token else {}
                t0 = time.perf_counter()
                body = {"message": turn["user"], "session_id": session_id, **identity}
                r = client.post("/api/v1/chat", json=body, headers=headers)
                ms = (time.perf_counter() - t0) * 1000
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                if r.status_code != 200:
                    misses = [f"HTTP {r.status_code} {body.get('error', {}).get('code', '')}"]
                else:
                    session_id = body["session_id"]
                    token = body.get("session_token") or token
                    misses = check_turn(turn["expect"], body)
                rows.append(
                    {
                        "dialog": d["name"],
                        "turn": i,
                        "user": turn["user"],
                        "expect": {k: v for k, v in turn["expect"].items() if k != "note"},
                        "got": {
                            "reply_type": (body.get("reply") or {}).get("type"),
                            "intent": body.get("intent"),
                            "confidence": body.get("confidence"),
                            "faq_id": (body.get("reply") or {}).get("faq_id"),
                        },
                        "ok": not misses,
                        "misses": misses,
                        "ms": round(ms, 1),
                    }
                )
    dialog_ok = {d["name"]: all(r["ok"] for r in rows if r["dialog"] == d["name"]) for d in dialogs}
    return {
        "turns": len(rows),
        "turns_ok": sum(r["ok"] for r in rows),
        "dialogs": len(dialogs),
        "dialogs_ok": sum(dialog_ok.values()),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "dialogs.json"))
    p.add_argument("--store", default=None, help="model store (default $XIAOKE_DATA_DIR/models)")
    args = p.parse_args(argv)

    from benchmarks.api import BENCH_API_ENV, reexec_in_netns

    reexec_in_netns()
    sys.path.insert(0, str(REPO))
    import os

    from bundle.manifest import BundleKind
    from bundle.store import ModelStore
    from tests.stack import Stack

    store = Path(args.store or Path(os.environ.get("XIAOKE_DATA_DIR") or REPO / "var") / "models")
    kinds = (BundleKind.INTENT, BundleKind.SENTIMENT, BundleKind.EMBEDDER)
    live = {k.value: ModelStore(store).live_version(k) for k in kinds}
    if not all(live.values()):  # the point is the real models: never fall back to the tiny test bundles
        print(f"[dialogs] no LIVE bundles in {store} ({live}): run `make models` first", file=sys.stderr)
        return 2
    # one visitor IP sends every turn: the per-IP rate limit (burst 40) would refuse the later dialogs
    with Stack(serving="ray", model_store=store, api_env=BENCH_API_ENV) as st:
        result = run_dialogs(st.api_url, load_dialogs(), st.demo_identity())
    result["meta"] = {"bundles": live, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for r in result["rows"]:
        if not r["ok"]:
            print(f"MISS {r['dialog']} #{r['turn']} {r['user']!r}: {'; '.join(r['misses'])}")
    print(
        f"[dialogs] turns {result['turns_ok']}/{result['turns']} as expected, "
        f"dialogs {result['dialogs_ok']}/{result['dialogs']} fully as expected (real bundles {live})"
    )
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"[dialogs] wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
