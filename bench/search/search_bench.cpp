// search_bench: measures (1) index extraction alone over every resource of the Synthea sample,
// (2) storing them with their index rows through the SQLite store in transaction-sized write
// units (resources/s, DB bytes per resource), and (3) a few query latencies.
//
//   search_bench [synthea_dir] [db_path]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/time.h"
#include "fhir/search/extractor.h"
#include "fhir/search/query.h"
#include "store/sqlite/sqlite_store.h"

namespace fs = std::filesystem;
using namespace jiceng;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

struct Doc {
  std::string type, id, json;
  json::value value;
};

std::vector<std::vector<Doc>> LoadBundles(const fs::path& dir) {
  std::vector<std::vector<Doc>> out;
  // Synthea repeats shared Organizations and Practitioners in every file (conditional creates);
  // the bench stores each resource once.
  std::set<std::string> seen;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f);
    std::stringstream ss;
    ss << in.rdbuf();
    auto v = ParseJson(ss.str());
    if (!v.ok() || !v->is_object()) continue;
    const json::array* entries = FindArray(v->get_object(), "entry");
    if (!entries) continue;
    std::vector<Doc> bundle;
    for (const auto& e : *entries) {
      const json::value* r = e.get_object().if_contains("resource");
      if (!r || !r->is_object()) continue;
      Doc d;
      d.type = std::string(FindString(r->get_object(), "resourceType").value_or(""));
      d.id = std::string(FindString(r->get_object(), "id").value_or(""));
      if (d.id.empty()) {
        // Synthea bundles use urn:uuid fullUrls; take the uuid as the id.
        auto full = FindString(e.get_object(), "fullUrl").value_or("");
        d.id = std::string(full.substr(full.rfind(':') + 1));
      }
      if (!seen.insert(d.type + "/" + d.id).second) continue;
      d.value = *r;
      d.json = ToJson(*r);
      bundle.push_back(std::move(d));
    }
    out.push_back(std::move(bundle));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir = argc > 1 ? argv[1] : "../shared/data/synthea-r4";
  std::string db = argc > 2 ? argv[2] : "/tmp/search_bench.db";
  auto bundles = LoadBundles(dir);
  size_t n = 0;
  for (const auto& b : bundles) n += b.size();
  std::printf("loaded %zu bundles, %zu resources\n", bundles.size(), n);

  // Warm the per-type expression cache so (1) measures steady-state extraction.
  for (const auto& b : bundles)
    for (const auto& d : b) search::ExtractIndexRows(d.value);
  auto t0 = Clock::now();
  size_t rows = 0;
  std::vector<std::vector<store::IndexRows>> index(bundles.size());
  for (size_t i = 0; i < bundles.size(); ++i) {
    for (const auto& d : bundles[i]) {
      index[i].push_back(search::ExtractIndexRows(d.value));
      const auto& r = index[i].back();
      rows += r.tokens.size() + r.strings.size() + r.dates.size() + r.numbers.size() +
              r.quantities.size() + r.references.size() + r.uris.size();
    }
  }
  double ex = Seconds(t0);
  std::printf("extraction: %.0f resources/s (%.1f us each), %.1f index rows per resource\n",
              static_cast<double>(n) / ex, ex * 1e6 / static_cast<double>(n),
              static_cast<double>(rows) / static_cast<double>(n));

  // Stores every bundle as one write unit, with (or without, for the baseline) its index rows.
  auto store_all = [&](const std::string& path, bool with_index) -> std::unique_ptr<store::IStore> {
    fs::remove(path);
    fs::remove(path + "-wal");
    fs::remove(path + "-shm");
    auto st = store::OpenSqliteStore(path);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      return nullptr;
    }
    const store::IndexRows none;
    auto t = Clock::now();
    for (size_t i = 0; i < bundles.size(); ++i) {
      Status ok = (*st)->Write([&](store::IWriteTransaction& txn) -> Status {
        for (size_t k = 0; k < bundles[i].size(); ++k) {
          store::ResourceVersion v;
          v.type = bundles[i][k].type;
          v.id = bundles[i][k].id;
          v.version = 1;
          v.last_updated_us = NowMicros();
          v.json = bundles[i][k].json;
          JC_RETURN_IF_ERROR(txn.Put(v, with_index ? index[i][k] : none));
        }
        return Status::Ok();
      });
      if (!ok.ok()) {
        std::fprintf(stderr, "%s\n", ok.error().message.c_str());
        return nullptr;
      }
    }
    double wr = Seconds(t);
    if (with_index) {
      std::printf("store with index rows: %.0f resources/s (extraction + store: %.0f resources/s)\n",
                  static_cast<double>(n) / wr, static_cast<double>(n) / (wr + ex));
    } else {
      std::printf("store without index rows (baseline): %.0f resources/s\n",
                  static_cast<double>(n) / wr);
    }
    return std::move(*st);
  };
  if (auto base = store_all(db + ".noindex", false)) {
    base->Close();
    std::printf("db size without index rows: %.0f bytes per resource\n",
                static_cast<double>(fs::file_size(db + ".noindex")) / static_cast<double>(n));
  }
  auto stp = store_all(db, true);
  if (!stp) return 1;
  auto& s = *stp;

  const char* queries[][2] = {
      {"Patient", "name=ma"},
      {"Patient", "birthdate=ge1960&birthdate=lt1980&_sort=birthdate&_count=50"},
      {"Patient", "gender=female&_summary=count"},
      {"Observation", "code=http://loinc.org|85354-9&_count=50"},
      {"Observation", "component-code=http://loinc.org|8480-6&_count=50"},
      {"Observation", "code=http://loinc.org|29463-7&value-quantity=gt80||kg&_count=50"},
      {"Observation", "date=ge2015&_sort=-date&_count=50"},
      {"Condition", "code=http://snomed.info/sct|44054006"},
      {"Encounter", "date=2019&_count=50"},
  };
  // A patient-scoped query needs a real id: take the first Patient.
  std::string pid;
  for (const auto& b : bundles)
    for (const auto& d : b)
      if (pid.empty() && d.type == "Patient") pid = d.id;
  std::string per_patient = "subject=Patient/" + pid + "&code=http://loinc.org|29463-7&_sort=-date";
  std::vector<std::pair<std::string, std::string>> all;
  for (auto& q : queries) all.emplace_back(q[0], q[1]);
  all.emplace_back("Observation", per_patient);
  for (const auto& [type, text] : all) {
    search::Params params;
    std::string_view q = text;
    while (!q.empty()) {
      size_t amp = q.find('&');
      std::string_view part = q.substr(0, amp);
      size_t eq = part.find('=');
      params.emplace_back(std::string(part.substr(0, eq)), std::string(part.substr(eq + 1)));
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
    auto parsed = search::ParseSearch(type, params, {});
    if (!parsed.ok()) {
      std::fprintf(stderr, "%s: %s\n", text.c_str(), parsed.error().message.c_str());
      continue;
    }
    std::vector<double> ms;
    int64_t total = 0;
    for (int i = 0; i < 20; ++i) {
      auto txn = s.BeginRead();
      auto t = Clock::now();
      auto page = (*txn)->Search(parsed->query);
      ms.push_back(Seconds(t) * 1e3);
      if (page.ok() && page->total) total = *page->total;
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%-12s %-70s total %6lld  p50 %6.2f ms  p95 %6.2f ms\n", type.c_str(),
                text.substr(0, 70).c_str(), static_cast<long long>(total), ms[10], ms[18]);
  }
  s.Close();
  stp.reset();
  std::printf("db size: %.0f bytes per resource\n",
              static_cast<double>(fs::file_size(db)) / static_cast<double>(n));
  return 0;
}
