#!/usr/bin/env bash
# Demo (`make demo`): scripts/demo.sh BIN DB PORT.
# The first time (DB absent) it generates the synthetic county into DB — RESIDENTS residents
# (default 50,000), seed SEED (default 42) — and loads the Synthea sample beside it; then it
# prints what to try and serves DB on 127.0.0.1:PORT.
set -euo pipefail
bin=$1 db=$2 port=$3
residents=${RESIDENTS:-50000}
seed=${SEED:-42}
cd "$(dirname "$0")/.."
mkdir -p "$(dirname "$db")"

if [ ! -f "$db" ]; then
  # Built under another name and renamed at the end, so an interrupted first run never leaves
  # a half-loaded database that the next run would serve.
  partial="$db.partial"
  rm -f "$partial" "$partial-wal" "$partial-shm" "$partial.duplicates.csv"
  echo "demo: generating the demo county ($residents residents, seed $seed) into $db"
  "$bin" generate --db "$partial" --residents "$residents" --seed "$seed" \
    --truth "$db.duplicates.csv"
  synthea=../shared/data/synthea-r4
  if [ -d "$synthea" ]; then
    echo "demo: loading the Synthea sample ($synthea)"
    # Rejections are listed in $db.import-errors.txt; they do not stop the demo.
    "$bin" import --db "$partial" --errors "$db.import-errors.txt" "$synthea" ||
      echo "demo: some Synthea entries were rejected (see $db.import-errors.txt)"
  fi
  mv "$partial" "$db"
  rm -f "$partial-wal" "$partial-shm"
fi

base="http://127.0.0.1:$port"
cat <<MSG

  Jiceng (基层) is starting on $base  (database: $db)
  Try first:
    curl $base/fhir/metadata
    curl '$base/fhir/Patient?_count=5'
    curl '$base/fhir/Patient?name=%E7%8E%8B&_count=5'           # residents named 王 (search)
    curl '$base/fhir/Observation?code=http://loinc.org|85354-9&_sort=-date&_count=5'   # BP readings
    curl $base/fhir/Organization/org-330421-rmyy        # 嘉善县人民医院, the county hospital
    curl $base/fhir/Organization/org-330421-wjw         # 嘉善县卫生健康局, the health commission
    curl '$base/fhir/_history?_count=5'
    curl $base/metrics
  Stop with Ctrl-C. Start again from scratch: rm $db; make demo

MSG
exec "$bin" serve --db "$db" --listen "127.0.0.1:$port"
