#include "fhir/search/extractor.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "base/time.h"
#include "fhir/search/normalize.h"
#include "fhir/search/query.h"

namespace jiceng::search {
namespace {

store::IndexRows Extract(std::string_view text) {
  auto v = ParseJson(text);
  EXPECT_TRUE(v.ok());
  return ExtractIndexRows(*v);
}

template <typename Row>
std::vector<Row> Of(const std::vector<Row>& rows, std::string_view param) {
  std::vector<Row> out;
  for (const Row& r : rows) {
    if (r.param == param) out.push_back(r);
  }
  return out;
}

std::vector<std::string> Values(const std::vector<store::StringIndexRow>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.value);
  std::sort(out.begin(), out.end());
  return out;
}

int64_t Us(std::string_view text) { return *ParseDateTimeStart(text); }

TEST(Normalize, CaseAccentsWidthAndChinese) {
  EXPECT_EQ(NormalizeString("  Müller   ÉLODIE "), "muller elodie");
  EXPECT_EQ(NormalizeString("Ｗａｎｇ　Ｌｉ"), "wang li");
  EXPECT_EQ(NormalizeString("王小明"), "王小明");
  EXPECT_EQ(NormalizeString("Lǚ Xiǎo"), "lu xiao");
  EXPECT_EQ(NormalizeString("Straße Œuvre"), "strasse oeuvre");
  EXPECT_EQ(NormalizeString("e\xCC\x81"), "e");  // decomposed é
}

TEST(Normalize, NumberRanges) {
  auto r = ParseNumberRange("100");
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(r->lo, 99.5);
  EXPECT_DOUBLE_EQ(r->hi, 100.5);
  r = ParseNumberRange("1.50");
  EXPECT_NEAR(r->lo, 1.495, 1e-12);
  EXPECT_NEAR(r->hi, 1.505, 1e-12);
  r = ParseNumberRange("1e2");
  EXPECT_DOUBLE_EQ(r->lo, 50);
  EXPECT_FALSE(ParseNumberRange("abc"));
  EXPECT_FALSE(ParseNumberRange(""));
}

TEST(Normalize, CanonicalUnits) {
  EXPECT_DOUBLE_EQ(Canonicalize(70, "kg")->value, 70000);
  EXPECT_EQ(Canonicalize(70, "kg")->code, "g");
  EXPECT_DOUBLE_EQ(Canonicalize(170, "cm")->value, 1.7);
  EXPECT_EQ(Canonicalize(120, "mm[Hg]")->code, "mm[Hg]");
  EXPECT_FALSE(Canonicalize(5, "mmol/L"));  // molar ↔ mass is never converted here
}

TEST(Extract, PatientNameGenderBirthDate) {
  auto rows = Extract(R"({"resourceType":"Patient","id":"p1",
    "name":[{"family":"王","given":["小明"],"text":"王小明"},{"family":"Müller","given":["Anna","Maria"]}],
    "gender":"male","birthDate":"1980-03",
    "identifier":[{"system":"urn:oid:2.16.156.10011.1.3","value":"330421198003010011","type":{"text":"居民身份证"}}],
    "telecom":[{"system":"phone","value":"13800000000"}],
    "address":[{"city":"杭州","district":"西湖区","postalCode":"310000"}],
    "generalPractitioner":[{"reference":"Practitioner/dr1"}],
    "active":true})");
  EXPECT_EQ(Values(Of(rows.strings, "name")),
            (std::vector<std::string>{"anna", "maria", "muller", "小明", "王", "王小明"}));
  EXPECT_EQ(Values(Of(rows.strings, "family")), (std::vector<std::string>{"muller", "王"}));
  auto gender = Of(rows.tokens, "gender");
  ASSERT_EQ(gender.size(), 1u);
  EXPECT_EQ(gender[0].code, "male");
  auto bd = Of(rows.dates, "birthdate");
  ASSERT_EQ(bd.size(), 1u);
  EXPECT_EQ(bd[0].start_us, Us("1980-03-01"));
  EXPECT_EQ(bd[0].end_us, Us("1980-04-01"));
  auto id = Of(rows.tokens, "identifier");
  ASSERT_EQ(id.size(), 1u);
  EXPECT_EQ(id[0].system, "urn:oid:2.16.156.10011.1.3");
  EXPECT_EQ(Values(Of(rows.strings, "identifier:text")), std::vector<std::string>{"居民身份证"});
  ASSERT_EQ(Of(rows.tokens, "phone").size(), 1u);
  EXPECT_EQ(Of(rows.tokens, "phone")[0].code, "13800000000");
  EXPECT_EQ(Values(Of(rows.strings, "address-city")), std::vector<std::string>{"杭州"});
  EXPECT_EQ(Values(Of(rows.strings, "address")).size(), 3u);
  auto gp = Of(rows.references, "general-practitioner");
  ASSERT_EQ(gp.size(), 1u);
  EXPECT_EQ(gp[0].target_type, "Practitioner");
  EXPECT_EQ(gp[0].target_id, "dr1");
  ASSERT_EQ(Of(rows.tokens, "active").size(), 1u);
  EXPECT_EQ(Of(rows.tokens, "active")[0].code, "true");
}

