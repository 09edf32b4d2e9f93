#include "fhir/search/extractor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "base/time.h"
#include "fhir/definitions.h"
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

// Malformed UTF-8 never fails: overlong forms decode to their code point (and are written in
// the shortest form), stray bytes read as Latin-1. Well-formed text keeps its bytes.
TEST(Normalize, MalformedUtf8) {
  EXPECT_EQ(NormalizeString("\xE0\x81\x81\xC0\xAF"), "a/");    // overlong 'A' and '/'
  EXPECT_EQ(NormalizeString("\xE0\x9F\xBF"), "\xDF\xBF");      // overlong U+07FF
  EXPECT_EQ(NormalizeString("\xF0\x80\x82\xBF"), "\xC2\xBF");  // overlong U+00BF
  EXPECT_EQ(NormalizeString("x\x80y\xE9"), "x\xC2\x80ye");     // stray bytes: Latin-1
  EXPECT_EQ(NormalizeString("\xED\xA0\x80"), "\xED\xA0\x80");  // a lone surrogate
  EXPECT_EQ(NormalizeString("\xF0\x9F\x98\x80\xC2\xB5"), "\xF0\x9F\x98\x80\xC2\xB5");
}

Decimal D(std::string_view text) {
  auto d = ParseDecimal(text);
  EXPECT_TRUE(d) << text;
  return d ? *d : Decimal{};
}

std::string Text(const Decimal& d) {
  return (d.negative ? "-" : "") + (d.digits.empty() ? "0" : d.digits) + "e" +
         std::to_string(d.exponent);
}

// R4 datatypes, decimal: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, also the syntax of a
// number in a number or quantity search.
TEST(Normalize, DecimalSyntaxIsR4s) {
  for (std::string_view ok : {"0", "-0", "100", "0.35", "1.50", "1e2", "1E-3", "-2.5e+3", "1e05"}) {
    EXPECT_TRUE(ParseDecimal(ok)) << ok;
  }
  for (std::string_view bad : {"", "-", "5.", ".5", "+5", "05", "-05", "00", " 5", "5 ", "0x10",
                               "inf", "nan", "1e", "1e+", "--1", "1.2.3", "1,5", "1e100001"}) {
    EXPECT_FALSE(ParseDecimal(bad)) << bad;
  }
  // The written precision is kept: trailing zeros are digits, leading zeros are not.
  EXPECT_EQ(Text(D("1.50")), "150e-2");
  EXPECT_EQ(Text(D("0.0035")), "35e-4");
  EXPECT_EQ(Text(D("1e2")), "1e2");
  EXPECT_EQ(Text(D("0.00")), "0e-2");
  EXPECT_EQ(Text(D("-0")), "0e0");
  EXPECT_EQ(Text(HalfUnit(D("100"))), "5e-1");
  EXPECT_EQ(Text(HalfUnit(D("1.50"))), "5e-3");
  EXPECT_EQ(Text(HalfUnit(D("1e2"))), "5e1");
}

TEST(Normalize, DecimalArithmeticIsExact) {
  EXPECT_EQ(CompareDecimal(AddDecimal(D("0.4"), D("-0.05")), D("0.35")), 0);
  EXPECT_EQ(CompareDecimal(AddDecimal(D("0.1"), D("0.2")), D("0.3")), 0);
  EXPECT_EQ(CompareDecimal(AddDecimal(D("-2.5"), D("0.05")), D("-2.45")), 0);
  EXPECT_EQ(CompareDecimal(AddDecimal(D("1"), D("-1")), D("0")), 0);
  EXPECT_EQ(CompareDecimal(MultiplyDecimal(D("154.3"), D("453.59237")), D("69989.302691")), 0);
  EXPECT_EQ(CompareDecimal(MultiplyDecimal(D("-1.5"), D("2e-3")), D("-0.003")), 0);
  EXPECT_LT(CompareDecimal(D("-1"), D("0")), 0);
  EXPECT_LT(CompareDecimal(D("0.35"), D("0.350000000000000001")), 0);
  EXPECT_EQ(CompareDecimal(D("1.50"), D("1.5")), 0);
  EXPECT_GT(CompareDecimal(D("1e3"), D("999.999")), 0);
  EXPECT_EQ(Magnitude(D("12.3")), 2);
  EXPECT_EQ(Magnitude(D("0.0012")), -2);
  // A double stands for its shortest round-trip text.
  EXPECT_EQ(CompareDecimal(DecimalOf(0.35), D("0.35")), 0);
  EXPECT_EQ(CompareDecimal(DecimalOf(0.1 + 0.2), D("0.30000000000000004")), 0);
  EXPECT_EQ(CompareDecimal(DecimalOf(-0.0), D("0")), 0);
  EXPECT_EQ(CompareDecimal(DecimalOf(1e-320), D("1e-320")), 0);
}

