#include "fhir/ucum.h"

#include <cstdlib>
#include <numeric>
#include <unordered_map>

namespace jiceng::ucum {
namespace {

// ---- exact factors ---------------------------------------------------------------------------

bool Mul(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

// Brings f to its normal form (see Factor): the denominator's factors 2 and 5 moved into the
// decimal part, common factors cancelled, trailing zeros of the mantissa into the exponent.
bool Normalize(Factor& f) {
  if (f.mantissa == 0 || f.denominator == 0) return false;
  const uint64_t g = std::gcd(f.mantissa, f.denominator);
  f.mantissa /= g;
  f.denominator /= g;
  while (f.denominator % 2 == 0) {  // 1/2 = 5/10
    f.denominator /= 2;
    if (!Mul(f.mantissa, 5, f.mantissa)) return false;
    --f.exponent;
  }
  while (f.denominator % 5 == 0) {  // 1/5 = 2/10
    f.denominator /= 5;
    if (!Mul(f.mantissa, 2, f.mantissa)) return false;
    --f.exponent;
  }
  while (f.mantissa % 10 == 0) {
    f.mantissa /= 10;
    ++f.exponent;
  }
  return f.exponent > -400 && f.exponent < 400;
}

bool Multiply(Factor& a, Factor b) {
  // Cancel across first, so that the products stay small.
  const uint64_t g1 = std::gcd(a.mantissa, b.denominator);
  const uint64_t g2 = std::gcd(b.mantissa, a.denominator);
  a.mantissa /= g1;
  b.denominator /= g1;
  b.mantissa /= g2;
  a.denominator /= g2;
  if (!Mul(a.mantissa, b.mantissa, a.mantissa) ||
      !Mul(a.denominator, b.denominator, a.denominator)) {
    return false;
  }
  a.exponent += b.exponent;
  return Normalize(a);
}

Factor Inverse(const Factor& f) { return Factor{f.denominator, -f.exponent, f.mantissa}; }

// A decimal literal of the unit table ("2.54", "133.3220", "1e5").
std::optional<Factor> DecimalFactor(std::string_view text) {
  Factor f{0, 0, 1};
  bool point = false;
  size_t i = 0;
  for (; i < text.size() && text[i] != 'e'; ++i) {
    if (text[i] == '.') {
      point = true;
      continue;
    }
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    if (!Mul(f.mantissa, 10, f.mantissa)) return std::nullopt;
    f.mantissa += static_cast<uint64_t>(text[i] - '0');
    if (point) --f.exponent;
  }
  if (i < text.size()) f.exponent += std::stoi(std::string(text.substr(i + 1)));
  if (!Normalize(f)) return std::nullopt;
  return f;
}

// ---- the unit table --------------------------------------------------------------------------

// One atom as UCUM defines it: `value` × `unit` (a code over the atoms above it), or a base unit.
// Values and definitions are those of the UCUM specification (version 2.1, the "ucum-essence"
// table: base units §28, prefixes §29, and the tables of §30-§43), except mol (see Base). Metric
// atoms take prefixes.
struct AtomDef {
  std::string_view code;
  bool metric;
  std::string_view value;
  std::string_view unit;  // empty: a base unit
  Base base = Base::kMeter;
};

constexpr AtomDef kAtoms[] = {
    // Base units.
    {"m", true, "1", "", Base::kMeter},
    {"s", true, "1", "", Base::kSecond},
    {"g", true, "1", "", Base::kGram},
    {"rad", true, "1", "", Base::kRadian},
    {"K", true, "1", "", Base::kKelvin},
    {"C", true, "1", "", Base::kCoulomb},
    {"cd", true, "1", "", Base::kCandela},
    {"mol", true, "1", "", Base::kMole},
    // Dimensionless.
    {"10*", false, "10", "1"},
    {"10^", false, "10", "1"},
    {"%", false, "1", "10*-2"},
    {"[ppth]", false, "1", "10*-3"},
    {"[ppm]", false, "1", "10*-6"},
    {"[ppb]", false, "1", "10*-9"},
    {"[pptr]", false, "1", "10*-12"},
    // SI derived units.
    {"sr", true, "1", "rad2"},
    {"Hz", true, "1", "s-1"},
    {"N", true, "1", "kg.m/s2"},
    {"Pa", true, "1", "N/m2"},
    {"J", true, "1", "N.m"},
    {"W", true, "1", "J/s"},
    {"A", true, "1", "C/s"},
    {"V", true, "1", "J/C"},
    {"F", true, "1", "C/V"},
    {"Ohm", true, "1", "V/A"},
    {"S", true, "1", "Ohm-1"},
    {"Wb", true, "1", "V.s"},
    {"T", true, "1", "Wb/m2"},
    {"H", true, "1", "Wb/A"},
    {"lm", true, "1", "cd.sr"},
    {"lx", true, "1", "lm/m2"},
    {"Bq", true, "1", "s-1"},
    {"Gy", true, "1", "J/kg"},
    {"Sv", true, "1", "J/kg"},
    // Other units from ISO 1000 and ISO 2955.
    {"l", true, "1", "dm3"},
    {"L", true, "1", "l"},
    {"ar", true, "100", "m2"},
    {"min", false, "60", "s"},
    {"h", false, "60", "min"},
    {"d", false, "24", "h"},
    {"a_t", false, "365.24219", "d"},
    {"a_j", false, "365.25", "d"},
    {"a_g", false, "365.2425", "d"},
    {"a", false, "1", "a_j"},
    {"wk", false, "7", "d"},
    {"mo_s", false, "29.53059", "d"},
    {"mo_j", false, "1", "a_j/12"},
    {"mo_g", false, "1", "a_g/12"},
    {"mo", false, "1", "mo_j"},
    {"t", true, "1e3", "kg"},
    {"bar", true, "1e5", "Pa"},
    {"atm", false, "101325", "Pa"},
    // Chemical and clinical units.
    // Not eq (equivalents) nor osm: UCUM makes each 1 mol, but 1 mEq/L of calcium is 0.5
    // mmol/L; a search must not equate them, so they stay compared as written.
    {"g%", true, "1", "g/dl"},
    {"kat", true, "1", "mol/s"},
    {"U", true, "1", "umol/min"},
    {"m[Hg]", true, "133.3220", "kPa"},
    {"m[H2O]", true, "9.80665", "kPa"},
    {"cal", true, "4.184", "J"},
    {"[Cal]", false, "1", "kcal"},
    {"[drp]", false, "1", "ml/20"},
    // International customary units.
    {"[in_i]", false, "2.54", "cm"},
    {"[ft_i]", false, "12", "[in_i]"},
    {"[yd_i]", false, "3", "[ft_i]"},
    {"[mi_i]", false, "5280", "[ft_i]"},
    {"[gr]", false, "64.79891", "mg"},
    {"[lb_av]", false, "7000", "[gr]"},
    {"[oz_av]", false, "1", "[lb_av]/16"},
    {"[g]", false, "9.80665", "m/s2"},
    {"[lbf_av]", false, "1", "[lb_av].[g]"},
    {"[psi]", false, "1", "[lbf_av]/[in_i]2"},
    // US volumes.
    {"[gal_us]", false, "231", "[in_i]3"},
    {"[qt_us]", false, "1", "[gal_us]/4"},
    {"[pt_us]", false, "1", "[qt_us]/2"},
    {"[foz_us]", false, "1", "[pt_us]/16"},
    {"[tbs_us]", false, "1", "[foz_us]/2"},
    {"[tsp_us]", false, "1", "[tbs_us]/3"},
    {"[cup_us]", false, "16", "[tbs_us]"},
};

struct Atom {
  Unit unit;
  bool metric = false;
};
using AtomTable = std::unordered_map<std::string_view, Atom>;

constexpr std::pair<std::string_view, int> kPrefixes[] = {
    {"da", 1}, {"Y", 24},  {"Z", 21},  {"E", 18},  {"P", 15},  {"T", 12},  {"G", 9},
    {"M", 6},  {"k", 3},   {"h", 2},   {"d", -1},  {"c", -2},  {"m", -3},  {"u", -6},
    {"n", -9}, {"p", -12}, {"f", -15}, {"a", -18}, {"z", -21}, {"y", -24},
};

// Recursive descent over a unit code. Grammar (UCUM §7, without annotations):
//   term      := ['/'] component (('.' | '/') component)*
//   component := '(' term ')' | simple [exponent] | integer
class Parser {
 public:
  Parser(std::string_view text, const AtomTable& atoms) : s_(text), atoms_(atoms) {}

  std::optional<Unit> Run() {
    if (s_.empty()) return std::nullopt;
    auto u = Term();
    if (!u || pos_ != s_.size()) return std::nullopt;
    return u;
  }

 private:
  static bool Combine(Unit& into, const Unit& u, bool divide) {
    if (!Multiply(into.factor, divide ? Inverse(u.factor) : u.factor)) return false;
    for (size_t i = 0; i < kBaseCount; ++i) into.dims[i] += divide ? -u.dims[i] : u.dims[i];
    return true;
  }

  std::optional<Unit> Term() {
    Unit result;
    bool divide = false;
    if (pos_ < s_.size() && s_[pos_] == '/') {
      divide = true;
      ++pos_;
    }
    for (;;) {
      auto c = Component();
      if (!c || !Combine(result, *c, divide)) return std::nullopt;
      if (pos_ >= s_.size() || (s_[pos_] != '.' && s_[pos_] != '/')) return result;
      divide = s_[pos_++] == '/';
    }
  }

  std::optional<Unit> Component() {
    if (pos_ < s_.size() && s_[pos_] == '(') {
      // Each '(' recurses: a code of a million of them (Quantity.code is any string a client
      // sends) would overflow the stack. No real unit nests past a few levels.
      if (++depth_ > kMaxDepth) return std::nullopt;
      ++pos_;
      auto t = Term();
      --depth_;
      if (!t || pos_ >= s_.size() || s_[pos_] != ')') return std::nullopt;
      ++pos_;
      return t;
    }
    // The symbol with its exponent: up to the next operator; brackets may hold anything.
    const size_t start = pos_;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '.' || c == '/' || c == '(' || c == ')') break;
      if (c == '{' || c == '}') return std::nullopt;  // annotation: see the header
      if (c == '[') {
        const size_t close = s_.find(']', pos_);
        if (close == std::string_view::npos) return std::nullopt;
        pos_ = close + 1;
        continue;
      }
      ++pos_;
    }
    const std::string_view token = s_.substr(start, pos_ - start);
    size_t digits = token.size();
    while (digits > 0 && token[digits - 1] >= '0' && token[digits - 1] <= '9') --digits;
    if (digits == 0) {  // an integer factor
      if (token.empty() || token.size() > 18) return std::nullopt;
      Unit u;
      u.factor = Factor{std::stoull(std::string(token)), 0, 1};
      if (!Normalize(u.factor)) return std::nullopt;
      return u;
    }
    std::string_view symbol = token.substr(0, digits);
    int exponent = 1;
    if (digits < token.size()) {
      if (token.size() - digits > 3) return std::nullopt;
      exponent = std::stoi(std::string(token.substr(digits)));
      if (exponent > 24) return std::nullopt;
      if (symbol.back() == '-' || symbol.back() == '+') {
        if (symbol.back() == '-') exponent = -exponent;
        symbol.remove_suffix(1);
      }
    }
    if (symbol.empty()) return std::nullopt;
    auto base = Simple(symbol);
    if (!base) return std::nullopt;
    Unit u;
    for (int i = 0; i < (exponent < 0 ? -exponent : exponent); ++i) {
      if (!Combine(u, *base, exponent < 0)) return std::nullopt;
    }
    return u;
  }

