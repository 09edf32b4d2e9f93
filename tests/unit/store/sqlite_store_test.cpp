// The SQLite backend: the conformance suite plus what only this backend has (schema
// migrations, the file, the read pool).
#include "store/sqlite/sqlite_store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <thread>
#include <vector>

#include "base/metrics.h"
#include "store/sqlite/bulk_index_build.h"
#include "store/sqlite/connection.h"
#include "store/sqlite/index_keys.h"
#include "store/sqlite/index_runs.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/sqlite/wal_coalescing_vfs.h"
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

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance, ::testing::Values(SqliteBackend()), BackendName);
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
  auto fixed = sqlite::OpenSqliteStoreWithMigrations(path_, {},
                                                     WithExtra("CREATE TABLE ok_part(x INTEGER)"));
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

// Index rows of `n` tokens and a date, different per version so that updates replace rows.
IndexRows RowsFor(int version, int n) {
  IndexRows rows;
  for (int i = 0; i < n; ++i) {
    rows.tokens.push_back({"code", "http://loinc.org", std::to_string(version * 100 + i)});
  }
  rows.dates.push_back({"date", version * int64_t{1000}, version * int64_t{1000} + 1});
  rows.strings.push_back({"code:text", "blood pressure " + std::to_string(version), "BP"});
  return rows;
}

Status PutNext(IStore& s, const std::string& id, int n) {
  return s.Write([&](IWriteTransaction& txn) -> Status {
    JC_ASSIGN_OR_RETURN(auto cur, txn.ReadCurrent("Observation", id));
    ResourceVersion v;
    v.type = "Observation";
    v.id = id;
    v.version = cur ? cur->version + 1 : 1;
    v.last_updated_us = 1700000000000000 + v.version;
    v.deleted = v.version % 3 == 0;  // every third version is a delete (a tombstone)
    v.json = v.deleted ? "" : R"({"resourceType":"Observation","id":")" + id + R"("})";
    return txn.Put(v, v.deleted ? IndexRows{} : RowsFor(static_cast<int>(v.version), n));
  });
}

// Runs `attempt(w, i)` for i in [0, each) on each of `threads` threads at once; how many
// returned false.
int CountFailures(int threads, int each, const std::function<bool(int, int)>& attempt) {
  std::vector<std::thread> workers;
  std::atomic<int> failures{0};
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; i < each; ++i) {
        if (!attempt(w, i)) ++failures;
      }
    });
  }
  for (auto& t : workers) t.join();
  return failures.load();
}

// Foreign keys are declared but not enforced on the hot path (see connection.cpp): every kind
// of write must still leave no index or history row without its resource, and a sound file.
TEST_F(SqliteStoreTest, WritesKeepReferentialIntegrity) {
  {
    auto store = OpenSqliteStore(path_);
    ASSERT_TRUE(store.ok());
    for (int round = 0; round < 5; ++round) {
      for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(PutNext(**store, "o" + std::to_string(i), 3 + i % 4).ok());
      }
    }
    // A failed unit leaves nothing behind either.
    Status failed = (*store)->Write([](IWriteTransaction& txn) -> Status {
      ResourceVersion v{"Observation", "orphan", 1, 1, false, "{}"};
      JC_RETURN_IF_ERROR(txn.Put(v, RowsFor(1, 5)));
      return Invalid("rolled back on purpose");
    });
    ASSERT_FALSE(failed.ok());
    (*store)->Close();
  }
  auto conn = sqlite::Connection::Open(path_, {});
  ASSERT_TRUE(conn.ok());
  auto fk = (*conn)->QueryText("PRAGMA foreign_key_check");
  ASSERT_TRUE(fk.ok());
  EXPECT_FALSE(fk->has_value()) << "a row references a missing parent in table "
                                << fk->value_or("");
  auto ok = (*conn)->QueryText("PRAGMA integrity_check");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->value_or(""), "ok");
  // The rows of the latest versions only: 20 resources, 5 versions each (version 5 is live for
  // all of them since 3 is the only tombstone among 1..5), RowsFor(5, n) tokens each.
  auto tokens = (*conn)->QueryInt("SELECT count(*) FROM idx_token");
  ASSERT_TRUE(tokens.ok());
  int64_t expected = 0;
  for (int i = 0; i < 20; ++i) expected += 3 + i % 4;
  EXPECT_EQ(tokens->value_or(-1), expected);
  auto orphan = (*conn)->QueryInt("SELECT count(*) FROM resource WHERE id = 'orphan'");
  ASSERT_TRUE(orphan.ok());
  EXPECT_EQ(orphan->value_or(-1), 0);
}

TEST(IndexKeysTest, ManyRowsWithRepeatedStringsRoundTripAndShareTheDictionary) {
  // 300 token rows over 3 params, 7 systems and 120 codes (more distinct strings than the
  // encoder's smallest table), plus composites, the kind with the most text fields.
  IndexRows rows;
  for (int i = 0; i < 300; ++i) {
    rows.tokens.push_back({"p" + std::to_string(i % 3), "http://s" + std::to_string(i % 7),
                           "code-" + std::to_string(i % 120)});
  }
  for (int i = 0; i < 40; ++i) {
    CompositeIndexRow c;
    c.param = "combo";
    c.system1 = "http://loinc.org";
    c.code1 = "c1-" + std::to_string(i);
    c.code2 = "c2-" + std::to_string(i % 5);
    c.system2 = "http://loinc.org";
    c.canonical_code2 = "mm[Hg]";
    c.number2 = i;
    rows.composites.push_back(c);
  }
  const std::string blob = sqlite::EncodeIndexKeys(rows);
  auto back = sqlite::DecodeIndexKeys(blob);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->tokens.size(), rows.tokens.size());
  for (size_t i = 0; i < rows.tokens.size(); ++i) {
    EXPECT_EQ(back->tokens[i].param, rows.tokens[i].param) << i;
    EXPECT_EQ(back->tokens[i].system, rows.tokens[i].system) << i;
    EXPECT_EQ(back->tokens[i].code, rows.tokens[i].code) << i;
  }
  ASSERT_EQ(back->composites.size(), rows.composites.size());
  for (size_t i = 0; i < rows.composites.size(); ++i) {
    EXPECT_EQ(back->composites[i].code1, rows.composites[i].code1) << i;
    EXPECT_EQ(back->composites[i].code2, rows.composites[i].code2) << i;
    EXPECT_EQ(back->composites[i].canonical_code2, "mm[Hg]") << i;
    EXPECT_EQ(back->composites[i].number2, i) << i;
  }
  // Each distinct string is stored once: 3 params, 7 systems and 120 codes of the tokens, then
  // "combo", "http://loinc.org", 40 code1, "c2-0" … "c2-4" and "mm[Hg]". The count is the
  // varint after the version byte (178: two bytes).
  const unsigned distinct = 3 + 7 + 120 + 1 + 1 + 40 + 5 + 1;
  ASSERT_GT(blob.size(), 3u);
  EXPECT_EQ((static_cast<unsigned char>(blob[1]) & 0x7Fu) |
                (static_cast<unsigned>(static_cast<unsigned char>(blob[2])) << 7),
            distinct);
  // Encoding again (the encoder's table is reused by the thread) gives the same bytes.
  EXPECT_EQ(sqlite::EncodeIndexKeys(rows), blob);
}

