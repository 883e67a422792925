#!/usr/bin/env bash
# Create the secret files of docker compose (docker-compose.yml, top-level `secrets:`) that do not exist yet.
#   scripts/compose_secrets.sh      # into ./secrets, or XIAOKE_SECRETS_DIR (environment, else .env)
# Each file gets one random value: 48 URL-safe characters. A non-empty file is never overwritten: MySQL takes
# its passwords from these files only when it initialises an empty data volume, so a new value would lock the
# API out (rotation: docs/operations.md). Put the shop's shared webhook secret into order_webhook_secret
# yourself if the shop issues it; api_identity_secret goes the other way: give it to the shop's backend, which
# signs its signed-in shoppers with it.
# Modes: the directory 0700 (no other host user gets in), the files 0644: compose bind-mounts each file with
# its host owner and mode (the uid/gid/mode of `secrets:` only work in swarm) and the containers read them as
# non-root users (mysql, the API's 10001). Values never pass through a command line (`ps`).
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=(mysql_root_password mysql_password redis_password api_secret_key order_webhook_secret api_identity_secret)

dir="${XIAOKE_SECRETS_DIR:-}"
if [[ -z $dir && -f .env ]]; then
  dir="$(sed -n 's/^XIAOKE_SECRETS_DIR=//p' .env | tail -n 1)"
fi
dir="${dir:-./secrets}"

umask 077
mkdir -p "$dir"
chmod 700 "$dir"
for name in "${NAMES[@]}"; do
  file="$dir/$name"
  if [[ -s $file ]]; then
    echo "kept    $file"
    continue
  fi
  value="$(head -c 36 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  if (( ${#value} != 48 )); then
    echo "compose_secrets: could not generate a value for $name" >&2
    exit 1
  fi
  printf '%s\n' "$value" >"$file"  # printf is a shell builtin: no argv carries the value
  chmod 644 "$file"
  echo "created $file"
done
