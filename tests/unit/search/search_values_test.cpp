// Number, quantity, token and reference values end to end (issue 3, the differential test's
// findings): decimal bounds decided exactly, R4 number syntax, the quantity's human unit,
// Codings with a system and no code, absolute references. Resources indexed by the extractor,
// queries parsed by fhir/search, answered by each backend's SQL (search_fixture.h).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "search_fixture.h"

namespace jiceng::search {
namespace {

class SearchValuesTest : public SearchStoreTest {
 protected:
  void Risk(std::string_view id, std::string_view probability) {
    Put(R"({"resourceType":"RiskAssessment","id":")" + std::string(id) +
        R"(","status":"final","subject":{"reference":"Patient/p"},"prediction":[{"probabilityDecimal":)" +
        std::string(probability) + "}]}");
  }
  void Weight(std::string_view id, std::string_view quantity) {
    Put(R"({"resourceType":"Observation","id":")" + std::string(id) +
        R"(","status":"final","code":{"text":"w"},"valueQuantity":)" + std::string(quantity) + "}");
  }
};

// R4 search, number: 0.4 is [0.35, 0.45), and every comparison decided on the decimals.
TEST_P(SearchValuesTest, NumberBoundsAreExactDecimals) {
  Risk("r035", "0.35");
  Risk("r04", "0.4");
  Risk("r045", "0.45");
  Risk("r17", "113.95967623544097");
  Risk("r17b", "113.95967623544098");  // the next double
  Risk("r90", "90");
  Risk("r110", "110");
  Risk("r100", "100");
  EXPECT_EQ(Ids("RiskAssessment", "probability=0.4"), V({"r035", "r04"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=0.35"), V({"r035"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=0.45"), V({"r045"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=gt0.35&probability=lt0.45"), V({"r04"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=ge0.35&probability=le0.45"), V({"r035", "r04", "r045"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=sa0.4&probability=eb100"), V({"r045", "r90"}));
  // A value written with 17 digits is found by its own text, and only by it.
  EXPECT_EQ(Ids("RiskAssessment", "probability=113.95967623544097"), V({"r17"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=113.95967623544098"), V({"r17b"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=113.9596762354410"), V({"r17", "r17b"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=113.959676235440975"), V());  // between the two
  EXPECT_EQ(Ids("RiskAssessment", "probability=ne113.95967623544097&probability=gt100"),
            V({"r110", "r17b"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=ge113.95967623544097&probability=lt200"),
            V({"r17", "r17b"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=ge113.959676235440975&probability=lt200"),
            V({"r17b"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=le113.959676235440975&probability=gt100"),
            V({"r110", "r17"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=gt113.95967623544097&probability=lt113.95967623544099"),
            V({"r17b"}));
  // ap: within 10%, both ends included exactly; 1e2 has one significant digit: [50, 150).
  EXPECT_EQ(Ids("RiskAssessment", "probability=ap100"), V({"r100", "r110", "r90"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=1e2"), V({"r100", "r110", "r17", "r17b", "r90"}));
  EXPECT_EQ(Ids("RiskAssessment", "probability=1.0e2"), V({"r100"}));
}

TEST_P(SearchValuesTest, NumberSyntaxErrorsNameTheParameter) {
  for (const char* bad : {"0x10", "5.", "+5", "05", "inf", "5,0x10"}) {
    auto r = Run("RiskAssessment", std::string("probability=") + bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
    EXPECT_NE(r.error().message.find("probability"), std::string::npos) << r.error().message;
  }
  auto r = Run("RiskAssessment", "probability= 5");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("Bad number ' 5'"), std::string::npos) << r.error().message;
}

// Commensurable units compare exactly too: the search range is converted into each stored unit
// in decimal arithmetic.
TEST_P(SearchValuesTest, QuantityUnitsConvertExactly) {
  const std::string ucum = R"(,"system":"http://unitsofmeasure.org")";
  Weight("kg17", R"({"value":113.95967623544097,"code":"kg")" + ucum + "}");
  Weight("g70000", R"({"value":70000,"code":"g")" + ucum + "}");
  Weight("kg70", R"({"value":70,"code":"kg")" + ucum + "}");
  Weight("lb", R"({"value":154.3,"unit":"lb","code":"[lb_av]")" + ucum + "}");
  Weight("kg_nosys", R"({"value":70,"code":"kg"})");
  Weight("kg_other", R"({"value":70,"code":"kg","system":"http://other.example/units"})");
  EXPECT_EQ(Ids("Observation", "value-quantity=113.95967623544097|http://unitsofmeasure.org|kg"),
            V({"kg17"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=113959.67623544097||g"), V({"kg17"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=ne113.95967623544097||kg&value-quantity=gt100||kg"),
            V());
  // 70 kg and 70000 g; a system other than UCUM is never converted, but "||kg" names any system.
  EXPECT_EQ(Ids("Observation", "value-quantity=70|http://unitsofmeasure.org|kg"),
            V({"g70000", "kg70", "kg_nosys", "lb"}));  // 154.3 [lb_av] = 69.989 kg
  EXPECT_EQ(Ids("Observation", "value-quantity=70000||g"), V({"g70000", "kg70", "kg_nosys"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=70||kg"),
            V({"g70000", "kg70", "kg_nosys", "kg_other", "lb"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=70|http://other.example/units|kg"), V({"kg_other"}));
  // 154.3 [lb_av] is 69989.302691 g exactly.
  EXPECT_EQ(Ids("Observation", "value-quantity=69989.302691||g"), V({"lb"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=69989.30269||g"), V({"lb"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=69989.30268||g"), V());
  EXPECT_EQ(Ids("Observation", "value-quantity=ap70|http://unitsofmeasure.org|kg&value-quantity=lt70|http://unitsofmeasure.org|kg"),
            V({"lb"}));
}

// Any unit the UCUM parser reads compares with the commensurable ones, in base units: volumes,
// concentrations, rates; amounts of substance never with masses, temperatures with an offset
// never by a factor.
TEST_P(SearchValuesTest, QuantityUcumUnitsCompareInBaseUnits) {
  const std::string ucum = R"(,"system":"http://unitsofmeasure.org")";
  Weight("ml1500", R"({"value":1500,"code":"mL")" + ucum + "}");
  Weight("l08", R"({"value":0.8,"code":"L"})");
  Weight("umol3000", R"({"value":3000,"code":"umol/L")" + ucum + "}");
  Weight("mmol7", R"({"value":7,"code":"mmol/L")" + ucum + "}");
  Weight("mgdl96", R"({"value":96,"code":"mg/dL")" + ucum + "}");
  Weight("hr", R"({"value":4320,"code":"/h")" + ucum + "}");
  Weight("cel", R"({"value":37,"code":"Cel")" + ucum + "}");
  Weight("kpa", R"({"value":16,"code":"kPa")" + ucum + "}");
  Weight("cells", R"({"value":5,"code":"10*3/uL")" + ucum + "}");
  EXPECT_EQ(Ids("Observation", "value-quantity=ge1|http://unitsofmeasure.org|L"), V({"ml1500"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=lt1||L"), V({"l08"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=1.5|http://unitsofmeasure.org|L"), V({"ml1500"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=ap1.4||L"), V({"ml1500"}));  // [1.26, 1.54]
  EXPECT_EQ(Ids("Observation", "value-quantity=800|http://unitsofmeasure.org|mL"), V({"l08"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=15|http://unitsofmeasure.org|dL"), V({"ml1500"}));
  // 3000 umol/L is 3 mmol/L; mg/dL (a mass) is never compared with either.
  EXPECT_EQ(Ids("Observation", "value-quantity=lt5|http://unitsofmeasure.org|mmol/L"),
            V({"umol3000"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=gt0|http://unitsofmeasure.org|mmol/L"),
            V({"mmol7", "umol3000"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=gt0|http://unitsofmeasure.org|mg/dL"),
            V({"mgdl96"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=0.96||g/L"), V({"mgdl96"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=ne3||mmol/L&value-quantity=gt0||mol/L"),
            V({"mmol7"}));
  // Rates whose factors are not decimals: 4320 /h is exactly 72 /min, and 1.2 /s.
  EXPECT_EQ(Ids("Observation", "value-quantity=72||/min"), V({"hr"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=ge72|http://unitsofmeasure.org|/min"), V({"hr"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=gt72|http://unitsofmeasure.org|/min"), V());
  EXPECT_EQ(Ids("Observation", "value-quantity=le1.2||Hz"), V({"hr"}));
  // Pressure: 16 kPa = 120.0 mm[Hg]; counts per volume with powers of ten.
  EXPECT_EQ(Ids("Observation", "value-quantity=120.0||mm[Hg]"), V({"kpa"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=5e9|http://unitsofmeasure.org|/L"), V({"cells"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=5||10*9/L"), V({"cells"}));
  // Celsius is not converted (an offset, not a factor): found by its own code only.
  EXPECT_EQ(Ids("Observation", "value-quantity=37||Cel"), V({"cel"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=310.15||K"), V());
  EXPECT_EQ(Ids("Observation", "value-quantity=37||K"), V());
}

// R4 composite search on DocumentReference relationship, relation$relatesto (the code, then
// the target), both in one relatesTo element.
TEST_P(SearchValuesTest, DocumentReferenceRelationship) {
  Put(R"({"resourceType":"DocumentReference","id":"d1","status":"current",
    "content":[{"attachment":{"url":"http://x.example/a.pdf"}}],
    "relatesTo":[{"code":"replaces","target":{"reference":"DocumentReference/d0"}},
                 {"code":"appends","target":{"reference":"http://other.example/fhir/DocumentReference/x"}}]})");
  Put(R"({"resourceType":"DocumentReference","id":"d2","status":"current",
    "content":[{"attachment":{"url":"http://x.example/b.pdf"}}],
    "relatesTo":[{"code":"transforms","target":{"reference":"DocumentReference/d0"}}]})");
  EXPECT_EQ(Ids("DocumentReference", "relationship=replaces$DocumentReference/d0"), V({"d1"}));
  EXPECT_EQ(Ids("DocumentReference", "relationship=replaces$d0"), V({"d1"}));
  EXPECT_EQ(Ids("DocumentReference", "relationship=transforms$DocumentReference/d0"), V({"d2"}));
  EXPECT_EQ(Ids("DocumentReference", "relationship=replaces$Patient/d0"), V());
  // Code and target from different elements do not match.
  EXPECT_EQ(Ids("DocumentReference", "relationship=appends$DocumentReference/d0"), V());
  EXPECT_EQ(Ids("DocumentReference",
                "relationship=appends$http://other.example/fhir/DocumentReference/x"),
            V({"d1"}));
  EXPECT_EQ(Ids("DocumentReference",
                "relationship=replaces$http://other.example/fhir/DocumentReference/x"),
            V());
  EXPECT_EQ(Ids("DocumentReference",
                "relationship=replaces$DocumentReference/d0,transforms$DocumentReference/d0"),
            V({"d1", "d2"}));
}

// R4's MolecularSequence coordinates, token$number$number: the chromosome (or reference
// sequence id) with a variant's start and end, or with the reference window, each number
// compared with its prefix, start and end within ONE variant.
TEST_P(SearchValuesTest, MolecularSequenceCoordinates) {
  Put(R"({"resourceType":"MolecularSequence","id":"m1","coordinateSystem":0,
    "referenceSeq":{"chromosome":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/chromosome-human","code":"1"}]},
      "genomeBuild":"GRCh38","windowStart":5,"windowEnd":500},
    "variant":[{"start":10,"end":20},{"start":150,"end":300}]})");
  Put(R"({"resourceType":"MolecularSequence","id":"m2","coordinateSystem":1,
    "referenceSeq":{"referenceSeqId":{"coding":[{"system":"http://www.ncbi.nlm.nih.gov/nuccore","code":"NC_000001.11"}]},
      "windowStart":100,"windowEnd":200},
    "variant":[{"start":120,"end":180}]})");
  const std::string_view t = "MolecularSequence";
  // [10,20] has no start above 100, [150,300] no end below 200: no single variant matches.
  EXPECT_EQ(Ids(t, "chromosome-variant-coordinate=1$gt100$lt200"), V());
  EXPECT_EQ(Ids(t, "chromosome-variant-coordinate=1$gt100$lt400"), V({"m1"}));
  EXPECT_EQ(Ids(t, "chromosome-variant-coordinate=1$ge10$le20"), V({"m1"}));
  EXPECT_EQ(Ids(t, "chromosome-variant-coordinate=1$10$20"), V({"m1"}));
  EXPECT_EQ(Ids(t, "chromosome-variant-coordinate=1$gt10$le20"), V());
  EXPECT_EQ(Ids(t, "chromosome-variant-coordinate=2$ge10$le20"), V());
  EXPECT_EQ(Ids(t,
                "chromosome-variant-coordinate=http://terminology.hl7.org/CodeSystem/"
                "chromosome-human|1$150$300"),
            V({"m1"}));
  EXPECT_EQ(Ids(t, "chromosome-variant-coordinate=1$gt100$lt200,1$lt100$lt100"), V({"m1"}));
  EXPECT_EQ(Ids(t, "chromosome-window-coordinate=1$5$500"), V({"m1"}));
  EXPECT_EQ(Ids(t, "chromosome-window-coordinate=1$gt5$500"), V());
  EXPECT_EQ(Ids(t, "referenceseqid-variant-coordinate=NC_000001.11$gt100$lt200"), V({"m2"}));
  EXPECT_EQ(Ids(t, "referenceseqid-variant-coordinate=NC_000001.11$gt120$lt200"), V());
  EXPECT_EQ(Ids(t, "referenceseqid-window-coordinate=NC_000001.11$ge100$le200"), V({"m2"}));
  EXPECT_EQ(Ids(t, "referenceseqid-window-coordinate=NC_000001.11$ge100$lt200"), V());
  EXPECT_EQ(Ids(t, "chromosome-variant-coordinate:missing=false"), V({"m1"}));
  // Beside a clause that drives the search (_id), the composite is tested on the candidate's
  // own rows (SQLite probes them): the pairing holds there too.
  EXPECT_EQ(Ids(t, "_id=m1&chromosome-variant-coordinate=1$gt100$lt200"), V());
  EXPECT_EQ(Ids(t, "_id=m1&chromosome-variant-coordinate=1$gt100$lt400"), V({"m1"}));
  EXPECT_EQ(Ids(t, "_id=m1,m2&chromosome-variant-coordinate=1$ge10$le20"), V({"m1"}));
}

// R4 search, quantity: "5.4||mg ... the unit - either the code (code) or the stated human unit
// (unit)"; with a system, system and code must match.
TEST_P(SearchValuesTest, QuantityHumanUnit) {
  Put(R"({"resourceType":"Observation","id":"bp","status":"final","code":{"text":"bp"},
    "component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},
      "valueQuantity":{"value":135.5,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})");
  Weight("glu", R"({"value":5.35,"unit":"mmol/L"})");
  Weight("other", R"({"value":70000,"unit":"g","system":"http://other.example/units","code":"gram"})");
  EXPECT_EQ(Ids("Observation", "component-value-quantity=135.5||mmHg"), V({"bp"}));
  EXPECT_EQ(Ids("Observation", "component-value-quantity=135.5||mm[Hg]"), V({"bp"}));
  EXPECT_EQ(Ids("Observation", "component-value-quantity=135.5|http://unitsofmeasure.org|mm[Hg]"), V({"bp"}));
  EXPECT_EQ(Ids("Observation", "component-value-quantity=135.5|http://unitsofmeasure.org|mmHg"), V());
  EXPECT_EQ(Ids("Observation", "component-value-quantity=ne135.5||mmHg"), V());
  EXPECT_EQ(Ids("Observation", "component-value-quantity=18.07||kPa"), V({"bp"}));  // 135.5 mm[Hg]
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity=http://loinc.org|8480-6$135.5||mmHg"), V({"bp"}));
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity=http://loinc.org|8480-6$135.5|http://unitsofmeasure.org|mmHg"), V());
  // A unit without a code: by the unit only, never with a system.
  EXPECT_EQ(Ids("Observation", "value-quantity=5.35||mmol/L"), V({"glu"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=5.35|http://unitsofmeasure.org|mmol/L"), V());
  // A human unit that reads like a UCUM code is not converted: system|code is not widened.
  EXPECT_EQ(Ids("Observation", "value-quantity=70000||g"), V({"other"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=70|http://unitsofmeasure.org|kg"), V());
  EXPECT_EQ(Ids("Observation", "value-quantity=70000|http://unitsofmeasure.org|g"), V());
  EXPECT_EQ(Ids("Observation", "value-quantity=70000|http://other.example/units|gram"), V({"other"}));
  EXPECT_EQ(Ids("Observation", "value-quantity=70000|http://other.example/units|"), V({"other"}));
}

// R4 search, token: "[system]|: any element where the value of [system] matches the system
// property of the Identifier or Coding".
TEST_P(SearchValuesTest, CodingWithSystemAndNoCode) {
  Put(R"({"resourceType":"Observation","id":"nocode","status":"final",
    "code":{"coding":[{"system":"http://loinc.org","display":"no code here"}]}})");
  Put(R"({"resourceType":"Observation","id":"coded","status":"final",
    "code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]}})");
  Put(R"({"resourceType":"Observation","id":"text","status":"final","code":{"text":"x"}})");
  EXPECT_EQ(Ids("Observation", "code=http://loinc.org|"), V({"coded", "nocode"}));
  EXPECT_EQ(Ids("Observation", "code:missing=true"), V({"text"}));
  EXPECT_EQ(Ids("Observation", "code:missing=false"), V({"coded", "nocode"}));
  EXPECT_EQ(Ids("Observation", "code=http://loinc.org|8480-6"), V({"coded"}));
  EXPECT_EQ(Ids("Observation", "code:not=8480-6"), V({"nocode", "text"}));
  // No code, nothing to sort by: last both ways, like no value at all.
  EXPECT_EQ(Ids("Observation", "_sort=code", true), V({"coded", "nocode", "text"}));
  EXPECT_EQ(Ids("Observation", "_sort=-code", true), V({"coded", "nocode", "text"}));
}

// R4 References: "Patient/p1" and "p1" name resources of this server; an absolute URL names the
// resource at that URL, which is this server's only under its base URL.
TEST_P(SearchValuesTest, AbsoluteReferencesAreNotLocal) {
  Put(R"({"resourceType":"Patient","id":"p1","name":[{"family":"Wang"}]})");
  Put(R"({"resourceType":"Observation","id":"local","status":"final","code":{"text":"x"},
    "subject":{"reference":"Patient/p1"}})");
  Put(R"({"resourceType":"Observation","id":"foreign","status":"final","code":{"text":"x"},
    "subject":{"reference":"http://other.example/fhir/Patient/p1"}})");
  Put(R"({"resourceType":"Procedure","id":"pr","status":"completed","subject":{"reference":"Patient/p1"},
    "instantiatesCanonical":["http://jiceng.example/fhir/PlanDefinition/htn|1.0"]})");
  EXPECT_EQ(Ids("Observation", "subject=Patient/p1"), V({"local"}));
  EXPECT_EQ(Ids("Observation", "subject=p1"), V({"local"}));
  EXPECT_EQ(Ids("Observation", "subject:Patient=p1"), V({"local"}));
  EXPECT_EQ(Ids("Observation", "patient=p1"), V({"local"}));
  EXPECT_EQ(Ids("Observation", "subject:Patient.name=wang"), V({"local"}));
  EXPECT_EQ(Ids("Observation", "subject=http://other.example/fhir/Patient/p1"), V({"foreign"}));
  EXPECT_EQ(Ids("Patient", "_has:Observation:subject:status=final"), V({"p1"}));
  EXPECT_EQ(Ids("Patient", "_has:Observation:subject:_id=foreign"), V());
  EXPECT_EQ(Ids("Procedure", "instantiates-canonical=htn"), V());
  EXPECT_EQ(Ids("Procedure", "instantiates-canonical=PlanDefinition/htn"), V());
  EXPECT_EQ(Ids("Procedure", "instantiates-canonical=http://jiceng.example/fhir/PlanDefinition/htn"),
            V({"pr"}));
}

// Sets the server's base URL for the scope (ExtractIndexRows and ParseSearch read it).
class ScopedServerBase {
 public:
  explicit ScopedServerBase(std::string_view base) { SetServerBaseUrl(base); }
  ~ScopedServerBase() { SetServerBaseUrl(""); }
};

TEST_P(SearchValuesTest, AbsoluteReferencesUnderTheBaseAreLocal) {
  ScopedServerBase base("https://jiceng.example/fhir");
  Put(R"({"resourceType":"Patient","id":"p1","name":[{"family":"Wang"}]})");
  Put(R"({"resourceType":"Observation","id":"relative","status":"final","code":{"text":"x"},
    "subject":{"reference":"Patient/p1"}})");
  Put(R"({"resourceType":"Observation","id":"absolute","status":"final","code":{"text":"x"},
    "subject":{"reference":"https://jiceng.example/fhir/Patient/p1"}})");
  Put(R"({"resourceType":"Observation","id":"foreign","status":"final","code":{"text":"x"},
    "subject":{"reference":"http://other.example/fhir/Patient/p1"}})");
  Put(R"({"resourceType":"Procedure","id":"pr","status":"completed","subject":{"reference":"Patient/p1"},
    "instantiatesCanonical":["https://jiceng.example/fhir/PlanDefinition/htn"]})");
  EXPECT_EQ(Ids("Observation", "subject=Patient/p1"), V({"absolute", "relative"}));
  EXPECT_EQ(Ids("Observation", "subject=p1"), V({"absolute", "relative"}));
  EXPECT_EQ(Ids("Observation", "subject.name=wang"), V({"absolute", "relative"}));
  EXPECT_EQ(Ids("Observation", "subject=https://jiceng.example/fhir/Patient/p1"),
            V({"absolute", "relative"}));
  EXPECT_EQ(Ids("Observation", "subject=http://other.example/fhir/Patient/p1"), V({"foreign"}));
  // A canonical is an identity, not a location: by its URL only, under the base too.
  EXPECT_EQ(Ids("Procedure", "instantiates-canonical=htn"), V());
  EXPECT_EQ(Ids("Procedure", "instantiates-canonical=https://jiceng.example/fhir/PlanDefinition/htn"),
            V({"pr"}));
}

JC_SEARCH_ON_EVERY_BACKEND(SearchValuesTest);

}  // namespace
}  // namespace jiceng::search
