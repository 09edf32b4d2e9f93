// The PostgreSQL backend: the conformance suite plus what only this backend has (migrations
// under an advisory lock, the URL factory). The server comes from JICENG_TEST_PG_URL, which
// scripts/with-postgres.sh sets (scripts/test.sh runs ctest under it). Without it the tests are
// skipped on a developer machine and FAIL when CI is set: CI never silently skips PostgreSQL.
#include "store/postgres/postgres_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_schema.h"
#include "store/store_factory.h"
#include "store_conformance.h"

namespace jiceng::store::testing {
namespace {

using postgres::PgConnection;

std::string BaseUrl() {
  const char* url = getenv("JICENG_TEST_PG_URL");
  return url ? url : "";
}

constexpr const char* kNoUrl =
    "JICENG_TEST_PG_URL is not set: run the tests under scripts/with-postgres.sh "
    "(e.g. scripts/with-postgres.sh ctest --test-dir build)";

// Skips every test of this binary without a server, except in CI where that is a failure.
class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!BaseUrl().empty()) return;
    if (getenv("CI") != nullptr) FAIL() << kNoUrl << " (CI is set, so this is a failure)";
    GTEST_SKIP() << kNoUrl;
  }
};
[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

// A fresh schema per test (the tests of one binary run as parallel processes under ctest): the
// store's connections get it as their search_path through the URL's libpq `options`. A schema
// is ~5x cheaper to create and drop than a database.
std::string NewSchemaName() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return "jiceng_t_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(rd() % 100000);
}

Status AdminExec(const std::string& sql) {
  JC_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> admin, PgConnection::Open(BaseUrl()));
  return admin->Exec(sql);
}

struct FreshDatabase {
  std::string schema;
  std::string url;  // BaseUrl() with search_path = schema
};

FreshDatabase CreateDatabase() {
  FreshDatabase db{NewSchemaName(), ""};
  const std::string base = BaseUrl();
  db.url = base + (base.find('?') == std::string::npos ? "?" : "&") +
           "options=-csearch_path%3D" + db.schema;
  Status s = AdminExec("CREATE SCHEMA " + postgres::QuoteIdentifier(db.schema));
  EXPECT_TRUE(s.ok()) << s.error().message;
  return db;
}

void DropDatabase(const std::string& schema) {
  Status s = AdminExec("DROP SCHEMA IF EXISTS " + postgres::QuoteIdentifier(schema) + " CASCADE");
  EXPECT_TRUE(s.ok()) << s.error().message;
}

StoreBackend PostgresBackend() {
  return StoreBackend{"Postgres", [] {
                        TestDatabase t;
                        if (BaseUrl().empty()) {
                          t.open = []() -> std::unique_ptr<IStore> {
                            ADD_FAILURE() << kNoUrl;
                            return nullptr;
                          };
                          return t;
                        }
                        FreshDatabase db = CreateDatabase();
                        t.open = [url = db.url]() -> std::unique_ptr<IStore> {
                          PostgresOptions options;
                          options.read_connections = 4;
                          auto store = OpenPostgresStore(url, options);
                          EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
                          return store.ok() ? std::move(store).value() : nullptr;
                        };
                        t.drop = [schema = db.schema] { DropDatabase(schema); };
                        return t;
                      }};
}

INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformance, ::testing::Values(PostgresBackend()),
                         BackendName);

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = CreateDatabase(); }
  void TearDown() override { DropDatabase(db_.schema); }
  FreshDatabase db_;
};

TEST_F(PostgresStoreTest, ProcessesOpeningTogetherMigrateOnce) {
  // Stands in for several jiceng processes starting at once: each opens its own connections.
  constexpr int kOpeners = 6;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&] {
      auto store = OpenPostgresStore(db_.url);
      if (!store.ok()) {
        ADD_FAILURE() << store.error().message;
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  auto rows = (*conn)->Query("SELECT count(*), max(version) FROM schema_migrations");
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  EXPECT_EQ(rows->Int(0, 0), static_cast<int64_t>(postgres::Migrations().size()));
  EXPECT_EQ(rows->Int(0, 1), postgres::Migrations().back().version);
}

TEST_F(PostgresStoreTest, ANewerSchemaIsRefused) {
  { ASSERT_TRUE(OpenPostgresStore(db_.url).ok()); }
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Exec("INSERT INTO schema_migrations VALUES (999, 'future', 0)").ok());
  auto store = OpenPostgresStore(db_.url);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("newer"), std::string::npos) << store.error().message;
}