TEST(IndexKeysTest, RoundTripsEveryKindExactly) {
  IndexRows rows;
  rows.tokens.push_back({"code", "http://loinc.org", "8480-6"});
  rows.tokens.push_back({"status", "", "final"});
  rows.strings.push_back({"name", "zhang san", "张三"});
  rows.dates.push_back({"date", std::numeric_limits<int64_t>::min(), 1700000000000000});
  rows.numbers.push_back({"probability", 0.1 + 0.2});
  rows.quantities.push_back({"value-quantity", 129.73979437732424, "http://unitsofmeasure.org",
                             "mm[Hg]", 129.73979437732424, "mm[Hg]"});
  rows.references.push_back({"subject", "Patient", "p1", ""});
  rows.uris.push_back({"url", "http://example.org/fhir/ValueSet/x"});
  const std::string blob = sqlite::EncodeIndexKeys(rows);
  auto back = sqlite::DecodeIndexKeys(blob);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(sqlite::EncodeIndexKeys(*back), blob);
  EXPECT_EQ(back->strings[0].exact, "张三");
  EXPECT_EQ(back->dates[0].start_us, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(back->numbers[0].value, 0.1 + 0.2);  // bit for bit: deletes match by primary key
  EXPECT_EQ(back->quantities[0].value, 129.73979437732424);
  // Damaged or foreign blobs are errors, never reads past the end.
  for (size_t cut = 0; cut < blob.size(); ++cut) {
    EXPECT_FALSE(sqlite::DecodeIndexKeys(std::string_view(blob).substr(0, cut)).ok()) << cut;
  }
  EXPECT_FALSE(sqlite::DecodeIndexKeys(blob + "x").ok());
  // Version 1 (strings inline) still decodes: one token row (param "a", system "", code "b"),
  // then no rows of the seven other kinds.
  const std::string v1(
      "\x01\x01\x01"
      "a"
      "\x00"
      "\x01"
      "b"
      "\x00\x00\x00\x00\x00\x00\x00",
      14);
  auto old = sqlite::DecodeIndexKeys(v1);
  ASSERT_TRUE(old.ok()) << old.error().message;
  ASSERT_EQ(old->tokens.size(), 1u);
  EXPECT_EQ(old->tokens[0].param, "a");
  EXPECT_EQ(old->tokens[0].code, "b");
  EXPECT_FALSE(sqlite::DecodeIndexKeys("\x02").ok());
}

// One kind's rows read as views (DecodeKindRows, for probes and sort keys) are the same fields
// as the full decode's, in the row types' field order; the kinds before and after it are
// skipped; a damaged blob is an error wherever it is cut.
TEST(IndexKeysTest, OneKindDecodesAsViewsOfTheSameFields) {
  IndexRows rows;
  rows.tokens.push_back({"code", "http://loinc.org", "8480-6"});
  rows.tokens.push_back({"code", "http://snomed.info/sct", "271649006"});
  rows.strings.push_back({"name", "zhang san", "张三"});
  rows.dates.push_back({"date", -5, 1700000000000000});
  rows.numbers.push_back({"probability", 0.1 + 0.2});
  rows.quantities.push_back({"value-quantity", 129.5, "http://unitsofmeasure.org", "mm[Hg]",
                             17290.5, "g.m-1.s-2"});
  rows.references.push_back({"subject", "Patient", "p1", "http://x/Patient/p1"});
  rows.uris.push_back({"url", "http://example.org/fhir/ValueSet/x"});
  rows.composites.push_back({"code-value-quantity", "http://loinc.org", "8480-6", "mm[Hg]",
                             "http://unitsofmeasure.org", 129.5, "g.m-1.s-2", 17290.5, 3, 4});
  const std::string blob = sqlite::EncodeIndexKeys(rows);
  sqlite::KindRows view;
  auto bits = [](auto v) {
    uint64_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
  };
  ASSERT_TRUE(sqlite::DecodeKindRows(blob, SearchKind::kToken, view).ok());
  ASSERT_EQ(view.rows(), 2u);
  EXPECT_EQ(view.at(1, 0).text, "code");
  EXPECT_EQ(view.at(1, 1).text, "http://snomed.info/sct");
  EXPECT_EQ(view.at(1, 2).text, "271649006");
  ASSERT_TRUE(sqlite::DecodeKindRows(blob, SearchKind::kString, view).ok());
  ASSERT_EQ(view.rows(), 1u);
  EXPECT_EQ(view.at(0, 2).text, "张三");
  ASSERT_TRUE(sqlite::DecodeKindRows(blob, SearchKind::kDate, view).ok());
  EXPECT_EQ(view.at(0, 1).bits, bits(int64_t{-5}));
  EXPECT_EQ(view.at(0, 2).bits, bits(int64_t{1700000000000000}));
  ASSERT_TRUE(sqlite::DecodeKindRows(blob, SearchKind::kQuantity, view).ok());
  ASSERT_EQ(view.width, 6u);
  EXPECT_EQ(view.at(0, 1).bits, bits(129.5));
  EXPECT_EQ(view.at(0, 3).text, "mm[Hg]");
  EXPECT_EQ(view.at(0, 4).bits, bits(17290.5));
  EXPECT_EQ(view.at(0, 5).text, "g.m-1.s-2");
  ASSERT_TRUE(sqlite::DecodeKindRows(blob, SearchKind::kReference, view).ok());
  EXPECT_EQ(view.at(0, 1).text, "Patient");
  EXPECT_EQ(view.at(0, 2).text, "p1");
  ASSERT_TRUE(sqlite::DecodeKindRows(blob, SearchKind::kComposite, view).ok());
  ASSERT_EQ(view.width, 10u);
  EXPECT_EQ(view.at(0, 2).text, "8480-6");
  EXPECT_EQ(view.at(0, 5).bits, bits(129.5));
  EXPECT_EQ(view.at(0, 9).bits, bits(int64_t{4}));
  // A kind that never occurs in the keys (not an idx_* kind): no rows.
  ASSERT_TRUE(sqlite::DecodeKindRows(blob, SearchKind::kChain, view).ok());
  EXPECT_EQ(view.rows(), 0u);
  // Cut anywhere before the composites (the last kind), reading them fails cleanly.
  for (size_t cut = 0; cut < blob.size(); ++cut) {
    EXPECT_FALSE(
        sqlite::DecodeKindRows(std::string_view(blob).substr(0, cut), SearchKind::kComposite, view)
            .ok())
        << cut;
  }
}

// jc_sort_key reads one kind of a resource's keys: the smallest value of the parameter
// ascending, the largest descending (a date by its start, resp. its end), a token's code but
// never an empty one, a reference's target id, and NULL when the parameter has no row.
TEST(IndexKeysTest, SortKeyOfEachKind) {
  IndexRows rows;
  rows.tokens = {{"code", "urn:s", "b"}, {"code", "urn:s", ""}, {"code", "urn:t", "a2"}};
  rows.strings = {{"name", "li", "Li"}, {"name", "wang", "Wang"}};
  rows.dates = {{"date", 100, 900}, {"date", 50, 60}};
  rows.numbers = {{"probability", 0.5}, {"probability", -2.0}};
  rows.quantities = {{"value-quantity", 120.0, "u", "mm[Hg]", 120.0, "mm[Hg]"},
                     {"value-quantity", 80.0, "u", "mm[Hg]", 80.0, "mm[Hg]"}};
  rows.references = {{"subject", "Patient", "p9", ""}, {"subject", "Patient", "p1", ""}};
  rows.uris = {{"url", "http://b"}, {"url", "http://a"}};
  const std::string blob = sqlite::EncodeIndexKeys(rows);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  ASSERT_EQ(sqlite::RegisterSortKeyFunction(db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT jc_sort_key(?1, ?2, ?3, ?4)", -1, &st, nullptr),
            SQLITE_OK);
  auto key = [&](SearchKind kind, const char* param, bool descending) {
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
    sqlite3_bind_int(st, 2, static_cast<int>(kind));
    sqlite3_bind_text(st, 3, param, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, descending ? 1 : 0);
    EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    switch (sqlite3_column_type(st, 0)) {
      case SQLITE_NULL: return std::string("NULL");
      case SQLITE_INTEGER: return std::to_string(sqlite3_column_int64(st, 0));
      case SQLITE_FLOAT: return fmt::format("{}", sqlite3_column_double(st, 0));
      default: return std::string(text ? text : "");
    }
  };
  EXPECT_EQ(key(SearchKind::kToken, "code", false), "a2");  // the empty code is no sort value
  EXPECT_EQ(key(SearchKind::kToken, "code", true), "b");
  EXPECT_EQ(key(SearchKind::kString, "name", false), "li");
  EXPECT_EQ(key(SearchKind::kString, "name", true), "wang");
  EXPECT_EQ(key(SearchKind::kDate, "date", false), "50");   // the smallest start
  EXPECT_EQ(key(SearchKind::kDate, "date", true), "900");   // the largest end
  EXPECT_EQ(key(SearchKind::kNumber, "probability", false), "-2");
  EXPECT_EQ(key(SearchKind::kQuantity, "value-quantity", false), "80");
  EXPECT_EQ(key(SearchKind::kQuantity, "value-quantity", true), "120");
  EXPECT_EQ(key(SearchKind::kReference, "subject", false), "p1");
  EXPECT_EQ(key(SearchKind::kUri, "url", true), "http://b");
  EXPECT_EQ(key(SearchKind::kString, "family", false), "NULL");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// A database written by a binary that knew only migrations 1 to 3 (index rows found through
// per-table rid indexes) is migrated to index keys: afterwards an update still replaces the old
// rows, a delete removes them, and sorting by a parameter works.
TEST_F(SqliteStoreTest, MigrationFourBackfillsIndexKeys) {
  auto all = sqlite::Migrations();
  ASSERT_GE(all.size(), 4u);
  {
    // What that binary wrote: resources m0..m5 at version 1 (m0 at version 2), each with
    // RowsFor(version, 2 + i) index rows, straight into the v2 tables.
    auto old = sqlite::Connection::Open(path_, {});
    ASSERT_TRUE(old.ok());
    ASSERT_TRUE((*old)->Exec("PRAGMA journal_mode=WAL").ok());
    ASSERT_TRUE(sqlite::ApplyMigrations(**old, all.subspan(0, 3)).ok());
    for (int i = 0; i < 6; ++i) {
      const int version = i == 0 ? 2 : 1;
      const std::string rid = std::to_string(i + 1);
      std::string sql =
          "INSERT INTO resource(rid, type, id, version, last_updated_us, json) "
          "VALUES (" +
          rid + ", 'Observation', 'm" + std::to_string(i) + "', " + std::to_string(version) +
          ", 1, '{}');";
      const IndexRows rows = RowsFor(version, 2 + i);
      for (const auto& t : rows.tokens) {
        sql += "INSERT INTO idx_token(type, param, code, system, rid) VALUES ('Observation', '" +
               t.param + "', '" + t.code + "', '" + t.system + "', " + rid + ");";
      }
      for (const auto& d : rows.dates) {
        sql += "INSERT INTO idx_date(type, param, start_us, end_us, rid) VALUES ('Observation', '" +
               d.param + "', " + std::to_string(d.start_us) + ", " + std::to_string(d.end_us) +
               ", " + rid + ");";
      }
      if (i == 1) {
        sql +=
            "INSERT INTO idx_composite(type, param, code1, system1, code2, system2, number2, "
            "start2_us, end2_us, rid, canonical_code2, canonical_number2) VALUES "
            "('Observation', 'code-value-quantity', '8480-6', 'http://loinc.org', 'mm[Hg]', "
            "'http://unitsofmeasure.org', 129.73979437732424, 0, 0, 2, 'mm[Hg]', "
            "129.73979437732424);";
      }
      ASSERT_TRUE((*old)->Exec(sql.c_str()).ok()) << sql;
    }
  }
  auto store = OpenSqliteStore(path_);
  ASSERT_TRUE(store.ok()) << store.error().message;
  // Sorted by the date parameter: version 1 rows have date 1000, m0 (version 2) 2000, so m0
  // comes last (without its keys it would come first, by the id tiebreak).
  auto txn = (*store)->BeginRead();
  ASSERT_TRUE(txn.ok());
  SearchQuery q;
  q.type = "Observation";
  q.sort.push_back({"date", SearchKind::kDate, false});
  auto page = (*txn)->Search(q);
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->entries.size(), 6u);
  EXPECT_EQ(page->entries[0].id, "m1");
  EXPECT_EQ(page->entries[5].id, "m0");
  txn->reset();
  // m1 to version 2: its version 1 rows (codes 1xx) must go, version 2 rows (2xx) come.
  ASSERT_TRUE(PutNext(**store, "m1", 3).ok());
  (*store)->Close();
  auto conn = sqlite::Connection::Open(path_, {});
  ASSERT_TRUE(conn.ok());
  auto stale = (*conn)->QueryInt(
      "SELECT count(*) FROM idx_token t JOIN resource r ON r.rid = t.rid "
      "WHERE r.id = 'm1' AND t.code NOT LIKE '2__'");
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->value_or(-1), 0) << "version 1 rows of m1 survived the update";
  auto v2rows = (*conn)->QueryInt(
      "SELECT count(*) FROM idx_token t JOIN resource r ON r.rid = t.rid WHERE r.id = 'm1'");
  ASSERT_TRUE(v2rows.ok());
  EXPECT_EQ(v2rows->value_or(-1), 3);
  auto composites = (*conn)->QueryInt("SELECT count(*) FROM idx_composite");
  ASSERT_TRUE(composites.ok());
  EXPECT_EQ(composites->value_or(-1), 0) << "m1's composite row survived its update";
  auto rid_indexes = (*conn)->QueryInt(
      "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name LIKE 'idx_%_by_rid'");
  ASSERT_TRUE(rid_indexes.ok());
  EXPECT_EQ(rid_indexes->value_or(-1), 0);
}

// jc_rows presents a resource's own index rows with the idx_* columns: the rows a search probe
// tests must be exactly the rows the index tables hold for that resource.
TEST_F(SqliteStoreTest, JcRowsPresentsAResourcesOwnIndexRows) {
  {
    auto store = OpenSqliteStore(path_);
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(PutNext(**store, "j" + std::to_string(i), 2 + i).ok());
    ASSERT_TRUE(PutNext(**store, "j0", 2).ok());  // j0 at version 2: rows replaced
    (*store)->Close();
  }
  auto conn = sqlite::Connection::Open(path_, {});
  ASSERT_TRUE(conn.ok());
  auto count = [&](const std::string& sql) {
    auto n = (*conn)->QueryInt(sql.c_str());
    EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error().message);
    return n.ok() ? n->value_or(-1) : -1;
  };
  const std::string keys = "(SELECT keys FROM resource_index_keys WHERE rid = r.rid)";
  const std::string token = std::to_string(static_cast<int>(SearchKind::kToken));
  const std::string date = std::to_string(static_cast<int>(SearchKind::kDate));
  // Every token row of every resource, through the probe and through the table, agree.
  EXPECT_EQ(count("SELECT count(*) FROM resource r, jc_rows(" + keys + ", " + token + ")"),
            count("SELECT count(*) FROM idx_token"));
  EXPECT_EQ(count("SELECT count(*) FROM resource r, jc_rows(" + keys + ", " + token +
                  ") j JOIN idx_token t ON t.rid = r.rid AND t.param = j.param AND "
                  "t.code = j.code AND t.system = j.system"),
            count("SELECT count(*) FROM idx_token"));
  // Conditions read the same columns: j0's version 2 date row is [2000, 2001).
  EXPECT_EQ(count("SELECT count(*) FROM resource r WHERE EXISTS (SELECT 1 FROM jc_rows(" + keys +
                  ", " + date + ") WHERE param = 'date' AND start_us >= 2000 AND end_us <= 2001)"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM resource r WHERE EXISTS (SELECT 1 FROM jc_rows(" + keys +
                  ", " + token + ") WHERE param = 'code' AND code = '100')"),
            3);  // j1, j2, j3 at version 1 (j0 moved to codes 2xx)
  // A resource without keys has no rows; a damaged blob is an error, not a crash.
  EXPECT_EQ(count("SELECT count(*) FROM jc_rows(NULL, " + token + ")"), 0);
  auto damaged =
      (*conn)->QueryInt(("SELECT count(*) FROM jc_rows(x'01ff', " + token + ")").c_str());
  EXPECT_FALSE(damaged.ok());
}

// Under a steady stream of commits the background checkpoint never sees the whole WAL copied;
// the writer's catch-up must still let the WAL restart so the -wal file stays bounded.
TEST_F(SqliteStoreTest, TheWalStaysBoundedUnderContinuousWrites) {
  SqliteOptions options;
  options.wal_autocheckpoint_pages = 50;
  options.wal_restart_pages = 100;
  auto store = OpenSqliteStore(path_, options);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(
      CountFailures(
          4, 400,
          [&](int w, int i) {
            return PutNext(**store, "w" + std::to_string(w) + "-" + std::to_string(i % 50), 6).ok();
          }),
      0);
  const auto wal_bytes = fs::file_size(path_ + "-wal");
  // Without restarts this workload writes well over 1,600 commits' worth of frames (> 6 MB).
  // With them the file holds about two checkpoint thresholds plus one group's frames.
  EXPECT_LT(wal_bytes, uintmax_t{2} << 20) << "WAL grew to " << wal_bytes;
  (*store)->Close();
}

// The WAL-coalescing VFS (store/sqlite/wal_coalescing_vfs.h) holds -wal writes back: every
// committed frame must still reach readers on other connections, a checkpoint and a reopened
// file, including transactions larger than its buffer and the unix VFS's largest single write,
// and a rolled-back transaction whose frames were already written. synchronous=NORMAL: no fsync
// at COMMIT, so only the barrier before publishing frames writes them out.
TEST_F(SqliteStoreTest, WalCoalescingKeepsEveryCommittedFrameVisibleAndDurable) {
  auto Open = [&] {
    sqlite::ConnectionOptions options;
    options.cache_kib = 64;  // small: large transactions spill frames before COMMIT
    auto conn = sqlite::Connection::Open(path_, options);
    EXPECT_TRUE(conn.ok()) << (conn.ok() ? "" : conn.error().message);
    return std::move(conn).value();
  };
  auto writer = Open();
  char* vfs_name = nullptr;
  ASSERT_EQ(sqlite3_file_control(writer->handle(), "main", SQLITE_FCNTL_VFSNAME, &vfs_name),
            SQLITE_OK);
  ASSERT_NE(vfs_name, nullptr);
  EXPECT_NE(std::string(vfs_name).find("jiceng-wal-coalescing"), std::string::npos) << vfs_name;
  sqlite3_free(vfs_name);
  ASSERT_TRUE(writer
                  ->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                         "PRAGMA wal_autocheckpoint=0;"
                         "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")
                  .ok());
  auto reader = Open();
  auto Count = [&](sqlite::Connection& conn) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(conn.handle(), "SELECT count(*), sum(length(v)) FROM t", -1, &stmt,
                                 nullptr),
              SQLITE_OK);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    std::pair<int64_t, int64_t> out{sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1)};
    sqlite3_finalize(stmt);
    return out;
  };
  // Small commits, then one of ~3 MiB (past the 1 MiB buffer and the 128 KiB write limit).
  int64_t rows = 0;
  for (int i = 0; i < 50; ++i, ++rows) {
    ASSERT_TRUE(
        writer
            ->Exec(
                ("INSERT INTO t VALUES (" + std::to_string(rows) + ", randomblob(3000))").c_str())
            .ok());
    ASSERT_EQ(Count(*reader).first, rows + 1) << "a reader must see each commit at once";
  }
  ASSERT_TRUE(writer
                  ->Exec("BEGIN; INSERT INTO t WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL "
                         "SELECT x + 1 FROM s WHERE x < 999) SELECT x + 1000, randomblob(3000) "
                         "FROM s; COMMIT")
                  .ok());
  rows += 1000;
  EXPECT_EQ(Count(*reader), std::make_pair(rows, rows * 3000));
  // Frames of a transaction that spilled and then rolled back are overwritten by the next one.
  ASSERT_TRUE(writer
                  ->Exec("BEGIN; INSERT INTO t WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL "
                         "SELECT x + 1 FROM s WHERE x < 499) SELECT x + 5000, randomblob(3000) "
                         "FROM s; ROLLBACK")
                  .ok());
  ASSERT_TRUE(writer->Exec("INSERT INTO t VALUES (9999, randomblob(3000))").ok());
  rows += 1;
  EXPECT_EQ(Count(*reader), std::make_pair(rows, rows * 3000));
  // A checkpoint copies from the file what was buffered; the file then passes integrity_check.
  ASSERT_TRUE(reader->Exec("PRAGMA wal_checkpoint(PASSIVE)").ok());
  reader.reset();
  writer.reset();
  auto reopened = Open();
  EXPECT_EQ(Count(*reopened), std::make_pair(rows, rows * 3000));
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(reopened->handle(), "PRAGMA integrity_check", -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "ok");
  sqlite3_finalize(stmt);
}

