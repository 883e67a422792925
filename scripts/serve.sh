#!/usr/bin/env bash
# Inference server (Ray Serve) on 127.0.0.1:8001: `scripts/serve.sh [cpu|gpu]` (default cpu).
# Ray runs locally with the dashboard off; the launcher logs process count and RSS once the app is RUNNING.
# Ray 2.60 binds some internal ports on all interfaces: on a shared host run this inside a private network
# namespace (tests and benchmarks do: unshare --net --fork bash -c 'ip link set lo up && exec scripts/serve.sh').
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-cpu}
case "$PROFILE" in
  cpu|gpu) ;;
  *) echo "usage: $0 [cpu|gpu]" >&2; exit 2 ;;
esac
PY=${PY:-.venv/bin/python}
export XIAOKE_DATA_DIR=${XIAOKE_DATA_DIR:-$PWD/var}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export RAY_USAGE_STATS_ENABLED=0
export RAY_SERVE_THROUGHPUT_OPTIMIZED=${RAY_SERVE_THROUGHPUT_OPTIMIZED:-1}
CONFIG=${SERVING_CONFIG:-serving/config/$PROFILE.yaml}
RAY_TMP=${SERVING_RAY_TEMP_DIR:-/tmp/xiaoke-ray-$$}
mkdir -p "$XIAOKE_DATA_DIR/models"
echo "[serve] profile=$PROFILE config=$CONFIG store=$XIAOKE_DATA_DIR/models ray_temp=$RAY_TMP"
exec "$PY" -m serving --config "$CONFIG" --ray-temp-dir "$RAY_TMP" ${SERVING_NUM_CPUS:+--num-cpus "$SERVING_NUM_CPUS"} \
  ${SERVING_METRICS_EXPORT_PORT:+--metrics-export-port "$SERVING_METRICS_EXPORT_PORT"}
