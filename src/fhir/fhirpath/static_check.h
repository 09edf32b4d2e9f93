// fhir/fhirpath/static_check: the strict mode's semantic checks that do not depend on the data
// (internal to fhir/fhirpath). Evaluation alone cannot find these errors: an expression is
// as wrong in a branch the data never reaches as in one it does.
#pragma once

#include "base/result.h"
#include "fhir/fhirpath/ast.h"

namespace jiceng::fhirpath {

// Checks the whole expression (every branch, evaluated or not) and reports the first error:
//  - an order-dependent function (first, last, tail, skip, take) or indexer applied to a
//    collection derived from children()/descendants(), whose order is undefined.
Status CheckStrict(const AstNode& root);

}  // namespace jiceng::fhirpath
