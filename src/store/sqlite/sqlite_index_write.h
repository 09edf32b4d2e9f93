// store/sqlite/sqlite_index_write: writes the typed search index rows of a Put. Internal to
// store/sqlite (the read side, the search compiler, is sqlite_search).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::store::sqlite {

class Connection;

// A resource's full-text row (fts_resource), to be written when its transaction ends.
//
// Why held back: FTS5 flushes its pending terms to a new on-disk segment at every savepoint, and
// once fts_resource has been written in a transaction SQLite opens such a savepoint on it for
// every later statement that needs a statement journal (the resource upsert is one). Written
// inline, a 250-resource import unit or a Bundle made 250 tiny segments and their merges:
// callgrind put a third of the import writer's instructions in sqlite3VtabSavepoint. Written
// last, all of a transaction's rows go into FTS5's memory once and reach the disk in one flush.
struct FullTextWrite {
  int64_t rid = 0;
  bool fresh = false;                   // no earlier row to delete
  std::optional<FullTextIndexRow> row;  // nullopt: the resource has no text (delete only)
};
using FullTextQueue = std::vector<FullTextWrite>;

// Replaces the index rows of resource `rid` (of `type`) with `index`. `fresh`: the rid was just
// created (version 1), so there are no old rows to delete (nothing to look up or delete). The
// full-text row goes to `deferred_full_text` when given (see FullTextWrite), else is written now.
Status ReplaceIndexRows(Connection& c, std::string_view type, int64_t rid, bool fresh,
                        const IndexRows& index, FullTextQueue* deferred_full_text = nullptr);

// Writes the queued full-text rows in order and empties the queue.
Status FlushFullText(Connection& c, FullTextQueue& queue);

// The index keys of `rid` as last written (nullopt: the resource has no index rows), and their
// replacement (an empty IndexRows removes them). Used by ReplaceIndexRows and the migration
// that introduced resource_index_keys.
Result<std::optional<IndexRows>> ReadIndexKeys(Connection& c, int64_t rid);
Status WriteIndexKeys(Connection& c, int64_t rid, const IndexRows& index);

}  // namespace jiceng::store::sqlite
