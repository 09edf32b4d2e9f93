// Behaviour every IStore backend must show. Backend-neutral: only store.h is used here.
#include "store_conformance.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace jiceng::store::testing {
namespace {

using namespace std::chrono_literals;

std::string PatientJson(const std::string& id, int64_t version) {
  return R"({"resourceType":"Patient","id":")" + id + R"(","meta":{"versionId":")" +
         std::to_string(version) + R"("},"name":[{"family":"张","given":["三"]}]})";
}

ResourceVersion Make(std::string type, std::string id, int64_t version, int64_t updated_us,
                     bool deleted = false) {
  ResourceVersion v;
  v.type = std::move(type);
  v.id = std::move(id);
  v.version = version;
  v.last_updated_us = updated_us;
  v.deleted = deleted;
  if (!deleted) v.json = PatientJson(v.id, version);
  return v;
}

// What the API layer does: read the current version in the write transaction and append the
// next one. Returns the version written.
Result<int64_t> PutNext(IWriteTransaction& txn, const std::string& type, const std::string& id,
                        int64_t updated_us, const IndexRows& index = {}, bool deleted = false) {
  JC_ASSIGN_OR_RETURN(std::optional<ResourceVersion> cur, txn.ReadCurrent(type, id));
  const int64_t next = cur ? cur->version + 1 : 1;
  JC_RETURN_IF_ERROR(txn.Put(Make(type, id, next, updated_us, deleted), index));
  return next;
}

Status WriteNext(IStore& store, const std::string& type, const std::string& id, int64_t updated_us,
                 const IndexRows& index = {}, bool deleted = false) {
  return store.Write([&](IWriteTransaction& txn) -> Status {
    JC_ASSIGN_OR_RETURN(int64_t unused, PutNext(txn, type, id, updated_us, index, deleted));
    (void)unused;
    return Status::Ok();
  });
}

IndexRows Tokens(std::vector<TokenIndexRow> rows) { return IndexRows{std::move(rows)}; }

std::optional<ResourceVersion> Current(IStore& store, std::string_view type, std::string_view id) {
  auto txn = store.BeginRead();
  EXPECT_TRUE(txn.ok());
  if (!txn.ok()) return std::nullopt;
  auto r = (*txn)->ReadCurrent(type, id);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::nullopt;
}

#define ASSERT_OK(expr)                                                        \
  do {                                                                         \
    auto&& st_ = (expr);                                                       \
    ASSERT_TRUE(st_.ok()) << (st_.ok() ? std::string() : st_.error().message); \
  } while (0)

TEST_P(StoreConformance, PutThenReadCurrentReturnsTheSameVersion) {
  ResourceVersion v = Make("Patient", "p1", 1, 1'700'000'000'000'000);
  ASSERT_OK(store_->Write([&](IWriteTransaction& txn) { return txn.Put(v, {}); }));
  auto got = Current(*store_, "Patient", "p1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->type, "Patient");
  EXPECT_EQ(got->id, "p1");
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->last_updated_us, v.last_updated_us);
  EXPECT_FALSE(got->deleted);
  EXPECT_EQ(got->json, v.json);
  EXPECT_FALSE(Current(*store_, "Patient", "nope").has_value());
  EXPECT_FALSE(Current(*store_, "Observation", "p1").has_value());
}

TEST_P(StoreConformance, EveryVersionIsReadableAndTheNewestIsCurrent) {
  for (int i = 1; i <= 3; ++i) ASSERT_OK(WriteNext(*store_, "Patient", "p1", 1000 * i));
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  for (int i = 1; i <= 3; ++i) {
    auto v = (*txn)->ReadVersion("Patient", "p1", i);
    ASSERT_OK(v);
    ASSERT_TRUE(v->has_value());
    EXPECT_EQ((*v)->version, i);
    EXPECT_EQ((*v)->last_updated_us, 1000 * i);
    EXPECT_EQ((*v)->json, PatientJson("p1", i));
  }
  auto missing = (*txn)->ReadVersion("Patient", "p1", 4);
  ASSERT_OK(missing);
  EXPECT_FALSE(missing->has_value());
  auto cur = (*txn)->ReadCurrent("Patient", "p1");
  ASSERT_OK(cur);
  EXPECT_EQ((*cur)->version, 3);
  // History carries each version's own json too, the current one included.
  HistoryQuery hq;
  hq.type = "Patient";
  hq.id = "p1";
  auto h = (*txn)->History(hq);
  ASSERT_OK(h);
  ASSERT_EQ(h->entries.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(h->entries[i].json, PatientJson("p1", 3 - i));
}

TEST_P(StoreConformance, DeleteIsATombstoneVersion) {
  IndexRows idx = Tokens({{"identifier", "urn:id", "A1"}});
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 1000, idx));
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 2000, {}, /*deleted=*/true));
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  auto cur = (*txn)->ReadCurrent("Patient", "p1");
  ASSERT_OK(cur);
  ASSERT_TRUE(cur->has_value());
  EXPECT_TRUE((*cur)->deleted);
  EXPECT_EQ((*cur)->version, 2);
  EXPECT_TRUE((*cur)->json.empty());
  auto count = (*txn)->CountCurrent("Patient");
  ASSERT_OK(count);
  EXPECT_EQ(*count, 0);
  auto found = (*txn)->FindByToken("Patient", "identifier", std::nullopt, "A1", 10);
  ASSERT_OK(found);
  EXPECT_TRUE(found->empty());
  auto v1 = (*txn)->ReadVersion("Patient", "p1", 1);
  ASSERT_OK(v1);
  ASSERT_TRUE(v1->has_value());
  EXPECT_FALSE((*v1)->deleted);
  EXPECT_EQ((*v1)->json, PatientJson("p1", 1));
  HistoryQuery hq;
  hq.type = "Patient";
  hq.id = "p1";
  auto h = (*txn)->History(hq);
  ASSERT_OK(h);
  EXPECT_EQ(h->total, 2);
  ASSERT_EQ(h->entries.size(), 2u);
  EXPECT_TRUE(h->entries[0].deleted);
  EXPECT_TRUE(h->entries[0].json.empty());
  EXPECT_EQ(h->entries[1].json, PatientJson("p1", 1));
}

TEST_P(StoreConformance, ResurrectAfterDeleteContinuesVersions) {
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 1000));
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 2000, {}, true));
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 3000));
  auto cur = Current(*store_, "Patient", "p1");
  ASSERT_TRUE(cur.has_value());
  EXPECT_EQ(cur->version, 3);
  EXPECT_FALSE(cur->deleted);
}

TEST_P(StoreConformance, PutOfAnExistingVersionFailsAndChangesNothing) {
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 1000));
  Status s = store_->Write(
      [&](IWriteTransaction& txn) { return txn.Put(Make("Patient", "p1", 1, 5000), {}); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kConflict);
  auto cur = Current(*store_, "Patient", "p1");
  ASSERT_TRUE(cur.has_value());
  EXPECT_EQ(cur->last_updated_us, 1000);
  // A first version over a deleted resource too (its tombstone is version 2).
  ASSERT_OK(store_->Write([&](IWriteTransaction& txn) {
    return txn.Put(Make("Patient", "p1", 2, 2000, /*deleted=*/true), {});
  }));
  s = store_->Write(
      [&](IWriteTransaction& txn) { return txn.Put(Make("Patient", "p1", 1, 5000), {}); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kConflict);
}

TEST_P(StoreConformance, InstanceHistoryIsNewestFirstAndPages) {
  for (int i = 1; i <= 7; ++i) ASSERT_OK(WriteNext(*store_, "Patient", "p1", 1000 * i));
  ASSERT_OK(WriteNext(*store_, "Patient", "other", 1500));
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  HistoryQuery q;
  q.type = "Patient";
  q.id = "p1";
  q.count = 3;
  std::vector<int64_t> seen;
  for (q.offset = 0; q.offset < 9; q.offset += 3) {
    auto page = (*txn)->History(q);
    ASSERT_OK(page);
    EXPECT_EQ(page->total, 7);
    for (const auto& e : page->entries) {
      EXPECT_EQ(e.id, "p1");
      seen.push_back(e.version);
    }
  }
  EXPECT_EQ(seen, (std::vector<int64_t>{7, 6, 5, 4, 3, 2, 1}));
  q.offset = 100;
  auto beyond = (*txn)->History(q);
  ASSERT_OK(beyond);
  EXPECT_TRUE(beyond->entries.empty());
  EXPECT_EQ(beyond->total, 7);
  q.id = "never";
  q.offset = 0;
  auto none = (*txn)->History(q);
  ASSERT_OK(none);
  EXPECT_EQ(none->total, 0);
}

TEST_P(StoreConformance, TypeAndSystemHistoryFilterBySinceAndAtOrBefore) {
  // Patient a@100, Observation o@200, Patient b@300, Patient a@400, Observation o@500
  ASSERT_OK(WriteNext(*store_, "Patient", "a", 100));
  ASSERT_OK(WriteNext(*store_, "Observation", "o", 200));
  ASSERT_OK(WriteNext(*store_, "Patient", "b", 300));
  ASSERT_OK(WriteNext(*store_, "Patient", "a", 400));
  ASSERT_OK(WriteNext(*store_, "Observation", "o", 500));
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  auto times = [&](HistoryQuery q) {
    std::vector<int64_t> t;
    auto page = (*txn)->History(q);
    EXPECT_TRUE(page.ok());
    if (page.ok()) {
      for (const auto& e : page->entries) t.push_back(e.last_updated_us);
      t.push_back(-page->total);  // last element: minus the total, to check both at once
    }
    return t;
  };
  HistoryQuery sys;
  EXPECT_EQ(times(sys), (std::vector<int64_t>{500, 400, 300, 200, 100, -5}));
  HistoryQuery type;
  type.type = "Patient";
  EXPECT_EQ(times(type), (std::vector<int64_t>{400, 300, 100, -3}));
  HistoryQuery since = sys;
  since.since_us = 300;
  EXPECT_EQ(times(since), (std::vector<int64_t>{500, 400, 300, -3}));
  HistoryQuery window = sys;
  window.since_us = 200;
  window.at_or_before_us = 400;
  EXPECT_EQ(times(window), (std::vector<int64_t>{400, 300, 200, -3}));
  HistoryQuery type_window = type;
  type_window.at_or_before_us = 300;
  EXPECT_EQ(times(type_window), (std::vector<int64_t>{300, 100, -2}));
  HistoryQuery paged = sys;
  paged.offset = 1;
  paged.count = 2;
  EXPECT_EQ(times(paged), (std::vector<int64_t>{400, 300, -5}));
  HistoryQuery zero = sys;
  zero.count = 0;
  EXPECT_EQ(times(zero), (std::vector<int64_t>{-5}));
}

TEST_P(StoreConformance, FindByTokenMatchesSystemExactlyOrAny) {
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 1,
                      Tokens({{"identifier", "urn:a", "X"}, {"identifier", "urn:b", "X"}})));
  ASSERT_OK(WriteNext(*store_, "Patient", "p2", 2, Tokens({{"identifier", "", "X"}})));
  ASSERT_OK(WriteNext(*store_, "Patient", "p3", 3, Tokens({{"identifier", "urn:a", "Y"}})));
  ASSERT_OK(WriteNext(*store_, "Observation", "o1", 4, Tokens({{"identifier", "urn:a", "X"}})));
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  auto find = [&](std::optional<std::string_view> system, std::string_view code, int limit = 10,
                  std::string_view param = "identifier") {
    auto r = (*txn)->FindByToken("Patient", param, system, code, limit);
    EXPECT_TRUE(r.ok());
    std::set<std::string> ids;
    if (r.ok()) ids.insert(r->begin(), r->end());
    EXPECT_EQ(ids.size(), r.ok() ? r->size() : 0u) << "duplicate ids";
    return ids;
  };
  EXPECT_EQ(find("urn:a", "X"), (std::set<std::string>{"p1"}));
  EXPECT_EQ(find(std::nullopt, "X"), (std::set<std::string>{"p1", "p2"}));
  EXPECT_EQ(find("", "X"), (std::set<std::string>{"p2"}));
  EXPECT_EQ(find("urn:b", "Y"), (std::set<std::string>{}));
  EXPECT_EQ(find(std::nullopt, "X", 10, "other-param"), (std::set<std::string>{}));
  EXPECT_EQ(find(std::nullopt, "X", 1).size(), 1u);
  EXPECT_EQ(find(std::nullopt, "X", 0).size(), 0u);
}

