// base/utf8: the one UTF-8 encoder and decoder (callers decide which code points they accept).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jiceng {

// Appends the UTF-8 encoding of `cp` (which must be a Unicode scalar value: at most U+10FFFF,
// not a surrogate) to `out`.
void AppendUtf8(char32_t cp, std::string& out);

// The code points of `s` if it is valid UTF-8 (shortest forms only, no surrogates, at most
// U+10FFFF); nullopt for anything else.
std::optional<std::vector<char32_t>> DecodeUtf8(std::string_view s);

// The length of the valid UTF-8 sequence starting at s[i] (i < s.size()) and its code point in
// `cp`; 0 when no valid sequence starts there.
size_t DecodeUtf8At(std::string_view s, size_t i, char32_t& cp);

// Whether `s` is valid UTF-8 in that sense.
bool IsValidUtf8(std::string_view s);

}  // namespace jiceng
