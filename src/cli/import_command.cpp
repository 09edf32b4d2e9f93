#include "cli/import_command.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "api/bundle_processor.h"
#include "api/outcome.h"
#include "cli/platform.h"

namespace jiceng::cli {

namespace {

namespace fs = std::filesystem;

struct ImportStats {
  int64_t files = 0, resources = 0, rejected = 0;
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Loads one transaction/batch Bundle; a non-Bundle resource is wrapped as a one-entry batch.
void ImportJson(Platform& p, const fs::path& file, const std::string& text, ImportStats& stats,
                std::ostream& errors) {
  auto v = ParseJson(text);
  if (!v.ok() || !v->is_object()) {
    ++stats.rejected;
    errors << file.string() << ": " << (v.ok() ? "not a JSON object" : v.error().message) << "\n";
    return;
  }
  auto& obj = v->get_object();
  if (FindString(obj, "resourceType").value_or("") != "Bundle" ||
      (FindString(obj, "type").value_or("") != "transaction" && FindString(obj, "type").value_or("") != "batch")) {
    std::string type(FindString(obj, "resourceType").value_or(""));
    json::object entry{{"resource", obj}, {"request", json::object{{"method", "POST"}, {"url", type}}}};
    if (auto id = FindString(obj, "id"))
      entry["request"] = json::object{{"method", "PUT"}, {"url", type + "/" + std::string(*id)}};
    v = json::value(json::object{{"resourceType", "Bundle"}, {"type", "batch"}, {"entry", json::array{entry}}});
  }
  std::size_t n = v->get_object().contains("entry") && v->get_object().at("entry").is_array()
                      ? v->get_object().at("entry").get_array().size() : 0;
  api::BundleProcessor bp(*p.store, p.fhir_options, "");
  auto r = bp.Process(std::move(*v));
  if (!r.ok()) {
    stats.rejected += static_cast<int64_t>(n);
    errors << file.string() << ": rejected: " << ToJson(api::MakeOperationOutcome(api::IssuesOf(r.error()))) << "\n";
    return;
  }
  for (const auto& e : r->at("entry").get_array()) {
    const auto& resp = e.at("response").get_object();
    if (resp.contains("outcome")) {
      ++stats.rejected;
      errors << file.string() << ": " << ToJson(resp.at("outcome")) << "\n";
    } else {
      ++stats.resources;
    }
  }
}

// NDJSON: one resource a line, loaded in batches of 500 (PUT when the line has an id).
void ImportNdjson(Platform& p, const fs::path& file, ImportStats& stats, std::ostream& errors) {
  std::ifstream in(file);
  std::string line;
  json::array entries;
  int64_t line_no = 0;
  auto flush = [&] {
    if (entries.empty()) return;
    json::value b = json::object{{"resourceType", "Bundle"}, {"type", "batch"}, {"entry", std::move(entries)}};
    entries = json::array();
    api::BundleProcessor bp(*p.store, p.fhir_options, "");
    auto r = bp.Process(std::move(b));
    if (!r.ok()) {
      errors << file.string() << ": " << r.error().message << "\n";
      return;
    }
    for (const auto& e : r->at("entry").get_array()) {
      const auto& resp = e.at("response").get_object();
      if (resp.contains("outcome")) {
        ++stats.rejected;
        errors << file.string() << ": " << ToJson(resp.at("outcome")) << "\n";
      } else {
        ++stats.resources;
      }
    }
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    auto v = ParseJson(line);
    if (!v.ok() || !v->is_object()) {
      ++stats.rejected;
      errors << fmt::format("{}:{}: {}\n", file.string(), line_no, v.ok() ? "not a JSON object" : v.error().message);
      continue;
    }
    auto& obj = v->get_object();
    std::string type(FindString(obj, "resourceType").value_or(""));
    json::object req{{"method", "POST"}, {"url", type}};
    if (auto id = FindString(obj, "id")) req = json::object{{"method", "PUT"}, {"url", type + "/" + std::string(*id)}};
    entries.emplace_back(json::object{{"resource", std::move(obj)}, {"request", std::move(req)}});
    if (entries.size() >= 500) flush();
  }
  flush();
}

int RunImport(const std::string& db, bool lenient, const std::vector<std::string>& paths,
              const std::string& error_file) {
  Config config;
  config.db = db;
  config.strict_validation = !lenient;
  auto p = OpenPlatform(config);
  if (!p.ok()) {
    std::cerr << "jiceng import: " << p.error().message << "\n";
    return 1;
  }
  std::vector<fs::path> files;
  for (const auto& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      for (const auto& de : fs::directory_iterator(path))
        if (de.is_regular_file() && (de.path().extension() == ".json" || de.path().extension() == ".ndjson"))
          files.push_back(de.path());
    } else if (fs::exists(path, ec)) {
      files.emplace_back(path);
    } else {
      std::cerr << "jiceng import: no such file or directory: " << path << "\n";
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  std::ofstream err_out;
  if (!error_file.empty()) err_out.open(error_file);
  std::ostream& errors = error_file.empty() ? std::cerr : err_out;
  ImportStats stats;
  auto start = std::chrono::steady_clock::now();
  for (const auto& f : files) {
    if (f.extension() == ".ndjson") ImportNdjson(**p, f, stats, errors);
    else ImportJson(**p, f, ReadFile(f), stats, errors);
    ++stats.files;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cerr << fmt::format("\rimport: {}/{} files, {} resources, {} rejected, {:.0f} resources/s   ",
                             stats.files, files.size(), stats.resources, stats.rejected,
                             secs > 0 ? static_cast<double>(stats.resources) / secs : 0.0);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "\n";
  std::cout << fmt::format("imported {} resources from {} files in {:.2f} s ({:.0f} resources/s); {} rejected{}\n",
                           stats.resources, stats.files, secs,
                           secs > 0 ? static_cast<double>(stats.resources) / secs : 0.0, stats.rejected,
                           stats.rejected && !error_file.empty() ? " (see " + error_file + ")" : "");
  (*p)->store->Close();
  return stats.rejected == 0 ? 0 : 3;
}

}  // namespace

void AddImportCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("import", "Load FHIR Bundles (.json) or NDJSON files into the database");
  auto db = std::make_shared<std::string>("jiceng.db");
  auto lenient = std::make_shared<bool>(false);
  auto paths = std::make_shared<std::vector<std::string>>();
  auto error_file = std::make_shared<std::string>();
  cmd->add_option("--db", *db, "SQLite database file");
  cmd->add_flag("--lenient", *lenient, "Accept unknown elements with a warning");
  cmd->add_option("--errors", *error_file, "Write rejected entries and why to this file");
  cmd->add_option("paths", *paths, "Files or directories")->required();
  cmd->callback([=] {
    int rc = RunImport(*db, *lenient, *paths, *error_file);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace jiceng::cli
