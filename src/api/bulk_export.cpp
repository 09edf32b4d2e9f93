#include "api/bulk_export.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <unordered_set>

#include "api/interactions.h"
#include "base/files.h"
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
  // Durable before anyone is told the file exists (a manifest, a command's summary).
  bool ok = std::fflush(f_) == 0 && ::fsync(::fileno(f_)) == 0;
  ok = std::fclose(f_) == 0 && ok;
  f_ = nullptr;
  if (!ok) return Internal("write failed: " + path_);
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

// ---- jobs on disk -------------------------------------------------------------------------

namespace {

constexpr const char* kJobFile = "job.json";
constexpr const char* kLockFile = "lock";

const char* StateName(BulkExportStatus::State s) {
  switch (s) {
    case BulkExportStatus::State::kRunning:
      return "running";
    case BulkExportStatus::State::kComplete:
      return "complete";
    case BulkExportStatus::State::kFailed:
      return "failed";
  }
  return "failed";
}

// What job.json holds: the request (to run the job again) and its status.
struct JobRecord {
  BulkExportRequest request;
  BulkExportStatus status;
};

json::object ToJson(const JobRecord& r) {
  json::array types;
  for (const auto& t : r.request.types) types.emplace_back(t);
  json::array files;
  for (const auto& f : r.status.files) {
    files.emplace_back(json::object{{"type", f.type}, {"name", f.name}, {"count", f.count}});
  }
  json::object o{
      {"state", StateName(r.status.state)},
      {"request", r.request.request_url},
      {"types", std::move(types)},
      {"patientCompartment", r.request.patient_compartment},
      {"transactionTimeUs", r.status.transaction_time_us},
      {"typesDone", r.status.types_done},
      {"files", std::move(files)},
      {"error", r.status.error},
      {"finishedUs", r.status.finished_us},
  };
  if (r.request.since_us) o["sinceUs"] = *r.request.since_us;
  if (r.request.patients) {
    json::array patients;
    for (const auto& p : *r.request.patients) patients.emplace_back(p);
    o["patients"] = std::move(patients);
  }
  return o;
}

std::optional<JobRecord> FromJson(const json::value& v) {
  try {
    const json::object& o = v.as_object();
    JobRecord r;
    const std::string_view state = o.at("state").as_string();
    if (state == "running") {
      r.status.state = BulkExportStatus::State::kRunning;
    } else if (state == "complete") {
      r.status.state = BulkExportStatus::State::kComplete;
    } else if (state == "failed") {
      r.status.state = BulkExportStatus::State::kFailed;
    } else {
      return std::nullopt;
    }
    r.request.request_url = std::string(o.at("request").as_string());
    for (const auto& t : o.at("types").as_array()) r.request.types.emplace_back(t.as_string());
    r.request.patient_compartment = o.at("patientCompartment").as_bool();
    if (const json::value* since = o.if_contains("sinceUs")) r.request.since_us = since->as_int64();
    if (const json::value* patients = o.if_contains("patients")) {
      r.request.patients.emplace();
      for (const auto& p : patients->as_array()) r.request.patients->emplace(p.as_string());
    }
    r.status.request_url = r.request.request_url;
    r.status.types_total = r.request.types.size();
    r.status.transaction_time_us = o.at("transactionTimeUs").as_int64();
    r.status.types_done = static_cast<size_t>(o.at("typesDone").as_int64());
    for (const auto& f : o.at("files").as_array()) {
      const json::object& fo = f.as_object();
      r.status.files.push_back(BulkExportFile{std::string(fo.at("type").as_string()),
                                              std::string(fo.at("name").as_string()),
                                              fo.at("count").as_int64()});
    }
    r.status.error = std::string(o.at("error").as_string());
    r.status.finished_us = o.at("finishedUs").as_int64();
    return r;
  } catch (const std::exception&) {
    return std::nullopt;  // not a job record (a partial write cannot happen: see SaveRecord)
  }
}

std::optional<JobRecord> LoadRecord(const fs::path& dir) {
  std::optional<std::string> text = ReadWholeFile(dir / kJobFile);
  if (!text) return std::nullopt;
  auto v = ParseJson(*text);
  if (!v.ok()) return std::nullopt;
  return FromJson(*v);
}

// Fsyncs a directory, so that a rename or a new entry in it is durable.
void SyncDir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

// Replaces job.json atomically and durably: a reader sees the old record or the new one. Fails
// when the job's directory is gone (the job was deleted).
Status SaveRecord(const fs::path& dir, const JobRecord& r) {
  const fs::path tmp = dir / "job.json.tmp";
  {
    NdjsonWriter out;  // one line: the record; Close fsyncs it
    JC_RETURN_IF_ERROR(out.Open(tmp.string()));
    JC_RETURN_IF_ERROR(out.Line(json::serialize(ToJson(r))));
    JC_RETURN_IF_ERROR(out.Close());
  }
  std::error_code ec;
  fs::rename(tmp, dir / kJobFile, ec);
  if (ec)
    return Internal(fmt::format("cannot write {}: {}", (dir / kJobFile).string(), ec.message()));
  SyncDir(dir);
  return Status::Ok();
}

// Opens the job's lock file and takes its exclusive flock without waiting: the fd, or -1 when
// another process (or another BulkExports) holds it, or the directory is gone.
int TryLock(const fs::path& dir, bool create) {
  const int fd =
      ::open((dir / kLockFile).c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

struct BulkExports::Job {
  ~Job() {
    if (lock_fd >= 0) ::close(lock_fd);
  }
  std::string id;
  fs::path dir;
  JobRecord record;  // written to job.json; only the job's thread touches it once launched
  int lock_fd = -1;  // the flock on dir/lock, held while this process runs the job
  std::atomic<bool> stop{false};
  std::atomic<bool> finished{false};
  std::thread thread;
};

bool BulkExports::IsJobId(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char ch) {
           return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
         });
}

BulkExports::BulkExports(store::IStore& store, BulkExportsOptions options)
    : store_(store), options_(std::move(options)) {}

void BulkExports::TakeOverOrphans() {
  RemoveExpired();
  std::error_code ec;
  std::lock_guard lock(mu_);
  for (fs::directory_iterator it(options_.dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string id = it->path().filename().string();
    if (IsJobId(id)) AdoptIfOrphanLocked(id);
  }
}

BulkExports::~BulkExports() {
  std::map<std::string, std::shared_ptr<Job>> jobs;
  {
    std::lock_guard lock(mu_);
    jobs.swap(jobs_);
  }
  for (auto& [id, job] : jobs) {
    job->stop = true;
    if (job->thread.joinable()) job->thread.join();
  }
}

void BulkExports::ReapLocked() {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (it->second->finished) {
      if (it->second->thread.joinable()) it->second->thread.join();
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
}

void BulkExports::RemoveExpired() {
  const int64_t cutoff =
      NowMicros() -
      std::chrono::duration_cast<std::chrono::microseconds>(options_.retention).count();
  std::error_code ec;
  for (fs::directory_iterator it(options_.dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!IsJobId(it->path().filename().string())) continue;
    auto r = LoadRecord(it->path());
    if (!r || r->status.state == BulkExportStatus::State::kRunning) continue;
    if (r->status.finished_us < cutoff) {
      std::error_code rm;
      fs::remove_all(it->path(), rm);
    }
  }
}

void BulkExports::Launch(std::shared_ptr<Job> job) {
  // The thread exists before the job is listed, so that whoever finds it in jobs_ can join it.
  Job* raw = job.get();
  job->thread = std::thread([this, raw] { Run(*raw); });
  jobs_.emplace(job->id, std::move(job));
}

void BulkExports::AdoptIfOrphanLocked(const std::string& id) {
  if (jobs_.contains(id)) return;  // ours, and running
  const fs::path dir = fs::path(options_.dir) / id;
  auto r = LoadRecord(dir);
  if (!r || r->status.state != BulkExportStatus::State::kRunning) return;
  const int fd = TryLock(dir, /*create=*/true);
  if (fd < 0) return;  // its process is alive (or another one took it over first)
  // Re-read under the lock: the owner may have finished between the first read and its exit.
  r = LoadRecord(dir);
  if (!r || r->status.state != BulkExportStatus::State::kRunning) {
    ::close(fd);
    return;
  }
  spdlog::info("$export: taking over job {} (its process is gone); running it again", id);
  auto job = std::make_shared<Job>();
  job->id = id;
  job->dir = dir;
  job->record = std::move(*r);
  job->lock_fd = fd;
  Launch(std::move(job));
}

Result<std::string> BulkExports::Start(BulkExportRequest request) {
  RemoveExpired();
  std::lock_guard lock(mu_);
  ReapLocked();
  if (static_cast<int>(jobs_.size()) >= kMaxRunning) {
    return Error(ErrorCode::kTooManyRequests,
                 fmt::format("{} exports are running; try again when one has finished (poll "
                             "their status URLs) or delete one",
                             jobs_.size()));
  }
  auto job = std::make_shared<Job>();
  job->id = NewJobId();
  job->dir = fs::path(options_.dir) / job->id;
  std::error_code ec;
  fs::create_directories(job->dir, ec);
  if (ec) return Internal(fmt::format("cannot create {}: {}", job->dir.string(), ec.message()));
  job->lock_fd = TryLock(job->dir, /*create=*/true);
  if (job->lock_fd < 0) return Internal("cannot lock " + (job->dir / kLockFile).string());
  job->record.status.request_url = request.request_url;
  job->record.status.types_total = request.types.size();
  job->record.request = std::move(request);
  // On disk before the kick-off answers: the status URL works from then on, in any process.
  if (Status st = SaveRecord(job->dir, job->record); !st.ok()) {
    fs::remove_all(job->dir, ec);
    return std::move(st).error();
  }
  SyncDir(options_.dir);
  std::string id = job->id;
  Launch(std::move(job));
  return id;
}

void BulkExports::Run(Job& job) {
  JobRecord& rec = job.record;
  // Whether the job was deleted (here or by another process, which removes the directory).
  auto deleted = [&] {
    std::error_code ec;
    return job.stop || !fs::exists(job.dir / kJobFile, ec);
  };
  auto finish = [&](BulkExportStatus::State state, std::string error) {
    if (deleted()) return;
    rec.status.state = state;
    rec.status.error = std::move(error);
    rec.status.finished_us = NowMicros();
    if (Status st = SaveRecord(job.dir, rec); !st.ok())
      spdlog::error("$export job {}: {}", job.id, st.error().message);
  };
  auto run = [&]() {
    // A job taken over starts again: no file of the previous run is kept.
    std::error_code ec;
    for (fs::directory_iterator it(job.dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".ndjson") fs::remove(it->path(), ec);
    }
    // One read transaction: the whole export is one consistent snapshot.
    auto txn = store_.BeginRead();
    if (!txn.ok()) return finish(BulkExportStatus::State::kFailed, txn.error().message);
    rec.status.transaction_time_us = NowMicros();
    rec.status.types_done = 0;
    rec.status.files.clear();
    if (deleted()) return;
    // A record that cannot be written (the job deleted meanwhile, or a full disk) ends the job;
    // left "running", it would be taken over and fail again at every poll.
    if (Status st = SaveRecord(job.dir, rec); !st.ok())
      return finish(BulkExportStatus::State::kFailed, st.error().message);
    int file_no = 0;
    int64_t lines = 0;
    for (const std::string& type : rec.request.types) {
      if (options_.before_type) options_.before_type(type, job.stop);
      NdjsonWriter out;
      BulkExportFile file;
      auto next_file = [&]() -> Status {
        if (out.open()) {
          JC_RETURN_IF_ERROR(out.Close());
          rec.status.files.push_back(file);
        }
        file = BulkExportFile{type, fmt::format("{}.{}.ndjson", ++file_no, type), 0};
        return out.Open((job.dir / file.name).string());
      };
      auto emit = [&](const std::string& json) -> Status {
        // Another process deletes a job by removing its directory: look now and then.
        if (job.stop || (++lines % 1000 == 0 && deleted()))
          return Error(ErrorCode::kUnavailable, "export cancelled");
        if (rec.request.patient_compartment && !InPatientScope(type, json, rec.request)) {
          return Status::Ok();
        }
        if (!out.open() || file.count >= options_.resources_per_file)
          JC_RETURN_IF_ERROR(next_file());
        ++file.count;
        return out.Line(json);
      };
      auto written = ExportResources(**txn, type, rec.request.since_us, 1000, emit);
      if (deleted()) return;
      if (!written.ok()) {
        return finish(BulkExportStatus::State::kFailed,
                      fmt::format("{}: {}", type, written.error().message));
      }
      if (out.open()) {
        if (Status st = out.Close(); !st.ok())
          return finish(BulkExportStatus::State::kFailed, st.error().message);
        rec.status.files.push_back(file);
      }
      ++rec.status.types_done;
      if (Status st = SaveRecord(job.dir, rec); !st.ok())
        return finish(BulkExportStatus::State::kFailed, st.error().message);
    }
    finish(BulkExportStatus::State::kComplete, "");
  };
  run();
  std::error_code ec;
  if (!job.stop && !fs::exists(job.dir / kJobFile, ec)) {
    fs::remove_all(job.dir, ec);  // deleted by another process: what this one wrote since too
  }
  if (job.lock_fd >= 0) {
    ::close(job.lock_fd);  // another process may take the job over from here if still running
    job.lock_fd = -1;
  }
  job.finished = true;
}

std::optional<BulkExportStatus> BulkExports::Get(const std::string& id) {
  if (!IsJobId(id)) return std::nullopt;
  std::lock_guard lock(mu_);
  ReapLocked();
  AdoptIfOrphanLocked(id);
  auto r = LoadRecord(fs::path(options_.dir) / id);
  if (!r) return std::nullopt;
  return std::move(r->status);
}

bool BulkExports::Delete(const std::string& id) {
  if (!IsJobId(id)) return false;
  const fs::path dir = fs::path(options_.dir) / id;
  std::shared_ptr<Job> job;
  {
    std::lock_guard lock(mu_);
    ReapLocked();
    if (auto it = jobs_.find(id); it != jobs_.end()) {
      job = it->second;
      jobs_.erase(it);
    }
  }
  if (job) {
    job->stop = true;
    if (job->thread.joinable()) job->thread.join();
  }
  std::error_code ec;
  if (!fs::exists(dir / kJobFile, ec)) return false;
  fs::remove_all(dir, ec);
  return true;
}

std::optional<std::string> BulkExports::FilePath(const std::string& id, const std::string& name) {
  if (!IsJobId(id)) return std::nullopt;
  const fs::path dir = fs::path(options_.dir) / id;
  auto r = LoadRecord(dir);
  if (!r || r->status.state != BulkExportStatus::State::kComplete) return std::nullopt;
  for (const auto& f : r->status.files) {
    if (f.name == name) return (dir / f.name).string();
  }
  return std::nullopt;
}

}  // namespace jiceng::api
