#include "store/sql/search_sql.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "base/utf8.h"

namespace jiceng::store::sql {

std::string SqlBuilder::Add(Param p) {
  params_.push_back(std::move(p));
  return dialect_.Placeholder(params_.size(), params_.back().type);
}

namespace {

// The resource row a clause applies to: its alias in the SQL ("r" at the top, "t1"/"h1" in
// chains) and the placeholder bound to its type.
struct Scope {
  std::string alias;
  std::string type_param;
};

const char* TableOf(SearchKind k) {
  switch (k) {
    case SearchKind::kString:
      return "idx_string";
    case SearchKind::kToken:
      return "idx_token";
    case SearchKind::kDate:
      return "idx_date";
    case SearchKind::kNumber:
      return "idx_number";
    case SearchKind::kQuantity:
      return "idx_quantity";
    case SearchKind::kReference:
      return "idx_reference";
    case SearchKind::kUri:
      return "idx_uri";
    case SearchKind::kComposite:
      return "idx_composite";
    default:
      return nullptr;
  }
}

// The columns a value condition reads: those of the typed idx_* tables, or the slots of
// idx_composite (see store::CompositeIndexRow). Codes and systems are bytes in every table;
// string text is text in idx_string and bytes in idx_composite's slots.
struct Columns {
  const char* text = "value";   // string: normalised text
  const char* exact = "exact";  // string: as written
  SqlType text_type = SqlType::kText;
  const char* code = "code";
  const char* system = "system";
  const char* number = "value";
  const char* canonical_code = "canonical_code";
  const char* canonical_number = "canonical_value";
  const char* start = "start_us";
  const char* end = "end_us";
  // reference: the target's id and type, and an absolute URL naming no local resource; where
  // url_only is set, a URL is stored in `url` with that column ''.
  const char* target_id = "target_id";
  const char* target_type = "target_type";
  SqlType target_type_type = SqlType::kText;
  const char* url = "url";
  SqlType url_type = SqlType::kText;
  const char* url_only = nullptr;
};
constexpr Columns kTableColumns{};
constexpr Columns kCompositeFirst{.code = "code1", .system = "system1"};
constexpr Columns kCompositeSecond{.text = "code2",
                                   .exact = "system2",
                                   .text_type = SqlType::kBytes,
                                   .code = "code2",
                                   .system = "system2",
                                   .number = "number2",
                                   .canonical_code = "canonical_code2",
                                   .canonical_number = "canonical_number2",
                                   .start = "start2_us",
                                   .end = "end2_us",
                                   .target_id = "code2",
                                   .target_type = "system2",
                                   .target_type_type = SqlType::kBytes,
                                   .url = "code2",
                                   .url_type = SqlType::kBytes,
                                   .url_only = "system2"};

std::string False(SqlBuilder& b) { return std::string(b.dialect().False()); }

// Range semantics of a stored [s, e) against a search [lo, hi) (see fhir/search/query.h).
std::string DateCond(SqlBuilder& b, const SearchValue& v, const std::string& s,
                     const std::string& e) {
  const std::string lo = b.Bind(v.lo_us), hi = b.Bind(v.hi_us);
  const std::string eq = "(" + s + " >= " + lo + " AND " + e + " <= " + hi + ")";
  switch (v.prefix) {
    case SearchPrefix::kEq:
      // With the bounds implied by e >= s (s <= hi, e >= lo), so that an index on either column
      // reads the range alone: SQLite otherwise chose idx_date_by_end for "e <= hi" and read
      // every date before it (a month of a county's blood pressures: 135 ms, all of 2025's
      // Observations before June read to find it).
      return "(" + s + " >= " + lo + " AND " + s + " <= " + hi + " AND " + e + " >= " + lo +
             " AND " + e + " <= " + hi + ")";
    case SearchPrefix::kNe:
      return "NOT " + eq;
    case SearchPrefix::kGt:
      return e + " > " + hi;
    case SearchPrefix::kLt:
      return s + " < " + lo;
    // ge and le add a bound implied by the rest (e >= s), on one column, so that an index on
    // it serves the clause: ge X implies e >= lo, le X implies s <= hi.
    case SearchPrefix::kGe:
      return "(" + e + " >= " + lo + " AND (" + e + " > " + hi + " OR " + eq + "))";
    case SearchPrefix::kLe:
      return "(" + s + " <= " + hi + " AND (" + s + " < " + lo + " OR " + eq + "))";
    case SearchPrefix::kSa:
      return s + " >= " + hi;
    case SearchPrefix::kEb:
      return e + " <= " + lo;
    case SearchPrefix::kAp:
      return "(" + s + " < " + hi + " AND " + e + " > " + lo + ")";
  }
  return eq;
}

// A stored number v against the search value x and its implicit precision range [lo, hi).
// Only eq and ne use the range; R4: "ge100: greater or equal to exactly 100", "le5.4|…|mg: less
// than or equal to 5.4 mg exactly", and likewise gt/lt/sa/eb compare with x itself.
std::string NumberCond(SqlBuilder& b, const SearchValue& v, const std::string& col) {
  switch (v.prefix) {
    case SearchPrefix::kEq:
    case SearchPrefix::kNe: {
      const std::string lo = b.Bind(v.lo), hi = b.Bind(v.hi);
      std::string eq = "(" + col + " >= " + lo + " AND " + col + " < " + hi + ")";
      return v.prefix == SearchPrefix::kNe ? "NOT " + eq : eq;
    }
    case SearchPrefix::kGt:
    case SearchPrefix::kSa:
      return col + " > " + b.Bind(v.number);
    case SearchPrefix::kLt:
    case SearchPrefix::kEb:
      return col + " < " + b.Bind(v.number);
    case SearchPrefix::kGe:
      return col + " >= " + b.Bind(v.number);
    case SearchPrefix::kLe:
      return col + " <= " + b.Bind(v.number);
    case SearchPrefix::kAp: {
      double a = v.number * 0.9, z = v.number * 1.1;
      if (a > z) std::swap(a, z);
      const std::string lo = b.Bind(a), hi = b.Bind(z);
      return "(" + col + " >= " + lo + " AND " + col + " <= " + hi + ")";
    }
  }
  return False(b);
}

std::string TokenCond(SqlBuilder& b, const SearchValue& v, const Columns& cols) {
  const std::string code = cols.code, system = cols.system;
  if (!v.codes.empty()) {  // :in / :not-in: in the system when one is given, else in any
    std::string in;
    for (const std::string& c : v.codes) {
      in += (in.empty() ? "" : ", ") + b.Bind(c, SqlType::kBytes);
    }
    if (!v.system) return code + " IN (" + in + ")";
    return "(" + code + " IN (" + in + ") AND " + system + " = " +
           b.Bind(*v.system, SqlType::kBytes) + ")";
  }
  std::string cond;
  if (!v.code.empty()) cond = code + " = " + b.Bind(v.code, SqlType::kBytes);
  if (v.system) {
    if (!cond.empty()) cond += " AND ";
    cond += system + " = " + b.Bind(*v.system, SqlType::kBytes);
  }
  return cond.empty() ? std::string(b.dialect().True()) : "(" + cond + ")";
}

// One OR-alternative of a clause, over the columns `cols` of the clause's index table.
std::string ValueCond(SqlBuilder& b, SearchKind kind, const SearchValue& v, const Columns& cols) {
  const Dialect& d = b.dialect();
  switch (kind) {
    case SearchKind::kString:
      switch (v.string_match) {
        case StringMatch::kStartsWith:
          return d.StartsWith(b, cols.text, cols.text_type, v.text);
        case StringMatch::kExact: {
          const std::string text = b.Bind(v.text, cols.text_type);
          const std::string exact = b.Bind(v.exact, cols.text_type);
          return "(" + std::string(cols.text) + " = " + text + " AND " + cols.exact + " = " +
                 exact + ")";
        }
        case StringMatch::kContains:
          return d.Contains(b, cols.text, cols.text_type, v.text);
      }
      return False(b);
    case SearchKind::kToken:
      return TokenCond(b, v, cols);
    case SearchKind::kDate:
      return DateCond(b, v, cols.start, cols.end);
    case SearchKind::kNumber:
      return NumberCond(b, v, cols.number);
    case SearchKind::kQuantity: {
      if (!v.canonical_code.empty()) {
        const std::string unit = b.Bind(v.canonical_code, SqlType::kBytes);
        return "(" + std::string(cols.canonical_code) + " = " + unit + " AND " +
               NumberCond(b, v, cols.canonical_number) + ")";
      }
      std::string cond = "(" + NumberCond(b, v, cols.number);
      if (!v.code.empty()) {
        cond += " AND " + std::string(cols.code) + " = " + b.Bind(v.code, SqlType::kBytes);
      }
      if (v.system) {
        cond += " AND " + std::string(cols.system) + " = " + b.Bind(*v.system, SqlType::kBytes);
      }
      return cond + ")";
    }
    case SearchKind::kReference: {
      if (!v.url.empty()) {
        std::string cond = std::string(cols.url) + " = " + b.Bind(v.url, cols.url_type);
        if (cols.url_only) {
          cond = "(" + cond + " AND " + cols.url_only + " = " +
                 b.Bind(std::string(), SqlType::kBytes) + ")";
        }
        return cond;
      }
      std::string cond =
          "(" + std::string(cols.target_id) + " = " + b.Bind(v.code, SqlType::kBytes);
      if (!v.type.empty()) {
        cond +=
            " AND " + std::string(cols.target_type) + " = " + b.Bind(v.type, cols.target_type_type);
      }
      return cond + ")";
    }
    case SearchKind::kUri:
      switch (v.uri_match) {
        case UriMatch::kEquals:
          return "value = " + b.Bind(v.text, SqlType::kText);
        case UriMatch::kBelow:
          return d.StartsWith(b, "value", SqlType::kText, v.text);
        case UriMatch::kAbove: {
          // The stored URI is a prefix of the searched one.
          const std::string p = b.Bind(v.text, SqlType::kText);
          return "(value <> '' AND substr(" + p + ", 1, length(value)) = value)";
        }
      }
      return False(b);
    default:
      return False(b);
  }
}

std::string ClauseCond(SqlBuilder& b, const SearchClause& c, const Scope& scope,
                       bool probe = false);
struct Plan {
  size_t driver = 0;
  std::vector<bool> probe;  // per clause
  bool selective = true;
  std::optional<int64_t> fewest;             // the driver's estimated rows, when counted
  std::vector<std::optional<int64_t>> rows;  // per clause: estimated rows, when counted
};

// How a conjunction is compiled: planned (PlanClauses, estimating when there is an estimator),
// or for a walk in sort order, which tests each resource it meets: a clause whose rows were
// counted under kEstimateCap as an index scan collected once ("rid IN (…)", a cheap test per
// resource), every other one as a probe.
struct ClauseMode {
  RowEstimator* estimator = nullptr;
  const Plan* walk = nullptr;     // the plan the estimates came from
  Plan* plan_out = nullptr;       // receives the plan
  const Plan* planned = nullptr;  // a plan made before (PlanClauses), used as it is
  // Receives the intersected index scans (IntersectsCollectedScans): the condition on them in
  // the SQL returned, "r.rid IN (…)", and the subquery inside it.
  struct Scans {
    std::string cond;
    std::string rids;
  }* scans = nullptr;
  // The conditions of a walk in id order that stops at its page: each probe is a test of the
  // row at hand (Dialect::PerRow), never a join the database may reorder.
  bool per_row = false;
  // A walk that meets few rows (bounded on one side by a clause on its date: BoundOfWalk):
  // every clause it can probe is probed, none collected whole first. Collected, the laboratory
  // Observations since a date listed every laboratory Observation of the database (SQLite, 19-30
  // ms) for a walk that tests ~60.
  bool probe_counted = false;
};

std::string AllClauses(SqlBuilder& b, const std::vector<SearchClause>& clauses, const Scope& scope,
                       const std::string& type, const ClauseMode& mode);

// SELECT `column` of the current resources of link.type that match link.all_of, under a fresh
// alias (the scope of the link's clauses).
std::string NestedResources(SqlBuilder& b, const char* column, const SearchLink& link,
                            const char* alias_prefix) {
  const Scope inner{b.NewAlias(alias_prefix), b.Bind(link.type, SqlType::kText)};
  const std::string& a = inner.alias;
  std::string sql = "SELECT " + a + "." + column + " FROM resource " + a + " WHERE " + a +
                    ".type = " + inner.type_param + " AND " + b.dialect().Live(a);
  if (!link.all_of.empty()) {
    sql += " AND " + AllClauses(b, link.all_of, inner, link.type, ClauseMode{});
  }
  return sql;
}

// subject.name=x: the references of `param` whose target is a current resource of a link's type
// matching the link's clauses. One subquery per candidate type (UNION ALL), each an index range
// on (type, param, target_id) for the ids the nested scan yields.
std::string ChainRows(SqlBuilder& b, const SearchClause& c, const Scope& scope) {
  const std::string param = b.Bind(c.param, SqlType::kText);
  std::string rows;
  for (const SearchLink& link : c.links) {
    std::string nested = NestedResources(b, "id", link, "t");
    if (!rows.empty()) rows += " UNION ALL ";
    rows += "SELECT rid FROM idx_reference WHERE type = " + scope.type_param +
            " AND param = " + param + " AND target_type = " + b.Bind(link.type, SqlType::kText) +
            " AND target_id IN (" + nested + ")";
  }
  return rows;
}

// Collected: "rid IN (ChainRows)". Probed (`probe`): the resource's own references of `param`,
// each looked up as its target resource and tested there by probes, so that a walk over many
// resources never lists every reference to every matching target first (the Observations of the
// 85,453 patients named 王 in a 1,000,000-resident county: 2-18 s a page).
std::string ChainCond(SqlBuilder& b, const SearchClause& c, const Scope& scope, bool probe) {
  if (c.links.empty()) return False(b);
  if (!probe) return scope.alias + ".rid IN (" + ChainRows(b, c, scope) + ")";
  static const Plan kNothingCounted;
  std::string any;
  for (const SearchLink& link : c.links) {
    const Scope inner{b.NewAlias("t"), b.Bind(link.type, SqlType::kText)};
    const std::string& a = inner.alias;
    std::string target = "SELECT 1 FROM resource " + a + " WHERE " + a +
                         ".type = " + inner.type_param + " AND " + a + ".id = target_id AND " +
                         b.dialect().Live(a);
    if (!link.all_of.empty()) {
      target += " AND " +
                AllClauses(b, link.all_of, inner, link.type, ClauseMode{.walk = &kNothingCounted});
    }
    any += (any.empty() ? "" : " OR ") + std::string("(target_type = ") +
           b.Bind(link.type, SqlType::kText) + " AND EXISTS (" + target + "))";
  }
  return b.dialect().ProbeExists(
      "idx_reference", SearchKind::kReference, scope.alias,
      "param = " + b.Bind(c.param, SqlType::kText) + " AND (" + any + ")");
}

// The rids of this scope's type that the current resources of links[0].type matching its clauses
// refer to through `param` (one link; see ReverseChainCond): their ids, each looked up as a
// resource row. Rids rather than ids, so that the clause is one more list of rids among those
// SQLite intersects (CollectedRows): as "r.id IN (ids)" beside "r.rid IN (rids)", SQLite sought the
// (type, id) key once per pair of values of the two lists — `Patient?_has:Condition:subject:
// code=E11&gender=male` over a 100,000-resident county, thousands of ids times 51,000 rids,
// ran into the 30 s search timeout.
std::string ReverseChainRows(SqlBuilder& b, const SearchClause& c, const Scope& scope) {
  const SearchLink& link = c.links[0];
  const std::string type = b.Bind(link.type, SqlType::kText);
  const std::string param = b.Bind(c.param, SqlType::kText);
  const std::string nested = NestedResources(b, "rid", link, "h");
  // A join, not a nested "id IN (…)": each level of subquery counts against SQLite's parser
  // stack, which a _has inside a _has with a composite already nearly fills.
  const std::string x = b.NewAlias("x");
  const std::string t = b.NewAlias("t");
  return "SELECT " + t + ".rid FROM idx_reference " + x + " JOIN resource " + t + " ON " + t +
         ".type = " + scope.type_param + " AND " + t + ".id = " + x + ".target_id WHERE " + x +
         ".type = " + type + " AND " + x + ".param = " + param + " AND " + x +
         ".target_type = " + scope.type_param + " AND " + x + ".rid IN (" + nested + ")";
}

// _has:Observation:subject:code=x: the resources of this scope's type that current resources of
// links[0].type matching its clauses refer to through `param`. Probed (`probe`): the references to
// this one resource (a seek of idx_reference's key), each referrer tested by probes, so that a
// walk over many resources never lists every referrer that matches first.
std::string ReverseChainCond(SqlBuilder& b, const SearchClause& c, const Scope& scope, bool probe) {
  if (c.links.size() != 1) return False(b);
  const SearchLink& link = c.links[0];
  const std::string type = b.Bind(link.type, SqlType::kText);
  const std::string param = b.Bind(c.param, SqlType::kText);
  if (!probe) {
    // Alone on its resources' ids (PostgreSQL joins them by hash); where collected lists are
    // intersected (SQLite), CollectedRows takes the clause as ReverseChainRows instead.
    const std::string nested = NestedResources(b, "rid", link, "h");
    return scope.alias + ".id IN (SELECT target_id FROM idx_reference WHERE type = " + type +
           " AND param = " + param + " AND target_type = " + scope.type_param + " AND rid IN (" +
           nested + "))";
  }
  static const Plan kNothingCounted;
  const std::string x = b.NewAlias("x");
  const Scope referrer{b.NewAlias("h"), type};
  const std::string& h = referrer.alias;
  std::string tested = "SELECT 1 FROM resource " + h + " WHERE " + h + ".rid = " + x + ".rid AND " +
                       h + ".type = " + type + " AND " + b.dialect().Live(h);
  if (!link.all_of.empty()) {
    tested += " AND " +
              AllClauses(b, link.all_of, referrer, link.type, ClauseMode{.walk = &kNothingCounted});
  }
  return "EXISTS (SELECT 1 FROM idx_reference " + x + " WHERE " + x + ".type = " + type + " AND " +
         x + ".param = " + param + " AND " + x + ".target_id = " + scope.alias + ".id AND " + x +
         ".target_type = " + scope.type_param + " AND EXISTS (" + tested + "))";
}

// The (system1, code2, system2) of idx_composite's rows under `rows` (the type and parameter,
// unqualified) and code1 = `code` (system1 = `system` when given), one index seek each: a
// recursive CTE per key column, each next value the min() past the one before
// (Dialect::LooseScansCompositeKeys). A row-value comparison past the previous triple, tried
// first, was sought on system1 alone: every row of the code again.
std::string CompositeKeys(SqlBuilder& b, const std::string& rows, const std::string& code,
                          const std::optional<std::string>& system) {
  const Dialect& d = b.dialect();
  const std::string ka = b.NewAlias("ka"), kb = b.NewAlias("kb"), kc = b.NewAlias("kc");
  const std::string under = "FROM idx_composite WHERE " + rows + " AND code1 = " + code;
  std::string sql = "WITH RECURSIVE ";
  if (system) {
    sql += ka + "(s1) AS (SELECT " + *system + "), ";
  } else {
    sql += ka + "(s1) AS (SELECT " + d.Least("system1", under) + " UNION ALL SELECT " +
           d.Least("system1", under + " AND system1 > " + ka + ".s1") + " FROM " + ka + " WHERE " +
           ka + ".s1 IS NOT NULL), ";
  }
  sql += kb + "(s1, c2) AS (SELECT " + ka + ".s1, " +
         d.Least("code2", under + " AND system1 = " + ka + ".s1") + " FROM " + ka + " WHERE " + ka +
         ".s1 IS NOT NULL UNION ALL SELECT " + kb + ".s1, " +
         d.Least("code2", under + " AND system1 = " + kb + ".s1 AND code2 > " + kb + ".c2") +
         " FROM " + kb + " WHERE " + kb + ".c2 IS NOT NULL), ";
  sql += kc + "(s1, c2, s2) AS (SELECT " + kb + ".s1, " + kb + ".c2, " +
         d.Least("system2", under + " AND system1 = " + kb + ".s1 AND code2 = " + kb + ".c2") +
         " FROM " + kb + " WHERE " + kb + ".c2 IS NOT NULL UNION ALL SELECT " + kc + ".s1, " + kc +
         ".c2, " +
         d.Least("system2", under + " AND system1 = " + kc + ".s1 AND code2 = " + kc +
                                ".c2 AND system2 > " + kc + ".s2") +
         " FROM " + kc + " WHERE " + kc + ".s2 IS NOT NULL) ";
  return sql + "SELECT s1, c2, s2 FROM " + kc + " WHERE s2 IS NOT NULL";
}

// A composite clause of one code and a value without a unit, where the dialect lists the keys
// under the code first (LooseScansCompositeKeys): the code's bound parameters and the value's
// condition on idx_composite's columns; nullopt for any other clause.
struct LooseScan {
  std::string code;
  std::optional<std::string> system;
  std::string values;
};

std::optional<LooseScan> LooseScanOf(SqlBuilder& b, const SearchClause& c, const SearchValue& v) {
  const size_t n = c.components.size();
  if (!b.dialect().LooseScansCompositeKeys() || (n != 2 && n != 3) || v.components.size() != n)
    return std::nullopt;
  if (n == 3 && (c.components[1] != SearchKind::kNumber || c.components[2] != SearchKind::kNumber))
    return std::nullopt;
  const SearchValue& first = v.components[0];
  const SearchValue& second = v.components[1];
  const bool bare_value = c.components[1] == SearchKind::kNumber ||
                          (c.components[1] == SearchKind::kQuantity &&
                           second.canonical_code.empty() && second.code.empty() && !second.system);
  if (!bare_value || first.code.empty() || !first.codes.empty()) return std::nullopt;
  LooseScan out;
  out.values = ValueCond(b, c.components[1], second, kCompositeSecond);
  if (n == 3) out.values += " AND " + NumberCond(b, v.components[2], kCompositeSecond.end);
  out.code = b.Bind(first.code, SqlType::kBytes);
  if (first.system) out.system = b.Bind(*first.system, SqlType::kBytes);
  return out;
}

// Every component within one composite row. `rows`: for collected rows (not a probe), the
// condition on their type and parameter, so that a code with a value without a unit can list
// the keys between them first where the dialect does (CompositeKeys). A third component is the
// end of a MolecularSequence coordinate, a number in end2_us (see store::CompositeIndexRow).
std::string CompositeCond(SqlBuilder& b, const SearchClause& c, const SearchValue& v,
                          const std::string* rows) {
  const size_t n = c.components.size();
  if ((n != 2 && n != 3) || v.components.size() != n) return False(b);
  if (n == 3 && (c.components[1] != SearchKind::kNumber || c.components[2] != SearchKind::kNumber))
    return False(b);
  // Where the dialect seeks the keys (CompositeSeekRows), a clause it does not serve that way
  // (several values) reads the code's rows as before: a key list beside them is joined, not
  // sought.
  if (rows && !b.dialect().SeeksCompositeKeys()) {
    if (std::optional<LooseScan> scan = LooseScanOf(b, c, v)) {
      return "(code1 = " + scan->code + (scan->system ? " AND system1 = " + *scan->system : "") +
             " AND (system1, code2, system2) IN (" +
             CompositeKeys(b, *rows, scan->code, scan->system) + ") AND " + scan->values + ")";
    }
  }
  const SearchValue& first = v.components[0];
  std::string values = ValueCond(b, c.components[1], v.components[1], kCompositeSecond);
  if (n == 3) values += " AND " + NumberCond(b, v.components[2], kCompositeSecond.end);
  return "(" + TokenCond(b, first, kCompositeFirst) + " AND " + values + ")";
}

// The OR of a clause's values over its index table's columns; empty when it has none. `rows`:
// see CompositeCond.
std::string AnyValue(SqlBuilder& b, const SearchClause& c, const std::string* rows = nullptr) {
  // References to several ids of one type (an _include/_revinclude page, patient=a,b,…): one
  // "target_id IN (…)", which the key serves with one seek per id, where an OR of pairs may be
  // read as a scan of the whole parameter.
  if (c.kind == SearchKind::kReference && c.any_of.size() > 1 &&
      std::all_of(c.any_of.begin(), c.any_of.end(), [&](const SearchValue& v) {
        return v.url.empty() && v.type == c.any_of[0].type;
      })) {
    std::string ids;
    for (const SearchValue& v : c.any_of) {
      ids += (ids.empty() ? "" : ", ") + b.Bind(v.code, SqlType::kBytes);
    }
    std::string cond = "(target_id IN (" + ids + ")";
    if (!c.any_of[0].type.empty()) {
      cond += " AND target_type = " + b.Bind(c.any_of[0].type, SqlType::kText);
    }
    return cond + ")";
  }
  std::string any;
  for (const SearchValue& v : c.any_of) {
    any += (any.empty() ? "" : " OR ") + (c.kind == SearchKind::kComposite
                                              ? CompositeCond(b, c, v, rows)
                                              : ValueCond(b, c.kind, v, kTableColumns));
  }
  return any;
}

std::string ParamCond(SqlBuilder& b, const SearchClause& c) {
  return ParamCond(b, c.param, c.union_of);
}

// "SELECT rid FROM <table> WHERE type = … AND <param>": a clause's index rows, before its values.
std::string RowsOf(const char* table, const Scope& scope, const std::string& param) {
  return std::string("SELECT rid FROM ") + table + " WHERE type = " + scope.type_param + " AND " +
         param;
}

// Dialect::SeeksCompositeKeys: a collected composite clause of one loose-scanned value as rows
// of its own, "SELECT x.rid FROM (keys) k CROSS JOIN LATERAL (the rows under each key)", each
// key's rows one range of idx_composite's key on the value; nullopt for any other clause.
// OFFSET 0 keeps the lateral subquery a seek per key: pulled up into the join, PostgreSQL
// merge-joined the keys with every row of the code in key order (34 ms; sought, 10-17).
std::optional<std::string> CompositeSeekRows(SqlBuilder& b, const SearchClause& c,
                                             const Scope& scope) {
  if (!b.dialect().SeeksCompositeKeys() || c.kind != SearchKind::kComposite || c.negate ||
      c.missing || c.any_of.size() != 1) {
    return std::nullopt;
  }
  // LooseScanOf binds nothing unless it applies: no parameter is left unused.
  const std::optional<LooseScan> scan = LooseScanOf(b, c, c.any_of[0]);
  if (!scan) return std::nullopt;
  const std::string param = ParamCond(b, c);
  const std::string keys = "type = " + scope.type_param + " AND " + param;
  const std::string k = b.NewAlias("k"), x = b.NewAlias("x");
  return "SELECT " + x + ".rid FROM (" + CompositeKeys(b, keys, scan->code, scan->system) +
         ") AS " + k + " CROSS JOIN LATERAL (SELECT rid FROM idx_composite WHERE " + keys +
         " AND code1 = " + scan->code + " AND system1 = " + k + ".s1 AND code2 = " + k +
         ".c2 AND system2 = " + k + ".s2 AND " + scan->values + " OFFSET 0) AS " + x;
}

// The rids of the resources of the scope's type that a clause holds for, as one subquery of
// index rows (not of resources: no liveness test), for a clause compiled as "rid IN (…)";
// nullopt for the kinds compiled otherwise (and when the clause can hold for no resource).
std::optional<std::string> CollectedRows(SqlBuilder& b, const SearchClause& c, const Scope& scope) {
  if (c.missing || c.negate) return std::nullopt;
  if (c.kind == SearchKind::kChain) {
    if (c.links.empty()) return std::nullopt;
    return ChainRows(b, c, scope);
  }
  if (c.kind == SearchKind::kReverseChain) {
    if (c.links.size() != 1) return std::nullopt;
    return ReverseChainRows(b, c, scope);
  }
  if (std::optional<std::string> seek = CompositeSeekRows(b, c, scope)) return seek;
  const char* table = TableOf(c.kind);
  if (!table) return std::nullopt;
  const std::string param = ParamCond(b, c);
  const std::string keys = "type = " + scope.type_param + " AND " + param;
  const std::string any = AnyValue(b, c, &keys);
  if (any.empty()) return std::nullopt;
  return RowsOf(table, scope, param) + " AND (" + any + ")";
}

std::string ClauseCond(SqlBuilder& b, const SearchClause& c, const Scope& scope, bool probe) {
  const std::string& r = scope.alias;
  if (c.kind == SearchKind::kId) {
    std::string in;
    for (const SearchValue& v : c.any_of) {
      in += (in.empty() ? "" : ", ") + b.Bind(v.code, SqlType::kBytes);
    }
    return in.empty() ? False(b) : r + ".id IN (" + in + ")";
  }
  if (c.kind == SearchKind::kLastUpdated) {
    std::string any;
    for (const SearchValue& v : c.any_of) {
      any += (any.empty() ? "" : " OR ") +
             DateCond(b, v, r + ".last_updated_us", "(" + r + ".last_updated_us + 1)");
    }
    return any.empty() ? False(b) : "(" + any + ")";
  }
  if (c.kind == SearchKind::kChain) return ChainCond(b, c, scope, probe);
  if (c.kind == SearchKind::kReverseChain) return ReverseChainCond(b, c, scope, probe);
  if (c.kind == SearchKind::kText) return b.dialect().FullText(b, c, r);
  const char* table = TableOf(c.kind);
  if (!table) return False(b);
  const std::string param = ParamCond(b, c);
  const std::string rows = RowsOf(table, scope, param);
  if (c.missing) return r + ".rid " + (*c.missing ? "NOT IN (" : "IN (") + rows + ")";
  if (!probe) {
    if (std::optional<std::string> seek = CompositeSeekRows(b, c, scope)) {
      return r + ".rid IN (" + *seek + ")";
    }
  }
  const std::string keys = "type = " + scope.type_param + " AND " + param;
  const std::string any = AnyValue(b, c, probe ? nullptr : &keys);
  if (any.empty()) return False(b);
  if (probe) {
    return std::string(c.negate ? "NOT " : "") +
           b.dialect().ProbeExists(table, c.kind, r, param + " AND (" + any + ")");
  }
  return r + ".rid " + (c.negate ? "NOT IN (" : "IN (") + rows + " AND (" + any + "))";
}

// How well a clause drives a search (lower is better): an index scan yielding few rids. The best
// clause is compiled as "rid IN (index scan)" and every other value clause as a probe of each
// candidate's own rows (Dialect::ProbeExists), so a patient's observations of one code never
// materialise every observation of that code first.
int DriveRank(const SearchClause& c) {
  if (c.missing || c.negate) return 100;
  switch (c.kind) {
    case SearchKind::kId:
      return 0;
    case SearchKind::kReference:
      return 1;
    case SearchKind::kToken:
      for (const SearchValue& v : c.any_of)
        if (v.code.empty() && v.codes.empty()) return 6;  // system| only
      return 2;
    case SearchKind::kComposite:
    case SearchKind::kUri:
      return 3;
    case SearchKind::kString:
      for (const SearchValue& v : c.any_of)
        if (v.string_match == StringMatch::kContains) return 7;
      return 4;
    case SearchKind::kChain:
    case SearchKind::kReverseChain:
    case SearchKind::kText:
      return 5;
    default:
      return 6;  // date, number, quantity ranges; _lastUpdated
  }
}

bool Probeable(const SearchClause& c) {
  if (c.missing) return false;
  switch (c.kind) {
    case SearchKind::kString:
    case SearchKind::kToken:
    case SearchKind::kDate:
    case SearchKind::kNumber:
    case SearchKind::kQuantity:
    case SearchKind::kReference:
    case SearchKind::kUri:
    case SearchKind::kComposite:
      return true;
    default:
      return false;
  }
}

// Whether the index rows a clause matches can be counted by a range scan of its table's key
// (so that counting up to kEstimateCap of them is cheap): not for values no key prefix bounds
// (string :contains, uri :above, token system| only, date/number :ne, quantities without a
// unit), nor for negations and :missing.
bool Estimable(const SearchClause& c) {
  if (c.missing || c.negate || c.any_of.empty()) return false;
  for (const SearchValue& v : c.any_of) {
    switch (c.kind) {
      case SearchKind::kToken:
        if (v.code.empty() && v.codes.empty()) return false;
        break;
      case SearchKind::kString:
        if (v.string_match == StringMatch::kContains) return false;
        break;
      case SearchKind::kUri:
        if (v.uri_match == UriMatch::kAbove) return false;
        break;
      case SearchKind::kDate:
      case SearchKind::kNumber:
        if (v.prefix == SearchPrefix::kNe) return false;
        break;
      case SearchKind::kQuantity:
        if (v.prefix == SearchPrefix::kNe || (v.canonical_code.empty() && v.code.empty()))
          return false;
        break;
      case SearchKind::kReference:
      case SearchKind::kComposite:
        break;
      default:
        return false;
    }
  }
  return true;
}

constexpr int64_t kTinyEstimate = 1000;
constexpr int64_t kSelectiveRows = 10000;

Plan PlanClauses(const std::vector<SearchClause>& clauses, const std::string& type,
                 const Dialect& dialect, RowEstimator* estimator);

// Whether a _has whose referrers' criterion counts `referrers` rows is cheaper collected than
// probed (SQLite). Collected, each referrer's target is looked up by its id and its row read:
// ~10 us each in a county of 2.2 million resources, where the 8,292 Conditions coded E11 took
// 90 ms. Probed, a walk tests the targets in id order until the page is full: at one target per
// referrer, T / referrers x a page of them (T: the targets' resources), each at about the same
// cost (12 ms there). So collected only below the break-even, referrers^2 <= T x kPageGuess, T
// counted up to that bound (past kEstimateCap taken as ten times it, as the rows of a walk are).
constexpr int64_t kPageGuess = 50;

bool FewEnoughToCollect(int64_t referrers, const std::string& type, const Dialect& dialect,
                        RowEstimator& estimator) {
  const int64_t need = referrers * referrers / kPageGuess + 1;  // targets at least
  const int64_t limit = std::min(need, kEstimateCap);
  SqlBuilder e(dialect);
  const std::optional<int64_t> targets = estimator.CountRows(
      Statement{"SELECT count(*) FROM (SELECT 1 FROM resource r WHERE r.type = " +
                    e.Bind(type, SqlType::kText) + " AND " + dialect.Live("r") + " LIMIT " +
                    std::to_string(limit) + ") AS e",
                e.params()});
  if (!targets) return true;  // unknown: collected, as before the count existed
  if (*targets >= need) return true;
  return *targets >= kEstimateCap && 10 * kEstimateCap >= need;
}

// How many index rows (at most kEstimateCap) match clause c on resources of `type`, counted by
// the backend; nullopt when that is not known cheaply.
std::optional<int64_t> EstimateRows(const SearchClause& c, const std::string& type,
                                    const Dialect& dialect, RowEstimator& estimator,
                                    int64_t limit) {
  if (c.kind == SearchKind::kChain || c.kind == SearchKind::kReverseChain) {
    // Where the compiler chooses between collecting and probing (SQLite): a chain (_has) whose
    // every target (referrer) type has a criterion counted under kSelectiveRows rows is taken
    // as that many rows, so that it is collected, and may drive; else it is unknown and a walk
    // over many resources probes it. A probe walk that never fills its page (the Observations
    // of the one patient named 王花华 among 6 million) reads the whole type: 30 s.
    // PostgreSQL: a _has too, so that one whose referrers are few is collected once with its
    // page, total and ids (the `all` form) rather than run as a page, a count and an ids-only
    // listing, three times the join (`has-condition` at 200,000 resources: ~10 ms).
    // And a chain: of few references it drives a collected search (the Observations of one
    // patient); of more, a walk tests each row against the set (AllClauses), or probes it when
    // uncounted.
    if (c.links.empty()) return std::nullopt;
    int64_t rows = 0;
    for (const SearchLink& link : c.links) {
      if (link.all_of.empty()) return std::nullopt;
      const Plan p = PlanClauses(link.all_of, link.type, dialect, &estimator);
      if (!p.fewest || *p.fewest >= kSelectiveRows) return std::nullopt;
      rows += *p.fewest;
    }
    if (c.kind == SearchKind::kReverseChain) {
      if (dialect.CollectsCountedClauses() && !FewEnoughToCollect(rows, type, dialect, estimator))
        return std::nullopt;
      return std::min(rows, limit);
    }
    // A chain's rows are the references to its targets, which few targets may have many of:
    // the Observations of the 50 patients named 李 among 200,000 resources are ~15,000, and taken
    // as 50 the chain drove and probed the code of each (39 ms, against 12 with the code
    // driving and the chain collected beside it). They are counted, up to the limit.
    SqlBuilder e(dialect);
    const Scope scope{"r", e.Bind(type, SqlType::kText)};
    return estimator.CountRows(Statement{"SELECT count(*) FROM (SELECT 1 FROM (" +
                                             ChainRows(e, c, scope) + ") AS c LIMIT " +
                                             std::to_string(limit) + ") AS e",
                                         e.params()});
  }
  if (c.kind == SearchKind::kId && !c.any_of.empty()) {
    return static_cast<int64_t>(c.any_of.size());
  }
  if (!Estimable(c)) return std::nullopt;
  SqlBuilder e(dialect);
  const std::string type_param = e.Bind(type, SqlType::kText);
  if (std::optional<std::string> seek = CompositeSeekRows(e, c, Scope{"r", type_param})) {
    return estimator.CountRows(
        Statement{"SELECT count(*) FROM (" + *seek + " LIMIT " + std::to_string(limit) + ") AS e",
                  e.params()});
  }
  const std::string param = ParamCond(e, c);
  const std::string keys = "type = " + type_param + " AND " + param;
  const std::string any = AnyValue(e, c, &keys);
  if (any.empty()) return std::nullopt;
  return estimator.CountRows(Statement{std::string("SELECT count(*) FROM (SELECT 1 FROM ") +
                                           TableOf(c.kind) + " WHERE type = " + type_param +
                                           " AND " + param + " AND (" + any + ") LIMIT " +
                                           std::to_string(limit) + ") AS e",
                                       e.params()});
}

// The plan of a conjunction: the clause that drives it and how each other clause is tested.
// Without an estimator: the best DriveRank drives and every other clause probes each candidate.
// With one, each estimable clause's index rows are counted (up to kEstimateCap, in DriveRank
// order; a clause with under kTinyEstimate rows ends the counting): the fewest drive, and
// another clause is a second index scan intersected with the first ("rid IN (…)") when its rows
// cost less to collect than probing every candidate would (a probe decodes the candidate's
// index keys, measured at some twenty times the cost of collecting one index row before probes
// decoded only the kind they test, which about halved them; 10 then made no measurable
// difference, docs/benchmarks.md session 16), else a
// probe; no clause is counted past what could still make it drive or be collected.
// `selective`: some clause has under kSelectiveRows rows, so that the matches are few enough to
// collect and sort rather than walk in page order (see CompileSearch).
constexpr int64_t kProbeCostInRows = 20;

Plan PlanClauses(const std::vector<SearchClause>& clauses, const std::string& type,
                 const Dialect& dialect, RowEstimator* estimator) {
  Plan plan;
  plan.probe.assign(clauses.size(), false);
  std::vector<size_t> by_rank(clauses.size());
  for (size_t i = 0; i < clauses.size(); ++i) by_rank[i] = i;
  std::stable_sort(by_rank.begin(), by_rank.end(), [&](size_t x, size_t y) {
    return DriveRank(clauses[x]) < DriveRank(clauses[y]);
  });
  if (by_rank.empty()) return plan;
  plan.driver = by_rank[0];
  std::vector<std::optional<int64_t>> rows(clauses.size());
  std::vector<bool> counted(clauses.size(), false);
  if (estimator) {
    int64_t fewest = kEstimateCap;
    for (size_t i : by_rank) {
      if (DriveRank(clauses[i]) >= 100) break;  // negations and :missing never drive
      // Counting past what could drive or be collected (kProbeCostInRows x the fewest so far)
      // would tell nothing: such a clause is a probe either way.
      const int64_t limit = std::min(kEstimateCap, fewest * kProbeCostInRows + 1);
      rows[i] = EstimateRows(clauses[i], type, dialect, *estimator, limit);
      counted[i] = true;
      if (rows[i] && *rows[i] >= limit) rows[i].reset();  // unknown: at least the limit
      if (rows[i] && *rows[i] < fewest) {
        fewest = *rows[i], plan.driver = i;
        if (fewest < kTinyEstimate) break;
      }
    }
    plan.selective = fewest < kSelectiveRows;
    if (rows[plan.driver]) plan.fewest = rows[plan.driver];
  }
  plan.rows = rows;
  const int64_t driver_rows = rows[plan.driver].value_or(kEstimateCap);
  for (size_t i = 0; i < clauses.size(); ++i) {
    if (i == plan.driver) continue;
    if (!Probeable(clauses[i])) {
      // A chain beside a counted driver: collected when its references are counted at no more
      // than kProbeCostInRows times the driver's rows (as another clause is), else probed, each
      // candidate's reference looked up and its target tested, rather than every reference to
      // every matching target collected first: `Condition?code=E11&subject.name=陈` in a
      // 1,000,000-resident county collected the references to 55,077 patients named 陈 (387 ms)
      // where walking the 41,499 Conditions coded E11 in id order fills the page in 21-32 ms
      // (docs/benchmarks.md, session 16). A chain the loop above did not reach (the driver
      // counted under kTinyEstimate) is counted now, up to what would still collect it. Beside
      // a driver of many rows a probed clause leaves the total to the page (CompileSearch);
      // beside a selective one every candidate is probed, a bounded cost where collecting the
      // chain is not.
      if (clauses[i].kind == SearchKind::kChain && dialect.CollectsCountedClauses() &&
          rows[plan.driver] && estimator) {
        const int64_t limit = std::min(kEstimateCap, driver_rows * kProbeCostInRows + 1);
        if (!counted[i]) {
          rows[i] = EstimateRows(clauses[i], type, dialect, *estimator, limit);
          plan.rows[i] = rows[i];
        }
        plan.probe[i] = !rows[i] || *rows[i] >= limit;
      }
      continue;
    }
    // A counted clause has under its count's limit rows, so never past kEstimateCap.
    const bool collect =
        dialect.CollectsCountedClauses() && rows[i] && *rows[i] <= driver_rows * kProbeCostInRows;
    plan.probe[i] = !collect;
  }
  return plan;
}

std::string AllClauses(SqlBuilder& b, const std::vector<SearchClause>& clauses, const Scope& scope,
                       const std::string& type, const ClauseMode& mode) {
  Plan plan;
  if (mode.walk) {
    plan.probe.resize(clauses.size());
    for (size_t i = 0; i < clauses.size(); ++i) {
      const bool counted = i < mode.walk->rows.size() && mode.walk->rows[i].has_value();
      // A chain or _has too where the compiler chooses between the two forms (SQLite): its
      // collected rows are every reference to (or from) any resource that matches.
      const bool chain_probe =
          (clauses[i].kind == SearchKind::kChain || clauses[i].kind == SearchKind::kReverseChain) &&
          b.dialect().CollectsCountedClauses();
      // PostgreSQL, walking row by row (per_row): a counted clause is probed too. Collected, its
      // planner joined the set and sorted every match instead of walking the date index:
      // `Immunization?date=2025&_sort=-date` over a 100,000-resident county, 124 ms.
      const bool probe_counted =
          mode.probe_counted || (mode.per_row && !b.dialect().CollectsCountedClauses());
      // And an uncounted chain: collected, its planner drove from the set, probed each
      // reference's resource and sorted the matches: `Observation?code=85354-9&subject.name=王`
      // over a 100,000-resident county probed the 47,855 Observations of the patients named 王
      // (500 ms), where the walk tests ~1,800 Observations to fill its page. A counted chain
      // stays a set, which the walk tests each row against (below).
      const bool chain_per_row = probe_counted && clauses[i].kind == SearchKind::kChain && !counted;
      plan.probe[i] =
          (Probeable(clauses[i]) || chain_probe || chain_per_row) && (!counted || probe_counted);
    }
  } else if (mode.planned) {
    plan = *mode.planned;
  } else {
    plan = PlanClauses(clauses, type, b.dialect(), mode.estimator);
  }
  if (mode.plan_out) *mode.plan_out = plan;
  // The driver first: of two index scans SQLite iterates the first and looks up the other.
  std::vector<size_t> order;
  if (!mode.walk && !clauses.empty()) order.push_back(plan.driver);
  for (size_t i = 0; i < clauses.size(); ++i) {
    if (mode.walk || i != plan.driver) order.push_back(i);
  }
  // Probed chains and _has last: each candidate is tested in this order, and a chain's probe
  // (the reference looked up, its target's keys decoded) costs several of the others' (one
  // decode of the candidate's own keys). The blood-pressure code before the birth-date chain
  // of `Observation?subject:Patient.birthdate=lt1940&code=85354-9` at 10.9 million resources:
  // 204–261 → 141–154 ms a page (docs/benchmarks.md, session 15).
  auto is_chain = [&](size_t i) {
    return plan.probe[i] &&
           (clauses[i].kind == SearchKind::kChain || clauses[i].kind == SearchKind::kReverseChain);
  };
  const auto after_driver = order.begin() + (mode.walk || order.empty() ? 0 : 1);
  // PostgreSQL's walk tests each row in the order of the SQL (Dialect::InTurn): the clauses of
  // fewest counted rows first, so that the fewest rows reach the next test. The month of a
  // blood-pressure code tested the code of every Observation walked (3,217 probes for a page)
  // before the month (95 after it).
  if (mode.walk && mode.per_row && !b.dialect().CollectsCountedClauses()) {
    auto rows_of = [&](size_t i) {
      return i < mode.walk->rows.size() && mode.walk->rows[i] ? *mode.walk->rows[i]
                                                              : std::numeric_limits<int64_t>::max();
    };
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t x, size_t y) { return rows_of(x) < rows_of(y); });
  }
  std::stable_partition(after_driver, order.end(), [&](size_t i) { return !is_chain(i); });
  // Where the dialect asks for it (IntersectsCollectedScans), the clauses collected as index
  // scans are intersected among themselves first, the driver's rows outermost
  // ("rid IN (SELECT d.rid FROM (driver rows) d WHERE d.rid IN (other rows))"), so that only
  // their common rids reach the resource rows. Each as its own "r.rid IN (…)",
  // SQLite tested every rid of the driver against the resource row (its liveness and snapshot
  // columns) before the other lists: at 2 million resources, a code's 56,462 Observations read
  // one by one to keep the 4,263 also referring to a patient named 李.
  std::vector<std::string> lists;
  std::string sql;
  std::vector<std::string> per_row;  // a walk's probes, tested in turn after the rest
  // IntersectsChainsWithDriver: a driver whose rows were counted, and the chains and the few-row
  // clauses beside it, as one INTERSECT of their rids.
  if (!mode.walk && b.dialect().IntersectsChainsWithDriver() && !clauses.empty() &&
      plan.driver < plan.rows.size() && plan.rows[plan.driver]) {
    // Beside the chains, a clause counted at no more than kProbeCostInRows times the driver's
    // rows: reading its index rows once costs less than probing every candidate (the rule
    // PlanClauses applies where the dialect CollectsCountedClauses).
    const int64_t driver_count = *plan.rows[plan.driver];
    std::vector<size_t> chains;
    for (size_t i : order) {
      if (i == plan.driver) continue;
      const bool chain = !plan.probe[i] && clauses[i].kind == SearchKind::kChain;
      const bool counted = i < plan.rows.size() && plan.rows[i] &&
                           *plan.rows[i] <= driver_count * kProbeCostInRows &&
                           Probeable(clauses[i]);
      if (chain || counted) chains.push_back(i);
    }
    std::optional<std::string> driver_rows;
    if (!chains.empty()) driver_rows = CollectedRows(b, clauses[plan.driver], scope);
    if (driver_rows) {
      // Each operand in parentheses: a chain over several target types is a UNION ALL, which
      // INTERSECT would otherwise bind only to the first of its parts.
      std::string rids = "(" + *driver_rows + ")";
      std::vector<bool> taken(clauses.size(), false);
      taken[plan.driver] = true;
      for (size_t i : chains) {
        if (std::optional<std::string> rows = CollectedRows(b, clauses[i], scope)) {
          rids += " INTERSECT (" + *rows + ")";
          taken[i] = true;
        }
      }
      sql = scope.alias + ".rid IN (" + rids + ")";
      for (size_t i : order) {
        if (!taken[i]) sql += " AND " + ClauseCond(b, clauses[i], scope, plan.probe[i]);
      }
      return sql;
    }
  }
  for (size_t i : order) {
    if (!mode.walk && !plan.probe[i] && b.dialect().IntersectsCollectedScans()) {
      if (std::optional<std::string> rows = CollectedRows(b, clauses[i], scope)) {
        lists.push_back(std::move(*rows));
        continue;
      }
    }
    std::string cond = ClauseCond(b, clauses[i], scope, plan.probe[i]);
    // Only the probes, and on PostgreSQL a walk's counted chain (below): a clause collected
    // otherwise (SQLite's counted ones) stays a set the database may drive from.
    // A counted chain in PostgreSQL's walk: its set, hashed once and tested per row, first when
    // it has the fewest rows. `Observation?subject:Patient.birthdate=lt1940&code=85354-9` over a
    // 100,000-resident county: the 23,475 Observations of the 1,457 patients born before 1940,
    // then the code of the 173 of them walked, 62 ms a page; each chain probed per row after the
    // code, 145 ms; the set joined and every match probed for the code, 240 ms.
    const bool chain_set = mode.per_row && !plan.probe[i] &&
                           clauses[i].kind == SearchKind::kChain &&
                           !b.dialect().CollectsCountedClauses();
    if (mode.per_row && (plan.probe[i] || chain_set)) {
      per_row.push_back(b.dialect().PerRow(cond));
      continue;
    }
    sql += (sql.empty() ? "" : " AND ") + cond;
  }
  if (!per_row.empty()) sql += (sql.empty() ? "" : " AND ") + b.dialect().InTurn(per_row);
  if (lists.empty()) return sql;
  std::string rids;
  if (lists.size() == 1) {
    rids = lists[0];
  } else {
    const std::string d = b.NewAlias("d");
    rids = "SELECT " + d + ".rid FROM (" + lists[0] + ") AS " + d + " WHERE ";
    for (size_t k = 1; k < lists.size(); ++k) {
      // "+": a membership test of each driver row, never seeks of the driver's index per rid of
      // the other list (which SQLite otherwise prefers: the key ends in rid).
      rids += std::string(k > 1 ? " AND " : "") + "+" + d + ".rid IN (" + lists[k] + ")";
    }
  }
  std::string in = scope.alias + ".rid IN (" + rids + ")";
  if (mode.scans) *mode.scans = ClauseMode::Scans{in, rids};
  return sql.empty() ? in : in + " AND " + sql;
}