TEST(Normalize, SmallestDoubleAtLeastDecidesAsTheDecimalsDo) {
  const Decimal one = D("1");
  // In binary, 0.4 - 0.05 is 0.35000000000000003 and would miss a stored 0.35.
  EXPECT_GT(0.4 - 0.05, 0.35);
  EXPECT_EQ(SmallestDoubleAtLeast(AddDecimal(D("0.4"), D("-0.05")), one, false), 0.35);
  EXPECT_EQ(SmallestDoubleAtLeast(D("0.35"), one, true), std::nextafter(0.35, 1.0));
  // 17 significant digits: the search range [x - 5e-15, x + 5e-15) holds exactly one double,
  // the one the text reads as, though x ± h both round to it in binary.
  const Decimal x = D("113.95967623544097");
  const double v = 113.95967623544097;
  EXPECT_EQ(v - 5e-15, v);
  const Decimal h = HalfUnit(x);
  Decimal minus_h = h;
  minus_h.negative = true;
  const double lo = SmallestDoubleAtLeast(AddDecimal(x, minus_h), one, false);
  const double hi = SmallestDoubleAtLeast(AddDecimal(x, h), one, false);
  EXPECT_EQ(lo, v);
  EXPECT_EQ(hi, std::nextafter(v, 200.0));
  // With a unit factor: DecimalOf(v)·1000 >= 70000 from v = 70 on; 1.7 m is 170 cm exactly.
  EXPECT_EQ(SmallestDoubleAtLeast(D("70000"), D("1000"), false), 70.0);
  EXPECT_EQ(SmallestDoubleAtLeast(D("1.7"), D("0.01"), false), 170.0);
  EXPECT_EQ(SmallestDoubleAtLeast(D("1.7"), D("0.01"), true), std::nextafter(170.0, 200.0));
  // Negative bounds, zero, the far ends.
  EXPECT_EQ(SmallestDoubleAtLeast(D("-2.55"), one, false), -2.55);
  const double zero = SmallestDoubleAtLeast(D("0"), one, false);
  EXPECT_EQ(zero, 0.0);
  EXPECT_EQ(SmallestDoubleAtLeast(D("0"), one, true), std::numeric_limits<double>::denorm_min());
  EXPECT_EQ(SmallestDoubleAtLeast(D("1e400"), one, false), std::numeric_limits<double>::infinity());
  EXPECT_EQ(SmallestDoubleAtLeast(D("-1e400"), one, false), -DBL_MAX);
}

TEST(Normalize, CanonicalUnits) {
  EXPECT_DOUBLE_EQ(Canonicalize(70, "kg")->value, 70000);
  EXPECT_EQ(Canonicalize(70, "kg")->code, "g");
  EXPECT_DOUBLE_EQ(Canonicalize(170, "cm")->value, 1.7);
  EXPECT_EQ(Canonicalize(120, "mm[Hg]")->code, "m-1.s-2.g");
  EXPECT_DOUBLE_EQ(Canonicalize(120, "mm[Hg]")->value, 120 * 133322.0);
  EXPECT_EQ(Canonicalize(16, "kPa")->code, "m-1.s-2.g");
  // Molar ↔ mass is never converted: mmol/L and mg/dL have different base units.
  EXPECT_EQ(Canonicalize(5, "mmol/L")->code, "m-3.mol");
  EXPECT_EQ(Canonicalize(5000, "umol/L")->value, Canonicalize(5, "mmol/L")->value);
  EXPECT_EQ(Canonicalize(90, "mg/dL")->code, "m-3.g");
  EXPECT_EQ(Canonicalize(1500, "mL")->value, Canonicalize(1.5, "L")->value);
  EXPECT_EQ(Canonicalize(1500, "mL")->code, "m3");
  // Equivalents are not moles (1 mEq/L of calcium is 0.5 mmol/L): compared only as written.
  EXPECT_FALSE(Canonicalize(2.5, "meq/L").has_value());
  // A code nested past any real unit is not read (deep recursion would overflow the stack).
  EXPECT_FALSE(Canonicalize(1, std::string(100000, '(') + "g" + std::string(100000, ')')));
  EXPECT_EQ(Canonicalize(1, "((g))")->code, "g");
  // Factors that are not decimals: equal quantities still meet in the same double.
  EXPECT_EQ(Canonicalize(60, "mL/h")->value, Canonicalize(1, "mL/min")->value);
  EXPECT_EQ(Canonicalize(72, "/min")->value, Canonicalize(4320, "/h")->value);
  EXPECT_EQ(Canonicalize(1, "[oz_av]")->value, 28.349523125);
  // Not converted: offsets (Cel, [degF]), annotations, arbitrary units, unknown codes.
  for (const char* unit : {"Cel", "[degF]", "{cells}/uL", "[iU]/L", "mmHg", "", "kg/", "(g"})
    EXPECT_FALSE(Canonicalize(1, unit)) << unit;
}

