#include "fhir/validator.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

namespace jiceng::fhir {
namespace {

std::vector<Issue> Check(std::string_view text, bool strict = true) {
  boost::json::value v = boost::json::parse(text);
  return Validate(v.as_object(), ValidationOptions{strict});
}

std::string Describe(const std::vector<Issue>& issues) {
  std::string s;
  for (const auto& i : issues) s += i.severity + " " + i.code + " @" + i.expression + ": " + i.diagnostics + "\n";
  return s;
}

// Expects exactly one issue, with this severity, code and location.
void ExpectOne(std::string_view text, std::string_view code, std::string_view location, bool strict = true,
               std::string_view severity = "error") {
  auto issues = Check(text, strict);
  ASSERT_EQ(issues.size(), 1u) << text << "\n" << Describe(issues);
  EXPECT_EQ(issues[0].severity, severity) << Describe(issues);
  EXPECT_EQ(issues[0].code, code) << Describe(issues);
  EXPECT_EQ(issues[0].expression, location) << Describe(issues);
}

void ExpectValid(std::string_view text, bool strict = true) {
  auto issues = Check(text, strict);
  EXPECT_TRUE(issues.empty()) << text << "\n" << Describe(issues);
}

TEST(ValidatorTest, ValidResources) {
  ExpectValid(R"({"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1970-02-28",
    "name":[{"family":"Li","given":["Wei","Ming"]}],"active":true,
    "contact":[{"relationship":[{"text":"mother"}],"name":{"text":"Zhang"}}],
    "extension":[{"url":"http://example.org/x","valueDecimal":1.5}],
    "meta":{"lastUpdated":"2024-01-01T10:00:00.123+08:00"},
    "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}})");
  ExpectValid(R"({"resourceType":"Observation","status":"final","code":{"text":"bp"},
    "valueQuantity":{"value":120,"unit":"mm[Hg]"},"effectiveDateTime":"2024-03-01T08:00:00Z",
    "component":[{"code":{"text":"s"},"valueInteger":3}]})");
  ExpectValid(R"({"resourceType":"Questionnaire","status":"draft",
    "item":[{"linkId":"1","type":"group","item":[{"linkId":"1.1","type":"string","item":[{"linkId":"1.1.1","type":"display"}]}]}]})");
}

TEST(ValidatorTest, ResourceType) {
  ExpectOne(R"({"id":"x"})", "invalid", "");
  ExpectOne(R"({"resourceType":"Patientt"})", "invalid", "");
  ExpectOne(R"({"resourceType":"DomainResource"})", "invalid", "");
  ExpectOne(R"({"resourceType":7})", "invalid", "");
}

TEST(ValidatorTest, UnknownElementsStrictAndLenient) {
  const char* text = R"({"resourceType":"Patient","name":[{"family":"Li","nickname":"x"}],"animal":{}})";
  auto strict = Check(text, true);
  ASSERT_EQ(strict.size(), 2u) << Describe(strict);
  EXPECT_EQ(strict[0].expression, "Patient.name[0].nickname");
  EXPECT_EQ(strict[0].severity, "error");
  EXPECT_EQ(strict[0].code, "structure");
  EXPECT_EQ(strict[1].expression, "Patient.animal");
  auto lenient = Check(text, false);
  ASSERT_EQ(lenient.size(), 2u) << Describe(lenient);
  EXPECT_EQ(lenient[0].severity, "warning");
  EXPECT_EQ(lenient[1].severity, "warning");
  EXPECT_EQ(lenient[1].expression, "Patient.animal");
  EXPECT_TRUE(ValidateResource(boost::json::parse(text).as_object(), {false}).ok());
  Status st = ValidateResource(boost::json::parse(text).as_object(), {true});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(st.error().issues.size(), 2u);
  // resourceType is only a property of resources, not of data types.
  ExpectOne(R"({"resourceType":"Patient","name":[{"resourceType":"HumanName"}]})", "structure",
            "Patient.name[0].resourceType");
}

