#include "fhir/search/normalize.h"

#include <cmath>
#include <cstdlib>

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

void Encode(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
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
    char32_t cp = Decode(text, i);
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
    } else {
      Encode(cp, out);
    }
  }
  return out;
}

std::optional<CanonicalQuantity> Canonicalize(double value, std::string_view code) {
  struct Unit {
    std::string_view code;
    double factor;
    std::string_view canonical;
  };
  // Deliberately small: the commensurable units that clinical data in the county actually uses.
  static constexpr Unit kUnits[] = {
      {"g", 1, "g"},          {"kg", 1000, "g"},     {"mg", 1e-3, "g"},
      {"ug", 1e-6, "g"},      {"[lb_av]", 453.59237, "g"},
      {"m", 1, "m"},          {"cm", 1e-2, "m"},     {"mm", 1e-3, "m"},
      {"km", 1e3, "m"},       {"[in_i]", 0.0254, "m"},
      {"mm[Hg]", 1, "mm[Hg]"}, {"kPa", 7.50061683, "mm[Hg]"},
  };
  for (const Unit& u : kUnits) {
    if (u.code == code) return CanonicalQuantity{value * u.factor, u.canonical};
  }
  return std::nullopt;
}

std::optional<NumberRange> ParseNumberRange(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  std::string s(text);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  // Precision: digits after the point in the mantissa, shifted by the exponent.
  size_t e = s.find_first_of("eE");
  std::string_view mant = std::string_view(s).substr(0, e);
  int scale = 0;
  if (size_t dot = mant.find('.'); dot != std::string_view::npos) {
    scale = static_cast<int>(mant.size() - dot - 1);
  }
  if (e != std::string::npos) scale -= std::atoi(s.c_str() + e + 1);
  double half = 0.5 * std::pow(10.0, -scale);
  return NumberRange{v, v - half, v + half};
}

}  // namespace jiceng::search
