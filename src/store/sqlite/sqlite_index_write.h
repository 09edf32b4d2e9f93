// store/sqlite/sqlite_index_write: writes the typed search index rows of a Put. Internal to
// store/sqlite (the read side, the search compiler, is sqlite_search).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::store::sqlite {

class Connection;

// Replaces the index rows of resource `rid` (of `type`) with `index`. `fresh`: the rid was just
// created (version 1), so there are no old rows to delete (nothing to look up or delete).
Status ReplaceIndexRows(Connection& c, std::string_view type, int64_t rid, bool fresh,
                        const IndexRows& index);

// The index keys of `rid` as last written (nullopt: the resource has no index rows), and their
// replacement (an empty IndexRows removes them). Used by ReplaceIndexRows and the migration
// that introduced resource_index_keys.
Result<std::optional<IndexRows>> ReadIndexKeys(Connection& c, int64_t rid);
Status WriteIndexKeys(Connection& c, int64_t rid, const IndexRows& index);

}  // namespace jiceng::store::sqlite
