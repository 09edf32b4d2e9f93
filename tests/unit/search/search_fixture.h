// A store that resources are written to with the index rows the extractor gives them, and
// searched through the query parser: the search tests' fixture. Parameterised by backend, so
// every search test runs on both: SQLite in a temporary directory, and PostgreSQL in a fresh
// schema of the database JICENG_TEST_PG_URL names (scripts/with-postgres.sh provides one).
// Without that URL the PostgreSQL tests are skipped on a developer machine and FAIL when CI is
// set: CI never silently skips PostgreSQL.
//
//   class MySearchTest : public SearchStoreTest {};
//   TEST_P(MySearchTest, …) { … }
//   JC_SEARCH_ON_EVERY_BACKEND(MySearchTest);
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/time.h"
#include "fhir/search/extractor.h"
#include "fhir/search/query.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace jiceng::search {

enum class Backend { kSqlite, kPostgres };

inline std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}
inline void PrintTo(Backend b, std::ostream* os) {
  *os << (b == Backend::kSqlite ? "Sqlite" : "Postgres");
}

#define JC_SEARCH_ON_EVERY_BACKEND(suite)                                                          \
  INSTANTIATE_TEST_SUITE_P(                                                                        \
      , suite,                                                                                     \
      ::testing::Values(::jiceng::search::Backend::kSqlite, ::jiceng::search::Backend::kPostgres), \
      ::jiceng::search::BackendName)

// One empty database of a backend, dropped on destruction (close its stores first).
class TestDatabase {
 public:
  // JICENG_TEST_PG_URL, or "" when unset.
  static std::string PgBaseUrl() {
    const char* url = std::getenv("JICENG_TEST_PG_URL");
    return url ? url : "";
  }
  static constexpr const char* kNoPgUrl =
      "JICENG_TEST_PG_URL is not set: run the tests under scripts/with-postgres.sh "
      "(e.g. scripts/with-postgres.sh ctest --test-dir build)";

  // ADD_FAILUREs and returns nullptr when the database cannot be created.
  static std::unique_ptr<TestDatabase> Create(Backend backend) {
    namespace fs = std::filesystem;
    std::unique_ptr<TestDatabase> db(new TestDatabase);
    if (backend == Backend::kSqlite) {
      std::string tmpl = (fs::path(::testing::TempDir()) / "jiceng-search-XXXXXX").string();
      if (mkdtemp(tmpl.data()) == nullptr) {
        ADD_FAILURE() << "mkdtemp failed";
        return nullptr;
      }
      db->dir_ = tmpl;
      db->db_ = tmpl + "/t.db";
      return db;
    }
    const std::string base = PgBaseUrl();
    if (base.empty()) {
      ADD_FAILURE() << kNoPgUrl;
      return nullptr;
    }
    static std::atomic<int> counter{0};
    std::random_device rd;
    const std::string schema = "jiceng_s_" + std::to_string(getpid()) + "_" +
                               std::to_string(counter++) + "_" + std::to_string(rd() % 100000);
    if (Status s = AdminExec("CREATE SCHEMA " + store::postgres::QuoteIdentifier(schema));
        !s.ok()) {
      ADD_FAILURE() << "cannot create schema " << schema << ": " << s.error().message;
      return nullptr;
    }
    db->schema_ = schema;
    db->db_ = base + (base.find('?') == std::string::npos ? "?" : "&") +
              "options=-csearch_path%3D" + schema;
    return db;
  }

  ~TestDatabase() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    if (!schema_.empty()) {
      Status s = AdminExec("DROP SCHEMA IF EXISTS " + store::postgres::QuoteIdentifier(schema_) +
                           " CASCADE");
      EXPECT_TRUE(s.ok()) << s.error().message;
    }
  }

  Result<std::unique_ptr<store::IStore>> Open() const {
    if (schema_.empty()) return store::OpenSqliteStore(db_);
    store::PostgresOptions options;
    options.read_connections = 4;
    return store::OpenPostgresStore(db_, options);
  }

 private:
  TestDatabase() = default;
  static Status AdminExec(const std::string& sql) {
    JC_ASSIGN_OR_RETURN(std::unique_ptr<store::postgres::PgConnection> admin,
                        store::postgres::PgConnection::Open(PgBaseUrl()));
    return admin->Exec(sql);
  }

  std::string dir_;     // SQLite
  std::string schema_;  // PostgreSQL
  std::string db_;      // a file path or a postgresql:// URL
};

// The first lines of a SetUp that needs `backend`: without a PostgreSQL server, a skip on a
// developer machine and a failure when CI is set.
#define JC_SEARCH_REQUIRE_BACKEND(backend)                                               \
  do {                                                                                   \
    if ((backend) == ::jiceng::search::Backend::kPostgres &&                             \
        ::jiceng::search::TestDatabase::PgBaseUrl().empty()) {                           \
      if (std::getenv("CI") != nullptr) {                                                \
        FAIL() << ::jiceng::search::TestDatabase::kNoPgUrl << " (CI is set: a failure)"; \
      }                                                                                  \
      GTEST_SKIP() << ::jiceng::search::TestDatabase::kNoPgUrl;                          \
    }                                                                                    \
  } while (0)

class SearchStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    JC_SEARCH_REQUIRE_BACKEND(GetParam());
    db_ = TestDatabase::Create(GetParam());
    ASSERT_TRUE(db_);
    auto s = db_->Open();
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
  }
  void TearDown() override {
    if (store_) store_->Close();
    store_.reset();
    db_.reset();
  }

  // Writes `text` (with resourceType and id) as the next version of its resource.
  void Put(std::string_view text, int64_t updated_us = 0) {
    auto v = ParseJson(text);
    ASSERT_TRUE(v.ok()) << text;
    store::ResourceVersion rv;
    rv.type = std::string(*FindString(v->get_object(), "resourceType"));
    rv.id = std::string(*FindString(v->get_object(), "id"));
    rv.last_updated_us = updated_us ? updated_us : NowMicros();
    rv.json = std::string(text);
    store::IndexRows rows = ExtractIndexRows(*v);
    Status s = store_->Write([&](store::IWriteTransaction& txn) -> Status {
      JC_ASSIGN_OR_RETURN(auto cur, txn.ReadCurrent(rv.type, rv.id));
      rv.version = cur ? cur->version + 1 : 1;
      return txn.Put(rv, rows);
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  // Writes new resources (first versions) in one transaction.
  void PutAll(const std::vector<std::string>& texts) {
    std::vector<std::pair<store::ResourceVersion, store::IndexRows>> all;
    for (const std::string& text : texts) {
      auto v = ParseJson(text);
      ASSERT_TRUE(v.ok()) << text;
      store::ResourceVersion rv;
      rv.type = std::string(*FindString(v->get_object(), "resourceType"));
      rv.id = std::string(*FindString(v->get_object(), "id"));
      rv.version = 1;
      rv.last_updated_us = NowMicros();
      rv.json = text;
      all.emplace_back(std::move(rv), ExtractIndexRows(*v));
    }
    Status s = store_->Write([&](store::IWriteTransaction& txn) -> Status {
      for (const auto& [rv, rows] : all) JC_RETURN_IF_ERROR(txn.Put(rv, rows));
      return Status::Ok();
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  // Deletes (a tombstone version).
  void Delete(std::string_view type, std::string_view id) {
    Status s = store_->Write([&](store::IWriteTransaction& txn) -> Status {
      JC_ASSIGN_OR_RETURN(auto cur, txn.ReadCurrent(type, id));
      store::ResourceVersion v;
      v.type = std::string(type);
      v.id = std::string(id);
      v.version = cur ? cur->version + 1 : 1;
      v.last_updated_us = NowMicros();
      v.deleted = true;
      return txn.Put(v, {});
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  static Params ParseQuery(std::string_view query) {
    Params params;
    size_t pos = 0;
    while (pos <= query.size() && !query.empty()) {
      size_t amp = query.find('&', pos);
      std::string_view part =
          query.substr(pos, amp == std::string_view::npos ? query.npos : amp - pos);
      size_t eq = part.find('=');
      params.emplace_back(std::string(part.substr(0, eq)),
                          eq == std::string_view::npos ? "" : std::string(part.substr(eq + 1)));
      if (amp == std::string_view::npos) break;
      pos = amp + 1;
    }
    return params;
  }

  // Totals are counted in full unless `total_limit` (the server's search_total_limit) is set.
  int64_t total_limit_ = 0;
  int64_t timeout_ms_ = 0;  // store::SearchQuery::timeout_ms of Run's searches

  Result<ParsedSearch> Parse(std::string_view type, std::string_view query, bool strict = true) {
    ParseOptions o;
    o.strict = strict;
    o.default_count = 1000;
    o.max_count = 1000;
    o.total_limit = total_limit_;
    return ParseSearch(type, ParseQuery(query), o);
  }

  Result<store::SearchPage> Run(std::string_view type, std::string_view query) {
    JC_ASSIGN_OR_RETURN(ParsedSearch p, Parse(type, query));
    p.query.timeout_ms = timeout_ms_;
    JC_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
    return txn->Search(p.query);
  }

  // Ids in result order; sorted when `keep_order` is false.
  std::vector<std::string> Ids(std::string_view type, std::string_view query,
                               bool keep_order = false) {
    auto page = Run(type, query);
    EXPECT_TRUE(page.ok()) << query << ": " << page.error().message;
    std::vector<std::string> ids;
    if (!page.ok()) return ids;
    for (const auto& v : page->entries) ids.push_back(v.id);
    if (!keep_order) std::sort(ids.begin(), ids.end());
    return ids;
  }

  using V = std::vector<std::string>;
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<store::IStore> store_;
};

}  // namespace jiceng::search
