// The PostgreSQL backend: the conformance suite plus what only this backend has (migrations
// under an advisory lock, the URL factory). The server comes from JICENG_TEST_PG_URL, which
// scripts/with-postgres.sh sets (scripts/test.sh runs ctest under it). Without it the tests are
// skipped on a developer machine and FAIL when CI is set: CI never silently skips PostgreSQL.
#include "store/postgres/postgres_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <limits>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_put.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_search.h"
#include "store/postgres/shared_search_results.h"
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
  db.url = base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
           db.schema;
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
INSTANTIATE_TEST_SUITE_P(Postgres, StoreSearchConformance, ::testing::Values(PostgresBackend()),
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

// Migration 9: resource's key covers the columns a search reads of each match (rid, type,
// deleted, last_updated_us, id), so collecting matches by rid never reads the rows themselves,
// and the history's foreign key still holds. Migration 10: the same for a date sort value.
TEST_F(PostgresStoreTest, TheKeysCoverWhatASearchReadsOfAMatch) {
  auto opened = OpenPostgresStore(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  PgConnection& c = **conn;
  ASSERT_TRUE(c.Exec("INSERT INTO resource (type, id, version, last_updated_us, json) SELECT "
                     "'Patient', convert_to('p' || g, 'UTF8'), 1, g, '\\x7b7d' FROM "
                     "generate_series(1, 200) g")
                  .ok());
  ASSERT_TRUE(c.Exec("ANALYZE resource").ok());
  // Only an index-only scan left to choose (another test's open transaction may keep pages from
  // being marked all-visible, which would make a plain index scan look as cheap).
  ASSERT_TRUE(
      c.Exec("SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_indexscan = off")
          .ok());
  auto plan = c.Query(
      "EXPLAIN (COSTS OFF) SELECT r.rid, r.id FROM resource r WHERE r.type = 'Patient' AND NOT "
      "r.deleted AND r.last_updated_us <= 100 AND r.rid IN (SELECT rid FROM resource WHERE rid "
      "IN (3, 5, 7))");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  std::string text;
  for (int i = 0; i < plan->rows(); ++i) text += plan->String(i, 0) + "\n";
  EXPECT_NE(text.find("Index Only Scan using resource_pkey on resource r"), std::string::npos)
      << text;
  // Migration 10: a resource's latest date of a parameter (a search sorted by -date) is one
  // backward index-only step of idx_date_by_rid.
  ASSERT_TRUE(c.Exec("INSERT INTO idx_date (type, param, start_us, end_us, rid) SELECT 'Patient', "
                     "'birthdate', g, g + 10, g % 200 + 1 FROM generate_series(1, 2000) g")
                  .ok());
  ASSERT_TRUE(c.Exec("ANALYZE idx_date").ok());
  plan = c.Query(
      "EXPLAIN (COSTS OFF) SELECT (SELECT end_us FROM idx_date WHERE rid = r.rid AND param = "
      "'birthdate' ORDER BY end_us DESC LIMIT 1) FROM resource r WHERE r.rid = 5");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  text.clear();
  for (int i = 0; i < plan->rows(); ++i) text += plan->String(i, 0) + "\n";
  EXPECT_NE(text.find("Index Only Scan Backward using idx_date_by_rid"), std::string::npos) << text;
  auto orphan = c.Exec(
      "INSERT INTO resource_history (rid, type, id, version, last_updated_us, deleted, json) "
      "VALUES (999999, 'Patient', 'x', 1, 1, false, '')");
  EXPECT_FALSE(orphan.ok());
  EXPECT_EQ(c.LastSqlState(), "23503");  // foreign_key_violation
}

// SearchQuery::timeout_ms: a search statement that runs past it is cancelled and the search
// fails with too-costly; in a read transaction the bound set by its first search stays in force
// for the next (not sent again), and the store goes on serving. The slow statement here is one
// that waits for a lock another connection holds on the index table it reads.
TEST_F(PostgresStoreTest, ASearchPastItsTimeoutIsStoppedAndTheBoundHoldsThroughTheTransaction) {
  auto opened = OpenPostgresStore(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  SearchQuery by_id;
  by_id.type = "Patient";
  by_id.timeout_ms = 300;
  SearchClause id;
  id.param = "_id";
  id.kind = SearchKind::kId;
  id.any_of.emplace_back().code = "p1";
  by_id.all_of.push_back(id);
  SearchQuery by_name = by_id;
  by_name.all_of.clear();
  SearchClause name;
  name.param = "name";
  name.kind = SearchKind::kString;
  name.any_of.emplace_back().text = "wang";
  by_name.all_of.push_back(name);

  auto txn = store.BeginRead();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE((*txn)->Search(by_id).ok());  // sets the bound: reads `resource` only
  auto locker = PgConnection::Open(db_.url);
  ASSERT_TRUE(locker.ok());
  ASSERT_TRUE((*locker)->Exec("BEGIN; LOCK TABLE idx_string IN ACCESS EXCLUSIVE MODE").ok());
  const auto t0 = std::chrono::steady_clock::now();
  auto stopped = (*txn)->Search(by_name);  // waits for the lock: the bound still applies
  ASSERT_FALSE(stopped.ok());
  ASSERT_FALSE(stopped.error().issues.empty());
  EXPECT_EQ(stopped.error().issues[0].code, "too-costly") << stopped.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  txn->reset();
  // A new transaction's first search is bounded too.
  auto again = store.BeginRead();
  ASSERT_TRUE(again.ok());
  auto stopped_again = (*again)->Search(by_name);
  ASSERT_FALSE(stopped_again.ok());
  EXPECT_EQ(stopped_again.error().issues.at(0).code, "too-costly");
  again->reset();
  ASSERT_TRUE((*locker)->Exec("ROLLBACK").ok());
  auto after = store.BeginRead();
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE((*after)->Search(by_name).ok());
}

// In a read transaction, a search driven by a clause of few index rows runs with generic plans
// (planned once per statement and connection), and one over many rows with PostgreSQL's own
// choice; the setting goes out with the transaction's BEGIN when it can, and ends with the
// transaction. A unit of work's search (no settings) leaves plans alone.
TEST_F(PostgresStoreTest, ASearchOfFewRowsRunsWithGenericPlansForItsTransactionOnly) {
  auto opened = OpenPostgresStore(db_.url);  // migrates
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  PgConnection& c = **conn;
  // 1,001 name rows (over the compiler's kTinyEstimate): a search of them is planned each time.
  ASSERT_TRUE(c.Exec("INSERT INTO idx_string (type, param, value, exact, rid) SELECT 'Patient', "
                     "'name', 'zhang', 'zhang', g FROM generate_series(1, 1001) g")
                  .ok());
  auto by_name = [](std::string text) {
    SearchQuery q;
    q.type = "Patient";
    q.timeout_ms = 5000;
    SearchClause name;
    name.param = "name";
    name.kind = SearchKind::kString;
    name.any_of.emplace_back().text = std::move(text);
    q.all_of.push_back(name);
    return q;
  };
  const SearchQuery few = by_name("wang");
  const SearchQuery many = by_name("zhang");
  auto mode = [&] {
    auto r = c.Query("SELECT current_setting('plan_cache_mode')");
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r->String(0, 0) : std::string("<error>");
  };
  postgres::SearchSettings settings;
  c.BeginLazily("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  ASSERT_TRUE(postgres::QuerySearch(c, few, nullptr, &settings).ok());
  EXPECT_TRUE(settings.generic_plans);
  EXPECT_EQ(settings.timeout_ms, 5000);
  EXPECT_EQ(mode(), "force_generic_plan");
  ASSERT_TRUE(postgres::QuerySearch(c, many, nullptr, &settings).ok());
  EXPECT_FALSE(settings.generic_plans);
  EXPECT_EQ(mode(), "auto");
  ASSERT_TRUE(postgres::QuerySearch(c, few, nullptr, &settings).ok());
  EXPECT_EQ(mode(), "force_generic_plan");
  c.EndLazily();
  EXPECT_EQ(mode(), "auto");  // LOCAL: gone with the transaction
  ASSERT_TRUE(c.Exec("BEGIN").ok());
  ASSERT_TRUE(postgres::QuerySearch(c, few).ok());
  EXPECT_EQ(mode(), "auto");
  ASSERT_TRUE(c.Exec("ROLLBACK").ok());
}

// A search that walks a date index in page order runs its walk without sorts (pg_search.cpp,
// PgStatements::Walk: the planner otherwise sorted every match) and puts sorting back for the
// rest of its transaction. 1,200 Observations of one code (over kTinyEstimate): the walk is the
// compiler's choice.
TEST_F(PostgresStoreTest, ADateWalkRunsWithoutSortsAndPutsThemBack) {
  auto opened = OpenPostgresStore(db_.url);  // migrates
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  PgConnection& c = **conn;
  ASSERT_TRUE(
      c.Exec("INSERT INTO resource (rid, type, id, version, last_updated_us, deleted, json) "
             "SELECT g, 'Observation', convert_to('o' || g, 'UTF8'), 1, 1, false, "
             "convert_to('{}', 'UTF8') FROM generate_series(1, 1200) g; "
             "INSERT INTO idx_token (type, param, code, system, rid) SELECT 'Observation', "
             "'code', 'x', '', g FROM generate_series(1, 1200) g; "
             "INSERT INTO idx_date (type, param, start_us, end_us, rid) SELECT "
             "'Observation', 'date', g * 1000, g * 1000 + 999, g "
             "FROM generate_series(1, 1200) g")
          .ok());
  SearchQuery q;
  q.type = "Observation";
  q.count = 10;
  SearchClause code;
  code.param = "code";
  code.kind = SearchKind::kToken;
  code.any_of.emplace_back().code = "x";
  q.all_of.push_back(code);
  q.sort = {{"date", SearchKind::kDate, true}};
  {
    // The compiler walks with these counts (as QuerySearch's estimator finds them).
    class Counts final : public sql::RowEstimator {
     public:
      std::optional<int64_t> CountRows(const sql::Statement&) override { return 1200; }
    } counts;
    ASSERT_TRUE(sql::CompileSearch(q, postgres::PostgresDialect(), &counts).walk);
  }
  auto sorting = [&] {
    auto r = c.Query("SELECT current_setting('enable_sort')");
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r->String(0, 0) : std::string("<error>");
  };
  postgres::SearchSettings settings;
  c.BeginLazily("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  auto page = postgres::QuerySearch(c, q, nullptr, &settings);
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->entries.size(), 10u);
  EXPECT_EQ(page->entries.front().id, "o1200");  // the latest first
  EXPECT_EQ(page->entries.back().id, "o1191");
  EXPECT_EQ(sorting(), "on");
  c.EndLazily();
}

// After a bulk change the planner's statistics are refreshed (jiceng import, generate --db,
// migrate-db, reindex call it): without them a search planned right after a large import ran for
// minutes. The same command VACUUMs, which sets the visibility map, without which an index-only
// scan still reads the heap page of every row. (Whether VACUUM can mark the pages depends on the
// oldest snapshot of the whole database, which the tests running alongside hold: the test checks
// that the VACUUM ran.) It runs on the primary also when reads go to a replica (where it could
// not run): here the "replica" is another schema, whose tables must stay untouched.
TEST_F(PostgresStoreTest, RefreshStatisticsAnalyzesAndVacuumsTheStoresTables) {
  FreshDatabase replica = CreateDatabase();
  ASSERT_TRUE(OpenPostgresStore(replica.url).ok());
  PostgresOptions options;
  options.read_url = replica.url;
  auto opened = OpenPostgresStore(db_.url, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok());
  const char* done =
      "SELECT count(*) FILTER (WHERE last_analyze IS NOT NULL), count(*) FILTER (WHERE "
      "last_vacuum IS NOT NULL), count(*) FROM pg_stat_user_tables WHERE schemaname = "
      "current_schema() AND relname IN ('resource', 'resource_history', 'idx_token', "
      "'idx_reference')";
  auto before = (*conn)->Query(done);
  ASSERT_TRUE(before.ok()) << before.error().message;
  EXPECT_EQ(before->Int(0, 0), 0);
  EXPECT_EQ(before->Int(0, 1), 0);
  ASSERT_TRUE((*opened)->RefreshStatistics().ok());
  auto after = (*conn)->Query(done);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->Int(0, 2), 4);
  EXPECT_EQ(after->Int(0, 0), 4);
  EXPECT_EQ(after->Int(0, 1), 4);
  auto on_replica = PgConnection::Open(replica.url);
  ASSERT_TRUE(on_replica.ok());
  auto untouched = (*on_replica)->Query(done);
  ASSERT_TRUE(untouched.ok()) << untouched.error().message;
  EXPECT_EQ(untouched->Int(0, 1), 0);
  (*opened)->Close();
  DropDatabase(replica.schema);
}

// Migration 11: a search's kept ids go into search_results as they are, not compressed (random
// UUIDs do not compress, and compressing them cost most of each insert). Even a body that would
// compress well is stored at its full size, and found again whole.
TEST_F(PostgresStoreTest, SharedSearchResultsAreStoredUncompressed) {
  ASSERT_TRUE(OpenPostgresStore(db_.url).ok());
  const std::string body(20000, 'a');
  {
    postgres::SharedSearchResults shared(db_.url);
    shared.Publish("k1", body, int64_t{1} << 60);
    shared.Flush();
    auto found = shared.Find("k1", 0, int64_t{1} << 60);
    ASSERT_TRUE(found.ok()) << found.error().message;
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ(**found, body);
  }
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok());
  auto r = (*conn)->Query(
      "SELECT pg_column_size(body), octet_length(body) FROM search_results WHERE key = 'k1'");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->rows(), 1);
  EXPECT_GE(r->Int(0, 0), r->Int(0, 1));
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
// them: the rows search reads (StoreSearchConformance checks what it finds).
TEST_F(PostgresStoreTest, PutWritesEveryIndexKindAndReplacesIt) {
  auto opened = OpenPostgresStore(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  IndexRows rows;
  rows.tokens = {{"identifier", "urn:a", "X"}, {"identifier", "urn:a", "X"}};  // one row
  rows.strings = {{"name", "zhang", "Zhang"}, {"name", "san", "San"}};
  rows.dates = {{"birthdate", -1'000'000, 86'400'000'000}};
  rows.numbers = {{"probability", 0.25}};
  rows.quantities = {
      {"value-quantity", 132.5, "http://unitsofmeasure.org", "mm[Hg]", 132.5, "mm[Hg]"}};
  rows.references = {{"general-practitioner", "Practitioner", std::string("d\0c", 3), ""}};
  rows.uris = {{"url", "http://example.org/fhir"}};
  CompositeIndexRow comp;
  comp.param = "component-code-value-quantity";
  comp.system1 = "http://loinc.org";
  comp.code1 = "8480-6";
  comp.code2 = "mm[Hg]";
  comp.system2 = "http://unitsofmeasure.org";
  comp.number2 = 120;
  comp.canonical_code2 = "mm[Hg]";
  comp.canonical_number2 = 120;
  rows.composites = {comp, comp};  // one row
  rows.full_text = {{"hypertension follow up", "zhang san 高 血 压 hypertension"}};
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
        "(SELECT count(*) FROM idx_uri), (SELECT count(*) FROM idx_composite), "
        "(SELECT count(*) FROM fts_resource)");
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<int64_t> out;
    for (int i = 0; r.ok() && i < 9; ++i) out.push_back(r->Int(0, i));
    return out;
  };
  EXPECT_EQ(counts(), (std::vector<int64_t>{1, 2, 1, 1, 1, 1, 1, 1, 1}));
  // The full text is words: a prefix, and a Chinese phrase by characters in order.
  auto text = (*conn)->Query(
      "SELECT narrative @@ to_tsquery('simple', 'hyperten:*'), "
      "content @@ to_tsquery('simple', '高 <-> 血 <-> 压'), "
      "content @@ to_tsquery('simple', '血 <-> 高'), narrative @@ to_tsquery('simple', 'zhang') "
      "FROM fts_resource");
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_TRUE(text->Bool(0, 0));
  EXPECT_TRUE(text->Bool(0, 1));
  EXPECT_FALSE(text->Bool(0, 2));
  EXPECT_FALSE(text->Bool(0, 3));
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
  EXPECT_EQ(counts(), (std::vector<int64_t>{0, 1, 0, 0, 0, 0, 0, 0, 0}));
}

// Every row of a resource carries its distribution key (schema v7): the resource row, each
// history row, the rows of every index table and the full-text row; a Patient and the resources
// in its compartment share one key; shared data has 0. A new version that moves the resource to
// another compartment moves all its rows, its older history included.
TEST_F(PostgresStoreTest, EveryRowOfAResourceCarriesItsPatientsDistributionKey) {
  auto opened = OpenPostgresStore(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  auto rows_of = [](std::string patient) {
    IndexRows rows;
    rows.tokens = {{"code", "http://loinc.org", "8480-6"}};
    rows.strings = {{"name", "zhang", "Zhang"}};
    rows.dates = {{"date", 0, 1}};
    rows.numbers = {{"probability", 0.5}};
    rows.quantities = {{"value-quantity", 120, "http://unitsofmeasure.org", "mm[Hg]", 120, ""}};
    rows.references = {{"subject", "Patient", patient, ""}};
    rows.uris = {{"url", "http://example.org"}};
    CompositeIndexRow comp;
    comp.param = "code-value-quantity";
    comp.code1 = "8480-6";
    rows.composites = {comp};
    rows.full_text = {{"blood pressure", "blood pressure"}};
    rows.patient_compartment = std::move(patient);
    return rows;
  };
  auto put = [&](const std::string& type, const std::string& id, int64_t version,
                 const IndexRows& rows) {
    return store.Write([&](IWriteTransaction& txn) {
      return txn.Put(ResourceVersion{type, id, version, version, false, "{}"}, rows);
    });
  };
  IndexRows patient;
  patient.strings = {{"name", "zhang", "Zhang"}};
  patient.patient_compartment = "p1";
  ASSERT_TRUE(put("Patient", "p1", 1, patient).ok());
  ASSERT_TRUE(put("Observation", "o1", 1, rows_of("p1")).ok());
  IndexRows shared;
  shared.strings = {{"name", "county hospital", "County Hospital"}};
  ASSERT_TRUE(put("Organization", "org", 1, shared).ok());

  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok());
  // The distinct keys of every row of type/id, over all eleven tables.
  auto keys = [&](const std::string& type, const std::string& id) {
    std::string sql = "WITH r AS (SELECT rid FROM resource WHERE type = $1 AND id = $2) ";
    sql +=
        "SELECT DISTINCT k FROM (SELECT shard_key AS k FROM resource WHERE rid IN (SELECT rid FROM "
        "r)";
    for (const char* t :
         {"resource_history", "idx_token", "idx_string", "idx_date", "idx_number", "idx_quantity",
          "idx_reference", "idx_uri", "idx_composite", "fts_resource"}) {
      sql += std::string(" UNION ALL SELECT shard_key FROM ") + t +
             " WHERE rid IN (SELECT rid FROM r)";
    }
    sql += ") x ORDER BY k";
    auto r = (*conn)->Query(sql, postgres::PgParams().Text(type).Bytes(id));
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<int64_t> out;
    for (int i = 0; r.ok() && i < r->rows(); ++i) out.push_back(r->Int(i, 0));
    return out;
  };
  auto rows_with_key = [&](int64_t key) {
    std::string sql = "SELECT (SELECT count(*) FROM resource WHERE shard_key = $1)";
    for (const char* t :
         {"resource_history", "idx_token", "idx_string", "idx_date", "idx_number", "idx_quantity",
          "idx_reference", "idx_uri", "idx_composite", "fts_resource"}) {
      sql += std::string(" + (SELECT count(*) FROM ") + t + " WHERE shard_key = $1)";
    }
    auto r = (*conn)->Query(sql, postgres::PgParams().Int(key));
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r->Int(0, 0) : -1;
  };
  const int64_t k1 = postgres::DistributionKey("p1");
  const int64_t k2 = postgres::DistributionKey("p2");
  EXPECT_GT(k1, 0);
  EXPECT_NE(k1, k2);
  EXPECT_EQ(postgres::DistributionKey(""), 0);
  EXPECT_EQ(keys("Patient", "p1"), (std::vector<int64_t>{k1}));
  EXPECT_EQ(keys("Observation", "o1"), (std::vector<int64_t>{k1}));
  EXPECT_EQ(keys("Organization", "org"), (std::vector<int64_t>{0}));
  // Patient: resource, history, one string. Observation: resource, history, nine index rows.
  EXPECT_EQ(rows_with_key(k1), 3 + 11);

  // Version 2 is in p2's compartment: every row of o1 moves, version 1's history row too.
  ASSERT_TRUE(put("Observation", "o1", 2, rows_of("p2")).ok());
  EXPECT_EQ(keys("Observation", "o1"), (std::vector<int64_t>{k2}));
  EXPECT_EQ(rows_with_key(k2), 12);
  EXPECT_EQ(rows_with_key(k1), 3);
  // A tombstone has no index rows: the resource and its history stay in p2's compartment.
  ASSERT_TRUE(
      store
          .Write([&](IWriteTransaction& txn) {
            return txn.Put(ResourceVersion{"Observation", "o1", 3, 3, true, ""}, IndexRows{});
          })
          .ok());
  EXPECT_EQ(keys("Observation", "o1"), (std::vector<int64_t>{k2}));
  EXPECT_EQ(rows_with_key(k2), 4);  // resource and three history rows
}

// ReplaceIndex (`jiceng reindex`) on PostgreSQL: replaces the current version's index rows, and
// sets the distribution key of rows written before the key existed (0 after migration 7).
TEST_F(PostgresStoreTest, ReplaceIndexRewritesTheRowsAndFillsTheDistributionKey) {
  auto opened = OpenPostgresStore(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  IndexRows old_rows;
  old_rows.tokens = {{"code", "http://loinc.org", "old"}};
  old_rows.strings = {{"name", "a", "A"}};
  ASSERT_TRUE(
      store
          .Write([&](IWriteTransaction& txn) {
            return txn.Put(ResourceVersion{"Observation", "o", 1, 1, false, "{}"}, old_rows);
          })
          .ok());
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok());
  // As a database from before migration 7 holds it.
  for (const char* t : {"resource", "resource_history", "idx_token", "idx_string"}) {
    ASSERT_TRUE((*conn)->Exec(std::string("UPDATE ") + t + " SET shard_key = 7").ok());
  }
  IndexRows new_rows;
  new_rows.tokens = {{"code", "http://loinc.org", "new"}};
  new_rows.references = {{"subject", "Patient", "p9", ""}};
  new_rows.patient_compartment = "p9";
  auto replace = [&](std::string id, int64_t version) {
    return store.Write([&](IWriteTransaction& txn) {
      return txn.ReplaceIndex("Observation", id, version, new_rows);
    });
  };
  Status stale = replace("o", 2);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, ErrorCode::kConflict);
  Status missing = replace("nope", 1);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(replace("o", 1).ok());
  const int64_t key = postgres::DistributionKey("p9");
  auto r = (*conn)->Query(
      "SELECT (SELECT string_agg(convert_from(code, 'UTF8'), ',') FROM idx_token), "
      "(SELECT count(*) FROM idx_string), (SELECT count(*) FROM idx_reference), "
      "(SELECT count(*) FROM resource WHERE shard_key = $1), "
      "(SELECT count(*) FROM resource_history WHERE shard_key = $1), "
      "(SELECT count(*) FROM idx_token WHERE shard_key = $1), "
      "(SELECT count(*) FROM idx_reference WHERE shard_key = $1)",
      postgres::PgParams().Int(key));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->String(0, 0), "new");
  EXPECT_EQ(r->Int(0, 1), 0);
  EXPECT_EQ(r->Int(0, 2), 1);
  for (int c = 3; c < 7; ++c) EXPECT_EQ(r->Int(0, c), 1) << "column " << c;
  // The version is unchanged: a reindex writes no version.
  auto cur = store.ReadCurrent("Observation", "o");
  ASSERT_TRUE(cur.ok() && cur->has_value());
  EXPECT_EQ((*cur)->version, 1);
}

// Put replaces index rows in one statement: rows that stay are not rewritten (same xmin), rows
// that go are deleted, new ones inserted; a changed non-key column (a quantity's canonical
// form) is updated in place, and duplicates within one Put are one row.
TEST_F(PostgresStoreTest, PutKeepsUnchangedIndexRowsAndReplacesTheRest) {
  auto opened = OpenPostgresStore(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  auto put = [&](int64_t version, const IndexRows& index) {
    return store.Write([&](IWriteTransaction& txn) {
      return txn.Put(ResourceVersion{"Observation", "o1", version, version, false, "{}"}, index);
    });
  };
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok());
  PgConnection& c = **conn;
  auto strings = [&](const std::string& sql) {
    std::vector<std::string> out;
    auto r = c.Query(sql);
    EXPECT_TRUE(r.ok()) << r.error().message;
    for (int i = 0; r.ok() && i < r->rows(); ++i) out.push_back(r->String(i, 0));
    return out;
  };
  IndexRows v1;
  v1.tokens = {{"code", "urn:s", "A"}, {"code", "urn:s", "B"}};
  v1.quantities = {{"value-quantity", 1, "http://unitsofmeasure.org", "kg", 1000, "g"},
                   {"value-quantity", 1, "http://unitsofmeasure.org", "kg", 1000, "g"}};
  ASSERT_TRUE(put(1, v1).ok());
  EXPECT_EQ(strings("SELECT convert_from(code, 'UTF8') FROM idx_token ORDER BY code"),
            (std::vector<std::string>{"A", "B"}));
  const auto kept_xmin = strings("SELECT xmin::text FROM idx_token WHERE code = 'B'");
  ASSERT_EQ(kept_xmin.size(), 1u);

  IndexRows v2;
  v2.tokens = {{"code", "urn:s", "B"}, {"code", "urn:s", "C"}};
  v2.quantities = {{"value-quantity", 1, "http://unitsofmeasure.org", "kg", 1000.5, "g"}};
  ASSERT_TRUE(put(2, v2).ok());
  EXPECT_EQ(strings("SELECT convert_from(code, 'UTF8') FROM idx_token ORDER BY code"),
            (std::vector<std::string>{"B", "C"}));
  EXPECT_EQ(strings("SELECT xmin::text FROM idx_token WHERE code = 'B'"), kept_xmin);
  EXPECT_EQ(strings("SELECT canonical_value::text FROM idx_quantity"),
            (std::vector<std::string>{"1000.5"}));

  // A tombstone has no index rows.
  ASSERT_TRUE(store
                  .Write([&](IWriteTransaction& txn) {
                    return txn.Put(ResourceVersion{"Observation", "o1", 3, 3, true, ""}, {});
                  })
                  .ok());
  EXPECT_EQ(strings("SELECT rid::text FROM idx_token UNION ALL SELECT rid::text FROM idx_quantity"),
            std::vector<std::string>{});
}

// A stale Put (its version is not newer) is a conflict and changes neither the resource, its
// history nor its index rows. Puts are written when their unit ends (pg_put.h), so the conflict
// fails the unit even when the unit ignores what Put returned, and nothing of the unit stays:
// neither the Puts before it nor those after it in the same flush.
TEST_F(PostgresStoreTest, AStalePutChangesNothingAndFailsItsUnit) {
  auto opened = OpenPostgresStore(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  IndexRows original;
  original.strings = {{"name", "zhang", "Zhang"}};
  ASSERT_TRUE(
      store
          .Write([&](IWriteTransaction& txn) {
            return txn.Put(ResourceVersion{"Patient", "p", 1, 10, false, "{\"v\":1}"}, original);
          })
          .ok());
  Status put_status;
  Status unit = store.Write([&](IWriteTransaction& txn) {
    IndexRows other;
    other.strings = {{"name", "li", "Li"}};
    EXPECT_TRUE(txn.Put(ResourceVersion{"Patient", "before", 1, 20, false, "{}"}, other).ok());
    put_status = txn.Put(ResourceVersion{"Patient", "p", 1, 20, false, "{\"v\":2}"}, other);
    (void)txn.Put(ResourceVersion{"Patient", "after", 1, 20, false, "{}"}, other);
    return Status::Ok();  // ignores the failed Put
  });
  const Status& reported = put_status.ok() ? unit : put_status;
  ASSERT_FALSE(reported.ok());
  EXPECT_EQ(reported.error().code, ErrorCode::kConflict);
  EXPECT_NE(reported.error().message.find("Patient/p "), std::string::npos)
      << reported.error().message;
  ASSERT_FALSE(unit.ok());
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok());
  auto r = (*conn)->Query(
      "SELECT (SELECT count(*) FROM resource_history), (SELECT count(*) FROM resource), "
      "(SELECT last_updated_us FROM resource WHERE id = 'p'), "
      "(SELECT string_agg(value, ',') FROM idx_string)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->Int(0, 0), 1);
  EXPECT_EQ(r->Int(0, 1), 1);
  EXPECT_EQ(r->Int(0, 2), 10);
  EXPECT_EQ(r->String(0, 3), "zhang");
}

// Every row of the index tables as text, with its resource's type/id instead of its rid, sorted:
// comparable across databases.
std::vector<std::string> IndexRowDump(PgConnection& c) {
  std::string sql;
  for (const char* t : {"idx_token", "idx_string", "idx_date", "idx_number", "idx_quantity",
                        "idx_reference", "idx_uri", "idx_composite"}) {
    sql += std::string(sql.empty() ? "" : " UNION ALL ") + "SELECT '" + t +
           " ' || r.type || '/' || encode(r.id, 'escape') || ' ' || (to_jsonb(x) - 'rid')::text "
           "FROM " +
           t + " x JOIN resource r USING (rid)";
  }
  sql +=
      " UNION ALL SELECT 'fts ' || r.type || '/' || encode(r.id, 'escape') || ' ' || "
      "x.narrative::text || ' | ' || x.content::text FROM fts_resource x JOIN resource r "
      "USING (rid)";
  sql +=
      " UNION ALL SELECT 'resource ' || type || '/' || encode(id, 'escape') || ' ' || "
      "version || ' ' || deleted || ' ' || encode(json, 'escape') FROM resource";
  sql +=
      " UNION ALL SELECT 'history ' || type || '/' || encode(id, 'escape') || ' ' || "
      "version || ' ' || last_updated_us || ' ' || deleted FROM resource_history";
  auto r = c.Query("SELECT line FROM (" + sql + ") x(line) ORDER BY line COLLATE \"C\"");
  EXPECT_TRUE(r.ok()) << r.error().message;
  std::vector<std::string> out;
  for (int i = 0; r.ok() && i < r->rows(); ++i) out.push_back(r->String(i, 0));
  return out;
}

// Index rows whose resource does not exist (the index tables declare no foreign key: migration
// 4), and resources that have index rows although deleted.
int64_t OrphanIndexRows(PgConnection& c) {
  std::string sql = "SELECT 0";
  for (const char* t : {"idx_token", "idx_string", "idx_date", "idx_number", "idx_quantity",
                        "idx_reference", "idx_uri", "idx_composite", "fts_resource"}) {
    sql += std::string(" + (SELECT count(*) FROM ") + t +
           " x LEFT JOIN resource r USING (rid) WHERE r.rid IS NULL OR r.deleted)";
  }
  auto r = c.Query(sql);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? r->Int(0, 0) : -1;
}

// The Puts of one unit are written together (pg_put.h): new resources without looking for old
// rows, re-versioned ones by replacing theirs, in a few statements for the whole unit. The rows
// must be exactly those of the same Puts written one unit each: creates, updates that keep,
// drop, add and change rows (a quantity's canonical form), a tombstone, a revival, a resource
// without rows, duplicates within a version (-0 and 0 are one number, as for float8), NUL in
// text, full text that appears and goes, a read of a queued resource in the middle of the unit
// (which writes the queue first) and a second version of a resource queued in the same unit.
TEST_F(PostgresStoreTest, OneUnitWritesTheSameRowsAsOneUnitPerPut) {
  auto token = [](const std::string& code) { return TokenIndexRow{"code", "urn:s", code}; };
  auto quantity = [](double value, double canonical) {
    return QuantityIndexRow{"value-quantity", value, "http://unitsofmeasure.org", "kg",
                            canonical,        "g"};
  };
  struct Step {
    ResourceVersion v;
    IndexRows rows;
    bool read_first = false;  // ReadCurrent of the resource before its Put
  };
  std::vector<Step> before;  // written one unit each in both databases
  std::vector<Step> steps;   // one unit in the first database, one unit each in the second
  {
    IndexRows a;
    a.tokens = {token("A"), token("B")};
    a.quantities = {quantity(1, 1000)};
    a.full_text = {{"old narrative", "old content"}};
    before.push_back({{"Observation", "x1", 1, 1, false, "{\"x1\":1}"}, a});
    IndexRows b;
    b.strings = {{"name", "wang", "Wang"}};
    before.push_back({{"Patient", "x2", 1, 2, false, "{\"x2\":1}"}, b});
    before.push_back({{"Patient", "x3", 1, 3, false, "{\"x3\":1}"}, b});
    before.push_back({{"Patient", "x3", 2, 4, true, ""}, {}});
  }
  {
    IndexRows n1;  // duplicates: one row each
    n1.tokens = {token("A"), token("A"), {"code", "urn:s", std::string("n\0ul", 4)}};
    n1.numbers = {{"probability", 0.0}, {"probability", -0.0}, {"probability", 0.5}};
    n1.strings = {{"name", std::string("a\0b", 3), "AB"}, {"name", "ab", "AB"}};
    CompositeIndexRow comp;
    comp.param = "code-value-quantity";
    comp.system1 = "http://loinc.org";
    comp.code1 = "8480-6";
    comp.code2 = "mm[Hg]";
    comp.number2 = 120;
    n1.composites = {comp, comp};
    n1.dates = {{"date", 1, 2}};
    n1.references = {{"subject", "Patient", "x2", ""}};
    n1.uris = {{"url", "http://example.org"}};
    n1.full_text = {{"narrative of n1", "content of n1"}};
    steps.push_back({{"Observation", "n1", 1, 10, false, "{\"n1\":1}"}, n1});
    IndexRows x1;  // keeps B, drops A, adds C; the quantity's canonical value changes
    x1.tokens = {token("B"), token("C"), token("C")};
    x1.quantities = {quantity(1, 1000.5)};
    steps.push_back({{"Observation", "x1", 2, 11, false, "{\"x1\":2}"}, x1, true});
    steps.push_back({{"Patient", "x2", 2, 12, true, ""}, {}, true});  // tombstone
    IndexRows x3;                                                     // revived
    x3.strings = {{"name", "li", "Li"}};
    x3.full_text = {{"", "li"}};
    steps.push_back({{"Patient", "x3", 3, 13, false, "{\"x3\":3}"}, x3, true});
    steps.push_back({{"Patient", "n2", 1, 14, false, "{\"n2\":1}"}, {}});  // no rows
    IndexRows n1b = n1;  // read first: the queue is written in the middle of the unit
    n1b.tokens = {token("Z")};
    n1b.full_text.clear();
    steps.push_back({{"Observation", "n1", 2, 15, false, "{\"n1\":2}"}, n1b, true});
    IndexRows n3;
    n3.tokens = {token("A")};
    steps.push_back({{"Observation", "n3", 1, 16, false, "{\"n3\":1}"}, n3});
    n3.tokens = {token("D")};  // queued twice in the unit, without a read in between
    steps.push_back({{"Observation", "n3", 2, 17, false, "{\"n3\":2}"}, n3});
  }
  auto write_each = [](IStore& store, const std::vector<Step>& list) {
    for (const Step& s : list) {
      Status st = store.Write([&](IWriteTransaction& txn) { return txn.Put(s.v, s.rows); });
      EXPECT_TRUE(st.ok()) << s.v.id << ": " << st.error().message;
    }
  };
  FreshDatabase other = CreateDatabase();
  std::vector<std::string> batched, one_by_one;
  {
    auto opened = OpenPostgresStore(db_.url);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    write_each(**opened, before);
    Status st = (*opened)->Write([&](IWriteTransaction& txn) -> Status {
      for (const Step& s : steps) {
        if (s.read_first) {
          JC_ASSIGN_OR_RETURN(std::optional<ResourceVersion> cur,
                              txn.ReadCurrent(s.v.type, s.v.id));
          if (!cur || cur->version != s.v.version - 1) {
            return Internal("read " + s.v.id + ": not the previous version");
          }
        }
        JC_RETURN_IF_ERROR(txn.Put(s.v, s.rows));
      }
      // The unit sees all of its writes, through every kind of read.
      JC_ASSIGN_OR_RETURN(int64_t live, txn.CountCurrent("Observation"));
      if (live != 3) return Internal("CountCurrent: " + std::to_string(live));
      JC_ASSIGN_OR_RETURN(auto found, txn.FindByToken("Observation", "code", "urn:s", "D", 10));
      if (found != std::vector<std::string>{"n3"}) return Internal("FindByToken");
      return Status::Ok();
    });
    ASSERT_TRUE(st.ok()) << st.error().message;
    auto conn = PgConnection::Open(db_.url);
    ASSERT_TRUE(conn.ok());
    batched = IndexRowDump(**conn);
    EXPECT_EQ(OrphanIndexRows(**conn), 0);
  }
  {
    auto opened = OpenPostgresStore(other.url);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    write_each(**opened, before);
    write_each(**opened, steps);
    auto conn = PgConnection::Open(other.url);
    ASSERT_TRUE(conn.ok());
    one_by_one = IndexRowDump(**conn);
  }
  DropDatabase(other.schema);
  EXPECT_EQ(batched, one_by_one);
  // Spot checks of what both must hold.
  auto has = [&](const std::string& prefix) {
    return std::any_of(batched.begin(), batched.end(),
                       [&](const std::string& l) { return l.starts_with(prefix); });
  };
  auto count = [&](const std::string& prefix) {
    return std::count_if(batched.begin(), batched.end(),
                         [&](const std::string& l) { return l.starts_with(prefix); });
  };
  EXPECT_EQ(count("idx_token Observation/x1 "), 2);   // B, C
  EXPECT_EQ(count("idx_token Observation/n1 "), 1);   // Z
  EXPECT_EQ(count("idx_number Observation/n1 "), 2);  // 0 once, 0.5
  EXPECT_EQ(count("idx_string Observation/n1 "), 1);  // "a\0b" is "ab"
  EXPECT_EQ(count("idx_composite Observation/n1 "), 1);
  EXPECT_EQ(count("idx_token Observation/n3 "), 1);
  EXPECT_FALSE(has("idx_string Patient/x2 "));
  EXPECT_TRUE(has("idx_string Patient/x3 "));
  EXPECT_TRUE(has("fts Patient/x3 "));
  EXPECT_FALSE(has("fts Observation/x1 "));
  EXPECT_FALSE(has("fts Observation/n1 "));
  EXPECT_EQ(count("history "), 12);
}

// The index tables declare no foreign key (migration 4; Put takes every rid from the resource
// row it has just written): every kind of write, failed units included, must still leave no
// index row without its live resource.
TEST_F(PostgresStoreTest, WritesLeaveNoIndexRowWithoutItsResource) {
  auto opened = OpenPostgresStore(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  auto rows = [](int n) {
    IndexRows r;
    for (int i = 0; i < n; ++i) {
      r.tokens.push_back({"code", "urn:s", std::to_string(i)});
      r.strings.push_back({"name", "n" + std::to_string(i), "N"});
    }
    r.full_text = {{"text", "content"}};
    return r;
  };
  for (int version = 1; version <= 4; ++version) {
    ASSERT_TRUE(store
                    .Write([&](IWriteTransaction& txn) -> Status {
                      for (int i = 0; i < 20; ++i) {
                        const bool tombstone = version == 3 && i % 2 == 0;
                        ResourceVersion v{"Observation", "o" + std::to_string(i), version, version,
                                          tombstone,     tombstone ? "" : "{}"};
                        JC_RETURN_IF_ERROR(txn.Put(v, tombstone ? IndexRows{} : rows(i % 5)));
                      }
                      return Status::Ok();
                    })
                    .ok());
  }
  Status failed = store.Write([&](IWriteTransaction& txn) -> Status {
    JC_RETURN_IF_ERROR(
        txn.Put(ResourceVersion{"Observation", "orphan", 1, 1, false, "{}"}, rows(3)));
    JC_RETURN_IF_ERROR(txn.Put(ResourceVersion{"Observation", "o1", 5, 5, false, "{}"}, rows(4)));
    JC_ASSIGN_OR_RETURN(int64_t n, txn.CountCurrent(""));  // the queue is written here
    if (n != 21) return Internal("count " + std::to_string(n));
    return Invalid("rolled back on purpose");
  });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "rolled back on purpose");
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok());
  EXPECT_EQ(OrphanIndexRows(**conn), 0);
  auto r = (*conn)->Query(
      "SELECT (SELECT count(*) FROM resource WHERE id = 'orphan'), "
      "(SELECT count(*) FROM idx_token), (SELECT count(*) FROM fts_resource), "
      "(SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND "
      " conrelid::regclass::text <> 'resource_history' AND connamespace = "
      " (SELECT oid FROM pg_namespace WHERE nspname = current_schema()))");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->Int(0, 0), 0);
  int64_t tokens = 0;
  for (int i = 0; i < 20; ++i) tokens += i % 5;
  EXPECT_EQ(r->Int(0, 1), tokens);  // version 4 of all 20 (3 was a tombstone for half)
  EXPECT_EQ(r->Int(0, 2), 20);
  EXPECT_EQ(r->Int(0, 3), 0);
}

