// The PostgreSQL backend: read pool, read/write transactions over one PgConnection, and the
// group-committing writer thread.
#include "store/postgres/postgres_store.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "base/metrics.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_search.h"

namespace jiceng::store {
namespace postgres {
namespace {

using Clock = std::chrono::steady_clock;

struct Timers {
  prometheus::Histogram* read;
  prometheus::Histogram* history;
  prometheus::Histogram* write_group;
  prometheus::Histogram* commit;
  prometheus::Histogram* search;

  static Timers Make() {
    auto& family = metrics::DbSeconds();
    auto get = [&](const char* op) {
      return &family.Add({{"backend", "postgres"}, {"op", op}}, metrics::LatencyBuckets());
    };
    return Timers{get("read"), get("history"), get("write_group"), get("commit"), get("search")};
  }
};

class ScopedTimer {
 public:
  explicit ScopedTimer(prometheus::Histogram* h) : h_(h), start_(Clock::now()) {}
  ~ScopedTimer() { h_->Observe(std::chrono::duration<double>(Clock::now() - start_).count()); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  prometheus::Histogram* h_;
  Clock::time_point start_;
};

constexpr const char* kVersionColumns = "type, id, version, last_updated_us, deleted, json";

// ---- the queries, shared by read transactions and the write transaction ------------------------

Result<std::optional<ResourceVersion>> QueryCurrent(PgConnection& c, std::string_view type,
                                                    std::string_view id) {
  JC_ASSIGN_OR_RETURN(PgResult r,
                      c.Query(std::string("SELECT ") + kVersionColumns +
                                  " FROM resource WHERE type = $1 AND id = $2",
                              PgParams().Text(type).Bytes(id)));
  if (r.rows() == 0) return std::optional<ResourceVersion>();
  return std::optional<ResourceVersion>(RowToVersion(r, 0));
}

Result<std::optional<ResourceVersion>> QueryVersion(PgConnection& c, std::string_view type,
                                                    std::string_view id, int64_t version) {
  JC_ASSIGN_OR_RETURN(
      PgResult r,
      c.Query("SELECT h.type, h.id, h.version, h.last_updated_us, h.deleted, h.json "
              "FROM resource r JOIN resource_history h ON h.rid = r.rid AND h.version = $3 "
              "WHERE r.type = $1 AND r.id = $2",
              PgParams().Text(type).Bytes(id).Int(version)));
  if (r.rows() == 0) return std::optional<ResourceVersion>();
  return std::optional<ResourceVersion>(RowToVersion(r, 0));
}

Result<HistoryPage> QueryHistory(PgConnection& c, const HistoryQuery& q) {
  // The WHERE clause is built from the query's shape (never its values, which are bound), so
  // each of the few shapes is its own prepared statement with a plan for its index.
  PgParams params;
  int n = 0;
  auto next = [&n] { return "$" + std::to_string(++n); };
  std::string where;
  std::string order;
  if (!q.id.empty()) {
    const std::string type_param = next();  // separate statements: `+` does not sequence
    const std::string id_param = next();
    where = "rid = (SELECT rid FROM resource WHERE type = " + type_param + " AND id = " +
            id_param + ")";
    params.Text(q.type).Bytes(q.id);
    order = " ORDER BY version DESC";
  } else if (!q.type.empty()) {
    where = "type = " + next();
    params.Text(q.type);
    order = " ORDER BY last_updated_us DESC, hid DESC";
  } else {
    where = "true";
    order = " ORDER BY last_updated_us DESC, hid DESC";
  }
  if (q.since_us) {
    where += " AND last_updated_us >= " + next();
    params.Int(*q.since_us);
  }
  if (q.at_or_before_us) {
    where += " AND last_updated_us <= " + next();
    params.Int(*q.at_or_before_us);
  }
  HistoryPage page;
  {
    JC_ASSIGN_OR_RETURN(PgResult r,
                        c.Query("SELECT count(*) FROM resource_history WHERE " + where, params));
    page.total = r.rows() ? r.Int(0, 0) : 0;
  }
  const int64_t count = std::max<int64_t>(q.count, 0);
  const int64_t offset = std::max<int64_t>(q.offset, 0);
  if (count == 0 || offset >= page.total) return page;
  const std::string limit = next();
  const std::string off = next();
  params.Int(count).Int(offset);
  JC_ASSIGN_OR_RETURN(PgResult r, c.Query(std::string("SELECT ") + kVersionColumns +
                                              " FROM resource_history WHERE " + where + order +
                                              " LIMIT " + limit + " OFFSET " + off,
                                          params));
  page.entries.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) page.entries.push_back(RowToVersion(r, i));
  return page;
}

Result<std::vector<std::string>> QueryByToken(PgConnection& c, std::string_view type,
                                              std::string_view param,
                                              std::optional<std::string_view> system,
                                              std::string_view code, int limit) {
  std::vector<std::string> ids;
  if (limit <= 0) return ids;
  // IN (…) de-duplicates a resource that has the code under several systems.
  PgParams params;
  params.Text(type).Text(param).Bytes(code);
  if (system) params.Bytes(*system);
  params.Int(limit);
  JC_ASSIGN_OR_RETURN(
      PgResult r,
      c.Query(system ? "SELECT id FROM resource WHERE rid IN (SELECT rid FROM idx_token "
                       "WHERE type = $1 AND param = $2 AND code = $3 AND system = $4) "
                       "AND NOT deleted ORDER BY rid LIMIT $5"
                     : "SELECT id FROM resource WHERE rid IN (SELECT rid FROM idx_token "
                       "WHERE type = $1 AND param = $2 AND code = $3) "
                       "AND NOT deleted ORDER BY rid LIMIT $4",
              params));
  ids.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) ids.push_back(r.String(i, 0));
  return ids;
}

Result<int64_t> QueryCount(PgConnection& c, std::string_view type) {
  auto r = type.empty() ? c.Query("SELECT count(*) FROM resource WHERE NOT deleted")
                        : c.Query("SELECT count(*) FROM resource WHERE type = $1 AND NOT deleted",
                                  PgParams().Text(type));
  if (!r.ok()) return std::move(r).error();
  return r->rows() ? r->Int(0, 0) : int64_t{0};
}

Result<std::vector<ResourceVersion>> QueryList(PgConnection& c, std::string_view type,
                                               int64_t offset, int64_t count) {
  std::vector<ResourceVersion> out;
  if (count <= 0) return out;
  // Walks the (type, id) unique index in id (byte) order.
  JC_ASSIGN_OR_RETURN(PgResult r,
                      c.Query(std::string("SELECT ") + kVersionColumns +
                                  " FROM resource WHERE type = $1 AND NOT deleted "
                                  "ORDER BY id LIMIT $2 OFFSET $3",
                              PgParams().Text(type).Int(count).Int(std::max<int64_t>(offset, 0))));
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(RowToVersion(r, i));
  return out;
}

// ---- Put ---------------------------------------------------------------------------------------
//
// One Put is one statement, hence one round trip, whatever the number of index rows: data-
// modifying CTEs upsert the current row, append the history row and replace the resource's index
// rows of every kind. Each kind's rows travel as one array parameter per column (binary, no
// quoting) and are expanded with unnest, so the statement is prepared once per connection.
//
// Replacing index rows inside one statement: the CTEs all see the snapshot taken before the
// statement and run in an unspecified order, so no row may be both deleted and inserted by it.
// The DELETE therefore removes only the old rows whose key is not among the new rows, and the
// INSERT skips (ON CONFLICT) new rows that are already stored: rows that stay the same across
// versions are not touched at all, which is also the cheapest for an update of a few fields.
//
// When the upsert refuses the version (a stale writer: the WHERE keeps a resource from moving
// backwards or sideways), `cur` is empty: the history insert, the deletes and the inserts all
// join `cur` and change nothing, and Put reports a conflict. The unique (rid, version) index of
// resource_history is the last line of defence: two rows can never claim the same version.

enum class ColumnType { kText, kBytes, kInt, kFloat };

struct IndexColumn {
  const char* name;
  ColumnType type;
  bool key = true;  // part of the primary key: two rows with equal keys are the same row
};

struct IndexTable {
  const char* name;
  std::vector<IndexColumn> columns;  // besides type and rid, in array-parameter order
};

// Every index table (schema in pg_schema.cpp). A new index kind adds its table here, in a
// migration, and its arrays in PutVersion, in the same order.
const std::vector<IndexTable>& IndexTables() {
  using enum ColumnType;
  static const std::vector<IndexTable> tables = {
      {"idx_token", {{"param", kText}, {"code", kBytes}, {"system", kBytes}}},
      {"idx_string", {{"param", kText}, {"value", kText}, {"exact", kText}}},
      {"idx_date", {{"param", kText}, {"start_us", kInt}, {"end_us", kInt}}},
      {"idx_number", {{"param", kText}, {"value", kFloat}}},
      {"idx_quantity",
       {{"param", kText},
        {"code", kBytes},
        {"system", kBytes},
        {"value", kFloat},
        {"canonical_code", kBytes, false},
        {"canonical_value", kFloat, false}}},
      {"idx_reference",
       {{"param", kText}, {"target_id", kBytes}, {"target_type", kText}, {"url", kText}}},
      {"idx_uri", {{"param", kText}, {"value", kText}}},
      {"idx_composite",
       {{"param", kText},
        {"code1", kBytes},
        {"system1", kBytes},
        {"code2", kBytes},
        {"system2", kBytes},
        {"number2", kFloat},
        {"start2_us", kInt},
        {"end2_us", kInt},
        {"canonical_code2", kBytes, false},
        {"canonical_number2", kFloat, false}}},
  };
  return tables;
}

// The full text row (fts_resource, at most one per resource) follows the index tables' arrays:
// narrative and content, each a text array of zero or one element.
constexpr size_t kFullTextParams = 2;

// tsvector holds at most 1 MB: the text handed to to_tsvector is capped well below what could
// reach that (a longer narrative is searchable by its first 256 KiB), on a UTF-8 boundary.
constexpr size_t kMaxFullTextBytes = 256 * 1024;

std::string_view CappedText(std::string_view s) {
  if (s.size() <= kMaxFullTextBytes) return s;
  size_t n = kMaxFullTextBytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

constexpr int kPutFixedParams = 6;  // type, id, version, last_updated_us, deleted, json

size_t PutParamCount() {
  size_t n = kPutFixedParams + kFullTextParams;
  for (const IndexTable& t : IndexTables()) n += t.columns.size();
  return n;
}

const char* ArrayCast(ColumnType t) {
  switch (t) {
    case ColumnType::kText: return "text[]";
    case ColumnType::kBytes: return "bytea[]";
    case ColumnType::kInt: return "int8[]";
    case ColumnType::kFloat: return "float8[]";
  }
  return "text[]";
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

const std::string& PutSql() {
  static const std::string sql = [] {
    std::string s =
        "WITH cur AS (INSERT INTO resource(type, id, version, last_updated_us, deleted, json) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (type, id) DO UPDATE SET "
        "version = excluded.version, last_updated_us = excluded.last_updated_us, "
        "deleted = excluded.deleted, json = excluded.json "
        "WHERE excluded.version > resource.version RETURNING rid), "
        "hist AS (INSERT INTO resource_history(rid, type, id, version, last_updated_us, "
        "deleted, json) SELECT rid, $1, $2, $3, $4, $5, $6 FROM cur)";
    int param = kPutFixedParams;
    int n = 0;
    for (const IndexTable& t : IndexTables()) {
      std::vector<std::string> arrays, names, values, key_arrays, key_names, match, non_key;
      for (const IndexColumn& c : t.columns) {
        const std::string array = "$" + std::to_string(++param) + "::" + ArrayCast(c.type);
        arrays.push_back(array);
        names.push_back(c.name);
        values.push_back(std::string("u.") + c.name);
        if (c.key) {
          key_arrays.push_back(array);
          key_names.push_back(c.name);
          // Text keys compare bytewise, as the COLLATE "C" columns (and SQLite) do.
          match.push_back(std::string("x.") + c.name + " = u." + c.name +
                          (c.type == ColumnType::kText ? " COLLATE \"C\"" : ""));
        } else {
          non_key.push_back(c.name);
        }
      }
      const std::string tag = std::to_string(n++);
      s += ", d" + tag + " AS (DELETE FROM " + t.name +
           " x USING cur WHERE x.rid = cur.rid AND NOT EXISTS (SELECT 1 FROM unnest(" +
           Join(key_arrays, ", ") + ") AS u(" + Join(key_names, ", ") + ") WHERE " +
           Join(match, " AND ") + "))";
      std::string conflict = " ON CONFLICT DO NOTHING";
      std::string distinct;
      if (!non_key.empty()) {
        // A kept row whose non-key columns changed (e.g. a new canonical unit) is updated in
        // place. DO UPDATE may touch a row once per statement: duplicates go first.
        std::vector<std::string> key_values, set, old_cols, new_cols;
        for (const std::string& k : key_names) key_values.push_back("u." + k);
        for (const std::string& c : non_key) {
          set.push_back(c + " = excluded." + c);
          old_cols.push_back(std::string(t.name) + "." + c);
          new_cols.push_back("excluded." + c);
        }
        distinct = "DISTINCT ON (" + Join(key_values, ", ") + ") ";
        conflict = " ON CONFLICT (type, " + Join(key_names, ", ") + ", rid) DO UPDATE SET " +
                   Join(set, ", ") + " WHERE (" + Join(old_cols, ", ") +
                   ") IS DISTINCT FROM (" + Join(new_cols, ", ") + ")";
      }
      s += ", i" + tag + " AS (INSERT INTO " + t.name + "(type, " + Join(names, ", ") +
           ", rid) SELECT " + distinct + "$1, " + Join(values, ", ") +
           ", cur.rid FROM cur, unnest(" + Join(arrays, ", ") + ") AS u(" + Join(names, ", ") +
           ")" + conflict + ")";
    }
    // Full text: replaced when the new version has text, deleted when it has none (disjoint,
    // as above), rewritten only when it changed.
    const std::string narrative = "$" + std::to_string(++param) + "::text[]";
    const std::string content = "$" + std::to_string(++param) + "::text[]";
    s += ", fd AS (DELETE FROM fts_resource x USING cur WHERE x.rid = cur.rid AND "
         "cardinality(" + narrative + ") = 0)";
    s += ", fi AS (INSERT INTO fts_resource(rid, narrative, content) SELECT cur.rid, "
         "to_tsvector('simple', u.narrative), to_tsvector('simple', u.content) FROM cur, "
         "unnest(" + narrative + ", " + content + ") AS u(narrative, content) "
         "ON CONFLICT (rid) DO UPDATE SET narrative = excluded.narrative, "
         "content = excluded.content WHERE (fts_resource.narrative, fts_resource.content) "
         "IS DISTINCT FROM (excluded.narrative, excluded.content))";
    return s + " SELECT rid FROM cur";
  }();
  return sql;
}

// Collects one column of `rows` for an array parameter.
template <class Row, class F>
auto Column(const std::vector<Row>& rows, F field) {
  std::vector<std::decay_t<decltype(field(rows.front()))>> out;
  out.reserve(rows.size());
  for (const Row& r : rows) out.push_back(field(r));
  return out;
}

// A text column for an array parameter. PostgreSQL text cannot hold NUL (SQLite TEXT can, and
// a FHIR string that contains one passes validation): such a value is indexed without its NUL
// bytes, so that the write succeeds on both backends instead of failing here alone.
class TextColumns {
 public:
  template <class Row, class F>
  std::vector<std::string_view> operator()(const std::vector<Row>& rows, F field) {
    std::vector<std::string_view> out;
    out.reserve(rows.size());
    for (const Row& r : rows) out.push_back(WithoutNul(field(r)));
    return out;
  }

  // Keeps `s` alive as long as the columns handed out.
  std::string_view Own(std::string s) { return owned_.emplace_back(std::move(s)); }

  std::string_view WithoutNul(std::string_view s) {
    if (s.find('\0') == std::string_view::npos) return s;
    std::string& copy = owned_.emplace_back(s);
    std::erase(copy, '\0');
    return copy;
  }

 private:
  std::deque<std::string> owned_;  // stable addresses for the views handed out
};

Status PutVersion(PgConnection& c, const ResourceVersion& v, const IndexRows& index) {
  if (v.type.empty() || v.id.empty()) return Invalid("Put: resource type and id are required");
  if (v.version < 1) return Invalid("Put: version must be >= 1");
  using SV = std::string_view;
  const SV json = v.deleted ? SV() : SV(v.json);
  TextColumns text;
  PgParams p;
  p.Text(v.type).Bytes(v.id).Int(v.version).Int(v.last_updated_us).Bool(v.deleted).Bytes(json);
  // The arrays, table by table and column by column in IndexTables() order.
  const auto& tok = index.tokens;
  p.TextArray(text(tok, [](const TokenIndexRow& r) { return SV(r.param); }))
      .BytesArray(Column(tok, [](const TokenIndexRow& r) { return SV(r.code); }))
      .BytesArray(Column(tok, [](const TokenIndexRow& r) { return SV(r.system); }));
  const auto& str = index.strings;
  p.TextArray(text(str, [](const StringIndexRow& r) { return SV(r.param); }))
      .TextArray(text(str, [](const StringIndexRow& r) { return SV(r.value); }))
      .TextArray(text(str, [](const StringIndexRow& r) { return SV(r.exact); }));
  const auto& date = index.dates;
  p.TextArray(text(date, [](const DateIndexRow& r) { return SV(r.param); }))
      .IntArray(Column(date, [](const DateIndexRow& r) { return r.start_us; }))
      .IntArray(Column(date, [](const DateIndexRow& r) { return r.end_us; }));
  const auto& num = index.numbers;
  p.TextArray(text(num, [](const NumberIndexRow& r) { return SV(r.param); }))
      .FloatArray(Column(num, [](const NumberIndexRow& r) { return r.value; }));
  const auto& qty = index.quantities;
  p.TextArray(text(qty, [](const QuantityIndexRow& r) { return SV(r.param); }))
      .BytesArray(Column(qty, [](const QuantityIndexRow& r) { return SV(r.code); }))
      .BytesArray(Column(qty, [](const QuantityIndexRow& r) { return SV(r.system); }))
      .FloatArray(Column(qty, [](const QuantityIndexRow& r) { return r.value; }))
      .BytesArray(Column(qty, [](const QuantityIndexRow& r) { return SV(r.canonical_code); }))
      .FloatArray(Column(qty, [](const QuantityIndexRow& r) { return r.canonical_value; }));
  const auto& ref = index.references;
  p.TextArray(text(ref, [](const ReferenceIndexRow& r) { return SV(r.param); }))
      .BytesArray(Column(ref, [](const ReferenceIndexRow& r) { return SV(r.target_id); }))
      .TextArray(text(ref, [](const ReferenceIndexRow& r) { return SV(r.target_type); }))
      .TextArray(text(ref, [](const ReferenceIndexRow& r) { return SV(r.url); }));
  const auto& uri = index.uris;
  p.TextArray(text(uri, [](const UriIndexRow& r) { return SV(r.param); }))
      .TextArray(text(uri, [](const UriIndexRow& r) { return SV(r.value); }));
  const auto& comp = index.composites;
  p.TextArray(text(comp, [](const CompositeIndexRow& r) { return SV(r.param); }))
      .BytesArray(Column(comp, [](const CompositeIndexRow& r) { return SV(r.code1); }))
      .BytesArray(Column(comp, [](const CompositeIndexRow& r) { return SV(r.system1); }))
      .BytesArray(Column(comp, [](const CompositeIndexRow& r) { return SV(r.code2); }))
      .BytesArray(Column(comp, [](const CompositeIndexRow& r) { return SV(r.system2); }))
      .FloatArray(Column(comp, [](const CompositeIndexRow& r) { return r.number2; }))
      .IntArray(Column(comp, [](const CompositeIndexRow& r) { return r.start2_us; }))
      .IntArray(Column(comp, [](const CompositeIndexRow& r) { return r.end2_us; }))
      .BytesArray(Column(comp, [](const CompositeIndexRow& r) { return SV(r.canonical_code2); }))
      .FloatArray(Column(comp, [](const CompositeIndexRow& r) { return r.canonical_number2; }));
  // At most one full text row per resource (the port's rule; any further one is not stored).
  std::vector<SV> narrative, content;
  if (!index.full_text.empty()) {
    // As words only (pg_search.h, FullTextDocument), which search looks for.
    const FullTextIndexRow& ft = index.full_text.front();
    narrative.push_back(text.Own(FullTextDocument(CappedText(ft.narrative))));
    content.push_back(text.Own(FullTextDocument(CappedText(ft.content))));
  }
  p.TextArray(narrative).TextArray(content);
  if (p.size() != PutParamCount()) {
    return Internal("Put: parameter list out of step with the index tables");
  }
  JC_ASSIGN_OR_RETURN(PgResult r, c.Query(PutSql(), p));
  if (r.rows() == 0) {
    return Conflict("Put: " + v.type + "/" + v.id + " already has version " +
                    std::to_string(v.version) + " or newer (written concurrently)");
  }
  return Status::Ok();
}

// ---- read pool ---------------------------------------------------------------------------------

// Shared by the store and every open read transaction, so a transaction that outlives Close()
// still returns its connection somewhere valid (and the connection is then closed).
class ReadPool {
 public:
  // How long an idle connection may keep the transaction it last served open: a read
  // transaction's ROLLBACK normally rides with the connection's next statement (no round trip,
  // no extra wakeup of the server), and a connection idle for longer than this gets its
  // ROLLBACK sent on its own, so that no snapshot or lock outlives a read by more than this.
  static constexpr auto kEndDelay = std::chrono::milliseconds(5);

  ReadPool(std::string url, int size, int wait_ms)
      : url_(std::move(url)), size_(std::max(size, 1)), wait_ms_(wait_ms) {
    ender_ = std::thread([this] { EnderLoop(); });
  }
  ~ReadPool() { Close(); }
  ReadPool(const ReadPool&) = delete;
  ReadPool& operator=(const ReadPool&) = delete;

  Result<std::unique_ptr<PgConnection>> Acquire() {
    std::unique_lock lock(mu_);
    const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms_);
    for (;;) {
      if (closed_) return Error(ErrorCode::kUnavailable, "store is closed");
      if (!idle_.empty()) {
        auto conn = std::move(idle_.back().conn);
        idle_.pop_back();
        return conn;
      }
      if (open_ < size_) {
        ++open_;
        lock.unlock();
        auto conn = PgConnection::Open(url_);
        if (!conn.ok()) {
          lock.lock();
          --open_;
          cv_.notify_one();
        }
        return conn;
      }
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= size_) {
        return Error(ErrorCode::kUnavailable, "all postgres read connections are busy");
      }
    }
  }

  void Release(std::unique_ptr<PgConnection> conn) {
    std::lock_guard lock(mu_);
    // A broken connection (server restart) is dropped; the next Acquire opens a fresh one.
    if (closed_ || !conn->Healthy() || conn->InTransaction()) {
      --open_;
      cv_.notify_one();
      return;  // conn closes here
    }
    const bool end_pending = conn->EndPending();
    idle_.push_back(Idle{std::move(conn), Clock::now()});
    cv_.notify_one();
    // The ender only needs waking when it waits for nothing; otherwise it already waits for an
    // earlier deadline than this one.
    if (end_pending && ender_waits_for_work_) ender_cv_.notify_one();
  }

  void Close() {
    std::vector<Idle> idle;
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      open_ -= static_cast<int>(idle_.size());
      idle.swap(idle_);
      cv_.notify_all();
      ender_cv_.notify_all();
    }
    std::lock_guard join(join_mu_);
    if (ender_.joinable()) ender_.join();
  }

