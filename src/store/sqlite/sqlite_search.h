// store/sqlite/sqlite_search: the compilation of a store::SearchQuery into SQL over the idx_*
// tables (schema v2, see sqlite_schema.cpp).
// Internal to store/sqlite.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::store::sqlite {

class Connection;

// Runs a search: the page of matching current resources, and the total when asked.
Result<SearchPage> QuerySearch(Connection& c, const SearchQuery& q);

}  // namespace jiceng::store::sqlite