// Statement journals live in memory in that VFS, and move to a temp file past a limit: ROLLBACK
// TO must restore every page from either.
TEST_F(SqliteStoreTest, SavepointRollbackRestoresPagesFromTheMemoryJournalAndAfterItsSpill) {
  for (const size_t limit : {size_t{64} << 20, size_t{256} << 10}) {
    SCOPED_TRACE("memory journal limit " + std::to_string(limit));
    sqlite::SetMemoryJournalLimitForTesting(limit);
    fs::remove(path_);
    fs::remove(path_ + "-wal");
    fs::remove(path_ + "-shm");
    sqlite::ConnectionOptions options;
    options.cache_kib = 256;
    auto conn = sqlite::Connection::Open(path_, options);
    ASSERT_TRUE(conn.ok());
    auto& c = **conn;
    ASSERT_TRUE(c.Exec("PRAGMA journal_mode=WAL; CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT);"
                       "INSERT INTO t WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL SELECT x + 1 "
                       "FROM s WHERE x < 1999) SELECT x, printf('%0500d', x) FROM s")
                    .ok());
    // The savepoint rewrites every row (~1 MB of pages journaled), then is rolled back.
    ASSERT_TRUE(c.Exec("BEGIN; SAVEPOINT unit; UPDATE t SET v = upper(hex(randomblob(250)));"
                       "ROLLBACK TO unit; RELEASE unit; COMMIT")
                    .ok());
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(c.handle(), "SELECT count(*) FROM t WHERE v = printf('%0500d', k)",
                                 -1, &stmt, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(stmt, 0), 2000);
    sqlite3_finalize(stmt);
  }
  sqlite::SetMemoryJournalLimitForTesting(size_t{64} << 20);
}

