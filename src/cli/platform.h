// cli/platform: wires the modules into a running platform (store + FHIR API) from a Config.
// Shared by `serve` and `import` so both see the same validation and storage settings.
#pragma once

#include <memory>

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

// `store_options` overrides what the store is opened with (bulk loads tune SQLite's caches);
// its read_connections is taken from `config`.
Result<std::unique_ptr<Platform>> OpenPlatform(const Config& config,
                                               store::StoreOptions store_options = {});

// Ends a bulk load begun with IStore::BeginBulkLoad (builds the search indexes), with progress
// lines on stderr unless `quiet`.
Status EndBulkLoad(store::IStore& store, bool quiet);

}  // namespace jiceng::cli