  // An atom, or a metric atom after a prefix. An atom's own code wins over a prefixed reading
  // (Pa is the pascal, not a peta-year; cd the candela).
  std::optional<Unit> Simple(std::string_view symbol) const {
    if (auto it = atoms_.find(symbol); it != atoms_.end()) return it->second.unit;
    for (const auto& [prefix, power] : kPrefixes) {
      if (symbol.size() <= prefix.size() || !symbol.starts_with(prefix)) continue;
      auto it = atoms_.find(symbol.substr(prefix.size()));
      if (it == atoms_.end() || !it->second.metric) continue;
      Unit u = it->second.unit;
      u.factor.exponent += power;
      return u;
    }
    return std::nullopt;
  }

  std::string_view s_;
  size_t pos_ = 0;
  static constexpr int kMaxDepth = 16;
  int depth_ = 0;
  const AtomTable& atoms_;
};

// Each atom of kAtoms resolved into base units, through the atoms above it.
const AtomTable& Atoms() {
  static const AtomTable table = [] {
    AtomTable t;
    for (const AtomDef& a : kAtoms) {
      auto value = DecimalFactor(a.value);
      Unit u;
      if (a.unit.empty()) {
        u.dims[static_cast<size_t>(a.base)] = 1;
      } else {
        auto def = Parser(a.unit, t).Run();
        if (!def) std::abort();  // a slip in the table above
        u = *def;
      }
      if (!value || !Multiply(u.factor, *value)) std::abort();
      t.emplace(a.code, Atom{u, a.metric});
    }
    return t;
  }();
  return table;
}

}  // namespace

double Factor::ToDouble() const {
  // mantissa × 10^exponent read as one decimal literal: correctly rounded, unlike a product
  // with pow(10, exponent).
  const std::string text = std::to_string(mantissa) + "e" + std::to_string(exponent);
  return std::strtod(text.c_str(), nullptr) / static_cast<double>(denominator);
}

std::optional<Unit> Parse(std::string_view code) { return Parser(code, Atoms()).Run(); }

std::string BaseCode(const Dimensions& dims) {
  static constexpr std::string_view kNames[kBaseCount] = {"m", "s", "g",  "rad",
                                                          "K", "C", "cd", "mol"};
  std::string out;
  for (size_t i = 0; i < kBaseCount; ++i) {
    if (dims[i] == 0) continue;
    if (!out.empty()) out += '.';
    out += kNames[i];
    if (dims[i] != 1) out += std::to_string(dims[i]);
  }
  return out.empty() ? "1" : out;
}

}  // namespace jiceng::ucum
