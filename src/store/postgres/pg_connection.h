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
  kBoolArray = 1000,
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
  PgParams& BoolArray(const std::vector<bool>& v);

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
  // A float8 column; 0 when NULL.
  double Double(int row, int col) const;
  bool Bool(int row, int col) const;
  // The command tag ("COMMIT", "ROLLBACK", "INSERT 0 1" …).
  std::string_view CommandStatus() const;

 private:
  friend class PgConnection;
  struct Deleter {
    void operator()(pg_result* r) const;
  };
  std::unique_ptr<pg_result, Deleter> r_;
};

// The rows of one COPY … FROM STDIN (FORMAT binary) (PgConnection::CopyIn), in COPY's binary
// file format: a header, then per row its field count and per field its byte length and bytes,
// each value in the same binary form as a parameter of its type (text and bytea as raw bytes,
// int8 and float8 big-endian). Every row must have the number of fields given at construction,
// in the column order of the COPY statement (the server refuses any other count).
class PgCopyRows {
 public:
  explicit PgCopyRows(int columns);
  // Starts the next row; its fields follow.
  PgCopyRows& Row();
  PgCopyRows& Text(std::string_view v) { return Field(v); }
  PgCopyRows& Bytes(std::string_view v) { return Field(v); }
  PgCopyRows& Int(int64_t v);
  PgCopyRows& Float(double v);
  PgCopyRows& Bool(bool v) { return Field(std::string_view(v ? "\1" : "\0", 1)); }

  size_t rows() const { return rows_; }
  // The header and the rows, without the trailer (CopyIn sends it).
  const std::string& data() const { return data_; }

 private:
  PgCopyRows& Field(std::string_view v);
  uint16_t columns_;
  size_t rows_ = 0;
  std::string data_;
};

// One COPY of PgConnection::CopyIn: "COPY table(columns…) FROM STDIN (FORMAT binary)" and its
// rows, both borrowed for the length of the call.
struct PgCopy {
  const std::string* sql;
  const PgCopyRows* rows;
};

// One statement of a batch (PgConnection::QueryBatch): its SQL and its parameters, both
// borrowed for the length of the call.
struct PgStatement {
  const std::string* sql;
  const PgParams* params;
  bool plan_each_time = false;  // see PgConnection::Query
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
  // `plan_each_time`: sent unnamed instead (parsed and planned for these values each time, never
  // kept), for a statement whose best plan depends on its values: PostgreSQL plans a prepared
  // statement once for any values after its fifth run when that looks no dearer, and a search
  // over many rows then kept a plan 2.5 times slower than the one for its own values.
  Result<PgResult> Query(const std::string& sql, const PgParams& params = {},
                         bool plan_each_time = false);
  // Runs `statements` in order in one round trip (one pipeline, prepared like Query's), and
  // returns their results in order. The server stops at the first failure and skips the rest,
  // which is then the call's error (inside a transaction block, the transaction is aborted as
  // by any failed statement). Their answers must stay small (no large result sets but the
  // last's): they are read only once every statement has been sent.
  Result<std::vector<PgResult>> QueryBatch(const std::vector<PgStatement>& statements);
  // Runs `copies` in order (COPY … FROM STDIN, binary rows), the bulk-load path: the server
  // inserts a COPY's rows several to a heap page per WAL record, with no array to build, send
  // and unpack as for INSERT … SELECT FROM unnest($1…). COPY cannot ride in a pipeline (libpq
  // refuses it there), so the COPYs go as one simple-protocol query string, and each costs one
  // round trip (its rows are sent when the server asks for them) plus one for the last answer.
  // The server stops at the first failure and skips the rest, which is then the call's error
  // (inside a transaction block, the transaction is aborted as by any failed statement).
  Status CopyIn(const std::vector<PgCopy>& copies);
  // Rows sent by CopyIn on this connection so far (tests and benchmarks see which path a write
  // took).
  uint64_t CopiedRows() const { return copied_rows_; }

