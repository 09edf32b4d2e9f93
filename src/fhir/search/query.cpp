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
  if (type == "composite") return SearchKind::kComposite;
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

// A criterion that parsed, or why it is not supported (the caller decides between a 400 and
// ignoring it; bad values of supported parameters are errors instead).
struct Parsed {
  std::optional<store::SearchClause> clause;
  std::string why;
};

Parsed Unsupported(std::string why) { return Parsed{std::nullopt, std::move(why)}; }

// Chains and _has nest; past this depth a query is refused rather than compiled.
constexpr int kMaxChainDepth = 4;

// The parameter `code` of `type` when the index answers it (IndexedParams).
const fhir::SearchParamDef* FindIndexed(std::string_view type, std::string_view code) {
  for (const fhir::SearchParamDef* p : IndexedParams(type)) {
    if (p->code == code) return p;
  }
  return nullptr;
}

// The types a reference parameter may point at (every resource type when it names none).
std::vector<std::string> TargetsOf(const fhir::SearchParamDef& def) {
  const auto& defs = fhir::Definitions::Get();
  std::vector<std::string> out;
  for (const std::string& t : def.target) {
    if (defs.IsResourceType(t)) out.push_back(t);
  }
  if (out.empty()) out = defs.ResourceTypes();
  return out;
}

// The component definitions of an indexed composite (the extractor only indexes composites
// whose components resolve).
std::vector<const fhir::SearchParamDef*> ComponentsOf(const fhir::SearchParamDef& def) {
  std::vector<const fhir::SearchParamDef*> out;
  for (const auto& c : def.components) {
    const fhir::SearchParamDef* d = fhir::Definitions::Get().SearchParamByUrl(c.definition);
    if (!d) return {};
    out.push_back(d);
  }
  return out;
}

Result<store::SearchValue> StringValue(std::string_view param, const std::string& part,
                                       store::StringMatch match) {
  store::SearchValue v;
  v.exact = Unescape(part);
  v.text = NormalizeString(v.exact);
  v.string_match = match;
  if (v.text.empty()) return Bad(param, fmt::format("Empty value for parameter {}", param));
  return v;
}

// One value of a component of a composite (or of :of-type) by the component's kind.
Result<store::SearchValue> ComponentValue(std::string_view param, SearchKind kind,
                                          const std::string& part, int64_t now_us) {
  switch (kind) {
    case SearchKind::kToken:
      return TokenValue(param, part);
    case SearchKind::kQuantity:
      return QuantityValue(param, part);
    case SearchKind::kDate:
      return DateValue(param, Unescape(part), now_us);
    case SearchKind::kString:
      return StringValue(param, part, store::StringMatch::kStartsWith);
    default:
      break;
  }
  return Bad(param, fmt::format("Parameter {} has a component that cannot be searched", param));
}

// identifier:of-type=typesystem|typecode|value (all three parts present).
Result<store::SearchValue> OfTypeValue(std::string_view param, const std::string& part) {
  auto parts = SplitEscaped(part, '|');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty()) {
    return Bad(param, fmt::format("Parameter {} takes system|code|value (the identifier type's "
                                  "system and code, and the identifier value)",
                                  param));
  }
  store::SearchValue type, value, v;
  type.system = parts[0];
  type.code = parts[1];
  value.code = parts[2];
  v.components = {std::move(type), std::move(value)};
  return v;
}

// token :in / :not-in: the codes of a ValueSet the server holds (the R4 value sets embedded
// with the definitions); any other ValueSet is an error naming it.
Result<store::SearchValue> InValueSetValue(std::string_view param, const std::string& part) {
  std::string url = Unescape(part);
  if (size_t bar = url.find('|'); bar != std::string::npos) url.resize(bar);  // |version
  const std::vector<std::string>* codes = fhir::Definitions::Get().ValueSetCodes(url);
  if (!codes) {
    return Bad(param,
               fmt::format("ValueSet '{}' (parameter {}) is not known to this server", url, param));
  }
  store::SearchValue v;
  v.codes = *codes;
  // An empty value set matches nothing: a code no value set holds keeps the clause well formed.
  if (v.codes.empty()) v.codes.emplace_back();
  return v;
}

Result<Parsed> ParseCriterion(std::string_view type, std::string_view name,
                              const std::string& value, int64_t now_us, int depth);