 private:
  struct Idle {
    std::unique_ptr<PgConnection> conn;
    Clock::time_point since;
  };

  // Sends the pending ROLLBACK of every connection idle for longer than kEndDelay.
  void EnderLoop() {
    std::unique_lock lock(mu_);
    while (!closed_) {
      auto oldest = idle_.end();
      for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        if (it->conn->EndPending() && (oldest == idle_.end() || it->since < oldest->since)) {
          oldest = it;
        }
      }
      if (oldest == idle_.end()) {
        ender_waits_for_work_ = true;
        ender_cv_.wait(lock);
        ender_waits_for_work_ = false;
        continue;
      }
      if (const auto due = oldest->since + kEndDelay; Clock::now() < due) {
        ender_cv_.wait_until(lock, due);
        continue;
      }
      // Out of the pool while the ROLLBACK is sent (no waiting for its answer).
      std::unique_ptr<PgConnection> conn = std::move(oldest->conn);
      idle_.erase(oldest);
      lock.unlock();
      conn->SendPendingEnd();
      lock.lock();
      if (closed_ || !conn->Healthy()) {
        --open_;
        cv_.notify_one();
        lock.unlock();
        conn.reset();
        lock.lock();
        continue;
      }
      // It was idle the longest: last in line for Acquire, which takes the newest.
      idle_.insert(idle_.begin(), Idle{std::move(conn), Clock::now()});
      cv_.notify_one();
    }
  }

