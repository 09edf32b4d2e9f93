// fhir/search/normalize: the value normalisations shared by index extraction and query parsing,
// so that a stored row and a search value always meet in the same form.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "fhir/ucum.h"

namespace jiceng::search {

// String search form: ASCII and Latin letters lower-cased with accents removed, full-width
// ASCII (U+FF01..U+FF5E) and the ideographic space mapped to half-width, whitespace runs
// collapsed to one space and trimmed. Chinese characters (and anything else) are kept as they
// are, so a search for 王 matches 王小明 by characters.
std::string NormalizeString(std::string_view text);

// Full-text form (_text/_content), for the stored text and the searched words alike:
// NormalizeString, then every CJK ideograph and kana set apart by spaces so that a word
// tokenizer sees each as a word of its own and "高血压" is found as the phrase "高 血 压".
std::string FullTextForm(std::string_view text);

// Whether `text` holds a CJK ideograph or kana (a script written without spaces between words).
bool HasCjk(std::string_view text);

// Whether `text` holds a character a word tokenizer keeps (a letter or digit, by an
// approximation: ASCII letters and digits, and non-ASCII characters outside the common
// punctuation and symbol blocks). A search word without one would match nothing.
bool HasWordCharacter(std::string_view text);

// ---- decimal numbers, exactly ----------------------------------------------------------------
//
// Search numbers are decimal text, stored numbers are doubles. A stored double stands for the
// decimal the server writes back for it (the shortest text that reads back as that double,
// std::to_chars: DecimalOf), which is what a client sees and searches with. Number and quantity
// searches therefore compare decimals: the search range is computed from the text in exact
// decimal arithmetic and turned into bounds on the stored doubles by SmallestDoubleAtLeast.

// (-1)^negative × digits × 10^exponent, exactly. `digits` has no leading zeros ("" is zero) and
// keeps the trailing zeros of the text, which carry its precision: "1.50" is {"150", -2}.
struct Decimal {
  bool negative = false;
  std::string digits;
  int exponent = 0;
};

// R4 decimal syntax (also the number of a number or quantity search):
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. nullopt for anything else: "5.", ".5", "+5",
// "05", " 5", "0x10", "inf", an exponent beyond ±100000.
std::optional<Decimal> ParseDecimal(std::string_view text);
// The decimal a stored double stands for: its shortest round-trip text. d must be finite.
Decimal DecimalOf(double d);
int CompareDecimal(const Decimal& a, const Decimal& b);  // <0, 0, >0
Decimal AddDecimal(const Decimal& a, const Decimal& b);
Decimal MultiplyDecimal(const Decimal& a, const Decimal& b);
// Half a unit of the last written digit: the implicit precision of a search number (R4 search,
// "Prefixes / number": 100 means [99.5, 100.5), 1.50 means [1.495, 1.505)).
Decimal HalfUnit(const Decimal& d);
// The double nearest to d (an estimate; ±DBL_MAX past the range of doubles).
double ApproximateDouble(const Decimal& d);
// The position of the leading digit, |d| < 10^Magnitude(d): 2 for 12.3, -2 for 0.0012; 0 for
// zero.
int Magnitude(const Decimal& d);

// The smallest double v with DecimalOf(v) × factor >= bound (> bound when `strictly`), +inf
// when there is none. `factor` > 0. As DecimalOf is strictly increasing, for every stored v:
//   v >= SmallestDoubleAtLeast(b, f, false)  ⇔  DecimalOf(v)·f >= b
//   v <  SmallestDoubleAtLeast(b, f, false)  ⇔  DecimalOf(v)·f <  b
//   v >= SmallestDoubleAtLeast(b, f, true)   ⇔  DecimalOf(v)·f >  b
// so a SQL comparison of the stored double with it decides exactly what the decimals would.
double SmallestDoubleAtLeast(const Decimal& bound, const Decimal& factor, bool strictly);

// ---- UCUM units --------------------------------------------------------------------------
//
// Number and quantity search compare commensurable UCUM units (system empty or UCUM) on their
// values in base units: every unit fhir/ucum understands (prefixes, products and quotients,
// exponents, the metric, clinical and customary atoms: mL and L, mg/dL and g/L, s, min and h,
// mmol/L and umol/L, kPa and mm[Hg], [in_i], [lb_av] …). Amounts of substance are never
// converted to masses (glucose mmol/L ↔ mg/dL needs a molar mass), and the temperature units
// with an offset (Cel, [degF]) are not converted at all: ucum::Parse does not read them, so they
// compare only with the same code (K converts like any base unit).

// A unit's base-unit code (ucum::BaseCode: "g", "m3", "m-3.mol") and its exact factor to it.
struct CanonicalUnit {
  std::string code;
  ucum::Factor factor;
};
std::optional<CanonicalUnit> CanonicalUnitOf(std::string_view ucum_code);

// value × factor as a double, as the index stores it and the search bounds are computed: the
// exact product, truncated to 40 significant digits, rounded to the nearest double. Equal
// quantities get the same double whatever their units (60 mL/h and 1 mL/min, whose factors are
// not decimals), and it never decreases as the value grows. So canonical comparisons are exact
// except between values that differ by less than a double's rounding (about 1e-16 relatively).
double CanonicalNumber(const Decimal& value, const ucum::Factor& factor);

// A stored quantity in base units; nullopt when CanonicalUnitOf does not know its unit.
struct CanonicalQuantity {
  double value = 0;
  std::string code;
};
std::optional<CanonicalQuantity> Canonicalize(double value, std::string_view ucum_code);

}  // namespace jiceng::search
