// cli/export_command: `jiceng export` writes the current, non-deleted resources of a database as
// NDJSON, one file per resource type (<Type>.ndjson, FHIR bulk-data style), optionally only
// some types (--type) or only resources changed since an instant (--since). The files load
// back with `jiceng import`.
#pragma once

#include <CLI/CLI.hpp>

namespace jiceng::cli {
void AddExportCommand(CLI::App& app);
}
