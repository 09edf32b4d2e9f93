// The PostgreSQL backend: read pool, read/write transactions over one PgConnection, and the
// group-committing writer thread.
#include "store/postgres/postgres_store.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/metrics.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_put.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_search.h"
#include "store/postgres/read_combiner.h"
#include "store/postgres/shared_search_results.h"

namespace jiceng::store {
namespace postgres {
namespace {

using Clock = std::chrono::steady_clock;

struct Timers {
  prometheus::Histogram* read;
  prometheus::Histogram* history;
  prometheus::Histogram* write_group;
  prometheus::Histogram* commit;
  prometheus::Histogram* search;

  static Timers Make() {
    auto& family = metrics::DbSeconds();
    auto get = [&](const char* op) {
      return &family.Add({{"backend", "postgres"}, {"op", op}}, metrics::LatencyBuckets());
    };
    return Timers{get("read"), get("history"), get("write_group"), get("commit"), get("search")};
  }
};

class ScopedTimer {
 public:
  explicit ScopedTimer(prometheus::Histogram* h) : h_(h), start_(Clock::now()) {}
  ~ScopedTimer() { h_->Observe(std::chrono::duration<double>(Clock::now() - start_).count()); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  prometheus::Histogram* h_;
  Clock::time_point start_;
};

constexpr const char* kVersionColumns = "type, id, version, last_updated_us, deleted, json";
// A resource's current version by type and id (QueryCurrent, and the pipelines of ReadBatch).
const std::string kCurrentSql =
    std::string("SELECT ") + kVersionColumns + " FROM resource WHERE type = $1 AND id = $2";

// ---- the queries, shared by read transactions and the write transaction ------------------------

Result<std::optional<ResourceVersion>> QueryCurrent(PgConnection& c, std::string_view type,
                                                    std::string_view id) {
  JC_ASSIGN_OR_RETURN(PgResult r, c.Query(kCurrentSql, PgParams().Text(type).Bytes(id)));
  if (r.rows() == 0) return std::optional<ResourceVersion>();
  return std::optional<ResourceVersion>(RowToVersion(r, 0));
}

Result<std::optional<ResourceVersion>> QueryVersion(PgConnection& c, std::string_view type,
                                                    std::string_view id, int64_t version) {
  JC_ASSIGN_OR_RETURN(
      PgResult r,
      c.Query("SELECT h.type, h.id, h.version, h.last_updated_us, h.deleted, h.json "
              "FROM resource r JOIN resource_history h ON h.rid = r.rid AND h.version = $3 "
              "WHERE r.type = $1 AND r.id = $2",
              PgParams().Text(type).Bytes(id).Int(version)));
  if (r.rows() == 0) return std::optional<ResourceVersion>();
  return std::optional<ResourceVersion>(RowToVersion(r, 0));
}

Result<HistoryPage> QueryHistory(PgConnection& c, const HistoryQuery& q) {
  // The WHERE clause is built from the query's shape (never its values, which are bound), so
  // each of the few shapes is its own prepared statement with a plan for its index.
  PgParams params;
  int n = 0;
  auto next = [&n] { return "$" + std::to_string(++n); };
  std::string where;
  std::string order;
  if (!q.id.empty()) {
    const std::string type_param = next();  // separate statements: `+` does not sequence
    const std::string id_param = next();
    where = "rid = (SELECT rid FROM resource WHERE type = " + type_param + " AND id = " + id_param +
            ")";
    params.Text(q.type).Bytes(q.id);
    order = " ORDER BY version DESC";
  } else if (!q.type.empty()) {
    where = "type = " + next();
    params.Text(q.type);
    order = " ORDER BY last_updated_us DESC, hid DESC";
  } else {
    where = "true";
    order = " ORDER BY last_updated_us DESC, hid DESC";
  }
  if (q.since_us) {
    where += " AND last_updated_us >= " + next();
    params.Int(*q.since_us);
  }
  if (q.at_or_before_us) {
    where += " AND last_updated_us <= " + next();
    params.Int(*q.at_or_before_us);
  }
  HistoryPage page;
  {
    JC_ASSIGN_OR_RETURN(PgResult r,
                        c.Query("SELECT count(*) FROM resource_history WHERE " + where, params));
    page.total = r.rows() ? r.Int(0, 0) : 0;
  }
  const int64_t count = std::max<int64_t>(q.count, 0);
  const int64_t offset = std::max<int64_t>(q.offset, 0);
  if (count == 0 || offset >= page.total) return page;
  const std::string limit = next();
  const std::string off = next();
  params.Int(count).Int(offset);
  JC_ASSIGN_OR_RETURN(PgResult r, c.Query(std::string("SELECT ") + kVersionColumns +
                                              " FROM resource_history WHERE " + where + order +
                                              " LIMIT " + limit + " OFFSET " + off,
                                          params));
  page.entries.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) page.entries.push_back(RowToVersion(r, i));
  return page;
}

Result<std::vector<std::string>> QueryByToken(PgConnection& c, std::string_view type,
                                              std::string_view param,
                                              std::optional<std::string_view> system,
                                              std::string_view code, int limit) {
  std::vector<std::string> ids;
  if (limit <= 0) return ids;
  // IN (…) de-duplicates a resource that has the code under several systems.
  PgParams params;
  params.Text(type).Text(param).Bytes(code);
  if (system) params.Bytes(*system);
  params.Int(limit);
  JC_ASSIGN_OR_RETURN(
      PgResult r,
      c.Query(system ? "SELECT id FROM resource WHERE rid IN (SELECT rid FROM idx_token "
                       "WHERE type = $1 AND param = $2 AND code = $3 AND system = $4) "
                       "AND NOT deleted ORDER BY rid LIMIT $5"
                     : "SELECT id FROM resource WHERE rid IN (SELECT rid FROM idx_token "
                       "WHERE type = $1 AND param = $2 AND code = $3) "
                       "AND NOT deleted ORDER BY rid LIMIT $4",
              params));
  ids.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) ids.push_back(r.String(i, 0));
  return ids;
}

Result<int64_t> QueryCount(PgConnection& c, std::string_view type) {
  auto r = type.empty() ? c.Query("SELECT count(*) FROM resource WHERE NOT deleted")
                        : c.Query("SELECT count(*) FROM resource WHERE type = $1 AND NOT deleted",
                                  PgParams().Text(type));
  if (!r.ok()) return std::move(r).error();
  return r->rows() ? r->Int(0, 0) : int64_t{0};
}

Result<std::vector<ResourceVersion>> QueryList(PgConnection& c, std::string_view type,
                                               int64_t offset, int64_t count) {
  std::vector<ResourceVersion> out;
  if (count <= 0) return out;
  // Walks the (type, id) unique index in id (byte) order.
  JC_ASSIGN_OR_RETURN(PgResult r,
                      c.Query(std::string("SELECT ") + kVersionColumns +
                                  " FROM resource WHERE type = $1 AND NOT deleted "
                                  "ORDER BY id LIMIT $2 OFFSET $3",
                              PgParams().Text(type).Int(count).Int(std::max<int64_t>(offset, 0))));
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(RowToVersion(r, i));
  return out;
}

// ---- read pool ---------------------------------------------------------------------------------

// Shared by the store and every open read transaction, so a transaction that outlives Close()
// still returns its connection somewhere valid (and the connection is then closed).
class ReadPool {
 public:
  // How long an idle connection may keep the transaction it last served open: a read
  // transaction's ROLLBACK normally rides with the connection's next statement (no round trip,
  // no extra wakeup of the server), and a connection idle for longer than this gets its
  // ROLLBACK sent on its own, so that no snapshot or lock outlives a read by more than this.
  static constexpr auto kEndDelay = std::chrono::milliseconds(5);

