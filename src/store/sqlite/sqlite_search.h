// store/sqlite/sqlite_search: the compilation of a store::SearchQuery into SQL over the idx_*
// tables (schema migrations 2 and 3, see sqlite_schema.cpp).
//
// One statement per search: every clause is a "rid IN (rows of an index table)" condition on the
// resource row; chains nest such conditions on the referenced resources
// (rid IN (references whose target_id IN (ids of matching targets))), _has on the referring
// ones (id IN (target_ids of references from matching referrers)): no intermediate id lists
// in C++. Composite clauses match both components in one idx_composite row; _text/_content
// go through the FTS5 table fts_resource. SQLite-only spellings sit in one `dialect` block so a
// PostgreSQL dialect can reuse the compiler.
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
