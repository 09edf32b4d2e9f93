#include "cli/import_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>

#include "api/bundle_processor.h"
#include "api/outcome.h"
#include "base/files.h"
#include "base/ids.h"
#include "cli/platform.h"
#include "ingest/bulk_loader.h"

namespace jiceng::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct ImportFlags {
  std::string db = "jiceng.db";
  bool lenient = false;
  std::vector<std::string> paths;
  std::string error_file;
  int batch_size = 5000;
  int threads = 0;
  int unit_size = 0;
  BulkLoadFlags bulk;
  bool index_while_loading = false;
  bool quiet = false;
};

// Where rejections go: the error file (or stderr), one line each, "<where>: <what>: <why>".
// Written from the loader's committer thread and from the main thread (fallback Bundles).
class ErrorSink {
 public:
  explicit ErrorSink(std::ostream& out) : out_(out) {}
  void Write(const std::string& source, const std::string& resource, const std::string& reason) {
    std::lock_guard lock(mu_);
    out_ << source << ": " << (resource.empty() ? "" : resource + ": ") << reason << "\n";
    ++count_;
  }
  int64_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  mutable std::mutex mu_;
  std::ostream& out_;
  int64_t count_ = 0;
};

// Counts of what did not go through the loader (Bundles that need the full transaction
// processor: conditional entries, DELETE, PATCH, GET).
struct FallbackStats {
  int64_t loaded = 0, rejected = 0;
  int64_t input_bytes = 0;
  std::map<std::string, int64_t> by_type;
};

// Rewrites every "reference" string found in `v` through `map` (fullUrl → Type/id).

bool HasConditionalReference(const json::value& v) {
  if (v.is_object()) {
    for (const auto& kv : v.get_object()) {
      if (kv.key() == "reference" && kv.value().is_string()) {
        std::string_view s = kv.value().get_string();
        if (s.find('?') != std::string_view::npos && s.find('/') == std::string_view::npos)
          return true;
      } else if (HasConditionalReference(kv.value())) {
        return true;
      }
    }
  } else if (v.is_array()) {
    for (const auto& e : v.get_array())
      if (HasConditionalReference(e)) return true;
  }
  return false;
}

// A Bundle the loader can take: every entry a plain POST or PUT (no conditions, no
// conditional references). Builds the items, with POST ids assigned and fullUrls rewritten
// across the Bundle as the transaction processor does. nullopt: use the processor.
std::optional<ingest::Batch> BundleToBatch(json::object& bundle, const std::string& source) {
  json::value* entry_value = bundle.if_contains("entry");
  json::array* entries =
      entry_value && entry_value->is_array() ? &entry_value->get_array() : nullptr;
  ingest::Batch batch;
  batch.atomic = FindString(bundle, "type").value_or("") == "transaction";
  batch.source = source;
  if (entry_value && !entries) return std::nullopt;
  if (!entries) return batch;
  std::map<std::string, std::string, std::less<>> refmap;
  for (std::size_t i = 0; i < entries->size(); ++i) {
    auto& ev = (*entries)[i];
    if (!ev.is_object()) return std::nullopt;
    auto& eo = ev.get_object();
    auto* req = FindObject(eo, "request");
    auto* res = eo.if_contains("resource");
    if (!req || !res || !res->is_object()) return std::nullopt;
    std::string method(FindString(*req, "method").value_or(""));
    std::string url(FindString(*req, "url").value_or(""));
    if (req->contains("ifNoneExist") || req->contains("ifMatch") || req->contains("ifNoneMatch") ||
        url.find('?') != std::string::npos || url.empty() || url.front() == '/' ||
        url.find("://") != std::string::npos)
      return std::nullopt;
    auto slash = url.find('/');
    std::string type = url.substr(0, slash);
    if (FindString(res->get_object(), "resourceType").value_or("") != type) return std::nullopt;
    std::string id;
    if (method == "POST" && slash == std::string::npos) {
      id = NewResourceId();
    } else if (method == "PUT" && slash != std::string::npos) {
      id = url.substr(slash + 1);
      auto body_id = FindString(res->get_object(), "id");
      if (body_id && *body_id != id) return std::nullopt;  // the processor says why
    } else {
      return std::nullopt;
    }
    if (HasConditionalReference(*res)) return std::nullopt;
    res->get_object()["id"] = id;
    if (auto full = FindString(eo, "fullUrl")) refmap[std::string(*full)] = type + "/" + id;
    ingest::Item item;
    item.resource = std::move(res->get_object());
    item.source = fmt::format("{}: Bundle.entry[{}]", source, i);
    batch.items.push_back(std::move(item));
  }
  if (!refmap.empty()) {
    for (auto& item : batch.items) {
      json::value wrapped(std::move(item.resource));
      api::RewriteReferences(wrapped, refmap);
      item.resource = std::move(wrapped.get_object());
    }
  }
  return batch;
}

