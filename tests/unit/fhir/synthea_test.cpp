// Data tests: the Synthea R4 transaction Bundles in shared/data are valid R4, so strict
// validation must find nothing; the same data with STU3-only elements injected must be rejected
// in strict mode and accepted with warnings in lenient mode, each at the injected location.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "fhir/definitions.h"
#include "fhir/validator.h"

namespace jiceng::fhir {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

struct Loaded {
  std::string name;
  json::value bundle;
};

const std::vector<Loaded>& Bundles() {
  static const std::vector<Loaded> bundles = [] {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(fs::path(JICENG_SHARED_DIR) / "data" / "synthea-r4"))
      if (e.path().extension() == ".json") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    std::vector<Loaded> out;
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      out.push_back({f.filename().string(), json::parse(ss.str())});
    }
    return out;
  }();
  return bundles;
}

std::string Describe(const std::vector<Issue>& issues, size_t limit = 20) {
  std::string s;
  for (size_t i = 0; i < issues.size() && i < limit; ++i)
    s += issues[i].severity + " " + issues[i].code + " @" + issues[i].expression + ": " + issues[i].diagnostics + "\n";
  return s;
}

TEST(SyntheaTest, AllBundlesValidStrict) {
  const auto& bundles = Bundles();
  ASSERT_EQ(bundles.size(), 30u);
  size_t entries = 0;
  double total_ms = 0;
  size_t bytes = 0;
  for (const auto& b : bundles) {
    const json::object& bundle = b.bundle.as_object();
    const json::array& entry = bundle.at("entry").as_array();
    entries += entry.size();
    bytes += json::serialize(bundle).size();
    auto start = std::chrono::steady_clock::now();
    auto issues = Validate(bundle, {true});
    total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    EXPECT_TRUE(issues.empty()) << b.name << "\n" << Describe(issues);
    // Each entry's resource on its own, too.
    for (const auto& e : entry) {
      auto own = Validate(e.at("resource").as_object(), {true});
      EXPECT_TRUE(own.empty()) << b.name << "\n" << Describe(own);
    }
  }
  EXPECT_EQ(entries, 9303u);
  // Informational (tests never assert on wall-clock time).
  std::printf("synthea: %zu bundles, %zu entries, %.1f MB, strict validation %.2f ms per bundle on average\n",
              bundles.size(), entries, static_cast<double>(bytes) / 1e6, total_ms / static_cast<double>(bundles.size()));
}

// Elements that STU3 had and R4 removed.
struct Injection {
  const char* resource_type;
  const char* element;
  const char* json;
};
constexpr Injection kInjections[] = {
    {"Observation", "context", R"({"reference":"Encounter/stu3"})"},
    {"Condition", "assertedDate", R"("2017-01-01")"},
    {"MedicationRequest", "context", R"({"reference":"Encounter/stu3"})"},
    {"Patient", "animal", R"({"species":{"text":"dog"}})"},
};

TEST(SyntheaTest, LegacyStu3ElementsRejectedStrictAcceptedLenient) {
  size_t total_injected = 0;
  for (const auto& b : Bundles()) {
    json::value copy = b.bundle;
    std::set<std::string> expected;
    auto& entry = copy.as_object().at("entry").as_array();
    size_t per_type[std::size(kInjections)] = {};
    for (size_t i = 0; i < entry.size(); ++i) {
      auto& resource = entry[i].as_object().at("resource").as_object();
      std::string_view type = resource.at("resourceType").as_string();
      for (size_t k = 0; k < std::size(kInjections); ++k) {
        const auto& inj = kInjections[k];
        // A few of each per Bundle is enough, and keeps the expected set readable.
        if (type != inj.resource_type || per_type[k] >= 3) continue;
        ++per_type[k];
        resource[inj.element] = json::parse(inj.json);
        expected.insert("Bundle.entry[" + std::to_string(i) + "].resource." + inj.element);
      }
    }
    ASSERT_FALSE(expected.empty()) << b.name;
    total_injected += expected.size();

    auto strict = Validate(copy.as_object(), {true});
    std::set<std::string> errors;
    for (const auto& issue : strict) {
      EXPECT_EQ(issue.severity, "error") << issue.expression;
      EXPECT_EQ(issue.code, "structure") << issue.expression;
      errors.insert(issue.expression);
    }
    EXPECT_EQ(strict.size(), expected.size()) << b.name << "\n" << Describe(strict);
    EXPECT_EQ(errors, expected) << b.name;
    EXPECT_FALSE(ValidateResource(copy.as_object(), {true}).ok());

    auto lenient = Validate(copy.as_object(), {false});
    std::set<std::string> warnings;
    for (const auto& issue : lenient) {
      EXPECT_EQ(issue.severity, "warning") << issue.expression;
      warnings.insert(issue.expression);
    }
    EXPECT_EQ(lenient.size(), expected.size()) << b.name;
    EXPECT_EQ(warnings, expected) << b.name;
    std::vector<Issue> accepted_warnings;
    EXPECT_TRUE(ValidateResource(copy.as_object(), {false}, &accepted_warnings).ok());
    EXPECT_EQ(accepted_warnings.size(), expected.size());
  }
  EXPECT_GT(total_injected, 100u);
}

}  // namespace
}  // namespace jiceng::fhir
