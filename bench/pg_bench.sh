#!/usr/bin/env bash
# The foundation benchmarks over HTTP on PostgreSQL (issue 4), beside pgbench's own baseline:
#   pgbench -S          select-only, -c 8 -j 2 (simple and prepared protocol), scale 5
#   read by id          wrk -t2 -c64, keep-alive, one 3 KB Patient
#   create              jiceng-loadgen, 4 connections, single Observations (as bench/http_bench.sh)
#   transaction Bundles jiceng-loadgen --bundles, the 30 Synthea Bundles (x REPEAT), 2 connections
# Each jiceng part runs `jiceng serve --db postgresql://…` on a fresh database of a throwaway
# cluster (scripts/with-postgres.sh; the script starts one itself when JICENG_TEST_PG_URL is not
# set). The load average is printed next to every figure: other work on the machine's cores
# shows there, and rates measured under load are not comparable; the CPU time that jiceng and
# the PostgreSQL cluster spent per operation (µs/op) is printed too, and is the figure to compare
# when the machine is shared.
# Usage: bench/pg_bench.sh [BUILD_DIR]   Env: DURATION (s, default 5), REPEAT (default 1),
#        JICENG (the jiceng binary, default BUILD_DIR/src/cli/jiceng), PGBENCH_CLIENTS (8),
#        PARTS (default "pgbench read create bundles": which parts to run)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${JICENG_TEST_PG_URL:-}" ]; then
  exec scripts/with-postgres.sh "$0" "$@"
