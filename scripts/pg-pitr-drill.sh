#!/usr/bin/env bash
# Point-in-time recovery of a PostgreSQL database behind jiceng (issue: backups with
# pg_basebackup + WAL archiving, restore drill), end to end on this machine. A throwaway
# PostgreSQL 15 primary of its own (loopback only, as an unprivileged user when run as root)
# archives its WAL with a real archive_command into a local directory; pg_basebackup takes a base
# backup (tar, gzip) before jiceng has created its tables. `jiceng serve` then writes Patients over
# HTTP (creates, updates, a delete), the drill notes a recovery target time, and jiceng writes
# more (new Patients, further versions of the first ones, another delete). The data directory is
# then destroyed; the base backup is unpacked and started with restore_command and
# recovery_target_time, replaying the archived WAL (jiceng's migrations included) and promoting at
# the target. A new `jiceng serve` on the recovered database must show exactly the state at the
# target: every resource written before it at its version then (history, search, 410 for the one
# deleted before it), none written after it (404, absent from search and history), and a new write
# must work. Exits non-zero on any mismatch; prints how long the base backup, the restore (unpack)
# and the replay took.
#
# Usage: scripts/pg-pitr-drill.sh [BUILD_DIR]     (JICENG=/path/to/jiceng overrides the binary)
# PostgreSQL 15 comes from scripts/with-postgres.sh (it installs it and creates the jiceng-pg
# user when missing; its own cluster is not used). KEEP=1 prints the PostgreSQL logs at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
pg_bin=${JICENG_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}
if [ -z "${JICENG_TEST_PG_BIN:-}" ] && { [ ! -x "$pg_bin/initdb" ] ||
  { [ "$(id -u)" -eq 0 ] && ! id -u jiceng-pg >/dev/null 2>&1; }; }; then
  exec scripts/with-postgres.sh "$0" "$@"
fi
build=${1:-build}
bin=${JICENG:-$build/src/cli/jiceng}
[ -x "$bin" ] || { echo "no jiceng binary at $bin" >&2; exit 2; }
bin=$(realpath "$bin")

work=$(mktemp -d /tmp/jiceng-pitr.XXXXXX)
chmod 0755 "$work"
# shellcheck source=scripts/drill-common.sh
. scripts/drill-common.sh
[ "$(id -u)" -eq 0 ] && chown jiceng-pg "$work"
data=$work/data archive=$work/archive backup=$work/basebackup
cleanup() {
  stop_server
  as_pg "$pg_bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] && cat "$work"/pg-*.log >&2
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="postgresql://postgres@127.0.0.1:$port/jiceng_pitr"
sql() { psql "$url" -XAtqc "$1"; }
pg_start() {  # pg_start LOG: starts the cluster in $data on $port, loopback and its own socket only
  as_pg "$pg_bin/pg_ctl" -D "$data" -l "$work/$1" -w -t 120 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$work" start \
    >/dev/null || { cat "$work/$1" >&2; fail "PostgreSQL did not start"; }
}
serve() {  # starts jiceng on the database; sets $http
  "$bin" serve --db "$url" --listen 127.0.0.1:0 --no-access-log >"$work/server.out" 2>&1 &
  server_pid=$!
  http=""
  for _ in $(seq 300); do
    http=$(sed -n 's/^jiceng: listening on \(http:\/\/127.0.0.1:[0-9]*\)$/\1/p' "$work/server.out")
    [ -n "$http" ] && return
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/server.out" >&2
  fail "jiceng did not start"
}

# The primary, archiving every completed WAL segment. The archive_command never overwrites a
# segment already archived: the same content counts as archived (cut off after its rename, a
# retry must not fail for good), a different one fails (a non-zero exit makes PostgreSQL keep the
# segment and retry), and it copies to a temporary name, fsyncs, and renames: the manual's plain `cp %p DIR/%f` leaves a
# truncated segment under the final name when it is cut off (seen here: the archiver killed
# mid-copy by an immediate shutdown), which the restore then refuses ("has wrong size") and which
# `test ! -f` would never replace.
as_pg mkdir "$archive"
as_pg "$pg_bin/initdb" --no-sync -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
  >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }
