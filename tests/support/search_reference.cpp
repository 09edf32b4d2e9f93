#include "support/search_reference.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <functional>

#include "fhir/fhirpath/definitions_model.h"
#include "fhir/fhirpath/fhirpath.h"
#include "fhir/search/normalize.h"

namespace jiceng::search_ref {
namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;

// ---- decimals -------------------------------------------------------------------------------
// Unsigned integers as digit strings (most significant first, no leading zeros, "0" for zero).

std::string StripZeros(std::string s) {
  size_t i = 0;
  while (i + 1 < s.size() && s[i] == '0') ++i;
  return s.substr(i);
}

int CompareDigits(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  int c = a.compare(b);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

std::string AddDigits(const std::string& a, const std::string& b) {
  std::string out;
  int carry = 0;
  for (size_t i = 0; i < std::max(a.size(), b.size()) || carry; ++i) {
    int d = carry;
    if (i < a.size()) d += a[a.size() - 1 - i] - '0';
    if (i < b.size()) d += b[b.size() - 1 - i] - '0';
    out.insert(out.begin(), static_cast<char>('0' + d % 10));
    carry = d / 10;
  }
  return StripZeros(out);
}

// a - b for a >= b.
std::string SubtractDigits(const std::string& a, const std::string& b) {
  std::string out;
  int borrow = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    int d = (a[a.size() - 1 - i] - '0') - borrow - (i < b.size() ? b[b.size() - 1 - i] - '0' : 0);
    borrow = d < 0;
    out.insert(out.begin(), static_cast<char>('0' + (d + 10) % 10));
  }
  return StripZeros(out);
}

std::string MultiplyDigits(const std::string& a, const std::string& b) {
  std::vector<int> acc(a.size() + b.size(), 0);
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < b.size(); ++j) {
      acc[i + j + 1] += (a[i] - '0') * (b[j] - '0');
    }
  }
  for (size_t k = acc.size() - 1; k > 0; --k) {
    acc[k - 1] += acc[k] / 10;
    acc[k] %= 10;
  }
  std::string out;
  for (int d : acc) out += static_cast<char>('0' + d);
  return StripZeros(out);
}

bool IsZero(const Decimal& d) { return d.digits.empty() || d.digits == "0"; }

// The digits of `d` scaled to exponent `e` (e <= d.exponent).
std::string ScaledDigits(const Decimal& d, int e) {
  if (IsZero(d)) return "0";
  return d.digits + std::string(static_cast<size_t>(d.exponent - e), '0');
}

}  // namespace

Decimal AddDecimal(const Decimal& a, const Decimal& b) {
  const int e = std::min(a.exponent, b.exponent);
  const std::string x = ScaledDigits(a, e), y = ScaledDigits(b, e);
  Decimal out;
  out.exponent = e;
  if (a.negative == b.negative || IsZero(a) || IsZero(b)) {
    out.digits = AddDigits(x, y);
    out.negative = IsZero(a) ? b.negative : a.negative;
  } else if (CompareDigits(x, y) >= 0) {
    out.digits = SubtractDigits(x, y);
    out.negative = a.negative;
  } else {
    out.digits = SubtractDigits(y, x);
    out.negative = b.negative;
  }
  if (IsZero(out)) out.negative = false;
  return out;
}

Decimal MultiplyDecimal(const Decimal& a, const Decimal& b) {
  Decimal out;
  out.digits = MultiplyDigits(IsZero(a) ? "0" : a.digits, IsZero(b) ? "0" : b.digits);
  out.exponent = a.exponent + b.exponent;
  out.negative = !IsZero(out) && a.negative != b.negative;
  return out;
}

Decimal HalfUnit(const Decimal& d) { return Decimal{false, "5", d.exponent - 1}; }

namespace {

Decimal Add(const Decimal& a, const Decimal& b) { return AddDecimal(a, b); }
Decimal Multiply(const Decimal& a, const Decimal& b) { return MultiplyDecimal(a, b); }

Decimal Negate(Decimal d) {
  if (!IsZero(d)) d.negative = !d.negative;
  return d;
}

// ---- dates ----------------------------------------------------------------------------------

// Days from 1970-01-01 to a proleptic Gregorian date (the usual era-based computation).
int64_t CivilToDays(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

std::optional<int> Digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

// ---- parsing helpers ------------------------------------------------------------------------

// Splits on unescaped `sep`; escapes are kept (a later split on another separator needs them).
std::vector<std::string> SplitUnescaped(std::string_view s, char sep) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      parts.back() += s.substr(i, 2);
      ++i;
    } else if (s[i] == sep) {
      parts.emplace_back();
    } else {
      parts.back() += s[i];
    }
  }
  return parts;
}

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out += s[i];
  }
  return out;
}

enum class Prefix { kEq, kNe, kGt, kLt, kGe, kLe, kSa, kEb, kAp };

// "ge2024" → kGe and "2024"; no prefix → kEq.
Prefix TakePrefix(std::string& v) {
  static const std::pair<std::string_view, Prefix> kPrefixes[] = {
      {"eq", Prefix::kEq}, {"ne", Prefix::kNe}, {"gt", Prefix::kGt},
      {"lt", Prefix::kLt}, {"ge", Prefix::kGe}, {"le", Prefix::kLe},
      {"sa", Prefix::kSa}, {"eb", Prefix::kEb}, {"ap", Prefix::kAp}};
  for (const auto& [text, p] : kPrefixes) {
    if (v.starts_with(text)) {
      v.erase(0, 2);
      return p;
    }
  }
  return Prefix::kEq;
}

