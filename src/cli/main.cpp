// The jiceng executable: serve, import, generate, version.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "api/outcome.h"
#include "cli/export_command.h"
#include "cli/generate_command.h"
#include "cli/import_command.h"
#include "cli/migrate_command.h"
#include "cli/platform.h"
#include "cli/reindex_command.h"
#include "http/server.h"

namespace jiceng::cli {
namespace {

struct ServeFlags {
  std::string config_file, db, listen;
  bool lenient = false;
  bool no_access_log = false;
  int threads = -1;
};

int Serve(const ServeFlags& f) {
  Config config;
  if (!f.config_file.empty()) {
    auto c = LoadConfig(f.config_file);
    if (!c.ok()) {
      std::cerr << "jiceng: " << c.error().message << "\n";
      return 2;
    }
    config = std::move(*c);
  }
  if (!f.db.empty()) config.db = f.db;
  if (!f.listen.empty()) config.listen = f.listen;
  if (f.lenient) config.strict_validation = false;
  if (f.no_access_log) config.access_log = false;
  if (f.threads >= 0) config.threads = f.threads;
  spdlog::set_level(spdlog::level::from_str(config.log_level));

  auto platform = OpenPlatform(config);
  if (!platform.ok()) {
    std::cerr << "jiceng: cannot open database '" << config.db << "': " << platform.error().message
              << "\n";
    return 1;
  }
  api::FhirApi& fhir = *(*platform)->fhir;
  http::Server server(config, [&fhir](api::Request& req) -> api::Response {
    if (req.path == "/fhir" || req.path.starts_with("/fhir/")) return fhir.Handle(req);
    if (req.path == "/" && (req.method == "GET" || req.method == "HEAD")) {
      api::Response r;
      r.status = 200;
      r.content_type = "text/plain; charset=utf-8";
      r.body =
          "Jiceng (基层) FHIR R4 server. Try /fhir/metadata, /fhir/Patient, /healthz, /metrics\n";
      return r;
    }
    return api::ErrorResponse(NotFound("No route for '" + req.path + "'"));
  });
  auto port = server.Start();
  if (!port.ok()) {
    std::cerr << "jiceng: " << port.error().message << "\n";
    return 1;
  }
  std::string host = config.listen.substr(0, config.listen.rfind(':'));
  std::cout << "jiceng: listening on " << (config.tls.enabled ? "https" : "http") << "://" << host
            << ":" << *port << std::endl;
  fhir.TakeOverExportJobs();  // $export jobs a previous process left running
  server.StopOnSignals();
  server.Run();
  // $export jobs stop (left on disk as running, for the next start) before the store closes.
  (*platform)->fhir.reset();
  (*platform)->store->Close();
  std::cout << "jiceng: stopped" << std::endl;
  return 0;
}

}  // namespace
}  // namespace jiceng::cli

int main(int argc, char** argv) {
  using namespace jiceng::cli;
  CLI::App app{"jiceng: FHIR R4 platform for county medical communities (基层)"};
  app.require_subcommand(1);

  auto* version = app.add_subcommand("version", "Print the version");
  version->callback([] { std::cout << "jiceng " << JICENG_VERSION << "\n"; });

  ServeFlags flags;
  auto* serve = app.add_subcommand("serve", "Run the server");
  serve->add_option("--config", flags.config_file, "TOML configuration file");
  serve->add_option("--db", flags.db,
                    "SQLite database file or postgresql:// URL (overrides the config)");
  serve->add_option("--listen", flags.listen, "HOST:PORT to listen on; port 0 picks a free port");
  serve->add_option("--threads", flags.threads, "Server threads (0: automatic)");
  serve->add_flag("--lenient", flags.lenient, "Accept unknown elements with a warning");
  serve->add_flag("--no-access-log", flags.no_access_log, "Disable the access log");
  int rc = 0;
  serve->callback([&] { rc = Serve(flags); });

  AddImportCommand(app);
  AddGenerateCommand(app);
  AddExportCommand(app);
  AddMigrateCommand(app);
  AddReindexCommand(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return rc;
}