  ReadPool(std::string url, int size, int wait_ms)
      : url_(std::move(url)), size_(std::max(size, 1)), wait_ms_(wait_ms) {
    ender_ = std::thread([this] { EnderLoop(); });
  }
  ~ReadPool() { Close(); }
  ReadPool(const ReadPool&) = delete;
  ReadPool& operator=(const ReadPool&) = delete;

  Result<std::unique_ptr<PgConnection>> Acquire() {
    std::unique_lock lock(mu_);
    const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms_);
    for (;;) {
      if (closed_) return Error(ErrorCode::kUnavailable, "store is closed");
      if (!idle_.empty()) {
        auto conn = std::move(idle_.back().conn);
        idle_.pop_back();
        return conn;
      }
      if (open_ < size_) {
        ++open_;
        lock.unlock();
        auto conn = PgConnection::Open(url_);
        if (!conn.ok()) {
          lock.lock();
          --open_;
          cv_.notify_one();
        }
        return conn;
      }
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= size_) {
        return Error(ErrorCode::kUnavailable, "all postgres read connections are busy");
      }
    }
  }

  void Release(std::unique_ptr<PgConnection> conn) {
    std::lock_guard lock(mu_);
    // A broken connection (server restart) is dropped; the next Acquire opens a fresh one.
    if (closed_ || !conn->Healthy() || conn->InTransaction()) {
      --open_;
      cv_.notify_one();
      return;  // conn closes here
    }
    const bool end_pending = conn->EndPending();
    idle_.push_back(Idle{std::move(conn), Clock::now()});
    cv_.notify_one();
    // The ender only needs waking when it waits for nothing; otherwise it already waits for an
    // earlier deadline than this one.
    if (end_pending && ender_waits_for_work_) ender_cv_.notify_one();
  }

