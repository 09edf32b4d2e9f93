#!/usr/bin/env bash
# Read-only queries on a streaming replica (issue 4), end to end on this machine: a throwaway
# primary (scripts/with-postgres.sh), a hot standby made from it with pg_basebackup -R, and
# `jiceng serve` writing to the primary and reading through `server.db_read_url` from the standby.
# Checks that a resource written over HTTP becomes readable (and searchable) through the replica,
# prints how long that took, and that an If-Match update (whose read runs on the primary) works.
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
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u jiceng-pg -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown jiceng-pg "$work"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
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
standby_url="postgresql://postgres@127.0.0.1:$standby_port/${JICENG_TEST_PG_URL##*/}?options=-csearch_path%3D$schema"
in_recovery=$(psql "$standby_url" -Atc 'SELECT pg_is_in_recovery()')
[ "$in_recovery" = t ] || { echo "FAIL: the standby is not in recovery" >&2; exit 1; }
echo "standby: $standby_url (hot standby, streaming from port $port)"

printf '[server]\ndb_read_url = "%s"\n' "$standby_url" >"$work/jiceng.toml"
"$bin" serve --db "$primary_url" --config "$work/jiceng.toml" --listen 127.0.0.1:0 \
  --no-access-log >"$work/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  http=$(sed -n 's/^jiceng: listening on \(http:\/\/127.0.0.1:[0-9]*\)$/\1/p' "$work/server.out")
  [ -n "$http" ] && break
  sleep 0.1
done
[ -n "${http:-}" ] || { cat "$work/server.out" >&2; exit 1; }

python3 - "$http" <<'EOF'
import json, sys, time, urllib.request
base = sys.argv[1] + "/fhir"
def call(method, path, body=None, headers=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/fhir+json", **(headers or {})})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read() or b"{}"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), dict(e.headers)
lags = []
for i in range(20):
    status, created, _ = call("POST", "/Patient", {"resourceType": "Patient", "name": [{"family": f"Replica{i}"}]})
    assert status == 201, (status, created)
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
EOF
echo "PASS"
