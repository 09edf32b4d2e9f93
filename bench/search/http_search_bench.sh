#!/usr/bin/env bash
# Search over HTTP (issue 3): the Synthea sample replicated to TARGET resources, imported into
# SQLite, then a fixed mix of 20 searches (bench/search/queries.tsv) timed one at a time over one
# keep-alive connection. Prints the load rate, the database bytes per resource and a table:
# query, class, status, p50, p95, the class target, result count, verdict.
#
#   bench/search/http_search_bench.sh BUILD_DIR [TARGET_RESOURCES]     (default 100000)
#   e.g. bench/search/http_search_bench.sh build 2000000
#
# Builds nothing: needs BUILD_DIR/src/cli/jiceng and BUILD_DIR/bench/loadgen/jiceng-loadgen
# (cmake --build BUILD_DIR --target jiceng jiceng-loadgen).
# Environment:
#   WORK=DIR     work dir (default /tmp/jiceng-search-bench). The NDJSON in WORK/data-TARGET is
#                cached: a rerun with the same TARGET and replicator skips generation.
#   REUSE_DB=1   skip the import when WORK/search-TARGET.db was loaded completely before (its
#                load figures are reported from that run).
#   REPEAT=N     timed requests per query (default 100); WARMUP=N untimed first (default 10);
#   QUERY_SECONDS=S  stop timing a query after S s (default 60; the table's n says how many).
#   DB_URL=postgresql://…  load and query this PostgreSQL database instead of a SQLite file (an
#                empty database the script may fill; with REUSE_DB=1 one it loaded before), e.g.
#                scripts/with-postgres.sh sh -c 'createdb -h … jc_search && DB_URL=… bench/…'
# Disk: ~1.3 KB of NDJSON and ~6 KB of database per resource (2,000,000: ~2.6 GB + ~12 GB).
# Exit status: 0 when every query answered as it should (a chain or _has query may answer
# "not supported"), 1 otherwise; a p95 over its target is reported ("SLOW"), not a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ $# -ge 1 ] || { sed -n '2,21p' "$0"; exit 2; }
build=$(cd "$1" && pwd)
target=${2:-100000}
work=${WORK:-/tmp/jiceng-search-bench}
repeat=${REPEAT:-100}
warmup=${WARMUP:-10}
query_seconds=${QUERY_SECONDS:-60}
bin=$build/src/cli/jiceng
loadgen=$build/bench/loadgen/jiceng-loadgen
synthea=$root/../shared/data/synthea-r4
data=$work/data-$target
db=$work/search-$target.db
marker=$db.loaded
if [ -n "${DB_URL:-}" ]; then
  db=$DB_URL
  marker=$work/search-$target.postgres.loaded
fi
results=$work/results-$target.txt
for f in "$bin" "$loadgen"; do
  [ -x "$f" ] || { echo "missing $f: build the jiceng and jiceng-loadgen targets" >&2; exit 2; }
done
mkdir -p "$work"
server_pid=""
tee_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$tee_pid" ]; then exec >&- 2>&-; wait "$tee_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
t_start=$(now)
exec > >(tee "$results") 2>&1
tee_pid=$!

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binary: $bin ($("$bin" version 2>&1 | head -1))"
echo "command: bench/search/http_search_bench.sh $1 $target  (REPEAT=$repeat WARMUP=$warmup)"

# --- 1. NDJSON (cached) ------------------------------------------------------------------
script_hash=$(sha256sum "$here/replicate_synthea.py" | cut -d' ' -f1)
cached=$(python3 - "$data/summary.json" "$script_hash" "$target" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
    print("yes" if s["script_sha256"] == sys.argv[2] and s["target_resources"] == int(sys.argv[3]) else "no")
except (OSError, ValueError, KeyError):
    print("no")
PY
)
t0=$(now)
if [ "$cached" = yes ]; then
  echo "generate: cached in $data"
else
  python3 "$here/replicate_synthea.py" --input "$synthea" --out "$data" --target-resources "$target" --quiet
  rm -f "$marker"
  echo "generate: $(secs "$t0" "$(now)") s into $data"
fi
read -r copies resources < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["copies"], s["resources"])' "$data/summary.json")
echo "data: $resources resources ($copies copies of the 30 Synthea patients, shared Organizations/Practitioners once), $(du -sm "$data/ndjson" | cut -f1) MB of NDJSON"

# --- 2. import ---------------------------------------------------------------------------
if [ "${REUSE_DB:-0}" = 1 ] && [ -f "$marker" ] && { [ -n "${DB_URL:-}" ] || [ -f "$db" ]; }; then
  echo "import: reusing $db, loaded before: $(cat "$marker")"
