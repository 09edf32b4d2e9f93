// fhir/primitives: the FHIR R4 primitive data types' JSON representation and lexical rules
// (the regexes of the R4 specification, hand-written because std::regex is far too slow for the
// write path).
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <string_view>

namespace jiceng::fhir {

enum class PrimitiveKind : uint8_t {
  kNone,  // not a primitive type
  kBoolean,
  kInteger,
  kPositiveInt,
  kUnsignedInt,
  kDecimal,
  kString,
  kMarkdown,
  kId,
  kCode,
  kUri,
  kUrl,
  kCanonical,
  kOid,
  kUuid,
  kBase64Binary,
  kDate,
  kDateTime,
  kInstant,
  kTime,
  kXhtml,
};

// kNone for a name that is not a primitive type (e.g. "Quantity").
PrimitiveKind PrimitiveKindOf(std::string_view type);

// Whether `v` is a valid JSON representation of a value of the primitive `kind`. On failure
// `why` (if not null) receives a short static reason.
bool CheckPrimitive(PrimitiveKind kind, const boost::json::value& v, const char** why = nullptr);

// The lexical checks on their own (exposed for search parameter parsing and tests).
bool IsValidDate(std::string_view s);
bool IsValidDateTime(std::string_view s);
bool IsValidInstant(std::string_view s);
bool IsValidTime(std::string_view s);
bool IsValidId(std::string_view s);
bool IsValidCode(std::string_view s);

}  // namespace jiceng::fhir
