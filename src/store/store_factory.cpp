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
    return OpenPostgresStore(db, pg);
  }
  SqliteOptions lite;
  lite.read_connections = options.read_connections;
  return OpenSqliteStore(db, lite);
}

}  // namespace jiceng::store
