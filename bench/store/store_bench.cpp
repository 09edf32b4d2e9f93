// store_bench: what the SQLite store costs next to raw SQLite on the same disk.
//
//   store_bench [--dir DIR] [--rows N] [--writes N] [--reads N] [--pg URL]
//
// With --pg, (b) and (c) run against the PostgreSQL store at URL instead (in a fresh schema
// that is dropped afterwards) and (a) is skipped: pgbench -S on the same cluster is that
// backend's raw baseline (see docs/benchmarks.md).
//
// (a) raw SQLite: N rows of ~1 KB JSON, one transaction per 300 rows, WAL + synchronous=FULL,
//     and, for the fsync floor, single-row transactions;
// (b) IStore::Write of single resources from 1 and 4 threads (group commit), and of 300-resource
//     "transaction Bundles";
// (c) ReadCurrent by id (one read transaction each) from 2 threads, then 1.
//
// Each figure is followed by the 1-minute load average: on a machine whose cores are shared,
// compare only figures measured at a similar load (short runs: --rows 3000 --writes 200
// --reads 20000).
//
// The raw baseline is the one place outside src/store/sqlite that includes sqlite3.h: it measures
// SQLite itself, below the port.
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "store/postgres/pg_connection.h"
#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace {

using jiceng::Status;
using jiceng::store::IndexRows;
using jiceng::store::IStore;
using jiceng::store::IWriteTransaction;
using jiceng::store::ResourceVersion;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// The 1-minute load average, printed beside each figure: the cores are shared, and a rate
// measured while other work runs is not comparable with one measured on a quiet machine.
std::string Load() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  double one = -1;
  if (f != nullptr) {
    if (std::fscanf(f, "%lf", &one) != 1) one = -1;
    std::fclose(f);
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "  (load %.2f)", one);
  return buf;
}

// A realistic ~1 KB Observation (blood pressure panel with identifiers and a narrative-free body).
std::string ObservationJson(const std::string& id) {
  std::string j =
      R"({"resourceType":"Observation","id":")" + id +
      R"(","meta":{"versionId":"1","lastUpdated":"2024-05-01T08:30:00.000+08:00",)"
      R"("profile":["http://hl7.org/fhir/StructureDefinition/bp"]},"status":"final",)"
      R"("category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category",)"
      R"("code":"vital-signs","display":"Vital Signs"}]}],"code":{"coding":[{"system":"http://loinc.org",)"
      R"("code":"85354-9","display":"Blood pressure panel with all children optional"}],"text":"血压"},)"
      R"("subject":{"reference":"Patient/pat-000123","display":"张三"},"encounter":{"reference":"Encounter/enc-98765"},)"
      R"("effectiveDateTime":"2024-05-01T08:25:00+08:00","issued":"2024-05-01T08:30:00.000+08:00",)"
      R"("performer":[{"reference":"Practitioner/doc-042","display":"李医生"}],)"
      R"("identifier":[{"system":"urn:oid:2.16.156.10011.1.1","value":")" + id +
      R"("}],"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6",)"
      R"("display":"Systolic blood pressure"}]},"valueQuantity":{"value":132,"unit":"mmHg",)"
      R"("system":"http://unitsofmeasure.org","code":"mm[Hg]"}},{"code":{"coding":[{"system":"http://loinc.org",)"
      R"("code":"8462-4","display":"Diastolic blood pressure"}]},"valueQuantity":{"value":86,"unit":"mmHg",)"
      R"("system":"http://unitsofmeasure.org","code":"mm[Hg]"}}],"note":[{"text":"坐位，右上臂，休息5分钟后测量"}]})";
  return j;
}

void Check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

