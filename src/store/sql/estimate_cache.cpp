#include "store/sql/estimate_cache.h"

#include <cstring>
#include <variant>

namespace jiceng::store::sql {

EstimateCache::EstimateCache(std::chrono::milliseconds ttl, size_t max_entries)
    : ttl_(ttl), max_entries_(max_entries) {}

// The statement's text, then each value with its type and length: two statements share a key
// only when they are the same count.
std::string EstimateCache::KeyOf(const Statement& st) {
  std::string key = st.sql;
  for (const Param& p : st.params) {
    key += '\0';
    key += static_cast<char>(p.type);
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            key += 's';
            key += std::to_string(v.size());
            key += ':';
            key += v;
          } else {
            char bytes[sizeof(T)];
            std::memcpy(bytes, &v, sizeof(T));
            key += std::is_same_v<T, double> ? 'd' : 'i';
            key.append(bytes, sizeof(T));
          }
        },
        p.value);
  }
  return key;
}

std::optional<int64_t> EstimateCache::Find(const Statement& st) {
  const std::string key = KeyOf(st);
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (std::chrono::steady_clock::now() - it->second.at > ttl_) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.rows;
}

void EstimateCache::Put(const Statement& st, int64_t rows) {
  std::string key = KeyOf(st);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (entries_.size() >= max_entries_) {
    std::erase_if(entries_, [&](const auto& e) { return now - e.second.at > ttl_; });
    if (entries_.size() >= max_entries_) entries_.clear();
  }
  entries_[std::move(key)] = Entry{rows, now};
}

std::optional<int64_t> EstimateCache::Estimator::CountRows(const Statement& st) {
  if (cache_) {
    if (auto hit = cache_->Find(st)) return hit;
  }
  std::optional<int64_t> rows = inner_.CountRows(st);
  if (cache_ && rows) cache_->Put(st, *rows);
  return rows;
}

}  // namespace jiceng::store::sql
