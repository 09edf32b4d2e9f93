#include "store/postgres/shared_search_results.h"

#include <spdlog/spdlog.h>

#include "base/time.h"
#include "store/postgres/pg_connection.h"

namespace jiceng::store::postgres {

namespace {

constexpr const char* kInsert =
    "INSERT INTO search_results (key, expires_us, body) VALUES ($1, $2, $3) "
    "ON CONFLICT (key) DO NOTHING";
constexpr const char* kDeleteExpired = "DELETE FROM search_results WHERE expires_us < $1";
constexpr const char* kFind =
    "UPDATE search_results SET expires_us = greatest(expires_us, $3) "
    "WHERE key = $1 AND expires_us >= $2 RETURNING body";
// The expired entries go once per this many inserts (and at the first).
constexpr int kSweepEvery = 256;

// A connection for this table only: its commits need not wait for a WAL flush (there is none
// for an UNLOGGED table, but the transaction's commit record would still be flushed).
Result<std::unique_ptr<PgConnection>> OpenSide(const std::string& url) {
  JC_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> c, PgConnection::Open(url));
  JC_RETURN_IF_ERROR(c->Exec("SET synchronous_commit = off"));
  return c;
}

}  // namespace

SharedSearchResults::SharedSearchResults(std::string url, int64_t max_queued_bytes)
    : url_(std::move(url)), max_queued_bytes_(max_queued_bytes) {}

SharedSearchResults::~SharedSearchResults() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    queue_.clear();
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void SharedSearchResults::Publish(std::string key, std::string body, int64_t expires_us) {
  std::lock_guard lock(mu_);
  if (stop_) return;
  const auto bytes = static_cast<int64_t>(key.size() + body.size());
  if (queued_bytes_ + bytes > max_queued_bytes_) return;  // dropped: see the header
  queued_bytes_ += bytes;
  queue_.push_back(Entry{std::move(key), std::move(body), expires_us});
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  cv_.notify_one();
}

void SharedSearchResults::Flush() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return stop_ || (queue_.empty() && !busy_); });
}

void SharedSearchResults::Loop() {
  std::unique_ptr<PgConnection> conn;
  int inserted = 0;
  for (;;) {
    Entry e;
    {
      std::unique_lock lock(mu_);
      busy_ = false;
      idle_cv_.notify_all();
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      e = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= static_cast<int64_t>(e.key.size() + e.body.size());
      busy_ = true;
    }
    if (!conn) {
      auto opened = OpenSide(url_);
      if (!opened.ok()) {
        spdlog::warn("postgres: search results not shared: {}", opened.error().message);
        continue;  // this entry is lost; the next one tries again
      }
      conn = std::move(*opened);
    }
    Status s = [&]() -> Status {
      if (inserted++ % kSweepEvery == 0) {
        JC_RETURN_IF_ERROR(conn->Query(kDeleteExpired, PgParams().Int(NowMicros())));
      }
      JC_RETURN_IF_ERROR(
          conn->Query(kInsert, PgParams().Text(e.key).Int(e.expires_us).Bytes(e.body)));
      return Status::Ok();
    }();
    if (!s.ok()) {
      spdlog::warn("postgres: search results not shared: {}", s.error().message);
      conn.reset();  // reopened for the next entry (the server may have restarted)
    }
  }
}

Result<std::optional<std::string>> SharedSearchResults::Find(std::string_view key, int64_t now_us,
                                                             int64_t expires_us) {
  std::lock_guard lock(find_mu_);
  if (!find_conn_) {
    JC_ASSIGN_OR_RETURN(find_conn_, OpenSide(url_));
  }
  auto r = find_conn_->Query(kFind, PgParams().Text(key).Int(now_us).Int(expires_us));
  if (!r.ok()) {
    find_conn_.reset();
    return std::move(r).error();
  }
  if (r->rows() == 0) return std::optional<std::string>{};
  return std::optional<std::string>{r->String(0, 0)};
}

}  // namespace jiceng::store::postgres
