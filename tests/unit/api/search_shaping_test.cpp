// Pure parts of search result shaping: _include/_revinclude parsing, reference targets, the
// compartment table, paging links and slicing across types.
#include "api/search_shaping.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "api/compartments.h"
#include "api/search_include.h"
#include "fhir/definitions.h"
#include "fhir/search/extractor.h"

namespace jiceng::api {
namespace {

using Targets = std::vector<std::pair<std::string, std::string>>;

bool Has(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(IncludeSpec, ParsesTheR4Forms) {
  auto a = ParseIncludeSpec("_include", "Observation:subject");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_FALSE(a->reverse);
  EXPECT_FALSE(a->iterate);
  EXPECT_EQ(a->source_type, "Observation");
  EXPECT_EQ(a->param, "subject");
  EXPECT_EQ(a->target_type, "");

  auto b = ParseIncludeSpec("_include:iterate", "Observation:subject:Patient");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_TRUE(b->iterate);
  EXPECT_EQ(b->target_type, "Patient");

  auto c = ParseIncludeSpec("_revinclude:recurse", "Observation:subject");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->reverse);
  EXPECT_TRUE(c->iterate);

  auto star = ParseIncludeSpec("_include", "*");
  ASSERT_TRUE(star.ok());
  EXPECT_EQ(star->source_type, "*");
  EXPECT_EQ(star->param, "*");

  auto type_star = ParseIncludeSpec("_include", "Encounter:*:Practitioner");
  ASSERT_TRUE(type_star.ok());
  EXPECT_EQ(type_star->param, "*");
  EXPECT_EQ(type_star->target_type, "Practitioner");
}

TEST(IncludeSpec, RejectsWhatCannotWork) {
  for (auto [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"_include", "Observation"},                     // no parameter
           {"_include", "Observation:subject:Patient:x"},   // too many parts
           {"_include", "Nope:subject"},                    // unknown type
           {"_include", "Observation:nope"},                // unknown parameter
           {"_include", "Observation:code"},                // not a reference
           {"_include", "Observation:subject:Nope"},        // unknown target
           {"_include", "Observation:subject:Medication"},  // subject cannot reference it
           {"_include:deep", "Observation:subject"},        // unknown modifier
           {"_revinclude", "*"},                            // bare * only for _include
       }) {
    auto r = ParseIncludeSpec(name, value);
    EXPECT_FALSE(r.ok()) << name << "=" << value;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
      EXPECT_NE(r.error().message.find(name.substr(0, name.find(':'))), std::string::npos)
          << r.error().message;
    }
  }
}

TEST(ReferenceTargets, FollowsTheParameterExpression) {
  auto obs = ParseJson(R"({"resourceType":"Observation","id":"o",
    "subject":{"reference":"Patient/p1"},
    "performer":[{"reference":"Practitioner/d1"},
                 {"reference":"https://here.example/fhir/Practitioner/d2"},
                 {"reference":"https://elsewhere.example/fhir/Practitioner/d3"},
                 {"reference":"#contained"},
                 {"reference":"Practitioner/d1/_history/4"},
                 {"reference":"Organization/org1"}],
    "hasMember":[{"reference":"Observation/o2"}]})");
  ASSERT_TRUE(obs.ok());
  const std::string base = "https://here.example/fhir";
  EXPECT_EQ(ReferenceTargets(*obs, "subject", "", base), (Targets{{"Patient", "p1"}}));
  // Local absolute URLs count; foreign ones and contained references do not; duplicates once.
  EXPECT_EQ(ReferenceTargets(*obs, "performer", "", base),
            (Targets{{"Practitioner", "d1"}, {"Practitioner", "d2"}, {"Organization", "org1"}}));
  EXPECT_EQ(ReferenceTargets(*obs, "performer", "Organization", base),
            (Targets{{"Organization", "org1"}}));
  EXPECT_TRUE(ReferenceTargets(*obs, "subject", "Group", base).empty());
  // "*": every reference parameter.
  auto all = ReferenceTargets(*obs, "*", "", base);
  EXPECT_NE(std::find(all.begin(), all.end(),
                      std::make_pair(std::string("Observation"), std::string("o2"))),
            all.end());
  EXPECT_NE(
      std::find(all.begin(), all.end(), std::make_pair(std::string("Patient"), std::string("p1"))),
      all.end());
  // A parameter restricted to one type (Observation.patient) skips other subjects.
  auto grp = ParseJson(R"({"resourceType":"Observation","subject":{"reference":"Group/g"}})");
  EXPECT_TRUE(ReferenceTargets(*grp, "patient", "", base).empty());
  EXPECT_EQ(ReferenceTargets(*grp, "subject", "", base), (Targets{{"Group", "g"}}));
}