  const std::string url_;
  const int size_;
  const int wait_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Idle> idle_;  // the newest last
  int open_ = 0;
  bool closed_ = false;
  std::condition_variable ender_cv_;
  bool ender_waits_for_work_ = false;
  std::mutex join_mu_;
  std::thread ender_;
};

class PgReadTransaction final : public IReadTransaction {
 public:
  PgReadTransaction(std::shared_ptr<ReadPool> pool, std::unique_ptr<PgConnection> conn,
                    const Timers& timers)
      : pool_(std::move(pool)), conn_(std::move(conn)), timers_(timers) {}
  ~PgReadTransaction() override {
    // The ROLLBACK goes out with the connection's next statement, or within ReadPool::kEndDelay
    // on its own: ending a read costs no round trip.
    conn_->EndLazily();
    pool_->Release(std::move(conn_));
  }

  Result<std::optional<ResourceVersion>> ReadCurrent(std::string_view type,
                                                     std::string_view id) override {
    ScopedTimer t(timers_.read);
    return QueryCurrent(*conn_, type, id);
  }
  Result<std::optional<ResourceVersion>> ReadVersion(std::string_view type, std::string_view id,
                                                     int64_t version) override {
    ScopedTimer t(timers_.read);
    return QueryVersion(*conn_, type, id, version);
  }
  Result<HistoryPage> History(const HistoryQuery& query) override {
    ScopedTimer t(timers_.history);
    return QueryHistory(*conn_, query);
  }
  Result<std::vector<std::string>> FindByToken(std::string_view type, std::string_view param,
                                               std::optional<std::string_view> system,
                                               std::string_view code, int limit) override {
    ScopedTimer t(timers_.read);
    return QueryByToken(*conn_, type, param, system, code, limit);
  }
  Result<int64_t> CountCurrent(std::string_view type) override {
    ScopedTimer t(timers_.read);
    return QueryCount(*conn_, type);
  }
  Result<std::vector<ResourceVersion>> ListCurrent(std::string_view type, int64_t offset,
                                                   int64_t count) override {
    ScopedTimer t(timers_.read);
    return QueryList(*conn_, type, offset, count);
  }
  Result<SearchPage> Search(const SearchQuery& query) override {
    ScopedTimer t(timers_.search);
    return QuerySearch(*conn_, query);
  }

