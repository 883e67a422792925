"""`python -m serving --config serving/config/cpu.yaml`: start a local Ray (dashboard off, loopback node IP,
private temp dir), deploy the Serve config file, report memory use once running, stop cleanly on SIGINT/TERM.

`serve run` / `serve deploy` would need the dashboard (deploy) or start Ray with it (run); this launcher applies
the same ServeDeploySchema through the Serve controller directly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("serving.launcher")


def _rss_mb() -> tuple[int, float]:
    import psutil

    me = psutil.Process()
    procs = [me, *me.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return len(procs), total / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__)
    parser.add_argument(
        "--config", type=Path, required=True, help="Serve config file (serving/config/*.yaml)"
    )
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs Ray may schedule (default: all)")
    parser.add_argument("--ray-temp-dir", type=Path, default=None, help="default: $TMPDIR/xiaoke-ray")
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    parser.add_argument(
        "--metrics-export-port",
        type=int,
        default=None,
        help="serve the node's Ray metrics (ray_serve_*, ray_xiaoke_serving_*) for Prometheus on this port "
        "(what rayStartParams metrics-export-port does on Kubernetes); default: none",
    )
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    import ray
    import yaml
    from ray import serve
    from ray.serve._private import api as serve_api
    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(yaml.safe_load(opts.config.read_text(encoding="utf-8")))
    temp_dir = opts.ray_temp_dir or Path(tempfile.gettempdir()) / "xiaoke-ray"
    temp_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    ray.init(
        namespace="serve",
        include_dashboard=False,
        num_cpus=opts.num_cpus,
        _temp_dir=str(temp_dir),
        _node_ip_address="127.0.0.1",
        log_to_driver=True,
        **({"_metrics_export_port": opts.metrics_export_port} if opts.metrics_export_port else {}),
    )
    client = serve_api.serve_start(
        http_options=config.http_options.model_dump(),
        proxy_location=config.proxy_location,
    )
    client.deploy_apps(config, _blocking=False)

    stop = {"flag": False}

    def _stop(signum: int, _frame: Any) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)

    apps = {a.name for a in config.applications}
    ready = False
    while not stop["flag"]:
        status = serve.status()
        states = {name: status.applications[name].status for name in apps if name in status.applications}
        if not ready and len(states) == len(apps) and all(s == "RUNNING" for s in states.values()):
            n, mb = _rss_mb()
            http = config.http_options
            log.info(
                "serving ready on http://%s:%s after %.1f s; %d processes, %.0f MB RSS",
                http.host, http.port, time.monotonic() - t0, n, mb,
            )  # fmt: skip
            ready = True
        if any(s in ("DEPLOY_FAILED", "UNHEALTHY") for s in states.values()):
            for name in apps:
                app = status.applications.get(name)
                if app is not None:
                    log.error("application %s: %s %s", name, app.status, app.message)
            if not ready:
                break
        if not ready and time.monotonic() - t0 > opts.ready_timeout:
            log.error("not running after %.0f s", opts.ready_timeout)
            break
        time.sleep(1.0)
    code = 0 if ready else 1
    log.info("shutting down")
    try:
        serve.shutdown()
    finally:
        ray.shutdown()
    return code


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    sys.exit(main())