// A reference as written in a resource or a search value.
std::optional<ReferenceValue> ParseReferenceText(std::string_view text) {
  if (text.empty() || text.front() == '#') return std::nullopt;
  const auto& defs = fhir::Definitions::Get();
  ReferenceValue r;
  std::string_view path = text;
  const bool absolute = text.find("://") != std::string_view::npos || text.starts_with("urn:");
  if (absolute) {
    path = text.substr(0, text.find('|'));  // canonical|version names the canonical
    r.url = std::string(path);
  }
  if (size_t h = path.find("/_history/"); h != std::string_view::npos) path = path.substr(0, h);
  std::vector<std::string_view> segments;
  for (size_t start = 0;;) {
    size_t slash = path.find('/', start);
    segments.push_back(path.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (segments.size() >= 2 && defs.IsResourceType(segments[segments.size() - 2]) &&
      !segments.back().empty() && (absolute || segments.size() == 2)) {
    r.type = std::string(segments[segments.size() - 2]);
    r.id = std::string(segments.back());
  } else if (!absolute && segments.size() == 1) {
    r.id = std::string(segments[0]);
  } else if (!absolute) {
    return std::nullopt;
  }
  return r;
}

// ---- values of FHIRPath items ---------------------------------------------------------------

const json::object* ObjectOf(const fhirpath::Item& i) {
  if (i.is_node() && i.json() && i.json()->is_object()) return &i.json()->get_object();
  return nullptr;
}

std::optional<std::string> StringOf(const fhirpath::Item& i) {
  if (i.is_node()) {
    if (i.json() && i.json()->is_string()) return std::string(i.json()->get_string());
    return std::nullopt;
  }
  if (i.kind() == fhirpath::Item::Kind::kString) return i.string();
  return std::nullopt;
}

std::optional<std::string> Member(const json::object& o, std::string_view key) {
  auto s = FindString(o, key);
  if (!s || s->empty()) return std::nullopt;
  return std::string(*s);
}

std::vector<std::string> StringMembers(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  const json::value* v = Find(o, key);
  if (!v) return out;
  if (v->is_string()) out.emplace_back(v->get_string());
  if (v->is_array()) {
    for (const json::value& e : v->get_array()) {
      if (e.is_string()) out.emplace_back(e.get_string());
    }
  }
  return out;
}

std::optional<Decimal> NumberOf(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return ParseDecimal(std::to_string(v->get_int64()));
  if (v->is_uint64()) return ParseDecimal(std::to_string(v->get_uint64()));
  if (v->is_double()) return DecimalFromDouble(v->get_double());
  return std::nullopt;
}

Token MakeToken(const json::object& o, std::string_view system_key, std::string_view code_key) {
  Token t;
  t.system = Member(o, system_key);
  t.code = Member(o, code_key).value_or("");
  return t;
}

void AddToken(Values& out, Token t) {
  if (t.code.empty() && !t.system) return;  // nothing a token search could name
  out.tokens.push_back(std::move(t));
}

void AddText(Values& out, std::optional<std::string> text) {
  if (text) out.texts.push_back(std::move(*text));
}

void AddCoding(Values& out, const json::object& coding) {
  AddToken(out, MakeToken(coding, "system", "code"));
  AddText(out, Member(coding, "display"));
}

void TokenValues(const fhirpath::Item& i, Values& out) {
  if (i.is_node() && i.json() && i.json()->is_bool()) {
    return AddToken(out, Token{std::nullopt, i.json()->get_bool() ? "true" : "false"});
  }
  if (!i.is_node() && i.kind() == fhirpath::Item::Kind::kBoolean) {
    return AddToken(out, Token{std::nullopt, i.boolean() ? "true" : "false"});
  }
  if (auto s = StringOf(i)) {
    if (!s->empty()) AddToken(out, Token{std::nullopt, *s});
    return;
  }
  const json::object* o = ObjectOf(i);
  if (!o) return;
  const std::string_view type = i.FhirType();
  if (type == "Coding") {
    AddCoding(out, *o);
  } else if (type == "CodeableConcept") {
    if (const json::array* codings = FindArray(*o, "coding")) {
      for (const json::value& c : *codings) {
        if (c.is_object()) AddCoding(out, c.get_object());
      }
    }
    AddText(out, Member(*o, "text"));
  } else if (type == "Identifier") {
    Token value = MakeToken(*o, "system", "value");
    AddToken(out, value);
    if (const json::object* t = FindObject(*o, "type")) {
      AddText(out, Member(*t, "text"));
      if (const json::array* codings = FindArray(*t, "coding"); codings && !value.code.empty()) {
        for (const json::value& c : *codings) {
          if (!c.is_object()) continue;
          Token coding = MakeToken(c.get_object(), "system", "code");
          if (!coding.code.empty()) out.identifier_types.push_back({coding, value.code});
        }
      }
    }
  } else if (type == "ContactPoint") {
    // ContactPoint.system (phone, email) is not a URI: a ContactPoint matches by value only.
    AddToken(out, Token{std::nullopt, Member(*o, "value").value_or("")});
  }
}

void StringValues(const fhirpath::Item& i, Values& out) {
  if (auto s = StringOf(i)) {
    if (!s->empty()) out.strings.push_back(*s);
    return;
  }
  const json::object* o = ObjectOf(i);
  if (!o) return;
  std::vector<std::string_view> keys;
  if (i.FhirType() == "HumanName") keys = {"family", "given", "prefix", "suffix", "text"};
  if (i.FhirType() == "Address") {
    keys = {"line", "city", "district", "state", "postalCode", "country", "text"};
  }
  for (std::string_view k : keys) {
    for (std::string& s : StringMembers(*o, k)) {
      if (!s.empty()) out.strings.push_back(std::move(s));
    }
  }
  // A Chinese name also as written: the family name (in CJK script) then the given names.
  if (i.FhirType() == "HumanName") {
    const std::vector<std::string> family = StringMembers(*o, "family");
    const std::vector<std::string> given = StringMembers(*o, "given");
    if (family.size() == 1 && search::HasCjk(family[0]) && !given.empty()) {
      std::string whole = family[0];
      for (const std::string& g : given) whole += g;
      if (whole != family[0]) out.strings.push_back(std::move(whole));
    }
  }
}

void AddPeriod(const json::object& o, int offset, Values& out) {
  auto start = Member(o, "start"), end = Member(o, "end");
  if (!start && !end) return;
  DateRange r{INT64_MIN, INT64_MAX};
  if (start) {
    auto s = ParseDateRange(*start, offset);
    if (!s) return;
    r.start = s->start;
  }
  if (end) {
    auto e = ParseDateRange(*end, offset);
    if (!e) return;
    r.end = e->end;
  }
  out.dates.push_back(r);
}

void DateValues(const fhirpath::Item& i, int offset, Values& out) {
  std::optional<std::string> text = StringOf(i);
  if (!text && !i.is_node() &&
      (i.kind() == fhirpath::Item::Kind::kDate || i.kind() == fhirpath::Item::Kind::kDateTime)) {
    text = i.ToText();
  }
  if (text) {
    if (auto r = ParseDateRange(*text, offset)) out.dates.push_back(*r);
    return;
  }
  const json::object* o = ObjectOf(i);
  if (!o) return;
  if (i.FhirType() == "Period") {
    AddPeriod(*o, offset, out);
  } else if (i.FhirType() == "Timing") {
    for (const std::string& event : StringMembers(*o, "event")) {
      if (auto r = ParseDateRange(event, offset)) out.dates.push_back(*r);
    }
    if (const json::object* repeat = FindObject(*o, "repeat")) {
      if (const json::object* bounds = FindObject(*repeat, "boundsPeriod")) {
        AddPeriod(*bounds, offset, out);
      }
    }
  }
}

void NumberValues(const fhirpath::Item& i, Values& out) {
  if (i.is_node()) {
    if (auto d = NumberOf(i.json())) out.numbers.push_back(*d);
  } else if (i.kind() == fhirpath::Item::Kind::kInteger) {
    out.numbers.push_back(*ParseDecimal(std::to_string(i.integer())));
  } else if (i.kind() == fhirpath::Item::Kind::kDecimal) {
    out.numbers.push_back(DecimalFromDouble(i.decimal().value));
  }
}

void QuantityValues(const fhirpath::Item& i, Values& out) {
  const json::object* o = ObjectOf(i);
  if (!o) return;
  auto value = NumberOf(Find(*o, "value"));
  if (!value) return;
  QuantityValue q;
  q.value = *value;
  if (i.FhirType() == "Money") {
    q.system = "urn:iso:std:iso:4217";
    q.code = Member(*o, "currency").value_or("");
  } else {
    q.system = Member(*o, "system").value_or("");
    q.code = Member(*o, "code").value_or("");
    q.unit = Member(*o, "unit").value_or("");
  }
  out.quantities.push_back(std::move(q));
}

void ReferenceValues(const fhirpath::Item& i, Values& out) {
  std::optional<std::string> text = StringOf(i);  // canonical and uri targets
  if (const json::object* o = ObjectOf(i)) {
    if (const json::object* id = FindObject(*o, "identifier")) {
      Token t = MakeToken(*id, "system", "value");
      if (!t.code.empty()) out.reference_identifiers.push_back(std::move(t));
    }
    text = Member(*o, "reference");
  }
  if (!text) return;
  if (auto r = ParseReferenceText(*text)) out.references.push_back(std::move(*r));
}

void UriValues(const fhirpath::Item& i, Values& out) {
  if (auto s = StringOf(i); s && !s->empty()) out.uris.push_back(*s);
}

void AddItemValues(const fhirpath::Item& i, std::string_view kind, int offset, Values& out) {
  if (kind == "string")
    StringValues(i, out);
  else if (kind == "token")
    TokenValues(i, out);
  else if (kind == "date")
    DateValues(i, offset, out);
  else if (kind == "number")
    NumberValues(i, out);
  else if (kind == "quantity")
    QuantityValues(i, out);
  else if (kind == "reference")
    ReferenceValues(i, out);
  else if (kind == "uri")
    UriValues(i, out);
}

// The definition of a composite's k-th component. R4's DocumentReference-relationship lists
// relatesto (a reference) beside the expression `code` and relation (a token) beside `target`;
// it is read as the expressions say: relation for `code`, relatesto for `target`.
const fhir::SearchParamDef* ComponentDef(const fhir::SearchParamDef& p, size_t k) {
  std::string_view url = p.components[k].definition;
  if (p.url == "http://hl7.org/fhir/SearchParameter/DocumentReference-relationship" &&
      p.components.size() == 2) {
    url = p.components[1 - k].definition;
  }
  return fhir::Definitions::Get().SearchParamByUrl(url);
}

bool SupportedKind(std::string_view kind) {
  return kind == "string" || kind == "token" || kind == "date" || kind == "number" ||
         kind == "quantity" || kind == "reference" || kind == "uri" || kind == "composite";
}

// ---- search values --------------------------------------------------------------------------

// One parsed OR-alternative of a criterion.
struct SearchValue {
  Prefix prefix = Prefix::kEq;
  std::string text;                   // string, uri, token :text (as written, unescaped)
  std::optional<std::string> system;  // token: nullopt any system; "" no system
  bool any_code = false;              // token "system|"
  std::string code;                   // token code, reference id, quantity code
  std::string type;                   // reference type
  std::string url;                    // absolute reference
  DateRange range;                    // date
  Decimal number;                     // number / quantity value as written
  bool has_unit = false;              // quantity: number|system|code given
  std::string unit_system;            // quantity system as given ("" none)
  Token of_type;                      // token :of-type
  const std::vector<std::string>* value_set = nullptr;  // token :in / :not-in
  std::vector<SearchValue> components;                  // composite
};

Error Bad(std::string_view name, std::string message) {
  return Invalid(std::move(message), std::string(name));
}

Result<SearchValue> ParseToken(std::string_view name, const std::string& raw) {
  std::vector<std::string> parts = SplitUnescaped(raw, '|');
  SearchValue v;
  if (parts.size() == 1) {
    v.code = Unescape(parts[0]);
    if (v.code.empty()) return Bad(name, "empty token");
  } else if (parts.size() == 2) {
    v.system = Unescape(parts[0]);
    v.code = Unescape(parts[1]);
    v.any_code = v.code.empty();
    if (v.system->empty() && v.code.empty()) return Bad(name, "empty token '|'");
  } else {
    return Bad(name, "token with more than two parts");
  }
  return v;
}

Result<SearchValue> ParseNumber(std::string_view name, const std::string& raw) {
  SearchValue v;
  std::string text = Unescape(raw);
  v.prefix = TakePrefix(text);
  auto d = ParseDecimal(text);
  if (!d) return Bad(name, fmt::format("bad number '{}'", raw));
  v.number = *d;
  return v;
}

Result<SearchValue> ParseValue(std::string_view name, std::string_view kind,
                               std::string_view modifier, const std::string& raw,
                               const ReferenceOptions& options) {
  SearchValue v;
  if (kind == "string") {
    v.text = Unescape(raw);
    if (search::NormalizeString(v.text).empty()) return Bad(name, "empty string");
    return v;
  }
  if (kind == "token") {
    if (modifier == "text") {
      v.text = Unescape(raw);
      if (search::NormalizeString(v.text).empty()) return Bad(name, "empty text");
      return v;
    }
    if (modifier == "in" || modifier == "not-in") {
      v.value_set = fhir::Definitions::Get().ValueSetCodes(Unescape(raw));
      if (!v.value_set) return Bad(name, "value set not held");
      return v;
    }
    if (modifier == "of-type") {
      std::vector<std::string> parts = SplitUnescaped(raw, '|');
      if (parts.size() != 3) return Bad(name, ":of-type takes system|code|value");
      v.of_type.system = Unescape(parts[0]);
      v.of_type.code = Unescape(parts[1]);
      v.code = Unescape(parts[2]);
      if (v.of_type.code.empty() || v.code.empty()) return Bad(name, "empty :of-type part");
      return v;
    }
    return ParseToken(name, raw);
  }
  if (kind == "date") {
    std::string text = Unescape(raw);
    v.prefix = TakePrefix(text);
    auto r = ParseDateRange(text, options.default_offset_minutes);
    if (!r) return Bad(name, fmt::format("bad date '{}'", raw));
    v.range = *r;
    if (v.prefix == Prefix::kAp) {
      const int64_t distance =
          options.now_us > r->start ? options.now_us - r->start : r->start - options.now_us;
      const int64_t w = std::max(distance / 10, kMicrosPerDay);
      v.range.start -= w;
      v.range.end += w;
    }
    return v;
  }
  if (kind == "number") return ParseNumber(name, raw);
  if (kind == "quantity") {
    std::vector<std::string> parts = SplitUnescaped(raw, '|');
    if (parts.size() != 1 && parts.size() != 3)
      return Bad(name, "quantity takes number|system|code");
    JC_ASSIGN_OR_RETURN(v, ParseNumber(name, parts[0]));
    if (parts.size() == 3) {
      v.unit_system = Unescape(parts[1]);
      v.code = Unescape(parts[2]);
      v.has_unit = !v.unit_system.empty() || !v.code.empty();  // "5.4||" names no unit
    }
    return v;
  }
  if (kind == "reference") {
    if (modifier == "identifier") return ParseToken(name, raw);
    std::string text = Unescape(raw);
    auto r = ParseReferenceText(text);
    if (!r) return Bad(name, fmt::format("bad reference '{}'", raw));
    if (!r->url.empty()) {
      v.url = r->url;
      return v;
    }
    v.type = r->type;
    v.code = r->id;
    if (!modifier.empty()) {
      if (!v.type.empty() && v.type != modifier)
        return Bad(name, "reference type differs from :Type");
      v.type = std::string(modifier);
    }
    return v;
  }
  if (kind == "uri") {
    v.text = Unescape(raw);
    if (v.text.empty()) return Bad(name, "empty uri");
    return v;
  }
  return Bad(name, "unsupported parameter type");
}

// ---- matching -------------------------------------------------------------------------------

bool MatchNumber(Prefix p, const Decimal& v, const Decimal& x) {
  const Decimal h = HalfUnit(x);
  const bool eq = CompareDecimal(v, Add(x, Negate(h))) >= 0 && CompareDecimal(v, Add(x, h)) < 0;
  switch (p) {
    case Prefix::kEq:
      return eq;
    case Prefix::kNe:
      return !eq;
    case Prefix::kGt:
    case Prefix::kSa:
      return CompareDecimal(v, x) > 0;
    case Prefix::kLt:
    case Prefix::kEb:
      return CompareDecimal(v, x) < 0;
    case Prefix::kGe:
      return CompareDecimal(v, x) >= 0;
    case Prefix::kLe:
      return CompareDecimal(v, x) <= 0;
    case Prefix::kAp: {
      Decimal lo = Multiply(x, *ParseDecimal("0.9")), hi = Multiply(x, *ParseDecimal("1.1"));
      if (CompareDecimal(lo, hi) > 0) std::swap(lo, hi);
      return CompareDecimal(v, lo) >= 0 && CompareDecimal(v, hi) <= 0;
    }
  }
  return false;
}

// A number compared in another unit: v·fv against the search value x·fx (both factors > 0).
bool MatchScaled(Prefix p, const Decimal& v, const Decimal& fv, const Decimal& x,
                 const Decimal& fx) {
  const Decimal vs = Multiply(v, fv), xs = Multiply(x, fx);
  const Decimal h = Multiply(HalfUnit(x), fx);
  if (p == Prefix::kEq || p == Prefix::kNe) {
    const bool eq =
        CompareDecimal(vs, Add(xs, Negate(h))) >= 0 && CompareDecimal(vs, Add(xs, h)) < 0;
    return p == Prefix::kEq ? eq : !eq;
  }
  // The other prefixes do not use the precision of x: compare against x itself.
  return MatchNumber(p, vs, xs);
}

bool MatchDate(Prefix p, const DateRange& stored, const DateRange& search) {
  const int64_t s = stored.start, e = stored.end, lo = search.start, hi = search.end;
  const bool eq = lo <= s && e <= hi;
  switch (p) {
    case Prefix::kEq:
      return eq;
    case Prefix::kNe:
      return !eq;
    case Prefix::kGt:
      return e > hi;
    case Prefix::kLt:
      return s < lo;
    case Prefix::kGe:
      return e > hi || eq;
    case Prefix::kLe:
      return s < lo || eq;
    case Prefix::kSa:
      return s >= hi;
    case Prefix::kEb:
      return e <= lo;
    case Prefix::kAp:
      return s < hi && e > lo;  // the range was widened when parsed
  }
  return false;
}

bool MatchToken(const SearchValue& v, const Token& t) {
  if (!v.system) return t.code == v.code;
  if (v.system->empty()) return !t.system && t.code == v.code;
  if (t.system != v.system) return false;
  return v.any_code || t.code == v.code;
}

// The base-unit code and the exact factor (search::CanonicalUnitOf), for UCUM codes the server
// converts.
std::optional<search::CanonicalUnit> Canonical(std::string_view system, std::string_view code) {
  if (!system.empty() && system != "http://unitsofmeasure.org") return std::nullopt;
  return search::CanonicalUnitOf(code);
}

// m × 10^e, the decimal part of a factor.
Decimal DecimalPart(const ucum::Factor& f) {
  return *ParseDecimal(std::to_string(f.mantissa) + "e" + std::to_string(f.exponent));
}

bool MatchQuantity(const SearchValue& v, const QuantityValue& q) {
  if (!v.has_unit) return MatchNumber(v.prefix, q.value, v.number);
  // The unit as given: with a system, system and code; without, the code or the human unit.
  bool same_unit = v.unit_system.empty() ? (q.code == v.code || q.unit == v.code)
                                         : (q.system == v.unit_system && q.code == v.code);
  if (v.code.empty()) same_unit = q.system == v.unit_system;  // "5.4|system|"
  if (same_unit && MatchNumber(v.prefix, q.value, v.number)) return true;
  // Commensurable UCUM units compare on values in base units (70 kg finds 70000 g): the stored
  // q·(ms/ds) against the searched x·(mx/dx), both sides multiplied by ds·dx to stay decimal.
  auto search_unit = Canonical(v.unit_system, v.code);
  auto stored_unit = Canonical(q.system, q.code);
  if (search_unit && stored_unit && search_unit->code == stored_unit->code) {
    const Decimal stored_factor =
        Multiply(DecimalPart(stored_unit->factor),
                 *ParseDecimal(std::to_string(search_unit->factor.denominator)));
    const Decimal search_factor =
        Multiply(DecimalPart(search_unit->factor),
                 *ParseDecimal(std::to_string(stored_unit->factor.denominator)));
    return MatchScaled(v.prefix, q.value, stored_factor, v.number, search_factor);
  }
  return false;
}

bool MatchReference(const SearchValue& v, const ReferenceValue& r) {
  if (!v.url.empty()) return r.url == v.url;
  // Type/id and id name resources on this server: relative references only.
  if (!r.url.empty()) return false;
  return r.id == v.code && (v.type.empty() || r.type == v.type);
}

bool StartsWithNormalized(const std::string& stored, const std::string& search) {
  return search::NormalizeString(stored).starts_with(search::NormalizeString(search));
}

// Does one OR-alternative match the values of a parameter on one resource?
bool MatchValue(const SearchValue& v, std::string_view kind, std::string_view modifier,
                const Values& values) {
  if (kind == "string") {
    return std::any_of(values.strings.begin(), values.strings.end(), [&](const std::string& s) {
      if (modifier == "exact") return s == v.text;
      if (modifier == "contains") {
        return search::NormalizeString(s).find(search::NormalizeString(v.text)) !=
               std::string::npos;
      }
      return StartsWithNormalized(s, v.text);
    });
  }
  if (kind == "token") {
    if (modifier == "text") {
      return std::any_of(values.texts.begin(), values.texts.end(),
                         [&](const std::string& t) { return StartsWithNormalized(t, v.text); });
    }
    if (modifier == "of-type") {
      return std::any_of(values.identifier_types.begin(), values.identifier_types.end(),
                         [&](const IdentifierType& it) {
                           return it.type.system.value_or("") == v.of_type.system.value_or("") &&
                                  it.type.code == v.of_type.code && it.value == v.code;
                         });
    }
    if (modifier == "in" || modifier == "not-in") {
      return std::any_of(values.tokens.begin(), values.tokens.end(), [&](const Token& t) {
        return std::find(v.value_set->begin(), v.value_set->end(), t.code) != v.value_set->end();
      });
    }
    return std::any_of(values.tokens.begin(), values.tokens.end(),
                       [&](const Token& t) { return MatchToken(v, t); });
  }
  if (kind == "date") {
    return std::any_of(values.dates.begin(), values.dates.end(),
                       [&](const DateRange& r) { return MatchDate(v.prefix, r, v.range); });
  }
  if (kind == "number") {
    return std::any_of(values.numbers.begin(), values.numbers.end(),
                       [&](const Decimal& d) { return MatchNumber(v.prefix, d, v.number); });
  }
  if (kind == "quantity") {
    return std::any_of(values.quantities.begin(), values.quantities.end(),
                       [&](const QuantityValue& q) { return MatchQuantity(v, q); });
  }
  if (kind == "reference") {
    if (modifier == "identifier") {
      return std::any_of(values.reference_identifiers.begin(), values.reference_identifiers.end(),
                         [&](const Token& t) { return MatchToken(v, t); });
    }
    return std::any_of(values.references.begin(), values.references.end(),
                       [&](const ReferenceValue& r) { return MatchReference(v, r); });
  }
  if (kind == "uri") {
    return std::any_of(values.uris.begin(), values.uris.end(), [&](const std::string& u) {
      if (modifier == "below") return u.starts_with(v.text);
      if (modifier == "above") return v.text.starts_with(u);
      return u == v.text;
    });
  }
  return false;
}

// The sort key of one resource for one parameter: its lowest value ascending, highest
// descending. Comparable within one parameter kind only.
struct SortValue {
  bool present = false;
  std::string text;     // string (normalised), token code, reference id, uri, _id
  int64_t instant = 0;  // date, _lastUpdated
  Decimal number;       // number, quantity
};

int CompareSortValues(const SortValue& a, const SortValue& b, std::string_view kind) {
  if (kind == "date" || kind == "_lastUpdated") {
    return a.instant < b.instant ? -1 : a.instant > b.instant ? 1 : 0;
  }
  if (kind == "number" || kind == "quantity") return CompareDecimal(a.number, b.number);
  int c = a.text.compare(b.text);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

SortValue SortValueOf(const Values& values, std::string_view kind, bool descending) {
  std::vector<SortValue> all;
  auto add = [&](auto fill) {
    SortValue s;
    s.present = true;
    fill(s);
    all.push_back(std::move(s));
  };
  if (kind == "string") {
    for (const auto& v : values.strings) {
      add([&](SortValue& s) { s.text = search::NormalizeString(v); });
    }
  } else if (kind == "token") {
    for (const auto& t : values.tokens) {
      if (!t.code.empty()) add([&](SortValue& s) { s.text = t.code; });
    }
  } else if (kind == "date") {
    for (const auto& r : values.dates) {
      add([&](SortValue& s) { s.instant = descending ? r.end : r.start; });
    }
  } else if (kind == "number") {
    for (const auto& n : values.numbers) add([&](SortValue& s) { s.number = n; });
  } else if (kind == "quantity") {
    for (const auto& q : values.quantities) add([&](SortValue& s) { s.number = q.value; });
  } else if (kind == "reference") {
    // An absolute URL names no resource of this server, so no id either (as it matches no id
    // search): it sorts as the empty id, like a URL without a Type/id at its end.
    for (const auto& r : values.references) {
      add([&](SortValue& s) { s.text = r.url.empty() ? r.id : std::string(); });
    }
  } else if (kind == "uri") {
    for (const auto& u : values.uris) add([&](SortValue& s) { s.text = u; });
  }
  SortValue best;
  for (const SortValue& s : all) {
    if (!best.present) {
      best = s;
      continue;
    }
    const int c = CompareSortValues(s, best, kind);
    if (descending ? c > 0 : c < 0) best = s;
  }
  return best;
}

}  // namespace

// ---- Decimal --------------------------------------------------------------------------------

std::optional<Decimal> ParseDecimal(std::string_view text) {
  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?: the R4 decimal, as FHIR decimals and search
  // numbers are written (no '+', no leading zeros).
  size_t i = 0;
  Decimal d;
  if (i < text.size() && text[i] == '-') d.negative = text[i++] == '-';
  std::string digits;
  size_t integer_digits = 0, fraction_digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    digits += text[i++];
    ++integer_digits;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      digits += text[i++];
      ++fraction_digits;
    }
    if (fraction_digits == 0) return std::nullopt;
  }
  if (integer_digits == 0 || (integer_digits > 1 && digits[0] == '0')) return std::nullopt;
  int exponent = -static_cast<int>(fraction_digits);
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool negative = false;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
    if (i == text.size()) return std::nullopt;
    int e = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      e = e * 10 + (text[i++] - '0');
      if (e > 400) return std::nullopt;
    }
    exponent += negative ? -e : e;
  }
  if (i != text.size()) return std::nullopt;
  d.digits = StripZeros(digits);
  d.exponent = exponent;
  if (IsZero(d)) d.negative = false;
  return d;
}