  void Close() {
    std::vector<Idle> idle;
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      open_ -= static_cast<int>(idle_.size());
      idle.swap(idle_);
      cv_.notify_all();
      ender_cv_.notify_all();
    }
    std::lock_guard join(join_mu_);
    if (ender_.joinable()) ender_.join();
  }

 private:
  struct Idle {
    std::unique_ptr<PgConnection> conn;
    Clock::time_point since;
  };

  // Sends the pending ROLLBACK of every connection idle for longer than kEndDelay.
  void EnderLoop() {
    std::unique_lock lock(mu_);
    while (!closed_) {
      auto oldest = idle_.end();
      for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        if (it->conn->EndPending() && (oldest == idle_.end() || it->since < oldest->since)) {
          oldest = it;
        }
      }
      if (oldest == idle_.end()) {
        ender_waits_for_work_ = true;
        ender_cv_.wait(lock);
        ender_waits_for_work_ = false;
        continue;
      }
      if (const auto due = oldest->since + kEndDelay; Clock::now() < due) {
        ender_cv_.wait_until(lock, due);
        continue;
      }
      // Out of the pool while the ROLLBACK is sent (no waiting for its answer).
      std::unique_ptr<PgConnection> conn = std::move(oldest->conn);
      idle_.erase(oldest);
      lock.unlock();
      conn->SendPendingEnd();
      lock.lock();
      if (closed_ || !conn->Healthy()) {
        --open_;
        cv_.notify_one();
        lock.unlock();
        conn.reset();
        lock.lock();
        continue;
      }
      // It was idle the longest: last in line for Acquire, which takes the newest.
      idle_.insert(idle_.begin(), Idle{std::move(conn), Clock::now()});
      cv_.notify_one();
    }
  }

  const std::string url_;
  const int size_;
  const int wait_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Idle> idle_;  // the newest last
  int open_ = 0;
  bool closed_ = false;
  std::condition_variable ender_cv_;
  bool ender_waits_for_work_ = false;
  std::mutex join_mu_;
  std::thread ender_;
};

