// api/search_results: the ids of a search's matches, kept after its first page so that its
// paging links serve the same resources, in the same order, however the data changes meanwhile
// (FHIR R4 search, paging: "the server SHOULD ensure that the set of results is stable").
//
// A first page that has further pages and a known total of at most `max_ids` matches records
// the ids of all of them here, under a random key that its links carry (`_getpages`). A later
// page with that key reads its slice of the ids and serves each resource as it was at the
// search's snapshot (its `_snapshot` instant), so that updates and deletes after the first page
// neither shift the pages nor change what they show. Entries live in this process's memory,
// within a byte budget and a time to live, and, where the store shares them between processes
// (IStore::SharesSearchResults: PostgreSQL), in the database too, so that a link that reaches
// another process behind a load balancer, or this one after a restart, finds them there. A link
// whose entry is gone (expired, evicted, not shared) is answered by running the search again
// under the same snapshot, starting after the link's `_cursor` (the page's edge entry's sort
// values, which a first page's links carry beside the key on every backend, and a later page's
// where entries are not shared: SQLite) or, without one, at the link's offset. Shared entries
// are published off the request's path, so a first page's link can reach another process before
// its entry: the cursor serves it there.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"

namespace jiceng::store {
class IStore;
}

namespace jiceng::api {

struct SearchResults {
  // Which search: its path ("/Observation", "/Patient/1/Observation") and applied parameters.
  std::string criteria;
  int64_t snapshot_us = 0;       // the _snapshot of its pages
  std::vector<std::string> ids;  // every match, in page order
  // Whether the first page reported the total: past search_total_limit it did not (the ids came
  // from a search that collected every match anyway), and the later pages do not either.
  bool total_known = true;
};

struct SearchResultsOptions {
  int64_t max_ids = 10000;         // a search with more matches pages without an entry
  int64_t max_bytes = 64ll << 20;  // all entries together (ids and overhead, estimated)
  std::chrono::seconds ttl{1800};  // an entry unused this long is dropped
};

class SearchResultCache {
 public:
  // `shared`: the store to publish entries to and look them up in when it shares them.
  explicit SearchResultCache(SearchResultsOptions options, store::IStore* shared = nullptr);

  const SearchResultsOptions& options() const { return options_; }
  // Whether entries are published to the store, so that every process of it finds them.
  bool shared() const { return shared_ != nullptr; }

  // Keeps `results` and returns its key; "" when the cache is off (max_ids or max_bytes 0) or
  // the entry alone exceeds the budget.
  std::string Put(SearchResults results);
  // The entry under `key` (refreshing its time to live), or null: from this process's memory,
  // else from the store when it shares entries (an error of the store's is a miss).
  std::shared_ptr<const SearchResults> Get(const std::string& key);

  // The form an entry is shared in, and back (nullopt for anything else).
  static std::string Encode(const SearchResults& results);
  static std::optional<SearchResults> Decode(std::string_view body);

  size_t entries() const;

 private:
  struct Slot {
    std::string key;
    std::shared_ptr<const SearchResults> results;
    int64_t bytes = 0;
    std::chrono::steady_clock::time_point used;
  };
  void EvictLocked(std::chrono::steady_clock::time_point now);
  // Lists `results` under `key` in this process's memory; false when it alone exceeds the budget.
  bool PutLocal(const std::string& key, std::shared_ptr<const SearchResults> results);

  const SearchResultsOptions options_;
  store::IStore* const shared_;
  mutable std::mutex mu_;
  std::list<Slot> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Slot>::iterator> by_key_;
  int64_t bytes_ = 0;
};

}  // namespace jiceng::api