// Both places for the WAL's fsync (SqliteOptions::sync_off_writer): concurrent writers are each
// acknowledged once, an acknowledged write is visible to the next read, and everything is there
// after reopening. With the sync thread, its fsyncs are counted (and there are fewer of them
// than groups when groups pile up behind one).
TEST_F(SqliteStoreTest, WritesAreAcknowledgedAfterTheWalSyncInBothSyncModes) {
  auto syncs = [] {
    auto& h = metrics::DbSeconds().Add({{"backend", "sqlite"}, {"op", "wal_sync"}},
                                       metrics::LatencyBuckets());
    return h.Collect().histogram.sample_count;
  };
  for (const bool off_writer : {true, false}) {
    SCOPED_TRACE(off_writer ? "sync thread" : "fsync in COMMIT");
    fs::remove(path_);
    fs::remove(path_ + "-wal");
    fs::remove(path_ + "-shm");
    const auto syncs_before = syncs();
    {
      SqliteOptions options;
      options.sync_off_writer = off_writer;
      auto store = OpenSqliteStore(path_, options);
      ASSERT_TRUE(store.ok());
      EXPECT_EQ(CountFailures(4, 50,
                              [&](int w, int i) {
                                const std::string id =
                                    "s" + std::to_string(w) + "-" + std::to_string(i);
                                if (!PutNext(**store, id, 2).ok()) return false;
                                auto read = (*store)->BeginRead();
                                if (!read.ok()) return false;
                                auto current = (*read)->ReadCurrent("Observation", id);
                                return current.ok() && current->has_value();
                              }),
                0);
      (*store)->Close();
    }
    const auto synced = syncs() - syncs_before;
    if (off_writer) {
      EXPECT_GT(synced, 0u);
      EXPECT_LE(synced, 200u);
    } else {
      EXPECT_EQ(synced, 0u);
    }
    auto conn = sqlite::Connection::Open(path_, {});
    ASSERT_TRUE(conn.ok());
    auto n = (*conn)->QueryInt("SELECT count(*) FROM resource WHERE id LIKE 's%'");
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(n->value_or(-1), 200);
  }
}

