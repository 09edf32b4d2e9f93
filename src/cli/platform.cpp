#include "cli/platform.h"

#include <fmt/format.h>

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

store::StoreOptions BulkLoadStoreOptions(int64_t cache_mib, int checkpoint_mib) {
  store::StoreOptions o;
  o.sqlite_cache_kib = cache_mib * 1024;
  o.sqlite_wal_autocheckpoint_pages = checkpoint_mib * 256;  // 4 KiB pages
  o.sqlite_wal_restart_pages = checkpoint_mib * 256 * 4;
  return o;
}

void AddBulkLoadStoreFlags(CLI::App& cmd, int64_t& cache_mib, int& checkpoint_mib,
                           const std::string& help_prefix) {
  cmd.add_option("--cache-mib", cache_mib, help_prefix + "SQLite: the writer's page cache, MiB")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20))
      ->capture_default_str();
  cmd.add_option(
         "--checkpoint-mib", checkpoint_mib,
         help_prefix + "SQLite: WAL growth between checkpoints, MiB (the WAL restarts past 4x)")
      ->check(CLI::Range(1, 65536))
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