// An entry's OperationOutcome as one line, like the loader's rejections: each issue's
// diagnostics and where ("… (at Patient.birthDate)"), joined by "; ".
std::string DescribeOutcome(const json::value& outcome) {
  std::string out;
  const json::array* issues =
      outcome.is_object() ? FindArray(outcome.get_object(), "issue") : nullptr;
  if (!issues) return ToJson(outcome);
  for (const json::value& i : *issues) {
    if (!i.is_object()) continue;
    const json::object& o = i.get_object();
    std::string one(FindString(o, "diagnostics").value_or(FindString(o, "code").value_or("")));
    if (const json::array* at = FindArray(o, "expression");
        at && !at->empty() && at->at(0).is_string())
      one += " (at " + std::string(at->at(0).get_string()) + ")";
    out += (out.empty() ? "" : "; ") + one;
  }
  return out.empty() ? ToJson(outcome) : out;
}

// The general path for Bundles the loader cannot take: the API's transaction processor.
void ProcessBundle(Platform& p, const std::string& source, json::value v, ErrorSink& errors,
                   FallbackStats& stats) {
  auto& obj = v.get_object();
  std::size_t n = FindArray(obj, "entry") ? FindArray(obj, "entry")->size() : 0;
  api::BundleProcessor bp(*p.store, p.fhir_options, "");
  auto r = bp.Process(std::move(v));
  if (!r.ok()) {
    stats.rejected += static_cast<int64_t>(n);
    errors.Write(source, fmt::format("Bundle ({} entries, all rejected)", n),
                 ingest::DescribeError(r.error()));
    return;
  }
  std::size_t i = 0;
  for (const auto& e : r->at("entry").get_array()) {
    const auto& resp = e.at("response").get_object();
    if (resp.contains("outcome")) {
      ++stats.rejected;
      errors.Write(fmt::format("{}: Bundle.entry[{}]", source, i), "",
                   DescribeOutcome(resp.at("outcome")));
    } else {
      ++stats.loaded;
      if (auto loc = FindString(resp, "location"))
        ++stats.by_type[std::string(loc->substr(0, loc->find('/')))];
    }
    ++i;
  }
}

class Progress {
 public:
  Progress(bool quiet, int64_t total_bytes) : quiet_(quiet), total_bytes_(total_bytes) {}
  void Report(const ingest::LoaderStats& s, const FallbackStats& f, std::size_t files_done,
              std::size_t files, bool final) {
    auto now = Clock::now();
    if (quiet_ || (!final && now - last_ < std::chrono::milliseconds(500))) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    int64_t loaded = s.loaded + f.loaded;
    int64_t bytes = s.input_bytes_done + f.input_bytes;
    double frac =
        total_bytes_ > 0 ? static_cast<double>(bytes) / static_cast<double>(total_bytes_) : 0;
    double eta = frac > 0 ? secs * (1 - frac) / frac : 0;
    std::cerr << fmt::format(
        "\rimport: {}/{} files, {:.0f}/{:.0f} MB ({:.1f}%), {} loaded, {} rejected, {:.0f} "
        "resources/s, "
        "ETA {:.0f} s   ",
        files_done, files, static_cast<double>(bytes) / 1e6,
        static_cast<double>(total_bytes_) / 1e6, 100 * frac, loaded, s.rejected + f.rejected,
        secs > 0 ? static_cast<double>(loaded) / secs : 0.0, eta);
    if (final) std::cerr << "\n";
  }
  double Seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  bool quiet_;
  int64_t total_bytes_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_ = start_ - std::chrono::seconds(1);
};