TEST_P(StoreConformance, PutReplacesThePreviousVersionsTokens) {
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 1, Tokens({{"identifier", "urn:a", "OLD"}})));
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 2, Tokens({{"identifier", "urn:a", "NEW"}})));
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  auto old_ids = (*txn)->FindByToken("Patient", "identifier", "urn:a", "OLD", 10);
  ASSERT_OK(old_ids);
  EXPECT_TRUE(old_ids->empty());
  auto new_ids = (*txn)->FindByToken("Patient", "identifier", "urn:a", "NEW", 10);
  ASSERT_OK(new_ids);
  EXPECT_EQ(*new_ids, std::vector<std::string>{"p1"});
}

TEST_P(StoreConformance, CountCurrentByTypeAndOverall) {
  ASSERT_OK(WriteNext(*store_, "Patient", "a", 1));
  ASSERT_OK(WriteNext(*store_, "Patient", "a", 2));  // a second version is not a second resource
  ASSERT_OK(WriteNext(*store_, "Patient", "b", 3));
  ASSERT_OK(WriteNext(*store_, "Observation", "o", 4));
  ASSERT_OK(WriteNext(*store_, "Observation", "gone", 5));
  ASSERT_OK(WriteNext(*store_, "Observation", "gone", 6, {}, true));
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  EXPECT_EQ(*(*txn)->CountCurrent("Patient"), 2);
  EXPECT_EQ(*(*txn)->CountCurrent("Observation"), 1);
  EXPECT_EQ(*(*txn)->CountCurrent("Encounter"), 0);
  EXPECT_EQ(*(*txn)->CountCurrent(""), 3);
}

TEST_P(StoreConformance, ListCurrentIsOrderedByIdAndSkipsDeleted) {
  for (std::string id : {"c", "a", "d", "b"}) ASSERT_OK(WriteNext(*store_, "Patient", id, 1));
  ASSERT_OK(WriteNext(*store_, "Patient", "c", 2, {}, true));
  ASSERT_OK(WriteNext(*store_, "Observation", "a0", 1));
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  auto all = (*txn)->ListCurrent("Patient", 0, 10);
  if (!all.ok() && all.error().code == ErrorCode::kNotImplemented) GTEST_SKIP();
  ASSERT_OK(all);
  std::vector<std::string> ids;
  for (const auto& v : *all) ids.push_back(v.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b", "d"}));
  auto page = (*txn)->ListCurrent("Patient", 1, 1);
  ASSERT_OK(page);
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].id, "b");
  EXPECT_EQ((*page)[0].json, PatientJson("b", 1));
}

TEST_P(StoreConformance, HostileIdsAndTypesAreJustData) {
  const std::vector<std::string> ids = {"x'; DROP TABLE resource; --",  "\"quoted\"", "患者-001",
                                        std::string("nul\0inside", 10), "%_*?",       " "};
  for (const auto& id : ids) ASSERT_OK(WriteNext(*store_, "Patient", id, 1));
  for (const auto& id : ids) {
    auto cur = Current(*store_, "Patient", id);
    ASSERT_TRUE(cur.has_value()) << id;
    EXPECT_EQ(cur->id, id);
  }
  EXPECT_FALSE(Current(*store_, "Patient", "nul").has_value());
  EXPECT_FALSE(Current(*store_, "Patient'--", "x").has_value());
  EXPECT_FALSE(Current(*store_, "", "").has_value());
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  EXPECT_EQ(*(*txn)->CountCurrent("Patient"), static_cast<int64_t>(ids.size()));
  // An empty type or id cannot be written.
  Status s =
      store_->Write([](IWriteTransaction& t) { return t.Put(Make("Patient", "", 1, 1), {}); });
  EXPECT_FALSE(s.ok());
}

TEST_P(StoreConformance, AFailingWorkRollsBackAndReturnsItsError) {
  Status s = store_->Write([](IWriteTransaction& txn) -> Status {
    JC_RETURN_IF_ERROR(txn.Put(Make("Patient", "p1", 1, 1), {}));
    // The work sees its own write before failing.
    auto cur = txn.ReadCurrent("Patient", "p1");
    if (!cur.ok() || !cur->has_value()) return Internal("own write not visible");
    return Error(ErrorCode::kPreconditionFailed, "changed my mind");
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kPreconditionFailed);
  EXPECT_EQ(s.error().message, "changed my mind");
  EXPECT_FALSE(Current(*store_, "Patient", "p1").has_value());
}

TEST_P(StoreConformance, AThrowingWorkFailsOnlyItself) {
  Status s = store_->Write([](IWriteTransaction& txn) -> Status {
    (void)txn.Put(Make("Patient", "p1", 1, 1), {});
    throw std::runtime_error("boom");
  });
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(Current(*store_, "Patient", "p1").has_value());
  ASSERT_OK(WriteNext(*store_, "Patient", "p2", 1));
  EXPECT_TRUE(Current(*store_, "Patient", "p2").has_value());
}

TEST_P(StoreConformance, ABundleOfThreeHundredResourcesIsOneWrite) {
  ASSERT_OK(store_->Write([](IWriteTransaction& txn) -> Status {
    for (int i = 0; i < 300; ++i) {
      JC_RETURN_IF_ERROR(txn.Put(Make("Observation", "o" + std::to_string(i), 1, i),
                                 Tokens({{"code", "http://loinc.org", "8867-4"}})));
    }
    return Status::Ok();
  }));
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  EXPECT_EQ(*(*txn)->CountCurrent("Observation"), 300);
  auto found = (*txn)->FindByToken("Observation", "code", "http://loinc.org", "8867-4", 1000);
  ASSERT_OK(found);
  EXPECT_EQ(found->size(), 300u);
}

TEST_P(StoreConformance, ConcurrentWritersAreAllCommittedAndVisible) {
  constexpr int kThreads = 8;
  constexpr int kWrites = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!WriteNext(*store_, "Patient", id, i, Tokens({{"identifier", "urn:t", id}})).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  EXPECT_EQ(*(*txn)->CountCurrent("Patient"), kThreads * kWrites);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kWrites; ++i) {
      const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
      auto found = (*txn)->FindByToken("Patient", "identifier", "urn:t", id, 2);
      ASSERT_OK(found);
      EXPECT_EQ(*found, std::vector<std::string>{id});
    }
  }
}

// Holds the writer inside one work until released, so that works submitted meanwhile queue up
// and (in a group-committing backend) commit together. Correctness never depends on grouping.
TEST_P(StoreConformance, AFailingWorkAmongOthersRollsBackOnlyItself) {
  std::latch entered(1);
  std::latch release(1);
  std::thread blocker([&] {
    EXPECT_TRUE(store_
                    ->Write([&](IWriteTransaction& txn) {
                      entered.count_down();
                      release.wait();
                      return txn.Put(Make("Patient", "first", 1, 1), {});
                    })
                    .ok());
  });
  entered.wait();
  std::vector<std::thread> others;
  std::vector<Status> results(5);
  for (int i = 0; i < 5; ++i) {
    others.emplace_back([&, i] {
      results[i] = store_->Write([&, i](IWriteTransaction& txn) -> Status {
        // Earlier works of the same group are visible (serial semantics).
        auto first = txn.ReadCurrent("Patient", "first");
        if (!first.ok() || !first->has_value()) return Internal("earlier work not visible");
        JC_RETURN_IF_ERROR(txn.Put(Make("Patient", "w" + std::to_string(i), 1, 2), {}));
        if (i == 2) return Conflict("work 2 fails after writing");
        return Status::Ok();
      });
    });
  }
  std::this_thread::sleep_for(50ms);  // let them queue; the assertions hold either way
  release.count_down();
  blocker.join();
  for (auto& th : others) th.join();
  for (int i = 0; i < 5; ++i) {
    if (i == 2) {
      ASSERT_FALSE(results[i].ok());
      EXPECT_EQ(results[i].error().code, ErrorCode::kConflict);
      EXPECT_FALSE(Current(*store_, "Patient", "w2").has_value());
    } else {
      EXPECT_TRUE(results[i].ok()) << results[i].error().message;
      EXPECT_TRUE(Current(*store_, "Patient", "w" + std::to_string(i)).has_value());
    }
  }
  EXPECT_TRUE(Current(*store_, "Patient", "first").has_value());
}

