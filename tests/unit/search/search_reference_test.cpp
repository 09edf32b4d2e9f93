// The reference evaluator on its own (tests/support/search_reference), on a few resources whose
// answers are worked out by hand from the R4 search specification. The differential test
// trusts the reference; these tests are why.
#include "support/search_reference.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace jiceng::search_ref {
namespace {

using V = std::vector<std::string>;

// 2024-03-05T00:00:00Z in microseconds.
constexpr int64_t kMarch5 = 1709596800LL * 1'000'000;

TEST(ReferenceDecimal, ParsesComparesAndFormats) {
  EXPECT_EQ(CompareDecimal(*ParseDecimal("1.50"), *ParseDecimal("1.5")), 0);
  EXPECT_EQ(CompareDecimal(*ParseDecimal("-2"), *ParseDecimal("1e-3")), -1);
  EXPECT_EQ(CompareDecimal(*ParseDecimal("1e2"), *ParseDecimal("99.999")), 1);
  EXPECT_EQ(CompareDecimal(*ParseDecimal("0"), *ParseDecimal("-0.0")), 0);
  EXPECT_EQ(FormatDecimal(*ParseDecimal("0.050")), "0.050");
  EXPECT_EQ(FormatDecimal(DecimalFromDouble(0.35)), "0.35");
  EXPECT_EQ(FormatDecimal(DecimalFromDouble(1e-6)), "0.000001");
  // Exact: 0.4 - 0.05 is 0.35, not 0.35000000000000003.
  EXPECT_EQ(CompareDecimal(AddDecimal(*ParseDecimal("0.4"), *ParseDecimal("-0.05")),
                           DecimalFromDouble(0.35)),
            0);
  EXPECT_EQ(FormatDecimal(MultiplyDecimal(*ParseDecimal("-1.5"), *ParseDecimal("0.9"))), "-1.35");
  EXPECT_EQ(FormatDecimal(HalfUnit(*ParseDecimal("100"))), "0.5");
  EXPECT_EQ(FormatDecimal(HalfUnit(*ParseDecimal("1.50"))), "0.005");
  for (const char* bad : {"", "5.", ".5", "0x10", " 5", "1e", "--1", "1.2.3", "inf"}) {
    EXPECT_FALSE(ParseDecimal(bad)) << bad;
  }
}

TEST(ReferenceDate, RangesFromPartialDates) {
  const int64_t day = 86'400'000'000, hour = 3'600'000'000;
  // Dates without an offset are read at UTC+8.
  auto d = ParseDateRange("2024-03-05", 480);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->start, kMarch5 - 8 * hour);
  EXPECT_EQ(d->end, kMarch5 + day - 8 * hour);
  auto y = ParseDateRange("2024", 0);
  EXPECT_EQ(y->end - y->start, 366 * day);  // a leap year
  auto m = ParseDateRange("2023-02", 0);
  EXPECT_EQ(m->end - m->start, 28 * day);
  auto t = ParseDateRange("2024-03-05T10:00:00+08:00", 480);
  EXPECT_EQ(t->start, kMarch5 + 2 * hour);
  EXPECT_EQ(t->end, t->start + 1'000'000);
  auto ms = ParseDateRange("2024-03-05T02:00:00.5Z", 480);
  EXPECT_EQ(ms->start, kMarch5 + 2 * hour + 500'000);
  EXPECT_EQ(ms->end, ms->start + 100'000);
  EXPECT_EQ(ParseDateRange("2024-03-04T21:00:00-05:00", 480)->start, kMarch5 + 2 * hour);
  for (const char* bad : {"2024-13", "2024-02-30", "2024-03-05T24:00:00Z", "2024-03-05T10:00",
                          "20240305", "2024-3-5", "2024-03-05T10:00:00+15:00", "0000"}) {
    EXPECT_FALSE(ParseDateRange(bad, 480)) << bad;
  }
}

class ReferenceSearchTest : public ::testing::Test {
 protected:
  void Add(std::string_view json, int64_t updated_us = kMarch5) {
    ref_.reset();  // built again, with this resource, by the next search
    auto v = ParseJson(json);
    ASSERT_TRUE(v.ok()) << json;
    const auto& o = v->get_object();
    resources_.push_back({std::string(*FindString(o, "resourceType")),
                          std::string(*FindString(o, "id")), updated_us, *v});
  }

  // Ids in answer order; "error" when the reference rejects the search.
  V Ids(std::string_view type, std::string_view query) {
    if (!ref_) ref_ = std::make_unique<ReferenceSearch>(resources_, ReferenceOptions{kMarch5, 480});
    Params params;
    std::string_view q = query;
    while (!q.empty()) {
      std::string_view part = q.substr(0, q.find('&'));
      const size_t eq = part.find('=');
      params.emplace_back(std::string(part.substr(0, eq)), std::string(part.substr(eq + 1)));
      q.remove_prefix(std::min(q.size(), part.size() + 1));
    }
    auto answer = ref_->Search(type, params);
    if (!answer.ok()) return {"error"};
    return answer->ids;
  }

  void Patients() {
    Add(R"({"resourceType":"Patient","id":"p1","name":[{"family":"王","given":["小明"]}],"gender":"male","birthDate":"1980-03-05","identifier":[{"system":"urn:id","value":"A1","type":{"coding":[{"system":"urn:t","code":"MR"}],"text":"病历号"}}],"active":true,"generalPractitioner":[{"reference":"Practitioner/d1"}]})");
    Add(R"({"resourceType":"Patient","id":"p2","name":[{"family":"Müller","given":["Anna"]}],"gender":"female","birthDate":"1990","identifier":[{"value":"A1"}]})");
    Add(R"({"resourceType":"Patient","id":"p3","name":[{"family":"Ｍｕｅｌｌｅｒ"}],"gender":"male","birthDate":"2001-12-31"})");
    Add(R"({"resourceType":"Patient","id":"p4"})");
    Add(R"({"resourceType":"Practitioner","id":"d1","name":[{"family":"张"}]})");
  }

  std::vector<StoredResource> resources_;
  std::unique_ptr<ReferenceSearch> ref_;
};

TEST_F(ReferenceSearchTest, Strings) {
  Patients();
  EXPECT_EQ(Ids("Patient", "name=MU"), V({"p2", "p3"}));  // accents, case, full-width
  EXPECT_EQ(Ids("Patient", "name=mül"), V({"p2"}));
  EXPECT_EQ(Ids("Patient", "family:exact=Müller"), V({"p2"}));
  EXPECT_EQ(Ids("Patient", "family:exact=muller"), V());
  EXPECT_EQ(Ids("Patient", "name:contains=明"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "name=anna,王"), V({"p1", "p2"}));
  EXPECT_EQ(Ids("Patient", "name=mu&name=anna"), V({"p2"}));
  EXPECT_EQ(Ids("Patient", "name:missing=true"), V({"p4"}));
  EXPECT_EQ(Ids("Patient", "name:sounds-like=x"), V({"error"}));
}

TEST_F(ReferenceSearchTest, Tokens) {
  Patients();
  EXPECT_EQ(Ids("Patient", "identifier=A1"), V({"p1", "p2"}));
  EXPECT_EQ(Ids("Patient", "identifier=urn:id|A1"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "identifier=|A1"), V({"p2"}));
  EXPECT_EQ(Ids("Patient", "identifier=urn:id|"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "gender:not=male"), V({"p2", "p4"}));  // includes no value
  EXPECT_EQ(Ids("Patient", "gender:not=male,female"), V({"p4"}));
  EXPECT_EQ(Ids("Patient", "active=true"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "identifier:text=病历"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "identifier:of-type=urn:t|MR|A1"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "identifier:of-type=urn:t|MR|A2"), V());
  EXPECT_EQ(Ids("Patient", "gender:in=http://hl7.org/fhir/ValueSet/administrative-gender"),
            V({"p1", "p2", "p3"}));
  EXPECT_EQ(Ids("Patient", "gender:not-in=http://hl7.org/fhir/ValueSet/administrative-gender"),
            V({"p4"}));
  EXPECT_EQ(Ids("Patient", "identifier=a|b|c"), V({"error"}));
  // A Coding with a system and no code matches system| (R4: "any element where the value of
  // [system] matches the system property").
  Add(R"({"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","display":"x"}]}})");
  EXPECT_EQ(Ids("Observation", "code=http://loinc.org|"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "code:missing=false"), V({"o1"}));
}

TEST_F(ReferenceSearchTest, DatePrefixes) {
  Patients();
  // p1 1980-03-05, p2 1990 (the whole year), p3 2001-12-31, p4 none.
  EXPECT_EQ(Ids("Patient", "birthdate=1980"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "birthdate=1990-06"), V());
  EXPECT_EQ(Ids("Patient", "birthdate=ne1990"), V({"p1", "p3"}));
  EXPECT_EQ(Ids("Patient", "birthdate=gt1990-06"), V({"p2", "p3"}));
  EXPECT_EQ(Ids("Patient", "birthdate=lt1990-06"), V({"p1", "p2"}));
  EXPECT_EQ(Ids("Patient", "birthdate=ge1990"), V({"p2", "p3"}));
  EXPECT_EQ(Ids("Patient", "birthdate=le1990"), V({"p1", "p2"}));
  EXPECT_EQ(Ids("Patient", "birthdate=sa1990"), V({"p3"}));
  EXPECT_EQ(Ids("Patient", "birthdate=eb1990"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "birthdate=ap2001-12-30"), V({"p3"}));
  EXPECT_EQ(Ids("Patient", "birthdate=1990-02-30"), V({"error"}));
  Add(R"({"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"period":{"start":"2024-01-10","end":"2024-01-20"}})");
  Add(R"({"resourceType":"Encounter","id":"e2","status":"in-progress","class":{"code":"AMB"},"period":{"start":"2024-02-01"}})");
  EXPECT_EQ(Ids("Encounter", "date=2024-01"), V({"e1"}));
  EXPECT_EQ(Ids("Encounter", "date=gt2030"), V({"e2"}));
  EXPECT_EQ(Ids("Encounter", "date=sa2024-01-31"), V({"e2"}));
  EXPECT_EQ(Ids("Encounter", "date=eb2024-01-31"), V({"e1"}));
  Add(R"({"resourceType":"CarePlan","id":"c1","status":"active","intent":"plan","subject":{"reference":"Patient/p1"},"activity":[{"detail":{"status":"scheduled","scheduledTiming":{"event":["2024-05-02"]}}}]})");
  EXPECT_EQ(Ids("CarePlan", "activity-date=2024-05"), V({"c1"}));
  // _lastUpdated is the stored instant.
  EXPECT_EQ(Ids("Patient", "_lastUpdated=2024-03-05T00:00:00Z"), V({"p1", "p2", "p3", "p4"}));
  EXPECT_EQ(Ids("Patient", "_lastUpdated=gt2024-03-05T00:00:00Z"), V());
}

TEST_F(ReferenceSearchTest, NumbersAndQuantities) {
  Add(R"({"resourceType":"RiskAssessment","id":"r1","status":"final","subject":{"reference":"Patient/p"},"prediction":[{"probabilityDecimal":100}]})");
  Add(R"({"resourceType":"RiskAssessment","id":"r2","status":"final","subject":{"reference":"Patient/p"},"prediction":[{"probabilityDecimal":100.4}]})");
  Add(R"({"resourceType":"RiskAssessment","id":"r3","status":"final","subject":{"reference":"Patient/p"},"prediction":[{"probabilityDecimal":99.7}]})");
  Add(R"({"resourceType":"RiskAssessment","id":"r4","status":"final","subject":{"reference":"Patient/p"},"prediction":[{"probabilityDecimal":0.35}]})");
  EXPECT_EQ(Ids("RiskAssessment", "probability=100"), V({"r1", "r2", "r3"}));  // [99.5, 100.5)
  EXPECT_EQ(Ids("RiskAssessment", "probability=100.0"), V({"r1"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=ne100"), V({"r4"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=gt100"), V({"r2"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=ge100"), V({"r1", "r2"}));  // exactly 100
  EXPECT_EQ(Ids("RiskAssessment", "probability=le100"), V({"r1", "r3", "r4"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=lt100"), V({"r3", "r4"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=ap100"), V({"r1", "r2", "r3"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=0.4"), V({"r4"}));  // 0.35 is in [0.35, 0.45)
  EXPECT_EQ(Ids("RiskAssessment", "probability=5."), V({"error"}));

  Add(R"({"resourceType":"Observation","id":"w1","status":"final","code":{"text":"w"},"valueQuantity":{"value":70,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}})");
  Add(R"({"resourceType":"Observation","id":"w2","status":"final","code":{"text":"w"},"valueQuantity":{"value":70000,"system":"http://unitsofmeasure.org","code":"g"}})");
  Add(R"({"resourceType":"Observation","id":"b1","status":"final","code":{"text":"b"},"valueQuantity":{"value":135.5,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}})");
  Add(R"({"resourceType":"Observation","id":"g1","status":"final","code":{"text":"g"},"valueQuantity":{"value":5.4,"unit":"mmol/L"}})");
  EXPECT_EQ(Ids("Observation", "value-quantity=70|http://unitsofmeasure.org|kg"), V({"w1", "w2"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=70.0||kg"), V({"w1", "w2"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=gt69999||g"), V({"w1", "w2"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=135.5||mmHg"), V({"b1"}));  // the human unit
  EXPECT_EQ(Ids("Observation", "value-quantity=135.5|http://unitsofmeasure.org|mmHg"), V());
  EXPECT_EQ(Ids("Observation", "value-quantity=5.4||mmol/L"), V({"g1"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=5.4||mg/dL"), V());
  EXPECT_EQ(Ids("Observation", "value-quantity=5.4"), V({"g1"}));
}

TEST_F(ReferenceSearchTest, ReferencesAndUris) {
  Patients();
  Add(R"({"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}})");
  Add(R"({"resourceType":"Observation","id":"o2","status":"final","code":{"text":"x"},"subject":{"reference":"Group/p1"}})");
  Add(R"({"resourceType":"Observation","id":"o3","status":"final","code":{"text":"x"},"subject":{"reference":"http://other.org/fhir/Patient/p1"},"performer":[{"identifier":{"system":"urn:staff","value":"D-1"}}]})");
  EXPECT_EQ(Ids("Observation", "subject=Patient/p1"), V({"o1"}));  // o3 is another server's
  EXPECT_EQ(Ids("Observation", "subject=p1"), V({"o1", "o2"}));
  EXPECT_EQ(Ids("Observation", "subject:Patient=p1"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "patient=p1"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "subject=http://other.org/fhir/Patient/p1"), V({"o3"}));
  EXPECT_EQ(Ids("Observation", "performer:identifier=urn:staff|D-1"), V({"o3"}));
  EXPECT_EQ(Ids("Observation", "subject:missing=true"), V());
  Add(R"({"resourceType":"ValueSet","id":"v1","status":"active","url":"http://example.org/fhir/ValueSet/a"})");
  Add(R"({"resourceType":"ValueSet","id":"v2","status":"active","url":"http://example.org/fhir/ValueSet/a/b"})");
  EXPECT_EQ(Ids("ValueSet", "url=http://example.org/fhir/ValueSet/a"), V({"v1"}));
  EXPECT_EQ(Ids("ValueSet", "url:below=http://example.org/fhir"), V({"v1", "v2"}));
  EXPECT_EQ(Ids("ValueSet", "url:above=http://example.org/fhir/ValueSet/a/b/c"), V({"v1", "v2"}));
  EXPECT_EQ(Ids("ValueSet", "url:above=http://example.org/fhir/ValueSet/a"), V({"v1"}));
}

TEST_F(ReferenceSearchTest, ChainsReverseChainsAndComposites) {
  Patients();
  Add(R"({"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/p1"},"code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":150,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":90,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})");
  Add(R"({"resourceType":"Observation","id":"o2","status":"final","subject":{"reference":"Patient/p2"},"code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"valueQuantity":{"value":60,"system":"http://unitsofmeasure.org","code":"kg"}})");
  EXPECT_EQ(Ids("Observation", "subject:Patient.name=王"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "subject.gender=female"), V({"o2"}));
  EXPECT_EQ(Ids("Observation", "patient.general-practitioner:Practitioner.name=张"), V({"o1"}));
  EXPECT_EQ(Ids("Patient", "_has:Observation:subject:code=29463-7"), V({"p2"}));
  EXPECT_EQ(Ids("Patient", "_has:Observation:patient:_id=o1"), V({"p1"}));
  EXPECT_EQ(Ids("Practitioner",
                "_has:Patient:general-practitioner:_has:Observation:subject:code=85354-9"),
            V({"d1"}));
  // Both components must match within one component element: 150 is systolic, not diastolic.
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity=http://loinc.org|8480-6$gt140"),
            V({"o1"}));
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity=http://loinc.org|8462-4$gt140"), V());
  EXPECT_EQ(Ids("Observation", "code-value-quantity=29463-7$60|http://unitsofmeasure.org|kg"),
            V({"o2"}));
  EXPECT_EQ(Ids("Observation", "subject:Device.name=x"), V({"error"}));
}

TEST_F(ReferenceSearchTest, SortAndPaging) {
  Add(R"({"resourceType":"Patient","id":"b","birthDate":"1990","name":[{"family":"Zhao"},{"family":"Li"}]})",
      1);
  Add(R"({"resourceType":"Patient","id":"a","birthDate":"1980","name":[{"family":"Wang"}]})", 2);
  Add(R"({"resourceType":"Patient","id":"c","birthDate":"1990-06-01"})", 3);
  Add(R"({"resourceType":"Patient","id":"d"})", 4);
  // Ascending: missing last, ties by id. 1990 (the year) starts before 1990-06-01.
  EXPECT_EQ(Ids("Patient", "_sort=birthdate"), V({"a", "b", "c", "d"}));
  // Descending by the end of the range: 1990 ends after 1990-06-01; missing still last.
  EXPECT_EQ(Ids("Patient", "_sort=-birthdate"), V({"b", "c", "a", "d"}));
  // Lowest value ascending (b: li), highest descending (b: zhao).
  EXPECT_EQ(Ids("Patient", "_sort=family"), V({"b", "a", "c", "d"}));
  EXPECT_EQ(Ids("Patient", "_sort=-family"), V({"b", "a", "c", "d"}));
  EXPECT_EQ(Ids("Patient", "_sort=-_lastUpdated"), V({"d", "c", "a", "b"}));
  EXPECT_EQ(Ids("Patient", "_sort=birthdate,-_id"), V({"a", "b", "c", "d"}));
  EXPECT_EQ(Ids("Patient", "_sort=family,-_id"), V({"b", "a", "d", "c"}));
  EXPECT_EQ(Ids("Patient", "_sort=_id&_count=2&_getpagesoffset=1"), V({"b", "c"}));
  EXPECT_EQ(Ids("Patient", "_sort=nope"), V({"error"}));
}

}  // namespace
}  // namespace jiceng::search_ref
