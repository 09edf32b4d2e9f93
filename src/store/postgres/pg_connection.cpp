#include "store/postgres/pg_connection.h"

#include <libpq-fe.h>

#include <bit>
#include <cstring>

namespace jiceng::store::postgres {
namespace {

// Network byte order ↔ host, for binary int8/float8 values.
uint64_t ToBigEndian(uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(v);
  return v;
}

// Errors a caller may retry or report as "try again later" (503) rather than as a bug (500).
ErrorCode CodeFor(std::string_view sqlstate) {
  if (sqlstate == "23505") return ErrorCode::kConflict;        // unique_violation
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

void PgResult::Deleter::operator()(pg_result* r) const { PQclear(r); }

int PgResult::rows() const { return r_ ? PQntuples(r_.get()) : 0; }

bool PgResult::IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }

std::string_view PgResult::Bytes(int row, int col) const {
  return std::string_view(PQgetvalue(r_.get(), row, col),
                          static_cast<size_t>(PQgetlength(r_.get(), row, col)));
}

int64_t PgResult::Int(int row, int col) const {
  if (IsNull(row, col)) return 0;
  const unsigned char* p =
      reinterpret_cast<const unsigned char*>(PQgetvalue(r_.get(), row, col));
  const int len = PQgetlength(r_.get(), row, col);
  uint64_t v = 0;
  for (int i = 0; i < len; ++i) v = (v << 8) | p[i];
  // Sign-extend int2/int4.
  if (len < 8 && len > 0 && (p[0] & 0x80)) v |= ~uint64_t{0} << (8 * len);
  return static_cast<int64_t>(v);
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
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  auto conn = std::unique_ptr<PgConnection>(new PgConnection(c));
  // Timestamps are integers here; UTC only matters for operators reading now() in psql, and
  // the bytea output format for them.
  JC_RETURN_IF_ERROR(conn->Exec("SET TIME ZONE 'UTC'"));
  return conn;
}

PgConnection::~PgConnection() { PQfinish(conn_); }

Error PgConnection::LastError(pg_result* r, std::string_view what) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state ? state : "";
  std::string msg = Trimmed(r ? PQresultErrorMessage(r) : PQerrorMessage(conn_));
  if (msg.empty()) msg = Trimmed(PQerrorMessage(conn_));
  ErrorCode code = state ? CodeFor(state)
                         : (PQstatus(conn_) != CONNECTION_OK ? ErrorCode::kUnavailable
                                                             : ErrorCode::kInternal);
  return Error(code, "postgres: " + std::string(what) + ": " + msg +
                         (state ? " (SQLSTATE " + std::string(state) + ")" : ""));
}

Status PgConnection::Exec(const std::string& sql) {
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
  const bool rolled_back = sql == "COMMIT" && std::string_view(PQcmdStatus(r)) == "ROLLBACK";
  PQclear(r);
  if (rolled_back) {
    return Error(ErrorCode::kInternal, "postgres: COMMIT rolled back an aborted transaction");
  }
  return Status::Ok();
}

Result<PgResult> PgConnection::Query(const std::string& sql, const PgParams& params) {
  last_sqlstate_.clear();
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "s" + std::to_string(prepared_.size());
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
  const int n = static_cast<int>(params.size());
  std::vector<const char*> values(static_cast<size_t>(n));
  std::vector<int> lengths(static_cast<size_t>(n));
  std::vector<int> formats(static_cast<size_t>(n), 1);
  for (int i = 0; i < n; ++i) {
    values[static_cast<size_t>(i)] = params.values()[static_cast<size_t>(i)].data();
    lengths[static_cast<size_t>(i)] = static_cast<int>(params.values()[static_cast<size_t>(i)].size());
  }
  PGresult* r = PQexecPrepared(conn_, it->second.c_str(), n, values.data(), lengths.data(),
                               formats.data(), /*resultFormat=*/1);
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    Error e = LastError(r, "query");
    PQclear(r);
    return e;
  }
  return PgResult(r);
}

bool PgConnection::Healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

bool PgConnection::InTransaction() const {
  const PGTransactionStatusType s = PQtransactionStatus(conn_);
  return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
}

Status PgConnection::Reset() {
  prepared_.clear();
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    return Error(ErrorCode::kUnavailable,
                 "postgres: cannot reconnect: " + Trimmed(PQerrorMessage(conn_)));
  }
  return Exec("SET TIME ZONE 'UTC'");
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
