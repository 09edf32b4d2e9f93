// store/sql/search_sql: the compilation of a store::SearchQuery into SQL over the idx_* tables,
// shared by the SQL backends (store/sqlite, store/postgres): the same tables (see
// sqlite_schema.cpp and pg_schema.cpp), the same statements, one Dialect per backend for what
// each spells differently.
//
// One statement per search: every clause is a "rid IN (rows of an index table)" condition on the
// resource row; chains nest such conditions on the referenced resources
// (rid IN (references whose target_id IN (ids of matching targets))), _has on the referring
// ones (id IN (target_ids of references from matching referrers)): no intermediate id lists
// in C++. Composite clauses match both components in one idx_composite row; _text/_content go
// through the backend's full-text table. The SQL is built from the query's shape only: every
// value is a bound parameter, so statements can be cached per shape and values can never inject
// SQL.
//
// Backend-neutral: no sqlite3.h, no libpq. A backend runs the statements CompileSearch returns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "store/store.h"

namespace jiceng::store::sql {

// The type of a bound value, after the column it is compared with. Ids, codes and systems are
// kBytes: PostgreSQL stores them as bytea (any byte, NUL included), SQLite as TEXT (it binds
// them as text). kText is text compared by prefix or range (string values, URIs, types).
enum class SqlType : uint8_t { kInt, kReal, kText, kBytes };

// One bound value.
struct Param {
  std::variant<int64_t, double, std::string> value;
  SqlType type = SqlType::kText;
};

// One statement and its values, in placeholder order (the first is placeholder 1).
struct Statement {
  std::string sql;
  std::vector<Param> params;
};

class Dialect;

// Collects the bound values of a statement while its text is built; hands out placeholders.
class SqlBuilder {
 public:
  explicit SqlBuilder(const Dialect& dialect) : dialect_(dialect) {}

  // Binds a value and returns its placeholder.
  std::string Bind(int64_t v) { return Add(Param{v, SqlType::kInt}); }
  std::string Bind(double v) { return Add(Param{v, SqlType::kReal}); }
  std::string Bind(std::string v, SqlType type) { return Add(Param{std::move(v), type}); }
  // A fresh table alias for a nested resource scan ("t1", "h2", …).
  std::string NewAlias(const char* prefix) { return prefix + std::to_string(++aliases_); }

  const Dialect& dialect() const { return dialect_; }
  const std::vector<Param>& params() const { return params_; }

 private:
  std::string Add(Param p);

  const Dialect& dialect_;
  std::vector<Param> params_;
  int aliases_ = 0;
};

// Everything the SQL of a search spells differently per backend. The rest of the compiler is
// SQL both understand (IN subqueries, UNION ALL, substr, length, min/max, LIMIT/OFFSET).
class Dialect {
 public:
  virtual ~Dialect() = default;

