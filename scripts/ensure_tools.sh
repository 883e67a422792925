#!/usr/bin/env bash
# System tools the full test + validation run uses, from Debian's packages (never a downloaded browser):
#   chromium (+ CJK fonts) for the browser tests, nginx (nginx -t) and promtool for deployment validation.
set -euo pipefail
declare -A want=([chromium]=chromium [nginx]=nginx-light [promtool]=prometheus)
missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${want[$cmd]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  missing+=(fonts-noto-cjk)
  if [ "$(id -u)" != 0 ]; then echo "missing: ${missing[*]} (need root for apt-get)" >&2; exit 1; fi
  echo "[tools] installing ${missing[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The prometheus package starts a server on install on some systems; we only need promtool.
