#include "ingest/bulk_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iterator>

#include "api/interactions.h"
#include "base/ids.h"
#include "base/thread_name.h"
#include "base/time.h"

namespace jiceng::ingest {

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The lastUpdated written by the workers before the real commit time is known. Any fixed
// instant works: the committer finds its text in the serialised JSON and overwrites it with the
// commit time, which has the same width ("YYYY-MM-DDThh:mm:ss.sssZ").
constexpr int64_t kPlaceholderUs = 946684800123000;  // 2000-01-01T00:00:00.123Z

}  // namespace

std::string DescribeError(const Error& e) {
  if (e.issues.empty()) return e.message;
  std::string out;
  for (const auto& i : e.issues) {
    if (!out.empty()) out += "; ";
    if (!i.expression.empty()) out += i.expression + ": ";
    out += i.diagnostics;
  }
  return out;
}

struct BulkLoader::Prepared {
  store::ResourceVersion version;  // json stamped with version 1 and the placeholder instant
  store::IndexRows index;
  std::size_t stamp_at = std::string::npos;  // offset of the placeholder instant in json
  std::string source;
  bool committed = false;
};

struct BulkLoader::Job {
  Batch batch;
  // kReleased: the store has run this batch's writes (they may still await their fsync, or
  // fail in it), so the next batch may go to the store; kDone: its Write has returned.
  enum class State {
    kQueued,
    kPreparing,
    kReady,
    kCommitting,
    kReleased,
    kDone
  } state = State::kQueued;
  std::vector<Prepared> prepared;
  std::vector<Rejection> rejections;  // in input order: found while preparing, then writing
  std::vector<Rejection> warnings;    // in input order (the resource may still be rejected later)
  int64_t loaded = 0;
  double parse_s = 0, validate_s = 0, index_s = 0, serialize_s = 0, write_s = 0;
};

BulkLoader::BulkLoader(store::IStore& store, const api::FhirApiOptions& options, LoaderOptions lo)
    : store_(store), options_(options), lo_(std::move(lo)) {
  int threads = lo_.prepare_threads > 0
                    ? lo_.prepare_threads
                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (lo_.max_in_flight <= 0) lo_.max_in_flight = threads + 3;
  for (int i = 0; i < threads; ++i)
    workers_.emplace_back([this] {
      NameThisThread("jc-load-prepare");
      PrepareLoop();
    });
  for (int i = 0; i < 2; ++i)
    committers_.emplace_back([this] {
      NameThisThread("jc-load-commit");
      CommitLoop();
    });
}

BulkLoader::~BulkLoader() { (void)Finish(); }

Status BulkLoader::Add(Batch batch) {
  auto job = std::make_shared<Job>();
  job->batch = std::move(batch);
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return failure_ || static_cast<int>(jobs_.size()) < lo_.max_in_flight; });
  if (failure_) return *failure_;
  jobs_.push_back(std::move(job));
  cv_.notify_all();
  return Status::Ok();
}

void BulkLoader::Drain() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return jobs_.empty(); });
}

Status BulkLoader::Finish() {
  {
    std::lock_guard lock(mu_);
    finishing_ = true;
    cv_.notify_all();
  }
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  for (auto& t : committers_)
    if (t.joinable()) t.join();
  std::lock_guard lock(mu_);
  if (failure_) return *failure_;
  return Status::Ok();
}

LoaderStats BulkLoader::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void BulkLoader::PrepareLoop() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      for (;;) {
        auto it = std::find_if(jobs_.begin(), jobs_.end(),
                               [](const auto& j) { return j->state == Job::State::kQueued; });
        if (it != jobs_.end()) {
          job = *it;
          job->state = Job::State::kPreparing;
          break;
        }
        if (finishing_) return;
        cv_.wait(lock);
      }
    }
    Prepare(*job);
    std::lock_guard lock(mu_);
    job->state = Job::State::kReady;
    cv_.notify_all();
  }
}

