// store/postgres/pg_put: writing resource versions and their index rows, many at a time.
// Internal to store/postgres.
//
// A unit of work's Puts are queued and written together (PendingPuts::Flush) when the unit
// ends, before any read of the unit that could see them, and when the queue grows large. A
// flush costs two round trips whatever the number of resources (a bulk flush a few more, below):
//
//  1. one statement upserts every resource row and appends every history row, and returns the
//     rids (data-modifying CTEs over unnest() of one array parameter per column);
//  2. one pipeline of set-at-a-time statements, one per index table that has work to do:
//     rows of new resources (version 1) are plain INSERTs (nothing to replace, nothing to
//     conflict with: duplicates are removed here first); for a resource that had a version
//     before, the old rows that the new version no longer has are deleted, and the new rows
//     inserted unless already stored (rows that stay the same across versions are not touched
//     at all, the cheapest for an update of a few fields).
// Tables without rows in the batch get no statement: most resources have rows of three or four
// kinds out of nine, and each statement costs an executor start-up per table.
//
// Bulk flushes (PostgresOptions::copy_min_rows): a table that gets at least that many rows of
// new resources in one flush gets them by COPY … FROM STDIN (FORMAT binary) instead of INSERT …
// unnest(), and so do the resource and history rows when that many new resources (version 1) are
// queued; round trip 1 then draws their rids from the resource table's identity sequence. COPY
// cannot ride in the pipeline, and each one costs a round trip of its own: worth it only for
// many rows (docs/benchmarks.md, "COPY for bulk writes"). A version 1 whose resource exists
// already (written outside the write lock) then fails its COPY on the (type, id) key instead of
// being found stale: kConflict all the same, for the whole flush.
//
// A stale Put (its version is not newer than the stored one: a writer outside jiceng's write
// lock) writes nothing, neither its history row nor its index rows, and the flush reports it
// as kConflict: the unit of work then fails as a whole.
//
// Every row of a resource (resource, resource_history, idx_*, fts_resource) carries its
// distribution key, shard_key = DistributionKey(IndexRows::patient_compartment), so that the
// schema can be sharded by patient (docs/operations.md, "Past one machine").
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::store::postgres {

class PgConnection;

// The distribution key of a resource in the compartment of Patient `patient_id`: the 64-bit
// FNV-1a hash of the id's bytes, cleared to a positive value and never 0; 0 for a resource in
// no patient compartment (`patient_id` empty). Stable across releases: it is stored.
int64_t DistributionKey(std::string_view patient_id);

// Replaces the index rows of the current version of type/id (IWriteTransaction::ReplaceIndex):
// kNotFound if absent, kConflict unless it is at `version` and not deleted. Also sets the
// resource's distribution key on all its rows from `index`, so a reindex fills the key of rows
// written before the key existed.
Status ReplaceIndex(PgConnection& c, std::string_view type, std::string_view id, int64_t version,
                    const IndexRows& index);

class PendingPuts {
 public:
  // Checks `v` and queues it with a copy of `index`. The caller flushes first when Contains()
  // says the resource is queued already (a statement writes each resource row once).
  Status Add(const ResourceVersion& v, const IndexRows& index);
  // A version of type/id is queued.
  bool Contains(std::string_view type, std::string_view id) const;
  bool empty() const { return puts_.empty(); }
  // The queue is large enough to be written now (bounds memory and the size of one statement).
  bool Full() const;
  // Writes every queued version in the current transaction of `c` and empties the queue
  // (also when it fails).
  Status Flush(PgConnection& c);
  // Forgets the queue (the unit of work failed: its transaction or savepoint is rolled back).
  void Clear();
  // A flush writes the rows of new resources of an index table by COPY instead of INSERT …
  // unnest() when they are at least `n` (PostgresOptions::copy_min_rows).
  void set_copy_min_rows(size_t n) { copy_min_rows_ = n; }

 private:
  struct Put {
    ResourceVersion version;
    IndexRows index;
  };
  std::vector<Put> puts_;
  std::unordered_map<std::string, size_t> keys_;  // Key(type, id) → index in puts_
  size_t bytes_ = 0;
  size_t copy_min_rows_ = static_cast<size_t>(-1);  // never, unless set
};

}  // namespace jiceng::store::postgres
