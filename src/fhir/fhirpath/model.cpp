#include "fhir/fhirpath/model.h"

#include <cctype>

namespace jiceng::fhirpath {
namespace {

constexpr std::string_view kPrimitives[] = {
    "boolean", "integer",  "string",       "decimal",     "uri",    "url",
    "canonical", "base64Binary", "instant", "date",       "dateTime", "time",
    "code",    "oid",      "id",           "markdown",    "unsignedInt", "positiveInt",
    "uuid",    "xhtml"};

// Inheritance edges of the R4 model that FHIRPath type tests depend on.
constexpr std::pair<std::string_view, std::string_view> kBases[] = {
    {"code", "string"},        {"id", "string"},         {"markdown", "string"},
    {"url", "uri"},            {"canonical", "uri"},     {"oid", "uri"},
    {"uuid", "uri"},           {"unsignedInt", "integer"}, {"positiveInt", "integer"},
    {"Age", "Quantity"},       {"Distance", "Quantity"}, {"Duration", "Quantity"},
    {"Count", "Quantity"},     {"MoneyQuantity", "Quantity"},
    {"SimpleQuantity", "Quantity"}, {"Bundle", "Resource"}, {"Binary", "Resource"},
    {"Parameters", "Resource"}, {"DomainResource", "Resource"}};

constexpr std::string_view kComplex[] = {
    "Address",     "Age",          "Annotation",  "Attachment", "BackboneElement",
    "CodeableConcept", "Coding",   "ContactDetail", "ContactPoint", "Contributor",
    "Count",       "DataRequirement", "Distance", "Dosage",     "Duration",
    "Element",     "ElementDefinition", "Expression", "Extension", "HumanName",
    "Identifier",  "MarketingStatus", "Meta",     "Money",      "MoneyQuantity",
    "Narrative",   "ParameterDefinition", "Period", "Population", "ProdCharacteristic",
    "ProductShelfLife", "Quantity", "Range",      "Ratio",      "Reference",
    "RelatedArtifact", "SampledData", "Signature", "SimpleQuantity", "SubstanceAmount",
    "Timing",      "TriggerDefinition", "UsageContext", "Resource", "DomainResource"};

class Basic final : public ModelInfo {
 public:
  PropertyInfo Resolve(std::string_view, std::string_view) const override { return {}; }
  PropertyInfo ResolveElement(std::string_view, std::string_view) const override { return {}; }
  bool KnowsContext(std::string_view) const override { return false; }
  std::string_view BaseType(std::string_view type) const override {
    for (const auto& [t, b] : kBases) {
      if (t == type) return b;
    }
    if (type == "Resource" || type == "Element" || type.empty()) return {};
    if (IsFhirPrimitive(type) || IsKnownType(type)) return "Element";
    // Capitalised unknown names are most likely resources when the model is this thin.
    if (std::isupper(static_cast<unsigned char>(type.front()))) return "DomainResource";
    return {};
  }
  bool IsKnownType(std::string_view type) const override {
    if (IsFhirPrimitive(type)) return true;
    for (std::string_view c : kComplex) {
      if (c == type) return true;
    }
    return IsResourceType(type);
  }
  bool IsResourceType(std::string_view type) const override {
    // Without definitions any capitalised name that is not a data type may be a resource.
    if (type.empty() || !std::isupper(static_cast<unsigned char>(type.front()))) return false;
    for (std::string_view c : kComplex) {
      if (c == type) return c == "Resource" || c == "DomainResource";
    }
    for (char ch : type) {
      if (!std::isalnum(static_cast<unsigned char>(ch))) return false;
    }
    return true;
  }
};

}  // namespace

bool IsFhirPrimitive(std::string_view type) {
  for (std::string_view p : kPrimitives) {
    if (p == type) return true;
  }
  return false;
}

const ModelInfo& BasicModel() {
  static const Basic model;
  return model;
}

}  // namespace jiceng::fhirpath
