// The SQLite backend: read pool, read/write transactions over one Connection, and the
// group-committing writer thread.
#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "base/files.h"
#include "base/metrics.h"
#include "base/thread_name.h"
#include "store/sqlite/bulk_index_build.h"
#include "store/sqlite/connection.h"
#include "store/sqlite/index_keys.h"
#include "store/sqlite/index_runs.h"
#include "store/sqlite/sqlite_index_write.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/sqlite/sqlite_search.h"

namespace jiceng::store {
namespace sqlite {
namespace {

using Clock = std::chrono::steady_clock;

// Where a bulk load of the file at `db_path` spills its index runs: beside the database, whose
// disk must hold the indexes anyway (the system's temporary directory for an in-memory one).
std::string SpillDirectory(const std::string& db_path) {
  if (db_path.empty() || db_path == ":memory:" || db_path.rfind("file:", 0) == 0)
    return TempDirectory().string();
  std::filesystem::path dir = std::filesystem::path(db_path).parent_path();
  return dir.empty() ? "." : dir.string();
}

// The DbSeconds children this backend records into, looked up once per store.
struct Timers {
  prometheus::Histogram* read;
  prometheus::Histogram* history;
  prometheus::Histogram* write_group;
  prometheus::Histogram* commit;
  prometheus::Histogram* search;
  prometheus::Counter* units;
  prometheus::Counter* commits;
  prometheus::Counter* wal_frames;
  prometheus::Histogram* wal_sync;

