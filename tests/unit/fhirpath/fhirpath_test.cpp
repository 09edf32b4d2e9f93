// Engine tests shaped like search indexing: R4 search parameter expressions over resources,
// typed by the R4 definitions, plus the untyped fallback and the API's guarantees.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "base/json.h"
#include "fhir/definitions.h"
#include "fhir/fhirpath/definitions_model.h"
#include "fhir/fhirpath/fhirpath.h"

namespace jiceng::fhirpath {
namespace {

json::value Json(std::string_view text) {
  auto v = ParseJson(text);
  EXPECT_TRUE(v.ok()) << text;
  return v.ok() ? std::move(v).value() : json::value();
}

Collection Eval(std::string_view expr, const json::value& resource, EvalOptions opts = {}) {
  if (!opts.model) opts.model = &DefinitionsModel();
  auto e = Compile(expr);
  EXPECT_TRUE(e.ok()) << expr << ": " << (e.ok() ? "" : e.error().message);
  if (!e.ok()) return {};
  auto r = Evaluate(*e, resource, opts);
  EXPECT_TRUE(r.ok()) << expr << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Collection{};
}

const json::value kObservation = Json(R"({
  "resourceType": "Observation", "id": "o1", "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
  "subject": {"reference": "Patient/123"},
  "effectiveDateTime": "2024-03-05T10:00:00+08:00",
  "valueQuantity": {"value": 72, "unit": "beats/min", "system": "http://unitsofmeasure.org",
                    "code": "/min"},
  "component": [
    {"code": {"text": "sys"}, "valueQuantity": {"value": 120, "code": "mm[Hg]"}},
    {"code": {"text": "note"}, "valueString": "ok"},
    {"code": {"text": "dia"}, "valueQuantity": {"value": 80, "code": "mm[Hg]"}}
  ]
})");

TEST(FhirPath, PathReturnsTypedNodesPointingIntoTheResource) {
  json::value patient = Json(R"({"resourceType": "Patient", "name": [{"family": "Li"},
      {"family": "Wang", "given": ["Wei"]}], "birthDate": "1980-02-03"})");
  Collection names = Eval("Patient.name", patient);
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0].FhirType(), "HumanName");
  EXPECT_EQ(names[0].json(), &patient.at("name").as_array()[0]);  // no copy
  Collection birth = Eval("Patient.birthDate", patient);
  ASSERT_EQ(birth.size(), 1u);
  EXPECT_EQ(birth[0].FhirType(), "date");
  EXPECT_EQ(birth[0].ToSystem().kind(), Item::Kind::kDate);
  EXPECT_EQ(Eval("Patient.birthDate is date", patient)[0].boolean(), true);
  EXPECT_EQ(Eval("Patient.birthDate < @2000", patient)[0].boolean(), true);
}

TEST(FhirPath, ChoiceTypesAndTypeOperators) {
  Collection q = Eval("(Observation.value as Quantity)", kObservation);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].FhirType(), "Quantity");
  EXPECT_EQ(q[0].json(), &kObservation.at("valueQuantity"));
  EXPECT_EQ(Eval("Observation.value as Quantity", kObservation).size(), 1u);
  EXPECT_EQ(Eval("Observation.value.ofType(Quantity)", kObservation).size(), 1u);
  EXPECT_TRUE(Eval("Observation.value.as(Period)", kObservation).empty());
  Collection comps = Eval("Observation.component.value.ofType(Quantity)", kObservation);
  ASSERT_EQ(comps.size(), 2u);
  EXPECT_EQ(comps[1].ToSystem().quantity().value.value, 80);
  EXPECT_EQ(Eval("Observation.component.value.ofType(string)", kObservation)[0].ToText(), "ok");
  Collection eff = Eval("Observation.effective", kObservation);
  ASSERT_EQ(eff.size(), 1u);
  EXPECT_EQ(eff[0].FhirType(), "dateTime");
  EXPECT_EQ(Eval("Observation.value > 60 '/min'", kObservation)[0].boolean(), true);
}