class PgReadTransaction final : public IReadTransaction {
 public:
  PgReadTransaction(std::shared_ptr<ReadPool> pool, std::unique_ptr<PgConnection> conn,
                    const Timers& timers, std::shared_ptr<sql::EstimateCache> estimates)
      : pool_(std::move(pool)),
        conn_(std::move(conn)),
        timers_(timers),
        estimates_(std::move(estimates)) {}
  ~PgReadTransaction() override {
    // The ROLLBACK goes out with the connection's next statement, or within ReadPool::kEndDelay
    // on its own: ending a read costs no round trip.
    conn_->EndLazily();
    pool_->Release(std::move(conn_));
  }

  Result<std::optional<ResourceVersion>> ReadCurrent(std::string_view type,
                                                     std::string_view id) override {
    ScopedTimer t(timers_.read);
    return QueryCurrent(*conn_, type, id);
  }
  Result<std::optional<ResourceVersion>> ReadVersion(std::string_view type, std::string_view id,
                                                     int64_t version) override {
    ScopedTimer t(timers_.read);
    return QueryVersion(*conn_, type, id, version);
  }
  Result<HistoryPage> History(const HistoryQuery& query) override {
    ScopedTimer t(timers_.history);
    return QueryHistory(*conn_, query);
  }
  Result<std::vector<std::string>> FindByToken(std::string_view type, std::string_view param,
                                               std::optional<std::string_view> system,
                                               std::string_view code, int limit) override {
    ScopedTimer t(timers_.read);
    return QueryByToken(*conn_, type, param, system, code, limit);
  }
  Result<int64_t> CountCurrent(std::string_view type) override {
    ScopedTimer t(timers_.read);
    return QueryCount(*conn_, type);
  }
  Result<std::vector<ResourceVersion>> ListCurrent(std::string_view type, int64_t offset,
                                                   int64_t count) override {
    ScopedTimer t(timers_.read);
    return QueryList(*conn_, type, offset, count);
  }
  Result<SearchPage> Search(const SearchQuery& query) override {
    ScopedTimer t(timers_.search);
    return QuerySearch(*conn_, query, estimates_.get(), &settings_);
  }

 private:
  SearchSettings settings_;  // what this transaction's searches have set LOCAL
  std::shared_ptr<ReadPool> pool_;
  std::unique_ptr<PgConnection> conn_;
  const Timers timers_;
  std::shared_ptr<sql::EstimateCache> estimates_;  // shared with the store and its other reads
};

// The transaction handed to a unit of work: the writer connection inside the group's
// transaction, so reads see the group's earlier uncommitted writes (serial semantics).
//
// Puts are queued and written together (pg_put.h): when the unit ends (Finish), before a read
// that could see them, and when the queue is full. Reading one resource flushes only when that
// resource is queued, so a unit that reads each resource before writing it (updates, deletes,
// If-Match) still writes all of them in one flush. A failed flush fails the unit: every later
// read and Finish return its error.
class PgWriteTransaction final : public IWriteTransaction {
 public:
  PgWriteTransaction(PgConnection& conn, int copy_min_rows) : conn_(conn) {
    if (copy_min_rows > 0) queue_.set_copy_min_rows(static_cast<size_t>(copy_min_rows));
  }

