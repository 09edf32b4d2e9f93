// http/target: request-target parsing and route classification. Kept free of Beast so the
// parsing rules can be tested on their own and stay cheap to compile.
#pragma once

#include <string>
#include <string_view>

#include "api/message.h"
#include "base/result.h"

namespace jiceng::http {

// Fills request.path (percent-decoded) and request.query (decoded pairs in order, `+` read as
// a space as in form encoding) from an origin-form target such as "/fhir/Patient?name=wang".
// Anything else (absolute-form, "*", bad escapes) is kInvalid: the caller answers 400.
Status ParseTarget(std::string_view target, api::Request& request);

// Low-cardinality route class for metric labels: "/fhir", "/fhir/{type}", "/fhir/{type}/{id}",
// "/fhir/{type}/{id}/*", "/healthz", "/metrics" or "other". Ids and values never leak into
// labels, so the number of time series stays bounded whatever clients send.
std::string_view RouteClass(std::string_view path);

// Method label: the standard methods as they are, everything else "OTHER" (bounded labels).
std::string_view MethodClass(std::string_view method);

// {"resourceType":"OperationOutcome","issue":[{"severity":"error","code":…,"diagnostics":…}]}
std::string OperationOutcomeJson(std::string_view issue_code, std::string_view diagnostics);


}  // namespace jiceng::http
