// Search semantics end to end: resources indexed by the extractor, queries parsed by
// fhir/search, answered by each backend's SQL (search_fixture.h: SQLite and PostgreSQL).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "search_fixture.h"

namespace jiceng::search {
namespace {

class SearchTest : public SearchStoreTest {
 protected:
  void Patients() {
    Put(R"({"resourceType":"Patient","id":"p1","name":[{"family":"王","given":["小明"]}],"gender":"male","birthDate":"1980-03-05","identifier":[{"system":"urn:id","value":"A1"}],"active":true})");
    Put(R"({"resourceType":"Patient","id":"p2","name":[{"family":"Müller","given":["Anna"]}],"gender":"female","birthDate":"1990","identifier":[{"system":"urn:other","value":"A1"}]})");
    Put(R"({"resourceType":"Patient","id":"p3","name":[{"family":"Mueller","given":["Hans"]}],"gender":"male","birthDate":"2001-12-31","generalPractitioner":[{"reference":"Practitioner/d1"}]})");
    Put(R"({"resourceType":"Patient","id":"p4","name":[{"family":"Ｗａｎｇ"}],"gender":"unknown"})");
  }
};

TEST_P(SearchTest, StringStartsWithExactContains) {
  Patients();
  EXPECT_EQ(Ids("Patient", "name=mul"), V({"p2"}));
  EXPECT_EQ(Ids("Patient", "name=MÜL"), V({"p2"}));
  EXPECT_EQ(Ids("Patient", "name=mu"), V({"p2", "p3"}));
  EXPECT_EQ(Ids("Patient", "name=王"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "name=wang"), V({"p4"}));  // full-width stored, half-width searched
  EXPECT_EQ(Ids("Patient", "name=小"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "family:exact=Müller"), V({"p2"}));
  EXPECT_EQ(Ids("Patient", "family:exact=müller"), V());
  EXPECT_EQ(Ids("Patient", "name:contains=ell"), V({"p3"}));
  EXPECT_EQ(Ids("Patient", "name:contains=明"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "name=anna,hans"), V({"p2", "p3"}));  // OR
  EXPECT_EQ(Ids("Patient", "name=mu&name=hans"), V({"p3"}));     // AND
}

TEST_P(SearchTest, TokenForms) {
  Patients();
  EXPECT_EQ(Ids("Patient", "gender=male"), V({"p1", "p3"}));
  EXPECT_EQ(Ids("Patient", "identifier=A1"), V({"p1", "p2"}));
  EXPECT_EQ(Ids("Patient", "identifier=urn:id|A1"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "identifier=urn:other|"), V({"p2"}));
  EXPECT_EQ(Ids("Patient", "identifier=|A1"), V());
  EXPECT_EQ(Ids("Patient", "gender:not=male"), V({"p2", "p4"}));
  EXPECT_EQ(Ids("Patient", "identifier:missing=true"), V({"p3", "p4"}));
  EXPECT_EQ(Ids("Patient", "active:missing=false"), V({"p1"}));
  Put(R"({"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7","display":"Body weight"}],"text":"体重"}})");
  EXPECT_EQ(Ids("Observation", "code:text=body"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "code:text=体重"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "code=http://loinc.org|29463-7"), V({"o1"}));
  Put(R"({"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"code":"x"}]}})");
  EXPECT_EQ(Ids("Observation", "code=|x"), V({"o2"}));
}

TEST_P(SearchTest, DatePrefixesAndPrecision) {
  Patients();
  // p1 1980-03-05, p2 1990 (the whole year), p3 2001-12-31, p4 none.
  EXPECT_EQ(Ids("Patient", "birthdate=1980"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "birthdate=1980-03-05"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "birthdate=1990-06"), V());  // a year is not within a month
  EXPECT_EQ(Ids("Patient", "birthdate=eq1990"), V({"p2"}));
  EXPECT_EQ(Ids("Patient", "birthdate=ne1990"), V({"p1", "p3"}));
  EXPECT_EQ(Ids("Patient", "birthdate=gt1990-06"), V({"p2", "p3"}));  // 1990 extends past June
  EXPECT_EQ(Ids("Patient", "birthdate=lt1990-06"), V({"p1", "p2"}));
  EXPECT_EQ(Ids("Patient", "birthdate=ge1990"), V({"p2", "p3"}));
  EXPECT_EQ(Ids("Patient", "birthdate=le1990"), V({"p1", "p2"}));
  EXPECT_EQ(Ids("Patient", "birthdate=sa1990"), V({"p3"}));
  EXPECT_EQ(Ids("Patient", "birthdate=eb1990"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "birthdate=ap2001-12-30"), V({"p3"}));
  EXPECT_EQ(Ids("Patient", "birthdate=ge1980&birthdate=lt2000"), V({"p1", "p2"}));
  EXPECT_EQ(Ids("Patient", "birthdate:missing=true"), V({"p4"}));
  // A dateTime with an offset is found by its day in UTC+8 and by its year.
  Put(R"({"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"effectiveDateTime":"2024-03-05T10:00:00+08:00"})");
  EXPECT_EQ(Ids("Observation", "date=2024"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "date=2024-03-05"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "date=2024-03-05T10:00:00+08:00"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "date=gt2024-03-05T10:00:00+08:00"), V());
  // Periods compare as ranges.
  Put(R"({"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"period":{"start":"2024-01-10","end":"2024-01-20"}})");
  Put(R"({"resourceType":"Encounter","id":"e2","status":"in-progress","class":{"code":"AMB"},"period":{"start":"2024-02-01"}})");
  EXPECT_EQ(Ids("Encounter", "date=2024-01"), V({"e1"}));
  EXPECT_EQ(Ids("Encounter", "date=gt2030"), V({"e2"}));  // open end
  EXPECT_EQ(Ids("Encounter", "date=lt2024-01-15"), V({"e1"}));
  EXPECT_EQ(Ids("Encounter", "date=sa2024-01-31"), V({"e2"}));
}

