#include "base/json.h"

#include <fmt/format.h>

#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <cmath>
#include <system_error>
#include <utility>

namespace jiceng {

// ---- JsonParser ----

namespace {

json::parse_options ParseOptions() {
  json::parse_options opts;  // strict JSON
  opts.max_depth = 128;
  return opts;
}

// The double nearest to `text`, a JSON number Boost.JSON has read as `approx`. std::from_chars
// rounds correctly; outside the range of double it reports an error instead of a value, and then
// the nearest double is an infinity or a zero (Boost's approximation is good enough to tell
// which, and the sign is the text's).
double NearestDouble(std::string_view text, double approx) {
  double d = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (ec == std::errc() && ptr == text.data() + text.size()) return d;
  if (ec == std::errc::result_out_of_range) {
    double magnitude = std::fabs(approx) >= 1 ? HUGE_VAL : 0.0;
    return !text.empty() && text.front() == '-' ? -magnitude : magnitude;
  }
  return approx;  // not expected: the parser has checked the syntax
}

}  // namespace

JsonParser::Handler::Handler(json::storage_ptr sp) { stack_.reset(std::move(sp)); }

bool JsonParser::Handler::on_document_begin(boost::system::error_code&) { return true; }
bool JsonParser::Handler::on_document_end(boost::system::error_code&) { return true; }
bool JsonParser::Handler::on_object_begin(boost::system::error_code&) { return true; }
bool JsonParser::Handler::on_object_end(std::size_t n, boost::system::error_code&) {
  stack_.push_object(n);
  return true;
}
bool JsonParser::Handler::on_array_begin(boost::system::error_code&) { return true; }
bool JsonParser::Handler::on_array_end(std::size_t n, boost::system::error_code&) {
  stack_.push_array(n);
  return true;
}
bool JsonParser::Handler::on_key_part(json::string_view s, std::size_t,
                                      boost::system::error_code&) {
  stack_.push_chars(s);
  return true;
}
bool JsonParser::Handler::on_key(json::string_view s, std::size_t, boost::system::error_code&) {
  stack_.push_key(s);
  return true;
}
bool JsonParser::Handler::on_string_part(json::string_view s, std::size_t,
                                         boost::system::error_code&) {
  stack_.push_chars(s);
  return true;
}
bool JsonParser::Handler::on_string(json::string_view s, std::size_t, boost::system::error_code&) {
  stack_.push_string(s);
  return true;
}
bool JsonParser::Handler::on_number_part(json::string_view s, boost::system::error_code&) {
  number_prefix_.append(s.data(), s.size());
  return true;
}
bool JsonParser::Handler::on_int64(std::int64_t i, json::string_view, boost::system::error_code&) {
  number_prefix_.clear();
  stack_.push_int64(i);
  return true;
}
bool JsonParser::Handler::on_uint64(std::uint64_t u, json::string_view,
                                    boost::system::error_code&) {
  number_prefix_.clear();
  stack_.push_uint64(u);
  return true;
}
bool JsonParser::Handler::on_double(double d, json::string_view s, boost::system::error_code&) {
  // `s` is the number's text in the last buffer; any earlier parts came through on_number_part.
  if (number_prefix_.empty()) {
    stack_.push_double(NearestDouble(std::string_view(s.data(), s.size()), d));
  } else {
    number_prefix_.append(s.data(), s.size());
    stack_.push_double(NearestDouble(number_prefix_, d));
    number_prefix_.clear();
  }
  return true;
}
bool JsonParser::Handler::on_bool(bool b, boost::system::error_code&) {
  stack_.push_bool(b);
  return true;
}
bool JsonParser::Handler::on_null(boost::system::error_code&) {
  stack_.push_null();
  return true;
}
bool JsonParser::Handler::on_comment_part(json::string_view, boost::system::error_code&) {
  return true;
}
bool JsonParser::Handler::on_comment(json::string_view, boost::system::error_code&) { return true; }

JsonParser::JsonParser(json::storage_ptr sp) : parser_(ParseOptions(), std::move(sp)) {}
JsonParser::~JsonParser() = default;

std::size_t JsonParser::WriteSome(std::string_view data, boost::system::error_code& ec) {
  return parser_.write_some(true, data.data(), data.size(), ec);
}

void JsonParser::Finish(boost::system::error_code& ec) {
  parser_.write_some(false, nullptr, 0, ec);
}

bool JsonParser::Done() const noexcept { return parser_.done(); }

json::value JsonParser::Release() {
  if (!parser_.done()) {
    // As stream_parser::release: finishing an unfinished document throws its error.
    boost::system::error_code ec;
    Finish(ec);
    if (ec) throw boost::system::system_error(ec);
  }
  return parser_.handler().Release();
}

// ---- ParseJson ----

Result<json::value> ParseJson(std::string_view text) {
  JsonParser p;
  boost::system::error_code ec;
  std::size_t n = p.WriteSome(text, ec);
  if (!ec && n == text.size()) p.Finish(ec);
  if (!ec && !p.Done()) ec = json::error::incomplete;
  if (ec) {
    std::size_t off = ec == json::error::incomplete ? text.size() : n;
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < off && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return Invalid(
        fmt::format("Malformed JSON at line {}, column {}: {}", line, col, ec.message()));
  }
  if (n != text.size()) {
    // Trailing bytes after a complete value; whitespace is fine.
    for (std::size_t i = n; i < text.size(); ++i) {
      char c = text[i];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
        return Invalid(
            fmt::format("Malformed JSON: unexpected data after the value at offset {}", i));
    }
  }
  return p.Release();
}

namespace {

// Boost.JSON 1.81 prints doubles in exponent form ("1.205E2"); FHIR decimals read better, and
// round-trip exactly, in the shortest form std::to_chars gives ("120.5").
void AppendScalar(std::string& out, const json::value& v) {
  char buf[32];
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      return;
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return;
    case json::kind::int64: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_int64());
      out.append(buf, r.ptr);
      return;
    }
    case json::kind::uint64: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
      out.append(buf, r.ptr);
      return;
    }
    case json::kind::double_: {
      double d = v.get_double();
      // JSON has no NaN/Infinity.
      if (!std::isfinite(d)) {
        out += "null";
        return;
      }
      auto r = std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, r.ptr);
      return;
    }
    case json::kind::string:
      AppendJsonString(out, v.get_string());
      return;
    default:
      return;
  }
}

}  // namespace

