#include "api/search_results.h"

#include <utility>

#include "base/ids.h"

namespace jiceng::api {
namespace {

int64_t BytesOf(const SearchResults& r) {
  int64_t n = 256 + static_cast<int64_t>(r.criteria.size());
  for (const std::string& id : r.ids) n += static_cast<int64_t>(sizeof(std::string) + id.size());
  return n;
}

}  // namespace

SearchResultCache::SearchResultCache(SearchResultsOptions options) : options_(options) {}

std::string SearchResultCache::Put(SearchResults results) {
  if (options_.max_ids <= 0 || options_.max_bytes <= 0) return {};
  const int64_t bytes = BytesOf(results);
  if (bytes > options_.max_bytes) return {};
  std::string key = NewUuid();
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  lru_.push_front(Slot{key, std::make_shared<const SearchResults>(std::move(results)), bytes, now});
  by_key_[key] = lru_.begin();
  bytes_ += bytes;
  EvictLocked(now);
  return key;
}

std::shared_ptr<const SearchResults> SearchResultCache::Get(const std::string& key) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  EvictLocked(now);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  it->second->used = now;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->results;
}

size_t SearchResultCache::entries() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

void SearchResultCache::EvictLocked(std::chrono::steady_clock::time_point now) {
  while (!lru_.empty() && (bytes_ > options_.max_bytes || now - lru_.back().used > options_.ttl)) {
    bytes_ -= lru_.back().bytes;
    by_key_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

}  // namespace jiceng::api