  static Timers Make() {
    auto& family = metrics::DbSeconds();
    auto get = [&](const char* op) {
      return &family.Add({{"backend", "sqlite"}, {"op", op}}, metrics::LatencyBuckets());
    };
    auto count = [](const char* event) {
      return &metrics::DbEvents().Add({{"backend", "sqlite"}, {"event", event}});
    };
    return Timers{get("read"),      get("history"),      get("write_group"),
                  get("commit"),    get("search"),       count("units"),
                  count("commits"), count("wal_frames"), get("wal_sync")};
  }
};

// Observes the time from construction to destruction.
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

// A history row of a live current version stores json = '' (see sqlite_schema.cpp): its json
// is the resource row's.
constexpr const char* kHistoryColumns =
    "type, id, version, last_updated_us, deleted, CASE WHEN json = '' AND deleted = 0 THEN "
    "(SELECT r.json FROM resource r WHERE r.rid = resource_history.rid) ELSE json END";

// ---- the queries, shared by read transactions and the write transaction ------------------------

Result<std::optional<ResourceVersion>> QueryCurrent(Connection& c, std::string_view type,
                                                    std::string_view id) {
  JC_SQL_STMT(s, c,
              "SELECT type, id, version, last_updated_us, deleted, json FROM resource "
              "WHERE type = ?1 AND id = ?2");
  s.BindText(1, type);
  s.BindText(2, id);
  JC_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<ResourceVersion>();
  return std::optional<ResourceVersion>(RowToVersion(s));
}

Result<std::optional<ResourceVersion>> QueryVersion(Connection& c, std::string_view type,
                                                    std::string_view id, int64_t version) {
  JC_SQL_STMT(s, c,
              "SELECT h.type, h.id, h.version, h.last_updated_us, h.deleted, "
              "CASE WHEN h.json = '' AND h.deleted = 0 THEN r.json ELSE h.json END "
              "FROM resource r JOIN resource_history h ON h.rid = r.rid AND h.version = ?3 "
              "WHERE r.type = ?1 AND r.id = ?2");
  s.BindText(1, type);
  s.BindText(2, id);
  s.BindInt(3, version);
  JC_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<ResourceVersion>();
  return std::optional<ResourceVersion>(RowToVersion(s));
}

Result<HistoryPage> QueryHistory(Connection& c, const HistoryQuery& q) {
  // The WHERE clause is built from the query's shape (never its values, which are bound), so
  // each of the few shapes gets a plan that uses the right index and its own cached statement.
  // Parameters: ?1 type, ?2 id, ?3 since, ?4 at_or_before, ?5 limit, ?6 offset.
  std::string where;
  std::string order;
  if (!q.id.empty()) {
    where = "rid = (SELECT rid FROM resource WHERE type = ?1 AND id = ?2)";
    order = " ORDER BY version DESC";
  } else if (!q.type.empty()) {
    where = "type = ?1";
    order = " ORDER BY last_updated_us DESC, hid DESC";
  } else {
    where = "1";
    order = " ORDER BY last_updated_us DESC, hid DESC";
  }
  if (q.since_us) where += " AND last_updated_us >= ?3";
  if (q.at_or_before_us) where += " AND last_updated_us <= ?4";

  HistoryPage page;
  {
    JC_SQL_STMT(s, c, "SELECT count(*) FROM resource_history WHERE " + where);
    if (!q.type.empty()) s.BindText(1, q.type);
    if (!q.id.empty()) s.BindText(2, q.id);
    if (q.since_us) s.BindInt(3, *q.since_us);
    if (q.at_or_before_us) s.BindInt(4, *q.at_or_before_us);
    JC_ASSIGN_OR_RETURN(bool row, s.Step());
    page.total = row ? s.ColumnInt(0) : 0;
  }
  const int64_t count = std::max<int64_t>(q.count, 0);
  const int64_t offset = std::max<int64_t>(q.offset, 0);
  if (count == 0 || offset >= page.total) return page;
  JC_SQL_STMT(s, c,
              std::string("SELECT ") + kHistoryColumns + " FROM resource_history WHERE " + where +
                  order + " LIMIT ?5 OFFSET ?6");
  if (!q.type.empty()) s.BindText(1, q.type);
  if (!q.id.empty()) s.BindText(2, q.id);
  if (q.since_us) s.BindInt(3, *q.since_us);
  if (q.at_or_before_us) s.BindInt(4, *q.at_or_before_us);
  s.BindInt(5, count);
  s.BindInt(6, offset);
  page.entries.reserve(static_cast<size_t>(std::min<int64_t>(count, page.total - offset)));
  for (;;) {
    JC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    page.entries.push_back(RowToVersion(s));
  }
  return page;
}

Result<std::vector<std::string>> QueryByToken(Connection& c, std::string_view type,
                                              std::string_view param,
                                              std::optional<std::string_view> system,
                                              std::string_view code, int limit) {
  std::vector<std::string> ids;
  if (limit <= 0) return ids;
  JC_RETURN_IF_ERROR(RequireSearchIndexes(c));
  // IN (…) de-duplicates a resource that has the code under several systems.
  JC_SQL_STMT(s, c,
              system ? "SELECT id FROM resource WHERE rid IN (SELECT rid FROM idx_token "
                       "WHERE type = ?1 AND param = ?2 AND code = ?3 AND system = ?4) "
                       "AND deleted = 0 ORDER BY rid LIMIT ?5"
                     : "SELECT id FROM resource WHERE rid IN (SELECT rid FROM idx_token "
                       "WHERE type = ?1 AND param = ?2 AND code = ?3) "
                       "AND deleted = 0 ORDER BY rid LIMIT ?5");
  s.BindText(1, type);
  s.BindText(2, param);
  s.BindText(3, code);
  if (system) s.BindText(4, *system);
  s.BindInt(5, limit);
  for (;;) {
    JC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ids.push_back(s.ColumnText(0));
  }
  return ids;
}

Result<int64_t> QueryCount(Connection& c, std::string_view type) {
  JC_SQL_STMT(s, c,
              type.empty() ? "SELECT count(*) FROM resource WHERE deleted = 0"
                           : "SELECT count(*) FROM resource WHERE type = ?1 AND deleted = 0");
  if (!type.empty()) s.BindText(1, type);
  JC_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.ColumnInt(0) : int64_t{0};
}

Result<std::vector<ResourceVersion>> QueryList(Connection& c, std::string_view type, int64_t offset,
                                               int64_t count) {
  std::vector<ResourceVersion> out;
  if (count <= 0) return out;
  // Walks the (type, id) unique index in id order.
  JC_SQL_STMT(s, c,
              "SELECT type, id, version, last_updated_us, deleted, json FROM resource "
              "WHERE type = ?1 AND deleted = 0 ORDER BY id LIMIT ?2 OFFSET ?3");
  s.BindText(1, type);
  s.BindInt(2, count);
  s.BindInt(3, std::max<int64_t>(offset, 0));
  for (;;) {
    JC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(RowToVersion(s));
  }
  return out;
}

Status PutVersion(Connection& c, const ResourceVersion& v, const IndexRows& index,
                  FullTextQueue* deferred_full_text, PendingIndexRows* pending,
                  IndexRunBuffer* runs) {
  if (v.type.empty() || v.id.empty()) return Invalid("Put: resource type and id are required");
  if (v.version < 1) return Invalid("Put: version must be >= 1");
  int64_t rid = 0;
  if (v.version > 1) {
    // The version being replaced keeps its json in its history row from now on (a live current
    // version's history row holds '' and shares the resource row's json). A tombstone has none.
    JC_SQL_STMT(s, c,
                "UPDATE resource_history SET json = r.json FROM resource r "
                "WHERE r.type = ?1 AND r.id = ?2 AND r.deleted = 0 AND "
                "resource_history.rid = r.rid AND resource_history.version = r.version AND "
                "resource_history.json = ''");
    s.BindText(1, v.type);
    s.BindText(2, v.id);
    JC_RETURN_IF_ERROR(s.Run());
  }
  auto conflict = [&] {
    return Conflict("Put: " + v.type + "/" + v.id + " already has version " +
                    std::to_string(v.version) + " or newer");
  };
  if (v.version == 1) {
    // A first version: a plain insert, which UNIQUE (type, id) refuses when any version exists
    // (what the upsert below would refuse too), and the new rowid without a RETURNING.
    JC_SQL_STMT(s, c,
                "INSERT INTO resource(type, id, version, last_updated_us, deleted, json) "
                "VALUES (?1, ?2, 1, ?3, ?4, ?5)");
    s.BindText(1, v.type);
    s.BindText(2, v.id);
    s.BindInt(3, v.last_updated_us);
    s.BindInt(4, v.deleted ? 1 : 0);
    s.BindText(5, v.deleted ? std::string_view() : std::string_view(v.json));
    if (Status st = s.Run(); !st.ok()) {
      return st.error().code == ErrorCode::kConflict ? conflict() : st;
    }
    rid = sqlite3_last_insert_rowid(c.handle());
  } else {
    // The WHERE on the upsert refuses to move a resource backwards (or sideways): a stale
    // writer gets a conflict instead of silently overwriting a newer current row.
    JC_SQL_STMT(s, c,
                "INSERT INTO resource(type, id, version, last_updated_us, deleted, json) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(type, id) DO UPDATE SET "
                "version = excluded.version, last_updated_us = excluded.last_updated_us, "
                "deleted = excluded.deleted, json = excluded.json "
                "WHERE excluded.version > resource.version RETURNING rid");
    s.BindText(1, v.type);
    s.BindText(2, v.id);
    s.BindInt(3, v.version);
    s.BindInt(4, v.last_updated_us);
    s.BindInt(5, v.deleted ? 1 : 0);
    s.BindText(6, v.deleted ? std::string_view() : std::string_view(v.json));
    JC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return conflict();
    rid = s.ColumnInt(0);
    JC_RETURN_IF_ERROR(s.Run());  // finish the RETURNING statement before the next one
  }
  {
    JC_SQL_STMT(s, c,
                "INSERT INTO resource_history(rid, type, id, version, last_updated_us, deleted, "
                "json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    s.BindInt(1, rid);
    s.BindText(2, v.type);
    s.BindText(3, v.id);
    s.BindInt(4, v.version);
    s.BindInt(5, v.last_updated_us);
    s.BindInt(6, v.deleted ? 1 : 0);
    s.BindText(7, std::string_view());  // '': a tombstone, or live and current (shares json)
    JC_RETURN_IF_ERROR(s.Run());
  }
  return ReplaceIndexRows(c, v.type, rid, v.version == 1, index, deferred_full_text, pending, runs);
}

// Whether a search has a _text/_content clause anywhere (chains and _has included): only those
// read fts_resource, which must then hold every acknowledged write's text.
bool UsesFullText(const std::vector<SearchClause>& clauses) {
  for (const SearchClause& c : clauses) {
    if (c.kind == SearchKind::kText) return true;
    for (const SearchLink& l : c.links)
      if (UsesFullText(l.all_of)) return true;
  }
  return false;
}

// How a read transaction asks its store to index the full text waiting in fts_pending: through
// this holder, which the store clears when it closes (a read transaction may outlive it).
class FullTextCatchUp {
 public:
  explicit FullTextCatchUp(std::function<Status()> run) : run_(std::move(run)) {}
  Status Run() {
    std::lock_guard lock(mu_);
    if (!run_) return Error(ErrorCode::kUnavailable, "store is closed");
    return run_();
  }
  void Clear() {
    std::lock_guard lock(mu_);  // waits for a catch-up under way
    run_ = nullptr;
  }

 private:
  std::mutex mu_;
  std::function<Status()> run_;
};

// ---- read pool -------------------------------------------------------------------------------

// Shared by the store and every open read transaction, so a transaction that outlives Close()
// still returns its connection somewhere valid (and the connection is then closed).
class ReadPool {
 public:
  ReadPool(std::string path, ConnectionOptions options, int size)
      : path_(std::move(path)), options_(options), size_(std::max(size, 1)) {}

  Result<std::unique_ptr<Connection>> Acquire() {
    std::unique_lock lock(mu_);
    auto deadline = Clock::now() + std::chrono::milliseconds(options_.busy_timeout_ms);
    for (;;) {
      if (closed_) return Error(ErrorCode::kUnavailable, "store is closed");
      if (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        return conn;
      }
      if (open_ < size_) {
        ++open_;
        lock.unlock();
        auto conn = Connection::Open(path_, options_);
        if (conn.ok()) {
          // Readers do not write, but a reader may be the last connection to close and then
          // checkpoints: keep that durable too.
          if (Status s = (*conn)->Exec("PRAGMA synchronous=FULL"); !s.ok()) conn = s.error();
        }
        if (!conn.ok()) {
          lock.lock();
          --open_;
          cv_.notify_one();
        }
        return conn;
      }
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= size_) {
        return Error(ErrorCode::kUnavailable, "all read connections are busy");
      }
    }
  }

  void Release(std::unique_ptr<Connection> conn) {
    std::lock_guard lock(mu_);
    if (closed_) {
      --open_;
      return;  // conn closes here
    }
    idle_.push_back(std::move(conn));
    cv_.notify_one();
  }

  void Close() {
    std::vector<std::unique_ptr<Connection>> idle;
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      open_ -= static_cast<int>(idle_.size());
      idle.swap(idle_);
      cv_.notify_all();
    }
  }

