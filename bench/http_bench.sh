#!/usr/bin/env bash
# Foundation benchmarks over HTTP (issue 2), each beside its baseline:
#   read by id          wrk, keep-alive      vs nginx serving the same bytes as a static file
#   create              jiceng-loadgen, 4 connections, single Observations
#   transaction Bundles jiceng-loadgen --bundles, the 30 Synthea Bundles (x REPEAT)
# (raw SQLite inserting the same rows: bench/store/store_bench; the same read and Bundle parts
# on PostgreSQL, beside pgbench -S: bench/pg_bench.sh)
# Usage: bench/http_bench.sh [BUILD_DIR]   Env: DURATION (s, default 10), REPEAT (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin=$build/src/cli/jiceng
loadgen=$build/bench/loadgen/jiceng-loadgen
duration=${DURATION:-10}
repeat=${REPEAT:-5}
synthea=../shared/data/synthea-r4
work=$(mktemp -d /tmp/jiceng-bench.XXXXXX)
chmod 755 "$work"  # nginx workers run as another user
server_pid=""; nginx_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {  # start_server DB -> sets port, server_pid
  "$bin" serve --db "$1" --listen 127.0.0.1:0 --no-access-log >"$work/server.out" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/^jiceng: listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$work/server.out")
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$work/server.out" >&2; exit 1
}
stop_server() { kill "$server_pid"; wait "$server_pid" || true; server_pid=""; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"

# --- read by id --------------------------------------------------------------------------
start_server "$work/read.db"
python3 - "$synthea" "$work/patient.json" <<'PY'
import json, sys, glob
b = json.load(open(sorted(glob.glob(sys.argv[1] + '/*.json'))[0]))
p = next(e['resource'] for e in b['entry'] if e['resource']['resourceType'] == 'Patient')
p['id'] = 'bench-1'
json.dump(p, open(sys.argv[2], 'w'), ensure_ascii=False)
PY
curl -sf -X PUT -H 'Content-Type: application/fhir+json' --data-binary @"$work/patient.json" \
  "http://127.0.0.1:$port/fhir/Patient/bench-1" -o /dev/null
curl -sf "http://127.0.0.1:$port/fhir/Patient/bench-1" -o "$work/Patient-bench-1.json"
echo "read by id: $(wc -c <"$work/Patient-bench-1.json") bytes per response"
echo "--- jiceng GET /fhir/Patient/bench-1"
wrk -t2 -c64 -d"${duration}s" "http://127.0.0.1:$port/fhir/Patient/bench-1" | grep -E "Requests/sec|Latency|requests in"

mkdir -p "$work/www"; cp "$work/Patient-bench-1.json" "$work/www/bench-1"
cat >"$work/nginx.conf" <<NG
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  types { application/fhir+json json; }
  server { listen 127.0.0.1:18089; root $work/www; location / { default_type application/fhir+json; } }
}
NG
nginx -c "$work/nginx.conf" -p "$work" & nginx_pid=$!
sleep 0.5
echo "--- nginx static file, same bytes"
wrk -t2 -c64 -d"${duration}s" "http://127.0.0.1:18089/bench-1" | grep -E "Requests/sec|Latency|requests in"
kill "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true; nginx_pid=""
stop_server

# --- create ------------------------------------------------------------------------------
start_server "$work/create.db"
python3 - "$synthea" "$work/obs.json" <<'PY'
import json, sys, glob
b = json.load(open(sorted(glob.glob(sys.argv[1] + '/*.json'))[0]))
o = next(e['resource'] for e in b['entry'] if e['resource']['resourceType'] == 'Observation' and 'component' in e['resource'])
o.pop('id', None); o['subject'] = {'reference': 'Patient/bench-1'}; o.pop('encounter', None)
json.dump(o, open(sys.argv[2], 'w'))
PY
echo "--- create: POST /fhir/Observation ($(wc -c <"$work/obs.json") bytes), 4 connections"
"$loadgen" --url "http://127.0.0.1:$port/fhir/Observation" --method POST --body-file "$work/obs.json" \
  --header "Content-Type: application/fhir+json" --header "Prefer: return=minimal" --connections 4 --duration "$duration"
stop_server

# --- transaction Bundles -----------------------------------------------------------------
start_server "$work/bundles.db"
echo "--- transaction Bundles: the 30 Synthea Bundles x $repeat, 2 connections"
"$loadgen" --url "http://127.0.0.1:$port/fhir" --bundles "$synthea" --repeat "$repeat" --connections 2 \
  --header "Content-Type: application/fhir+json"
stop_server
echo "database after bundles: $(du -k "$work/bundles.db" | cut -f1) KiB for $((9303 * repeat)) resources"
