// base/ids: server-assigned resource ids and FHIR id syntax.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace jiceng {

// A random RFC 4122 version-4 UUID in lower-case text (36 characters, a valid FHIR id).
std::string NewUuid();
// FHIR id: [A-Za-z0-9\-\.]{1,64}
bool IsValidId(std::string_view id);

// FNV-1a, 64 bits, of `bytes`: a stable hash (the same on every machine and release) for keys
// that are stored or shared, such as PostgreSQL's distribution key.
uint64_t Fnv1a64(std::string_view bytes);

}  // namespace jiceng
