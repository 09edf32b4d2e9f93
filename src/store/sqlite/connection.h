// store/sqlite/connection: a thin RAII wrapper over one sqlite3 connection with a per-connection
// cache of prepared statements. Private to store/sqlite (the only place sqlite3.h is included).
//
// A Connection is used by one thread at a time (the writer thread, or whoever holds it from the
// read pool), so it is opened with SQLITE_OPEN_NOMUTEX and does no locking of its own.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.h"

namespace jiceng::store::sqlite {

// An Error from the connection's last failure; `rc` picks the code (busy -> 503, constraint ->
// 409, anything else -> 500).
Error SqliteError(sqlite3* db, int rc, std::string_view what);

// One use of a cached prepared statement: binds, steps, and resets + clears bindings when it
// goes out of scope, so a statement is never left active between uses (an active statement
// would pin the read snapshot and block COMMIT of savepoints).
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  // Text is bound SQLITE_STATIC: the caller keeps it alive until the Stmt is destroyed.
  void BindText(int i, std::string_view s) {
    // A null data pointer would bind SQL NULL; an empty string_view must bind ''.
    sqlite3_bind_text64(stmt_, i, s.data() ? s.data() : "", s.size(), SQLITE_STATIC, SQLITE_UTF8);
  }
  void BindInt(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void BindDouble(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
  void BindNull(int i) { sqlite3_bind_null(stmt_, i); }
  // Bound SQLITE_STATIC like text.
  void BindBlob(int i, std::string_view b) {
    sqlite3_bind_blob64(stmt_, i, b.data() ? b.data() : "", b.size(), SQLITE_STATIC);
  }

  // Steps once: a row (true), done (false) or an error.
  Result<bool> Step();
  // Steps to the end, expecting no rows of interest.
  Status Run();
  // Makes the statement ready to step again (bindings are kept).
  void Reset() { sqlite3_reset(stmt_); }

  int64_t ColumnInt(int i) const { return sqlite3_column_int64(stmt_, i); }
  bool ColumnIsNull(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
  double ColumnDouble(int i) const { return sqlite3_column_double(stmt_, i); }
  std::string ColumnText(int i) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : std::string();
  }
  // Valid until the next Step/reset of this statement.
  std::string_view ColumnBlob(int i) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string_view();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

struct ConnectionOptions {
  bool read_only = false;
  int busy_timeout_ms = 5000;
  int64_t cache_kib = 16384;
  int64_t mmap_bytes = 0;
};

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const std::string& path,
                                                  const ConnectionOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A cached statement for `sql` (prepared on first use, kept for the connection's lifetime).
  Result<sqlite3_stmt*> Prepare(const std::string& sql);
  // Runs statements: a single statement from the cache, several (migrations) uncached.
  Status Exec(const char* sql);
  // First column of the first row of `sql` as an integer, nullopt when there is no row.
  Result<std::optional<int64_t>> QueryInt(const char* sql);
  Result<std::optional<std::string>> QueryText(const char* sql);

  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }
  sqlite3* handle() const { return db_; }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// Shorthand: a Stmt for a cached statement of `conn`, or return its error.
#define JC_SQL_STMT(var, conn, sql)                                  \
  JC_ASSIGN_OR_RETURN(sqlite3_stmt* var##_raw, (conn).Prepare(sql)); \
  ::jiceng::store::sqlite::Stmt var((conn).handle(), var##_raw)

}  // namespace jiceng::store::sqlite