// Full text of recent writes waits in fts_pending until a batch has gathered (then a single
// transaction indexes it all), a _text/_content search needs it, the writer idles, or the store
// closes; rows left by a crash are indexed after the next open. A search always sees every
// write acknowledged before it, the latest version's text only.
TEST_F(SqliteStoreTest, FullTextWaitsForABatchYetEverySearchSeesIt) {
  auto put = [](IStore& store, const std::string& id, int64_t version, const std::string& text) {
    return store.Write([&](IWriteTransaction& txn) -> Status {
      IndexRows rows;
      rows.full_text = {{"", text}};
      return txn.Put(ResourceVersion{"Patient", id, version, version, false, "{}"}, rows);
    });
  };
  auto content = [](const std::string& word) {
    SearchQuery q;
    q.type = "Patient";
    SearchClause c;
    c.param = "_content";
    c.kind = SearchKind::kText;
    c.any_of.emplace_back().words = {word};
    q.all_of.push_back(c);
    return q;
  };
  auto found = [&](IStore& store, const std::string& word) {
    const SearchQuery q = content(word);
    auto txn = store.BeginRead();
    EXPECT_TRUE(txn.ok());
    if (!txn.ok()) return std::string("<begin>");
    auto page = (*txn)->Search(q);
    EXPECT_TRUE(page.ok()) << (page.ok() ? "" : page.error().message);
    std::string ids;
    if (page.ok())
      for (const ResourceVersion& v : page->entries) ids += (ids.empty() ? "" : ",") + v.id;
    return ids;
  };
  auto count = [&](const char* table) {
    auto conn = sqlite::Connection::Open(path_, {});
    EXPECT_TRUE(conn.ok());
    if (!conn.ok()) return int64_t{-1};
    auto n = (*conn)->QueryInt(fmt::format("SELECT count(*) FROM {}", table).c_str());
    EXPECT_TRUE(n.ok());
    return n.ok() ? n->value_or(-1) : -1;
  };
  SqliteOptions options;
  options.full_text_batch = 4;
  options.full_text_idle_ms = 0;  // never while idle: each step below is then deterministic
  {
    auto opened = OpenSqliteStore(path_, options);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    IStore& store = **opened;
    ASSERT_TRUE(put(store, "a", 1, "alpha").ok());
    ASSERT_TRUE(put(store, "b", 1, "alpha").ok());
    ASSERT_TRUE(put(store, "c", 1, "alpha").ok());
    EXPECT_EQ(count("fts_pending"), 3);
    EXPECT_EQ(count("fts_resource"), 0);
    EXPECT_EQ(found(store, "alpha"), "a,b,c");  // indexed first
    EXPECT_EQ(count("fts_pending"), 0);
    EXPECT_EQ(count("fts_resource"), 3);
    // A new version's text waits, and replaces the indexed one when it is indexed.
    ASSERT_TRUE(put(store, "a", 2, "beta").ok());
    EXPECT_EQ(count("fts_pending"), 1);
    EXPECT_EQ(found(store, "alpha"), "b,c");
    EXPECT_EQ(found(store, "beta"), "a");
    // Two versions waiting: only the latest counts.
    ASSERT_TRUE(put(store, "b", 2, "gamma").ok());
    ASSERT_TRUE(put(store, "b", 3, "delta").ok());
    EXPECT_EQ(found(store, "gamma"), "");
    EXPECT_EQ(found(store, "delta"), "b");
    // A batch: 3 waiting, the fourth write indexes all of them in its transaction.
    for (const char* id : {"d", "e", "f"}) ASSERT_TRUE(put(store, id, 1, "epsilon").ok());
    EXPECT_EQ(count("fts_pending"), 3);
    ASSERT_TRUE(put(store, "g", 1, "epsilon").ok());
    EXPECT_EQ(count("fts_pending"), 0);
    EXPECT_EQ(count("fts_resource"), 7);
    // A unit of work that searches sees its own group's text and what waits.
    ASSERT_TRUE(put(store, "h", 1, "zeta").ok());
    std::string in_unit;
    ASSERT_TRUE(
        store
            .Write([&](IWriteTransaction& txn) -> Status {
              IndexRows rows;
              rows.full_text = {{"", "zeta"}};
              JC_RETURN_IF_ERROR(txn.Put(ResourceVersion{"Patient", "i", 1, 1, false, "{}"}, rows));
              JC_ASSIGN_OR_RETURN(SearchPage page, txn.Search(content("zeta")));
              for (const ResourceVersion& v : page.entries) in_unit += v.id;
              return Status::Ok();
            })
            .ok());
    EXPECT_EQ(in_unit, "hi");
    ASSERT_TRUE(put(store, "j", 1, "eta").ok());
    EXPECT_EQ(count("fts_pending"), 1);
    store.Close();  // indexes what waits
  }
  EXPECT_EQ(count("fts_pending"), 0);
  {
    // As a crash leaves it: a resource's text written and acknowledged, not yet indexed.
    auto conn = sqlite::Connection::Open(path_, {});
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE((*conn)
                    ->Exec("INSERT INTO fts_pending(rid, fresh, narrative, content) SELECT rid, "
                           "0, '', 'theta' FROM resource WHERE id = 'c'")
                    .ok());
  }
  {
    options.full_text_idle_ms = 20;
    auto opened = OpenSqliteStore(path_, options);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    for (int i = 0; i < 200 && count("fts_pending") != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(count("fts_pending"), 0);  // indexed while the writer idled
    EXPECT_EQ(found(**opened, "theta"), "c");
    EXPECT_EQ(found(**opened, "alpha"), "");
    EXPECT_EQ(found(**opened, "eta"), "j");
  }
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

// ---- bulk loads (bulk_index_build.h, index_runs.h) ------------------------------------------

// A bulk load's records sit in fixed chunks: a record never spans two, positions stay valid as
// the arena grows, and truncating to a mark taken in an earlier chunk drops the later chunks'
// records (a unit of work that rolled back) and lets their space be reused.
TEST(RecordArena, RecordsStayWholeAcrossChunksAndTruncateToAMark) {
  sqlite::RecordArena arena(64);
  EXPECT_EQ(arena.end(), 0u);
  auto record = [](int i) {
    return std::string(static_cast<size_t>(20 + i % 7), static_cast<char>('a' + i));
  };
  std::vector<uint64_t> pos;
  uint64_t mark = 0;
  for (int i = 0; i < 10; ++i) {
    if (i == 4) mark = arena.end();
    pos.push_back(arena.Append(record(i)));
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(std::string_view(arena.At(pos[i]), record(i).size()), record(i)) << i;
  }
  EXPECT_GT(pos[9] >> 32, pos[4] >> 32);  // the records went on into later chunks
  auto seen = [&] {
    std::vector<std::string> out;
    arena.ForEach([](const char* p) { return 20 + (p[0] - 'a') % 7; },
                  [&](uint64_t, const char* p) { out.emplace_back(p, 20 + (p[0] - 'a') % 7); });
    return out;
  };
  std::vector<std::string> all;
  for (int i = 0; i < 10; ++i) all.push_back(record(i));
  EXPECT_EQ(seen(), all);
  arena.Truncate(mark);
  EXPECT_EQ(arena.end(), mark);
  all.resize(4);
  EXPECT_EQ(seen(), all);
  const uint64_t again = arena.Append(record(5));
  EXPECT_EQ(again, mark);
  EXPECT_EQ(std::string_view(arena.At(again), record(5).size()), record(5));
  EXPECT_THROW(arena.Append(std::string(65, 'x')), std::length_error);
  arena.Clear();
  EXPECT_EQ(arena.end(), 0u);
  EXPECT_TRUE(seen().empty());
}

// Records encoded off the writer (EncodeRecords) are taken whole or not at all: a cut or
// padded encoding adds nothing, a good one adds every row.
TEST(IndexRunBuffer, EncodedRecordsAreTakenWholeOrNotAtAll) {
  IndexRows rows;
  rows.tokens.push_back({"code", "http://loinc.org", "8480-6"});
  rows.strings.push_back({"name", std::string("a\0b", 3), "A"});
  rows.quantities.push_back(
      {"value-quantity", 120.5, "http://unitsofmeasure.org", "mm[Hg]", 120.5, "mm[Hg]"});
  std::string records;
  sqlite::IndexRunBuffer::EncodeRecords("Observation", rows, records);
  sqlite::IndexRunBuffer runs;
  for (size_t cut = 0; cut < records.size(); ++cut) {
    EXPECT_FALSE(runs.AddEncoded(7, std::string_view(records).substr(0, cut))) << cut;
  }
  EXPECT_FALSE(runs.AddEncoded(7, records + "x"));
  EXPECT_TRUE(runs.empty());
  EXPECT_TRUE(runs.AddEncoded(7, records));
  EXPECT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs.rows(0), 1u);
  EXPECT_EQ(runs.rows(4), 1u);
}

// Rows spilled to a temporary file in several runs come back merged with those still in
// memory in one key order: the same records, in the same order, as one run held in memory.
// Type+param pairs first seen after a spill sort among the earlier ones by name, and nothing
// is left in the directory.
TEST(IndexRunBuffer, SpilledRunsMergeWithMemoryInOneKeyOrder) {
  const std::string dir = ::testing::TempDir() + "/jiceng-spill-test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto rows_of = [](int i) {
    IndexRows rows;
    // Values that repeat across runs, keys that share prefixes, a NUL byte, and parameters that
    // only appear late ("zz-late" after "code", "a-late" before it).
    rows.tokens.push_back({"code", "http://loinc.org", std::to_string(i % 37)});
    if (i > 500) rows.tokens.push_back({i % 2 ? "zz-late" : "a-late", "", std::to_string(i % 5)});
    rows.strings.push_back({"name", std::string("n\0", 2) + std::to_string(i % 11), "N"});
    rows.dates.push_back({"date", int64_t{1'700'000'000'000'000} - (i % 13) * 1000, i * 10});
    rows.quantities.push_back({"value-quantity", 100.0 + i % 7, "http://unitsofmeasure.org",
                               "mm[Hg]", 100.0 + i % 7, "mm[Hg]"});
    return rows;
  };
  sqlite::IndexRunBuffer spilled, held;
  for (int i = 1; i <= 900; ++i) {
    const IndexRows rows = rows_of(i);
    spilled.Add(i % 3 ? "Observation" : "Patient", i, rows);
    held.Add(i % 3 ? "Observation" : "Patient", i, rows);
    if (i % 200 == 0) {
      ASSERT_TRUE(spilled.Spill(dir).ok());
    }
  }
  EXPECT_EQ(spilled.spilled_runs(), 4u);
  EXPECT_EQ(spilled.size(), 100u * 5u);  // rows of the last 100 resources are in memory
  EXPECT_EQ(spilled.spilled_rows() + spilled.size(), held.size());
  EXPECT_EQ(spilled.rows(0), held.rows(0));
  EXPECT_TRUE(fs::is_empty(dir));  // the spill file has no name

  auto scan = [](sqlite::IndexRunBuffer& runs) {
    std::vector<std::pair<int, std::string>> out;
    EXPECT_TRUE(runs.Scan([&](int kind, std::string_view r) { out.emplace_back(kind, r); }).ok());
    return out;
  };
  const auto merged = scan(spilled);
  const auto one_run = scan(held);
  ASSERT_EQ(merged.size(), held.size());
  EXPECT_TRUE(merged == one_run);
  // Each kind's records ascend: by type+param name (the token run's "a-late" rows come before
  // "code", "zz-late" after), then by key bytes.
  const auto names = sqlite::TypeParamNames();
  auto name_of = [&](const std::string& r) {
    uint32_t id;
    std::memcpy(&id, r.data(), 4);
    return names[id];
  };
  for (size_t i = 1; i < merged.size(); ++i) {
    if (merged[i].first != merged[i - 1].first) continue;
    const auto a = name_of(merged[i - 1].second), b = name_of(merged[i].second);
    ASSERT_LE(a, b) << i;
    if (a == b) {
      uint32_t la, lb;
      std::memcpy(&la, merged[i - 1].second.data() + 4, 4);
      std::memcpy(&lb, merged[i].second.data() + 4, 4);
      ASSERT_LE(merged[i - 1].second.substr(12, la), merged[i].second.substr(12, lb)) << i;
    }
  }
  EXPECT_EQ(name_of(merged.front().second).second, "a-late");
  // A spill that cannot write (here: no such directory) fails and keeps the rows in memory.
  {
    sqlite::IndexRunBuffer cannot;
    cannot.Add("Patient", 1, rows_of(1));
    const size_t held_rows = cannot.size();
    EXPECT_FALSE(cannot.Spill(dir + "/no/such/directory").ok());
    EXPECT_EQ(cannot.size(), held_rows);
    EXPECT_EQ(cannot.spilled_runs(), 0u);
  }
  // Spilling again after a scan appends to the file and still merges.
  spilled.Add("Patient", 901, rows_of(901));
  held.Add("Patient", 901, rows_of(901));
  ASSERT_TRUE(spilled.Spill(dir).ok());
  EXPECT_TRUE(scan(spilled) == scan(held));
  EXPECT_TRUE(fs::is_empty(dir));
  fs::remove_all(dir);
}

// Every idx_* row of the file at `path`, one line each, in primary-key order.
std::string DumpIndexTables(const std::string& path) {
  auto conn = sqlite::Connection::Open(path, {});
  EXPECT_TRUE(conn.ok());
  if (!conn.ok()) return "";
  std::string out;
  for (const char* table : {"idx_token", "idx_string", "idx_date", "idx_number", "idx_quantity",
                            "idx_reference", "idx_uri", "idx_composite"}) {
    // quote() keeps the type of each value (a REAL stays 1.0, text with a NUL byte shows it).
    std::string sql = std::string("SELECT '") + table + "', * FROM " + table;
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2((*conn)->handle(), sql.c_str(), -1, &stmt, nullptr), SQLITE_OK);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        if (sqlite3_column_type(stmt, i) == SQLITE_TEXT) {
          const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
          std::string text(p, static_cast<size_t>(sqlite3_column_bytes(stmt, i)));
          for (char& ch : text) {
            if (ch == '\0') ch = '~';
          }
          out += "'" + text + "'";
        } else if (sqlite3_column_type(stmt, i) == SQLITE_FLOAT) {
          out += fmt::format("{:.17g}r", sqlite3_column_double(stmt, i));
        } else {
          out += std::to_string(sqlite3_column_int64(stmt, i));
        }
        out += '|';
      }
      out += '\n';
    }
    sqlite3_finalize(stmt);
  }
  return out;
}