// subject.name=x, subject:Patient.name=x, encounter.subject.identifier=…: the clause holds for
// references of `subject` whose target matches the rest of the chain. Without a type modifier
// every target type that has the chained parameter is searched.
Result<Parsed> ParseChain(std::string_view type, std::string_view name, const std::string& value,
                          int64_t now_us, int depth) {
  const size_t dot = name.find('.');
  std::string_view head = name.substr(0, dot), rest = name.substr(dot + 1);
  std::string_view code = head, type_modifier;
  if (size_t colon = head.find(':'); colon != std::string_view::npos) {
    code = head.substr(0, colon);
    type_modifier = head.substr(colon + 1);
  }
  const fhir::SearchParamDef* def = FindIndexed(type, code);
  if (!def || def->type != "reference") {
    return Unsupported(fmt::format("'{}' is not a reference parameter of {}", code, type));
  }
  if (rest.empty()) return Unsupported(fmt::format("nothing is chained after '{}'", head));
  std::vector<std::string> targets = TargetsOf(*def);
  if (!type_modifier.empty()) {
    if (std::find(targets.begin(), targets.end(), type_modifier) == targets.end()) {
      return Unsupported(fmt::format("{}.{} cannot refer to '{}'", type, code, type_modifier));
    }
    targets = {std::string(type_modifier)};
  }
  store::SearchClause c;
  c.kind = SearchKind::kChain;
  c.param = std::string(code);
  std::string why;
  for (const std::string& target : targets) {
    JC_ASSIGN_OR_RETURN(Parsed inner, ParseCriterion(target, rest, value, now_us, depth + 1));
    if (!inner.clause) {
      if (why.empty()) why = std::move(inner.why);
      continue;
    }
    store::SearchLink link;
    link.type = target;
    link.all_of.push_back(std::move(*inner.clause));
    c.links.push_back(std::move(link));
  }
  if (c.links.empty()) {
    if (targets.size() > 1)
      why = fmt::format("no type {}.{} refers to has the parameter '{}'", type, code, rest);
    return Unsupported(std::move(why));
  }
  return Parsed{std::move(c), {}};
}

// _has:Observation:subject:code=x (nested: _has:A:p:_has:B:q:param=x): resources that a current
// Observation matching code=x refers to through its `subject`.
Result<Parsed> ParseHas(std::string_view type, std::string_view name, const std::string& value,
                        int64_t now_us, int depth) {
  std::string_view s = name.substr(5);  // after "_has:"
  const size_t c1 = s.find(':');
  const size_t c2 = c1 == std::string_view::npos ? c1 : s.find(':', c1 + 1);
  if (c2 == std::string_view::npos || c2 + 1 >= s.size()) {
    return Unsupported("_has takes _has:Type:reference:parameter");
  }
  std::string_view has_type = s.substr(0, c1), ref = s.substr(c1 + 1, c2 - c1 - 1);
  std::string_view rest = s.substr(c2 + 1);
  if (!fhir::Definitions::Get().IsResourceType(has_type)) {
    return Unsupported(fmt::format("'{}' is not a resource type", has_type));
  }
  const fhir::SearchParamDef* def = FindIndexed(has_type, ref);
  if (!def || def->type != "reference") {
    return Unsupported(fmt::format("'{}' is not a reference parameter of {}", ref, has_type));
  }
  std::vector<std::string> targets = TargetsOf(*def);
  if (std::find(targets.begin(), targets.end(), type) == targets.end()) {
    return Unsupported(fmt::format("{}.{} cannot refer to {}", has_type, ref, type));
  }
  JC_ASSIGN_OR_RETURN(Parsed inner, ParseCriterion(has_type, rest, value, now_us, depth + 1));
  if (!inner.clause) return inner;
  store::SearchClause c;
  c.kind = SearchKind::kReverseChain;
  c.param = std::string(ref);
  store::SearchLink link;
  link.type = std::string(has_type);
  link.all_of.push_back(std::move(*inner.clause));
  c.links.push_back(std::move(link));
  return Parsed{std::move(c), {}};
}

