// store/postgres: a thin RAII wrapper over libpq (one connection, its results and its prepared
// statements). This header deliberately does not include libpq-fe.h: only the .cpp files of
// store/postgres see libpq, and tests can still open a connection for administration.
//
// Wire format: every parameter and every result column travels in binary. Strings are then sent
// as raw bytes (no quoting or escaping anywhere), bytea columns round-trip any byte including
// NUL, and integers are 8-byte big-endian int8 values.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"

struct pg_conn;
struct pg_result;

namespace jiceng::store::postgres {

// PostgreSQL type OIDs of the parameters we bind (pg_type.h; stable across versions).
enum class PgType : unsigned {
  kBool = 16,
  kBytea = 17,
  kInt8 = 20,
  kText = 25,
  kFloat8 = 701,
  kByteaArray = 1001,
  kTextArray = 1009,
  kInt8Array = 1016,
  kFloat8Array = 1022,
};

// The parameters of one statement, in order ($1, $2, …).
class PgParams {
 public:
  PgParams& Text(std::string_view v) { return Add(PgType::kText, std::string(v)); }
  PgParams& Bytes(std::string_view v) { return Add(PgType::kBytea, std::string(v)); }
  PgParams& Int(int64_t v);
  PgParams& Bool(bool v) { return Add(PgType::kBool, std::string(1, v ? '\1' : '\0')); }
  PgParams& Float(double v);
  // One-dimensional arrays, for set-at-a-time statements (INSERT … SELECT unnest($n), …): one
  // statement writes any number of rows with one prepared plan.
  PgParams& TextArray(const std::vector<std::string_view>& v);
  PgParams& BytesArray(const std::vector<std::string_view>& v);
  PgParams& IntArray(const std::vector<int64_t>& v);
  PgParams& FloatArray(const std::vector<double>& v);

  size_t size() const { return values_.size(); }
  const std::vector<unsigned>& types() const { return types_; }
  const std::vector<std::string>& values() const { return values_; }

 private:
  PgParams& Add(PgType t, std::string v) {
    types_.push_back(static_cast<unsigned>(t));
    values_.push_back(std::move(v));
    return *this;
  }
  std::vector<unsigned> types_;
  std::vector<std::string> values_;
};

// A query's result (binary columns). Movable, frees itself.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* r) : r_(r) {}
  PgResult(PgResult&&) noexcept = default;
  PgResult& operator=(PgResult&&) noexcept = default;

  int rows() const;
  bool IsNull(int row, int col) const;
  // Raw bytes of a text or bytea column.
  std::string_view Bytes(int row, int col) const;
  std::string String(int row, int col) const { return std::string(Bytes(row, col)); }
  // An int2/int4/int8 column (its binary width tells which); 0 when NULL.
  int64_t Int(int row, int col) const;
  bool Bool(int row, int col) const;
  // The command tag ("COMMIT", "ROLLBACK", "INSERT 0 1" …).
  std::string_view CommandStatus() const;

 private:
  struct Deleter {
    void operator()(pg_result* r) const;
  };
  std::unique_ptr<pg_result, Deleter> r_;
};

class PgConnection {
 public:
  // `conninfo` is a libpq connection string or URI (postgresql://user@host:port/db?…).
  static Result<std::unique_ptr<PgConnection>> Open(const std::string& conninfo);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one or more statements without parameters (simple query protocol).
  Status Exec(const std::string& sql);
  // Runs `sql` ($1, $2 … placeholders) as a prepared statement: prepared on this connection the
  // first time it is seen, by name afterwards (keyed by the SQL text, so call sites never manage
  // names). The parameter types are fixed by the first call.
  Result<PgResult> Query(const std::string& sql, const PgParams& params = {});

  // The connection is usable (not broken by a server restart or a network failure).
  bool Healthy() const;
  // Inside a transaction block (healthy or aborted by an error).
  bool InTransaction() const;
  // Reconnects a broken connection; prepared statements are forgotten.
  Status Reset();
  // The SQLSTATE of the last failed Exec or Query ("40P01" …); empty when it carried none
  // (e.g. the connection broke) or the last call succeeded.
  const std::string& LastSqlState() const { return last_sqlstate_; }

 private:
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  Error LastError(pg_result* r, std::string_view what);

  pg_conn* conn_;
  std::string last_sqlstate_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text → statement name
};

// Quotes an SQL identifier ("name" with inner quotes doubled), for DDL built at run time.
std::string QuoteIdentifier(std::string_view name);

}  // namespace jiceng::store::postgres
