// The SQLite backend: the conformance suite plus what only this backend has (schema
// migrations, the file, the read pool).
#include "store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "store/sqlite/sqlite_schema.h"
#include "store_conformance.h"

namespace jiceng::store::testing {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed with its database files.
std::string MakeTempDir() {
  std::string tmpl = (fs::path(::testing::TempDir()) / "jiceng-store-XXXXXX").string();
  char* dir = mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  return tmpl;
}

StoreBackend SqliteBackend() {
  return StoreBackend{"Sqlite", [] {
                        std::string dir = MakeTempDir();
                        std::string path = dir + "/jiceng.db";
                        TestDatabase db;
                        db.open = [path]() -> std::unique_ptr<IStore> {
                          SqliteOptions options;
                          options.read_connections = 4;
                          options.cache_kib = 4096;
                          auto store = OpenSqliteStore(path, options);
                          EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
                          return store.ok() ? std::move(store).value() : nullptr;
                        };
                        db.drop = [dir] { fs::remove_all(dir); };
                        return db;
                      }};
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance, ::testing::Values(SqliteBackend()),
                         BackendName);
INSTANTIATE_TEST_SUITE_P(Sqlite, StoreSearchConformance, ::testing::Values(SqliteBackend()),
                         BackendName);

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    path_ = dir_ + "/jiceng.db";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_;
  std::string path_;
};

std::vector<sqlite::Migration> WithExtra(const char* sql) {
  auto base = sqlite::Migrations();
  std::vector<sqlite::Migration> list(base.begin(), base.end());
  list.push_back({static_cast<int>(list.size()) + 1, "test extra", sql});
  return list;
}

TEST_F(SqliteStoreTest, MigrationsRunOnceAndReopenWorks) {
  for (int i = 0; i < 3; ++i) {
    auto store = OpenSqliteStore(path_);
    ASSERT_TRUE(store.ok()) << store.error().message;
    (*store)->Close();
  }
  // A newer binary adds a migration that would fail if it ever ran twice.
  auto newer = WithExtra("CREATE TABLE test_extra(x INTEGER)");
  for (int i = 0; i < 2; ++i) {
    auto store = sqlite::OpenSqliteStoreWithMigrations(path_, {}, newer);
    ASSERT_TRUE(store.ok()) << store.error().message;
  }
}

TEST_F(SqliteStoreTest, ADatabaseWithANewerSchemaIsRefused) {
  {
    auto future = sqlite::OpenSqliteStoreWithMigrations(
        path_, {}, WithExtra("CREATE TABLE from_the_future(x INTEGER)"));
    ASSERT_TRUE(future.ok()) << future.error().message;
  }
  auto store = OpenSqliteStore(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("newer"), std::string::npos) << store.error().message;
}

TEST_F(SqliteStoreTest, AFailingMigrationLeavesTheSchemaAsItWas) {
  auto broken = WithExtra("CREATE TABLE ok_part(x INTEGER); THIS IS NOT SQL");
  EXPECT_FALSE(sqlite::OpenSqliteStoreWithMigrations(path_, {}, broken).ok());
  // Version 1 was applied by the same (failed) transaction: nothing was kept, and a fresh
  // open applies everything again.
  auto store = OpenSqliteStore(path_);
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto fixed = sqlite::OpenSqliteStoreWithMigrations(
      path_, {}, WithExtra("CREATE TABLE ok_part(x INTEGER)"));
  (*store)->Close();
  EXPECT_TRUE(fixed.ok()) << fixed.error().message;
}

TEST_F(SqliteStoreTest, NotADatabaseOrNotOursIsRefused) {
  {
    std::ofstream(path_) << "this is not a database, just some text that is long enough. "
                         << std::string(200, 'x');
  }
  EXPECT_FALSE(OpenSqliteStore(path_).ok());
  EXPECT_FALSE(OpenSqliteStore(":memory:").ok());
  EXPECT_FALSE(OpenSqliteStore("").ok());
  EXPECT_FALSE(OpenSqliteStore(dir_ + "/missing-dir/x.db").ok());
}

TEST_F(SqliteStoreTest, BeginReadWaitsForAFreeConnectionThenTimesOut) {
  SqliteOptions options;
  options.read_connections = 1;
  options.busy_timeout_ms = 100;
  auto store = OpenSqliteStore(path_, options);
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto held = (*store)->BeginRead();
  ASSERT_TRUE(held.ok());
  auto second = (*store)->BeginRead();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  held->reset();
  EXPECT_TRUE((*store)->BeginRead().ok());
}

TEST_F(SqliteStoreTest, AReadTransactionMayOutliveClose) {
  auto store = OpenSqliteStore(path_);
  ASSERT_TRUE(store.ok());
  auto txn = (*store)->BeginRead();
  ASSERT_TRUE(txn.ok());
  (*store)->Close();
  store->reset();
  EXPECT_TRUE((*txn)->CountCurrent("").ok());
  txn->reset();  // returns its connection to a closed pool: closed, not leaked
}

TEST_F(SqliteStoreTest, WriteFromInsideAWorkIsAnErrorNotADeadlock) {
  auto store = OpenSqliteStore(path_);
  ASSERT_TRUE(store.ok());
  IStore& s = **store;
  Status inner;
  Status outer = s.Write([&](IWriteTransaction&) {
    inner = s.Write([](IWriteTransaction&) { return Status::Ok(); });
    return Status::Ok();
  });
  EXPECT_TRUE(outer.ok());
  EXPECT_FALSE(inner.ok());
}

}  // namespace
}  // namespace jiceng::store::testing
