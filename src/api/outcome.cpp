#include "api/outcome.h"

namespace jiceng::api {

json::object MakeOperationOutcome(const std::vector<Issue>& issues) {
  json::array arr;
  arr.reserve(issues.size());
  for (const auto& i : issues) {
    json::object o;
    o["severity"] = i.severity;
    o["code"] = i.code;
    if (!i.diagnostics.empty()) o["diagnostics"] = i.diagnostics;
    if (!i.expression.empty()) o["expression"] = json::array{json::string(i.expression)};
    arr.emplace_back(std::move(o));
  }
  if (arr.empty()) {
    arr.emplace_back(json::object{{"severity", "information"}, {"code", "informational"},
                                  {"diagnostics", "All OK"}});
  }
  return json::object{{"resourceType", "OperationOutcome"}, {"issue", std::move(arr)}};
}

std::vector<Issue> IssuesOf(const Error& error) {
  if (!error.issues.empty()) return error.issues;
  return {Issue{"error", IssueTypeFor(error.code), error.message, {}}};
}

Response JsonResponse(int status, const json::value& body, bool pretty) {
  Response r;
  r.status = status;
  r.content_type = kFhirJson;
  r.body = pretty ? ToPrettyJson(body) : ToJson(body);
  return r;
}

Response ErrorResponse(const Error& error) {
  return JsonResponse(HttpStatus(error.code), MakeOperationOutcome(IssuesOf(error)), false);
}

const char* StatusLine(int status) {
  switch (status) {
    case 200: return "200 OK";
    case 201: return "201 Created";
    case 204: return "204 No Content";
    case 304: return "304 Not Modified";
    case 400: return "400 Bad Request";
    case 404: return "404 Not Found";
    case 405: return "405 Method Not Allowed";
    case 409: return "409 Conflict";
    case 410: return "410 Gone";
    case 412: return "412 Precondition Failed";
    case 415: return "415 Unsupported Media Type";
    case 422: return "422 Unprocessable Entity";
    default: return "500 Internal Server Error";
  }
}

}  // namespace jiceng::api
