// store/sqlite/sqlite_index_write: writes the typed search index rows of a Put. Internal to
// store/sqlite (the read side, the search compiler, is sqlite_search).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/store.h"

struct sqlite3;

namespace jiceng::store::sqlite {

class Connection;
class IndexRunBuffer;

// Column order of jc_pending (keep in sync with kPendingDeclaration in sqlite_index_write.cpp):
// the idx_* columns.
enum PendingColumn : int {
  kType,
  kRid,
  kParam,
  kValue,
  kExact,
  kCode,
  kSystem,
  kStartUs,
  kEndUs,
  kCanonicalCode,
  kCanonicalValue,
  kTargetId,
  kTargetType,
  kUrl,
  kCode1,
  kSystem1,
  kCode2,
  kSystem2,
  kNumber2,
  kStart2Us,
  kEnd2Us,
  kCanonicalCode2,
  kCanonicalNumber2,
  kRowsArg,
  kKindArg
};

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

// The idx_* rows of a unit of work's new versions, inserted together when the unit ends
// (PendingIndexRows::Flush) instead of one INSERT statement per row.
//
// Why: an import writes ~20 index rows per resource, and one INSERT per row cost ~13,000
// instructions of the writer thread each (statement step, reset and bindings, and a B-tree
// descent to a random leaf): well over half of the writer's time (callgrind, docs/benchmarks.md).
// Held back until the unit ends, each kind's rows are sorted by the primary key of their
// table and inserted by one INSERT … SELECT over them (the jc_pending table-valued function), so
// the B-tree is walked in key order. The rows stored are the same as one INSERT OR IGNORE per
// row would store. Whoever reads the idx_* tables in the same unit flushes first (see
// SqliteWriteTransaction).
class PendingIndexRows {
 public:
  // Copies `index`'s idx_* rows (not full text) for resource `rid` of `type`.
  void Add(std::string_view type, int64_t rid, const IndexRows& index);
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  void clear();
  // Inserts every held row (sorted per table) and empties the holder.
  Status Flush(Connection& c);

  template <typename Row>
  struct Entry {
    uint32_t type;  // index into types_
    int64_t rid;
    Row row;
  };
  // Read by the jc_pending module.
  const std::string& type_name(uint32_t t) const { return types_[t]; }
  std::vector<Entry<TokenIndexRow>> tokens;
  std::vector<Entry<StringIndexRow>> strings;
  std::vector<Entry<DateIndexRow>> dates;
  std::vector<Entry<NumberIndexRow>> numbers;
  std::vector<Entry<QuantityIndexRow>> quantities;
  std::vector<Entry<ReferenceIndexRow>> references;
  std::vector<Entry<UriIndexRow>> uris;
  std::vector<Entry<CompositeIndexRow>> composites;
  // Positions in the vector of the kind being inserted, sorted by key (set by Flush).
  std::vector<uint32_t> order;

 private:
  std::vector<std::string> types_;
  size_t count_ = 0;
};

// A double as an integer of the same order, with every NaN ordered too (std::sort needs a
// strict weak order; the order only decides the insertion sequence). Both sorts of index rows
// (PendingIndexRows, IndexRunBuffer) order doubles by it.
int64_t OrderedFromDouble(double d);

// Inserts the rows of `runs` (IndexRunBuffer::Flush sorts those in memory; spilled runs are
// sorted) through jc_pending, table by table in `order` (IndexRunBuffer kinds), calling
// `before(run)` (when given) before each table's (it waits for that run to be sorted).
Status InsertIndexRuns(Connection& c, const IndexRunBuffer& runs, const std::vector<int>& order,
                       const std::function<void(int)>& before = {});

// Registers jc_pending(rows, kind) on `db`: the rows of one SearchKind of a PendingIndexRows
// (bound with sqlite3_bind_pointer, type "jc_pending_rows"), with the columns of its idx_*
// table (type, rid, and the value columns named as in jc_rows).
int RegisterPendingRowsTable(sqlite3* db);

// Replaces the index rows of resource `rid` (of `type`) with `index`. `fresh`: the rid was just
// created (version 1), so there are no old rows to delete (nothing to look up or delete). The
// full-text row goes to `deferred_full_text` when given (see FullTextWrite), else is written now.
// The idx_* rows go to `pending` when given (flushed by its owner when the unit ends), else are
// written now; `runs` (a bulk load's, bulk_index_build.h) takes a fresh rid's rows instead.
Status ReplaceIndexRows(Connection& c, std::string_view type, int64_t rid, bool fresh,
                        const IndexRows& index, FullTextQueue* deferred_full_text = nullptr,
                        PendingIndexRows* pending = nullptr, IndexRunBuffer* runs = nullptr);

// ---- full text of recent writes, indexed in batches (fts_pending) ----------------------------
//
// Why: FTS5 writes a new segment (and rewrites its structure record) at every commit that
// touched it: ~4.5 of the ~30 WAL pages of a single create, and 12-17 % of the rate of creates
// with 4 clients (docs/benchmarks.md, session 17). A transaction with few full-text rows
// appends them to fts_pending instead (one small row per resource, in the same transaction:
// durable and rolled back like the rest), and they reach fts_resource together, one segment
// for the batch, when
// - a transaction's rows and those waiting reach a batch (SqliteStore, kFullTextBatch),
// - a _text/_content search is about to run (it must see every acknowledged write),
// - the writer has been idle a moment.

// Appends the queued rows to fts_pending (the latest row of a resource replaces any waiting
// one) and empties the queue.
Status QueueFullText(Connection& c, FullTextQueue& queue);

// Indexes every row waiting in fts_pending, empties it, then writes the queued rows (newer than
// any waiting: a resource's older text never overwrites its newer) and empties the queue.
// Returns how many waiting rows were indexed.
Result<int64_t> IndexFullText(Connection& c, FullTextQueue& queue);

// The number of rows waiting in fts_pending.
Result<int64_t> CountPendingFullText(Connection& c);

// The index keys of `rid` as last written (nullopt: the resource has no index rows), and their
// replacement (an empty IndexRows removes them). Used by ReplaceIndexRows and the migration
// that introduced resource_index_keys.
// Whether `r` has rows for resource_index_keys (full text is replaced by rowid, not keys).
bool EmptyIndexRows(const IndexRows& r);

// IndexRows::precomputed as SqliteStore::PrecomputeIndex fills it: the resource_index_keys blob
// (EncodeIndexKeys) and, during a bulk load, the rows' run records (IndexRunBuffer::
// EncodeRecords) for a resource of `type`. Packed as u32 length + keys, u32 length + type, then
// the records to the end.
struct PrecomputedIndex {
  std::string_view keys, type, records;
};
std::string PackPrecomputedIndex(std::string_view keys, std::string_view type,
                                 std::string_view records);
// Empty views for an empty or malformed `packed` (the writer then encodes itself).
PrecomputedIndex UnpackPrecomputedIndex(std::string_view packed);

Result<std::optional<IndexRows>> ReadIndexKeys(Connection& c, int64_t rid);
Status WriteIndexKeys(Connection& c, int64_t rid, const IndexRows& index);

}  // namespace jiceng::store::sqlite
