#include "fhir/search/value_set.h"

#include <fmt/format.h>

#include <map>
#include <set>
#include <utility>

namespace jiceng::search {
namespace {

using Codes = std::map<std::string, std::set<std::string>>;  // system → codes

// The string member `key` of `o`, "" when absent.
std::string StringAt(const json::object& o, std::string_view key) {
  return std::string(FindString(o, key).value_or(""));
}

std::string Name(const json::object& vs) {
  std::string url = StringAt(vs, "url");
  if (url.empty()) url = "ValueSet/" + StringAt(vs, "id");
  return url;
}

void AddContains(const json::array& contains, Codes& out) {
  for (const json::value& e : contains) {
    if (!e.is_object()) continue;
    const json::object& c = e.get_object();
    const json::value* abstract = Find(c, "abstract");
    const bool selectable = !(abstract && abstract->is_bool() && abstract->get_bool());
    const std::string code = StringAt(c, "code");
    if (selectable && !code.empty()) out[StringAt(c, "system")].insert(code);
    if (const json::array* nested = FindArray(c, "contains")) AddContains(*nested, out);
  }
}

Result<Codes> CodesOf(const json::object& vs, const ValueSetSource& source, int depth);

// One compose.include or compose.exclude entry's codes.
Result<Codes> ConceptSet(const json::object& set, const json::object& vs,
                         const ValueSetSource& source, int depth) {
  Codes out;
  const std::string system = StringAt(set, "system");
  const json::array* concepts = FindArray(set, "concept");
  const json::array* filters = FindArray(set, "filter");
  const json::array* imports = FindArray(set, "valueSet");
  if ((filters && !filters->empty()) || (!system.empty() && (!concepts || concepts->empty()))) {
    return Invalid(fmt::format(
        "ValueSet '{}' includes {} of code system '{}': this server holds no code systems, so it "
        "expands only value sets that list their codes (compose.include.concept) or carry an "
        "expansion",
        Name(vs), filters && !filters->empty() ? "a filter" : "all codes", system));
  }
  if (imports && !imports->empty()) {
    if (!system.empty()) {
      return Invalid(fmt::format(
          "ValueSet '{}' intersects code system '{}' with other value sets; this server expands "
          "only unions of value sets",
          Name(vs), system));
    }
    for (const json::value& ref : *imports) {
      if (!ref.is_string()) continue;
      const auto [url, version] = SplitCanonical(ref.get_string());
      if (!source) return Invalid(fmt::format("ValueSet '{}' imports '{}'", Name(vs), url));
      JC_ASSIGN_OR_RETURN(std::optional<json::object> imported, source(url, version));
      if (!imported) {
        return Invalid(fmt::format("ValueSet '{}' imports '{}', which this server does not hold",
                                   Name(vs), url));
      }
      JC_ASSIGN_OR_RETURN(Codes codes, CodesOf(*imported, source, depth + 1));
      for (auto& [s, cs] : codes) out[s].insert(cs.begin(), cs.end());
    }
    return out;
  }
  if (concepts) {
    for (const json::value& e : *concepts) {
      if (!e.is_object()) continue;
      const std::string code = StringAt(e.get_object(), "code");
      if (!code.empty()) out[system].insert(code);
    }
  }
  return out;
}

Result<Codes> CodesOf(const json::object& vs, const ValueSetSource& source, int depth) {
  if (depth > kMaxValueSetDepth) {
    return Invalid(fmt::format("ValueSet '{}': imports nest more than {} deep (a cycle?)", Name(vs),
                               kMaxValueSetDepth));
  }
  Codes out;
  if (const json::object* expansion = FindObject(vs, "expansion")) {
    if (const json::array* contains = FindArray(*expansion, "contains")) {
      AddContains(*contains, out);
    }
    return out;
  }
  const json::object* compose = FindObject(vs, "compose");
  if (!compose) {
    return Invalid(
        fmt::format("ValueSet '{}' has neither an expansion nor a compose to expand", Name(vs)));
  }
  if (const json::array* include = FindArray(*compose, "include")) {
    for (const json::value& set : *include) {
      if (!set.is_object()) continue;
      JC_ASSIGN_OR_RETURN(Codes codes, ConceptSet(set.get_object(), vs, source, depth));
      for (auto& [s, cs] : codes) out[s].insert(cs.begin(), cs.end());
    }
  }
  if (const json::array* exclude = FindArray(*compose, "exclude")) {
    for (const json::value& set : *exclude) {
      if (!set.is_object()) continue;
      JC_ASSIGN_OR_RETURN(Codes codes, ConceptSet(set.get_object(), vs, source, depth));
      for (const auto& [s, cs] : codes) {
        auto it = out.find(s);
        if (it == out.end()) continue;
        for (const std::string& c : cs) it->second.erase(c);
      }
    }
  }
  return out;
}

}  // namespace

std::pair<std::string, std::string> SplitCanonical(std::string_view canonical) {
  const size_t bar = canonical.find('|');
  if (bar == std::string_view::npos) return {std::string(canonical), std::string()};
  return {std::string(canonical.substr(0, bar)), std::string(canonical.substr(bar + 1))};
}

Result<std::vector<store::SearchValue>> ValueSetSearchValues(const json::object& value_set,
                                                             const ValueSetSource& source,
                                                             int depth) {
  JC_ASSIGN_OR_RETURN(Codes codes, CodesOf(value_set, source, depth));
  std::vector<store::SearchValue> out;
  for (auto& [system, cs] : codes) {
    if (cs.empty()) continue;
    store::SearchValue v;
    v.system = system;
    v.codes.assign(cs.begin(), cs.end());
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace jiceng::search
