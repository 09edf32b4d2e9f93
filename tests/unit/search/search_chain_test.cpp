// Chains, _has, composites, token :of-type/:in/:not-in, reference :identifier and _text/_content,
// end to end: resources indexed by the extractor, queries parsed by fhir/search, answered by each
// backend's SQL (search_fixture.h: SQLite and PostgreSQL).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "search_fixture.h"

namespace jiceng::search {
namespace {

class SearchChainTest : public SearchStoreTest {
 protected:
  // A small county: patients with Chinese and pinyin names, an organisation, a group, encounters
  // and observations (BP panels with components, weights, a smoking status, a date, a note).
  void County() {
    Put(R"({"resourceType":"Organization","id":"org1","name":"嘉善县第一人民医院"})");
    Put(R"({"resourceType":"Organization","id":"org2","name":"Township clinic","partOf":{"reference":"Organization/org1"}})");
    Put(R"({"resourceType":"Patient","id":"pa",
      "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>患者有高血压病史</p>Hypertension since 2010 &amp; <b>gout</b></div>"},
      "name":[{"family":"王","given":["小明"]},{"family":"Wang","given":["Xiaoming"]}],"gender":"male",
      "identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"urn:hosp","value":"MR-1"}],
      "managingOrganization":{"reference":"Organization/org1"}})");
    Put(R"({"resourceType":"Patient","id":"pb","name":[{"family":"Li","given":["Hua"]}],"gender":"female",
      "identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"SS"}]},"system":"urn:ssn","value":"MR-1"}],
      "managingOrganization":{"reference":"Organization/org2"}})");
    Put(R"({"resourceType":"Patient","id":"pc","name":[{"family":"王","given":["芳"]}],"gender":"female",
      "identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"urn:hosp","value":"MR-2"}]})");
    Put(R"({"resourceType":"Group","id":"g1","type":"person","actual":true,"name":"Wang family team"})");
    Put(R"({"resourceType":"Location","id":"loc1","name":"Wang village clinic"})");
    Put(R"({"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/pa"}})");
    Put(R"({"resourceType":"Encounter","id":"e2","status":"in-progress","class":{"code":"AMB"},"subject":{"reference":"Patient/pb"}})");
    Put(Bp("o1", "Patient/pa", "Encounter/e1", 150, 70));
    Put(Bp("o2", "Patient/pb", "Encounter/e2", 120, 95));
    Put(Weight("o3", "Group/g1", 70, "kg"));
    Put(R"({"resourceType":"Observation","id":"o4","status":"final","subject":{"reference":"Location/loc1"},
      "code":{"coding":[{"system":"http://loinc.org","code":"8310-5"}]},"valueQuantity":{"value":36.5}})");
    Put(R"({"resourceType":"Observation","id":"o5","status":"final","subject":{"reference":"Patient/pc"},
      "code":{"coding":[{"system":"http://loinc.org","code":"72166-2"}]},
      "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"449868002"}]}})");
    Put(R"({"resourceType":"Observation","id":"o6","status":"final",
      "subject":{"identifier":{"system":"urn:hosp","value":"MR-9"},"display":"an unregistered resident"},
      "code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},
      "valueQuantity":{"value":80,"system":"http://unitsofmeasure.org","code":"kg"}})");
    Put(Weight("o8", "Patient/pc", 60000, "g"));
    Put(R"({"resourceType":"Observation","id":"o9","status":"final","subject":{"reference":"Patient/pc"},
      "code":{"coding":[{"system":"http://loinc.org","code":"21112-8"}]},"valueDateTime":"2024-03-01"})");
    Put(R"({"resourceType":"Observation","id":"o10","status":"final","subject":{"reference":"Patient/pb"},
      "code":{"coding":[{"system":"urn:local","code":"note"}]},"valueString":"Hypertension stage 2"})");
  }

  static std::string Bp(std::string_view id, std::string_view subject, std::string_view encounter,
                        int systolic, int diastolic) {
    return std::string(R"({"resourceType":"Observation","id":")") + std::string(id) +
           R"(","status":"final","subject":{"reference":")" + std::string(subject) +
           R"("},"encounter":{"reference":")" + std::string(encounter) +
           R"("},"code":{"coding":[{"system":"http://loinc.org","code":"55284-4"}]},"component":[)"
           R"({"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":)" +
           std::to_string(systolic) +
           R"(,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},)"
           R"({"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":)" +
           std::to_string(diastolic) + R"(,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})";
  }

  static std::string Weight(std::string_view id, std::string_view subject, int value,
                            std::string_view unit) {
    return std::string(R"({"resourceType":"Observation","id":")") + std::string(id) +
           R"(","status":"final","subject":{"reference":")" + std::string(subject) +
           R"("},"code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"valueQuantity":{"value":)" +
           std::to_string(value) + R"(,"system":"http://unitsofmeasure.org","code":")" +
           std::string(unit) + R"("}})";
  }

  // The error of a query that must fail, with the parameter it must name.
  void ExpectInvalid(std::string_view type, std::string_view query, std::string_view names) {
    auto p = Parse(type, query);
    ASSERT_FALSE(p.ok()) << query;
    EXPECT_EQ(p.error().code, ErrorCode::kInvalid) << query;
    EXPECT_NE(p.error().message.find(names), std::string::npos)
        << query << ": " << p.error().message;
    ASSERT_FALSE(p.error().issues.empty());
    EXPECT_EQ(p.error().issues.front().expression, names) << query;
  }
};

