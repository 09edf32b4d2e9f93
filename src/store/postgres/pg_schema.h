// store/postgres/pg_schema: the ordered schema migrations of the PostgreSQL backend and the
// machinery that applies them at open. Internal to store/postgres and its tests.
#pragma once

#include <span>

#include "base/result.h"

namespace jiceng::store::postgres {

class PgConnection;

// One schema step. Versions are 1, 2, 3 … without gaps; a released migration is never edited,
// only followed by a new one. Numbering is independent of the SQLite backend's.
struct Migration {
  int version;
  const char* name;
  const char* sql;  // one or more statements, run inside one transaction
};

std::span<const Migration> Migrations();

// Brings the schema of the database behind `conn` up to `migrations`. Holds a session advisory
// lock while doing so, so several processes starting together wait for the first one and then
// find nothing left to do. Refuses a database whose schema is newer, or that holds foreign
// tables without our schema_migrations table.
Status ApplyMigrations(PgConnection& conn, std::span<const Migration> migrations);

// Advisory lock keys (pg_advisory_lock(kLockSpace, key)): 'JCNG' marks them as ours.
inline constexpr int kLockSpace = 0x4A434E47;
inline constexpr int kMigrationLock = 1;
inline constexpr int kWriteLock = 2;

}  // namespace jiceng::store::postgres
