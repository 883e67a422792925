#!/usr/bin/env bash
# `make run`: the whole product on one machine with embedded defaults —
#   inference server (Ray Serve, CPU profile) on 127.0.0.1:8001,
#   API + widget (/) + console (/admin) on 127.0.0.1:8000 (SQLite + in-process session store).
# Models are built first by `make models` (the Makefile does that). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export XIAOKE_DATA_DIR=${XIAOKE_DATA_DIR:-$PWD/var}
export API_SERVING_URL=${API_SERVING_URL:-http://127.0.0.1:8001}
mkdir -p "$XIAOKE_DATA_DIR/logs"

serving_pid=""
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$serving_pid" ] && kill -0 "$serving_pid" 2>/dev/null; then
    echo "[run] stopping inference server"
    kill -INT "$serving_pid" 2>/dev/null || true
    wait "$serving_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

echo "[run] starting inference server (log: $XIAOKE_DATA_DIR/logs/serving.log)"
bash scripts/serve.sh cpu >"$XIAOKE_DATA_DIR/logs/serving.log" 2>&1 &
serving_pid=$!

printf '[run] waiting for the inference server'
for _ in $(seq 1 180); do
  if curl -fsS "$API_SERVING_URL/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$serving_pid" 2>/dev/null; then
    echo; echo "[run] inference server exited; last log lines:"; tail -n 30 "$XIAOKE_DATA_DIR/logs/serving.log"; exit 1
  fi
  printf '.'; sleep 1
done
echo
curl -fsS "$API_SERVING_URL/readyz" >/dev/null || { echo "[run] inference server not ready after 180 s"; exit 1; }

"$PY" -m api migrate
# First run: a console admin with a random password, kept (mode 600) in the data dir and printed once.
cred="$XIAOKE_DATA_DIR/console-admin.txt"
if [ -z "${API_BOOTSTRAP_ADMIN_PASSWORD:-}" ] && [ ! -s "$cred" ]; then
  pw=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(12))')
  (umask 077; printf 'username: admin\npassword: %s\n' "$pw" >"$cred")
  printf '%s\n' "$pw" | "$PY" -m api create-admin --username admin --password-stdin
  echo "[run] console login: admin / $pw   (saved in $cred)"
elif [ -s "$cred" ]; then
  echo "[run] console login: see $cred"
fi
echo "[run] open http://127.0.0.1:8000/ (widget demo page) and http://127.0.0.1:8000/admin (console)"
"$PY" -m api serve