TEST(Extract, AChineseNameIsAlsoIndexedWhole) {
  auto rows = Extract(R"({"resourceType":"Patient","id":"p1",
    "name":[{"family":"欧阳","given":["小","明"]},{"family":"Smith","given":["John"]},
            {"family":"李"}]})");
  EXPECT_EQ(Values(Of(rows.strings, "name")),
            (std::vector<std::string>{"john", "smith", "小", "明", "李", "欧阳", "欧阳小明"}));
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
  EXPECT_EQ(Of(rows.strings, "name").size(), 6u);  // 王小明 once, from the text
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
  EXPECT_EQ(Values(Of(rows.strings, "code:text")),
            (std::vector<std::string>{"body weight", "体重"}));
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
  auto rows = Extract(
      R"({"resourceType":"ValueSet","status":"active","url":"http://example.org/fhir/ValueSet/a",
    "version":"1","meta":{"profile":["http://example.org/p"],"tag":[{"system":"s","code":"t"}]}})");
  auto url = Of(rows.uris, "url");
  ASSERT_EQ(url.size(), 1u);
  EXPECT_EQ(url[0].value, "http://example.org/fhir/ValueSet/a");
  EXPECT_EQ(Of(rows.tokens, "_tag").size(), 1u);
  EXPECT_EQ(Of(rows.references, "_profile").size() + Of(rows.uris, "_profile").size(), 1u);
  rows = Extract(
      R"({"resourceType":"RiskAssessment","status":"final","subject":{"reference":"Patient/1"},
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

// R4's Observation combo-* parameters are each exactly the union of two others: they are
// answered from those parameters' rows and store none of their own.
TEST(Extract, UnionParametersStoreNoRows) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> unions = {
      {"combo-code", {"code", "component-code"}},
      {"combo-value-quantity", {"value-quantity", "component-value-quantity"}},
      {"combo-value-concept", {"value-concept", "component-value-concept"}},
      {"combo-data-absent-reason", {"data-absent-reason", "component-data-absent-reason"}},
      {"combo-code-value-quantity", {"code-value-quantity", "component-code-value-quantity"}},
      {"combo-code-value-concept", {"code-value-concept", "component-code-value-concept"}},
  };
  for (const auto& [code, parts] : unions) {
    const std::vector<std::string>* got = StoredAsUnionOf("Observation", code);
    ASSERT_NE(got, nullptr) << code;
    std::vector<std::string> sorted = *got, expected = parts;
    std::sort(sorted.begin(), sorted.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(sorted, expected) << code;
  }
  // No other parameter of any type is a union of others (a change in the definitions or in the
  // detection would show here).
  int others = 0;
  for (const std::string& type : fhir::Definitions::Get().ResourceTypes()) {
    for (const fhir::SearchParamDef* p : IndexedParams(type)) {
      if (StoredAsUnionOf(type, p->code) &&
          !(type == "Observation" && p->code.starts_with("combo-")))
        ++others, ADD_FAILURE() << type << "." << p->code;
    }
  }
  EXPECT_EQ(others, 0);
  auto rows = Extract(R"({"resourceType":"Observation","status":"final",
    "code":{"coding":[{"system":"http://loinc.org","code":"55284-4"}]},
    "component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},
       "valueQuantity":{"value":150,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})");
  EXPECT_EQ(Of(rows.tokens, "code").size(), 1u);
  EXPECT_EQ(Of(rows.tokens, "component-code").size(), 1u);
  EXPECT_TRUE(Of(rows.tokens, "combo-code").empty());
  EXPECT_TRUE(Of(rows.quantities, "combo-value-quantity").empty());
  EXPECT_TRUE(Of(rows.strings, "combo-code:text").empty());
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
    EXPECT_EQ(r.canonical_code2, "m-1.s-2.g");  // in base units: 1 mm[Hg] = 133322 g/(m.s2)
    EXPECT_DOUBLE_EQ(r.number2, r.code1 == "8462-4" ? 70 : 150);
    EXPECT_DOUBLE_EQ(r.canonical_number2, r.number2 * 133322);
  }
  // combo-code-value-quantity is code-value-quantity | component-code-value-quantity: no rows
  // of its own (StoredAsUnionOf); the panel has no value of its own.
  EXPECT_TRUE(Of(rows.composites, "combo-code-value-quantity").empty());
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
  EXPECT_TRUE(has("MolecularSequence", "chromosome-variant-coordinate"));  // three components
  EXPECT_TRUE(has("MolecularSequence", "chromosome-window-coordinate"));
  EXPECT_TRUE(has("MolecularSequence", "referenceseqid-variant-coordinate"));
  EXPECT_TRUE(has("MolecularSequence", "referenceseqid-window-coordinate"));
  EXPECT_TRUE(has("DocumentReference", "relationship"));
}

