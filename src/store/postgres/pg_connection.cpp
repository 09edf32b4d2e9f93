#include "store/postgres/pg_connection.h"

#include <libpq-fe.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>

namespace jiceng::store::postgres {

// Every connection's settings, at open and after a reconnect.
// * Timestamps are integers here; UTC only matters for operators reading now() in psql, and the
//   bytea output format for them.
// * No JIT: a search that walks a type in id order testing each row (sql::Dialect::PerRow) is
//   costed in the millions and compiled first, its few milliseconds of work behind 130-270 ms
//   of LLVM (`Observation?code=85354-9&subject.name=王` over a 100,000-resident county: 280 ms,
//   of which 267 JIT). No statement of jiceng runs long enough for compiled expressions to pay.
constexpr const char* kSessionSettings = "SET TIME ZONE 'UTC'; SET jit = off";
namespace {

// Network byte order ↔ host, for binary int8/float8 values.
uint64_t ToBigEndian(uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(v);
  return v;
}

// Errors a caller may retry or report as "try again later" (503) rather than as a bug (500).
ErrorCode CodeFor(std::string_view sqlstate) {
  if (sqlstate == "23505") return ErrorCode::kConflict;  // unique_violation
  if (sqlstate == "40001" || sqlstate == "40P01") return ErrorCode::kUnavailable;
  if (sqlstate == "55P03") return ErrorCode::kUnavailable;  // lock_not_available (lock_timeout)
  if (sqlstate.starts_with("08")) return ErrorCode::kUnavailable;  // connection exception
  if (sqlstate.starts_with("53")) return ErrorCode::kUnavailable;  // insufficient resources
  if (sqlstate.starts_with("57")) return ErrorCode::kUnavailable;  // operator intervention
  if (sqlstate == "22021" || sqlstate.starts_with("22P0")) return ErrorCode::kInvalid;
  return ErrorCode::kInternal;
}

void PutInt32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}

void PutInt64(std::string& out, uint64_t v) {
  PutInt32(out, static_cast<uint32_t>(v >> 32));
  PutInt32(out, static_cast<uint32_t>(v));
}

// The binary wire format of a one-dimensional array without NULLs (array_recv): ndim, has-null
// flag, element type, then (length, lower bound) per dimension, then (byte length, bytes) per
// element.
std::string ArrayHeader(PgType element, size_t n) {
  std::string out;
  PutInt32(out, 1);
  PutInt32(out, 0);
  PutInt32(out, static_cast<uint32_t>(element));
  PutInt32(out, static_cast<uint32_t>(n));
  PutInt32(out, 1);
  return out;
}

std::string BytesArrayValue(PgType element, const std::vector<std::string_view>& v) {
  std::string out = ArrayHeader(element, v.size());
  for (std::string_view s : v) {
    PutInt32(out, static_cast<uint32_t>(s.size()));
    out.append(s);
  }
  return out;
}

std::string Trimmed(const char* s) {
  std::string out = s ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

PgParams& PgParams::Int(int64_t v) {
  uint64_t be = ToBigEndian(static_cast<uint64_t>(v));
  return Add(PgType::kInt8, std::string(reinterpret_cast<const char*>(&be), sizeof be));
}

PgParams& PgParams::Float(double v) {
  uint64_t be = ToBigEndian(std::bit_cast<uint64_t>(v));
  return Add(PgType::kFloat8, std::string(reinterpret_cast<const char*>(&be), sizeof be));
}

PgParams& PgParams::TextArray(const std::vector<std::string_view>& v) {
  return Add(PgType::kTextArray, BytesArrayValue(PgType::kText, v));
}

PgParams& PgParams::BytesArray(const std::vector<std::string_view>& v) {
  return Add(PgType::kByteaArray, BytesArrayValue(PgType::kBytea, v));
}

PgParams& PgParams::IntArray(const std::vector<int64_t>& v) {
  std::string out = ArrayHeader(PgType::kInt8, v.size());
  for (int64_t x : v) {
    PutInt32(out, 8);
    PutInt64(out, static_cast<uint64_t>(x));
  }
  return Add(PgType::kInt8Array, std::move(out));
}

PgParams& PgParams::FloatArray(const std::vector<double>& v) {
  std::string out = ArrayHeader(PgType::kFloat8, v.size());
  for (double x : v) {
    PutInt32(out, 8);
    PutInt64(out, std::bit_cast<uint64_t>(x));
  }
  return Add(PgType::kFloat8Array, std::move(out));
}

PgParams& PgParams::BoolArray(const std::vector<bool>& v) {
  std::string out = ArrayHeader(PgType::kBool, v.size());
  for (bool x : v) {
    PutInt32(out, 1);
    out += x ? '\1' : '\0';
  }
  return Add(PgType::kBoolArray, std::move(out));
}

// COPY's binary file format: the signature, the flags (no OIDs) and the length of the header
// extension (none).
constexpr std::string_view kCopySignature("PGCOPY\n\377\r\n\0", 11);

PgCopyRows::PgCopyRows(int columns) : columns_(static_cast<uint16_t>(columns)) {
  data_.append(kCopySignature);
  PutInt32(data_, 0);
  PutInt32(data_, 0);
}

PgCopyRows& PgCopyRows::Row() {
  ++rows_;
  data_ += static_cast<char>(columns_ >> 8);
  data_ += static_cast<char>(columns_);
  return *this;
}

PgCopyRows& PgCopyRows::Field(std::string_view v) {
  PutInt32(data_, static_cast<uint32_t>(v.size()));
  data_.append(v);
  return *this;
}

PgCopyRows& PgCopyRows::Int(int64_t v) {
  PutInt32(data_, 8);
  PutInt64(data_, static_cast<uint64_t>(v));
  return *this;
}

PgCopyRows& PgCopyRows::Float(double v) {
  PutInt32(data_, 8);
  PutInt64(data_, std::bit_cast<uint64_t>(v));
  return *this;
}

void PgResult::Deleter::operator()(pg_result* r) const { PQclear(r); }

int PgResult::rows() const { return r_ ? PQntuples(r_.get()) : 0; }

bool PgResult::IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }

std::string_view PgResult::Bytes(int row, int col) const {
  return std::string_view(PQgetvalue(r_.get(), row, col),
                          static_cast<size_t>(PQgetlength(r_.get(), row, col)));
}

int64_t PgResult::Int(int row, int col) const {
  if (IsNull(row, col)) return 0;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r_.get(), row, col));
  const int len = PQgetlength(r_.get(), row, col);
  uint64_t v = 0;
  for (int i = 0; i < len; ++i) v = (v << 8) | p[i];
  // Sign-extend int2/int4.
  if (len < 8 && len > 0 && (p[0] & 0x80)) v |= ~uint64_t{0} << (8 * len);
  return static_cast<int64_t>(v);
}

