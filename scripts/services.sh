#!/usr/bin/env bash
# Make sure the real MariaDB (127.0.0.1:3306, root, empty password, database `test`) and Redis
# (127.0.0.1:6379) that the integration tests use are running. Starts them from the Debian packages when
# they are down (installing the packages if missing). Idempotent; exits non-zero if a service cannot start.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if [ "$(id -u)" != 0 ]; then log "need root to install $*"; return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

redis_up() { have redis-cli && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
mariadb_up() { have mariadb-admin && mariadb-admin -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; }

ensure_redis() {
  if redis_up; then log "redis: up"; return; fi
  have redis-server || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  log "redis: starting"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis_up && { log "redis: up"; return; }; sleep 0.2; done
  log "redis: failed to start"; return 1
}

ensure_mariadb() {
  if mariadb_up; then log "mariadb: up"; else
    have mariadbd || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
    if [ ! -d /var/lib/mysql/mysql ]; then
      log "mariadb: initializing data directory"
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    # The socket/pid dir must belong to mysql or mariadbd dies silently.
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    log "mariadb: starting"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    for _ in $(seq 1 100); do mariadb_up && break; sleep 0.3; done
    mariadb_up || { log "mariadb: failed to start"; return 1; }
    log "mariadb: up"
  fi
  # root over TCP with an empty password and a `test` database, as the tests expect.
  mariadb -h 127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS test CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" \
    || mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS test CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
}

ensure_redis
ensure_mariadb