TEST_P(SearchChainTest, ChainedParameters) {
  County();
  EXPECT_EQ(Ids("Observation", "subject.name=王"), V({"o1", "o5", "o8", "o9"}));
  EXPECT_EQ(Ids("Observation", "subject.family=王&subject.given=芳"), V({"o5", "o8", "o9"}));
  EXPECT_EQ(Ids("Observation", "subject.name:exact=王&code=55284-4"), V({"o1"}));
  // Patient.gender only exists on Patient among subject's targets.
  EXPECT_EQ(Ids("Observation", "subject.gender=female&code=55284-4"), V({"o2"}));
  EXPECT_EQ(Ids("Observation", "subject._id=pa"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "subject:Patient._id=pa,pb&code=55284-4"), V({"o1", "o2"}));
  EXPECT_EQ(Ids("Observation", "subject.name=nobody"), V());
}

TEST_P(SearchChainTest, AmbiguousChainSearchesEveryTargetTypeWithTheParameter) {
  County();
  // subject may be a Patient, Group, Device or Location: "name" exists on Patient and Location
  // (not on Group or Device), so the Location loc1 ("Wang village clinic") matches as well as
  // the Patient pa (Wang); the Group g1 named "Wang family team" cannot.
  EXPECT_EQ(Ids("Observation", "subject.name=wang"), V({"o1", "o4"}));
  EXPECT_EQ(Ids("Observation", "subject:Patient.name=wang"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "subject:Location.name=wang"), V({"o4"}));
  ExpectInvalid("Observation", "subject:Group.name=wang", "subject:Group.name");
  auto p = Parse("Observation", "subject.name=wang");
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->query.all_of.size(), 1u);
  std::vector<std::string> types;
  for (const auto& l : p->query.all_of[0].links) types.push_back(l.type);
  std::sort(types.begin(), types.end());
  EXPECT_EQ(types, V({"Location", "Patient"}));
}

TEST_P(SearchChainTest, MultiLevelChains) {
  County();
  EXPECT_EQ(Ids("Observation", "encounter.subject.identifier=urn:hosp|MR-1"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "encounter.subject:Patient.gender=female"), V({"o2"}));
  EXPECT_EQ(Ids("Observation", "encounter:Encounter.subject:Patient.name=li"), V({"o2"}));
  EXPECT_EQ(Ids("Observation", "subject:Patient.organization.name=嘉善"), V({"o1"}));
  // Three levels: Observation → Patient → Organization (township clinic) → its parent.
  EXPECT_EQ(Ids("Observation", "subject:Patient.organization.partof.name=嘉善"), V({"o10", "o2"}));
  EXPECT_EQ(Ids("Observation", "encounter.subject.organization.partof._id=org1"), V({"o2"}));
}

