// fhir/validator: structural validation of a FHIR R4 resource in JSON against the embedded R4
// definitions: known resourceType and properties, choice types, JSON kinds and arrays,
// cardinality, primitive formats, primitive extensions (`_name`), nested resources (contained,
// Bundle.entry.resource, Parameters.parameter.resource), codes of required bindings whose
// value sets the server holds, and the narrative rules for xhtml (Narrative.div: txt-1, txt-2
// and safe XHTML, fhir/xhtml.h). Not checked: other invariants (FHIRPath constraints), profiles,
// reference targets, terminology beyond the held value sets.
//
// Issue codes (http://hl7.org/fhir/issue-type): "structure" (unknown element, wrong JSON kind,
// empty array/object, several choice variants), "required" (missing element), "value"
// (primitive format, narrative rules), "code-invalid" (code outside a required value set),
// "invalid" (no or unknown resourceType). Locations are FHIRPath with array indices
// ("Patient.name[0].given[1]"); a nested resource continues its container's path without a type
// step ("Bundle.entry[3].resource.birthDate").
#pragma once

#include <boost/json/object.hpp>
#include <vector>

#include "base/error.h"
#include "base/result.h"

namespace jiceng::fhir {

struct ValidationOptions {
  // Lenient mode reports unknown elements as warnings instead of errors (for legacy data
  // loaded through bulk import); every other check stays an error.
  bool strict = true;
};

// All issues found (errors and warnings), in document order.
std::vector<Issue> Validate(const boost::json::object& resource, const ValidationOptions& options = {});

// Validate() folded into a Status: an kUnprocessable Error carrying every issue when at least
// one is an error; the warnings of an accepted resource go to `warnings` when given.
Status ValidateResource(const boost::json::object& resource, const ValidationOptions& options = {},
                        std::vector<Issue>* warnings = nullptr);

// Whether any issue has severity error or fatal.
bool HasErrors(const std::vector<Issue>& issues);

}  // namespace jiceng::fhir
