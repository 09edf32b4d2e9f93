#include "base/json.h"

#include <fmt/format.h>

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
      if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
    }
    return Invalid(fmt::format("Malformed JSON at line {}, column {}: {}", line, col, ec.message()));
  }
  if (n != text.size()) {
    // Trailing bytes after a complete value; whitespace is fine.
    for (std::size_t i = n; i < text.size(); ++i) {
      char c = text[i];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
        return Invalid(fmt::format("Malformed JSON: unexpected data after the value at offset {}", i));
    }
  }
  return p.release();
}

std::string ToJson(const json::value& v) { return json::serialize(v); }

namespace {
void Pretty(std::string& out, const json::value& v, int indent) {
  auto pad = [&](int n) { out.append(static_cast<std::size_t>(n) * 2, ' '); };
  switch (v.kind()) {
    case json::kind::object: {
      const auto& o = v.get_object();
      if (o.empty()) { out += "{}"; return; }
      out += "{\n";
      bool first = true;
      for (const auto& kv : o) {
        if (!first) out += ",\n";
        first = false;
        pad(indent + 1);
        out += json::serialize(json::string(kv.key()));
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
      if (a.empty()) { out += "[]"; return; }
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
      out += json::serialize(v);
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
