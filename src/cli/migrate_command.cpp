#include "cli/migrate_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "api/interactions.h"
#include "base/json.h"
#include "fhir/definitions.h"
#include "store/store_factory.h"

namespace jiceng::cli {
namespace {

// Versions per read page and per write transaction: big enough to amortise a commit, small
// enough that memory stays flat whatever the size of the database.
constexpr int64_t kPage = 500;

// The index rows of a stored version, rebuilt from its json: the port does not expose index
// rows, and rebuilding them also applies the destination binary's current indexing rules.
Result<store::IndexRows> IndexOf(const store::ResourceVersion& v) {
  if (v.deleted) return store::IndexRows{};
  JC_ASSIGN_OR_RETURN(json::value doc, ParseJson(v.json));
  if (!doc.is_object()) return Invalid(v.type + "/" + v.id + ": stored json is not an object");
  return api::ExtractIndexRows(doc.as_object());
}

Status Migrate(const std::string& from, const std::string& to, std::ostream& out) {
  (void)fhir::Definitions::Get();  // index extraction needs the definitions loaded
  JC_ASSIGN_OR_RETURN(std::unique_ptr<store::IStore> src, store::OpenStore(from));
  JC_ASSIGN_OR_RETURN(std::unique_ptr<store::IStore> dst, store::OpenStore(to));

  JC_ASSIGN_OR_RETURN(std::unique_ptr<store::IReadTransaction> check, dst->BeginRead());
  store::HistoryQuery all;
  all.count = 0;
  JC_ASSIGN_OR_RETURN(store::HistoryPage dst_page, check->History(all));
  if (dst_page.total != 0) {
    return Invalid(fmt::format("destination {} is not empty ({} versions): migrate-db only "
                               "fills an empty database",
                               to, dst_page.total));
  }
  check.reset();

  // One read transaction for the whole copy: a consistent snapshot even if the source is live.
  JC_ASSIGN_OR_RETURN(std::unique_ptr<store::IReadTransaction> reader, src->BeginRead());
  JC_ASSIGN_OR_RETURN(store::HistoryPage counted, reader->History(all));
  const int64_t total = counted.total;
  out << fmt::format("migrate-db: {} versions from {} to {}\n", total, from, to);
  const auto start = std::chrono::steady_clock::now();

  // System history is newest first; walking its pages from the last one backwards and each page
  // in reverse replays the versions in the order they were written, so every resource's
  // versions arrive 1, 2, 3 … as Put expects.
  int64_t copied = 0;
  for (int64_t end = total; end > 0;) {
    const int64_t begin = std::max<int64_t>(0, end - kPage);
    store::HistoryQuery q;
    q.offset = begin;
    q.count = end - begin;
    JC_ASSIGN_OR_RETURN(store::HistoryPage page, reader->History(q));
    std::reverse(page.entries.begin(), page.entries.end());
    std::vector<store::IndexRows> index;
    index.reserve(page.entries.size());
    for (const store::ResourceVersion& v : page.entries) {
      JC_ASSIGN_OR_RETURN(store::IndexRows rows, IndexOf(v));
      index.push_back(std::move(rows));
    }
    JC_RETURN_IF_ERROR(dst->Write([&](store::IWriteTransaction& txn) -> Status {
      for (size_t i = 0; i < page.entries.size(); ++i) {
        JC_RETURN_IF_ERROR(txn.Put(page.entries[i], index[i]));
      }
      return Status::Ok();
    }));
    copied += static_cast<int64_t>(page.entries.size());
    end = begin;
  }
  reader.reset();

  // The copy must be exact in count, current resources and history.
  JC_ASSIGN_OR_RETURN(std::unique_ptr<store::IReadTransaction> a, src->BeginRead());
  JC_ASSIGN_OR_RETURN(std::unique_ptr<store::IReadTransaction> b, dst->BeginRead());
  JC_ASSIGN_OR_RETURN(int64_t src_current, a->CountCurrent(""));
  JC_ASSIGN_OR_RETURN(int64_t dst_current, b->CountCurrent(""));
  JC_ASSIGN_OR_RETURN(store::HistoryPage dst_all, b->History(all));
  if (dst_current != src_current || dst_all.total != copied) {
    return Internal(fmt::format("migrate-db: copy does not match: {} current resources / {} "
                                "versions in the source, {} / {} in the destination",
                                src_current, copied, dst_current, dst_all.total));
  }
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out << fmt::format("migrate-db: copied {} versions ({} current resources) in {:.1f} s\n",
                     copied, dst_current, s);
  JC_RETURN_IF_ERROR(dst->RefreshStatistics());  // PostgreSQL: ANALYZE the copy
  src->Close();
  dst->Close();
  return Status::Ok();
}

}  // namespace

void AddMigrateCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "migrate-db", "Copy every version of every resource into an empty database "
                    "(e.g. an SQLite file into PostgreSQL)");
  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  cmd->add_option("--from", *from, "Source: SQLite file or postgresql:// URL")->required();
  cmd->add_option("--to", *to, "Destination (empty): postgresql:// URL or SQLite file")
      ->required();
  cmd->callback([=] {
    Status s = Migrate(*from, *to, std::cout);
    if (!s.ok()) {
      std::cerr << "jiceng migrate-db: " << s.error().message << "\n";
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace jiceng::cli
