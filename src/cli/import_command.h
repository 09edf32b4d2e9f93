// cli/import_command: `jiceng import` loads FHIR NDJSON files, transaction/batch Bundles and
// single resources into the database. NDJSON and plain POST/PUT Bundles go through the bulk
// loader (ingest/: the API's validation and write rules, pipelined, thousands of resources per
// commit); Bundles with conditional entries, DELETE, PATCH or GET go through the API's
// transaction processor. Rejections (where, what, why) go to --errors; the exit code is 3 when
// anything was rejected.
#pragma once

#include <CLI/CLI.hpp>

namespace jiceng::cli {
void AddImportCommand(CLI::App& app);
}