  // The n-th (1-based) placeholder, for a value of `type`.
  virtual std::string Placeholder(size_t n, SqlType type) const = 0;
  // Boolean literals.
  virtual std::string_view True() const = 0;
  virtual std::string_view False() const = 0;
  // "the resource row `alias` is not a tombstone", spelled as the partial index on resource
  // (type) is declared so that the planner uses it.
  virtual std::string Live(const std::string& alias) const = 0;
  // "column `col` (holding values of `type`: kText or kBytes) starts with `prefix`", as a range
  // on the column so that the (type, param, value…) key serves it.
  virtual std::string StartsWith(SqlBuilder& b, const std::string& col, SqlType type,
                                 const std::string& prefix) const = 0;
  // "column `col` contains `needle`".
  virtual std::string Contains(SqlBuilder& b, const std::string& col, SqlType type,
                               const std::string& needle) const = 0;
  // _text (c.param "_text": the narrative) and _content (narrative and content): the condition
  // on the resource row `alias` that it matches one of c.any_of, each value's words all
  // occurring as the start of a word (store::SearchValue::words).
  virtual std::string FullText(SqlBuilder& b, const SearchClause& c,
                               const std::string& alias) const = 0;
  // The value the resource row `alias` sorts by for an index parameter (k.kind one of string,
  // token, date, number, quantity, reference, uri): the lowest of its values ascending, the
  // highest descending (dates: start ascending, end descending; tokens: the rows with a code);
  // NULL when it has none.
  virtual std::string SortValue(SqlBuilder& b, const SortKey& k,
                                const std::string& alias) const = 0;
  // One ORDER BY term; resources without a value sort last in both directions.
  // `nulls_first`: the reverse of the usual order, in which a match without a value sorts last
  // (SearchQuery::backward).
  virtual std::string OrderTerm(const std::string& expr, bool descending,
                                bool nulls_first) const = 0;
  // "the resource row `alias` has a row of `kind` in index table `table` satisfying `cond`"
  // (cond reads the idx_* columns: param, value, code, …), testing that one resource's own
  // rows. The compiler drives a search from its most selective clause (an index scan) and
  // probes each candidate with the other clauses through this.
  virtual std::string ProbeExists(const char* table, SearchKind kind, const std::string& alias,
                                  const std::string& cond) const = 0;
  // Whether a page's statement finds the page's rids first and reads their rows after (InOrder),
  // rather than selecting the rows themselves in order.
  virtual bool ReadsPageRowsLast() const { return false; }
  // The rows of `rids` (a statement yielding one column, rid, in order) as a FROM item named
  // `alias` with the columns (rid, n), n their 1-based position, for ReadsPageRowsLast.
  virtual std::string InOrder(const std::string& rids, const std::string& alias) const {
    (void)rids, (void)alias;
    return "";
  }
  // `test` (a probe: an EXISTS on the row `r`) as a test the database runs on each row it
  // reaches, for a walk in id order that stops at its page. PostgreSQL otherwise turns an EXISTS
  // into a semi-join and may drive from it: `Observation?code=85354-9&component-value-quantity=
  // gt160` over a 100,000-resident county read all 12,276 quantities above 160 (a sequential
  // scan), sorted the matches and kept 50: 163 ms, where the walk tests a few hundred rows.
  virtual std::string PerRow(const std::string& test) const { return test; }
  // The conjunction of a walk's per-row tests (PerRow), each tested only on the rows that passed
  // the ones before it: the compiler puts the most selective first. AND by default. PostgreSQL
  // orders the tests of a row by its own cost estimates, which put a set hashed once (a counted
  // clause) after a probe of every row (an index lookup each).
  virtual std::string InTurn(const std::vector<std::string>& tests) const;
  // "the resource row `alias` (of `type`) has no row of parameter `param` in index table
  // `table`", for the matches without a value of a sort key, which are many resources to test:
  // NOT ProbeExists unless a backend has a cheaper form. Binds what it uses through `b`.
  virtual std::string HasNoRow(SqlBuilder& b, const char* table, SearchKind kind,
                               const std::string& alias, const std::string& /*type*/,
                               const std::string& param) const;
  // The last ORDER BY term, the id tiebreak. `with_criteria`: the search has clauses, so the
  // planner must drive from them rather than walk the whole type in id order to skip a sort.
  virtual std::string IdTiebreak(const std::string& alias, bool with_criteria) const = 0;
  // Whether the collected index scans of a conjunction are intersected among themselves before
  // the resource rows are read (one "rid IN (SELECT d.rid FROM (driver rows) d WHERE +d.rid IN
  // (…))"), for a planner that would otherwise read a resource row per driver rid (SQLite).
  // PostgreSQL plans each "rid IN (…)" as a semi-join itself, and the nested form with the
  // unary plus made it re-run a chain's subquery per row (a page that did not end in 17 min).
  virtual bool IntersectsCollectedScans() const { return false; }
  // Whether a composite's collected rows of a code and a value without a unit list the few
  // (system1, code2, system2) under the code first, by one seek each (a loose index scan in a
  // recursive CTE), so that the key's range on number2 serves the value: without them every row
  // of the code is read (SQLite, which has no skip scan without ANALYZE statistics).
  virtual bool LooseScansCompositeKeys() const { return false; }
  // With LooseScansCompositeKeys: whether such a clause, collected, is rows of its own that seek
  // each key's range of values (a lateral join over the keys), rather than a condition on the
  // code's rows. PostgreSQL hash-joined the key list against every row of the code instead of
  // seeking it: a blood-pressure code's 195,116 systolic rows read for the 777 above 180.
  virtual bool SeeksCompositeKeys() const { return false; }
  // "(SELECT least `column` FROM … WHERE …)" for `from` ("FROM … WHERE …"), NULL when no row:
  // min() by default; PostgreSQL has no min(bytea).
  virtual std::string Least(const std::string& column, const std::string& from) const {
    return "(SELECT min(" + column + ") " + from + ")";
  }
  // Whether a clause whose index rows were counted (RowEstimator) and found few enough is
  // collected as a second index scan ("rid IN (…)") rather than probed per candidate. SQLite
  // needs the counts to choose; PostgreSQL chooses between the two forms itself, and two
  // collected scans of one table before its statistics exist made it loop for half a minute.
  virtual bool CollectsCountedClauses() const { return true; }
  // Whether a counted driver's index scan, the chains of the same conjunction (whose rows
  // cannot be counted) and its clauses counted at few rows are intersected with INTERSECT
  // before the resource rows are read. Each as its own "rid IN (…)", PostgreSQL estimated a
  // chain at one row, drove from it and probed every match of the chain (9,321 Observations of
  // the patients named 李…) against the driver's code by rid: 45 ms, against 9 ms for the
  // INTERSECT of the two sets. Two value ranges of one composite: 16 → 13 ms.
  virtual bool IntersectsChainsWithDriver() const { return false; }
  // Whether `all` numbers its rows in order ("row_number() OVER (ORDER BY …) AS n" as a third
  // column, the statement unordered) rather than ordering them, for a backend that reads the
  // page's rows in the same statement (PostgreSQL: one round trip instead of two).
  virtual bool NumbersAll() const { return false; }
};

// The statements of one search: `count` when q.with_total (counting at most one past
// q.total_limit when that is set), `page` when q.count > 0. A backend
// runs count first and may skip page when the offset is past the total.
// Or, for a page sorted by one date parameter over many matches, `walk` and `rest` instead of
// `page`: walk yields the matches with a value in sort order, with the resource's rid as a
// seventh column, a resource again for each further value (the backend keeps the first of each
// rid, skips offset distinct ones, and stops when the page is full); when the walk ends first,
// rest yields the matches without a value, its last two parameters being the LIMIT and OFFSET
// the backend sets (the page's remaining room, and the offset less the walk's distinct matches).
// Or, when an estimator found the matches few, `all` alone: the rid and id of every match in
// order (or numbered: Dialect::NumbersAll), from which the backend takes the total and the page
// (reading those rows by rid), and the ids when SearchQuery::list_ids_up_to asks for them.
// `page_total`: each row of `page` carries a seventh column, the value `count` would return
// (the two share the evaluation of the index scans); count is then run only when the page has
// no rows.
// `last` (SearchQuery::want_last): the sort values of one resource, the columns in sort key
// order (r.id alone when the query has no sort keys), its last parameter the id the backend sets.
// `total_from_page`: q.with_total within q.total_limit over many matches (no clause counted
// under kEstimateCap index rows), with no count statement: the total is the one a page short of
// q.count proves (TotalFromPage), else unknown.
struct CompiledSearch {
  std::optional<Statement> last;
  std::optional<Statement> count;
  bool total_from_page = false;
  std::optional<Statement> page;
  bool page_total = false;
  std::optional<Statement> all;
  // `all` numbered (Dialect::NumbersAll) with SearchQuery::want_last and sort keys: each row
  // carries the sort keys' values after its number (columns 3, 4, …), from which the backend sets
  // SearchPage::last and first without the `last` statement's round trip.
  bool all_sort_values = false;
  std::optional<Statement> walk;
  std::optional<Statement> rest;
  // Backward from among the matches without a value: `rest` (those before the position, in
  // reverse id order) runs first, and the walk (back from the last value) fills the page.
  bool rest_first = false;
  // The search is not driven by a clause of few index rows (kTinyEstimate): how many rows its
  // statements read depends on their values, so a backend whose plans can be kept and reused for
  // any values (PostgreSQL's prepared statements) plans them for these values each time.
  bool plan_each_time = false;
};

// Counts the rows of a statement "SELECT count(*) FROM (… LIMIT kEstimateCap) AS e" for the
// planner: how many index rows a clause matches, up to the cap. A backend that implements it
// (SQLite, whose planner has no per-value statistics) lets CompileSearch drive a search from its
// most selective clause, and walk the resources in page order when no clause is selective;
// nullopt when the count failed (the clause is then taken as unselective).
class RowEstimator {
 public:
  virtual ~RowEstimator() = default;
  virtual std::optional<int64_t> CountRows(const Statement& st) = 0;
};
inline constexpr int64_t kEstimateCap = 100000;

// "param = ?", or "param IN (?, …)" for a parameter stored as the union of others
// (SearchClause::union_of, SortKey::union_of).
std::string ParamCond(SqlBuilder& b, const std::string& param,
                      const std::vector<std::string>& union_of);

// `estimator` may be null: the driving clause is then chosen by kind alone.
CompiledSearch CompileSearch(const SearchQuery& q, const Dialect& dialect,
                             RowEstimator* estimator = nullptr);

// The six columns of a page row over `resource r` (type, id, version, last_updated_us, deleted,
// json; the JSON empty when q.ids_only), for a backend that reads a page's rows itself.
const char* PageColumns(const SearchQuery& q);

// How a backend runs each kind of statement of a CompiledSearch (RunCompiledSearch decides which
// run, in which order, and how their results make the page and its total).
class SearchStatements {
 public:
  virtual ~SearchStatements() = default;
  // Runs `page`, appending its rows to `entries`. With `page_total`, returns the seventh column
  // of its first row (nullopt when it has none).
  virtual Result<std::optional<int64_t>> Page(const Statement& page, bool page_total,
                                              std::vector<ResourceVersion>& entries) = 0;
  // CompiledSearch::all: the total and the page (and SearchPage::all_ids when asked for).
  virtual Status All(const SearchQuery& q, const CompiledSearch& compiled, SearchPage& page) = 0;
  // CompiledSearch::walk, then rest when the walk ends before the page is full.
  virtual Status Walk(const SearchQuery& q, const CompiledSearch& compiled, SearchPage& page) = 0;
  virtual Result<int64_t> Count(const Statement& count) = 0;
  // CompiledSearch::last with its id set: the row's columns as the keys' SortValues (none when
  // NULL; else the alternative SortValueIndex names), or an empty vector when there is no row.
  virtual Result<std::vector<SortValue>> SortValues(const Statement& last,
                                                    const std::vector<SortKey>& keys) = 0;
};

// The row of CompiledSearch::last as SortValues, through a backend's column accessors:
// is_null(col), as_int(col), as_real(col) and as_text(col).
template <typename IsNull, typename AsInt, typename AsReal, typename AsText>
std::vector<SortValue> ReadSortValues(const std::vector<SortKey>& keys, IsNull is_null,
                                      AsInt as_int, AsReal as_real, AsText as_text) {
  std::vector<SortValue> out;
  out.reserve(keys.size());
  for (size_t k = 0; k < keys.size(); ++k) {
    const int col = static_cast<int>(k);
    if (is_null(col)) {
      out.emplace_back();
    } else if (SortValueIndex(keys[k].kind) == 1) {
      out.emplace_back(static_cast<int64_t>(as_int(col)));
    } else if (SortValueIndex(keys[k].kind) == 2) {
      out.emplace_back(static_cast<double>(as_real(col)));
    } else {
      out.emplace_back(std::string(as_text(col)));
    }
  }
  return out;
}

// Runs `compiled` through `run`: the page first (when it ends the matches it proves the total,
// and the count statement, often the dearer of the two, is skipped; with page_total its rows
// carry the total), or all, or the walk; then the count when the total is still wanted.
Result<SearchPage> RunCompiledSearch(const SearchQuery& q, const CompiledSearch& compiled,
                                     SearchStatements& run);

// The total a page already proves, so that the count statement need not run: a page with fewer
// entries than asked for ends the matches, which then number offset + entries (unless it is
// empty past offset 0, which says nothing of how many there are before it). Backends run the
// page first and the count only when this is nullopt.
std::optional<int64_t> TotalFromPage(const SearchQuery& q, size_t entries);

// The total a run of the count statement gives: nullopt when it counted past q.total_limit (the
// count statement stops one past it), so that the total is unknown.
std::optional<int64_t> TotalFromCount(const SearchQuery& q, int64_t counted);

// The words of full text (store::FullTextIndexRow, store::SearchValue::words), as runs of word
// characters: ASCII letters and digits, and every non-ASCII character other than punctuation,
// symbols and spaces (the reading fhir/search's HasWordCharacter has of a word character, close
// to SQLite FTS5's unicode61). For a backend whose own tokenizer reads text otherwise
// (PostgreSQL's parser keeps "a-b", e-mail addresses, URLs and "36.5" whole): it indexes and
// queries these words instead, so that both backends find the same words.
std::vector<std::string_view> FullTextWords(std::string_view text);

}  // namespace jiceng::store::sql
