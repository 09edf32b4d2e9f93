// The jiceng command line end to end: generate into a database and serve it, import with a bad
// line, the export → import round trip, generator determinism, and migrate-db from SQLite into
// PostgreSQL. Runs the real binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "base/json.h"
#include "integration/integration_env.h"
#include "store/postgres/pg_connection.h"

namespace jiceng::testing {
namespace {

namespace fs = std::filesystem;

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// The jiceng binary: JICENG_BINARY when the build defines it for this test, else the one beside
// this test in the build tree (<build>/tests/integration/cli_test → <build>/src/cli/jiceng).
std::string Binary() {
#ifdef JICENG_BINARY
  return JICENG_BINARY;
#else
  return (fs::read_symlink("/proc/self/exe").parent_path() / "../../src/cli/jiceng")
      .lexically_normal();
#endif
}

// Runs jiceng with `args` (each single-quoted for the shell), capturing both streams.
RunResult Jiceng(const std::vector<std::string>& args, const fs::path& dir) {
  std::string cmd = "'" + Binary() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  const fs::path out = dir / "run.out", err = dir / "run.err";
  cmd += " >'" + out.string() + "' 2>'" + err.string() + "'";
  int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

int64_t CountType(HttpClient& c, const std::string& type) {
  auto r = c.Send("GET", "/fhir/" + type + "?_summary=count");
  if (!r.ok() || r->status != 200) return -1;
  auto v = ParseJson(r->body);
  if (!v.ok() || !v->is_object() || !v->get_object().contains("total")) return -1;
  return v->get_object().at("total").to_number<int64_t>();
}

// "<Type> <count>" lines of the generator's summary.txt.
std::map<std::string, int64_t> Summary(const fs::path& file) {
  std::map<std::string, int64_t> m;
  std::istringstream in(ReadFile(file));
  std::string type;
  int64_t n = 0;
  while (in >> type >> n)
    if (type != "resources" && type != "duplicates") m[type] = n;
  return m;
}

// Counts lines per <Type>.ndjson file of an export directory.
std::map<std::string, int64_t> ExportCounts(const fs::path& dir) {
  std::map<std::string, int64_t> m;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".ndjson") continue;
    std::string text = ReadFile(e.path());
    m[e.path().stem().string()] = std::count(text.begin(), text.end(), '\n');
  }
  return m;
}

TEST(Cli, GenerateIntoDbThenServeIt) {
  TempDir dir;
  const std::string db = (dir.path() / "county.db").string();
  auto gen =
      Jiceng({"generate", "--db", db, "--residents", "300", "--seed", "7", "--quiet"}, dir.path());
  ASSERT_EQ(gen.exit_code, 0) << gen.out << gen.err;
  EXPECT_NE(gen.out.find("0 rejected"), std::string::npos) << gen.out;
  EXPECT_TRUE(fs::exists(db + ".duplicates.csv"));

  // The same county as files, for the expected counts.
  auto files = Jiceng({"generate", "--out", (dir.path() / "files").string(), "--residents", "300",
                       "--seed", "7", "--quiet"},
                      dir.path());
  ASSERT_EQ(files.exit_code, 0) << files.err;
  auto expected = Summary(dir.path() / "files" / "summary.txt");
  ASSERT_GT(expected["Patient"], 300);  // residents plus their duplicate registrations

  auto server = StartServer(db);
  ASSERT_TRUE(server);
  HttpClient c("127.0.0.1", server->port());
  auto org = c.Send("GET", "/fhir/Organization/org-330421-wjw");
  ASSERT_TRUE(org.ok());
  ASSERT_EQ(org->status, 200) << org->body;
  auto v = ParseJson(org->body);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(FindString(v->get_object(), "name").value_or(""), "嘉善县卫生健康局");
  EXPECT_EQ(CountType(c, "Patient"), expected["Patient"]);
  EXPECT_EQ(CountType(c, "Organization"), expected["Organization"]);
}

TEST(Cli, ImportRejectsOneBadLineAndCommitsTheRest) {
  TempDir dir;
  const fs::path nd = dir.path() / "patients.ndjson";
  {
    std::ofstream out(nd);
    out << R"({"resourceType":"Patient","id":"p1","gender":"female"})"
        << "\n";
    out << R"({"resourceType":"Patient","id":"p2","birthDate":"not-a-date"})"
        << "\n";
    out << R"({"resourceType":"Patient","id":"p3","gender":"male"})"
        << "\n";
    out << "\n";
    out << R"({"resourceType":"Patient","gender":"other"})"
        << "\n";
  }
  const std::string db = (dir.path() / "i.db").string();
  const fs::path errors = dir.path() / "errors.txt";
  auto r = Jiceng({"import", "--db", db, "--errors", errors.string(), "--quiet", nd.string()},
                  dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("imported 3 resources"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 rejected"), std::string::npos) << r.out;
  std::string err = ReadFile(errors);
  EXPECT_NE(err.find("patients.ndjson:2"), std::string::npos) << err;
  EXPECT_NE(err.find("birthDate"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;

  auto server = StartServer(db);
  ASSERT_TRUE(server);
  HttpClient c("127.0.0.1", server->port());
  EXPECT_EQ(CountType(c, "Patient"), 3);
  auto p3 = c.Send("GET", "/fhir/Patient/p3");
  ASSERT_TRUE(p3.ok());
  EXPECT_EQ(p3->status, 200);
  auto p2 = c.Send("GET", "/fhir/Patient/p2");
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->status, 404);
}

TEST(Cli, ExportImportRoundTripKeepsCountsPerType) {
  TempDir dir;
  const std::string db = (dir.path() / "a.db").string();
  auto gen = Jiceng({"generate", "--db", db, "--residents", "200", "--quiet"}, dir.path());
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const fs::path ex1 = dir.path() / "ex1", ex2 = dir.path() / "ex2";
  auto e1 = Jiceng({"export", "--db", db, "--out", ex1.string(), "--quiet"}, dir.path());
  ASSERT_EQ(e1.exit_code, 0) << e1.err;
  const std::string db2 = (dir.path() / "b.db").string();
  auto imp = Jiceng({"import", "--db", db2, "--quiet", ex1.string()}, dir.path());
  ASSERT_EQ(imp.exit_code, 0) << imp.out << imp.err;
  auto e2 = Jiceng({"export", "--db", db2, "--out", ex2.string(), "--quiet"}, dir.path());
  ASSERT_EQ(e2.exit_code, 0) << e2.err;
  auto c1 = ExportCounts(ex1), c2 = ExportCounts(ex2);
  EXPECT_GT(c1["Patient"], 200);
  EXPECT_EQ(c1, c2);

  // --type and --since narrow the export.
  const fs::path ex3 = dir.path() / "ex3";
  auto e3 = Jiceng({"export", "--db", db2, "--out", ex3.string(), "--type", "Patient,Organization",
                    "--since", "2000-01-01", "--quiet"},
                   dir.path());
  ASSERT_EQ(e3.exit_code, 0) << e3.err;
  auto c3 = ExportCounts(ex3);
  EXPECT_EQ(c3.size(), 2u);
  EXPECT_EQ(c3["Patient"], c1["Patient"]);
  const fs::path ex4 = dir.path() / "ex4";
  auto e4 =
      Jiceng({"export", "--db", db2, "--out", ex4.string(), "--since", "2999-01-01", "--quiet"},
             dir.path());
  ASSERT_EQ(e4.exit_code, 0) << e4.err;
  EXPECT_TRUE(ExportCounts(ex4).empty());
}

TEST(Cli, GenerateIsDeterministic) {
  TempDir dir;
  for (const char* out : {"g1", "g2"}) {
    auto r = Jiceng({"generate", "--out", (dir.path() / out).string(), "--residents", "150",
                     "--seed", "11", "--format", "ndjson", "--quiet"},
                    dir.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path() / "g1")) {
    ++files;
    EXPECT_EQ(ReadFile(e.path()), ReadFile(dir.path() / "g2" / e.path().filename())) << e.path();
  }
  EXPECT_GT(files, 5);
}

// "table param count" lines of every index table of an SQLite database (sqlite3 CLI), sorted.
std::string SqliteIndexCounts(const std::string& db, const fs::path& dir,
                              const std::vector<std::string>& tables) {
  std::string sql;
  for (const auto& t : tables) {
    if (!sql.empty()) sql += " UNION ALL ";
    sql += t == "fts_resource"
               ? "SELECT 'fts_resource', '', count(*) FROM fts_resource"
               : "SELECT '" + t + "', param, count(*) FROM " + t + " GROUP BY param";
  }
  sql += " ORDER BY 1, 2";
  const fs::path out = dir / "counts.txt";
  const std::string cmd = "sqlite3 -separator ' ' '" + db + "' \"" + sql + "\" > '" +
                          out.string() + "' 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << ReadFile(out);
  return ReadFile(out);
}

// The same lines from a PostgreSQL database.
std::string PgIndexCounts(const std::string& url, const std::vector<std::string>& tables) {
  std::string sql;
  for (const auto& t : tables) {
    if (!sql.empty()) sql += " UNION ALL ";
    sql += t == "fts_resource"
               ? "SELECT 'fts_resource'::text, ''::text, count(*) FROM fts_resource"
               : "SELECT '" + t + "'::text, param::text, count(*) FROM " + t + " GROUP BY param";
  }
  sql = "SELECT t, p, n FROM (" + sql + ") x(t, p, n) ORDER BY t COLLATE \"C\", p COLLATE \"C\"";
  auto conn = store::postgres::PgConnection::Open(url);
  EXPECT_TRUE(conn.ok()) << (conn.ok() ? "" : conn.error().message);
  if (!conn.ok()) return "";
  auto r = (*conn)->Query(sql);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (!r.ok()) return "";
  std::string out;
  for (int i = 0; i < r->rows(); ++i) {
    out += r->String(i, 0) + " " + r->String(i, 1) + " " + std::to_string(r->Int(i, 2)) + "\n";
  }
  return out;
}

// reindex re-extracts the index rows of every current resource: rows missing from a database
// (as in one written before a release that indexes more) come back exactly, and a second run
// changes nothing.
TEST(Cli, ReindexRestoresMissingIndexRows) {
  const fs::path dir = fs::path(::testing::TempDir()) / "jiceng-cli-reindex";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string db = (dir / "r.db").string();
  const fs::path bundle = fs::path(JICENG_SHARED_DIR) / "data/synthea-r4" /
                          "Sharmaine_Yost_f24e406f-384b-41ad-88a1-2857e7584d08.json";
  auto imported = Jiceng({"import", "--db", db, "--quiet", bundle.string()}, dir);
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  const std::vector<std::string> tables = {"idx_token",     "idx_string",    "idx_date",
                                           "idx_number",    "idx_quantity",  "idx_reference",
                                           "idx_uri",       "idx_composite", "fts_resource"};
  const std::string before = SqliteIndexCounts(db, dir, tables);
  ASSERT_NE(before.find("idx_composite"), std::string::npos) << before;
  ASSERT_NE(before.find("fts_resource"), std::string::npos) << before;
  const std::string wipe = "sqlite3 '" + db +
                           "' 'DELETE FROM idx_composite; DELETE FROM fts_resource; "
                           "DELETE FROM idx_string WHERE param = \"code:text\";'";
  ASSERT_EQ(std::system(wipe.c_str()), 0);
  ASSERT_NE(SqliteIndexCounts(db, dir, tables), before);
  auto r = Jiceng({"reindex", "--db", db, "--quiet"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("reindexed 530 resources"), std::string::npos) << r.out;
  EXPECT_EQ(SqliteIndexCounts(db, dir, tables), before);
  r = Jiceng({"reindex", "--db", db, "--quiet", "--type", "Observation"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SqliteIndexCounts(db, dir, tables), before);
  r = Jiceng({"reindex", "--db", db, "--type", "NoSuchType"}, dir);
  EXPECT_EQ(r.exit_code, 2);
  fs::remove_all(dir);
}

// migrate-db moves an SQLite database into an empty PostgreSQL one with every version (updates
// and deletes included) and the search index rows of every kind (rebuilt from the stored json,
// so the counts per table and parameter match the source's), refuses a non-empty destination,
// and the result serves the same resources and history.
TEST(Cli, MigrateDbMovesEveryVersionAndTheIndexRowsIntoPostgres) {
  JC_REQUIRE_BACKEND(Backend::kPostgres);
  TempDir dir;
  const std::string src = (dir.path() / "pilot.db").string();
  auto gen = Jiceng({"generate", "--db", src, "--residents", "60", "--seed", "5", "--quiet"},
                    dir.path());
  ASSERT_EQ(gen.exit_code, 0) << gen.out << gen.err;
  // History beyond version 1: an update and a delete.
  const std::string patient =
      R"({"resourceType":"Patient","id":"mig-1","identifier":[{"system":"urn:mig","value":"A"}],)"
      R"("name":[{"family":"张","given":["三"]}],"birthDate":"1960-02-03"})";
  int64_t src_versions = -1;
  {
    auto server = StartServer(src);
    ASSERT_TRUE(server);
    HttpClient c("127.0.0.1", server->port());
    const Headers json = {{"Content-Type", "application/fhir+json"}};
    auto v1 = c.Send("PUT", "/fhir/Patient/mig-1", patient, json);
    ASSERT_TRUE(v1.ok());
    ASSERT_EQ(v1->status, 201) << v1->body;
    std::string updated = patient;
    updated.insert(updated.size() - 1, R"(,"gender":"male")");
    auto v2 = c.Send("PUT", "/fhir/Patient/mig-1", updated, json);
    ASSERT_TRUE(v2.ok());
    ASSERT_EQ(v2->status, 200) << v2->body;
    auto gone = c.Send("PUT", "/fhir/Patient/mig-2", R"({"resourceType":"Patient","id":"mig-2"})", json);
    ASSERT_TRUE(gone.ok());
    auto del = c.Send("DELETE", "/fhir/Patient/mig-2");
    ASSERT_TRUE(del.ok());
    ASSERT_EQ(del->status, 204);
    auto h = c.Send("GET", "/fhir/_history?_count=1");
    ASSERT_TRUE(h.ok());
    src_versions = ParseJson(h->body)->at("total").to_number<int64_t>();
  }
  ASSERT_GT(src_versions, 500);

  auto dst = TestDatabase::Create(Backend::kPostgres);
  ASSERT_TRUE(dst);
  auto mig = Jiceng({"migrate-db", "--from", src, "--to", dst->db()}, dir.path());
  ASSERT_EQ(mig.exit_code, 0) << mig.out << mig.err;
  EXPECT_NE(mig.out.find("copied " + std::to_string(src_versions) + " versions"),
            std::string::npos)
      << mig.out;

  const std::vector<std::string> tables = {"idx_token",     "idx_string",    "idx_date",
                                           "idx_number",    "idx_quantity",  "idx_reference",
                                           "idx_uri",       "idx_composite", "fts_resource"};
  const std::string expected = SqliteIndexCounts(src, dir.path(), tables);
  EXPECT_NE(expected.find("idx_string name "), std::string::npos) << expected;
  EXPECT_NE(expected.find("idx_reference subject "), std::string::npos) << expected;
  EXPECT_EQ(PgIndexCounts(dst->db(), tables), expected);

  {
    auto server = StartServer(dst->db());
    ASSERT_TRUE(server);
    HttpClient c("127.0.0.1", server->port());
    auto p = c.Send("GET", "/fhir/Patient/mig-1");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->status, 200);
    EXPECT_EQ(p->Header("etag").value_or(""), "W/\"2\"");
    EXPECT_NE(p->body.find("\"gender\":\"male\""), std::string::npos) << p->body;
    auto v1 = c.Send("GET", "/fhir/Patient/mig-1/_history/1");
    ASSERT_TRUE(v1.ok());
    EXPECT_EQ(v1->status, 200);
    EXPECT_EQ(v1->body.find("\"gender\""), std::string::npos) << v1->body;
    auto gone = c.Send("GET", "/fhir/Patient/mig-2");
    ASSERT_TRUE(gone.ok());
    EXPECT_EQ(gone->status, 410);
    auto h = c.Send("GET", "/fhir/_history?_count=1");
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(ParseJson(h->body)->at("total").to_number<int64_t>(), src_versions);
    auto org = c.Send("GET", "/fhir/Organization/org-330421-wjw");
    ASSERT_TRUE(org.ok());
    EXPECT_EQ(org->status, 200);
  }

  // Only into an empty database.
  auto again = Jiceng({"migrate-db", "--from", src, "--to", dst->db()}, dir.path());
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("not empty"), std::string::npos) << again.err;
}

}  // namespace
}  // namespace jiceng::testing