// Every row of every index table, exactly (record output prints -0 as "-0", and floats in the
// shortest digits that round-trip), with the resource's type and id; then every resource and
// history row.
std::vector<std::string> ExactIndexRowDump(PgConnection& c) {
  std::string sql;
  for (const char* t : {"idx_token", "idx_string", "idx_date", "idx_number", "idx_quantity",
                        "idx_reference", "idx_uri", "idx_composite"}) {
    sql += std::string(sql.empty() ? "" : " UNION ALL ") + "SELECT '" + t +
           " ' || r.type || '/' || encode(r.id, 'hex') || ' ' || x::text FROM " + t +
           " x JOIN resource r USING (rid)";
  }
  sql +=
      " UNION ALL SELECT 'fts ' || r.type || '/' || encode(r.id, 'hex') || ' ' || x::text "
      "FROM fts_resource x JOIN resource r USING (rid)";
  // The resource and history rows too (hid aside: a surrogate key that nothing reads by).
  sql += " UNION ALL SELECT 'resource ' || x::text FROM resource x";
  sql +=
      " UNION ALL SELECT 'history ' || (rid, type, id, version, last_updated_us, deleted, json, "
      "shard_key)::text FROM resource_history";
  auto r = c.Query("SELECT line FROM (" + sql + ") x(line) ORDER BY line COLLATE \"C\"");
  EXPECT_TRUE(r.ok()) << r.error().message;
  std::vector<std::string> out;
  for (int i = 0; r.ok() && i < r->rows(); ++i) out.push_back(r->String(i, 0));
  return out;
}

