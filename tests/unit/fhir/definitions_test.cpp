#include "fhir/definitions.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace jiceng::fhir {
namespace {

const Definitions& D() { return Definitions::Get(); }

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(DefinitionsTest, LoadsOnceAndReportsLoadTime) {
  auto start = std::chrono::steady_clock::now();
  std::clock_t cpu_start = std::clock();
  const Definitions& d = D();
  double cpu_ms = 1000.0 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  // Informational only (tests never assert on wall-clock time).
  std::printf("definitions: %zu bytes embedded, loaded in %.1f ms (%.1f ms CPU)\n", Definitions::EmbeddedSize(), ms,
              cpu_ms);
  EXPECT_EQ(&d, &D());
  EXPECT_GT(Definitions::EmbeddedSize(), 100000u);
}

TEST(DefinitionsTest, Types) {
  EXPECT_TRUE(D().IsResourceType("Patient"));
  EXPECT_TRUE(D().IsResourceType("Bundle"));
  EXPECT_FALSE(D().IsResourceType("DomainResource"));
  EXPECT_FALSE(D().IsResourceType("HumanName"));
  EXPECT_FALSE(D().IsResourceType("Patients"));
  EXPECT_TRUE(D().IsKnownType("HumanName"));
  EXPECT_TRUE(D().IsKnownType("date"));
  EXPECT_TRUE(D().IsKnownType("SimpleQuantity"));
  EXPECT_TRUE(D().IsPrimitiveType("dateTime"));
  EXPECT_FALSE(D().IsPrimitiveType("Quantity"));
  EXPECT_GE(D().ResourceTypes().size(), 145u);
  EXPECT_TRUE(Contains(D().ResourceTypes(), "Observation"));
  EXPECT_EQ(D().BaseType("Patient"), "DomainResource");
  EXPECT_EQ(D().BaseType("DomainResource"), "Resource");
  EXPECT_EQ(D().BaseType("Age"), "Quantity");
  EXPECT_EQ(D().BaseType("SimpleQuantity"), "Quantity");
  EXPECT_EQ(D().BaseType("Resource"), "");
}

TEST(DefinitionsTest, ResolvesPlainElements) {
  auto r = D().Resolve("Patient", "birthDate");
  ASSERT_NE(r.element, nullptr);
  EXPECT_EQ(r.element->path, "Patient.birthDate");
  EXPECT_EQ(r.element->name, "birthDate");
  EXPECT_EQ(r.type, "date");
  EXPECT_EQ(r.element->max, 1u);
  auto name = D().Resolve("Patient", "name");
  ASSERT_NE(name.element, nullptr);
  EXPECT_EQ(name.type, "HumanName");
  EXPECT_EQ(name.element->max, ElementDef::kUnbounded);
  EXPECT_EQ(D().Resolve("Patient", "nope").element, nullptr);
  EXPECT_EQ(D().Resolve("NoSuchType", "id").element, nullptr);
  auto status = D().Resolve("Observation", "status");
  ASSERT_NE(status.element, nullptr);
  EXPECT_EQ(status.element->min, 1u);
  EXPECT_EQ(status.element->binding_strength, "required");
  EXPECT_EQ(status.element->binding_value_set, "http://hl7.org/fhir/ValueSet/observation-status");
}

TEST(DefinitionsTest, ResolvesChoiceTypes) {
  auto q = D().Resolve("Observation", "valueQuantity");
  ASSERT_NE(q.element, nullptr);
  EXPECT_EQ(q.element->path, "Observation.value[x]");
  EXPECT_EQ(q.element->name, "value");
  EXPECT_TRUE(q.element->is_choice);
  EXPECT_EQ(q.type, "Quantity");
  EXPECT_EQ(D().Resolve("Observation", "valueString").type, "string");
  EXPECT_EQ(D().Resolve("Observation", "valueDateTime").type, "dateTime");
  EXPECT_EQ(D().Resolve("Observation", "effectivePeriod").type, "Period");
  EXPECT_EQ(D().Resolve("Observation", "value").element, nullptr);
  EXPECT_EQ(D().Resolve("Observation", "valuestring").element, nullptr);
  EXPECT_EQ(D().Resolve("Observation", "valueUri").element, nullptr);  // not an allowed type
  EXPECT_EQ(D().Resolve("Patient", "deceasedBoolean").type, "boolean");
  EXPECT_EQ(D().Resolve("Extension", "valueCodeableConcept").type, "CodeableConcept");
}

TEST(DefinitionsTest, ResolvesBackboneAndContentReference) {
  auto contact = D().Resolve("Patient", "contact");
  ASSERT_NE(contact.element, nullptr);
  EXPECT_EQ(contact.type, "BackboneElement");
  auto rel = D().Resolve("Patient.contact", "relationship");
  ASSERT_NE(rel.element, nullptr);
  EXPECT_EQ(rel.element->path, "Patient.contact.relationship");
  EXPECT_EQ(rel.type, "CodeableConcept");
  EXPECT_NE(D().Resolve("Patient.contact", "id").element, nullptr);
  EXPECT_NE(D().Resolve("Patient.contact", "modifierExtension").element, nullptr);

  auto item = D().Resolve("Questionnaire.item", "item");
  ASSERT_NE(item.element, nullptr);
  EXPECT_EQ(item.element->content_reference, "#Questionnaire.item");
  EXPECT_EQ(item.type, "BackboneElement");
  auto link = D().Resolve("Questionnaire.item.item", "linkId");
  ASSERT_NE(link.element, nullptr);
  EXPECT_EQ(link.element->path, "Questionnaire.item.linkId");
  const ContextDef* nested = D().FindContext("Questionnaire.item.item");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested, D().FindContext("Questionnaire.item"));
  EXPECT_EQ(D().FindContext("Questionnaire.item.item.item.item"), nested);
  EXPECT_EQ(D().Resolve("Questionnaire.item.item.item", "answerOption").element->path, "Questionnaire.item.answerOption");
  EXPECT_EQ(D().Resolve("Observation.valueQuantity", "unit").type, "string");
  EXPECT_EQ(D().Resolve("Observation.referenceRange", "low").type, "Quantity");
  EXPECT_EQ(D().Resolve("Patient.name", "family").element->path, "HumanName.family");
  EXPECT_EQ(D().FindContext("Patient.birthDate"), nullptr);
}

