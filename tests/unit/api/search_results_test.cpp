// api/search_results: the kept ids of searches, within their byte budget and time to live, and
// shared through a store that shares them.
#include "api/search_results.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <thread>

#include "store/store.h"

namespace jiceng::api {
namespace {

SearchResults Results(int n, const std::string& criteria = "name=x") {
  SearchResults r{criteria, 1, {}};
  for (int i = 0; i < n; ++i) r.ids.push_back("id-" + std::to_string(i));
  return r;
}

TEST(SearchResultCache, KeepsAndFindsByKey) {
  SearchResultCache cache({});
  const std::string key = cache.Put(Results(3));
  ASSERT_FALSE(key.empty());
  auto hit = cache.Get(key);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->ids, (std::vector<std::string>{"id-0", "id-1", "id-2"}));
  EXPECT_EQ(hit->criteria, "name=x");
  EXPECT_FALSE(cache.Get("not-a-key"));
  EXPECT_NE(cache.Put(Results(3)), key);  // every search its own key
}

TEST(SearchResultCache, TheLeastRecentlyUsedGoFirstPastTheBudget) {
  // Each entry of 100 ids costs ~4.5 KB here: the budget holds two.
  SearchResultCache cache({.max_ids = 1000, .max_bytes = 10000, .ttl = std::chrono::seconds(60)});
  const std::string a = cache.Put(Results(100));
  const std::string b = cache.Put(Results(100));
  ASSERT_TRUE(cache.Get(a));  // a is now more recent than b
  const std::string c = cache.Put(Results(100));
  EXPECT_TRUE(cache.Get(a));
  EXPECT_FALSE(cache.Get(b));
  EXPECT_TRUE(cache.Get(c));
  EXPECT_EQ(cache.entries(), 2u);
  EXPECT_EQ(cache.Put(Results(1000)), "");  // alone larger than the budget: not kept
}

TEST(SearchResultCache, UnusedEntriesExpireAndZeroTurnsItOff) {
  SearchResultCache cache({.max_ids = 10, .max_bytes = 1 << 20, .ttl = std::chrono::seconds(0)});
  const std::string key = cache.Put(Results(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_FALSE(cache.Get(key));
  SearchResultCache off({.max_ids = 0});
  EXPECT_EQ(off.Put(Results(2)), "");
}

// A store that shares entries as PostgreSQL does (a map in place of the search_results table).
class SharingStore : public store::IStore {
 public:
  Result<std::unique_ptr<store::IReadTransaction>> BeginRead() override {
    return Internal("not used");
  }
  Status Write(const store::WriteWork&) override { return Internal("not used"); }
  void Close() override {}
  std::string_view Backend() const override { return "sharing"; }
  bool SharesSearchResults() const override { return true; }
  void PublishSearchResults(std::string key, std::string body, int64_t expires_us) override {
    rows[key] = {std::move(body), expires_us};
  }
  Result<std::optional<std::string>> FindSearchResults(std::string_view key, int64_t now_us,
                                                       int64_t expires_us) override {
    auto it = rows.find(std::string(key));
    if (it == rows.end() || it->second.second < now_us) return std::optional<std::string>{};
    it->second.second = std::max(it->second.second, expires_us);
    return std::optional<std::string>{it->second.first};
  }
  std::map<std::string, std::pair<std::string, int64_t>> rows;
};

TEST(SearchResultCache, AnotherProcessFindsTheEntryThroughASharingStore) {
  SharingStore store;
  SearchResultCache a({}, &store), b({}, &store);
  SearchResults r = Results(3, "/Patient?name=王");
  r.snapshot_us = 1795000000000000;
  r.total_known = false;
  const std::string key = a.Put(r);
  ASSERT_EQ(store.rows.size(), 1u);
  auto hit = b.Get(key);  // not in b's memory: found in the store
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->ids, r.ids);
  EXPECT_EQ(hit->criteria, r.criteria);
  EXPECT_EQ(hit->snapshot_us, r.snapshot_us);
  EXPECT_FALSE(hit->total_known);
  EXPECT_EQ(b.entries(), 1u);  // and kept in b's memory from then on
  EXPECT_FALSE(b.Get("not-a-key"));
  // An expired row is a miss.
  store.rows[key].second = 0;
  SearchResultCache c({}, &store);
  EXPECT_FALSE(c.Get(key));
  // Without a sharing store nothing is published or looked up.
  SearchResultCache alone({});
  EXPECT_FALSE(alone.Get(key));
}

TEST(SearchResultCache, SharedFormRoundTripsAndRejectsAnythingElse) {
  SearchResults r = Results(2, "/Observation?code=a,b");
  auto back = SearchResultCache::Decode(SearchResultCache::Encode(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->ids, r.ids);
  SearchResults none = Results(0);
  back = SearchResultCache::Decode(SearchResultCache::Encode(none));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->ids.empty());
  for (const char* bad :
       {"", "[]", "{}", R"({"criteria":1,"snapshot":1,"totalKnown":true,"ids":""})",
        R"({"criteria":"x","snapshot":"1","totalKnown":true,"ids":""})", "{"}) {
    EXPECT_FALSE(SearchResultCache::Decode(bad)) << bad;
  }
}

}  // namespace
}  // namespace jiceng::api