Decimal DecimalFromDouble(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return *ParseDecimal(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
}

int CompareDecimal(const Decimal& a, const Decimal& b) {
  const bool az = IsZero(a), bz = IsZero(b);
  if (az && bz) return 0;
  const bool an = !az && a.negative, bn = !bz && b.negative;
  if (an != bn) return an ? -1 : 1;
  const int e = std::min(a.exponent, b.exponent);
  const int magnitude = CompareDigits(ScaledDigits(a, e), ScaledDigits(b, e));
  return an ? -magnitude : magnitude;
}

std::string FormatDecimal(const Decimal& d) {
  std::string digits = IsZero(d) ? "0" : d.digits;
  std::string out = d.negative ? "-" : "";
  if (d.exponent >= 0) return out + digits + std::string(static_cast<size_t>(d.exponent), '0');
  const size_t frac = static_cast<size_t>(-d.exponent);
  if (digits.size() <= frac) digits = std::string(frac - digits.size() + 1, '0') + digits;
  return out + digits.substr(0, digits.size() - frac) + "." + digits.substr(digits.size() - frac);
}

// ---- dates ----------------------------------------------------------------------------------

std::optional<DateRange> ParseDateRange(std::string_view s, int default_offset_minutes) {
  // YYYY[-MM[-DD[Thh:mm:ss[.fff…][Z|(+|-)hh:mm]]]]
  auto year = Digits(s, 0, 4);
  if (!year || *year == 0) return std::nullopt;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int64_t micros = 0, unit = 0;  // unit: the length of the last written component, in µs
  int end_year = *year + 1, end_month = 1;
  bool whole_days = true;  // year, month or day precision
  size_t pos = 4;
  if (s.size() > pos) {
    if (s[pos] != '-') return std::nullopt;
    auto m = Digits(s, pos + 1, 2);
    if (!m || *m < 1 || *m > 12) return std::nullopt;
    month = *m;
    end_year = month == 12 ? *year + 1 : *year;
    end_month = month == 12 ? 1 : month + 1;
    pos += 3;
  }
  int64_t end_days = CivilToDays(end_year, end_month, 1);
  if (s.size() > pos) {
    if (s[pos] != '-') return std::nullopt;
    auto d = Digits(s, pos + 1, 2);
    if (!d || *d < 1 || *d > DaysInMonth(*year, month)) return std::nullopt;
    day = *d;
    end_days = CivilToDays(*year, month, day) + 1;
    pos += 3;
  }
  int offset_minutes = default_offset_minutes;
  if (s.size() > pos) {
    if (s[pos] != 'T') return std::nullopt;
    auto h = Digits(s, pos + 1, 2), mi = Digits(s, pos + 4, 2), se = Digits(s, pos + 7, 2);
    if (!h || !mi || !se || s[pos + 3] != ':' || s[pos + 6] != ':') return std::nullopt;
    if (*h > 23 || *mi > 59 || *se > 59) return std::nullopt;
    hour = *h;
    minute = *mi;
    second = *se;
    whole_days = false;
    unit = kMicrosPerSecond;
    pos += 9;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      size_t n = 0;
      int64_t scale = kMicrosPerSecond;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (scale > 1) {
          scale /= 10;
          micros += (s[pos] - '0') * scale;
          unit = scale;
        }
        ++pos;
        ++n;
      }
      if (n == 0) return std::nullopt;
    }
    if (pos < s.size()) {
      if (s[pos] == 'Z' && pos + 1 == s.size()) {
        offset_minutes = 0;
      } else if ((s[pos] == '+' || s[pos] == '-') && pos + 6 == s.size() && s[pos + 3] == ':') {
        auto oh = Digits(s, pos + 1, 2), om = Digits(s, pos + 4, 2);
        if (!oh || !om || *oh > 14 || *om > 59) return std::nullopt;
        offset_minutes = (*oh * 60 + *om) * (s[pos] == '-' ? -1 : 1);
      } else {
        return std::nullopt;
      }
    }
  }
  const int64_t offset = int64_t{offset_minutes} * 60 * kMicrosPerSecond;
  const int64_t start = CivilToDays(*year, month, day) * kMicrosPerDay +
                        ((hour * 60 + minute) * 60 + second) * kMicrosPerSecond + micros - offset;
  const int64_t end = whole_days ? end_days * kMicrosPerDay - offset : start + unit;
  return DateRange{start, end};
}

