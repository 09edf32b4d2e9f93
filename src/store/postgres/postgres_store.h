// store/postgres: the PostgreSQL backend of the storage port (store/store.h).
//
// Reads run on a pool of connections, each read transaction REPEATABLE READ READ ONLY (one
// snapshot for the whole transaction), in parallel with each other and with writes.
//
// Writes: the port promises serial semantics — a unit of work sees every unit submitted before
// it, and the conformance suite checks exactly that (a unit started while another is still
// running must see that other's writes). So units of work are serialized, in this process by
// one writer thread and across processes by a transaction-scoped advisory lock taken at BEGIN.
// Serial writes cannot deadlock or fail serialization, so nothing is ever retried behind the
// caller's back (a unit of work may have side effects outside the database). Like the SQLite
// backend, the writer group-commits: units queued while the previous group committed run each
// in its own savepoint of one transaction, and one COMMIT (one WAL flush) acknowledges them all.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::store {

struct PostgresOptions {
  // Read connections in the pool (opened lazily). The writer has one more of its own.
  int read_connections = 8;
  // How long BeginRead waits for a free read connection before failing with 503.
  int pool_wait_ms = 5000;
  // Most units of work committed by one COMMIT.
  int max_group = 256;
  // How long the writer may wait for the previous group's callers to resubmit (0: never).
  int group_commit_window_us = 200;
};

// Connects to `url` (postgresql://user@host:port/db?… or any libpq connection string) and
// brings the schema up to date (once, whatever the number of processes opening it together).
Result<std::unique_ptr<IStore>> OpenPostgresStore(const std::string& url,
                                                  const PostgresOptions& options = {});

}  // namespace jiceng::store