TEST(ValidatorTest, ChoiceTypes) {
  ExpectOne(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a","valueBoolean":true})",
            "structure", "Observation.valueBoolean");
  ExpectOne(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueUri":"a"})", "structure",
            "Observation.valueUri");
  ExpectOne(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"value":"a"})", "structure",
            "Observation.value");
  ExpectValid(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a","_valueString":{"id":"v"}})");
}

TEST(ValidatorTest, JsonKindsAndArrays) {
  ExpectOne(R"({"resourceType":"Patient","name":{"family":"Li"}})", "structure", "Patient.name");
  ExpectOne(R"({"resourceType":"Patient","birthDate":["2000-01-01"]})", "structure", "Patient.birthDate");
  ExpectOne(R"({"resourceType":"Patient","name":[]})", "structure", "Patient.name");
  ExpectOne(R"({"resourceType":"Patient","maritalStatus":{}})", "structure", "Patient.maritalStatus");
  ExpectOne(R"({"resourceType":"Patient","maritalStatus":"M"})", "structure", "Patient.maritalStatus");
  ExpectOne(R"({"resourceType":"Patient","name":[{"given":["a",""]}]})", "value", "Patient.name[0].given[1]");
  ExpectOne(R"({"resourceType":"Patient","name":[{"family":""}]})", "value", "Patient.name[0].family");
  ExpectOne(R"({"resourceType":"Patient","active":"true"})", "value", "Patient.active");
  ExpectOne(R"({"resourceType":"Patient","name":[{"family":"a"},{"given":[1]}]})", "value",
            "Patient.name[1].given[0]");
}

TEST(ValidatorTest, Cardinality) {
  ExpectOne(R"({"resourceType":"Observation","code":{"text":"x"}})", "required", "Observation.status");
  ExpectOne(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"component":[{"valueString":"a"}]})",
            "required", "Observation.component[0].code");
  ExpectOne(R"({"resourceType":"Patient","extension":[{"valueString":"a"}]})", "required", "Patient.extension[0].url");
  // A required primitive given only through its extension is present.
  ExpectValid(R"({"resourceType":"Observation","_status":{"extension":[{"url":"http://x","valueCode":"asked"}]},"code":{"text":"x"}})");
  // A required choice element is present through any variant, and named with [x] when absent.
  ExpectValid(R"({"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/1"},
    "medicationReference":{"reference":"Medication/1"}})");
  ExpectOne(R"({"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/1"}})",
            "required", "MedicationRequest.medication[x]");
  // Data types are not resources.
  ExpectOne(R"({"resourceType":"Extension","url":"x"})", "invalid", "");
}

