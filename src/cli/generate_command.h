// cli/generate_command: `jiceng generate` writes a synthetic county (see generator/) to a
// directory as NDJSON files or transaction Bundles.
#pragma once

#include <CLI/CLI.hpp>

namespace jiceng::cli {
void AddGenerateCommand(CLI::App& app);
}