TEST(DefinitionsTest, ResolvesDataTypesAndInheritedElements) {
  EXPECT_EQ(D().Resolve("HumanName", "given").type, "string");
  EXPECT_EQ(D().Resolve("HumanName", "period").type, "Period");
  for (const char* n : {"id", "meta", "implicitRules", "language", "text", "contained", "extension",
                        "modifierExtension"}) {
    EXPECT_NE(D().Resolve("Patient", n).element, nullptr) << n;
  }
  EXPECT_EQ(D().Resolve("Patient", "id").type, "id");
  EXPECT_EQ(D().Resolve("Patient", "meta").type, "Meta");
  EXPECT_EQ(D().Resolve("Patient", "contained").type, "Resource");
  EXPECT_NE(D().Resolve("HumanName", "extension").element, nullptr);
  EXPECT_EQ(D().Resolve("HumanName", "id").type, "string");
  EXPECT_EQ(D().Resolve("Bundle", "text").element, nullptr);  // Bundle is not a DomainResource
  auto children = D().Children("HumanName");
  ASSERT_FALSE(children.empty());
  EXPECT_EQ(children.front()->path, "HumanName.id");
  EXPECT_TRUE(D().Children("Nope").empty());
  EXPECT_NE(D().FindElement("Observation.value[x]"), nullptr);
}

TEST(DefinitionsTest, SearchParameters) {
  EXPECT_GT(D().AllSearchParams().size(), 1000u);
  const SearchParamDef* bd = D().FindSearchParam("Patient", "birthdate");
  ASSERT_NE(bd, nullptr);
  EXPECT_EQ(bd->type, "date");
  EXPECT_NE(bd->expression.find("Patient.birthDate"), std::string::npos);
  EXPECT_EQ(bd->url, "http://hl7.org/fhir/SearchParameter/individual-birthdate");
  EXPECT_EQ(D().SearchParamByUrl(bd->url), bd);
  // Resource- and DomainResource-level parameters apply to every concrete type.
  EXPECT_NE(D().FindSearchParam("Patient", "_id"), nullptr);
  EXPECT_NE(D().FindSearchParam("Observation", "_lastUpdated"), nullptr);
  EXPECT_NE(D().FindSearchParam("Observation", "_text"), nullptr);
  EXPECT_EQ(D().FindSearchParam("Bundle", "_text"), nullptr);
  EXPECT_NE(D().FindSearchParam("Bundle", "_id"), nullptr);
  const SearchParamDef* subject = D().FindSearchParam("Observation", "subject");
  ASSERT_NE(subject, nullptr);
  EXPECT_EQ(subject->type, "reference");
  EXPECT_FALSE(subject->target.empty());
  const SearchParamDef* cvq = D().FindSearchParam("Observation", "code-value-quantity");
  ASSERT_NE(cvq, nullptr);
  EXPECT_EQ(cvq->type, "composite");
  EXPECT_EQ(cvq->components.size(), 2u);
  EXPECT_GT(D().SearchParams("Observation").size(), 30u);
  EXPECT_EQ(D().FindSearchParam("Patient", "nope"), nullptr);
}

TEST(DefinitionsTest, ValueSetsAndCompartment) {
  const auto* gender = D().ValueSetCodes("http://hl7.org/fhir/ValueSet/administrative-gender");
  ASSERT_NE(gender, nullptr);
  EXPECT_EQ(*gender, (std::vector<std::string>{"male", "female", "other", "unknown"}));
  for (const char* vs : {"http://hl7.org/fhir/ValueSet/observation-status", "http://hl7.org/fhir/ValueSet/bundle-type",
                         "http://hl7.org/fhir/ValueSet/http-verb", "http://hl7.org/fhir/ValueSet/publication-status",
                         "http://hl7.org/fhir/ValueSet/encounter-status", "http://hl7.org/fhir/ValueSet/resource-types"}) {
    EXPECT_NE(D().ValueSetCodes(vs), nullptr) << vs;
  }
  EXPECT_TRUE(D().ValueSetContains("http://hl7.org/fhir/ValueSet/bundle-type", "transaction"));
  EXPECT_FALSE(D().ValueSetContains("http://hl7.org/fhir/ValueSet/bundle-type", "nope"));
  EXPECT_TRUE(D().ValueSetContains("http://hl7.org/fhir/ValueSet/resource-types", "Patient"));
  EXPECT_EQ(D().ValueSetCodes("http://hl7.org/fhir/ValueSet/ucum-units"), nullptr);  // not expandable

  const auto& obs = D().PatientCompartmentParams("Observation");
  EXPECT_TRUE(Contains(obs, "subject"));
  EXPECT_TRUE(Contains(obs, "performer"));
  EXPECT_TRUE(Contains(D().PatientCompartmentParams("Patient"), "link"));
  EXPECT_TRUE(D().PatientCompartmentParams("Organization").empty());
  EXPECT_TRUE(D().PatientCompartmentParams("Nope").empty());
}

}  // namespace
}  // namespace jiceng::fhir