TEST_P(SearchChainTest, ChainsFollowOnlyCurrentTargetsAndUpdates) {
  County();
  Put(R"({"resourceType":"Patient","id":"pd","name":[{"family":"赵"}]})");
  Put(Weight("o7", "Patient/pd", 55, "kg"));
  EXPECT_EQ(Ids("Observation", "subject.name=赵"), V({"o7"}));
  Put(R"({"resourceType":"Patient","id":"pd","name":[{"family":"钱"}]})");
  EXPECT_EQ(Ids("Observation", "subject.name=赵"), V());
  EXPECT_EQ(Ids("Observation", "subject.name=钱"), V({"o7"}));
  Delete("Patient", "pd");
  EXPECT_EQ(Ids("Observation", "subject.name=钱"), V());
}

TEST_P(SearchChainTest, ChainErrorsAndUnsupportedChains) {
  County();
  ExpectInvalid("Observation", "subject.birthdate=notadate", "subject.birthdate");
  ExpectInvalid("Observation", "subject.nonsense=1", "subject.nonsense");
  ExpectInvalid("Observation", "code.name=x", "code.name");  // code is not a reference
  ExpectInvalid("Observation", "subject:Medication.name=x", "subject:Medication.name");
  ExpectInvalid("Observation", "subject.=x", "subject.");
  // Deeper than four levels is refused.
  ExpectInvalid("Observation",
                "subject:Patient.organization.partof.partof.partof.partof.name=x",
                "subject:Patient.organization.partof.partof.partof.partof.name");
  // Lenient: ignored, and absent from `applied`; what took effect is there exactly.
  auto p = Parse("Observation", "subject.nonsense=1&subject.name=王&_has:Nope:x:y=1&code=55284-4",
                 false);
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->applied.size(), 2u);
  EXPECT_EQ(p->applied[0].first, "subject.name");
  EXPECT_EQ(p->applied[1].first, "code");
  // Conditional criteria accept chains (and refuse what they cannot answer).
  auto crit = ParseCriteria("Observation", {{"subject.name", "王"}});
  ASSERT_TRUE(crit.ok()) << crit.error().message;
  EXPECT_EQ(crit->all_of[0].kind, store::SearchKind::kChain);
  EXPECT_FALSE(ParseCriteria("Observation", {{"subject.nonsense", "1"}}).ok());
}

TEST_P(SearchChainTest, ReverseChains) {
  County();
  EXPECT_EQ(Ids("Patient", "_has:Observation:subject:code=55284-4"), V({"pa", "pb"}));
  EXPECT_EQ(Ids("Patient", "_has:Observation:patient:code=http://loinc.org|29463-7"), V({"pc"}));
  EXPECT_EQ(Ids("Group", "_has:Observation:subject:code=29463-7"), V({"g1"}));
  EXPECT_EQ(Ids("Patient", "_has:Observation:subject:_id=o2"), V({"pb"}));
  // Two reverse chains ANDed, one with a composite.
  EXPECT_EQ(Ids("Patient", "_has:Observation:subject:code=55284-4&"
                           "_has:Observation:subject:component-code-value-quantity=8480-6$gt140"),
            V({"pa"}));
  // A chain inside _has, and a nested _has.
  EXPECT_EQ(Ids("Patient", "_has:Observation:subject:encounter.status=finished"), V({"pa"}));
  EXPECT_EQ(Ids("Organization", "_has:Patient:organization:_has:Observation:subject:code=55284-4"),
            V({"org1", "org2"}));
  EXPECT_EQ(Ids("Organization", "_has:Patient:organization:_has:Observation:subject:"
                                "component-code-value-quantity=8462-4$gt90"),
            V({"org2"}));
  // A deleted referrer no longer counts.
  Delete("Observation", "o2");
  EXPECT_EQ(Ids("Patient", "_has:Observation:subject:code=55284-4"), V({"pa"}));
  ExpectInvalid("Patient", "_has:Nope:subject:code=1", "_has:Nope:subject:code");
  ExpectInvalid("Patient", "_has:Observation:code:code=1", "_has:Observation:code:code");
  ExpectInvalid("Patient", "_has:Observation:subject=1", "_has:Observation:subject");
  // Encounter.subject can refer to a Patient or a Group, never to an Organization.
  ExpectInvalid("Organization", "_has:Encounter:subject:status=finished",
                "_has:Encounter:subject:status");
  ExpectInvalid("Patient", "_has:Observation:subject:date=never", "_has:Observation:subject:date");
}