TEST(Extract, ObservationQuantityCodeAndComponents) {
  auto rows = Extract(R"({"resourceType":"Observation","status":"final",
    "code":{"coding":[{"system":"http://loinc.org","code":"29463-7","display":"Body Weight"}],"text":"体重"},
    "subject":{"reference":"Patient/p1"},
    "effectiveDateTime":"2024-03-05T10:00:00+08:00",
    "valueQuantity":{"value":70.5,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"},
    "component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},
                  "valueQuantity":{"value":120,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})");
  auto code = Of(rows.tokens, "code");
  ASSERT_EQ(code.size(), 1u);
  EXPECT_EQ(code[0].system, "http://loinc.org");
  EXPECT_EQ(code[0].code, "29463-7");
  EXPECT_EQ(Values(Of(rows.strings, "code:text")), (std::vector<std::string>{"body weight", "体重"}));
  auto vq = Of(rows.quantities, "value-quantity");
  ASSERT_EQ(vq.size(), 1u);
  EXPECT_DOUBLE_EQ(vq[0].value, 70.5);
  EXPECT_EQ(vq[0].code, "kg");
  EXPECT_EQ(vq[0].canonical_code, "g");
  EXPECT_DOUBLE_EQ(vq[0].canonical_value, 70500);
  auto cc = Of(rows.tokens, "component-code");
  ASSERT_EQ(cc.size(), 1u);
  EXPECT_EQ(cc[0].code, "8480-6");
  ASSERT_EQ(Of(rows.quantities, "component-value-quantity").size(), 1u);
  // Observation.patient is "subject.where(resolve() is Patient)": a typed stub resolves.
  auto patient = Of(rows.references, "patient");
  ASSERT_EQ(patient.size(), 1u);
  EXPECT_EQ(patient[0].target_id, "p1");
  ASSERT_EQ(Of(rows.references, "subject").size(), 1u);
  auto date = Of(rows.dates, "date");
  ASSERT_EQ(date.size(), 1u);
  EXPECT_EQ(date[0].start_us, Us("2024-03-05T02:00:00Z"));
  EXPECT_EQ(date[0].end_us, Us("2024-03-05T02:00:01Z"));
}

TEST(Extract, EncounterPeriodAndOpenEnds) {
  auto rows = Extract(R"({"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},
    "period":{"start":"2024-01-10T08:00:00+08:00","end":"2024-01-10T09:30:00+08:00"},
    "subject":{"reference":"urn:uuid:1234"}})");
  auto date = Of(rows.dates, "date");
  ASSERT_EQ(date.size(), 1u);
  EXPECT_EQ(date[0].start_us, Us("2024-01-10T00:00:00Z"));
  EXPECT_EQ(date[0].end_us, Us("2024-01-10T01:30:01Z"));
  auto cls = Of(rows.tokens, "class");
  ASSERT_EQ(cls.size(), 1u);
  auto subj = Of(rows.references, "subject");
  ASSERT_EQ(subj.size(), 1u);
  EXPECT_EQ(subj[0].url, "urn:uuid:1234");

  rows = Extract(R"({"resourceType":"Encounter","status":"in-progress","class":{"code":"AMB"},
    "period":{"start":"2024-01-10"}})");
  date = Of(rows.dates, "date");
  ASSERT_EQ(date.size(), 1u);
  EXPECT_EQ(date[0].end_us, INT64_MAX);
}

TEST(Extract, UrisNumbersAndMeta) {
  auto rows = Extract(R"({"resourceType":"ValueSet","status":"active","url":"http://example.org/fhir/ValueSet/a",
    "version":"1","meta":{"profile":["http://example.org/p"],"tag":[{"system":"s","code":"t"}]}})");
  auto url = Of(rows.uris, "url");
  ASSERT_EQ(url.size(), 1u);
  EXPECT_EQ(url[0].value, "http://example.org/fhir/ValueSet/a");
  EXPECT_EQ(Of(rows.tokens, "_tag").size(), 1u);
  EXPECT_EQ(Of(rows.references, "_profile").size() + Of(rows.uris, "_profile").size(), 1u);
  rows = Extract(R"({"resourceType":"RiskAssessment","status":"final","subject":{"reference":"Patient/1"},
    "prediction":[{"probabilityDecimal":0.25}]})");
  auto prob = Of(rows.numbers, "probability");
  ASSERT_EQ(prob.size(), 1u);
  EXPECT_DOUBLE_EQ(prob[0].value, 0.25);
}