bool Values::Empty(std::string_view kind) const {
  if (kind == "string") return strings.empty();
  if (kind == "token") return tokens.empty();
  if (kind == "date") return dates.empty();
  if (kind == "number") return numbers.empty();
  if (kind == "quantity") return quantities.empty();
  if (kind == "reference") return references.empty();
  if (kind == "uri") return uris.empty();
  if (kind == "composite") return composites.empty();
  return true;
}

// ---- the reference search -------------------------------------------------------------------

struct ReferenceSearch::Impl {
  ReferenceOptions options;
  std::vector<StoredResource> resources;
  std::map<std::string, std::vector<const StoredResource*>, std::less<>> by_type;  // by id
  std::map<std::string, std::map<std::string, size_t, std::less<>>, std::less<>> position;
  fhirpath::EvalOptions eval;
  std::map<std::string, std::optional<fhirpath::Expression>, std::less<>> compiled;
  std::map<std::pair<std::string, const fhir::SearchParamDef*>, std::vector<Values>> cache;

  const std::vector<const StoredResource*>& Of(std::string_view type) const {
    static const std::vector<const StoredResource*> kNone;
    auto it = by_type.find(type);
    return it == by_type.end() ? kNone : it->second;
  }

  const fhirpath::Expression* Compiled(const std::string& text) {
    auto it = compiled.find(text);
    if (it == compiled.end()) {
      auto e = fhirpath::Compile(text);
      it = compiled.emplace(text, e.ok() ? std::optional(std::move(*e)) : std::nullopt).first;
    }
    return it->second ? &*it->second : nullptr;
  }