TEST_P(SearchChainTest, ReferenceIdentifier) {
  County();
  EXPECT_EQ(Ids("Observation", "subject:identifier=urn:hosp|MR-9"), V({"o6"}));
  EXPECT_EQ(Ids("Observation", "subject:identifier=MR-9"), V({"o6"}));
  EXPECT_EQ(Ids("Observation", "subject:identifier=urn:other|MR-9"), V());
  ExpectInvalid("Observation", "subject:identifier:missing=true", "subject:identifier:missing");
}

TEST_P(SearchChainTest, TokenOfType) {
  County();
  const std::string v2 = "http://terminology.hl7.org/CodeSystem/v2-0203";
  EXPECT_EQ(Ids("Patient", "identifier:of-type=" + v2 + "|MR|MR-1"), V({"pa"}));
  EXPECT_EQ(Ids("Patient", "identifier:of-type=" + v2 + "|SS|MR-1"), V({"pb"}));
  EXPECT_EQ(Ids("Patient", "identifier:of-type=" + v2 + "|MR|MR-1," + v2 + "|MR|MR-2"),
            V({"pa", "pc"}));
  EXPECT_EQ(Ids("Patient", "identifier:of-type=urn:other|MR|MR-1"), V());
  EXPECT_EQ(Ids("Patient", "identifier=MR-1"), V({"pa", "pb"}));  // plain token unaffected
  ExpectInvalid("Patient", "identifier:of-type=MR|MR-1", "identifier:of-type");
  ExpectInvalid("Patient", "identifier:of-type=" + v2 + "||MR-1", "identifier:of-type");
}

TEST_P(SearchChainTest, TokenInAndNotInValueSets) {
  County();
  // event-status holds in-progress but not finished.
  EXPECT_EQ(Ids("Encounter", "status:in=http://hl7.org/fhir/ValueSet/event-status"), V({"e2"}));
  EXPECT_EQ(Ids("Encounter", "status:not-in=http://hl7.org/fhir/ValueSet/event-status"), V({"e1"}));
  EXPECT_EQ(Ids("Encounter", "status:in=http://hl7.org/fhir/ValueSet/encounter-status|4.0.1"),
            V({"e1", "e2"}));
  EXPECT_EQ(Ids("Patient", "gender:in=http://hl7.org/fhir/ValueSet/event-status"), V());
  ExpectInvalid("Encounter", "status:in=http://example.org/ValueSet/unknown", "status:in");
  auto p = Parse("Encounter", "status:in=http://example.org/ValueSet/unknown");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("http://example.org/ValueSet/unknown"), std::string::npos);
}