// A flush with many new resources writes their resource, history and index rows by COPY
// (binary) instead of INSERT … unnest(): the rows must be exactly those of the unnest path for
// the same Puts, in every table, whatever the bytes — quotes, backslashes, non-ASCII text, NUL
// (stripped from text, kept in bytea), every byte value in bytea, -0.0 beside 0.0, the extremes of
// int8 and float8 — and beside updates of resources written before (which keep the unnest path).
TEST_F(PostgresStoreTest, CopyWritesTheSameRowsAsUnnest) {
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte += static_cast<char>(b);
  auto rows_of = [&](int i, int version) {
    const std::string n = std::to_string(i) + "." + std::to_string(version);
    IndexRows x;
    x.patient_compartment = i % 3 == 0 ? "" : "pat-" + std::to_string(i % 7);
    x.tokens = {{"code", "http://loinc.org", "8480-" + n},
                {"code", every_byte, every_byte + n},
                {"identifier", std::string("sys\0tem", 7), std::string("co\0de\\", 7)}};
    x.strings = {{"name", "o'brien \"q\" \\ " + n, "O'Brien \"Q\" \\\\N " + n},
                 {"name", "zhang 张 三 é 🩺 " + n, "Zhāng 张三 " + n},
                 {"name", std::string("nul\0inside", 10), std::string("NUL\0", 4) + n}};
    x.dates = {{"date", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()},
               {"date", -1, i}};
    x.numbers = {{"probability", 0.0},
                 {"probability", -0.0},  // equal to 0.0: one row, the first
                 {"probability", 5e-324},
                 {"probability", -1.7976931348623157e308},
                 {"probability", 0.1 * i}};
    x.quantities = {
        {"value-quantity", -0.0, "http://unitsofmeasure.org", "mm[Hg]", 1e-300, every_byte},
        {"value-quantity", 132.5 + i, "", "kg\\'\"", 132500.0 + i, "g"}};
    x.references = {{"subject", "Patient", "p\\'\"" + n, ""},
                    {"subject", "", every_byte, "http://x.org/a'b\\c?d=\"e\" 中 " + n},
                    {"performer", std::string("Pract\0itioner", 13), "pr" + n, ""}};
    x.uris = {{"url", "urn:o'k\\\"" + n}, {"url", std::string("urn:x\0y", 7) + n}};
    CompositeIndexRow comp;
    comp.param = "component-code-value-quantity";
    comp.system1 = every_byte;
    comp.code1 = "8480-6'\\" + n;
    comp.code2 = std::string("mm\0[Hg]", 7);
    comp.system2 = "http://unitsofmeasure.org";
    comp.number2 = version == 1 ? -0.0 : 120.25;
    comp.canonical_code2 = every_byte;
    comp.canonical_number2 = std::numeric_limits<double>::denorm_min();
    comp.start2_us = std::numeric_limits<int64_t>::min();
    comp.end2_us = -7;
    x.composites = {comp};
    if (i % 2 == 0) x.full_text = {{"narrative o'brien \\ 张三 " + n, "content \"q\" é " + n}};
    return x;
  };
  // The resources of each flush: 150 new; then 100 of them again (version 2: the replace path)
  // with 60 more new ones.
  auto flushes = [&] {
    std::vector<std::vector<std::pair<ResourceVersion, IndexRows>>> out(2);
    for (int i = 0; i < 150; ++i) {
      out[0].push_back({{i % 2 ? "Observation" : "Patient", "r'\\\"" + std::to_string(i), 1, i,
                         false, "{\"n\":" + std::to_string(i) + "}"},
                        rows_of(i, 1)});
    }
    for (int i = 0; i < 210; ++i) {
      if (i >= 100 && i < 150) continue;
      out[1].push_back({{i % 2 ? "Observation" : "Patient", "r'\\\"" + std::to_string(i),
                         i < 100 ? 2 : 1, 1000 + i, false, "{}"},
                        rows_of(i, i < 100 ? 2 : 1)});
    }
    return out;
  };
  // Writes the flushes with PendingPuts on `url` (copy_min_rows 0: never COPY); returns the
  // index rows and how many of them went by COPY.
  auto write = [&](const std::string& url, size_t copy_min_rows) {
    auto conn = PgConnection::Open(url);
    EXPECT_TRUE(conn.ok()) << conn.error().message;
    PgConnection& c = **conn;
    Status s = postgres::ApplyMigrations(c, postgres::Migrations());
    EXPECT_TRUE(s.ok()) << s.error().message;
    for (const auto& flush : flushes()) {
      postgres::PendingPuts queue;
      if (copy_min_rows > 0) queue.set_copy_min_rows(copy_min_rows);
      EXPECT_TRUE(c.Exec("BEGIN").ok());
      for (const auto& [v, rows] : flush) EXPECT_TRUE(queue.Add(v, rows).ok());
      s = queue.Flush(c);
      EXPECT_TRUE(s.ok()) << s.error().message;
      EXPECT_TRUE(c.Exec("COMMIT").ok());
    }
    return std::make_pair(ExactIndexRowDump(c), c.CopiedRows());
  };
  FreshDatabase other = CreateDatabase();
  const auto [copied, copied_rows] = write(db_.url, 100);
  const auto [unnested, unnested_copied_rows] = write(other.url, 0);
  DropDatabase(other.schema);
  EXPECT_EQ(unnested_copied_rows, 0u);
  // By COPY: in the first flush, the 150 new resources' resource and history rows and their
  // rows of every index table (3 tokens, 3 strings, 2 dates, 4 numbers — 0 and -0 are one, and
  // resource 0 has a third 0 —, 2 quantities, 3 references, 2 uris, 1 composite); in the second,
  // the 60 new resources' index rows but their composites (60 < 100, like their resource rows).
  EXPECT_EQ(copied_rows,
            150u * (2 + 3 + 3 + 2 + 4 + 2 + 3 + 2 + 1) - 1 + 60u * (3 + 3 + 2 + 4 + 2 + 3 + 2));
  ASSERT_EQ(copied.size(), unnested.size());
  for (size_t i = 0; i < copied.size(); ++i) ASSERT_EQ(copied[i], unnested[i]) << "row " << i;
  {
    // At 50, the second flush's 60 new resources go by COPY beside its 100 replaced ones: their
    // rids drawn in the same round trip as the others' upsert (pg_put.cpp, round trip 1).
    FreshDatabase third = CreateDatabase();
    const auto [mixed, mixed_rows] = write(third.url, 50);
    DropDatabase(third.schema);
    EXPECT_EQ(mixed_rows, copied_rows + 60u * (2 + 1));  // resource, history, composite rows
    ASSERT_EQ(mixed.size(), unnested.size());
    for (size_t i = 0; i < mixed.size(); ++i) ASSERT_EQ(mixed[i], unnested[i]) << "row " << i;
  }
  // Spot checks of what both hold.
  auto has = [&](const std::string& part) {
    return std::any_of(copied.begin(), copied.end(),
                       [&](const std::string& l) { return l.find(part) != std::string::npos; });
  };
  EXPECT_TRUE(has(",-0,"));         // -0.0 kept as written (the quantity's value)
  EXPECT_TRUE(has("5e-324"));       // the smallest denormal
  EXPECT_TRUE(has("nulinside"));    // NUL stripped from text
  EXPECT_TRUE(has("\\\\x000102"));  // every byte kept in bytea
  EXPECT_TRUE(has("张 三"));
  EXPECT_TRUE(has("-9223372036854775808"));
  EXPECT_EQ(std::count_if(copied.begin(), copied.end(),
                          [](const std::string& l) { return l.starts_with("idx_token "); }),
            210 * 3);
  EXPECT_EQ(std::count_if(copied.begin(), copied.end(),
                          [](const std::string& l) { return l.starts_with("history "); }),
            310);
}

