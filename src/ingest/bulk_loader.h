// ingest/: bulk loading of FHIR resources into a store — `jiceng import`, `jiceng generate
// --db` and the ingest benchmark.
//
// Every resource goes through what the REST API does to a PUT (create-on-update): the same
// structural validation (FhirApiOptions::validate), the same meta stamping
// (api::StampMeta), the same index extraction (api::ExtractIndexRows), the same version rule
// (current version + 1) and the same IWriteTransaction::Put. What differs is the shape of the
// work, because a durable commit (an fsync) and validation are the two costs:
//   * thousands of resources per IStore::Write unit instead of one request per unit, so one
//     fsync covers a whole batch;
//   * a pipeline: worker threads parse, validate, stamp and serialise the next batches while
//     the committer threads wait for the batches' Writes. The writer thread of the store
//     only looks up the current version, patches the lastUpdated text in place and inserts:
//     the JSON is serialised exactly once, off the writer;
//   * two batches in the store at once: as soon as the store's writer has run a batch's unit
//     (its fsync still to come), the next batch is handed to it, so the writer does not idle
//     through each fsync (see CommitLoop).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/fhir_api.h"
#include "base/json.h"
#include "base/result.h"
#include "store/store.h"

namespace jiceng::ingest {

// One resource to load: upserted under its id (a resource without an id gets a new UUID).
struct Item {
  std::string text;       // raw JSON (an NDJSON line), parsed by a worker; or, when empty,
  json::object resource;  // the resource already parsed
  std::string source;     // where it came from, for the error file ("a.ndjson:17")
};

struct Batch {
  std::vector<Item> items;
  // A transaction Bundle: all items or none. One invalid item rejects the whole batch.
  bool atomic = false;
  std::string source;       // names an atomic batch in rejections ("bundle-000003.json")
  int64_t input_bytes = 0;  // bytes of input this batch stands for (progress and ETA)
};

// Something that was not loaded, and why.
struct Rejection {
  std::string source;    // Item::source (or Batch::source for a whole batch)
  std::string resource;  // "Patient/123" when known
  std::string reason;    // diagnostics with FHIRPath locations
};

struct LoaderOptions {
  bool strict = true;       // false: unknown elements are warnings (--lenient)
  int prepare_threads = 0;  // 0: one per core
  int max_in_flight = 0;    // batches queued, being prepared or committed; 0: prepare_threads + 3
  // Resources per IStore::Write unit; a batch's units are submitted together so the store
  // commits them as one group (one fsync). Atomic batches are always one unit. 0: one unit per
  // batch (the default: the store then sorts the whole batch's index rows by key before
  // inserting them, and runs the unit without a savepoint).
  int unit_size = 0;
  // Called for each rejection, on one thread at a time, in input order.
  std::function<void(const Rejection&)> on_reject;
  // Likewise for each warning about a resource that was loaded all the same (an unknown element
  // kept under !strict): `reason` says what, and where in the resource.
  std::function<void(const Rejection&)> on_warning;
};

// Counters (snapshot). Stage times: parse/validate/index/serialise are CPU seconds summed over the
// workers; write is wall time the committers spent in IStore::Write (includes the fsync), summed
// over both (two batches are in the store at once, so it can exceed the load's wall time).
struct LoaderStats {
  int64_t loaded = 0;
  int64_t rejected = 0;
  int64_t warnings =
      0;  // issues of severity warning on resources offered (LoaderOptions::on_warning)
  int64_t batches = 0;
  int64_t input_bytes_done = 0;
  std::map<std::string, int64_t> loaded_by_type;
  double parse_s = 0, validate_s = 0, index_s = 0, serialize_s = 0, write_s = 0;
};

class BulkLoader {
 public:
  BulkLoader(store::IStore& store, const api::FhirApiOptions& options, LoaderOptions lo = {});
  ~BulkLoader();
  BulkLoader(const BulkLoader&) = delete;
  BulkLoader& operator=(const BulkLoader&) = delete;

  // Queues a batch; blocks while the pipeline is full. Fails once the store has failed (an
  // error that is not about one resource, e.g. the disk is full): stop feeding then.
  Status Add(Batch batch);
  // Waits until everything queued so far is committed (or rejected); the loader stays open.
  // For callers that must write something else after it, in order.
  void Drain();
  // Waits until everything queued is committed (or rejected) and stops the threads. Returns
  // the store failure, if any. Idempotent.
  Status Finish();

  LoaderStats stats() const;

 private:
  struct Prepared;
  struct Job;
  void PrepareLoop();
  void CommitLoop();
  void Prepare(Job& job);
  void Commit(Job& job);
  int64_t CommitUnit(std::vector<Prepared*>& unit, bool atomic, std::vector<Rejection>& rejected,
                     std::optional<Error>& store_failed, const std::function<void()>& on_run);
  // Lets the batch after `job` go to the store (under mu_).
  void ReleaseLocked(Job& job);
  // Reports (rejections, counters) the finished batches at the front, in input order.
  void ReportFinished();

  store::IStore& store_;
  const api::FhirApiOptions& options_;
  LoaderOptions lo_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> jobs_;  // in input order; the committer takes the front
  bool finishing_ = false;
  std::optional<Error> failure_;
  LoaderStats stats_;
  std::vector<std::thread> workers_;
  std::vector<std::thread> committers_;
  std::mutex report_mu_;  // ReportFinished: one thread at a time, so in input order
};

// "Patient/123: Patient.birthDate: bad date; …" from an error with issues.
std::string DescribeError(const Error& e);

}  // namespace jiceng::ingest
