// extract_bench: CPU time of search index extraction (search::ExtractIndexRows), the largest
// part of what `jiceng import` spends per resource on its preparation threads. Loads every
// resource once (NDJSON files, and the resources of transaction Bundles in *.json files), then
// extracts the index rows of all of them `runs` times on one thread and prints the median and
// best µs per resource.
//
// --dump FILE writes every extracted row in a stable text form (one resource after the other,
// rows in extraction order), so that a change to the extractor can be proved not to change a
// single row: dump before, dump after, compare the files byte for byte.
//
//   extract_bench [--runs N] [--limit N] [--dump FILE] PATH...
//
// A PATH is an .ndjson or .json file or a directory of them.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "fhir/search/extractor.h"

namespace fs = std::filesystem;
using namespace jiceng;
using Clock = std::chrono::steady_clock;

namespace {

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The resources of one file: one per NDJSON line, or the entries of a Bundle (or the resource
// itself) for a .json file.
void LoadFile(const fs::path& path, std::vector<json::value>& out) {
  const std::string text = ReadFile(path);
  if (path.extension() == ".ndjson") {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      auto v = ParseJson(line);
      if (v.ok() && v->is_object()) out.push_back(std::move(*v));
    }
    return;
  }
  auto v = ParseJson(text);
  if (!v.ok() || !v->is_object()) return;
  const json::array* entries = FindArray(v->get_object(), "entry");
  if (!entries) {
    out.push_back(std::move(*v));
    return;
  }
  for (const json::value& e : *entries) {
    if (!e.is_object()) continue;
    const json::value* r = e.get_object().if_contains("resource");
    if (r && r->is_object()) out.push_back(*r);
  }
}

void Load(const fs::path& path, std::vector<json::value>& out) {
  if (!fs::is_directory(path)) return LoadFile(path, out);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(path)) {
    const auto ext = e.path().extension();
    if (ext == ".ndjson" || ext == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) LoadFile(f, out);
}

// Doubles with every digit, so that any change of value shows in the dump.
std::string Num(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

void Dump(const json::value& resource, const store::IndexRows& rows, std::string& out) {
  const json::object& o = resource.get_object();
  out += "== ";
  out += FindString(o, "resourceType").value_or("");
  out += '/';
  out += FindString(o, "id").value_or("");
  out += '\n';
  auto line = [&out](std::initializer_list<std::string_view> fields) {
    bool first = true;
    for (std::string_view f : fields) {
      if (!first) out += '\t';
      out += f;
      first = false;
    }
    out += '\n';
  };
  for (const auto& r : rows.tokens) line({"token", r.param, r.system, r.code});
  for (const auto& r : rows.strings) line({"string", r.param, r.value, r.exact});
  for (const auto& r : rows.dates)
    line({"date", r.param, std::to_string(r.start_us), std::to_string(r.end_us)});
  for (const auto& r : rows.numbers) line({"number", r.param, Num(r.value)});
  for (const auto& r : rows.quantities)
    line({"quantity", r.param, Num(r.value), r.system, r.code, Num(r.canonical_value),
          r.canonical_code});
  for (const auto& r : rows.references)
    line({"reference", r.param, r.target_type, r.target_id, r.url});
  for (const auto& r : rows.uris) line({"uri", r.param, r.value});
  for (const auto& r : rows.composites)
    line({"composite", r.param, r.system1, r.code1, r.code2, r.system2, Num(r.number2),
          r.canonical_code2, Num(r.canonical_number2), std::to_string(r.start2_us),
          std::to_string(r.end2_us)});
  for (const auto& r : rows.full_text) line({"fulltext", r.narrative, r.content});
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  size_t limit = 0;
  std::string dump_path;
  std::vector<fs::path> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--runs" && i + 1 < argc)
      runs = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--limit" && i + 1 < argc)
      limit = std::strtoul(argv[++i], nullptr, 10);
    else if (arg == "--dump" && i + 1 < argc)
      dump_path = argv[++i];
    else
      paths.emplace_back(arg);
  }
  if (paths.empty()) {
    std::fprintf(stderr, "usage: extract_bench [--runs N] [--limit N] [--dump FILE] PATH...\n");
    return 2;
  }
  std::vector<json::value> resources;
  for (const auto& p : paths) Load(p, resources);
  if (limit && resources.size() > limit) resources.resize(limit);
  if (resources.empty()) {
    std::fprintf(stderr, "no resources found\n");
    return 1;
  }
  const search::ExtractOptions options{"https://jiceng.example/fhir"};

  if (!dump_path.empty()) {
    std::string out;
    for (const json::value& r : resources) Dump(r, search::ExtractIndexRows(r, options), out);
    std::ofstream(dump_path, std::ios::binary) << out;
    std::printf("%zu resources dumped to %s\n", resources.size(), dump_path.c_str());
    return 0;
  }

  // One warm-up pass compiles every parameter expression (a one-off cost per process).
  size_t row_count = 0;
  for (const json::value& r : resources) {
    store::IndexRows rows = search::ExtractIndexRows(r, options);
    row_count += rows.tokens.size() + rows.strings.size() + rows.dates.size() +
                 rows.numbers.size() + rows.quantities.size() + rows.references.size() +
                 rows.uris.size() + rows.composites.size() + rows.full_text.size();
  }
  std::vector<double> us;
  for (int run = 0; run < runs; ++run) {
    const auto start = Clock::now();
    for (const json::value& r : resources) {
      store::IndexRows rows = search::ExtractIndexRows(r, options);
      if (rows.tokens.size() == SIZE_MAX) std::abort();  // keeps the call
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count() /
                 static_cast<double>(resources.size()));
  }
  std::sort(us.begin(), us.end());
  std::printf(
      "%zu resources, %.1f rows each; extraction: median %.2f us/resource, best %.2f (%d runs)\n",
      resources.size(), static_cast<double>(row_count) / resources.size(), us[us.size() / 2],
      us.front(), runs);
  return 0;
}
