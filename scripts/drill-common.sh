# Sourced by the PostgreSQL drills (pg-replica-drill.sh, pg-pitr-drill.sh): what both need.
#
# as_pg CMD…: runs CMD as the owner of the throwaway clusters (the unprivileged jiceng-pg when
# run as root, as scripts/with-postgres.sh does: initdb and postgres refuse root).
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u jiceng-pg -- "$@"; else "$@"; fi; }

# The jiceng server a drill started (its pid in server_pid), stopped and waited for.
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
