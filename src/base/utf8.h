// base/utf8: the one UTF-8 encoder (callers decide which code points they accept).
#pragma once

#include <string>

namespace jiceng {

// Appends the UTF-8 encoding of `cp` (which must be a Unicode scalar value: at most U+10FFFF,
// not a surrogate) to `out`.
void AppendUtf8(char32_t cp, std::string& out);

}  // namespace jiceng