// A new resource (version 1) whose type and id were taken meanwhile by a writer outside the
// write lock: by COPY, the flush fails on the (type, id) key as a conflict, like a stale Put by
// the upsert, and none of it stays.
TEST_F(PostgresStoreTest, ACopiedNewResourceThatExistsIsAConflict) {
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  PgConnection& c = **conn;
  ASSERT_TRUE(postgres::ApplyMigrations(c, postgres::Migrations()).ok());
  ASSERT_TRUE(c.Exec("INSERT INTO resource(type, id, version, last_updated_us, json) "
                     "VALUES ('Patient', 'p3', 1, 1, '')")
                  .ok());
  postgres::PendingPuts queue;
  queue.set_copy_min_rows(2);
  ASSERT_TRUE(c.Exec("BEGIN").ok());
  IndexRows rows;
  rows.tokens = {{"identifier", "urn:a", "x"}};
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(queue.Add({"Patient", "p" + std::to_string(i), 1, 10, false, "{}"}, rows).ok());
  }
  Status s = queue.Flush(c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kConflict) << s.error().message;
  EXPECT_NE(s.error().message.find("written concurrently"), std::string::npos) << s.error().message;
  EXPECT_TRUE(c.Exec("ROLLBACK").ok());
  EXPECT_TRUE(c.Healthy());
  auto r = c.Query(
      "SELECT (SELECT count(*) FROM resource), (SELECT count(*) FROM resource_history), "
      "(SELECT count(*) FROM idx_token)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->Int(0, 0), 1);
  EXPECT_EQ(r->Int(0, 1), 0);
  EXPECT_EQ(r->Int(0, 2), 0);
}