else
  rm -f "$marker"
  [ -n "${DB_URL:-}" ] || rm -f "$db" "$db-wal" "$db-shm"
  t0=$(now)
  set +e
  "$bin" import --db "$db" --errors "$work/import-errors-$target.txt" "$data/ndjson" \
    >"$work/import-$target.out" 2>"$work/import-$target.err"
  rc=$?
  set -e
  t1=$(now)
  cat "$work/import-$target.out"
  # The loader's stage times (CPU seconds over its worker threads, store writes wall time).
  stages=$(tr '\r' '\n' <"$work/import-$target.err" | grep -a '^import stages' || true)
  echo "$stages"
  if [ $rc -ne 0 ]; then
    echo "FAIL: jiceng import exited $rc; rejections in $work/import-errors-$target.txt:" >&2
    head -5 "$work/import-errors-$target.txt" >&2
    exit 1
  fi
  loaded=$(sed -n 's/^imported \([0-9]*\) resources.*/\1/p' "$work/import-$target.out")
  [ "$loaded" = "$resources" ] || { echo "FAIL: imported $loaded of $resources resources" >&2; exit 1; }
  rate=$(awk -v n="$loaded" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
  index_us=$(echo "$stages" | sed -n 's/.*search index extraction \([0-9.]*\) s.*/\1/p')
  index_note=""
  [ -n "$index_us" ] && index_note=$(awk -v s="$index_us" -v n="$loaded" 'BEGIN { printf "; index extraction %.0f us CPU per resource (%.0f resources/s per core)", s * 1e6 / n, n / s }')
  echo "$loaded resources in $(secs "$t0" "$t1") s, $rate resources/s (wall, jiceng import, durable)$index_note" >"$marker"
  echo "import: $(cat "$marker")"
fi
if [ -n "${DB_URL:-}" ]; then
  db_bytes=$(psql "$DB_URL" -Atc "SELECT pg_database_size(current_database())")
else
  db_bytes=$(( $(stat -c %s "$db") + $(stat -c %s "$db-wal" 2>/dev/null || echo 0) ))
fi
awk -v b="$db_bytes" -v n="$resources" 'BEGIN { printf "database: %.1f MB, %.0f bytes per resource\n", b / 1e6, b / n }'

# --- 3. serve and query ------------------------------------------------------------------
"$bin" serve --db "$db" --listen 127.0.0.1:0 --no-access-log >"$work/server-$target.out" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 300); do
  port=$(sed -n 's/^jiceng: listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$work/server-$target.out")
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: server did not start" >&2; cat "$work/server-$target.out" >&2; exit 1; }

# The query file for jiceng-loadgen (name, class, target), values from picks.json.
python3 - "$here/queries.tsv" "$data/picks.json" "$work/queries-$target.tsv" <<'PY'
import json, re, sys, urllib.parse
picks = json.load(open(sys.argv[2]))
with open(sys.argv[3], "w") as out:
    for line in open(sys.argv[1], encoding="utf-8"):
        if not line.strip() or line.startswith("#"):
            continue
        name, cls, feature, target = line.rstrip("\n").split("\t")
        def value(m):
            return urllib.parse.quote(str(picks[m.group(1)]), safe="-._~:/")
        out.write("%s\t%s\t%s\n" % (name, cls, re.sub(r"\{(\w+)\}", value, target)))
PY
t0=$(now)
"$loadgen" --url "http://127.0.0.1:$port/" --queries "$work/queries-$target.tsv" \
  --warmup "$warmup" --iterations "$repeat" --query-seconds "$query_seconds" \
  --header "Prefer: handling=strict" --header "Accept: application/fhir+json" >"$work/latency-$target.tsv" ||
  { echo "FAIL: jiceng-loadgen: some requests got no answer" >&2; cat "$work/latency-$target.tsv"; exit 1; }
t1=$(now)
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
echo "queries: 20 x ($warmup warm-up + up to $repeat timed or ${query_seconds} s), one keep-alive connection, Prefer: handling=strict; $(secs "$t0" "$t1") s"
echo
status=0
python3 - "$here/queries.tsv" "$work/latency-$target.tsv" "$data/picks.json" <<'PY' || status=$?
import csv, json, sys
expect = json.load(open(sys.argv[3])).get("expect", {})
features = {}
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip() and not line.startswith("#"):
        name, cls, feature, _ = line.rstrip("\n").split("\t")
        features[name] = feature
rows = list(csv.DictReader(open(sys.argv[2], encoding="utf-8"), delimiter="\t"))
limit = {"single-patient": 20.0, "population": 100.0}
table, failed, slow, unsupported = [], [], [], []
for r in rows:
    name, cls, status, note = r["name"], r["class"], r["status"], r["note"]
    count = r["total"] if r["total"] != "-" else r["match"] if status == "200" else "-"
    if status == "200":
        if not note.startswith("searchset"):
            verdict = "FAIL: " + note
        elif "outcome entry: error" in note or "outcome entry: fatal" in note:
            verdict = "FAIL: " + note.split("outcome entry: ", 1)[1]
        elif int(r["match"]) == 0:
            verdict = "FAIL: no match (picks or search wrong)"
        elif name in expect and r["total"] not in ("-", str(expect[name])):
            verdict = "FAIL: total %s, the generator counted %s" % (count, expect[name])
        elif float(r["p95_ms"]) > limit[cls]:
            verdict = "SLOW"
        else:
            verdict = "ok"
    elif status in ("400", "501") and features.get(name) in ("chain", "has"):
        verdict = "unsupported: " + note
    else:
        verdict = "FAIL: " + note
    (failed if verdict.startswith("FAIL") else slow if verdict == "SLOW"
     else unsupported if verdict.startswith("unsupported") else []).append(name)
    table.append((name, cls, status, r["n"], r["p50_ms"], r["p95_ms"], "%g" % limit[cls], count,
                  r["include"], verdict[:90]))
head = ("query", "class", "status", "n", "p50 ms", "p95 ms", "target", "total", "incl", "verdict")
widths = [max(len(str(x[i])) for x in table + [head]) for i in range(len(head))]
for row in [head, tuple("-" * w for w in widths)] + table:
    print("  ".join(str(c).rjust(w) if 2 <= i <= 8 else str(c).ljust(w)
                    for i, (c, w) in enumerate(zip(row, widths))).rstrip())
print()
ok = len(rows) - len(failed) - len(slow) - len(unsupported)
print("summary: %d within target, %d over target (%s), %d not supported yet (%s), %d failed (%s)"
      % (ok, len(slow), ", ".join(slow) or "-", len(unsupported), ", ".join(unsupported) or "-",
         len(failed), ", ".join(failed) or "-"))
sys.exit(1 if failed or len(rows) != len(features) else 0)
PY
echo "total wall time: $(secs "$t_start" "$(now)") s; files in $work (this output: $results)"
exit $status