 private:
  const std::string path_;
  const ConnectionOptions options_;
  const int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;
  bool closed_ = false;
};

class SqliteReadTransaction final : public IReadTransaction {
 public:
  // Timers are copied: a read transaction may outlive its store (the histograms live in the
  // process-wide registry).
  SqliteReadTransaction(std::shared_ptr<ReadPool> pool, std::unique_ptr<Connection> conn,
                        const Timers& timers, std::shared_ptr<sql::EstimateCache> estimates,
                        std::shared_ptr<FullTextCatchUp> full_text)
      : pool_(std::move(pool)),
        conn_(std::move(conn)),
        timers_(timers),
        estimates_(std::move(estimates)),
        full_text_(std::move(full_text)) {}
  ~SqliteReadTransaction() override {
    // Ends the snapshot; ROLLBACK is safe even if an error already ended the transaction.
    if (conn_->InTransaction()) (void)conn_->Exec("ROLLBACK");
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
    if (UsesFullText(query.all_of)) JC_RETURN_IF_ERROR(CatchUpFullText());
    return QuerySearch(*conn_, query, estimates_.get());
  }

 private:
  // A _text/_content search sees every write acknowledged before it: when text waits in
  // fts_pending in this transaction's snapshot, the writer indexes it (a unit of work of its
  // own), and the transaction continues in a new snapshot that includes it. Reads made before
  // in this transaction were of the older snapshot.
  Status CatchUpFullText() {
    JC_ASSIGN_OR_RETURN(std::optional<int64_t> waiting,
                        conn_->QueryInt("SELECT EXISTS (SELECT 1 FROM fts_pending)"));
    if (!waiting || *waiting == 0) return Status::Ok();
    JC_RETURN_IF_ERROR(conn_->Exec("ROLLBACK"));
    Status indexed = full_text_->Run();
    JC_RETURN_IF_ERROR(conn_->Exec("BEGIN DEFERRED"));
    return indexed;
  }

  std::shared_ptr<ReadPool> pool_;
  std::unique_ptr<Connection> conn_;
  const Timers timers_;
  std::shared_ptr<sql::EstimateCache> estimates_;  // shared with the store and its other reads
  std::shared_ptr<FullTextCatchUp> full_text_;
};

// The idx_* rows of a bulk load held by the writer thread between runs
// (SqliteStore::BeginBulkLoad).
struct BulkRows {
  IndexRunBuffer runs;
  int64_t run_rows = 0;   // SqliteOptions::bulk_build_rows: held in memory before a spill
  std::string spill_dir;  // where runs spill (the database's directory)
  // EndBulkLoad has inserted the last run: later units write as usual, and the writer drops
  // this holder once the group is done (a transaction of the group may still point to it).
  bool ended = false;
  bool lost = false;  // a rollback undid inserted runs: rebuild from the keys at the end
};

// The transaction handed to a unit of work: the writer connection inside the group's
// transaction, so reads see the group's earlier uncommitted writes (serial semantics). Not
// timed per call: the whole group is.
class SqliteWriteTransaction final : public IWriteTransaction {
 public:
  // Full-text rows go to `full_text`, which the group runner writes before COMMIT (and trims
  // when a unit rolls back); a search in this transaction writes them first, so it sees them.
  // `bulk` (a bulk load is under way, bulk_index_build.h): the idx_* rows are held there across
  // units and transactions, and inserted only once a run's worth has gathered (or when the load
  // ends), so that each insert covers a large sorted run.
  // `full_text_swept`: set when a search of the transaction indexed the rows waiting in
  // fts_pending (the group runner's count of them is then 0).
  SqliteWriteTransaction(Connection& conn, FullTextQueue& full_text, BulkRows* bulk,
                         bool* full_text_swept)
      : conn_(conn), full_text_(full_text), bulk_(bulk), full_text_swept_(full_text_swept) {}

  // For the store's own units of work (the bulk index build).
  Connection& connection() { return conn_; }

  Result<std::optional<ResourceVersion>> ReadCurrent(std::string_view type,
                                                     std::string_view id) override {
    return QueryCurrent(conn_, type, id);
  }
  Result<std::optional<ResourceVersion>> ReadVersion(std::string_view type, std::string_view id,
                                                     int64_t version) override {
    return QueryVersion(conn_, type, id, version);
  }
  Result<HistoryPage> History(const HistoryQuery& query) override {
    return QueryHistory(conn_, query);
  }
  Result<std::vector<std::string>> FindByToken(std::string_view type, std::string_view param,
                                               std::optional<std::string_view> system,
                                               std::string_view code, int limit) override {
    JC_RETURN_IF_ERROR(pending_.Flush(conn_));  // reads idx_token
    return QueryByToken(conn_, type, param, system, code, limit);
  }
  Result<int64_t> CountCurrent(std::string_view type) override { return QueryCount(conn_, type); }
  Result<std::vector<ResourceVersion>> ListCurrent(std::string_view type, int64_t offset,
                                                   int64_t count) override {
    return QueryList(conn_, type, offset, count);
  }
  Result<SearchPage> Search(const SearchQuery& query) override {
    JC_RETURN_IF_ERROR(pending_.Flush(conn_));
    if (UsesFullText(query.all_of)) JC_RETURN_IF_ERROR(IndexWaitingFullText());
    return QuerySearch(conn_, query);
  }

  // Indexes the text waiting in fts_pending and this transaction's queued rows, so that
  // fts_resource holds every write up to here.
  Status IndexWaitingFullText() {
    // Earlier units' rows now get written inside this unit's savepoint: keep a copy, to queue
    // them again if this unit rolls back (a rollback restores fts_pending by itself).
    restore_.insert(restore_.end(), full_text_.begin(),
                    full_text_.begin() + static_cast<std::ptrdiff_t>(unit_mark_));
    JC_RETURN_IF_ERROR(IndexFullText(conn_, full_text_));
    // fts_pending is empty now, whatever the writer's count said (it can over-count: a row that
    // replaced a waiting one), so an idle writer does not sweep an empty table again and again.
    if (full_text_swept_ != nullptr) *full_text_swept_ = true;
    unit_mark_ = 0;
    return Status::Ok();
  }