std::string SortExpr(SqlBuilder& b, const SortKey& k, const std::string& alias) {
  switch (k.kind) {
    case SearchKind::kId:
      return alias + ".id";
    case SearchKind::kLastUpdated:
      return alias + ".last_updated_us";
    case SearchKind::kString:
    case SearchKind::kToken:
    case SearchKind::kDate:
    case SearchKind::kNumber:
    case SearchKind::kQuantity:
    case SearchKind::kReference:
    case SearchKind::kUri:
      return b.dialect().SortValue(b, k, alias);
    default:
      return "NULL";  // not sortable (the parser never asks)
  }
}

// The type a key's sort values are bound as: the column SortValue reads (see SortValueIndex).
SqlType SortValueType(SearchKind kind) {
  switch (SortValueIndex(kind)) {
    case 1:
      return SqlType::kInt;
    case 2:
      return SqlType::kReal;
    default:
      return kind == SearchKind::kString || kind == SearchKind::kUri ? SqlType::kText
                                                                     : SqlType::kBytes;
  }
}

std::string BindSortValue(SqlBuilder& b, const SortValue& v, SearchKind kind) {
  if (const auto* i = std::get_if<int64_t>(&v)) return b.Bind(*i);
  if (const auto* d = std::get_if<double>(&v)) return b.Bind(*d);
  return b.Bind(std::get<std::string>(v), SortValueType(kind));
}

