// store/postgres: the PostgreSQL backend of the storage port (store/store.h).
//
// Reads run on a pool of connections, each read transaction REPEATABLE READ READ ONLY (one
// snapshot for the whole transaction), in parallel with each other and with writes.
//
// Writes: the port promises serial semantics — a unit of work sees every unit submitted before
// it, and the conformance suite checks exactly that (a unit started while another is still
// running must see that other's writes). So units of work are serialized, in this process by
// one writer thread and across processes by a transaction-scoped advisory lock taken at BEGIN.
// Like the SQLite backend, the writer group-commits: units queued while the previous group
// committed run each in its own savepoint of one transaction, and one COMMIT (one WAL flush)
// acknowledges them all.
//
// A unit's Puts are queued and written together (pg_put.h): when the unit ends, before any of
// its reads that could see them, or when the queue is full; a Bundle of 300 resources costs a
// few set-at-a-time statements, not 300 round trips.
//
// Concurrency between processes: an If-Match style read-check-write has exactly one winner,
// because the second writer only reads after the first has committed. Versions cannot fork even
// if something writes without the lock: Put's upsert refuses a version that is not newer than
// the stored one (kConflict), and resource_history has a unique (rid, version) index.
//
// Retries: serial writers of jiceng cannot deadlock or fail serialization with each other, so a
// failure inside a unit of work comes from outside (a session that ignores the lock, an operator)
// and is reported, never retried: a unit of work is not re-runnable (it may move its inputs or
// act outside the database). Deadlocks and serialization failures are kUnavailable (503), a
// unique violation kConflict (409). What is retried is the step before any unit runs: opening
// the transaction and taking the lock, up to begin_attempts times, reconnecting a connection
// the server dropped (restart, failover). A lock wait longer than write_lock_timeout_ms is a 503
// at once.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::store {

struct PostgresOptions {
  // Read connections in the pool (opened lazily). The writer has one more of its own.
  int read_connections = 8;
  // Where the read pool connects (reads by id, searches, history, read transactions): empty for
  // the database written to; else, e.g., a streaming replica, or a multi-host URL with
  // target_session_attrs=prefer-standby. Writes and everything a unit of work reads stay on the
  // primary. A replica serves what it has replayed: see docs/operations.md for read-your-writes.
  std::string read_url;
  // Reads by id (ReadCurrent) on the database at once; more concurrent ones queue and go
  // together in the next pipeline (read_combiner.h), up to read_pipeline_max per pipeline.
  // Default 2: the cores of the machine these figures were measured on (docs/benchmarks.md,
  // issue 4); more leaders mean smaller pipelines and more backend wake-ups per read.
  int read_pipelines = 2;
  int read_pipeline_max = 32;
  // How long BeginRead waits for a free read connection before failing with 503.
  int pool_wait_ms = 5000;
  // Most units of work committed by one COMMIT.
  int max_group = 256;
  // How long the writer may wait for the previous group's callers to resubmit (0: never).
  int group_commit_window_us = 200;
  // Longest wait for a lock inside a write transaction: the cross-process write lock (held by
  // another process for the length of its group) and, rarely, a row lock held by a session
  // outside jiceng. Beyond it the group fails with kUnavailable (0: wait forever).
  int write_lock_timeout_ms = 30000;
  // Attempts at opening a write transaction (reconnecting in between) before the group fails.
  int begin_attempts = 4;
  // A flush of queued Puts (pg_put.h) writes a table's rows of new resources by
  // COPY … FROM STDIN (FORMAT binary) when it has at least this many of them, else by
  // INSERT … SELECT FROM unnest() in the flush's pipeline (a COPY costs a round trip of its own).
  // 0 or less: never by COPY. 128: where COPY stopped losing in wall time in
  // bench/store/pg_flush_bench (load 1.3: COPY/unnest 1.06–1.11 at 64 rows per table, 0.99–1.00
  // at 128; backend CPU 0.91–0.94 at 128), docs/benchmarks.md "COPY for bulk writes".
  int copy_min_rows = 128;
};

// Connects to `url` (postgresql://user@host:port/db?… or any libpq connection string) and
// brings the schema up to date (once, whatever the number of processes opening it together).
Result<std::unique_ptr<IStore>> OpenPostgresStore(const std::string& url,
                                                  const PostgresOptions& options = {});

}  // namespace jiceng::store
