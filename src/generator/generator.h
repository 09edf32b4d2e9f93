// generator/: the synthetic Chinese county behind `jiceng generate` and the benchmarks. Owns
// the county's institutions, staff and family-doctor teams, its residents and households, and
// their health records as plain FHIR R4 resources, plus deliberately corrupted duplicate
// registrations with the truth about them.
//
// The core is a stream: GenerateCounty hands self-contained batches to a sink and keeps only one
// household's resources and a few compact per-county tables in memory, so a million residents
// can go straight into a database. The output is a pure function of the options: the same seed
// and options give byte-identical batches on any platform (own PRNG and distributions, fixed
// reference date, no wall clock).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/result.h"

namespace jiceng::generator {

// Local code systems and identifier systems the generated data uses (all under one prefix so
// the platform can recognise them).
inline constexpr std::string_view kNipVaccineSystem =
    "https://jiceng.example/fhir/CodeSystem/nip-vaccine";
inline constexpr std::string_view kHealthRecordSystem =
    "https://jiceng.example/fhir/sid/health-record-no";  // 居民健康档案编号 (17 digits)
inline constexpr std::string_view kDivisionCodeExtension =
    "https://jiceng.example/fhir/StructureDefinition/division-code";  // 12-digit 统计用区划代码
inline constexpr std::string_view kHomeMethodCode = "home-self-measured";
// Fasting plasma glucose in mmol/L is LOINC 14771-0 (Moles/volume); 1558-6 is the mg/dL
// (Mass/volume) code. Observations carry 14771-0 first and 1558-6 second, so searches on either
// code find them.
inline constexpr std::string_view kFastingGlucoseLoinc = "14771-0";
inline constexpr std::string_view kFastingGlucoseMassLoinc = "1558-6";

struct GeneratorOptions {
  uint64_t seed = 42;
  int64_t residents = 1000;  // over all counties
  int counties = 1;          // 1..12: 嘉善县 first, then the other divisions of 嘉兴市 and 湖州市
  int townships_per_county = 15;
  int villages_per_township = 15;
  double dup_rate = 0.02;  // share of residents registered a second time, corrupted
  // Resources per household batch (whole households are never split; a batch closes once it
  // holds at least this many). The directory of each county is always one batch.
  int batch_size = 500;
  // "Today" of the synthetic county: two years of history end here. Fixed for determinism.
  std::string as_of = "2025-06-30";
};

Status ValidateOptions(const GeneratorOptions& options);

// One row of the duplicate truth file.
struct DuplicateTruth {
  std::string duplicate_id;        // Patient.id of the corrupted second registration
  std::string original_id;         // Patient.id of the resident's own record
  std::string kind;                // name-typo | traditional-char | missing-id | changed-phone
  std::string duplicate_identifier;  // "system|value" of the duplicate's local record number
  std::string original_identifier;   // "system|value" of the original's health record number
};

enum class BatchKind {
  // Organizations, Practitioners, PractitionerRoles, CareTeams with fixed ids ("org-330421101");
  // write with PUT. Parents come before children, so the batch can be loaded in order.
  kDirectory,
  // Whole households: Group, Patients and their clinical resources with generated UUID ids;
  // every reference resolves inside the batch or to a directory id.
  kHouseholds,
};

struct Batch {
  BatchKind kind = BatchKind::kHouseholds;
  std::vector<boost::json::object> resources;
  std::vector<DuplicateTruth> duplicates;  // the duplicates whose Patient is in this batch
  int64_t residents = 0;                   // original residents (not duplicates) in this batch
};

struct Progress {
  std::string_view stage;  // "directory" | "residents"
  int county = 0;          // 0-based
  int64_t residents_done = 0;
  int64_t residents_total = 0;
  int64_t resources_done = 0;
};

using BatchSink = std::function<Status(Batch&& batch)>;
using ProgressFn = std::function<void(const Progress&)>;

// Streams the whole synthetic city (one directory batch per county, then household batches).
// Stops at the first sink error and returns it.
Status GenerateCounty(const GeneratorOptions& options, const BatchSink& sink,
                      const ProgressFn& progress = {});

}  // namespace jiceng::generator