// R4's DocumentReference-relationship names its component definitions the wrong way round
// (relatesto, a reference, beside the expression `code`): read as its expressions say, relation
// (the code) then relatesto (the target), one row per relatesTo element.
TEST(Extract, DocumentReferenceRelationshipIsCodeThenTarget) {
  const fhir::SearchParamDef* def =
      fhir::Definitions::Get().FindSearchParam("DocumentReference", "relationship");
  ASSERT_NE(def, nullptr);
  auto parts = CompositeComponentDefs(*def);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0]->code, "relation");
  EXPECT_EQ(parts[1]->code, "relatesto");
  // Composites whose definitions are in order keep it.
  auto value = CompositeComponentDefs(
      *fhir::Definitions::Get().FindSearchParam("Observation", "code-value-quantity"));
  ASSERT_EQ(value.size(), 2u);
  EXPECT_EQ(value[0]->code, "code");
  EXPECT_EQ(value[1]->code, "value-quantity");

  auto rows = Extract(R"({"resourceType":"DocumentReference","status":"current",
    "content":[{"attachment":{"url":"http://x.example/a.pdf"}}],
    "relatesTo":[{"code":"replaces","target":{"reference":"DocumentReference/d0"}},
                 {"code":"appends","target":{"reference":"http://other.example/fhir/DocumentReference/x"}}]})");
  auto rel = Of(rows.composites, "relationship");
  ASSERT_EQ(rel.size(), 2u);
  std::sort(rel.begin(), rel.end(), [](const auto& a, const auto& b) { return a.code1 < b.code1; });
  EXPECT_EQ(rel[0].code1, "appends");
  EXPECT_EQ(rel[0].code2, "http://other.example/fhir/DocumentReference/x");  // another server's
  EXPECT_EQ(rel[0].system2, "");
  EXPECT_EQ(rel[1].code1, "replaces");
  EXPECT_EQ(rel[1].code2, "d0");
  EXPECT_EQ(rel[1].system2, "DocumentReference");
}