  // The search parameter `code` of `type` if the reference can evaluate it.
  const fhir::SearchParamDef* Param(std::string_view type, std::string_view code) {
    const fhir::SearchParamDef* p = fhir::Definitions::Get().FindSearchParam(type, code);
    if (!p || !SupportedKind(p->type) || p->expression.empty()) return nullptr;
    if (!Compiled(p->expression)) return nullptr;
    if (p->type == "composite") {
      if (p->components.empty()) return nullptr;
      for (size_t k = 0; k < p->components.size(); ++k) {
        const auto& c = p->components[k];
        const fhir::SearchParamDef* d = ComponentDef(*p, k);
        if (!d || d->type == "composite" || !SupportedKind(d->type) || !Compiled(c.expression)) {
          return nullptr;
        }
      }
    }
    return p;
  }

  Values Evaluate(const fhir::SearchParamDef& p, const json::value& resource) {
    Values out;
    auto items = fhirpath::Evaluate(*Compiled(p.expression), resource, eval);
    if (!items.ok()) return out;
    const int offset = options.default_offset_minutes;
    if (p.type != "composite") {
      for (const fhirpath::Item& i : *items) AddItemValues(i, p.type, offset, out);
      return out;
    }
    for (const fhirpath::Item& element : *items) {
      std::vector<Values> components;
      for (size_t k = 0; k < p.components.size(); ++k) {
        const auto& c = p.components[k];
        const fhir::SearchParamDef* d = ComponentDef(p, k);
        Values v;
        auto sub = fhirpath::EvaluateOn(*Compiled(c.expression), {element}, &resource, eval);
        if (sub.ok()) {
          for (const fhirpath::Item& i : *sub) AddItemValues(i, d->type, offset, v);
        }
        components.push_back(std::move(v));
      }
      out.composites.push_back(std::move(components));
    }
    return out;
  }

