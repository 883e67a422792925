"""The Ray worker preStop (deploy/ray_worker_prestop.py) against a real local Ray cluster: the node is drained,
Serve moves its replica to the other worker, and no request in flight fails (the old hook, a bare `ray stop`,
failed every request in flight: HOOK="ray stop" tests/integration/serving/drain_probe.sh)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("drain_probe.sh")

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(200)]


def test_worker_prestop_drains_the_node_without_failing_requests() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("needs root and util-linux unshare/nsenter (private net, PID and mount namespaces)")
    proc = subprocess.run(
        ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--mount", "bash", str(PROBE)],
        env={**os.environ, "PY": sys.executable},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(lines[-1])
    assert out["failed"] == [], out
    drained = out["drained_node"]
    assert out["ok"].get(drained, 0) > 0, out  # the replica served from the drained node first ...
    assert sum(n for node, n in out["ok"].items() if node != drained) > 0, out  # ... then from the other one
    assert out["node_states"][drained] == 1, out  # DEAD: Ray on the drained node stopped
    assert out["hook_s"] < 60, out  # it waited for the replica, not for the deadline
