#include "fhir/search/query.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <optional>

#include "base/base64.h"
#include "base/json.h"
#include "base/time.h"
#include "base/utf8.h"
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

Error Bad(std::string_view param, std::string msg) {
  return Invalid(std::move(msg), std::string(param));
}

// Search parameters are text: a name or value that is not UTF-8 after percent-decoding (%FF)
// is refused here, the same on every backend (PostgreSQL would refuse it as a text parameter,
// SQLite would compare the bytes).
Status ValidUtf8(std::string_view name, std::string_view value) {
  if (!IsValidUtf8(name)) return Bad("", "A search parameter name is not valid UTF-8");
  if (!IsValidUtf8(value)) {
    return Bad(name, fmt::format("The value of search parameter {} is not valid UTF-8", name));
  }
  return Status::Ok();
}

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

// What parsing needs besides the query: the clock for `ap` on dates, and this server's base URL
// (absolute references under it name local resources).
struct Context {
  int64_t now_us = 0;
  std::string base_url;
  const ValueSetSource* value_sets = nullptr;  // stored ValueSets for :in / :not-in, if any
};

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

// The number of a number or quantity search value, after its prefix. R4 search, number: the
// value is a decimal, so the R4 decimal syntax -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// and nothing looser ("5.", " 5", "+5", "0x10", "inf" are 400s, not searches for something else).
Result<Decimal> SearchNumber(std::string_view param, std::string_view text) {
  std::optional<Decimal> d;
  if (text.size() <= 64) d = ParseDecimal(text);
  if (!d) {
    return Bad(param, fmt::format("Bad number '{}' for parameter {}: a search number is a FHIR "
                                  "decimal, [-]digits[.digits][e[+|-]digits], without leading "
                                  "zeros, '+' or spaces",
                                  text, param));
  }
  // Far inside the doubles' range, so that no bound below (scaled by a unit factor) overflows.
  if (Magnitude(*d) > 291) {
    return Bad(param, fmt::format("Number '{}' for parameter {} is out of range (less than 1e291 "
                                  "in magnitude)",
                                  text, param));
  }
  return *d;
}

const Decimal& One() {
  static const Decimal kOne{false, "1", 0};
  return kOne;
}

// "Approximately" (ap): within 10% of x, [0.9x, 1.1x] in order (x may be negative); the margin is
// the server's choice, R4 leaves it open.
std::pair<Decimal, Decimal> ApproximateBounds(const Decimal& x) {
  Decimal a = MultiplyDecimal(x, Decimal{false, "9", -1});
  Decimal b = MultiplyDecimal(x, Decimal{false, "11", -1});
  if (CompareDecimal(a, b) > 0) std::swap(a, b);
  return {std::move(a), std::move(b)};
}

// The comparison of a stored number with the search number x as bounds on the stored doubles.
// Units: the stored value is in a unit with factor `stored` to its canonical unit, x in one with
// factor `searched` (both One() when no unit is converted), and the comparison is of
// DecimalOf(v)·stored with x·searched, so that 70 kg finds 70000 g.
//
// R4 search, "Prefixes" for numbers: x has the implicit precision of its written digits, so
// eq/ne compare with the range [x - h, x + h) (h half a unit of the last digit: 100 is
// [99.5, 100.5), 0.4 is [0.35, 0.45)); gt/lt/ge/le/sa/eb with x itself ("ge100: greater or
// equal to exactly 100"); ap within 10% of x.
// The range is computed in exact decimal arithmetic from the text and turned into doubles with
// SmallestDoubleAtLeast, which picks for each bound the double where the comparison of the
// stored doubles' decimal values changes. So the bounds are neither widened nor narrowed by
// binary rounding: 0.4 finds a stored 0.35 ([0.35, …) includes it), and a value written with
// 17 digits (113.95967623544097) is found by its own text, whose range is only 1e-14 wide.
// What the store compares (store::SearchValue): eq/ne lo <= v < hi; gt/sa v > number (the
// largest double at most x); lt/eb v < number and ge v >= number (the smallest double at least
// x); le v <= number (the largest at most x). ap is handed over as the range [0.9x, 1.1x] with
// prefix eq, so that its bounds are exact too.
store::SearchValue NumberComparison(SearchPrefix prefix, const Decimal& x, const Decimal& searched,
                                    const Decimal& stored) {
  auto at_least = [&](const Decimal& b) { return SmallestDoubleAtLeast(b, stored, false); };
  auto above = [&](const Decimal& b) { return SmallestDoubleAtLeast(b, stored, true); };
  auto at_most = [&](const Decimal& b) {  // the largest double whose value is at most b
    return std::nextafter(above(b), -std::numeric_limits<double>::infinity());
  };
  const Decimal xs = MultiplyDecimal(x, searched);
  store::SearchValue v;
  v.prefix = prefix;
  v.number = ApproximateDouble(x);
  if (prefix == SearchPrefix::kAp) {
    const auto [a, b] = ApproximateBounds(xs);
    v.prefix = SearchPrefix::kEq;
    v.lo = at_least(a);
    v.hi = above(b);
    return v;
  }
  switch (prefix) {
    case SearchPrefix::kEq:
    case SearchPrefix::kNe: {
      Decimal h = MultiplyDecimal(HalfUnit(x), searched);
      v.hi = at_least(AddDecimal(xs, h));
      h.negative = true;
      v.lo = at_least(AddDecimal(xs, h));
      break;
    }
    case SearchPrefix::kGt:
    case SearchPrefix::kSa:
    case SearchPrefix::kLe:
      v.number = at_most(xs);
      break;
    case SearchPrefix::kLt:
    case SearchPrefix::kEb:
    case SearchPrefix::kGe:
      v.number = at_least(xs);
      break;
    default:
      break;
  }
  return v;
}