// Two If-Match updates with the same expected version: exactly one wins, every round.
TEST_P(StoreConformance, ConditionalUpdatesWithTheSameExpectedVersionHaveOneWinner) {
  ASSERT_OK(WriteNext(*store_, "Patient", "p", 1));
  for (int round = 0; round < 30; ++round) {
    const int64_t expected = round + 1;
    std::latch go(2);
    Status results[2];
    auto update = [&](int k) {
      go.arrive_and_wait();
      results[k] = store_->Write([&](IWriteTransaction& txn) -> Status {
        JC_ASSIGN_OR_RETURN(std::optional<ResourceVersion> cur, txn.ReadCurrent("Patient", "p"));
        if (!cur || cur->version != expected) {
          return Error(ErrorCode::kPreconditionFailed, "version moved");
        }
        return txn.Put(Make("Patient", "p", expected + 1, 10 * expected + k), {});
      });
    };
    std::thread a(update, 0), b(update, 1);
    a.join();
    b.join();
    ASSERT_NE(results[0].ok(), results[1].ok()) << "round " << round;
    const Status& loser = results[0].ok() ? results[1] : results[0];
    EXPECT_EQ(loser.error().code, ErrorCode::kPreconditionFailed);
    auto cur = Current(*store_, "Patient", "p");
    ASSERT_TRUE(cur.has_value());
    EXPECT_EQ(cur->version, expected + 1);
  }
}

TEST_P(StoreConformance, AReadTransactionIsAStableSnapshot) {
  ASSERT_OK(WriteNext(*store_, "Patient", "p", 1));
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  auto before = (*txn)->ReadCurrent("Patient", "p");
  ASSERT_OK(before);
  EXPECT_EQ((*before)->version, 1);
  // A write commits while the read transaction is open (and is not blocked by it).
  ASSERT_OK(WriteNext(*store_, "Patient", "p", 2));
  ASSERT_OK(WriteNext(*store_, "Patient", "q", 3));
  auto again = (*txn)->ReadCurrent("Patient", "p");
  ASSERT_OK(again);
  EXPECT_EQ((*again)->version, 1);
  EXPECT_EQ(*(*txn)->CountCurrent("Patient"), 1);
  txn->reset();
  auto fresh = Current(*store_, "Patient", "p");
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(fresh->version, 2);
}

// Each write moves two resources to the same new version in one work; readers racing with
// the writes must always see both at the same version.
TEST_P(StoreConformance, ReadsDuringWritesSeeWholeWrites) {
  auto write_pair = [&](int64_t t) {
    return store_->Write([&](IWriteTransaction& txn) -> Status {
      JC_ASSIGN_OR_RETURN(int64_t a, PutNext(txn, "Patient", "a", t));
      JC_ASSIGN_OR_RETURN(int64_t b, PutNext(txn, "Patient", "b", t));
      return a == b ? Status::Ok() : Internal("pair out of step");
    });
  };
  ASSERT_OK(write_pair(0));
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto txn = store_->BeginRead();
        if (!txn.ok()) {
          ++torn;
          continue;
        }
        auto a = (*txn)->ReadCurrent("Patient", "a");
        std::this_thread::yield();
        auto b = (*txn)->ReadCurrent("Patient", "b");
        if (!a.ok() || !b.ok() || !a->has_value() || !b->has_value() ||
            (*a)->version != (*b)->version) {
          ++torn;
        }
        ++reads;
      }
    });
  }
  for (int i = 1; i <= 100; ++i) ASSERT_OK(write_pair(i));
  stop = true;
  for (auto& th : readers) th.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

TEST_P(StoreConformance, DataSurvivesCloseAndReopen) {
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 1, Tokens({{"identifier", "urn:a", "K"}})));
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 2, Tokens({{"identifier", "urn:a", "K"}})));
  Reopen();
  auto txn = store_->BeginRead();
  ASSERT_OK(txn);
  auto cur = (*txn)->ReadCurrent("Patient", "p1");
  ASSERT_OK(cur);
  ASSERT_TRUE(cur->has_value());
  EXPECT_EQ((*cur)->version, 2);
  EXPECT_EQ((*cur)->json, PatientJson("p1", 2));
  auto found = (*txn)->FindByToken("Patient", "identifier", "urn:a", "K", 10);
  ASSERT_OK(found);
  EXPECT_EQ(*found, std::vector<std::string>{"p1"});
  txn->reset();
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 3));
  EXPECT_EQ(Current(*store_, "Patient", "p1")->version, 3);
}

TEST_P(StoreConformance, CallsAfterCloseFailCleanly) {
  store_->Close();
  EXPECT_FALSE(store_->BeginRead().ok());
  EXPECT_FALSE(WriteNext(*store_, "Patient", "p", 1).ok());
  store_->Close();  // idempotent
}

TEST_P(StoreConformance, BackendHasAName) { EXPECT_FALSE(store_->Backend().empty()); }

// ---- through Search ---------------------------------------------------------------------------

// One row of every index kind, each carrying `tag` in its value, so that the rows of two
// versions never match each other's searches.
IndexRows EveryKind(const std::string& tag, double number) {
  IndexRows rows;
  rows.tokens = {{"code", "urn:s", "c-" + tag}};
  rows.strings = {{"name", "n-" + tag, "N-" + tag}};
  rows.dates = {
      {"date", static_cast<int64_t>(number) * 1000, static_cast<int64_t>(number) * 1000 + 1000}};
  rows.numbers = {{"probability", number}};
  rows.quantities = {{"value-quantity", number, "http://unitsofmeasure.org", "mm[Hg]", number, ""}};
  rows.references = {{"subject", "Patient", "p-" + tag, ""}};
  rows.uris = {{"url", "http://example.org/" + tag}};
  return rows;
}

// One query per index kind that matches exactly EveryKind(tag, number)'s row of that kind.
std::vector<std::pair<std::string, SearchQuery>> QueriesFor(const std::string& tag, double number) {
  auto query = [](SearchKind kind, std::string param, SearchValue v) {
    SearchQuery q;
    q.type = "Observation";
    SearchClause clause;
    clause.param = std::move(param);
    clause.kind = kind;
    clause.any_of.push_back(std::move(v));
    q.all_of.push_back(std::move(clause));
    return q;
  };
  std::vector<std::pair<std::string, SearchQuery>> out;
  SearchValue token;
  token.system = "urn:s";
  token.code = "c-" + tag;
  out.emplace_back("token", query(SearchKind::kToken, "code", token));
  SearchValue str;
  str.text = "n-" + tag;
  str.string_match = StringMatch::kStartsWith;
  out.emplace_back("string", query(SearchKind::kString, "name", str));
  SearchValue date;
  date.lo_us = static_cast<int64_t>(number) * 1000;
  date.hi_us = date.lo_us + 1000;
  out.emplace_back("date", query(SearchKind::kDate, "date", date));
  SearchValue num;
  num.number = number;
  num.lo = number - 0.5;
  num.hi = number + 0.5;
  out.emplace_back("number", query(SearchKind::kNumber, "probability", num));
  SearchValue qty = num;
  qty.system = "http://unitsofmeasure.org";
  qty.code = "mm[Hg]";
  out.emplace_back("quantity", query(SearchKind::kQuantity, "value-quantity", qty));
  SearchValue ref;
  ref.type = "Patient";
  ref.code = "p-" + tag;
  out.emplace_back("reference", query(SearchKind::kReference, "subject", ref));
  SearchValue uri;
  uri.text = "http://example.org/" + tag;
  uri.uri_match = UriMatch::kEquals;
  out.emplace_back("uri", query(SearchKind::kUri, "url", uri));
  return out;
}

// The ids each query of QueriesFor(tag, number) finds, "kind:id,id" per kind.
std::vector<std::string> Found(IStore& store, const std::string& tag, double number) {
  std::vector<std::string> out;
  auto txn = store.BeginRead();
  EXPECT_TRUE(txn.ok());
  if (!txn.ok()) return out;
  for (auto& [kind, q] : QueriesFor(tag, number)) {
    auto page = (*txn)->Search(q);
    EXPECT_TRUE(page.ok()) << kind << ": " << (page.ok() ? "" : page.error().message);
    std::string ids = kind + ":";
    if (page.ok()) {
      for (const auto& v : page->entries) ids += v.id + ",";
      EXPECT_EQ(page->total.value_or(-1), static_cast<int64_t>(page->entries.size())) << kind;
    }
    out.push_back(ids);
  }
  return out;
}

std::vector<std::string> Expect(const std::string& ids) {
  std::vector<std::string> out;
  for (const char* kind : {"token", "string", "date", "number", "quantity", "reference", "uri"}) {
    out.push_back(std::string(kind) + ":" + ids);
  }
  return out;
}

