// api/fhir_api_context: what a FhirApi route handler receives (internal to api/, shared by the
// .cpp files that define FhirApi's handlers).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/fhir_api.h"
#include "api/response_format.h"

namespace jiceng::api {

struct FhirApi::Context {
  Request& req;
  std::string type, id, vid;
  std::string rtype;  // the type (or "*") searched within the compartment type/id
  std::string base;   // base URL without trailing slash, e.g. http://host/fhir
  FormatOptions format;
  std::string prefer_return = "representation";
  bool strict_handling = false;
};

// The preferences of a Prefer header (RFC 7240) as (lower-case name, value) pairs.
std::vector<std::pair<std::string, std::string>> ParsePrefer(std::string_view header);

}  // namespace jiceng::api