TEST_F(PostgresStoreTest, AForeignDatabaseIsRefused) {
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Exec("CREATE TABLE someone_elses (x int)").ok());
  auto store = OpenPostgresStore(db_.url);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("not a Jiceng database"), std::string::npos);
}

// Every index kind lands in its table (array parameters round-trip) and the next Put replaces
// them: what search will read once this backend answers Search.
TEST_F(PostgresStoreTest, PutWritesEveryIndexKindAndReplacesIt) {
  auto opened = OpenPostgresStore(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  IndexRows rows;
  rows.tokens = {{"identifier", "urn:a", "X"}, {"identifier", "urn:a", "X"}};  // one row
  rows.strings = {{"name", "zhang", "Zhang"}, {"name", "san", "San"}};
  rows.dates = {{"birthdate", -1'000'000, 86'400'000'000}};
  rows.numbers = {{"probability", 0.25}};
  rows.quantities = {{"value-quantity", 132.5, "http://unitsofmeasure.org", "mm[Hg]", 132.5,
                      "mm[Hg]"}};
  rows.references = {{"general-practitioner", "Practitioner", std::string("d\0c", 3), ""}};
  rows.uris = {{"url", "http://example.org/fhir"}};
  auto put = [&](int64_t version, const IndexRows& index) {
    return store.Write([&](IWriteTransaction& txn) {
      ResourceVersion v{"Patient", "p1", version, version, false, "{}"};
      return txn.Put(v, index);
    });
  };
  ASSERT_TRUE(put(1, rows).ok());
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok());
  auto counts = [&] {
    auto r = (*conn)->Query(
        "SELECT (SELECT count(*) FROM idx_token), (SELECT count(*) FROM idx_string), "
        "(SELECT count(*) FROM idx_date), (SELECT count(*) FROM idx_number), "
        "(SELECT count(*) FROM idx_quantity), (SELECT count(*) FROM idx_reference), "
        "(SELECT count(*) FROM idx_uri)");
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<int64_t> out;
    for (int i = 0; r.ok() && i < 7; ++i) out.push_back(r->Int(0, i));
    return out;
  };
  EXPECT_EQ(counts(), (std::vector<int64_t>{1, 2, 1, 1, 1, 1, 1}));
  auto check = (*conn)->Query(
      "SELECT d.start_us, n.value = 0.25, q.code, r.target_id FROM idx_date d, idx_number n, "
      "idx_quantity q, idx_reference r");
  ASSERT_TRUE(check.ok()) << check.error().message;
  EXPECT_EQ(check->Int(0, 0), -1'000'000);
  EXPECT_TRUE(check->Bool(0, 1));
  EXPECT_EQ(check->String(0, 2), "mm[Hg]");
  EXPECT_EQ(check->String(0, 3), std::string("d\0c", 3));
  IndexRows fewer;
  fewer.strings = {{"name", "li", "Li"}};
  ASSERT_TRUE(put(2, fewer).ok());
  EXPECT_EQ(counts(), (std::vector<int64_t>{0, 1, 0, 0, 0, 0, 0}));
}

TEST_F(PostgresStoreTest, AnUnreachableServerIsAnErrorValue) {
  auto store = OpenPostgresStore("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::kUnavailable);
}

TEST_F(PostgresStoreTest, TheFactoryPicksTheBackendFromTheString) {
  EXPECT_TRUE(IsPostgresUrl("postgresql://u@h/db"));
  EXPECT_TRUE(IsPostgresUrl("postgres://u@h/db"));
  EXPECT_FALSE(IsPostgresUrl("data/county.db"));
  auto store = OpenStore(db_.url);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->Backend(), "postgres");
}

}  // namespace
}  // namespace jiceng::store::testing
