// fhir/fhirpath/navigation: how a path step turns JSON members into FHIRPath items. Shared by
// the evaluator and PathPlan, which must yield exactly the evaluator's items. Internal to
// fhir/fhirpath.
#pragma once

#include <string_view>

#include "base/json.h"
#include "fhir/fhirpath/fhirpath.h"
#include "fhir/fhirpath/model.h"

namespace jiceng::fhirpath {

// The type of a JSON value the model could not describe.
std::string_view InferType(const json::value& v);

// Appends the items of one property: `val` (a value, or an array of values) with `ext`, its
// "_name" primitive extension (likewise), typed by `pi` unless a value names its resourceType.
void EmitProperty(const json::value* val, const json::value* ext, const PropertyInfo& pi,
                  Collection& out);

}  // namespace jiceng::fhirpath