// PostgreSQL text cannot hold NUL; FHIR strings that contain one still store (as on SQLite),
// indexed without the NUL bytes.
TEST_F(PostgresStoreTest, ANulInIndexedTextIsIndexedWithoutIt) {
  auto opened = OpenPostgresStore(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IndexRows rows;
  rows.strings = {{"name", std::string("a\0b", 3), std::string("A\0B", 3)}};
  rows.uris = {{"url", std::string("urn:x\0y", 7)}};
  Status s = (*opened)->Write([&](IWriteTransaction& txn) {
    return txn.Put(ResourceVersion{"Patient", "p", 1, 1, false, "{}"}, rows);
  });
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok());
  auto r = (*conn)->Query("SELECT s.value, s.exact, u.value FROM idx_string s, idx_uri u");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->rows(), 1);
  EXPECT_EQ(r->String(0, 0), "ab");
  EXPECT_EQ(r->String(0, 1), "AB");
  EXPECT_EQ(r->String(0, 2), "urn:xy");
}

// Two stores on one database stand in for two jiceng processes: If-Match style read-check-write
// on the same resource from both, two threads each, has exactly one winner per round, and the
// history holds one row per version (no fork).
TEST_F(PostgresStoreTest, TwoProcessesIfMatchOnOneResourceHaveExactlyOneWinner) {
  auto a = OpenPostgresStore(db_.url);
  auto b = OpenPostgresStore(db_.url);
  ASSERT_TRUE(a.ok() && b.ok());
  IStore* stores[] = {a->get(), b->get()};
  ASSERT_TRUE(stores[0]
                  ->Write([](IWriteTransaction& txn) {
                    return txn.Put(ResourceVersion{"Patient", "p", 1, 1, false, "{}"}, {});
                  })
                  .ok());
  constexpr int kRounds = 25;
  constexpr int kContenders = 4;  // two per store
  for (int round = 0; round < kRounds; ++round) {
    const int64_t expected = round + 1;
    std::latch go(kContenders);
    std::vector<Status> results(kContenders);
    std::vector<std::thread> threads;
    for (int k = 0; k < kContenders; ++k) {
      threads.emplace_back([&, k] {
        go.arrive_and_wait();
        results[static_cast<size_t>(k)] =
            stores[k % 2]->Write([&](IWriteTransaction& txn) -> Status {
              JC_ASSIGN_OR_RETURN(std::optional<ResourceVersion> cur,
                                  txn.ReadCurrent("Patient", "p"));
              if (!cur || cur->version != expected) {
                return Error(ErrorCode::kPreconditionFailed, "version moved");
              }
              IndexRows idx;
              idx.tokens = {{"winner", "", std::to_string(k)}};
              return txn.Put(ResourceVersion{"Patient", "p", expected + 1, 100 * expected + k,
                                             false, "{\"k\":" + std::to_string(k) + "}"},
                             idx);
            });
      });
    }
    for (auto& t : threads) t.join();
    int winners = 0;
    for (const Status& s : results) {
      if (s.ok()) {
        ++winners;
      } else {
        EXPECT_EQ(s.error().code, ErrorCode::kPreconditionFailed) << s.error().message;
      }
    }
    ASSERT_EQ(winners, 1) << "round " << round;
  }
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok());
  auto r = (*conn)->Query(
      "SELECT count(*), count(DISTINCT version), max(version), "
      "(SELECT version FROM resource), (SELECT count(*) FROM idx_token) FROM resource_history");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->Int(0, 0), kRounds + 1);
  EXPECT_EQ(r->Int(0, 1), kRounds + 1);
  EXPECT_EQ(r->Int(0, 2), kRounds + 1);
  EXPECT_EQ(r->Int(0, 3), kRounds + 1);
  EXPECT_EQ(r->Int(0, 4), 1);  // only the last winner's index row
}

