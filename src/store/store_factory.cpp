#include "store/store_factory.h"

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace jiceng::store {

bool IsPostgresUrl(const std::string& db) {
  return db.starts_with("postgresql://") || db.starts_with("postgres://");
}

Result<std::unique_ptr<IStore>> OpenStore(const std::string& db) {
  if (IsPostgresUrl(db)) return OpenPostgresStore(db);
  return OpenSqliteStore(db);
}

}  // namespace jiceng::store
