// store/postgres/shared_search_results: the search_results table (schema v8) behind
// IStore::PublishSearchResults and FindSearchResults, so that a paging link works on whichever
// jiceng process of the database it reaches.
//
// Publishing is off the request's path: entries queue for a thread of their own, which inserts
// them on its own connection (synchronous_commit off: the table is UNLOGGED anyway) and deletes
// the expired ones now and then. The queue holds at most `max_queued_bytes`; past that an entry
// is dropped (its links then re-run the search, as for any entry not found). Finding uses
// another connection, to the primary (the table is not readable on a hot standby, where the
// read pool may point), one round trip that also moves the entry's expiry.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "base/result.h"

namespace jiceng::store::postgres {

class PgConnection;

class SharedSearchResults {
 public:
  SharedSearchResults(std::string url, int64_t max_queued_bytes = 64ll << 20);
  ~SharedSearchResults();  // drops what is still queued
  SharedSearchResults(const SharedSearchResults&) = delete;
  SharedSearchResults& operator=(const SharedSearchResults&) = delete;

  void Publish(std::string key, std::string body, int64_t expires_us);
  Result<std::optional<std::string>> Find(std::string_view key, int64_t now_us, int64_t expires_us);
  // Waits until every entry published before the call is inserted (or dropped). Tests.
  void Flush();

 private:
  struct Entry {
    std::string key;
    std::string body;
    int64_t expires_us = 0;
  };
  void Loop();

  const std::string url_;
  const int64_t max_queued_bytes_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<Entry> queue_;
  int64_t queued_bytes_ = 0;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;  // started at the first Publish

  std::mutex find_mu_;
  std::unique_ptr<PgConnection> find_conn_;  // opened at the first Find
};

}  // namespace jiceng::store::postgres