// Parses one criterion: a parameter of `type` with its modifier, a chain or a _has.
Result<Parsed> ParseCriterion(std::string_view type, std::string_view name,
                              const std::string& value, int64_t now_us, int depth) {
  if (depth > kMaxChainDepth) {
    return Bad(name, fmt::format("Chains and _has nest at most {} levels deep", kMaxChainDepth));
  }
  if (name.starts_with("_has:")) return ParseHas(type, name, value, now_us, depth);
  if (name.find('.') != std::string_view::npos) return ParseChain(type, name, value, now_us, depth);
  std::string code(name), modifier;
  if (size_t colon = name.find(':'); colon != std::string_view::npos) {
    code = std::string(name.substr(0, colon));
    modifier = std::string(name.substr(colon + 1));
  }
  store::SearchClause c;
  c.param = code;
  if (code == "_id") {
    c.kind = SearchKind::kId;
  } else if (code == "_lastUpdated") {
    c.kind = SearchKind::kLastUpdated;
  } else if (code == "_text" || code == "_content") {
    c.kind = SearchKind::kText;
  } else {
    const fhir::SearchParamDef* def = FindIndexed(type, code);
    if (!def) return Unsupported(fmt::format("{} has no search parameter '{}'", type, code));
    auto kind = KindOf(def->type);
    if (!kind) return Unsupported(fmt::format("parameter type '{}'", def->type));
    c.kind = *kind;
    if (c.kind == SearchKind::kComposite) {
      for (const fhir::SearchParamDef* d : ComponentsOf(*def)) {
        if (auto k = KindOf(d->type)) c.components.push_back(*k);
      }
      if (c.components.size() != 2 || def->components.size() != 2)
        return Unsupported("this composite");
    }
  }
  if (modifier == "missing") {
    if (c.kind == SearchKind::kId || c.kind == SearchKind::kLastUpdated ||
        c.kind == SearchKind::kText)
      return Unsupported(fmt::format("{}:missing", code));
    if (value != "true" && value != "false")
      return Bad(name, fmt::format("Parameter {} takes true or false", name));
    c.missing = value == "true";
    c.components.clear();
    return Parsed{std::move(c), {}};
  }
  // What the modifier turns the values into.
  enum class As { kPlain, kText, kOfType, kInValueSet, kIdentifier };
  As as = As::kPlain;
  std::string type_modifier;
  store::StringMatch match = store::StringMatch::kStartsWith;
  store::UriMatch uri_match = store::UriMatch::kEquals;
  if (!modifier.empty()) {
    bool ok = false;
    if (c.kind == SearchKind::kString) {
      ok = modifier == "exact" || modifier == "contains";
      match = modifier == "exact" ? store::StringMatch::kExact : store::StringMatch::kContains;
    } else if (c.kind == SearchKind::kToken) {
      ok = modifier == "not" || modifier == "text" || modifier == "of-type" || modifier == "in" ||
           modifier == "not-in";
      c.negate = modifier == "not" || modifier == "not-in";
      if (modifier == "text") as = As::kText;
      if (modifier == "of-type") as = As::kOfType;
      if (modifier == "in" || modifier == "not-in") as = As::kInValueSet;
    } else if (c.kind == SearchKind::kReference) {
      if (modifier == "identifier") {
        ok = true;
        as = As::kIdentifier;
      } else {
        ok = fhir::Definitions::Get().IsResourceType(modifier);
        type_modifier = modifier;
      }
    } else if (c.kind == SearchKind::kUri) {
      ok = modifier == "below" || modifier == "above";
      uri_match = modifier == "below" ? store::UriMatch::kBelow : store::UriMatch::kAbove;
    }
    if (!ok) return Unsupported(fmt::format("modifier :{} on '{}'", modifier, code));
  }
  switch (as) {
    case As::kText:
      // Token display text lives in the string index under "<code>:text".
      c.kind = SearchKind::kString;
      c.param = code + ":text";
      break;
    case As::kOfType:
      // Stored as composite rows "<code>:of-type": (type coding, identifier system/value).
      c.kind = SearchKind::kComposite;
      c.param = code + ":of-type";
      c.components = {SearchKind::kToken, SearchKind::kToken};
      break;
    case As::kIdentifier:
      // Reference.identifier lives in the token index under "<code>:identifier".
      c.kind = SearchKind::kToken;
      c.param = code + ":identifier";
      break;
    case As::kPlain:
    case As::kInValueSet:
      break;
  }
  for (const std::string& part : SplitKeep(value, ',')) {
    store::SearchValue v;
    if (as == As::kOfType) {
      JC_ASSIGN_OR_RETURN(v, OfTypeValue(name, part));
      c.any_of.push_back(std::move(v));
      continue;
    }
    if (as == As::kInValueSet) {
      JC_ASSIGN_OR_RETURN(v, InValueSetValue(name, part));
      c.any_of.push_back(std::move(v));
      continue;
    }
    switch (c.kind) {
      case SearchKind::kString: {
        JC_ASSIGN_OR_RETURN(v, StringValue(name, part, match));
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
      case SearchKind::kComposite: {
        // code$value: each component parsed as its own kind, both matched in one element.
        auto pieces = SplitKeep(part, '$');
        if (pieces.size() != c.components.size()) {
          return Bad(name, fmt::format("Parameter {} takes {} components separated by '$'", name,
                                       c.components.size()));
        }
        for (size_t k = 0; k < pieces.size(); ++k) {
          JC_ASSIGN_OR_RETURN(store::SearchValue cv,
                              ComponentValue(name, c.components[k], pieces[k], now_us));
          v.components.push_back(std::move(cv));
        }
        break;
      }
      case SearchKind::kText: {
        // Words separated by spaces, all required, each matching the start of a word.
        std::string text = Unescape(part);
        for (char& ch : text) {
          if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
        }
        for (const std::string& word : SplitEscaped(text, ' ')) {
          std::string form = FullTextForm(word);
          if (HasWordCharacter(form)) v.words.push_back(std::move(form));
        }
        if (v.words.empty())
          return Bad(name, fmt::format("Parameter {} needs at least one word", name));
        break;
      }
      case SearchKind::kChain:
      case SearchKind::kReverseChain:
        break;  // never a plain parameter's kind
    }
    c.any_of.push_back(std::move(v));
  }
  return Parsed{std::move(c), {}};
}

// Errors inside chains name the inner parameter; the caller's parameter is the one to name.
Error ForParameter(Error e, const std::string& name) {
  if (e.message.find(name) == std::string::npos)
    e.message = fmt::format("Parameter {}: {}", name, e.message);
  if (e.issues.empty()) {
    e.issues.push_back(Issue{"error", IssueTypeFor(e.code), e.message, name});
  } else {
    e.issues.front().diagnostics = e.message;
    e.issues.front().expression = name;
  }
  return e;
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
      if (const fhir::SearchParamDef* p = FindIndexed(type, k)) kind = KindOf(p->type);
      if (kind == SearchKind::kComposite) kind.reset();  // composites have no order
      if (!kind) {
        if (strict) return Bad("_sort", fmt::format("_sort: cannot sort {} by '{}'", type, k));
        continue;
      }
      key.kind = *kind;
    }
    keys.push_back(std::move(key));
  }
  return keys;
}