  // ---- transactions in one round trip (libpq pipeline mode) ----------------------------------
  //
  // A read transaction costs one round trip in the common case: its BEGIN travels with its first
  // statement, and its ROLLBACK with the connection's next statement (or is sent on its own,
  // without waiting for the answer, when the connection stays idle: SendPendingEnd).
  // (Pipelines stay in libpq's blocking mode: the answers still unread when one is sent are a
  // few bytes, far from filling a socket buffer, so sender and server cannot block each other.)
  //
  // BeginLazily queues `begin_sql` (one statement without parameters, e.g. "BEGIN ISOLATION
  // LEVEL REPEATABLE READ READ ONLY") without sending anything. The next Query or Exec sends it
  // in the same round trip as its own statement and fails if it failed. A connection found
  // broken at that point (a server restart since its last use) is reset and both are sent once
  // more: nothing of the transaction had run yet, so the retry is invisible.
  void BeginLazily(std::string begin_sql);
  // Queues `sql` (one statement without parameters, e.g. "SET LOCAL statement_timeout = 5000")
  // to ride in the round trip of the connection's next statement, just before it: behind the
  // BeginLazily statement when that has not been sent yet, else inside the transaction already
  // begun. A failure of `sql` is the next statement's (inside a begun transaction nothing is
  // retried on a broken connection: part of the transaction had run). Returns false, queuing
  // nothing, outside a transaction (no begin waiting, none begun, or its end pending) and in a
  // transaction an error aborted: run it with Exec then. A transaction ended before its next
  // statement drops what was queued, and so does a ROLLBACK (to a savepoint or not) sent by Exec.
  bool Defer(std::string sql);
  // Ends the current transaction with ROLLBACK, lazily: nothing is sent now. The ROLLBACK goes
  // out in front of the connection's next statement, in that statement's round trip, or with
  // SendPendingEnd. Until then the transaction (its snapshot, its locks) stays open on the
  // server, so whoever keeps an idle connection calls SendPendingEnd soon (the read pool does
  // after a few milliseconds). A transaction begun lazily that never ran a statement ends
  // without any I/O, and so does a call outside a transaction.
  void EndLazily();
  bool EndPending() const { return end_pending_; }
  // Sends the pending ROLLBACK now without waiting: the server ends the transaction at once,
  // and the answer is read before the connection's next statement (in its round trip). If it
  // turns out to have failed on a live connection, that next statement fails and the connection
  // reports itself unhealthy (a pool then discards it).
  void SendPendingEnd();

  // The connection is usable (not broken by a server restart or a network failure, nor left in
  // an unknown state by a pipeline that went wrong).
  bool Healthy() const;
  // Inside a transaction block (healthy or aborted by an error). False once EndLazily was called
  // (the end is on its way), and while a BeginLazily has sent nothing yet.
  bool InTransaction() const;
  // Reconnects a broken connection; prepared statements are forgotten.
  Status Reset();
  // The SQLSTATE of the last failed Exec or Query ("40P01" …); empty when it carried none
  // (e.g. the connection broke) or the last call succeeded.
  const std::string& LastSqlState() const { return last_sqlstate_; }

 private:
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  // Something must go out with (or be read before) the next statement: a lazy BEGIN, deferred
  // statements, a pending ROLLBACK or the answers of pipelines sent without waiting.
  bool Queued() const {
    return !lazy_begin_.empty() || !deferred_.empty() || !unread_.empty() || end_pending_;
  }
  Error LastError(pg_result* r, std::string_view what);
  // Runs `run(prefix)` with the statements queued by BeginLazily and Defer as `prefix` (empty
  // if none), resetting a broken connection and running it once more when a BEGIN was among
  // them (nothing of the transaction had run).
  template <class R, class F>
  R WithLazyBegin(F run);
  Status ExecNow(const std::string& sql, bool commit);
  Result<PgResult> QueryNow(const std::string& sql, const PgParams& params, bool plan_each_time);
  // Sends `text` (statements without parameters, among them the COPYs) and the rows of each
  // COPY as the server asks for it; reads every answer.
  Status CopyNow(const std::string& text, const std::vector<PgCopy>& copies);
  // Sends the pending end (if any), `prefix` (if any) and the statements in one pipeline, and
  // reads every answer due before them (the ROLLBACKs sent without waiting), then theirs: the
  // statements' results, in order.
  Result<std::vector<PgResult>> QueryPipelined(const std::vector<std::string>& prefix,
                                               const std::vector<PgStatement>& statements);
  // Reads the answers of the oldest unread pipeline: `commands` results, each followed by the
  // null that ends it, then its Sync. `out` gets the results in order.
  Status ReadPipeline(size_t commands, std::vector<PgResult>& out);
  // Reads the answers of every pipeline sent without waiting; DrainUnread also leaves pipeline
  // mode, for the synchronous calls.
  Status ReadUnread();
  Status DrainUnread();
  // Marks the connection unusable (its protocol state is unknown) and says why.
  Error Lost(std::string_view what);

  pg_conn* conn_;
  std::string last_sqlstate_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text → statement name
  std::vector<std::string> lazy_begin_;  // BeginLazily's statement (and more), not sent yet
  std::vector<std::string> deferred_;    // Defer's statements in a begun transaction, not sent yet
  bool end_pending_ = false;                               // EndLazily's ROLLBACK, not sent yet
  std::vector<size_t> unread_;  // per pipeline sent without waiting: its number of commands
  bool broken_ = false;         // the protocol state is unknown: unusable until Reset
  uint64_t next_name_ = 0;      // prepared statement names s0, s1, … on this connection
  uint64_t copied_rows_ = 0;    // CopiedRows
};

// Quotes an SQL identifier ("name" with inner quotes doubled), for DDL built at run time.
std::string QuoteIdentifier(std::string_view name);

}  // namespace jiceng::store::postgres
