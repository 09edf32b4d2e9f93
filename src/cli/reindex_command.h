// cli/reindex_command: `jiceng reindex` — re-extracts the search index rows of every current
// resource (after an upgrade that indexes more than the database holds, e.g. composite and
// full-text rows for resources written before schema migration 3).
#pragma once

#include <CLI/CLI.hpp>

namespace jiceng::cli {

void AddReindexCommand(CLI::App& app);

}  // namespace jiceng::cli
