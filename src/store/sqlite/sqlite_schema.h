// store/sqlite/sqlite_schema: the ordered schema migrations of the SQLite backend and the
// machinery that applies them at open. Internal to store/sqlite and its tests (no sqlite3.h).
#pragma once

#include <memory>
#include <span>
#include <string>

#include "base/result.h"
#include "store/sqlite/sqlite_store.h"
#include "store/store.h"

namespace jiceng::store::sqlite {

class Connection;
class Stmt;

// A resource version from a row whose first columns are, in order, "type, id, version,
// last_updated_us, deleted, json" (both resource tables have them).
ResourceVersion RowToVersion(const Stmt& s);

// One schema step. Versions are 1, 2, 3 … without gaps; a released migration is never edited,
// only followed by a new one (databases in the field have already run it).
struct Migration {
  int version;
  const char* name;
  const char* sql;  // one or more statements, run inside the open transaction
  // Then, in the same transaction, what SQL alone cannot do (e.g. re-encoding rows); optional.
  Status (*then)(Connection& conn) = nullptr;
};

// The migrations this binary knows, in order.
std::span<const Migration> Migrations();

// Brings the schema of `conn` (a write connection, no transaction open) up to `migrations` in one
// transaction. Refuses a database whose schema is newer than `migrations`, or that is not ours.
Status ApplyMigrations(Connection& conn, std::span<const Migration> migrations);

// OpenSqliteStore with an explicit migration list: lets tests simulate an older or a newer
// binary against the same database file.
Result<std::unique_ptr<IStore>> OpenSqliteStoreWithMigrations(const std::string& path,
                                                              const SqliteOptions& options,
                                                              std::span<const Migration> migrations);

}  // namespace jiceng::store::sqlite
