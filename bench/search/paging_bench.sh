#!/usr/bin/env bash
# Deep paging over HTTP (issue 3): one search's pages followed through its next links (each
# starting after the previous page's last entry, `_cursor`) against the same pages asked for by
# offset alone (`_getpagesoffset`, the search re-run and the matches before it skipped). Kept ids
# are turned off so that every page runs the search. Prints, per depth, the ms of the page by
# cursor, of the page before it through its previous link (a backward cursor), and of the same
# page by offset; then the first page's last link (a backward cursor from the end) and, when the
# pages reached the end, the same last page by offset.
#
#   bench/search/paging_bench.sh BUILD_DIR DB 'Type?criteria' [PAGES]      (default 200 pages)
#   e.g. bench/search/paging_bench.sh build county.db 'Observation?code=85354-9&_count=50' 400
#
# Builds nothing: needs BUILD_DIR/src/cli/jiceng. Needs curl and jq. The database is opened
# read-mostly (nothing is written by the requests).
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,12p' "$0"; exit 2; }
build=$(cd "$1" && pwd)
db=$2
query=$3
pages=${4:-200}
bin=$build/src/cli/jiceng
# shellcheck source=bench/search/serve_without_kept_ids.sh
. "$(dirname "$0")/serve_without_kept_ids.sh"
serve_without_kept_ids "$bin" "$db" "${PORT:-18093}"
ms() { curl -s -o "$2" -w '%{time_total}' "$1" | awk '{ printf "%.1f", $1 * 1000 }'; }
page=$(mktemp)
url="$base/$query"
last_link=""
matches=0
printf 'depth(page)  entries  cursor_ms  previous_ms  offset_ms\n'
for n in $(seq 0 "$pages"); do
  t_cursor=$(ms "$url" "$page")
  entries=$(jq '.entry | length' "$page")
  matches=$((matches + entries))
  [ "$n" -gt 0 ] || last_link=$(jq -r '.link[] | select(.relation == "last") | .url' "$page")
  next=$(jq -r '.link[] | select(.relation == "next") | .url' "$page")
  if [ "$n" -gt 0 ] && { [ "$n" -le 3 ] || [ $((n % 50)) -eq 0 ] || [ -z "$next" ]; }; then
    # The same page by offset: the link without its cursor.
    by_offset=$(printf '%s' "$url" | sed -E 's/[&?]_cursor=[^&]*//')
    t_offset=$(ms "$by_offset" /dev/null)
    previous=$(jq -r '.link[] | select(.relation == "previous") | .url' "$page")
    t_previous=$(ms "$previous" /dev/null)
    printf '%11s  %7s  %9s  %11s  %9s\n' "$n" "$entries" "$t_cursor" "$t_previous" "$t_offset"
  fi
  [ -n "$next" ] || break
  url=$next
done
if [ -n "$last_link" ]; then
  t_last=$(ms "$last_link" "$page")
  printf 'last link (from the end): %s ms, %s entries\n' "$t_last" "$(jq '.entry | length' "$page")"
  if [ -z "$next" ]; then
    count=$(printf '%s' "$last_link" | sed -nE 's/.*[&?]_count=([0-9]+).*/\1/p')
    offset=$((matches > count ? matches - count : 0))
    by_offset=$(printf '%s' "$last_link" | sed -E 's/[&?]_cursor=[^&]*//; s/[&?]_getpagesoffset=[0-9]*//')
    printf 'the same page by offset %s: %s ms\n' "$offset" "$(ms "$by_offset&_getpagesoffset=$offset" /dev/null)"
  fi
fi
rm -f "$page"