  const std::vector<Values>& AllValues(std::string_view type, const fhir::SearchParamDef& p) {
    auto key = std::make_pair(std::string(type), &p);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    std::vector<Values> all;
    for (const StoredResource* r : Of(type)) {
      if (p.code == "_lastUpdated") {
        // The stored instant, at the store's precision (meta.lastUpdated shows milliseconds).
        Values v;
        v.dates.push_back({r->last_updated_us, r->last_updated_us + 1});
        all.push_back(std::move(v));
      } else {
        all.push_back(Evaluate(p, r->json));
      }
    }
    return cache.emplace(key, std::move(all)).first->second;
  }

  using Mask = std::vector<char>;

  // Resources of `type` that the criterion `name`=`value` selects (name may chain or be _has).
  Result<Mask> Select(std::string_view type, std::string_view name, const std::string& value) {
    if (name.starts_with("_has:")) return SelectReverse(type, name, value);
    if (size_t dot = name.find('.'); dot != std::string_view::npos) {
      return SelectChain(type, name.substr(0, dot), name.substr(dot + 1), value);
    }
    return SelectPlain(type, name, value);
  }

  // _has:Source:param:rest — referenced through `param` by a Source resource matching `rest`.
  Result<Mask> SelectReverse(std::string_view type, std::string_view name,
                             const std::string& value) {
    std::string_view rest = name.substr(5);
    size_t c1 = rest.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : rest.find(':', c1 + 1);
    if (c2 == std::string_view::npos) return Bad(name, "_has takes _has:Type:param:criterion");
    const std::string source(rest.substr(0, c1));
    const std::string_view via = rest.substr(c1 + 1, c2 - c1 - 1);
    if (!fhir::Definitions::Get().IsResourceType(source)) return Bad(name, "unknown _has type");
    const fhir::SearchParamDef* p = Param(source, via);
    if (!p || p->type != "reference") return Bad(name, "_has needs a reference parameter");
    JC_ASSIGN_OR_RETURN(Mask sources, Select(source, rest.substr(c2 + 1), value));
    std::set<std::pair<std::string, std::string>> targets;
    const std::vector<Values>& refs = AllValues(source, *p);
    for (size_t i = 0; i < sources.size(); ++i) {
      if (!sources[i]) continue;
      for (const ReferenceValue& r : refs[i].references) {
        if (r.url.empty() && !r.type.empty()) targets.emplace(r.type, r.id);
      }
    }
    Mask out;
    for (const StoredResource* r : Of(type)) out.push_back(targets.count({r->type, r->id}) > 0);
    return out;
  }

