// Shared setup for integration tests: a fresh server process on port 0 with its own database.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "base/result.h"
#include "support/http_client.h"
#include "support/server_process.h"

namespace jiceng::testing {

// A temporary directory removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The backends a server can run on. The integration suites run against both: SQLite on a file
// in a temporary directory, PostgreSQL in a fresh schema of the database JICENG_TEST_PG_URL
// names (scripts/with-postgres.sh provides one; CI runs every test under it).
enum class Backend { kSqlite, kPostgres };

const char* BackendName(Backend b);
inline void PrintTo(Backend b, std::ostream* os) { *os << BackendName(b); }

// JICENG_TEST_PG_URL, or "" when unset.
std::string PgTestUrl();

// Why a PostgreSQL test cannot run here (JICENG_TEST_PG_URL unset), or "" when it can.
std::string PgUnavailableReason();

// The first lines of a test that needs `backend`: without a PostgreSQL server it is skipped on a
// developer machine and FAILS when CI is set (CI never silently skips PostgreSQL).
#define JC_REQUIRE_BACKEND(backend)                                                      \
  do {                                                                                   \
    if ((backend) == ::jiceng::testing::Backend::kPostgres) {                            \
      const std::string why_ = ::jiceng::testing::PgUnavailableReason();                 \
      if (!why_.empty()) {                                                               \
        if (std::getenv("CI") != nullptr) FAIL() << why_ << " (CI is set: a failure)";   \
        GTEST_SKIP() << why_;                                                            \
      }                                                                                  \
    }                                                                                    \
  } while (0)

// A fresh, empty database for one test, removed on destruction (destroy the servers using it
// first): an SQLite file in a temporary directory, or a new PostgreSQL schema that the URL
// selects through libpq's options (search_path), so tests running in parallel never meet.
class TestDatabase {
 public:
  // ADD_FAILUREs and returns nullptr when the database cannot be created.
  static std::unique_ptr<TestDatabase> Create(Backend backend);
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  Backend backend() const { return backend_; }
  // The --db argument: a file path or a postgresql:// URL.
  const std::string& db() const { return db_; }
  // A scratch directory beside the database (SQLite: its directory).
  const std::filesystem::path& dir() const { return dir_.path(); }

  // The backend's own consistency check after a crash. SQLite: PRAGMA integrity_check.
  // PostgreSQL (which recovers by itself): the store's invariants — every resource's current
  // version is its newest history row, history versions run 1..n without gaps or duplicates,
  // and no index row (of any index table) belongs to a deleted or missing resource.
  Status CheckIntegrity() const;

 private:
  TestDatabase(Backend backend) : backend_(backend) {}
  Backend backend_;
  TempDir dir_;
  std::string db_;
  std::string schema_;  // PostgreSQL
};

// Starts `jiceng serve` on 127.0.0.1:0 with `db` and extra flags.
std::unique_ptr<ServerProcess> StartServer(const std::string& db,
                                           const std::vector<std::string>& extra = {});

// Reads a whole file.
std::string ReadFile(const std::filesystem::path& p);

}  // namespace jiceng::testing
