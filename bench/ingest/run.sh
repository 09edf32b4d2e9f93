#!/usr/bin/env bash
# Ingest benchmark (issue 5): generate the synthetic county as NDJSON, import it into a fresh
# SQLite database, and report generation resources/s, import resources/s, total time and
# database bytes per resident, with the machine. Figures go to docs/benchmarks.md.
#
#   bench/ingest/run.sh BIN [RESIDENTS] [WORKDIR]     (RESIDENTS default 50000; the issue's
#                                                      scale figure is 1000000)
# COUNTIES=N generates a city of N counties (the residents spread over them; 4 counties are the
# ~1,000 institutions the issue's scale figure names). GENERATE_DB=1 also times
# `jiceng generate --db` (generation and load in one process).
# DB_URL=postgresql://… imports into that (empty) PostgreSQL database instead of a SQLite file,
# e.g. scripts/with-postgres.sh sh -c 'DB_URL=$JICENG_TEST_PG_URL bench/ingest/run.sh BIN 5000'.
set -euo pipefail
bin=$(realpath "$1")
residents=${2:-50000}
counties=${COUNTIES:-1}
work=${3:-$(mktemp -d /tmp/jiceng-ingest-bench.XXXXXX)}
mkdir -p "$work"
cd "$work"
rm -rf gen bench.db bench.db-wal bench.db-shm gen.db gen.db-wal gen.db-shm

now() { date +%s.%N; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo)"
echo "binary: $bin ($("$bin" version))"
echo "command: COUNTIES=$counties bench/ingest/run.sh $1 $residents"

t0=$(now)
"$bin" generate --out gen --format ndjson --residents "$residents" --counties "$counties" --seed 42 \
  --quiet >gen.log
t1=$(now)
resources=$(awk '$1 == "resources" {print $2}' gen/summary.txt)
institutions=$(awk '$1 == "Organization" {print $2}' gen/summary.txt)
db=${DB_URL:-bench.db}
target="SQLite, durable"
[ -n "${DB_URL:-}" ] && target="PostgreSQL"
echo "import into: $db [load average $(cut -d' ' -f1-3 /proc/loadavg)]"
/usr/bin/time -v "$bin" import --db "$db" --errors import-errors.txt gen 2>import.err | tee import.log
t2=$(now)
echo "after import: load average $(cut -d' ' -f1-3 /proc/loadavg)"
grep -E '^import stages|Maximum resident|Percent of CPU' import.err || true
if [ -n "${DB_URL:-}" ]; then
  db_bytes=$(psql "$DB_URL" -Atc "SELECT pg_database_size(current_database())")
else
  db_bytes=$(( $(stat -c %s bench.db) + $(stat -c %s bench.db-wal 2>/dev/null || echo 0) ))
fi

awk -v r="$resources" -v n="$residents" -v c="$counties" -v o="$institutions" -v g="$(echo "$t1 - $t0" | bc)" -v i="$(echo "$t2 - $t1" | bc)" -v b="$db_bytes" -v t="$target" 'BEGIN {
  printf "residents %d in %d counties (%d Organizations), resources %d (%.1f per resident)\n", n, c, o, r, r / n
  printf "generate (NDJSON files): %.1f s, %.0f resources/s\n", g, r / g
  printf "import (%s): %.1f s, %.0f resources/s\n", t, i, r / i
  printf "total: %.1f s\n", g + i
  printf "database: %.1f MB, %.0f bytes per resident, %.0f bytes per resource\n", b / 1e6, b / n, b / r
}'

if [ "${GENERATE_DB:-0}" = 1 ]; then
  t3=$(now)
  "$bin" generate --db gen.db --residents "$residents" --counties "$counties" --seed 42 --quiet
  t4=$(now)
  echo "generate --db: $(echo "$t4 - $t3" | bc) s"
fi
echo "work dir: $work"
