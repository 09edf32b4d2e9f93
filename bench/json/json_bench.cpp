// json_bench: parse speed of ParseJson over the 30 Synthea transaction Bundles (the bytes a
// transaction write parses first), next to Boost.JSON's stream_parser with the same options on
// the same bytes as a reference. Prints the best and the median of `passes` passes over all
// files, in ms per pass and MB/s. Then the same over one array of every decimal in the sample,
// ten times over (the worst case for decimal conversion: nothing but decimals).
//
//   json_bench [synthea_dir] [passes]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/json.h"

namespace fs = std::filesystem;
using namespace jiceng;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> LoadFiles(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<std::string> out;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

// Every decimal of `v` appended to `out`.
void CollectDecimals(const json::value& v, json::array& out) {
  if (v.is_object()) {
    for (const auto& kv : v.get_object()) CollectDecimals(kv.value(), out);
  } else if (v.is_array()) {
    for (const auto& e : v.get_array()) CollectDecimals(e, out);
  } else if (v.is_double()) {
    out.push_back(v);
  }
}

// Runs `parse_all` `passes` times after one warm-up pass; prints best and median.
template <class F>
void Measure(const char* name, int passes, double megabytes, F parse_all) {
  parse_all();
  std::vector<double> ms;
  for (int i = 0; i < passes; ++i) {
    auto t = Clock::now();
    parse_all();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
  }
  std::sort(ms.begin(), ms.end());
  double best = ms.front(), median = ms[ms.size() / 2];
  std::printf("%-28s best %7.1f ms (%6.1f MB/s)   median %7.1f ms (%6.1f MB/s)\n", name, best,
              megabytes / best * 1e3, median, megabytes / median * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir = argc > 1 ? argv[1] : "../shared/data/synthea-r4";
  int passes = argc > 2 ? std::atoi(argv[2]) : 20;
  if (passes < 1) passes = 1;
  auto files = LoadFiles(dir);
  std::size_t bytes = 0;
  for (const auto& f : files) bytes += f.size();
  double mb = static_cast<double>(bytes) / 1e6;
  std::printf("%zu files, %.1f MB, %d passes\n", files.size(), mb, passes);

  std::size_t failures = 0;
  auto measure_both = [&](const std::vector<std::string>& docs, double megabytes) {
    Measure("ParseJson", passes, megabytes, [&] {
      for (const auto& f : docs)
        if (!ParseJson(f).ok()) ++failures;
    });
    Measure("boost::json::stream_parser", passes, megabytes, [&] {
      for (const auto& f : docs) {
        json::parse_options opts;
        opts.max_depth = 128;
        json::stream_parser p({}, opts);
        boost::system::error_code ec;
        p.write(f.data(), f.size(), ec);
        if (!ec) p.finish(ec);
        if (ec) {
          ++failures;
          continue;
        }
        json::value v = p.release();
        if (v.is_null()) ++failures;
      }
    });
  };
  measure_both(files, mb);

  json::array decimals;
  for (const auto& f : files) {
    auto v = ParseJson(f);
    if (v.ok()) CollectDecimals(*v, decimals);
  }
  const std::size_t per_copy = decimals.size();
  for (int copy = 1; copy < 10; ++copy)
    for (std::size_t i = 0; i < per_copy; ++i) decimals.push_back(decimals[i]);
  const std::vector<std::string> array_doc{ToJson(decimals)};
  const double array_mb = static_cast<double>(array_doc[0].size()) / 1e6;
  std::printf("one array of %zu decimals (the sample's %zu, ten times), %.2f MB\n", decimals.size(),
              per_copy, array_mb);
  measure_both(array_doc, array_mb);
  if (failures) {
    std::fprintf(stderr, "%zu parse failures\n", failures);
    return 1;
  }
  return 0;
}
