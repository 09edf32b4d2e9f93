# Sourced by the search benchmarks that run every page's search (paging_bench.sh,
# county_bench.sh): starts BIN serve on DB at 127.0.0.1:PORT with kept ids off and no access log,
# stops it on exit, and waits until it answers. Sets `base` (the FHIR base URL).
#   serve_without_kept_ids BIN DB PORT
serve_without_kept_ids() {
  local bin=$1 db=$2 port=$3
  serve_conf=$(mktemp)
  printf '[fhir]\nsearch_results_max_ids = 0\n[log]\naccess_log = false\n' > "$serve_conf"
  "$bin" serve --db "$db" --listen "127.0.0.1:$port" --config "$serve_conf" > /dev/null 2>&1 &
  serve_pid=$!
  trap 'kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; rm -f "$serve_conf"' EXIT
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.1; done
  base="http://127.0.0.1:$port/fhir"
}