void AppendJson(std::string& out, const json::object& o) {
  out += '{';
  bool first = true;
  for (const auto& kv : o) {
    if (!first) out += ',';
    first = false;
    AppendJsonString(out, kv.key());
    out += ':';
    AppendJson(out, kv.value());
  }
  out += '}';
}

void AppendJson(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::object:
      AppendJson(out, v.get_object());
      return;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        AppendJson(out, e);
      }
      out += ']';
      return;
    }
    default:
      AppendScalar(out, v);
  }
}

void AppendJsonString(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;  // start of the pending run of bytes that need no escaping
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

std::string ToJson(const json::value& v) {
  std::string out;
  out.reserve(256);
  AppendJson(out, v);
  return out;
}

std::string ToJson(const json::object& o) {
  std::string out;
  out.reserve(1024);
  AppendJson(out, o);
  return out;
}

namespace {
void Pretty(std::string& out, const json::value& v, int indent) {
  auto pad = [&](int n) { out.append(static_cast<std::size_t>(n) * 2, ' '); };
  switch (v.kind()) {
    case json::kind::object: {
      const auto& o = v.get_object();
      if (o.empty()) {
        out += "{}";
        return;
      }
      out += "{\n";
      bool first = true;
      for (const auto& kv : o) {
        if (!first) out += ",\n";
        first = false;
        pad(indent + 1);
        AppendJsonString(out, kv.key());
        out += ": ";
        Pretty(out, kv.value(), indent + 1);
      }
      out += "\n";
      pad(indent);
      out += "}";
      return;
    }
    case json::kind::array: {
      const auto& a = v.get_array();
      if (a.empty()) {
        out += "[]";
        return;
      }
      out += "[\n";
      bool first = true;
      for (const auto& e : a) {
        if (!first) out += ",\n";
        first = false;
        pad(indent + 1);
        Pretty(out, e, indent + 1);
      }
      out += "\n";
      pad(indent);
      out += "]";
      return;
    }
    default:
      AppendScalar(out, v);
  }
}
}  // namespace

std::string ToPrettyJson(const json::value& v) {
  std::string out;
  Pretty(out, v, 0);
  return out;
}

bool JsonEqual(const json::value& a, const json::value& b) {
  switch (a.kind()) {
    case json::kind::null:
      return b.is_null();
    case json::kind::bool_:
      return b.is_bool() && a.get_bool() == b.get_bool();
    case json::kind::int64:
      if (b.is_int64()) return a.get_int64() == b.get_int64();
      return b.is_uint64() && a.get_int64() >= 0 &&
             static_cast<uint64_t>(a.get_int64()) == b.get_uint64();
    case json::kind::uint64:
      if (b.is_uint64()) return a.get_uint64() == b.get_uint64();
      return b.is_int64() && b.get_int64() >= 0 &&
             static_cast<uint64_t>(b.get_int64()) == a.get_uint64();
    case json::kind::double_:
      return b.is_double() && a.get_double() == b.get_double();
    case json::kind::string:
      return b.is_string() && a.get_string() == b.get_string();
    case json::kind::array: {
      if (!b.is_array()) return false;
      const json::array& x = a.get_array();
      const json::array& y = b.get_array();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!JsonEqual(x[i], y[i])) return false;
      }
      return true;
    }
    case json::kind::object: {
      if (!b.is_object()) return false;
      const json::object& x = a.get_object();
      const json::object& y = b.get_object();
      if (x.size() != y.size()) return false;
      for (const json::key_value_pair& member : x) {
        auto it = y.find(member.key());
        if (it == y.end() || !JsonEqual(member.value(), it->value())) return false;
      }
      return true;
    }
  }
  return false;
}

const json::value* Find(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &it->value();
}
const json::object* FindObject(const json::object& o, std::string_view key) {
  const auto* v = Find(o, key);
  return v && v->is_object() ? &v->get_object() : nullptr;
}
const json::array* FindArray(const json::object& o, std::string_view key) {
  const auto* v = Find(o, key);
  return v && v->is_array() ? &v->get_array() : nullptr;
}
std::optional<std::string_view> FindString(const json::object& o, std::string_view key) {
  const auto* v = Find(o, key);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string_view(v->get_string());
}

}  // namespace jiceng
