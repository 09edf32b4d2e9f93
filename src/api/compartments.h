// api/compartments: the R4 compartments (Patient, Encounter, RelatedPerson, Practitioner,
// Device) — which search parameters put a resource of a type into a compartment. The table is
// generated at build time from the R4 CompartmentDefinitions (tools/compartmentgen); the Patient
// one is the definition fhir::Definitions embeds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::api {

// The parameter that stands for "the compartment's own resource" (e.g. Encounter in the
// Encounter compartment).
inline constexpr std::string_view kCompartmentSelf = "{def}";

// Whether `type` names a compartment (Device, Encounter, Patient, Practitioner, RelatedPerson).
bool IsCompartmentType(std::string_view type);
// The compartment types, sorted.
const std::vector<std::string>& CompartmentTypes();
// Search parameter codes of `resource_type` that place a resource in a `compartment` instance
// when any of them references the compartment's resource. Empty: never in it.
const std::vector<std::string>& CompartmentParams(std::string_view compartment,
                                                  std::string_view resource_type);
// The resource types that can be in a compartment, sorted.
const std::vector<std::string>& CompartmentResourceTypes(std::string_view compartment);
// The canonical URL of the compartment's definition, e.g.
// http://hl7.org/fhir/CompartmentDefinition/patient.
std::string CompartmentDefinitionUrl(std::string_view compartment);

// A search restricted to one compartment instance.
struct CompartmentQuery {
  store::SearchQuery query;      // the search with the membership condition added
  std::optional<int64_t> total;  // its number of matches, when it was counted
};

// Restricts `q` (of q.type) to the compartment `compartment`/`id`: a resource is in it when ANY
// of its compartment parameters references Compartment/id ("{def}": the resource itself, when
// `include_self`). The store ANDs clauses: the reference parameters become one more clause,
// over their rows together when there are several (SearchClause::union_of); with the resource
// itself among them (counted first, within the snapshot), the union of their matches becomes an
// _id clause. With `count` the total is always computed. nullopt: q.type can never
// be in this compartment.
Result<std::optional<CompartmentQuery>> RestrictToCompartment(store::IReadTransaction& txn,
                                                              const store::SearchQuery& q,
                                                              std::string_view compartment,
                                                              std::string_view id, bool count,
                                                              bool include_self);

// Upper bound of the union of several parameters' matches (the _id clause above, when the
// compartment's own resource is one of them).
inline constexpr int64_t kMaxCompartmentUnion = 20000;

namespace internal {
// One row of the generated table: `params` is a comma-separated list.
struct CompartmentRow {
  const char* compartment;
  const char* type;
  const char* params;
};
extern const CompartmentRow kCompartmentRows[];
extern const std::size_t kCompartmentRowCount;
}  // namespace internal

}  // namespace jiceng::api
