#include "store/postgres/pg_search.h"

#include <algorithm>
#include <unordered_set>
#include <variant>

#include "base/utf8.h"
#include "store/postgres/pg_connection.h"
#include "store/sql/search_sql.h"

namespace jiceng::store::postgres {
namespace {

using sql::SqlBuilder;
using sql::SqlType;

// PostgreSQL text cannot hold NUL: Put indexes text without its NUL bytes (postgres_store.cpp),
// and searches compare with the same form.
std::string WithoutNul(std::string s) {
  std::erase(s, '\0');
  return s;
}

// Every PostgreSQL-specific spelling of the search SQL (see sql::Dialect).
class Dialect final : public sql::Dialect {
 public:
  // The cast names the parameter's type in the text itself (the same shape always binds the
  // same types), so the statement reads alone in pg_stat_statements or EXPLAIN.
  std::string Placeholder(size_t n, SqlType type) const override {
    const char* cast = "text";
    switch (type) {
      case SqlType::kInt:
        cast = "int8";
        break;
      case SqlType::kReal:
        cast = "float8";
        break;
      case SqlType::kText:
        cast = "text";
        break;
      case SqlType::kBytes:
        cast = "bytea";
        break;
    }
    return "$" + std::to_string(n) + "::" + cast;
  }

  std::string_view True() const override { return "TRUE"; }
  std::string_view False() const override { return "FALSE"; }

  // As resource_live_by_type is declared (WHERE NOT deleted).
  std::string Live(const std::string& alias) const override { return "NOT " + alias + ".deleted"; }

  // A range on the key in both cases, with both bounds parameters, so that it stays an index
  // range in a generic plan too (starts_with() and ^@ become one only for a constant prefix).
  // bytea may hold 0xFF, which UTF-8 never does: [prefix, prefix || 0xFF) as on SQLite. text may
  // not: the bound is the next text in code point order (PrefixUpperBound).
  std::string StartsWith(SqlBuilder& b, const std::string& col, SqlType type,
                         const std::string& prefix) const override {
    if (type == SqlType::kBytes) {
      const std::string lo = b.Bind(prefix, type);
      const std::string hi = b.Bind(prefix + "\xFF", type);
      return "(" + col + " >= " + lo + " AND " + col + " < " + hi + ")";
    }
    const std::string text = WithoutNul(prefix);
    const std::string lo = b.Bind(text, type);
    const std::optional<std::string> upper = PrefixUpperBound(text);
    if (!upper) return col + " >= " + lo;
    return "(" + col + " >= " + lo + " AND " + col + " < " + b.Bind(*upper, type) + ")";
  }

  // position() exists for text and bytea alike.
  std::string Contains(SqlBuilder& b, const std::string& col, SqlType type,
                       const std::string& needle) const override {
    return "position(" + b.Bind(needle, type) + " IN " + col + ") > 0";
  }

  // fts_resource (rid, narrative tsvector, content tsvector), each column with a GIN index. Every
  // word of a value is its own tsquery (WordQuery): _text looks for it in the narrative, _content
  // in either column — a word may be in one and the next in the other, as FTS5 finds them.
  std::string FullText(SqlBuilder& b, const SearchClause& c,
                       const std::string& alias) const override {
    const bool narrative_only = c.param == "_text";
    std::string any;
    for (const SearchValue& v : c.any_of) {
      std::string all;
      bool possible = !v.words.empty();
      for (const std::string& w : v.words) {
        const std::string query = WordQuery(w);
        if (query.empty()) {
          possible = false;  // a word without word characters occurs nowhere
          break;
        }
        const std::string q = "to_tsquery('simple', " + b.Bind(query, SqlType::kText) + ")";
        all += (all.empty() ? "" : " AND ") +
               (narrative_only ? "narrative @@ " + q
                               : "(narrative @@ " + q + " OR content @@ " + q + ")");
      }
      if (possible) any += (any.empty() ? "(" : " OR (") + all + ")";
    }
    if (any.empty()) return std::string(False());
    return alias + ".rid IN (SELECT rid FROM fts_resource WHERE " + any + ")";
  }

