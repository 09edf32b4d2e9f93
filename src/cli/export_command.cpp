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

class NdjsonFile {
 public:
  ~NdjsonFile() {
    if (f_) std::fclose(f_);
  }
  Status Open(const fs::path& path) {
    f_ = std::fopen(path.c_str(), "wb");
    if (!f_) return Internal("cannot write " + path.string());
    path_ = path.string();
    return Status::Ok();
  }
  Status Line(const std::string& json) {
    if (std::fwrite(json.data(), 1, json.size(), f_) != json.size() || std::fputc('\n', f_) == EOF)
      return Internal("write failed: " + path_);
    return Status::Ok();
  }
  Status Close() {
    int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) return Internal("write failed: " + path_);
    return Status::Ok();
  }

 private:
  std::FILE* f_ = nullptr;
  std::string path_;
};

// Writes the current, non-deleted resources of `type` changed at or after `since_us` by walking
// the type's history newest first. The page bound (at_or_before + offset among equal instants)
// is a keyset over (last_updated, hid), so each page is an index range, not a growing OFFSET.
// The first version met of a resource is its current one; older versions of resources that have
// several are skipped (only ids with version > 1 need remembering).
Result<int64_t> ExportFromHistory(store::IReadTransaction& txn, const std::string& type,
                                  std::optional<int64_t> since_us, int page, NdjsonFile& out,
                                  const std::function<void(int64_t)>& tick) {
  std::unordered_set<std::string> newer_seen;
  int64_t written = 0;
  store::HistoryQuery q;
  q.type = type;
  q.since_us = since_us;
  q.count = page;
  q.at_or_before_us = NowMicros();
  for (;;) {
    JC_ASSIGN_OR_RETURN(store::HistoryPage hp, txn.History(q));
    if (hp.entries.empty()) break;
    const int64_t last_ts = hp.entries.back().last_updated_us;
    int64_t ties = 0;
    for (const auto& v : hp.entries) {
      if (v.last_updated_us == last_ts) ++ties;
      if (newer_seen.count(v.id)) continue;
      if (v.version > 1) newer_seen.insert(v.id);
      if (v.deleted) continue;
      JC_RETURN_IF_ERROR(out.Line(v.json));
      ++written;
    }
    tick(written);
    if (static_cast<int64_t>(hp.entries.size()) < page) break;
    // Next page: the same instant again, past the ones already seen at it.
    q.offset = q.at_or_before_us == last_ts ? q.offset + ties : ties;
    q.at_or_before_us = last_ts;
  }
  return written;
}

// Without --since: the current rows in id order (stable, diff-friendly output).
Result<int64_t> ExportCurrent(store::IReadTransaction& txn, const std::string& type, int page,
                              NdjsonFile& out, const std::function<void(int64_t)>& tick) {
  int64_t written = 0;
  for (int64_t offset = 0;; offset += page) {
    JC_ASSIGN_OR_RETURN(auto rows, txn.ListCurrent(type, offset, page));
    for (const auto& v : rows) JC_RETURN_IF_ERROR(out.Line(v.json));
    written += static_cast<int64_t>(rows.size());
    tick(written);
    if (static_cast<int64_t>(rows.size()) < page) break;
  }
  return written;
}

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
    NdjsonFile out;
    if (Status st = out.Open(fs::path(f.out) / (type + ".ndjson")); !st.ok()) {
      std::cerr << "jiceng export: " << st.error().message << "\n";
      return 1;
    }
    auto tick = [&](int64_t done) {
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
    Result<int64_t> written = Error(ErrorCode::kNotImplemented, "");
    if (!since_us) written = ExportCurrent(**txn, type, f.page, out, tick);
    if (!written.ok() && written.error().code == ErrorCode::kNotImplemented)
      written = ExportFromHistory(**txn, type, since_us, f.page, out, tick);
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
  cmd->add_option("--db", flags->db, "Database (SQLite file)")->capture_default_str();
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