TEST(FhirPath, ChoiceElementByJsonNameIsAnError) {
  auto e = Compile("Observation.valueQuantity");
  ASSERT_TRUE(e.ok());
  EvalOptions opts;
  opts.model = &DefinitionsModel();
  EXPECT_FALSE(Evaluate(*e, kObservation, opts).ok());
}

TEST(FhirPath, UnionOfAsForConditionOnset) {
  json::value age = Json(R"({"resourceType": "Condition",
      "onsetAge": {"value": 52, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}})");
  json::value range = Json(R"({"resourceType": "Condition",
      "onsetRange": {"low": {"value": 50, "code": "a"}, "high": {"value": 55, "code": "a"}}})");
  json::value text = Json(R"({"resourceType": "Condition", "onsetString": "childhood"})");
  const char* expr = "Condition.onset.as(Age) | Condition.onset.as(Range)";
  Collection a = Eval(expr, age);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].FhirType(), "Age");
  Collection r = Eval(expr, range);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].FhirType(), "Range");
  EXPECT_TRUE(Eval(expr, text).empty());
}

TEST(FhirPath, BundleEntryAndResolve) {
  json::value bundle = Json(R"({"resourceType": "Bundle", "type": "transaction", "entry": [
      {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
       "resource": {"resourceType": "Patient", "id": "p1"}},
      {"fullUrl": "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059",
       "resource": {"resourceType": "Observation", "status": "final", "code": {},
         "subject": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}}},
      {"resource": {"resourceType": "Observation", "status": "final", "code": {},
         "subject": {"reference": "Group/g1"}}}]})");
  Collection first = Eval("Bundle.entry[0].resource", bundle);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].FhirType(), "Patient");
  // Evaluate an entry's resource with the Bundle as %rootResource, as the indexer does for
  // transaction entries.
  auto expr = Compile("Observation.subject.where(resolve() is Patient)");
  ASSERT_TRUE(expr.ok());
  EvalOptions opts;
  opts.model = &DefinitionsModel();
  opts.root_resource = &bundle;
  const json::value& obs = bundle.at("entry").as_array()[1].at("resource");
  auto r = Evaluate(*expr, obs, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 1u);
  const json::value& obs2 = bundle.at("entry").as_array()[2].at("resource");
  r = Evaluate(*expr, obs2, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  // An unresolvable relative reference still answers type tests (typed stub, no content).
  EXPECT_EQ(Eval("Observation.subject.where(resolve() is Patient)", kObservation).size(), 1u);
  EXPECT_TRUE(Eval("Observation.subject.resolve().id", kObservation).empty());
}

TEST(FhirPath, ResolveContainedAndExternalHook) {
  json::value mr = Json(R"({"resourceType": "MedicationRequest", "status": "active",
      "intent": "order", "subject": {"reference": "Patient/ext"},
      "contained": [{"resourceType": "Medication", "id": "m1", "code": {"text": "aspirin"}}],
      "medicationReference": {"reference": "#m1"}})");
  EXPECT_EQ(Eval("MedicationRequest.medication.resolve().code.text", mr)[0].ToText(), "aspirin");
  json::value external = Json(R"({"resourceType": "Patient", "id": "ext", "gender": "female"})");
  EvalOptions opts;
  opts.resolver = [&](std::string_view ref) -> const json::value* {
    return ref == "Patient/ext" ? &external : nullptr;
  };
  EXPECT_EQ(Eval("MedicationRequest.subject.resolve().gender", mr, opts)[0].ToText(), "female");
}

TEST(FhirPath, UseContextAndExtensions) {
  json::value ad = Json(R"({"resourceType": "ActivityDefinition", "status": "active",
      "useContext": [{"code": {"code": "focus"},
        "valueCodeableConcept": {"coding": [{"code": "hypertension"}]}},
        {"code": {"code": "age"}, "valueRange": {"low": {"value": 18}}}]})");
  Collection cc = Eval("(ActivityDefinition.useContext.value as CodeableConcept)", ad);
  ASSERT_EQ(cc.size(), 1u);
  EXPECT_EQ(cc[0].FhirType(), "CodeableConcept");
  json::value p = Json(R"({"resourceType": "Patient",
      "extension": [{"url": "http://x", "valueString": "a"}, {"url": "http://y", "valueInteger": 3}],
      "birthDate": "1970-01-01",
      "_birthDate": {"extension": [{"url": "http://t", "valueDateTime": "1970-01-01T08:00:00+08:00"}]}})");
  Collection v = Eval("Patient.extension('http://x').value", p);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].FhirType(), "string");
  EXPECT_EQ(v[0].ToText(), "a");
  EXPECT_EQ(Eval("Patient.birthDate.extension('http://t').value", p)[0].FhirType(), "dateTime");
}