  // Unit boundaries inside the group's transaction, for the full-text queue.
  void BeginUnit() {
    unit_mark_ = full_text_.size();
    restore_.clear();
    pending_.clear();
    if (bulk_ != nullptr) runs_mark_ = bulk_->runs.mark();
  }
  // Writes what the unit still holds back (its idx_* rows) inside the unit, so that a failure
  // fails the unit and a rollback of the unit undoes them. A bulk load's rows wait for the end
  // of the load, spilled to a temporary file whenever a run's worth is held.
  Status FinishUnit() {
    JC_RETURN_IF_ERROR(pending_.Flush(conn_));
    if (IndexRunBuffer* runs = Runs(); runs != nullptr && !runs->flushing() &&
                                       static_cast<int64_t>(runs->size()) >= bulk_->run_rows) {
      return runs->Spill(bulk_->spill_dir);
    }
    return Status::Ok();
  }
  // The group runner's transaction boundaries, for a bulk load's held rows.
  void BeginTransaction() {
    if (bulk_ != nullptr) txn_mark_ = bulk_->runs.mark();
  }
  void TransactionRolledBack() { DropRunsSince(txn_mark_); }
  void UnitRolledBack() {
    pending_.clear();
    DropRunsSince(runs_mark_);
    full_text_.resize(unit_mark_);
    full_text_.insert(full_text_.begin(), restore_.begin(), restore_.end());
    restore_.clear();
  }
  Status Put(const ResourceVersion& version, const IndexRows& index) override {
    return PutVersion(conn_, version, index, &full_text_, &pending_, Runs());
  }
  Status ReplaceIndex(std::string_view type, std::string_view id, int64_t version,
                      const IndexRows& index) override {
    JC_SQL_STMT(s, conn_, "SELECT rid, version, deleted FROM resource WHERE type = ?1 AND id = ?2");
    s.BindText(1, type);
    s.BindText(2, id);
    JC_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound(std::string(type) + "/" + std::string(id) + " does not exist");
    const int64_t rid = s.ColumnInt(0);
    if (s.ColumnInt(1) != version || s.ColumnInt(2) != 0) {
      return Conflict(std::string(type) + "/" + std::string(id) + " is no longer at version " +
                      std::to_string(version));
    }
    JC_RETURN_IF_ERROR(s.Run());
    return ReplaceIndexRows(conn_, type, rid, /*fresh=*/false, index, &full_text_, &pending_,
                            Runs());
  }

 private:
  Connection& conn_;
  FullTextQueue& full_text_;
  // Drops the bulk load's rows added since `m` (their writes were rolled back). A flush since
  // then emptied the buffer, and the rollback undid the inserts of rows held from before `m` as
  // well: the load then rebuilds its tables from the keys instead.
  void DropRunsSince(const IndexRunBuffer::Mark& m) {
    if (bulk_ == nullptr) return;
    if (bulk_->runs.size() < m.count) bulk_->lost = true;
    bulk_->runs.truncate(m);
  }

  PendingIndexRows pending_;  // the current unit's idx_* rows, written when it ends
  IndexRunBuffer* Runs() { return bulk_ != nullptr && !bulk_->ended ? &bulk_->runs : nullptr; }

  BulkRows* const bulk_;            // a bulk load's (writer thread), or null
  bool* const full_text_swept_;     // see the constructor
  IndexRunBuffer::Mark runs_mark_;  // bulk_->runs when the current unit began
  IndexRunBuffer::Mark txn_mark_;   // … and when the transaction began
  size_t unit_mark_ = 0;            // full_text_ rows before it belong to earlier units
  FullTextQueue restore_;           // earlier units' rows written inside the current unit
};

// ---- the store and its writer ------------------------------------------------------------------

class SqliteStore final : public IStore {
 public:
  SqliteStore(std::string path, std::unique_ptr<Connection> writer,
              std::unique_ptr<Connection> checkpointer, std::shared_ptr<ReadPool> pool,
              const SqliteOptions& options, int wal_fd)
      : path_(std::move(path)),
        options_(options),
        timers_(Timers::Make()),
        writer_conn_(std::move(writer)),
        checkpoint_conn_(std::move(checkpointer)),
        pool_(std::move(pool)),
        wal_fd_(wal_fd) {
    if (wal_fd_ >= 0) {
      sync_thread_ = std::thread([this] {
        NameThisThread("jc-wal-sync");
        SyncLoop();
      });
    }
    // Checkpoints (copying WAL pages into the database file, with its own fsyncs) run on a
    // thread of their own instead of inside a COMMIT on the writer thread, so a group never
    // waits behind one. SQLite allows a PASSIVE checkpoint concurrently with a writer.
    sqlite3_wal_hook(writer_conn_->handle(), &SqliteStore::OnWalCommit, this);
    checkpoint_thread_ = std::thread([this] {
      NameThisThread("jc-checkpoint");
      CheckpointLoop();
    });
    if (auto waiting = CountPendingFullText(*writer_conn_); waiting.ok()) {
      full_text_waiting_ = *waiting;  // left by an earlier run: indexed once the writer idles
    }
    writer_thread_ = std::thread([this] {
      NameThisThread("jc-sqlite-write");
      WriterLoop();
    });
    writer_id_ = writer_thread_.get_id();
  }
  ~SqliteStore() override { Close(); }

  Result<std::unique_ptr<IReadTransaction>> BeginRead() override {
    JC_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, pool_->Acquire());
    // DEFERRED: the snapshot starts at the first read and holds until the transaction ends, so
    // every read of this transaction sees the same committed state.
    if (Status s = conn->Exec("BEGIN DEFERRED"); !s.ok()) {
      pool_->Release(std::move(conn));
      return std::move(s).error();
    }
    return std::unique_ptr<IReadTransaction>(
        new SqliteReadTransaction(pool_, std::move(conn), timers_, estimates_, full_text_));
  }

  Status Write(const WriteWork& work) override {
    if (std::this_thread::get_id() == writer_id_) {
      // A unit of work that calls Write would wait for its own group forever.
      return Internal("IStore::Write called from inside a unit of work");
    }
    Pending p{&work};
    std::unique_lock lock(mu_);
    if (stopping_) return Error(ErrorCode::kUnavailable, "store is closed");
    if (sync_failed_) {
      return Error(ErrorCode::kUnavailable,
                   "store refuses writes since an fsync of its WAL failed; restart the server");
    }
    queue_.push_back(&p);
    writer_cv_.notify_one();
    p.cv.wait(lock, [&] { return p.done; });
    return std::move(p.status);
  }

