// cli/platform: wires the modules into a running platform (store + FHIR API) from a Config.
// Shared by `serve` and `import` so both see the same validation and storage settings.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "api/fhir_api.h"
#include "base/config.h"
#include "base/result.h"
#include "store/store.h"
#include "store/store_factory.h"

namespace jiceng::cli {

struct Platform {
  std::unique_ptr<store::IStore> store;
  std::unique_ptr<api::FhirApi> fhir;
  api::FhirApiOptions fhir_options;
};

// Where $export jobs live when the config names no export_dir: "<file>.export" beside an SQLite
// database; for PostgreSQL, jiceng-export-<FNV-1a of the URL> in the temporary directory, which
// every jiceng process of that database on this machine shares.
std::string DefaultExportDir(const std::string& db);

// `store_options` overrides what the store is opened with (bulk loads tune SQLite's caches);
// its read_connections is taken from `config`.
Result<std::unique_ptr<Platform>> OpenPlatform(const Config& config,
                                               store::StoreOptions store_options = {});

constexpr int64_t kBulkLoadCacheMib = 1024;
constexpr int kBulkLoadCheckpointMib = 16;

// The flags of a bulk load's store (`import`, `generate --db`).
struct BulkLoadFlags {
  int64_t cache_mib = kBulkLoadCacheMib;        // --cache-mib
  int checkpoint_mib = kBulkLoadCheckpointMib;  // --checkpoint-mib
  int64_t index_run_mib = 0;                    // --index-run-mib; 0: DefaultIndexRunMib()
};

// The store settings of a bulk load: it dirties many more pages per commit than a server does,
// so the SQLite writer gets a larger page cache (the random inserts into the (type, id) index of
// resources stay in memory; a 1,000,000-resident county has ~11 million resources), the WAL may
// grow further between checkpoints (fewer copies of the same hot pages into the database file),
// and the search index rows are held in memory up to --index-run-mib before a sorted run is
// spilled to a temporary file (all runs are merged into the B-trees at the end). Commits stay
// durable (docs/operations.md, "Import").
store::StoreOptions BulkLoadStoreOptions(const BulkLoadFlags& flags);
// Adds --cache-mib, --checkpoint-mib and --index-run-mib (their help prefixed by `help_prefix`).
void AddBulkLoadStoreFlags(CLI::App& cmd, BulkLoadFlags& flags, const std::string& help_prefix);
// A quarter of physical memory, at least 512 MiB: a bulk load whose index rows fit is inserted
// as one sorted run at the end (close to append-only); each run before it merges into B-trees
// that grow (3,262,434 resources, 53 million rows in 6 runs of 8 million: 9,250 resources/s).
int64_t DefaultIndexRunMib();

// Ends a bulk load begun with IStore::BeginBulkLoad (builds the search indexes), with progress
// lines on stderr unless `quiet`.
Status EndBulkLoad(store::IStore& store, bool quiet);

}  // namespace jiceng::cli