// Whether a position lies among the matches without a value of the first sort key (or past them
// all, SearchAfter::end): none with a value follows it, so it is not a place in a walk of the
// key's values.
bool AmongNoValues(const SearchAfter& at) {
  return at.end || (!at.values.empty() && std::holds_alternative<std::monostate>(at.values[0]));
}

// "the resource row `alias` sorts strictly after q.after" in the order ORDER BY sort keys (each
// NULLS LAST, in its direction), then id: the first key that differs decides, and a match without
// a value comes after every match with one. `exprs` are the sort keys' SortExpr.
std::string AfterCond(SqlBuilder& b, const SearchQuery& q, const std::vector<std::string>& exprs,
                      const std::string& alias) {
  const SearchAfter& after = *q.after;
  const bool back = q.backward;                           // strictly before the position instead
  if (after.end) return std::string(b.dialect().True());  // before the end: every match
  std::string any;    // OR of: the keys before k equal, key k after (before)
  std::string equal;  // AND of the keys so far being equal to the position's
  auto conj = [](const std::string& a, const std::string& c) {
    return a.empty() ? c : a + " AND " + c;
  };
  for (size_t k = 0; k < q.sort.size(); ++k) {
    const std::string& e = exprs[k];
    const SortValue& v = after.values[k];
    if (std::holds_alternative<std::monostate>(v)) {
      // Nothing sorts after "no value" in this key: only ties (no value either) go on. Before it
      // is every value.
      if (back) any += (any.empty() ? "(" : " OR (") + conj(equal, e + " IS NOT NULL") + ")";
      equal = conj(equal, e + " IS NULL");
      continue;
    }
    // After a value: the next values, and no value (which sorts last). Before it: the values
    // that precede it (a comparison with NULL is never true).
    const char* op = q.sort[k].descending != back ? " < " : " > ";
    const std::string cmp = e + op + BindSortValue(b, v, q.sort[k].kind);
    any += (any.empty() ? "(" : " OR (") +
           conj(equal, back ? cmp : "(" + cmp + " OR " + e + " IS NULL)") + ")";
    equal = conj(equal, e + " = " + BindSortValue(b, v, q.sort[k].kind));
  }
  any += (any.empty() ? "(" : " OR (") +
         conj(equal, alias + ".id" + (back ? " < " : " > ") + b.Bind(after.id, SqlType::kBytes)) +
         ")";
  return "(" + any + ")";
}

}  // namespace