// (a) raw SQLite.
double RawInsert(const std::string& path, int rows, int per_txn) {
  sqlite3* db = nullptr;
  Check(sqlite3_open(path.c_str(), &db), db, "open");
  Check(sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE IF NOT EXISTS r(rid INTEGER PRIMARY KEY, type TEXT, id TEXT, "
                     "json TEXT, UNIQUE(type, id))",
                     nullptr, nullptr, nullptr),
        db, "setup");
  sqlite3_stmt* ins = nullptr;
  Check(sqlite3_prepare_v2(db, "INSERT INTO r(type, id, json) VALUES ('Observation', ?1, ?2)", -1,
                           &ins, nullptr),
        db, "prepare");
  std::vector<std::string> ids, docs;
  for (int i = 0; i < rows; ++i) {
    ids.push_back("raw-" + std::to_string(per_txn) + "-" + std::to_string(i));
    docs.push_back(ObservationJson(ids.back()));
  }
  auto start = Clock::now();
  for (int i = 0; i < rows; i += per_txn) {
    Check(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), db, "begin");
    for (int k = i; k < std::min(rows, i + per_txn); ++k) {
      sqlite3_bind_text(ins, 1, ids[k].data(), static_cast<int>(ids[k].size()), SQLITE_STATIC);
      sqlite3_bind_text(ins, 2, docs[k].data(), static_cast<int>(docs[k].size()), SQLITE_STATIC);
      Check(sqlite3_step(ins), db, "insert");
      sqlite3_reset(ins);
    }
    Check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
  }
  double s = Seconds(start);
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return rows / s;
}

ResourceVersion Version(const std::string& id, int64_t version) {
  ResourceVersion v;
  v.type = "Observation";
  v.id = id;
  v.version = version;
  v.last_updated_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  v.json = ObservationJson(id);
  return v;
}

IndexRows Index(const std::string& id) {
  return IndexRows{{{"identifier", "urn:oid:2.16.156.10011.1.1", id},
                    {"code", "http://loinc.org", "85354-9"}}};
}

// What a create does: read current (absent), put version 1 with its index rows.
Status Create(IWriteTransaction& txn, const std::string& id) {
  auto cur = txn.ReadCurrent("Observation", id);
  if (!cur.ok()) return cur.error();
  return txn.Put(Version(id, cur->has_value() ? (*cur)->version + 1 : 1), Index(id));
}

// (b) single-resource writes from `threads` threads.
double StoreSingles(IStore& store, int threads, int per_thread, const std::string& prefix) {
  std::atomic<int> failed{0};
  auto start = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        std::string id = prefix + std::to_string(t) + "-" + std::to_string(i);
        if (!store.Write([&](IWriteTransaction& txn) { return Create(txn, id); }).ok()) ++failed;
      }
    });
  }
  for (auto& th : ts) th.join();
  double s = Seconds(start);
  if (failed) std::fprintf(stderr, "%d writes failed\n", failed.load());
  return threads * per_thread / s;
}

// (b') transaction Bundles of 300 resources, one Write each.
double StoreBundles(IStore& store, int bundles) {
  auto start = Clock::now();
  for (int b = 0; b < bundles; ++b) {
    Status s = store.Write([&](IWriteTransaction& txn) -> Status {
      for (int i = 0; i < 300; ++i) {
        Status one = Create(txn, "bundle-" + std::to_string(b) + "-" + std::to_string(i));
        if (!one.ok()) return one;
      }
      return Status::Ok();
    });
    if (!s.ok()) std::fprintf(stderr, "bundle failed: %s\n", s.error().message.c_str());
  }
  return bundles * 300 / Seconds(start);
}

// (c) ReadCurrent by id, each in its own read transaction.
double StoreReads(IStore& store, int threads, int per_thread, int id_space) {
  std::atomic<int> missing{0};
  auto start = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) + 1);
      std::uniform_int_distribution<int> pick(0, id_space - 1);
      for (int i = 0; i < per_thread; ++i) {
        int n = pick(rng);
        std::string id = "bundle-" + std::to_string(n / 300) + "-" + std::to_string(n % 300);
        auto txn = store.BeginRead();
        if (!txn.ok()) { ++missing; continue; }
        auto cur = (*txn)->ReadCurrent("Observation", id);
        if (!cur.ok() || !cur->has_value()) ++missing;
      }
    });
  }
  for (auto& th : ts) th.join();
  double s = Seconds(start);
  if (missing) std::fprintf(stderr, "%d reads missed\n", missing.load());
  return threads * per_thread / s;
}

