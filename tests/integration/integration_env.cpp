#include "integration/integration_env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <sstream>

#include "store/postgres/pg_connection.h"

namespace jiceng::testing {

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("jiceng-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

const char* BackendName(Backend b) { return b == Backend::kSqlite ? "Sqlite" : "Postgres"; }

std::string PgTestUrl() {
  const char* url = std::getenv("JICENG_TEST_PG_URL");
  return url ? url : "";
}

std::string PgUnavailableReason() {
  if (!PgTestUrl().empty()) return "";
  return "JICENG_TEST_PG_URL is not set: run the tests under scripts/with-postgres.sh "
         "(e.g. scripts/with-postgres.sh ctest --test-dir build)";
}

namespace {

Status AdminExec(const std::string& sql) {
  JC_ASSIGN_OR_RETURN(std::unique_ptr<store::postgres::PgConnection> admin,
                      store::postgres::PgConnection::Open(PgTestUrl()));
  return admin->Exec(sql);
}

std::string NewSchemaName() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return "jiceng_it_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(rd() % 100000);
}

}  // namespace

std::unique_ptr<TestDatabase> TestDatabase::Create(Backend backend) {
  std::unique_ptr<TestDatabase> t(new TestDatabase(backend));
  if (backend == Backend::kSqlite) {
    t->db_ = (t->dir() / "test.db").string();
    return t;
  }
  const std::string base = PgTestUrl();
  if (base.empty()) {
    ADD_FAILURE() << PgUnavailableReason();
    return nullptr;
  }
  const std::string schema = NewSchemaName();
  if (Status s = AdminExec("CREATE SCHEMA " + store::postgres::QuoteIdentifier(schema)); !s.ok()) {
    ADD_FAILURE() << "cannot create schema " << schema << ": " << s.error().message;
    return nullptr;
  }
  t->schema_ = schema;
  t->db_ = base + (base.find('?') == std::string::npos ? "?" : "&") +
           "options=-csearch_path%3D" + schema;
  return t;
}

TestDatabase::~TestDatabase() {
  if (schema_.empty()) return;
  Status s = AdminExec("DROP SCHEMA IF EXISTS " + store::postgres::QuoteIdentifier(schema_) +
                       " CASCADE");
  EXPECT_TRUE(s.ok()) << "drop schema " << schema_ << ": " << s.error().message;
}

Status TestDatabase::CheckIntegrity() const {
  if (backend_ == Backend::kSqlite) {
    const std::filesystem::path out = dir() / "integrity.txt";
    const std::string cmd =
        "sqlite3 '" + db_ + "' 'PRAGMA integrity_check;' > '" + out.string() + "' 2>&1";
    if (std::system(cmd.c_str()) != 0) return Internal("sqlite3 failed: " + ReadFile(out));
    const std::string result = ReadFile(out);
    if (result != "ok\n") return Internal("integrity_check: " + result);
    return Status::Ok();
  }
  using store::postgres::PgConnection;
  JC_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> c, PgConnection::Open(db_));
  JC_ASSIGN_OR_RETURN(
      store::postgres::PgResult r,
      c->Query("SELECT "
               "(SELECT count(*) FROM resource r WHERE r.version IS DISTINCT FROM "
               "  (SELECT max(version) FROM resource_history h WHERE h.rid = r.rid)), "
               "(SELECT count(*) FROM (SELECT rid FROM resource_history GROUP BY rid "
               "  HAVING count(*) <> max(version) OR count(DISTINCT version) <> count(*) "
               "  OR min(version) <> 1) g), "
               "(SELECT count(*) FROM (SELECT rid FROM idx_token UNION ALL "
               "  SELECT rid FROM idx_string UNION ALL SELECT rid FROM idx_date UNION ALL "
               "  SELECT rid FROM idx_number UNION ALL SELECT rid FROM idx_quantity UNION ALL "
               "  SELECT rid FROM idx_reference UNION ALL SELECT rid FROM idx_uri UNION ALL "
               "  SELECT rid FROM idx_composite UNION ALL SELECT rid FROM fts_resource) x "
               "  LEFT JOIN resource r USING (rid) WHERE r.rid IS NULL OR r.deleted)"));
  if (r.Int(0, 0) != 0 || r.Int(0, 1) != 0 || r.Int(0, 2) != 0) {
    return Internal("postgres invariants: " + std::to_string(r.Int(0, 0)) +
                    " resources not at their newest version, " + std::to_string(r.Int(0, 1)) +
                    " with gaps or duplicate versions, " + std::to_string(r.Int(0, 2)) +
                    " index rows of deleted or missing resources");
  }
  return Status::Ok();
}

std::unique_ptr<ServerProcess> StartServer(const std::string& db,
                                           const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"serve", "--db", db, "--listen", "127.0.0.1:0", "--no-access-log"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = ServerProcess::Start(JICENG_BINARY, args);
  if (!p.ok()) {
    ADD_FAILURE() << "server did not start: " << p.error().message;
    return nullptr;
  }
  return std::move(*p);
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace jiceng::testing