Error NotSupported(std::string_view type, const std::string& name, const std::string& why) {
  return Bad(name, fmt::format("Search parameter '{}' is not supported for {}{}", name, type,
                               why.empty() ? "" : " (" + why + ")"));
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
      auto parsed = ParseCriterion(type, name, value, now, 0);
      if (!parsed.ok()) return ForParameter(std::move(parsed).error(), name);
      if (!parsed->clause) {
        if (options.strict) return NotSupported(type, name, parsed->why);
        continue;  // lenient: ignored, and absent from the self link
      }
      q.all_of.push_back(std::move(*parsed->clause));
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

std::vector<const fhir::SearchParamDef*> SearchableParams(std::string_view type) {
  std::vector<const fhir::SearchParamDef*> out = IndexedParams(type);
  if (out.empty()) return out;  // not a resource type
  for (std::string_view code : {"_text", "_content"}) {
    if (const fhir::SearchParamDef* p = fhir::Definitions::Get().FindSearchParam(type, code))
      out.push_back(p);
  }
  return out;
}

Result<store::SearchQuery> ParseCriteria(std::string_view type, const Params& params) {
  if (params.empty()) return Invalid("Conditional criteria are empty");
  store::SearchQuery q;
  q.type = std::string(type);
  const int64_t now = NowMicros();
  for (const auto& [name, value] : params) {
    auto parsed = ParseCriterion(type, name, value, now, 0);
    if (!parsed.ok()) return ForParameter(std::move(parsed).error(), name);
    if (!parsed->clause) {
      return Bad(name, fmt::format("Conditional criteria parameter '{}' is not supported for {}{}",
                                   name, type, parsed->why.empty() ? "" : " (" + parsed->why + ")"));
    }
    q.all_of.push_back(std::move(*parsed->clause));
  }
  return q;
}

}  // namespace jiceng::search