TEST(Extract, EveryTypeHasIndexedParamsAndNothingCrashesOnMinimalResources) {
  const auto& defs = fhir::Definitions::Get();
  size_t params = 0;
  for (const std::string& type : defs.ResourceTypes()) {
    params += IndexedParams(type).size();
    auto v = ParseJson(R"({"resourceType":")" + type + R"(","id":"x"})");
    ExtractIndexRows(*v);
  }
  EXPECT_GT(params, 1000u);  // R4 has ~1,400 parameters; composite/special ones are left out
}

TEST(Normalize, FullTextFormSeparatesCjkCharacters) {
  EXPECT_EQ(FullTextForm("患者有高血压"), "患 者 有 高 血 压");
  EXPECT_EQ(FullTextForm("Ｈｙｐｅｒｔｅｎｓｉｏｎ 高血压ABC"), "hypertension 高 血 压 abc");
  EXPECT_EQ(FullTextForm("  Müller  "), "muller");
  EXPECT_TRUE(HasWordCharacter("a"));
  EXPECT_TRUE(HasWordCharacter("高"));
  EXPECT_TRUE(HasWordCharacter("é"));
  EXPECT_FALSE(HasWordCharacter("-- 。、→ ！"));
}

TEST(Extract, CompositeRowsStayWithinOneElement) {
  auto rows = Extract(R"({"resourceType":"Observation","status":"final",
    "code":{"coding":[{"system":"http://loinc.org","code":"55284-4"}]},
    "component":[
      {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"},{"system":"urn:local","code":"sys"}]},
       "valueQuantity":{"value":150,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
      {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},
       "valueQuantity":{"value":70,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})");
  auto comp = Of(rows.composites, "component-code-value-quantity");
  ASSERT_EQ(comp.size(), 3u);  // two codings × one value, and one × one: never 150 with 8462-4
  for (const auto& r : comp) {
    EXPECT_EQ(r.code2, "mm[Hg]");
    EXPECT_EQ(r.canonical_code2, "mm[Hg]");
    EXPECT_DOUBLE_EQ(r.number2, r.code1 == "8462-4" ? 70 : 150);
    EXPECT_DOUBLE_EQ(r.canonical_number2, r.number2);
  }
  EXPECT_EQ(Of(rows.composites, "combo-code-value-quantity").size(), 3u);  // the panel has no value
  EXPECT_TRUE(Of(rows.composites, "code-value-quantity").empty());

  rows = Extract(R"({"resourceType":"Observation","status":"final",
    "code":{"coding":[{"system":"http://loinc.org","code":"21112-8"}]},"valueDateTime":"2024-03"})");
  auto date = Of(rows.composites, "code-value-date");
  ASSERT_EQ(date.size(), 1u);
  EXPECT_EQ(date[0].code1, "21112-8");
  EXPECT_EQ(date[0].start2_us, Us("2024-03-01"));
  EXPECT_EQ(date[0].end2_us, Us("2024-04-01"));
  rows = Extract(R"({"resourceType":"Observation","status":"final",
    "code":{"coding":[{"system":"urn:local","code":"note"}]},"valueString":"Ｈｉｇｈ BP"})");
  auto str = Of(rows.composites, "code-value-string");
  ASSERT_EQ(str.size(), 1u);
  EXPECT_EQ(str[0].code2, "high bp");
  EXPECT_EQ(str[0].system2, "Ｈｉｇｈ BP");
}

TEST(Extract, IndexedCompositesAreTheStorableOnes) {
  auto has = [](std::string_view type, std::string_view code) {
    for (const auto* p : IndexedParams(type)) {
      if (p->code == code) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("Observation", "component-code-value-quantity"));
  EXPECT_TRUE(has("Observation", "code-value-concept"));
  EXPECT_TRUE(has("Group", "characteristic-value"));
  EXPECT_TRUE(has("ValueSet", "context-type-value"));
  EXPECT_FALSE(has("MolecularSequence", "chromosome-variant-coordinate"));  // three components
  EXPECT_FALSE(has("DocumentReference", "relationship"));
}

TEST(Query, SearchableParamsAddTextAndContent) {
  auto codes = [](std::string_view type) {
    std::vector<std::string> out;
    for (const auto* p : SearchableParams(type)) out.push_back(p->code);
    return out;
  };
  auto patient = codes("Patient");
  EXPECT_EQ(std::count(patient.begin(), patient.end(), "_text"), 1);
  EXPECT_EQ(std::count(patient.begin(), patient.end(), "_content"), 1);
  EXPECT_EQ(std::count(patient.begin(), patient.end(), "name"), 1);
  auto obs = codes("Observation");
  EXPECT_EQ(std::count(obs.begin(), obs.end(), "component-code-value-quantity"), 1);
  EXPECT_EQ(IndexedParams("Patient").size() + 2, patient.size());
  EXPECT_TRUE(codes("NotAType").empty());
}

TEST(Extract, OfTypeRowsAndReferenceIdentifiers) {
  auto rows = Extract(R"({"resourceType":"Patient",
    "identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},
                   "system":"urn:hosp","value":"MR-1"},
                  {"system":"urn:plain","value":"X"}],
    "generalPractitioner":[{"identifier":{"system":"urn:doctors","value":"D-7"},"display":"Dr Zhang"}]})");
  auto of_type = Of(rows.composites, "identifier:of-type");
  ASSERT_EQ(of_type.size(), 1u);
  EXPECT_EQ(of_type[0].system1, "http://terminology.hl7.org/CodeSystem/v2-0203");
  EXPECT_EQ(of_type[0].code1, "MR");
  EXPECT_EQ(of_type[0].code2, "MR-1");
  EXPECT_EQ(of_type[0].system2, "urn:hosp");
  auto gp = Of(rows.tokens, "general-practitioner:identifier");
  ASSERT_EQ(gp.size(), 1u);
  EXPECT_EQ(gp[0].system, "urn:doctors");
  EXPECT_EQ(gp[0].code, "D-7");
  EXPECT_TRUE(Of(rows.references, "general-practitioner").empty());  // no literal reference
}