// The MolecularSequence coordinates: one row per variant (the chromosome from the resource,
// %resource.referenceSeq.chromosome, start and end from the variant), start in number2 and end
// in end2_us; the window composites one row from referenceSeq.
TEST(Extract, MolecularSequenceCoordinatesAreTokenNumberNumber) {
  auto rows = Extract(R"({"resourceType":"MolecularSequence","coordinateSystem":0,
    "referenceSeq":{"chromosome":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/chromosome-human","code":"1"}]},
      "genomeBuild":"GRCh38","windowStart":5,"windowEnd":500},
    "variant":[{"start":10,"end":20},{"start":150,"end":300},{"start":7}]})");
  auto variants = Of(rows.composites, "chromosome-variant-coordinate");
  ASSERT_EQ(variants.size(), 2u);  // the variant without an end makes no row
  std::sort(variants.begin(), variants.end(),
            [](const auto& a, const auto& b) { return a.number2 < b.number2; });
  EXPECT_EQ(variants[0].code1, "1");
  EXPECT_EQ(variants[0].system1, "http://terminology.hl7.org/CodeSystem/chromosome-human");
  EXPECT_EQ(variants[0].number2, 10);
  EXPECT_EQ(variants[0].end2_us, 20);
  EXPECT_EQ(variants[0].start2_us, 0);
  EXPECT_EQ(variants[0].code2, "");
  EXPECT_EQ(variants[1].number2, 150);
  EXPECT_EQ(variants[1].end2_us, 300);
  auto window = Of(rows.composites, "chromosome-window-coordinate");
  ASSERT_EQ(window.size(), 1u);
  EXPECT_EQ(window[0].code1, "1");
  EXPECT_EQ(window[0].number2, 5);
  EXPECT_EQ(window[0].end2_us, 500);
  EXPECT_TRUE(Of(rows.composites, "referenceseqid-variant-coordinate").empty());

  rows = Extract(R"({"resourceType":"MolecularSequence","coordinateSystem":1,
    "referenceSeq":{"referenceSeqId":{"coding":[{"system":"http://www.ncbi.nlm.nih.gov/nuccore","code":"NC_000001.11"}]},
      "windowStart":100,"windowEnd":200},
    "variant":[{"start":120,"end":180}]})");
  auto by_id = Of(rows.composites, "referenceseqid-variant-coordinate");
  ASSERT_EQ(by_id.size(), 1u);
  EXPECT_EQ(by_id[0].code1, "NC_000001.11");
  EXPECT_EQ(by_id[0].number2, 120);
  EXPECT_EQ(by_id[0].end2_us, 180);
  ASSERT_EQ(Of(rows.composites, "referenceseqid-window-coordinate").size(), 1u);
  EXPECT_TRUE(Of(rows.composites, "chromosome-variant-coordinate").empty());
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
  EXPECT_EQ(content.find("snomed"), std::string::npos);      // systems are not content
  EXPECT_EQ(content.find("patient"), std::string::npos);     // nor references
  EXPECT_EQ(content.find("metasource"), std::string::npos);  // nor meta
  EXPECT_EQ(content.find("c1"), std::string::npos);          // nor the id
  EXPECT_TRUE(Extract(R"({"resourceType":"Basic","id":"b"})").full_text.empty());
}

TEST(Extract, UnknownTypeYieldsNothing) {
  auto rows = Extract(R"({"resourceType":"NotAType","name":"x"})");
  EXPECT_TRUE(rows.strings.empty() && rows.tokens.empty());
}