// Index rows of every kind, with the values whose order is easy to get wrong: negative and
// fractional numbers, the extreme dates, text that is a prefix of another, empty text, a NUL
// byte, non-ASCII text, and a duplicate row (stored once).
IndexRows AwkwardRows(int i) {
  IndexRows rows;
  const std::string n = std::to_string(i);
  rows.tokens.push_back({"code", "http://loinc.org", "8480-" + n});
  rows.tokens.push_back({"code", "", "8480"});
  rows.tokens.push_back({"code", "", "8480"});  // duplicate
  rows.tokens.push_back({"status", std::string("a\0b", 3), i % 2 ? "final" : "final-x"});
  rows.strings.push_back({"name", i % 3 ? "zhang" : "zhang san", "张三" + n});
  rows.strings.push_back({"name", "", ""});
  rows.strings.push_back({"code:text", "血压" + n, "Blood pressure"});
  rows.dates.push_back({"date", std::numeric_limits<int64_t>::min(), -1000 * i});
  rows.dates.push_back({"date", 1000 * i, std::numeric_limits<int64_t>::max()});
  rows.numbers.push_back({"probability", i % 2 ? -1.5 * i : 0.25 * i});
  rows.numbers.push_back({"probability", -0.0});
  rows.quantities.push_back({"value-quantity", i % 2 ? -120.5 + i : 120.5 - i,
                             "http://unitsofmeasure.org", "mm[Hg]", 120.5, "mm[Hg]"});
  rows.quantities.push_back({"value-quantity", 1e-300 * i, "", "kg", 1e-297 * i, "g"});
  rows.references.push_back({"subject", "Patient", "p" + n, ""});
  rows.references.push_back({"subject", "", "", "http://example.org/fhir/Patient/p" + n});
  rows.uris.push_back({"url", "http://example.org/" + n});
  CompositeIndexRow c;
  c.param = "code-value-quantity";
  c.system1 = "http://loinc.org";
  c.code1 = "8480-6";
  c.code2 = "mm[Hg]";
  c.system2 = "http://unitsofmeasure.org";
  c.number2 = i % 2 ? -3.0 * i : 3.0 * i;
  c.canonical_code2 = "mm[Hg]";
  c.canonical_number2 = c.number2;
  c.start2_us = -i;
  c.end2_us = i;
  rows.composites.push_back(c);
  return rows;
}

