#include "api/compartments.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "fhir/search/extractor.h"

namespace jiceng::api {
namespace {

struct Tables {
  std::vector<std::string> compartments;
  std::map<std::string, std::map<std::string, std::vector<std::string>, std::less<>>, std::less<>>
      params;
  std::map<std::string, std::vector<std::string>, std::less<>> types;
};

const Tables& Get() {
  static const Tables t = [] {
    Tables out;
    for (size_t i = 0; i < internal::kCompartmentRowCount; ++i) {
      const internal::CompartmentRow& row = internal::kCompartmentRows[i];
      std::vector<std::string> params;
      std::string_view rest = row.params;
      while (!rest.empty()) {
        size_t comma = rest.find(',');
        params.emplace_back(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
      out.params[row.compartment][row.type] = std::move(params);
      out.types[row.compartment].emplace_back(row.type);
    }
    for (auto& [c, types] : out.types) {
      std::sort(types.begin(), types.end());
      out.compartments.push_back(c);
    }
    return out;
  }();
  return t;
}

}  // namespace

bool IsCompartmentType(std::string_view type) {
  return Get().types.find(type) != Get().types.end();
}

const std::vector<std::string>& CompartmentTypes() { return Get().compartments; }

const std::vector<std::string>& CompartmentParams(std::string_view compartment,
                                                  std::string_view resource_type) {
  static const std::vector<std::string> kNone;
  const auto& t = Get().params;
  auto c = t.find(compartment);
  if (c == t.end()) return kNone;
  auto r = c->second.find(resource_type);
  return r == c->second.end() ? kNone : r->second;
}

const std::vector<std::string>& CompartmentResourceTypes(std::string_view compartment) {
  static const std::vector<std::string> kNone;
  auto it = Get().types.find(compartment);
  return it == Get().types.end() ? kNone : it->second;
}

std::string CompartmentDefinitionUrl(std::string_view compartment) {
  // The R4 ids are the codes with a lower-case first letter ("relatedPerson").
  std::string id(compartment);
  if (!id.empty()) id[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(id[0])));
  return "http://hl7.org/fhir/CompartmentDefinition/" + id;
}

namespace {

bool IsIndexedReference(std::string_view type, std::string_view code) {
  for (const auto* p : search::IndexedParams(type)) {
    if (p->code == code && p->type == "reference") return true;
  }
  return false;
}

Result<int64_t> Count(store::IReadTransaction& txn, store::SearchQuery q) {
  q.count = 0;
  q.offset = 0;
  q.with_total = true;
  q.sort.clear();
  q.after.reset();  // a page's position (in the sort just dropped) restricts no count
  q.want_last = false;
  JC_ASSIGN_OR_RETURN(store::SearchPage page, txn.Search(q));
  return page.total.value_or(0);
}

}  // namespace

Result<std::optional<CompartmentQuery>> RestrictToCompartment(store::IReadTransaction& txn,
                                                              const store::SearchQuery& q,
                                                              std::string_view compartment,
                                                              std::string_view id, bool count,
                                                              bool include_self) {
  const std::vector<std::string>& params = CompartmentParams(compartment, q.type);
  if (params.empty()) return std::optional<CompartmentQuery>();
  std::vector<store::SearchClause> clauses;
  for (const std::string& p : params) {
    store::SearchClause c;
    store::SearchValue v;
    if (p == kCompartmentSelf) {
      if (!include_self || q.type != compartment) continue;
      c.param = "_id";
      c.kind = store::SearchKind::kId;
      v.code = std::string(id);
    } else {
      if (!IsIndexedReference(q.type, p)) continue;
      c.param = p;
      c.kind = store::SearchKind::kReference;
      v.type = std::string(compartment);
      v.code = std::string(id);
    }
    c.any_of.push_back(std::move(v));
    clauses.push_back(std::move(c));
  }
  CompartmentQuery out{q, std::nullopt};
  if (clauses.empty()) {
    // In the definition, but through nothing this server can match: an empty result.
    store::SearchClause none;
    none.param = "_id";
    none.kind = store::SearchKind::kId;
    out.query.all_of.push_back(std::move(none));  // no values: matches nothing
    out.total = 0;
    return std::optional<CompartmentQuery>(std::move(out));
  }
  if (clauses.size() == 1 && !count) {
    out.query.all_of.push_back(std::move(clauses.front()));
    return std::optional<CompartmentQuery>(std::move(out));
  }
  const bool all_references = std::all_of(
      clauses.begin(), clauses.end(),
      [](const store::SearchClause& c) { return c.kind == store::SearchKind::kReference; });
  if (all_references) {
    // One clause over the parameters' rows together (SearchClause::union_of): the store finds,
    // counts and sorts the union in one search, as it does a single parameter. (Counting each
    // parameter, then listing the ids of each, took three statements for a patient's
    // Observations through subject and performer, each a round trip on PostgreSQL.)
    if (clauses.size() > 1) {
      store::SearchClause any = clauses.front();
      any.param.clear();
      for (const store::SearchClause& c : clauses) {
        any.param += (any.param.empty() ? "" : "|") + c.param;
        any.union_of.push_back(c.param);
      }
      clauses.assign(1, std::move(any));
    }
    out.query.all_of.push_back(std::move(clauses.front()));
    if (count) {
      JC_ASSIGN_OR_RETURN(int64_t n, Count(txn, out.query));
      out.total = n;
    }
    return std::optional<CompartmentQuery>(std::move(out));
  }
  std::vector<std::pair<store::SearchClause, int64_t>> nonzero;
  for (auto& c : clauses) {
    store::SearchQuery qc = q;
    qc.all_of.push_back(c);
    JC_ASSIGN_OR_RETURN(int64_t n, Count(txn, qc));
    if (n > 0) nonzero.emplace_back(std::move(c), n);
  }
  if (nonzero.size() <= 1) {
    if (nonzero.empty()) {
      out.query.all_of.push_back(std::move(clauses.front()));
      out.total = 0;
    } else {
      out.query.all_of.push_back(std::move(nonzero.front().first));
      out.total = nonzero.front().second;
    }
    return std::optional<CompartmentQuery>(std::move(out));
  }
  // Several parameters reference the compartment: the union of their matches, by id.
  std::set<std::string> ids;
  for (auto& [c, n] : nonzero) {
    if (n > kMaxCompartmentUnion)
      return Invalid(
          fmt::format("The {} compartment search of {} matches more than {} resources "
                      "through several parameters; add criteria to narrow it",
                      compartment, q.type, kMaxCompartmentUnion));
    store::SearchQuery qc = q;
    qc.all_of.push_back(std::move(c));
    qc.offset = 0;
    qc.count = n;
    qc.with_total = false;
    qc.sort.clear();
    qc.after.reset();  // every match of the union: the page's position applies to the union
    qc.want_last = false;
    JC_ASSIGN_OR_RETURN(store::SearchPage page, txn.Search(qc));
    for (auto& v : page.entries) ids.insert(std::move(v.id));
  }
  if (static_cast<int64_t>(ids.size()) > kMaxCompartmentUnion)
    return Invalid(
        fmt::format("The {} compartment search of {} matches more than {} resources "
                    "through several parameters; add criteria to narrow it",
                    compartment, q.type, kMaxCompartmentUnion));
  store::SearchClause in;
  in.param = "_id";
  in.kind = store::SearchKind::kId;
  for (const std::string& i : ids) {
    store::SearchValue v;
    v.code = i;
    in.any_of.push_back(std::move(v));
  }
  out.query.all_of.push_back(std::move(in));
  out.total = static_cast<int64_t>(ids.size());
  return std::optional<CompartmentQuery>(std::move(out));
}

}  // namespace jiceng::api