  // Every idx_* table has an index on rid here: the value is read from the resource's own rows of
  // the parameter.
  std::string SortValue(SqlBuilder& b, const SortKey& k, const std::string& alias) const override {
    const char* table = nullptr;
    const char* column = "value";
    switch (k.kind) {
      case SearchKind::kString:
        table = "idx_string";
        break;
      case SearchKind::kToken:
        table = "idx_token", column = "code";
        break;
      case SearchKind::kDate:
        table = "idx_date", column = k.descending ? "end_us" : "start_us";
        break;
      case SearchKind::kNumber:
        table = "idx_number";
        break;
      case SearchKind::kQuantity:
        table = "idx_quantity";
        break;
      case SearchKind::kReference:
        table = "idx_reference", column = "target_id";
        break;
      case SearchKind::kUri:
        table = "idx_uri";
        break;
      default:
        return "NULL";
    }
    // The lowest or highest by ORDER BY … LIMIT 1 rather than min()/max(): PostgreSQL has no
    // min(bytea) (ids, codes), and both read the same few rows through the rid index.
    // A parameter stored as the union of others (SortKey::union_of): the rows of its parts.
    return std::string("(SELECT ") + column + " FROM " + table + " WHERE rid = " + alias +
           ".rid AND " + sql::ParamCond(b, k.param, k.union_of) +
           // "system|" token rows have no code to sort by (fhir/search AddToken).
           (k.kind == SearchKind::kToken ? " AND code <> ''" : "") + " ORDER BY " + column +
           (k.descending ? " DESC" : " ASC") + " LIMIT 1)";
  }

  std::string OrderTerm(const std::string& expr, bool descending, bool nulls_first) const override {
    return expr + (descending ? " DESC" : " ASC") + (nulls_first ? " NULLS FIRST" : " NULLS LAST");
  }

  // The idx_* tables have an index on rid here (pg_schema.cpp).
  std::string ProbeExists(const char* table, SearchKind, const std::string& alias,
                          const std::string& cond) const override {
    return std::string("EXISTS (SELECT 1 FROM ") + table + " WHERE rid = " + alias + ".rid AND " +
           cond + ")";
  }

  std::string IdTiebreak(const std::string& alias, bool) const override { return alias + ".id"; }

  // PostgreSQL's planner reads a candidate's heap row (its JSON included) wherever the columns
  // it returns need it, and sorts the candidates with it: `Observation?code=85354-9&date=2025-06`
  // over a 100,000-resident county read 21,484 rows to keep 50 (176 ms). The rids alone come from
  // resource's covering key; ARRAY(…) keeps the order of its subquery, WITH ORDINALITY numbers it.
  bool ReadsPageRowsLast() const override { return true; }
  std::string InOrder(const std::string& rids, const std::string& alias) const override {
    return "unnest(ARRAY(" + rids + ")) WITH ORDINALITY AS " + alias + "(rid, n)";
  }

  // A scalar subquery is never pulled up into a join: the EXISTS stays a per-row SubPlan, and
  // the walk an index scan of resource (type, id) in page order that stops at its LIMIT.
  // A test in its WHERE, not its select list: an uncorrelated "rid IN (…)" there (a chain's set)
  // is a qualification PostgreSQL hashes once and tests each row against.
  std::string PerRow(const std::string& test) const override {
    return "(SELECT TRUE WHERE " + test + ")";
  }

  // Nested CASEs: PostgreSQL evaluates a CASE's branches in order, each only when reached, where
  // it reorders the terms of an AND by their estimated cost.
  std::string InTurn(const std::vector<std::string>& tests) const override {
    if (tests.empty()) return std::string(True());
    std::string sql = tests.back();
    for (size_t i = tests.size() - 1; i-- > 0;) {
      sql = "CASE WHEN " + tests[i] + " THEN " + sql + " END";
    }
    return tests.size() == 1 ? sql : "(" + sql + ")";
  }

  // The keys under a composite's code listed first, one seek each (sql CompositeKeys), and each
  // key's rows sought for the value (a lateral join): `Observation?component-code-value-
  // quantity=8480-6$gt180` over a 100,000-resident county read all 195,116 systolic rows of the
  // code to keep 777 (36-53 ms a page).
  bool LooseScansCompositeKeys() const override { return true; }
  bool SeeksCompositeKeys() const override { return true; }
  std::string Least(const std::string& column, const std::string& from) const override {
    return "(SELECT " + column + " " + from + " ORDER BY " + column + " LIMIT 1)";
  }

