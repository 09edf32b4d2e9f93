#!/usr/bin/env bash
# Demo: loads the sample data into the demo database when it is absent, then serves it.
set -euo pipefail
bin=$1 db=$2 port=$3
cd "$(dirname "$0")/.."
mkdir -p "$(dirname "$db")"
if [ ! -f "$db" ]; then
  echo "demo: loading the Synthea sample (../shared/data/synthea-r4) into $db"
  "$bin" import --db "$db" ../shared/data/synthea-r4
fi
cat <<MSG

  Jiceng is starting on http://localhost:$port
  Try first:
    curl http://localhost:$port/fhir/metadata
    curl 'http://localhost:$port/fhir/Patient?_count=5'
    curl http://localhost:$port/fhir/_history?_count=5
    curl http://localhost:$port/metrics
  Stop with Ctrl-C.

MSG
exec "$bin" serve --db "$db" --listen "127.0.0.1:$port"
