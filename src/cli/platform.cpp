#include "cli/platform.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "base/files.h"
#include "base/ids.h"
#include "fhir/definitions.h"
#include "fhir/validator.h"
#include "store/store_factory.h"

namespace jiceng::cli {

Result<std::unique_ptr<Platform>> OpenPlatform(const Config& config,
                                               store::StoreOptions store_options) {
  auto p = std::make_unique<Platform>();
  const auto& defs = fhir::Definitions::Get();
  store_options.read_connections = config.db_read_connections;
  store_options.pg_read_pipelines = config.db_read_pipelines;
  store_options.pg_read_url = config.db_read_url;
  store_options.pg_write_lock_timeout_ms = config.db_write_lock_timeout_ms;
  store_options.pg_write_begin_attempts = config.db_write_begin_attempts;
  JC_ASSIGN_OR_RETURN(p->store, store::OpenStore(config.db, store_options));
  auto& o = p->fhir_options;
  o.strict_validation = config.strict_validation;
  o.base_url = config.base_url;
  o.search_total_limit = config.search_total_limit;
  o.search_results.max_ids = config.search_results_max_ids;
  o.search_results.max_bytes = config.search_results_mib << 20;
  o.search_results.ttl = std::chrono::seconds(config.search_results_ttl_seconds);
  o.search_timeout_ms = config.search_timeout_ms;
  o.export_dir = config.export_dir.empty() ? DefaultExportDir(config.db) : config.export_dir;
  o.export_retention = std::chrono::hours(config.export_retention_hours);
  o.export_file_resources = config.export_file_resources;
  o.validate = [](const json::object& r, bool strict) {
    fhir::ValidationOptions vo;
    vo.strict = strict;
    return fhir::Validate(r, vo);
  };
  o.is_resource_type = [&defs](std::string_view t) { return defs.IsResourceType(t); };
  o.resource_types = defs.ResourceTypes();
  o.software_version = JICENG_VERSION;
  p->fhir = std::make_unique<api::FhirApi>(*p->store, o);
  return p;
}

std::string DefaultExportDir(const std::string& db) {
  if (!db.starts_with("postgres")) return db + ".export";
  return (TempDirectory() / fmt::format("jiceng-export-{:016x}", Fnv1a64(db))).string();
}

int64_t DefaultIndexRunMib() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  const int64_t mib =
      pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page / 4 / (1 << 20) : 0;
  return std::max<int64_t>(mib, 512);
}

store::StoreOptions BulkLoadStoreOptions(const BulkLoadFlags& flags) {
  store::StoreOptions o;
  o.sqlite_cache_kib = flags.cache_mib * 1024;
  o.sqlite_wal_autocheckpoint_pages = flags.checkpoint_mib * 256;  // 4 KiB pages
  o.sqlite_wal_restart_pages = flags.checkpoint_mib * 256 * 4;
  // ~70 bytes of memory per held row: its record (~50) and its sort entry (16).
  const int64_t run_mib = flags.index_run_mib > 0 ? flags.index_run_mib : DefaultIndexRunMib();
  o.sqlite_bulk_build_rows = run_mib * (1 << 20) / 70;
  return o;
}

void AddBulkLoadStoreFlags(CLI::App& cmd, BulkLoadFlags& flags, const std::string& help_prefix) {
  cmd.add_option("--cache-mib", flags.cache_mib,
                 help_prefix + "SQLite: the writer's page cache, MiB")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20))
      ->capture_default_str();
  cmd.add_option(
         "--checkpoint-mib", flags.checkpoint_mib,
         help_prefix + "SQLite: WAL growth between checkpoints, MiB (the WAL restarts past 4x)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  cmd.add_option("--index-run-mib", flags.index_run_mib,
                 help_prefix +
                     "SQLite, into an empty database: memory for search index rows held before "
                     "a sorted run is spilled to a temporary file beside the database, MiB (0: "
                     "a quarter of physical memory, at least 512)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24))
      ->capture_default_str();
}

Status EndBulkLoad(store::IStore& store, bool quiet) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto last = start;
  Status s = store.EndBulkLoad([&](int64_t done, int64_t total) {
    const auto now = Clock::now();
    if (quiet || (now - last < std::chrono::milliseconds(500) && done < total)) return;
    last = now;
    std::cerr << fmt::format("\rbuilding the search indexes: {:.0f}%   ",
                             total > 0 ? 100.0 * static_cast<double>(done) / total : 100.0);
  });
  if (!quiet) {
    std::cerr << fmt::format("\nsearch indexes built in {:.2f} s\n",
                             std::chrono::duration<double>(Clock::now() - start).count());
  }
  return s;
}

}  // namespace jiceng::cli
