#include "store/sqlite/sqlite_search.h"

#include <string>
#include <variant>
#include <vector>

#include "store/sqlite/connection.h"
#include "store/sqlite/sqlite_schema.h"

namespace jiceng::store::sqlite {
namespace {

class SqlBuilder;

// ---- dialect ---------------------------------------------------------------------------------
// Every SQLite-specific spelling of the compiler is in this block, so that a PostgreSQL dialect
// can replace it: the rest of the file is portable SQL (IN subqueries, UNION ALL, substr, length,
// min/max, NULLS LAST, LIMIT/OFFSET).
namespace dialect {

// Boolean literals (SQLite has no boolean type; PostgreSQL spells them TRUE/FALSE).
constexpr const char* kTrue = "1";
constexpr const char* kFalse = "0";

// The n-th (1-based) bound parameter.
std::string Placeholder(size_t n) { return "?" + std::to_string(n); }

// "col starts with the text bound at `lo`": 0xFF never occurs in UTF-8, so [text, text + 0xFF)
// is exactly the strings starting with text, and the condition stays a range scan on the key.
// `hi` is the bound text + "\xFF" (see PrefixUpperBound).
std::string StartsWith(const std::string& col, const std::string& lo, const std::string& hi) {
  return "(" + col + " >= " + lo + " AND " + col + " < " + hi + ")";
}
std::string PrefixUpperBound(const std::string& prefix) { return prefix + "\xFF"; }

// "col contains the text bound at `needle`".
std::string Contains(const std::string& col, const std::string& needle) {
  return "instr(" + col + ", " + needle + ") > 0";
}

// _text/_content: the rids of fts_resource (an FTS5 table, rowid = rid) matching every word of
// one of the values. Words are already in full-text form; a word of several tokens (a CJK run)
// is a phrase, and the last token of each word matches as a prefix. (Defined below SqlBuilder.)
std::string FullTextRids(SqlBuilder& b, const SearchClause& c);

}  // namespace dialect

// The SQL of a search is built from the query's shape only; every value is a bound parameter,
// so statements are cached per shape and values can never inject SQL.
class SqlBuilder {
 public:
  using Value = std::variant<int64_t, double, std::string>;

  std::string Bind(Value v) {
    binds_.push_back(std::move(v));
    return dialect::Placeholder(binds_.size());
  }
  void BindAll(Stmt& s) const {
    for (size_t i = 0; i < binds_.size(); ++i) {
      const int n = static_cast<int>(i) + 1;
      if (const auto* iv = std::get_if<int64_t>(&binds_[i])) s.BindInt(n, *iv);
      else if (const auto* dv = std::get_if<double>(&binds_[i])) s.BindDouble(n, *dv);
      else s.BindText(n, std::get<std::string>(binds_[i]));
    }
  }
  // A fresh table alias for a nested resource scan ("t1", "h2", …).
  std::string NewAlias(const char* prefix) { return prefix + std::to_string(++aliases_); }