TEST_P(SearchTest, NumberAndQuantity) {
  Put(R"({"resourceType":"RiskAssessment","id":"r1","status":"final","subject":{"reference":"Patient/1"},"prediction":[{"probabilityDecimal":100}]})");
  Put(R"({"resourceType":"RiskAssessment","id":"r2","status":"final","subject":{"reference":"Patient/1"},"prediction":[{"probabilityDecimal":100.4}]})");
  Put(R"({"resourceType":"RiskAssessment","id":"r3","status":"final","subject":{"reference":"Patient/1"},"prediction":[{"probabilityDecimal":101}]})");
  EXPECT_EQ(Ids("RiskAssessment", "probability=100"), V({"r1", "r2"}));  // [99.5, 100.5)
  EXPECT_EQ(Ids("RiskAssessment", "probability=100.0"), V({"r1"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=gt100"), V({"r2", "r3"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=lt101"), V({"r1", "r2"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=ne100"), V({"r3"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=ap100"), V({"r1", "r2", "r3"}));

  Put(R"({"resourceType":"Observation","id":"w1","status":"final","code":{"text":"w"},"valueQuantity":{"value":70,"system":"http://unitsofmeasure.org","code":"kg"}})");
  Put(R"({"resourceType":"Observation","id":"w2","status":"final","code":{"text":"w"},"valueQuantity":{"value":70000,"system":"http://unitsofmeasure.org","code":"g"}})");
  Put(R"({"resourceType":"Observation","id":"g1","status":"final","code":{"text":"g"},"valueQuantity":{"value":5.4,"system":"http://unitsofmeasure.org","code":"mmol/L"}})");
  EXPECT_EQ(Ids("Observation", "value-quantity=70|http://unitsofmeasure.org|kg"), V({"w1", "w2"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=70000||g"), V({"w1", "w2"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=gt69.9||kg"), V({"w1", "w2"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=5.4||mmol/L"), V({"g1"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=5.4"), V({"g1"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=lt10"), V({"g1"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=5.4||mg/dL"), V());  // never converted
}

// R4: "ge100: greater or equal to exactly 100", "le5.4|…|mg: less than or equal to 5.4 mg
// exactly": ge and le compare with the value itself, not with its implicit precision range.
TEST_P(SearchTest, NumberAndQuantityGeAndLeAreExact) {
  auto risk = [](const char* id, const char* p) {
    return std::string(R"({"resourceType":"RiskAssessment","id":")") + id +
           R"(","status":"final","subject":{"reference":"Patient/1"},"prediction":[{"probabilityDecimal":)" +
           p + "}]}";
  };
  Put(risk("r1", "100"));
  Put(risk("r2", "100.4"));
  Put(risk("r3", "99.7"));
  EXPECT_EQ(Ids("RiskAssessment", "probability=100"), V({"r1", "r2", "r3"}));  // [99.5, 100.5)
  EXPECT_EQ(Ids("RiskAssessment", "probability=ge100"), V({"r1", "r2"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=le100"), V({"r1", "r3"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=ge100.4"), V({"r2"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=le99.7"), V({"r3"}));

  auto weight = [](const char* id, const char* kg, const char* code) {
    return std::string(R"({"resourceType":"Observation","id":")") + id +
           R"(","status":"final","code":{"text":"w"},"valueQuantity":{"value":)" + kg +
           R"(,"system":"http://unitsofmeasure.org","code":")" + code + "\"}}";
  };
  Put(weight("w1", "70", "kg"));
  Put(weight("w2", "69.8", "kg"));
  Put(weight("w3", "70300", "g"));
  Put(weight("u1", "70", "[in_i]"));  // a unit the server does not convert
  Put(weight("u2", "69.8", "[in_i]"));
  EXPECT_EQ(Ids("Observation", "value-quantity=70||kg"), V({"w1", "w2", "w3"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=ge70||kg"), V({"w1", "w3"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=le70|http://unitsofmeasure.org|kg"),
            V({"w1", "w2"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=le70000||g"), V({"w1", "w2"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=ge70||[in_i]"), V({"u1"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=le70||[in_i]"), V({"u1", "u2"}));
}

TEST_P(SearchTest, ReferencesAndUris) {
  Patients();
  Put(R"({"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}})");
  Put(R"({"resourceType":"Observation","id":"o2","status":"final","code":{"text":"x"},"subject":{"reference":"Group/p1"}})");
  Put(R"({"resourceType":"Observation","id":"o3","status":"final","code":{"text":"x"},"subject":{"reference":"http://other.org/fhir/Patient/p9"}})");
  EXPECT_EQ(Ids("Observation", "subject=Patient/p1"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "subject=p1"), V({"o1", "o2"}));
  EXPECT_EQ(Ids("Observation", "subject:Patient=p1"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "patient=p1"), V({"o1"}));
  EXPECT_EQ(Ids("Observation", "subject=http://other.org/fhir/Patient/p9"), V({"o3"}));
  EXPECT_EQ(Ids("Patient", "general-practitioner=Practitioner/d1"), V({"p3"}));
  Put(R"({"resourceType":"ValueSet","id":"v1","status":"active","url":"http://example.org/fhir/ValueSet/a"})");
  Put(R"({"resourceType":"ValueSet","id":"v2","status":"active","url":"http://example.org/fhir/ValueSet/a/b"})");
  EXPECT_EQ(Ids("ValueSet", "url=http://example.org/fhir/ValueSet/a"), V({"v1"}));
  EXPECT_EQ(Ids("ValueSet", "url:below=http://example.org/fhir"), V({"v1", "v2"}));
  EXPECT_EQ(Ids("ValueSet", "url:above=http://example.org/fhir/ValueSet/a/b/c"), V({"v1", "v2"}));
}

TEST_P(SearchTest, IdLastUpdatedSortPagingTotal) {
  Put(R"({"resourceType":"Patient","id":"b","birthDate":"1990"})", 1'000'000);
  Put(R"({"resourceType":"Patient","id":"a","birthDate":"1980"})", 2'000'000);
  Put(R"({"resourceType":"Patient","id":"c","birthDate":"1990"})", 3'000'000);
  Put(R"({"resourceType":"Patient","id":"d"})", 4'000'000);
  EXPECT_EQ(Ids("Patient", "_id=a,c"), V({"a", "c"}));
  EXPECT_EQ(
      Ids("Patient", "_lastUpdated=ge1970-01-01T00:00:02Z&_lastUpdated=lt1970-01-01T00:00:04Z"),
      V({"a", "c"}));
  EXPECT_EQ(Ids("Patient", "_sort=birthdate", true),
            V({"a", "b", "c", "d"}));  // missing last, id tiebreak
  EXPECT_EQ(Ids("Patient", "_sort=-birthdate,-_id", true), V({"c", "b", "a", "d"}));
  EXPECT_EQ(Ids("Patient", "_sort=-_lastUpdated", true), V({"d", "c", "a", "b"}));
  EXPECT_EQ(Ids("Patient", "_sort=_id&_count=2&_getpagesoffset=2", true), V({"c", "d"}));
  auto page = Run("Patient", "birthdate=1990&_count=1");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 2);
  EXPECT_EQ(page->entries.size(), 1u);
  page = Run("Patient", "_total=none");
  EXPECT_FALSE(page->total);
  page = Run("Patient", "_summary=count");
  EXPECT_EQ(page->total, 4);
  EXPECT_TRUE(page->entries.empty());
  // A snapshot hides later writes, so page 2 of an earlier search is unchanged.
  Put(R"({"resourceType":"Patient","id":"aa"})", 5'000'000);
  EXPECT_EQ(Ids("Patient", "_sort=_id&_count=2&_getpagesoffset=0&_snapshot=4000000", true),
            V({"a", "b"}));
}

// Every clause has more index rows than the planner calls selective (sql::kSelectiveRows), so
// page and total come from the page and count statements (not from collecting every match):
// the page is still the ids in order, and the total is left out past the server's limit unless
// asked for, or proved by a last page.
TEST_P(SearchTest, ManyRowsFewOrManyMatches) {
  // 15,000 Observations: code A on the first 12,000, category C from the 4,000th on, so
  // code=A&category=C matches 8,000 (ids o04000..o11999) and code=A&status=final 12,000.
  std::vector<std::string> texts;
  for (int i = 0; i < 15000; ++i) {
    texts.push_back(
        fmt::format(R"({{"resourceType":"Observation","id":"o{:05d}","status":"final",)"
                    R"("code":{{"coding":[{{"system":"s","code":"{}"}}]}}{}}})",
                    i, i < 12000 ? "A" : "B",
                    i >= 4000 ? R"(,"category":[{"coding":[{"system":"s","code":"C"}]}])" : ""));
  }
  PutAll(texts);
  total_limit_ = 1000;  // the server's default
  auto few = Run("Observation", "code=s|A&category=s|C&_count=3&_getpagesoffset=7998");
  ASSERT_TRUE(few.ok()) << few.error().message;
  EXPECT_EQ(few->total, 8000);  // past the limit of 1,000, but the last page proves it
  std::vector<std::string> ids;
  for (const auto& e : few->entries) ids.push_back(e.id);
  EXPECT_EQ(ids, V({"o11998", "o11999"}));
  EXPECT_EQ(Ids("Observation", "code=s|A&category=s|C&_count=2&_sort=-_id", true),
            V({"o11999", "o11998"}));
  auto first = Run("Observation", "code=s|A&category=s|C&_count=2");
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->total);  // 8,000: past the limit
  EXPECT_EQ(Ids("Observation", "code=s|A&category=s|C&_count=2"), V({"o04000", "o04001"}));
  auto exact = Run("Observation", "code=s|A&category=s|C&_count=1&_total=accurate");
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->total, 8000);
  // Past the last match: no page rows to carry the total (SQLite counts on the page's rows).
  auto past =
      Run("Observation", "code=s|A&category=s|C&_count=5&_getpagesoffset=9000&_total=accurate");
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->entries.empty());
  EXPECT_EQ(past->total, 8000);
  total_limit_ = 10000;  // a total within the limit, from a page that does not end the matches
  auto within = Run("Observation", "code=s|A&category=s|C&_count=4&_getpagesoffset=10");
  ASSERT_TRUE(within.ok());
  EXPECT_EQ(within->total, 8000);
  ASSERT_EQ(within->entries.size(), 4u);
  EXPECT_EQ(within->entries[0].id, "o04010");
  total_limit_ = 1000;
  auto many = Run("Observation", "code=s|A&status=final&_count=2&_getpagesoffset=11999");
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->total, 12000);  // the last page ends the matches: they number offset + 1
  ASSERT_EQ(many->entries.size(), 1u);
  EXPECT_EQ(many->entries[0].id, "o11999");
  many = Run("Observation", "code=s|A&status=final&_count=2");
  ASSERT_TRUE(many.ok());
  EXPECT_FALSE(many->total);
  ASSERT_EQ(many->entries.size(), 2u);
  EXPECT_EQ(many->entries[1].id, "o00001");

  // A search past its time bound stops with a too-costly error, and the store goes on serving.
  // Sorting 12,000 matches by their latest update and counting them all takes far more than the
  // 1 ms allowed here on either backend.
  timeout_ms_ = 1;
  auto stopped =
      Run("Observation", "code=s|A&status=final&_sort=-_lastUpdated,_id&_total=accurate&_count=5");
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.error().code, ErrorCode::kUnavailable) << stopped.error().message;
  ASSERT_FALSE(stopped.error().issues.empty());
  EXPECT_EQ(stopped.error().issues[0].code, "too-costly");
  EXPECT_NE(stopped.error().message.find("stopped after 1 ms"), std::string::npos);
  timeout_ms_ = 60000;  // bounded, not reached
  auto after = Run("Observation", "code=s|A&status=final&_total=accurate&_count=1");
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(after->total, 12000);
}

TEST_P(SearchTest, UpdateReplacesRowsAndDeleteHides) {
  Put(R"({"resourceType":"Patient","id":"x","name":[{"family":"Old"}]})");
  EXPECT_EQ(Ids("Patient", "name=old"), V({"x"}));
  Put(R"({"resourceType":"Patient","id":"x","name":[{"family":"New"}]})");
  EXPECT_EQ(Ids("Patient", "name=old"), V());
  EXPECT_EQ(Ids("Patient", "name=new"), V({"x"}));
  Status s = store_->Write([&](store::IWriteTransaction& txn) -> Status {
    store::ResourceVersion v;
    v.type = "Patient";
    v.id = "x";
    v.version = 3;
    v.last_updated_us = NowMicros();
    v.deleted = true;
    return txn.Put(v, {});
  });
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(Ids("Patient", "name=new"), V());
}

JC_SEARCH_ON_EVERY_BACKEND(SearchTest);

}  // namespace
}  // namespace jiceng::search
