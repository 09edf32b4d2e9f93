// store/store_factory: opens the backend a database string names, so the cli (and config) take
// one `db` setting for both backends.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::store {

// True when `db` is a PostgreSQL URL (postgresql://… or postgres://…).
bool IsPostgresUrl(const std::string& db);

struct StoreOptions {
  int read_connections = 8;  // pooled read connections (both backends)
};

// A PostgreSQL URL opens the PostgreSQL backend; anything else is the path of an SQLite file.
Result<std::unique_ptr<IStore>> OpenStore(const std::string& db, const StoreOptions& options = {});

}  // namespace jiceng::store
