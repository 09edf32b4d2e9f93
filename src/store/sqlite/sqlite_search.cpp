#include "store/sqlite/sqlite_search.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <variant>
#include <vector>

#include "store/sql/search_sql.h"
#include "store/sqlite/bulk_index_build.h"
#include "store/sqlite/connection.h"
#include "store/sqlite/sqlite_schema.h"

namespace jiceng::store::sqlite {
namespace {

using sql::SqlBuilder;
using sql::SqlType;

// Every SQLite-specific spelling of the search SQL (see sql::Dialect).
class Dialect final : public sql::Dialect {
 public:
  // Ids, codes and systems are TEXT here: every string binds as text.
  std::string Placeholder(size_t n, SqlType) const override { return "?" + std::to_string(n); }

  // SQLite has no boolean type.
  std::string_view True() const override { return "1"; }
  std::string_view False() const override { return "0"; }

  // As resource_live_by_type is declared (WHERE deleted = 0).
  std::string Live(const std::string& alias) const override { return alias + ".deleted = 0"; }

  // 0xFF never occurs in UTF-8, so [prefix, prefix + 0xFF) is exactly the strings starting
  // with prefix, and the condition stays a range scan on the key.
  std::string StartsWith(SqlBuilder& b, const std::string& col, SqlType type,
                         const std::string& prefix) const override {
    const std::string lo = b.Bind(prefix, type);
    const std::string hi = b.Bind(prefix + "\xFF", type);
    return "(" + col + " >= " + lo + " AND " + col + " < " + hi + ")";
  }

  std::string Contains(SqlBuilder& b, const std::string& col, SqlType type,
                       const std::string& needle) const override {
    return "instr(" + col + ", " + b.Bind(needle, type) + ") > 0";
  }

  // The rids of fts_resource (an FTS5 table, rowid = rid) matching every word of one of the
  // values. Words are already in full-text form; a word of several tokens (a CJK run) is a
  // phrase, and the last token of each word matches as a prefix. Without a column filter a
  // phrase may occur in either column (_content covers the narrative too).
  std::string FullText(SqlBuilder& b, const SearchClause& c,
                       const std::string& alias) const override {
    std::string expr;
    for (const SearchValue& v : c.any_of) {
      std::string all;
      for (const std::string& w : v.words) {
        std::string phrase;
        for (char ch : w) phrase += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        all += (all.empty() ? "\"" : " AND \"") + phrase + "\" *";
      }
      if (!all.empty()) expr += (expr.empty() ? "(" : " OR (") + all + ")";
    }
    if (expr.empty()) return std::string(False());
    if (c.param == "_text") expr = "narrative : (" + expr + ")";
    return alias + ".rid IN (SELECT rowid FROM fts_resource WHERE fts_resource MATCH " +
           b.Bind(expr, SqlType::kText) + ")";
  }

  // The idx_* tables have no index on rid here (migration 4): the resource's own index keys
  // (resource_index_keys, see index_keys.h) hold every value of the parameter, and jc_sort_key
  // picks the lowest ascending and the highest descending.
  // A parameter stored as the union of others (SortKey::union_of) sorts by the lowest (highest)
  // of its parts' values: min() and max() skip the parts without one.
  std::string SortValue(SqlBuilder& b, const SortKey& k, const std::string& alias) const override {
    auto one = [&](const std::string& param) {
      return "SELECT jc_sort_key(keys, " + std::to_string(static_cast<int>(k.kind)) + ", " +
             b.Bind(param, SqlType::kText) + ", " + (k.descending ? "1" : "0") +
             ") AS v FROM resource_index_keys WHERE rid = " + alias + ".rid";
    };
    if (k.union_of.empty()) return "(" + one(k.param) + ")";
    std::string parts;
    for (const std::string& p : k.union_of) parts += (parts.empty() ? "" : " UNION ALL ") + one(p);
    return std::string("(SELECT ") + (k.descending ? "max" : "min") + "(v) FROM (" + parts + "))";
  }

  std::string OrderTerm(const std::string& expr, bool descending, bool nulls_first) const override {
    return expr + (descending ? " DESC" : " ASC") + (nulls_first ? " NULLS FIRST" : " NULLS LAST");
  }