// Every index kind: an update replaces the previous version's rows (the old values no longer
// find the resource, the new ones do), a delete makes the resource unfindable, and a resurrect
// brings back exactly the new version's rows. "o2" keeps the first values throughout.
TEST_P(StoreSearchConformance, IndexRowsOfEveryKindAreReplacedOnUpdateAndGoneOnDelete) {
  ASSERT_OK(WriteNext(*store_, "Observation", "o1", 1, EveryKind("old", 11)));
  ASSERT_OK(WriteNext(*store_, "Observation", "o2", 2, EveryKind("old", 11)));
  EXPECT_EQ(Found(*store_, "old", 11), Expect("o1,o2,"));
  EXPECT_EQ(Found(*store_, "new", 22), Expect(""));

  ASSERT_OK(WriteNext(*store_, "Observation", "o1", 3, EveryKind("new", 22)));
  EXPECT_EQ(Found(*store_, "old", 11), Expect("o2,"));
  EXPECT_EQ(Found(*store_, "new", 22), Expect("o1,"));

  ASSERT_OK(WriteNext(*store_, "Observation", "o1", 4, {}, /*deleted=*/true));
  EXPECT_EQ(Found(*store_, "old", 11), Expect("o2,"));
  EXPECT_EQ(Found(*store_, "new", 22), Expect(""));

  ASSERT_OK(WriteNext(*store_, "Observation", "o1", 5, EveryKind("third", 33)));
  EXPECT_EQ(Found(*store_, "new", 22), Expect(""));
  EXPECT_EQ(Found(*store_, "third", 33), Expect("o1,"));
  EXPECT_EQ(Found(*store_, "old", 11), Expect("o2,"));
}

// ---- search semantics every SQL dialect must spell the same way --------------------------------
//
// The queries below are store::SearchQuery values built by hand (no FHIR parsing): what each
// backend's dialect of the search compiler (store/sql/search_sql.h) must answer identically.

// A query on `type` with one clause per call of Where(), answered as "id,id,…" (in order) plus
// the total.
class Q {
 public:
  explicit Q(std::string type = "Observation") { q_.type = std::move(type); }
  explicit Q(SearchQuery q) : q_(std::move(q)) {}
  Q& Where(SearchKind kind, std::string param, std::vector<SearchValue> any_of) {
    SearchClause c;
    c.kind = kind;
    c.param = std::move(param);
    c.any_of = std::move(any_of);
    q_.all_of.push_back(std::move(c));
    return *this;
  }
  Q& Clause(SearchClause c) {
    q_.all_of.push_back(std::move(c));
    return *this;
  }
  Q& Sort(SearchKind kind, std::string param, bool descending = false) {
    q_.sort.push_back(SortKey{std::move(param), kind, descending});
    return *this;
  }
  Q& Page(int64_t offset, int64_t count) {
    q_.offset = offset;
    q_.count = count;
    return *this;
  }
  Q& NoTotal() {
    q_.with_total = false;
    return *this;
  }
  Q& TotalLimit(int64_t n) {
    q_.total_limit = n;
    return *this;
  }
  Q& AtOrBefore(int64_t us) {
    q_.at_or_before_us = us;
    return *this;
  }
  const SearchQuery& query() const { return q_; }

 private:
  SearchQuery q_;
};

// "id,id,…" in result order, then " total N" (or " no total").
std::string Answer(IStore& store, const Q& q) {
  auto txn = store.BeginRead();
  if (!txn.ok()) return "begin: " + txn.error().message;
  auto page = (*txn)->Search(q.query());
  if (!page.ok()) return "error: " + page.error().message;
  std::string out;
  for (const ResourceVersion& v : page->entries) out += (out.empty() ? "" : ",") + v.id;
  return out + (page->total ? " total " + std::to_string(*page->total) : " no total");
}

SearchValue Text(std::string text, StringMatch match = StringMatch::kStartsWith,
                 std::string exact = "") {
  SearchValue v;
  v.text = std::move(text);
  v.exact = std::move(exact);
  v.string_match = match;
  return v;
}
SearchValue Token(std::optional<std::string> system, std::string code) {
  SearchValue v;
  v.system = std::move(system);
  v.code = std::move(code);
  return v;
}
SearchValue Number(SearchPrefix prefix, double x, double h) {
  SearchValue v;
  v.prefix = prefix;
  v.number = x;
  v.lo = x - h;
  v.hi = x + h;
  return v;
}
SearchValue Dates(SearchPrefix prefix, int64_t lo, int64_t hi) {
  SearchValue v;
  v.prefix = prefix;
  v.lo_us = lo;
  v.hi_us = hi;
  return v;
}
SearchValue Uri(std::string text, UriMatch match) {
  SearchValue v;
  v.text = std::move(text);
  v.uri_match = match;
  return v;
}
SearchValue Words(std::vector<std::string> words) {
  SearchValue v;
  v.words = std::move(words);
  return v;
}

IndexRows Names(std::vector<std::string> values) {
  IndexRows rows;
  for (std::string& v : values) rows.strings.push_back({"name", v, v});
  return rows;
}