void BulkLoader::Prepare(Job& job) {
  Batch& b = job.batch;
  job.prepared.reserve(b.items.size());
  for (std::size_t i = 0; i < b.items.size(); ++i) {
    Item& item = b.items[i];
    auto t0 = Clock::now();
    if (!item.text.empty()) {
      auto v = ParseJson(item.text);
      if (!v.ok() || !v->is_object()) {
        job.rejections.push_back(
            {item.source, "", v.ok() ? "not a JSON object" : DescribeError(v.error())});
        job.parse_s += Since(t0);
        continue;
      }
      item.resource = std::move(v->get_object());
      std::string().swap(item.text);
    }
    auto t1 = Clock::now();
    job.parse_s += std::chrono::duration<double>(t1 - t0).count();

    json::object& r = item.resource;
    std::string type(FindString(r, "resourceType").value_or(""));
    std::string id(FindString(r, "id").value_or(""));
    std::string name = type + (id.empty() ? "" : "/" + id);
    if (type.empty() || !options_.is_resource_type(type)) {
      job.rejections.push_back(
          {item.source, name,
           type.empty() ? "resourceType is missing" : "unknown resourceType '" + type + "'"});
      continue;
    }
    if (!id.empty() && !IsValidId(id)) {
      job.rejections.push_back({item.source, name, "'" + id + "' is not a valid id"});
      continue;
    }
    std::vector<Issue> errors;
    std::vector<Rejection> warnings;  // kept only if the resource is not rejected
    for (auto& issue : options_.validate(r, lo_.strict)) {
      if (issue.severity == "error" || issue.severity == "fatal") {
        errors.push_back(std::move(issue));
      } else if (issue.severity == "warning") {
        warnings.push_back(
            {item.source, name,
             issue.diagnostics +
                 (issue.expression.empty() ? "" : " (at " + issue.expression + ")")});
      }
    }
    auto t2 = Clock::now();
    job.validate_s += std::chrono::duration<double>(t2 - t1).count();
    if (!errors.empty()) {
      Error e(ErrorCode::kUnprocessable, errors.front().diagnostics);
      e.issues = std::move(errors);
      job.rejections.push_back({item.source, name, DescribeError(e)});
      continue;
    }
    for (Rejection& w : warnings) job.warnings.push_back(std::move(w));
    if (id.empty()) id = NewResourceId();

    Prepared p;
    api::StampMeta(r, id, 1, kPlaceholderUs);
    p.index = api::ExtractIndexRows(r);
    store_.PrecomputeIndex(type, p.index);  // e.g. encode the index keys here, not on the writer
    auto t3 = Clock::now();
    job.index_s += std::chrono::duration<double>(t3 - t2).count();
    p.version.type = std::move(type);
    p.version.id = std::move(id);
    p.version.version = 1;
    p.version.json = ToJson(r);
    // The placeholder must be found exactly once; otherwise (the resource happens to contain the
    // same text) the committer re-stamps from the JSON instead of patching.
    static const std::string kNeedle = "\"lastUpdated\":\"" + FormatInstant(kPlaceholderUs) + "\"";
    std::size_t at = p.version.json.find(kNeedle);
    if (at != std::string::npos && p.version.json.find(kNeedle, at + 1) == std::string::npos)
      p.stamp_at = at + 15;  // after "lastUpdated":"
    p.source = std::move(item.source);
    json::object().swap(r);  // the JSON text is all the committer needs
    job.prepared.push_back(std::move(p));
    job.serialize_s += Since(t3);
  }
  if (b.atomic && !job.rejections.empty()) {
    // A transaction: one bad entry rejects the Bundle, and every entry says so.
    std::string why = fmt::format(
        "transaction rolled back: {} of {} entries invalid (first: {}: {})", job.rejections.size(),
        b.items.size(), job.rejections.front().source, job.rejections.front().reason);
    for (auto& p : job.prepared)
      job.rejections.push_back({p.source, p.version.type + "/" + p.version.id, why});
    job.prepared.clear();
  }
  std::vector<Item>().swap(b.items);
}

namespace {

// Makes `p` the next version of whatever the transaction holds under its type/id: version 1
// with the lastUpdated text patched in place (the bulk case), or a re-stamp for an update.
Status StampForCommit(store::IWriteTransaction& txn, store::ResourceVersion& v,
                      std::size_t stamp_at, int64_t now_us) {
  JC_ASSIGN_OR_RETURN(auto cur, txn.ReadCurrent(v.type, v.id));
  v.last_updated_us = now_us;
  if (!cur && stamp_at != std::string::npos) {
    v.version = 1;
    std::string when = FormatInstant(now_us);
    v.json.replace(stamp_at, when.size(), when);
    return Status::Ok();
  }
  v.version = cur ? cur->version + 1 : 1;
  JC_ASSIGN_OR_RETURN(json::value doc, ParseJson(v.json));
  api::StampMeta(doc.get_object(), v.id, v.version, now_us);
  v.json = ToJson(doc);
  return Status::Ok();
}

}  // namespace