// Values that are not UTF-8 (a percent-encoded 0xFF) are refused by the parser, so both backends
// answer 400 naming the parameter; lenient handling does not let them through either.
TEST(Query, RefusesParametersThatAreNotUtf8) {
  ParseOptions o;
  for (const bool strict : {true, false}) {
    o.strict = strict;
    for (const std::string bad :
         {"Wang\xFF", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE7\x8E"}) {
      auto r = ParseSearch("Patient", {{"name", bad}}, o);
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
      EXPECT_NE(r.error().message.find("not valid UTF-8"), std::string::npos);
      EXPECT_FALSE(ParseSearch("Patient", {{"nonsense\xFF", "1"}}, o).ok());
    }
  }
  EXPECT_TRUE(ParseSearch("Patient", {{"name", "王\xF4\x8F\xBF\xBF"}}, o).ok());  // U+10FFFF
  EXPECT_FALSE(ParseCriteria("Patient", {{"identifier", "a|\xFF"}}).ok());
}

TEST(Query, ParsesAndRejects) {
  ParseOptions o;
  o.strict = true;
  auto p = ParseSearch(
      "Patient", {{"name", "wang,li"}, {"birthdate", "ge1980"}, {"_sort", "-birthdate,name"}}, o);
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

// R4 search, quantity: "5.4||mg ... either the code (code) or the stated human unit (unit)".
TEST(Extract, QuantityHumanUnitIsOneMoreRow) {
  auto rows = Extract(R"({"resourceType":"Observation","status":"final","code":{"text":"bp"},
    "valueQuantity":{"value":135.5,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}})");
  auto vq = Of(rows.quantities, "value-quantity");
  ASSERT_EQ(vq.size(), 2u);
  EXPECT_EQ(vq[0].code, "mm[Hg]");
  EXPECT_EQ(vq[0].system, "http://unitsofmeasure.org");
  EXPECT_EQ(vq[0].canonical_code, "m-1.s-2.g");
  EXPECT_EQ(vq[1].code, "mmHg");
  EXPECT_EQ(vq[1].system, kHumanUnitSystem);
  EXPECT_DOUBLE_EQ(vq[1].value, 135.5);
  EXPECT_EQ(vq[1].canonical_code, "");  // never converted
  // The same unit twice is one row; a unit without a code is the human unit only.
  rows = Extract(R"({"resourceType":"Observation","status":"final","code":{"text":"w"},
    "valueQuantity":{"value":70,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}})");
  EXPECT_EQ(Of(rows.quantities, "value-quantity").size(), 1u);
  rows = Extract(R"({"resourceType":"Observation","status":"final","code":{"text":"g"},
    "valueQuantity":{"value":5.35,"unit":"mmol/L"}})");
  vq = Of(rows.quantities, "value-quantity");
  ASSERT_EQ(vq.size(), 2u);
  EXPECT_EQ(vq[0].code, "");
  EXPECT_EQ(vq[0].system, "");
  EXPECT_EQ(vq[1].code, "mmol/L");
  EXPECT_EQ(vq[1].system, kHumanUnitSystem);
  // Composites take both rows of a component's value.
  rows = Extract(R"({"resourceType":"Observation","status":"final","code":{"text":"bp"},
    "component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},
      "valueQuantity":{"value":135.5,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})");
  auto comp = Of(rows.composites, "component-code-value-quantity");
  ASSERT_EQ(comp.size(), 2u);
  EXPECT_EQ(comp[1].code2, "mmHg");
  EXPECT_EQ(comp[1].system2, kHumanUnitSystem);
}

// R4 search, token: "[parameter]=[system]|: any element where the value of [system] matches the
// system property of the Identifier or Coding".
TEST(Extract, CodingWithSystemAndNoCodeIsIndexed) {
  auto rows = Extract(R"({"resourceType":"Observation","status":"final",
    "code":{"coding":[{"system":"http://loinc.org","display":"no code here"},{"display":"nothing"}]},
    "identifier":[{"system":"urn:lab"}]})");
  auto code = Of(rows.tokens, "code");
  ASSERT_EQ(code.size(), 1u);  // the coding with neither system nor code names nothing
  EXPECT_EQ(code[0].system, "http://loinc.org");
  EXPECT_EQ(code[0].code, "");
  EXPECT_EQ(Values(Of(rows.strings, "code:text")),
            (std::vector<std::string>{"no code here", "nothing"}));
  auto id = Of(rows.tokens, "identifier");
  ASSERT_EQ(id.size(), 1u);
  EXPECT_EQ(id[0].system, "urn:lab");
  EXPECT_EQ(id[0].code, "");
}

