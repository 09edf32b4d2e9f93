#include "fhir/search/query.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "base/time.h"
#include "fhir/definitions.h"
#include "fhir/search/extractor.h"
#include "fhir/search/normalize.h"

namespace jiceng::search {
namespace {

using store::SearchKind;
using store::SearchPrefix;

// FHIR search escapes ',', '|' and '$' with a backslash.
std::vector<std::string> SplitEscaped(std::string_view s, char sep) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      parts.back() += s[++i];
    } else if (s[i] == sep) {
      parts.emplace_back();
    } else {
      parts.back() += s[i];
    }
  }
  return parts;
}

// Splits on unescaped `sep` but keeps escapes (a later split on another separator needs them).
std::vector<std::string> SplitKeep(std::string_view s, char sep) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      parts.back() += s[i];
      parts.back() += s[++i];
    } else if (s[i] == sep) {
      parts.emplace_back();
    } else {
      parts.back() += s[i];
    }
  }
  return parts;
}

std::string Unescape(std::string_view s) { return SplitEscaped(s, '\0').front(); }

Error Bad(std::string_view param, std::string msg) { return Invalid(std::move(msg), std::string(param)); }

std::optional<SearchKind> KindOf(std::string_view type) {
  if (type == "string") return SearchKind::kString;
  if (type == "token") return SearchKind::kToken;
  if (type == "date") return SearchKind::kDate;
  if (type == "number") return SearchKind::kNumber;
  if (type == "quantity") return SearchKind::kQuantity;
  if (type == "reference") return SearchKind::kReference;
  if (type == "uri") return SearchKind::kUri;
  return std::nullopt;
}

// The prefix of a date/number/quantity value ("ge2024" → kGe, "2024"), kEq when absent.
SearchPrefix TakePrefix(std::string& v) {
  static constexpr std::pair<std::string_view, SearchPrefix> kPrefixes[] = {
      {"eq", SearchPrefix::kEq}, {"ne", SearchPrefix::kNe}, {"gt", SearchPrefix::kGt},
      {"lt", SearchPrefix::kLt}, {"ge", SearchPrefix::kGe}, {"le", SearchPrefix::kLe},
      {"sa", SearchPrefix::kSa}, {"eb", SearchPrefix::kEb}, {"ap", SearchPrefix::kAp}};
  if (v.size() >= 3 && std::isalpha(static_cast<unsigned char>(v[0]))) {
    for (const auto& [text, p] : kPrefixes) {
      if (v.compare(0, 2, text) == 0) {
        v.erase(0, 2);
        return p;
      }
    }
  }
  return SearchPrefix::kEq;
}

Result<store::SearchValue> DateValue(std::string_view param, std::string raw, int64_t now_us) {
  store::SearchValue v;
  v.prefix = TakePrefix(raw);
  auto range = ParseDateTimeRange(raw);
  if (!range.ok()) return Bad(param, fmt::format("Bad date '{}' for parameter {}", raw, param));
  v.lo_us = range->start;
  v.hi_us = range->end;
  if (v.prefix == SearchPrefix::kAp) {
    // The spec leaves "approximately" to the server: 10% of the gap to now, at least a day.
    int64_t gap = std::llabs(now_us - v.lo_us) / 10;
    int64_t w = std::max<int64_t>(gap, int64_t{86400} * 1000000);
    v.lo_us -= w;
    v.hi_us += w;
  }
  return v;
}

Result<store::SearchValue> NumberValue(std::string_view param, std::string raw) {
  store::SearchValue v;
  v.prefix = TakePrefix(raw);
  auto n = ParseNumberRange(raw);
  if (!n) return Bad(param, fmt::format("Bad number '{}' for parameter {}", raw, param));
  v.number = n->value;
  v.lo = n->lo;
  v.hi = n->hi;
  return v;
}

Result<store::SearchValue> QuantityValue(std::string_view param, const std::string& raw) {
  auto parts = SplitEscaped(raw, '|');
  if (parts.size() != 1 && parts.size() != 3)
    return Bad(param, fmt::format("Bad quantity '{}' for parameter {} (number|system|code)", raw, param));
  JC_ASSIGN_OR_RETURN(store::SearchValue v, NumberValue(param, parts[0]));
  if (parts.size() == 3) {
    const std::string& system = parts[1];
    const std::string& code = parts[2];
    std::optional<CanonicalQuantity> c;
    if (!code.empty() && (system.empty() || system == "http://unitsofmeasure.org"))
      c = Canonicalize(1.0, code);
    if (c) {
      // Compare on canonical values so 70 kg finds 70000 g.
      v.canonical_code = std::string(c->code);
      v.number *= c->value;
      v.lo *= c->value;
      v.hi *= c->value;
    } else {
      if (!system.empty()) v.system = system;
      v.code = code;
    }
  }
  return v;
}