  // The row counts choose the driving clause, the walk and the collect-all page here, not the
  // form of the other clauses (sql::Dialect::CollectsCountedClauses).
  bool CollectsCountedClauses() const override { return false; }
  bool IntersectsChainsWithDriver() const override { return true; }
  bool NumbersAll() const override { return true; }
};

PgParams ToPgParams(const std::vector<sql::Param>& params) {
  PgParams out;
  for (const sql::Param& p : params) {
    if (const auto* i = std::get_if<int64_t>(&p.value)) {
      out.Int(*i);
    } else if (const auto* d = std::get_if<double>(&p.value)) {
      out.Float(*d);
    } else if (p.type == SqlType::kBytes) {
      out.Bytes(std::get<std::string>(p.value));
    } else {
      out.Text(WithoutNul(std::get<std::string>(p.value)));
    }
  }
  return out;
}

// tsquery syntax: a quoted lexeme with ' and \ escaped.
void AppendQuoted(std::string_view word, std::string& out) {
  out += '\'';
  for (char ch : word) {
    if (ch == '\'' || ch == '\\') out += ch == '\'' ? '\'' : '\\';
    out += ch;
  }
  out += '\'';
}

}  // namespace

const sql::Dialect& PostgresDialect() {
  static const Dialect dialect;
  return dialect;
}

std::optional<std::string> PrefixUpperBound(std::string_view prefix) {
  std::optional<std::vector<char32_t>> cps = DecodeUtf8(prefix);
  if (!cps) return std::nullopt;
  while (!cps->empty()) {
    char32_t next = cps->back() + 1;
    cps->pop_back();
    if (next == 0xD800) next = 0xE000;
    if (next > 0x10FFFF) continue;  // carry into the previous code point
    cps->push_back(next);
    std::string out;
    for (char32_t cp : *cps) AppendUtf8(cp, out);
    return out;
  }
  return std::nullopt;
}

std::string WordQuery(std::string_view word) {
  std::string out;
  for (std::string_view token : sql::FullTextWords(word)) {
    if (!out.empty()) out += " <-> ";
    AppendQuoted(token, out);
  }
  if (!out.empty()) out += ":*";
  return out;
}

std::string FullTextDocument(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::string_view word : sql::FullTextWords(text)) {
    if (!out.empty()) out += ' ';
    out += word;
  }
  return out;
}

namespace {

// Counts index rows for the planner (sql::RowEstimator) on the search's own connection, so in
// the same snapshot. PostgreSQL's own estimates come from a sample of each column's values and
// a prepared statement's generic plan ignores the values altogether: a search whose plan rested
// on them flipped between 80 ms and 800 ms from one ANALYZE (or one sixth execution) to the next
// (docs/benchmarks.md, issue 4). The counts make the few decisions that matter — walk the date
// index in page order, or collect the few matches and sort them — the same on both backends.
class Estimator final : public sql::RowEstimator {
 public:
  explicit Estimator(PgConnection& c) : c_(c) {}
  std::optional<int64_t> CountRows(const sql::Statement& st) override {
    if (failure_) return std::nullopt;  // the transaction is aborted: nothing more can run
    auto r = c_.Query(st.sql, ToPgParams(st.params));
    if (!r.ok()) {
      failure_ = r.error();
      return std::nullopt;
    }
    if (r->rows() == 0) return std::nullopt;
    return r->Int(0, 0);
  }
  // A count that failed (a timeout, a lost connection) has aborted the transaction: the search
  // fails with it rather than run on.
  const std::optional<Error>& failure() const { return failure_; }

