// fhir/search/normalize: the value normalisations shared by index extraction and query parsing,
// so that a stored row and a search value always meet in the same form.
#pragma once

#include <optional>
#include <string>
#include <string_view>

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

// Whether `text` holds a character a word tokenizer keeps (a letter or digit, by an
// approximation: ASCII letters and digits, and non-ASCII characters outside the common
// punctuation and symbol blocks). A search word without one would match nothing.
bool HasWordCharacter(std::string_view text);

// A quantity in canonical UCUM units for the few commensurable families the search compares
// across (mass → g, length → m, pressure mm[Hg]). nullopt when the unit is not in the table:
// molar ↔ mass conversions in particular are never made here.
struct CanonicalQuantity {
  double value = 0;
  std::string_view code;
};
std::optional<CanonicalQuantity> Canonicalize(double value, std::string_view ucum_code);

// The implicit range of a decimal as written: "100" → [99.5, 100.5), "1.50" → [1.495, 1.505).
// Exponent forms ("1e2") take the precision of the mantissa. nullopt when not a number.
struct NumberRange {
  double value = 0, lo = 0, hi = 0;
};
std::optional<NumberRange> ParseNumberRange(std::string_view text);

}  // namespace jiceng::search