ResourceVersion VersionOf(const std::string& type, const std::string& id, int64_t version,
                          bool deleted = false) {
  ResourceVersion v;
  v.type = type;
  v.id = id;
  v.version = version;
  v.last_updated_us = 1700000000000000 + version;
  v.deleted = deleted;
  v.json = deleted ? "" : R"({"resourceType":")" + type + R"(","id":")" + id + R"("})";
  return v;
}

// The same writes, in bulk or not: creates in units of several resources of two types, a unit
// that fails after its writes (rolled back; when `update_in_failed_unit`, its update first
// inserted the rows held from the committed units before it), an update and a delete of
// resources written earlier in the load. Two resources in three have their rows precomputed
// off the writer, as a bulk loader's workers do (IStore::PrecomputeIndex: in a bulk load the
// sort records too), the rest not; one of those claims another type, so its records must
// not be used.
void WriteTheLoad(IStore& store, bool update_in_failed_unit) {
  for (int unit = 0; unit < 6; ++unit) {
    ASSERT_TRUE(store
                    .Write([&](IWriteTransaction& txn) -> Status {
                      for (int j = 0; j < 4; ++j) {
                        const int i = unit * 4 + j;
                        const std::string type = i % 2 ? "Observation" : "Patient";
                        IndexRows rows = AwkwardRows(i);
                        if (i % 3 == 1) store.PrecomputeIndex(type, rows);
                        if (i % 3 == 2)
                          store.PrecomputeIndex(i % 2 ? "Patient" : "Observation", rows);
                        JC_RETURN_IF_ERROR(
                            txn.Put(VersionOf(type, "r" + std::to_string(i), 1), rows));
                      }
                      return Status::Ok();
                    })
                    .ok());
  }
  Status failed = store.Write([&](IWriteTransaction& txn) -> Status {
    JC_RETURN_IF_ERROR(txn.Put(VersionOf("Patient", "gone", 1), AwkwardRows(50)));
    if (update_in_failed_unit) {
      JC_RETURN_IF_ERROR(txn.Put(VersionOf("Observation", "r5", 2), AwkwardRows(51)));
    }
    return Invalid("this unit fails");
  });
  ASSERT_FALSE(failed.ok());
  ASSERT_TRUE(store
                  .Write([&](IWriteTransaction& txn) -> Status {
                    JC_RETURN_IF_ERROR(txn.Put(VersionOf("Observation", "r3", 2), AwkwardRows(99)));
                    return txn.Put(VersionOf("Patient", "r4", 2, /*deleted=*/true), IndexRows{});
                  })
                  .ok());
  ASSERT_TRUE(store
                  .Write([&](IWriteTransaction& txn) -> Status {
                    return txn.Put(VersionOf("Patient", "last", 1), AwkwardRows(7));
                  })
                  .ok());
}