namespace {

// `text` with its one occurrence of `from` replaced by `to` (the compiler's own SQL, where
// `from` is a condition it wrote once).
std::string ReplaceOnce(const std::string& text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  if (at == std::string::npos) return text;
  return text.substr(0, at) + to + text.substr(at + from.size());
}

// `text` with every `from` replaced by `to` (the page's columns under another alias).
std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

constexpr const char* kPageColumns =
    "r.type, r.id, r.version, r.last_updated_us, r.deleted, r.json";
// SearchQuery::ids_only: the same columns with an empty JSON text.
constexpr const char* kIdColumns = "r.type, r.id, r.version, r.last_updated_us, r.deleted, ''";

}  // namespace

const char* PageColumns(const SearchQuery& q) { return q.ids_only ? kIdColumns : kPageColumns; }

namespace {

// Whether to answer a page sorted by one date parameter by walking that parameter's index in
// sort order (CompiledSearch::walk) rather than collecting every match and sorting: when the
// expected walk, (offset + count) x rows of the parameter / matches, tests fewer resources than
// collecting would (the matches, each tested by every other clause and given its sort value).
// The matches are taken as the driving clause's estimated rows; a walk over an unselective
// search stops at the end of its page.
// A clause on the date parameter a walk is sorted by that bounds where the walk can meet its
// matches: a match's sort value (its highest end descending, its lowest start ascending) lies
// before the bound, so the walk reads the rows of the parameter up to the bound only.
// Descending: ge, eq and ap hold only for a row that ends at or after the value's start (lo), gt
// and sa for one that ends at or after its end (hi). Ascending: le, eq and ap only for a row that
// starts at or before hi, lt and eb for one that starts at or before lo. The index of that
// clause in q.all_of, and the bound; nullopt when no clause bounds the walk. `tight`: the clause
// bounds one side only, the side the walk starts from being open (ge/gt/sa descending, le/lt/eb
// ascending), so the rows the walk reads are those the clause's count counted; an eq or ap walk
// still starts at the first value of all.
struct WalkBound {
  size_t clause = 0;
  int64_t us = 0;
  bool tight = false;
};

std::optional<WalkBound> BoundOfWalk(const SearchQuery& q) {
  if (q.sort.size() != 1 || q.sort[0].kind != SearchKind::kDate) return std::nullopt;
  const SortKey& k = q.sort[0];
  for (size_t i = 0; i < q.all_of.size(); ++i) {
    const SearchClause& c = q.all_of[i];
    if (c.kind != SearchKind::kDate || c.param != k.param || c.union_of != k.union_of || c.negate ||
        c.missing || c.any_of.size() != 1) {
      continue;
    }
    const SearchValue& v = c.any_of[0];
    switch (v.prefix) {
      case SearchPrefix::kEq:
      case SearchPrefix::kAp:
        return WalkBound{i, k.descending ? v.lo_us : v.hi_us, false};
      case SearchPrefix::kGe:
        if (k.descending) return WalkBound{i, v.lo_us, true};
        break;
      case SearchPrefix::kGt:
      case SearchPrefix::kSa:
        if (k.descending) return WalkBound{i, v.hi_us, true};
        break;
      case SearchPrefix::kLe:
        if (!k.descending) return WalkBound{i, v.hi_us, true};
        break;
      case SearchPrefix::kLt:
      case SearchPrefix::kEb:
        if (!k.descending) return WalkBound{i, v.lo_us, true};
        break;
      default:
        break;
    }
  }
  return std::nullopt;
}

bool WorthWalking(const SearchQuery& q, const Plan& plan, const Dialect& dialect,
                  RowEstimator* estimator) {
  if (!estimator || q.sort.size() != 1 || q.sort[0].kind != SearchKind::kDate) return false;
  if (q.all_of.empty()) return true;
  // Uncounted (past the cap): taken as ten times the cap, as the rows are below. At the cap
  // itself, a page 10,000 deep into a date-sorted blood-pressure code of a 1,000,000-resident
  // county (1,952,310 matches) was collected and sorted instead of walked: 30 s, not 0.3.
  const int64_t matches = plan.fewest ? std::max<int64_t>(*plan.fewest, 1) : 10 * kEstimateCap;
  if (matches <= kTinyEstimate) return false;  // cheap to collect whatever the walk would be
  // walk < collect  <=>  rows of the parameter < matches^2 x clauses / (offset + count): count
  // them up to that bound only.
  const double page = static_cast<double>(std::max<int64_t>(q.offset, 0) + q.count);
  const double bound = static_cast<double>(matches) * static_cast<double>(matches) *
                       static_cast<double>(q.all_of.size()) / page;
  if (bound < 1) return false;
  // A walk bounded on one side by a clause on its parameter reads only the rows that clause
  // counted (BoundOfWalk's `tight`): the laboratory Observations since a date, latest first.
  if (const std::optional<WalkBound> walk_bound = BoundOfWalk(q); walk_bound && walk_bound->tight) {
    const size_t i = walk_bound->clause;
    if (i < plan.rows.size() && plan.rows[i]) return static_cast<double>(*plan.rows[i]) < bound;
  }
  const int64_t limit =
      bound >= static_cast<double>(kEstimateCap) ? kEstimateCap : static_cast<int64_t>(bound);
  SqlBuilder e(dialect);
  const std::string type = e.Bind(q.type, SqlType::kText);
  const std::string param = e.Bind(q.sort[0].param, SqlType::kText);
  std::optional<int64_t> rows = estimator->CountRows(
      Statement{"SELECT count(*) FROM (SELECT 1 FROM idx_date WHERE type = " + type +
                    " AND param = " + param + " LIMIT " + std::to_string(limit) + ") AS e",
                e.params()});
  if (!rows) return false;
  if (*rows < limit) return true;
  // As many as the limit: more when the limit was the bound, else unknown past the cap.
  if (limit < kEstimateCap) return false;
  return static_cast<double>(10 * kEstimateCap) < bound;  // past the cap: assume ten times it
}

// The walk: the date rows of the sort parameter in sort order (descending: by end, the highest
// end of a resource first; ascending: by start), each joined to its resource and tested by every
// clause. A resource with several values appears once per value: the first is at its sort value,
// and the backend skips the rest.
Statement WalkStatement(const SearchQuery& q, const Dialect& dialect, const Plan& plan) {
  SqlBuilder w(dialect);
  const Scope top{"r", w.Bind(q.type, SqlType::kText)};
  const SortKey& k = q.sort[0];
  std::string sql =
      std::string("SELECT ") + PageColumns(q) +
      ", r.rid FROM idx_date s JOIN resource r ON r.rid = s.rid WHERE s.type = " + top.type_param +
      " AND s.param = " + w.Bind(k.param, SqlType::kText) + " AND r.type = " + top.type_param +
      " AND " + dialect.Live("r");
  if (q.at_or_before_us) sql += " AND r.last_updated_us <= " + w.Bind(*q.at_or_before_us);
  const std::optional<WalkBound> bound = BoundOfWalk(q);
  if (!q.all_of.empty()) {
    sql += " AND " +
           AllClauses(
               w, q.all_of, top, q.type,
               ClauseMode{.walk = &plan, .per_row = true, .probe_counted = bound && bound->tight});
  }
  // Only the rows where a match can be met (BoundOfWalk): the walk ends there.
  if (bound) {
    sql += k.descending ? " AND s.end_us >= " + w.Bind(bound->us)
                        : " AND s.start_us <= " + w.Bind(bound->us);
  }
  // Backward: from a position with a value, or from the last value of all (a walk after the
  // matches without a value, SearchAfter::end or a position among them).
  const bool back = q.after && q.backward;
  const char* column = k.descending ? "s.end_us" : "s.start_us";
  if (q.after && !AmongNoValues(*q.after)) {
    // From the position on (a range on the walked index), and only the resources that sort
    // after it by their own sort value: a resource met again at a later value of its own was
    // on an earlier page if its first value was.
    const auto& v = std::get<int64_t>(q.after->values[0]);
    sql += std::string(" AND ") + column + (k.descending != back ? " <= " : " >= ") + w.Bind(v);
    sql += " AND " + AfterCond(w, q, {SortExpr(w, k, "r")}, "r");
  }
  // Backward, the walk meets a resource's other values before its sort value: only the row at
  // its sort value places it.
  if (back) sql += std::string(" AND ") + column + " = " + SortExpr(w, k, "r");
  if (back) {
    sql +=
        k.descending ? " ORDER BY s.end_us ASC, r.id DESC" : " ORDER BY s.start_us DESC, r.id DESC";
  } else {
    sql += k.descending ? " ORDER BY s.end_us DESC, r.id" : " ORDER BY s.start_us, r.id";
  }
  return Statement{std::move(sql), w.params()};
}

// The sort values of one resource (CompiledSearch::last): its id is the last parameter, set by
// the backend.
Statement LastStatement(const SearchQuery& q, const Dialect& dialect) {
  SqlBuilder b(dialect);
  std::string columns;
  for (const SortKey& k : q.sort) columns += (columns.empty() ? "" : ", ") + SortExpr(b, k, "r");
  if (columns.empty()) columns = "r.id";
  const std::string type = b.Bind(q.type, SqlType::kText);
  const std::string id = b.Bind(std::string(), SqlType::kBytes);
  return Statement{
      "SELECT " + columns + " FROM resource r WHERE r.type = " + type + " AND r.id = " + id,
      b.params()};
}

}  // namespace