double PgResult::Double(int row, int col) const {
  if (IsNull(row, col) || PQgetlength(r_.get(), row, col) != 8) return 0;
  return std::bit_cast<double>(static_cast<uint64_t>(Int(row, col)));
}

bool PgResult::Bool(int row, int col) const {
  return !IsNull(row, col) && PQgetlength(r_.get(), row, col) == 1 &&
         PQgetvalue(r_.get(), row, col)[0] != 0;
}

std::string_view PgResult::CommandStatus() const {
  return r_ ? std::string_view(PQcmdStatus(r_.get())) : std::string_view();
}

Result<std::unique_ptr<PgConnection>> PgConnection::Open(const std::string& conninfo) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (c == nullptr) return Error(ErrorCode::kUnavailable, "postgres: out of memory connecting");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = "postgres: cannot connect: " + Trimmed(PQerrorMessage(c));
    PQfinish(c);
    return Error(ErrorCode::kUnavailable, std::move(msg));
  }
  // Server notices ("relation … already exists, skipping") would go to stderr; they are never
  // errors, and errors come back as results.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  auto conn = std::unique_ptr<PgConnection>(new PgConnection(c));
  JC_RETURN_IF_ERROR(conn->Exec(kSessionSettings));
  return conn;
}

PgConnection::~PgConnection() { PQfinish(conn_); }

Error PgConnection::LastError(pg_result* r, std::string_view what) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state ? state : "";
  std::string msg = Trimmed(r ? PQresultErrorMessage(r) : PQerrorMessage(conn_));
  if (msg.empty()) msg = Trimmed(PQerrorMessage(conn_));
  ErrorCode code =
      state ? CodeFor(state)
            : (PQstatus(conn_) != CONNECTION_OK ? ErrorCode::kUnavailable : ErrorCode::kInternal);
  return Error(code, "postgres: " + std::string(what) + ": " + msg +
                         (state ? " (SQLSTATE " + std::string(state) + ")" : ""));
}