 private:
  PgConnection& c_;
  std::optional<Error> failure_;
};

// Runs `sql` (a SET LOCAL) in the round trip of the transaction's next statement (with its BEGIN
// when that has not been sent yet), or on its own outside a transaction. Sent on its own, the
// two settings of a search after a read in the same transaction (a compartment search checks
// its resource first) cost two round trips of their own.
Status SetLocal(PgConnection& c, std::string sql) {
  if (c.Defer(sql)) return Status::Ok();
  return c.Exec(sql);
}

// Each statement of a compiled search on one connection (sql::RunCompiledSearch runs them).
class PgStatements final : public sql::SearchStatements {
 public:
  // `each_time`: the search's statements are planned for their values each time
  // (sql::CompiledSearch::plan_each_time, PgConnection::Query).
  PgStatements(PgConnection& c, bool each_time) : c_(c), each_(each_time) {}
  Result<std::optional<int64_t>> Page(const sql::Statement& st, bool page_total,
                                      std::vector<ResourceVersion>& entries) override {
    JC_ASSIGN_OR_RETURN(PgResult r, c_.Query(st.sql, ToPgParams(st.params), each_));
    entries.reserve(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) entries.push_back(RowToVersion(r, i));
    if (page_total && r.rows() > 0) return std::optional<int64_t>(r.Int(0, 6));
    return std::optional<int64_t>();
  }
  // The page and total from every match (sql::CompiledSearch::all).
  Status All(const SearchQuery& q, const sql::CompiledSearch& compiled, SearchPage& page) override;
  // The page of a walk (sql::CompiledSearch::walk, then rest).
  Status Walk(const SearchQuery& q, const sql::CompiledSearch& compiled, SearchPage& page) override;
  Result<int64_t> Count(const sql::Statement& st) override {
    JC_ASSIGN_OR_RETURN(PgResult r, c_.Query(st.sql, ToPgParams(st.params), each_));
    return r.rows() ? r.Int(0, 0) : 0;
  }
  Result<std::vector<SortValue>> SortValues(const sql::Statement& st,
                                            const std::vector<SortKey>& keys) override {
    JC_ASSIGN_OR_RETURN(PgResult r, c_.Query(st.sql, ToPgParams(st.params)));
    if (r.rows() == 0) return std::vector<SortValue>();
    return sql::ReadSortValues(
        keys, [&](int col) { return r.IsNull(0, col); }, [&](int col) { return r.Int(0, col); },
        [&](int col) { return r.Double(0, col); }, [&](int col) { return r.String(0, col); });
  }

