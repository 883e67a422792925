"""preStop hook of every KubeRay worker pod (CPU and GPU profiles): drain this Ray node, then stop Ray.

A bare `ray stop` killed the node's Serve replicas with requests in flight whenever Kubernetes removed a worker
pod (eviction, node drain, rollout, a scale-down by hand). Here, within `--deadline-s` (DEADLINE_S):

1. `ray drain-node --reason DRAIN_NODE_REASON_PREEMPTION --deadline-remaining-seconds <left>` for this node
   (the CLI resolves the local node itself). GCS marks the node draining: no new tasks or actors land on it,
   and Serve's controller moves its replicas off: it starts a replacement on another node, then stops the
   replica here gracefully (no new requests, in-flight ones finish, up to the deployment's
   graceful_shutdown_timeout_s, 20 s by default) once the replacement runs, and at the latest at
   deadline - graceful_shutdown_timeout_s. If the cluster has no room for a replacement (the Ray autoscaler
   adds a pod meanwhile), the replica still stops gracefully at that point: capacity dips, no request is cut.
2. Wait until no Serve replica process is left on this node (at least MIN_WAIT_S, so requests the Service
   still routed here before the endpoint removal reached every node are answered), at most until the deadline.
3. `ray stop --grace-period RAY_STOP_GRACE_S` (the old hook; SIGKILL after the grace period).

Each step is bounded and a failed drain (GCS gone: the whole cluster is being deleted; the raylet already
deregistered: the Ray autoscaler's own idle scale-down drains through GCS before it deletes a pod) falls
through to `ray stop`, so the hook never holds a pod longer than the deadline plus `ray stop`. The pod's
terminationGracePeriodSeconds must cover DEADLINE_S + MARGIN_S (`make validate-deploy` checks it).

Residual risk: a request longer than graceful_shutdown_timeout_s (an FAQ index build through Serve, up to
600 s) is still cut when its replica stops; the API retries publishes, NLU requests last well under 1 s.

Usage: python /app/deploy/ray_worker_prestop.py [--deadline-s 60] [--min-wait-s 5] [--node-id HEX]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEADLINE_S = 60  # replacement start + the replica's graceful shutdown (Serve's default 20 s)
MIN_WAIT_S = 5  # as the API pod's preStop sleep: endpoint removal reaches every kube-proxy
RAY_STOP_GRACE_S = 10
# terminationGracePeriodSeconds >= deadline + MARGIN_S: `ray stop` (SIGTERM, SIGKILL after its grace period),
# then the container's own SIGTERM and exit
MARGIN_S = RAY_STOP_GRACE_S + 5
DRAIN_CALL_TIMEOUT_S = 20  # the CLI connects to the cluster first (~2 s)
POLL_S = 0.5
REPLICA_TITLE = b"ray::ServeReplica:"  # Ray sets an actor's process title to ray::<class>:<app>:<deployment>
RAYLET_BINARY = b"/raylet"
PROC = Path("/proc")


def _cmdlines(proc: Path) -> list[tuple[int, bytes]]:
    out = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                out.append((int(entry.name), (entry / "cmdline").read_bytes()))
            except OSError:  # the process exited meanwhile
                continue
    return out


def replica_pids(proc: Path = PROC) -> set[int]:
    """Serve replica processes running in this container (its PID namespace: only this node's)."""
    return {pid for pid, cmd in _cmdlines(proc) if cmd.startswith(REPLICA_TITLE)}


def raylet_running(proc: Path = PROC) -> bool:
    return any(RAYLET_BINARY in cmd.split(b"\0", 1)[0] for _, cmd in _cmdlines(proc))


def log(message: str) -> None:
    print(f"ray-worker-prestop: {message}", flush=True)


def drain(ray: str, deadline_s: int, node_id: str | None, timeout_s: float) -> bool:
    cmd = [
        ray, "drain-node", "--reason", "DRAIN_NODE_REASON_PREEMPTION",
        "--reason-message", "pod terminating (preStop)", "--deadline-remaining-seconds", str(deadline_s),
    ]  # fmt: skip
    if node_id:
        cmd += ["--node-id", node_id]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        log(f"drain-node gave no answer within {timeout_s:g} s")
        return False
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        log(f"drain-node failed: {tail[0]}")
        return False
    return True


def wait_for_replicas(deadline: float, min_wait_s: float, proc: Path = PROC, poll_s: float = POLL_S) -> int:
    """Wait until no replica is left (but at least min_wait_s) or the deadline passes; replicas still left."""
    start = time.monotonic()
    while True:
        now = time.monotonic()
        left = len(replica_pids(proc))
        if now >= deadline or (left == 0 and now - start >= min_wait_s):
            return left
        time.sleep(min(poll_s, max(deadline - now, 0.0)))


def main(argv: list[str] | None = None, proc: Path = PROC) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--deadline-s", type=int, default=DEADLINE_S, help="drain deadline (default %(default)s)"
    )
    parser.add_argument("--min-wait-s", type=float, default=MIN_WAIT_S, help="(default %(default)s)")
    parser.add_argument("--node-id", help="hex id of the node to drain (default: this pod's node)")
    parser.add_argument("--ray", default=shutil.which("ray") or "ray", help="the ray CLI")
    args = parser.parse_args(argv)
    start = time.monotonic()
    deadline = start + args.deadline_s
    if not raylet_running(proc):
        log("no raylet here (already deregistered or stopped): nothing to drain")
        drained = False
    else:
        before = len(replica_pids(proc))
        remaining = max(int(deadline - time.monotonic()), 1)
        drained = drain(args.ray, remaining, args.node_id, min(DRAIN_CALL_TIMEOUT_S, remaining))
        log(f"drain {'accepted' if drained else 'not possible'}; {before} Serve replica(s) on this node")
    # Without a drain the replicas never leave: only give requests routed here their min wait.
    until = deadline if drained else min(deadline, start + args.min_wait_s)
    left = wait_for_replicas(until, args.min_wait_s, proc)
    log(f"{left} replica(s) left after {time.monotonic() - start:.1f} s; ray stop")
    try:
        subprocess.run(
            [args.ray, "stop", "--grace-period", str(RAY_STOP_GRACE_S)],
            timeout=RAY_STOP_GRACE_S + 5,
            check=False,
        )
    except subprocess.TimeoutExpired:
        log("ray stop did not finish; the kubelet's SIGTERM/SIGKILL follows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