template <class R, class F>
R PgConnection::WithLazyBegin(F run) {
  std::vector<std::string> prefix = std::move(lazy_begin_);
  lazy_begin_.clear();
  const bool begins = !prefix.empty();
  prefix.insert(prefix.end(), std::make_move_iterator(deferred_.begin()),
                std::make_move_iterator(deferred_.end()));
  deferred_.clear();
  R r = run(prefix);
  // Nothing of the transaction has been seen by the caller yet: on a connection that turned out
  // to be broken (or left in doubt by the previous transaction's ROLLBACK), a fresh connection
  // and a fresh transaction are as good.
  if (!r.ok() && begins && !Healthy() && Reset().ok()) r = run(prefix);
  return r;
}

Status PgConnection::Exec(const std::string& sql) {
  // A rollback undoes what deferred settings would have set: they go with it, unsent.
  if (sql.starts_with("ROLLBACK")) deferred_.clear();
  if (!Queued()) {
    return ExecNow(sql, sql == "COMMIT");
  }
  return WithLazyBegin<Status>([&](const std::vector<std::string>& prefix) -> Status {
    JC_RETURN_IF_ERROR(DrainUnread());
    // Exec is the simple query protocol: the pending ROLLBACK and the BEGIN ride in the same
    // command string.
    std::string text = end_pending_ ? "ROLLBACK; " : "";
    end_pending_ = false;
    for (const std::string& p : prefix) text += p + "; ";
    return ExecNow(text + sql, sql == "COMMIT");
  });
}

Status PgConnection::ExecNow(const std::string& sql, bool commit) {
  last_sqlstate_.clear();
  // PQexec returns the last statement's result; an earlier failure stops the batch and is the
  // result returned, so one status check covers every statement.
  PGresult* r = PQexec(conn_, sql.c_str());
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
    Error e = LastError(r, "exec");
    PQclear(r);
    return e;
  }
  // COMMIT of a transaction that an error aborted "succeeds" with the tag ROLLBACK: that is a
  // lost write, never a success.
  const bool rolled_back = commit && std::string_view(PQcmdStatus(r)) == "ROLLBACK";
  PQclear(r);
  if (rolled_back) {
    return Error(ErrorCode::kInternal, "postgres: COMMIT rolled back an aborted transaction");
  }
  return Status::Ok();
}

Result<PgResult> PgConnection::Query(const std::string& sql, const PgParams& params,
                                     bool plan_each_time) {
  if (!Queued()) return QueryNow(sql, params, plan_each_time);
  const std::vector<PgStatement> one = {{&sql, &params, plan_each_time}};
  return WithLazyBegin<Result<PgResult>>(
      [&](const std::vector<std::string>& prefix) -> Result<PgResult> {
        JC_ASSIGN_OR_RETURN(std::vector<PgResult> results, QueryPipelined(prefix, one));
        return std::move(results.back());
      });
}

Result<std::vector<PgResult>> PgConnection::QueryBatch(const std::vector<PgStatement>& statements) {
  if (statements.empty()) return std::vector<PgResult>();
  return WithLazyBegin<Result<std::vector<PgResult>>>(
      [&](const std::vector<std::string>& prefix) { return QueryPipelined(prefix, statements); });
}

Status PgConnection::CopyIn(const std::vector<PgCopy>& copies) {
  if (copies.empty()) return Status::Ok();
  std::string text;
  for (const PgCopy& copy : copies) text += (text.empty() ? "" : "; ") + *copy.sql;
  if (!Queued()) {
    return CopyNow(text, copies);
  }
  return WithLazyBegin<Status>([&](const std::vector<std::string>& prefix) -> Status {
    JC_RETURN_IF_ERROR(DrainUnread());
    // As Exec: the pending ROLLBACK and the BEGIN ride in the same query string.
    std::string all = end_pending_ ? "ROLLBACK; " : "";
    end_pending_ = false;
    for (const std::string& p : prefix) all += p + "; ";
    return CopyNow(all + text, copies);
  });
}

