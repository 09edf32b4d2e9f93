#include "http/target.h"

#include "base/json.h"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

namespace jiceng::http {

namespace {

// FHIR clients commonly send characters RFC 3986 does not allow in a query unescaped (the
// token separator '|' above all, also '"', '<', '>', '^', '`', '{', '}', '\\' and raw UTF-8).
// They are percent-encoded before parsing so that such requests are read as meant.
bool AllowedInTarget(unsigned char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  switch (c) {
    case '-': case '.': case '_': case '~': case '!': case '$': case '&': case '\'':
    case '(': case ')': case '*': case '+': case ',': case ';': case '=': case ':':
    case '@': case '/': case '?': case '%':
      return true;
    default:
      return false;
  }
}

}  // namespace

Status ParseTarget(std::string_view raw_target, api::Request& request) {
  std::string escaped;
  std::string_view target = raw_target;
  for (unsigned char c : raw_target) {
    if (!AllowedInTarget(c)) {
      if (c <= 0x20 || c == 0x7F) return Invalid("malformed request target");
      escaped.reserve(raw_target.size() + 16);
      for (unsigned char d : raw_target) {
        if (AllowedInTarget(d)) {
          escaped += static_cast<char>(d);
        } else {
          static const char* kHex = "0123456789ABCDEF";
          escaped += '%';
          escaped += kHex[d >> 4];
          escaped += kHex[d & 15];
        }
      }
      target = escaped;
      break;
    }
  }
  auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) return Invalid("malformed request target");
  const boost::urls::url_view& url = *parsed;
  request.path = url.path();
  if (request.path.empty()) request.path.push_back('/');  // "?a=1" means "/?a=1"
  request.query.clear();
  if (url.has_query()) {
    // params() decodes escapes and reads '+' as a space, as browsers and FHIR clients encode.
    for (auto param : url.params()) {
      if (param.key.empty() && !param.has_value) continue;  // "a=1&&b=2": empty segment
      request.query.emplace_back(std::move(param.key), std::move(param.value));
    }
  }
  return Status::Ok();
}

namespace {

// Splits off the next path segment; returns false when there is none.
bool NextSegment(std::string_view& rest, std::string_view& segment) {
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  if (rest.empty()) return false;
  size_t slash = rest.find('/');
  segment = rest.substr(0, slash);
  rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  return true;
}

}  // namespace

std::string_view RouteClass(std::string_view path) {
  std::string_view rest = path;
  std::string_view segment;
  if (!NextSegment(rest, segment)) return "other";
  if (segment == "healthz") return NextSegment(rest, segment) ? "other" : "/healthz";
  if (segment == "metrics") return NextSegment(rest, segment) ? "other" : "/metrics";
  if (segment != "fhir") return "other";
  if (!NextSegment(rest, segment)) return "/fhir";
  if (!segment.empty() && segment.front() == '$') return "/fhir/{op}";
  if (!NextSegment(rest, segment)) return "/fhir/{type}";
  if (!NextSegment(rest, segment)) return "/fhir/{type}/{id}";
  return "/fhir/{type}/{id}/*";
}

std::string_view MethodClass(std::string_view method) {
  static constexpr std::string_view kKnown[] = {"GET",    "HEAD",    "POST", "PUT",
                                                "DELETE", "OPTIONS", "PATCH"};
  for (std::string_view m : kKnown)
    if (m == method) return m;
  return "OTHER";
}

std::string OperationOutcomeJson(std::string_view issue_code, std::string_view diagnostics) {
  std::string out = R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":)";
  AppendJsonString(out, issue_code);
  out += R"(,"diagnostics":)";
  AppendJsonString(out, diagnostics);
  out += R"(}]})";
  return out;
}

}  // namespace jiceng::http
