// base/config: the server's configuration, read from a TOML file. Every field has a default so
// `jiceng serve` runs with no file at all. Clinical thresholds live in their modules' own
// configuration sections with their sources named there.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

namespace jiceng {

struct TlsConfig {
  bool enabled = false;
  std::string cert_file;  // PEM certificate chain
  std::string key_file;   // PEM private key
};

struct HttpLimits {
  uint64_t max_body_bytes = 64ull << 20;  // 64 MiB: large transaction Bundles
  uint32_t max_header_bytes = 16 << 10;   // 16 KiB
  uint32_t read_timeout_ms = 30000;       // whole request must arrive within this
  uint32_t idle_timeout_ms = 60000;       // keep-alive connection idle limit
  uint32_t shutdown_grace_ms = 10000;     // SIGTERM: time given to in-flight requests
};

struct Config {
  std::string listen = "127.0.0.1:8080";
  std::string db = "jiceng.db";
  std::string base_url;         // public base, e.g. https://host/fhir; derived from Host when empty
  int threads = 0;              // 0: max(8, 4 x cores) — handlers block on the database
  int db_read_connections = 8;  // pooled read connections to the database (both backends)
  // PostgreSQL: reads by id in flight at once; more concurrent ones go together in the next
  // pipeline (store::PostgresOptions::read_pipelines).
  int db_read_pipelines = 2;
  // PostgreSQL: where reads and searches go (e.g. a streaming replica); empty: `db` itself.
  std::string db_read_url;
  // PostgreSQL: the longest wait for the write lock shared by every process of one database
  // (and for a row lock held by a session outside jiceng) before a write fails with 503, and
  // the attempts at opening a write transaction, reconnecting in between (a restart, a
  // failover), before it does (store::PostgresOptions::write_lock_timeout_ms, begin_attempts).
  int db_write_lock_timeout_ms = 30000;
  int db_write_begin_attempts = 4;
  bool strict_validation = true;  // false: unknown elements accepted with a warning
  // [fhir] search_total_limit: see api::FhirApiOptions::search_total_limit (0: count all).
  int64_t search_total_limit = 1000;
  // [fhir] search_results_max_ids, search_results_mib, search_results_ttl_seconds: the kept ids
  // of searches for stable paging, see api::SearchResultsOptions (max_ids 0: off).
  int64_t search_results_max_ids = 10000;
  int64_t search_results_mib = 64;
  int64_t search_results_ttl_seconds = 1800;
  // [fhir] search_timeout_ms: see api::FhirApiOptions::search_timeout_ms (0: no bound).
  int64_t search_timeout_ms = 30000;
  // [fhir] export_dir, export_file_resources, export_retention_hours: see api::FhirApiOptions
  // (the $export jobs and their files). An empty export_dir means "<db file>.export" beside an
  // SQLite database, or jiceng-export-<hash of the URL> in the temporary directory for PostgreSQL
  // (cli::DefaultExportDir).
  std::string export_dir;
  int64_t export_file_resources = 10000;
  int64_t export_retention_hours = 168;
  int timezone_offset_minutes = 480;  // Asia/Shanghai; used for dates without an offset
  std::string log_level = "info";
  bool access_log = true;
  HttpLimits limits;
  TlsConfig tls;
};

// Reads a TOML file over the defaults. Unknown keys are an error (a typo must not pass silently).
Result<Config> LoadConfig(const std::string& path);
// Parses TOML text (for tests).
Result<Config> ParseConfig(std::string_view toml_text, const std::string& source_name);

}  // namespace jiceng
