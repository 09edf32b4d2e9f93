// cli/import_command: `jiceng import` loads FHIR Bundles (JSON files) and NDJSON files into the
// database through the same transaction path as the REST API.
#pragma once

#include <CLI/CLI.hpp>

namespace jiceng::cli {
void AddImportCommand(CLI::App& app);
}
