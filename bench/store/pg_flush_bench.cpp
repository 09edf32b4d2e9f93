// pg_flush_bench: from how many rows COPY pays for an index table's rows of new resources
// (PostgresOptions::copy_min_rows, store/postgres/pg_put.h).
//
//   pg_flush_bench --pg URL [--rounds N] [--sizes 1,2,4,…]
//
// In a fresh schema (dropped afterwards), one transaction per size: flushes of R new resources,
// each with one row in every index table (so R rows per table, no full text), written
// alternately by INSERT … unnest() in one pipeline and by one COPY per table; prints the median
// time of a flush both ways, the mean CPU time of the server's backend per flush (from
// /proc/PID/schedstat: the cluster must run on this machine) and the 1-minute load average. By
// COPY, the flush's resource and history rows go by COPY too (R of each).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_put.h"
#include "store/postgres/pg_schema.h"

namespace {

using jiceng::Status;
using jiceng::store::IndexRows;
using jiceng::store::ResourceVersion;
using jiceng::store::postgres::PendingPuts;
using jiceng::store::postgres::PgConnection;
using Clock = std::chrono::steady_clock;

double Load() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  double one = -1;
  if (f != nullptr) {
    if (std::fscanf(f, "%lf", &one) != 1) one = -1;
    std::fclose(f);
  }
  return one;
}

// One row in each index table, with values of realistic sizes.
IndexRows Rows(int64_t n) {
  const std::string s = std::to_string(n);
  IndexRows x;
  x.patient_compartment = "patient-" + std::to_string(n % 97);
  x.tokens = {{"code", "http://loinc.org", "8480-" + s}};
  x.strings = {{"name", "zhang san " + s, "Zhang San " + s}};
  x.dates = {{"date", 1'600'000'000'000'000 + n, 1'600'000'001'000'000 + n}};
  x.numbers = {{"probability", 0.5 + static_cast<double>(n)}};
  x.quantities = {{"value-quantity", 120.0 + static_cast<double>(n % 50),
                   "http://unitsofmeasure.org", "mm[Hg]", 120.0, "mm[Hg]"}};
  x.references = {{"subject", "Patient", "patient-" + std::to_string(n % 97), ""}};
  x.uris = {{"url", "http://example.org/fhir/" + s}};
  jiceng::store::CompositeIndexRow c;
  c.param = "code-value-quantity";
  c.system1 = "http://loinc.org";
  c.code1 = "8480-6";
  c.code2 = "mm[Hg]";
  c.system2 = "http://unitsofmeasure.org";
  c.number2 = static_cast<double>(n % 200);
  x.composites = {c};
  return x;
}

// CPU time (µs) the process `pid` has run so far; 0 if unknown.
double CpuUs(int64_t pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/schedstat").c_str(), "r");
  unsigned long long ns = 0;
  if (f != nullptr) {
    if (std::fscanf(f, "%llu", &ns) != 1) ns = 0;
    std::fclose(f);
  }
  return static_cast<double>(ns) / 1000.0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  int rounds = 30;
  std::vector<int> sizes = {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--pg")
      url = argv[i + 1];
    else if (a == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else if (a == "--sizes") {
      sizes.clear();
      for (const char* p = argv[i + 1]; *p != '\0';) {
        char* end = nullptr;
        sizes.push_back(static_cast<int>(std::strtol(p, &end, 10)));
        p = *end == ',' ? end + 1 : end;
        if (end == p && *p != '\0') break;
      }
    }
  }
  if (url.empty()) {
    std::fprintf(stderr, "usage: pg_flush_bench --pg URL [--rounds N]\n");
    return 2;
  }
  const std::string schema = "jiceng_flush_bench_" + std::to_string(getpid());
  auto admin = PgConnection::Open(url);
  if (!admin.ok() || !(*admin)->Exec("CREATE SCHEMA " + schema).ok()) {
    std::fprintf(stderr, "cannot create schema %s\n", schema.c_str());
    return 1;
  }
  int rc = 0;
  {
    const std::string su = url + (url.find('?') == std::string::npos ? "?" : "&") +
                           "options=-csearch_path%3D" + schema;
    auto conn = PgConnection::Open(su);
    Status s = conn.ok() ? jiceng::store::postgres::ApplyMigrations(
                               **conn, jiceng::store::postgres::Migrations())
                         : Status(conn.error());
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.error().message.c_str());
      rc = 1;
    }
    int64_t next_id = 0;
    int64_t backend = 0;
    if (rc == 0) {
      auto pid = (*conn)->Query("SELECT pg_backend_pid()::int8");
      if (pid.ok()) backend = pid->Int(0, 0);
    }
    std::printf(
        "rows per table: median flush by unnest / by COPY (µs wall); mean backend CPU per flush "
        "by unnest / by COPY (µs); %d rounds each\n",
        rounds);
    for (int per_table : sizes) {
      if (rc != 0) break;
      PgConnection& c = **conn;
      std::vector<double> by[2];
      double cpu[2] = {0, 0};
      (void)c.Exec("BEGIN");
      for (int round = 0; round < 2 * rounds + 2 && rc == 0; ++round) {
        const int copy = round % 2;
        PendingPuts queue;
        queue.set_copy_min_rows(copy ? 1 : static_cast<size_t>(-1));
        for (int i = 0; i < per_table; ++i) {
          const int64_t n = next_id++;
          const std::string id = "r" + std::to_string(n);
          s = queue.Add(ResourceVersion{"Observation", id, 1, n, false,
                                        "{\"resourceType\":\"Observation\",\"id\":\"" + id + "\"}"},
                        Rows(n));
        }
        const double cpu0 = CpuUs(backend);
        const auto t0 = Clock::now();
        s = queue.Flush(c);
        const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
        if (round >= 2) cpu[copy] += CpuUs(backend) - cpu0;
        if (!s.ok()) {
          std::fprintf(stderr, "flush: %s\n", s.error().message.c_str());
          rc = 1;
        }
        if (round >= 2) by[copy].push_back(us);  // the first two warm the statements up
      }
      (void)c.Exec("COMMIT");
      const double u = Median(by[0]), k = Median(by[1]);
      std::printf("%5d  wall %9.0f %9.0f (COPY/unnest %.2f)  CPU %9.0f %9.0f (%.2f)  [load %.2f]\n",
                  per_table, u, k, k / u, cpu[0] / rounds, cpu[1] / rounds, cpu[1] / cpu[0],
                  Load());
      std::fflush(stdout);
    }
  }
  (void)(*admin)->Exec("DROP SCHEMA " + schema + " CASCADE");
  return rc;
}