// Full text inside one group commit (the SQLite writer holds a group's full-text rows back
// until COMMIT): units queued behind a blocked writer share a group; a unit's search sees the
// text of the units before it; a unit that searched and then failed takes only its own text
// with it, not that of the units its search wrote out.
TEST_P(StoreSearchConformance, FullTextOfUnitsInOneGroupSurvivesAFailedUnitThatSearched) {
  auto text_rows = [](const std::string& word) {
    IndexRows rows;
    rows.full_text = {{word, word}};
    return rows;
  };
  auto content = [](const std::string& word) {
    return Q("Patient").Where(SearchKind::kText, "_content", {Words({word})});
  };
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::thread blocker([&] {
    EXPECT_TRUE(store_
                    ->Write([&](IWriteTransaction&) -> Status {
                      released.wait();
                      return Status::Ok();
                    })
                    .ok());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the writer is now blocked
  std::thread a(
      [&] { EXPECT_TRUE(WriteNext(*store_, "Patient", "a", 1, text_rows("alpha")).ok()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::string seen_in_b;
  std::thread b([&] {
    Status st = store_->Write([&](IWriteTransaction& txn) -> Status {
      JC_ASSIGN_OR_RETURN(int64_t v, PutNext(txn, "Patient", "b", 1, text_rows("beta")));
      (void)v;
      JC_ASSIGN_OR_RETURN(SearchPage page, txn.Search(content("alpha").query()));
      for (const ResourceVersion& r : page.entries) seen_in_b += r.id;
      return Invalid("rolled back on purpose");
    });
    EXPECT_FALSE(st.ok());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::thread c(
      [&] { EXPECT_TRUE(WriteNext(*store_, "Patient", "c", 1, text_rows("gamma")).ok()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  release.set_value();
  for (std::thread* t : {&blocker, &a, &b, &c}) t->join();
  EXPECT_EQ(seen_in_b, "a");
  EXPECT_EQ(Answer(*store_, content("alpha")), "a total 1");
  EXPECT_EQ(Answer(*store_, content("beta")), " total 0");
  EXPECT_EQ(Answer(*store_, content("gamma")), "c total 1");
  EXPECT_FALSE(Current(*store_, "Patient", "b").has_value());
}

// Prefixes are ranges on the key: whatever the last character of the prefix (multi-byte, the
// last code point before the surrogates, the very last one), exactly the values starting with it
// match. The empty prefix matches every value of the parameter.
TEST_P(StoreSearchConformance, StringPrefixIsExactWhateverItsLastCharacter) {
  const std::vector<std::pair<std::string, std::string>> stored = {
      {"a1", "王小明"},
      {"a2", "王"},
      {"a3", "\xE7\x8E\x8C"},
      {"a4", "\xE7\x8E\x8A"},  // 王 = U+738B
      {"b1",
       "a\xF4\x8F\xBF\xBF"
       "b"},
      {"b2", "b"},
      {"b3", "a\xF4\x8F\xBF\xBF"},  // U+10FFFF
      {"c1", "\xF4\x8F\xBF\xBF"},
      {"c2",
       "\xF4\x8F\xBF\xBF"
       "x"},
      {"c3", "zzz"},
      {"d1", "\xED\x9F\xBF"},
      {"d2", "\xEE\x80\x80"},  // U+D7FF, U+E000
      {"e1", "o'neil \\ 100%_"},
      {"e2", "o'neilx"}};
  for (const auto& [id, value] : stored)
    ASSERT_OK(WriteNext(*store_, "Patient", id, 1, Names({value})));
  ASSERT_OK(WriteNext(*store_, "Patient", "none", 1));
  auto prefix = [&](const std::string& p) {
    return Answer(*store_, Q("Patient").Where(SearchKind::kString, "name", {Text(p)}));
  };
  EXPECT_EQ(prefix("王"), "a1,a2 total 2");
  EXPECT_EQ(prefix("王小"), "a1 total 1");
  EXPECT_EQ(prefix("a\xF4\x8F\xBF\xBF"), "b1,b3 total 2");
  EXPECT_EQ(prefix("\xF4\x8F\xBF\xBF"), "c1,c2 total 2");
  EXPECT_EQ(prefix("\xED\x9F\xBF"), "d1 total 1");
  EXPECT_EQ(prefix("o'neil \\ 100%"), "e1 total 1");
  EXPECT_EQ(prefix("o'neil"), "e1,e2 total 2");
  EXPECT_EQ(prefix("nobody"), " total 0");
  EXPECT_EQ(prefix(""), "a1,a2,a3,a4,b1,b2,b3,c1,c2,c3,d1,d2,e1,e2 total 14");
}

// :contains finds a substring anywhere, and LIKE's wildcards are plain characters; :exact
// compares the text as written.
TEST_P(StoreSearchConformance, StringContainsAndExact) {
  ASSERT_OK(WriteNext(*store_, "Patient", "p1", 1, Names({"50%_off"})));
  ASSERT_OK(WriteNext(*store_, "Patient", "p2", 1, Names({"a_b", "高血压"})));
  IndexRows mixed;
  mixed.strings = {{"name", "muller", "Müller"}};
  ASSERT_OK(WriteNext(*store_, "Patient", "p3", 1, mixed));
  auto contains = [&](const std::string& p) {
    return Answer(*store_, Q("Patient").Where(SearchKind::kString, "name",
                                              {Text(p, StringMatch::kContains)}));
  };
  EXPECT_EQ(contains("%_"), "p1 total 1");
  EXPECT_EQ(contains("_"), "p1,p2 total 2");
  EXPECT_EQ(contains("%"), "p1 total 1");
  EXPECT_EQ(contains("血"), "p2 total 1");
  EXPECT_EQ(contains("ll"), "p3 total 1");
  EXPECT_EQ(contains("x"), " total 0");
  auto exact = [&](const std::string& norm, const std::string& as_written) {
    return Answer(*store_, Q("Patient").Where(SearchKind::kString, "name",
                                              {Text(norm, StringMatch::kExact, as_written)}));
  };
  EXPECT_EQ(exact("muller", "Müller"), "p3 total 1");
  EXPECT_EQ(exact("muller", "müller"), " total 0");
}

// Tokens: code and system compare bytewise, any byte included; system "" is "no system", a
// missing system any; :in is any of a set of codes; :not and :missing.
TEST_P(StoreSearchConformance, TokensMissingAndNot) {
  IndexRows a;
  a.tokens = {{"code", "urn:s", std::string("x\0y", 3)}, {"code", "", "plain"}};
  ASSERT_OK(WriteNext(*store_, "Observation", "o1", 1, a));
  IndexRows b;
  b.tokens = {{"code", "urn:t", "plain"}};
  ASSERT_OK(WriteNext(*store_, "Observation", "o2", 1, b));
  ASSERT_OK(WriteNext(*store_, "Observation", "o3", 1));
  auto token = [&](std::optional<std::string> system, std::string code) {
    return Answer(*store_, Q().Where(SearchKind::kToken, "code", {Token(system, code)}));
  };
  EXPECT_EQ(token(std::nullopt, std::string("x\0y", 3)), "o1 total 1");
  EXPECT_EQ(token(std::nullopt, "x"), " total 0");
  EXPECT_EQ(token(std::nullopt, "plain"), "o1,o2 total 2");
  EXPECT_EQ(token("", "plain"), "o1 total 1");
  EXPECT_EQ(token("urn:t", "plain"), "o2 total 1");
  EXPECT_EQ(token("urn:t", ""), "o2 total 1");  // system|
  SearchValue in;
  in.codes = {"plain", "other"};
  EXPECT_EQ(Answer(*store_, Q().Where(SearchKind::kToken, "code", {in})), "o1,o2 total 2");
  SearchClause not_clause;
  not_clause.kind = SearchKind::kToken;
  not_clause.param = "code";
  not_clause.negate = true;
  not_clause.any_of = {Token("urn:t", "plain")};
  EXPECT_EQ(Answer(*store_, Q().Clause(not_clause)), "o1,o3 total 2");
  SearchClause missing;
  missing.kind = SearchKind::kToken;
  missing.param = "code";
  missing.missing = true;
  EXPECT_EQ(Answer(*store_, Q().Clause(missing)), "o3 total 1");
  missing.missing = false;
  EXPECT_EQ(Answer(*store_, Q().Clause(missing)), "o1,o2 total 2");
}

// Numbers: eq/ne use the precision range, every other prefix the value itself (R4: "ge100:
// greater or equal to exactly 100"); quantities the same, on canonical values when the search
// has a canonical unit and otherwise with the unit's code and system.
TEST_P(StoreSearchConformance, NumbersAndQuantities) {
  for (const auto& [id, value] : std::vector<std::pair<std::string, double>>{
           {"n1", 99.7}, {"n2", 100}, {"n3", 100.4}, {"n4", 101}, {"n5", -2.5}}) {
    IndexRows rows;
    rows.numbers = {{"probability", value}};
    rows.quantities = {
        {"value-quantity", value, "http://unitsofmeasure.org", "kg", value * 1000, "g"}};
    ASSERT_OK(WriteNext(*store_, "Observation", id, 1, rows));
  }
  IndexRows other_unit;
  other_unit.quantities = {{"value-quantity", 100, "urn:units", "box", 0, ""}};
  ASSERT_OK(WriteNext(*store_, "Observation", "q1", 1, other_unit));
  auto number = [&](SearchPrefix p, double x, double h) {
    return Answer(*store_, Q().Where(SearchKind::kNumber, "probability", {Number(p, x, h)}));
  };
  using P = SearchPrefix;
  EXPECT_EQ(number(P::kEq, 100, 0.5), "n1,n2,n3 total 3");
  EXPECT_EQ(number(P::kNe, 100, 0.5), "n4,n5 total 2");
  EXPECT_EQ(number(P::kGe, 100, 0.5), "n2,n3,n4 total 3");
  EXPECT_EQ(number(P::kLe, 100, 0.5), "n1,n2,n5 total 3");
  EXPECT_EQ(number(P::kGt, 100, 0.5), "n3,n4 total 2");
  EXPECT_EQ(number(P::kLt, 100, 0.5), "n1,n5 total 2");
  EXPECT_EQ(number(P::kSa, 100, 0.5), "n3,n4 total 2");
  EXPECT_EQ(number(P::kEb, 100, 0.5), "n1,n5 total 2");
  EXPECT_EQ(number(P::kAp, 100, 0.5), "n1,n2,n3,n4 total 4");  // within 10%
  EXPECT_EQ(number(P::kAp, -2.5, 0.05), "n5 total 1");         // negative: [-2.75, -2.25]

  SearchValue canonical = Number(P::kGe, 100000, 500);  // ge100 kg, in g
  canonical.canonical_code = "g";
  EXPECT_EQ(Answer(*store_, Q().Where(SearchKind::kQuantity, "value-quantity", {canonical})),
            "n2,n3,n4 total 3");
  SearchValue coded = Number(P::kLe, 100, 0.5);
  coded.system = "urn:units";
  coded.code = "box";
  EXPECT_EQ(Answer(*store_, Q().Where(SearchKind::kQuantity, "value-quantity", {coded})),
            "q1 total 1");
  SearchValue any_unit = Number(P::kEq, 100, 0.5);
  EXPECT_EQ(Answer(*store_, Q().Where(SearchKind::kQuantity, "value-quantity", {any_unit})),
            "n1,n2,n3,q1 total 4");
}

// Dates: the R4 range semantics of a stored [s, e) against a search [lo, hi), and
// _lastUpdated against the version's instant.
TEST_P(StoreSearchConformance, DatesAndLastUpdated) {
  const std::vector<std::tuple<std::string, int64_t, int64_t>> stored = {
      {"d1", 0, 100}, {"d2", 100, 200}, {"d3", 50, 150}, {"d4", 250, 300}};
  int64_t updated = 1000;
  for (const auto& [id, s, e] : stored) {
    IndexRows rows;
    rows.dates = {{"date", s, e}};
    ASSERT_OK(WriteNext(*store_, "Observation", id, updated, rows));
    updated += 1000;
  }
  auto date = [&](SearchPrefix p) {
    return Answer(*store_, Q().Where(SearchKind::kDate, "date", {Dates(p, 100, 200)}));
  };
  using P = SearchPrefix;
  EXPECT_EQ(date(P::kEq), "d2 total 1");
  EXPECT_EQ(date(P::kNe), "d1,d3,d4 total 3");
  EXPECT_EQ(date(P::kGt), "d4 total 1");
  EXPECT_EQ(date(P::kLt), "d1,d3 total 2");
  EXPECT_EQ(date(P::kGe), "d2,d4 total 2");
  EXPECT_EQ(date(P::kLe), "d1,d2,d3 total 3");
  EXPECT_EQ(date(P::kSa), "d4 total 1");
  EXPECT_EQ(date(P::kEb), "d1 total 1");
  EXPECT_EQ(date(P::kAp), "d2,d3 total 2");
  EXPECT_EQ(Answer(*store_, Q().Where(SearchKind::kLastUpdated, "_lastUpdated",
                                      {Dates(P::kGe, 2000, 2001)})),
            "d2,d3,d4 total 3");
  EXPECT_EQ(Answer(*store_, Q().Where(SearchKind::kLastUpdated, "_lastUpdated",
                                      {Dates(P::kLt, 2000, 2001), Dates(P::kEq, 4000, 4001)})),
            "d1,d4 total 2");
  EXPECT_EQ(Answer(*store_, Q().AtOrBefore(2000)), "d1,d2 total 2");
}

// References by type and id or by URL; URIs equal, below (a prefix of the stored one) and above
// (the stored one a prefix of the searched one).
TEST_P(StoreSearchConformance, ReferencesAndUris) {
  IndexRows a;
  a.references = {{"subject", "Patient", "p1", ""}};
  a.uris = {{"url", "http://example.org/fhir/ValueSet/a"}};
  ASSERT_OK(WriteNext(*store_, "Observation", "o1", 1, a));
  IndexRows b;
  b.references = {{"subject", "Group", "p1", ""}};
  b.uris = {{"url", "http://example.org/fhir/ValueSet/a/b"}};
  ASSERT_OK(WriteNext(*store_, "Observation", "o2", 1, b));
  IndexRows c;
  c.references = {{"subject", "", "", "http://other.org/fhir/Patient/9"}};
  c.uris = {{"url", "urn:oid:1.2.3"}};
  ASSERT_OK(WriteNext(*store_, "Observation", "o3", 1, c));
  SearchValue typed;
  typed.type = "Patient";
  typed.code = "p1";
  SearchValue untyped;
  untyped.code = "p1";
  SearchValue url;
  url.url = "http://other.org/fhir/Patient/9";
  EXPECT_EQ(Answer(*store_, Q().Where(SearchKind::kReference, "subject", {typed})), "o1 total 1");
  EXPECT_EQ(Answer(*store_, Q().Where(SearchKind::kReference, "subject", {untyped})),
            "o1,o2 total 2");
  EXPECT_EQ(Answer(*store_, Q().Where(SearchKind::kReference, "subject", {url})), "o3 total 1");
  auto uri = [&](const std::string& text, UriMatch m) {
    return Answer(*store_, Q().Where(SearchKind::kUri, "url", {Uri(text, m)}));
  };
  EXPECT_EQ(uri("http://example.org/fhir/ValueSet/a", UriMatch::kEquals), "o1 total 1");
  EXPECT_EQ(uri("http://example.org/fhir", UriMatch::kBelow), "o1,o2 total 2");
  EXPECT_EQ(uri("http://example.org/fhir/ValueSet/a/b/c", UriMatch::kAbove), "o1,o2 total 2");
  EXPECT_EQ(uri("urn:oid:1.2.3.4", UriMatch::kAbove), "o3 total 1");
  EXPECT_EQ(uri("urn:oid:1.2", UriMatch::kAbove), " total 0");
}

// Sorting: the lowest value ascending and the highest descending (dates: start ascending, end
// descending), resources without a value last both ways, then by id; strings and ids bytewise.
TEST_P(StoreSearchConformance, SortByEveryKindWithMissingLastAndIdTiebreak) {
  struct Row {
    std::string id;
    std::vector<std::string> names;
    std::optional<std::pair<int64_t, int64_t>> date;
    std::optional<double> number;
  };
  const std::vector<Row> rows = {{"r1", {"b", "y"}, std::pair<int64_t, int64_t>{10, 500}, 3},
                                 {"r2", {"c"}, std::pair<int64_t, int64_t>{20, 30}, -1},
                                 {"r3", {"王"}, std::pair<int64_t, int64_t>{5, 40}, 3},
                                 {"r4", {}, std::nullopt, std::nullopt},
                                 {"r0", {"z", "a"}, std::pair<int64_t, int64_t>{20, 30}, 10}};
  for (const Row& r : rows) {
    IndexRows idx = Names(r.names);
    if (r.date) idx.dates = {{"date", r.date->first, r.date->second}};
    if (r.number) idx.numbers = {{"probability", *r.number}};
    idx.tokens = {{"code", "urn:s", r.names.empty() ? std::string() : r.names.front()}};
    if (r.names.empty()) idx.tokens.clear();
    ASSERT_OK(WriteNext(*store_, "Observation", r.id, 1, idx));
  }
  auto sorted = [&](SearchKind kind, const std::string& param, bool descending) {
    return Answer(*store_, Q().Sort(kind, param, descending));
  };
  EXPECT_EQ(sorted(SearchKind::kString, "name", false), "r0,r1,r2,r3,r4 total 5");
  EXPECT_EQ(sorted(SearchKind::kString, "name", true), "r3,r0,r1,r2,r4 total 5");
  EXPECT_EQ(sorted(SearchKind::kDate, "date", false), "r3,r1,r0,r2,r4 total 5");
  EXPECT_EQ(sorted(SearchKind::kDate, "date", true), "r1,r3,r0,r2,r4 total 5");
  EXPECT_EQ(sorted(SearchKind::kNumber, "probability", false), "r2,r1,r3,r0,r4 total 5");
  EXPECT_EQ(sorted(SearchKind::kNumber, "probability", true), "r0,r1,r3,r2,r4 total 5");
  EXPECT_EQ(sorted(SearchKind::kToken, "code", false), "r1,r2,r0,r3,r4 total 5");
  EXPECT_EQ(sorted(SearchKind::kId, "_id", true), "r4,r3,r2,r1,r0 total 5");
  // Several keys: number descending, ties by date ascending.
  EXPECT_EQ(
      Answer(*store_,
             Q().Sort(SearchKind::kNumber, "probability", true).Sort(SearchKind::kDate, "date")),
      "r0,r3,r1,r2,r4 total 5");
  // Pages of the sorted list; past the end nothing; count 0 only the total; no total.
  EXPECT_EQ(Answer(*store_, Q().Sort(SearchKind::kString, "name").Page(1, 2)), "r1,r2 total 5");
  EXPECT_EQ(Answer(*store_, Q().Sort(SearchKind::kString, "name").Page(4, 2)), "r4 total 5");
  EXPECT_EQ(Answer(*store_, Q().Page(9, 2)), " total 5");
  EXPECT_EQ(Answer(*store_, Q().Page(0, 0)), " total 5");
  EXPECT_EQ(Answer(*store_, Q().Page(3, 10).NoTotal()), "r3,r4 no total");
  // A total counted up to a limit: known when the matches are within it, unknown past it
  // (whether or not the page is full), and proven by a page that ends the matches.
  EXPECT_EQ(Answer(*store_, Q().Page(0, 2).TotalLimit(5)), "r0,r1 total 5");
  EXPECT_EQ(Answer(*store_, Q().Page(0, 2).TotalLimit(4)), "r0,r1 no total");
  EXPECT_EQ(Answer(*store_, Q().Page(0, 0).TotalLimit(4)), " no total");
  EXPECT_EQ(Answer(*store_, Q().Page(4, 2).TotalLimit(1)), "r4 total 5");
}

// A page sorted by one date over many resources (SQLite walks the date index in sort order,
// skipping a resource's further values, then lists the resources without a date): the same
// order and pages as sorting every match, across the end of the dated ones.
TEST_P(StoreSearchConformance, SortByOneDateOverManyResourcesPagesAcrossMissingValues) {
  // d00…d39: date [i, i+1) and, for even i, a second value [100 - i, 101 - i); code "even" or
  // "odd". n0…n4: no date.
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    IndexRows idx;
    idx.dates = {{"date", i, i + 1}};
    if (i % 2 == 0) idx.dates.push_back({"date", 100 - i, 101 - i});
    idx.tokens = {{"code", "urn:s", i % 2 == 0 ? "even" : "odd"}};
    ASSERT_OK(WriteNext(*store_, "Observation", fmt::format("d{:02}", i), 1, idx));
  }
  for (int i = 0; i < 5; ++i) {
    IndexRows idx;
    idx.tokens = {{"code", "urn:s", i % 2 == 0 ? "even" : "odd"}};
    ASSERT_OK(WriteNext(*store_, "Observation", fmt::format("n{}", i), 1, idx));
  }
  // Descending: by the highest end, 101 - i for even i (101 … 63), i + 1 for odd i (40 … 2): the
  // evens first (d00, d02, …, d38), then the odds (d39, d37, …, d01), then the undated.
  std::vector<std::string> desc, asc;
  for (int i = 0; i < 40; i += 2) desc.push_back(fmt::format("d{:02}", i));
  for (int i = 39; i > 0; i -= 2) desc.push_back(fmt::format("d{:02}", i));
  for (int i = 0; i < 5; ++i) desc.push_back(fmt::format("n{}", i));
  // Ascending: by the lowest start: d00 … d39, then the undated.
  for (int i = 0; i < 40; ++i) asc.push_back(fmt::format("d{:02}", i));
  for (int i = 0; i < 5; ++i) asc.push_back(fmt::format("n{}", i));
  auto page = [&](const std::vector<std::string>& all, size_t offset, size_t count) {
    std::string out;
    for (size_t i = offset; i < all.size() && i < offset + count; ++i)
      out += (out.empty() ? "" : ",") + all[i];
    return out + " total " + std::to_string(all.size());
  };
  for (const auto& [offset, count] : std::vector<std::pair<int, int>>{
           {0, 3}, {18, 4}, {38, 4}, {40, 3}, {41, 10}, {44, 5}, {45, 5}}) {
    EXPECT_EQ(Answer(*store_, Q().Sort(SearchKind::kDate, "date", true).Page(offset, count)),
              offset >= 45 ? " total 45" : page(desc, offset, count))
        << offset;
    EXPECT_EQ(Answer(*store_, Q().Sort(SearchKind::kDate, "date").Page(offset, count)),
              offset >= 45 ? " total 45" : page(asc, offset, count))
        << offset;
  }
  // With a clause: the odd ones only, descending, the undated odd ones (n1, n3) last.
  EXPECT_EQ(Answer(*store_, Q().Where(SearchKind::kToken, "code", {Token("urn:s", "odd")})
                                .Sort(SearchKind::kDate, "date", true)
                                .Page(18, 5)),
            "d03,d01,n1,n3 total 22");
}

// A page sorted by a date with a clause on that date (the latest since a day, the earliest up to
// one, those within a range) walks the date index only as far as the clause's bound (sql
// BoundOfWalk): the same pages as sorting every match, the last ones included. 1,500
// Observations, o<i>'s date [i, i + 1) s in µs, all but every fifth (i % 5 == 1) with code x;
// besides, b0 with the code and a short date inside the bound's day (a bound one day off would
// leave it out), m0 with the code and two dates (its sort value the later, or the earlier
// ascending), and n0…n2 with the code and no date.
TEST_P(StoreSearchConformance, ADateWalkBoundedByItsOwnClauseServesEveryPage) {
  struct Item {
    std::string id;
    std::vector<std::pair<int64_t, int64_t>> dates;
  };
  std::vector<Item> items;
  for (int i = 0; i < 1500; ++i) {
    IndexRows idx;
    idx.dates = {{"date", int64_t{i} * 1000, int64_t{i} * 1000 + 1000}};
    if (i % 5 != 1) idx.tokens = {{"code", "urn:s", "x"}};
    const std::string id = fmt::format("o{:04}", i);
    ASSERT_OK(WriteNext(*store_, "Observation", id, 1, idx));
    if (i % 5 != 1) items.push_back({id, {{int64_t{i} * 1000, int64_t{i} * 1000 + 1000}}});
  }
  const std::vector<Item> extra = {{"b0", {{200'100, 200'200}}},
                                   {"m0", {{100'000, 101'000}, {1'600'000, 1'601'000}}},
                                   {"n0", {}},
                                   {"n1", {}},
                                   {"n2", {}}};
  for (const Item& item : extra) {
    IndexRows idx;
    for (const auto& [start, end] : item.dates) idx.dates.push_back({"date", start, end});
    idx.tokens = {{"code", "urn:s", "x"}};
    ASSERT_OK(WriteNext(*store_, "Observation", item.id, 1, idx));
    items.push_back(item);
  }
  // The matches of a date clause among items (DateCond's semantics: a stored [s, e) against the
  // search's [lo, hi)), in the walk's order: by the highest end descending or the lowest start
  // ascending, then id.
  auto expected = [&](SearchPrefix prefix, int64_t lo, int64_t hi, bool descending) {
    auto holds = [&](int64_t s, int64_t e) {
      switch (prefix) {
        case SearchPrefix::kGe:
          return e >= lo && (e > hi || (s >= lo && e <= hi));
        case SearchPrefix::kLe:
          return s <= hi && (s < lo || (s >= lo && e <= hi));
        case SearchPrefix::kEq:
          return s >= lo && e <= hi;
        case SearchPrefix::kGt:
          return e > hi;
        case SearchPrefix::kLt:
          return s < lo;
        default:
          return false;
      }
    };
    std::vector<std::pair<int64_t, std::string>> keyed;
    for (const Item& item : items) {
      bool match = false;
      int64_t key = descending ? INT64_MIN : INT64_MAX;
      for (const auto& [s, e] : item.dates) {
        match = match || holds(s, e);
        key = descending ? std::max(key, e) : std::min(key, s);
      }
      if (match) keyed.emplace_back(descending ? -key : key, item.id);
    }
    std::sort(keyed.begin(), keyed.end());
    std::vector<std::string> ids;
    for (auto& [key, id] : keyed) ids.push_back(std::move(id));
    return ids;
  };
  auto ids = [](const std::string& answer) { return answer.substr(0, answer.find(' ')); };
  auto page = [](const std::vector<std::string>& all, size_t offset, size_t count) {
    std::string out;
    for (size_t i = offset; i < all.size() && i < offset + count; ++i)
      out += (out.empty() ? "" : ",") + all[i];
    return out;
  };
  struct Case {
    SearchPrefix prefix;
    int64_t lo, hi;
    bool descending;
  };
  for (const Case& c : std::vector<Case>{{SearchPrefix::kGe, 200'000, 200'500, true},
                                         {SearchPrefix::kGt, 199'000, 200'000, true},
                                         {SearchPrefix::kLe, 1'299'000, 1'300'000, false},
                                         {SearchPrefix::kLt, 1'300'000, 1'301'000, false},
                                         {SearchPrefix::kEq, 200'000, 1'400'000, true},
                                         {SearchPrefix::kEq, 200'000, 1'400'000, false}}) {
    const std::vector<std::string> all = expected(c.prefix, c.lo, c.hi, c.descending);
    // Over 1,000 rows in each clause (kTinyEstimate): walked, not collected.
    ASSERT_GT(all.size(), 900u);
    for (const size_t offset : {size_t{0}, size_t{500}, all.size() - 8, all.size() - 3}) {
      EXPECT_EQ(
          ids(Answer(*store_, Q().Where(SearchKind::kDate, "date", {Dates(c.prefix, c.lo, c.hi)})
                                  .Where(SearchKind::kToken, "code", {Token("urn:s", "x")})
                                  .Sort(SearchKind::kDate, "date", c.descending)
                                  .Page(static_cast<int>(offset), 5))),
          page(all, offset, 5))
          << static_cast<int>(c.prefix) << " " << c.descending << " at " << offset;
    }
  }
}

// Keyset paging (SearchQuery::after): following each full page's `last` visits every match once,
// in the order of one whole search, in every kind of order (a walk of a date index included), with
// and without a clause; each page still reports the total of every match.
TEST_P(StoreSearchConformance, PagesAfterTheLastEntryVisitEveryMatchOnceInOrder) {
  // k00…k44: a date (a second one for every third; none for every tenth), a string (none for
  // every sixth; five distinct values), a number (none for every fourth; four distinct values),
  // even/odd code: many ties, so the id tiebreak and the missing values are crossed by pages.
  for (int i = 0; i < 45; ++i) {
    IndexRows idx;
    if (i % 10 != 9) idx.dates = {{"date", (i * 7) % 11 * 10, (i * 7) % 11 * 10 + 5}};
    if (i % 3 == 0) idx.dates.push_back({"date", 200 - i, 201 - i});
    if (i % 6 != 5) idx.strings = {{"name", "s" + std::to_string(i % 5), "S"}};
    if (i % 4 != 3) idx.numbers = {{"value", (i % 4) * 1.5 - 1}};
    idx.tokens = {{"code", "urn:s", i % 2 == 0 ? "even" : "odd"}};
    ASSERT_OK(WriteNext(*store_, "Observation", fmt::format("k{:02}", i), 1000 + i % 7, idx));
  }
  auto ids = [](const SearchPage& page) {
    std::vector<std::string> out;
    for (const ResourceVersion& v : page.entries) out.push_back(v.id);
    return out;
  };
  using Keys = std::vector<SortKey>;
  const std::vector<Keys> orders = {
      {},
      {{"date", SearchKind::kDate, false}},
      {{"date", SearchKind::kDate, true}},
      {{"name", SearchKind::kString, false}},
      {{"name", SearchKind::kString, true}, {"value", SearchKind::kNumber, false}},
      {{"value", SearchKind::kNumber, true}, {"date", SearchKind::kDate, false}},
      {{"_lastUpdated", SearchKind::kLastUpdated, true}, {"code", SearchKind::kToken, false}},
      {{"_id", SearchKind::kId, true}},
  };
  for (const bool with_clause : {false, true}) {
    for (const Keys& keys : orders) {
      SearchQuery whole =
          (with_clause ? Q().Where(SearchKind::kToken, "code", {Token("urn:s", "odd")}) : Q())
              .query();
      whole.sort = keys;
      whole.count = 1000;
      auto txn = store_->BeginRead();
      ASSERT_OK(txn);
      auto all = (*txn)->Search(whole);
      ASSERT_OK(all);
      ASSERT_EQ(all->entries.size(), with_clause ? 22u : 45u);
      for (const int64_t count : {1, 4, 7}) {
        SearchQuery q = whole;
        q.count = count;
        q.want_last = true;
        std::vector<std::string> paged;
        for (int pages = 0; pages < 100; ++pages) {
          auto page = (*txn)->Search(q);
          ASSERT_OK(page);
          EXPECT_EQ(page->total, all->total) << pages;
          for (std::string& id : ids(*page)) paged.push_back(std::move(id));
          if (!page->last) break;
          EXPECT_EQ(page->last->id, paged.back());
          EXPECT_EQ(page->last->values.size(), keys.size());
          q.after = page->last;
        }
        EXPECT_EQ(paged, ids(*all))
            << "sort keys " << keys.size() << (with_clause ? ", odd" : "") << ", first key "
            << (keys.empty() ? "-" : keys[0].param)
            << (keys.empty() || !keys[0].descending ? "" : " desc") << ", pages of " << count;
      }
      // Backward (SearchQuery::backward) from the last match, each page before the previous
      // one's first entry: every match but the last once, the pages in order, the last short.
      // From the end (SearchAfter::end, a last page): every match.
      SearchQuery everything = whole;
      everything.count = static_cast<int64_t>(all->entries.size());
      everything.want_last = true;
      auto whole_page = (*txn)->Search(everything);
      ASSERT_OK(whole_page);
      ASSERT_TRUE(whole_page->last);
      SearchAfter end;
      end.end = true;
      end.values.resize(keys.size());
      for (const auto& [from_end, count] : std::vector<std::pair<bool, int64_t>>{
               {false, 1}, {false, 4}, {false, 7}, {true, 1}, {true, 4}, {true, 7}}) {
        SearchQuery q = whole;
        q.count = count;
        q.want_last = true;
        q.backward = true;
        q.after = from_end ? end : *whole_page->last;
        std::vector<std::string> paged;
        for (int pages = 0; pages < 100; ++pages) {
          auto page = (*txn)->Search(q);
          ASSERT_OK(page);
          EXPECT_EQ(page->total, all->total) << pages;
          std::vector<std::string> got = ids(*page);
          paged.insert(paged.begin(), got.begin(), got.end());
          if (got.empty()) break;
          ASSERT_TRUE(page->first);
          EXPECT_EQ(page->first->id, got.front());
          EXPECT_EQ(page->last.has_value(), static_cast<int64_t>(got.size()) == count);
          if (static_cast<int64_t>(got.size()) < count) break;
          q.after = page->first;
        }
        std::vector<std::string> expected = ids(*all);
        if (!from_end) expected.pop_back();
        EXPECT_EQ(paged, expected)
            << "backward" << (from_end ? " from the end" : "") << ": sort keys " << keys.size()
            << (with_clause ? ", odd" : "") << ", first key "
            << (keys.empty() ? "-" : keys[0].param)
            << (keys.empty() || !keys[0].descending ? "" : " desc") << ", pages of " << count;
      }
    }
  }
}

// A match on an earlier page that changes or is deleted shifts the later pages of a snapshot
// when they are found by offset, and not when they start after the previous page's last entry.
TEST_P(StoreSearchConformance, PagesAfterTheLastEntryDoNotShiftWhenEarlierMatchesChange) {
  for (int i = 0; i < 12; ++i) {
    ASSERT_OK(WriteNext(*store_, "Observation", fmt::format("m{:02}", i), 1000,
                        Tokens({{"code", "urn:s", "x"}})));
  }
  SearchQuery q =
      Q().Where(SearchKind::kToken, "code", {Token("urn:s", "x")}).AtOrBefore(5000).query();
  q.count = 4;
  q.want_last = true;
  auto first = [&] {
    auto txn = store_->BeginRead();
    EXPECT_TRUE(txn.ok());
    return (*txn)->Search(q);
  }();
  ASSERT_OK(first);
  ASSERT_TRUE(first->last);
  EXPECT_EQ(first->last->id, "m03");
  // m01 is updated (it leaves the snapshot) and m02 deleted, after the first page.
  ASSERT_OK(WriteNext(*store_, "Observation", "m01", 6000, Tokens({{"code", "urn:s", "x"}})));
  ASSERT_OK(WriteNext(*store_, "Observation", "m02", 6000, {}, true));
  SearchQuery by_offset = q;
  by_offset.offset = 4;
  EXPECT_EQ(Answer(*store_, Q(by_offset)), "m06,m07,m08,m09 total 10");  // m04 and m05 skipped
  SearchQuery after = q;
  after.after = first->last;
  EXPECT_EQ(Answer(*store_, Q(after)), "m04,m05,m06,m07 total 10");
}

// _text (the narrative) and _content (narrative and content): every word of a value, each the
// start of a word, a word of several tokens a phrase in order; values are alternatives. Text
// that another tokenizer would keep whole (e-mail addresses, hyphens, dates, decimals) is found
// by its words.
TEST_P(StoreSearchConformance, FullTextWordsPrefixesAndPhrases) {
  auto text = [&](const std::string& id, const std::string& narrative, const std::string& content) {
    IndexRows rows;
    rows.full_text = {{narrative, content}};
    return WriteNext(*store_, "Patient", id, 1, rows);
  };
  ASSERT_OK(text("p1", "患 者 有 高 血 压 病 史 hypertension since 2010",
                 "王 小 明 zhang.li@jiashan.example anna-lena 2024-03-05 36.5"));
  ASSERT_OK(text("p2", "diabetes", "高 血 压 o'neil"));
  ASSERT_OK(WriteNext(*store_, "Patient", "p3", 1));
  auto search = [&](const std::string& param, std::vector<SearchValue> values) {
    return Answer(*store_, Q("Patient").Where(SearchKind::kText, param, std::move(values)));
  };
  EXPECT_EQ(search("_text", {Words({"高 血 压"})}), "p1 total 1");
  EXPECT_EQ(search("_content", {Words({"高 血 压"})}), "p1,p2 total 2");
  EXPECT_EQ(search("_text", {Words({"血 压"})}), "p1 total 1");
  EXPECT_EQ(search("_text", {Words({"压 血"})}), " total 0");        // in order
  EXPECT_EQ(search("_text", {Words({"hyperten"})}), "p1 total 1");   // a prefix
  EXPECT_EQ(search("_text", {Words({"ypertension"})}), " total 0");  // of a word
  EXPECT_EQ(search("_text", {Words({"高 血 压", "2010"})}), "p1 total 1");
  EXPECT_EQ(search("_text", {Words({"高 血 压", "1999"})}), " total 0");
  EXPECT_EQ(search("_text", {Words({"nothing"}), Words({"diabetes"})}), "p2 total 1");
  EXPECT_EQ(search("_text", {Words({"王"})}), " total 0");
  // _content: one word in the narrative and the next in the content.
  EXPECT_EQ(search("_content", {Words({"hypertension", "小 明"})}), "p1 total 1");
  for (const char* word : {"jiashan", "zhang", "example", "lena", "anna lena", "03", "05", "5",
                           "36.5", "2024-03", "o'neil", "neil"}) {
    EXPECT_EQ(
        search("_content", {Words({word})}),
        word == std::string("o'neil") || word == std::string("neil") ? "p2 total 1" : "p1 total 1")
        << word;
  }
  EXPECT_EQ(search("_content", {Words({"lena anna"})}), " total 0");
  EXPECT_EQ(search("_content", {Words({"\"quoted\""})}), " total 0");
}

// Composites match both components within one row; the second component is of any kind. A code
// with a value without a unit matches under every system of the code and every unit (SQLite lists
// those keys first: Dialect::LooseScansCompositeKeys).
TEST_P(StoreSearchConformance, CompositesMatchWithinOneRow) {
  auto row = [](std::string code1, std::string code2, std::string system2, double number,
                std::string system1 = "http://loinc.org") {
    CompositeIndexRow r;
    r.param = "combo";
    r.system1 = std::move(system1);
    r.code1 = std::move(code1);
    r.code2 = std::move(code2);
    r.system2 = std::move(system2);
    r.number2 = number;
    return r;
  };
  IndexRows a;
  a.composites = {row("8480-6", "mm[Hg]", "http://unitsofmeasure.org", 150),
                  row("8462-4", "mm[Hg]", "http://unitsofmeasure.org", 70)};
  ASSERT_OK(WriteNext(*store_, "Observation", "o1", 1, a));
  IndexRows b;
  b.composites = {row("note", "hypertension stage 2", "Hypertension stage 2", 0)};
  ASSERT_OK(WriteNext(*store_, "Observation", "o2", 1, b));
  auto composite = [&](SearchKind second, SearchValue first, SearchValue value) {
    SearchClause c;
    c.kind = SearchKind::kComposite;
    c.param = "combo";
    c.components = {SearchKind::kToken, second};
    SearchValue v;
    v.components = {std::move(first), std::move(value)};
    c.any_of = {std::move(v)};
    return Answer(*store_, Q().Clause(std::move(c)));
  };
  SearchValue high = Number(SearchPrefix::kGt, 140, 0.5);
  EXPECT_EQ(composite(SearchKind::kQuantity, Token(std::nullopt, "8480-6"), high), "o1 total 1");
  EXPECT_EQ(composite(SearchKind::kQuantity, Token(std::nullopt, "8462-4"), high), " total 0");
  EXPECT_EQ(composite(SearchKind::kString, Token(std::nullopt, "note"), Text("hyper")),
            "o2 total 1");
  EXPECT_EQ(composite(SearchKind::kString, Token(std::nullopt, "note"), Text("stage")), " total 0");
  EXPECT_EQ(composite(SearchKind::kString, Token(std::nullopt, "note"),
                      Text("stage", StringMatch::kContains)),
            "o2 total 1");
  // The same code under other units and another system, and a value below the bound.
  IndexRows c;
  c.composites = {row("8480-6", "kPa", "http://unitsofmeasure.org", 160)};
  ASSERT_OK(WriteNext(*store_, "Observation", "o3", 1, c));
  IndexRows d;
  d.composites = {row("8480-6", "mm[Hg]", "http://unitsofmeasure.org", 200, "urn:other")};
  ASSERT_OK(WriteNext(*store_, "Observation", "o4", 1, d));
  IndexRows e;
  e.composites = {row("8480-6", "mm[Hg]", "", 120), row("8480-6", "", "", 145, "")};
  ASSERT_OK(WriteNext(*store_, "Observation", "o5", 1, e));
  EXPECT_EQ(composite(SearchKind::kQuantity, Token(std::nullopt, "8480-6"), high),
            "o1,o3,o4,o5 total 4");
  EXPECT_EQ(composite(SearchKind::kQuantity, Token("http://loinc.org", "8480-6"), high),
            "o1,o3 total 2");
  EXPECT_EQ(composite(SearchKind::kQuantity, Token("", "8480-6"), high), "o5 total 1");
  EXPECT_EQ(composite(SearchKind::kQuantity, Token("urn:none", "8480-6"), high), " total 0");
  EXPECT_EQ(composite(SearchKind::kNumber, Token(std::nullopt, "8480-6"),
                      Number(SearchPrefix::kGt, 190, 0.5)),
            "o4 total 1");
}

// Chains follow references to current resources of the link's type that match; _has goes the
// other way.
TEST_P(StoreSearchConformance, ChainsAndReverseChains) {
  ASSERT_OK(WriteNext(*store_, "Patient", "pa", 1, Names({"wang"})));
  ASSERT_OK(WriteNext(*store_, "Patient", "pb", 1, Names({"li"})));
  ASSERT_OK(WriteNext(*store_, "Group", "pa", 1, Names({"wang"})));
  auto obs = [&](const std::string& id, const std::string& type, const std::string& target,
                 const std::string& code) {
    IndexRows rows;
    rows.references = {{"subject", type, target, ""}};
    rows.tokens = {{"code", "urn:s", code}};
    return WriteNext(*store_, "Observation", id, 1, rows);
  };
  ASSERT_OK(obs("o1", "Patient", "pa", "bp"));
  ASSERT_OK(obs("o2", "Patient", "pb", "bp"));
  ASSERT_OK(obs("o3", "Group", "pa", "weight"));
  auto link = [](const std::string& type, SearchClause inner) {
    return SearchLink{type, {std::move(inner)}};
  };
  SearchClause name;
  name.kind = SearchKind::kString;
  name.param = "name";
  name.any_of = {Text("wang")};
  SearchClause chain;
  chain.kind = SearchKind::kChain;
  chain.param = "subject";
  chain.links = {link("Patient", name)};
  EXPECT_EQ(Answer(*store_, Q().Clause(chain)), "o1 total 1");
  chain.links.push_back(link("Group", name));
  EXPECT_EQ(Answer(*store_, Q().Clause(chain)), "o1,o3 total 2");
  SearchClause code;
  code.kind = SearchKind::kToken;
  code.param = "code";
  code.any_of = {Token(std::nullopt, "bp")};
  SearchClause has;
  has.kind = SearchKind::kReverseChain;
  has.param = "subject";
  has.links = {link("Observation", code)};
  EXPECT_EQ(Answer(*store_, Q("Patient").Clause(has)), "pa,pb total 2");
  EXPECT_EQ(Answer(*store_, Q("Group").Clause(has)), " total 0");
  // A deleted target is no longer followed.
  ASSERT_OK(WriteNext(*store_, "Patient", "pa", 2, {}, /*deleted=*/true));
  chain.links.pop_back();
  EXPECT_EQ(Answer(*store_, Q().Clause(chain)), " total 0");
  SearchValue id;
  id.code = "pb";
  EXPECT_EQ(Answer(*store_, Q("Patient").Where(SearchKind::kId, "_id", {id})), "pb total 1");
}

}  // namespace
}  // namespace jiceng::store::testing
