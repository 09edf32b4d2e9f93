#include "cli/export_command.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "api/bulk_export.h"
#include "base/time.h"
#include "cli/platform.h"

namespace jiceng::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct ExportFlags {
  std::string db = "jiceng.db";
  std::string out = "export";
  std::vector<std::string> types;
  std::string since;
  int page = 10000;  // rows per ListCurrent/History call: fewer, larger OFFSET steps
  bool quiet = false;
};

int RunExport(const ExportFlags& f) {
  std::optional<int64_t> since_us;
  if (!f.since.empty()) {
    auto t = ParseDateTimeStart(f.since);
    if (!t.ok()) {
      std::cerr << "jiceng export: --since: " << t.error().message << "\n";
      return 2;
    }
    since_us = *t;
  }
  std::error_code ec;
  if (!fs::exists(f.db, ec)) {
    std::cerr << "jiceng export: no database at " << f.db << "\n";
    return 2;
  }
  Config config;
  config.db = f.db;
  auto opened = OpenPlatform(config);
  if (!opened.ok()) {
    std::cerr << "jiceng export: cannot open database '" << f.db << "': " << opened.error().message
              << "\n";
    return 1;
  }
  Platform& p = **opened;
  std::vector<std::string> types;
  for (const auto& list : f.types) {
    std::size_t pos = 0;
    while (pos <= list.size()) {
      auto comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      std::string t = list.substr(pos, comma - pos);
      if (!t.empty()) {
        if (!p.fhir_options.is_resource_type(t)) {
          std::cerr << "jiceng export: unknown resource type '" << t << "'\n";
          return 2;
        }
        types.push_back(t);
      }
      pos = comma + 1;
    }
  }
  if (types.empty()) types = p.fhir_options.resource_types;
  fs::create_directories(f.out, ec);
  if (ec) {
    std::cerr << "jiceng export: cannot create " << f.out << ": " << ec.message() << "\n";
    return 1;
  }

  // One read transaction: the whole export is one consistent snapshot.
  auto txn = p.store->BeginRead();
  if (!txn.ok()) {
    std::cerr << "jiceng export: " << txn.error().message << "\n";
    return 1;
  }
  const auto start = Clock::now();
  auto last = start - std::chrono::seconds(1);
  int64_t total = 0;
  std::map<std::string, int64_t> counts;
  for (const auto& type : types) {
    auto n = (*txn)->CountCurrent(type);
    if (!n.ok()) {
      std::cerr << "jiceng export: " << n.error().message << "\n";
      return 1;
    }
    if (*n == 0) continue;
    api::NdjsonWriter out;
    if (Status st = out.Open((fs::path(f.out) / (type + ".ndjson")).string()); !st.ok()) {
      std::cerr << "jiceng export: " << st.error().message << "\n";
      return 1;
    }
    int64_t done = 0;
    auto tick = [&] {
      auto now = Clock::now();
      if (f.quiet || now - last < std::chrono::milliseconds(500)) return;
      last = now;
      double secs = std::chrono::duration<double>(now - start).count();
      double left = since_us ? 0 : static_cast<double>(*n - done);
      double rate = secs > 0 ? static_cast<double>(total + done) / secs : 0;
      std::cerr << fmt::format(
          "\rexport: {} {}/{}, {} resources in all, {:.0f} resources/s, ETA for this type {:.0f} s "
          "  ",
          type, done, *n, total + done, rate, rate > 0 ? left / rate : 0.0);
    };
    auto written =
        api::ExportResources(**txn, type, since_us, f.page, [&](const std::string& json) {
          if (++done % 1000 == 0) tick();
          return out.Line(json);
        });
    Status closed = out.Close();
    if (!written.ok() || !closed.ok()) {
      std::cerr << "\njiceng export: " << type << ": "
                << (written.ok() ? closed.error().message : written.error().message) << "\n";
      return 1;
    }
    if (*written == 0) {
      fs::remove(fs::path(f.out) / (type + ".ndjson"), ec);
      continue;
    }
    counts[type] = *written;
    total += *written;
  }
  txn->reset();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (!f.quiet) std::cerr << "\r" << std::string(100, ' ') << "\r";
  std::cout << fmt::format(
      "exported {} resources of {} types in {:.2f} s ({:.0f} resources/s) into {}\n", total,
      counts.size(), secs, secs > 0 ? static_cast<double>(total) / secs : 0.0, f.out);
  std::string list;
  for (const auto& [type, n] : counts)
    list += fmt::format("{}{} {}", list.empty() ? "" : ", ", type, n);
  if (!list.empty()) std::cout << "exported: " << list << "\n";
  p.store->Close();
  return 0;
}

}  // namespace

void AddExportCommand(CLI::App& app) {
  auto flags = std::make_shared<ExportFlags>();
  auto* cmd = app.add_subcommand(
      "export", "Write current resources as NDJSON, one <Type>.ndjson per resource type");
  cmd->add_option("--db", flags->db, "Database (SQLite file or postgresql:// URL)")
      ->capture_default_str();
  cmd->add_option("--out", flags->out, "Output directory")->capture_default_str();
  cmd->add_option("--type", flags->types, "Only these resource types (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--since", flags->since,
                  "Only resources last changed at or after this instant (FHIR dateTime)");
  cmd->add_flag("--quiet", flags->quiet, "No progress on stderr");
  cmd->callback([flags] {
    int rc = RunExport(*flags);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace jiceng::cli