Status PgConnection::CopyNow(const std::string& text, const std::vector<PgCopy>& copies) {
  last_sqlstate_.clear();
  if (broken_) return Lost("copy");
  if (PQsendQuery(conn_, text.c_str()) != 1) return Lost("send");
  // libpq copies each piece into its output buffer: pieces of a bounded size keep that buffer
  // small whatever the number of rows.
  constexpr size_t kPiece = 256 * 1024;
  static constexpr char kTrailer[2] = {'\xff', '\xff'};  // field count -1: the end of the rows
  size_t next = 0;
  std::optional<Error> failure;
  // One answer per statement of `text`; a COPY's is PGRES_COPY_IN (send its rows, then its
  // own result follows), and after the first failure the server skips the rest. Every answer is
  // read up to the end (null), so that the connection is ready for its next statement.
  while (PGresult* r = PQgetResult(conn_)) {
    const ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COPY_IN) {
      PQclear(r);
      if (next >= copies.size()) {  // cannot happen: one COPY_IN per COPY statement of `text`
        if (PQputCopyEnd(conn_, "jiceng: unexpected COPY") != 1) return Lost("copy");
        continue;
      }
      const PgCopyRows& rows = *copies[next++].rows;
      const std::string& data = rows.data();
      for (size_t at = 0; at < data.size(); at += kPiece) {
        const size_t n = std::min(kPiece, data.size() - at);
        if (PQputCopyData(conn_, data.data() + at, static_cast<int>(n)) != 1) return Lost("copy");
      }
      if (PQputCopyData(conn_, kTrailer, 2) != 1 || PQputCopyEnd(conn_, nullptr) != 1) {
        return Lost("copy");
      }
      copied_rows_ += rows.rows();
      continue;
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY && !failure) {
      failure = LastError(r, "copy");
    }
    PQclear(r);
  }
  if (failure) return std::move(*failure);
  if (PQstatus(conn_) != CONNECTION_OK) return Lost("copy");
  if (next != copies.size()) return Internal("postgres: copy: fewer COPYs ran than were sent");
  return Status::Ok();
}

namespace {

// Binary parameters of one statement, as libpq wants them.
struct WireParams {
  explicit WireParams(const PgParams& params) {
    const size_t n = params.size();
    values.resize(n);
    lengths.resize(n);
    formats.assign(n, 1);
    for (size_t i = 0; i < n; ++i) {
      values[i] = params.values()[i].data();
      lengths[i] = static_cast<int>(params.values()[i].size());
    }
  }
  int count() const { return static_cast<int>(values.size()); }
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
};

}  // namespace

Result<PgResult> PgConnection::QueryNow(const std::string& sql, const PgParams& params,
                                        bool plan_each_time) {
  last_sqlstate_.clear();
  auto it = prepared_.find(sql);
  if (it == prepared_.end() && !plan_each_time) {
    std::string name = "s" + std::to_string(next_name_++);
    const auto& types = params.types();
    PGresult* r = PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(types.size()),
                            reinterpret_cast<const Oid*>(types.data()));
    if (r == nullptr || PQresultStatus(r) != PGRES_COMMAND_OK) {
      Error e = LastError(r, "prepare");
      PQclear(r);
      return e;
    }
    PQclear(r);
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  const WireParams wire(params);
  // Planned each time: sent unnamed, parsed and planned with its values (PQexecParams).
  PGresult* r =
      plan_each_time
          ? PQexecParams(conn_, sql.c_str(), wire.count(),
                         reinterpret_cast<const Oid*>(params.types().data()), wire.values.data(),
                         wire.lengths.data(), wire.formats.data(), /*resultFormat=*/1)
          : PQexecPrepared(conn_, it->second.c_str(), wire.count(), wire.values.data(),
                           wire.lengths.data(), wire.formats.data(), /*resultFormat=*/1);
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    Error e = LastError(r, "query");
    PQclear(r);
    return e;
  }
  return PgResult(r);
}

