// base/ids: server-assigned resource ids and FHIR id syntax.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace jiceng {

// A random RFC 9562 version-4 UUID in lower-case text (36 characters, a valid FHIR id): for
// what must not be guessed or ordered (Bundle ids, keys of kept search results).
std::string NewUuid();
// A version-7 UUID (RFC 9562) from the current time: the id the server assigns to a new
// resource. Its first 48 bits are the Unix time in milliseconds, so ids made one after another
// sort together and a new resource's (type, id) key lands at the end of the store's B-tree
// instead of on a random leaf: with version-4 ids a batch of 5,000 creates dirtied ~4,000
// leaves of that index (docs/benchmarks.md, session 15). The other 74 bits are random.
std::string NewResourceId();
// The version-7 UUID of `unix_ms` and the low bits of `rand_a` (12) and `rand_b` (62): for a
// generator that needs ids deterministic from its own clock and random source.
std::string UuidV7(uint64_t unix_ms, uint64_t rand_a, uint64_t rand_b);
// FHIR id: [A-Za-z0-9\-\.]{1,64}
bool IsValidId(std::string_view id);

// FNV-1a, 64 bits, of `bytes`: a stable hash (the same on every machine and release) for keys
// that are stored or shared, such as PostgreSQL's distribution key.
uint64_t Fnv1a64(std::string_view bytes);

}  // namespace jiceng
