#!/usr/bin/env bash
# Ingest benchmark (issue 5): generate the synthetic county as NDJSON, import it into a fresh
# SQLite database, and report generation resources/s, import resources/s, total time and
# database bytes per resident, with the machine. Figures go to docs/benchmarks.md.
#
#   bench/ingest/run.sh BIN [RESIDENTS] [WORKDIR]     (RESIDENTS default 50000; the issue's
#                                                      scale figure is 1000000)
# GENERATE_DB=1 also times `jiceng generate --db` (generation and load in one process).
set -euo pipefail
bin=$(realpath "$1")
residents=${2:-50000}
work=${3:-$(mktemp -d /tmp/jiceng-ingest-bench.XXXXXX)}
mkdir -p "$work"
cd "$work"
rm -rf gen bench.db bench.db-wal bench.db-shm gen.db gen.db-wal gen.db-shm

now() { date +%s.%N; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo)"
echo "binary: $bin ($("$bin" version))"
echo "command: bench/ingest/run.sh $1 $residents"

t0=$(now)
"$bin" generate --out gen --format ndjson --residents "$residents" --seed 42 --quiet >gen.log
t1=$(now)
resources=$(awk '$1 == "resources" {print $2}' gen/summary.txt)
"$bin" import --db bench.db --errors import-errors.txt gen 2>import.err | tee import.log
t2=$(now)
grep '^import stages' import.err || true
db_bytes=$(( $(stat -c %s bench.db) + $(stat -c %s bench.db-wal 2>/dev/null || echo 0) ))

awk -v r="$resources" -v n="$residents" -v g="$(echo "$t1 - $t0" | bc)" -v i="$(echo "$t2 - $t1" | bc)" -v b="$db_bytes" 'BEGIN {
  printf "residents %d, resources %d (%.1f per resident)\n", n, r, r / n
  printf "generate (NDJSON files): %.1f s, %.0f resources/s\n", g, r / g
  printf "import (SQLite, durable): %.1f s, %.0f resources/s\n", i, r / i
  printf "total: %.1f s\n", g + i
  printf "database: %.1f MB, %.0f bytes per resident, %.0f bytes per resource\n", b / 1e6, b / n, b / r
}'

if [ "${GENERATE_DB:-0}" = 1 ]; then
  t3=$(now)
  "$bin" generate --db gen.db --residents "$residents" --seed 42 --quiet
  t4=$(now)
  echo "generate --db: $(echo "$t4 - $t3" | bc) s"
fi
echo "work dir: $work"
