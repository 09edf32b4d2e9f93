// Every generated resource (directory, households, duplicates) and every transaction Bundle
// passes the server's strict R4 validation.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "fhir/validator.h"
#include "generator/generator.h"
#include "generator/output.h"

namespace jiceng::generator {
namespace {

namespace json = boost::json;

TEST(GeneratorFhir, AllResourcesValidateStrictly) {
  // The validator is not a no-op: an empty string and an unknown element are both caught.
  ASSERT_FALSE(fhir::Validate(json::parse(R"({"resourceType":"Patient","gender":""})").as_object()).empty());
  ASSERT_FALSE(fhir::Validate(json::parse(R"({"resourceType":"Patient","colour":"x"})").as_object()).empty());
  GeneratorOptions o;
  o.residents = 2500;
  o.seed = 17;
  o.dup_rate = 0.05;
  std::map<std::string, int> checked;
  int failures = 0;
  Status st = GenerateCounty(o, [&](Batch&& b) {
    for (const auto& r : b.resources) {
      std::string type(r.at("resourceType").as_string());
      ++checked[type];
      auto issues = fhir::Validate(r, fhir::ValidationOptions{true});
      if (!issues.empty() && failures++ < 10) {
        ADD_FAILURE() << type << ": " << issues[0].expression << ": " << issues[0].diagnostics
                      << " in " << json::serialize(r);
      }
    }
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(failures, 0);
  for (const char* t : {"Organization", "Practitioner", "PractitionerRole", "CareTeam", "Patient",
                        "Group", "Condition", "Encounter", "Observation", "Immunization",
                        "EpisodeOfCare"}) {
    EXPECT_GT(checked[t], 0) << t;
  }
}

TEST(GeneratorFhir, TransactionBundlesValidateStrictly) {
  GeneratorOptions o;
  o.residents = 600;
  o.seed = 23;
  o.dup_rate = 0.05;
  int bundles = 0;
  Status st = GenerateCounty(o, [&](Batch&& b) {
    json::object bundle = ToTransactionBundle(std::move(b));
    auto issues = fhir::Validate(bundle, fhir::ValidationOptions{true});
    ++bundles;
    EXPECT_TRUE(issues.empty()) << issues.size() << " issues, first: "
                                << (issues.empty() ? "" : issues[0].expression + ": " +
                                                              issues[0].diagnostics);
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok());
  EXPECT_GT(bundles, 2);
}

}  // namespace
}  // namespace jiceng::generator