  void Close() override {
    full_text_->Clear();  // read transactions that outlive the store can no longer write
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
      stopping_ = true;
      writer_cv_.notify_one();
    }
    // The writer drains what was queued before stopping_ and then exits.
    if (writer_thread_.joinable()) writer_thread_.join();
    {
      std::lock_guard lock(checkpoint_mu_);
      checkpoint_stop_ = true;
      checkpoint_cv_.notify_all();
    }
    if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
    {
      std::lock_guard lock(sync_mu_);
      sync_stop_ = true;
      sync_cv_.notify_all();
    }
    // The sync thread acknowledges what the writer committed last, then exits.
    if (sync_thread_.joinable()) sync_thread_.join();
    if (wal_fd_ >= 0) {
      ::close(wal_fd_);
      wal_fd_ = -1;
    }
    checkpoint_conn_.reset();
    pool_->Close();
    if (writer_conn_) {
      // Fold the WAL into the database so the file is self-contained when we are the last
      // connection (best effort: a reader still open elsewhere keeps its pages).
      (void)writer_conn_->Exec("PRAGMA wal_checkpoint(TRUNCATE)");
      writer_conn_.reset();
    }
  }

  std::string_view Backend() const override { return "sqlite"; }

  void PrecomputeIndex(std::string_view type, IndexRows& rows) const override {
    rows.precomputed.clear();
    if (EmptyIndexRows(rows)) return;
    // The run records only while a bulk load holds the rows in runs (otherwise unused).
    thread_local std::string records;
    records.clear();
    if (bulk_loading_) IndexRunBuffer::EncodeRecords(type, rows, records);
    rows.precomputed = PackPrecomputedIndex(EncodeIndexKeys(rows), type, records);
  }

  Result<bool> BeginBulkLoad() override {
    if (bulk_loading_) return true;
    // Another process loading this file builds our rows too (from the keys), but we cannot
    // take the load on: write as usual.
    JC_ASSIGN_OR_RETURN(bool locked, bulk_lock_.TryAcquire(path_));
    if (!locked) return false;
    bool engaged = false;
    JC_RETURN_IF_ERROR(Write([&](IWriteTransaction& txn) -> Status {
      Connection& c = static_cast<SqliteWriteTransaction&>(txn).connection();
      // Only an empty database qualifies, or one whose bulk load crashed after we opened it
      // (its rows are in the keys, not in our holder: rebuild from those at the end).
      JC_ASSIGN_OR_RETURN(bool crashed, IndexBuildPending(c));
      if (!crashed) {
        JC_ASSIGN_OR_RETURN(std::optional<int64_t> any,
                            c.QueryInt("SELECT 1 FROM resource LIMIT 1"));
        if (any) return Status::Ok();
        JC_RETURN_IF_ERROR(SetIndexBuildPending(c, true));
      }
      engaged = true;
      bulk_ = std::make_unique<BulkRows>();  // on the writer thread, which alone uses it
      bulk_->run_rows = options_.bulk_build_rows;
      bulk_->spill_dir = SpillDirectory(path_);
      bulk_->lost = crashed;
      return Status::Ok();
    }));
    if (!engaged) {
      bulk_lock_.Release(/*remove=*/true);
      return false;
    }
    bulk_loading_ = true;
    spdlog::debug("sqlite: bulk load: search index rows are inserted in sorted runs");
    return true;
  }

  Status EndBulkLoad(const std::function<void(int64_t, int64_t)>& progress) override {
    if (!bulk_loading_) return Status::Ok();
    bool rebuild = false;
    std::vector<int> tables;
    int64_t total = 0;
    JC_RETURN_IF_ERROR(Write([&](IWriteTransaction&) -> Status {
      if (bulk_ == nullptr || bulk_->lost) {
        if (bulk_ != nullptr) bulk_->ended = true;
        rebuild = true;
        return Status::Ok();
      }
      total = static_cast<int64_t>(bulk_->runs.size() + bulk_->runs.spilled_rows());
      JC_ASSIGN_OR_RETURN(tables, bulk_->runs.BeginFlush());
      return Status::Ok();
    }));
    if (!rebuild) {
      // A commit per table: the checkpointer copies one table's pages into the database while
      // the writer inserts the next (the second core idled through the final insert, and the
      // WAL it left took a minute to fold in at close on the 1,000,000-resident county). The
      // marker stays set until the last; a crash before leaves it, and the next open rebuilds.
      int64_t done = 0;
      for (int k : tables) {
        JC_RETURN_IF_ERROR(Write([&](IWriteTransaction& txn) -> Status {
          Connection& c = static_cast<SqliteWriteTransaction&>(txn).connection();
          done += static_cast<int64_t>(bulk_->runs.rows(k));
          return bulk_->runs.FlushKind(c, k);
        }));
        if (progress) progress(std::min(done, total), total);
      }
      JC_RETURN_IF_ERROR(Write([&](IWriteTransaction& txn) -> Status {
        Connection& c = static_cast<SqliteWriteTransaction&>(txn).connection();
        bulk_->runs.EndFlush(/*done=*/true);
        bulk_->ended = true;
        return SetIndexBuildPending(c, false);
      }));
    }
    // A failure above leaves the marker: the next open rebuilds from the keys.
    if (rebuild) JC_RETURN_IF_ERROR(BuildIndexTables(progress));
    bulk_loading_ = false;
    bulk_lock_.Release(/*remove=*/true);
    return Status::Ok();
  }