TEST_P(SearchChainTest, CompositesMatchBothComponentsInTheSameElement) {
  County();
  // o1: systolic 150 / diastolic 70; o2: 120 / 95.
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity=http://loinc.org|8480-6$gt140"),
            V({"o1"}));
  // Systolic below 100 exists nowhere, although o1 has a component (diastolic) below 100.
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity=8480-6$lt100"), V());
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity=8462-4$gt90"), V({"o2"}));
  EXPECT_EQ(Ids("Observation",
                "component-code-value-quantity=8462-4$lt100|http://unitsofmeasure.org|mm[Hg]"),
            V({"o1", "o2"}));
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity=8480-6$gt140,8462-4$gt90"),
            V({"o1", "o2"}));
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity=8480-6$gt110&"
                               "component-code-value-quantity=8462-4$lt80"),
            V({"o1"}));
  // Weights: o3 70 kg, o6 80 kg, o8 60000 g: compared on canonical grams.
  EXPECT_EQ(Ids("Observation", "code-value-quantity=http://loinc.org|29463-7$gt65|http://unitsofmeasure.org|kg"),
            V({"o3", "o6"}));
  EXPECT_EQ(Ids("Observation", "code-value-quantity=29463-7$60000||g"), V({"o8"}));
  EXPECT_EQ(Ids("Observation", "code-value-quantity=55284-4$gt0"), V());  // BP has no value
  // combo-: the Observation's own code/value and those of its components.
  EXPECT_EQ(Ids("Observation", "combo-code-value-quantity=8480-6$gt140"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "combo-code-value-quantity=29463-7$lt65||kg"), V({"o8"}));
  EXPECT_EQ(Ids("Observation",
                "code-value-concept=http://loinc.org|72166-2$http://snomed.info/sct|449868002"),
            V({"o5"}));
  EXPECT_EQ(Ids("Observation", "code-value-concept=72166-2$8517006"), V());
  EXPECT_EQ(Ids("Observation", "code-value-date=21112-8$ge2024"), V({"o9"}));
  EXPECT_EQ(Ids("Observation", "code-value-date=21112-8$lt2024"), V());
  EXPECT_EQ(Ids("Observation", "code-value-string=urn:local|note$hyper"), V({"o10"}));
  EXPECT_EQ(Ids("Observation", "code-value-string=note$stage"), V());  // starts-with
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity:missing=false"), V({"o1", "o2"}));
  // Escaped '$' is part of a component's value.
  EXPECT_EQ(Ids("Observation", "code-value-string=note$hyper\\$"), V());
  ExpectInvalid("Observation", "component-code-value-quantity=8480-6", "component-code-value-quantity");
  ExpectInvalid("Observation", "component-code-value-quantity=8480-6$abc",
                "component-code-value-quantity");
  ExpectInvalid("Observation", "_sort=component-code-value-quantity", "_sort");
  // An update replaces the composite rows.
  Put(Bp("o1", "Patient/pa", "Encounter/e1", 130, 70));
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity=8480-6$gt140"), V());
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity=8480-6$130"), V({"o1"}));
}

TEST_P(SearchChainTest, FullTextAndContent) {
  County();
  EXPECT_EQ(Ids("Patient", "_text=高血压"), V({"pa"}));
  EXPECT_EQ(Ids("Patient", "_text=血压"), V({"pa"}));     // by characters
  EXPECT_EQ(Ids("Patient", "_text=压血"), V());          // in order
  EXPECT_EQ(Ids("Patient", "_text=hypert"), V({"pa"}));  // word prefix
  EXPECT_EQ(Ids("Patient", "_text=GOUT"), V({"pa"}));    // markup removed, case folded
  EXPECT_EQ(Ids("Patient", "_text=高血压 2010"), V({"pa"}));
  EXPECT_EQ(Ids("Patient", "_text=高血压 1999"), V());  // every word
  EXPECT_EQ(Ids("Patient", "_text=diabetes,hypertension"), V({"pa"}));
  EXPECT_EQ(Ids("Patient", "_text=小明"), V());  // names are not narrative…
  EXPECT_EQ(Ids("Patient", "_content=小明"), V({"pa"}));  // …but content
  EXPECT_EQ(Ids("Patient", "_content=高血压"), V({"pa"}));  // content includes the narrative
  EXPECT_EQ(Ids("Organization", "_content=嘉善"), V({"org1"}));
  EXPECT_EQ(Ids("Observation", "_content=hypertension"), V({"o10"}));
  EXPECT_EQ(Ids("Observation", "_content=urn"), V());  // systems are not content
  EXPECT_EQ(Ids("Patient", "_content=\"quoted\""), V());
  EXPECT_EQ(Ids("Patient", "_text=高血压 。 →"), V({"pa"}));  // punctuation is no word
  ExpectInvalid("Patient", "_text=--", "_text");
  ExpectInvalid("Patient", "_text=。", "_text");
  Put(R"({"resourceType":"Patient","id":"pa","name":[{"family":"王"}]})");
  EXPECT_EQ(Ids("Patient", "_text=高血压"), V());
  EXPECT_EQ(Ids("Patient", "_content=小明"), V());
  EXPECT_EQ(Ids("Patient", "_content=王"), V({"pa", "pc"}));
  Delete("Patient", "pc");
  EXPECT_EQ(Ids("Patient", "_content=王"), V({"pa"}));
}

JC_SEARCH_ON_EVERY_BACKEND(SearchChainTest);

}  // namespace
}  // namespace jiceng::search