fi
build=${1:-build}
bin=${JICENG:-$build/src/cli/jiceng}
loadgen=$build/bench/loadgen/jiceng-loadgen
duration=${DURATION:-5}
repeat=${REPEAT:-1}
clients=${PGBENCH_CLIENTS:-8}
parts=" ${PARTS:-pgbench read create bundles} "
synthea=../shared/data/synthea-r4
pg_bin=${JICENG_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}
work=$(mktemp -d /tmp/jiceng-pg-bench.XXXXXX)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# postgresql://user@host:port/db → the parts pgbench and createdb take as options.
base=${JICENG_TEST_PG_URL%%\?*}
pg_user=$(id -un)
[[ $base == *@* ]] && pg_user=$(sed -E 's#^postgres(ql)?://([^@/]*)@.*#\2#' <<<"$base")
pg_host=$(sed -E 's#^postgres(ql)?://([^@/]*@)?([^:/]*).*#\3#' <<<"$base")
pg_port=$(sed -E 's#^postgres(ql)?://([^@/]*@)?[^:/]*:([0-9]+).*#\3#' <<<"$base")
[[ $pg_port =~ ^[0-9]+$ ]] || pg_port=5432
pg_opts=(-h "$pg_host" -p "$pg_port" -U "$pg_user")
server_root=${base%/*}
# The databases made here are named jiceng_bench_*; each part drops and recreates its own.
fresh_db() {  # fresh_db NAME -> prints its URL
  "$pg_bin/dropdb" "${pg_opts[@]}" --if-exists "$1" >/dev/null 2>&1
  "$pg_bin/createdb" "${pg_opts[@]}" "$1"
  echo "$server_root/$1"
}
load() { echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"; }
# CPU seconds × 100 (clock ticks) of a process, and of the whole cluster: the postmaster, its
# live children and the children it has reaped (backends of closed connections).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
postmaster=$(pgrep -o -f -- "-c port=$pg_port( |$)" || true)
cluster_ticks() {
  [ -n "$postmaster" ] || { echo 0; return; }
  local t
  t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat")
  for c in $(pgrep -P "$postmaster"); do t=$((t + $(ticks "$c"))); done
  echo "$t"
}
cpu_start() { cpu_j0=$(ticks "$server_pid"); cpu_p0=$(cluster_ticks); }
cpu_report() {  # cpu_report OPERATIONS
  local hz j p
  hz=$(getconf CLK_TCK)
  j=$(( ($(ticks "$server_pid") - cpu_j0) * 1000000 / hz / $1 ))
  p=$(( ($(cluster_ticks) - cpu_p0) * 1000000 / hz / $1 ))
  echo "    CPU per operation: jiceng ${j} µs, PostgreSQL ${p} µs ($1 operations)"
}

start_server() {  # start_server URL -> sets port, server_pid
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
echo "server: $("$pg_bin/postgres" --version), $base"

# --- baseline: pgbench select-only --------------------------------------------------------
if [[ $parts == *" pgbench "* ]]; then
fresh_db jiceng_bench_pgbench >/dev/null
"$pg_bin/pgbench" "${pg_opts[@]}" -i -q -s 5 jiceng_bench_pgbench >/dev/null 2>&1
for mode in simple prepared; do
  echo "--- pgbench -S -M $mode -c $clients -j 2 -T $duration (scale 5) [$(load)]"
  "$pg_bin/pgbench" "${pg_opts[@]}" -S -M "$mode" -c "$clients" -j 2 -T "$duration" -n jiceng_bench_pgbench \
    2>&1 | grep -E "^tps|latency average"
done
fi

# --- read by id ---------------------------------------------------------------------------
if [[ $parts == *" read "* ]]; then
start_server "$(fresh_db jiceng_bench_read)"
python3 - "$synthea" "$work/patient.json" <<'PY'
import json, sys, glob
b = json.load(open(sorted(glob.glob(sys.argv[1] + '/*.json'))[0]))
p = next(e['resource'] for e in b['entry'] if e['resource']['resourceType'] == 'Patient')
p['id'] = 'bench-1'
json.dump(p, open(sys.argv[2], 'w'), ensure_ascii=False)
PY
curl -sf -X PUT -H 'Content-Type: application/fhir+json' --data-binary @"$work/patient.json" \
  "http://127.0.0.1:$port/fhir/Patient/bench-1" -o /dev/null
curl -sf "http://127.0.0.1:$port/fhir/Patient/bench-1" -o "$work/read.json"
echo "--- jiceng GET /fhir/Patient/bench-1 ($(wc -c <"$work/read.json") bytes), wrk -t2 -c64 -d${duration}s [$(load)]"
cpu_start
wrk -t2 -c64 -d"${duration}s" "http://127.0.0.1:$port/fhir/Patient/bench-1" >"$work/wrk.out"
grep -E "Requests/sec|Latency|requests in" "$work/wrk.out"
cpu_report "$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/wrk.out")"
echo "    after: $(load)"
stop_server
fi

# --- create -------------------------------------------------------------------------------
if [[ $parts == *" create "* ]]; then
start_server "$(fresh_db jiceng_bench_create)"
python3 - "$synthea" "$work/obs.json" <<'PY'
import json, sys, glob
b = json.load(open(sorted(glob.glob(sys.argv[1] + '/*.json'))[0]))
o = next(e['resource'] for e in b['entry'] if e['resource']['resourceType'] == 'Observation' and 'component' in e['resource'])
o.pop('id', None); o['subject'] = {'reference': 'Patient/bench-1'}; o.pop('encounter', None)
json.dump(o, open(sys.argv[2], 'w'))
PY
echo "--- create: POST /fhir/Observation ($(wc -c <"$work/obs.json") bytes), 4 connections, ${duration}s [$(load)]"
cpu_start
"$loadgen" --url "http://127.0.0.1:$port/fhir/Observation" --method POST --body-file "$work/obs.json" \
  --header "Content-Type: application/fhir+json" --header "Prefer: return=minimal" --connections 4 \
  --duration "$duration" | tee "$work/create.out"
cpu_report "$(sed -n 's/^requests: *\([0-9]*\).*/\1/p' "$work/create.out")"
echo "    after: $(load)"
stop_server
fi

# --- transaction Bundles ------------------------------------------------------------------
if [[ $parts == *" bundles "* ]]; then
start_server "$(fresh_db jiceng_bench_bundles)"
echo "--- transaction Bundles: the 30 Synthea Bundles x $repeat, 2 connections [$(load)]"
cpu_start
"$loadgen" --url "http://127.0.0.1:$port/fhir" --bundles "$synthea" --repeat "$repeat" --connections 2 \
  --header "Content-Type: application/fhir+json" | tee "$work/loadgen.out"
cpu_report "$(sed -n 's/.*resources (2xx): \([0-9]*\).*/\1/p' "$work/loadgen.out")"
echo "    after: $(load)"
stop_server
fi
