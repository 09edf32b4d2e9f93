#include "fhir/search/normalize.h"

#include <algorithm>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "base/utf8.h"

namespace jiceng::search {
namespace {

// Decodes one UTF-8 code point at s[i]; advances i. Invalid bytes decode as themselves (Latin-1)
// so that normalisation never fails on odd input.
char32_t Decode(std::string_view s, size_t& i) {
  auto b = static_cast<unsigned char>(s[i]);
  int len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + static_cast<size_t>(len) > s.size()) {
    ++i;
    return b;
  }
  char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
  for (int k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((c & 0xC0) != 0x80) {
      ++i;
      return b;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  i += static_cast<size_t>(len);
  return cp;
}

// Whether `cp`, decoded from `len` bytes, was in its shortest UTF-8 form, so that encoding it
// again gives back those bytes (an overlong form does not).
bool ShortestForm(char32_t cp, size_t len) {
  return (len == 2 && cp >= 0x80) || (len == 3 && cp >= 0x800) || (len == 4 && cp >= 0x10000);
}

// Base letters (lower case) of U+00C0..U+00FF and U+0100..U+017F (generated from Unicode NFD);
// '#' keeps the character (× ÷); '*' marks ligatures.
constexpr std::string_view kLatin1 = "aaaaaa*ceeeeiiiidnooooo#ouuuuy**aaaaaa*ceeeeiiiidnooooo#ouuuuy*y";
constexpr std::string_view kLatinExtA = "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiii**jjkkkllllllllllnnnnnnnnnoooooo**rrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs";

std::string_view Ligature(char32_t cp) {
  switch (cp) {
    case 0xC6: case 0xE6: return "ae";
    case 0xDE: case 0xFE: return "th";
    case 0xDF: return "ss";
    case 0x132: case 0x133: return "ij";
    case 0x152: case 0x153: return "oe";
    default: return {};
  }
}

// Scripts written without spaces between words: each character is searched as a word.
bool IsCjk(char32_t cp) {
  return (cp >= 0x3040 && cp <= 0x30FF) ||   // Hiragana, Katakana
         (cp >= 0x3400 && cp <= 0x4DBF) ||   // CJK Extension A
         (cp >= 0x4E00 && cp <= 0x9FFF) ||   // CJK Unified Ideographs
         (cp >= 0xF900 && cp <= 0xFAFF) ||   // CJK Compatibility Ideographs
         (cp >= 0x20000 && cp <= 0x3FFFF);  // CJK Extensions B and later
}

}  // namespace

std::string FullTextForm(std::string_view text) {
  const std::string norm = NormalizeString(text);
  std::string out;
  out.reserve(norm.size() + norm.size() / 2);
  for (size_t i = 0; i < norm.size();) {
    if (static_cast<unsigned char>(norm[i]) < 0x80) {  // ASCII: never CJK, no decoding
      out += norm[i++];
      continue;
    }
    const size_t start = i;
    const char32_t cp = Decode(norm, i);
    if (IsCjk(cp)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
      out.append(norm, start, i - start);
      if (i < norm.size() && norm[i] != ' ') out += ' ';
    } else {
      out.append(norm, start, i - start);
    }
  }
  return out;
}

bool HasCjk(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    if (IsCjk(Decode(text, i))) return true;
  }
  return false;
}

bool HasWordCharacter(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const char32_t cp = Decode(text, i);
    if (cp < 0x80) {
      if ((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
        return true;
      continue;
    }
    const bool punctuation_or_symbol =
        (cp >= 0x80 && cp <= 0xBF) ||      // Latin-1 controls, punctuation and signs
        (cp >= 0x2000 && cp <= 0x2BFF) ||  // general punctuation, arrows, maths, shapes
        (cp >= 0x3000 && cp <= 0x303F) ||  // CJK symbols and punctuation (、。「」)
        (cp >= 0xFE30 && cp <= 0xFE6F) ||  // CJK compatibility and small form punctuation
        (cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) ||
        (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65);  // full-width ones
    if (!punctuation_or_symbol) return true;
  }
  return false;
}

std::string NormalizeString(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (size_t i = 0; i < text.size();) {
    // ASCII, the bulk of most text, takes the short way: what the general path below does
    // with a code point under 0x80, without decoding.
    if (const auto b = static_cast<unsigned char>(text[i]); b < 0x80) {
      ++i;
      if (b == ' ' || b == '\t' || b == '\n' || b == '\r') {
        pending_space = !out.empty();
        continue;
      }
      if (pending_space) {
        out += ' ';
        pending_space = false;
      }
      out += (b >= 'A' && b <= 'Z') ? static_cast<char>(b - 'A' + 'a') : static_cast<char>(b);
      continue;
    }
    const size_t start = i;
    const char32_t decoded = Decode(text, i);
    char32_t cp = decoded;
    if (cp >= 0xFF01 && cp <= 0xFF5E) cp = cp - 0xFF01 + 0x21;  // full-width ASCII
    if (cp == 0x3000) cp = ' ';                                // ideographic space
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') {
      pending_space = !out.empty();
      continue;
    }
    if (cp >= 0x300 && cp <= 0x36F) continue;  // combining accents (decomposed input)
    if (pending_space) {
      out += ' ';
      pending_space = false;
    }
    if (cp < 0x80) {
      out += (cp >= 'A' && cp <= 'Z') ? static_cast<char>(cp - 'A' + 'a') : static_cast<char>(cp);
      continue;
    }
    char base = '\0';
    if (cp >= 0xC0 && cp <= 0xFF) base = kLatin1[cp - 0xC0];
    else if (cp >= 0x100 && cp <= 0x17F) base = kLatinExtA[cp - 0x100];
    // Pinyin tone letters: ǍǎǏǐǑǒǓǔ ǕǖǗǘǙǚǛǜ.
    else if (cp >= 0x1CD && cp <= 0x1DC) base = "aaiioouuuuuuuuuu"[cp - 0x1CD];
    if (base == '#') base = '\0';
    if (base == '*') {
      out += Ligature(cp);
    } else if (base != '\0') {
      out += base;
    } else if (cp == decoded && ShortestForm(cp, i - start)) {
      out.append(text, start, i - start);  // what AppendUtf8 would write: the bytes as they are
    } else {
      AppendUtf8(cp, out);
    }
  }
  return out;
}

// ---- Decimal ----------------------------------------------------------------------------------

namespace {

void StripLeadingZeros(Decimal& d) {
  size_t z = 0;
  while (z < d.digits.size() && d.digits[z] == '0') ++z;
  d.digits.erase(0, z);
  if (d.digits.empty()) d.negative = false;
}

// |a| vs |b|.
int CompareMagnitude(const Decimal& a, const Decimal& b) {
  if (a.digits.empty() || b.digits.empty()) {
    return a.digits.empty() ? (b.digits.empty() ? 0 : -1) : 1;
  }
  const int64_t ma = static_cast<int64_t>(a.digits.size()) + a.exponent;
  const int64_t mb = static_cast<int64_t>(b.digits.size()) + b.exponent;
  if (ma != mb) return ma < mb ? -1 : 1;
  // Same leading position: compare digit by digit, the shorter padded with zeros.
  const size_t n = std::max(a.digits.size(), b.digits.size());
  for (size_t i = 0; i < n; ++i) {
    const char x = i < a.digits.size() ? a.digits[i] : '0';
    const char y = i < b.digits.size() ? b.digits[i] : '0';
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

// Digit strings of a and b at the exponent min(a.exponent, b.exponent).
std::pair<std::string, std::string> Aligned(const Decimal& a, const Decimal& b, int& exponent) {
  exponent = std::min(a.exponent, b.exponent);
  return {a.digits + std::string(static_cast<size_t>(a.exponent - exponent), '0'),
          b.digits + std::string(static_cast<size_t>(b.exponent - exponent), '0')};
}

// x + y or x - y (x >= y) of unsigned digit strings.
std::string AddDigits(const std::string& x, const std::string& y) {
  std::string out;
  int carry = 0;
  for (size_t i = 0; i < std::max(x.size(), y.size()) || carry; ++i) {
    int s = carry;
    if (i < x.size()) s += x[x.size() - 1 - i] - '0';
    if (i < y.size()) s += y[y.size() - 1 - i] - '0';
    out += static_cast<char>('0' + s % 10);
    carry = s / 10;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::string SubtractDigits(const std::string& x, const std::string& y) {
  std::string out;
  int borrow = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    int s = x[x.size() - 1 - i] - '0' - borrow;
    if (i < y.size()) s -= y[y.size() - 1 - i] - '0';
    borrow = s < 0;
    out += static_cast<char>('0' + (s + 10) % 10);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

// Doubles in order as integers: the key of a double is its bit pattern for +0 and above, minus
// its magnitude's bit pattern below (−0 and +0 share key 0). Adjacent doubles have adjacent keys.
constexpr int64_t kMaxKey = 0x7FEFFFFFFFFFFFFF;  // DBL_MAX; ±(kMaxKey + 1) are the infinities

int64_t OrderKey(double d) {
  int64_t bits = 0;
  std::memcpy(&bits, &d, sizeof bits);
  return bits >= 0 ? bits : -(bits & INT64_MAX);
}

double FromOrderKey(int64_t k) {
  const int64_t bits = k >= 0 ? k : ((-k) | INT64_MIN);
  double d = 0;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// k moved by `step` keys towards `limit`, stopping there (no signed overflow on the way).
int64_t Toward(int64_t k, uint64_t step, int64_t limit) {
  const uint64_t room = k <= limit ? static_cast<uint64_t>(limit) - static_cast<uint64_t>(k)
                                   : static_cast<uint64_t>(k) - static_cast<uint64_t>(limit);
  if (step >= room) return limit;
  return k <= limit ? static_cast<int64_t>(static_cast<uint64_t>(k) + step)
                    : static_cast<int64_t>(static_cast<uint64_t>(k) - step);
}

}  // namespace

std::optional<Decimal> ParseDecimal(std::string_view text) {
  size_t i = 0;
  Decimal d;
  if (i < text.size() && text[i] == '-') {
    d.negative = true;
    ++i;
  }
  const size_t int_start = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  const size_t int_digits = i - int_start;
  // 0|[1-9][0-9]*: at least one digit, no leading zero before another digit.
  if (int_digits == 0 || (int_digits > 1 && text[int_start] == '0')) return std::nullopt;
  d.digits = std::string(text.substr(int_start, int_digits));
  if (i < text.size() && text[i] == '.') {
    const size_t frac_start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == frac_start) return std::nullopt;  // "5." has no fraction digits
    d.digits += text.substr(frac_start, i - frac_start);
    d.exponent = -static_cast<int>(i - frac_start);
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool negative = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
    const size_t exp_start = i;
    int e = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      e = e * 10 + (text[i++] - '0');
      if (e > 100000) return std::nullopt;
    }
    if (i == exp_start) return std::nullopt;
    d.exponent += negative ? -e : e;
  }
  if (i != text.size()) return std::nullopt;
  StripLeadingZeros(d);
  return d;
}

Decimal DecimalOf(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  auto d = ParseDecimal(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  return d ? *d : Decimal{};  // only a non-finite v has no decimal
}

int CompareDecimal(const Decimal& a, const Decimal& b) {
  const bool an = a.negative && !a.digits.empty(), bn = b.negative && !b.digits.empty();
  if (an != bn) return an ? -1 : 1;
  const int m = CompareMagnitude(a, b);
  return an ? -m : m;
}

Decimal AddDecimal(const Decimal& a, const Decimal& b) {
  if (a.digits.empty()) {
    return b.digits.empty() ? Decimal{false, "", std::min(a.exponent, b.exponent)} : b;
  }
  if (b.digits.empty()) return a;
  Decimal out;
  auto [x, y] = Aligned(a, b, out.exponent);
  if (a.negative == b.negative) {
    out.digits = AddDigits(x, y);
    out.negative = a.negative;
  } else if (CompareMagnitude(a, b) >= 0) {
    out.digits = SubtractDigits(x, y);
    out.negative = a.negative;
  } else {
    out.digits = SubtractDigits(y, x);
    out.negative = b.negative;
  }
  StripLeadingZeros(out);
  return out;
}

Decimal MultiplyDecimal(const Decimal& a, const Decimal& b) {
  Decimal out;
  out.exponent = a.exponent + b.exponent;
  if (a.digits.empty() || b.digits.empty()) return out;
  std::vector<int> acc(a.digits.size() + b.digits.size(), 0);
  for (size_t i = a.digits.size(); i-- > 0;) {
    for (size_t j = b.digits.size(); j-- > 0;) {
      acc[i + j + 1] += (a.digits[i] - '0') * (b.digits[j] - '0');
    }
  }
  for (size_t k = acc.size(); k-- > 1;) {
    acc[k - 1] += acc[k] / 10;
    acc[k] %= 10;
  }
  for (int v : acc) out.digits += static_cast<char>('0' + v);
  out.negative = a.negative != b.negative;
  StripLeadingZeros(out);
  return out;
}

Decimal HalfUnit(const Decimal& d) { return Decimal{false, "5", d.exponent - 1}; }

int Magnitude(const Decimal& d) {
  return d.digits.empty() ? 0 : static_cast<int>(d.digits.size()) + d.exponent;
}

double ApproximateDouble(const Decimal& d) {
  if (d.digits.empty()) return 0;
  // "<digits>e<exponent>": no decimal point, so the C locale's is never in question.
  const std::string text = (d.negative ? "-" : "") + d.digits + "e" + std::to_string(d.exponent);
  const double v = std::strtod(text.c_str(), nullptr);  // 0 on underflow, ±HUGE_VAL on overflow
  if (std::isinf(v)) return v > 0 ? DBL_MAX : -DBL_MAX;
  return v;
}

// The boundary is found over the doubles in order: DecimalOf is strictly increasing (each
// double's shortest text lies within the interval of reals that round to it, and those
// intervals are disjoint and ordered), so "DecimalOf(v)·factor >= bound" is false below one
// double and true from it on. Start at the estimate bound/factor, widen by doubling steps until
// the boundary is bracketed (in practice one or two steps: the estimate is within a few ulps),
// then bisect. Every test is exact decimal arithmetic on the double's shortest text: no binary
// rounding decides a comparison.
double SmallestDoubleAtLeast(const Decimal& bound, const Decimal& factor, bool strictly) {
  auto holds = [&](int64_t k) {
    if (k > kMaxKey) return true;    // +inf: above every bound
    if (k < -kMaxKey) return false;  // -inf
    const int c = CompareDecimal(MultiplyDecimal(DecimalOf(FromOrderKey(k)), factor), bound);
    return strictly ? c > 0 : c >= 0;
  };
  const double f = ApproximateDouble(factor);
  const double estimate = f > 0 ? ApproximateDouble(bound) / f : 0;
  const int64_t start = std::isfinite(estimate) ? OrderKey(estimate) : 0;
  int64_t lo, hi;  // holds(lo) is false, holds(hi) is true
  if (holds(start)) {
    hi = start;
    for (uint64_t step = 1;; step *= 2) {
      const int64_t k = Toward(hi, step, -kMaxKey - 1);
      if (!holds(k)) {
        lo = k;
        break;
      }
      hi = k;
    }
  } else {
    lo = start;
    for (uint64_t step = 1;; step *= 2) {
      const int64_t k = Toward(lo, step, kMaxKey + 1);
      if (holds(k)) {
        hi = k;
        break;
      }
      lo = k;
    }
  }
  while (static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) > 1) {
    const uint64_t gap = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
    const int64_t mid = lo + static_cast<int64_t>(gap / 2);
    (holds(mid) ? hi : lo) = mid;
  }
  if (hi > kMaxKey) return std::numeric_limits<double>::infinity();
  return FromOrderKey(hi);
}

// ---- UCUM units --------------------------------------------------------------------------

namespace {
// Far above any real unit's (mL/h: 9; [psi]: 16129); keeps CanonicalNumber's division in 64 bits.
constexpr uint64_t kMaxDenominator = 1'000'000'000'000'000'000ULL / 10;
}  // namespace

std::optional<CanonicalUnit> CanonicalUnitOf(std::string_view ucum_code) {
  auto u = ucum::Parse(ucum_code);
  if (!u || u->factor.denominator > kMaxDenominator) return std::nullopt;
  return CanonicalUnit{ucum::BaseCode(u->dims), u->factor};
}

double CanonicalNumber(const Decimal& value, const ucum::Factor& factor) {
  constexpr size_t kDigits = 40;
  Decimal p =
      MultiplyDecimal(value, Decimal{false, std::to_string(factor.mantissa), factor.exponent});
  if (factor.denominator != 1 && !p.digits.empty()) {
    // Long division, with enough zeros appended that the quotient has at least kDigits digits
    // (the denominator has at most 18).
    const size_t pad = kDigits + 20;
    const std::string dividend = p.digits + std::string(pad, '0');
    std::string quotient;
    uint64_t rest = 0;  // < denominator <= kMaxDenominator: rest * 10 + 9 fits
    for (char c : dividend) {
      rest = rest * 10 + static_cast<unsigned>(c - '0');
      const auto q = static_cast<unsigned>(rest / factor.denominator);
      rest %= factor.denominator;
      if (q != 0 || !quotient.empty()) quotient += static_cast<char>('0' + q);
    }
    p.digits = std::move(quotient);
    p.exponent -= static_cast<int>(pad);
  }
  // Truncated to kDigits significant digits: a function of the exact value alone, however it
  // was reached, so equal values meet in the same double.
  if (p.digits.size() > kDigits) {
    p.exponent += static_cast<int>(p.digits.size() - kDigits);
    p.digits.resize(kDigits);
  }
  return ApproximateDouble(p);
}

std::optional<CanonicalQuantity> Canonicalize(double value, std::string_view ucum_code) {
  auto unit = CanonicalUnitOf(ucum_code);
  if (!unit || !std::isfinite(value)) return std::nullopt;
  return CanonicalQuantity{CanonicalNumber(DecimalOf(value), unit->factor), std::move(unit->code)};
}

}  // namespace jiceng::search
