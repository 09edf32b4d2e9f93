// fhir/fhirpath/model: the type information the engine needs from the FHIR model, behind a
// small interface so the engine core does not depend on fhir::Definitions (tests and tools can
// run it on untyped JSON; definitions_model.h adapts the real R4 definitions).
#pragma once

#include <string_view>

namespace jiceng::fhirpath {

// What a JSON property is. String views must stay valid for the model's lifetime.
struct PropertyInfo {
  bool found = false;
  std::string_view type;          // FHIR type code: "Quantity", "date", "BackboneElement"
  std::string_view context;       // where this node's children resolve: a type or backbone path
  std::string_view element_name;  // element name without "[x]": "value" for "valueQuantity"
  bool is_choice = false;
};

class ModelInfo {
 public:
  virtual ~ModelInfo() = default;

  // Resolves JSON property `json_name` (choice suffixes included: "valueQuantity") within a
  // type name or backbone element path.
  virtual PropertyInfo Resolve(std::string_view context, std::string_view json_name) const = 0;
  // Resolves element `name` as an expression names it (a choice element by its bare name:
  // "value") within a context. A choice element has no single type: `type` and `context` are
  // empty then. Used where no JSON is at hand, to check paths against the model.
  virtual PropertyInfo ResolveElement(std::string_view context, std::string_view name) const = 0;
  // Whether the model describes `context`; when it does, an unresolved property is an error in
  // the expression rather than a gap in the model.
  virtual bool KnowsContext(std::string_view context) const = 0;
  // Parent type ("Age" -> "Quantity", "code" -> "string"); empty at the root or when unknown.
  virtual std::string_view BaseType(std::string_view type) const = 0;
  virtual bool IsKnownType(std::string_view type) const = 0;
  virtual bool IsResourceType(std::string_view type) const = 0;
};

// The model used when none is supplied: knows primitive and common data type names and the
// few inheritance edges FHIRPath relies on, but no elements, so nodes are typed from their
// JSON (and from choice suffixes: "valueQuantity" -> Quantity).
const ModelInfo& BasicModel();

// FHIR primitive type codes ("date", "code", …).
bool IsFhirPrimitive(std::string_view type);

}  // namespace jiceng::fhirpath
