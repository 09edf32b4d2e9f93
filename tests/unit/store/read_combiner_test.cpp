// store/postgres/read_combiner: concurrent reads by id go to the database together, each caller
// gets its own answer, and no more than the allowed number of batches run at once.
#include "store/postgres/read_combiner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace jiceng::store::postgres {
namespace {

using namespace std::chrono_literals;

// Answers each item with a version whose json names its id; "missing" is not found and "bad"
// fails.
void Answer(std::span<ReadCombiner::Item* const> items) {
  for (ReadCombiner::Item* item : items) {
    if (item->id == "missing") continue;  // the item's default: not found
    if (item->id == "bad") {
      item->result = Error(ErrorCode::kUnavailable, "bad");
      continue;
    }
    ResourceVersion v;
    v.type = std::string(item->type);
    v.id = std::string(item->id);
    v.json = "json of " + v.id;
    item->result = std::optional<ResourceVersion>(std::move(v));
  }
}

TEST(ReadCombiner, AReadWithoutCompanyIsABatchOfItsOwn) {
  std::vector<size_t> sizes;
  ReadCombiner c(2, 32, [&](std::span<ReadCombiner::Item* const> items) {
    sizes.push_back(items.size());
    Answer(items);
  });
  auto r = c.Read("Patient", "a");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->json, "json of a");
  auto none = c.Read("Patient", "missing");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto bad = c.Read("Patient", "bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "bad");
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 1, 1}));
  EXPECT_EQ(c.stats().batches, 3u);
}

// One leader: while its batch runs, reads arriving queue; the next batch takes them all, at
// most max_batch at a time, oldest first, and every caller gets the answer to its own read.
TEST(ReadCombiner, ReadsArrivingWhileABatchRunsGoTogether) {
  constexpr int kWaiting = 7;
  std::atomic<bool> release{false};
  std::atomic<int> running{0};
  std::atomic<int> most_running{0};
  std::mutex mu;
  std::vector<std::vector<std::string>> batches;
  ReadCombiner c(1, 3, [&](std::span<ReadCombiner::Item* const> items) {
    const int now = ++running;
    int seen = most_running.load();
    while (now > seen && !most_running.compare_exchange_weak(seen, now)) {
    }
    {
      std::lock_guard lock(mu);
      batches.emplace_back();
      for (auto* item : items) batches.back().emplace_back(item->id);
    }
    while (!release) std::this_thread::sleep_for(1ms);
    Answer(items);
    --running;
  });
  std::vector<std::string> got(kWaiting + 1);
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    auto r = c.Read("Patient", "first");
    got[0] = r.ok() && r->has_value() ? (*r)->json : "?";
  });
  while (c.stats().batches == 0) std::this_thread::sleep_for(1ms);
  for (int i = 1; i <= kWaiting; ++i) {
    threads.emplace_back([&, i] {
      const std::string id = i == 4 ? "missing" : "p" + std::to_string(i);
      auto r = c.Read("Patient", id);
      got[i] = !r.ok() ? "error" : r->has_value() ? (*r)->json : "none";
    });
  }
  // Let every later read queue behind the running batch before it finishes.
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(c.stats().batches, 1u);
  release = true;
  for (auto& t : threads) t.join();

  EXPECT_EQ(most_running.load(), 1);
  const auto stats = c.stats();
  EXPECT_EQ(stats.reads, static_cast<uint64_t>(kWaiting + 1));
  // 1 + the 7 queued in batches of at most 3.
  EXPECT_EQ(stats.batches, 4u);
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(batches[0], (std::vector<std::string>{"first"}));
  for (size_t b = 1; b < batches.size(); ++b) EXPECT_LE(batches[b].size(), 3u);
  EXPECT_EQ(got[0], "json of first");
  for (int i = 1; i <= kWaiting; ++i) {
    EXPECT_EQ(got[i], i == 4 ? "none" : "json of p" + std::to_string(i)) << i;
  }
}

// Many threads, two leaders: every read answered with its own result, never more than two
// batches at once.
TEST(ReadCombiner, ManyThreadsNeverExceedTheLeaders) {
  std::atomic<int> running{0};
  std::atomic<int> most_running{0};
  ReadCombiner c(2, 32, [&](std::span<ReadCombiner::Item* const> items) {
    const int now = ++running;
    int seen = most_running.load();
    while (now > seen && !most_running.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(200us);
    Answer(items);
    --running;
  });
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto r = c.Read("Observation", id);
        if (!r.ok() || !r->has_value() || (*r)->json != "json of " + id) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(most_running.load(), 2);
  EXPECT_EQ(c.stats().reads, 1600u);
  // With eight threads and two places, reads must have been combined.
  EXPECT_LT(c.stats().batches, 1600u);
}

}  // namespace
}  // namespace jiceng::store::postgres
