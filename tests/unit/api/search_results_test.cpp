// api/search_results: the kept ids of searches, within their byte budget and time to live.
#include "api/search_results.h"

#include <gtest/gtest.h>

#include <thread>

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

}  // namespace
}  // namespace jiceng::api