 private:
  PgConnection& c_;
  bool each_;
};

// Every match's rid, id and number in order (`all`, numbered), and the page's rows joined by rid,
// in one statement: the numbered matches once (a materialised CTE), then the rows of those
// numbered within the page. Two round trips before (the ids, then the rows by rid): most of the
// time of a single patient's search on this VM was the waits between them.
Status PgStatements::All(const SearchQuery& q, const sql::CompiledSearch& compiled,
                         SearchPage& page) {
  PgConnection& c = c_;
  const int64_t offset = std::max<int64_t>(q.offset, 0);
  const int64_t end = offset + std::max<int64_t>(q.count, 0);
  // The total and the kept ids, from every match's (number, row); the id is column 1.
  auto take_matches = [&](const PgResult& r, std::vector<std::pair<int64_t, int>>& matches) {
    std::sort(matches.begin(), matches.end());
    const auto n = static_cast<int64_t>(matches.size());
    // After a position the rows are only those past it: the count statement gives the total.
    if (q.with_total && !q.after) page.total = sql::TotalFromCount(q, n);
    if (q.list_ids_up_to > 0 && n <= q.list_ids_up_to) {
      std::vector<std::string> ids;
      ids.reserve(matches.size());
      for (const auto& [number, row] : matches) ids.push_back(r.String(row, 1));
      page.all_ids = std::move(ids);
    }
    return n;
  };
  if (q.ids_only) {
    // An ids-only listing needs no resource row: the numbered ids in the page's range, each
    // entry with its type and id only (SearchQuery::ids_only is for listing the ids).
    JC_ASSIGN_OR_RETURN(PgResult r,
                        c.Query(compiled.all->sql, ToPgParams(compiled.all->params), each_));
    std::vector<std::pair<int64_t, int>> matches;
    for (int i = 0; i < r.rows(); ++i) matches.emplace_back(r.Int(i, 2), i);
    take_matches(r, matches);
    for (const auto& [number, row] : matches) {
      if (number <= offset || number > end) continue;
      ResourceVersion v;
      v.type = q.type;
      v.id = r.String(row, 1);
      page.entries.push_back(std::move(v));
    }
    return Status::Ok();
  }
  const size_t n_params = compiled.all->params.size();
  // The sort values of the page's rows (CompiledSearch::all_sort_values), columns 8, 9, ….
  const bool values = compiled.all_sort_values && !q.sort.empty();
  std::string page_values, no_values;
  for (size_t i = 0; values && i < q.sort.size(); ++i) {
    page_values += ", m.s" + std::to_string(i);
    no_values += ", NULL";
  }
  const std::string sql =
      "WITH m AS MATERIALIZED (" + compiled.all->sql +
      ") SELECT x.type, m.id, x.version, x.last_updated_us, x.deleted, x.json, m.rid, m.n" +
      page_values + " FROM m JOIN resource x ON x.rid = m.rid WHERE m.n > $" +
      std::to_string(n_params + 1) + "::int8 AND m.n <= $" + std::to_string(n_params + 2) +
      "::int8 UNION ALL SELECT NULL, m.id, NULL, NULL, NULL, NULL, m.rid, m.n" + no_values +
      " FROM m";
  PgParams params = ToPgParams(compiled.all->params);
  params.Int(offset);
  params.Int(end);
  JC_ASSIGN_OR_RETURN(PgResult r, c.Query(sql, params, each_));
  // The page's rows (type set) and one row per match (type NULL), each with its number.
  std::vector<std::pair<int64_t, int>> page_rows;  // (number, row)
  std::vector<std::pair<int64_t, int>> matches;
  for (int i = 0; i < r.rows(); ++i)
    (r.IsNull(i, 0) ? matches : page_rows).emplace_back(r.Int(i, 7), i);
  const int64_t n = take_matches(r, matches);
  const int64_t expected = std::clamp<int64_t>(n - offset, 0, std::max<int64_t>(q.count, 0));
  if (static_cast<int64_t>(page_rows.size()) != expected) {
    return Internal("search: a matched resource row vanished");
  }
  std::sort(page_rows.begin(), page_rows.end());
  for (const auto& [number, row] : page_rows) page.entries.push_back(RowToVersion(r, row));
  if (values && !page_rows.empty()) {
    // As sql::FillLast would read them: the page's last and first entries in the order it is
    // returned in (a page before a position is numbered backward and reversed after).
    const bool back = q.after && q.backward;
    auto position = [&](int row) -> Result<SearchAfter> {
      SearchAfter at;
      at.id = r.String(row, 1);
      at.values = sql::ReadSortValues(
          q.sort, [&](int col) { return r.IsNull(row, 8 + col); },
          [&](int col) { return r.Int(row, 8 + col); },
          [&](int col) { return r.Double(row, 8 + col); },
          [&](int col) { return r.String(row, 8 + col); });
      if (at.values.size() != q.sort.size()) return Internal("search: no sort values of an entry");
      return at;
    };
    const int last_row = back ? page_rows.front().second : page_rows.back().second;
    const int first_row = back ? page_rows.back().second : page_rows.front().second;
    if (q.count > 0 && static_cast<int64_t>(page_rows.size()) >= q.count) {
      JC_ASSIGN_OR_RETURN(page.last, position(last_row));
    }
    if (q.after) {
      JC_ASSIGN_OR_RETURN(page.first, position(first_row));
    }
  }
  return Status::Ok();
}

// The page of a walk (sql::CompiledSearch::walk, then rest). The walk stops early on SQLite by
// stepping no further; here it runs with a LIMIT on its rows (a resource with several dates
// has a row for each), raised and run again in the rare case that repeats left the page short.
Status PgStatements::Walk(const SearchQuery& q, const sql::CompiledSearch& compiled,
                          SearchPage& page) {
  PgConnection& c = c_;
  const auto offset = static_cast<size_t>(std::max<int64_t>(q.offset, 0));
  const auto count = static_cast<size_t>(q.count);
  const std::string sql =
      compiled.walk->sql + " LIMIT $" + std::to_string(compiled.walk->params.size() + 1) + "::int8";
  // The walk is chosen because reading the date index in order until the page is full costs
  // less than sorting every match (sql::WorthWalking, from counted rows). PostgreSQL's planner,
  // estimating the parameter's rows from its statistics (527 onset dates for 16,810), sorted all
  // of them instead: `Condition?code=I10&_sort=-onset-date` over a 100,000-resident county,
  // 87-228 ms. Without sorts it walks the index backward (an incremental sort orders ties by
  // id): ~15 ms. Off for the walk's statements only: the rest (by id, after the walk ended) and
  // every later statement of the transaction plan as usual.
  JC_RETURN_IF_ERROR(SetLocal(c, "SET LOCAL enable_sort = off"));
  size_t distinct = 0;
  int64_t limit = static_cast<int64_t>(offset + count) + 64;
  for (;;) {
    PgParams params = ToPgParams(compiled.walk->params);
    params.Int(limit);
    JC_ASSIGN_OR_RETURN(PgResult r, c.Query(sql, params, each_));
    page.entries.clear();
    distinct = 0;
    std::unordered_set<int64_t> seen;
    for (int i = 0; i < r.rows() && page.entries.size() < count; ++i) {
      if (!seen.insert(r.Int(i, 6)).second) continue;
      if (++distinct <= offset) continue;
      page.entries.push_back(RowToVersion(r, i));
    }
    if (page.entries.size() == count) return SetLocal(c, "SET LOCAL enable_sort = on");
    if (r.rows() < limit) break;  // the walk ended: the matches without a date follow
    limit *= 4;
  }
  JC_RETURN_IF_ERROR(SetLocal(c, "SET LOCAL enable_sort = on"));
  if (!compiled.rest) return Status::Ok();  // a walk backward from a value: nothing follows
  std::vector<sql::Param> rest = compiled.rest->params;
  rest[rest.size() - 2].value = static_cast<int64_t>(count - page.entries.size());
  rest[rest.size() - 1].value = static_cast<int64_t>(offset > distinct ? offset - distinct : 0);
  JC_ASSIGN_OR_RETURN(PgResult r, c.Query(compiled.rest->sql, ToPgParams(rest), each_));
  for (int i = 0; i < r.rows(); ++i) page.entries.push_back(RowToVersion(r, i));
  return Status::Ok();
}

Result<SearchPage> QuerySearchUnbounded(PgConnection& c, const SearchQuery& q,
                                        sql::EstimateCache* estimates, SearchSettings* in_force) {
  Estimator estimator(c);
  sql::EstimateCache::Estimator cached(estimator, estimates);
  const sql::CompiledSearch compiled = sql::CompileSearch(q, PostgresDialect(), &cached);
  if (estimator.failure()) return *estimator.failure();
  if (in_force && in_force->generic_plans == compiled.plan_each_time) {
    JC_RETURN_IF_ERROR(SetLocal(c, compiled.plan_each_time
                                       ? "SET LOCAL plan_cache_mode = auto"
                                       : "SET LOCAL plan_cache_mode = force_generic_plan"));
    in_force->generic_plans = !compiled.plan_each_time;
  }
  PgStatements run(c, compiled.plan_each_time);
  return sql::RunCompiledSearch(q, compiled, run);
}

}  // namespace

