// The shared search compiler (store/sql/search_sql.h) and the pieces of its dialects that need no
// database: placeholders and parameters in step, each dialect's spellings only in its own SQL,
// the PostgreSQL prefix bound and full-text words. What the statements find is the conformance
// suite's business (StoreSearchConformance, on every backend).
#include "store/sql/search_sql.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "store/postgres/pg_search.h"
#include "store/sqlite/sqlite_search.h"

namespace jiceng::store {
namespace {

using sql::CompileSearch;
using sql::Param;
using sql::SqlType;

SearchClause Clause(SearchKind kind, std::string param, std::vector<SearchValue> values) {
  SearchClause c;
  c.kind = kind;
  c.param = std::move(param);
  c.any_of = std::move(values);
  return c;
}

SearchValue Code(std::string code) {
  SearchValue v;
  v.code = std::move(code);
  return v;
}

SearchValue Text(std::string text) {
  SearchValue v;
  v.text = std::move(text);
  return v;
}

// A query that uses every part of the compiler: each index kind, a chain, _has, a composite,
// full text, :missing, :not, _id, _lastUpdated, a snapshot, sorts of several kinds, paging.
SearchQuery Everything() {
  SearchQuery q;
  q.type = "Observation";
  q.at_or_before_us = 123;
  q.offset = 20;
  q.count = 10;
  SearchValue prefix;
  prefix.text = "王";
  SearchValue contains = prefix;
  contains.string_match = StringMatch::kContains;
  SearchValue exact = prefix;
  exact.string_match = StringMatch::kExact;
  exact.exact = "王";
  q.all_of.push_back(Clause(SearchKind::kString, "name", {prefix, contains, exact}));
  SearchValue token;
  token.system = "urn:s";
  token.code = "c";
  SearchValue in;
  in.codes = {"a", "b"};
  SearchValue any_code;  // neither system nor code: any row of the parameter
  q.all_of.push_back(Clause(SearchKind::kToken, "code", {token, in, any_code}));
  SearchValue date;
  date.prefix = SearchPrefix::kGe;
  date.lo_us = 1;
  date.hi_us = 2;
  q.all_of.push_back(Clause(SearchKind::kDate, "date", {date}));
  SearchValue number;
  number.prefix = SearchPrefix::kAp;
  number.number = 5;
  q.all_of.push_back(Clause(SearchKind::kNumber, "probability", {number}));
  SearchValue quantity = number;
  quantity.canonical_code = "g";
  q.all_of.push_back(Clause(SearchKind::kQuantity, "value-quantity", {quantity}));
  SearchValue reference;
  reference.type = "Patient";
  reference.code = "p1";
  q.all_of.push_back(Clause(SearchKind::kReference, "subject", {reference}));
  SearchValue below;
  below.text = "http://x";
  below.uri_match = UriMatch::kBelow;
  SearchValue above = below;
  above.uri_match = UriMatch::kAbove;
  q.all_of.push_back(Clause(SearchKind::kUri, "url", {below, above}));
  SearchValue id;
  id.code = "o1";
  q.all_of.push_back(Clause(SearchKind::kId, "_id", {id}));
  q.all_of.push_back(Clause(SearchKind::kLastUpdated, "_lastUpdated", {date}));
  SearchValue words;
  words.words = {"高 血 压", "2010"};
  q.all_of.push_back(Clause(SearchKind::kText, "_content", {words}));
  SearchClause missing = Clause(SearchKind::kToken, "status", {});
  missing.missing = true;
  q.all_of.push_back(missing);
  SearchClause negated = Clause(SearchKind::kToken, "category", {token});
  negated.negate = true;
  q.all_of.push_back(negated);
  SearchClause composite = Clause(SearchKind::kComposite, "combo", {});
  composite.components = {SearchKind::kToken, SearchKind::kString};
  SearchValue both;
  both.components = {token, prefix};
  composite.any_of = {both};
  q.all_of.push_back(composite);
  SearchClause chain = Clause(SearchKind::kChain, "subject", {});
  chain.links = {SearchLink{"Patient", {Clause(SearchKind::kString, "name", {prefix})}},
                 SearchLink{"Group", {Clause(SearchKind::kString, "name", {prefix})}}};
  q.all_of.push_back(chain);
  SearchClause has = Clause(SearchKind::kReverseChain, "subject", {});
  has.links = {SearchLink{"Observation", {Clause(SearchKind::kToken, "code", {token})}}};
  q.all_of.push_back(has);
  q.sort = {{"name", SearchKind::kString, true},
            {"date", SearchKind::kDate, false},
            {"code", SearchKind::kToken, false},
            {"_lastUpdated", SearchKind::kLastUpdated, true}};
  return q;
}

// The placeholder numbers a statement uses, in order of first appearance.
std::vector<int> Placeholders(const std::string& sql, const std::string& pattern) {
  std::vector<int> out;
  std::set<int> seen;
  const std::regex re(pattern);
  for (auto it = std::sregex_iterator(sql.begin(), sql.end(), re); it != std::sregex_iterator();
       ++it) {
    const int n = std::stoi((*it)[1]);
    if (seen.insert(n).second) out.push_back(n);
  }
  return out;
}

// Every parameter is used, placeholders run 1..n, and the count statement's parameters are the
// first ones of the page statement's (the WHERE clause they share comes first).
void ExpectInStep(const sql::Statement& s, const std::string& pattern) {
  std::vector<int> used = Placeholders(s.sql, pattern);
  std::sort(used.begin(), used.end());
  ASSERT_EQ(used.size(), s.params.size()) << s.sql;
  for (size_t i = 0; i < used.size(); ++i) EXPECT_EQ(used[i], static_cast<int>(i) + 1) << s.sql;
}

TEST(SearchSql, PlaceholdersAndParametersAreInStepOnBothDialects) {
  const SearchQuery q = Everything();
  const auto sqlite = CompileSearch(q, sqlite::SqliteDialect());
  const auto pg = CompileSearch(q, postgres::PostgresDialect());
  ASSERT_TRUE(sqlite.count && sqlite.page && pg.count && pg.page);
  ExpectInStep(*sqlite.count, R"(\?(\d+))");
  ExpectInStep(*sqlite.page, R"(\?(\d+))");
  ExpectInStep(*pg.count, R"(\$(\d+)::)");
  ExpectInStep(*pg.page, R"(\$(\d+)::)");
  for (const auto* c : {&sqlite, &pg}) {
    ASSERT_LE(c->count->params.size(), c->page->params.size());
    for (size_t i = 0; i < c->count->params.size(); ++i) {
      EXPECT_EQ(c->count->params[i].value, c->page->params[i].value) << i;
      EXPECT_EQ(c->count->params[i].type, c->page->params[i].type) << i;
    }
  }
  // LIMIT and OFFSET are the last two.
  EXPECT_EQ(pg.page->params.back().value, (Param{int64_t{20}, SqlType::kInt}.value));
  EXPECT_EQ(pg.page->params[pg.page->params.size() - 2].value,
            (Param{int64_t{10}, SqlType::kInt}.value));
}

// Each dialect's spellings appear in its SQL only.
TEST(SearchSql, EachDialectSpellsOnlyItsOwnSql) {
  const SearchQuery q = Everything();
  const std::string sqlite = CompileSearch(q, sqlite::SqliteDialect()).page->sql;
  const std::string pg = CompileSearch(q, postgres::PostgresDialect()).page->sql;
  for (const char* own :
       {"MATCH", "instr(", "jc_sort_key(", "resource_index_keys", "deleted = 0", "rowid"}) {
    EXPECT_NE(sqlite.find(own), std::string::npos) << own;
    EXPECT_EQ(pg.find(own), std::string::npos) << own;
  }
  for (const char* own : {"to_tsquery('simple'", "@@", "position(", "NOT r.deleted", "::bytea",
                          "::text", "::int8", "::float8", "TRUE", "LIMIT 1)"}) {
    EXPECT_NE(pg.find(own), std::string::npos) << own;
    EXPECT_EQ(sqlite.find(own), std::string::npos) << own;
  }
  EXPECT_EQ(pg.find('?'), std::string::npos);
  EXPECT_EQ(sqlite.find('$'), std::string::npos);
}

// PostgreSQL binds ids, codes and systems as bytea and text as text: the types follow the
// columns, which differ by table for a string (idx_string: text, idx_composite: bytea).
TEST(SearchSql, ParameterTypesFollowTheColumns) {
  SearchQuery q;
  q.type = "Patient";
  q.count = 0;
  q.all_of.push_back(Clause(SearchKind::kString, "name", {Text("li")}));
  q.all_of.push_back(Clause(SearchKind::kId, "_id", {Code("x")}));
  const auto c = CompileSearch(q, postgres::PostgresDialect());
  ASSERT_TRUE(c.count);
  EXPECT_FALSE(c.page);  // count 0: the total only
  std::vector<SqlType> types;
  for (const Param& p : c.count->params) types.push_back(p.type);
  // type, id (the driving clause comes first), param, prefix low, prefix high
  EXPECT_EQ(types, (std::vector<SqlType>{SqlType::kText, SqlType::kBytes, SqlType::kText,
                                         SqlType::kText, SqlType::kText}));
  EXPECT_NE(c.count->sql.find("r.id IN ($2::bytea)"), std::string::npos) << c.count->sql;
}

TEST(SearchSql, NoTotalMeansNoCountStatement) {
  SearchQuery q;
  q.type = "Patient";
  q.with_total = false;
  q.offset = -5;  // read as 0, like SQLite does
  const auto c = CompileSearch(q, postgres::PostgresDialect());
  EXPECT_FALSE(c.count);
  ASSERT_TRUE(c.page);
  EXPECT_EQ(c.page->params.back().value, (Param{int64_t{0}, SqlType::kInt}.value));
  EXPECT_NE(c.page->sql.find("LIMIT $2::int8 OFFSET $3::int8"), std::string::npos) << c.page->sql;
}

// SQLite intersects the index scans of a conjunction itself; a page that wants its total gets
// them as one materialised common table expression, read by the page and by the count it
// carries, so that they are built once. The count statement remains, for a page with no rows.
TEST(SearchSql, SqlitePageCarriesItsTotalOverSharedScans) {
  SearchQuery q = Everything();  // its type, then one token clause only
  q.all_of = {q.all_of[1]};
  q.all_of[0].any_of.resize(1);  // code s|c
  q.sort.clear();
  q.offset = 0;
  const auto lite = CompileSearch(q, sqlite::SqliteDialect());
  ASSERT_TRUE(lite.page && lite.count);
  EXPECT_TRUE(lite.page_total);
  const std::string& page = lite.page->sql;
  EXPECT_EQ(page.rfind("WITH m", 0), 0u) << page;
  EXPECT_NE(page.find(" AS MATERIALIZED (SELECT rid FROM idx_token"), std::string::npos) << page;
  EXPECT_NE(page.find(") AS total FROM resource r"), std::string::npos) << page;
  EXPECT_EQ(page.find("idx_token"), page.rfind("idx_token")) << "the scan appears once: " << page;
  EXPECT_EQ(lite.count->sql.find("WITH"), std::string::npos) << lite.count->sql;
  ExpectInStep(*lite.page, R"(\?(\d+))");
  q.with_total = false;
  const auto no_total = CompileSearch(q, sqlite::SqliteDialect());
  EXPECT_FALSE(no_total.page_total);
  EXPECT_EQ(no_total.page->sql.find("WITH"), std::string::npos) << no_total.page->sql;
  q.with_total = true;
  EXPECT_FALSE(CompileSearch(q, postgres::PostgresDialect()).page_total);
}

// A position (keyset paging) adds bound values to the page but not to the count, and the
// statement that reads a resource's sort values ends with the id the backend sets.
TEST(SearchSql, PositionAndLastEntryStatementsAreInStepOnBothDialects) {
  SearchQuery q = Everything();
  ASSERT_GE(q.sort.size(), 2u);
  q.offset = 0;
  q.want_last = true;
  SearchAfter after;
  after.id = "o9";
  for (const SortKey& k : q.sort) {
    const size_t kind = SortValueIndex(k.kind);
    after.values.push_back(kind == 1   ? SortValue(int64_t{5})
                           : kind == 2 ? SortValue(1.5)
                                       : SortValue(std::string("x")));
  }
  after.values[1] = SortValue();  // no value in the second key
  q.after = after;
  for (const sql::Dialect* d : {&sqlite::SqliteDialect(), &postgres::PostgresDialect()}) {
    const char* pattern = d == &sqlite::SqliteDialect() ? R"(\?(\d+))" : R"(\$(\d+)::)";
    const auto c = CompileSearch(q, *d);
    ASSERT_TRUE(c.page && c.count && c.last);
    ExpectInStep(*c.page, pattern);
    ExpectInStep(*c.count, pattern);
    ExpectInStep(*c.last, pattern);
    EXPECT_GT(c.page->params.size(), c.count->params.size() + q.sort.size());
    EXPECT_NE(c.page->sql.find(" IS NULL"), std::string::npos) << c.page->sql;
    EXPECT_EQ(c.count->sql.find(" IS NULL"), std::string::npos) << c.count->sql;
    EXPECT_EQ(c.last->params.back().type, SqlType::kBytes);
  }
}

// Counts index rows by table: `token` rows for idx_token scans, `string` for idx_string.
class TableEstimator final : public sql::RowEstimator {
 public:
  TableEstimator(int64_t token, int64_t string, std::optional<int64_t> references = std::nullopt,
                 std::optional<int64_t> resources = std::nullopt)
      : token_(token), string_(string), references_(references), resources_(resources) {}
  std::optional<int64_t> CountRows(const sql::Statement& st) override {
    // A type's resources, counted up to the statement's limit.
    if (resources_ && st.sql.find("FROM resource r WHERE") != std::string::npos) {
      const int64_t limit = std::stoll(st.sql.substr(st.sql.rfind("LIMIT ") + 6));
      return std::min(*resources_, limit);
    }
    // A chain's references (their targets' criterion nested inside).
    if (references_ && st.sql.find("(SELECT rid FROM idx_reference") != std::string::npos)
      return references_;
    if (st.sql.find("FROM idx_token") != std::string::npos) return token_;
    if (st.sql.find("FROM idx_string") != std::string::npos) return string_;
    return std::nullopt;
  }

