// store/sql/estimate_cache: the planner's row counts, reused within their time to live and only
// for the very same count.
#include "store/sql/estimate_cache.h"

#include <gtest/gtest.h>

#include <thread>

namespace jiceng::store::sql {
namespace {

// Counts how often it is asked; answers `rows` (nullopt: the count failed).
class CountingEstimator : public RowEstimator {
 public:
  std::optional<int64_t> CountRows(const Statement&) override {
    ++calls;
    return rows;
  }
  int calls = 0;
  std::optional<int64_t> rows = 42;
};

Statement Count(std::string code, int64_t n = 7) {
  return Statement{"SELECT count(*) FROM (SELECT 1 FROM idx_token WHERE code = $1 AND x = $2)",
                   {Param{std::move(code), SqlType::kBytes}, Param{n, SqlType::kInt}}};
}

TEST(EstimateCache, ReusesACountForTheSameStatementAndValuesOnly) {
  EstimateCache cache;
  CountingEstimator inner;
  EstimateCache::Estimator e(inner, &cache);
  EXPECT_EQ(e.CountRows(Count("a")), 42);
  EXPECT_EQ(e.CountRows(Count("a")), 42);
  EXPECT_EQ(inner.calls, 1);
  e.CountRows(Count("b"));                                          // another value
  e.CountRows(Count("a", 8));                                       // another second value
  e.CountRows(Statement{Count("a").sql + " ", Count("a").params});  // another text
  EXPECT_EQ(inner.calls, 4);
  // A value that only differs in where one parameter ends and the next begins.
  Statement ab{"s",
               {Param{std::string("ab"), SqlType::kText}, Param{std::string("c"), SqlType::kText}}};
  Statement a_bc{
      "s", {Param{std::string("a"), SqlType::kText}, Param{std::string("bc"), SqlType::kText}}};
  e.CountRows(ab);
  e.CountRows(a_bc);
  EXPECT_EQ(inner.calls, 6);
}

TEST(EstimateCache, CountsAgainAfterTheTimeToLiveAndNeverKeepsAFailure) {
  EstimateCache cache(std::chrono::milliseconds(20));
  CountingEstimator inner;
  EstimateCache::Estimator e(inner, &cache);
  e.CountRows(Count("a"));
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  inner.rows = 43;
  EXPECT_EQ(e.CountRows(Count("a")), 43);
  EXPECT_EQ(inner.calls, 2);
  inner.rows.reset();
  EXPECT_EQ(e.CountRows(Count("z")), std::nullopt);
  EXPECT_EQ(e.CountRows(Count("z")), std::nullopt);
  EXPECT_EQ(inner.calls, 4);  // a failed count is asked again
  // Without a cache every count is asked.
  EstimateCache::Estimator uncached(inner, nullptr);
  inner.rows = 1;
  uncached.CountRows(Count("a"));
  uncached.CountRows(Count("a"));
  EXPECT_EQ(inner.calls, 6);
}

TEST(EstimateCache, StaysWithinItsEntries) {
  EstimateCache cache(std::chrono::seconds(30), 3);
  CountingEstimator inner;
  EstimateCache::Estimator e(inner, &cache);
  for (const char* v : {"a", "b", "c", "d"}) e.CountRows(Count(v));
  EXPECT_EQ(inner.calls, 4);
  // Full at the fourth: emptied, then "d" kept.
  e.CountRows(Count("d"));
  EXPECT_EQ(inner.calls, 4);
  e.CountRows(Count("a"));
  EXPECT_EQ(inner.calls, 5);
}

}  // namespace
}  // namespace jiceng::store::sql
