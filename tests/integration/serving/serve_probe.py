"""Helper process for test_serving_real.py: runs INSIDE a private network namespace.

Starts scripts/serve.sh with a test config (split topology, 2 Retriever replicas), probes it over real HTTP on
127.0.0.1:8001, stops it, and prints one JSON object with what it saw. Not a test module itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]
BASE = "http://127.0.0.1:8001"
METRICS_PORT = 18080  # the node's Ray metrics (what Prometheus scrapes on Kubernetes); free: private netns
KB = [
    {"faq_id": "refund", "question": "怎么申请退货", "similar": ["我要退货"]},
    {"faq_id": "ship", "question": "快递多久能到", "similar": ["几天能到货"]},
    {"faq_id": "invoice", "question": "发票怎么开", "similar": ["能开发票吗"]},
]


def main(data_dir: str, config: str, ray_tmp: str) -> dict:
    env = {
        **os.environ,
        "XIAOKE_DATA_DIR": data_dir,
        "SERVING_CONFIG": config,
        "SERVING_RAY_TEMP_DIR": ray_tmp,
        "SERVING_METRICS_EXPORT_PORT": str(METRICS_PORT),
    }
    log = open(Path(data_dir) / "serve.log", "w")  # noqa: SIM115
    t0 = time.monotonic()
    proc = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "serve.sh"), "cpu"], env=env, stdout=log, stderr=log
    )
    out: dict = {}
    try:
        with httpx.Client(base_url=BASE, timeout=30) as c:
            while time.monotonic() - t0 < 75:
                if proc.poll() is not None:
                    out["exited"] = proc.returncode
                    return out
                try:
                    if c.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            out["ready_s"] = round(time.monotonic() - t0, 1)
            out["healthz"] = c.get("/healthz").status_code
            out["readyz"] = c.get("/readyz").json()
            r = c.post(
                "/v1/nlu",
                json={"texts": ["我要退货", "发票怎么开"], "top_k": 2},
                headers={"x-request-id": "it-1"},
            )
            out["nlu"] = {"status": r.status_code, "rid": r.headers.get("x-request-id"), "body": r.json()}
            r = c.post("/v1/nlu", json={"texts": ["好" * 513]})
            out["too_long"] = {"status": r.status_code, "body": r.json()}
            r = c.post(
                "/v1/nlu", content=b'{"texts": ["\xff"]}', headers={"content-type": "application/json"}
            )
            out["bad_utf8"] = {"status": r.status_code, "body": r.json()}
            r = c.post("/v1/indexes", json={"entries": KB, "version": "it-v1", "activate": False})
            out["build_v1"] = r.status_code
            r = c.post("/v1/indexes", json={"entries": KB[:2], "version": "it-v2", "activate": True})
            out["build_v2"] = r.status_code
            r = c.post(
                "/v1/indexes", json={"entries": KB, "version": "it-v1"}
            )  # raised in a Retriever replica
            out["build_again"] = {"status": r.status_code, "body": r.json()}
            out["after_v2"], out["after_v2_s"] = served_versions(c, "it-v2")
            out["rollback"] = c.post("/v1/indexes/it-v1/activate").status_code
            out["after_rollback"], out["after_rollback_s"] = served_versions(c, "it-v1")
            out["indexes"] = c.get("/v1/indexes").json()
            out["metrics"] = c.get("/metrics").text
            out["cluster_metrics"] = cluster_series()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        out["log_tail"] = (Path(data_dir) / "serve.log").read_text(errors="replace")[-3000:]
    return out


def cluster_series(within_s: float = 40.0) -> list[str]:
    """Names of the ray_xiaoke_serving_* series on the node's metrics port, once the requests above show up there
    (Ray's agent exports every few seconds)."""
    t0 = time.monotonic()
    names: set[str] = set()
    while time.monotonic() - t0 < within_s:
        try:
            text = httpx.get(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5).text
        except httpx.TransportError:
            text = ""
        names = {ln.split("{")[0] for ln in text.splitlines() if ln.startswith("ray_xiaoke_serving_")}
        if "ray_xiaoke_serving_requests_total" in names and "ray_xiaoke_serving_batch_rows_bucket" in names:
            break
        time.sleep(2)
    return sorted(names)


def served_versions(c: httpx.Client, wanted: str, within_s: float = 20.0) -> tuple[list, float]:
    """The index versions 16 requests were served from, once every one is ``wanted`` or ``within_s`` is up.

    The other Retriever replica sees the ACTIVE pointer on its next poll (index_poll_s) and then loads the
    version (jieba + FAISS, a second or more on a loaded 2-core machine): a fixed sleep flaked there."""
    t0 = time.monotonic()
    while True:
        seen = [c.post("/v1/nlu", json={"texts": ["退货"]}).json()["index_version"] for _ in range(16)]
        if set(seen) == {wanted} or time.monotonic() - t0 > within_s:
            return seen, round(time.monotonic() - t0, 2)
        time.sleep(0.25)


if __name__ == "__main__":
    print("PROBE_RESULT " + json.dumps(main(*sys.argv[1:4]), ensure_ascii=False))
