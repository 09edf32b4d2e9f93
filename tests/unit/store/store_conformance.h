// The storage port's conformance suite: every IStore backend (sqlite, postgres) runs the same
// TEST_Ps (store_conformance_test.cpp) by instantiating StoreConformance with its StoreBackend:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance, testing::Values(SqliteBackend()),
//                            BackendName);
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "store/store.h"

namespace jiceng::store::testing {

// One empty database for one test.
struct TestDatabase {
  // Opens the test's database; called again after Close() it reopens the same data.
  std::function<std::unique_ptr<IStore>()> open;
  // Removes the database after the test.
  std::function<void()> drop;
};

struct StoreBackend {
  std::string name;
  std::function<TestDatabase()> create;
};

inline std::string BackendName(const ::testing::TestParamInfo<StoreBackend>& info) {
  return info.param.name;
}

// Test names and failure messages show the backend's name, not the struct's bytes.
inline void PrintTo(const StoreBackend& backend, std::ostream* os) { *os << backend.name; }

class StoreConformance : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    db_ = GetParam().create();
    store_ = db_.open();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    if (store_) store_->Close();
    store_.reset();
    if (db_.drop) db_.drop();
  }
  // Closes and reopens the database (durability across restarts).
  void Reopen() {
    store_->Close();
    store_.reset();
    store_ = db_.open();
    ASSERT_NE(store_, nullptr);
  }

  TestDatabase db_;
  std::unique_ptr<IStore> store_;
};

// The part of the suite that reads through IReadTransaction::Search (store_conformance_test.cpp,
// TEST_P(StoreSearchConformance, …)): the search semantics every SQL dialect of the shared
// compiler (store/sql/search_sql.h) must give. Both backends instantiate it like StoreConformance;
// a backend without Search would say so with
// GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StoreSearchConformance).
class StoreSearchConformance : public StoreConformance {};

}  // namespace jiceng::store::testing
