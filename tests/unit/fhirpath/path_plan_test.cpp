// PathPlan against the evaluator: a plan must yield exactly the items Evaluate yields (same
// nodes, types, contexts and order; an error where Evaluate fails), or refuse. Checked for every
// R4 search parameter expression over every resource of the Synthea sample, and on hand-made
// resources for the corners the sample lacks.
#include "fhir/fhirpath/path_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/json.h"
#include "fhir/definitions.h"
#include "fhir/fhirpath/definitions_model.h"
#include "fhir/fhirpath/fhirpath.h"

namespace jiceng::fhirpath {
namespace {

namespace fs = std::filesystem;

json::value Json(std::string_view text) {
  auto v = ParseJson(text);
  EXPECT_TRUE(v.ok()) << text;
  return v.ok() ? std::move(v).value() : json::value();
}

EvalOptions Options() {
  EvalOptions o;
  o.model = &DefinitionsModel();
  return o;
}

Item RootOf(const json::value& resource) {
  const std::string_view type = FindString(resource.get_object(), "resourceType").value_or("");
  return Item::Node(&resource, nullptr, type, type);
}

std::string Describe(const Collection& c) {
  std::string out;
  for (const Item& i : c) {
    out += std::string(i.FhirType()) + "@" + std::string(i.context()) + "=" +
           (i.json() ? json::serialize(*i.json()) : "(ext)") + " ";
  }
  return out;
}

bool SameItems(const Collection& a, const Collection& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (!a[k].is_node() || !b[k].is_node() || a[k].json() != b[k].json() ||
        a[k].primitive_extension() != b[k].primitive_extension() ||
        a[k].FhirType() != b[k].FhirType() || a[k].context() != b[k].context()) {
      return false;
    }
  }
  return true;
}

struct Tally {
  int compared = 0;
  int refused = 0;  // kUnsupported at run time
};

// Runs `expr` on `input` both ways; the plan's outcome.
PathPlan::Outcome Check(const Expression& expr, const PathPlan& plan, const Item& input,
                        const json::value& resource, Tally& tally) {
  Collection out;
  PathPlan::Workspace ws;
  const PathPlan::Outcome o = plan.Run(input, resource, out, ws);
  if (o == PathPlan::Outcome::kUnsupported) {
    ++tally.refused;
    return o;
  }
  ++tally.compared;
  auto expected = EvaluateOn(expr, Collection{input}, &resource, Options());
  if (o == PathPlan::Outcome::kError) {
    EXPECT_FALSE(expected.ok()) << expr.text() << ": the plan failed where Evaluate did not";
    return o;
  }
  EXPECT_TRUE(expected.ok()) << expr.text() << ": " << expected.error().message;
  if (expected.ok()) {
    EXPECT_TRUE(SameItems(out, *expected)) << expr.text() << "\n plan:     " << Describe(out)
                                           << "\n evaluate: " << Describe(*expected);
  }
  return o;
}

std::vector<json::value> SyntheaResources() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(JICENG_SHARED_DIR) / "data/synthea-r4")) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<json::value> out;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    json::value bundle = Json(ss.str());
    for (const json::value& e : bundle.at("entry").as_array()) {
      if (const json::value* r = e.as_object().if_contains("resource")) out.push_back(*r);
    }
  }
  return out;
}

// Whether `o` has a member named `name`, "_name" or "name" + an upper-case letter + anything,
// for one of `names` (what PathPlan::LeadingElements promises to be enough to look for).
bool HasAnyMember(const json::object& o, const std::vector<std::string_view>& names) {
  for (const auto& kv : o) {
    std::string_view bare = kv.key();
    if (!bare.empty() && bare.front() == '_') bare.remove_prefix(1);
    for (std::string_view name : names) {
      if (bare == name || (bare.size() > name.size() && bare.starts_with(name) &&
                           std::isupper(static_cast<unsigned char>(bare[name.size()])))) {
        return true;
      }
    }
  }
  return false;
}

TEST(PathPlan, MatchesEvaluateOnEveryParameterOverSynthea) {
  const auto& defs = fhir::Definitions::Get();
  const auto resources = SyntheaResources();
  ASSERT_GT(resources.size(), 1000u);
  Tally tally;
  int plans = 0, no_plan = 0, skippable = 0;
  for (const json::value& resource : resources) {
    const std::string type(FindString(resource.get_object(), "resourceType").value_or(""));
    const Item root = RootOf(resource);
    for (const fhir::SearchParamDef* def : defs.SearchParams(type)) {
      if (def->expression.empty()) continue;
      auto expr = Compile(def->expression);
      if (!expr.ok()) continue;
      auto plan = PathPlan::Compile(*expr, type, DefinitionsModel());
      if (!plan) {
        ++no_plan;
        continue;
      }
      ++plans;
      Check(*expr, *plan, root, resource, tally);
      // Without a member named after a leading element, the expression yields nothing.
      const auto leading = plan->LeadingElements();
      if (!leading.empty() && !HasAnyMember(resource.get_object(), leading)) {
        auto all = Evaluate(*expr, resource, Options());
        EXPECT_TRUE(all.ok() && all->empty()) << def->expression;
        ++skippable;
      }
      // Composite components run relative to each item of the composite's expression.
      if (def->components.empty()) continue;
      auto elements = Evaluate(*expr, resource, Options());
      if (!elements.ok()) continue;
      for (const auto& c : def->components) {
        auto cexpr = Compile(c.expression);
        if (!cexpr.ok()) continue;
        auto cplan = PathPlan::Compile(*cexpr, "", DefinitionsModel());
        if (!cplan) continue;
        for (const Item& element : *elements) Check(*cexpr, *cplan, element, resource, tally);
      }
    }
  }
  // Nearly every parameter has a plan, and the plans cover nearly all the data.
  EXPECT_GT(plans, 20 * no_plan);
  EXPECT_GT(tally.compared, 100 * tally.refused);
  EXPECT_GT(skippable, plans / 4);  // the claim above was put to the test
}

