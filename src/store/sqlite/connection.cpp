#include "store/sqlite/connection.h"

#include <cstring>
#include <string>

#include "store/sqlite/index_keys.h"
#include "store/sqlite/sqlite_index_write.h"
#include "store/sqlite/wal_coalescing_vfs.h"

namespace jiceng::store::sqlite {

Error SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = "sqlite: ";
  msg += what;
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  msg += " (code " + std::to_string(rc) + ")";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error(ErrorCode::kUnavailable, std::move(msg));
    case SQLITE_CONSTRAINT:
      return Error(ErrorCode::kConflict, std::move(msg));
    default:
      return Error(ErrorCode::kInternal, std::move(msg));
  }
}

Result<bool> Stmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, "step");
}

Status Stmt::Run() {
  for (;;) {
    JC_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

namespace {

// Process-wide settings that SQLite accepts only before its first use. MEMSTATUS off: SQLite
// otherwise takes a global mutex around every malloc and free to keep memory statistics that
// nothing here reads (perf put ~2.5 % of an import's writer thread in that lock and unlock).
void ConfigureSqliteOnce() {
  static const bool configured = [] {
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);  // SQLITE_MISUSE if already initialised
    return true;
  }();
  (void)configured;
}

}  // namespace

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path,
                                                     const ConnectionOptions& options) {
  ConfigureSqliteOnce();
  sqlite3* db = nullptr;
  int flags =
      SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE |
      (options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  // The WAL-coalescing VFS (wal_coalescing_vfs.h) when it registered, SQLite's default if not.
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, WalCoalescingVfsName());
  if (rc != SQLITE_OK) {
    Error e = SqliteError(db, rc, "open " + path);
    sqlite3_close_v2(db);  // a handle is returned even on failure
    return e;
  }
  std::unique_ptr<Connection> conn(new Connection(db));
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  // Defensive: never load extensions or run triggers/views on behalf of stored data.
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, nullptr);
  if (int frc = RegisterSortKeyFunction(db); frc != SQLITE_OK) {
    return SqliteError(db, frc, "register jc_sort_key");
  }
  if (int frc = RegisterIndexRowsTable(db); frc != SQLITE_OK) {
    return SqliteError(db, frc, "register jc_rows");
  }
  if (int frc = RegisterPendingRowsTable(db); frc != SQLITE_OK) {
    return SqliteError(db, frc, "register jc_pending");
  }
  // temp_store=FILE: every unit of work but a group's first runs in a SAVEPOINT, whose journal
  // SQLite keeps in memory up to 64 KiB and then hands to the VFS as a temp file, which the
  // WAL-coalescing VFS keeps in one flat buffer (wal_coalescing_vfs.h). SQLite's own unbounded
  // memory journal (temp_store=MEMORY) walks a chunk list from its start, and perf put ~30% of
  // Bundle ingest there (docs/benchmarks.md); a larger spill threshold
  // (SQLITE_CONFIG_STMTJRNL_SPILL) made SQLite 3.40 fail large FTS5 transactions with
  // SQLITE_FULL.
  // foreign_keys stays OFF: the REFERENCES clauses document the schema, but enforcing them cost
  // a lookup plus a statement journal per index-row INSERT; the single writer keeps them true
  // and the store tests check `PRAGMA foreign_key_check` after every kind of write.
  std::string pragmas = "PRAGMA cache_size=-" + std::to_string(options.cache_kib) +
                        "; PRAGMA mmap_size=" + std::to_string(options.mmap_bytes) +
                        "; PRAGMA temp_store=FILE; PRAGMA foreign_keys=OFF;";
  JC_RETURN_IF_ERROR(conn->Exec(pragmas.c_str()));
  return conn;
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  cache_.clear();
  // close_v2 so that a stray unfinalized statement cannot make the close fail and leak the file.
  sqlite3_close_v2(db_);
}

Result<sqlite3_stmt*> Connection::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size() + 1),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "prepare");
  cache_.emplace(sql, stmt);
  return stmt;
}

Status Connection::Exec(const char* sql) {
  // Single statements (BEGIN, COMMIT, SAVEPOINT … on every request) run from the statement
  // cache: preparing them anew cost ~10% of a read-by-id request in a callgrind profile.
  if (std::strchr(sql, ';') == nullptr) {
    auto prepared = Prepare(sql);
    if (prepared.ok()) {
      sqlite3_stmt* stmt = *prepared;
      int rc;
      while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      }
      sqlite3_reset(stmt);
      if (rc != SQLITE_DONE) return SqliteError(db_, rc, sql);
      return Status::Ok();
    }
  }
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);  // errmsg on the handle carries the same text
  if (rc != SQLITE_OK) return SqliteError(db_, rc, sql);
  return Status::Ok();
}

Result<std::optional<int64_t>> Connection::QueryInt(const char* sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, sql);
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
  rc = sqlite3_step(raw);
  if (rc == SQLITE_ROW) {
    if (sqlite3_column_type(raw, 0) == SQLITE_NULL) return std::optional<int64_t>();
    return std::optional<int64_t>(sqlite3_column_int64(raw, 0));
  }
  if (rc == SQLITE_DONE) return std::optional<int64_t>();
  return SqliteError(db_, rc, sql);
}

Result<std::optional<std::string>> Connection::QueryText(const char* sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, sql);
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
  rc = sqlite3_step(raw);
  if (rc == SQLITE_ROW) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(raw, 0));
    if (!p) return std::optional<std::string>();
    return std::optional<std::string>(std::string(p));
  }
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return SqliteError(db_, rc, sql);
}

}  // namespace jiceng::store::sqlite