Result<store::SearchValue> NumberValue(std::string_view param, std::string raw) {
  const SearchPrefix prefix = TakePrefix(raw);
  JC_ASSIGN_OR_RETURN(Decimal x, SearchNumber(param, raw));
  return NumberComparison(prefix, x, One(), One());
}

constexpr std::string_view kUcum = "http://unitsofmeasure.org";

// The comparison of a stored quantity's canonical value (CanonicalNumber, in base units) with
// the search number x in `unit`, as NumberComparison does for raw values: the bounds are x, or
// the range around it, computed exactly in the searched unit and each mapped to base units by
// CanonicalNumber as the stored values were, so that equal quantities always compare equal
// (60 mL/h and 1 mL/min); only values closer than a double's rounding in base units (about
// 1e-16 relatively) may be taken for each other. `ap` is the range [0.9x, 1.1x] of the
// searched unit.
store::SearchValue CanonicalComparison(SearchPrefix prefix, const Decimal& x,
                                       const CanonicalUnit& unit) {
  auto to = [&](const Decimal& d) { return CanonicalNumber(d, unit.factor); };
  store::SearchValue v;
  v.canonical_code = unit.code;
  v.prefix = prefix;
  v.number = to(x);
  if (prefix == SearchPrefix::kAp) {
    const auto [a, b] = ApproximateBounds(x);
    v.prefix = SearchPrefix::kEq;
    v.lo = to(a);
    v.hi = std::nextafter(to(b), std::numeric_limits<double>::infinity());  // <= to(b)
  } else if (prefix == SearchPrefix::kEq || prefix == SearchPrefix::kNe) {
    Decimal h = HalfUnit(x);
    v.hi = to(AddDecimal(x, h));
    h.negative = true;
    v.lo = to(AddDecimal(x, h));
    // A range narrower than the doubles' spacing at its place (x written with 17 digits) may
    // round to nothing; it always holds x's own double, so that a value written out in full is
    // found by its own text in any unit.
    if (v.hi <= v.number) v.hi = std::nextafter(v.number, std::numeric_limits<double>::infinity());
  }
  return v;
}

