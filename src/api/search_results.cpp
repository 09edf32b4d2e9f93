#include "api/search_results.h"

#include <utility>

#include "base/ids.h"
#include "base/json.h"
#include "base/time.h"
#include "store/store.h"

namespace jiceng::api {
namespace {

int64_t BytesOf(const SearchResults& r) {
  int64_t n = 256 + static_cast<int64_t>(r.criteria.size());
  for (const std::string& id : r.ids) n += static_cast<int64_t>(sizeof(std::string) + id.size());
  return n;
}

}  // namespace

SearchResultCache::SearchResultCache(SearchResultsOptions options, store::IStore* shared)
    : options_(options), shared_(shared && shared->SharesSearchResults() ? shared : nullptr) {}

bool SearchResultCache::PutLocal(const std::string& key,
                                 std::shared_ptr<const SearchResults> results) {
  const int64_t bytes = BytesOf(*results);
  if (bytes > options_.max_bytes) return false;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (by_key_.contains(key)) return true;
  lru_.push_front(Slot{key, std::move(results), bytes, now});
  by_key_[key] = lru_.begin();
  bytes_ += bytes;
  EvictLocked(now);
  return true;
}

std::string SearchResultCache::Put(SearchResults results) {
  if (options_.max_ids <= 0 || options_.max_bytes <= 0) return {};
  std::string key = NewUuid();
  auto shared = std::make_shared<const SearchResults>(std::move(results));
  if (!PutLocal(key, shared)) return {};
  if (shared_) {
    const int64_t ttl_us =
        std::chrono::duration_cast<std::chrono::microseconds>(options_.ttl).count();
    shared_->PublishSearchResults(key, Encode(*shared), NowMicros() + ttl_us);
  }
  return key;
}

std::shared_ptr<const SearchResults> SearchResultCache::Get(const std::string& key) {
  {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    EvictLocked(now);
    auto it = by_key_.find(key);
    if (it != by_key_.end()) {
      it->second->used = now;
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->results;
    }
  }
  if (!shared_ || options_.max_ids <= 0 || options_.max_bytes <= 0) return nullptr;
  const int64_t now_us = NowMicros();
  const int64_t ttl_us =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.ttl).count();
  auto body = shared_->FindSearchResults(key, now_us, now_us + ttl_us);
  if (!body.ok() || !body->has_value()) return nullptr;
  std::optional<SearchResults> decoded = Decode(**body);
  if (!decoded) return nullptr;
  auto results = std::make_shared<const SearchResults>(std::move(*decoded));
  PutLocal(key, results);
  return results;
}

// {"criteria": …, "snapshot": …, "totalKnown": …, "ids": "id\nid\n…"}: the ids joined by newlines
// (a FHIR id has none), which parses far faster than an array of 10,000 strings.
std::string SearchResultCache::Encode(const SearchResults& results) {
  std::string ids;
  for (const std::string& id : results.ids) {
    if (!ids.empty()) ids += '\n';
    ids += id;
  }
  return json::serialize(json::object{{"criteria", results.criteria},
                                      {"snapshot", results.snapshot_us},
                                      {"totalKnown", results.total_known},
                                      {"ids", ids}});
}

std::optional<SearchResults> SearchResultCache::Decode(std::string_view body) {
  auto v = ParseJson(body);
  if (!v.ok() || !v->is_object()) return std::nullopt;
  const json::object& o = v->get_object();
  const json::value* criteria = o.if_contains("criteria");
  const json::value* snapshot = o.if_contains("snapshot");
  const json::value* total_known = o.if_contains("totalKnown");
  const json::value* ids = o.if_contains("ids");
  if (!criteria || !criteria->is_string() || !snapshot || !snapshot->is_int64() || !total_known ||
      !total_known->is_bool() || !ids || !ids->is_string())
    return std::nullopt;
  SearchResults r;
  r.criteria = std::string(criteria->get_string());
  r.snapshot_us = snapshot->get_int64();
  r.total_known = total_known->get_bool();
  const std::string_view all = ids->get_string();
  for (size_t pos = 0; pos < all.size();) {
    size_t nl = all.find('\n', pos);
    if (nl == std::string_view::npos) nl = all.size();
    r.ids.emplace_back(all.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return r;
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
