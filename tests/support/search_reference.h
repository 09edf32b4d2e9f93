// tests/support/search_reference: a reference implementation of FHIR R4 search, for tests only.
//
// It answers a type-level search over resources held in memory by evaluating each search
// parameter's FHIRPath expression (from the R4 definitions) with the FHIRPath engine, and
// implements the matching rules of https://hl7.org/fhir/R4/search.html itself. It shares
// nothing with the SQL path (fhir/search/query, extractor, store/sqlite) except the string
// normalisation (search::NormalizeString) and the table of commensurable units
// (search::CanonicalUnitOf), which are the server's documented choices, not matching logic.
//
// It is written to be read, not to be fast: the only concession is that the values a parameter
// takes on a resource are computed once and cached.
//
// Semantics (R4 search, with the server's documented choices where the spec leaves one open):
//   string     case/accent-insensitive starts-with; :exact (as written); :contains
//   token      code | system|code | |code | system| ; :not (no value matches, includes no
//              value), :text (string starts-with on Coding.display / CodeableConcept.text /
//              Identifier.type.text), :of-type, :in / :not-in (codes of a held ValueSet)
//   date       all prefixes over [start, end) ranges from partial dates, Periods, Timings;
//              `ap` widens the search range by 10% of its distance from now (at least a day)
//   number     exact decimal arithmetic: eq = [x - h, x + h) with h half a unit of the last
//              written digit, ne = not eq, gt/sa > x, lt/eb < x, ge >= x, le <= x (the spec's
//              number examples: "le100: less or equal to exactly 100"), ap within 10% of x
//   quantity   as number on the value; number|system|code: system and code (or, without a
//              system, the code or the human unit) must match, and UCUM units the server
//              converts (search::CanonicalUnitOf) compare on values in base units, exactly
//   reference  id (any type), Type/id, absolute URL, :Type, :identifier, :missing
//   uri        exact, :below (starts with), :above (is a prefix of the search value)
//   composite  token$value within one element of the composite's expression
//   _id, _lastUpdated (the stored instant), chains (multi-level, with type qualifiers), _has
//   (nested), OR with ',' and AND with repeated parameters, '\' escapes, _sort (several keys,
//   '-' descending; a resource's lowest value ascending / highest descending, dates by start /
//   end; resources without a value last; ties by id), _count, _getpagesoffset.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/result.h"
#include "fhir/definitions.h"

namespace jiceng::search_ref {

using Params = std::vector<std::pair<std::string, std::string>>;

// One current, non-deleted resource as the store holds it.
struct StoredResource {
  std::string type;
  std::string id;
  int64_t last_updated_us = 0;  // the store's instant (meta.lastUpdated is its ms rendering)
  json::value json;
};

struct ReferenceOptions {
  int64_t now_us = 0;                // the clock for `ap` on dates
  int default_offset_minutes = 480;  // dates and times written without an offset (UTC+8)
};

// A decimal as written: mantissa × 10^exponent, compared exactly (no binary rounding).
struct Decimal {
  bool negative = false;
  std::string digits;  // no leading zeros; empty for zero
  int exponent = 0;
};
std::optional<Decimal> ParseDecimal(std::string_view text);
// The shortest decimal that reads back as `d`: the value a JSON number stands for.
Decimal DecimalFromDouble(double d);
int CompareDecimal(const Decimal& a, const Decimal& b);
std::string FormatDecimal(const Decimal& d);
Decimal AddDecimal(const Decimal& a, const Decimal& b);
Decimal MultiplyDecimal(const Decimal& a, const Decimal& b);
// The implicit precision of a search number: half a unit of its last written digit.
Decimal HalfUnit(const Decimal& d);

// [start, end) in microseconds since the epoch; INT64_MIN / INT64_MAX for an open end.
struct DateRange {
  int64_t start = 0;
  int64_t end = 0;
};
// A FHIR date, dateTime or instant at its precision ("2024", "2024-03-05T10:00:00+08:00").
std::optional<DateRange> ParseDateRange(std::string_view text, int default_offset_minutes);

struct Token {
  std::optional<std::string> system;  // nullopt: the value has no system
  std::string code;
};
struct IdentifierType {  // for :of-type: one coding of Identifier.type, with the value
  Token type;
  std::string value;
};
struct QuantityValue {
  Decimal value;
  std::string system, code, unit;
};
struct ReferenceValue {
  std::string type;  // empty when the reference names no resource type
  std::string id;    // empty for a URL that names no Type/id
  std::string url;   // absolute URLs and canonicals (without |version); empty when relative
};

// What one search parameter yields on one resource (only the members of its type are used).
struct Values {
  std::vector<std::string> strings;  // string: as written
  std::vector<Token> tokens;         // token
  std::vector<std::string> texts;    // token: display / text / Identifier.type.text
  std::vector<IdentifierType> identifier_types;
  std::vector<DateRange> dates;
  std::vector<Decimal> numbers;
  std::vector<QuantityValue> quantities;
  std::vector<ReferenceValue> references;
  std::vector<Token> reference_identifiers;  // Reference.identifier, for :identifier
  std::vector<std::string> uris;
  // composite: per element of the composite's expression, the values of each component.
  std::vector<std::vector<Values>> composites;

  bool Empty(std::string_view kind) const;
};

// The page of a search: ids in order, and the number of all matches.
struct Answer {
  std::vector<std::string> ids;
  int64_t total = 0;
};

class ReferenceSearch {
 public:
  ReferenceSearch(std::vector<StoredResource> resources, ReferenceOptions options);
  ~ReferenceSearch();

  // Runs a type-level search given as decoded URL query pairs. Unknown parameters, modifiers
  // the reference does not implement and malformed values are kInvalid errors.
  Result<Answer> Search(std::string_view type, const Params& params);

  // For generators: the resource types held, the resources of a type (ordered by id), the
  // search parameters the reference evaluates for a type, and their values on a resource.
  std::vector<std::string> Types() const;
  const std::vector<const StoredResource*>& Resources(std::string_view type) const;
  std::vector<const fhir::SearchParamDef*> SearchParams(std::string_view type) const;
  const Values& ValuesOf(std::string_view type, size_t index, const fhir::SearchParamDef& param);
  // The position of Type/id among Resources(type), or nullopt.
  std::optional<size_t> Find(std::string_view type, std::string_view id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jiceng::search_ref