as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF
# pg-pitr-drill
wal_level = replica
archive_mode = on
archive_command = 'if test -f $archive/%f; then cmp -s %p $archive/%f; else cp %p $archive/%f.tmp && sync $archive/%f.tmp && mv $archive/%f.tmp $archive/%f && sync $archive; fi'
EOF
pg_start pg-primary.log
"$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres jiceng_pitr

# The base backup: tar format, compressed, with the WAL needed to make it consistent; it waits
# until that WAL is archived too.
t0=$(now_ms)
as_pg "$pg_bin/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -D "$backup" -Ft -z -X stream \
  -c fast
basebackup_ms=$(($(now_ms) - t0))
backup_size=$(du -sh "$backup" | cut -f1)

# jiceng creates its tables (migrations) after the backup: the restore replays them from WAL.
serve
cat >"$work/client.py" <<'EOF'
import json, sys
import drill_http
base, step, state_file = sys.argv[1] + "/fhir", sys.argv[2], sys.argv[3]

def call(method, path, body=None, headers=None):
    status, answer, _ = drill_http.call(base, method, path, body, headers)
    return status, answer

def expect(cond, what):
    if not cond:
        print("FAIL: " + what, file=sys.stderr)
        sys.exit(1)

def write(state, tag, creates, updates, delete):
    """Creates Patients, then updates some of the known ones and deletes one; records every
    version written (id -> list of [versionId, lastUpdated] or None for a delete)."""
    for i in range(creates):
        status, p = call("POST", "/Patient", {"resourceType": "Patient",
                                              "name": [{"family": f"Pitr{tag}", "given": [str(i)]}]})
        expect(status == 201, f"create {tag}{i}: {status} {p}")
        state["versions"][p["id"]] = [[p["meta"]["versionId"], p["meta"]["lastUpdated"]]]
        state["family"][p["id"]] = f"Pitr{tag}"
    for pid in updates:
        status, cur = call("GET", "/Patient/" + pid)
        expect(status == 200, f"read {pid}: {status}")
        cur["gender"] = "female" if cur.get("gender") != "female" else "male"
        status, p = call("PUT", "/Patient/" + pid, cur)
        expect(status == 200, f"update {pid}: {status} {p}")
        state["versions"][pid].append([p["meta"]["versionId"], p["meta"]["lastUpdated"]])
    if delete:
        status, _ = call("DELETE", "/Patient/" + delete)
        expect(status in (200, 204), f"delete {delete}: {status}")
        state["versions"][delete].append(None)

if step == "before":
    state = {"versions": {}, "family": {}}
    write(state, "A", 12, [], None)
    ids = list(state["versions"])
    write(state, "A", 0, ids[:6] + ids[:3], ids[11])  # versions 2 and 3, and a delete
    json.dump(state, open(state_file, "w"))
    print(f"before the target: {len(ids)} Patients created, 9 updates, 1 delete")
elif step == "after":
    state = json.load(open(state_file))
    before = {pid: list(v) for pid, v in state["versions"].items()}
    first = list(state["versions"])
    write(state, "B", 8, [], None)
    write(state, "A", 0, first[:4] + first[6:9], first[10])
    state["before"] = before
    json.dump(state, open(state_file, "w"))
    print(f"after the target: 8 Patients created, 7 updates of earlier ones, 1 delete")
