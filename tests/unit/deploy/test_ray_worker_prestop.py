"""deploy/ray_worker_prestop.py, the Ray worker pods' preStop hook: drain, wait for the replicas, `ray stop`.

The drain itself against a real Ray cluster: tests/integration/serving/test_ray_worker_drain.py. Here the hook's
own logic: which processes count as replicas (real processes), and the order and bounds of its steps (a
recording stand-in for the `ray` CLI, a /proc-shaped directory for the node's processes).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.common import ROOT, dockerfile_stage, load_script, one

hook = load_script("ray_worker_prestop", ROOT / "deploy" / "ray_worker_prestop.py")


@pytest.fixture
def titled() -> Iterator[dict[str, int]]:
    """Real processes with the titles Ray gives a Serve replica and the raylet."""
    procs = {
        "replica": subprocess.Popen(["ray::ServeReplica:xiaoke:NluIngress", "60"], executable="sleep"),
        "raylet": subprocess.Popen(
            ["/opt/venv/lib/ray/core/src/ray/raylet/raylet", "60"], executable="sleep"
        ),
    }
    time.sleep(0.05)
    try:
        yield {name: p.pid for name, p in procs.items()}
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def test_replicas_and_the_raylet_are_found_by_their_process_titles(titled: dict[str, int]) -> None:
    pids = hook.replica_pids()
    assert titled["replica"] in pids and titled["raylet"] not in pids
    assert hook.raylet_running()


def _node(tmp_path: Path, replicas: int, raylet: bool = True) -> Path:
    """A /proc-shaped directory: the processes of one worker pod."""
    proc = tmp_path / "proc"
    titles = [b"/opt/venv/bin/python\0/opt/venv/bin/ray\0start\0--block\0"]
    titles += [b"/opt/venv/lib/ray/core/src/ray/raylet/raylet\0--node_id=x\0"] if raylet else []
    titles += [b"ray::ServeReplica:xiaoke:NluIngress\0"] * replicas + [b"ray::ProxyActor\0"]
    for pid, cmdline in enumerate(titles, start=1):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(cmdline)
    (proc / "self").mkdir()
    return proc


def _ray_cli(tmp_path: Path, drain_exit: int) -> tuple[Path, Path]:
    """A stand-in `ray` CLI that records its arguments (one call per line)."""
    calls = tmp_path / "calls"
    ray = tmp_path / "ray"
    ray.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" = drain-node ] && exit {drain_exit}\nexit 0\n',
        encoding="utf-8",
    )
    ray.chmod(0o755)
    return ray, calls


def _replicas_stop_after(proc: Path, seconds: float) -> threading.Timer:
    def stop() -> None:
        for entry in proc.iterdir():
            cmdline = entry / "cmdline"
            if cmdline.exists() and cmdline.read_bytes().startswith(b"ray::ServeReplica:"):
                cmdline.unlink()
                entry.rmdir()

    timer = threading.Timer(seconds, stop)
    timer.start()
    return timer


def test_drains_then_waits_for_the_replicas_then_stops_ray(tmp_path: Path) -> None:
    proc = _node(tmp_path, replicas=2)
    ray, calls = _ray_cli(tmp_path, drain_exit=0)
    timer = _replicas_stop_after(proc, 1.0)  # Serve moved them away
    start = time.monotonic()
    assert hook.main(["--ray", str(ray), "--min-wait-s", "0.2"], proc=proc) == 0
    elapsed = time.monotonic() - start
    timer.join()
    drain, stop = calls.read_text(encoding="utf-8").splitlines()
    assert drain.startswith("drain-node --reason DRAIN_NODE_REASON_PREEMPTION --reason-message")
    deadline = int(drain.split("--deadline-remaining-seconds ")[1].split()[0])
    assert hook.DEADLINE_S - 2 <= deadline <= hook.DEADLINE_S
    assert stop == f"stop --grace-period {hook.RAY_STOP_GRACE_S}"
    assert 1.0 <= elapsed < 5, elapsed  # waited for the replicas, not for the deadline


def test_replicas_that_never_leave_are_stopped_at_the_deadline(tmp_path: Path) -> None:
    proc = _node(tmp_path, replicas=1)
    ray, calls = _ray_cli(tmp_path, drain_exit=0)
    start = time.monotonic()
    hook.main(["--ray", str(ray), "--deadline-s", "2", "--min-wait-s", "0"], proc=proc)
    assert 1.9 <= time.monotonic() - start < 4
    assert calls.read_text(encoding="utf-8").splitlines()[-1].startswith("stop ")


def test_a_refused_drain_or_no_raylet_only_gives_routed_requests_the_minimum_wait(tmp_path: Path) -> None:
    for raylet, drain_exit, expected in ((True, 1, ["drain-node", "stop"]), (False, 0, ["stop"])):
        case = tmp_path / f"case-{raylet}"
        proc = _node(case, replicas=1, raylet=raylet)  # the replica cannot leave without a drain
        ray, calls = _ray_cli(case, drain_exit=drain_exit)
        start = time.monotonic()
        hook.main(["--ray", str(ray), "--min-wait-s", "0.3"], proc=proc)
        assert 0.3 <= time.monotonic() - start < 3
        assert [c.split()[0] for c in calls.read_text(encoding="utf-8").splitlines()] == expected


@pytest.mark.parametrize("target", ["serving-cpu", "serving-gpu"])
def test_the_serving_images_ship_the_hook_where_the_worker_pods_run_it(
    rendered: dict[str, Any], target: str
) -> None:
    steps = [s.split() for s in dockerfile_stage(ROOT / "Dockerfile.gpu", target)]
    workdir = [s[1] for s in steps if s[0].upper() == "WORKDIR"][-1]
    copies = [s for s in steps if s[0].upper() == "COPY" and "deploy/ray_worker_prestop.py" in s[1:-1]]
    assert len(copies) == 1, f"{target}: deploy/ray_worker_prestop.py is not copied into the image"
    dest = copies[0][-1]
    shipped = f"{workdir}/{dest}" + ("ray_worker_prestop.py" if dest.endswith("/") else "")
    for overlay, docs in rendered.items():
        for group in one(docs, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
            command = group["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
            assert shipped in command, f"{overlay}: preStop {command} does not run {shipped}"
