// api/bulk_export: FHIR Bulk Data export (system, Patient and Group level), for federating a
// county's data upward (`_since` for increments) and for `jiceng export`.
//
// A kick-off starts a job on its own thread, over one read transaction (one consistent
// snapshot). The job writes each resource type's current resources as NDJSON files of at most
// `resources_per_file` lines into `dir/<job>/`; the status of a job says running (with the types
// done so far), complete (the manifest of files) or failed; deleting a job stops it and removes
// its files. Jobs live in this process's memory: a restart forgets them (their files too are
// removed when the process ends normally). A complete job's files stay until it is deleted.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::api {

// One NDJSON output: `path` gets each resource's JSON on a line.
class NdjsonWriter {
 public:
  NdjsonWriter() = default;
  ~NdjsonWriter();
  NdjsonWriter(const NdjsonWriter&) = delete;
  NdjsonWriter& operator=(const NdjsonWriter&) = delete;
  Status Open(const std::string& path);
  Status Line(const std::string& json);
  Status Close();
  bool open() const { return f_ != nullptr; }

 private:
  std::FILE* f_ = nullptr;
  std::string path_;
};

// Calls `emit` with the JSON of every current, non-deleted resource of `type`, in id order, or,
// with `since_us`, of those last changed at or after it (newest first). `page` rows are read per
// store call. Returns how many were emitted; stops at emit's first error.
Result<int64_t> ExportResources(store::IReadTransaction& txn, const std::string& type,
                                std::optional<int64_t> since_us, int page,
                                const std::function<Status(const std::string& json)>& emit);

struct BulkExportRequest {
  std::string request_url;  // the kick-off request, as the manifest echoes it
  std::vector<std::string> types;
  std::optional<int64_t> since_us;
  // Patient and Group level ([base]/Patient/$export, [base]/Group/[id]/$export): only
  // resources in the compartment of some Patient (api::PatientsOf), and with `patients` (a
  // Group's members) only those in the compartment of one of them. Each resource is then
  // re-indexed to know its compartments, which costs about what writing it did.
  bool patient_compartment = false;
  std::optional<std::unordered_set<std::string>> patients;
};

struct BulkExportFile {
  std::string type;
  std::string name;  // "<n>.<Type>.ndjson" in the job's directory
  int64_t count = 0;
};

struct BulkExportStatus {
  enum class State { kRunning, kComplete, kFailed };
  State state = State::kRunning;
  std::string request_url;
  int64_t transaction_time_us = 0;  // the snapshot's instant
  size_t types_done = 0;
  size_t types_total = 0;
  std::vector<BulkExportFile> files;
  std::string error;
};

class BulkExports {
 public:
  // `dir`: where jobs write (created when needed). `all_types`: what an export without _type
  // covers.
  BulkExports(store::IStore& store, std::string dir, int64_t resources_per_file);
  ~BulkExports();  // stops every job and removes its files
  BulkExports(const BulkExports&) = delete;
  BulkExports& operator=(const BulkExports&) = delete;

  // At most this many jobs run at once (each holds a thread, a read transaction and its
  // database connection); a kick-off beyond it is refused with kTooManyRequests (429).
  static constexpr int kMaxRunning = 2;

  // Starts a job; returns its id (32 hex digits).
  Result<std::string> Start(BulkExportRequest request);
  std::optional<BulkExportStatus> Get(const std::string& id) const;
  // Stops the job (if running) and removes it and its files; false when there is no such job.
  bool Delete(const std::string& id);
  // The file `name` of a complete job (nullopt when either is unknown); its path on disk.
  std::optional<std::string> FilePath(const std::string& id, const std::string& name) const;

 private:
  struct Job;
  void Run(Job& job);

  store::IStore& store_;
  const std::string dir_;
  const int64_t per_file_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
};

}  // namespace jiceng::api
