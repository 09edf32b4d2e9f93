// api/outcome: the one formatter that turns an Error (or a list of issues) into a FHIR
// OperationOutcome and an HTTP response.
#pragma once

#include <vector>

#include "api/message.h"
#include "base/error.h"
#include "base/json.h"

namespace jiceng::api {

json::object MakeOperationOutcome(const std::vector<Issue>& issues);
// The issues of an error: its own list, or one issue made from its message.
std::vector<Issue> IssuesOf(const Error& error);
Response ErrorResponse(const Error& error);
// A FHIR JSON response body with the given status.
Response JsonResponse(int status, const json::value& body, bool pretty = false);

// "201 Created", … for Bundle entry responses.
const char* StatusLine(int status);

inline constexpr const char* kFhirJson = "application/fhir+json; charset=utf-8";

}  // namespace jiceng::api