// (b) and (c) against any backend.
void RunStore(IStore& store, int rows, int writes, int reads) {
  double rate = StoreSingles(store, 1, writes / 2, "single1-");
  std::printf("(b) store Write, 1 resource, 1 thread:   %8.0f resources/s%s\n", rate,
              Load().c_str());
  rate = StoreSingles(store, 4, writes, "single4-");
  std::printf("    store Write, 1 resource, 4 threads:  %8.0f resources/s%s\n", rate,
              Load().c_str());
  rate = StoreSingles(store, 16, writes / 4, "single16-");
  std::printf("    store Write, 1 resource, 16 threads: %8.0f resources/s%s\n", rate,
              Load().c_str());
  const int bundles = std::max(1, rows / 300);
  rate = StoreBundles(store, bundles);
  std::printf("    store Write, 300-resource bundles:   %8.0f resources/s%s\n", rate,
              Load().c_str());
  rate = StoreReads(store, 2, reads, bundles * 300);
  std::printf("(c) ReadCurrent by id, 2 threads:        %8.0f reads/s%s\n", rate,
              Load().c_str());
  rate = StoreReads(store, 1, reads, bundles * 300);
  std::printf("    ReadCurrent by id, 1 thread:         %8.0f reads/s%s\n", rate,
              Load().c_str());
  std::fflush(stdout);
}

// The PostgreSQL store in a schema of its own (search_path via the URL's libpq options).
int RunPostgres(const std::string& url, int rows, int writes, int reads) {
  using jiceng::store::postgres::PgConnection;
  const std::string schema = "store_bench_" + std::to_string(::getpid());
  auto admin = PgConnection::Open(url);
  if (!admin.ok() || !(*admin)->Exec("CREATE SCHEMA " + schema).ok()) {
    std::fprintf(stderr, "cannot create schema %s at %s\n", schema.c_str(), url.c_str());
    return 1;
  }
  const std::string store_url = url + (url.find('?') == std::string::npos ? "?" : "&") +
                                "options=-csearch_path%3D" + schema;
  std::printf("store_bench: postgres %s (schema %s), ~%zu-byte JSON\n", url.c_str(),
              schema.c_str(), ObservationJson("obs-0000001").size());
  int rc = 0;
  {
    auto opened = jiceng::store::OpenPostgresStore(store_url);
    if (opened.ok()) {
      RunStore(**opened, rows, writes, reads);
      (*opened)->Close();
    } else {
      std::fprintf(stderr, "open: %s\n", opened.error().message.c_str());
      rc = 1;
    }
  }
  (void)(*admin)->Exec("DROP SCHEMA " + schema + " CASCADE");
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "store_bench_data";
  int rows = 30000;
  int writes = 2000;  // per thread, single-resource writes
  int reads = 100000;  // per thread
  std::string pg_url;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--dir") dir = argv[i + 1];
    else if (a == "--rows") rows = std::atoi(argv[i + 1]);
    else if (a == "--writes") writes = std::atoi(argv[i + 1]);
    else if (a == "--reads") reads = std::atoi(argv[i + 1]);
    else if (a == "--pg") pg_url = argv[i + 1];
  }
  if (!pg_url.empty()) return RunPostgres(pg_url, rows, writes, reads);
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::printf("store_bench: dir=%s, ~%zu-byte JSON, WAL + synchronous=FULL\n", dir.c_str(),
              ObservationJson("obs-0000001").size());

  std::printf("(a) raw sqlite, 300 rows/txn:          %10.0f rows/s\n",
              RawInsert(dir + "/raw.db", rows, 300));
  std::printf("    raw sqlite, 1 row/txn (fsync floor): %8.0f rows/s\n",
              RawInsert(dir + "/raw1.db", std::min(rows, 2000), 1));

  auto opened = jiceng::store::OpenSqliteStore(dir + "/store.db");
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.error().message.c_str());
    return 1;
  }
  IStore& store = **opened;
  RunStore(store, rows, writes, reads);
  store.Close();
  fs::remove_all(dir);
  return 0;
}