int RunImport(const ImportFlags& f) {
  std::vector<fs::path> files;
  for (const auto& path : f.paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      for (const auto& de : fs::directory_iterator(path)) {
        if (de.is_regular_file() &&
            (de.path().extension() == ".json" || de.path().extension() == ".ndjson")) {
          files.push_back(de.path());
        } else if (!f.quiet) {
          // Said, not silently passed over: a compressed export (.ndjson.gz) or a subdirectory
          // of files the user meant to load is otherwise missing from the count unexplained.
          std::cerr << "jiceng import: skipped " << de.path().string()
                    << (de.is_directory() ? " (a directory: name its files or it)"
                                          : " (not .json or .ndjson)")
                    << "\n";
        }
      }
    } else if (fs::exists(path, ec)) {
      files.emplace_back(path);
    } else {
      std::cerr << "jiceng import: no such file or directory: " << path << "\n";
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  int64_t total_bytes = 0;
  for (const auto& file : files) {
    std::error_code ec;
    auto size = fs::file_size(file, ec);
    if (!ec) total_bytes += static_cast<int64_t>(size);
  }

  Config config;
  config.db = f.db;
  config.strict_validation = !f.lenient;
  auto opened = OpenPlatform(config, BulkLoadStoreOptions(f.bulk));
  if (!opened.ok()) {
    std::cerr << "jiceng import: cannot open database '" << f.db << "': " << opened.error().message
              << "\n";
    return 1;
  }
  Platform& p = **opened;

  std::ofstream err_out;
  if (!f.error_file.empty()) {
    err_out.open(f.error_file);
    if (!err_out) {
      std::cerr << "jiceng import: cannot write " << f.error_file << "\n";
      return 2;
    }
  }
  ErrorSink errors(f.error_file.empty() ? std::cerr : static_cast<std::ostream&>(err_out));
  ingest::LoaderOptions lo;
  lo.strict = !f.lenient;
  lo.prepare_threads = f.threads;
  lo.unit_size = f.unit_size;
  lo.on_reject = [&errors](const ingest::Rejection& r) {
    errors.Write(r.source, r.resource, r.reason);
  };
  // --lenient keeps an unknown element; where it was is written down as a warning all the same.
  lo.on_warning = [&errors](const ingest::Rejection& w) {
    errors.Write(w.source, w.resource, "warning (loaded): " + w.reason);
  };
  // Into an empty database the search indexes are built once at the end, in key order
  // (IStore::BeginBulkLoad); a Bundle that needs the transaction processor (which searches)
  // ends that mode first.
  bool bulk = false;
  if (!f.index_while_loading) {
    auto begun = p.store->BeginBulkLoad();
    if (!begun.ok()) {
      std::cerr << "jiceng import: " << begun.error().message << "\n";
      return 1;
    }
    bulk = *begun;
  }
  ingest::BulkLoader loader(*p.store, p.fhir_options, lo);
  FallbackStats fallback;
  Progress progress(f.quiet, total_bytes);
  Status failed = Status::Ok();

  std::size_t files_done = 0;
  // The first NDJSON batches are smaller (250 resources, then half of what was sent before, up
  // to --batch-size): the store's writer waits for the first batches to be prepared, and two
  // full batches of a heavy type (Patient: ~90 us each to prepare) kept it idle for ~0.45 s of
  // a 6 s import.
  int64_t items_sent = 0;
  auto batch_limit = [&] {
    return static_cast<int>(std::clamp<int64_t>(items_sent / 2, 250, f.batch_size));
  };
  for (const auto& file : files) {
    const std::string name = file.string();
    if (!failed.ok()) break;
    if (file.extension() == ".ndjson") {
      std::ifstream in(file, std::ios::binary);
      std::string line;
      int64_t line_no = 0;
      ingest::Batch batch;
      auto flush = [&] {
        if (batch.items.empty() && batch.input_bytes == 0) return;
        items_sent += static_cast<int64_t>(batch.items.size());
        if (failed.ok()) failed = loader.Add(std::move(batch));
        batch = ingest::Batch();
        progress.Report(loader.stats(), fallback, files_done, files.size(), false);
      };
      while (failed.ok() && std::getline(in, line)) {
        ++line_no;
        batch.input_bytes += static_cast<int64_t>(line.size()) + 1;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        ingest::Item item;
        item.text = std::move(line);
        item.source = fmt::format("{}:{}", name, line_no);
        batch.items.push_back(std::move(item));
        if (static_cast<int>(batch.items.size()) >= batch_limit()) flush();
      }
      flush();
    } else {
      std::string text = ReadWholeFile(file).value_or("");  // unreadable: rejected as not JSON
      const auto bytes = static_cast<int64_t>(text.size());
      auto v = ParseJson(text);
      std::string().swap(text);
      if (!v.ok() || !v->is_object()) {
        // The whole file is one rejection: its entries cannot be counted.
        ++fallback.rejected;
        errors.Write(name, "", v.ok() ? "not a JSON object" : ingest::DescribeError(v.error()));
        fallback.input_bytes += bytes;
      } else {
        auto& obj = v->get_object();
        auto rtype = FindString(obj, "resourceType").value_or("");
        auto btype = FindString(obj, "type").value_or("");
        if (rtype == "Bundle" && (btype == "transaction" || btype == "batch")) {
          if (auto batch = BundleToBatch(obj, name)) {
            batch->input_bytes = bytes;
            failed = loader.Add(std::move(*batch));
          } else {
            // Keep the order of writes: what the loader holds lands before this Bundle runs.
            loader.Drain();
            if (bulk) {
              failed = EndBulkLoad(*p.store, f.quiet);
              bulk = false;
              if (!failed.ok()) break;
            }
            ProcessBundle(p, name, std::move(*v), errors, fallback);
            fallback.input_bytes += bytes;
          }
        } else {
          // A single resource (a Bundle of another type is stored as a resource too).
          ingest::Batch batch;
          batch.input_bytes = bytes;
          ingest::Item item;
          item.resource = std::move(obj);
          item.source = name;
          batch.items.push_back(std::move(item));
          failed = loader.Add(std::move(batch));
        }
      }
    }
    ++files_done;
    progress.Report(loader.stats(), fallback, files_done, files.size(), false);
  }
  Status finished = loader.Finish();
  if (failed.ok()) failed = finished;
  ingest::LoaderStats s = loader.stats();
  progress.Report(s, fallback, files_done, files.size(), true);
  // After a store failure the next open completes the build (the marker stays).
  if (bulk && failed.ok()) failed = EndBulkLoad(*p.store, f.quiet);
  // PostgreSQL: ANALYZE what was loaded, before any search is planned over it.
  if (failed.ok()) failed = p.store->RefreshStatistics();
  double secs = progress.Seconds();
  int64_t loaded = s.loaded + fallback.loaded;
  int64_t rejected = s.rejected + fallback.rejected;
  for (const auto& [type, n] : fallback.by_type) s.loaded_by_type[type] += n;
  std::string by_type;
  for (const auto& [type, n] : s.loaded_by_type)
    by_type += fmt::format("{}{} {}", by_type.empty() ? "" : ", ", type, n);
  if (!f.quiet) {
    std::cerr << fmt::format(
        "import stages: parse {:.2f} s, validate {:.2f} s, search index extraction {:.2f} s, "
        "serialise {:.2f} s (CPU over {} worker threads); store writes {:.2f} s (wall, incl. "
        "fsync, summed over the two committers, whose batches overlap) in {} batches\n",
        s.parse_s, s.validate_s, s.index_s, s.serialize_s,
        f.threads > 0 ? f.threads : static_cast<int>(std::thread::hardware_concurrency()),
        s.write_s, s.batches);
  }
  std::cout << fmt::format(
      "imported {} resources from {} files in {:.2f} s ({:.0f} resources/s); {} rejected{}{}\n",
      loaded, files_done, secs, secs > 0 ? static_cast<double>(loaded) / secs : 0.0, rejected,
      s.warnings ? fmt::format(", {} warnings", s.warnings) : "",
      (rejected || s.warnings) && !f.error_file.empty() ? " (see " + f.error_file + ")" : "");
  if (!by_type.empty()) std::cout << "loaded: " << by_type << "\n";
  p.store->Close();
  if (!failed.ok()) {
    std::cerr << "jiceng import: stopped: " << ingest::DescribeError(failed.error()) << "\n";
    return 1;
  }
  return rejected == 0 ? 0 : 3;
}

}  // namespace