  // Builds the idx_* tables of a bulk load that ended without doing so (a crash), when no
  // loader holds the lock any more. Called at open, before the store is handed out.
  Status CompleteInterruptedBulkLoad() {
    JC_ASSIGN_OR_RETURN(bool locked, bulk_lock_.TryAcquire(path_));
    if (!locked) {
      spdlog::warn(
          "sqlite: {} is being bulk loaded by another process; searches fail until it "
          "has built the search indexes",
          path_);
      return Status::Ok();
    }
    spdlog::warn(
        "sqlite: {}: a bulk load ended before building the search indexes; building "
        "them now",
        path_);
    const auto start = std::chrono::steady_clock::now();
    JC_RETURN_IF_ERROR(BuildIndexTables({}));
    bulk_lock_.Release(/*remove=*/true);
    spdlog::info("sqlite: search indexes built in {:.1f} s",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return Status::Ok();
  }

 private:
  // Empties the idx_* tables and fills them from resource_index_keys, a run per write
  // transaction; the last clears the marker. Searches fail until then; a crash in between leaves
  // the marker, and the next build starts over.
  Status BuildIndexTables(const std::function<void(int64_t, int64_t)>& progress) {
    IndexTableBuilder builder(options_.bulk_build_rows);
    bool done = false;
    bool first = true;
    while (!done) {
      JC_RETURN_IF_ERROR(Write([&](IWriteTransaction& txn) -> Status {
        Connection& c = static_cast<SqliteWriteTransaction&>(txn).connection();
        if (first) {
          JC_ASSIGN_OR_RETURN(bool pending, IndexBuildPending(c));
          if (!pending) {  // built already (by another process)
            done = true;
            return Status::Ok();
          }
          JC_RETURN_IF_ERROR(builder.Start(c));
        }
        JC_ASSIGN_OR_RETURN(done, builder.Step(c));
        return done ? SetIndexBuildPending(c, false) : Status::Ok();
      }));
      first = false;
      if (progress) progress(builder.resources_done(), builder.resources_total());
    }
    return Status::Ok();
  }

  // One caller's unit of work; lives on the caller's stack until `done`.
  struct Pending {
    const WriteWork* work;
    Status status;
    bool done = false;
    std::condition_variable cv;
  };

  // Runs on the writer thread after each commit, with the WAL's size in pages.
  static int OnWalCommit(void* self, sqlite3*, const char*, int pages) {
    auto* store = static_cast<SqliteStore*>(self);
    // The WAL grew by the frames of this commit, or restarted at frame 0 and holds only them.
    store->timers_.wal_frames->Increment(pages > store->wal_pages_ ? pages - store->wal_pages_
                                                                   : pages);
    if (pages < store->wal_pages_) store->checkpoint_asked_at_ = 0;  // the WAL restarted
    store->wal_pages_ = pages;
    // A background pass per wal_autocheckpoint_pages of growth, not per commit past the mark:
    // a pass costs two fsyncs and copies each page once however often it changed, so passes
    // after every small commit (as SQLite's own autocheckpoint does) rewrite the same hot index
    // pages again and again and take the second core from the request threads.
    if (pages - store->checkpoint_asked_at_ >= store->options_.wal_autocheckpoint_pages) {
      store->checkpoint_asked_at_ = pages;
      std::lock_guard lock(store->checkpoint_mu_);
      store->checkpoint_wanted_ = true;
      store->checkpoint_cv_.notify_all();
    }
    return SQLITE_OK;
  }

  void CheckpointLoop() {
    std::unique_lock lock(checkpoint_mu_);
    for (;;) {
      checkpoint_cv_.wait(
          lock, [&] { return checkpoint_stop_ || (checkpoint_wanted_ && !catch_up_requested_); });
      if (checkpoint_stop_) return;
      checkpoint_wanted_ = false;
      checkpoint_running_ = true;
      lock.unlock();
      // PASSIVE: copies what no reader still needs, never blocks the writer or readers. The
      // writer restarts the WAL from its start once everything has been copied.
      int log_pages = 0;
      int done_pages = 0;
      sqlite3_wal_checkpoint_v2(checkpoint_conn_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                &log_pages, &done_pages);
      lock.lock();
      checkpoint_running_ = false;
      checkpoint_cv_.notify_all();
    }
  }

  // SqliteOptions::bulk_cache_min_kib: an eighth of the file, within [min, cache_kib].
  void SizeBulkLoadCache() {
    auto kib = writer_conn_->QueryInt(
        "SELECT page_count * page_size / 1024 FROM pragma_page_count(), pragma_page_size()");
    const int64_t file_kib = kib.ok() && *kib ? **kib : 0;
    SetWriterCache(std::clamp(file_kib / 8,
                              std::min(options_.bulk_cache_min_kib, options_.cache_kib),
                              options_.cache_kib));
  }

  void SetWriterCache(int64_t kib) {
    if (kib == writer_cache_kib_) return;
    const std::string pragma = "PRAGMA cache_size=-" + std::to_string(kib);
    if (writer_conn_->Exec(pragma.c_str()).ok()) writer_cache_kib_ = kib;
  }

  void WriterLoop() {
    std::vector<Pending*> group;
    size_t last_group = 0;
    const auto window = std::chrono::microseconds(options_.group_commit_window_us);
    for (;;) {
      {
        std::unique_lock lock(mu_);
        const auto ready = [&] { return stopping_ || !queue_.empty(); };
        if (full_text_waiting_ > 0 && options_.full_text_idle_ms > 0) {
          if (!writer_cv_.wait_for(lock, std::chrono::milliseconds(options_.full_text_idle_ms),
                                   ready)) {
            lock.unlock();
            IndexWaitingFullTextWhileIdle();
            continue;
          }
        } else {
          writer_cv_.wait(lock, ready);
        }
        if (queue_.empty()) {  // stopping and drained
          lock.unlock();
          // A database closed cleanly has all its text indexed (only a crash leaves rows waiting).
          if (full_text_waiting_ > 0) IndexWaitingFullTextWhileIdle();
          return;
        }
        // The previous group's callers were just woken and are likely about to submit again:
        // waiting a fraction of an fsync for them lets them share the next one instead of
        // splitting into a group of one and a group of the rest. A lone sequential caller
        // (last group of 1) never waits.
        if (!stopping_ && queue_.size() < last_group && window.count() > 0) {
          writer_cv_.wait_for(lock, window,
                              [&] { return stopping_ || queue_.size() >= last_group; });
        }
        const size_t n = std::min(queue_.size(), static_cast<size_t>(options_.max_group));
        group.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      }
      last_group = group.size();
      CatchUpCheckpointIfWalLong();
      RunGroup(group);
      if (bulk_ != nullptr && bulk_->ended) {
        bulk_.reset();  // EndBulkLoad's group is done
        SetWriterCache(options_.cache_kib);
      } else if (bulk_ != nullptr) {
        SizeBulkLoadCache();
      }
      if (wal_fd_ >= 0) {
        std::lock_guard lock(sync_mu_);
        sync_queue_.insert(sync_queue_.end(), group.begin(), group.end());
        sync_cv_.notify_one();
      } else {
        Acknowledge(group);
      }
      group.clear();
    }
  }

  // The writer has been idle for full_text_idle_ms with text waiting in fts_pending: index it,
  // so that a _text/_content search rarely has to wait for that. Not synced here: the next
  // group's fsync covers it, and until then a crash loses the indexing and the deletion of the
  // waiting rows together (one transaction), which stay to be indexed again.
  void IndexWaitingFullTextWhileIdle() {
    const WriteWork work = [](IWriteTransaction& txn) {
      return static_cast<SqliteWriteTransaction&>(txn).IndexWaitingFullText();
    };
    Pending p{&work};
    const std::vector<Pending*> group = {&p};
    RunGroup(group);
    if (!p.status.ok()) {
      // Not retried while idle (a search still indexes them first, or reports why it cannot).
      spdlog::warn("sqlite: indexing the waiting full text failed: {}", p.status.error().message);
      full_text_waiting_ = 0;
    }
  }

  // Indexes the text waiting in fts_pending now, as a unit of work (a read transaction's
  // _text/_content search, SqliteReadTransaction::CatchUpFullText).
  Status IndexWaitingFullText() {
    return Write([](IWriteTransaction& txn) {
      return static_cast<SqliteWriteTransaction&>(txn).IndexWaitingFullText();
    });
  }

  void Acknowledge(const std::vector<Pending*>& group) {
    std::lock_guard lock(mu_);
    for (Pending* p : group) {
      p->done = true;
      p->cv.notify_one();
    }
  }

  // sync_off_writer: fsyncs the -wal file for every group the writer has committed since the
  // last pass (one fsync covers them all: their frames were written before it began), then
  // acknowledges them. A failed fsync leaves the durability of those frames unknown (the kernel
  // may have dropped the dirty pages), so their callers get an error and the store refuses
  // further writes until restarted, when SQLite recovers the WAL from what is on disk.
  void SyncLoop() {
    std::vector<Pending*> batch;
    for (;;) {
      {
        std::unique_lock lock(sync_mu_);
        sync_cv_.wait(lock, [&] { return sync_stop_ || !sync_queue_.empty(); });
        if (sync_queue_.empty()) return;  // stopping and drained
        batch.swap(sync_queue_);
      }
      int rc = 0;
      {
        ScopedTimer t(timers_.wal_sync);
        do {
          rc = ::fdatasync(wal_fd_);
        } while (rc != 0 && errno == EINTR);
      }
      if (rc != 0) {
        const std::string why = std::strerror(errno);
        spdlog::critical("sqlite: fsync of the WAL failed ({}); refusing further writes", why);
        {
          std::lock_guard lock(mu_);
          sync_failed_ = true;
        }
        for (Pending* p : batch) {
          if (p->status.ok()) {
            p->status = Error(ErrorCode::kUnavailable, "sqlite: fsync of the WAL failed (" + why +
                                                           "); the write may not be durable");
          }
        }
      }
      Acknowledge(batch);
      batch.clear();
    }
  }

  // The background checkpoint copies the WAL into the database while the writer keeps
  // appending, so under steady load it never finds the WAL fully copied, and SQLite restarts the
  // WAL from its first frame only when a write transaction begins on a fully copied WAL. Without
  // a restart the -wal file grows without bound (seen: 374 MB after 4,600 creates), every commit
  // extends the file (block allocation, and an inode write in each fdatasync) and the wal-index
  // grows. So once the WAL passes wal_restart_pages, the writer copies the last frames
  // itself between two groups (the background pass has already copied nearly all of them; this
  // costs two fsyncs), and the next BEGIN restarts the WAL, which is then overwritten in place.
  void CatchUpCheckpointIfWalLong() {
    if (wal_pages_ < options_.wal_restart_pages || wal_pages_ == caught_up_at_) return;
    {
      // Hold off new background passes and let a running one finish (it has copied most of the
      // WAL by then; the checkpoint lock allows one checkpointer at a time).
      std::unique_lock lock(checkpoint_mu_);
      catch_up_requested_ = true;
      checkpoint_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return !checkpoint_running_; });
    }
    int log_pages = 0;
    int done_pages = 0;
    const int rc = sqlite3_wal_checkpoint_v2(writer_conn_->handle(), nullptr,
                                             SQLITE_CHECKPOINT_PASSIVE, &log_pages, &done_pages);
    {
      std::lock_guard lock(checkpoint_mu_);
      catch_up_requested_ = false;
      checkpoint_cv_.notify_all();
    }
    // Copied up to here: nothing more to do until the next commit (which restarts the WAL unless
    // a reader still holds an old snapshot).
    if (rc == SQLITE_OK && done_pages == log_pages) caught_up_at_ = wal_pages_;
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