TEST(ValidatorTest, PrimitiveFormats) {
  struct Case {
    const char* json;
    const char* location;
  } bad[] = {
      {R"({"resourceType":"Patient","id":"a_b"})", "Patient.id"},
      {R"({"resourceType":"Patient","birthDate":"1970-02-30"})", "Patient.birthDate"},
      {R"({"resourceType":"Patient","birthDate":"1970-2-3"})", "Patient.birthDate"},
      {R"({"resourceType":"Patient","deceasedDateTime":"2020-01-01T10:00"})", "Patient.deceasedDateTime"},
      {R"({"resourceType":"Patient","deceasedDateTime":"2020-01-01T10:00:00"})", "Patient.deceasedDateTime"},
      {R"({"resourceType":"Patient","meta":{"lastUpdated":"2020-01-01"}})", "Patient.meta.lastUpdated"},
      {R"({"resourceType":"Patient","multipleBirthInteger":1.5})", "Patient.multipleBirthInteger"},
      {R"({"resourceType":"Patient","multipleBirthInteger":"2"})", "Patient.multipleBirthInteger"},
      {R"({"resourceType":"Patient","multipleBirthInteger":3000000000})", "Patient.multipleBirthInteger"},
      {R"({"resourceType":"Patient","gender":" male"})", "Patient.gender"},
      {R"({"resourceType":"Patient","implicitRules":"http://a b"})", "Patient.implicitRules"},
      {R"({"resourceType":"Patient","photo":[{"data":"abc"}]})", "Patient.photo[0].data"},
      {R"({"resourceType":"Patient","photo":[{"size":-1}]})", "Patient.photo[0].size"},
      {R"({"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.x"}]})", ""},  // uri, not oid: valid
      {R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueTime":"25:00:00"})", "Observation.valueTime"},
      {R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":"1"}})", "Observation.valueQuantity.value"},
      {R"({"resourceType":"ImagingStudy","status":"available","subject":{"reference":"Patient/1"},"identifier":[{"value":"x"}],"series":[{"uid":"1.2","modality":{"code":"CT"},"instance":[{"uid":"1.2.3","sopClass":{"code":"x"},"number":-1}]}]})",
       "ImagingStudy.series[0].instance[0].number"},
      {R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueBoolean":1})", "Observation.valueBoolean"},
  };
  for (const auto& c : bad) {
    if (std::string_view(c.location).empty()) {
      ExpectValid(c.json);
    } else {
      ExpectOne(c.json, "value", c.location);
    }
  }
  ExpectValid(R"({"resourceType":"Patient","id":"A-1.b","birthDate":"2000","deceasedDateTime":"2000-02-29T23:59:60.5-14:00",
    "photo":[{"data":"YWJj ZA==","size":0,"url":"urn:uuid:0b8c9a4e-1f3d-4c2b-9e7a-6d5c4b3a2f10"}],
    "multipleBirthInteger":-2,"meta":{"source":"urn:oid:2.16.840.1.113883"}})");
}

TEST(ValidatorTest, PrimitiveExtensions) {
  ExpectValid(R"({"resourceType":"Patient","birthDate":"1970","_birthDate":{"extension":[{"url":"http://x","valueDateTime":"1970-01-01T08:00:00+08:00"}]}})");
  ExpectValid(R"({"resourceType":"Patient","_birthDate":{"id":"b"}})");
  ExpectValid(R"({"resourceType":"Patient","name":[{"given":["a",null,"c"],"_given":[null,{"id":"g"},null]}]})");
  ExpectOne(R"({"resourceType":"Patient","name":[{"given":["a",null]}]})", "structure", "Patient.name[0].given[1]");
  ExpectOne(R"({"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null]}]})", "structure",
            "Patient.name[0]._given");
  ExpectOne(R"({"resourceType":"Patient","_birthDate":["x"]})", "structure", "Patient._birthDate");
  ExpectOne(R"({"resourceType":"Patient","_birthDate":{"value":"1970"}})", "structure", "Patient._birthDate.value");
  ExpectOne(R"({"resourceType":"Patient","_birthDate":{}})", "structure", "Patient._birthDate");
  ExpectOne(R"({"resourceType":"Patient","_name":{"id":"x"}})", "structure", "Patient._name");
  ExpectOne(R"({"resourceType":"Patient","name":[{"_given":[{"extension":[{"valueString":"x"}]}]}]})", "required",
            "Patient.name[0]._given[0].extension[0].url");
}

TEST(ValidatorTest, NestedResources) {
  ExpectValid(R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:0b8c9a4e-1f3d-4c2b-9e7a-6d5c4b3a2f10","resource":{"resourceType":"Patient","birthDate":"2000"},
     "request":{"method":"POST","url":"Patient"}}]})");
  ExpectOne(R"({"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient"}},
    {"resource":{"resourceType":"Patient","birthDate":"x"}}]})", "value", "Bundle.entry[1].resource.birthDate");
  ExpectOne(R"({"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Nope"}}]})",
            "invalid", "Bundle.entry[0].resource");
  ExpectOne(R"({"resourceType":"Bundle","type":"collection","entry":[{"resource":{"birthDate":"2000"}}]})",
            "invalid", "Bundle.entry[0].resource");
  ExpectOne(R"({"resourceType":"Patient","contained":[{"resourceType":"Organization","nme":"x"}]})", "structure",
            "Patient.contained[0].nme");
  ExpectOne(R"({"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Observation","code":{"text":"x"}}}]})",
            "required", "Parameters.parameter[0].resource.status");
  // Nested Bundle inside a Bundle.
  ExpectOne(R"({"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Bundle","type":"collection",
    "entry":[{"resource":{"resourceType":"Patient","gender":"f"}}]}}]})", "code-invalid",
            "Bundle.entry[0].resource.entry[0].resource.gender");
}

