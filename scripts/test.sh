#!/usr/bin/env bash
# The test command (make test; .ci/run): build once with optimisation and run every test, then
# build once with AddressSanitizer + UndefinedBehaviorSanitizer and run the unit tests and the
# integration tests labelled "asan" (a representative part: the REST cases and the crash test).
# Each ctest runs under scripts/with-postgres.sh: a throwaway PostgreSQL 15 cluster is up and
# JICENG_TEST_PG_URL names it, so the PostgreSQL backend runs the same suites (never skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
start=$(date +%s)
jobs=$(nproc)

echo "== build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"

echo "== tests (optimised build)"
./scripts/with-postgres.sh ctest --test-dir build --output-on-failure -j "$jobs" --timeout 900

echo "== build (ASan + UBSan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DJICENG_SANITIZE=ON -DJICENG_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs"

echo "== tests (ASan + UBSan: unit tests and the integration tests labelled asan)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
./scripts/with-postgres.sh ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 1800 -L 'unit|asan'

echo "== test command finished in $(( $(date +%s) - start )) s"