std::string Dialect::InTurn(const std::vector<std::string>& tests) const {
  std::string sql;
  for (const std::string& t : tests) sql += (sql.empty() ? "" : " AND ") + t;
  return sql.empty() ? std::string(True()) : sql;
}

std::string Dialect::HasNoRow(SqlBuilder& b, const char* table, SearchKind kind,
                              const std::string& alias, const std::string& /*type*/,
                              const std::string& param) const {
  return "NOT " + ProbeExists(table, kind, alias, "param = " + b.Bind(param, SqlType::kText));
}

CompiledSearch CompileSearch(const SearchQuery& q, const Dialect& dialect,
                             RowEstimator* estimator) {
  // The condition on the top-level resource rows `r`: type, live, snapshot, clauses.
  auto top_where = [&](SqlBuilder& sb, const ClauseMode& mode) {
    const Scope top{"r", sb.Bind(q.type, SqlType::kText)};
    std::string w = "r.type = " + top.type_param + " AND " + dialect.Live("r");
    if (q.at_or_before_us) w += " AND r.last_updated_us <= " + sb.Bind(*q.at_or_before_us);
    if (!q.all_of.empty()) w += " AND " + AllClauses(sb, q.all_of, top, q.type, mode);
    return w;
  };
  Plan plan;
  if (!q.all_of.empty()) plan = PlanClauses(q.all_of, q.type, dialect, estimator);
  // No clause counted under kEstimateCap rows: the matches are many. A statement that stops
  // early then walks the type's resources (in id order) probing each, which ends after a few
  // hundred; collecting a clause's index rows first reads every one of them (a blood-pressure
  // code's 1,952,310 Observations in a 1,000,000-resident county: 0.4-1.5 s). So probes serve a
  // page in id order and a total counted up to a limit.
  const bool many = estimator && !q.all_of.empty() && !plan.fewest;
  // PostgreSQL walks too when the fewest rows counted are still many (not `selective`): its
  // planner, estimating a month of dates at 146 rows for 21,484, collected them, probed each
  // for a blood-pressure code and sorted the 15,473 matches (231 ms a page over a 100,000-
  // resident county), where the walk tests 3,217 Observations, the month first (11 ms). The
  // walk's worst case, a page that never fills, tests every resource of the type: 0.36-0.43 s
  // for 571,668 Observations, where collecting the month and probing it took 0.23 s. (A
  // (type, id) key covering the walk's columns made that 0.28-0.31 s, but the planner then
  // scanned the whole type to join a collected clause of a few hundred rows: 53 → 137 ms.)
  const bool walks_counted =
      estimator && !q.all_of.empty() && !dialect.CollectsCountedClauses() && !plan.selective;
  const bool bounded_total = q.with_total && q.total_limit > 0;
  const bool probe_in_id_order =
      (many || walks_counted) && q.sort.empty() && !q.ids_only && (!q.with_total || bounded_total);
  SqlBuilder b(dialect);
  ClauseMode::Scans scans;  // the top level's intersected index scans (SQLite), if any
  std::string where =
      top_where(b, probe_in_id_order ? ClauseMode{.walk = &plan, .per_row = true}
                                     : ClauseMode{.planned = &plan, .scans = &scans});

  // The count beside such a walk over counted clauses (walks_counted; `many` leaves its total to
  // the page) is planned as a collected search, not tested row by row in id order:
  // `Patient?name=王` walked ~12,000 Patients to count 1,001 (58 ms, against 38 planned).
  SqlBuilder planned_count(dialect);
  const bool count_planned = probe_in_id_order && !many;
  const std::string count_where =
      count_planned ? top_where(planned_count, ClauseMode{.planned = &plan}) : where;
  const std::vector<Param>& count_params = count_planned ? planned_count.params() : b.params();

  CompiledSearch out;
  out.plan_each_time = !q.all_of.empty() && (!plan.fewest || *plan.fewest > kTinyEstimate);
  std::string count_sql;
  // One more than the limit, to tell "exactly the limit" from "more" (TotalFromCount). The
  // limit is the server's setting, not a request's value: a literal keeps the statement one
  // shape.
  auto bounded_count = [&](const std::string& w) {
    return "SELECT count(*) FROM (SELECT 1 FROM resource r WHERE " + w + " LIMIT " +
           std::to_string(q.total_limit + 1) + ") AS m";
  };
  // Likewise a driver counted at many rows (not `selective`) with a clause probed beside it: the
  // count probes the driver's rows until the limit matches (the 46,805 Observations of the
  // patients born before 1940 in a county of 2.2 million resources, each probed for a
  // blood-pressure code: ~70 of the search's 100 ms).
  // PostgreSQL, which does not collect counted clauses (CollectsCountedClauses), probes every
  // clause beside the driver, and its walk probes an uncounted chain, which its plan leaves
  // unmarked: for its total, a clause SQLite would probe is one (a chain uncounted or counted at
  // more than kProbeCostInRows times the driver's rows, any other clause likewise), so both
  // backends report the same totals.
  bool probed_count = false;
  for (size_t i = 0; estimator && !plan.selective && i < plan.probe.size(); ++i) {
    const bool collected_on_sqlite = i < plan.rows.size() && plan.rows[i] && plan.fewest &&
                                     *plan.rows[i] <= *plan.fewest * kProbeCostInRows;
    const bool chain = q.all_of[i].kind == SearchKind::kChain && i != plan.driver;
    if (dialect.CollectsCountedClauses() ? plan.probe[i]
                                         : (plan.probe[i] || chain) && !collected_on_sqlite) {
      probed_count = true;
    }
  }
  if (bounded_total && (many || probed_count) && q.count > 0) {
    // Counting up to the limit would probe resources until that many match: at a match in 40
    // (a blood-pressure code and a patient named 王), 40,000 probes for a page that needs 2,000.
    // The total is what a short page proves, else left out as past the limit. Not for
    // _count=0: the total is all that was asked for, and there is no page to prove it.
    out.total_from_page = true;
  } else if (bounded_total) {
    count_sql = bounded_count(count_where);
  } else if (q.with_total) {
    count_sql = "SELECT count(*) FROM resource r WHERE " + count_where;
  }
  if (!count_sql.empty()) out.count = Statement{count_sql, count_params};
  if (q.count <= 0) return out;
  if (q.want_last) out.last = LastStatement(q, dialect);
  // A listing of every match's id (ids_only) comes after a count that found them few: collect
  // and sort them, never walk in page order to the last one.
  const bool few = plan.selective || q.ids_only;
  // A position among the matches without a value (or past them all, SearchAfter::end): none with
  // a value follows it, so a page after it is not walked; a page before it takes the matches
  // without a value before it, then walks back from the last value of all.
  const bool after_no_value = q.after && AmongNoValues(*q.after);
  const bool back = q.after && q.backward;
  if (!q.ids_only && (!after_no_value || (back && q.offset <= 0)) &&
      WorthWalking(q, plan, dialect, estimator)) {
    out.walk = WalkStatement(q, dialect, plan);
    // Backward from a value: only values precede it.
    if (back && !after_no_value) return out;
    // The matches without a value of the parameter (they sort last), by id: after the walk, or
    // backward before it.
    std::string rest_where =
        where + " AND " +
        dialect.HasNoRow(b, "idx_date", SearchKind::kDate, "r", q.type, q.sort[0].param);
    if (back && !q.after->end) rest_where += " AND r.id < " + b.Bind(q.after->id, SqlType::kBytes);
    const std::string limit = b.Bind(q.count);
    const std::string offset = b.Bind(std::max<int64_t>(q.offset, 0));
    out.rest =
        Statement{std::string("SELECT ") + PageColumns(q) + " FROM resource r WHERE " + rest_where +
                      " ORDER BY " + dialect.IdTiebreak("r", !q.all_of.empty() && few) +
                      (back ? " DESC" : "") + " LIMIT " + limit + " OFFSET " + offset,
                  b.params()};
    out.rest_first = back;
    return out;
  }
  if (estimator && !q.all_of.empty() && few && q.after && !q.sort.empty()) {
    // Few matches after a position: as below, but each match's sort values are read once, into
    // a materialised common table expression, rather than once for the position's test (up to
    // three times a key) and again for the order (the date-sorted 5,700 Observations of a code
    // at 200,000 resources: a page after a cursor 50-95 ms, by offset 33-37).
    std::string keys;
    std::string order;
    std::vector<std::string> exprs;
    std::string values;  // all_sort_values
    for (size_t i = 0; i < q.sort.size(); ++i) {
      const SortKey& k = q.sort[i];
      keys += ", " + SortExpr(b, k, "r") + " AS k" + std::to_string(i);
      exprs.push_back("k.k" + std::to_string(i));
      order += dialect.OrderTerm(exprs.back(), k.descending != back, back) + ", ";
      values += ", " + exprs.back() + " AS s" + std::to_string(i);
    }
    out.all_sort_values = dialect.NumbersAll() && q.want_last;
    if (!out.all_sort_values) values.clear();
    order += dialect.IdTiebreak("k", true) + (back ? " DESC" : "");
    const std::string with = "WITH k AS MATERIALIZED (SELECT r.rid, r.id" + keys +
                             " FROM resource r WHERE " + where + ") ";
    const std::string cond = AfterCond(b, q, exprs, "k");
    out.all =
        Statement{dialect.NumbersAll()
                      ? with + "SELECT k.rid, k.id, row_number() OVER (ORDER BY " + order +
                            ") AS n" + values + " FROM k WHERE " + cond
                      : with + "SELECT k.rid, k.id FROM k WHERE " + cond + " ORDER BY " + order,
                  b.params()};
    return out;  // the count runs for the total
  }
  // Backward (a page before a position): the reverse order, whose first `count` rows are the
  // page's, reversed by RunCompiledSearch.
  std::string order;
  std::vector<std::string> sort_exprs;
  for (const SortKey& k : q.sort) {
    sort_exprs.push_back(SortExpr(b, k, "r"));
    order += dialect.OrderTerm(sort_exprs.back(), k.descending != back, back) + ", ";
  }
  // Few matches: collect them and sort. Many: walk the resources in id order and test each,
  // which stops at the end of the page.
  order += dialect.IdTiebreak("r", !q.all_of.empty() && few) + (back ? " DESC" : "");
  // After a position: the page starts there; the count (built above) still counts every match.
  std::string page_where = where;
  if (q.after) {
    std::vector<std::string> exprs;
    for (const SortKey& k : q.sort) exprs.push_back(SortExpr(b, k, "r"));
    page_where += " AND " + AfterCond(b, q, exprs, "r");
  }
  if (estimator && !q.all_of.empty() && few) {
    // Few matches, all found and sorted anyway: once, for both the page and the total (after a
    // position, the count runs for the total). The sort values as columns too where they are
    // read back (all_sort_values): PostgreSQL computes an expression of both the window's order
    // and the columns once.
    std::string values;
    if (dialect.NumbersAll() && q.want_last && !q.sort.empty()) {
      for (size_t i = 0; i < sort_exprs.size(); ++i) {
        values += ", " + sort_exprs[i] + " AS s" + std::to_string(i);
      }
      out.all_sort_values = true;
    }
    out.all = Statement{
        dialect.NumbersAll()
            ? "SELECT r.rid, r.id, row_number() OVER (ORDER BY " + order + ") AS n" + values +
                  " FROM resource r WHERE " + page_where
            : "SELECT r.rid, r.id FROM resource r WHERE " + page_where + " ORDER BY " + order,
        b.params()};
    if (!q.after) out.count.reset();
    return out;
  }
  const std::string limit = b.Bind(q.count);
  const std::string offset = b.Bind(std::max<int64_t>(q.offset, 0));
  // A page and its total over intersected index scans: the scans go to a materialised common
  // table expression, built once, and the total rides on the page's rows as a scalar subquery
  // over it (at 2 million resources, a code and value range took 26 ms for the page and 26 for
  // the count, now ~45 in all). The count statement stays for a page with no rows.
  std::string with;
  std::string columns = PageColumns(q);
  if (!count_sql.empty() && !scans.cond.empty()) {
    const std::string name = b.NewAlias("m");
    with = "WITH " + name + " AS MATERIALIZED (" + scans.rids + ") ";
    columns += ", (" + ReplaceOnce(count_sql, scans.cond, "r.rid IN " + name) + ") AS total";
    page_where = ReplaceOnce(page_where, scans.cond, "r.rid IN " + name);
    out.page_total = true;
  }
  const std::string rows = "FROM resource r WHERE " + page_where + " ORDER BY " + order +
                           " LIMIT " + limit + " OFFSET " + offset;
  std::string sql;
  // Not with a total column: its subquery's own "r." would be renamed too (page_total comes
  // with intersected scans, which only SQLite has).
  if (!q.ids_only && !out.page_total && dialect.ReadsPageRowsLast()) {
    // The page's rids first, from the keys (index-only), then its rows: a page chosen among
    // many candidates otherwise read every candidate's row, JSON included, and sorted them.
    sql = with + "SELECT " + ReplaceAll(columns, "r.", "x.") + " FROM " +
          dialect.InOrder("SELECT r.rid " + rows, "p") + " JOIN resource x ON x.rid = p.rid" +
          " ORDER BY p.n";
  } else {
    sql = with + "SELECT " + columns + " " + rows;
  }
  out.page = Statement{std::move(sql), b.params()};
  return out;
}

