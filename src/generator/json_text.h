// generator/json_text: compact JSON text for generated resources. Boost.JSON 1.81 prints every
// double in exponent form (7.2 → "7.2E0"); FHIR decimals are read back fine but the files become
// hard to read and diff, so numbers are written in shortest round-trip plain form here.
#pragma once

#include <string>

#include "base/json.h"

namespace jiceng::generator {

void AppendJson(std::string& out, const boost::json::value& v);
void AppendJson(std::string& out, const boost::json::object& o);

}  // namespace jiceng::generator