  Result<std::optional<ResourceVersion>> ReadCurrent(std::string_view type,
                                                     std::string_view id) override {
    JC_RETURN_IF_ERROR(FlushIfQueued(type, id));
    return QueryCurrent(conn_, type, id);
  }
  Result<std::optional<ResourceVersion>> ReadVersion(std::string_view type, std::string_view id,
                                                     int64_t version) override {
    JC_RETURN_IF_ERROR(FlushIfQueued(type, id));
    return QueryVersion(conn_, type, id, version);
  }
  Result<HistoryPage> History(const HistoryQuery& query) override {
    JC_RETURN_IF_ERROR(Flush());
    return QueryHistory(conn_, query);
  }
  Result<std::vector<std::string>> FindByToken(std::string_view type, std::string_view param,
                                               std::optional<std::string_view> system,
                                               std::string_view code, int limit) override {
    JC_RETURN_IF_ERROR(Flush());
    return QueryByToken(conn_, type, param, system, code, limit);
  }
  Result<int64_t> CountCurrent(std::string_view type) override {
    JC_RETURN_IF_ERROR(Flush());
    return QueryCount(conn_, type);
  }
  Result<std::vector<ResourceVersion>> ListCurrent(std::string_view type, int64_t offset,
                                                   int64_t count) override {
    JC_RETURN_IF_ERROR(Flush());
    return QueryList(conn_, type, offset, count);
  }
  Result<SearchPage> Search(const SearchQuery& query) override {
    JC_RETURN_IF_ERROR(Flush());
    return QuerySearch(conn_, query);
  }
  Status Put(const ResourceVersion& version, const IndexRows& index) override {
    // One statement writes each resource row once: an earlier version still queued goes first.
    JC_RETURN_IF_ERROR(FlushIfQueued(version.type, version.id));
    JC_RETURN_IF_ERROR(queue_.Add(version, index));
    return queue_.Full() ? Flush() : Status::Ok();
  }

  Status ReplaceIndex(std::string_view type, std::string_view id, int64_t version,
                      const IndexRows& index) override {
    JC_RETURN_IF_ERROR(Flush());
    return postgres::ReplaceIndex(conn_, type, id, version, index);
  }

  // The unit of work returned successfully: writes what it queued. Its final result.
  Status Finish() { return Flush(); }
  // The unit of work failed (its savepoint or transaction is rolled back): forgets the queue.
  void Discard() {
    queue_.Clear();
    failure_.reset();
  }

 private:
  Status Flush() {
    if (failure_) return *failure_;
    if (queue_.empty()) return Status::Ok();
    Status s = queue_.Flush(conn_);
    if (!s.ok()) failure_ = s.error();
    return s;
  }
  Status FlushIfQueued(std::string_view type, std::string_view id) {
    if (failure_) return *failure_;
    return queue_.Contains(type, id) ? Flush() : Status::Ok();
  }

  PgConnection& conn_;
  postgres::PendingPuts queue_;
  std::optional<Error> failure_;
};

// ---- the store and its writer ------------------------------------------------------------------

class PostgresStore final : public IStore {
 public:
  PostgresStore(std::unique_ptr<PgConnection> writer, std::shared_ptr<ReadPool> pool,
                const PostgresOptions& options, const std::string& url)
      : options_(options),
        primary_url_(url),
        search_results_(url),
        timers_(Timers::Make()),
        // READ COMMITTED is enough: the advisory lock makes writers of every process take
        // turns, and each statement after it sees everything committed before it was granted.
        // lock_timeout bounds that wait (and any row-lock wait after it) for the transaction.
        begin_sql_("BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = " +
                   std::to_string(std::max(options.write_lock_timeout_ms, 0)) +
                   "; SELECT pg_advisory_xact_lock(" + std::to_string(kLockSpace) + ", " +
                   std::to_string(kWriteLock) + ")"),
        writer_conn_(std::move(writer)),
        pool_(std::move(pool)),
        reads_(options.read_pipelines, options.read_pipeline_max,
               [this](std::span<ReadCombiner::Item* const> items) { ReadBatch(items); }) {
    writer_thread_ = std::thread([this] { WriterLoop(); });
    writer_id_ = writer_thread_.get_id();
  }
  ~PostgresStore() override { Close(); }

