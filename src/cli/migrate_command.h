// cli/migrate_command: `jiceng migrate-db --from FILE --to postgresql://…` copies a whole
// database (every version of every resource, tombstones included, with its lastUpdated) from one
// backend into an empty other one: a pilot site or a demo moving from SQLite to PostgreSQL.
#pragma once

#include <CLI/CLI.hpp>

namespace jiceng::cli {
void AddMigrateCommand(CLI::App& app);
}