// One pipeline: the previous transaction's ROLLBACK (if pending), the prefix (if any) and the
// statements, each as [Parse] Bind/Execute, then one Sync; a statement not yet prepared on this
// connection is prepared in the same round trip. The server stops at the first failure and skips
// the rest up to the Sync (PGRES_PIPELINE_ABORTED), so the first failed step is the call's error.
Result<std::vector<PgResult>> PgConnection::QueryPipelined(
    const std::vector<std::string>& prefix, const std::vector<PgStatement>& statements) {
  last_sqlstate_.clear();
  if (broken_) return Lost("query");
  enum class Role { kEnd, kBegin, kStatement };
  struct Step {
    const std::string* sql;
    const PgParams* params;
    std::string name;  // empty: sent unnamed, planned for its values (PgStatement::plan_each_time)
    bool prepare;
    Role role;
  };
  static const PgParams kNoParams;
  static const std::string kRollback = "ROLLBACK";
  std::vector<Step> steps;
  // Statements not prepared yet on this connection, by SQL text: a text that occurs twice in
  // one pipeline is prepared once.
  std::unordered_map<std::string_view, std::string> preparing;
  auto add = [&](const std::string& text, const PgParams& p, Role role, bool each_time = false) {
    if (each_time) {
      steps.push_back({&text, &p, std::string(), false, role});
      return;
    }
    if (auto it = prepared_.find(text); it != prepared_.end()) {
      steps.push_back({&text, &p, it->second, false, role});
      return;
    }
    if (auto it = preparing.find(text); it != preparing.end()) {
      steps.push_back({&text, &p, it->second, false, role});
      return;
    }
    std::string name = "s" + std::to_string(next_name_++);
    preparing.emplace(text, name);
    steps.push_back({&text, &p, name, true, role});
    steps.push_back({&text, &p, std::move(name), false, role});
  };
  if (end_pending_) add(kRollback, kNoParams, Role::kEnd);
  end_pending_ = false;
  for (const std::string& p : prefix) add(p, kNoParams, Role::kBegin);
  for (const PgStatement& st : statements)
    add(*st.sql, *st.params, Role::kStatement, st.plan_each_time);

  if (PQpipelineStatus(conn_) == PQ_PIPELINE_OFF && PQenterPipelineMode(conn_) != 1) {
    return Lost("enter pipeline mode");
  }
  for (const Step& step : steps) {
    int sent;
    if (step.prepare) {
      const auto& types = step.params->types();
      sent =
          PQsendPrepare(conn_, step.name.c_str(), step.sql->c_str(), static_cast<int>(types.size()),
                        reinterpret_cast<const Oid*>(types.data()));
    } else if (step.name.empty()) {
      const auto& types = step.params->types();
      const WireParams wire(*step.params);
      sent = PQsendQueryParams(conn_, step.sql->c_str(), wire.count(),
                               reinterpret_cast<const Oid*>(types.data()), wire.values.data(),
                               wire.lengths.data(), wire.formats.data(), /*resultFormat=*/1);
    } else {
      const WireParams wire(*step.params);
      sent = PQsendQueryPrepared(conn_, step.name.c_str(), wire.count(), wire.values.data(),
                                 wire.lengths.data(), wire.formats.data(), /*resultFormat=*/1);
    }
    if (sent != 1) return Lost("send");
  }
  if (PQpipelineSync(conn_) != 1) return Lost("send");  // also flushes

  // Answers come in the order sent: first those of the ROLLBACKs sent without waiting.
  JC_RETURN_IF_ERROR(ReadUnread());
  std::vector<PgResult> results;
  JC_RETURN_IF_ERROR(ReadPipeline(steps.size(), results));
  if (PQexitPipelineMode(conn_) != 1) return Lost("exit pipeline mode");

  std::optional<Error> failure;
  for (size_t i = 0; i < steps.size(); ++i) {
    pg_result* r = results[i].r_.get();
    const ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      if (steps[i].prepare) prepared_.emplace(*steps[i].sql, steps[i].name);
      continue;
    }
    if (!failure && st != PGRES_PIPELINE_ABORTED) {
      // The previous transaction may still be open: this connection cannot be trusted.
      if (steps[i].role == Role::kEnd) broken_ = true;
      failure = LastError(r, steps[i].role == Role::kEnd     ? "rollback"
                             : steps[i].role == Role::kBegin ? "begin"
                             : steps[i].prepare              ? "prepare"
                                                             : "query");
    }
  }
  if (failure) return std::move(*failure);
  // The statements' own results: the last Execute of each (after its Parse, if any).
  std::vector<PgResult> out;
  out.reserve(statements.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].role == Role::kStatement && !steps[i].prepare)
      out.push_back(std::move(results[i]));
  }
  return out;
}

Status PgConnection::ReadPipeline(size_t commands, std::vector<PgResult>& out) {
  out.clear();
  out.reserve(commands);
  for (size_t i = 0; i < commands; ++i) {
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) return Lost("read");
    out.emplace_back(r);
    // Each of our commands has exactly one result, then the null that ends it.
    if (PGresult* extra = PQgetResult(conn_)) {
      PQclear(extra);
      return Lost("read");
    }
  }
  PGresult* sync = PQgetResult(conn_);
  const bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  PQclear(sync);
  if (!synced) return Lost("read");
  return Status::Ok();
}

