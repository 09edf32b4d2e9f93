// base/ids: server-assigned resource ids and FHIR id syntax.
#pragma once

#include <string>
#include <string_view>

namespace jiceng {

// A random RFC 4122 version-4 UUID in lower-case text (36 characters, a valid FHIR id).
std::string NewUuid();
// FHIR id: [A-Za-z0-9\-\.]{1,64}
bool IsValidId(std::string_view id);

}  // namespace jiceng
