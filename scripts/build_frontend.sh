#!/usr/bin/env bash
# Build the embeddable widget (frontend/dist/widget/) and the operator console (frontend/dist/console/).
# Fast when nothing changed: `npm ci` only when node_modules is older than package-lock.json, and each build
# is skipped when its dist is newer than every source file it depends on. FORCE=1 rebuilds everything;
# DEPS_ONLY=1 only installs the dependencies.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FE="$ROOT/frontend"
cd "$FE"

command -v npm >/dev/null || { echo "build_frontend: npm not found (need Node 20+)" >&2; exit 1; }

# 1. dependencies
stamp=node_modules/.package-lock.json   # npm rewrites this on every install
if [[ ! -f "$stamp" || package-lock.json -nt "$stamp" || package.json -nt "$stamp" ]]; then
  echo "build_frontend: installing dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# DEPS_ONLY=1: stop here (the frontend checks in `make test` need the dependencies, not the build)
[[ "${DEPS_ONLY:-0}" == 1 ]] && exit 0

# stale DIST_FILE PATHS... : true when any source is newer than DIST_FILE (or DIST_FILE is missing)
stale() {
  local out="$1"; shift
  [[ "${FORCE:-0}" == 1 || ! -f "$out" ]] && return 0
  [[ -n "$(find "$@" -type f -newer "$out" -print -quit 2>/dev/null)" ]]
}
common=(src/api src/shared package-lock.json tsconfig.json)

# 2. widget
if stale dist/widget/widget.js "${common[@]}" src/widget src/locales/widget widget-public vite.widget.config.ts; then
  echo "build_frontend: building widget"
  npx --no-install vite build --config vite.widget.config.ts --logLevel warn
else
  echo "build_frontend: widget up to date"
fi

# 3. console
if stale dist/console/index.html "${common[@]}" src/console src/locales/console console vite.console.config.ts; then
  echo "build_frontend: building console"
  npx --no-install vite build --config vite.console.config.ts --logLevel warn
else
  echo "build_frontend: console up to date"
fi

raw=$(wc -c < dist/widget/widget.js)
gz=$(gzip -9 -c dist/widget/widget.js | wc -c)
awk -v r="$raw" -v g="$gz" 'BEGIN { printf "build_frontend: widget.js %d bytes, %.1f KB gzip (budget 80 KB)\n", r, g / 1024 }'
if (( gz > 80 * 1024 )); then echo "build_frontend: widget exceeds the 80 KB gzip budget" >&2; exit 1; fi