// Writes `unit` as one IStore::Write. Returns how many were loaded; rejections go to `rejected`
// in input order. Sets `store_failed` when the store refused everything for a reason that is not
// about the resources (disk full, closed).
int64_t BulkLoader::CommitUnit(std::vector<Prepared*>& unit, bool atomic,
                               std::vector<Rejection>& rejected, std::optional<Error>& store_failed,
                               const std::function<void()>& on_run) {
  std::size_t failed_at = 0;
  bool ran = false;
  Status st = store_.Write([&](store::IWriteTransaction& txn) -> Status {
    for (std::size_t i = 0; i < unit.size(); ++i) {
      auto& p = *unit[i];
      failed_at = i;
      JC_RETURN_IF_ERROR(StampForCommit(txn, p.version, p.stamp_at, NowMicros()));
      JC_RETURN_IF_ERROR(txn.Put(p.version, p.index));
    }
    if (on_run) {
      ran = true;
      on_run();
    }
    return Status::Ok();
  });
  if (st.ok()) {
    for (auto* p : unit) p->committed = true;
    return static_cast<int64_t>(unit.size());
  }
  if (ran) {
    // Every Put succeeded but the commit failed (an I/O error, a full disk), and the next
    // batch may already be in the store: writing these again now could put an older version
    // of a resource after a newer one, so they are reported, not retried.
    for (auto* p : unit)
      rejected.push_back({p->source, p->version.type + "/" + p->version.id,
                          "not written: " + DescribeError(st.error())});
    if (st.error().code == ErrorCode::kUnavailable || st.error().code == ErrorCode::kInternal)
      store_failed = st.error();
    return 0;
  }
  if (atomic) {
    auto& bad = *unit[failed_at];
    std::string why =
        fmt::format("transaction rolled back: {}: {}", bad.source, DescribeError(st.error()));
    for (auto* p : unit)
      rejected.push_back({p->source, p->version.type + "/" + p->version.id, why});
    return 0;
  }
  // One resource the store refused sank the unit: write it again one resource per unit so that
  // only that one is rejected. (Rare: e.g. a version conflict with a concurrent writer. A store
  // that is down fails every unit, and that stops the load.)
  int64_t loaded = 0, store_errors = 0;
  for (auto* p : unit) {
    Status one = store_.Write([&](store::IWriteTransaction& txn) -> Status {
      JC_RETURN_IF_ERROR(StampForCommit(txn, p->version, p->stamp_at, NowMicros()));
      return txn.Put(p->version, p->index);
    });
    if (one.ok()) {
      ++loaded;
      p->committed = true;
    } else {
      if (one.error().code == ErrorCode::kUnavailable || one.error().code == ErrorCode::kInternal)
        ++store_errors;
      rejected.push_back(
          {p->source, p->version.type + "/" + p->version.id, DescribeError(one.error())});
    }
  }
  if (store_errors == static_cast<int64_t>(unit.size())) store_failed = st.error();
  return loaded;
}

void BulkLoader::Commit(Job& job) {
  auto t0 = Clock::now();
  std::optional<Error> failed;
  {
    std::lock_guard lock(mu_);
    failed = failure_;
  }
  if (failed) {
    // The store failed on an earlier batch: what was already prepared is reported, not lost.
    for (auto& p : job.prepared)
      job.rejections.push_back({p.source, p.version.type + "/" + p.version.id,
                                "not written: " + DescribeError(*failed)});
  } else if (!job.prepared.empty()) {
    // One unit per batch by default (no savepoint, and the store inserts the batch's index rows
    // sorted by key); with lo_.unit_size, units of that size written concurrently, which the
    // store group-commits (one fsync for all). Resources are spread over units by id, so two
    // versions of one resource in a batch stay in one unit, in input order.
    const std::size_t n = job.prepared.size();
    const std::size_t units =
        job.batch.atomic || lo_.unit_size <= 0
            ? 1
            : std::max<std::size_t>(1, (n + static_cast<std::size_t>(lo_.unit_size) - 1) /
                                           static_cast<std::size_t>(lo_.unit_size));
    std::vector<std::vector<Prepared*>> parts(units);
    for (auto& p : job.prepared)
      parts[units == 1 ? 0 : std::hash<std::string>{}(p.version.id) % units].push_back(&p);
    std::vector<std::vector<Rejection>> rejected(units);
    std::vector<std::optional<Error>> store_failed(units);
    std::vector<int64_t> counts(units, 0);
    std::vector<std::thread> threads;
    for (std::size_t u = 1; u < units; ++u)
      threads.emplace_back([&, u] {
        counts[u] = CommitUnit(parts[u], false, rejected[u], store_failed[u], nullptr);
      });
    // A single unit lets the next batch into the store once the writer has run it; split
    // units release the next batch only when all are done (below).
    std::function<void()> release;
    if (units == 1) {
      release = [&] {
        std::lock_guard lock(mu_);
        ReleaseLocked(job);
      };
    }
    counts[0] = CommitUnit(parts[0], job.batch.atomic, rejected[0], store_failed[0], release);
    for (auto& t : threads) t.join();
    bool all_failed = true;
    for (std::size_t u = 0; u < units; ++u) {
      job.loaded += counts[u];
      for (auto& r : rejected[u]) job.rejections.push_back(std::move(r));
      if (!store_failed[u]) all_failed = false;
    }
    if (all_failed && store_failed[0]) {
      std::lock_guard lock(mu_);
      if (!failure_) failure_ = *store_failed[0];
    }
  }
  job.write_s = Since(t0);
}