  // head.tail — a reference of `head` points at a resource that matches tail=value.
  Result<Mask> SelectChain(std::string_view type, std::string_view head, std::string_view tail,
                           const std::string& value) {
    std::string_view code = head, type_modifier;
    if (size_t colon = head.find(':'); colon != std::string_view::npos) {
      code = head.substr(0, colon);
      type_modifier = head.substr(colon + 1);
    }
    const fhir::SearchParamDef* p = Param(type, code);
    if (!p || p->type != "reference") return Bad(head, "a chain needs a reference parameter");
    std::vector<std::string> candidates;
    if (!type_modifier.empty()) {
      if (std::find(p->target.begin(), p->target.end(), type_modifier) == p->target.end()) {
        return Bad(head, "the chain's type is not a target of the parameter");
      }
      candidates.emplace_back(type_modifier);
    } else {
      candidates = p->target;
    }
    // The chain continues in every candidate type that knows its next parameter.
    std::string_view next = tail.substr(0, tail.find_first_of(":."));
    std::set<std::pair<std::string, std::string>> targets;
    bool any = false;
    for (const std::string& t : candidates) {
      if (next != "_has" && !Param(t, next) && next != "_id" && next != "_lastUpdated") continue;
      any = true;
      JC_ASSIGN_OR_RETURN(Mask m, Select(t, tail, value));
      for (size_t i = 0; i < m.size(); ++i) {
        if (m[i]) targets.emplace(t, Of(t)[i]->id);
      }
    }
    if (!any) return Bad(head, "no target type of the chain has its next parameter");
    const std::vector<Values>& refs = AllValues(type, *p);
    Mask out(refs.size(), 0);
    for (size_t i = 0; i < refs.size(); ++i) {
      for (const ReferenceValue& r : refs[i].references) {
        if (r.url.empty() && targets.count({r.type, r.id})) out[i] = 1;
      }
    }
    return out;
  }

  Result<Mask> SelectPlain(std::string_view type, std::string_view name, const std::string& value) {
    std::string_view code = name, modifier;
    if (size_t colon = name.find(':'); colon != std::string_view::npos) {
      code = name.substr(0, colon);
      modifier = name.substr(colon + 1);
    }
    const std::vector<const StoredResource*>& rs = Of(type);
    if (code == "_id") {
      if (!modifier.empty()) return Bad(name, "_id takes no modifier");
      std::vector<std::string> ids;
      for (const std::string& part : SplitUnescaped(value, ',')) ids.push_back(Unescape(part));
      Mask out;
      for (const StoredResource* r : rs) {
        out.push_back(std::find(ids.begin(), ids.end(), r->id) != ids.end());
      }
      return out;
    }
    const fhir::SearchParamDef* p = Param(type, code);
    if (!p) return Bad(name, fmt::format("unknown search parameter {} of {}", code, type));
    const std::string& kind = p->type;
    const std::vector<Values>& all = AllValues(type, *p);
    if (modifier == "missing") {
      if (value != "true" && value != "false") return Bad(name, ":missing takes true or false");
      if (code == "_lastUpdated" || kind == "composite") return Bad(name, "no :missing here");
      Mask out;
      for (const Values& v : all) out.push_back(v.Empty(kind) == (value == "true"));
      return out;
    }
    bool modifier_ok = modifier.empty();
    if (kind == "string") modifier_ok |= modifier == "exact" || modifier == "contains";
    if (kind == "token") {
      modifier_ok |= modifier == "not" || modifier == "text" || modifier == "of-type" ||
                     modifier == "in" || modifier == "not-in";
    }
    if (kind == "reference") {
      modifier_ok |= modifier == "identifier" ||
                     (fhir::Definitions::Get().IsResourceType(modifier) &&
                      std::find(p->target.begin(), p->target.end(), modifier) != p->target.end());
    }
    if (kind == "uri") modifier_ok |= modifier == "below" || modifier == "above";
    if (!modifier_ok || (code == "_lastUpdated" && !modifier.empty())) {
      return Bad(name, fmt::format("modifier :{} is not supported on {}", modifier, code));
    }
    // The OR-alternatives, parsed.
    std::vector<SearchValue> any_of;
    for (const std::string& part : SplitUnescaped(value, ',')) {
      if (kind != "composite") {
        JC_ASSIGN_OR_RETURN(SearchValue v, ParseValue(name, kind, modifier, part, options));
        any_of.push_back(std::move(v));
        continue;
      }
      std::vector<std::string> pieces = SplitUnescaped(part, '$');
      if (pieces.size() != p->components.size())
        return Bad(name, "composite value needs every component");
      SearchValue v;
      for (size_t k = 0; k < pieces.size(); ++k) {
        const fhir::SearchParamDef* d = ComponentDef(*p, k);
        JC_ASSIGN_OR_RETURN(SearchValue c, ParseValue(name, d->type, "", pieces[k], options));
        v.components.push_back(std::move(c));
      }
      any_of.push_back(std::move(v));
    }
    const bool negate = modifier == "not" || modifier == "not-in";
    Mask out;
    for (const Values& values : all) {
      bool match = std::any_of(any_of.begin(), any_of.end(), [&](const SearchValue& v) {
        if (kind != "composite") return MatchValue(v, kind, modifier, values);
        return std::any_of(
            values.composites.begin(), values.composites.end(),
            [&](const std::vector<Values>& element) {
              for (size_t k = 0; k < element.size(); ++k) {
                const fhir::SearchParamDef* d = ComponentDef(*p, k);
                if (!MatchValue(v.components[k], d->type, "", element[k])) {
                  return false;
                }
              }
              return true;
            });
      });
      out.push_back(negate ? !match : match);
    }
    return out;
  }
};