  // jc_rows (index_rows_vtab.cpp) presents the resource's own index rows, decoded from its
  // keys, with the idx_* columns: the probe is the index scan's own condition.
  std::string ProbeExists(const char*, SearchKind kind, const std::string& alias,
                          const std::string& cond) const override {
    return "EXISTS (SELECT 1 FROM jc_rows((SELECT keys FROM resource_index_keys WHERE rid = " +
           alias + ".rid), " + std::to_string(static_cast<int>(kind)) + ") WHERE " + cond + ")";
  }

  // Every rid of the parameter, collected once from the index's primary key, and each resource
  // looked up in that set: probing each resource's own index keys instead cost ~4.6 us a
  // resource (the undated of 17,490 Encounters: 81 ms, this form 18; measured before probes
  // decoded only the kind they test, 345dc95).
  std::string HasNoRow(sql::SqlBuilder& b, const char* table, SearchKind, const std::string& alias,
                       const std::string& type, const std::string& param) const override {
    return alias + ".rid NOT IN (SELECT rid FROM " + table +
           " WHERE type = " + b.Bind(type, sql::SqlType::kText) +
           " AND param = " + b.Bind(param, sql::SqlType::kText) + ")";
  }

  bool IntersectsCollectedScans() const override { return true; }
  bool LooseScansCompositeKeys() const override { return true; }

  // "+id" is not indexable, so with criteria SQLite filters first and sorts the page after.
  std::string IdTiebreak(const std::string& alias, bool with_criteria) const override {
    return (with_criteria ? "+" : "") + alias + ".id";
  }
};

void BindAll(Stmt& s, const std::vector<sql::Param>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    const int n = static_cast<int>(i) + 1;
    if (const auto* iv = std::get_if<int64_t>(&params[i].value))
      s.BindInt(n, *iv);
    else if (const auto* dv = std::get_if<double>(&params[i].value))
      s.BindDouble(n, *dv);
    else
      s.BindText(n, std::get<std::string>(params[i].value));
  }
}

}  // namespace

const sql::Dialect& SqliteDialect() {
  static const Dialect dialect;
  return dialect;
}

namespace {

// The slow-search log: a search whose SQL takes longer than JICENG_SLOW_SEARCH_MS milliseconds
// (environment, read once; unset or 0: off) is logged with its SQL, its bound values and
// SQLite's query plan, like PostgreSQL's log_min_duration_statement (docs/operations.md).
int64_t SlowSearchMs() {
  static const int64_t ms = [] {
    const char* v = std::getenv("JICENG_SLOW_SEARCH_MS");
    return v ? std::max<int64_t>(0, std::strtoll(v, nullptr, 10)) : 0;
  }();
  return ms;
}

void LogSlowSearch(Connection& c, const sql::Statement& st, double ms) {
  std::string plan;
  sqlite3_stmt* raw = nullptr;
  const std::string explain = "EXPLAIN QUERY PLAN " + st.sql;
  if (sqlite3_prepare_v2(c.handle(), explain.c_str(), -1, &raw, nullptr) == SQLITE_OK) {
    {
      Stmt s(c.handle(), raw);  // resets on leaving the block
      BindAll(s, st.params);
      while (sqlite3_step(raw) == SQLITE_ROW) {
        const auto* detail = sqlite3_column_text(raw, 3);
        plan += "\n  " + std::to_string(sqlite3_column_int(raw, 0)) + "<" +
                std::to_string(sqlite3_column_int(raw, 1)) + " " +
                (detail ? reinterpret_cast<const char*>(detail) : "");
      }
    }
    sqlite3_finalize(raw);
  }
  std::string values;
  for (const sql::Param& p : st.params) {
    values += values.empty() ? "" : ", ";
    std::visit(
        [&](const auto& v) {
          if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string>) {
            values += "'" + v + "'";
          } else {
            values += std::to_string(v);
          }
        },
        p.value);
  }
  spdlog::warn("slow search: {:.1f} ms\n{}\nvalues: {}\nplan:{}", ms, st.sql, values, plan);
}

// Runs `st` through `use` (which steps it), logging it if slow.
template <typename Use>
Status Timed(Connection& c, const sql::Statement& st, Use&& use) {
  const auto start = std::chrono::steady_clock::now();
  Status status = use();
  if (SlowSearchMs() > 0) {
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (ms >= static_cast<double>(SlowSearchMs())) LogSlowSearch(c, st, ms);
  }
  return status;
}

