#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL 15 cluster up, and JICENG_TEST_PG_URL naming a
# database in it:
#
#   scripts/with-postgres.sh ctest --test-dir build -R postgres
#
# Installs postgresql-15 from Debian if missing (idempotent), initdbs a cluster in a fresh
# temporary directory, starts it on a free 127.0.0.1 port (its unix socket stays in the same
# directory, so nothing touches /var/run/postgresql), creates the database jiceng_test, runs the
# command, then stops the cluster and removes the directory whatever happens (trap). Exits with
# the command's status.
#
# JICENG_PG_SETTINGS adds server settings, e.g. JICENG_PG_SETTINGS="-c shared_buffers=4GB" for a
# benchmark whose database should stay in PostgreSQL's own cache (docs/benchmarks.md).
#
# initdb and postgres refuse to run as root, and CI runs as root: the server then runs as the
# unprivileged system user jiceng-pg (created once with useradd -r), which owns the directory.
# The cluster trusts local connections (loopback and its own socket only): it lives for one
# command and holds only test data.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS…]" >&2
  exit 2
fi

PG_BIN=/usr/lib/postgresql/15/bin
if [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pgbench" ]; then
  echo "with-postgres: installing postgresql-15"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  # The Debian package would create and start a system cluster of its own; we never use it.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    postgresql-15 postgresql-client-15 >/dev/null
fi

# as_pg CMD…: runs CMD as the user that owns the cluster.
if [ "$(id -u)" -eq 0 ]; then
  PG_USER=jiceng-pg
  if ! id -u "$PG_USER" >/dev/null 2>&1; then
    useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$PG_USER"
  fi
  as_pg() { runuser -u "$PG_USER" -- "$@"; }
else
  PG_USER=$(id -un)
  as_pg() { "$@"; }
fi

# A free port: ask the kernel for one, then let postgres bind it (a race with another process
# grabbing it in between only makes pg_ctl fail loudly, never connect us elsewhere).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
    2>/dev/null || echo $((20000 + RANDOM % 20000))
}

PG_DIR=$(mktemp -d /tmp/jiceng-pg.XXXXXX)
chmod 0755 "$PG_DIR"
[ "$(id -u)" -eq 0 ] && chown "$PG_USER" "$PG_DIR"
PG_DATA="$PG_DIR/data"
PG_PORT=$(free_port)

cleanup() {
  local status=$?
  if [ -f "$PG_DATA/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_DIR"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --no-sync: the cluster is thrown away; only the initdb files skip fsync, the server does not.
as_pg "$PG_BIN/initdb" --no-sync -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
  >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
# Durability stays on (fsync, synchronous_commit): tests and benchmarks see real commits.
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_DIR \
      -c max_connections=300 -c shared_buffers=128MB ${JICENG_PG_SETTINGS:-}" start >/dev/null \
  || { cat "$PG_DIR/server.log" >&2; exit 1; }
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres jiceng_test

export JICENG_TEST_PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/jiceng_test"
export JICENG_TEST_PG_BIN="$PG_BIN"
echo "with-postgres: PostgreSQL 15 on 127.0.0.1:$PG_PORT ($PG_DIR)"
set +e
"$@"
status=$?
set -e
exit "$status"