// Even a writer that ignores the write lock (a script, an older binary) cannot fork versions:
// it commits version 2 while a unit of work holds version 1 in hand; the unit's Put of its own
// version 2 is then a conflict, and the schema itself refuses a second row for a version.
TEST_F(PostgresStoreTest, VersionsCannotForkEvenAgainstAWriterWithoutTheLock) {
  auto opened = OpenPostgresStore(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  ASSERT_TRUE(store
                  .Write([](IWriteTransaction& txn) {
                    return txn.Put(ResourceVersion{"Patient", "p", 1, 1, false, "{}"}, {});
                  })
                  .ok());
  auto rogue = PgConnection::Open(db_.url);
  ASSERT_TRUE(rogue.ok());
  Status s = store.Write([&](IWriteTransaction& txn) -> Status {
    JC_ASSIGN_OR_RETURN(std::optional<ResourceVersion> cur, txn.ReadCurrent("Patient", "p"));
    if (!cur || cur->version != 1) return Internal("expected version 1");
    // Autocommitted behind the unit's back; a plain read holds no row lock, so it is not blocked.
    JC_RETURN_IF_ERROR((*rogue)->Exec(
        "UPDATE resource SET version = 2, json = '\\x7b7d'; "
        "INSERT INTO resource_history(rid, type, id, version, last_updated_us, deleted, json) "
        "SELECT rid, type, id, 2, 2, false, json FROM resource"));
    return txn.Put(ResourceVersion{"Patient", "p", 2, 3, false, "{\"mine\":true}"}, {});
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kConflict) << s.error().message;
  auto r = (*rogue)->Query("SELECT count(*), max(version) FROM resource_history");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Int(0, 0), 2);
  EXPECT_EQ(r->Int(0, 1), 2);
  Status dup = (*rogue)->Exec(
      "INSERT INTO resource_history(rid, type, id, version, last_updated_us, deleted, json) "
      "SELECT rid, type, id, 2, 9, false, json FROM resource");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
  EXPECT_EQ((*rogue)->LastSqlState(), "23505");
}

// The cross-process write lock held elsewhere for longer than write_lock_timeout_ms: the write
// fails with kUnavailable (503) and a message naming the lock, after about the timeout rather
// than never, and writes nothing; a writer that waits long enough goes through on release.
TEST_F(PostgresStoreTest, AWriteLockHeldElsewhereIsABoundedWaitThenUnavailable) {
  PostgresOptions options;
  options.write_lock_timeout_ms = 300;
  auto opened = OpenPostgresStore(db_.url, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  auto holder = PgConnection::Open(db_.url);
  ASSERT_TRUE(holder.ok());
  const std::string key =
      std::to_string(postgres::kLockSpace) + ", " + std::to_string(postgres::kWriteLock);
  ASSERT_TRUE((*holder)->Exec("SELECT pg_advisory_lock(" + key + ")").ok());
  auto write = [&](const std::string& id) {
    return store.Write([&](IWriteTransaction& txn) {
      return txn.Put(ResourceVersion{"Patient", id, 1, 1, false, "{}"}, {});
    });
  };
  const auto start = std::chrono::steady_clock::now();
  Status s = write("blocked");
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(s.error().message.find("write lock"), std::string::npos) << s.error().message;
  EXPECT_GE(waited, std::chrono::milliseconds(250));
  EXPECT_LT(waited, std::chrono::seconds(10));

  // Another process whose bound is generous waits for the holder instead.
  PostgresOptions patient_options;
  patient_options.write_lock_timeout_ms = 60000;
  auto patient = OpenPostgresStore(db_.url, patient_options);
  ASSERT_TRUE(patient.ok()) << patient.error().message;
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_TRUE((*holder)->Exec("SELECT pg_advisory_unlock(" + key + ")").ok());
  });
  Status late = (*patient)->Write([&](IWriteTransaction& txn) {
    return txn.Put(ResourceVersion{"Patient", "waited", 1, 1, false, "{}"}, {});
  });
  release.join();
  EXPECT_TRUE(late.ok()) << late.error().message;
  auto txn = store.BeginRead();
  ASSERT_TRUE(txn.ok());
  EXPECT_FALSE((*txn)->ReadCurrent("Patient", "blocked")->has_value());
  EXPECT_TRUE((*txn)->ReadCurrent("Patient", "waited")->has_value());
}

// The server drops every connection of the store (a restart, a failover, an operator's
// pg_terminate_backend): the next write reopens the writer connection before its unit runs
// and succeeds, and so does the next read.
TEST_F(PostgresStoreTest, ConnectionsDroppedByTheServerAreReopenedBeforeTheNextWrite) {
  const std::string app = db_.schema;
  auto opened = OpenPostgresStore(db_.url + "&application_name=" + app);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  auto write = [&](const std::string& id) {
    return store.Write([&](IWriteTransaction& txn) {
      return txn.Put(ResourceVersion{"Patient", id, 1, 1, false, "{}"}, {});
    });
  };
  ASSERT_TRUE(write("before").ok());
  { ASSERT_TRUE(store.BeginRead().ok()); }  // opens a pooled read connection
  auto admin = PgConnection::Open(BaseUrl());
  ASSERT_TRUE(admin.ok());
  auto killed = (*admin)->Query(
      "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
      "WHERE application_name = $1",
      postgres::PgParams().Text(app));
  ASSERT_TRUE(killed.ok()) << killed.error().message;
  ASSERT_GE(killed->Int(0, 0), 2);  // the writer and the read connection
  Status s = write("after");
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto txn = store.BeginRead();
  ASSERT_TRUE(txn.ok()) << txn.error().message;
  auto cur = (*txn)->ReadCurrent("Patient", "after");
  ASSERT_TRUE(cur.ok()) << cur.error().message;
  EXPECT_TRUE(cur->has_value());
}

// ---- read transactions in one round trip (BEGIN pipelined with the first statement, ROLLBACK
// with the connection's next statement or sent on its own after a few idle milliseconds) -------

Status PutPatient(IStore& store, const std::string& id, int64_t version,
                  const std::string& code = "A") {
  return store.Write([&](IWriteTransaction& txn) {
    IndexRows idx;
    idx.tokens = {{"code", "urn:s", code}};
    return txn.Put(ResourceVersion{"Patient", id, version, 100 * version, false,
                                   "{\"v\":" + std::to_string(version) + "}"},
                   idx);
  });
}

