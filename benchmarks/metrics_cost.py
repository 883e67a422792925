"""What mirroring the ingress's metrics to Ray's metrics agent costs, inside a real Serve replica.

    scripts/in_netns.sh .venv/bin/python -m benchmarks.metrics_cost        (Ray binds all interfaces: netns)

Times one request's worth of metric updates (the eight the ingress makes for a /v1/nlu request), 5,000 times,
with the local registry only and with the Ray mirror (serving/metrics.py), twice each, side by side in one
replica; prints microseconds per request.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

ROUNDS = 5000


def _per_request_us(cluster: bool) -> float:
    from serving.metrics import ServingMetrics

    m = ServingMetrics(cluster=cluster)
    t = time.perf_counter()
    for _ in range(ROUNDS):
        m.requests.labels("nlu", "OK").inc()
        m.latency.labels("nlu").observe(0.01)
        m.texts.observe(3)
        m.batch_rows.labels("intent").observe(8)
        m.queue.labels("intent").observe(0.002)
        m.inference.labels("intent").observe(0.004)
        m.padding.labels("intent").observe(1.1)
        m.inflight.set(2)
    return (time.perf_counter() - t) / ROUNDS * 1e6


def main() -> int:
    import ray
    from ray import serve

    ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", num_cpus=2)

    @serve.deployment
    class Cost:
        async def __call__(self, request: Any) -> dict[str, list[float]]:
            out: dict[str, list[float]] = {"local_only_us": [], "mirrored_us": []}
            for cluster in (False, True, False, True):
                key = "mirrored_us" if cluster else "local_only_us"
                out[key].append(round(_per_request_us(cluster), 1))
            return out

    try:
        serve.run(Cost.bind(), route_prefix="/", blocking=False)
        with urllib.request.urlopen("http://127.0.0.1:8000/", timeout=300) as r:
            print(json.dumps(json.loads(r.read())))
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
