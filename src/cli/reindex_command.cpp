#include "cli/reindex_command.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "api/interactions.h"
#include "base/json.h"
#include "cli/platform.h"

namespace jiceng::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct ReindexFlags {
  std::string db = "jiceng.db";
  std::vector<std::string> types;
  int batch = 500;  // resources per write unit (one commit)
  bool quiet = false;
};

struct Counts {
  int64_t reindexed = 0;
  int64_t skipped = 0;  // changed meanwhile: the newer version has its own rows
};

// One page of current resources re-extracted and written as one unit.
Status ReindexPage(store::IStore& store, const std::vector<store::ResourceVersion>& page,
                   Counts& counts) {
  struct Item {
    const store::ResourceVersion* v;
    store::IndexRows rows;
  };
  std::vector<Item> items;
  items.reserve(page.size());
  for (const auto& v : page) {
    JC_ASSIGN_OR_RETURN(json::value doc, ParseJson(v.json));
    if (!doc.is_object()) return Internal(v.type + "/" + v.id + ": stored JSON is not an object");
    items.push_back({&v, api::ExtractIndexRows(doc.get_object())});
  }
  int64_t done = 0, skipped = 0;
  JC_RETURN_IF_ERROR(store.Write([&](store::IWriteTransaction& txn) -> Status {
    done = skipped = 0;
    for (const auto& item : items) {
      Status s = txn.ReplaceIndex(item.v->type, item.v->id, item.v->version, item.rows);
      if (s.ok()) {
        ++done;
      } else if (s.error().code == ErrorCode::kConflict ||
                 s.error().code == ErrorCode::kNotFound) {
        ++skipped;
      } else {
        return s;
      }
    }
    return Status::Ok();
  }));
  counts.reindexed += done;
  counts.skipped += skipped;
  return Status::Ok();
}

int RunReindex(const ReindexFlags& f) {
  std::error_code ec;
  if (!std::filesystem::exists(f.db, ec) && f.db.find("://") == std::string::npos) {
    std::cerr << "jiceng reindex: no database at " << f.db << "\n";
    return 2;
  }
  Config config;
  config.db = f.db;
  auto opened = OpenPlatform(config);
  if (!opened.ok()) {
    std::cerr << "jiceng reindex: cannot open database '" << f.db
              << "': " << opened.error().message << "\n";
    return 1;
  }
  Platform& p = **opened;
  std::vector<std::string> types = f.types;
  for (const auto& t : types) {
    if (!p.fhir_options.is_resource_type(t)) {
      std::cerr << "jiceng reindex: unknown resource type '" << t << "'\n";
      return 2;
    }
  }
  if (types.empty()) types = p.fhir_options.resource_types;
  const auto start = Clock::now();
  auto last = start;
  Counts counts;
  for (const auto& type : types) {
    // Pages in id order; each page is read in its own snapshot and written as one unit, so the
    // server may keep running: a resource updated in between is skipped (its new version was
    // indexed when written).
    for (int64_t offset = 0;; offset += f.batch) {
      std::vector<store::ResourceVersion> page;
      {
        auto txn = p.store->BeginRead();
        if (!txn.ok()) {
          std::cerr << "jiceng reindex: " << txn.error().message << "\n";
          return 1;
        }
        auto rows = (*txn)->ListCurrent(type, offset, f.batch);
        if (!rows.ok()) {
          std::cerr << "jiceng reindex: " << type << ": " << rows.error().message << "\n";
          return 1;
        }
        page = std::move(*rows);
      }
      if (page.empty()) break;
      if (Status s = ReindexPage(*p.store, page, counts); !s.ok()) {
        std::cerr << "\njiceng reindex: " << type << ": " << s.error().message << "\n";
        return 1;
      }
      const auto now = Clock::now();
      if (!f.quiet && now - last > std::chrono::milliseconds(500)) {
        last = now;
        const double secs = std::chrono::duration<double>(now - start).count();
        std::cerr << fmt::format("\rreindex: {} {} resources, {:.0f} resources/s   ", type,
                                 counts.reindexed, static_cast<double>(counts.reindexed) / secs);
      }
      if (static_cast<int>(page.size()) < f.batch) break;
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (!f.quiet) std::cerr << "\r" << std::string(80, ' ') << "\r";
  std::cout << fmt::format("reindexed {} resources in {:.2f} s ({:.0f} resources/s); {} skipped "
                           "(changed meanwhile)\n",
                           counts.reindexed, secs,
                           secs > 0 ? static_cast<double>(counts.reindexed) / secs : 0.0,
                           counts.skipped);
  if (Status s = p.store->RefreshStatistics(); !s.ok()) {
    std::cerr << "jiceng reindex: refreshing the planner statistics: " << s.error().message << "\n";
  }
  p.store->Close();
  return 0;
}

}  // namespace

void AddReindexCommand(CLI::App& app) {
  auto flags = std::make_shared<ReindexFlags>();
  auto* cmd = app.add_subcommand(
      "reindex", "Re-extract the search index rows of every current resource");
  cmd->add_option("--db", flags->db, "Database (SQLite file or postgresql:// URL)")
      ->capture_default_str();
  cmd->add_option("--type", flags->types, "Only these resource types (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--batch", flags->batch, "Resources per commit")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_flag("--quiet", flags->quiet, "No progress on stderr");
  cmd->callback([flags] {
    int rc = RunReindex(*flags);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace jiceng::cli