elif step == "verify":
    state = json.load(open(state_file))
    before = state["before"]
    later = [pid for pid in state["versions"] if pid not in before]
    checked = 0
    for pid, versions in before.items():
        status, p = call("GET", "/Patient/" + pid)
        if versions[-1] is None:
            expect(status == 410, f"{pid} was deleted before the target: {status}")
        else:
            expect(status == 200, f"{pid} written before the target: {status}")
            vid, updated = versions[-1]
            expect(p["meta"]["versionId"] == vid and p["meta"]["lastUpdated"] == updated,
                   f"{pid}: version {p['meta']} instead of {vid} at {updated}")
        status, h = call("GET", f"/Patient/{pid}/_history")
        expect(status == 200, f"history of {pid}: {status}")
        got = sorted((int(e["response"]["etag"][3:-1]), e["request"]["method"] == "DELETE",
                      e["response"]["lastModified"]) for e in h.get("entry", []))
        want = [(i + 1, v is None, v[1] if v else None) for i, v in enumerate(versions)]
        expect([g[:2] for g in got] == [w[:2] for w in want] and
               all(w[2] is None or g[2] == w[2] for g, w in zip(got, want)),
               f"history of {pid}: {got}, expected {want}")
        checked += 1
    for pid in later:
        status, _ = call("GET", "/Patient/" + pid)
        expect(status == 404, f"{pid} was created after the target: {status}")
        status, h = call("GET", f"/Patient/{pid}/_history")
        expect(status == 404 or not h.get("entry"), f"{pid} has history after restore: {status}")
    live_before = sum(1 for v in before.values() if v[-1] is not None)
    status, found = call("GET", "/Patient?family=PitrA&_count=100")
    expect(status == 200 and found.get("total") == live_before,
           f"search PitrA: total {found.get('total')}, expected {live_before}")
    status, found = call("GET", "/Patient?family=PitrB&_count=100")
    expect(status == 200 and found.get("total") == 0,
           f"search PitrB: total {found.get('total')}, expected 0")
    status, h = call("GET", "/Patient/_history?_count=1000")
    n = sum(len(v) for v in before.values())
    expect(status == 200 and len(h.get("entry", [])) == n,
           f"type history: {len(h.get('entry', []))} entries, expected {n}")
    status, p = call("POST", "/Patient", {"resourceType": "Patient", "name": [{"family": "PitrC"}]})
    expect(status == 201, f"a write after the restore: {status} {p}")
    print(f"after the restore: {checked} Patients written before the target as they were then "
          f"(reads, {n} history entries, search), {len(later)} created after it absent, "
          f"a new write works")
EOF
PYTHONPATH=scripts python3 "$work/client.py" "$http" before "$work/state.json"
# The target: after every write above was acknowledged (committed), before any below.
sleep 0.2
target=$(sql "SELECT clock_timestamp()")
sleep 0.2
PYTHONPATH=scripts python3 "$work/client.py" "$http" after "$work/state.json"
stop_server
# Everything written is in WAL segments the archiver has copied: switch to a new segment and wait
# for the archiver (in production archive_timeout bounds what a lost primary takes with it).
last=$(sql "SELECT pg_walfile_name(pg_switch_wal())")
archived="SELECT coalesce(last_archived_wal >= '$last', false) FROM pg_stat_archiver"
for _ in $(seq 300); do
  [ "$(sql "$archived")" = t ] && break
  sleep 0.1
done
[ "$(sql "$archived")" = t ] || fail "WAL segment $last was not archived"
segments=$(find "$archive" -name '0*' ! -name '*.*' | wc -l)

# The disaster: the primary stops dead and its data directory is gone.
as_pg "$pg_bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null
rm -rf "$data"

# The restore: unpack the base backup, point restore_command at the archive, stop at the target.
t0=$(now_ms)
as_pg mkdir -m 0700 "$data"
as_pg tar -xzf "$backup/base.tar.gz" -C "$data"
as_pg tar -xzf "$backup/pg_wal.tar.gz" -C "$data/pg_wal"
as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF
restore_command = 'cp $archive/%f %p'
recovery_target_time = '$target'
recovery_target_action = 'promote'
EOF
as_pg touch "$data/recovery.signal"
restore_ms=$(($(now_ms) - t0))
t0=$(now_ms)
pg_start pg-restored.log
for _ in $(seq 1200); do
  [ "$(sql 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && break
  sleep 0.05
done
[ "$(sql 'SELECT pg_is_in_recovery()')" = f ] || fail "the restored cluster did not finish recovery"
replay_ms=$(($(now_ms) - t0))
grep -q "recovery stopping before commit" "$work/pg-restored.log" ||
  fail "recovery did not stop at the target: $(grep -i recovery "$work/pg-restored.log")"
timeline=$(sql "SELECT timeline_id FROM pg_control_checkpoint()")
redo_s=$(sed -n 's/.*redo done at .* elapsed: \([0-9.]*\) s.*/\1/p' "$work/pg-restored.log")

serve
PYTHONPATH=scripts python3 "$work/client.py" "$http" verify "$work/state.json"
stop_server
echo "timings: base backup ${basebackup_ms} ms ($backup_size), restore (unpack) ${restore_ms} ms," \
  "start, replay of $segments archived WAL segments to $target and promotion ${replay_ms} ms" \
  "(redo itself ${redo_s:-?} s; now on timeline $timeline)"
echo "PASS"
