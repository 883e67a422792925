"""Steady-load / soak run of the whole stack: `python -m benchmarks.load --soak-minutes N` (`make bench-load`).

Same stack as benchmarks/api.py (private Redis + MariaDB + Ray Serve + API in a private network namespace), but
with visitors that pause between turns (``--think``) as people do, for ``--soak-minutes``. Samples the RSS of
every process each ``--sample-s`` seconds and reports start/end/growth, turns/s, p50/p99 per minute, errors and
accepted vs stored messages. RSS growth is judged on our own processes (API, serving: <= 10 %); Redis and MariaDB
grow with the data they keep, so their keys / rows / InnoDB data pages at start and end are reported beside it. Writes benchmarks/results/load.json {turns_per_s, p99_ms, errors, accepted, stored,
rss_growth_pct, ...}. Bounded: stops by itself after the soak, and stops only the processes it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.api import (
    BENCH_API_ENV,
    REPO,
    growth_pct,
    mb,
    model_info,
    reexec_in_netns,
    run_async,
    run_load,
    start_stack,
    stored_messages,
    wait_drained,
)


async def soak(st: Any, args: argparse.Namespace) -> tuple[Any, list[dict[str, Any]]]:
    from tests.stack.load import LoadGen

    gen = LoadGen(
        st.api_url,
        visitors=args.visitors,
        think_s=args.think,
        seed=3,
        timeout_s=30,
        identity=st.demo_identity(),
    )
    samples: list[dict[str, Any]] = []
    duration = args.soak_minutes * 60
    await gen.start()
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < duration:
            await asyncio.sleep(min(args.sample_s, max(0.0, duration - (time.monotonic() - t0))))
            rss = await asyncio.to_thread(st.rss)
            samples.append(
                {"t_s": round(time.monotonic() - t0, 1), "rss_mb": mb(rss), "turns": len(gen.result.turns)}
            )
            print(
                f"[soak] t={samples[-1]['t_s']}s turns={samples[-1]['turns']} rss={samples[-1]['rss_mb']}",
                flush=True,
            )
    finally:
        result = await gen.stop()
    return result, samples


OWN_PROCESSES = ("api", "serving")  # ours: RSS growth <= 10 % over the soak, else a leak
RSS_GROWTH_LIMIT_PCT = 10.0


def data_footprint(st: Any) -> dict[str, Any]:
    """What the data stores hold, to tell stored data from a leak when their RSS grows: Redis keys (live sessions
    keep their 30-minute TTL past a 10-minute soak) and dataset bytes, MariaDB rows and InnoDB data pages."""
    import redis

    out: dict[str, Any] = {}
    if st.use_redis:
        r = redis.Redis.from_url(st.redis_url)
        try:
            mem = r.info("memory")
            out["redis_keys"] = int(r.dbsize())
            out["redis_dataset_mb"] = round(int(mem.get("used_memory_dataset", 0)) / 2**20, 2)
        finally:
            r.close()
    if st.database_mode == "mysql":
        out["db_messages"] = int(st.sql("SELECT COUNT(*) FROM messages")[0][0])
        out["db_sessions"] = int(st.sql("SELECT COUNT(*) FROM chat_sessions")[0][0])
        pages = st.sql("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_data'")
        out["innodb_data_pages"] = int(pages[0][1]) if pages else None
    return out


def per_minute(result: Any) -> list[dict[str, Any]]:
    out = []
    minutes = int(result.elapsed_s // 60) + 1
    for m in range(minutes):
        w = result.window(m * 60, (m + 1) * 60)
        if not w:
            continue
        span = min(60.0, result.elapsed_s - m * 60)
        out.append(
            {
                "minute": m + 1,
                "turns_per_s": round(sum(1 for t in w if t.status == 200) / span, 1) if span > 0 else 0.0,
                "p50_ms": round(result.percentile_ms(50, m * 60, (m + 1) * 60), 1),
                "p99_ms": round(result.percentile_ms(99, m * 60, (m + 1) * 60), 1),
                "errors": sum(1 for t in w if t.status != 200),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__)
    p.add_argument("--soak-minutes", type=float, default=3.0)
    p.add_argument("--visitors", type=int, default=32)
    p.add_argument("--think", type=float, default=1.0, help="seconds between a visitor's turns")
    p.add_argument("--warmup", type=float, default=8.0)
    p.add_argument("--sample-s", type=float, default=15.0)
    p.add_argument("--serving", choices=["ray", "fake"], default="ray")
    p.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes of the API")
    p.add_argument("--store", default=None)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "load.json"))
    args = p.parse_args(argv)
    reexec_in_netns()

    st = start_stack(args, BENCH_API_ENV)
    try:
        run_async(
            run_load(st.api_url, args.visitors, args.warmup, args.think, seed=1, identity=st.demo_identity())
        )
        wait_drained(st)
        rss_start = st.rss()
        data_start = data_footprint(st)
        load_start = os.getloadavg()
        result, samples = run_async(soak(st, args))
        rss_end = st.rss()
        pending = wait_drained(st)
        data_end = data_footprint(st)
        stored, distinct = stored_messages(st, result.sessions)
        summary = result.summary()
        growth = growth_pct(rss_start, rss_end)
        own = {k: growth[k] for k in OWN_PROCESSES if k in growth}
        out = {
            "turns_per_s": summary["turns_per_s"],
            "p99_ms": summary["p99_ms"],
            "errors": summary["errors"],
            "accepted": result.accepted_records,
            "stored": stored,
            "rss_growth_pct": growth["total"],
            # our own processes; the data stores grow with the data they keep (see data_start / data_end)
            "rss_growth_pct_own_max": max(own.values()) if own else None,
            "rss_growth_ok": bool(own) and max(own.values()) <= RSS_GROWTH_LIMIT_PCT,
            "details": {
                "soak_minutes": args.soak_minutes,
                "visitors": args.visitors,
                "think_s": args.think,
                "p50_ms": summary["p50_ms"],
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
                "rss_growth_pct_by_process": growth,
                "data_start": data_start,
                "data_end": data_end,
                "per_minute": per_minute(result),
                "rss_samples": samples,
                "loadavg_1m_start_end": [round(load_start[0], 1), round(os.getloadavg()[0], 1)],
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        }
    except BaseException:
        st.print_logs()
        raise
    finally:
        st.close()
    details = out["details"]
    assert isinstance(details, dict)
    shown = {k: v for k, v in out.items() if k != "details"}
    shown.update(
        {
            k: details[k]
            for k in (
                "p50_ms",
                "rss_mb_start",
                "rss_mb_end",
                "rss_growth_pct_by_process",
                "data_start",
                "data_end",
            )
        }
    )
    print(json.dumps(shown, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"[bench] wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