// Counts index rows for the planner (sql::RowEstimator) on the search's own connection, so in
// the same snapshot.
class Estimator final : public sql::RowEstimator {
 public:
  explicit Estimator(Connection& c) : c_(c) {}
  std::optional<int64_t> CountRows(const sql::Statement& st) override {
    auto raw = c_.Prepare(st.sql);  // cached per shape by the connection
    if (!raw.ok()) return std::nullopt;
    Stmt s(c_.handle(), *raw);
    BindAll(s, st.params);
    std::optional<int64_t> rows;
    const Status status = Timed(c_, st, [&]() -> Status {
      JC_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) rows = s.ColumnInt(0);
      return Status::Ok();
    });
    return status.ok() ? rows : std::nullopt;
  }

 private:
  Connection& c_;
};

// Each statement of a compiled search on one connection (sql::RunCompiledSearch runs them).
class SqliteStatements final : public sql::SearchStatements {
 public:
  explicit SqliteStatements(Connection& c) : c_(c) {}
  Result<std::optional<int64_t>> Page(const sql::Statement& st, bool page_total,
                                      std::vector<ResourceVersion>& entries) override {
    JC_SQL_STMT(s, c_, st.sql);
    BindAll(s, st.params);
    std::optional<int64_t> counted;
    JC_RETURN_IF_ERROR(Timed(c_, st, [&]() -> Status {
      for (;;) {
        JC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return Status::Ok();
        if (page_total && !counted) counted = s.ColumnInt(6);
        entries.push_back(RowToVersion(s));
      }
    }));
    return counted;
  }
  // The page and total from every match (sql::CompiledSearch::all).
  Status All(const SearchQuery& q, const sql::CompiledSearch& compiled, SearchPage& page) override;
  // The page of a walk (sql::CompiledSearch::walk, then rest).
  Status Walk(const SearchQuery& q, const sql::CompiledSearch& compiled, SearchPage& page) override;
  Result<int64_t> Count(const sql::Statement& st) override {
    JC_SQL_STMT(s, c_, st.sql);
    BindAll(s, st.params);
    int64_t counted = 0;
    JC_RETURN_IF_ERROR(Timed(c_, st, [&]() -> Status {
      JC_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) counted = s.ColumnInt(0);
      return Status::Ok();
    }));
    return counted;
  }
  Result<std::vector<SortValue>> SortValues(const sql::Statement& st,
                                            const std::vector<SortKey>& keys) override {
    JC_SQL_STMT(s, c_, st.sql);
    BindAll(s, st.params);
    JC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::vector<SortValue>();
    return sql::ReadSortValues(
        keys, [&](int col) { return s.ColumnIsNull(col); },
        [&](int col) { return s.ColumnInt(col); }, [&](int col) { return s.ColumnDouble(col); },
        [&](int col) { return s.ColumnText(col); });
  }

 private:
  Connection& c_;
};

}  // namespace

Status SqliteStatements::All(const SearchQuery& q, const sql::CompiledSearch& compiled,
                             SearchPage& page) {
  Connection& c = c_;
  std::vector<int64_t> rids;
  std::vector<std::string> ids;
  {
    JC_SQL_STMT(s, c, compiled.all->sql);
    BindAll(s, compiled.all->params);
    JC_RETURN_IF_ERROR(Timed(c, *compiled.all, [&]() -> Status {
      for (;;) {
        JC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return Status::Ok();
        rids.push_back(s.ColumnInt(0));
        if (static_cast<int64_t>(ids.size()) < q.list_ids_up_to) ids.push_back(s.ColumnText(1));
      }
    }));
  }
  // After a position the rows are only those past it: the count statement gives the total.
  if (q.with_total && !q.after) {
    page.total = sql::TotalFromCount(q, static_cast<int64_t>(rids.size()));
  }
  if (q.list_ids_up_to > 0 && static_cast<int64_t>(rids.size()) <= q.list_ids_up_to) {
    page.all_ids = std::move(ids);
  }
  const auto offset = static_cast<size_t>(std::max<int64_t>(q.offset, 0));
  JC_SQL_STMT(s, c,
              std::string("SELECT ") + sql::PageColumns(q) + " FROM resource r WHERE r.rid = ?1");
  for (size_t i = offset; i < rids.size() && i - offset < static_cast<size_t>(q.count); ++i) {
    s.BindInt(1, rids[i]);
    JC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Internal("search: a matched resource row vanished");
    page.entries.push_back(RowToVersion(s));
    s.Reset();
  }
  return Status::Ok();
}