TEST(ReferenceTargets, BareIdsTakeTheOnlyTargetType) {
  // Patient.generalPractitioner may be Organization, Practitioner or PractitionerRole: a bare id
  // resolves only when the include names the type. Encounter.episode-of-care has one target.
  auto p = ParseJson(R"({"resourceType":"Patient","generalPractitioner":[{"reference":"d1"}]})");
  EXPECT_TRUE(ReferenceTargets(*p, "general-practitioner", "", "").empty());
  EXPECT_EQ(ReferenceTargets(*p, "general-practitioner", "Practitioner", ""),
            (Targets{{"Practitioner", "d1"}}));
  auto e = ParseJson(R"({"resourceType":"Encounter","episodeOfCare":[{"reference":"ep1"}]})");
  EXPECT_EQ(ReferenceTargets(*e, "episode-of-care", "", ""), (Targets{{"EpisodeOfCare", "ep1"}}));
}

TEST(Compartments, PatientTableIsTheEmbeddedDefinition) {
  const auto& defs = fhir::Definitions::Get();
  size_t members = 0;
  for (const std::string& t : defs.ResourceTypes()) {
    EXPECT_EQ(CompartmentParams("Patient", t), defs.PatientCompartmentParams(t)) << t;
    if (!CompartmentParams("Patient", t).empty()) ++members;
  }
  EXPECT_GT(members, 50u);
  EXPECT_TRUE(Has(CompartmentParams("Patient", "Observation"), "subject"));
  EXPECT_TRUE(Has(CompartmentParams("Patient", "Observation"), "performer"));
  EXPECT_TRUE(CompartmentParams("Patient", "Organization").empty());
}

TEST(Compartments, AllFiveR4Compartments) {
  EXPECT_EQ(CompartmentTypes(), (std::vector<std::string>{"Device", "Encounter", "Patient",
                                                          "Practitioner", "RelatedPerson"}));
  EXPECT_TRUE(IsCompartmentType("Encounter"));
  EXPECT_FALSE(IsCompartmentType("Observation"));
  EXPECT_EQ(CompartmentParams("Encounter", "Encounter"), (std::vector<std::string>{"{def}"}));
  EXPECT_EQ(CompartmentParams("Encounter", "Observation"), (std::vector<std::string>{"encounter"}));
  EXPECT_TRUE(Has(CompartmentParams("Practitioner", "Encounter"), "practitioner"));
  EXPECT_TRUE(Has(CompartmentParams("Device", "Observation"), "device"));
  EXPECT_FALSE(CompartmentParams("RelatedPerson", "Observation").empty());
  EXPECT_TRUE(CompartmentParams("Nope", "Observation").empty());
  const auto& types = CompartmentResourceTypes("Patient");
  EXPECT_TRUE(std::is_sorted(types.begin(), types.end()));
  EXPECT_TRUE(Has(types, "Observation"));
  EXPECT_FALSE(Has(types, "Organization"));
  EXPECT_EQ(CompartmentDefinitionUrl("RelatedPerson"),
            "http://hl7.org/fhir/CompartmentDefinition/relatedPerson");
}

TEST(Compartments, ParametersAreIndexedReferences) {
  // Membership is answered from the reference index: a compartment parameter that the index
  // does not hold would silently leave resources out.
  std::vector<std::string> missing;
  for (const std::string& c : CompartmentTypes()) {
    for (const std::string& t : CompartmentResourceTypes(c)) {
      std::vector<std::string> refs = ReferenceParams(t);
      for (const std::string& p : CompartmentParams(c, t)) {
        if (p == kCompartmentSelf) continue;
        if (!Has(refs, p)) missing.push_back(c + ":" + t + "." + p);
      }
    }
  }
  EXPECT_TRUE(missing.empty()) << ::testing::PrintToString(missing);
}

TEST(SliceParts, PagesAcrossParts) {
  using S = std::vector<PartSlice>;
  auto eq = [](const S& a, const S& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].part != b[i].part || a[i].offset != b[i].offset || a[i].count != b[i].count)
        return false;
    return true;
  };
  EXPECT_TRUE(eq(SliceParts({1, 3, 0, 4}, 0, 2), S{{0, 0, 1}, {1, 0, 1}}));
  EXPECT_TRUE(eq(SliceParts({1, 3, 0, 4}, 2, 4), S{{1, 1, 2}, {3, 0, 2}}));
  EXPECT_TRUE(eq(SliceParts({1, 3, 0, 4}, 6, 10), S{{3, 2, 2}}));
  EXPECT_TRUE(SliceParts({1, 3, 0, 4}, 8, 5).empty());
  EXPECT_TRUE(SliceParts({1, 3}, 0, 0).empty());
  EXPECT_TRUE(eq(SliceParts({5}, INT64_MAX - 1, INT64_MAX), S{}));
}