TEST(FhirPath, UntypedFallbackWithoutDefinitions) {
  EvalOptions opts;
  opts.model = &BasicModel();
  Collection q = Eval("Observation.value.ofType(Quantity)", kObservation, opts);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].FhirType(), "Quantity");
  EXPECT_EQ(Eval("Observation.effective > @2024-01-01", kObservation, opts)[0].boolean(), true);
  EXPECT_EQ(Eval("Observation.component.count()", kObservation, opts)[0].integer(), 3);
  EXPECT_EQ(Eval("Observation.value.value", kObservation, opts)[0].ToSystem().integer(), 72);
}

TEST(FhirPath, ValuesArithmeticAndVariables) {
  json::value empty = json::object();
  EXPECT_EQ(Eval("@2014-01-31 + 1 month", empty)[0].ToText(), "2014-02-28");
  EXPECT_EQ(Eval("1 'kg' = 1000 'g'", empty)[0].boolean(), true);
  EXPECT_EQ(Eval("3 'cm' < 1 'm'", empty)[0].boolean(), true);
  // The general UCUM parser (fhir/ucum) shared with search: quotients, customary and
  // bracketed units; moles and grams never compare.
  EXPECT_EQ(Eval("1 'L' = 1000 'mL'", empty)[0].boolean(), true);
  EXPECT_EQ(Eval("100 'mg/dL' = 1 'g/L'", empty)[0].boolean(), true);
  EXPECT_EQ(Eval("5 'mmol/L' = 5000 'umol/L'", empty)[0].boolean(), true);
  EXPECT_EQ(Eval("16 'kPa' > 119 'mm[Hg]'", empty)[0].boolean(), true);
  EXPECT_EQ(Eval("1 '[ft_i]' = 12 '[in_i]'", empty)[0].boolean(), true);
  EXPECT_EQ(Eval("(5 'mmol/L').comparable(90 'mg/dL')", empty)[0].boolean(), false);
  EXPECT_EQ(Eval("2 'h' = 120 'min'", empty)[0].boolean(), true);
  EXPECT_TRUE(Eval("@2012-04 = @2012-04-15", empty).empty());  // precision differs
  EXPECT_EQ(Eval("(1 | 2 | 3).aggregate($this + $total, 0)", empty)[0].integer(), 6);
  EvalOptions opts;
  opts.variables["limit"] = Collection{Item::Integer(2)};
  EXPECT_EQ(Eval("(1 | 2 | 3).where($this > %limit).count()", empty, opts)[0].integer(), 1);
  EXPECT_EQ(Eval("%ucum", empty)[0].string(), "http://unitsofmeasure.org");
  auto unknown = Compile("%nope");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(Evaluate(*unknown, empty).ok());
  EXPECT_FALSE(Compile("Patient.name.where(").ok());
  EXPECT_FALSE(Compile("Patient.name.noSuchFunction()").ok());
}

// The error message of a strict evaluation of `expr`, or "" when it succeeds.
std::string StrictError(std::string_view expr, const json::value& resource) {
  auto e = Compile(expr);
  if (!e.ok()) return "compile: " + e.error().message;
  EvalOptions opts;
  opts.model = &DefinitionsModel();
  opts.strict = true;
  auto r = Evaluate(*e, resource, opts);
  return r.ok() ? "" : r.error().message;
}

