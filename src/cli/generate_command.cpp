#include "cli/generate_command.h"

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>

#include "cli/platform.h"
#include "generator/generator.h"
#include "generator/output.h"
#include "ingest/bulk_loader.h"

namespace jiceng::cli {
namespace {

struct GenerateFlags {
  generator::GeneratorOptions options;
  std::string out = "generated";
  std::string format = "ndjson";
  std::string db;         // when set: load into this database instead of writing files
  std::string truth;      // --db: duplicate truth CSV (default <db>.duplicates.csv)
  std::string errors;     // --db: rejected resources and why (default stderr)
  int load_batch = 5000;  // --db: resources per write transaction
  int threads = 0;        // --db: validation threads
  BulkLoadFlags bulk;     // --db: the store settings of the load
  bool quiet = false;
};

// `--db`: the generator's batches go through the bulk loader (the API's validation, stamping,
// indexing and Put, thousands of resources per durable commit) while the generator runs on.
int RunGenerateIntoDb(const GenerateFlags& f) {
  Config config;
  config.db = f.db;
  auto opened = OpenPlatform(config, BulkLoadStoreOptions(f.bulk));
  if (!opened.ok()) {
    std::cerr << "jiceng generate: cannot open database '" << f.db
              << "': " << opened.error().message << "\n";
    return 1;
  }
  Platform& p = **opened;
  const std::string truth_path = f.truth.empty() ? f.db + ".duplicates.csv" : f.truth;
  std::ofstream truth(truth_path);
  if (!truth) {
    std::cerr << "jiceng generate: cannot write " << truth_path << "\n";
    return 1;
  }
  truth << "duplicate_id,original_id,kind,duplicate_identifier,original_identifier\n";
  std::ofstream err_file;
  if (!f.errors.empty()) err_file.open(f.errors);
  std::ostream& err_out = f.errors.empty() ? std::cerr : static_cast<std::ostream&>(err_file);
  std::mutex err_mu;
  ingest::LoaderOptions lo;
  lo.prepare_threads = f.threads;
  lo.on_reject = [&](const ingest::Rejection& r) {
    std::lock_guard lock(err_mu);
    err_out << r.source << ": " << r.resource << ": " << r.reason << "\n";
  };
  // Into an empty database the search indexes are built once at the end (IStore::BeginBulkLoad).
  auto bulk = p.store->BeginBulkLoad();
  if (!bulk.ok()) {
    std::cerr << "jiceng generate: " << bulk.error().message << "\n";
    return 1;
  }
  ingest::BulkLoader loader(*p.store, p.fhir_options, lo);

  const auto start = std::chrono::steady_clock::now();
  auto last = start - std::chrono::seconds(1);
  int64_t generated = 0, duplicates = 0, batch_no = 0;
  generator::Progress last_progress;
  auto report = [&](bool final) {
    auto now = std::chrono::steady_clock::now();
    if (f.quiet || (!final && now - last < std::chrono::milliseconds(500))) return;
    last = now;
    const auto& pr = last_progress;
    ingest::LoaderStats s = loader.stats();
    double secs = std::chrono::duration<double>(now - start).count();
    double done = pr.residents_total > 0 ? static_cast<double>(pr.residents_done) /
                                               static_cast<double>(pr.residents_total)
                                         : 0;
    // The load trails the generator: the ETA follows what is committed.
    double loaded_frac =
        done > 0 && generated > 0
            ? done * static_cast<double>(s.loaded + s.rejected) / static_cast<double>(generated)
            : 0;
    double eta = loaded_frac > 0 ? secs * (1 - loaded_frac) / loaded_frac : 0;
    std::cerr << fmt::format(
        "\rgenerate: county {} {}: {}/{} residents ({:.1f}%), {} generated; loaded {} ({:.0f}/s), "
        "{} rejected, ETA {:.0f} s   ",
        pr.county + 1, pr.stage, pr.residents_done, pr.residents_total, 100 * done, generated,
        s.loaded, secs > 0 ? static_cast<double>(s.loaded) / secs : 0.0, s.rejected, eta);
    if (final) std::cerr << "\n";
  };

  ingest::Batch pending;
  Status st = generator::GenerateCounty(
      f.options,
      [&](generator::Batch&& b) -> Status {
        ++batch_no;
        for (const auto& d : b.duplicates) {
          truth << d.duplicate_id << ',' << d.original_id << ',' << d.kind << ','
                << d.duplicate_identifier << ',' << d.original_identifier << '\n';
          ++duplicates;
        }
        for (std::size_t i = 0; i < b.resources.size(); ++i) {
          ingest::Item item;
          item.resource = std::move(b.resources[i]);
          item.source = fmt::format("generated batch {} resource {}", batch_no, i);
          pending.items.push_back(std::move(item));
        }
        generated += static_cast<int64_t>(b.resources.size());
        if (static_cast<int>(pending.items.size()) >= f.load_batch) {
          JC_RETURN_IF_ERROR(loader.Add(std::move(pending)));
          pending = ingest::Batch();
        }
        report(false);
        return Status::Ok();
      },
      [&](const generator::Progress& pr) { last_progress = pr; });
  if (st.ok() && !pending.items.empty()) st = loader.Add(std::move(pending));
  Status finished = loader.Finish();
  if (st.ok()) st = finished;
  report(true);
  if (st.ok() && *bulk) st = EndBulkLoad(*p.store, f.quiet);
  if (st.ok()) st = p.store->RefreshStatistics();  // PostgreSQL: ANALYZE what was loaded
  truth.close();
  ingest::LoaderStats s = loader.stats();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  p.store->Close();
  if (!st.ok()) {
    std::cerr << "jiceng generate: " << ingest::DescribeError(st.error()) << "\n";
    return 1;
  }
  std::cout << fmt::format(
      "generated {} residents, {} resources ({:.1f} per resident), {} duplicates; loaded {} into "
      "{} "
      "in {:.2f} s ({:.0f} resources/s); {} rejected; duplicate truth in {}\n",
      f.options.residents, generated,
      static_cast<double>(generated) / static_cast<double>(f.options.residents), duplicates,
      s.loaded, f.db, secs, secs > 0 ? static_cast<double>(s.loaded) / secs : 0.0, s.rejected,
      truth_path);
  return s.rejected == 0 ? 0 : 3;
}

int RunGenerate(const GenerateFlags& f) {
  if (!f.db.empty()) {
    Status valid = generator::ValidateOptions(f.options);
    if (!valid.ok()) {
      std::cerr << "jiceng generate: " << valid.error().message << "\n";
      return 2;
    }
    return RunGenerateIntoDb(f);
  }
  auto format = generator::ParseOutputFormat(f.format);
  if (!format.ok()) {
    std::cerr << "jiceng generate: " << format.error().message << "\n";
    return 2;
  }
  Status valid = generator::ValidateOptions(f.options);
  if (!valid.ok()) {
    std::cerr << "jiceng generate: " << valid.error().message << "\n";
    return 2;
  }
  auto out = generator::FileOutput::Open(f.out, *format);
  if (!out.ok()) {
    std::cerr << "jiceng generate: " << out.error().message << "\n";
    return 1;
  }
  generator::FileOutput& files = **out;
  const auto start = std::chrono::steady_clock::now();
  auto last = start - std::chrono::seconds(1);
  auto report = [&](const generator::Progress& p, bool final) {
    auto now = std::chrono::steady_clock::now();
    if (!final && now - last < std::chrono::milliseconds(500)) return;
    last = now;
    double secs = std::chrono::duration<double>(now - start).count();
    double rate = secs > 0 ? static_cast<double>(p.resources_done) / secs : 0;
    double done = p.residents_total > 0 ? static_cast<double>(p.residents_done) /
                                              static_cast<double>(p.residents_total)
                                        : 0;
    double eta = done > 0 ? secs * (1 - done) / done : 0;
    std::cerr << fmt::format(
        "\rgenerate: county {} {}: {}/{} residents ({:.1f}%), {} resources, {:.0f} resources/s, "
        "ETA {:.0f} s   ",
        p.county + 1, p.stage, p.residents_done, p.residents_total, 100 * done, p.resources_done,
        rate, eta);
    if (final) std::cerr << "\n";
  };
  generator::Progress last_progress;
  Status st = generator::GenerateCounty(
      f.options, [&](generator::Batch&& b) { return files.Write(std::move(b)); },
      [&](const generator::Progress& p) {
        last_progress = p;
        if (!f.quiet) report(p, false);
      });
  if (st.ok()) st = files.Close();
  if (!st.ok()) {
    std::cerr << "\njiceng generate: " << st.error().message << "\n";
    return 1;
  }
  if (!f.quiet) report(last_progress, true);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format(
      "generated {} residents, {} resources ({:.1f} per resident), {} duplicates in {:.2f} s "
      "({:.0f} resources/s) into {}\n",
      f.options.residents, files.resources(),
      static_cast<double>(files.resources()) / static_cast<double>(f.options.residents),
      files.duplicates(), secs, secs > 0 ? static_cast<double>(files.resources()) / secs : 0.0,
      f.out);
  return 0;
}

}  // namespace

void AddGenerateCommand(CLI::App& app) {
  auto flags = std::make_shared<GenerateFlags>();
  auto* cmd = app.add_subcommand(
      "generate", "Write a synthetic county (institutions, residents, health records) as FHIR");
  cmd->add_option("--residents", flags->options.residents, "Residents over all counties")
      ->capture_default_str();
  cmd->add_option("--seed", flags->options.seed, "Seed: same seed and flags give identical output")
      ->capture_default_str();
  cmd->add_option("--counties", flags->options.counties,
                  "Counties (1: 嘉善县 330421; more: the other divisions of 嘉兴市, then 湖州市)")
      ->capture_default_str();
  cmd->add_option("--townships", flags->options.townships_per_county, "Townships per county")
      ->capture_default_str();
  cmd->add_option("--villages", flags->options.villages_per_township, "Villages per township")
      ->capture_default_str();
  cmd->add_option("--dup-rate", flags->options.dup_rate,
                  "Share of residents registered twice with a corruption (truth in duplicates.csv)")
      ->capture_default_str();
  cmd->add_option("--bundle-size", flags->options.batch_size,
                  "Resources per transaction Bundle (whole households are never split)")
      ->capture_default_str();
  cmd->add_option("--as-of", flags->options.as_of, "Reference date; history covers 2 years before")
      ->capture_default_str();
  auto* out = cmd->add_option("--out", flags->out, "Output directory")->capture_default_str();
  cmd->add_option("--db", flags->db,
                  "Load straight into this database (SQLite file or postgresql:// URL) instead of "
                  "writing files")
      ->excludes(out);
  cmd->add_option("--truth", flags->truth,
                  "With --db: duplicate truth CSV (default <db>.duplicates.csv)");
  cmd->add_option("--errors", flags->errors, "With --db: write rejected resources and why here");
  cmd->add_option("--load-batch", flags->load_batch, "With --db: resources per write transaction")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  AddBulkLoadStoreFlags(*cmd, flags->bulk, "With --db: ");
  cmd->add_option("--threads", flags->threads, "With --db: validation threads (0: one per core)")
      ->capture_default_str();
  cmd->add_option("--format", flags->format,
                  "ndjson (one file per type, ids kept) | bundles (the directory by PUT, each "
                  "household a transaction that POSTs its resources: the server assigns their "
                  "ids, so duplicates.csv then matches by its identifier columns)")
      ->check(CLI::IsMember({"ndjson", "bundles"}))
      ->capture_default_str();
  cmd->add_flag("--quiet", flags->quiet, "No progress line on stderr");
  cmd->callback([flags] {
    int rc = RunGenerate(*flags);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace jiceng::cli
