// base/json: the JSON facade. Boost.JSON is the one DOM across Jiceng; these helpers keep
// error handling and common look-ups in one place.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace jiceng {

namespace json = boost::json;

// Parses text; a syntax error becomes an Invalid error naming the line and column. Decimals are
// read as the nearest double (see JsonParser); values are held as IEEE doubles, so a decimal
// comes back as the same number but not always as the same text ("1.50" is served as "1.5").
Result<json::value> ParseJson(std::string_view text);

// The incremental parser behind ParseJson: boost::json::stream_parser's behaviour (the same DOM
// built on a json::value_stack, the same errors and limits) with one difference. Boost.JSON 1.81
// converts some decimals of 17 significant digits to a neighbouring double (112.41600000000001
// becomes 112.416); this parser converts every number with a fraction or an exponent, and every
// integer too large for 64 bits, with std::from_chars, which rounds correctly. Integers are read
// as Boost reads them. Options are ParseJson's: depth limit 128, strict JSON (no comments, no
// trailing commas, valid UTF-8 only).
class JsonParser {
 public:
  // `sp` is the memory resource of the resulting value (the default resource if null).
  explicit JsonParser(json::storage_ptr sp = {});
  ~JsonParser();
  JsonParser(const JsonParser&) = delete;
  JsonParser& operator=(const JsonParser&) = delete;

  // As stream_parser::write_some: parses as much of `data` as it can, stopping after a complete
  // value, and returns the number of bytes consumed (on an error, the offset of the error).
  std::size_t WriteSome(std::string_view data, boost::system::error_code& ec);
  // Ends the input; a value still open becomes json::error::incomplete.
  void Finish(boost::system::error_code& ec);
  bool Done() const noexcept;
  // The parsed value. As stream_parser::release, an unfinished input is finished first, and an
  // error then is thrown (boost::system::system_error).
  json::value Release();

 private:
  // A basic_parser handler: builds the value as Boost's own parser does, except for decimals.
  class Handler {
   public:
    static constexpr std::size_t max_object_size = json::object::max_size();
    static constexpr std::size_t max_array_size = json::array::max_size();
    static constexpr std::size_t max_key_size = json::string::max_size();
    static constexpr std::size_t max_string_size = json::string::max_size();

    explicit Handler(json::storage_ptr sp);

    // The names basic_parser calls.
    // NOLINTBEGIN(readability-identifier-naming)
    bool on_document_begin(boost::system::error_code& ec);
    bool on_document_end(boost::system::error_code& ec);
    bool on_object_begin(boost::system::error_code& ec);
    bool on_object_end(std::size_t n, boost::system::error_code& ec);
    bool on_array_begin(boost::system::error_code& ec);
    bool on_array_end(std::size_t n, boost::system::error_code& ec);
    bool on_key_part(json::string_view s, std::size_t n, boost::system::error_code& ec);
    bool on_key(json::string_view s, std::size_t n, boost::system::error_code& ec);
    bool on_string_part(json::string_view s, std::size_t n, boost::system::error_code& ec);
    bool on_string(json::string_view s, std::size_t n, boost::system::error_code& ec);
    bool on_number_part(json::string_view s, boost::system::error_code& ec);
    bool on_int64(std::int64_t i, json::string_view s, boost::system::error_code& ec);
    bool on_uint64(std::uint64_t u, json::string_view s, boost::system::error_code& ec);
    bool on_double(double d, json::string_view s, boost::system::error_code& ec);
    bool on_bool(bool b, boost::system::error_code& ec);
    bool on_null(boost::system::error_code& ec);
    bool on_comment_part(json::string_view s, boost::system::error_code& ec);
    bool on_comment(json::string_view s, boost::system::error_code& ec);
    // NOLINTEND(readability-identifier-naming)

    json::value Release() { return stack_.release(); }

   private:
    json::value_stack stack_;
    // The leading parts of a number split across WriteSome calls (on_number_part).
    std::string number_prefix_;
  };
  json::basic_parser<Handler> parser_;
};

// Compact serialization. Doubles are written in their shortest round-trip form ("120.5", not
// Boost's "1.205E2"); strings keep UTF-8 as it is and escape only what JSON requires.
std::string ToJson(const json::value& v);
// The same for an object, without first copying it into a json::value (which an object
// argument to the overload above would do, node by node).
std::string ToJson(const json::object& o);
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

// Deep equality with the meaning of json::value's operator==: objects compare as unordered sets
// of members, an int64 equals a uint64 of the same value, doubles equal only doubles. Boost.JSON
// 1.81's object comparison copies every member of one side as it goes (`for (auto e : *this)`),
// which made comparing two resources' elements allocate per node; this copies nothing.
bool JsonEqual(const json::value& a, const json::value& b);

}  // namespace jiceng
