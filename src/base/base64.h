// base/base64: base64 (RFC 4648 section 4) and its URL- and filename-safe alphabet (section 5).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace jiceng {

// `bytes` in base64: the standard alphabet ('+', '/') or the URL-safe one ('-', '_'), with or
// without '=' padding.
std::string EncodeBase64(std::string_view bytes, bool url_safe = false, bool padded = true);

// The bytes of base64 `text` in either alphabet, padded or not; spaces and line breaks are
// ignored. nullopt for any other character, for data after the padding, or for a length that
// leaves a lone sixth of a byte.
std::optional<std::string> DecodeBase64(std::string_view text);

}  // namespace jiceng
