// cli/generate_command: `jiceng generate` writes a synthetic county (see generator/) to a
// directory as NDJSON files or transaction Bundles (--out), or loads it straight into a
// database (--db) through the bulk loader.
#pragma once

#include <CLI/CLI.hpp>

namespace jiceng::cli {
void AddGenerateCommand(CLI::App& app);
}
