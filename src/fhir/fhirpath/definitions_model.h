// fhir/fhirpath/definitions_model: the FHIRPath ModelInfo over the embedded R4 definitions
// (fhir::Definitions). Kept apart from the engine core so that only users of this adapter
// link the definitions.
#pragma once

#include "fhir/fhirpath/model.h"

namespace jiceng::fhirpath {

// The R4 model (thread-safe, lives for the process).
const ModelInfo& DefinitionsModel();

}  // namespace jiceng::fhirpath