// Every statement of one read transaction, of every kind, sees the snapshot its first statement
// took, while the store's writer and a session outside jiceng commit in between; the pooled
// connection (one, so every transaction reuses it, the previous one's ROLLBACK still pending)
// then starts the next transaction on a fresh snapshot.
TEST_F(PostgresStoreTest, AReadTransactionKeepsOneSnapshotAcrossStatementsWhileWritersCommit) {
  PostgresOptions options;
  options.read_connections = 1;
  auto opened = OpenPostgresStore(db_.url, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  ASSERT_TRUE(PutPatient(store, "p", 1, "R0").ok());
  ASSERT_TRUE(PutPatient(store, "q", 1).ok());
  auto outsider = PgConnection::Open(db_.url);
  ASSERT_TRUE(outsider.ok());
  auto ids = [](const Result<std::vector<std::string>>& r) {
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : std::vector<std::string>{"<error>"};
  };

  for (int round = 0; round < 3; ++round) {
    const int64_t v = round + 1;  // p's version when the transaction starts
    const std::string code = "R" + std::to_string(round);  // p's token at the start
    const std::string next_code = "R" + std::to_string(round + 1);
    const std::string q_json = "{\"q\":" + std::to_string(round) + "}";
    auto txn = store.BeginRead();
    ASSERT_TRUE(txn.ok()) << txn.error().message;
    IReadTransaction& r = **txn;
    // A commit between BeginRead and the first statement is seen: the snapshot is the first
    // statement's, as with a BEGIN sent on its own.
    ASSERT_TRUE(PutPatient(store, "late" + std::to_string(round), 1).ok());
    auto first = r.ReadCurrent("Patient", "p");
    ASSERT_TRUE(first.ok()) << first.error().message;
    ASSERT_TRUE(first->has_value());
    EXPECT_EQ((*first)->version, v);
    EXPECT_TRUE(r.ReadCurrent("Patient", "late" + std::to_string(round))->has_value());

    // The store's writer commits p's next version (with a new token) and a new resource; a
    // session outside jiceng rewrites q's current row.
    ASSERT_TRUE(PutPatient(store, "p", v + 1, next_code).ok());
    ASSERT_TRUE(PutPatient(store, "new" + std::to_string(round), 1).ok());
    ASSERT_TRUE((*outsider)
                    ->Query("UPDATE resource SET json = $1 WHERE id = 'q'",
                            postgres::PgParams().Bytes(q_json))
                    .ok());

    auto again = r.ReadCurrent("Patient", "p");
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ((*again)->version, v);
    EXPECT_EQ((*again)->json, "{\"v\":" + std::to_string(v) + "}");
    EXPECT_FALSE(r.ReadVersion("Patient", "p", v + 1)->has_value());
    EXPECT_FALSE(r.ReadCurrent("Patient", "new" + std::to_string(round))->has_value());
    auto q = r.ReadCurrent("Patient", "q");
    ASSERT_TRUE(q.ok()) << q.error().message;
    EXPECT_NE((*q)->json, q_json);
    auto count = r.CountCurrent("Patient");
    ASSERT_TRUE(count.ok()) << count.error().message;
    EXPECT_EQ(*count, 3 + 2 * round);  // p, q, late0…late<round>, new0…new<round - 1>
    auto history = r.History(HistoryQuery{"Patient", "p", std::nullopt, std::nullopt, 0, 50});
    ASSERT_TRUE(history.ok()) << history.error().message;
    EXPECT_EQ(history->total, v);
    EXPECT_EQ(ids(r.FindByToken("Patient", "code", "urn:s", code, 10)),
              std::vector<std::string>{"p"});
    EXPECT_EQ(ids(r.FindByToken("Patient", "code", "urn:s", next_code, 10)),
              std::vector<std::string>{});
    auto list = r.ListCurrent("Patient", 0, 100);
    ASSERT_TRUE(list.ok()) << list.error().message;
    EXPECT_EQ(static_cast<int64_t>(list->size()), *count);
    txn->reset();

    // The next transaction (same connection) sees all of it.
    auto fresh = store.BeginRead();
    ASSERT_TRUE(fresh.ok());
    EXPECT_EQ((*(*fresh)->ReadCurrent("Patient", "p"))->version, v + 1);
    EXPECT_EQ((*(*fresh)->ReadCurrent("Patient", "q"))->json, q_json);
    EXPECT_TRUE((*fresh)->ReadCurrent("Patient", "new" + std::to_string(round))->has_value());
    EXPECT_EQ(ids((*fresh)->FindByToken("Patient", "code", "urn:s", next_code, 10)),
              std::vector<std::string>{"p"});
  }
}

// An ended read transaction whose connection stays idle in the pool does not hold its snapshot
// and locks until the connection's next use: the pool sends its ROLLBACK within milliseconds, so
// DDL (a migration, an operator's ALTER TABLE) is not blocked by idle readers.
TEST_F(PostgresStoreTest, AnEndedReadTransactionSoonHoldsNoLockWhileItsConnectionIsIdle) {
  PostgresOptions options;
  options.read_connections = 1;
  auto opened = OpenPostgresStore(db_.url + "&application_name=" + db_.schema, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  ASSERT_TRUE(PutPatient(store, "p", 1).ok());
  auto admin = PgConnection::Open(db_.url);
  ASSERT_TRUE(admin.ok());
  for (int round = 0; round < 3; ++round) {
    {
      auto txn = store.BeginRead();
      ASSERT_TRUE(txn.ok());
      ASSERT_TRUE((*txn)->ReadCurrent("Patient", "p")->has_value());
    }
    // Waits at most 5 s for the lock: a reader still in its transaction would hold it forever.
    const auto start = std::chrono::steady_clock::now();
    Status locked = (*admin)->Exec(
        "BEGIN; SET LOCAL lock_timeout = '5s'; LOCK TABLE resource IN ACCESS EXCLUSIVE MODE; "
        "ROLLBACK");
    EXPECT_TRUE(locked.ok()) << locked.error().message;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
    // The backend releases its locks when the ROLLBACK runs and reports itself idle just after:
    // the lock above can be granted a moment before the state says so (seen once in CI).
    std::optional<Result<postgres::PgResult>> states;
    for (int poll = 0; poll < 200; ++poll) {
      states = (*admin)->Query(
          "SELECT count(*) FILTER (WHERE state <> 'idle'), count(*) FROM pg_stat_activity "
          "WHERE application_name = $1",
          postgres::PgParams().Text(db_.schema));
      ASSERT_TRUE(states->ok()) << states->error().message;
      if ((*states)->Int(0, 0) == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ((*states)->Int(0, 0), 0);  // the writer and the reader, both idle
    EXPECT_EQ((*states)->Int(0, 1), 2);
    // And the connection, its ROLLBACK's answer still unread, serves the next transaction.
    auto txn = store.BeginRead();
    ASSERT_TRUE(txn.ok());
    auto cur = (*txn)->ReadCurrent("Patient", "p");
    ASSERT_TRUE(cur.ok()) << cur.error().message;
    EXPECT_TRUE(cur->has_value());
  }
}

// A statement that fails inside a pipelined read (the first, sent with the BEGIN, or a later
// one) is that call's error with its SQLSTATE's code; the transaction's other calls fail rather
// than answer from an aborted transaction, and the pool's one connection then serves the next
// transactions normally.
TEST_F(PostgresStoreTest, AFailingStatementInAPipelinedReadLeavesThePoolHealthy) {
  PostgresOptions options;
  options.read_connections = 1;
  options.pool_wait_ms = 2000;  // a connection that never came back would fail the test fast
  auto opened = OpenPostgresStore(db_.url, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  ASSERT_TRUE(PutPatient(store, "p", 1).ok());
  const std::string bad_type = "Pat\xff";  // not UTF-8: the server refuses the text parameter
  auto healthy = [&] {
    auto txn = store.BeginRead();
    ASSERT_TRUE(txn.ok()) << txn.error().message;
    auto cur = (*txn)->ReadCurrent("Patient", "p");
    ASSERT_TRUE(cur.ok()) << cur.error().message;
    ASSERT_TRUE(cur->has_value());
    EXPECT_EQ((*cur)->version, 1);
    auto count = (*txn)->CountCurrent("Patient");
    ASSERT_TRUE(count.ok()) << count.error().message;
    EXPECT_EQ(*count, 1);
  };
  for (int round = 0; round < 3; ++round) {
    {  // The first statement fails: the one pipelined with the BEGIN.
      auto txn = store.BeginRead();
      ASSERT_TRUE(txn.ok());
      auto r = (*txn)->ReadCurrent(bad_type, "p");
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().code, ErrorCode::kInvalid) << r.error().message;
      EXPECT_NE(r.error().message.find("22021"), std::string::npos) << r.error().message;
      auto after = (*txn)->ReadCurrent("Patient", "p");
      EXPECT_FALSE(after.ok());  // the transaction is aborted, never a silent answer
    }
    healthy();
    {  // A later statement fails.
      auto txn = store.BeginRead();
      ASSERT_TRUE(txn.ok());
      ASSERT_TRUE((*txn)->ReadCurrent("Patient", "p").ok());
      auto r = (*txn)->FindByToken(bad_type, "code", std::nullopt, "A", 10);
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().code, ErrorCode::kInvalid) << r.error().message;
    }
    healthy();
    {  // A transaction that runs nothing, and one whose only statement fails.
      ASSERT_TRUE(store.BeginRead().ok());
      auto txn = store.BeginRead();
      ASSERT_TRUE(txn.ok());
      EXPECT_FALSE((*txn)->CountCurrent(bad_type).ok());
    }
    healthy();
  }
}

// The same at the connection level, where the statement's prepare (sent in the same pipeline)
// or the BEGIN itself fails: the right error and SQLSTATE, nothing cached for the failed
// statement, and the connection usable afterwards.
TEST_F(PostgresStoreTest, APipelinedPrepareOrBeginFailureLeavesTheConnectionUsable) {
  auto opened = PgConnection::Open(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  PgConnection& c = **opened;
  const std::string begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
  auto isolation = [&] {
    auto r = c.Query("SELECT current_setting('transaction_isolation')");
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r->String(0, 0) : std::string("<error>");
  };
  for (int round = 0; round < 2; ++round) {
    c.BeginLazily(begin);
    auto bad = c.Query("SELEC 1");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(c.LastSqlState(), "42601");
    EXPECT_NE(bad.error().message.find("prepare"), std::string::npos) << bad.error().message;
    EXPECT_TRUE(c.Healthy());
    EXPECT_TRUE(c.InTransaction());  // the BEGIN ran; the error aborted its transaction
    c.EndLazily();
    EXPECT_TRUE(c.EndPending());
    EXPECT_FALSE(c.InTransaction());

    // The pending ROLLBACK, the BEGIN and the statement go out together.
    c.BeginLazily(begin);
    auto one = c.Query("SELECT $1::int8 + 1", postgres::PgParams().Int(41));
    ASSERT_TRUE(one.ok()) << one.error().message;
    EXPECT_EQ(one->Int(0, 0), 42);
    EXPECT_FALSE(c.EndPending());
    EXPECT_EQ(isolation(), "repeatable read");
    auto again = c.Query("SELEC 1");  // still not prepared: fails the same way
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(c.LastSqlState(), "42601");
    c.EndLazily();
    c.SendPendingEnd();  // sent now, its answer read with the next statement
    EXPECT_FALSE(c.EndPending());
    EXPECT_FALSE(c.InTransaction());

    c.BeginLazily("BEGIN ISOLATION LEVEL NONSENSE");
    auto refused = c.Query("SELECT 1");
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message.find("begin"), std::string::npos) << refused.error().message;
    EXPECT_TRUE(c.Healthy());
    EXPECT_FALSE(c.InTransaction());
    c.EndLazily();  // nothing to end
    EXPECT_FALSE(c.EndPending());

    // Synchronous calls after pipelined ones: Exec sends a pending ROLLBACK in front of its own
    // statements, or first reads the answer of one sent on its own.
    c.BeginLazily(begin);
    ASSERT_TRUE(c.Query("SELECT 1").ok());
    c.EndLazily();
    ASSERT_TRUE(c.Exec("SELECT 1").ok());
    EXPECT_FALSE(c.InTransaction());
    EXPECT_EQ(isolation(), "read committed");  // no transaction left over
    c.BeginLazily(begin);
    ASSERT_TRUE(c.Query("SELECT 1").ok());
    c.EndLazily();
    c.SendPendingEnd();
    ASSERT_TRUE(c.Exec("SELECT 1").ok());
    EXPECT_FALSE(c.InTransaction());
    EXPECT_EQ(isolation(), "read committed");
  }
}

// Every connection runs without JIT (pg_connection.cpp, kSessionSettings), after a reconnect too:
// a walk costed in the millions was compiled for 130-270 ms before its few milliseconds of work.
TEST_F(PostgresStoreTest, ConnectionsRunWithoutJit) {
  auto opened = PgConnection::Open(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  PgConnection& c = **opened;
  auto jit = [&] {
    auto r = c.Query("SELECT current_setting('jit'), current_setting('TimeZone')");
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r->String(0, 0) + " " + r->String(0, 1) : std::string("<error>");
  };
  EXPECT_EQ(jit(), "off UTC");
  ASSERT_TRUE(c.Reset().ok());
  EXPECT_EQ(jit(), "off UTC");
}

// CopyIn (binary COPY … FROM STDIN, outside any pipeline): several COPYs in one call, each row
// as sent; a BEGIN queued lazily rides in front of them; a COPY the server refuses is the call's
// error, skips the COPYs after it, and leaves the connection usable.
TEST_F(PostgresStoreTest, CopyInSendsRowsAsTheyAreAndAFailureLeavesTheConnectionUsable) {
  auto conn = PgConnection::Open(db_.url);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  PgConnection& c = **conn;
  ASSERT_TRUE(c.Exec("CREATE TABLE a (t text, b bytea, i int8, f float8, x bool); "
                     "CREATE TABLE b (i int8 PRIMARY KEY)")
                  .ok());
  postgres::PgCopyRows a(5), b(1), bad(1);
  a.Row().Text("it's \\ \"q\" 张").Bytes(std::string("\0\xff\n", 3)).Int(-5).Float(-0.0).Bool(true);
  a.Row().Text("").Bytes("").Int(std::numeric_limits<int64_t>::max()).Float(1e-310).Bool(false);
  b.Row().Int(1);
  b.Row().Int(2);
  bad.Row().Int(1);  // a duplicate key
  const std::string copy_a = "COPY a FROM STDIN (FORMAT binary)";
  const std::string copy_b = "COPY b FROM STDIN (FORMAT binary)";
  c.BeginLazily("BEGIN");
  Status s = c.CopyIn({{&copy_a, &a}, {&copy_b, &b}});
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(c.InTransaction());
  EXPECT_EQ(c.CopiedRows(), 4u);
  auto r = c.Query("SELECT t, b, i, f::text, x, (SELECT count(*) FROM b) FROM a ORDER BY i");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->rows(), 2);
  EXPECT_EQ(r->String(0, 0), "it's \\ \"q\" 张");
  EXPECT_EQ(r->String(0, 1), std::string("\0\xff\n", 3));
  EXPECT_EQ(r->Int(0, 2), -5);
  EXPECT_EQ(r->String(0, 3), "-0");
  EXPECT_TRUE(r->Bool(0, 4));
  EXPECT_EQ(r->String(1, 0), "");
  EXPECT_EQ(r->Int(1, 2), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(r->String(1, 3), "1e-310");
  EXPECT_FALSE(r->Bool(1, 4));
  EXPECT_EQ(r->Int(0, 5), 2);
  ASSERT_TRUE(c.Exec("COMMIT").ok());

  s = c.CopyIn({{&copy_b, &bad}, {&copy_a, &a}});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kConflict) << s.error().message;
  EXPECT_EQ(c.LastSqlState(), "23505");
  EXPECT_TRUE(c.Healthy());
  r = c.Query("SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->Int(0, 0), 2);  // the COPY after the failed one did not run
  EXPECT_EQ(r->Int(0, 1), 2);
}

// Statements deferred (PgConnection::Defer, a search's SET LOCALs) go out with the next
// statement, in its round trip: behind a lazy BEGIN not sent yet, or inside the transaction
// already begun. They take effect in that transaction only, a failing one fails that statement
// and leaves the connection usable, those of a transaction that ends first are dropped, and
// nothing is queued outside a transaction.
TEST_F(PostgresStoreTest, AStatementDeferredRidesWithTheNextOne) {
  auto opened = PgConnection::Open(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  PgConnection& c = **opened;
  auto timeout = [&] {
    auto r = c.Query("SELECT current_setting('statement_timeout')");
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r->String(0, 0) : std::string("<error>");
  };
  EXPECT_FALSE(c.Defer("SET LOCAL statement_timeout = 1234"));  // no transaction
  EXPECT_EQ(timeout(), "0");
  for (int round = 0; round < 2; ++round) {  // the second round: every text prepared already
    c.BeginLazily("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    EXPECT_TRUE(c.Defer("SET LOCAL statement_timeout = 1234"));
    EXPECT_FALSE(c.InTransaction());  // nothing sent yet
    EXPECT_EQ(timeout(), "1234ms");
    EXPECT_TRUE(c.InTransaction());
    EXPECT_TRUE(c.Defer("SET LOCAL statement_timeout = 99"));  // begun: before the next one
    EXPECT_TRUE(c.Defer("SET LOCAL lock_timeout = 77"));
    EXPECT_EQ(timeout(), "99ms");
    auto lock = c.Query("SELECT current_setting('lock_timeout')");
    ASSERT_TRUE(lock.ok()) << lock.error().message;
    EXPECT_EQ(lock->String(0, 0), "77ms");
    EXPECT_TRUE(c.Exec("SELECT 1").ok());  // nothing deferred: sent alone
    EXPECT_TRUE(c.Defer("SET LOCAL statement_timeout = 5"));
    EXPECT_TRUE(c.Exec("SELECT 1").ok());  // the simple protocol carries it too
    EXPECT_EQ(timeout(), "5ms");
    c.EndLazily();
    EXPECT_FALSE(c.Defer("SET LOCAL statement_timeout = 6"));  // its end is pending
    EXPECT_EQ(timeout(), "0");  // LOCAL: gone with the transaction
  }
  c.BeginLazily("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  EXPECT_TRUE(c.Defer("SET LOCAL statement_timeout = nonsense"));
  auto refused = c.Query("SELECT 1");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(c.LastSqlState(), "22023");
  EXPECT_TRUE(c.Healthy());
  c.EndLazily();
  EXPECT_EQ(timeout(), "0");
  EXPECT_FALSE(c.InTransaction());
  // Inside a begun transaction, a failing one fails the next statement as well.
  c.BeginLazily("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  ASSERT_TRUE(c.Query("SELECT 1").ok());
  EXPECT_TRUE(c.Defer("SET LOCAL statement_timeout = nonsense"));
  refused = c.Query("SELECT 2");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(c.LastSqlState(), "22023");
  EXPECT_TRUE(c.Healthy());
  c.EndLazily();
  EXPECT_EQ(timeout(), "0");
  // A begin queued with a statement behind it, then ended unsent: nothing to end.
  c.BeginLazily("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  EXPECT_TRUE(c.Defer("SET LOCAL statement_timeout = 1234"));
  c.EndLazily();
  EXPECT_FALSE(c.EndPending());
  EXPECT_EQ(timeout(), "0");
  // Not in a transaction an error aborted (it would be refused in front of the ROLLBACK), and a
  // ROLLBACK TO SAVEPOINT drops what was deferred before it.
  c.BeginLazily("BEGIN");
  ASSERT_TRUE(c.Exec("SAVEPOINT w").ok());
  EXPECT_FALSE(c.Query("SELECT 1/0").ok());
  EXPECT_FALSE(c.Defer("SET LOCAL statement_timeout = 7"));
  ASSERT_TRUE(c.Exec("ROLLBACK TO SAVEPOINT w").ok());
  EXPECT_TRUE(c.Defer("SET LOCAL statement_timeout = nonsense"));
  EXPECT_TRUE(c.Exec("ROLLBACK TO SAVEPOINT w; RELEASE SAVEPOINT w").ok());
  EXPECT_EQ(timeout(), "0");  // the transaction is usable, the bad setting never sent
  c.EndLazily();
  // Deferred in a begun transaction that then ends: dropped, never seen by the next one.
  c.BeginLazily("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  ASSERT_TRUE(c.Query("SELECT 1").ok());
  EXPECT_TRUE(c.Defer("SET statement_timeout = 4321"));  // not LOCAL: would outlive it if sent
  c.EndLazily();
  EXPECT_EQ(timeout(), "0");
}

// A statement planned for its values each time (PgConnection::Query's plan_each_time, a search
// over many rows) is sent unnamed, alone or in a pipeline with a pending BEGIN: it answers, is
// never kept as a prepared statement, fails like any other, and the same text sent the usual way
// is prepared once.
TEST_F(PostgresStoreTest, AStatementPlannedEachTimeIsNeverPrepared) {
  auto opened = PgConnection::Open(db_.url);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  PgConnection& c = **opened;
  const std::string sql = "SELECT $1::int8 + 1";
  auto prepared = [&] {
    auto r = c.Query("SELECT count(*) FROM pg_prepared_statements WHERE statement = $1",
                     postgres::PgParams().Text(sql));
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r->Int(0, 0) : -1;
  };
  auto one = c.Query(sql, postgres::PgParams().Int(41), true);
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(one->Int(0, 0), 42);
  EXPECT_EQ(prepared(), 0);
  c.BeginLazily("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  one = c.Query(sql, postgres::PgParams().Int(1), true);  // with the BEGIN, in one pipeline
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(one->Int(0, 0), 2);
  EXPECT_TRUE(c.InTransaction());
  EXPECT_EQ(prepared(), 0);
  auto bad = c.Query("SELEC $1::int8", postgres::PgParams().Int(1), true);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(c.LastSqlState(), "42601");
  EXPECT_TRUE(c.Healthy());
  c.EndLazily();
  one = c.Query(sql, postgres::PgParams().Int(2));  // the usual way, after the pending ROLLBACK
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(one->Int(0, 0), 3);
  EXPECT_EQ(prepared(), 1);
  one = c.Query(sql, postgres::PgParams().Int(3), true);
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(one->Int(0, 0), 4);
  EXPECT_EQ(prepared(), 1);
}

// The server drops a pooled read connection whose previous transaction's ROLLBACK is pending or
// sent with its answer unread: the next read transaction reopens it and answers, since nothing
// of it had run.
TEST_F(PostgresStoreTest, APooledConnectionDroppedWithAnUnreadRollbackIsReopened) {
  const std::string app = db_.schema;
  PostgresOptions options;
  options.read_connections = 1;
  auto opened = OpenPostgresStore(db_.url + "&application_name=" + app, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  ASSERT_TRUE(PutPatient(store, "p", 1).ok());
  auto admin = PgConnection::Open(BaseUrl());
  ASSERT_TRUE(admin.ok());
  for (int round = 0; round < 4; ++round) {
    {
      auto txn = store.BeginRead();
      ASSERT_TRUE(txn.ok());
      ASSERT_TRUE((*txn)->ReadCurrent("Patient", "p").ok());
    }
    // Odd rounds: long enough for the pool to send the ROLLBACK on its own.
    if (round % 2 == 1) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto killed = (*admin)->Query(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
        "WHERE application_name = $1 AND pid <> pg_backend_pid()",
        postgres::PgParams().Text(app));
    ASSERT_TRUE(killed.ok()) << killed.error().message;
    ASSERT_GE(killed->Int(0, 0), 1);
    auto txn = store.BeginRead();
    ASSERT_TRUE(txn.ok()) << txn.error().message;
    auto cur = (*txn)->ReadCurrent("Patient", "p");
    ASSERT_TRUE(cur.ok()) << cur.error().message;
    EXPECT_TRUE(cur->has_value());
  }
}

// IStore::ReadCurrent runs one statement outside any read transaction: it sees what was
// committed before it, every time (no snapshot left over from an earlier read on its pooled
// connection), shares the pool with read transactions (their pending ROLLBACK goes out in front
// of it), and reopens a connection the server dropped.
TEST_F(PostgresStoreTest, AReadOutsideATransactionSeesWhatWasCommittedBeforeIt) {
  const std::string app = db_.schema + "_once";
  PostgresOptions options;
  options.read_connections = 1;  // every read below shares one connection
  auto opened = OpenPostgresStore(db_.url + "&application_name=" + app, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  auto read = [&](const std::string& id) -> int64_t {  // the version, 0 if none, -1 on error
    auto r = store.ReadCurrent("Patient", id);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return !r.ok() ? -1 : *r ? (*r)->version : 0;
  };
  EXPECT_EQ(read("p"), 0);
  for (int64_t v = 1; v <= 3; ++v) {
    ASSERT_TRUE(PutPatient(store, "p", v).ok());
    EXPECT_EQ(read("p"), v);
    auto cur = store.ReadCurrent("Patient", "p");
    ASSERT_TRUE(cur.ok() && cur->has_value());
    EXPECT_EQ((*cur)->json, "{\"v\":" + std::to_string(v) + "}");
  }
  {  // A read transaction holds its snapshot; a read outside it sees the newer commit.
    auto txn = store.BeginRead();
    ASSERT_TRUE(txn.ok());
    ASSERT_EQ((*(*txn)->ReadCurrent("Patient", "p"))->version, 3);
    ASSERT_TRUE(PutPatient(store, "p", 4).ok());
    EXPECT_EQ((*(*txn)->ReadCurrent("Patient", "p"))->version, 3);
  }
  // The transaction's connection comes back with its ROLLBACK pending: it rides in front of the
  // read, which sees version 4, and leaves nothing open.
  EXPECT_EQ(read("p"), 4);
  auto admin = PgConnection::Open(BaseUrl());
  ASSERT_TRUE(admin.ok());
  auto open_txns = [&] {
    auto r = (*admin)->Query(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'",
        postgres::PgParams().Text(app));
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r->Int(0, 0) : -1;
  };
  EXPECT_EQ(open_txns(), 0);
  // An error is the caller's alone: the next read on the same connection answers.
  auto bad = store.ReadCurrent("Patient\xff", "p");  // not UTF-8: refused by the server
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(read("p"), 4);
  // A connection the server dropped is reopened by the read itself.
  auto killed = (*admin)->Query(
      "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
      "WHERE application_name = $1 AND pid <> pg_backend_pid()",
      postgres::PgParams().Text(app));
  ASSERT_TRUE(killed.ok()) << killed.error().message;
  EXPECT_EQ(read("p"), 4);
  EXPECT_EQ(open_txns(), 0);
}

// Reads by id from many threads share one pipeline at a time (read_pipelines = 1, so they are
// combined): each gets its own resource or its own "not found", and a read whose statement
// fails (a type that is not UTF-8) fails alone while the others in its pipeline are answered.
TEST_F(PostgresStoreTest, ConcurrentReadsByIdCombinedIntoPipelinesEachGetTheirOwnAnswer) {
  PostgresOptions options;
  options.read_connections = 2;
  options.read_pipelines = 1;
  auto opened = OpenPostgresStore(db_.url, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  constexpr int kPatients = 40;
  for (int i = 0; i < kPatients; ++i)
    ASSERT_TRUE(PutPatient(store, "p" + std::to_string(i), i + 1).ok());
  std::atomic<int> wrong{0};
  std::atomic<int> failed_as_expected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < 150; ++n) {
        const int i = (t * 7 + n) % (kPatients + 5);  // 5 of every 45 are not stored
        if (t == 3 && n % 10 == 0) {
          auto bad = store.ReadCurrent("Patient\xff", "p1");
          if (bad.ok())
            ++wrong;
          else
            ++failed_as_expected;
          continue;
        }
        auto r = store.ReadCurrent("Patient", "p" + std::to_string(i));
        if (!r.ok()) {
          ++wrong;
          continue;
        }
        if (i >= kPatients) {
          if (r->has_value()) ++wrong;
        } else if (!r->has_value() || (*r)->version != i + 1 ||
                   (*r)->json != "{\"v\":" + std::to_string(i + 1) + "}") {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(failed_as_expected.load(), 15);
}

// PostgresOptions::read_url: the read pool (reads by id, read transactions, searches) goes to
// the read database, while writes and a unit of work's own reads stay on the written one. Here a
// second schema stands in for a replica, so that where each read went shows in what it finds.
TEST_F(PostgresStoreTest, ReadsGoToTheReadUrlWhileWritesAndTheirReadsStayOnThePrimary) {
  FreshDatabase replica = CreateDatabase();
  {
    auto other = OpenPostgresStore(replica.url);
    ASSERT_TRUE(other.ok()) << other.error().message;
    ASSERT_TRUE(PutPatient(**other, "only-on-replica", 1, "R").ok());
  }
  PostgresOptions options;
  options.read_url = replica.url;
  auto opened = OpenPostgresStore(db_.url, options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  IStore& store = **opened;
  ASSERT_TRUE(PutPatient(store, "p", 1, "A").ok());
  auto read = store.ReadCurrent("Patient", "p");
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_FALSE(read->has_value());  // written to the primary, not (yet) on the "replica"
  auto there = store.ReadCurrent("Patient", "only-on-replica");
  ASSERT_TRUE(there.ok() && there->has_value());
  {
    auto txn = store.BeginRead();
    ASSERT_TRUE(txn.ok());
    SearchQuery q;
    q.type = "Patient";
    auto found = (*txn)->Search(q);
    ASSERT_TRUE(found.ok()) << found.error().message;
    ASSERT_EQ(found->entries.size(), 1u);
    EXPECT_EQ(found->entries[0].id, "only-on-replica");
  }
  // A unit of work reads what it is about to change from the primary.
  std::optional<int64_t> seen;
  Status s = store.Write([&](IWriteTransaction& txn) -> Status {
    JC_ASSIGN_OR_RETURN(auto cur, txn.ReadCurrent("Patient", "p"));
    if (cur) seen = cur->version;
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(seen, 1);
  store.Close();
  DropDatabase(replica.schema);
}

// A read database without a PostgreSQL one is a configuration error, not silently ignored.
TEST(StoreFactory, AReadUrlNeedsAPostgresDatabase) {
  StoreOptions o;
  o.pg_read_url = "postgresql://replica/db";
  auto s = OpenStore(::testing::TempDir() + "/read-url.db", o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("db_read_url"), std::string::npos);
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