// R4 References: a relative reference is relative to this server's base; an absolute URL names
// the resource at that URL, which is local only under the base.
TEST(Extract, AbsoluteReferencesAreLocalOnlyUnderTheBase) {
  const std::string text = R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
    "subject":{"reference":"http://other.example/fhir/Patient/p1"},
    "performer":[{"reference":"https://jiceng.example/fhir/Practitioner/d1/_history/2"},
                 {"reference":"https://jiceng.example/fhir/x/Practitioner/d2"},
                 {"reference":"Practitioner/d3"}, {"reference":"urn:uuid:1234"}]})";
  auto v = ParseJson(text);
  ASSERT_TRUE(v.ok());
  // No base: every absolute URL is another server's, found by its URL only.
  auto rows = ExtractIndexRows(*v, ExtractOptions{});
  auto subject = Of(rows.references, "subject");
  ASSERT_EQ(subject.size(), 1u);
  EXPECT_EQ(subject[0].url, "http://other.example/fhir/Patient/p1");
  EXPECT_EQ(subject[0].target_type, "");
  EXPECT_EQ(subject[0].target_id, "");
  for (const auto& r : Of(rows.references, "patient")) EXPECT_EQ(r.target_id, "");
  auto performer = Of(rows.references, "performer");
  ASSERT_EQ(performer.size(), 4u);
  for (const auto& r : performer) {
    EXPECT_EQ(r.target_id.empty(), !r.url.empty()) << r.url << " " << r.target_id;
  }
  // Under the base: the local resource, with its URL; a path that is not Type/id is not one.
  rows = ExtractIndexRows(*v, ExtractOptions{"https://jiceng.example/fhir/"});
  performer = Of(rows.references, "performer");
  ASSERT_EQ(performer.size(), 4u);
  EXPECT_EQ(performer[0].url, "https://jiceng.example/fhir/Practitioner/d1/_history/2");
  EXPECT_EQ(performer[0].target_type, "Practitioner");
  EXPECT_EQ(performer[0].target_id, "d1");
  EXPECT_EQ(performer[1].target_id, "");
  EXPECT_EQ(performer[2].target_id, "d3");
  EXPECT_EQ(Of(rows.references, "subject")[0].target_id, "");  // still another server's

  // Canonicals are identities, not locations: by URL only, whatever the base.
  auto pr = ParseJson(
      R"({"resourceType":"Procedure","status":"completed","subject":{"reference":"Patient/p1"},
    "instantiatesCanonical":["https://jiceng.example/fhir/PlanDefinition/htn|1.0"]})");
  ASSERT_TRUE(pr.ok());
  for (const std::string base : {"", "https://jiceng.example/fhir"}) {
    auto canonical =
        Of(ExtractIndexRows(*pr, ExtractOptions{base}).references, "instantiates-canonical");
    ASSERT_EQ(canonical.size(), 1u);
    EXPECT_EQ(canonical[0].url, "https://jiceng.example/fhir/PlanDefinition/htn");
    EXPECT_EQ(canonical[0].target_id, "");
  }

  store::ReferenceIndexRow r;
  EXPECT_TRUE(
      LocalReference("https://jiceng.example/fhir/Patient/p1", "https://jiceng.example/fhir", r));
  EXPECT_EQ(r.target_type, "Patient");
  EXPECT_EQ(r.target_id, "p1");
  EXPECT_FALSE(
      LocalReference("https://jiceng.example/fhirx/Patient/p1", "https://jiceng.example/fhir", r));
  EXPECT_FALSE(
      LocalReference("https://jiceng.example/fhir/Nope/p1", "https://jiceng.example/fhir", r));
  EXPECT_FALSE(
      LocalReference("https://jiceng.example/fhir/Patient/", "https://jiceng.example/fhir", r));
  EXPECT_FALSE(LocalReference("https://jiceng.example/fhir/Patient/p1", "", r));
}

// R4 search, number: "the number is a decimal"; anything else is a 400 naming the parameter.
TEST(Query, NumberSyntaxIsStrict) {
  ParseOptions o;
  o.strict = true;
  for (const char* bad :
       {"0x10", "5.", " 5", "5 ", "+5", "05", ".5", "inf", "nan", "1e", "ge", "ge 5", "1,5x"}) {
    auto p = ParseSearch("RiskAssessment", {{"probability", bad}}, o);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.error().code, ErrorCode::kInvalid) << bad;
    EXPECT_NE(p.error().message.find("probability"), std::string::npos) << p.error().message;
    auto q = ParseSearch(
        "Observation", {{"value-quantity", std::string(bad) + "|http://unitsofmeasure.org|kg"}}, o);
    ASSERT_FALSE(q.ok()) << bad;
    EXPECT_EQ(q.error().code, ErrorCode::kInvalid) << bad;
    EXPECT_NE(q.error().message.find("value-quantity"), std::string::npos) << q.error().message;
  }
  auto huge = ParseSearch("RiskAssessment", {{"probability", "1e300"}}, o);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().message.find("out of range"), std::string::npos) << huge.error().message;
  for (const char* ok : {"1e5", "ge1E-3", "-0", "ap100", "0.35", "1e290"}) {
    EXPECT_TRUE(ParseSearch("RiskAssessment", {{"probability", ok}}, o).ok()) << ok;
  }
  auto composite = ParseSearch(
      "Observation", {{"component-code-value-quantity", "http://loinc.org|8480-6$5."}}, o);
  EXPECT_FALSE(composite.ok());
}

}  // namespace
}  // namespace jiceng::search