TEST(FhirPath, StrictOrderedFunctionsOnChildrenAreErrors) {
  json::value patient = Json(R"({"resourceType": "Patient", "active": true,
      "name": [{"family": "Li", "given": ["Wei", "Ming"]}], "birthDate": "1980-02-03"})");
  // children()/descendants() have no defined order, nor has anything that keeps their items.
  for (const char* expr :
       {"Patient.children().skip(1)", "Patient.children().first()", "Patient.descendants().last()",
        "Patient.children().tail()", "Patient.children().take(2)", "Patient.children()[0]",
        "Patient.children().where($this.exists()).first()", "Patient.children().family.first()",
        "Patient.name.select(children()).first()", "(Patient.name | Patient.children()).last()",
        // Found whatever the data: where(false) never runs select's argument.
        "Patient.name.where(false).select(children().first())"}) {
    EXPECT_NE(StrictError(expr, patient).find("undefined"), std::string::npos) << expr;
    Eval(expr, patient);  // not strict: evaluates as before (Eval expects no error)
  }
  // Order-independent uses of them, and ordered functions on ordered collections, still run.
  for (const char* expr :
       {"Patient.children().count()", "Patient.children().exists()", "Patient.name.given.skip(1)",
        "Patient.name.first().given[1]", "Patient.children().distinct().count()",
        "Patient.descendants().where($this = 'Ming').single()"}) {
    EXPECT_EQ(StrictError(expr, patient), "") << expr;
  }
  EXPECT_EQ(Eval("Patient.children().skip(1).count()", patient)[0].integer(), 2);
}

TEST(FhirPath, StrictMembersAfterTypeCastsMustExist) {
  // Observation.value is a Quantity here, so `as Period` is empty at run time: only the model
  // can tell that Period has no `unit`.
  for (const char* expr :
       {"(Observation.value as Period).unit", "Observation.value.as(Period).unit",
        "Observation.value.ofType(FHIR.Period).unit", "(Observation.value as Period).start.unit",
        "(%resource as Observation).component.unit"}) {
    std::string error = StrictError(expr, kObservation);
    EXPECT_NE(error.find("'unit' is not an element of "), std::string::npos)
        << expr << ": " << error;
    EXPECT_TRUE(Eval(expr, kObservation).empty()) << expr << ": not strict, just empty";
  }
  EXPECT_NE(StrictError("(Observation.value as Period).unit", kObservation).find("of Period"),
            std::string::npos);
  // Elements the cast type has are fine, found or not, choice elements included.
  for (const char* expr :
       {"(Observation.value as Period).start", "(Observation.value as Quantity).unit",
        "Observation.value.ofType(Quantity).code", "(%resource as Observation).value.unit",
        "(%resource as Observation).component.code.text", "(%resource as Resource).id"}) {
    EXPECT_EQ(StrictError(expr, kObservation), "") << expr;
  }
  EvalOptions strict;
  strict.strict = true;
  Collection unit = Eval("(Observation.value as Quantity).unit", kObservation, strict);
  ASSERT_EQ(unit.size(), 1u);
  EXPECT_EQ(unit[0].ToText(), "beats/min");
}

TEST(FhirPath, StrictAbsentChoiceElementIsEmptyNotUnknown) {
  json::value bare = Json(R"({"resourceType": "Observation", "status": "final"})");
  EXPECT_EQ(StrictError("Observation.value", bare), "");
  EXPECT_EQ(StrictError("Observation.effective.exists()", bare), "");
  EXPECT_EQ(StrictError("Observation.valueQuantity", bare), "");  // a typed choice name
  EXPECT_NE(StrictError("Observation.valu", bare).find("unknown element 'valu'"),
            std::string::npos);
}

