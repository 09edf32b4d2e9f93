// api/bulk_export: FHIR Bulk Data export (system, Patient and Group level), for federating a
// county's data upward (`_since` for increments) and for `jiceng export`.
//
// A kick-off starts a job on its own thread, over one read transaction (one consistent
// snapshot). The job writes each resource type's current resources as NDJSON files of at most
// `resources_per_file` lines into `dir/<job>/`; the status of a job says running (with the types
// done so far), complete (the manifest of files) or failed; deleting a job stops it and removes
// its files.
//
// Jobs live on disk, not in one process's memory: `dir/<job>/job.json` holds the request and
// the status (replaced atomically and fsynced at the start, after each type and at the end; the
// NDJSON files are fsynced before the manifest names them), and the process running a job holds
// an exclusive flock on `dir/<job>/lock`. So every process that shares `dir` (one machine, or a
// shared file system whose locks work) answers the status, the files and DELETE of any job, and
// the job survives its process: a job found running with its lock free (its process was killed
// or stopped) is taken over, at start-up or at the first poll, and run again from the beginning
// over a new snapshot (its transactionTime is then the new one). Complete and failed jobs are
// removed `retention` after they ended (at start-up and at each kick-off), or by DELETE.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
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
  int64_t finished_us = 0;  // when it completed or failed
};

struct BulkExportsOptions {
  std::string dir;  // where jobs write (created when needed; may be shared by processes)
  int64_t resources_per_file = 10000;
  // How long a complete or failed job's files stay (7 days: an upstream pull of a weekly
  // federation run can miss a weekend and still find them).
  std::chrono::seconds retention{7 * 24 * 3600};
  // Tests only: called on the job's thread before each type is exported, with the job's stop
  // flag (set when the job is deleted or this BulkExports is destroyed).
  std::function<void(const std::string& type, const std::atomic<bool>& stop)> before_type;
};

class BulkExports {
 public:
  BulkExports(store::IStore& store, BulkExportsOptions options);
  // Stops this process's jobs, leaving them on disk as running: the next BulkExports on the
  // directory (a restart, or another process at a poll) runs them again.
  ~BulkExports();
  BulkExports(const BulkExports&) = delete;
  BulkExports& operator=(const BulkExports&) = delete;

  // At most this many jobs run at once in one process (each holds a thread, a read transaction
  // and its database connection); a kick-off beyond it is refused with kTooManyRequests (429).
  static constexpr int kMaxRunning = 2;

  // Whether `id` has the form of a job id (32 lowercase hex digits), so that it names nothing
  // but a job directory.
  static bool IsJobId(std::string_view id);

  const BulkExportsOptions& options() const { return options_; }

  // Removes the expired jobs and takes over those left running by a process that is gone (a
  // server calls this at start-up; a poll of such a job takes it over too).
  void TakeOverOrphans();

  // Starts a job; returns its id.
  Result<std::string> Start(BulkExportRequest request);
  // The job's status, from disk (nullopt when unknown). A job whose process is gone is taken
  // over here and reported as running again.
  std::optional<BulkExportStatus> Get(const std::string& id);
  // Stops the job (if this process runs it; another process notices its directory is gone) and
  // removes it and its files; false when there is no such job.
  bool Delete(const std::string& id);
  // The file `name` of a complete job (nullopt when either is unknown); its path on disk.
  std::optional<std::string> FilePath(const std::string& id, const std::string& name);

 private:
  struct Job;
  void Run(Job& job);
  // Starts a thread for `job` (its lock held) and lists it as this process's.
  void Launch(std::shared_ptr<Job> job);
  // Takes over the job in `dir/<id>` if it is running and its lock is free; with mu_ held.
  void AdoptIfOrphanLocked(const std::string& id);
  // Joins and forgets this process's jobs whose threads have ended; with mu_ held.
  void ReapLocked();
  void RemoveExpired();

  store::IStore& store_;
  const BulkExportsOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;  // the jobs this process runs
};

}  // namespace jiceng::api
