// store/sqlite/sqlite_search: search on SQLite — the SQLite dialect of the shared search compiler
// (store/sql/search_sql.h) and the running of its statements.
// Internal to store/sqlite.
#pragma once

#include "base/result.h"
#include "store/sql/estimate_cache.h"
#include "store/store.h"

namespace jiceng::store::sql {
class Dialect;
}

namespace jiceng::store::sqlite {

class Connection;

// How SQLite spells the search SQL: ?N placeholders, 1/0 booleans, instr, FTS5 MATCH on
// fts_resource and sort values through resource_index_keys/jc_sort_key() (index_keys.h).
const sql::Dialect& SqliteDialect();

// Runs a search: the page of matching current resources, and the total when asked. The
// planner's row counts are taken from and kept in `estimates` when given (sql::EstimateCache).
Result<SearchPage> QuerySearch(Connection& c, const SearchQuery& q,
                               sql::EstimateCache* estimates = nullptr);

}  // namespace jiceng::store::sqlite
