#!/usr/bin/env bash
# `make bench`: the benchmarks of docs/benchmarks.md at sizes that finish in about 15 minutes on
# the 2-core reference machine, one after another (they measure throughput, so never two at
# once). Each script prints its own table and the load average beside it; copy the figures into
# docs/benchmarks.md with the machine and the commit. The scale runs (2,000,000 resources for
# search, 1,000,000 residents for the import) are the same scripts with larger sizes, named in
# docs/benchmarks.md.
#
#   bench/run_all.sh [BUILD_DIR]     (default build; builds the benchmark targets first)
# Environment: SKIP_PG=1 leaves out the PostgreSQL benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}

cmake --build "$BUILD" --target jiceng jiceng-loadgen extract_bench json_bench store_bench

echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== JSON parse and serialise (bench/json)"
"$BUILD/bench/json/json_bench"
echo "== search index extraction per resource, Synthea sample (bench/extract)"
"$BUILD/bench/extract/extract_bench" --runs 5 ../shared/data/synthea-r4
echo "== SQLite store writes (bench/store)"
"$BUILD/bench/store/store_bench" --dir "${TMPDIR:-/tmp}/jiceng-store-bench"
echo "== REST over HTTP: read by id, create, transaction Bundles (issue 2)"
DURATION=${DURATION:-6} REPEAT=${REPEAT:-2} bench/http_bench.sh "$BUILD"
echo "== generate and import, 10,000 residents (issue 5)"
bench/ingest/run.sh "$BUILD/src/cli/jiceng" 10000
echo "== search over HTTP, 100,000 resources (issue 3)"
bench/search/http_search_bench.sh "$BUILD" 100000
if [[ "${SKIP_PG:-}" != 1 ]]; then
  echo "== PostgreSQL: pgbench baseline, read by id, Bundles (issue 4)"
  bench/pg_bench.sh "$BUILD"
fi