// A quantity search value, [prefix]number[|system|code], as the alternatives (OR) the store
// compares. R4 search ("quantity"):
//   number              the number alone, any unit
//   number|system|code  system and code must match
//   number||code        "either the code (code) or the stated human unit (unit)" matches
//                       (the extractor indexes the unit as one more row, kHumanUnitSystem)
//   number|system|      any code of that system
// and the server compares commensurable UCUM units (CanonicalUnitOf: 1 L finds 1500 mL, 5
// mmol/L finds 3000 umol/L, never a mass per volume): when the searched code is a unit it
// understands (system empty or UCUM), one more alternative compares the rows of its base-unit
// code (extracted from system '' or UCUM) on their canonical values (CanonicalComparison).
// Rows of other units, other systems and human units are never converted; the unit as given is
// also compared on the raw values, exactly.
Result<std::vector<store::SearchValue>> QuantityValues(std::string_view param,
                                                       const std::string& raw) {
  auto parts = SplitEscaped(raw, '|');
  if (parts.size() != 1 && parts.size() != 3)
    return Bad(param,
               fmt::format("Bad quantity '{}' for parameter {} (number|system|code)", raw, param));
  std::string number = parts[0];
  const SearchPrefix prefix = TakePrefix(number);
  JC_ASSIGN_OR_RETURN(Decimal x, SearchNumber(param, number));
  std::vector<store::SearchValue> out;
  const std::string system = parts.size() == 3 ? parts[1] : "";
  const std::string code = parts.size() == 3 ? parts[2] : "";
  store::SearchValue v = NumberComparison(prefix, x, One(), One());
  if (!system.empty()) v.system = system;
  v.code = code;
  out.push_back(std::move(v));
  // "5.4" and "5.4||" name no unit; "5.4|system|" any code of the system.
  if (code.empty() || (!system.empty() && system != kUcum)) return out;
  if (auto unit = CanonicalUnitOf(code)) out.push_back(CanonicalComparison(prefix, x, *unit));
  return out;
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

// A reference search value. R4 search ("reference"): "[parameter]=[id]", "[Type]/[id]" name a
// resource on this server; "[parameter]=[url]" an absolute URL matches references to that URL.
// R4 References: a relative reference is relative to this server's base, so an absolute URL
// under the base ("<base>/Patient/1") names the same resource as "Patient/1" and is searched both
// ways; any other absolute URL (another server's resource, a canonical) only by the URL itself,
// never by the Type/id at its end (the extractor indexes such references by URL only).
Result<std::vector<store::SearchValue>> ReferenceValues(std::string_view param,
                                                        const std::string& raw,
                                                        const std::string& type_modifier,
                                                        const Context& ctx) {
  store::ReferenceIndexRow r;
  if (raw.empty() || !ParseReference(raw, r))
    return Bad(param, fmt::format("Bad reference '{}' for parameter {}", raw, param));
  std::vector<store::SearchValue> out;
  if (!r.url.empty()) {
    store::SearchValue v;
    v.url = r.url;
    out.push_back(std::move(v));
    store::ReferenceIndexRow local;
    if (!LocalReference(r.url, ctx.base_url, local)) return out;
    r = std::move(local);
  }
  store::SearchValue v;
  v.type = r.target_type.empty() ? type_modifier : r.target_type;
  v.code = r.target_id;
  if (!type_modifier.empty() && v.type != type_modifier)
    return Bad(param,
               fmt::format("Reference '{}' does not match the modifier :{}", raw, type_modifier));
  out.push_back(std::move(v));
  return out;
}

bool IsControl(std::string_view name) {
  return name == "_count" || name == "_getpagesoffset" || name == "_snapshot" || name == "_sort" ||
         name == "_total" || name == "_summary" || name == "_format" || name == "_pretty" ||
         name == "_elements";
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

// A clause on a parameter stored as the union of others (StoredAsUnionOf) reads their rows: for
// "combo-code:text" those of "code:text" and "component-code:text".
void ReadUnionRows(std::string_view type, std::string_view code, store::SearchClause& c) {
  const std::vector<std::string>* parts = StoredAsUnionOf(type, code);
  if (!parts) return;
  const std::string suffix = c.param.substr(std::min(code.size(), c.param.size()));
  for (const std::string& part : *parts) c.union_of.push_back(part + suffix);
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

// The component definitions of an indexed composite, in the order of its value's parts (the
// extractor only indexes composites whose components resolve).
std::vector<const fhir::SearchParamDef*> ComponentsOf(const fhir::SearchParamDef& def) {
  return CompositeComponentDefs(def);
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

// The alternatives of one component value of a composite by the component's kind (a quantity
// may be several, see QuantityValues).
Result<std::vector<store::SearchValue>> ComponentValues(std::string_view param, SearchKind kind,
                                                        const std::string& part,
                                                        const Context& ctx) {
  auto one = [](Result<store::SearchValue> v) -> Result<std::vector<store::SearchValue>> {
    if (!v.ok()) return std::move(v).error();
    return std::vector<store::SearchValue>{std::move(*v)};
  };
  switch (kind) {
    case SearchKind::kToken:
      return one(TokenValue(param, part));
    case SearchKind::kQuantity:
      return QuantityValues(param, part);
    case SearchKind::kDate:
      return one(DateValue(param, Unescape(part), ctx.now_us));
    case SearchKind::kString:
      return one(StringValue(param, part, store::StringMatch::kStartsWith));
    case SearchKind::kReference:
      return ReferenceValues(param, Unescape(part), "", ctx);
    case SearchKind::kNumber:  // the start and end of a MolecularSequence coordinate
      return one(NumberValue(param, Unescape(part)));
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

Error ForParameter(Error e, const std::string& name);

// token :in / :not-in: the codes of a ValueSet the server holds: a stored ValueSet resource
// with that url (its codes in their systems, fhir/search/value_set.h), else one of the R4 value
// sets embedded with the definitions (codes only, matched in any system); any other ValueSet is
// an error naming it.
Result<std::vector<store::SearchValue>> InValueSetValues(std::string_view param,
                                                         const std::string& part,
                                                         const Context& ctx) {
  const auto [url, version] = SplitCanonical(Unescape(part));
  std::vector<store::SearchValue> out;
  std::optional<json::object> stored;
  if (ctx.value_sets && *ctx.value_sets) {
    auto found = (*ctx.value_sets)(url, version);
    if (!found.ok()) return ForParameter(std::move(found).error(), std::string(param));
    stored = std::move(*found);
  }
  if (stored) {
    auto values = ValueSetSearchValues(*stored, *ctx.value_sets);
    if (!values.ok()) return ForParameter(std::move(values).error(), std::string(param));
    out = std::move(*values);
  } else {
    const std::vector<std::string>* codes = fhir::Definitions::Get().ValueSetCodes(url);
    if (!codes) {
      return Bad(param, fmt::format("ValueSet '{}' (parameter {}) is not known to this server", url,
                                    param));
    }
    if (!codes->empty()) {
      store::SearchValue v;
      v.codes = *codes;
      out.push_back(std::move(v));
    }
  }
  // An empty value set matches nothing: a code no value set holds keeps the clause well formed.
  if (out.empty()) {
    store::SearchValue v;
    v.codes.emplace_back();
    out.push_back(std::move(v));
  }
  return out;
}

Result<Parsed> ParseCriterion(std::string_view type, std::string_view name,
                              const std::string& value, const Context& ctx, int depth);

// subject.name=x, subject:Patient.name=x, encounter.subject.identifier=…: the clause holds for
// references of `subject` whose target matches the rest of the chain. Without a type modifier
// every target type that has the chained parameter is searched.
Result<Parsed> ParseChain(std::string_view type, std::string_view name, const std::string& value,
                          const Context& ctx, int depth) {
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
    JC_ASSIGN_OR_RETURN(Parsed inner, ParseCriterion(target, rest, value, ctx, depth + 1));
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
                        const Context& ctx, int depth) {
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
  JC_ASSIGN_OR_RETURN(Parsed inner, ParseCriterion(has_type, rest, value, ctx, depth + 1));
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
                              const std::string& value, const Context& ctx, int depth) {
  if (depth > kMaxChainDepth) {
    return Bad(name, fmt::format("Chains and _has nest at most {} levels deep", kMaxChainDepth));
  }
  if (name.starts_with("_has:")) return ParseHas(type, name, value, ctx, depth);
  if (name.find('.') != std::string_view::npos) return ParseChain(type, name, value, ctx, depth);
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
      if (c.components.size() != def->components.size() ||
          (c.components.size() != 2 && c.components.size() != 3))
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
    ReadUnionRows(type, code, c);
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
      JC_ASSIGN_OR_RETURN(std::vector<store::SearchValue> values,
                          InValueSetValues(name, part, ctx));
      for (store::SearchValue& each : values) c.any_of.push_back(std::move(each));
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
        JC_ASSIGN_OR_RETURN(v, DateValue(name, Unescape(part), ctx.now_us));
        break;
      }
      case SearchKind::kNumber: {
        JC_ASSIGN_OR_RETURN(v, NumberValue(name, Unescape(part)));
        break;
      }
      case SearchKind::kQuantity: {
        JC_ASSIGN_OR_RETURN(auto alternatives, QuantityValues(name, part));
        for (store::SearchValue& a : alternatives) c.any_of.push_back(std::move(a));
        continue;
      }
      case SearchKind::kReference: {
        JC_ASSIGN_OR_RETURN(auto alternatives,
                            ReferenceValues(name, Unescape(part), type_modifier, ctx));
        for (store::SearchValue& a : alternatives) c.any_of.push_back(std::move(a));
        continue;
      }
      case SearchKind::kUri:
        v.text = Unescape(part);
        v.uri_match = uri_match;
        if (v.text.empty()) return Bad(name, fmt::format("Empty value for parameter {}", name));
        break;
      case SearchKind::kComposite: {
        // code$value (code$number$number): each component parsed as its own kind, all matched
        // in one element.
        auto pieces = SplitKeep(part, '$');
        if (pieces.size() != c.components.size()) {
          return Bad(name, fmt::format("Parameter {} takes {} components separated by '$'", name,
                                       c.components.size()));
        }
        // Every combination of the components' alternatives (in practice: the quantity's).
        std::vector<store::SearchValue> combinations(1);
        for (size_t k = 0; k < pieces.size(); ++k) {
          JC_ASSIGN_OR_RETURN(auto alternatives,
                              ComponentValues(name, c.components[k], pieces[k], ctx));
          std::vector<store::SearchValue> next;
          for (const store::SearchValue& partial : combinations) {
            for (const store::SearchValue& a : alternatives) {
              next.push_back(partial);
              next.back().components.push_back(a);
            }
          }
          combinations = std::move(next);
        }
        for (store::SearchValue& m : combinations) c.any_of.push_back(std::move(m));
        continue;
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
  ReadUnionRows(type, code, c);
  return Parsed{std::move(c), {}};
}

// ---- composite fusion ------------------------------------------------------------------------
//
// Observation?code=X&value-quantity=geY asks of each Observation for a coding X and a value of at
// least Y. An Observation has one value, so that is exactly what one row of its
// code-value-quantity composite holds: that composite is taken over the resource itself, and its
// rows pair every coding of `code` with every value (ExtractComposite). The composite clause is
// answered from one key range of idx_composite (type, param, code1, system1, ...), where the value
// clause alone bounds no key when it names no unit, so it could only be tested resource by
// resource: at 2 million resources, counting the Observations with BMI >= 30 probed 7,194 of
// the 52,974 BMI Observations one by one (docs/benchmarks.md, issue 3).
//
// The rewrite holds for composites whose expression is the resource type itself (R4:
// Observation code-value-concept, -date, -quantity, -string; not the combo-* ones, which also
// range over Observation.component, whose codes and values may come from different elements).
// Of those, only components whose definitions extract through the same code paths as the
// separate parameters are fused: a token, then a quantity or a token. Both clauses must be plain
// (no modifier, no :missing, every token value with a code), and at most kMaxFusedValues
// combinations of their OR-values may result.
constexpr size_t kMaxFusedValues = 64;

bool PlainValueClause(const store::SearchClause& c, SearchKind kind) {
  if (c.kind != kind || c.negate || c.missing || c.any_of.empty() || !c.links.empty()) return false;
  if (kind != SearchKind::kToken) return true;
  return std::all_of(c.any_of.begin(), c.any_of.end(), [](const store::SearchValue& v) {
    return v.codes.empty() && !v.code.empty() && v.components.empty();
  });
}

// A composite over the resource itself whose components are the parameters `first` and
// `second` of the type (`second_kind`: the second component's kind in a composite clause).
struct RootComposite {
  const fhir::SearchParamDef* def = nullptr;
  std::string first, second;  // the component parameters' codes
  SearchKind second_kind = SearchKind::kToken;
};

const std::vector<RootComposite>& RootComposites(std::string_view type) {
  static std::mutex mu;
  static std::map<std::string, std::vector<RootComposite>, std::less<>> cache;
  std::lock_guard lock(mu);
  if (auto it = cache.find(type); it != cache.end()) return it->second;
  std::vector<RootComposite> out;
  for (const fhir::SearchParamDef* def : IndexedParams(type)) {
    if (def->type != "composite" || def->expression != type) continue;
    std::vector<const fhir::SearchParamDef*> parts = ComponentsOf(*def);
    if (parts.size() != 2 || parts[0]->type != "token") continue;
    if (parts[1]->type != "quantity" && parts[1]->type != "token") continue;
    if (!FindIndexed(type, parts[0]->code) || !FindIndexed(type, parts[1]->code)) continue;
    out.push_back({def, parts[0]->code, parts[1]->code,
                   parts[1]->type == "quantity" ? SearchKind::kQuantity : SearchKind::kToken});
  }
  return cache.emplace(std::string(type), std::move(out)).first->second;
}

// Rewrites each pair of a plain token clause and plain value clauses that one root composite
// answers into composite clauses (see above); the token clause goes, each value clause becomes
// one composite clause in its place. The matches are the same.
void FuseRootComposites(std::string_view type, std::vector<store::SearchClause>& all_of) {
  for (const RootComposite& rc : RootComposites(type)) {
    auto first = std::find_if(all_of.begin(), all_of.end(), [&](const store::SearchClause& c) {
      return c.param == rc.first && PlainValueClause(c, SearchKind::kToken);
    });
    if (first == all_of.end()) continue;
    bool fused = false;
    for (store::SearchClause& c : all_of) {
      if (&c == &*first || c.param != rc.second || !PlainValueClause(c, rc.second_kind)) continue;
      if (first->any_of.size() * c.any_of.size() > kMaxFusedValues) continue;
      store::SearchClause composite;
      composite.param = rc.def->code;
      composite.kind = SearchKind::kComposite;
      composite.components = {SearchKind::kToken, rc.second_kind};
      for (const store::SearchValue& t : first->any_of) {
        for (const store::SearchValue& v : c.any_of) {
          store::SearchValue both;
          both.components = {t, v};
          composite.any_of.push_back(std::move(both));
        }
      }
      c = std::move(composite);
      fused = true;
    }
    if (fused) all_of.erase(first);
  }
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
      if (const std::vector<std::string>* parts = StoredAsUnionOf(type, k)) key.union_of = *parts;
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
  q.total_limit = options.total_limit;
  const int64_t now = options.now_us ? options.now_us : NowMicros();
  const Context ctx{now, options.base_url ? *options.base_url : ServerBaseUrl(),
                    &options.value_sets};
  std::optional<std::string> cursor;
  for (const auto& [name, value] : params) {
    JC_RETURN_IF_ERROR(ValidUtf8(name, value));
    if (name == "_count") {
      JC_ASSIGN_OR_RETURN(q.count, NonNegative(name, value, options.max_count));
    } else if (name == "_getpagesoffset") {
      JC_ASSIGN_OR_RETURN(q.offset, NonNegative(name, value, INT64_MAX / 4));
    } else if (name == "_getpages") {
      // The key of the search's kept results (api/search_results): a UUID the server made.
      const bool well_formed = !value.empty() && value.size() <= 64 &&
                               std::all_of(value.begin(), value.end(), [](char ch) {
                                 return std::isxdigit(static_cast<unsigned char>(ch)) || ch == '-';
                               });
      if (!well_formed) return Bad(name, "_getpages is not a key this server made");
      out.results_key = value;
    } else if (name == "_cursor") {
      cursor = value;  // decoded once the sort keys are known
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
      q.total_limit = value == "accurate" ? 0 : options.total_limit;
      out.applied.emplace_back(name, value);
    } else if (name == "_summary") {
      out.summary_count = value == "count";
      out.applied.emplace_back(name, value);
    } else if (IsControl(name)) {
      out.applied.emplace_back(name, value);
    } else {
      auto parsed = ParseCriterion(type, name, value, ctx, 0);
      if (!parsed.ok()) return ForParameter(std::move(parsed).error(), name);
      if (!parsed->clause) {
        if (options.strict) return NotSupported(type, name, parsed->why);
        continue;  // lenient: ignored, and absent from the self link
      }
      q.all_of.push_back(std::move(*parsed->clause));
      out.applied.emplace_back(name, value);
    }
  }
  FuseRootComposites(type, q.all_of);
  out.position = q.offset;
  if (cursor) {
    JC_ASSIGN_OR_RETURN(SearchCursor at, DecodeSearchCursor(*cursor, q.sort));
    q.after = std::move(at.at);
    q.backward = at.backward;
    q.offset = 0;  // the page starts at the cursor; _getpagesoffset only numbers it
  }
  if (out.summary_count) {
    q.count = 0;
    q.with_total = true;
    q.total_limit = 0;  // the count is the answer
  }
  if (!q.at_or_before_us) q.at_or_before_us = now;
  return out;
}

std::string EncodeSearchCursor(const store::SearchAfter& after, bool backward) {
  if (after.end) return EncodeBase64(R"({"before":"end"})", true, false);
  json::array a;
  for (const store::SortValue& v : after.values) {
    std::visit(
        [&](const auto& x) {
          if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::monostate>) {
            a.emplace_back(nullptr);
          } else if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::string>) {
            a.emplace_back(json::string(x));
          } else {
            a.emplace_back(x);
          }
        },
        v);
  }
  a.emplace_back(json::string(after.id));
  if (backward)
    return EncodeBase64(json::serialize(json::object{{"before", std::move(a)}}), true, false);
  return EncodeBase64(json::serialize(a), true, false);
}

Result<SearchCursor> DecodeSearchCursor(std::string_view text,
                                        const std::vector<store::SortKey>& sort) {
  auto bad = [](std::string_view why) {
    return Bad("_cursor", fmt::format("_cursor is not a position this server made for this "
                                      "search ({}): follow the search's own links",
                                      why));
  };
  const std::optional<std::string> bytes = DecodeBase64(text);
  if (!bytes) return bad("not base64url");
  auto parsed = ParseJson(*bytes);
  if (!parsed.ok()) return bad("not a list of values");
  SearchCursor cursor;
  const json::value* list = &*parsed;
  if (const json::object* o = parsed->if_object()) {
    const json::value* before = o->if_contains("before");
    if (!before || o->size() != 1) return bad("not a list of values");
    list = before;
    cursor.backward = true;
    if (before->is_string() && before->get_string() == "end") {
      cursor.at.end = true;
      cursor.at.values.resize(sort.size());  // no value in any key
      return cursor;
    }
  }
  if (!list->is_array()) return bad("not a list of values");
  const json::array& a = list->get_array();
  if (a.size() != sort.size() + 1) return bad("its values do not match the _sort keys");
  store::SearchAfter& out = cursor.at;
  for (size_t k = 0; k < sort.size(); ++k) {
    const json::value& v = a[k];
    if (v.is_null()) {
      out.values.emplace_back();
      continue;
    }
    switch (store::SortValueIndex(sort[k].kind)) {
      case 1:
        if (!v.is_int64()) return bad("a value of the wrong kind");
        out.values.emplace_back(v.get_int64());
        break;
      case 2:
        if (!v.is_number()) return bad("a value of the wrong kind");
        out.values.emplace_back(v.to_number<double>());
        break;
      default:
        if (!v.is_string()) return bad("a value of the wrong kind");
        out.values.emplace_back(std::string(v.get_string()));
        break;
    }
  }
  if (!a.back().is_string() || a.back().get_string().empty()) return bad("no id");
  out.id = std::string(a.back().get_string());
  return cursor;
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

Result<store::SearchQuery> ParseCriteria(std::string_view type, const Params& params,
                                         const ValueSetSource& value_sets) {
  if (params.empty()) return Invalid("Conditional criteria are empty");
  store::SearchQuery q;
  q.type = std::string(type);
  const Context ctx{NowMicros(), ServerBaseUrl(), &value_sets};
  for (const auto& [name, value] : params) {
    JC_RETURN_IF_ERROR(ValidUtf8(name, value));
    auto parsed = ParseCriterion(type, name, value, ctx, 0);
    if (!parsed.ok()) return ForParameter(std::move(parsed).error(), name);
    if (!parsed->clause) {
      return Bad(name,
                 fmt::format("Conditional criteria parameter '{}' is not supported for {}{}", name,
                             type, parsed->why.empty() ? "" : " (" + parsed->why + ")"));
    }
    q.all_of.push_back(std::move(*parsed->clause));
  }
  FuseRootComposites(type, q.all_of);
  return q;
}

}  // namespace jiceng::search
