// base/json: the JSON facade. Boost.JSON is the one DOM across Jiceng; these helpers keep
// error handling and common look-ups in one place.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace jiceng {

namespace json = boost::json;

// Parses text; a syntax error becomes an Invalid error naming the line and column.
Result<json::value> ParseJson(std::string_view text);

// Compact serialization. Doubles are written in their shortest round-trip form ("120.5", not
// Boost's "1.205E2"); strings keep UTF-8 as it is and escape only what JSON requires.
std::string ToJson(const json::value& v);
// Appends the compact serialization of `v` / `o` to `out`.
void AppendJson(std::string& out, const json::value& v);
void AppendJson(std::string& out, const json::object& o);
// Appends `s` as a JSON string literal (with quotes).
void AppendJsonString(std::string& out, std::string_view s);
// Two-space indented serialization (for `_pretty=true`).
std::string ToPrettyJson(const json::value& v);

// Look-ups that return nullptr / nullopt when the member is absent or of another type.
const json::value* Find(const json::object& o, std::string_view key);
const json::object* FindObject(const json::object& o, std::string_view key);
const json::array* FindArray(const json::object& o, std::string_view key);
std::optional<std::string_view> FindString(const json::object& o, std::string_view key);

}  // namespace jiceng
