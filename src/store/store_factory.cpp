#include "store/store_factory.h"

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace jiceng::store {

bool IsPostgresUrl(const std::string& db) {
  return db.starts_with("postgresql://") || db.starts_with("postgres://");
}

Result<std::unique_ptr<IStore>> OpenStore(const std::string& db, const StoreOptions& options) {
  if (IsPostgresUrl(db)) {
    PostgresOptions pg;
    pg.read_connections = options.read_connections;
    pg.read_pipelines = options.pg_read_pipelines;
    pg.read_url = options.pg_read_url;
    pg.write_lock_timeout_ms = options.pg_write_lock_timeout_ms;
    pg.begin_attempts = options.pg_write_begin_attempts;
    return OpenPostgresStore(db, pg);
  }
  if (!options.pg_read_url.empty()) {
    return Invalid("a separate read database (server.db_read_url) needs a PostgreSQL db");
  }
  SqliteOptions lite;
  lite.read_connections = options.read_connections;
  if (options.sqlite_cache_kib > 0) lite.cache_kib = options.sqlite_cache_kib;
  if (options.sqlite_bulk_build_rows > 0) lite.bulk_build_rows = options.sqlite_bulk_build_rows;
  if (options.sqlite_wal_autocheckpoint_pages > 0) {
    lite.wal_autocheckpoint_pages = options.sqlite_wal_autocheckpoint_pages;
  }
  if (options.sqlite_wal_restart_pages > 0)
    lite.wal_restart_pages = options.sqlite_wal_restart_pages;
  return OpenSqliteStore(db, lite);
}

}  // namespace jiceng::store