ReferenceSearch::ReferenceSearch(std::vector<StoredResource> resources, ReferenceOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->resources = std::move(resources);
  for (const StoredResource& r : impl_->resources) impl_->by_type[r.type].push_back(&r);
  for (auto& [type, list] : impl_->by_type) {
    std::sort(list.begin(), list.end(),
              [](const StoredResource* a, const StoredResource* b) { return a->id < b->id; });
    for (size_t i = 0; i < list.size(); ++i) impl_->position[type][list[i]->id] = i;
  }
  impl_->eval.model = &fhirpath::DefinitionsModel();
  // resolve() finds the stored resource a relative reference names.
  Impl* impl = impl_.get();
  impl_->eval.resolver = [impl](std::string_view reference) -> const json::value* {
    auto r = ParseReferenceText(reference);
    if (!r || !r->url.empty() || r->type.empty()) return nullptr;
    auto t = impl->position.find(r->type);
    if (t == impl->position.end()) return nullptr;
    auto i = t->second.find(r->id);
    return i == t->second.end() ? nullptr : &impl->by_type.find(r->type)->second[i->second]->json;
  };
}

ReferenceSearch::~ReferenceSearch() = default;

Result<Answer> ReferenceSearch::Search(std::string_view type, const Params& params) {
  if (!fhir::Definitions::Get().IsResourceType(type)) return Invalid("unknown resource type");
  const std::vector<const StoredResource*>& rs = impl_->Of(type);
  Impl::Mask selected(rs.size(), 1);
  std::vector<std::pair<std::string, bool>> sort;  // parameter code, descending
  int64_t count = INT64_MAX, offset = 0;
  auto non_negative = [](std::string_view name, const std::string& v) -> Result<int64_t> {
    if (v.empty() || v.size() > 18 ||
        !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Bad(name, "expected a non-negative integer");
    }
    return std::stoll(v);
  };
  for (const auto& [name, value] : params) {
    if (name == "_sort") {
      for (const std::string& raw : SplitUnescaped(value, ',')) {
        std::string key = Unescape(raw);
        const bool descending = key.starts_with("-");
        if (descending) key.erase(0, 1);
        const fhir::SearchParamDef* p = impl_->Param(type, key);
        if (key != "_id" && (!p || p->type == "composite"))
          return Bad("_sort", "cannot sort by " + key);
        sort.emplace_back(key, descending);
      }
    } else if (name == "_count") {
      JC_ASSIGN_OR_RETURN(count, non_negative(name, value));
    } else if (name == "_getpagesoffset") {
      JC_ASSIGN_OR_RETURN(offset, non_negative(name, value));
    } else if (name == "_total" || name == "_format" || name == "_pretty" || name == "_elements") {
      continue;
    } else {
      JC_ASSIGN_OR_RETURN(Impl::Mask m, impl_->Select(type, name, value));
      for (size_t i = 0; i < m.size(); ++i) selected[i] = selected[i] && m[i];
    }
  }
  // Sort keys of each selected resource, then the order: keys in turn, missing last, then id.
  std::vector<size_t> order;
  for (size_t i = 0; i < rs.size(); ++i) {
    if (selected[i]) order.push_back(i);
  }
  std::vector<std::vector<SortValue>> keys(rs.size());
  std::vector<std::string> kinds;
  for (const auto& [code, descending] : sort) {
    std::string kind = code;
    if (code != "_id" && code != "_lastUpdated") kind = impl_->Param(type, code)->type;
    kinds.push_back(kind);
    for (size_t i : order) {
      SortValue s;
      if (code == "_id") {
        s.present = true;
        s.text = rs[i]->id;
      } else if (code == "_lastUpdated") {
        s.present = true;
        s.instant = rs[i]->last_updated_us;
      } else {
        s = SortValueOf(impl_->AllValues(type, *impl_->Param(type, code))[i], kind, descending);
      }
      keys[i].push_back(std::move(s));
    }
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    for (size_t k = 0; k < sort.size(); ++k) {
      const SortValue &x = keys[a][k], &y = keys[b][k];
      if (x.present != y.present) return x.present;  // values first, missing last
      if (!x.present) continue;
      const int c = CompareSortValues(x, y, kinds[k]);
      if (c != 0) return sort[k].second ? c > 0 : c < 0;
    }
    return rs[a]->id < rs[b]->id;
  });
  Answer answer;
  answer.total = static_cast<int64_t>(order.size());
  for (int64_t k = offset; k < answer.total && k - offset < count; ++k) {
    answer.ids.push_back(rs[order[static_cast<size_t>(k)]]->id);
  }
  return answer;
}

std::vector<std::string> ReferenceSearch::Types() const {
  std::vector<std::string> out;
  for (const auto& [type, list] : impl_->by_type) out.push_back(type);
  return out;
}

const std::vector<const StoredResource*>& ReferenceSearch::Resources(std::string_view type) const {
  return impl_->Of(type);
}

std::vector<const fhir::SearchParamDef*> ReferenceSearch::SearchParams(
    std::string_view type) const {
  std::vector<const fhir::SearchParamDef*> out;
  for (const fhir::SearchParamDef* p : fhir::Definitions::Get().SearchParams(type)) {
    if (p->code == "_id") continue;  // answered from the resource's id
    if (impl_->Param(type, p->code) == p) out.push_back(p);
  }
  return out;
}

const Values& ReferenceSearch::ValuesOf(std::string_view type, size_t index,
                                        const fhir::SearchParamDef& param) {
  return impl_->AllValues(type, param)[index];
}

std::optional<size_t> ReferenceSearch::Find(std::string_view type, std::string_view id) const {
  auto t = impl_->position.find(type);
  if (t == impl_->position.end()) return std::nullopt;
  auto i = t->second.find(id);
  if (i == t->second.end()) return std::nullopt;
  return i->second;
}

}  // namespace jiceng::search_ref
