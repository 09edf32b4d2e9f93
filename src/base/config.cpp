#include "base/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include "base/files.h"

namespace jiceng {

namespace {

template <class T>
Status Take(const toml::table& t, std::string_view key, T& out, const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  if constexpr (std::is_same_v<T, bool>) {
    if (auto v = n->value<bool>()) {
      out = *v;
      return Status::Ok();
    }
  } else if constexpr (std::is_integral_v<T>) {
    if (auto v = n->value<int64_t>()) {
      if (*v < 0) return Invalid(fmt::format("{}.{} must not be negative", where, key));
      out = static_cast<T>(*v);
      return Status::Ok();
    }
  } else {
    if (auto v = n->value<std::string>()) {
      out = *v;
      return Status::Ok();
    }
  }
  return Invalid(fmt::format("{}.{} has the wrong type", where, key));
}

Status CheckKeys(const toml::table& t, std::initializer_list<std::string_view> known,
                 const std::string& where) {
  for (const auto& [k, v] : t) {
    bool found = false;
    for (auto kk : known) found |= (kk == k.str());
    if (!found)
      return Invalid(fmt::format("Unknown configuration key '{}{}'",
                                 where.empty() ? "" : where + ".", k.str()));
  }
  return Status::Ok();
}

}  // namespace

Result<Config> ParseConfig(std::string_view text, const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return Invalid(fmt::format("{}:{}:{}: {}", source_name, e.source().begin.line,
                               e.source().begin.column, e.description()));
  }
  Config c;
  JC_RETURN_IF_ERROR(CheckKeys(root, {"server", "fhir", "log", "limits", "tls"}, ""));
  if (auto* s = root["server"].as_table()) {
    JC_RETURN_IF_ERROR(CheckKeys(
        *s,
        {"listen", "db", "base_url", "threads", "timezone_offset_minutes", "db_read_connections",
         "db_read_pipelines", "db_read_url", "db_write_lock_timeout_ms", "db_write_begin_attempts"},
        "server"));
    JC_RETURN_IF_ERROR(Take(*s, "db_read_connections", c.db_read_connections, "server"));
    if (c.db_read_connections < 1 || c.db_read_connections > 1024)
      return Invalid("server.db_read_connections must be in [1, 1024]");
    JC_RETURN_IF_ERROR(Take(*s, "db_read_pipelines", c.db_read_pipelines, "server"));
    JC_RETURN_IF_ERROR(Take(*s, "db_read_url", c.db_read_url, "server"));
    if (c.db_read_pipelines < 1 || c.db_read_pipelines > 1024)
      return Invalid("server.db_read_pipelines must be in [1, 1024]");
    JC_RETURN_IF_ERROR(Take(*s, "db_write_lock_timeout_ms", c.db_write_lock_timeout_ms, "server"));
    if (c.db_write_lock_timeout_ms < 0)
      return Invalid("server.db_write_lock_timeout_ms must be >= 0 (0: wait forever)");
    JC_RETURN_IF_ERROR(Take(*s, "db_write_begin_attempts", c.db_write_begin_attempts, "server"));
    if (c.db_write_begin_attempts < 1 || c.db_write_begin_attempts > 100)
      return Invalid("server.db_write_begin_attempts must be in [1, 100]");
    JC_RETURN_IF_ERROR(Take(*s, "listen", c.listen, "server"));
    JC_RETURN_IF_ERROR(Take(*s, "db", c.db, "server"));
    JC_RETURN_IF_ERROR(Take(*s, "base_url", c.base_url, "server"));
    JC_RETURN_IF_ERROR(Take(*s, "threads", c.threads, "server"));
    if (const toml::node* n = s->get("timezone_offset_minutes")) {
      auto v = n->value<int64_t>();
      if (!v || *v < -720 || *v > 840)
        return Invalid("server.timezone_offset_minutes must be an integer in [-720, 840]");
      c.timezone_offset_minutes = static_cast<int>(*v);
    }
  }
  if (auto* f = root["fhir"].as_table()) {
    JC_RETURN_IF_ERROR(
        CheckKeys(*f,
                  {"validation", "search_total_limit", "search_results_max_ids",
                   "search_results_mib", "search_results_ttl_seconds", "search_timeout_ms",
                   "export_dir", "export_file_resources", "export_retention_hours"},
                  "fhir"));
    JC_RETURN_IF_ERROR(Take(*f, "search_total_limit", c.search_total_limit, "fhir"));
    if (c.search_total_limit < 0) return Invalid("fhir.search_total_limit must be >= 0");
    JC_RETURN_IF_ERROR(Take(*f, "search_results_max_ids", c.search_results_max_ids, "fhir"));
    JC_RETURN_IF_ERROR(Take(*f, "search_results_mib", c.search_results_mib, "fhir"));
    JC_RETURN_IF_ERROR(
        Take(*f, "search_results_ttl_seconds", c.search_results_ttl_seconds, "fhir"));
    if (c.search_results_max_ids < 0 || c.search_results_mib < 0 ||
        c.search_results_ttl_seconds < 0)
      return Invalid("fhir.search_results_* must be >= 0");
    JC_RETURN_IF_ERROR(Take(*f, "search_timeout_ms", c.search_timeout_ms, "fhir"));
    if (c.search_timeout_ms < 0) return Invalid("fhir.search_timeout_ms must be >= 0");
    JC_RETURN_IF_ERROR(Take(*f, "export_dir", c.export_dir, "fhir"));
    JC_RETURN_IF_ERROR(Take(*f, "export_file_resources", c.export_file_resources, "fhir"));
    if (c.export_file_resources < 1) return Invalid("fhir.export_file_resources must be >= 1");
    JC_RETURN_IF_ERROR(Take(*f, "export_retention_hours", c.export_retention_hours, "fhir"));
    if (c.export_retention_hours < 1) return Invalid("fhir.export_retention_hours must be >= 1");
    std::string mode = "strict";
    JC_RETURN_IF_ERROR(Take(*f, "validation", mode, "fhir"));
    if (mode != "strict" && mode != "lenient")
      return Invalid("fhir.validation must be \"strict\" or \"lenient\"");
    c.strict_validation = mode == "strict";
  }
  if (auto* l = root["log"].as_table()) {
    JC_RETURN_IF_ERROR(CheckKeys(*l, {"level", "access_log"}, "log"));
    JC_RETURN_IF_ERROR(Take(*l, "level", c.log_level, "log"));
    JC_RETURN_IF_ERROR(Take(*l, "access_log", c.access_log, "log"));
  }
  if (auto* l = root["limits"].as_table()) {
    JC_RETURN_IF_ERROR(CheckKeys(*l,
                                 {"max_body_bytes", "max_header_bytes", "read_timeout_ms",
                                  "idle_timeout_ms", "shutdown_grace_ms"},
                                 "limits"));
    JC_RETURN_IF_ERROR(Take(*l, "max_body_bytes", c.limits.max_body_bytes, "limits"));
    JC_RETURN_IF_ERROR(Take(*l, "max_header_bytes", c.limits.max_header_bytes, "limits"));
    JC_RETURN_IF_ERROR(Take(*l, "read_timeout_ms", c.limits.read_timeout_ms, "limits"));
    JC_RETURN_IF_ERROR(Take(*l, "idle_timeout_ms", c.limits.idle_timeout_ms, "limits"));
    JC_RETURN_IF_ERROR(Take(*l, "shutdown_grace_ms", c.limits.shutdown_grace_ms, "limits"));
  }
  if (auto* t = root["tls"].as_table()) {
    JC_RETURN_IF_ERROR(CheckKeys(*t, {"enabled", "cert_file", "key_file"}, "tls"));
    JC_RETURN_IF_ERROR(Take(*t, "enabled", c.tls.enabled, "tls"));
    JC_RETURN_IF_ERROR(Take(*t, "cert_file", c.tls.cert_file, "tls"));
    JC_RETURN_IF_ERROR(Take(*t, "key_file", c.tls.key_file, "tls"));
    if (c.tls.enabled && (c.tls.cert_file.empty() || c.tls.key_file.empty()))
      return Invalid("tls.enabled needs tls.cert_file and tls.key_file");
  }
  return c;
}

Result<Config> LoadConfig(const std::string& path) {
  std::optional<std::string> text = ReadWholeFile(path);
  if (!text) return Invalid(fmt::format("Cannot open configuration file '{}'", path));
  return ParseConfig(*text, path);
}

}  // namespace jiceng
