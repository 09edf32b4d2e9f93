// store/sqlite/sqlite_search: the typed search index rows of a Put, and the compilation of a
// store::SearchQuery into SQL over the idx_* tables (schema v2, see sqlite_schema.cpp).
// Internal to store/sqlite.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::store::sqlite {

class Connection;

// Replaces the index rows of resource `rid` (of `type`) with `index`. `fresh`: the rid was just
// created (version 1), so there are no old rows to delete (saves seven deletes per ingest).
Status ReplaceIndexRows(Connection& c, std::string_view type, int64_t rid, bool fresh,
                        const IndexRows& index);

// Runs a search: the page of matching current resources, and the total when asked.
Result<SearchPage> QuerySearch(Connection& c, const SearchQuery& q);

}  // namespace jiceng::store::sqlite