 private:
  std::shared_ptr<ReadPool> pool_;
  std::unique_ptr<PgConnection> conn_;
  const Timers timers_;
};

// The transaction handed to a unit of work: the writer connection inside the group's
// transaction, so reads see the group's earlier uncommitted writes (serial semantics).
class PgWriteTransaction final : public IWriteTransaction {
 public:
  explicit PgWriteTransaction(PgConnection& conn) : conn_(conn) {}

  Result<std::optional<ResourceVersion>> ReadCurrent(std::string_view type,
                                                     std::string_view id) override {
    return QueryCurrent(conn_, type, id);
  }
  Result<std::optional<ResourceVersion>> ReadVersion(std::string_view type, std::string_view id,
                                                     int64_t version) override {
    return QueryVersion(conn_, type, id, version);
  }
  Result<HistoryPage> History(const HistoryQuery& query) override {
    return QueryHistory(conn_, query);
  }
  Result<std::vector<std::string>> FindByToken(std::string_view type, std::string_view param,
                                               std::optional<std::string_view> system,
                                               std::string_view code, int limit) override {
    return QueryByToken(conn_, type, param, system, code, limit);
  }
  Result<int64_t> CountCurrent(std::string_view type) override { return QueryCount(conn_, type); }
  Result<std::vector<ResourceVersion>> ListCurrent(std::string_view type, int64_t offset,
                                                   int64_t count) override {
    return QueryList(conn_, type, offset, count);
  }
  Result<SearchPage> Search(const SearchQuery& query) override { return QuerySearch(conn_, query); }
  Status Put(const ResourceVersion& version, const IndexRows& index) override {
    return PutVersion(conn_, version, index);
  }