TEST(ValidatorTest, RequiredBindings) {
  ExpectOne(R"({"resourceType":"Patient","gender":"M"})", "code-invalid", "Patient.gender");
  ExpectOne(R"({"resourceType":"Observation","status":"done","code":{"text":"x"}})", "code-invalid", "Observation.status");
  ExpectOne(R"({"resourceType":"Bundle","type":"batchy"})", "code-invalid", "Bundle.type");
  ExpectOne(R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GOT","url":"x"}}]})", "code-invalid",
            "Bundle.entry[0].request.method");
  // Extensible / example bindings are not checked.
  ExpectValid(R"({"resourceType":"Patient","maritalStatus":{"coding":[{"system":"http://x","code":"zz"}]}})");
  ExpectValid(R"({"resourceType":"Patient","name":[{"use":"official"}],"gender":"unknown"})");
}

TEST(ValidatorTest, NarrativeRules) {
  // Narrative safety is checked in lenient mode too: it is not a question of legacy data.
  for (bool strict : {true, false}) {
    ExpectOne(R"({"resourceType":"Patient","text":{"status":"generated",
      "div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>x</p><script>alert(1)</script></div>"}})",
              "value", "Patient.text.div", strict);
    ExpectOne(R"({"resourceType":"Patient","text":{"status":"generated",
      "div":"<div xmlns=\"http://www.w3.org/1999/xhtml\" onclick=\"alert(1)\">x</div>"}})",
              "value", "Patient.text.div", strict);
  }
  auto issues = Check(R"({"resourceType":"Patient","text":{"status":"generated",
    "div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"javascript:alert(1)\">x</a></div>"}})");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].diagnostics,
            "Invalid xhtml: attribute 'href': URL scheme 'javascript:' is not allowed (only http, "
            "https, ftp, mailto, "
            "tel, urn, relative references and data:image in img src) at div/a (line 1)");
  ExpectOne(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
    "text":{"status":"generated","div":"<div>no namespace</div>"}})",
            "value", "Observation.text.div");
  ExpectOne(
      R"({"resourceType":"Patient","text":{"status":"empty","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"> </div>"}})",
      "value", "Patient.text.div");
  // Nested resources are checked where they sit.
  ExpectOne(
      R"({"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient",
    "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><iframe src=\"http://x\"/></div>"}}}]})",
      "value", "Bundle.entry[0].resource.text.div");
  ExpectValid(R"({"resourceType":"Patient","text":{"status":"generated",
    "div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>患者 <b>李</b></p><img src=\"#photo\"/></div>"}})");
}

TEST(ValidatorTest, ExtensionsAcceptAnyValueType) {
  ExpectValid(R"({"resourceType":"Patient","extension":[{"url":"http://x","valueAddress":{"city":"Kunming"}},
    {"url":"http://y","extension":[{"url":"a","valueCoding":{"code":"c"}}]},{"url":"http://z","valueReference":{"reference":"Patient/1"}}],
    "modifierExtension":[{"url":"http://m","valueBoolean":false}]})");
  ExpectOne(R"({"resourceType":"Patient","extension":[{"url":"http://x","valueFoo":1}]})", "structure",
            "Patient.extension[0].valueFoo");
}

}  // namespace
}  // namespace jiceng::fhir
