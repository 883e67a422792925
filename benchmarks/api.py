"""Whole-stack benchmark: `python -m benchmarks.api --out benchmarks/results/api.json` (`make bench-api`).

Starts the whole stack with tests/stack (private Redis + MariaDB, Ray Serve inference server on the model store
$XIAOKE_DATA_DIR/models when it holds LIVE intent/sentiment/embedder bundles, else the tiny test bundles; API with
durable writes) inside a private network namespace (re-executes itself under scripts/in_netns.sh), then runs
``--visitors`` simulated visitors (tests/stack/load.py: FAQ questions, order-status slot filling, chit-chat) in a
closed loop for ``--duration`` seconds after a warm-up. Prints and writes turns/s, p50, p99, errors, accepted vs
stored messages and the RSS of every process at start and end. Rate limits are raised for the run (all visitors
share one client IP). The load generator shares the 2 cores with the stack: numbers are conservative.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_API_ENV = {
    "API_RATE_IP_PER_MIN": "10000000",
    "API_RATE_IP_BURST": "1000000",
    "API_RATE_SESSION_PER_MIN": "10000000",
    "API_RATE_SESSION_BURST": "1000000",
    "API_LOG_LEVEL": "WARNING",
}


def in_private_netns() -> bool:
    """True when the only network interface of this process's namespace is loopback (/proc/net/dev is per
    namespace; /sys/class/net is not remounted by unshare)."""
    try:
        lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return [line.split(":")[0].strip() for line in lines] == ["lo"]


def reexec_in_netns() -> None:
    """Re-run this command inside scripts/in_netns.sh (Ray binds ports on all interfaces)."""
    if in_private_netns() or os.environ.get("XIAOKE_BENCH_NO_NETNS") == "1":
        return
    cmd = [str(REPO / "scripts" / "in_netns.sh"), sys.executable, *sys.orig_argv[1:]]
    os.execv(cmd[0], cmd)


def mb(values: dict[str, int]) -> dict[str, float]:
    return {k: round(v / 2**20, 1) for k, v in values.items()}


def growth_pct(start: dict[str, int], end: dict[str, int]) -> dict[str, float]:
    out = {k: round((end[k] - start[k]) / start[k] * 100, 1) for k in start if k in end and start[k]}
    total_s, total_e = sum(start.values()), sum(end[k] for k in start if k in end)
    out["total"] = round((total_e - total_s) / total_s * 100, 1) if total_s else 0.0
    return out


def stored_messages(st: Any, sessions: set[str]) -> tuple[int, int]:
    ids = [s for s in sessions if s.replace("_", "").replace("-", "").isalnum()]
    rows, distinct = 0, 0
    for i in range(0, len(ids), 500):
        chunk = ",".join(f"'{s}'" for s in ids[i : i + 500])
        r = st.sql(f"SELECT COUNT(*), COUNT(DISTINCT id) FROM messages WHERE session_id IN ({chunk})")
        rows += int(r[0][0])
        distinct += int(r[0][1])
    return rows, distinct


def wait_drained(st: Any, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    pending = -1
    while time.monotonic() < deadline:
        try:
            pending = int(st.api_ready()["checks"]["writer_pending"])
            if pending == 0:
                return 0
        except Exception:
            pass
        time.sleep(0.5)
    return pending


def start_stack(args: argparse.Namespace, api_env: dict[str, str]) -> Any:
    sys.path.insert(0, str(REPO))
    from tests.stack import Stack

    store = Path(args.store) if args.store else None
    st = Stack(serving=args.serving, model_store=store, api_env=api_env, api_workers=args.api_workers)
    t0 = time.monotonic()
    st.__enter__()
    print(f"[bench] stack up in {time.monotonic() - t0:.1f} s; logs {st.logs}", flush=True)
    return st


def model_info(st: Any) -> str:
    cfg = st.procs.get("serving")
    store = cfg.env.get("SERVING_MODEL_STORE") if cfg else None
    return str(store)


async def run_load(api_url: str, visitors: int, duration_s: float, think_s: float, seed: int) -> Any:
    from tests.stack.load import LoadGen

    return await LoadGen(api_url, visitors=visitors, think_s=think_s, seed=seed, timeout_s=30).run(duration_s)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.api", description=__doc__)
    p.add_argument("--visitors", type=int, default=64)
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=8.0)
    p.add_argument(
        "--think", type=float, default=0.0, help="seconds between a visitor's turns (0: closed loop)"
    )
    p.add_argument("--serving", choices=["ray", "fake"], default="ray")
    p.add_argument("--api-workers", type=int, default=2, help="uvicorn worker processes of the API")
    p.add_argument(
        "--store", default=None, help="model store (default: $XIAOKE_DATA_DIR/models or tiny bundles)"
    )
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "api.json"))
    args = p.parse_args(argv)
    reexec_in_netns()

    st = start_stack(args, BENCH_API_ENV)
    try:
        asyncio.run(run_load(st.api_url, args.visitors, args.warmup, args.think, seed=1))
        wait_drained(st)
        rss_start = st.rss()
        load_start = os.getloadavg()
        result = asyncio.run(run_load(st.api_url, args.visitors, args.duration, args.think, seed=2))
        rss_end = st.rss()
        pending = wait_drained(st)
        stored, distinct = stored_messages(st, result.sessions)
        summary = result.summary()
        out = {
            "turns_per_s": summary["turns_per_s"],
            "p50_ms": summary["p50_ms"],
            "p99_ms": summary["p99_ms"],
            "errors": summary["errors"],
            "accepted": result.accepted_records,
            "stored": stored,
            "details": {
                "visitors": args.visitors,
                "duration_s": round(result.elapsed_s, 1),
                "think_s": args.think,
                "turns": summary["turns"],
                "by_status": summary["by_status"],
                "reply_types": summary["reply_types"],
                "duplicate_rows": stored - distinct,
                "writer_pending_after": pending,
                "serving": args.serving,
                "api_workers": args.api_workers,
                "model_store": model_info(st),
                "rss_mb_start": mb(rss_start),
                "rss_mb_end": mb(rss_end),
                "rss_growth_pct": growth_pct(rss_start, rss_end),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "loadavg_1m_start_end": [round(load_start[0], 1), round(os.getloadavg()[0], 1)],
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        }
    except BaseException:
        st.print_logs()
        raise
    finally:
        st.close()
    print(json.dumps(out, indent=2, ensure_ascii=False))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"[bench] wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