 private:
  PgConnection& conn_;
};

// ---- the store and its writer ------------------------------------------------------------------

class PostgresStore final : public IStore {
 public:
  PostgresStore(std::unique_ptr<PgConnection> writer, std::shared_ptr<ReadPool> pool,
                const PostgresOptions& options)
      : options_(options),
        timers_(Timers::Make()),
        // READ COMMITTED is enough: the advisory lock makes writers of every process take
        // turns, and each statement after it sees everything committed before it was granted.
        // lock_timeout bounds that wait (and any row-lock wait after it) for the transaction.
        begin_sql_("BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = " +
                   std::to_string(std::max(options.write_lock_timeout_ms, 0)) +
                   "; SELECT pg_advisory_xact_lock(" + std::to_string(kLockSpace) + ", " +
                   std::to_string(kWriteLock) + ")"),
        writer_conn_(std::move(writer)),
        pool_(std::move(pool)) {
    writer_thread_ = std::thread([this] { WriterLoop(); });
    writer_id_ = writer_thread_.get_id();
  }
  ~PostgresStore() override { Close(); }

  Result<std::unique_ptr<IReadTransaction>> BeginRead() override {
    JC_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, pool_->Acquire());
    // REPEATABLE READ: the snapshot is taken at the first query and held until the end, so
    // every read of this transaction sees the same committed state. READ ONLY never blocks
    // or is blocked by writers. The BEGIN goes out with the first query, in its round trip
    // (a pooled connection the server dropped meanwhile is reopened then, see BeginLazily).
    conn->BeginLazily("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    return std::unique_ptr<IReadTransaction>(
        new PgReadTransaction(pool_, std::move(conn), timers_));
  }

  Status Write(const WriteWork& work) override {
    if (std::this_thread::get_id() == writer_id_) {
      // A unit of work that calls Write would wait for its own group forever.
      return Internal("IStore::Write called from inside a unit of work");
    }
    Pending p{&work};
    std::unique_lock lock(mu_);
    if (stopping_) return Error(ErrorCode::kUnavailable, "store is closed");
    queue_.push_back(&p);
    writer_cv_.notify_one();
    p.cv.wait(lock, [&] { return p.done; });
    return std::move(p.status);
  }

  void Close() override {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
      stopping_ = true;
      writer_cv_.notify_one();
    }
    // The writer drains what was queued before stopping_ and then exits.
    if (writer_thread_.joinable()) writer_thread_.join();
    pool_->Close();
    writer_conn_.reset();
  }

  std::string_view Backend() const override { return "postgres"; }

 private:
  struct Pending {
    const WriteWork* work;
    Status status;
    bool done = false;
    std::condition_variable cv;
  };

  void WriterLoop() {
    std::vector<Pending*> group;
    size_t last_group = 0;
    const auto window = std::chrono::microseconds(options_.group_commit_window_us);
    for (;;) {
      {
        std::unique_lock lock(mu_);
        writer_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and drained
        // The previous group's callers were just woken and are likely about to submit again:
        // waiting a fraction of a WAL flush lets them share the next COMMIT.
        if (!stopping_ && queue_.size() < last_group && window.count() > 0) {
          writer_cv_.wait_for(lock, window,
                              [&] { return stopping_ || queue_.size() >= last_group; });
        }
        const size_t n = std::min(queue_.size(), static_cast<size_t>(options_.max_group));
        group.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      }
      last_group = group.size();
      RunGroup(group);
      {
        std::lock_guard lock(mu_);
        for (Pending* p : group) {
          p->done = true;
          p->cv.notify_one();
        }
      }
      group.clear();
    }
  }

  static Status RunWork(const WriteWork& work, IWriteTransaction& txn) {
    // A throwing unit of work must not take the writer thread (and every later caller) down.
    try {
      return work(txn);
    } catch (const std::exception& e) {
      return Internal(std::string("unit of work threw: ") + e.what());
    } catch (...) {
      return Internal("unit of work threw");
    }
  }

  // Opens the group's transaction and takes the write lock that serializes writers of every
  // process. Nothing of the group has run yet, so this step alone is retried (see
  // postgres_store.h): a broken connection is reopened, a transient failure tried again after a
  // short backoff, at most begin_attempts times.
  Status Begin(PgConnection& c) {
    for (int attempt = 1;; ++attempt) {
      Status s = c.Healthy() ? Status::Ok() : c.Reset();
      if (s.ok()) s = c.Exec(begin_sql_);
      if (s.ok()) return s;
      const std::string sqlstate = c.LastSqlState();
      if (c.InTransaction()) (void)c.Exec("ROLLBACK");
      Error e = std::move(s).error();
      if (sqlstate == "55P03") {
        return Error(ErrorCode::kUnavailable,
                     "postgres: waited more than " +
                         std::to_string(options_.write_lock_timeout_ms) +
                         " ms for the write lock, held by another jiceng process or session "
                         "(pg_locks: advisory lock " + std::to_string(kLockSpace) + "/" +
                         std::to_string(kWriteLock) + "); try again later");
      }
      if (e.code != ErrorCode::kUnavailable) return e;
      if (attempt >= options_.begin_attempts) {
        e.message = "postgres: could not open a write transaction in " +
                    std::to_string(attempt) + " attempts: " + e.message;
        return e;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50 << std::min(attempt, 5)));
    }
  }

  // Runs every unit of the group in its own savepoint of one transaction and commits once.
  void RunGroup(const std::vector<Pending*>& group) {
    ScopedTimer group_timer(timers_.write_group);
    PgConnection& c = *writer_conn_;
    PgWriteTransaction txn(c);
    if (Status s = Begin(c); !s.ok()) {
      for (Pending* p : group) p->status = s;
      return;
    }
    const bool savepoints = group.size() > 1;
    for (Pending* p : group) {
      if (!savepoints) {
        p->status = RunWork(*p->work, txn);
        break;
      }
      if (Status s = c.Exec("SAVEPOINT w"); !s.ok()) {
        p->status = std::move(s);
        continue;
      }
      p->status = RunWork(*p->work, txn);
      // RELEASE fails if a statement of the unit failed and the unit ignored it: the unit then
      // fails too, rather than commit half of its writes.
      if (p->status.ok()) {
        if (Status s = c.Exec("RELEASE SAVEPOINT w"); !s.ok()) p->status = std::move(s);
      }
      if (!p->status.ok()) (void)c.Exec("ROLLBACK TO SAVEPOINT w; RELEASE SAVEPOINT w");
    }
    if (!savepoints && !group.front()->status.ok()) {
      (void)c.Exec("ROLLBACK");
      return;
    }
    ScopedTimer t(timers_.commit);
    Status commit = c.Exec("COMMIT");
    if (!commit.ok()) {
      if (c.InTransaction()) (void)c.Exec("ROLLBACK");
      for (Pending* p : group) {
        if (p->status.ok()) p->status = commit;
      }
    }
  }

  const PostgresOptions options_;
  const Timers timers_;
  const std::string begin_sql_;
  std::unique_ptr<PgConnection> writer_conn_;  // used only by the writer thread until Close
  std::shared_ptr<ReadPool> pool_;

  std::mutex mu_;
  std::condition_variable writer_cv_;
  std::deque<Pending*> queue_;
  bool stopping_ = false;
  bool closed_ = false;
  std::thread writer_thread_;
  std::thread::id writer_id_;
};

}  // namespace
}  // namespace postgres

Result<std::unique_ptr<IStore>> OpenPostgresStore(const std::string& url,
                                                  const PostgresOptions& options) {
  using postgres::PgConnection;
  if (options.read_connections < 1 || options.max_group < 1 || options.begin_attempts < 1) {
    return Invalid(
        "postgres options: read_connections, max_group and begin_attempts must be >= 1");
  }
  JC_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> writer, PgConnection::Open(url));
  JC_RETURN_IF_ERROR(postgres::ApplyMigrations(*writer, postgres::Migrations()));
  auto pool = std::make_shared<postgres::ReadPool>(url, options.read_connections,
                                                   options.pool_wait_ms);
  return std::unique_ptr<IStore>(new postgres::PostgresStore(std::move(writer), std::move(pool),
                                                             options));
}

}  // namespace jiceng::store
