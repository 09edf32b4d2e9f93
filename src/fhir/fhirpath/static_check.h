// fhir/fhirpath/static_check: the strict mode's semantic checks that do not depend on the data
// (internal to fhir/fhirpath). Evaluation alone cannot find these errors: `(Observation.value
// as Period).unit` is empty at run time on an Observation holding a Quantity, yet names an
// element Period does not have.
#pragma once

#include "base/result.h"
#include "fhir/fhirpath/ast.h"
#include "fhir/fhirpath/model.h"

namespace jiceng::fhirpath {

// Checks the whole expression (every branch, evaluated or not) and reports the first error:
//  - an order-dependent function (first, last, tail, skip, take) or indexer applied to a
//    collection derived from children()/descendants(), whose order is undefined;
//  - a member that is not an element of the type an expression's `as T`, as(T) or ofType(T)
//    names, or of the element types reached from there, as far as `model` describes them.
Status CheckStrict(const AstNode& root, const ModelInfo& model);

}  // namespace jiceng::fhirpath