  // Runs every unit of the group in its own savepoint of one transaction and commits once.
  // Fills each Pending::status.
  void RunGroup(const std::vector<Pending*>& group) {
    ScopedTimer group_timer(timers_.write_group);
    Connection& c = *writer_conn_;
    FullTextQueue full_text;  // this transaction's full-text rows, written just before COMMIT
    bool swept = false;       // a search of the transaction indexed the waiting full text
    SqliteWriteTransaction txn(c, full_text, bulk_.get(), &swept);
    size_t next = 0;
    // Normally one pass; another pass only if SQLite aborted the whole transaction under a
    // unit (I/O error, disk full): the units before it lost their writes and are failed, the
    // rest get a fresh transaction.
    while (next < group.size()) {
      const size_t first = next;
      full_text.clear();
      swept = false;
      if (Status s = c.Exec("BEGIN IMMEDIATE"); !s.ok()) {
        for (size_t i = next; i < group.size(); ++i) group[i]->status = s;
        return;
      }
      txn.BeginTransaction();
      bool aborted = false;
      bool restart = false;
      for (; next < group.size(); ++next) {
        Pending& p = *group[next];
        // The first unit of a transaction needs no savepoint: if it fails, rolling back the
        // whole transaction undoes exactly it. A savepoint journals the original of every page
        // the unit touches (past 64 KiB into a temp file that is created, written and unlinked
        // per commit), so a lone create or a Bundle alone in its group skips all of that.
        if (next == first) {
          txn.BeginUnit();
          p.status = RunWork(*p.work, txn);
          if (p.status.ok()) p.status = txn.FinishUnit();
          if (!p.status.ok()) {
            if (c.InTransaction()) (void)c.Exec("ROLLBACK");
            txn.TransactionRolledBack();
            ++next;
            restart = true;  // the rest of the group in a fresh transaction
            break;
          }
          if (!c.InTransaction()) {  // SQLite ended it under a successful unit (I/O error)
            p.status = Internal("sqlite: transaction aborted");
            txn.TransactionRolledBack();
            ++next;
            restart = true;
            break;
          }
          continue;
        }
        if (Status s = c.Exec("SAVEPOINT w"); !s.ok()) {
          p.status = std::move(s);
          continue;
        }
        txn.BeginUnit();
        p.status = RunWork(*p.work, txn);
        if (p.status.ok()) p.status = txn.FinishUnit();
        if (!c.InTransaction()) {
          // The unit's failure rolled back the whole transaction.
          Error e = p.status.ok() ? Internal("sqlite: transaction aborted") : p.status.error();
          for (size_t i = first; i < next; ++i) {
            if (group[i]->status.ok()) group[i]->status = e;
          }
          if (p.status.ok()) p.status = e;
          txn.TransactionRolledBack();
          ++next;
          aborted = true;
          break;
        }
        if (p.status.ok()) {
          if (Status s = c.Exec("RELEASE w"); !s.ok()) p.status = std::move(s);
        }
        if (!p.status.ok()) {
          (void)c.Exec("ROLLBACK TO w");
          (void)c.Exec("RELEASE w");
          txn.UnitRolledBack();
        }
      }
      if (aborted || restart) continue;
      int64_t waiting = swept ? 0 : full_text_waiting_;
      Status commit = FinishFullText(c, full_text, waiting);
      if (commit.ok()) commit = Commit(c);
      if (commit.ok()) full_text_waiting_ = waiting;
      timers_.commits->Increment();
      timers_.units->Increment(static_cast<double>(next - first));
      if (!commit.ok()) {
        if (c.InTransaction()) (void)c.Exec("ROLLBACK");
        txn.TransactionRolledBack();
        for (size_t i = first; i < next; ++i) group[i]->status = commit;
      }
    }
  }

  // A transaction's full-text rows, just before its COMMIT: appended to fts_pending while fewer
  // than options_.full_text_batch rows wait there (counting them), else indexed with all the
  // waiting ones, one FTS5 segment for them all (an import's transactions always are).
  // `waiting`: the rows waiting before, then after this transaction (an over-count when a row
  // replaced a waiting one of the same resource: the batch then comes a little early).
  Status FinishFullText(Connection& c, FullTextQueue& queue, int64_t& waiting) {
    if (queue.empty()) return Status::Ok();
    const auto n = static_cast<int64_t>(queue.size());
    if (waiting + n < options_.full_text_batch) {
      JC_RETURN_IF_ERROR(QueueFullText(c, queue));
      waiting += n;
      return Status::Ok();
    }
    JC_RETURN_IF_ERROR(IndexFullText(c, queue));
    waiting = 0;
    return Status::Ok();
  }

