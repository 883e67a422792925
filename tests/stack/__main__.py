"""``scripts/in_netns.sh .venv/bin/python -m tests.stack [--serving ray|fake|none]``: bring the whole stack up,
print its URLs, run until Ctrl-C (or ``--seconds``), then stop everything it started."""

from __future__ import annotations

import argparse
import json
import signal
import time

from tests.stack.harness import Stack


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.stack")
    p.add_argument("--serving", choices=["ray", "fake", "none"], default="ray")
    p.add_argument("--database", choices=["mysql", "sqlite"], default="mysql")
    p.add_argument("--no-redis", action="store_true")
    p.add_argument("--seconds", type=float, default=0, help="stop after this many seconds (0: until Ctrl-C)")
    opts = p.parse_args(argv)
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    t0 = time.monotonic()
    with Stack(serving=opts.serving, database=opts.database, redis=not opts.no_redis) as st:
        info = {
            "api_url": st.api_url,
            "serving_url": st.serving_url if "serving" in st.ports else None,
            "serving_proxy_url": st.serving_proxy_url,
            "database_url": st.database_url,
            "redis_url": st.redis_url if "redis" in st.ports else None,
            "admin": list(st.admin),
            "logs": str(st.logs),
            "startup_s": round(time.monotonic() - t0, 1),
            "rss_mb": {k: round(v / 2**20) for k, v in st.rss().items()},
        }
        print(json.dumps(info, indent=2), flush=True)
        try:
            while not stop["flag"] and (not opts.seconds or time.monotonic() - t0 < opts.seconds):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
