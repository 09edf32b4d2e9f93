#include "api/bulk_export.h"

#include <fmt/format.h>

#include <filesystem>
#include <random>
#include <unordered_set>

#include "api/interactions.h"
#include "base/json.h"
#include "base/time.h"

namespace jiceng::api {

namespace fs = std::filesystem;

NdjsonWriter::~NdjsonWriter() {
  if (f_) std::fclose(f_);
}

Status NdjsonWriter::Open(const std::string& path) {
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) return Internal("cannot write " + path);
  path_ = path;
  return Status::Ok();
}

Status NdjsonWriter::Line(const std::string& json) {
  if (std::fwrite(json.data(), 1, json.size(), f_) != json.size() || std::fputc('\n', f_) == EOF)
    return Internal("write failed: " + path_);
  return Status::Ok();
}

Status NdjsonWriter::Close() {
  if (!f_) return Status::Ok();
  const int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) return Internal("write failed: " + path_);
  return Status::Ok();
}

namespace {

// The current, non-deleted resources of `type` changed at or after `since_us`, by walking the
// type's history newest first. The page bound (at_or_before + offset among equal instants) is a
// keyset over (last_updated, hid), so each page is an index range, not a growing OFFSET. The
// first version met of a resource is its current one; older versions of resources that have
// several are skipped (only ids with version > 1 need remembering).
Result<int64_t> FromHistory(store::IReadTransaction& txn, const std::string& type, int64_t since_us,
                            int page, const std::function<Status(const std::string&)>& emit) {
  std::unordered_set<std::string> newer_seen;
  int64_t written = 0;
  store::HistoryQuery q;
  q.type = type;
  q.since_us = since_us;
  q.count = page;
  q.at_or_before_us = NowMicros();
  for (;;) {
    JC_ASSIGN_OR_RETURN(store::HistoryPage hp, txn.History(q));
    if (hp.entries.empty()) break;
    const int64_t last_ts = hp.entries.back().last_updated_us;
    int64_t ties = 0;
    for (const auto& v : hp.entries) {
      if (v.last_updated_us == last_ts) ++ties;
      if (newer_seen.count(v.id)) continue;
      if (v.version > 1) newer_seen.insert(v.id);
      if (v.deleted) continue;
      JC_RETURN_IF_ERROR(emit(v.json));
      ++written;
    }
    if (static_cast<int64_t>(hp.entries.size()) < page) break;
    // Next page: the same instant again, past the ones already seen at it.
    q.offset = q.at_or_before_us == last_ts ? q.offset + ties : ties;
    q.at_or_before_us = last_ts;
  }
  return written;
}

// Whether a Patient- or Group-level export takes this resource: it is in the compartment of a
// Patient (of one of the Group's members).
bool InPatientScope(const std::string& type, const std::string& text, const BulkExportRequest& r) {
  auto doc = ParseJson(text);
  if (!doc.ok() || !doc->is_object()) return false;
  json::object& obj = doc->get_object();
  const std::string id(FindString(obj, "id").value_or(""));
  const store::IndexRows rows = ExtractIndexRows(obj);
  const std::vector<std::string> patients = PatientsOf(type, id, rows);
  if (!r.patients) return !patients.empty();
  for (const std::string& p : patients) {
    if (r.patients->contains(p)) return true;
  }
  return false;
}

std::string NewJobId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

}  // namespace

Result<int64_t> ExportResources(store::IReadTransaction& txn, const std::string& type,
                                std::optional<int64_t> since_us, int page,
                                const std::function<Status(const std::string& json)>& emit) {
  if (since_us) return FromHistory(txn, type, *since_us, page, emit);
  // Without since: the current rows in id order (stable, diff-friendly output).
  int64_t written = 0;
  for (int64_t offset = 0;; offset += page) {
    JC_ASSIGN_OR_RETURN(auto rows, txn.ListCurrent(type, offset, page));
    for (const auto& v : rows) JC_RETURN_IF_ERROR(emit(v.json));
    written += static_cast<int64_t>(rows.size());
    if (static_cast<int64_t>(rows.size()) < page) break;
  }
  return written;
}

struct BulkExports::Job {
  std::string id;
  fs::path dir;
  BulkExportRequest request;
  BulkExportStatus status;  // guarded by BulkExports::mu_
  std::atomic<bool> stop{false};
  std::thread thread;
};

BulkExports::BulkExports(store::IStore& store, std::string dir, int64_t resources_per_file)
    : store_(store), dir_(std::move(dir)), per_file_(std::max<int64_t>(resources_per_file, 1)) {}