namespace {

bool IsWordCharacter(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  }
  const bool punctuation_or_symbol =
      (cp >= 0x80 && cp <= 0xBF) ||      // Latin-1 controls, punctuation and signs
      (cp >= 0x2000 && cp <= 0x2BFF) ||  // general punctuation, arrows, maths, shapes
      (cp >= 0x3000 && cp <= 0x303F) ||  // CJK symbols and punctuation (、。「」)
      (cp >= 0xFE30 && cp <= 0xFE6F) ||  // CJK compatibility and small form punctuation
      (cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) ||
      (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65) ||  // full-width ones
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF;                     // not characters
  return !punctuation_or_symbol;
}

}  // namespace

std::vector<std::string_view> FullTextWords(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = std::string_view::npos;
  for (size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    const size_t len = DecodeUtf8At(text, i, cp);
    const bool word = len > 0 && IsWordCharacter(cp);
    if (word && start == std::string_view::npos) start = i;
    if (!word && start != std::string_view::npos) {
      out.push_back(text.substr(start, i - start));
      start = std::string_view::npos;
    }
    i += len > 0 ? len : 1;  // a byte that starts no character is a separator
  }
  if (start != std::string_view::npos) out.push_back(text.substr(start));
  return out;
}

std::string ParamCond(SqlBuilder& b, const std::string& param,
                      const std::vector<std::string>& union_of) {
  if (union_of.empty()) return "param = " + b.Bind(param, SqlType::kText);
  std::string in;
  for (const std::string& p : union_of) in += (in.empty() ? "" : ", ") + b.Bind(p, SqlType::kText);
  return "param IN (" + in + ")";
}

