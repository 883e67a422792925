#!/bin/bash
# A 3-node local Ray cluster (head without CPUs, two 1-CPU workers) and one Serve replica on worker 1; requests
# flow through the head's proxy while worker 1's preStop runs (deploy/ray_worker_prestop.py, or HOOK="ray stop"
# for the old hook). Worker 1 lives in its own PID namespace, like a pod: the hook's /proc scan and `ray stop`
# see only its processes. Prints one JSON line: requests ok per node, failures, hook seconds, node states.
# Run as root under `unshare --net --pid --fork --mount-proc --mount` (tests/integration/serving/
# test_ray_worker_drain.py does): a private scratch directory for Ray's session files (RAY_TMPDIR, a tmpfs only
# this mount namespace sees; the checkout itself may live under /tmp, so /tmp stays as it is) and nothing left behind.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../../.." && pwd)"
WORK="$(mktemp -d /tmp/xk-drain.XXXXXX)"  # short: Ray's unix socket paths live below it
mount -t tmpfs tmpfs "$WORK"
trap 'umount -l "$WORK" 2>/dev/null; rmdir "$WORK" 2>/dev/null || true' EXIT
export RAY_TMPDIR="$WORK" WORK
ip link set lo up
PY="${PY:-$REPO/.venv/bin/python}"
RAY="$(dirname "$PY")/ray"
# a private HOME too: no ~/.ray/auth_token of the host turns token authentication on (a pod has none either)
export HOME=$WORK/home RAY_USAGE_STATS_ENABLED=0 PYTHONPATH="$(dirname "$0")"
mkdir -p "$HOME"
HOOK="${HOOK:-python $REPO/deploy/ray_worker_prestop.py --deadline-s 60}"

nodes() { "$PY" -c 'import ray._raylet as r; print(len(r.GcsClient(address="127.0.0.1:6379").get_all_node_info()))'; }
"$RAY" start --head --num-cpus=0 --port=6379 --disable-usage-stats --include-dashboard=false >$WORK/head.log 2>&1
unshare --pid --fork --mount-proc "$RAY" start --address=127.0.0.1:6379 --num-cpus=1 --block >$WORK/w1.log 2>&1 &
W1=$!
for _ in $(seq 90); do [ "$(nodes 2>/dev/null)" = 2 ] && break; sleep 1; done
W1NODE="$("$PY" -c '
import ray._raylet as r
print(next(k.hex() for k, v in r.GcsClient(address="127.0.0.1:6379").get_all_node_info().items() if not v.is_head_node))')"
NSPID="$(pgrep -P "$W1" | head -1)"  # PID 1 of worker 1's namespace
"$PY" - >$WORK/deploy.log 2>&1 <<'PY'
import ray
from ray import serve
from ray.serve.config import HTTPOptions

@serve.deployment(ray_actor_options={"num_cpus": 1}, max_ongoing_requests=16)
class Slow:
    async def __call__(self, request) -> str:
        import asyncio

        import ray

        await asyncio.sleep(0.5)  # requests are in flight whenever the hook starts
        return ray.get_runtime_context().get_node_id()

ray.init(address="127.0.0.1:6379", logging_level="ERROR")
serve.start(http_options=HTTPOptions(host="127.0.0.1", port=8000, location="HeadOnly"))
serve.run(Slow.bind(), name="x", route_prefix="/")
PY
"$RAY" start --address=127.0.0.1:6379 --num-cpus=1 >$WORK/w2.log 2>&1
"$PY" - >$WORK/client.json <<'PY' &
import collections, json, signal, threading, time, urllib.request

stop = threading.Event()
ok: collections.Counter = collections.Counter()
failed: list = []

def loop() -> None:
    while not stop.is_set():
        try:
            with urllib.request.urlopen("http://127.0.0.1:8000/", timeout=30) as r:
                ok[r.read().decode()] += 1
        except Exception as exc:
            failed.append(f"{type(exc).__name__}: {exc}"[:160])

signal.signal(signal.SIGTERM, lambda *_: stop.set())
threads = [threading.Thread(target=loop) for _ in range(4)]
for t in threads:
    t.start()
while not stop.is_set():
    time.sleep(0.1)
for t in threads:
    t.join()
print(json.dumps({"ok": dict(ok), "failed": failed}))
PY
CLIENT=$!
sleep 4
START=$(date +%s.%N)
# the hook would find the node itself in a pod; here three raylets share one address
[[ $HOOK == *ray_worker_prestop.py* ]] && HOOK="$HOOK --node-id $W1NODE"
# shellcheck disable=SC2086
nsenter -t "$NSPID" -p -m env PATH="$(dirname "$PY"):$PATH" $HOOK >$WORK/hook.log 2>&1 || true
HOOK_S=$(awk -v a="$START" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
sleep 4
kill -TERM "$CLIENT"
wait "$CLIENT" || true
"$PY" - "$W1NODE" "$HOOK_S" <<'PY'
import json, os, sys
import ray._raylet as r

client = json.load(open(os.environ["WORK"] + "/client.json"))
states = {k.hex(): v.state for k, v in r.GcsClient(address="127.0.0.1:6379").get_all_node_info().items()}
print(json.dumps({**client, "drained_node": sys.argv[1], "hook_s": float(sys.argv[2]), "node_states": states,
                  "hook_log": open(os.environ["WORK"] + "/hook.log").read().splitlines()[-5:]}))
PY
"$RAY" stop --grace-period 5 >/dev/null 2>&1 || true