Result<store::SearchValue> TokenValue(std::string_view param, const std::string& raw) {
  auto parts = SplitEscaped(raw, '|');
  store::SearchValue v;
  if (parts.size() == 1) {
    v.code = parts[0];
  } else if (parts.size() == 2) {
    v.system = parts[0];
    v.code = parts[1];
    if (v.system->empty() && v.code.empty())
      return Bad(param, fmt::format("Empty token '|' for parameter {}", param));
  } else {
    return Bad(param, fmt::format("Bad token '{}' for parameter {}", raw, param));
  }
  if (parts.size() == 1 && v.code.empty())
    return Bad(param, fmt::format("Empty value for parameter {}", param));
  return v;
}

Result<store::SearchValue> ReferenceValue(std::string_view param, const std::string& raw,
                                          const std::string& type_modifier) {
  store::SearchValue v;
  store::ReferenceIndexRow r;
  if (raw.empty() || !ParseReference(raw, r))
    return Bad(param, fmt::format("Bad reference '{}' for parameter {}", raw, param));
  if (!r.url.empty()) {
    v.url = r.url;
  } else {
    v.type = r.target_type.empty() ? type_modifier : r.target_type;
    v.code = r.target_id;
    if (!type_modifier.empty() && v.type != type_modifier)
      return Bad(param, fmt::format("Reference '{}' does not match the modifier :{}", raw, type_modifier));
  }
  return v;
}

bool IsControl(std::string_view name) {
  return name == "_count" || name == "_getpagesoffset" || name == "_snapshot" ||
         name == "_sort" || name == "_total" || name == "_summary" || name == "_format" ||
         name == "_pretty" || name == "_elements";
}

Result<int64_t> NonNegative(std::string_view name, std::string_view v, int64_t max) {
  if (v.empty() || v.size() > 18 ||
      !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return Bad(name, fmt::format("Parameter {} must be a non-negative integer", name));
  return std::min<int64_t>(std::stoll(std::string(v)), max);
}

// Parses one criterion. Returns nullopt (not an error) when the parameter is not supported;
// the caller decides between 400 and ignoring it.
Result<std::optional<store::SearchClause>> ParseCriterion(std::string_view type,
                                                          const std::string& name,
                                                          const std::string& value,
                                                          int64_t now_us) {
  std::string code = name, modifier;
  if (size_t colon = name.find(':'); colon != std::string::npos) {
    code = name.substr(0, colon);
    modifier = name.substr(colon + 1);
  }
  if (code.find('.') != std::string::npos) return std::optional<store::SearchClause>();  // chains
  store::SearchClause c;
  c.param = code;
  if (code == "_id") {
    c.kind = SearchKind::kId;
  } else if (code == "_lastUpdated") {
    c.kind = SearchKind::kLastUpdated;
  } else {
    const fhir::SearchParamDef* def = nullptr;
    for (const fhir::SearchParamDef* p : IndexedParams(type)) {
      if (p->code == code) def = p;
    }
    if (!def) return std::optional<store::SearchClause>();
    auto kind = KindOf(def->type);
    if (!kind) return std::optional<store::SearchClause>();
    c.kind = *kind;
  }
  if (modifier == "missing") {
    if (c.kind == SearchKind::kId || c.kind == SearchKind::kLastUpdated)
      return std::optional<store::SearchClause>();
    if (value != "true" && value != "false")
      return Bad(name, fmt::format("Parameter {} takes true or false", name));
    c.missing = value == "true";
    return std::optional<store::SearchClause>(std::move(c));
  }
  std::string type_modifier;
  bool text = false;
  store::StringMatch match = store::StringMatch::kStartsWith;
  store::UriMatch uri_match = store::UriMatch::kEquals;
  if (!modifier.empty()) {
    bool ok = false;
    if (c.kind == SearchKind::kString) {
      ok = modifier == "exact" || modifier == "contains";
      match = modifier == "exact" ? store::StringMatch::kExact : store::StringMatch::kContains;
    } else if (c.kind == SearchKind::kToken) {
      ok = modifier == "not" || modifier == "text";
      c.negate = modifier == "not";
      text = modifier == "text";
    } else if (c.kind == SearchKind::kReference) {
      ok = fhir::Definitions::Get().IsResourceType(modifier);
      type_modifier = modifier;
    } else if (c.kind == SearchKind::kUri) {
      ok = modifier == "below" || modifier == "above";
      uri_match = modifier == "below" ? store::UriMatch::kBelow : store::UriMatch::kAbove;
    }
    if (!ok) return std::optional<store::SearchClause>();
  }
  if (text) {
    // Token display text lives in the string index under "<code>:text".
    c.kind = SearchKind::kString;
    c.param = code + ":text";
  }
  for (const std::string& part : SplitKeep(value, ',')) {
    store::SearchValue v;
    switch (c.kind) {
      case SearchKind::kString: {
        v.exact = Unescape(part);
        v.text = NormalizeString(v.exact);
        v.string_match = match;
        if (v.text.empty()) return Bad(name, fmt::format("Empty value for parameter {}", name));
        break;
      }
      case SearchKind::kToken: {
        JC_ASSIGN_OR_RETURN(v, TokenValue(name, part));
        break;
      }
      case SearchKind::kId:
        v.code = Unescape(part);
        break;
      case SearchKind::kDate:
      case SearchKind::kLastUpdated: {
        JC_ASSIGN_OR_RETURN(v, DateValue(name, Unescape(part), now_us));
        break;
      }
      case SearchKind::kNumber: {
        JC_ASSIGN_OR_RETURN(v, NumberValue(name, Unescape(part)));
        break;
      }
      case SearchKind::kQuantity: {
        JC_ASSIGN_OR_RETURN(v, QuantityValue(name, part));
        break;
      }
      case SearchKind::kReference: {
        JC_ASSIGN_OR_RETURN(v, ReferenceValue(name, Unescape(part), type_modifier));
        break;
      }
      case SearchKind::kUri:
        v.text = Unescape(part);
        v.uri_match = uri_match;
        if (v.text.empty()) return Bad(name, fmt::format("Empty value for parameter {}", name));
        break;
    }
    c.any_of.push_back(std::move(v));
  }
  return std::optional<store::SearchClause>(std::move(c));
}

Result<std::vector<store::SortKey>> ParseSort(std::string_view type, const std::string& value,
                                              bool strict) {
  std::vector<store::SortKey> keys;
  for (const std::string& raw : SplitEscaped(value, ',')) {
    std::string_view k = raw;
    store::SortKey key;
    if (!k.empty() && k.front() == '-') {
      key.descending = true;
      k.remove_prefix(1);
    }
    key.param = std::string(k);
    if (k == "_id") {
      key.kind = SearchKind::kId;
    } else if (k == "_lastUpdated") {
      key.kind = SearchKind::kLastUpdated;
    } else {
      std::optional<SearchKind> kind;
      for (const fhir::SearchParamDef* p : IndexedParams(type)) {
        if (p->code == k) kind = KindOf(p->type);
      }
      if (!kind) {
        if (strict) return Bad("_sort", fmt::format("Cannot sort {} by '{}'", type, k));
        continue;
      }
      key.kind = *kind;
    }
    keys.push_back(std::move(key));
  }
  return keys;
}

}  // namespace

