// store/store_factory: opens the backend a database string names, so the cli (and config) take
// one `db` setting for both backends.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::store {

// True when `db` is a PostgreSQL URL (postgresql://… or postgres://…).
bool IsPostgresUrl(const std::string& db);

struct StoreOptions {
  int read_connections = 8;   // pooled read connections (both backends)
  int pg_read_pipelines = 2;  // PostgreSQL: see PostgresOptions::read_pipelines
  std::string pg_read_url;    // PostgreSQL: see PostgresOptions::read_url (empty: `db`)
  int pg_write_lock_timeout_ms = 30000;  // PostgreSQL: see PostgresOptions
  int pg_write_begin_attempts = 4;       // PostgreSQL: PostgresOptions::begin_attempts
  // SQLite only, for bulk loads (`import`, `generate --db`); 0 keeps SqliteOptions' default.
  int64_t sqlite_cache_kib = 0;             // the writer's page cache
  int sqlite_wal_autocheckpoint_pages = 0;  // WAL growth between background checkpoints
  int sqlite_wal_restart_pages = 0;         // WAL size past which the writer restarts it
  int64_t sqlite_bulk_build_rows = 0;       // index rows a bulk load holds per sorted run
};

// A PostgreSQL URL opens the PostgreSQL backend; anything else is the path of an SQLite file.
Result<std::unique_ptr<IStore>> OpenStore(const std::string& db, const StoreOptions& options = {});

}  // namespace jiceng::store