Result<SearchPage> SearchPatients(IStore& store) {
  JC_ASSIGN_OR_RETURN(auto txn, store.BeginRead());
  SearchQuery q;
  q.type = "Patient";
  return txn->Search(q);
}

class SqliteBulkLoadTest : public SqliteStoreTest {
 protected:
  // The rows the same writes leave without a bulk load.
  std::string RowByRowDump(bool update_in_failed_unit) {
    const std::string path = dir_ + "/row-by-row.db";
    auto store = OpenSqliteStore(path);
    EXPECT_TRUE(store.ok());
    WriteTheLoad(**store, update_in_failed_unit);
    (*store)->Close();
    return DumpIndexTables(path);
  }
  std::unique_ptr<IStore> OpenWithRuns(int64_t run_rows) {
    SqliteOptions options;
    options.bulk_build_rows = run_rows;
    auto store = OpenSqliteStore(path_, options);
    EXPECT_TRUE(store.ok()) << store.error().message;
    return std::move(store).value();
  }
};

TEST_F(SqliteBulkLoadTest, BuildsTheSameIndexRowsAsWritingThemRowByRow) {
  const std::string expected = RowByRowDump(false);
  ASSERT_NE(expected.find("'idx_composite'|'Observation'"), std::string::npos) << expected;
  // One run at the end, and runs of ~100 rows flushed along the way.
  for (int64_t run_rows : {int64_t{1} << 30, int64_t{100}}) {
    fs::remove(path_);
    fs::remove(path_ + "-wal");
    fs::remove(path_ + "-shm");
    auto store = OpenWithRuns(run_rows);
    auto begun = store->BeginBulkLoad();
    ASSERT_TRUE(begun.ok() && *begun);
    WriteTheLoad(*store, false);
    auto during = SearchPatients(*store);
    ASSERT_FALSE(during.ok());
    EXPECT_EQ(during.error().code, ErrorCode::kUnavailable);
    int64_t reported = -1;
    ASSERT_TRUE(store
                    ->EndBulkLoad([&](int64_t done, int64_t total) {
                      EXPECT_LE(done, total);
                      reported = done;
                    })
                    .ok());
    EXPECT_GE(reported, 0);
    auto after = SearchPatients(*store);
    ASSERT_TRUE(after.ok()) << after.error().message;
    EXPECT_EQ(after->entries.size(), 12u);  // 12 written, r4 deleted, "last" added
    store->Close();
    EXPECT_EQ(DumpIndexTables(path_), expected) << "runs of " << run_rows << " rows";
    EXPECT_FALSE(fs::exists(path_ + "-bulkload"));
  }
}

TEST_F(SqliteBulkLoadTest, ARollbackThatUndidAFlushedRunRebuildsFromTheKeys) {
  const std::string expected = RowByRowDump(true);
  auto store = OpenWithRuns(int64_t{1} << 30);
  ASSERT_TRUE(*store->BeginBulkLoad());
  // The failing unit's update flushes every held row inside the unit, and its rollback undoes
  // those inserts: the end of the load must notice and rebuild from resource_index_keys.
  WriteTheLoad(*store, true);
  ASSERT_TRUE(store->EndBulkLoad().ok());
  store->Close();
  EXPECT_EQ(DumpIndexTables(path_), expected);
}

TEST_F(SqliteBulkLoadTest, OnlyAnEmptyDatabaseIsBulkLoaded) {
  auto store = OpenWithRuns(1000);
  ASSERT_TRUE(PutNext(*store, "m1", 2).ok());
  auto begun = store->BeginBulkLoad();
  ASSERT_TRUE(begun.ok());
  EXPECT_FALSE(*begun);
  EXPECT_TRUE(store->EndBulkLoad().ok());  // nothing to do
  EXPECT_TRUE(SearchPatients(*store).ok());
}

// A load that dies before building its indexes (here: closed without EndBulkLoad, which leaves
// the file as kill -9 would) is completed by the next open, from the keys of what it committed.
TEST_F(SqliteBulkLoadTest, TheNextOpenCompletesALoadThatDiedBeforeItsBuild) {
  const std::string expected = RowByRowDump(false);
  {
    auto store = OpenWithRuns(100);  // some runs inserted, the rest lost with the process
    ASSERT_TRUE(*store->BeginBulkLoad());
    WriteTheLoad(*store, false);
    store->Close();
  }
  {
    // What a reader sees meanwhile: searches refused, not answered from missing rows.
    auto conn = sqlite::Connection::Open(path_, {});
    ASSERT_TRUE(conn.ok());
    auto marker = (*conn)->QueryInt("SELECT count(*) FROM store_state");
    ASSERT_TRUE(marker.ok());
    EXPECT_EQ(marker->value_or(0), 1);
  }
  auto store = OpenWithRuns(100);
  auto page = SearchPatients(*store);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->entries.size(), 12u);
  store->Close();
  EXPECT_EQ(DumpIndexTables(path_), expected);
}

// While a loader holds the lock, another process's open leaves its marker alone.
TEST_F(SqliteBulkLoadTest, AnOpenDuringAnotherLoadDoesNotBuildUnderIt) {
  sqlite::BulkLoadLock other;  // stands for the other process (flock is per open file)
  {
    auto store = OpenWithRuns(1000);
    ASSERT_TRUE(*store->BeginBulkLoad());
    ASSERT_TRUE(PutNext(*store, "m1", 2).ok());
    store->Close();
  }
  auto held = other.TryAcquire(path_);
  ASSERT_TRUE(held.ok() && *held);
  {
    auto store = OpenWithRuns(1000);
    auto page = SearchPatients(*store);
    ASSERT_FALSE(page.ok());
    EXPECT_EQ(page.error().code, ErrorCode::kUnavailable);
    EXPECT_FALSE(*store->BeginBulkLoad());  // the other loader has it
    store->Close();
  }
  other.Release();
  auto store = OpenWithRuns(1000);
  EXPECT_TRUE(SearchPatients(*store).ok());
}

}  // namespace
}  // namespace jiceng::store::testing