  Status Commit(Connection& c) {
    ScopedTimer t(timers_.commit);
    for (int attempt = 0;; ++attempt) {
      Status s = c.Exec("COMMIT");
      // COMMIT can report BUSY while a reader of another process blocks the WAL reset; the
      // transaction stays open and may be retried.
      if (s.ok() || s.error().code != ErrorCode::kUnavailable || attempt >= 10 ||
          !c.InTransaction()) {
        return s;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1 << std::min(attempt, 6)));
    }
  }

  const std::string path_;
  const SqliteOptions options_;
  const Timers timers_;
  // The planner's row counts, reused by the searches of every read transaction.
  const std::shared_ptr<sql::EstimateCache> estimates_ = std::make_shared<sql::EstimateCache>();
  // A bulk load of this process is under way (Begin/EndBulkLoad's caller), and its held rows
  // (the writer thread's, set and reset by units of work).
  std::atomic<bool> bulk_loading_{false};
  int64_t writer_cache_kib_ = 0;  // the writer's cache_size now (writer thread)
  std::unique_ptr<BulkRows> bulk_;
  BulkLoadLock bulk_lock_;
  std::unique_ptr<Connection> writer_conn_;      // used only by the writer thread until Close
  std::unique_ptr<Connection> checkpoint_conn_;  // used only by the checkpoint thread
  int wal_pages_ = 0;            // frames in the WAL after the last commit (writer thread only)
  int64_t full_text_waiting_ = 0;  // rows in fts_pending, as far as the writer knows (its own)
  // Lets read transactions ask for the waiting full text to be indexed (cleared by Close).
  const std::shared_ptr<FullTextCatchUp> full_text_ =
      std::make_shared<FullTextCatchUp>([this] { return IndexWaitingFullText(); });
  int caught_up_at_ = -1;        // wal_pages_ when the writer last copied the whole WAL
  int checkpoint_asked_at_ = 0;  // wal_pages_ when a background pass was last asked for
  std::shared_ptr<ReadPool> pool_;

  std::mutex mu_;
  std::condition_variable writer_cv_;
  std::deque<Pending*> queue_;
  bool stopping_ = false;
  bool closed_ = false;
  std::thread writer_thread_;
  std::thread::id writer_id_;  // set before the store is handed out, then only read

  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false;
  bool checkpoint_running_ = false;  // a background pass is copying
  bool catch_up_requested_ = false;  // the writer waits to run its own pass
  bool checkpoint_stop_ = false;
  std::thread checkpoint_thread_;

  // sync_off_writer (see SqliteOptions): a descriptor of our own on the -wal file (fsync acts on
  // the file, whichever descriptor wrote), or -1 when the writer syncs inside COMMIT.
  int wal_fd_ = -1;
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::vector<Pending*> sync_queue_;  // committed, not yet synced
  bool sync_stop_ = false;
  bool sync_failed_ = false;  // under mu_
  std::thread sync_thread_;
};

}  // namespace

Result<std::unique_ptr<IStore>> OpenSqliteStoreWithMigrations(
    const std::string& path, const SqliteOptions& options, std::span<const Migration> migrations) {
  if (path.empty() || path == ":memory:" || path.starts_with("file::memory:")) {
    return Invalid("sqlite store needs a database file (WAL does not work in memory)");
  }
  if (options.read_connections < 1 || options.max_group < 1) {
    return Invalid("sqlite options: read_connections and max_group must be >= 1");
  }
  ConnectionOptions write_opts;
  write_opts.busy_timeout_ms = options.busy_timeout_ms;
  write_opts.cache_kib = options.cache_kib;
  write_opts.mmap_bytes = options.mmap_bytes;
  JC_ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer, Connection::Open(path, write_opts));
  // journal_mode is persistent in the file. It silently stays on the old mode if it cannot
  // switch; refuse to run then, because readers would block the writer.
  JC_ASSIGN_OR_RETURN(std::optional<std::string> mode,
                      writer->QueryText("PRAGMA journal_mode=WAL"));
  if (mode.value_or("") != "wal") {
    return Internal("sqlite: could not switch " + path + " to WAL mode");
  }
  // Automatic checkpoints stay on while migrating; the store moves them to its own thread.
  JC_RETURN_IF_ERROR(writer->Exec("PRAGMA synchronous=FULL"));
  JC_RETURN_IF_ERROR(ApplyMigrations(*writer, migrations));

  JC_ASSIGN_OR_RETURN(std::unique_ptr<Connection> checkpointer, Connection::Open(path, write_opts));
  // FULL: the checkpoint fsyncs the WAL before and the database after copying.
  JC_RETURN_IF_ERROR(checkpointer->Exec("PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0"));
  ConnectionOptions read_opts = write_opts;
  read_opts.read_only = true;
  read_opts.cache_kib = std::max<int64_t>(options.cache_kib / 4, 2048);
  read_opts.mmap_bytes = options.read_mmap_bytes;
  auto pool = std::make_shared<ReadPool>(path, read_opts, options.read_connections);
  int wal_fd = -1;
  if (options.sync_off_writer) {
    // The -wal file exists from the migrations' commit on and lives as long as a connection is
    // open (SQLite restarts it in place, never replaces it).
    wal_fd = ::open((path + "-wal").c_str(), O_RDONLY | O_CLOEXEC);
    if (wal_fd >= 0) {
      if (Status s = writer->Exec("PRAGMA synchronous=NORMAL"); !s.ok()) {
        ::close(wal_fd);
        return std::move(s).error();
      }
    } else {
      spdlog::warn("sqlite: cannot open {}-wal ({}); fsyncing inside COMMIT instead", path,
                   std::strerror(errno));
    }
  }
  JC_ASSIGN_OR_RETURN(bool build_pending, IndexBuildPending(*writer));
  auto store = std::make_unique<SqliteStore>(path, std::move(writer), std::move(checkpointer),
                                             std::move(pool), options, wal_fd);
  if (build_pending) {
    // Not fatal: reads and writes work without the search indexes, searches answer 503, and the
    // next open tries again (e.g. once the disk has room).
    if (Status st = store->CompleteInterruptedBulkLoad(); !st.ok()) {
      spdlog::error(
          "sqlite: {}: building the search indexes failed ({}); searches fail until a "
          "later open builds them",
          path, st.error().message);
    }
  }
  return std::unique_ptr<IStore>(std::move(store));
}

}  // namespace sqlite

Result<std::unique_ptr<IStore>> OpenSqliteStore(const std::string& path,
                                                const SqliteOptions& options) {
  return sqlite::OpenSqliteStoreWithMigrations(path, options, sqlite::Migrations());
}

}  // namespace jiceng::store