  Result<std::unique_ptr<IReadTransaction>> BeginRead() override {
    JC_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, pool_->Acquire());
    // REPEATABLE READ: the snapshot is taken at the first query and held until the end, so
    // every read of this transaction sees the same committed state. READ ONLY never blocks
    // or is blocked by writers. The BEGIN goes out with the first query, in its round trip
    // (a pooled connection the server dropped meanwhile is reopened then, see BeginLazily).
    conn->BeginLazily("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    return std::unique_ptr<IReadTransaction>(
        new PgReadTransaction(pool_, std::move(conn), timers_, estimates_));
  }

  // One statement with its own Sync: PostgreSQL runs it in an implicit transaction of its own
  // (READ COMMITTED: one snapshot for the statement), so it needs no BEGIN and no ROLLBACK, and
  // leaves nothing pending on the connection. One round trip; a pending ROLLBACK of the
  // connection's previous read transaction rides in front of it.
  // Concurrent calls are combined (read_combiner.h): a batch of them is one pipeline of these
  // statements with one Sync at its end, so one implicit transaction whose snapshot is taken
  // after every read of the batch was asked for.
  Result<std::optional<ResourceVersion>> ReadCurrent(std::string_view type,
                                                     std::string_view id) override {
    ScopedTimer t(timers_.read);
    return reads_.Read(type, id);
  }

  Status Write(const WriteWork& work) override {
    if (std::this_thread::get_id() == writer_id_) {
      // A unit of work that calls Write would wait for its own group forever.
      return Internal("IStore::Write called from inside a unit of work");
    }
    Pending p{&work};
    std::unique_lock lock(mu_);
    if (stopping_) return Error(ErrorCode::kUnavailable, "store is closed");
    queue_.push_back(&p);
    writer_cv_.notify_one();
    p.cv.wait(lock, [&] { return p.done; });
    return std::move(p.status);
  }

  void Close() override {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
      stopping_ = true;
      writer_cv_.notify_one();
    }
    // The writer drains what was queued before stopping_ and then exits.
    if (writer_thread_.joinable()) writer_thread_.join();
    pool_->Close();
    writer_conn_.reset();
  }

  std::string_view Backend() const override { return "postgres"; }

  bool SharesSearchResults() const override { return true; }
  void PublishSearchResults(std::string key, std::string body, int64_t expires_us) override {
    search_results_.Publish(std::move(key), std::move(body), expires_us);
  }
  Result<std::optional<std::string>> FindSearchResults(std::string_view key, int64_t now_us,
                                                       int64_t expires_us) override {
    return search_results_.Find(key, now_us, expires_us);
  }

  // VACUUM (ANALYZE) of this store's own tables (those of its schema: a bare one would visit every
  // schema of the database). ANALYZE for the planner; VACUUM for the visibility map, without which
  // every index-only scan (the covering keys of the search statements) still visits the heap for
  // each row until autovacuum comes by: right after a 200,000-resource import a chained search ran
  // 14 ms instead of 8, a value range 10 instead of 7.6. On a connection of its own to the
  // primary: the read pool may point at a hot standby (server.db_read_url), where VACUUM and
  // ANALYZE cannot run, and a pooled connection may be inside a read transaction.
  Status RefreshStatistics() override {
    JC_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, PgConnection::Open(primary_url_));
    return [&]() -> Status {
      JC_ASSIGN_OR_RETURN(PgResult tables,
                          conn->Query("SELECT quote_ident(tablename) FROM pg_tables "
                                      "WHERE schemaname = current_schema() ORDER BY 1"));
      std::string names;
      for (int i = 0; i < tables.rows(); ++i) {
        names += (names.empty() ? "" : ", ") + tables.String(i, 0);
      }
      return names.empty() ? Status::Ok() : conn->Exec("VACUUM (ANALYZE) " + names);
    }();
  }

 private:
  struct Pending {
    const WriteWork* work;
    Status status;
    bool done = false;
    std::condition_variable cv;
  };

  void WriterLoop() {
    std::vector<Pending*> group;
    size_t last_group = 0;
    const auto window = std::chrono::microseconds(options_.group_commit_window_us);
    for (;;) {
      {
        std::unique_lock lock(mu_);
        writer_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and drained
        // The previous group's callers were just woken and are likely about to submit again:
        // waiting a fraction of a WAL flush lets them share the next COMMIT.
        if (!stopping_ && queue_.size() < last_group && window.count() > 0) {
          writer_cv_.wait_for(lock, window,
                              [&] { return stopping_ || queue_.size() >= last_group; });
        }
        const size_t n = std::min(queue_.size(), static_cast<size_t>(options_.max_group));
        group.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      }
      last_group = group.size();
      RunGroup(group);
      {
        std::lock_guard lock(mu_);
        for (Pending* p : group) {
          p->done = true;
          p->cv.notify_one();
        }
      }
      group.clear();
    }
  }

  static Status RunWork(const WriteWork& work, IWriteTransaction& txn) {
    // A throwing unit of work must not take the writer thread (and every later caller) down.
    try {
      return work(txn);
    } catch (const std::exception& e) {
      return Internal(std::string("unit of work threw: ") + e.what());
    } catch (...) {
      return Internal("unit of work threw");
    }
  }

  // Runs one unit of work and writes the Puts it queued: its result.
  static Status RunUnit(const WriteWork& work, PgWriteTransaction& txn) {
    Status s = RunWork(work, txn);
    if (s.ok()) s = txn.Finish();
    txn.Discard();
    return s;
  }

  // Opens the group's transaction and takes the write lock that serializes writers of every
  // process. Nothing of the group has run yet, so this step alone is retried (see
  // postgres_store.h): a broken connection is reopened, a transient failure tried again after a
  // short backoff, at most begin_attempts times.
  Status Begin(PgConnection& c) {
    for (int attempt = 1;; ++attempt) {
      Status s = c.Healthy() ? Status::Ok() : c.Reset();
      if (s.ok()) s = c.Exec(begin_sql_);
      if (s.ok()) return s;
      const std::string sqlstate = c.LastSqlState();
      if (c.InTransaction()) (void)c.Exec("ROLLBACK");
      Error e = std::move(s).error();
      if (sqlstate == "55P03") {
        return Error(ErrorCode::kUnavailable,
                     "postgres: waited more than " +
                         std::to_string(options_.write_lock_timeout_ms) +
                         " ms for the write lock, held by another jiceng process or session "
                         "(pg_locks: advisory lock " +
                         std::to_string(kLockSpace) + "/" + std::to_string(kWriteLock) +
                         "); try again later");
      }
      if (e.code != ErrorCode::kUnavailable) return e;
      if (attempt >= options_.begin_attempts) {
        e.message = "postgres: could not open a write transaction in " + std::to_string(attempt) +
                    " attempts: " + e.message;
        return e;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50 << std::min(attempt, 5)));
    }
  }

  // Runs every unit of the group in its own savepoint of one transaction and commits once.
  void RunGroup(const std::vector<Pending*>& group) {
    ScopedTimer group_timer(timers_.write_group);
    PgConnection& c = *writer_conn_;
    PgWriteTransaction txn(c, options_.copy_min_rows);
    if (Status s = Begin(c); !s.ok()) {
      for (Pending* p : group) p->status = s;
      return;
    }
    const bool savepoints = group.size() > 1;
    for (Pending* p : group) {
      if (!savepoints) {
        p->status = RunUnit(*p->work, txn);
        break;
      }
      if (Status s = c.Exec("SAVEPOINT w"); !s.ok()) {
        p->status = std::move(s);
        continue;
      }
      p->status = RunUnit(*p->work, txn);
      // RELEASE fails if a statement of the unit failed and the unit ignored it: the unit then
      // fails too, rather than commit half of its writes.
      if (p->status.ok()) {
        if (Status s = c.Exec("RELEASE SAVEPOINT w"); !s.ok()) p->status = std::move(s);
      }
      if (!p->status.ok()) (void)c.Exec("ROLLBACK TO SAVEPOINT w; RELEASE SAVEPOINT w");
    }
    if (!savepoints && !group.front()->status.ok()) {
      (void)c.Exec("ROLLBACK");
      return;
    }
    ScopedTimer t(timers_.commit);
    Status commit = c.Exec("COMMIT");
    if (!commit.ok()) {
      if (c.InTransaction()) (void)c.Exec("ROLLBACK");
      for (Pending* p : group) {
        if (p->status.ok()) p->status = commit;
      }
    }
  }

  // One batch of ReadCurrent calls on one pooled connection.
  void ReadBatch(std::span<ReadCombiner::Item* const> items) {
    auto conn = pool_->Acquire();
    if (!conn.ok()) {
      for (ReadCombiner::Item* item : items) item->result = conn.error();
      return;
    }
    PgConnection& c = **conn;
    if (items.size() > 1) {
      std::vector<PgParams> params(items.size());
      std::vector<PgStatement> statements;
      statements.reserve(items.size());
      for (size_t i = 0; i < items.size(); ++i) {
        params[i].Text(items[i]->type).Bytes(items[i]->id);
        statements.push_back({&kCurrentSql, &params[i]});
      }
      auto r = c.QueryBatch(statements);
      if (r.ok()) {
        for (size_t i = 0; i < items.size(); ++i) {
          const PgResult& rows = (*r)[i];
          items[i]->result = rows.rows() == 0
                                 ? std::optional<ResourceVersion>()
                                 : std::optional<ResourceVersion>(RowToVersion(rows, 0));
        }
        pool_->Release(std::move(*conn));
        return;
      }
      // The pipeline stopped at a failure: each read again on its own, so that one read's
      // error is that read's alone.
    }
    for (ReadCombiner::Item* item : items) {
      item->result = QueryCurrent(c, item->type, item->id);
      // A pooled connection the server dropped meanwhile (restart, failover): a read can simply
      // run once more on a fresh connection.
      if (!item->result.ok() && !c.Healthy() && c.Reset().ok()) {
        item->result = QueryCurrent(c, item->type, item->id);
      }
    }
    pool_->Release(std::move(*conn));
  }

  const PostgresOptions options_;
  const std::string primary_url_;  // db itself, also when reads go to a replica
  SharedSearchResults search_results_;
  // The planner's row counts, reused by the searches of every read transaction.
  const std::shared_ptr<sql::EstimateCache> estimates_ =
      std::make_shared<sql::EstimateCache>();  // on the primary (url), whatever the read pool's URL
  const Timers timers_;
  const std::string begin_sql_;
  std::unique_ptr<PgConnection> writer_conn_;  // used only by the writer thread until Close
  std::shared_ptr<ReadPool> pool_;
  ReadCombiner reads_;

  std::mutex mu_;
  std::condition_variable writer_cv_;
  std::deque<Pending*> queue_;
  bool stopping_ = false;
  bool closed_ = false;
  std::thread writer_thread_;
  std::thread::id writer_id_;
};

}  // namespace
}  // namespace postgres

Result<std::unique_ptr<IStore>> OpenPostgresStore(const std::string& url,
                                                  const PostgresOptions& options) {
  using postgres::PgConnection;
  if (options.read_connections < 1 || options.max_group < 1 || options.begin_attempts < 1 ||
      options.read_pipelines < 1 || options.read_pipeline_max < 1) {
    return Invalid(
        "postgres options: read_connections, read_pipelines, read_pipeline_max, max_group and "
        "begin_attempts must be >= 1");
  }
  JC_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> writer, PgConnection::Open(url));
  JC_RETURN_IF_ERROR(postgres::ApplyMigrations(*writer, postgres::Migrations()));
  auto pool =
      std::make_shared<postgres::ReadPool>(options.read_url.empty() ? url : options.read_url,
                                           options.read_connections, options.pool_wait_ms);
  return std::unique_ptr<IStore>(
      new postgres::PostgresStore(std::move(writer), std::move(pool), options, url));
}

}  // namespace jiceng::store