TEST(Extract, FullTextOfNarrativeAndContent) {
  auto rows = Extract(R"({"resourceType":"Condition","id":"c1",
    "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>高血压</p>Stage&#160;2 &lt;severe&gt;</div>"},
    "meta":{"source":"urn:metasource"},
    "code":{"coding":[{"system":"http://snomed.info/sct","code":"38341003","display":"Hypertension"}],"text":"原发性高血压"},
    "subject":{"reference":"Patient/p1"}})");
  ASSERT_EQ(rows.full_text.size(), 1u);
  EXPECT_EQ(rows.full_text[0].narrative, "高 血 压 stage 2 <severe>");
  const std::string& content = rows.full_text[0].content;
  EXPECT_NE(content.find("hypertension"), std::string::npos);
  EXPECT_NE(content.find("原 发 性 高 血 压"), std::string::npos);
  EXPECT_NE(content.find("38341003"), std::string::npos);
  EXPECT_EQ(content.find("snomed"), std::string::npos);     // systems are not content
  EXPECT_EQ(content.find("patient"), std::string::npos);    // nor references
  EXPECT_EQ(content.find("metasource"), std::string::npos);  // nor meta
  EXPECT_EQ(content.find("c1"), std::string::npos);         // nor the id
  EXPECT_TRUE(Extract(R"({"resourceType":"Basic","id":"b"})").full_text.empty());
}

TEST(Extract, UnknownTypeYieldsNothing) {
  auto rows = Extract(R"({"resourceType":"NotAType","name":"x"})");
  EXPECT_TRUE(rows.strings.empty() && rows.tokens.empty());
}

TEST(Query, ParsesAndRejects) {
  ParseOptions o;
  o.strict = true;
  auto p = ParseSearch("Patient", {{"name", "wang,li"}, {"birthdate", "ge1980"}, {"_sort", "-birthdate,name"}}, o);
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->query.all_of.size(), 2u);
  EXPECT_EQ(p->query.all_of[0].any_of.size(), 2u);
  EXPECT_EQ(p->query.all_of[1].any_of[0].prefix, store::SearchPrefix::kGe);
  ASSERT_EQ(p->query.sort.size(), 2u);
  EXPECT_TRUE(p->query.sort[0].descending);
  auto bad = ParseSearch("Patient", {{"nonsense", "1"}}, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("nonsense"), std::string::npos);
  EXPECT_FALSE(ParseSearch("Patient", {{"birthdate", "notadate"}}, o).ok());
  EXPECT_FALSE(ParseSearch("Patient", {{"name:fuzzy", "x"}}, o).ok());
  o.strict = false;
  auto lenient = ParseSearch("Patient", {{"nonsense", "1"}, {"name", "x"}}, o);
  ASSERT_TRUE(lenient.ok());
  ASSERT_EQ(lenient->applied.size(), 1u);
  EXPECT_EQ(lenient->applied[0].first, "name");
  // Escaped comma is part of the value, not an OR.
  auto esc = ParseSearch("Patient", {{"name", "a\\,b"}}, o);
  ASSERT_EQ(esc->query.all_of[0].any_of.size(), 1u);
  EXPECT_EQ(esc->query.all_of[0].any_of[0].text, "a,b");
}

}  // namespace
}  // namespace jiceng::search
