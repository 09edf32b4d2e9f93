// The jiceng command line end to end: generate into a database and serve it, import with a bad
// line, the export → import round trip, generator determinism, migrate-db from SQLite into
// PostgreSQL, and the same Bundles leaving the same index rows on both backends. Runs the real
// binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
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

TEST(Cli, LenientImportLoadsUnknownElementsAndSaysWhere) {
  TempDir dir;
  const fs::path in = dir.path() / "in";
  fs::create_directories(in / "more");
  {
    std::ofstream out(in / "patients.ndjson");
    out << R"({"resourceType":"Patient","id":"p1","gender":"female","shoeSize":41})"
        << "\n";
    out << R"({"resourceType":"Patient","id":"p2","gender":"male"})"
        << "\n";
  }
  std::ofstream(in / "notes.txt") << "not FHIR\n";
  const std::string db = (dir.path() / "l.db").string();
  const fs::path errors = dir.path() / "errors.txt";
  auto r = Jiceng({"import", "--db", db, "--lenient", "--errors", errors.string(), in.string()},
                  dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("imported 2 resources"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0 rejected, 1 warnings (see"), std::string::npos) << r.out;
  const std::string err = ReadFile(errors);
  EXPECT_NE(err.find("patients.ndjson:1: Patient/p1: warning (loaded): "), std::string::npos)
      << err;
  EXPECT_NE(err.find("shoeSize"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  // What a directory holds besides .json and .ndjson files is named, not passed over.
  EXPECT_NE(r.err.find("skipped " + (in / "notes.txt").string() + " (not .json or .ndjson)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("skipped " + (in / "more").string() + " (a directory"), std::string::npos)
      << r.err;
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
  const std::string cmd =
      "sqlite3 -separator ' ' '" + db + "' \"" + sql + "\" > '" + out.string() + "' 2>&1";
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
  const std::vector<std::string> tables = {"idx_token",  "idx_string",    "idx_date",
                                           "idx_number", "idx_quantity",  "idx_reference",
                                           "idx_uri",    "idx_composite", "fts_resource"};
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
  auto gen =
      Jiceng({"generate", "--db", src, "--residents", "60", "--seed", "5", "--quiet"}, dir.path());
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
    auto gone =
        c.Send("PUT", "/fhir/Patient/mig-2", R"({"resourceType":"Patient","id":"mig-2"})", json);
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
  EXPECT_NE(mig.out.find("copied " + std::to_string(src_versions) + " versions"), std::string::npos)
      << mig.out;

  const std::vector<std::string> tables = {"idx_token",  "idx_string",    "idx_date",
                                           "idx_number", "idx_quantity",  "idx_reference",
                                           "idx_uri",    "idx_composite", "fts_resource"};
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

  // The distribution key (PostgreSQL schema v7), end to end from the extracted compartments:
  // each Observation of a patient has its patient's key, which is not 0; shared data has 0.
  auto conn = store::postgres::PgConnection::Open(dst->db());
  ASSERT_TRUE(conn.ok());
  const std::string key_check =
      "SELECT count(*), count(*) FILTER (WHERE o.shard_key = p.shard_key AND o.shard_key <> 0), "
      "(SELECT count(*) FROM resource WHERE type = 'Organization' AND shard_key = 0), "
      "(SELECT count(*) FROM resource WHERE type = 'Organization'), "
      "(SELECT count(*) FROM idx_token t JOIN resource x ON x.rid = t.rid "
      " WHERE t.shard_key <> x.shard_key) "
      "FROM resource o JOIN idx_reference r ON r.rid = o.rid AND r.param = 'subject' "
      "AND r.target_type = 'Patient' JOIN resource p ON p.type = 'Patient' AND p.id = r.target_id "
      "WHERE o.type = 'Observation'";
  auto keys = (*conn)->Query(key_check);
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  EXPECT_GT(keys->Int(0, 0), 100);
  EXPECT_EQ(keys->Int(0, 1), keys->Int(0, 0));
  EXPECT_GT(keys->Int(0, 3), 0);
  EXPECT_EQ(keys->Int(0, 2), keys->Int(0, 3));
  EXPECT_EQ(keys->Int(0, 4), 0);
  // reindex on PostgreSQL: a database whose rows predate the key (all 0) gets every key back,
  // and the same index rows.
  for (const char* t :
       {"resource", "resource_history", "idx_token", "idx_string", "idx_date", "idx_number",
        "idx_quantity", "idx_reference", "idx_uri", "idx_composite", "fts_resource"}) {
    ASSERT_TRUE((*conn)->Exec(std::string("UPDATE ") + t + " SET shard_key = 0").ok());
  }
  auto reindexed = Jiceng({"reindex", "--db", dst->db(), "--quiet"}, dir.path());
  ASSERT_EQ(reindexed.exit_code, 0) << reindexed.out << reindexed.err;
  EXPECT_EQ(PgIndexCounts(dst->db(), tables), expected);
  auto after = (*conn)->Query(key_check);
  ASSERT_TRUE(after.ok()) << after.error().message;
  for (int c = 0; c < 5; ++c) EXPECT_EQ(after->Int(0, c), keys->Int(0, c)) << "column " << c;

  // Only into an empty database.
  auto again = Jiceng({"migrate-db", "--from", src, "--to", dst->db()}, dir.path());
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("not empty"), std::string::npos) << again.err;
}

// Every resource, history row and index row of a database as lines ("idx_token
// Patient/p1 identifier|A|urn:t", "resource Patient/p1 2 0"), with each row's resource as
// type/id instead of its rid and numbers with six decimals: comparable across backends. `sql`
// runs the query: the sqlite3 CLI or PostgreSQL. `text(column)` turns a column holding ids,
// codes or systems into text (PostgreSQL stores them as bytea), `number(column)` a float into
// text; `deleted` is the flag as 0/1 and `fts_rid` the rid of an fts_resource row.
std::string IndexRowsDump(const std::function<std::string(const std::string&)>& sql,
                          const std::function<std::string(const std::string&)>& text,
                          const std::function<std::string(const std::string&)>& number,
                          const std::string& deleted, const std::string& fts_rid) {
  struct Table {
    const char* name;
    std::vector<std::pair<const char*, char>> columns;  // t: text, b: bytes, n: number, i: int
  };
  const std::vector<Table> tables = {
      {"idx_token", {{"param", 't'}, {"code", 'b'}, {"system", 'b'}}},
      {"idx_string", {{"param", 't'}, {"value", 't'}, {"exact", 't'}}},
      {"idx_date", {{"param", 't'}, {"start_us", 'i'}, {"end_us", 'i'}}},
      {"idx_number", {{"param", 't'}, {"value", 'n'}}},
      {"idx_quantity",
       {{"param", 't'},
        {"code", 'b'},
        {"system", 'b'},
        {"value", 'n'},
        {"canonical_code", 'b'},
        {"canonical_value", 'n'}}},
      {"idx_reference", {{"param", 't'}, {"target_id", 'b'}, {"target_type", 't'}, {"url", 't'}}},
      {"idx_uri", {{"param", 't'}, {"value", 't'}}},
      {"idx_composite",
       {{"param", 't'},
        {"code1", 'b'},
        {"system1", 'b'},
        {"code2", 'b'},
        {"system2", 'b'},
        {"number2", 'n'},
        {"start2_us", 'i'},
        {"end2_us", 'i'},
        {"canonical_code2", 'b'},
        {"canonical_number2", 'n'}}},
  };
  std::string q;
  for (const Table& t : tables) {
    std::string row;
    for (const auto& [name, kind] : t.columns) {
      const std::string c = std::string("x.") + name;
      const std::string v = kind == 'b' ? text(c) : kind == 'n' ? number(c) : c;
      row += std::string(row.empty() ? "" : " || '|' || ") + v;
    }
    q += std::string(q.empty() ? "" : " UNION ALL ") + "SELECT '" + t.name +
         " ' || r.type || '/' || " + text("r.id") + " || ' ' || " + row + " FROM " + t.name +
         " x JOIN resource r ON r.rid = x.rid";
  }
  q += " UNION ALL SELECT 'fts ' || r.type || '/' || " + text("r.id") +
       " FROM fts_resource x JOIN resource r ON r.rid = " + fts_rid;
  q += " UNION ALL SELECT 'resource ' || type || '/' || " + text("id") +
       " || ' ' || version || ' ' || " + deleted + " FROM resource";
  q += " UNION ALL SELECT 'history ' || type || '/' || " + text("id") +
       " || ' ' || version || ' ' || " + deleted + " FROM resource_history";
  return sql(q);
}

std::string SqliteRowsDump(const std::string& db, const fs::path& dir) {
  return IndexRowsDump(
      [&](const std::string& q) {
        const fs::path file = dir / "dump.sql", out = dir / "dump.txt";
        std::ofstream(file) << q << ";\n";
        const std::string cmd =
            "sqlite3 '" + db + "' < '" + file.string() + "' > '" + out.string() + "' 2>&1";
        EXPECT_EQ(std::system(cmd.c_str()), 0) << ReadFile(out);
        return ReadFile(out);
      },
      [](const std::string& c) { return c; },
      [](const std::string& c) { return "printf('%.6f', " + c + ")"; }, "deleted", "x.rowid");
}

std::string PgRowsDump(const std::string& url) {
  return IndexRowsDump(
      [&](const std::string& q) {
        auto conn = store::postgres::PgConnection::Open(url);
        EXPECT_TRUE(conn.ok()) << (conn.ok() ? "" : conn.error().message);
        if (!conn.ok()) return std::string();
        auto r = (*conn)->Query(q);
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
        std::string out;
        for (int i = 0; r.ok() && i < r->rows(); ++i) out += r->String(i, 0) + "\n";
        return out;
      },
      [](const std::string& c) { return "convert_from(" + c + ", 'UTF8')"; },
      [](const std::string& c) { return "round(" + c + "::numeric, 6)::text"; }, "deleted::int",
      "x.rid");
}

// Sends `requests` (method, path, body) to a server on `db` and returns every response status
// (for Bundles, every entry's) and the ids the server assigned, in order.
struct Replay {
  std::vector<std::string> statuses;
  std::vector<std::string> assigned;
};

Replay RunRequests(const std::string& db,
                   const std::vector<std::tuple<std::string, std::string, std::string>>& requests,
                   const std::vector<Headers>& headers) {
  Replay out;
  auto server = StartServer(db);
  EXPECT_TRUE(server);
  if (!server) return out;
  HttpClient c("127.0.0.1", server->port());
  const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  auto assigned = [&](const std::string& location) {
    std::smatch m;
    if (std::regex_search(location, m, uuid) &&
        std::find(out.assigned.begin(), out.assigned.end(), m.str()) == out.assigned.end()) {
      out.assigned.push_back(m.str());
    }
  };
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& [method, path, body] = requests[i];
    auto r = c.Send(method, path, body, headers[i]);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) continue;
    out.statuses.push_back(method + " " + path + " " + std::to_string(r->status));
    assigned(r->Header("location").value_or(""));
    auto v = ParseJson(r->body);
    if (!v.ok() || !v->is_object() || !v->get_object().contains("entry")) continue;
    for (const auto& e : v->get_object().at("entry").as_array()) {
      const auto& resp = e.as_object().at("response").as_object();
      out.statuses.push_back("  " + std::string(resp.at("status").as_string()));
      if (resp.contains("location")) assigned(std::string(resp.at("location").as_string()));
    }
  }
  // Stopped cleanly, as a deployment stops it: SQLite's full text of the last writes, which may
  // still wait to be indexed in a batch (fts_pending), is indexed before the database closes.
  server->Kill(SIGTERM);
  EXPECT_EQ(server->Wait(), 0);
  return out;
}

std::string SortedLines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  std::string sorted;
  for (const auto& l : lines) sorted += l + "\n";
  return sorted;
}

// Replaces the ids a server assigned by their order of assignment, the same on both servers,
// and sorts the lines.
std::string WithStableIds(std::string s, const std::vector<std::string>& assigned) {
  for (size_t i = 0; i < assigned.size(); ++i) {
    const std::string label = "assigned-" + std::to_string(i);
    for (size_t at = s.find(assigned[i]); at != std::string::npos;
         at = s.find(assigned[i], at + label.size())) {
      s.replace(at, assigned[i].size(), label);
    }
  }
  return SortedLines(s);
}

// Every resource's JSON without meta.lastUpdated (the instant of the commit), as lines.
std::string SqliteJsonDump(const std::string& db, const fs::path& dir) {
  const fs::path file = dir / "json.sql", out = dir / "json.txt";
  std::ofstream(file) << "SELECT type || '/' || id || ' ' || version || ' ' || "
                         "json_remove(json, '$.meta.lastUpdated') FROM resource "
                         "ORDER BY type, id;\n";
  const std::string cmd =
      "sqlite3 '" + db + "' < '" + file.string() + "' > '" + out.string() + "' 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << ReadFile(out);
  return ReadFile(out);
}

// The import into an empty database is a bulk load: it writes a batch as one unit, and the store
// holds the index rows and inserts them in sorted runs when the load ends (store/sqlite
// bulk_index_build.h). The database must be the one that one resource per commit, each with its
// index rows, leaves: the same resources, versions, history and index rows, and the same
// rejections. The input has a resource twice in one batch (version 2 replaces the rows of
// version 1 held earlier in the load) and a line that is rejected.
TEST(Cli, ImportInBatchesLeavesTheSameRowsAsOneResourcePerCommit) {
  TempDir dir;
  auto gen = Jiceng({"generate", "--out", (dir.path() / "gen").string(), "--format", "ndjson",
                     "--residents", "15", "--seed", "7", "--quiet"},
                    dir.path());
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  {
    std::ofstream out(dir.path() / "gen" / "99-extra.ndjson");
    out << R"({"resourceType":"Patient","id":"x1","name":[{"family":"Zhang"}],"gender":"male"})"
        << "\n";
    out << R"({"resourceType":"Patient","id":"x2","birthDate":"not-a-date"})"
        << "\n";
    out << R"({"resourceType":"Patient","id":"x1","name":[{"family":"Li","given":["Si"]}],)"
        << R"("birthDate":"1970-05-06"})"
        << "\n";
  }
  const std::string batched = (dir.path() / "batched.db").string();
  const std::string single = (dir.path() / "single.db").string();
  const fs::path batched_err = dir.path() / "batched.err", single_err = dir.path() / "single.err";
  auto a = Jiceng({"import", "--db", batched, "--errors", batched_err.string(), "--quiet",
                   (dir.path() / "gen").string()},
                  dir.path());
  // `a` is a bulk load (an empty database: index rows inserted in sorted runs at the end), `b`
  // writes each resource's rows with it.
  auto b =
      Jiceng({"import", "--db", single, "--errors", single_err.string(), "--quiet", "--batch-size",
              "1", "--unit-size", "1", "--index-while-loading", (dir.path() / "gen").string()},
             dir.path());
  EXPECT_EQ(a.exit_code, 3) << a.err;  // 3: some entries rejected
  EXPECT_EQ(b.exit_code, 3) << b.err;
  EXPECT_EQ(a.out.substr(0, a.out.find(" in ")), b.out.substr(0, b.out.find(" in "))) << a.out;
  EXPECT_NE(a.out.find("1 rejected"), std::string::npos) << a.out;
  EXPECT_EQ(ReadFile(batched_err), ReadFile(single_err));
  EXPECT_NE(ReadFile(batched_err).find("99-extra.ndjson:2"), std::string::npos);

  const std::string expected = SortedLines(SqliteRowsDump(single, dir.path()));
  const std::string actual = SortedLines(SqliteRowsDump(batched, dir.path()));
  EXPECT_EQ(actual, expected);
  for (const char* line : {"resource Patient/x1 2 0", "idx_string Patient/x1 family|li|Li",
                           "idx_date Patient/x1 birthdate", "idx_reference Observation/"}) {
    EXPECT_NE(actual.find(line), std::string::npos) << line;
  }
  EXPECT_EQ(actual.find("idx_string Patient/x1 family|zhang|Zhang"), std::string::npos);
  EXPECT_EQ(SqliteJsonDump(batched, dir.path()), SqliteJsonDump(single, dir.path()));
}

// The same transaction and batch Bundles and REST writes — creates (new ids and ids assigned by
// the server), updates that keep, drop and add index rows, If-Match, deletes and a revival,
// conditional creates that match and that do not, a conditional update, duplicate codings, full
// text that appears and goes — leave exactly the same resources, history and index rows on
// PostgreSQL as on SQLite (PostgreSQL writes a unit's Puts together, new resources without
// looking for old rows: store/postgres/pg_put.h).
TEST(CrossBackend, BundlesOfEveryKindLeaveTheSameIndexRows) {
  JC_REQUIRE_BACKEND(Backend::kPostgres);
  const std::string patient_p1 =
      R"({"resourceType":"Patient","id":"p1","identifier":[{"system":"urn:t","value":"p1"}],)"
      R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Zhang San, )"
      R"(高血压</div>"},"name":[{"family":"Zhang","given":["San"]}],"gender":"male",)"
      R"("birthDate":"1960-02-03","telecom":[{"system":"phone","value":"555-0101"}],)"
      R"("address":[{"city":"Hangzhou","postalCode":"310000"}]})";
  const std::string observation_o1 =
      R"({"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":)"
      R"("http://loinc.org","code":"29463-7","display":"Body weight"},{"system":)"
      R"("http://loinc.org","code":"29463-7","display":"Body weight"}],"text":"Weight"},)"
      R"("subject":{"reference":"Patient/p1"},"effectiveDateTime":"2020-01-02T10:00:00Z",)"
      R"("valueQuantity":{"value":70.5,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"},)"
      R"("component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},)"
      R"("valueQuantity":{"value":120,"unit":"mmHg","system":"http://unitsofmeasure.org",)"
      R"("code":"mm[Hg]"}}]})";
  const std::string b1 =
      R"({"resourceType":"Bundle","type":"transaction","entry":[)"
      R"({"resource":)" +
      patient_p1 +
      R"(,"request":{"method":"PUT","url":"Patient/p1"}},)"
      R"({"resource":{"resourceType":"Patient","id":"p2","identifier":[{"system":"urn:t","value":"p2"}],)"
      R"("name":[{"family":"Wang"}]},"request":{"method":"PUT","url":"Patient/p2"}},)"
      R"({"resource":)" +
      observation_o1 +
      R"(,"request":{"method":"PUT","url":"Observation/o1"}},)"
      R"({"resource":{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[)"
      R"({"system":"http://snomed.info/sct","code":"38341003"},{"system":"http://snomed.info/sct",)"
      R"("code":"38341003"}]},"subject":{"reference":"Patient/p2"},"encounter":{"reference":)"
      R"("urn:uuid:7b0c5a3e-1f2d-4c3b-9a8e-6d5f4e3c2b1a"},"valueString":"high"},)"
      R"("request":{"method":"PUT","url":"Observation/o2"}},)"
      R"({"fullUrl":"urn:uuid:7b0c5a3e-1f2d-4c3b-9a8e-6d5f4e3c2b1a","resource":{"resourceType":)"
      R"("Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/)"
      R"(v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/p1"},"period":{"start":)"
      R"("2020-01-02T09:00:00Z","end":"2020-01-02T11:00:00Z"}},"request":{"method":"POST",)"
      R"("url":"Encounter"}}]})";
  std::string p1_v2 = patient_p1;
  p1_v2.replace(p1_v2.find("\"Zhang\""), 7, "\"Li\"");
  p1_v2.replace(p1_v2.find("\"text\""), p1_v2.find("\"name\"") - p1_v2.find("\"text\""), "");
  std::string o1_v2 = observation_o1;
  o1_v2.replace(o1_v2.find("70.5"), 4, "71");
  const std::string b2 =
      R"({"resourceType":"Bundle","type":"transaction","entry":[)"
      R"({"resource":)" +
      p1_v2 +
      R"(,"request":{"method":"PUT","url":"Patient/p1"}},)"
      R"({"request":{"method":"DELETE","url":"Patient/p2"}},)"
      R"({"resource":)" +
      o1_v2 +
      R"(,"request":{"method":"PUT","url":"Observation/o1","ifMatch":"W/\"1\""}},)"
      R"({"resource":{"resourceType":"Patient","identifier":[{"system":"urn:t","value":"p1"}]},)"
      R"("request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:t|p1"}},)"
      R"({"resource":{"resourceType":"Observation","status":"final","identifier":[{"system":"urn:t",)"
      R"("value":"o3"}],"code":{"text":"note"},"valueQuantity":{"value":3,"unit":"g","system":)"
      R"("http://unitsofmeasure.org","code":"g"}},"request":{"method":"POST","url":"Observation",)"
      R"("ifNoneExist":"identifier=urn:t|o3"}},)"
      R"({"resource":{"resourceType":"Patient","id":"p3","name":[{"family":"Zhao"}]},)"
      R"("request":{"method":"PUT","url":"Patient/p3"}},)"
      R"({"resource":{"resourceType":"Observation","id":"o2","status":"amended","code":{"text":"x"},)"
      R"("subject":{"reference":"Patient/p1"}},"request":{"method":"PUT","url":"Observation/o2"}}]})";
  const std::string b3 =
      R"({"resourceType":"Bundle","type":"batch","entry":[)"
      R"({"resource":{"resourceType":"Patient","id":"p2","name":[{"family":"Wang","given":["Er"]}]},)"
      R"("request":{"method":"PUT","url":"Patient/p2"}},)"
      R"({"resource":{"resourceType":"Patient","id":"p4","birthDate":"1999"},)"
      R"("request":{"method":"PUT","url":"Patient/p4"}},)"
      R"({"request":{"method":"DELETE","url":"Observation/o2"}},)"
      R"({"resource":)" +
      observation_o1 +
      R"(,"request":{"method":"PUT","url":"Observation/o1","ifMatch":"W/\"1\""}},)"
      R"({"resource":{"resourceType":"Patient","identifier":[{"system":"urn:t","value":"p5"}]},)"
      R"("request":{"method":"POST","url":"Patient"}}]})";
  const Headers json = {{"Content-Type", "application/fhir+json"}};
  const std::vector<std::tuple<std::string, std::string, std::string>> requests = {
      {"POST", "/fhir", b1},
      {"POST", "/fhir", b2},
      {"POST", "/fhir", b3},
      {"PUT", "/fhir/Patient/p3", R"({"resourceType":"Patient","id":"p3","gender":"female"})"},
      {"DELETE", "/fhir/Patient/p4", ""},
      {"POST", "/fhir/Patient",
       R"({"resourceType":"Patient","identifier":[{"system":"urn:t","value":"p6"}]})"},
      {"PUT", "/fhir/Patient?identifier=urn:t|p6",
       R"({"resourceType":"Patient","identifier":[{"system":"urn:t","value":"p6"}],"active":true})"},
  };
  std::vector<Headers> headers(requests.size(), json);
  headers[5].push_back({"If-None-Exist", "identifier=urn:t|p6"});

  auto sqlite = TestDatabase::Create(Backend::kSqlite);
  auto pg = TestDatabase::Create(Backend::kPostgres);
  ASSERT_TRUE(sqlite && pg);
  const Replay on_sqlite = RunRequests(sqlite->db(), requests, headers);
  const Replay on_pg = RunRequests(pg->db(), requests, headers);
  EXPECT_EQ(on_pg.statuses, on_sqlite.statuses);
  ASSERT_EQ(on_pg.assigned.size(), on_sqlite.assigned.size());
  EXPECT_EQ(on_sqlite.assigned.size(), 4u);  // Encounter, Observation o3, Patient p5 and p6

  const std::string expected =
      WithStableIds(SqliteRowsDump(sqlite->db(), sqlite->dir()), on_sqlite.assigned);
  const std::string actual = WithStableIds(PgRowsDump(pg->db()), on_pg.assigned);
  EXPECT_EQ(actual, expected);
  // What the comparison must cover.
  for (const char* kind : {"idx_token Patient/p1 identifier|p1|urn:t", "idx_string Patient/p1 ",
                           "idx_date Observation/o1 ", "idx_quantity Observation/o1 ",
                           "idx_reference Encounter/assigned-0 ", "idx_composite Observation/o1 ",
                           "fts Patient/p1", "resource Patient/p2 3 0", "history Patient/p4 2 1",
                           "resource Observation/o1 2 0", "resource Patient/assigned-3 2 0"}) {
    EXPECT_NE(expected.find(kind), std::string::npos) << kind << "\n" << expected;
  }
  EXPECT_TRUE(pg->CheckIntegrity().ok());
}

}  // namespace
}  // namespace jiceng::testing
