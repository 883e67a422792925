#!/usr/bin/env bash
# Run a command in a fresh private network namespace where only loopback is up.
#   scripts/in_netns.sh CMD [ARGS...]
# Ray 2.60 binds internal ports on all interfaces; inside the namespace nothing is reachable from (or
# reaches) the host network, and the host's MariaDB/Redis on 127.0.0.1 are not visible either: the
# stack harness (tests/stack) starts private ones. Needs root (or CAP_SYS_ADMIN) and util-linux unshare.
set -euo pipefail
if [[ $# -eq 0 ]]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi
if ! command -v unshare >/dev/null 2>&1; then
  echo "in_netns: 'unshare' (util-linux) is not installed" >&2
  exit 3
fi
if ! command -v ip >/dev/null 2>&1; then
  echo "in_netns: 'ip' (iproute2) is not installed" >&2
  exit 3
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "in_netns: must run as root to create a network namespace (uid=$(id -u))" >&2
  exit 3
fi
if ! unshare --net --fork true 2>/dev/null; then
  echo "in_netns: 'unshare --net' failed (no CAP_SYS_ADMIN, or namespaces disabled in this container)" >&2
  exit 3
fi
export XIAOKE_IN_NETNS=1
# "$@" is handed to bash as positional parameters: no re-quoting of the user's arguments.
exec unshare --net --fork bash -c 'ip link set lo up && exec "$@"' in_netns "$@"
