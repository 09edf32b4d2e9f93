// fhir/search/value_set: the codes of a ValueSet resource, for token :in / :not-in.
//
// A ValueSet the server holds as a resource (POSTed like any other) is used by its canonical
// url: its expansion when it carries one, else its compose, as far as that enumerates codes:
//   * expansion.contains (nested contains too): every entry with a code, in its system;
//   * compose.include[] with system + concept[]: those codes in that system;
//   * compose.include[] with valueSet[] only: the union of those value sets (looked up again);
//   * compose.exclude[] with system + concept[]: removed.
// An include of a whole code system, or with filters, needs the code system's content, which the
// server does not hold: that is an error naming the ValueSet (never a silent "matches nothing").
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/result.h"
#include "store/store.h"

namespace jiceng::search {

// Finds the stored ValueSet with a canonical url (and version, when not empty): its JSON, or
// nullopt when the server holds none.
using ValueSetSource = std::function<Result<std::optional<json::object>>(std::string_view url,
                                                                         std::string_view version)>;

// "url|version" → {url, version} (version "" when there is none), as canonical references and
// :in values write them.
std::pair<std::string, std::string> SplitCanonical(std::string_view canonical);

// Imports nested deeper than this are refused (a cycle would otherwise never end).
inline constexpr int kMaxValueSetDepth = 8;

// The codes of `value_set` as token search values, one per system (SearchValue::system and
// ::codes; a code without a system has system ""). `source` resolves compose.include.valueSet
// imports (may be empty: an import is then an error). Errors name the value set by its url.
Result<std::vector<store::SearchValue>> ValueSetSearchValues(const json::object& value_set,
                                                             const ValueSetSource& source,
                                                             int depth = 0);

}  // namespace jiceng::search
