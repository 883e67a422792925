"""Whole-stack benchmark: `python -m benchmarks.api --out benchmarks/results/api.json` (`make bench-api`).

Starts the whole stack with tests/stack (private Redis + MariaDB, Ray Serve inference server on the model store
$XIAOKE_DATA_DIR/models when it holds LIVE intent/sentiment/embedder bundles, else the tiny test bundles; API with
durable writes; no fault proxy) inside a private network namespace (re-executes itself under
scripts/in_netns.sh), then runs ``--visitors`` simulated visitors (tests/stack/load.py: FAQ questions,
order-status slot filling, chit-chat; multi-turn, with session tokens) in three phases:

1. warm-up: closed loop for ``--warmup`` seconds (not reported);
2. saturation: closed loop, no think time, for ``--saturation-duration`` seconds. Its turns/s is the stack's
   maximum throughput (``saturation_turns_per_s``); its latency is just ``visitors / throughput`` (Little's law);
3. offered load: open loop (wrk2-style) at ``--rate`` turns/s for ``--duration`` seconds; latency counts from
   each turn's scheduled send time (no coordinated omission). This phase gives the headline ``turns_per_s``,
   ``p50_ms``, ``p99_ms``: the latency at that load;
4. ``--sweep`` (default 100,200 turns/s): shorter open-loop phases at other rates, to see where p99 crosses
   the 300 ms target (``p99_ms_by_offered_rate``).

Reports errors and accepted vs stored messages over all measured phases, CPU milliseconds per answered turn of
every process (API workers, serving incl. Ray, Redis, MariaDB, the load generator), the load generator's own
CPU share, and RSS. Rate limits are raised for the run (all visitors share one client IP) but still enforced.
The load generator shares the 2 cores with the stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
BENCH_API_ENV = {
    "API_RATE_IP_PER_MIN": "10000000",
    "API_RATE_IP_BURST": "1000000",
    "API_RATE_SESSION_PER_MIN": "10000000",
    "API_RATE_SESSION_BURST": "1000000",
    "API_LOG_LEVEL": "WARNING",
}
TARGET_TURNS_PER_S = 150.0
TARGET_P99_MS = 300.0
T = TypeVar("T")


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


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run the load generator on uvloop when available (less CPU taken from the stack it measures)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


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
    st = Stack(
        serving=args.serving,
        model_store=store,
        api_env=api_env,
        api_workers=args.api_workers,
        fault_proxy=False,  # no fault injection here: the API talks to serving directly, as in production
        serving_replicas=getattr(args, "serving_replicas", None),
    )
    t0 = time.monotonic()
    st.__enter__()
    print(f"[bench] stack up in {time.monotonic() - t0:.1f} s; logs {st.logs}", flush=True)
    return st


def model_info(st: Any) -> str:
    cfg = st.procs.get("serving")
    store = cfg.env.get("SERVING_MODEL_STORE") if cfg else None
    return str(store)


async def run_load(
    api_url: str,
    visitors: int,
    duration_s: float,
    think_s: float,
    seed: int,
    rate: float | None = None,
    identity: dict[str, str] | None = None,
) -> Any:
    from tests.stack.load import LoadGen

    gen = LoadGen(
        api_url, visitors=visitors, think_s=think_s, seed=seed, timeout_s=30, rate=rate, identity=identity
    )
    return await gen.run(duration_s)


def phase(
    st: Any, name: str, args: argparse.Namespace, duration_s: float, seed: int, rate: float | None
) -> tuple[dict[str, Any], Any]:
    """One measured phase: summary + CPU ms per answered turn by process."""
    wait_drained(st)
    cpu0 = st.cpu_seconds()
    srv = st.procs.get("serving")
    srv0 = srv.cpu_by_process() if srv is not None else {}
    think = 0.0 if rate else args.think
    result = run_async(
        run_load(
            st.api_url, args.visitors, duration_s, think, seed=seed, rate=rate, identity=st.demo_identity()
        )
    )
    cpu1 = st.cpu_seconds()
    srv1 = srv.cpu_by_process() if srv is not None else {}
    summary = result.summary()
    ok = max(1, summary["ok"])
    cpu_ms = {k: round((cpu1[k] - cpu0[k]) * 1000 / ok, 2) for k in cpu0 if k in cpu1}
    cpu_ms["loadgen"] = round(result.cpu_s * 1000 / ok, 2)
    cpu_ms["total"] = round(sum(cpu_ms.values()), 2)
    summary["cpu_ms_per_turn"] = cpu_ms
    summary["serving_cpu_ms_per_turn"] = {
        k: round((srv1[k] - srv0.get(k, 0.0)) * 1000 / ok, 2)
        for k in sorted(srv1, key=lambda k: srv0.get(k, 0.0) - srv1[k])
        if srv1[k] - srv0.get(k, 0.0) > 0.005 * ok / 1000
    }
    summary["cpu_share_of_machine"] = {
        k: round(v * summary["turns_per_s"] / 1000 / (os.cpu_count() or 1), 3) for k, v in cpu_ms.items()
    }
    shown = {k: summary[k] for k in ("turns_per_s", "p50_ms", "p99_ms", "errors", "loadgen_cpu_share")}
    shown["degraded"] = summary["reply_types"].get("degraded", 0)
    print(f"[bench] {name}: {shown} cpu_ms_per_turn={cpu_ms}", flush=True)
    if summary["serving_cpu_ms_per_turn"]:
        print(f"[bench]   serving cpu_ms_per_turn: {summary['serving_cpu_ms_per_turn']}", flush=True)
    return summary, result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.api", description=__doc__)
    p.add_argument("--visitors", type=int, default=64)
    p.add_argument("--rate", type=float, default=TARGET_TURNS_PER_S, help="offered turns/s of the open loop")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of the open-loop phase")
    p.add_argument(
        "--saturation-duration", type=float, default=20.0, help="seconds of the closed loop (0: skip)"
    )
    p.add_argument(
        "--sweep", default="100,200", help='extra open-loop rates (turns/s), comma-separated; "" for none'
    )
    p.add_argument("--sweep-duration", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=8.0)
    p.add_argument(
        "--think", type=float, default=0.0, help="closed loop: seconds between a visitor's turns (0: none)"
    )
    p.add_argument("--serving", choices=["ray", "fake"], default="ray")
    p.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes of the API")
    p.add_argument(
        "--serving-replicas",
        type=int,
        default=None,
        help="NluIngress replicas (default: serving/config/cpu.yaml)",
    )
    p.add_argument(
        "--store", default=None, help="model store (default: $XIAOKE_DATA_DIR/models or tiny bundles)"
    )
    p.add_argument(
        "--api-env", action="append", default=[], metavar="API_X=V", help="extra API setting (repeatable)"
    )
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "api.json"))
    args = p.parse_args(argv)
    api_env = dict(BENCH_API_ENV)
    for item in args.api_env:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("API_"):
            p.error(f"--api-env wants API_NAME=value, not {item!r}")
        api_env[key] = value
    sweep = [float(r) for r in args.sweep.split(",") if r.strip()]
    command = shlex.join(["python", "-m", "benchmarks.api", *sys.argv[1:]])
    reexec_in_netns()

    st = start_stack(args, api_env)
    try:
        run_async(
            run_load(st.api_url, args.visitors, args.warmup, args.think, seed=1, identity=st.demo_identity())
        )
        rss_start = st.rss()
        load_start = os.getloadavg()
        results = []
        saturation: dict[str, Any] | None = None
        if args.saturation_duration > 0:
            saturation, res = phase(st, "saturation (closed loop)", args, args.saturation_duration, 2, None)
            results.append(res)
        offered, res = phase(st, f"open loop at {args.rate:g} turns/s", args, args.duration, 3, args.rate)
        results.append(res)
        sweep_out = []
        for i, rate in enumerate(sweep):
            s, res = phase(st, f"sweep {rate:g} turns/s", args, args.sweep_duration, 10 + i, rate)
            results.append(res)
            sweep_out.append(s)
        rss_end = st.rss()
        pending = wait_drained(st)
        sessions: set[str] = set().union(*(r.sessions for r in results))
        stored, distinct = stored_messages(st, sessions)
        accepted = sum(r.accepted_records for r in results)
        errors = sum(len(r.errors) for r in results)
        met = (
            offered["turns_per_s"]
            >= TARGET_TURNS_PER_S * 0.98  # an open loop delivers what it offers, ± jitter
            and args.rate >= TARGET_TURNS_PER_S
            and offered["p99_ms"] <= TARGET_P99_MS
            and errors == 0
            and accepted == stored
        )
        out = {
            "turns_per_s": offered["turns_per_s"],
            "p50_ms": offered["p50_ms"],
            "p99_ms": offered["p99_ms"],
            "errors": errors,
            "accepted": accepted,
            "stored": stored,
            "offered_turns_per_s": args.rate,
            "saturation_turns_per_s": saturation["turns_per_s"] if saturation else None,
            "p99_ms_by_offered_rate": {
                f"{r['offered_turns_per_s']:g}": r["p99_ms"]
                for r in sorted([offered, *sweep_out], key=lambda r: r["offered_turns_per_s"])
            },
            "target": {"turns_per_s": TARGET_TURNS_PER_S, "p99_ms": TARGET_P99_MS, "met": met},
            "meta": {
                "command": command,
                "headline": "turns_per_s/p50_ms/p99_ms: open-loop phase at offered_turns_per_s; errors, "
                "accepted, stored: all measured phases",
                "loadgen": {
                    "client": "keep-alive HTTP/1.1 on asyncio streams (tests/stack/load.py), uvloop",
                    "cpu_share_of_one_core": {
                        "saturation": saturation["loadgen_cpu_share"] if saturation else None,
                        "open_loop": offered["loadgen_cpu_share"],
                    },
                },
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            "details": {
                "visitors": args.visitors,
                "serving": args.serving,
                "api_workers": args.api_workers,
                "api_env": {k: v for k, v in api_env.items() if k not in BENCH_API_ENV},
                "model_store": model_info(st),
                "saturation": saturation,
                "open_loop": offered,
                "sweep": sweep_out,
                "duplicate_rows": stored - distinct,
                "writer_pending_after": pending,
                "rss_mb_start": mb(rss_start),
                "rss_mb_end": mb(rss_end),
                "rss_growth_pct": growth_pct(rss_start, rss_end),
                "loadavg_1m_start_end": [round(load_start[0], 1), round(os.getloadavg()[0], 1)],
            },
        }
    except BaseException:
        st.print_logs()
        raise
    finally:
        st.close()
    print(json.dumps({k: v for k, v in out.items() if k != "details"}, indent=2, ensure_ascii=False))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"[bench] wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