void BulkLoader::ReleaseLocked(Job& job) {
  if (job.state == Job::State::kCommitting) job.state = Job::State::kReleased;
  cv_.notify_all();
}

void BulkLoader::ReportFinished() {
  std::lock_guard report(report_mu_);  // one reporter at a time, so in input order
  // The finished batches at the front stay queued until they are reported, so that Drain()
  // cannot return before their rejections and counters are.
  std::vector<std::shared_ptr<Job>> finished;
  {
    std::lock_guard lock(mu_);
    for (const auto& job : jobs_) {
      if (job->state != Job::State::kDone) break;
      finished.push_back(job);
    }
  }
  if (finished.empty()) return;
  for (const auto& job : finished) {
    if (lo_.on_warning)
      for (const auto& w : job->warnings) lo_.on_warning(w);
    if (lo_.on_reject)
      for (const auto& r : job->rejections) lo_.on_reject(r);
  }
  std::lock_guard lock(mu_);
  for (const auto& job : finished) {
    for (const auto& p : job->prepared)
      if (p.committed) ++stats_.loaded_by_type[p.version.type];
    stats_.loaded += job->loaded;
    stats_.rejected += static_cast<int64_t>(job->rejections.size());
    stats_.warnings += static_cast<int64_t>(job->warnings.size());
    stats_.batches += 1;
    stats_.input_bytes_done += job->batch.input_bytes;
    stats_.parse_s += job->parse_s;
    stats_.validate_s += job->validate_s;
    stats_.serialize_s += job->serialize_s;
    stats_.index_s += job->index_s;
    stats_.write_s += job->write_s;
  }
  jobs_.erase(jobs_.begin(), jobs_.begin() + static_cast<std::ptrdiff_t>(finished.size()));
  cv_.notify_all();  // Add() waits for room, Drain() and the committers for an empty queue
}

// Two committer threads take the batches in input order. A batch goes to the store once the
// batch before it has been released (its writes have run in the store's writer thread), not
// when its Write returns: that return waits for the fsync, through which the writer would
// otherwise sit idle (110,499 resources: the writer ran ~60 % of the load's wall time). The
// store runs units in the order they are submitted, so input order is kept; a batch whose
// writes fail is retried resource by resource before it is released, and one whose commit
// fails after release is reported, not retried (CommitUnit).
void BulkLoader::CommitLoop() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      for (;;) {
        // The first batch not yet released is the only one that may go next.
        auto it = std::find_if(jobs_.begin(), jobs_.end(), [](const auto& j) {
          return j->state != Job::State::kReleased && j->state != Job::State::kDone;
        });
        // And it goes only when every batch before it but the last has finished: a batch may
        // enter the store while its predecessor's commit is still in doubt, but not while an
        // older one's is, so a failed commit has at most one batch written after it (under
        // load, a committer once finished the next batch and took the one after it before the
        // failed batch's committer had recorded the failure).
        const bool older_finished =
            it == jobs_.end() ||
            std::all_of(jobs_.begin(), it == jobs_.begin() ? it : std::prev(it),
                        [](const auto& j) { return j->state == Job::State::kDone; });
        if (it != jobs_.end() && (*it)->state == Job::State::kReady && older_finished) {
          job = *it;
          job->state = Job::State::kCommitting;
          break;
        }
        if (finishing_ && jobs_.empty()) return;
        cv_.wait(lock);
      }
    }
    Commit(*job);
    {
      std::lock_guard lock(mu_);
      job->state = Job::State::kDone;
      cv_.notify_all();
    }
    ReportFinished();
  }
}

}  // namespace jiceng::ingest
