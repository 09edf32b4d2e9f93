#include "api/stored_value_sets.h"

#include <memory>
#include <string>
#include <utility>

namespace jiceng::api {
namespace {

store::SearchClause OneValue(store::SearchKind kind, const char* param, store::SearchValue value) {
  store::SearchClause c;
  c.kind = kind;
  c.param = param;
  c.any_of = {std::move(value)};
  return c;
}

Result<std::optional<json::object>> Find(store::IReadTransaction& txn, std::string_view url,
                                         std::string_view version) {
  store::SearchQuery q;
  q.type = "ValueSet";
  store::SearchValue u;
  u.text = std::string(url);
  q.all_of.push_back(OneValue(store::SearchKind::kUri, "url", std::move(u)));
  if (!version.empty()) {
    store::SearchValue v;
    v.code = std::string(version);
    q.all_of.push_back(OneValue(store::SearchKind::kToken, "version", std::move(v)));
  }
  q.sort = {store::SortKey{"_lastUpdated", store::SearchKind::kLastUpdated, true, {}}};
  q.count = 1;
  q.with_total = false;
  JC_ASSIGN_OR_RETURN(store::SearchPage page, txn.Search(q));
  if (page.entries.empty()) return std::optional<json::object>();
  JC_ASSIGN_OR_RETURN(json::value parsed, ParseJson(page.entries.front().json));
  if (!parsed.is_object()) return Internal("a stored ValueSet is not a JSON object");
  return std::optional<json::object>(std::move(parsed.get_object()));
}

}  // namespace

search::ValueSetSource StoredValueSets(store::IReadTransaction& txn) {
  return [&txn](std::string_view url, std::string_view version) { return Find(txn, url, version); };
}

search::ValueSetSource StoredValueSets(store::IStore& store) {
  return [&store](std::string_view url,
                  std::string_view version) -> Result<std::optional<json::object>> {
    JC_ASSIGN_OR_RETURN(std::unique_ptr<store::IReadTransaction> txn, store.BeginRead());
    return Find(*txn, url, version);
  };
}

}  // namespace jiceng::api
