#include "store/sqlite/sqlite_search.h"

#include <string>
#include <variant>
#include <vector>

#include "store/sqlite/connection.h"
#include "store/sqlite/sqlite_schema.h"

namespace jiceng::store::sqlite {
namespace {

// The SQL of a search is built from the query's shape only; every value is a bound parameter,
// so statements are cached per shape and values can never inject SQL.
class SqlBuilder {
 public:
  using Value = std::variant<int64_t, double, std::string>;

  std::string Bind(Value v) {
    binds_.push_back(std::move(v));
    return "?" + std::to_string(binds_.size());
  }
  void BindAll(Stmt& s) const {
    for (size_t i = 0; i < binds_.size(); ++i) {
      const int n = static_cast<int>(i) + 1;
      if (const auto* iv = std::get_if<int64_t>(&binds_[i])) s.BindInt(n, *iv);
      else if (const auto* dv = std::get_if<double>(&binds_[i])) s.BindDouble(n, *dv);
      else s.BindText(n, std::get<std::string>(binds_[i]));
    }
  }

 private:
  std::vector<Value> binds_;
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
    default: return nullptr;
  }
}

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
  return "0";
}

// One OR-alternative of a clause, over the columns of the clause's index table.
std::string ValueCond(SqlBuilder& b, SearchKind kind, const SearchValue& v) {
  switch (kind) {
    case SearchKind::kString:
      switch (v.string_match) {
        case StringMatch::kStartsWith:
          // 0xFF never occurs in UTF-8, so [text, text + 0xFF) is exactly "starts with text"
          // and stays a range scan on the (type, param, value) key.
          return "(value >= " + b.Bind(v.text) + " AND value < " + b.Bind(v.text + "\xFF") + ")";
        case StringMatch::kExact:
          return "(value = " + b.Bind(v.text) + " AND exact = " + b.Bind(v.exact) + ")";
        case StringMatch::kContains:
          return "instr(value, " + b.Bind(v.text) + ") > 0";
      }
      return "0";
    case SearchKind::kToken: {
      std::string cond;
      if (!v.code.empty()) cond = "code = " + b.Bind(v.code);
      if (v.system) {
        if (!cond.empty()) cond += " AND ";
        cond += "system = " + b.Bind(*v.system);
      }
      return "(" + cond + ")";
    }
    case SearchKind::kDate: return DateCond(b, v, "start_us", "end_us");
    case SearchKind::kNumber: return NumberCond(b, v, "value");
    case SearchKind::kQuantity: {
      if (!v.canonical_code.empty()) {
        return "(canonical_code = " + b.Bind(v.canonical_code) + " AND " +
               NumberCond(b, v, "canonical_value") + ")";
      }
      std::string cond = "(" + NumberCond(b, v, "value");
      if (!v.code.empty()) cond += " AND code = " + b.Bind(v.code);
      if (v.system) cond += " AND system = " + b.Bind(*v.system);
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
          return "(value >= " + b.Bind(v.text) + " AND value < " + b.Bind(v.text + "\xFF") + ")";
        case UriMatch::kAbove: {
          std::string p = b.Bind(v.text);
          return "(value <> '' AND substr(" + p + ", 1, length(value)) = value)";
        }
      }
      return "0";
    default: return "0";
  }
}

std::string ClauseCond(SqlBuilder& b, const SearchClause& c, const std::string& type_param) {
  if (c.kind == SearchKind::kId) {
    std::string in;
    for (const SearchValue& v : c.any_of) in += (in.empty() ? "" : ", ") + b.Bind(v.code);
    return in.empty() ? "0" : "r.id IN (" + in + ")";
  }
  if (c.kind == SearchKind::kLastUpdated) {
    std::string any;
    for (const SearchValue& v : c.any_of) {
      any += (any.empty() ? "" : " OR ") +
             DateCond(b, v, "r.last_updated_us", "(r.last_updated_us + 1)");
    }
    return any.empty() ? "0" : "(" + any + ")";
  }
  const char* table = TableOf(c.kind);
  if (!table) return "0";
  std::string rows = std::string("SELECT rid FROM ") + table + " WHERE type = " + type_param +
                     " AND param = " + b.Bind(c.param);
  if (c.missing) return std::string("r.rid ") + (*c.missing ? "NOT IN (" : "IN (") + rows + ")";
  std::string any;
  for (const SearchValue& v : c.any_of) any += (any.empty() ? "" : " OR ") + ValueCond(b, c.kind, v);
  if (any.empty()) return "0";
  return std::string("r.rid ") + (c.negate ? "NOT IN (" : "IN (") + rows + " AND (" + any + "))";
}

std::string SortExpr(SqlBuilder& b, const SortKey& k) {
  switch (k.kind) {
    case SearchKind::kId: return "r.id";
    case SearchKind::kLastUpdated: return "r.last_updated_us";
    default: break;
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
  const std::string type_param = b.Bind(q.type);
  std::string where = "r.type = " + type_param + " AND r.deleted = 0";
  if (q.at_or_before_us) where += " AND r.last_updated_us <= " + b.Bind(*q.at_or_before_us);
  for (const SearchClause& clause : q.all_of) where += " AND " + ClauseCond(b, clause, type_param);

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
  order += "r.id";
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