TEST(FhirPath, HtmlChecksGivesTheNarrativeVerdict) {
  json::value good = Json(R"({"resourceType": "Patient", "text": {"status": "generated",
      "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>李 <b>伟</b></p></div>"}})");
  json::value bad = Json(R"({"resourceType": "Patient", "text": {"status": "generated",
      "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script>x</div>"}})");
  json::value blank = Json(R"({"resourceType": "Patient", "text": {"status": "empty",
      "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">  </div>"}})");
  Collection div = Eval("Patient.text.div", good);
  ASSERT_EQ(div.size(), 1u);
  EXPECT_EQ(div[0].FhirType(), "xhtml");
  ASSERT_EQ(Eval("Patient.text.div.htmlChecks()", good).size(), 1u);
  EXPECT_TRUE(Eval("Patient.text.div.htmlChecks()", good)[0].boolean());
  EXPECT_FALSE(Eval("Patient.text.div.htmlChecks()", bad)[0].boolean());    // txt-1
  EXPECT_FALSE(Eval("Patient.text.div.htmlChecks()", blank)[0].boolean());  // txt-2
  // The invariants' own form: evaluated with the div as context.
  auto expr = Compile("htmlChecks()");
  ASSERT_TRUE(expr.ok());
  auto on_bad =
      EvaluateOn(*expr, Eval("Patient.text.div", bad), &bad, {.model = &DefinitionsModel()});
  ASSERT_TRUE(on_bad.ok());
  ASSERT_EQ(on_bad->size(), 1u);
  EXPECT_FALSE((*on_bad)[0].boolean());
  // Undefined on anything but xhtml, and on nothing.
  EXPECT_TRUE(Eval("Patient.text.status.htmlChecks()", good).empty());
  EXPECT_TRUE(Eval("Patient.birthDate.htmlChecks()", good).empty());
}

TEST(FhirPath, CompiledOnceEvaluatedMany) {
  auto expr = Compile("Patient.identifier.where(system = 'urn:id').value");
  ASSERT_TRUE(expr.ok());
  Expression copy = *expr;  // cheap, shares the AST
  for (int i = 0; i < 100; ++i) {
    json::value p = json::object{{"resourceType", "Patient"},
                                 {"identifier", json::array{json::object{
                                                    {"system", "urn:id"},
                                                    {"value", std::to_string(i)}}}}};
    auto r = Evaluate(copy, p, {.model = &DefinitionsModel()});
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0].ToText(), std::to_string(i));
  }
}

// Every R4 search parameter's expression compiles, and evaluates without error on a minimal
// resource of each base type.
TEST(FhirPath, AllR4SearchParameterExpressions) {
  const auto& defs = fhir::Definitions::Get();
  int compiled = 0;
  for (const fhir::SearchParamDef& sp : defs.AllSearchParams()) {
    if (sp.expression.empty()) continue;
    auto e = Compile(sp.expression);
    ASSERT_TRUE(e.ok()) << sp.url << ": " << sp.expression << ": " << e.error().message;
    ++compiled;
    for (const std::string& base : sp.base) {
      if (!defs.IsResourceType(base)) continue;
      json::value r = json::object{{"resourceType", base}, {"id", "x"}};
      auto out = Evaluate(*e, r, {.model = &DefinitionsModel()});
      EXPECT_TRUE(out.ok()) << sp.url << " on " << base << ": "
                            << (out.ok() ? "" : out.error().message);
    }
  }
  EXPECT_GT(compiled, 1000);
  // And on the suite's real example resources: every parameter of the resource's type
  // evaluates without error.
  for (const char* file : {"patient-example.json", "observation-example.json",
                           "questionnaire-example.json", "valueset-example-expansion.json",
                           "explanationofbenefit-example.json", "appointment-examplereq.json",
                           "codesystem-example.json"}) {
    std::ifstream in(std::string(JICENG_SHARED_DIR) + "/data/fhirpath/input/" + file);
    std::stringstream ss;
    ss << in.rdbuf();
    json::value r = Json(ss.str());
    std::string type(r.at("resourceType").as_string());
    for (const fhir::SearchParamDef* sp : defs.SearchParams(type)) {
      if (sp->expression.empty()) continue;
      auto e = Compile(sp->expression);
      ASSERT_TRUE(e.ok());
      auto out = Evaluate(*e, r, {.model = &DefinitionsModel()});
      EXPECT_TRUE(out.ok()) << file << " " << sp->code << ": " << sp->expression << ": "
                            << (out.ok() ? "" : out.error().message);
    }
  }
}

}  // namespace
}  // namespace jiceng::fhirpath
