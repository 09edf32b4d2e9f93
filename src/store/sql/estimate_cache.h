// store/sql/estimate_cache: the row counts the search planner asked for (sql::RowEstimator),
// kept for a short while per store, so that the same clause searched again (a worklist opened by
// many users, a page after the first) is planned without counting its index rows again.
//
// A count only steers the plan (which clause drives, collect or probe, walk or collect all), never
// which resources match, so a count some seconds old costs at worst a slower plan while the data
// changes fast, and never a wrong answer. On PostgreSQL counting is a scan of the clause's
// index entries (~12 ms for 69,000 Observation category rows, and every search of that clause
// paid it); on SQLite it is cheaper but not free.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "store/sql/search_sql.h"

namespace jiceng::store::sql {

class EstimateCache {
 public:
  // `ttl`: how long a count is reused (30 s: a worklist's repeated searches hit, and a table
  // that grows tenfold in 30 s is a bulk load, which runs without a server); `max_entries`
  // bounds the memory (an entry is its statement's text and values, a few hundred bytes).
  explicit EstimateCache(std::chrono::milliseconds ttl = std::chrono::seconds(30),
                         size_t max_entries = 4096);

  std::optional<int64_t> Find(const Statement& st);
  void Put(const Statement& st, int64_t rows);

  // Counts with `inner` on a miss, and keeps what it counted.
  class Estimator final : public RowEstimator {
   public:
    Estimator(RowEstimator& inner, EstimateCache* cache) : inner_(inner), cache_(cache) {}
    std::optional<int64_t> CountRows(const Statement& st) override;

   private:
    RowEstimator& inner_;
    EstimateCache* cache_;  // null: no caching
  };

 private:
  struct Entry {
    int64_t rows = 0;
    std::chrono::steady_clock::time_point at;
  };
  static std::string KeyOf(const Statement& st);

  const std::chrono::milliseconds ttl_;
  const size_t max_entries_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace jiceng::store::sql
