#include "cli/generate_command.h"

#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "generator/generator.h"
#include "generator/output.h"

namespace jiceng::cli {
namespace {

struct GenerateFlags {
  generator::GeneratorOptions options;
  std::string out = "generated";
  std::string format = "ndjson";
  bool quiet = false;
};

int RunGenerate(const GenerateFlags& f) {
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
    double done = p.residents_total > 0
                      ? static_cast<double>(p.residents_done) / static_cast<double>(p.residents_total)
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
  cmd->add_option("--out", flags->out, "Output directory")->capture_default_str();
  cmd->add_option("--format", flags->format, "ndjson | bundles")
      ->check(CLI::IsMember({"ndjson", "bundles"}))
      ->capture_default_str();
  cmd->add_flag("--quiet", flags->quiet, "No progress line on stderr");
  cmd->callback([flags] {
    int rc = RunGenerate(*flags);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace jiceng::cli
