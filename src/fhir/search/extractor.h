// fhir/search/extractor: the search index rows of a resource, for every R4 search parameter of
// its type (Definitions::SearchParams), extracted with the parameters' FHIRPath expressions.
//
// Every expression is compiled once per (resource type, parameter) on first use — restricted to
// the union branches that can apply to that type, so "Patient.name | Practitioner.name | …" costs
// one branch on a Patient — and evaluated per write: by a fhirpath::PathPlan (direct JSON
// navigation) when the expression is a union of plain paths, as nearly all are, else by the
// FHIRPath evaluator; both yield the same items. FHIRPath items map to typed rows by their FHIR
// type (HumanName → its parts as strings, CodeableConcept → its codings as tokens plus its text,
// Period → one date range, …); see the .cpp for the table.
//
// Composite parameters are indexed as store::CompositeIndexRow (a token, then a token, quantity,
// date, string or reference; or a token then two numbers, the MolecularSequence coordinates:
// every R4 composite), one row per value combination within one element.
// Token parameters also yield "<code>:of-type" composite rows for Identifiers with a type, and
// reference parameters "<code>:identifier" token rows for Reference.identifier.
//
// Not indexed here: special parameters (near, _text/_content), and _id and _lastUpdated, which
// backends answer from the resource row itself.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "fhir/definitions.h"
#include "store/store.h"

namespace jiceng::search {

struct ExtractOptions {
  // This server's base URL ("https://jiceng.example/fhir", config server.base_url). R4
  // References: a reference is relative to the server's base, so "<base>/Patient/1" names the
  // local Patient/1 and is indexed as such (with its URL); any other absolute URL names another
  // server's resource and is indexed by its URL only, never by the Type/id at its end. Empty:
  // every absolute URL is another server's. Canonical (and uri) targets are identities, not
  // locations: indexed by URL only whatever the base.
  std::string base_url;
};

// The options ExtractIndexRows(resource) and ParseSearch/ParseCriteria use when given none: the
// server's base URL, set once at startup (the API sets it from config server.base_url). Empty
// until set. Thread-safe.
void SetServerBaseUrl(std::string_view base_url);
std::string ServerBaseUrl();

// `resource` must be a JSON object with resourceType. Unknown types yield no rows. Never fails:
// an expression that errors on odd data indexes nothing for that parameter.
store::IndexRows ExtractIndexRows(const json::value& resource, const ExtractOptions& options);
// With ServerBaseUrl() as the base URL.
store::IndexRows ExtractIndexRows(const json::value& resource);

// The system of the quantity rows that carry a Quantity's human unit: R4 search, quantity,
// "5.4||mg: ... where the unit - either the code (code) or the stated human unit (unit) are
// 'mg'". A Quantity whose unit differs from its code gets one more row, with the unit as code
// and this system, which no valid uri can be (it holds spaces): "5.4||mmHg" finds it, while a
// search naming a system ("5.4|http://unitsofmeasure.org|mmHg") and the unit conversions never
// read it, so that system|code searches are not widened.
inline constexpr std::string_view kHumanUnitSystem = "(human unit)";

// The definitions of a composite's components, in the order of its component expressions (the
// order of the '$'-separated parts of a search value). R4's DocumentReference-relationship names
// them the wrong way round (relatesto, a reference, for `code`; relation, a token, for
// `target`): where each definition's expression ends in the other component's expression and
// not in its own, the two are swapped back, so relationship is relation$relatesto
// ("replaces$DocumentReference/1"). Empty when a definition is unknown.
std::vector<const fhir::SearchParamDef*> CompositeComponentDefs(const fhir::SearchParamDef& p);

// The parameters of `type` that ExtractIndexRows indexes (and therefore search can answer).
std::vector<const fhir::SearchParamDef*> IndexedParams(std::string_view type);

// For a parameter of `type` whose expression is exactly the union of other indexed parameters'
// (Observation combo-code = code | component-code, and the other combo-* ones): those
// parameters' codes. ExtractIndexRows stores no rows of its own for it; its rows are theirs.
// nullptr for every other parameter.
const std::vector<std::string>* StoredAsUnionOf(std::string_view type, std::string_view code);

// Reference text split into what ReferenceIndexRow stores: "Patient/1", "Patient/1/_history/2",
// "https://x/fhir/Patient/1", canonical "http://x/Questionnaire/q|2". false for "#contained"
// and empty references.
bool ParseReference(std::string_view text, store::ReferenceIndexRow& out);

// Whether `url` is a resource of this server: "<base_url>/Type/id" (optionally
// "/_history/vid"), with a known resource type. If so, sets out.target_type and out.target_id.
// Always false when base_url is empty.
bool LocalReference(std::string_view url, std::string_view base_url, store::ReferenceIndexRow& out);

}  // namespace jiceng::search