// SearchQuery::timeout_ms on PostgreSQL: statement_timeout for the search's statements, set
// LOCAL to the transaction the search runs in (a read transaction, or a unit of work's) and put
// back after it, unless `in_force` (a read transaction: the bound then also covers the rest of
// the request's reads, and the transaction's end drops it, which saves a round trip). A
// statement it cancels fails with SQLSTATE 57014, which aborts the transaction: the caller's
// transaction ends with the error.
Result<SearchPage> QuerySearch(PgConnection& c, const SearchQuery& q, sql::EstimateCache* estimates,
                               SearchSettings* in_force) {
  if (q.timeout_ms <= 0) return QuerySearchUnbounded(c, q, estimates, in_force);
  if (!in_force || in_force->timeout_ms != q.timeout_ms) {
    // In a read transaction not begun yet, the SET rides with the BEGIN and the search's first
    // statement: one round trip for the three.
    JC_RETURN_IF_ERROR(
        SetLocal(c, "SET LOCAL statement_timeout = " + std::to_string(q.timeout_ms)));
    if (in_force) in_force->timeout_ms = q.timeout_ms;
  }
  Result<SearchPage> page = QuerySearchUnbounded(c, q, estimates, in_force);
  if (!page.ok()) {
    if (c.LastSqlState() == "57014") return SearchTimedOut(q.timeout_ms);
    return page;
  }
  if (!in_force) JC_RETURN_IF_ERROR(SetLocal(c, "SET LOCAL statement_timeout TO DEFAULT"));
  return page;
}

ResourceVersion RowToVersion(const PgResult& r, int row) {
  ResourceVersion v;
  v.type = r.String(row, 0);
  v.id = r.String(row, 1);
  v.version = r.Int(row, 2);
  v.last_updated_us = r.Int(row, 3);
  v.deleted = r.Bool(row, 4);
  v.json = r.String(row, 5);
  return v;
}

}  // namespace jiceng::store::postgres