Status PgConnection::ReadUnread() {
  std::vector<PgResult> results;
  while (!unread_.empty()) {
    const size_t commands = unread_.front();
    unread_.erase(unread_.begin());
    JC_RETURN_IF_ERROR(ReadPipeline(commands, results));
    for (const PgResult& r : results) {
      if (PQresultStatus(r.r_.get()) != PGRES_COMMAND_OK) {
        // The previous transaction may still be open: this connection cannot be trusted.
        broken_ = true;
        return LastError(r.r_.get(), "rollback");
      }
    }
  }
  return Status::Ok();
}

Status PgConnection::DrainUnread() {
  if (unread_.empty()) return Status::Ok();
  JC_RETURN_IF_ERROR(ReadUnread());
  if (PQexitPipelineMode(conn_) != 1) return Lost("exit pipeline mode");
  return Status::Ok();
}

Error PgConnection::Lost(std::string_view what) {
  broken_ = true;
  const bool down = PQstatus(conn_) != CONNECTION_OK;
  std::string msg = Trimmed(PQerrorMessage(conn_));
  return Error(down ? ErrorCode::kUnavailable : ErrorCode::kInternal,
               "postgres: " + std::string(what) + ": " +
                   (msg.empty() ? std::string("pipeline out of step") : msg));
}

void PgConnection::BeginLazily(std::string begin_sql) {
  lazy_begin_.clear();
  deferred_.clear();
  lazy_begin_.push_back(std::move(begin_sql));
}

bool PgConnection::Defer(std::string sql) {
  if (!lazy_begin_.empty()) {
    lazy_begin_.push_back(std::move(sql));
    return true;
  }
  // Not in a transaction an error aborted: it would refuse the statement, and with it the
  // ROLLBACK TO SAVEPOINT or ROLLBACK it would be sent in front of.
  if (!InTransaction() || PQtransactionStatus(conn_) == PQTRANS_INERROR) return false;
  deferred_.push_back(std::move(sql));
  return true;
}

void PgConnection::EndLazily() {
  deferred_.clear();  // never sent: they would have ended with the transaction
  if (!lazy_begin_.empty()) {
    lazy_begin_.clear();  // never sent: there is nothing to end
    return;
  }
  if (end_pending_ || !unread_.empty() || !Healthy()) return;
  const PGTransactionStatusType s = PQtransactionStatus(conn_);
  end_pending_ = s == PQTRANS_INTRANS || s == PQTRANS_INERROR;
}

void PgConnection::SendPendingEnd() {
  if (!end_pending_) return;
  end_pending_ = false;
  if (!Healthy()) return;
  auto it = prepared_.find("ROLLBACK");
  bool sent = PQenterPipelineMode(conn_) == 1;
  if (sent && it != prepared_.end()) {
    sent = PQsendQueryPrepared(conn_, it->second.c_str(), 0, nullptr, nullptr, nullptr, 1) == 1;
  } else if (sent) {
    sent = PQsendQueryParams(conn_, "ROLLBACK", 0, nullptr, nullptr, nullptr, nullptr, 1) == 1;
  }
  // PQpipelineSync flushes: the server rolls back now.
  sent = sent && PQpipelineSync(conn_) == 1;
  if (!sent) {
    broken_ = true;
    return;
  }
  unread_.push_back(1);
}

bool PgConnection::Healthy() const { return !broken_ && PQstatus(conn_) == CONNECTION_OK; }

bool PgConnection::InTransaction() const {
  // An end pending or sent without waiting is a ROLLBACK: the transaction is over for callers.
  if (end_pending_ || !unread_.empty()) return false;
  const PGTransactionStatusType s = PQtransactionStatus(conn_);
  return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
}

Status PgConnection::Reset() {
  prepared_.clear();
  unread_.clear();
  lazy_begin_.clear();
  deferred_.clear();
  end_pending_ = false;
  broken_ = false;
  next_name_ = 0;
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    return Error(ErrorCode::kUnavailable,
                 "postgres: cannot reconnect: " + Trimmed(PQerrorMessage(conn_)));
  }
  return Exec(kSessionSettings);
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace jiceng::store::postgres
