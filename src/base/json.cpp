#include "base/json.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace jiceng {

Result<json::value> ParseJson(std::string_view text) {
  json::parse_options opts;
  opts.max_depth = 128;
  json::stream_parser p({}, opts);
  boost::system::error_code ec;
  std::size_t n = p.write_some(text.data(), text.size(), ec);
  if (!ec && n == text.size()) p.finish(ec);
  if (!ec && !p.done()) ec = json::error::incomplete;
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
  return p.release();
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
