#!/usr/bin/env bash
# Read-only queries on a streaming replica (issue 4), end to end on this machine: a throwaway
# primary (scripts/with-postgres.sh), a hot standby made from it with pg_basebackup -R, and
# `jiceng serve` writing to the primary and reading through `server.db_read_url` from the standby.
# Checks that a resource written over HTTP becomes readable (and searchable) through the replica,
# prints how long that took, and that an If-Match update (whose read runs on the primary) works.
# Then proves that reads really ran on the standby, not on the primary: the read URL carries an
# application_name, and during a burst of reads by id and searches through a restarted jiceng the
# standby's pg_stat_activity must show the read pool and the primary's must not; the standby's
# pg_stat_database transaction counters (read once jiceng's backends there have exited, which
# flushes their statistics) must have grown by at least one transaction per request.
# Usage: scripts/pg-replica-drill.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${JICENG_TEST_PG_URL:-}" ]; then
  exec scripts/with-postgres.sh "$0" "$@"
fi
build=${1:-build}
bin=$build/src/cli/jiceng
pg_bin=${JICENG_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}
port=$(sed -E 's#^postgres(ql)?://[^@]*@[^:]*:([0-9]+)/.*#\2#' <<<"$JICENG_TEST_PG_URL")
work=$(mktemp -d /tmp/jiceng-replica.XXXXXX)
# shellcheck source=scripts/drill-common.sh
. scripts/drill-common.sh
[ "$(id -u)" -eq 0 ] && chown jiceng-pg "$work"
cleanup() {
  stop_server
  as_pg "$pg_bin/pg_ctl" -D "$work/standby" -m fast -w stop >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] && cat "$work/standby.log" >&2
  psql "$JICENG_TEST_PG_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A schema of its own (created before the base backup, so the standby has it too).
schema="jiceng_replica_$$"
psql "$JICENG_TEST_PG_URL" -qc "CREATE SCHEMA $schema"
primary_url="$JICENG_TEST_PG_URL?options=-csearch_path%3D$schema"

# The standby: a base backup of the primary with its replication settings written (-R).
as_pg "$pg_bin/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -D "$work/standby" -R -X stream -c fast
standby_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# A hot standby needs at least the primary's max_connections (and the other limits it checks).
max_conn=$(psql "$JICENG_TEST_PG_URL" -Atc 'SHOW max_connections')
as_pg "$pg_bin/pg_ctl" -D "$work/standby" -l "$work/standby.log" -w -t 60 \
  -o "-c port=$standby_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work -c max_connections=$max_conn" start \
  >/dev/null
read_app=jiceng_drill_read_$$
standby_url="postgresql://postgres@127.0.0.1:$standby_port/${JICENG_TEST_PG_URL##*/}?options=-csearch_path%3D$schema&application_name=$read_app"
in_recovery=$(psql "$standby_url" -Atc 'SELECT pg_is_in_recovery()')
[ "$in_recovery" = t ] || { echo "FAIL: the standby is not in recovery" >&2; exit 1; }
echo "standby: $standby_url (hot standby, streaming from port $port)"

printf '[server]\ndb_read_url = "%s"\n' "$standby_url" >"$work/jiceng.toml"
serve() {  # starts jiceng writing to the primary and reading from the standby; sets $http
  "$bin" serve --db "$primary_url" --config "$work/jiceng.toml" --listen 127.0.0.1:0 \
    --no-access-log >"$work/server.out" 2>&1 &
  server_pid=$!
  http=""
  for _ in $(seq 100); do
    http=$(sed -n 's/^jiceng: listening on \(http:\/\/127.0.0.1:[0-9]*\)$/\1/p' "$work/server.out")
    [ -n "$http" ] && return
    sleep 0.1
  done
  cat "$work/server.out" >&2
  exit 1
}
serve

PYTHONPATH=scripts python3 - "$http" "$work/ids" <<'EOF'
import sys, time
import drill_http
base = sys.argv[1] + "/fhir"
ids = []
def call(method, path, body=None, headers=None):
    return drill_http.call(base, method, path, body, headers)
lags = []
for i in range(20):
    status, created, _ = call("POST", "/Patient", {"resourceType": "Patient", "name": [{"family": f"Replica{i}"}]})
    assert status == 201, (status, created)
    ids.append(created["id"])
    t0 = time.perf_counter()
    while True:
        status, _, _ = call("GET", "/Patient/" + created["id"])
        if status == 200:
            break
        assert status == 404, status
        assert time.perf_counter() - t0 < 10, "not replicated within 10 s"
        time.sleep(0.0005)
    lags.append((time.perf_counter() - t0) * 1000)
status, found, _ = call("GET", "/Patient?family=Replica&_count=50")
assert status == 200 and found["total"] == 20, found.get("total")
# An update with If-Match: its read of the current version runs on the primary.
pid = created["id"]
status, cur, headers = call("GET", "/Patient/" + pid)
status, _, _ = call("PUT", "/Patient/" + pid, dict(cur, gender="female"), {"If-Match": headers["ETag"]})
assert status == 200, status
status, _, _ = call("PUT", "/Patient/" + pid, dict(cur, gender="male"), {"If-Match": headers["ETag"]})
assert status == 412, status
lags.sort()
print(f"replica reads: 20 creates readable through the standby after {lags[len(lags)//2]:.1f} ms "
      f"(median), {lags[-1]:.1f} ms (max); search through the standby found all 20; "
      f"If-Match update 200 then 412")
open(sys.argv[2], "w").write("\n".join(ids))
EOF

# Did the reads reach the standby? Count the standby's transactions over a burst of reads through
# a fresh jiceng. A backend's statistics reach pg_stat_database when it goes idle (at most once a
# second) or when it exits, so the counters are read only once no read-pool backend is left.
standby_sql() { psql "$standby_url" -XAtqc "$1"; }
read_backends() {  # read_backends URL: jiceng read-pool connections open on that server
  psql "$1" -XAtqc "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$read_app' AND pid <> pg_backend_pid()"
}
wait_read_backends_gone() {
  for _ in $(seq 100); do
    [ "$(read_backends "$standby_url")" = 0 ] && return
    sleep 0.05
  done
  echo "FAIL: jiceng's read backends on the standby did not exit" >&2
  exit 1
}
xacts='SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()'
stop_server
wait_read_backends_gone
before=$(standby_sql "$xacts")
serve
requests=$(python3 - "$http" "$work/ids" <<'EOF'
import sys, urllib.request
base = sys.argv[1] + "/fhir"
ids = open(sys.argv[2]).read().split()
n = 0
for _ in range(10):
    for pid in ids:
        with urllib.request.urlopen(f"{base}/Patient/{pid}") as r:
            assert r.status == 200
        n += 1
for i in range(20):
    with urllib.request.urlopen(f"{base}/Patient?family=Replica{i}") as r:
        assert r.status == 200
    n += 1
print(n)
EOF
)
on_standby=$(read_backends "$standby_url")
on_primary=$(read_backends "$JICENG_TEST_PG_URL")
stop_server
wait_read_backends_gone
after=$(standby_sql "$xacts")
echo "reads on the standby: $((after - before)) transactions there for $requests reads and" \
  "searches (pg_stat_database); read pool during the burst: $on_standby connections on the" \
  "standby, $on_primary on the primary (pg_stat_activity)"
if [ "$on_standby" -lt 1 ] || [ "$on_primary" -ne 0 ] || [ $((after - before)) -lt "$requests" ]; then
  echo "FAIL: the reads did not all go to the standby" >&2
  exit 1
fi
echo "PASS"
