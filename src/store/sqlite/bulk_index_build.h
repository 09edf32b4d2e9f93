// store/sqlite/bulk_index_build: the search index tables of a bulk load, and its crash safety.
//
// Why a bulk mode: a load into an empty file (jiceng import, generate --db) writes ~20 idx_*
// rows per resource. Inserted batch by batch, even sorted per 5,000-resource batch, they land at
// random leaves of B-trees that soon outgrow every cache: the writer thread spent ~60 % of its
// time on them, and the import slowed from ~9,000 resources/s into a new file to ~1,000/s into a
// 5 GB one (docs/benchmarks.md, issue 5). In bulk mode the writer holds a new resource's rows in
// an IndexRunBuffer (index_runs.h) across units and commits, spills each
// SqliteOptions::bulk_build_rows of them to a temporary file as a run sorted by primary key, and
// at the end inserts every run merged, so each B-tree is written once, in order, append-only
// (an update of a resource the load already wrote inserts what is held first, which a bulk load
// of new resources does not do). Everything else (resource, history,
// resource_index_keys, full text) is written and committed durably as usual.
//
// Crash safety: BeginBulkLoad records `index_build_pending` in store_state before the first
// resource, and the commit that inserts the last run clears it. Until then searches fail with
// kUnavailable (RequireSearchIndexes) rather than answer from missing rows. Rows held in memory
// die with the process, but every committed resource has its keys: whoever opens the file next,
// with no loader alive, empties the idx_* tables and rebuilds them from resource_index_keys
// (IndexTableBuilder), as the end of a load does when a rollback undid an inserted run. A loader
// holds an advisory lock on "<db>-bulkload" for its whole run, so that an open by another process
// does not mistake a running load for a crashed one.
// Internal to store/sqlite.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

namespace jiceng::store::sqlite {

class Connection;

// Whether the idx_* tables are missing the rows of a bulk load (the marker is set).
Result<bool> IndexBuildPending(Connection& c);
// Sets or clears the marker.
Status SetIndexBuildPending(Connection& c, bool pending);
// kUnavailable while the marker is set: for every reader of the idx_* tables.
Status RequireSearchIndexes(Connection& c);

// An exclusive advisory lock (flock) on "<db>-bulkload", held by a bulk loader for its run and
// released when it ends or its process dies (kill -9 included).
class BulkLoadLock {
 public:
  BulkLoadLock() = default;
  ~BulkLoadLock() { Release(); }
  BulkLoadLock(const BulkLoadLock&) = delete;
  BulkLoadLock& operator=(const BulkLoadLock&) = delete;
  // false when another process holds it.
  Result<bool> TryAcquire(const std::string& db_path);
  bool held() const { return fd_ >= 0; }
  // Unlinks the lock file (when `remove`) and releases the lock.
  void Release(bool remove = false);

 private:
  int fd_ = -1;
  std::string path_;
};

// Builds the idx_* tables from resource_index_keys, a run of at most `max_rows` index rows per
// Step (each Step one write transaction of the caller's).
class IndexTableBuilder {
 public:
  explicit IndexTableBuilder(int64_t max_rows) : max_rows_(max_rows) {}
  // Empties the idx_* tables and counts the resources to index; call once, first.
  Status Start(Connection& c);
  // Inserts the rows of the next resources, sorted per table. Returns true when every
  // resource has been indexed.
  Result<bool> Step(Connection& c);
  int64_t resources_total() const { return total_; }
  int64_t resources_done() const { return done_; }

 private:
  const int64_t max_rows_;
  int64_t after_rid_ = 0;  // resources up to this rid are indexed
  int64_t total_ = 0, done_ = 0;
};

}  // namespace jiceng::store::sqlite