 private:
  std::vector<Value> binds_;
  int aliases_ = 0;
};

// The resource row a clause applies to: its alias in the SQL ("r" at the top, "t1"/"h1" in
// chains) and the placeholder bound to its type.
struct Scope {
  std::string alias;
  std::string type_param;
};

const char* TableOf(SearchKind k) {
  switch (k) {
    case SearchKind::kString: return "idx_string";
    case SearchKind::kToken: return "idx_token";
    case SearchKind::kDate: return "idx_date";
    case SearchKind::kNumber: return "idx_number";
    case SearchKind::kQuantity: return "idx_quantity";
    case SearchKind::kReference: return "idx_reference";
    case SearchKind::kUri: return "idx_uri";
    case SearchKind::kComposite: return "idx_composite";
    default: return nullptr;
  }
}

// The columns a value condition reads: those of the typed idx_* tables, or the slots of
// idx_composite (see store::CompositeIndexRow).
struct Columns {
  const char* text = "value";   // string: normalised text
  const char* exact = "exact";  // string: as written
  const char* code = "code";
  const char* system = "system";
  const char* number = "value";
  const char* canonical_code = "canonical_code";
  const char* canonical_number = "canonical_value";
  const char* start = "start_us";
  const char* end = "end_us";
};
constexpr Columns kTableColumns{};
constexpr Columns kCompositeFirst{.code = "code1", .system = "system1"};
constexpr Columns kCompositeSecond{.text = "code2",
                                   .exact = "system2",
                                   .code = "code2",
                                   .system = "system2",
                                   .number = "number2",
                                   .canonical_code = "canonical_code2",
                                   .canonical_number = "canonical_number2",
                                   .start = "start2_us",
                                   .end = "end2_us"};

// Range semantics of a stored [s, e) against a search [lo, hi) (see fhir/search/query.h).
std::string DateCond(SqlBuilder& b, const SearchValue& v, const std::string& s,
                     const std::string& e) {
  const std::string lo = b.Bind(v.lo_us), hi = b.Bind(v.hi_us);
  const std::string eq = "(" + s + " >= " + lo + " AND " + e + " <= " + hi + ")";
  switch (v.prefix) {
    case SearchPrefix::kEq: return eq;
    case SearchPrefix::kNe: return "NOT " + eq;
    case SearchPrefix::kGt: return e + " > " + hi;
    case SearchPrefix::kLt: return s + " < " + lo;
    case SearchPrefix::kGe: return "(" + e + " > " + hi + " OR " + eq + ")";
    case SearchPrefix::kLe: return "(" + s + " < " + lo + " OR " + eq + ")";
    case SearchPrefix::kSa: return s + " >= " + hi;
    case SearchPrefix::kEb: return e + " <= " + lo;
    case SearchPrefix::kAp: return "(" + s + " < " + hi + " AND " + e + " > " + lo + ")";
  }
  return eq;
}

std::string NumberCond(SqlBuilder& b, const SearchValue& v, const std::string& col) {
  switch (v.prefix) {
    case SearchPrefix::kEq:
    case SearchPrefix::kNe: {
      std::string eq = "(" + col + " >= " + b.Bind(v.lo) + " AND " + col + " < " + b.Bind(v.hi) + ")";
      return v.prefix == SearchPrefix::kNe ? "NOT " + eq : eq;
    }
    case SearchPrefix::kGt:
    case SearchPrefix::kSa: return col + " > " + b.Bind(v.number);
    case SearchPrefix::kLt:
    case SearchPrefix::kEb: return col + " < " + b.Bind(v.number);
    case SearchPrefix::kGe: return col + " >= " + b.Bind(v.lo);
    case SearchPrefix::kLe: return col + " < " + b.Bind(v.hi);
    case SearchPrefix::kAp: {
      double a = v.number * 0.9, z = v.number * 1.1;
      if (a > z) std::swap(a, z);
      return "(" + col + " >= " + b.Bind(a) + " AND " + col + " <= " + b.Bind(z) + ")";
    }
  }
  return dialect::kFalse;
}

std::string TokenCond(SqlBuilder& b, const SearchValue& v, const Columns& cols) {
  const std::string code = cols.code, system = cols.system;
  if (!v.codes.empty()) {  // :in / :not-in: any system
    std::string in;
    for (const std::string& c : v.codes) in += (in.empty() ? "" : ", ") + b.Bind(c);
    return code + " IN (" + in + ")";
  }
  std::string cond;
  if (!v.code.empty()) cond = code + " = " + b.Bind(v.code);
  if (v.system) {
    if (!cond.empty()) cond += " AND ";
    cond += system + " = " + b.Bind(*v.system);
  }
  return cond.empty() ? std::string(dialect::kTrue) : "(" + cond + ")";
}

// One OR-alternative of a clause, over the columns `cols` of the clause's index table.
std::string ValueCond(SqlBuilder& b, SearchKind kind, const SearchValue& v, const Columns& cols) {
  switch (kind) {
    case SearchKind::kString:
      switch (v.string_match) {
        case StringMatch::kStartsWith:
          return dialect::StartsWith(cols.text, b.Bind(v.text),
                                     b.Bind(dialect::PrefixUpperBound(v.text)));
        case StringMatch::kExact:
          return "(" + std::string(cols.text) + " = " + b.Bind(v.text) + " AND " + cols.exact +
                 " = " + b.Bind(v.exact) + ")";
        case StringMatch::kContains:
          return dialect::Contains(cols.text, b.Bind(v.text));
      }
      return dialect::kFalse;
    case SearchKind::kToken: return TokenCond(b, v, cols);
    case SearchKind::kDate: return DateCond(b, v, cols.start, cols.end);
    case SearchKind::kNumber: return NumberCond(b, v, cols.number);
    case SearchKind::kQuantity: {
      if (!v.canonical_code.empty()) {
        return "(" + std::string(cols.canonical_code) + " = " + b.Bind(v.canonical_code) +
               " AND " + NumberCond(b, v, cols.canonical_number) + ")";
      }
      std::string cond = "(" + NumberCond(b, v, cols.number);
      if (!v.code.empty()) cond += " AND " + std::string(cols.code) + " = " + b.Bind(v.code);
      if (v.system) cond += " AND " + std::string(cols.system) + " = " + b.Bind(*v.system);
      return cond + ")";
    }
    case SearchKind::kReference: {
      if (!v.url.empty()) return "url = " + b.Bind(v.url);
      std::string cond = "(target_id = " + b.Bind(v.code);
      if (!v.type.empty()) cond += " AND target_type = " + b.Bind(v.type);
      return cond + ")";
    }
    case SearchKind::kUri:
      switch (v.uri_match) {
        case UriMatch::kEquals: return "value = " + b.Bind(v.text);
        case UriMatch::kBelow:
          return dialect::StartsWith("value", b.Bind(v.text),
                                     b.Bind(dialect::PrefixUpperBound(v.text)));
        case UriMatch::kAbove: {
          std::string p = b.Bind(v.text);
          return "(value <> '' AND substr(" + p + ", 1, length(value)) = value)";
        }
      }
      return dialect::kFalse;
    default: return dialect::kFalse;
  }
}

std::string ClauseCond(SqlBuilder& b, const SearchClause& c, const Scope& scope,
                       bool probe = false);
std::string AllClauses(SqlBuilder& b, const std::vector<SearchClause>& clauses,
                       const Scope& scope);

std::string dialect::FullTextRids(SqlBuilder& b, const SearchClause& c) {
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
  if (expr.empty()) return std::string("SELECT NULL WHERE ") + kFalse;
  if (c.param == "_text") expr = "narrative : (" + expr + ")";
  return "SELECT rowid FROM fts_resource WHERE fts_resource MATCH " + b.Bind(expr);
}

// SELECT `column` of the current resources of link.type that match link.all_of, under a fresh
// alias (the scope of the link's clauses).
std::string NestedResources(SqlBuilder& b, const char* column, const SearchLink& link,
                            const char* alias_prefix) {
  const Scope inner{b.NewAlias(alias_prefix), b.Bind(link.type)};
  const std::string& a = inner.alias;
  std::string sql = "SELECT " + a + "." + column + " FROM resource " + a + " WHERE " + a +
                    ".type = " + inner.type_param + " AND " + a + ".deleted = 0";
  if (!link.all_of.empty()) sql += " AND " + AllClauses(b, link.all_of, inner);
  return sql;
}

// subject.name=x: the references of `param` whose target is a current resource of a link's type
// matching the link's clauses. One subquery per candidate type (UNION ALL), each an index range
// on (type, param, target_id) for the ids the nested scan yields.
std::string ChainCond(SqlBuilder& b, const SearchClause& c, const Scope& scope) {
  if (c.links.empty()) return dialect::kFalse;
  const std::string param = b.Bind(c.param);
  std::string rows;
  for (const SearchLink& link : c.links) {
    std::string nested = NestedResources(b, "id", link, "t");
    if (!rows.empty()) rows += " UNION ALL ";
    rows += "SELECT rid FROM idx_reference WHERE type = " + scope.type_param +
            " AND param = " + param + " AND target_type = " + b.Bind(link.type) +
            " AND target_id IN (" + nested + ")";
  }
  return scope.alias + ".rid IN (" + rows + ")";
}

// _has:Observation:subject:code=x: the ids that current resources of links[0].type matching its
// clauses refer to through `param`, with this scope's type.
std::string ReverseChainCond(SqlBuilder& b, const SearchClause& c, const Scope& scope) {
  if (c.links.size() != 1) return dialect::kFalse;
  const SearchLink& link = c.links[0];
  std::string nested = NestedResources(b, "rid", link, "h");
  return scope.alias + ".id IN (SELECT target_id FROM idx_reference WHERE type = " +
         b.Bind(link.type) + " AND param = " + b.Bind(c.param) +
         " AND target_type = " + scope.type_param + " AND rid IN (" + nested + "))";
}

// Both components within one composite row.
std::string CompositeCond(SqlBuilder& b, const SearchClause& c, const SearchValue& v) {
  if (c.components.size() != 2 || v.components.size() != 2) return dialect::kFalse;
  return "(" + TokenCond(b, v.components[0], kCompositeFirst) + " AND " +
         ValueCond(b, c.components[1], v.components[1], kCompositeSecond) + ")";
}

std::string ClauseCond(SqlBuilder& b, const SearchClause& c, const Scope& scope, bool probe) {
  const std::string& r = scope.alias;
  if (c.kind == SearchKind::kId) {
    std::string in;
    for (const SearchValue& v : c.any_of) in += (in.empty() ? "" : ", ") + b.Bind(v.code);
    return in.empty() ? std::string(dialect::kFalse) : r + ".id IN (" + in + ")";
  }
  if (c.kind == SearchKind::kLastUpdated) {
    std::string any;
    for (const SearchValue& v : c.any_of) {
      any += (any.empty() ? "" : " OR ") +
             DateCond(b, v, r + ".last_updated_us", "(" + r + ".last_updated_us + 1)");
    }
    return any.empty() ? std::string(dialect::kFalse) : "(" + any + ")";
  }
  if (c.kind == SearchKind::kChain) return ChainCond(b, c, scope);
  if (c.kind == SearchKind::kReverseChain) return ReverseChainCond(b, c, scope);
  if (c.kind == SearchKind::kText) return r + ".rid IN (" + dialect::FullTextRids(b, c) + ")";
  const char* table = TableOf(c.kind);
  if (!table) return dialect::kFalse;
  std::string rows = std::string("SELECT rid FROM ") + table + " WHERE type = " +
                     scope.type_param + " AND param = " + b.Bind(c.param);
  if (c.missing) return r + ".rid " + (*c.missing ? "NOT IN (" : "IN (") + rows + ")";
  std::string any;
  for (const SearchValue& v : c.any_of) {
    any += (any.empty() ? "" : " OR ") + (c.kind == SearchKind::kComposite
                                              ? CompositeCond(b, c, v)
                                              : ValueCond(b, c.kind, v, kTableColumns));
  }
  if (any.empty()) return dialect::kFalse;
  if (probe) {
    // Test this one candidate's own rows (jc_rows over its index keys) with the same condition.
    return std::string(c.negate ? "NOT " : "") +
           "EXISTS (SELECT 1 FROM jc_rows((SELECT keys FROM resource_index_keys WHERE rid = " + r +
           ".rid), " + std::to_string(static_cast<int>(c.kind)) + ") WHERE param = " +
           b.Bind(c.param) + " AND (" + any + "))";
  }
  return r + ".rid " + (c.negate ? "NOT IN (" : "IN (") + rows + " AND (" + any + "))";
}

// How well a clause drives a search (lower is better): an index scan yielding few rids. The
// best clause is compiled as "rid IN (index scan)" and every other value clause as a probe of
// each candidate's own rows, so a patient's observations of one code never materialise every
// observation of that code.
int DriveRank(const SearchClause& c) {
  if (c.missing || c.negate) return 100;
  switch (c.kind) {
    case SearchKind::kId: return 0;
    case SearchKind::kReference: return 1;
    case SearchKind::kToken:
      for (const SearchValue& v : c.any_of)
        if (v.code.empty() && v.codes.empty()) return 6;  // system| only
      return 2;
    case SearchKind::kComposite: return 3;
    case SearchKind::kUri: return 3;
    case SearchKind::kString:
      for (const SearchValue& v : c.any_of)
        if (v.string_match == StringMatch::kContains) return 7;
      return 4;
    case SearchKind::kChain:
    case SearchKind::kReverseChain:
    case SearchKind::kText: return 5;
    default: return 6;  // date, number, quantity ranges; _lastUpdated
  }
}

bool Probeable(const SearchClause& c) {
  if (c.missing) return false;
  switch (c.kind) {
    case SearchKind::kString: case SearchKind::kToken: case SearchKind::kDate:
    case SearchKind::kNumber: case SearchKind::kQuantity: case SearchKind::kReference:
    case SearchKind::kUri: case SearchKind::kComposite: return true;
    default: return false;
  }
}

std::string AllClauses(SqlBuilder& b, const std::vector<SearchClause>& clauses,
                       const Scope& scope) {
  size_t driver = clauses.size();
  int best = 1000;
  for (size_t i = 0; i < clauses.size(); ++i) {
    const int rank = DriveRank(clauses[i]);
    if (rank < best) best = rank, driver = i;
  }
  std::string sql;
  for (size_t i = 0; i < clauses.size(); ++i) {
    const bool probe = i != driver && driver < clauses.size() && Probeable(clauses[i]);
    sql += (sql.empty() ? "" : " AND ") + ClauseCond(b, clauses[i], scope, probe);
  }
  return sql;
}

std::string SortExpr(SqlBuilder& b, const SortKey& k) {
  switch (k.kind) {
    case SearchKind::kId: return "r.id";
    case SearchKind::kLastUpdated: return "r.last_updated_us";
    case SearchKind::kString:
    case SearchKind::kToken:
    case SearchKind::kDate:
    case SearchKind::kNumber:
    case SearchKind::kQuantity:
    case SearchKind::kReference:
    case SearchKind::kUri: break;
    default: return "NULL";  // not sortable (the parser never asks)
  }
  // The resource's own index keys (resource_index_keys, see index_keys.h) hold every value of
  // the parameter; jc_sort_key picks the lowest ascending and the highest descending.
  return "(SELECT jc_sort_key(keys, " + std::to_string(static_cast<int>(k.kind)) + ", " +
         b.Bind(k.param) + ", " + (k.descending ? "1" : "0") +
         ") FROM resource_index_keys WHERE rid = r.rid)";
}

}  // namespace

Result<SearchPage> QuerySearch(Connection& c, const SearchQuery& q) {
  SqlBuilder b;
  const Scope top{"r", b.Bind(q.type)};
  std::string where = "r.type = " + top.type_param + " AND r.deleted = 0";
  if (q.at_or_before_us) where += " AND r.last_updated_us <= " + b.Bind(*q.at_or_before_us);
  if (!q.all_of.empty()) where += " AND " + AllClauses(b, q.all_of, top);

  SearchPage page;
  if (q.with_total) {
    JC_SQL_STMT(s, c, "SELECT count(*) FROM resource r WHERE " + where);
    b.BindAll(s);
    JC_ASSIGN_OR_RETURN(bool row, s.Step());
    page.total = row ? s.ColumnInt(0) : 0;
  }
  if (q.count <= 0 || (page.total && q.offset >= *page.total)) return page;
  std::string order;
  for (const SortKey& k : q.sort) {
    order += SortExpr(b, k) + (k.descending ? " DESC NULLS LAST, " : " ASC NULLS LAST, ");
  }
  // With criteria, "+r.id" keeps the planner from walking the (type, id) index in id order and
  // testing every resource of the type (it would, to skip the sort): the driving clause's rids
  // come first and the page is sorted afterwards. Without criteria the id order is the scan.
  order += q.all_of.empty() ? "r.id" : "+r.id";
  std::string sql = "SELECT r.type, r.id, r.version, r.last_updated_us, r.deleted, r.json "
                    "FROM resource r WHERE " + where + " ORDER BY " + order + " LIMIT " +
                    b.Bind(q.count) + " OFFSET " + b.Bind(q.offset);
  JC_SQL_STMT(s, c, sql);
  b.BindAll(s);
  for (;;) {
    JC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    page.entries.push_back(RowToVersion(s));
  }
  return page;
}

}  // namespace jiceng::store::sqlite
