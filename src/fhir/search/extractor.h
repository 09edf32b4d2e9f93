// fhir/search/extractor: the search index rows of a resource, for every R4 search parameter of
// its type (Definitions::SearchParams), extracted with the parameters' FHIRPath expressions.
//
// Every expression is compiled once per (resource type, parameter) on first use — restricted to
// the union branches that can apply to that type, so "Patient.name | Practitioner.name | …" costs
// one branch on a Patient — and evaluated per write. FHIRPath items map to typed rows by their
// FHIR type (HumanName → its parts as strings, CodeableConcept → its codings as tokens plus its
// text, Period → one date range, …); see the .cpp for the table.
//
// Composite parameters are indexed as store::CompositeIndexRow (two components: a token, then a
// token, quantity, date or string — every R4 composite but the MolecularSequence coordinates
// and DocumentReference relationship), one row per value combination within one element.
// Token parameters also yield "<code>:of-type" composite rows for Identifiers with a type, and
// reference parameters "<code>:identifier" token rows for Reference.identifier.
//
// Not indexed here: special parameters (near, _text/_content), and _id and _lastUpdated, which
// backends answer from the resource row itself.
#pragma once

#include <string_view>
#include <vector>

#include "base/json.h"
#include "fhir/definitions.h"
#include "store/store.h"

namespace jiceng::search {

// `resource` must be a JSON object with resourceType. Unknown types yield no rows. Never fails:
// an expression that errors on odd data indexes nothing for that parameter.
store::IndexRows ExtractIndexRows(const json::value& resource);

// The parameters of `type` that ExtractIndexRows indexes (and therefore search can answer).
std::vector<const fhir::SearchParamDef*> IndexedParams(std::string_view type);

// Reference text split into what ReferenceIndexRow stores: "Patient/1", "Patient/1/_history/2",
// "https://x/fhir/Patient/1", canonical "http://x/Questionnaire/q|2". false for "#contained"
// and empty references.
bool ParseReference(std::string_view text, store::ReferenceIndexRow& out);

}  // namespace jiceng::search