namespace {

// The position of one entry of the page (CompiledSearch::last with its id): its sort values.
Result<SearchAfter> PositionOfEntry(const SearchQuery& q, const CompiledSearch& compiled,
                                    SearchStatements& run, const std::string& id) {
  Statement st = *compiled.last;
  st.params.back().value = id;
  SearchAfter at;
  at.id = id;
  if (!q.sort.empty()) {
    JC_ASSIGN_OR_RETURN(at.values, run.SortValues(st, q.sort));
    if (at.values.size() != q.sort.size()) return Internal("search: no sort values of an entry");
  }
  return at;
}

// SearchPage::last (a full page) and first (a page after a position): the sort values of the
// page's last and first entries, read in the same transaction.
Status FillLast(const SearchQuery& q, const CompiledSearch& compiled, SearchStatements& run,
                SearchPage& page) {
  if (!compiled.last || q.count <= 0 || page.entries.empty()) return Status::Ok();
  // The backend read them with the matches (CompiledSearch::all_sort_values).
  if (compiled.all && compiled.all_sort_values && !q.ids_only) return Status::Ok();
  if (static_cast<int64_t>(page.entries.size()) >= q.count) {
    JC_ASSIGN_OR_RETURN(page.last, PositionOfEntry(q, compiled, run, page.entries.back().id));
  }
  if (q.after) {
    JC_ASSIGN_OR_RETURN(page.first, PositionOfEntry(q, compiled, run, page.entries.front().id));
  }
  return Status::Ok();
}

Result<SearchPage> RunStatements(const SearchQuery& q, const CompiledSearch& compiled,
                                 SearchStatements& run) {
  SearchPage page;
  if (compiled.page) {
    JC_ASSIGN_OR_RETURN(std::optional<int64_t> counted,
                        run.Page(*compiled.page, compiled.page_total, page.entries));
    if (compiled.count || compiled.total_from_page) {
      page.total = TotalFromPage(q, page.entries.size());
    }
    if (counted) {  // the count statement has nothing to add
      if (!page.total) page.total = TotalFromCount(q, *counted);
      return page;
    }
  }
  if (compiled.all) {
    JC_RETURN_IF_ERROR(run.All(q, compiled, page));
    if (!compiled.count) return page;  // the total came from every match
  }
  if (compiled.walk && compiled.rest_first) {
    // Backward from among the matches without a value: those before the position (in reverse),
    // then the walk back from the last value for the rest of the page.
    JC_RETURN_IF_ERROR(run.Page(*compiled.rest, false, page.entries));
    const auto got = static_cast<int64_t>(page.entries.size());
    if (got < q.count) {
      SearchQuery walk_q = q;
      walk_q.count = q.count - got;
      CompiledSearch walk_only;
      walk_only.walk = compiled.walk;
      SearchPage walked;
      JC_RETURN_IF_ERROR(run.Walk(walk_q, walk_only, walked));
      for (auto& e : walked.entries) page.entries.push_back(std::move(e));
    }
  } else if (compiled.walk) {
    JC_RETURN_IF_ERROR(run.Walk(q, compiled, page));
    if (compiled.count || compiled.total_from_page) {
      page.total = TotalFromPage(q, page.entries.size());
    }
  }
  if (compiled.count && !page.total) {
    JC_ASSIGN_OR_RETURN(int64_t counted, run.Count(*compiled.count));
    page.total = TotalFromCount(q, counted);
  }
  return page;
}

}  // namespace

Result<SearchPage> RunCompiledSearch(const SearchQuery& q, const CompiledSearch& compiled,
                                     SearchStatements& run) {
  JC_ASSIGN_OR_RETURN(SearchPage page, RunStatements(q, compiled, run));
  if (q.after && q.backward) std::reverse(page.entries.begin(), page.entries.end());
  JC_RETURN_IF_ERROR(FillLast(q, compiled, run, page));
  return page;
}

std::optional<int64_t> TotalFromCount(const SearchQuery& q, int64_t counted) {
  if (q.total_limit > 0 && counted > q.total_limit) return std::nullopt;
  return counted;
}

std::optional<int64_t> TotalFromPage(const SearchQuery& q, size_t entries) {
  if (q.after) return std::nullopt;  // how many matches precede the position is not known
  const auto n = static_cast<int64_t>(entries);
  if (q.count <= 0 || n >= q.count || (n == 0 && q.offset > 0)) return std::nullopt;
  return q.offset + n;
}

}  // namespace jiceng::store::sql
