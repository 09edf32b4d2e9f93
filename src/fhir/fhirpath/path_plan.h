// fhir/fhirpath/path_plan: a fast path for the expressions most search parameters are made of.
//
// Nearly every R4 search parameter expression is a union of plain paths from the resource:
// "Observation.code", "Patient.name.given", "(Observation.value as Quantity)",
// "Observation.value.ofType(CodeableConcept) | Observation.component.value.ofType(…)",
// "Observation.subject.where(resolve() is Patient)". The general evaluator runs them through
// the AST, building a collection per node and looking each element up in the model by name on
// every call. A PathPlan compiles such an expression once, for one resource type, into steps
// whose model look-ups are resolved ahead where the context is known, and runs them straight on
// the JSON with buffers the caller reuses.
//
// A plan yields exactly the items fhirpath::Evaluate yields (same nodes, same FHIR types, same
// order, the union's duplicate rule, the same errors as "no result"). Whatever it does not
// cover it refuses: Compile returns nullopt for other expression shapes, and Run reports
// kUnsupported for data it does not handle (a child of a primitive's extension, a contained
// reference to resolve(), a context the model does not know, …), and the caller evaluates the
// expression in full instead.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/fhirpath/fhirpath.h"

namespace jiceng::fhirpath {

class PathPlan {
 public:
  enum class Outcome {
    kOk,           // `out` holds the items
    kError,        // the expression fails on this data (Evaluate would return an error)
    kUnsupported,  // not covered: evaluate the expression instead
  };

  // `resource_type`: the plan runs from a resource of that type ("Observation.code" then
  // starts at the resource itself); empty: from any input item, with relative paths
  // ("value.ofType(Quantity)", as composite components are written).
  static std::optional<PathPlan> Compile(const Expression& expr, std::string_view resource_type,
                                         const ModelInfo& model);

  // The elements the plan's branches start from, when every branch starts by naming an element
  // of the input ("Observation.code | Observation.component.code": "code" and "component");
  // empty when some branch does not (then nothing can be concluded from them). On an input
  // object with no member named after any of them — as is, with the "_" of a primitive's
  // extension, or as a choice's typed name ("valueQuantity" for "value") — Run yields nothing,
  // as does Evaluate, so a caller that knows the input's member names can skip the run.
  std::vector<std::string_view> LeadingElements() const;

  // Buffers a run works in. Kept by the caller and reused from run to run, so that running a
  // plan allocates nothing once they have grown.
  struct Workspace {
    Collection a, b, c;
  };

  // Evaluates on `input` (the resource's root item, or the element for relative paths) within
  // `resource`; `out` is cleared first. Neither `input` nor `out` may live in `ws`.
  Outcome Run(const Item& input, const json::value& resource, Collection& out, Workspace& ws) const;

 private:
  struct Step {
    enum class Kind : uint8_t {
      kChild,       // .name
      kOfType,      // .ofType(T), and `as T` (which R4 parameters use as a filter)
      kResolvesTo,  // .where(resolve() is T)
    };
    Kind kind = Kind::kChild;
    std::string name;      // element name, or type name without "FHIR."
    std::string ext_name;  // kChild: "_name", where a primitive's id and extensions live
    // kChild: the element as the model resolves it in `context`, when the context is known at
    // compile time and the element is not a choice; items in another context (a contained
    // resource, a choice's type) are resolved when run.
    std::string context;
    PropertyInfo property;
    bool never_matches = false;  // kOfType of a System type: no node is one
  };
  struct Branch {
    std::vector<Step> steps;
  };

  Outcome RunBranch(const Branch& b, const Item& input, const json::value& resource,
                    Collection& out, Workspace& ws) const;
  Outcome Child(const Step& s, const Item& item, Collection& out) const;
  bool TypeMatches(std::string_view type, std::string_view name, bool allow_subtype) const;

  const ModelInfo* model_ = nullptr;
  std::vector<Branch> branches_;
  bool distinct_ = false;  // the expression is a union: duplicates are dropped
};

}  // namespace jiceng::fhirpath