Result<ParsedSearch> ParseSearch(std::string_view type, const Params& params,
                                 const ParseOptions& options) {
  ParsedSearch out;
  store::SearchQuery& q = out.query;
  q.type = std::string(type);
  q.count = options.default_count;
  const int64_t now = options.now_us ? options.now_us : NowMicros();
  for (const auto& [name, value] : params) {
    if (name == "_count") {
      JC_ASSIGN_OR_RETURN(q.count, NonNegative(name, value, options.max_count));
    } else if (name == "_getpagesoffset") {
      JC_ASSIGN_OR_RETURN(q.offset, NonNegative(name, value, INT64_MAX / 4));
    } else if (name == "_snapshot") {
      JC_ASSIGN_OR_RETURN(int64_t s, NonNegative(name, value, INT64_MAX));
      q.at_or_before_us = s;
    } else if (name == "_sort") {
      JC_ASSIGN_OR_RETURN(q.sort, ParseSort(type, value, options.strict));
      out.applied.emplace_back(name, value);
    } else if (name == "_total") {
      if (value != "none" && value != "estimate" && value != "accurate")
        return Bad(name, "_total must be none, estimate or accurate");
      q.with_total = value != "none";
      out.applied.emplace_back(name, value);
    } else if (name == "_summary") {
      out.summary_count = value == "count";
      out.applied.emplace_back(name, value);
    } else if (IsControl(name)) {
      out.applied.emplace_back(name, value);
    } else {
      JC_ASSIGN_OR_RETURN(auto clause, ParseCriterion(type, name, value, now));
      if (!clause) {
        if (options.strict)
          return Bad(name, fmt::format("Search parameter '{}' is not supported for {}", name, type));
        continue;  // lenient: ignored, and absent from the self link
      }
      q.all_of.push_back(std::move(*clause));
      out.applied.emplace_back(name, value);
    }
  }
  if (out.summary_count) {
    q.count = 0;
    q.with_total = true;
  }
  if (!q.at_or_before_us) q.at_or_before_us = now;
  return out;
}

Result<store::SearchQuery> ParseCriteria(std::string_view type, const Params& params) {
  if (params.empty()) return Invalid("Conditional criteria are empty");
  store::SearchQuery q;
  q.type = std::string(type);
  const int64_t now = NowMicros();
  for (const auto& [name, value] : params) {
    JC_ASSIGN_OR_RETURN(auto clause, ParseCriterion(type, name, value, now));
    if (!clause)
      return Bad(name, fmt::format("Conditional criteria parameter '{}' is not supported for {}",
                                   name, type));
    q.all_of.push_back(std::move(*clause));
  }
  return q;
}

}  // namespace jiceng::search