TEST(PagingLinks, SelfNextPreviousFirstLast) {
  PagingLinks p;
  p.base = "http://h/fhir";
  p.path = "/Patient";
  p.params = {{"name", "wang li"}, {"_snapshot", "7"}};
  p.offset = 20;
  p.count = 10;
  p.total = 45;
  auto links = MakePagingLinks(p);
  ASSERT_EQ(links.size(), 5u);
  EXPECT_EQ(
      links[0],
      std::make_pair(
          std::string("self"),
          std::string(
              "http://h/fhir/Patient?name=wang%20li&_snapshot=7&_count=10&_getpagesoffset=20")));
  EXPECT_EQ(links[1].first, "next");
  EXPECT_NE(links[1].second.find("_getpagesoffset=30"), std::string::npos);
  EXPECT_EQ(links[2].first, "previous");
  EXPECT_NE(links[2].second.find("_getpagesoffset=10"), std::string::npos);
  EXPECT_EQ(links[3].first, "first");
  EXPECT_EQ(links[3].second.find("_getpagesoffset"), std::string::npos);
  EXPECT_EQ(links[4].first, "last");
  EXPECT_NE(links[4].second.find("_getpagesoffset=40"), std::string::npos);

  // The last page: no next. Exactly full: last is the page itself.
  p.offset = 40;
  p.total = 50;
  links = MakePagingLinks(p);
  EXPECT_EQ(links[1].first, "previous");
  EXPECT_NE(links.back().second.find("_getpagesoffset=40"), std::string::npos);

  // No total: next when the page was full; no last.
  p.total.reset();
  p.offset = 0;
  p.has_more = true;
  links = MakePagingLinks(p);
  ASSERT_EQ(links.size(), 3u);
  EXPECT_EQ(links[1].first, "next");
  EXPECT_EQ(links[2].first, "first");

  // _count=0 pages nothing: only self (a next link would point at the same page forever).
  p.count = 0;
  p.total = 10;
  links = MakePagingLinks(p);
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].first, "self");
}

TEST(SplitShaping, NearAndQueryAreNotSupported) {
  SearchParams params{
      {"near", "1|2|3|km"}, {"name", "x"}, {"_query", "q"}, {"_include", "Observation:subject"}};
  auto lenient = SplitShaping(params, false);
  ASSERT_TRUE(lenient.ok());
  EXPECT_EQ(lenient->criteria, (SearchParams{{"name", "x"}}));
  EXPECT_EQ(lenient->applied, (SearchParams{{"_include", "Observation:subject"}}));
  ASSERT_EQ(lenient->includes.size(), 1u);
  ASSERT_EQ(lenient->warnings.size(), 2u);
  EXPECT_EQ(lenient->warnings[0].code, "not-supported");
  EXPECT_EQ(lenient->warnings[0].severity, "warning");
  EXPECT_EQ(lenient->warnings[0].expression, "near");
  EXPECT_EQ(lenient->warnings[1].expression, "_query");

  auto strict = SplitShaping(params, true);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.error().code, ErrorCode::kInvalid);
  ASSERT_FALSE(strict.error().issues.empty());
  EXPECT_EQ(strict.error().issues[0].code, "not-supported");
  EXPECT_EQ(strict.error().issues[0].expression, "near");

  // A bad _include: ignored with a warning, or a 400 when strict.
  SearchParams bad{{"_include", "Observation:nope"}};
  auto w = SplitShaping(bad, false);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->includes.empty());
  EXPECT_TRUE(w->applied.empty());
  EXPECT_EQ(w->warnings.size(), 1u);
  EXPECT_FALSE(SplitShaping(bad, true).ok());
}

TEST(NormalizeSort, TheSelfLinkShowsTheSortApplied) {
  SearchParams applied{{"name", "x"}, {"_sort", "-birthdate,nope"}};
  std::vector<Issue> warnings;
  std::vector<store::SortKey> keys(1);
  keys[0].param = "birthdate";
  keys[0].descending = true;
  NormalizeSort(applied, keys, warnings);
  EXPECT_EQ(applied, (SearchParams{{"name", "x"}, {"_sort", "-birthdate"}}));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].expression, "_sort");

  SearchParams none{{"_sort", "nope"}};
  warnings.clear();
  NormalizeSort(none, {}, warnings);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(warnings.size(), 1u);

  SearchParams same{{"_sort", "name"}};
  warnings.clear();
  std::vector<store::SortKey> one(1);
  one[0].param = "name";
  NormalizeSort(same, one, warnings);
  EXPECT_EQ(same, (SearchParams{{"_sort", "name"}}));
  EXPECT_TRUE(warnings.empty());
}

}  // namespace
}  // namespace jiceng::api