Status SqliteStatements::Walk(const SearchQuery& q, const sql::CompiledSearch& compiled,
                              SearchPage& page) {
  Connection& c = c_;
  const auto offset = static_cast<size_t>(std::max<int64_t>(q.offset, 0));
  const auto count = static_cast<size_t>(q.count);
  size_t distinct = 0;
  bool ended = true;  // the walk ran out before the page was full
  {
    JC_SQL_STMT(s, c, compiled.walk->sql);
    BindAll(s, compiled.walk->params);
    std::unordered_set<int64_t> seen;
    JC_RETURN_IF_ERROR(Timed(c, *compiled.walk, [&]() -> Status {
      for (;;) {
        JC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return Status::Ok();
        if (!seen.insert(s.ColumnInt(6)).second) continue;
        if (++distinct <= offset) continue;
        page.entries.push_back(RowToVersion(s));
        if (page.entries.size() == count) {
          ended = false;
          return Status::Ok();
        }
      }
    }));
  }
  if (!ended || !compiled.rest) return Status::Ok();  // no rest: a walk backward from a value
  std::vector<sql::Param> params = compiled.rest->params;
  params[params.size() - 2].value = static_cast<int64_t>(count - page.entries.size());
  params[params.size() - 1].value = static_cast<int64_t>(offset > distinct ? offset - distinct : 0);
  const sql::Statement rest{compiled.rest->sql, std::move(params)};
  JC_SQL_STMT(s, c, rest.sql);
  BindAll(s, rest.params);
  return Timed(c, rest, [&]() -> Status {
    for (;;) {
      JC_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::Ok();
      page.entries.push_back(RowToVersion(s));
    }
  });
}

namespace {

Result<SearchPage> QuerySearchUnbounded(Connection& c, const SearchQuery& q,
                                        sql::EstimateCache* estimates) {
  JC_RETURN_IF_ERROR(RequireSearchIndexes(c));
  Estimator estimator(c);
  sql::EstimateCache::Estimator cached(estimator, estimates);
  const sql::CompiledSearch compiled = sql::CompileSearch(q, SqliteDialect(), &cached);
  SqliteStatements run(c);
  return sql::RunCompiledSearch(q, compiled, run);
}

// SearchQuery::timeout_ms on SQLite: a progress handler, called every kProgressSteps virtual
// machine steps of the connection's statements, interrupts them once the deadline has passed
// (the statement then fails with SQLITE_INTERRUPT).
class SearchDeadline {
 public:
  SearchDeadline(Connection& c, int64_t timeout_ms) : c_(c) {
    if (timeout_ms <= 0) return;
    deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    sqlite3_progress_handler(c_.handle(), kProgressSteps, &SearchDeadline::Check, this);
    armed_ = true;
  }
  ~SearchDeadline() {
    if (armed_) sqlite3_progress_handler(c_.handle(), 0, nullptr, nullptr);
  }
  SearchDeadline(const SearchDeadline&) = delete;
  SearchDeadline& operator=(const SearchDeadline&) = delete;
  bool fired() const { return fired_; }

 private:
  static constexpr int kProgressSteps = 1000;
  static int Check(void* self) {
    auto* d = static_cast<SearchDeadline*>(self);
    if (std::chrono::steady_clock::now() < d->deadline_) return 0;
    d->fired_ = true;
    return 1;
  }
  Connection& c_;
  std::chrono::steady_clock::time_point deadline_;
  bool armed_ = false;
  bool fired_ = false;
};

}  // namespace

Result<SearchPage> QuerySearch(Connection& c, const SearchQuery& q, sql::EstimateCache* estimates) {
  SearchDeadline deadline(c, q.timeout_ms);
  Result<SearchPage> page = QuerySearchUnbounded(c, q, estimates);
  if (!page.ok() && deadline.fired()) return SearchTimedOut(q.timeout_ms);
  return page;
}

}  // namespace jiceng::store::sqlite
