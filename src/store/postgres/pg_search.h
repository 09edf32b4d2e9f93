// store/postgres/pg_search: search on PostgreSQL — the PostgreSQL dialect of the shared search
// compiler (store/sql/search_sql.h) and the running of its statements.
// Internal to store/postgres (the tests of the dialect include it too).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/sql/estimate_cache.h"
#include "store/store.h"

namespace jiceng::store::sql {
class Dialect;
}

namespace jiceng::store::postgres {

class PgConnection;
class PgResult;

// A resource version from a row whose first columns are, in order, "type, id, version,
// last_updated_us, deleted, json" (the store's queries and the search's pages alike).
ResourceVersion RowToVersion(const PgResult& r, int row);

// How PostgreSQL spells the search SQL: $N placeholders cast to their type (bytea for ids, codes
// and systems, text COLLATE "C" columns compared by range), TRUE/FALSE, position(), the
// tsvector columns of fts_resource, and sort values as min()/max() over the idx_* tables by rid.
const sql::Dialect& PostgresDialect();

// The settings a read transaction has set LOCAL for its searches, so that a later search in the
// same transaction sends only what changes (a compartment search sent its timeout before each of
// its three statements: three round trips). The transaction's end drops them all.
struct SearchSettings {
  int64_t timeout_ms = 0;      // statement_timeout (0: none set)
  bool generic_plans = false;  // plan_cache_mode = force_generic_plan
};

// Runs a search: the page of matching current resources, and the total when asked. The
// planner's row counts are taken from and kept in `estimates` when given (sql::EstimateCache).
// `in_force` (a read transaction's): what this transaction has set LOCAL, updated here.
// - The search's timeout then stays set for the rest of the transaction.
// - A search driven by a clause of few index rows (not CompiledSearch::plan_each_time) runs
//   with generic plans: its prepared statements are planned once for any values, never again
//   per run. PostgreSQL's own choice kept planning them for each run's values (0.2–0.6 ms a
//   statement, more than running it) because a generic plan's estimate looked dearer, although
//   its plan was the same. A search over many rows goes back to the default, and sends its
//   statements unnamed (planned for their values).
// - Both ride with the transaction's BEGIN when it has not been sent yet (no round trip).
// nullptr (a unit of work's writes): the timeout is set for the search and put back after it,
// and plans are left to PostgreSQL.
Result<SearchPage> QuerySearch(PgConnection& c, const SearchQuery& q,
                               sql::EstimateCache* estimates = nullptr,
                               SearchSettings* in_force = nullptr);

// The smallest text greater than every text that starts with `prefix`, in code point order
// (COLLATE "C" on UTF-8): `prefix` with its last code point incremented, dropping trailing
// U+10FFFF and skipping the surrogates. nullopt when there is none (empty, or only U+10FFFF).
// Valid UTF-8 in, valid UTF-8 out: text columns cannot hold the 0xFF byte SQLite uses.
std::optional<std::string> PrefixUpperBound(std::string_view prefix);

// The tsquery (input of to_tsquery('simple', …)) for one word of _text/_content: its
// sql::FullTextWords quoted, in order (<->), the last as a prefix (:*). Empty when the word
// holds no word character.
std::string WordQuery(std::string_view word);

// The full text as fts_resource indexes it: its sql::FullTextWords separated by single spaces,
// so that to_tsvector('simple', …) sees exactly those words (its own parser would keep "a-b",
// e-mail addresses, URLs and "36.5" whole, or read "-03" as a signed number).
std::string FullTextDocument(std::string_view text);

}  // namespace jiceng::store::postgres
