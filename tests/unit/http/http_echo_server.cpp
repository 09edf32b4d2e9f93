// A Server with trivial handlers, for the ServerProcess test and the wrk baseline
// (bench: `http_echo_server --listen 127.0.0.1:0 --no-access-log`, then GET /fhir/Patient/1).
#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "http/server.h"

int main(int argc, char** argv) {
  CLI::App app{"jiceng http echo server (tests and benchmarks)"};
  jiceng::Config config;
  config.listen = "127.0.0.1:0";
  bool no_access_log = false;
  std::string body = R"({"resourceType":"Patient","id":"1","active":true})";
  app.add_option("--listen", config.listen);
  app.add_option("--threads", config.threads);
  app.add_flag("--no-access-log", no_access_log);
  app.add_option("--body", body, "Body of every GET");
  app.add_option("--tls-cert", config.tls.cert_file);
  app.add_option("--tls-key", config.tls.key_file);
  CLI11_PARSE(app, argc, argv);
  config.access_log = !no_access_log;
  config.tls.enabled = !config.tls.cert_file.empty();

  jiceng::http::Server server(config, [&body](jiceng::api::Request& req) {
    jiceng::api::Response res;
    res.content_type = "application/fhir+json";
    if (req.path == "/slow") {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    res.body = req.method == "POST" ? req.body : body;
    return res;
  });
  auto port = server.Start();
  if (!port.ok()) {
    std::cerr << "http_echo_server: " << port.error().message << "\n";
    return 1;
  }
  server.StopOnSignals();
  std::cout << "jiceng: listening on " << (config.tls.enabled ? "https" : "http") << "://127.0.0.1:"
            << *port << std::endl;
  server.Run();
  std::cout << "jiceng: stopped" << std::endl;
  return 0;
}