 private:
  int64_t token_, string_;
  std::optional<int64_t> references_;
  std::optional<int64_t> resources_;
};

// Over many matches (no criterion counted under the cap) SQLite pages in id order by probes and
// does not count to the limit; a chain whose targets' criterion counts few rows is collected
// (and may drive), one whose targets are many is probed per resource. PostgreSQL pages in id
// order too, and counts its chains the same way.
TEST(SearchSql, ManyMatchesAreProbedAndAChainOfFewTargetsIsCollected) {
  SearchQuery q;
  q.type = "Observation";
  q.count = 50;
  q.total_limit = 1000;
  SearchClause chain = Clause(SearchKind::kChain, "subject", {});
  chain.links = {SearchLink{"Patient", {Clause(SearchKind::kString, "name", {Text("王")})}}};
  q.all_of = {Clause(SearchKind::kToken, "code", {Code("85354-9")}), chain};
  const std::string collected_chain = "rid IN (SELECT rid FROM idx_reference";
  const std::string probed = "EXISTS (SELECT 1 FROM jc_rows(";
  {
    TableEstimator many(sql::kEstimateCap, sql::kEstimateCap);
    const auto c = CompileSearch(q, sqlite::SqliteDialect(), &many);
    ASSERT_TRUE(c.page);
    EXPECT_FALSE(c.count);
    EXPECT_TRUE(c.total_from_page);
    EXPECT_EQ(c.page->sql.find(collected_chain), std::string::npos) << c.page->sql;
    EXPECT_NE(c.page->sql.find(probed), std::string::npos) << c.page->sql;
    EXPECT_EQ(c.page->sql.find("AS MATERIALIZED"), std::string::npos) << c.page->sql;
  }
  {
    // Listed first, the chain is still probed last: each candidate's own code (one decode of its
    // keys) before its reference's target (a look-up and a second decode).
    SearchQuery chain_first = q;
    std::swap(chain_first.all_of[0], chain_first.all_of[1]);
    TableEstimator many(sql::kEstimateCap, sql::kEstimateCap);
    const auto c = CompileSearch(chain_first, sqlite::SqliteDialect(), &many);
    ASSERT_TRUE(c.page);
    const std::string& sql = c.page->sql;
    const size_t code = sql.find("WHERE rid = r.rid), 1)"), reference = sql.find("WHERE rid = r.rid), 5)");
    ASSERT_NE(code, std::string::npos) << sql;
    ASSERT_NE(reference, std::string::npos) << sql;
    EXPECT_LT(code, reference) << sql;
  }
  {
    TableEstimator few_targets(sql::kEstimateCap, 12);
    const auto c = CompileSearch(q, sqlite::SqliteDialect(), &few_targets);
    ASSERT_TRUE(c.all || c.page);  // 12 rows: every match collected, the total with them
    EXPECT_FALSE(c.total_from_page);
    const std::string& sql = c.all ? c.all->sql : c.page->sql;
    EXPECT_NE(sql.find("SELECT rid FROM idx_reference"), std::string::npos) << sql;
  }
  {
    // Few targets (12 patients) with many references (50,000 Observations) against a code of
    // 5,000: the code drives, and the chain is collected beside it rather than driving and
    // probing the code of each of its 50,000.
    TableEstimator few_targets_many_references(5000, 12, 50000);
    const auto c = CompileSearch(q, sqlite::SqliteDialect(), &few_targets_many_references);
    ASSERT_TRUE(c.all || c.page);
    const std::string& sql = c.all ? c.all->sql : c.page->sql;
    EXPECT_EQ(sql.find(probed), std::string::npos) << sql;
    ASSERT_NE(sql.find("FROM idx_token"), std::string::npos) << sql;
    EXPECT_LT(sql.find("FROM idx_token"), sql.find("FROM idx_reference")) << sql;
  }
  {
    // The chain drives at 46,805 references (not few) and the code, uncounted, is probed beside
    // it: the total is not counted to the limit (each count probes until 1,001 match), only
    // proven by a short page.
    TableEstimator chain_drives(sql::kEstimateCap, 12, 46805);
    const auto c = CompileSearch(q, sqlite::SqliteDialect(), &chain_drives);
    ASSERT_TRUE(c.page);
    EXPECT_FALSE(c.count);
    EXPECT_TRUE(c.total_from_page);
    EXPECT_NE(c.page->sql.find(probed), std::string::npos) << c.page->sql;
  }
  {
    // A counted code (41,499 rows) beside a chain whose targets are too many to count (the
    // patients named 陈 of a county): the chain is probed on each candidate, not collected, and
    // the total is left to the page. Beside a selective code (500 rows), the same probe: every
    // match is then collected through it, the chain's references never listed.
    for (const int64_t code_rows : {int64_t{41499}, int64_t{500}}) {
      TableEstimator many_targets(code_rows, sql::kEstimateCap);
      const auto c = CompileSearch(q, sqlite::SqliteDialect(), &many_targets);
      ASSERT_TRUE(c.all || c.page);
      const std::string& sql = c.all ? c.all->sql : c.page->sql;
      EXPECT_EQ(sql.find(collected_chain), std::string::npos) << code_rows << ": " << sql;
      EXPECT_NE(sql.find(probed), std::string::npos) << code_rows << ": " << sql;
      EXPECT_NE(sql.find("rid IN (SELECT rid FROM idx_token"), std::string::npos) << sql;
      EXPECT_EQ(c.total_from_page, code_rows > 10000) << code_rows;
    }
    // PostgreSQL likewise: beside the counted code of 41,499 it walks, probes the chain per row
    // (in turn after the code) and leaves the total to the page, as SQLite does.
    {
      TableEstimator many_targets(41499, sql::kEstimateCap);
      const auto c = CompileSearch(q, postgres::PostgresDialect(), &many_targets);
      ASSERT_TRUE(c.page);
      EXPECT_TRUE(c.total_from_page);
      EXPECT_FALSE(c.count);
      EXPECT_EQ(c.page->sql.find(collected_chain), std::string::npos) << c.page->sql;
      EXPECT_NE(c.page->sql.find("THEN (SELECT TRUE WHERE EXISTS (SELECT 1 FROM idx_reference"),
                std::string::npos)
          << c.page->sql;
    }
    // Beside a code of 500 (counted under 1,000, which ends the counting before the chain), a
    // chain of few targets is still counted and collected.
    TableEstimator few_targets(500, 12);
    const auto c = CompileSearch(q, sqlite::SqliteDialect(), &few_targets);
    ASSERT_TRUE(c.all || c.page);
    const std::string& sql = c.all ? c.all->sql : c.page->sql;
    EXPECT_NE(sql.find("SELECT rid FROM idx_reference"), std::string::npos) << sql;
    EXPECT_EQ(sql.find(probed), std::string::npos) << sql;
  }
  {
    // PostgreSQL walks the same way, each probe a per-row subquery (Dialect::PerRow) that its
    // planner cannot turn into a join to drive from, and leaves the total to the page as well.
    TableEstimator many(sql::kEstimateCap, sql::kEstimateCap);
    const auto c = CompileSearch(q, postgres::PostgresDialect(), &many);
    ASSERT_TRUE(c.page);
    EXPECT_FALSE(c.count);
    EXPECT_TRUE(c.total_from_page);
    EXPECT_NE(c.page->sql.find("(SELECT TRUE WHERE EXISTS (SELECT 1 FROM idx_token"),
              std::string::npos)
        << c.page->sql;
    EXPECT_NE(c.page->sql.find("ORDER BY r.id"), std::string::npos) << c.page->sql;
    // The page's rids first, its rows (JSON) only for them (Dialect::ReadsPageRowsLast).
    EXPECT_NE(c.page->sql.find("FROM unnest(ARRAY(SELECT r.rid FROM resource r"), std::string::npos)
        << c.page->sql;
    EXPECT_NE(c.page->sql.find("x.json"), std::string::npos) << c.page->sql;
    // _count=0 asks for the total alone: it is counted (to the limit), on both backends.
    SearchQuery only_total = q;
    only_total.count = 0;
    only_total.with_total = true;
    for (const sql::Dialect* d : {&sqlite::SqliteDialect(), &postgres::PostgresDialect()}) {
      TableEstimator counted(sql::kEstimateCap, sql::kEstimateCap);
      const auto t = CompileSearch(only_total, *d, &counted);
      EXPECT_TRUE(t.count);
      EXPECT_FALSE(t.total_from_page);
    }
    // A chain whose targets are too many to count is probed per row as well, after the code
    // (in turn: Dialect::InTurn), never collected for the planner to drive from.
    EXPECT_EQ(c.page->sql.find("r.rid IN (SELECT rid FROM idx_reference"), std::string::npos)
        << c.page->sql;
    const size_t code =
        c.page->sql.find("CASE WHEN (SELECT TRUE WHERE EXISTS (SELECT 1 FROM idx_token");
    const size_t chain =
        c.page->sql.find("THEN (SELECT TRUE WHERE EXISTS (SELECT 1 FROM idx_reference");
    EXPECT_NE(code, std::string::npos) << c.page->sql;
    EXPECT_NE(chain, std::string::npos) << c.page->sql;
  }
  {
    // PostgreSQL, a chain counted at few references (one patient's Observations): it drives,
    // collected with every match, no walk.
    TableEstimator one_patient(sql::kEstimateCap, 1, 40);
    const auto c = CompileSearch(q, postgres::PostgresDialect(), &one_patient);
    ASSERT_TRUE(c.all);
    EXPECT_FALSE(c.page);
    EXPECT_NE(c.all->sql.find("r.rid IN (SELECT rid FROM idx_reference"), std::string::npos)
        << c.all->sql;
  }
  {
    // PostgreSQL, a chain counted at many references (the 23,475 Observations of the patients
    // born before 1940): a walk in id order that tests each row against the chain's set first
    // (hashed once: a per-row subquery), then probes the uncounted code; the total is left to
    // the page.
    TableEstimator old_patients(sql::kEstimateCap, 1457, 23475);
    const auto c = CompileSearch(q, postgres::PostgresDialect(), &old_patients);
    ASSERT_TRUE(c.page);
    EXPECT_TRUE(c.total_from_page);
    const std::string& sql = c.page->sql;
    const size_t chain =
        sql.find("CASE WHEN (SELECT TRUE WHERE r.rid IN (SELECT rid FROM idx_reference");
    const size_t code = sql.find("THEN (SELECT TRUE WHERE EXISTS (SELECT 1 FROM idx_token");
    EXPECT_NE(chain, std::string::npos) << sql;
    EXPECT_NE(code, std::string::npos) << sql;
    EXPECT_LT(chain, code) << sql;
    EXPECT_NE(sql.find("ORDER BY r.id LIMIT"), std::string::npos) << sql;
  }
}

// PostgreSQL: a search whose fewest counted rows are still many (not selective) walks in id order
// too, testing each row in turn from the clause of fewest rows, and counts its total as a
// collected search, not row by row.
TEST(SearchSql, PostgresWalksCountedClausesOfManyRowsInTurn) {
  SearchQuery q;
  q.type = "Observation";
  q.count = 50;
  q.with_total = true;
  q.total_limit = 1000;
  const SearchClause code = Clause(SearchKind::kToken, "code", {Code("85354-9")});
  // A string clause stands in for a month of dates (TableEstimator counts strings).
  const SearchClause name = Clause(SearchKind::kString, "performer-name", {Text("wang")});
  q.all_of = {code, name};
  // The code counted at 100,000 (the cap: unknown), the string at 21,484: the string first.
  TableEstimator month(sql::kEstimateCap, 21484);
  auto c = CompileSearch(q, postgres::PostgresDialect(), &month);
  ASSERT_TRUE(c.page);
  EXPECT_FALSE(c.all);
  EXPECT_TRUE(c.total_from_page);  // the code is probed: the page proves the total
  const std::string& sql = c.page->sql;
  const size_t first = sql.find("CASE WHEN (SELECT TRUE WHERE EXISTS (SELECT 1 FROM idx_string");
  const size_t then = sql.find("THEN (SELECT TRUE WHERE EXISTS (SELECT 1 FROM idx_token");
  EXPECT_NE(first, std::string::npos) << sql;
  EXPECT_NE(then, std::string::npos) << sql;
  EXPECT_NE(sql.find("ORDER BY r.id LIMIT"), std::string::npos) << sql;
  // One clause of many rows: nothing is probed beside it, so the total is counted, planned
  // ("rid IN (…)" for the planner to drive from), not walked row by row.
  q.all_of = {name};
  c = CompileSearch(q, postgres::PostgresDialect(), &month);
  ASSERT_TRUE(c.page);
  ASSERT_TRUE(c.count);
  EXPECT_FALSE(c.total_from_page);
  EXPECT_NE(c.page->sql.find("(SELECT TRUE WHERE EXISTS (SELECT 1 FROM idx_string"),
            std::string::npos)
      << c.page->sql;
  EXPECT_NE(c.count->sql.find("r.rid IN (SELECT rid FROM idx_string"), std::string::npos)
      << c.count->sql;
  EXPECT_EQ(c.count->sql.find("SELECT TRUE"), std::string::npos) << c.count->sql;
  // A selective clause (under 10,000 rows) is collected and sorted, as before.
  TableEstimator few(sql::kEstimateCap, 5000);
  c = CompileSearch(q, postgres::PostgresDialect(), &few);
  EXPECT_TRUE(c.all);
  EXPECT_FALSE(c.page);
}

// PostgreSQL: a _has whose referrers' criterion counts few is collected once, with the page,
// total and ids in one statement (`all`); with many referrers it stays a page and a count.
TEST(SearchSql, AHasOfFewReferrersIsCollectedOnceOnPostgres) {
  SearchQuery q;
  q.type = "Patient";
  q.count = 50;
  SearchClause has = Clause(SearchKind::kReverseChain, "subject", {});
  has.links = {SearchLink{"Condition", {Clause(SearchKind::kToken, "code", {Code("E11")})}}};
  q.all_of = {has};
  {
    TableEstimator few(286, 0);
    const auto c = CompileSearch(q, postgres::PostgresDialect(), &few);
    ASSERT_TRUE(c.all);
    EXPECT_FALSE(c.page);
    EXPECT_FALSE(c.count);
    EXPECT_NE(c.all->sql.find("row_number() OVER"), std::string::npos) << c.all->sql;
  }
  {
    TableEstimator many(sql::kEstimateCap, 0);
    const auto c = CompileSearch(q, postgres::PostgresDialect(), &many);
    EXPECT_FALSE(c.all);
    EXPECT_TRUE(c.page);
    EXPECT_TRUE(c.count);
  }
}

// A date eq (the stored range within the searched one) bounds both columns on both sides, so
// that an index on either reads only the range (with only "end <= hi", SQLite read every date
// before it).
TEST(SearchSql, ADateEqBoundsBothColumnsOnBothSides) {
  SearchQuery q;
  q.type = "Encounter";
  SearchValue day;
  day.prefix = SearchPrefix::kEq;
  day.lo_us = 1000;
  day.hi_us = 2000;
  q.all_of = {Clause(SearchKind::kDate, "date", {day})};
  const auto c = CompileSearch(q, sqlite::SqliteDialect());
  const std::string& sql = c.all ? c.all->sql : c.page->sql;
  for (const std::string bound : {"start_us >= ", "start_us <= ", "end_us >= ", "end_us <= "})
    EXPECT_NE(sql.find(bound), std::string::npos) << bound << " in " << sql;
}

// SQLite: a composite's code with a value without a unit lists the (system1, code2, system2)
// under the code first (one seek each), so that the key's range on number2 serves the value;
// a probe of one resource's rows and PostgreSQL keep the plain condition.
TEST(SearchSql, ACompositeValueWithoutAUnitListsTheKeysBeforeIt) {
  SearchQuery q;
  q.type = "Observation";
  SearchClause c;
  c.kind = SearchKind::kComposite;
  c.param = "component-code-value-quantity";
  c.components = {SearchKind::kToken, SearchKind::kQuantity};
  SearchValue high;
  high.prefix = SearchPrefix::kGt;
  high.number = 180;
  SearchValue v;
  v.components = {Code("8480-6"), high};
  c.any_of = {v};
  q.all_of = {c};
  const auto sqlite = CompileSearch(q, sqlite::SqliteDialect());
  const std::string& lite = sqlite.all ? sqlite.all->sql : sqlite.page->sql;
  EXPECT_NE(lite.find("(system1, code2, system2) IN (WITH RECURSIVE"), std::string::npos) << lite;
  EXPECT_NE(lite.find("number2 > "), std::string::npos) << lite;
  // PostgreSQL seeks each key's rows for the value (a lateral join over the listed keys), its
  // least values by ORDER BY … LIMIT 1 (it has no min(bytea)).
  const auto pg = CompileSearch(q, postgres::PostgresDialect());
  const std::string& post = pg.all ? pg.all->sql : pg.page->sql;
  EXPECT_NE(post.find("r.rid IN (SELECT x"), std::string::npos) << post;
  EXPECT_NE(post.find("(WITH RECURSIVE"), std::string::npos) << post;
  EXPECT_NE(post.find(" CROSS JOIN LATERAL (SELECT rid FROM idx_composite WHERE"),
            std::string::npos)
      << post;
  EXPECT_NE(post.find(".s2 AND (number2 > "), std::string::npos) << post;
  EXPECT_NE(post.find(" OFFSET 0) AS x"), std::string::npos) << post;
  EXPECT_EQ(post.find("min("), std::string::npos) << post;
  EXPECT_NE(post.find("ORDER BY system1 LIMIT 1)"), std::string::npos) << post;
  // Two values (an OR): the code's rows with the values, no key list.
  SearchQuery two = q;
  two.all_of[0].any_of.push_back(v);
  const auto pg_two = CompileSearch(two, postgres::PostgresDialect());
  const std::string& post_two = pg_two.all ? pg_two.all->sql : pg_two.page->sql;
  EXPECT_EQ(post_two.find("WITH RECURSIVE"), std::string::npos) << post_two;
  // With a unit the key has its code2 and system2 already: no list.
  SearchValue unit = high;
  unit.code = "mm[Hg]";
  unit.system = "http://unitsofmeasure.org";
  q.all_of[0].any_of[0].components[1] = unit;
  const auto with_unit = CompileSearch(q, sqlite::SqliteDialect());
  const std::string& u = with_unit.all ? with_unit.all->sql : with_unit.page->sql;
  EXPECT_EQ(u.find("WITH RECURSIVE"), std::string::npos) << u;
}

// SQLite: a _has is collected when its referrers are few for the targets there are (each
// referrer's target looked up costs about what testing one target does, and a probing walk tests
// T / referrers x a page of them), else probed by a walk in id order.
TEST(SearchSql, AHasIsCollectedBelowItsBreakEvenWithAProbingWalk) {
  SearchQuery q;
  q.type = "Patient";
  q.count = 50;
  q.total_limit = 1000;
  SearchClause has = Clause(SearchKind::kReverseChain, "subject", {});
  has.links = {SearchLink{"Condition", {Clause(SearchKind::kToken, "code", {Code("E11")})}}};
  q.all_of = {has};
  // The collected form: each referrer's target looked up as a resource (ReverseChainRows).
  const std::string collected = "JOIN resource";
  auto sql = [&](sql::RowEstimator& estimator) {
    const auto c = CompileSearch(q, sqlite::SqliteDialect(), &estimator);
    return c.all ? c.all->sql : c.page ? c.page->sql : std::string();
  };
  {
    // 8,292 referrers among 203,965 patients (a county of 2.2 million resources): probed; so
    // are 286 among 660 (the Synthea sample x 22), where a page is found in ~116 tests.
    TableEstimator county(8292, 0, std::nullopt, 203965);
    EXPECT_EQ(sql(county).find(collected), std::string::npos) << sql(county);
    TableEstimator dense(286, 0, std::nullopt, 660);
    EXPECT_EQ(sql(dense).find(collected), std::string::npos) << sql(dense);
  }
  {
    // 2,000 among 203,965: collected.
    TableEstimator rare(2000, 0, std::nullopt, 203965);
    EXPECT_NE(sql(rare).find(collected), std::string::npos) << sql(rare);
  }
  {
    // Past the count's cap the targets are taken as ten times it: 5,000 referrers collected.
    TableEstimator city(5000, 0, std::nullopt, 5000000);
    EXPECT_NE(sql(city).find(collected), std::string::npos) << sql(city);
  }
}

// SQLite: a collected _has beside another collected clause is one more list of rids in the
// intersection, never "r.id IN (ids)" beside "r.rid IN (rids)", which SQLite answered by seeking
// the (type, id) key once per pair of values of the two lists (a 100,000-resident county's
// `Patient?_has:Condition:subject:code=E11&gender=male` ran into the 30 s timeout).
TEST(SearchSql, AHasBesideAnotherCollectedClauseIsIntersectedAsRids) {
  SearchQuery q;
  q.type = "Patient";
  q.count = 50;
  q.total_limit = 1000;
  SearchClause has = Clause(SearchKind::kReverseChain, "subject", {});
  has.links = {SearchLink{"Condition", {Clause(SearchKind::kToken, "code", {Code("E11")})}}};
  q.all_of = {has, Clause(SearchKind::kToken, "gender", {Code("male")})};
  TableEstimator rare(2000, 0, std::nullopt, 203965);
  const auto sqlite = CompileSearch(q, sqlite::SqliteDialect(), &rare);
  const std::string& s = sqlite.all ? sqlite.all->sql : sqlite.page->sql;
  EXPECT_EQ(s.find(".id IN (SELECT target_id"), std::string::npos) << s;
  EXPECT_NE(s.find("JOIN resource"), std::string::npos) << s;
  EXPECT_NE(s.find("+d"), std::string::npos) << s;  // one list tested against the other
  // PostgreSQL joins the ids by hash: the clause stays on them, one lookup fewer per match.
  TableEstimator rare_pg(2000, 0, std::nullopt, 203965);
  const auto pg = CompileSearch(q, postgres::PostgresDialect(), &rare_pg);
  const std::string& p = pg.all ? pg.all->sql : pg.page->sql;
  EXPECT_NE(p.find(".id IN (SELECT target_id"), std::string::npos) << p;
}

TEST(SearchSql, FullTextWordsAreRunsOfWordCharacters) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(sql::FullTextWords("zhang.li@jiashan.example anna-lena"),
            (V{"zhang", "li", "jiashan", "example", "anna", "lena"}));
  EXPECT_EQ(sql::FullTextWords("2024-03-05 36.5 o'neil"),
            (V{"2024", "03", "05", "36", "5", "o", "neil"}));
  EXPECT_EQ(sql::FullTextWords("高 血 压。病，史 ok"), (V{"高", "血", "压", "病", "史", "ok"}));
  EXPECT_EQ(sql::FullTextWords("  \t--  "), V{});
  EXPECT_EQ(sql::FullTextWords(""), V{});
  EXPECT_EQ(sql::FullTextWords(std::string("a\0b", 3)), (V{"a", "b"}));
  // Bytes that start no character separate words, and never end up inside one.
  EXPECT_EQ(sql::FullTextWords("ab\xFF"
                               "cd\xC1\x81"
                               "e\xED\xA0\x80"
                               "f"),
            (V{"ab", "cd", "e", "f"}));
  EXPECT_EQ(sql::FullTextWords("naïve 한국어"), (V{"naïve", "한국어"}));
}

TEST(PgSearch, PrefixUpperBoundIsTheNextTextInCodePointOrder) {
  using postgres::PrefixUpperBound;
  EXPECT_EQ(PrefixUpperBound("abc"), "abd");
  EXPECT_EQ(PrefixUpperBound("王"), "\xE7\x8E\x8C");                // U+738B → U+738C
  EXPECT_EQ(PrefixUpperBound("a\x7F"), "a\xC2\x80");                // U+007F → U+0080
  EXPECT_EQ(PrefixUpperBound("\xDF\xBF"), "\xE0\xA0\x80");          // U+07FF → U+0800
  EXPECT_EQ(PrefixUpperBound("\xEF\xBF\xBF"), "\xF0\x90\x80\x80");  // U+FFFF → U+10000
  EXPECT_EQ(PrefixUpperBound("\xED\x9F\xBF"), "\xEE\x80\x80");  // U+D7FF → U+E000 (no surrogates)
  EXPECT_EQ(PrefixUpperBound("a\xF4\x8F\xBF\xBF"), "b");        // U+10FFFF carries
  EXPECT_EQ(PrefixUpperBound("\xF4\x8F\xBF\xBF\xF4\x8F\xBF\xBF"), std::nullopt);
  EXPECT_EQ(PrefixUpperBound(""), std::nullopt);
  EXPECT_EQ(PrefixUpperBound("a\xFF"), std::nullopt);  // not UTF-8: PostgreSQL refuses it anyway
}

TEST(PgSearch, WordQueriesAndDocumentsUseTheSameWords) {
  using postgres::FullTextDocument;
  using postgres::WordQuery;
  EXPECT_EQ(WordQuery("hyperten"), "'hyperten':*");
  EXPECT_EQ(WordQuery("高 血 压"), "'高' <-> '血' <-> '压':*");
  EXPECT_EQ(WordQuery("o'neil"), "'o' <-> 'neil':*");
  EXPECT_EQ(WordQuery("2024-03"), "'2024' <-> '03':*");
  EXPECT_EQ(WordQuery("。--"), "");
  EXPECT_EQ(FullTextDocument("Zhang.li@x  高 血 压。 36.5"), "Zhang li x 高 血 压 36 5");
  EXPECT_EQ(FullTextDocument("。"), "");
}

// A date-sorted page with a clause on its own date walks the date index only up to the clause's
// bound (descending: the rows ending at or after its start; ascending: starting at or before its
// end), and probes every clause rather than collecting any: the walk meets few rows.
TEST(SearchSql, ADateWalkStopsAtItsOwnClausesBound) {
  SearchQuery q;
  q.type = "Observation";
  q.count = 50;
  SearchValue since;
  since.prefix = SearchPrefix::kGe;
  since.lo_us = 1'000'000;
  since.hi_us = 2'000'000;
  SearchClause date = Clause(SearchKind::kDate, "date", {since});
  q.all_of = {Clause(SearchKind::kToken, "category", {Code("laboratory")}), date};
  q.sort = {SortKey{"date", SearchKind::kDate, true}};
  // 1,500 dates since the day and 25,000 laboratory rows among 100,000 dates in all: the walk
  // reads the 1,500 (walk < collect: 1,500 < 1,500^2 x 2 / 50), where unbounded it would read
  // 100,000 x 50 / 1,500 = 3,333 rows a page, and so collected (100,000 > 90,000).
  class Counts final : public sql::RowEstimator {
   public:
    std::optional<int64_t> CountRows(const sql::Statement& st) override {
      if (st.sql.find("FROM idx_date") == std::string::npos) return 25000;
      if (st.sql.find("start_us") != std::string::npos) return 1500;  // the clause's rows
      const int64_t limit = std::stoll(st.sql.substr(st.sql.rfind("LIMIT ") + 6));
      return std::min<int64_t>(100000, limit);  // the parameter's rows
    }
  } counts;
  for (const sql::Dialect* d : {&sqlite::SqliteDialect(), &postgres::PostgresDialect()}) {
    auto c = CompileSearch(q, *d, &counts);
    ASSERT_TRUE(c.walk);
    EXPECT_NE(c.walk->sql.find("AND s.end_us >= "), std::string::npos) << c.walk->sql;
    EXPECT_EQ(c.walk->sql.find("rid IN (SELECT rid FROM idx_token"), std::string::npos)
        << c.walk->sql;
    // Ascending with a lower bound only: nothing bounds the walk, which is not worth it.
    q.sort[0].descending = false;
    c = CompileSearch(q, *d, &counts);
    EXPECT_FALSE(c.walk);
    q.all_of[1].any_of[0].prefix = SearchPrefix::kLe;
    c = CompileSearch(q, *d, &counts);
    ASSERT_TRUE(c.walk);
    EXPECT_NE(c.walk->sql.find("AND s.start_us <= "), std::string::npos) << c.walk->sql;
    // eq bounds where the walk ends, not where it starts (the first value of all): the
    // parameter's rows decide, as unbounded.
    q.all_of[1].any_of[0].prefix = SearchPrefix::kEq;
    EXPECT_FALSE(CompileSearch(q, *d, &counts).walk);
    q.sort[0].descending = true;
    EXPECT_FALSE(CompileSearch(q, *d, &counts).walk);
    q.all_of[1].any_of[0].prefix = SearchPrefix::kGe;
  }
}

// PostgreSQL numbers every match of a collected search (Dialect::NumbersAll); with sort keys and
// want_last the numbered rows carry the sort values too (columns s0, s1, …), so that the page's
// cursor needs no statement of its own (CompiledSearch::all_sort_values). SQLite reads it with
// the `last` statement.
TEST(SearchSql, NumberedMatchesCarryTheirSortValuesForTheCursor) {
  SearchQuery q;
  q.type = "Observation";
  q.count = 10;
  q.want_last = true;
  q.all_of = {Clause(SearchKind::kToken, "code", {Code("8867-4")})};
  q.sort = {SortKey{"date", SearchKind::kDate, true}, SortKey{"_id", SearchKind::kId, false}};
  TableEstimator few(50, 50);
  auto c = CompileSearch(q, postgres::PostgresDialect(), &few);
  ASSERT_TRUE(c.all);
  EXPECT_TRUE(c.all_sort_values);
  EXPECT_NE(c.all->sql.find(" AS s0, r.id AS s1 FROM resource r"), std::string::npos) << c.all->sql;
  // The date's expression is bound once, shared by the window's order and the column.
  EXPECT_EQ(c.all->params.size(), 4u) << c.all->sql;
  q.want_last = false;
  c = CompileSearch(q, postgres::PostgresDialect(), &few);
  ASSERT_TRUE(c.all);
  EXPECT_FALSE(c.all_sort_values);
  EXPECT_EQ(c.all->sql.find(" AS s0"), std::string::npos) << c.all->sql;
  q.want_last = true;
  c = CompileSearch(q, sqlite::SqliteDialect(), &few);
  EXPECT_FALSE(c.all_sort_values);
}

}  // namespace
}  // namespace jiceng::store

namespace jiceng::store::testing {
namespace {

// A page that ends the matches proves the total; a full page, an empty page past offset 0 and
// count 0 (_summary=count) do not.
TEST(TotalFromPage, OnlyAPageThatEndsTheMatchesProvesTheTotal) {
  SearchQuery q;
  q.count = 10;
  EXPECT_EQ(sql::TotalFromPage(q, 3), std::optional<int64_t>(3));
  EXPECT_EQ(sql::TotalFromPage(q, 0), std::optional<int64_t>(0));
  EXPECT_EQ(sql::TotalFromPage(q, 10), std::nullopt);
  q.offset = 20;
  EXPECT_EQ(sql::TotalFromPage(q, 4), std::optional<int64_t>(24));
  EXPECT_EQ(sql::TotalFromPage(q, 0), std::nullopt);
  q.count = 0;
  EXPECT_EQ(sql::TotalFromPage(q, 0), std::nullopt);
}

}  // namespace
}  // namespace jiceng::store::testing
