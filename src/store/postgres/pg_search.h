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

// Runs a search: the page of matching current resources, and the total when asked. The
// planner's row counts are taken from and kept in `estimates` when given (sql::EstimateCache).
// `timeout_in_force` (a read transaction's): the statement_timeout this transaction has set
// LOCAL (0: none), updated here. The search's timeout then stays set for the rest of the
// transaction, whose end drops it, and a later search with the same bound does not set it again
// (a compartment search sent it before each of its three statements: three round trips).
// nullptr (a unit of work's writes): the timeout is set for the search and put back after it.
Result<SearchPage> QuerySearch(PgConnection& c, const SearchQuery& q,
                               sql::EstimateCache* estimates = nullptr,
                               int64_t* timeout_in_force = nullptr);

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