void AddImportCommand(CLI::App& app) {
  auto flags = std::make_shared<ImportFlags>();
  auto* cmd = app.add_subcommand(
      "import",
      "Load FHIR Bundles (.json), single resources (.json) or NDJSON files into the database");
  cmd->add_option("--db", flags->db, "Database (SQLite file or postgresql:// URL)")
      ->capture_default_str();
  cmd->add_flag("--lenient", flags->lenient, "Accept unknown elements with a warning");
  cmd->add_option("--errors", flags->error_file,
                  "Write rejected entries and why to this file (default: stderr)");
  cmd->add_option("--batch-size", flags->batch_size,
                  "NDJSON resources per batch (one commit; the first batches are smaller)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--unit-size", flags->unit_size,
                  "Resources per store write unit (units of a batch share one commit; 0: the "
                  "whole batch is one unit)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  AddBulkLoadStoreFlags(*cmd, flags->bulk, "");
  cmd->add_option("--threads", flags->threads, "Validation threads (0: one per core)")
      ->capture_default_str();
  cmd->add_flag("--index-while-loading", flags->index_while_loading,
                "Write the search index rows with each batch even into an empty database "
                "(default there: build them once when the load ends, which is faster)");
  cmd->add_flag("--quiet", flags->quiet, "No progress on stderr");
  cmd->add_option("paths", flags->paths, "Files or directories (.json, .ndjson)")->required();
  cmd->callback([flags] {
    int rc = RunImport(*flags);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace jiceng::cli
