#!/usr/bin/env bash
# Searches over a generated county (issue 3): each search of bench/search/county_queries.txt five
# times in a row over HTTP with curl, against a database made by `jiceng generate` (e.g. the
# 200,000-resident county: `jiceng generate --db county.db --residents 200000 --seed 42`). Kept ids
# are turned off, so every page runs its search. Prints, per search, the median ms of the last
# four requests (the first reads what the file cache lacks), the matches on the page, and the
# search.
#
#   bench/search/county_bench.sh BUILD_DIR DB [QUERIES_FILE]
#
# Builds nothing: needs BUILD_DIR/src/cli/jiceng, curl, jq and python3. Nothing is written.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,11p' "$0"; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
db=$2
queries=${3:-$here/county_queries.txt}
bin=$build/src/cli/jiceng
# shellcheck source=bench/search/serve_without_kept_ids.sh
. "$here/serve_without_kept_ids.sh"
serve_without_kept_ids "$bin" "$db" "${PORT:-18097}"
out=$(mktemp)
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); binary: $("$bin" version 2>&1 | head -1)"
printf '%9s  %5s  %s\n' "median_ms" "page" "search"
grep -v '^#' "$queries" | while read -r q; do
  [ -n "$q" ] || continue
  # Percent-encode each value (the list is written decoded, with Chinese names and $ in values).
  target=$(python3 -c 'import sys, urllib.parse
q = sys.argv[1]; path, _, query = q.partition("?")
print(path + "?" + "&".join(k + "=" + urllib.parse.quote(v, safe=",:") for k, _, v in (p.partition("=") for p in query.split("&"))))' "$q")
  times=()
  for _ in 1 2 3 4 5; do times+=("$(curl -s -o "$out" -w '%{time_total}' "$base/$target")"); done
  page=$(jq '[.entry[]? | select(.search.mode == "match")] | length' "$out")
  median=$(printf '%s\n' "${times[@]:1}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f", (a[2] + a[3]) / 2 * 1000 }')
  printf '%9s  %5s  %s\n' "$median" "$page" "$q"
done
rm -f "$out"
