"""Helper process for test_serving_real.py: runs INSIDE a private network namespace.

Starts Ray + the fused application (one NluIngress replica), pins an intent bundle version that cannot be
loaded through a user_config update (Serve's in-place reconfigure), and calls /v1/nlu over real HTTP while Serve
applies it. Prints one JSON object with what it saw. Not a test module itself.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx


def main(store: str, pin: str, watch_s: float, ray_tmp: str) -> dict:
    import ray
    from ray import serve

    from serving.app import Ingress
    from serving.settings import ModelUserConfig, ServingArgs

    settings = ServingArgs(
        model_store=Path(store), device="cpu", bootstrap=False, jieba_cache_dir=Path(store).parent / "jieba"
    ).settings()
    base = ModelUserConfig().model_dump()

    def app(intent_version: str | None):  # noqa: ANN202
        models = {"intent": {**base, "bundle_version": intent_version}, "sentiment": base, "embedder": base}
        return Ingress.options(
            num_replicas=1, ray_actor_options={"num_cpus": 0}, user_config={"models": models}
        ).bind(settings)

    ray.init(include_dashboard=False, num_cpus=2, _temp_dir=ray_tmp, _node_ip_address="127.0.0.1")
    try:
        return _probe(serve, app, pin, watch_s)
    finally:
        serve.shutdown()
        ray.shutdown()


def _probe(serve, app, pin: str, watch_s: float) -> dict:  # noqa: ANN001
    serve.start(http_options={"host": "127.0.0.1", "port": 8001})
    serve.run(app(None), name="xiaoke", route_prefix="/")
    out: dict = {}
    with httpx.Client(base_url="http://127.0.0.1:8001", timeout=10) as c:

        def nlu() -> str:
            try:
                r = c.post("/v1/nlu", json={"texts": ["我要退货"], "with_candidates": False})
            except httpx.HTTPError as exc:
                return type(exc).__name__
            return (
                f"200 {r.json()['model_versions']['intent']}" if r.status_code == 200 else str(r.status_code)
            )

        out["before"] = nlu()
        # the update blocks until Serve calls it done (or failed): apply it beside the probing loop
        update = threading.Thread(
            target=lambda: serve.run(app(pin), name="xiaoke", route_prefix="/"), daemon=True
        )
        update.start()
        seen: Counter[str] = Counter()
        t0 = time.monotonic()
        while time.monotonic() - t0 < watch_s:
            seen[nlu()] += 1
            time.sleep(0.5)
        out["during"] = dict(seen)
        status = serve.status().applications["xiaoke"]
        out["app_status"] = getattr(status.status, "value", str(status.status))
        out["replicas"] = {str(k): v for k, v in status.deployments["NluIngress"].replica_states.items()}
        r = c.get("/readyz")
        out["readyz"] = r.json() if r.status_code == 200 else r.status_code
    return out


if __name__ == "__main__":
    result = main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4])
    print("PROBE_RESULT " + json.dumps(result, ensure_ascii=False), flush=True)