BulkExports::~BulkExports() {
  std::map<std::string, std::shared_ptr<Job>> jobs;
  {
    std::lock_guard lock(mu_);
    jobs.swap(jobs_);
  }
  for (auto& [id, job] : jobs) {
    job->stop = true;
    if (job->thread.joinable()) job->thread.join();
    std::error_code ec;
    fs::remove_all(job->dir, ec);
  }
  std::error_code ec;
  fs::remove(dir_, ec);  // only when empty: the directory may be shared or configured
}

Result<std::string> BulkExports::Start(BulkExportRequest request) {
  {
    std::lock_guard lock(mu_);
    int running = 0;
    for (const auto& [id, job] : jobs_)
      running += job->status.state == BulkExportStatus::State::kRunning ? 1 : 0;
    if (running >= kMaxRunning) {
      return Error(ErrorCode::kTooManyRequests,
                   fmt::format("{} exports are running; try again when one has finished (poll "
                               "their status URLs) or delete one",
                               running));
    }
  }
  auto job = std::make_shared<Job>();
  job->id = NewJobId();
  job->dir = fs::path(dir_) / job->id;
  std::error_code ec;
  fs::create_directories(job->dir, ec);
  if (ec) return Internal(fmt::format("cannot create {}: {}", job->dir.string(), ec.message()));
  job->status.request_url = request.request_url;
  job->status.types_total = request.types.size();
  job->request = std::move(request);
  // The thread exists before the job is listed, so that Delete always finds it joinable. The
  // job outlives it: whoever removes the job from the list joins the thread first.
  Job* raw = job.get();
  job->thread = std::thread([this, raw] { Run(*raw); });
  std::lock_guard lock(mu_);
  jobs_.emplace(job->id, std::move(job));
  return raw->id;
}

void BulkExports::Run(Job& job) {
  auto fail = [&](const std::string& why) {
    std::lock_guard lock(mu_);
    job.status.state = BulkExportStatus::State::kFailed;
    job.status.error = why;
  };
  // One read transaction: the whole export is one consistent snapshot.
  auto txn = store_.BeginRead();
  if (!txn.ok()) return fail(txn.error().message);
  {
    std::lock_guard lock(mu_);
    job.status.transaction_time_us = NowMicros();
  }
  int file_no = 0;
  for (const std::string& type : job.request.types) {
    NdjsonWriter out;
    BulkExportFile file;
    std::vector<BulkExportFile> done;
    auto next_file = [&]() -> Status {
      if (out.open()) {
        JC_RETURN_IF_ERROR(out.Close());
        done.push_back(file);
      }
      file = BulkExportFile{type, fmt::format("{}.{}.ndjson", ++file_no, type), 0};
      return out.Open((job.dir / file.name).string());
    };
    auto emit = [&](const std::string& json) -> Status {
      if (job.stop) return Error(ErrorCode::kUnavailable, "export cancelled");
      if (job.request.patient_compartment && !InPatientScope(type, json, job.request)) {
        return Status::Ok();
      }
      if (!out.open() || file.count >= per_file_) JC_RETURN_IF_ERROR(next_file());
      ++file.count;
      return out.Line(json);
    };
    auto written = ExportResources(**txn, type, job.request.since_us, 1000, emit);
    if (!written.ok()) return fail(fmt::format("{}: {}", type, written.error().message));
    if (out.open()) {
      if (Status st = out.Close(); !st.ok()) return fail(st.error().message);
      done.push_back(file);
    }
    std::lock_guard lock(mu_);
    for (auto& f : done) job.status.files.push_back(std::move(f));
    ++job.status.types_done;
  }
  std::lock_guard lock(mu_);
  job.status.state = BulkExportStatus::State::kComplete;
}

std::optional<BulkExportStatus> BulkExports::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return it->second->status;
}

bool BulkExports::Delete(const std::string& id) {
  std::shared_ptr<Job> job;
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return false;
    job = it->second;
    jobs_.erase(it);
  }
  job->stop = true;
  if (job->thread.joinable()) job->thread.join();
  std::error_code ec;
  fs::remove_all(job->dir, ec);
  return true;
}

std::optional<std::string> BulkExports::FilePath(const std::string& id,
                                                 const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end() || it->second->status.state != BulkExportStatus::State::kComplete)
    return std::nullopt;
  for (const auto& f : it->second->status.files) {
    if (f.name == name) return (it->second->dir / f.name).string();
  }
  return std::nullopt;
}

}  // namespace jiceng::api