const json::value kObservation = Json(R"({
  "resourceType": "Observation", "id": "o1", "status": "final",
  "category": [{"coding": [{"code": "vital-signs"}]}, {"coding": [{"code": "vital-signs"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
  "subject": {"reference": "Patient/123"},
  "performer": [{"reference": "#p1"}, {"reference": "Practitioner/9"}],
  "effectiveDateTime": "2024-03-05", "_effectiveDateTime": {"id": "e1"},
  "valueQuantity": {"value": 72, "unit": "beats/min"},
  "contained": [{"resourceType": "Practitioner", "id": "p1"}],
  "component": [
    {"code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
     "valueQuantity": {"value": 1, "unit": "kg"}},
    {"code": {"text": "dia"}, "valueString": "x", "_valueString": {"id": "s"}},
    {"code": {"text": "none"}}
  ]
})");

// Runs `text` on kObservation both ways and returns the plan's outcome.
PathPlan::Outcome RunBoth(std::string_view text, std::string_view type = "Observation") {
  auto expr = Compile(text);
  EXPECT_TRUE(expr.ok()) << text;
  auto plan = PathPlan::Compile(*expr, type, DefinitionsModel());
  EXPECT_TRUE(plan.has_value()) << text;
  if (!expr.ok() || !plan) return PathPlan::Outcome::kUnsupported;
  Tally tally;
  return Check(*expr, *plan, RootOf(kObservation), kObservation, tally);
}

TEST(PathPlan, PathsChoicesAndFilters) {
  EXPECT_EQ(RunBoth("Observation.code"), PathPlan::Outcome::kOk);
  EXPECT_EQ(RunBoth("Observation.code.coding.code"), PathPlan::Outcome::kOk);
  EXPECT_EQ(RunBoth("Observation.effective"), PathPlan::Outcome::kOk);  // with its "_" sibling
  EXPECT_EQ(RunBoth("(Observation.value as Quantity)"), PathPlan::Outcome::kOk);
  EXPECT_EQ(RunBoth("Observation.value.ofType(string)"), PathPlan::Outcome::kOk);
  EXPECT_EQ(RunBoth("Observation.component.value.ofType(string)"), PathPlan::Outcome::kOk);
  EXPECT_EQ(RunBoth("Observation.component.value.ofType(System.String)"), PathPlan::Outcome::kOk);
  EXPECT_EQ(RunBoth("Resource.meta.tag"), PathPlan::Outcome::kOk);
  EXPECT_EQ(RunBoth("Observation.subject.where(resolve() is Patient)"), PathPlan::Outcome::kOk);
  EXPECT_EQ(RunBoth("Observation.subject.where(resolve() is Group)"), PathPlan::Outcome::kOk);
  // A parameter spanning types: the other types' branches are empty.
  EXPECT_EQ(RunBoth("Patient.name | Observation.code"), PathPlan::Outcome::kOk);
}

TEST(PathPlan, UnionDropsDuplicates) {
  // The two categories are equal, and so are the two LOINC codes.
  EXPECT_EQ(RunBoth("Observation.category | Observation.code"), PathPlan::Outcome::kOk);
  EXPECT_EQ(RunBoth("Observation.code | Observation.component.code"), PathPlan::Outcome::kOk);
}

TEST(PathPlan, RefusesWhatItDoesNotCover) {
  // resolve() of a contained reference: left to the evaluator.
  EXPECT_EQ(RunBoth("Observation.performer.where(resolve() is Practitioner)"),
            PathPlan::Outcome::kUnsupported);
  // A child of a primitive's extension.
  EXPECT_EQ(RunBoth("Observation.effective.id"), PathPlan::Outcome::kUnsupported);
  for (std::string_view text :
       {"Observation.code.where(text = 'x')", "Observation.code.exists()", "Observation.code[0]",
        "Observation.value.ofType(NoSuchType)", "%resource.code", "Observation.code.first()"}) {
    auto expr = Compile(text);
    ASSERT_TRUE(expr.ok()) << text;
    EXPECT_FALSE(PathPlan::Compile(*expr, "Observation", DefinitionsModel())) << text;
  }
  // A type name at the focus of a relative plan: the input's type is unknown ahead.
  auto expr = Compile("Observation.code");
  ASSERT_TRUE(expr.ok());
  EXPECT_FALSE(PathPlan::Compile(*expr, "", DefinitionsModel()));
}

}  // namespace
}  // namespace jiceng::fhirpath
