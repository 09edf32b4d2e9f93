#include "fhir/fhirpath/definitions_model.h"

#include "fhir/definitions.h"

namespace jiceng::fhirpath {
namespace {

class R4Model final : public ModelInfo {
 public:
  R4Model() : defs_(fhir::Definitions::Get()) {}

  PropertyInfo Resolve(std::string_view context, std::string_view json_name) const override {
    const fhir::ContextDef* ctx = defs_.FindContext(context);
    if (!ctx) return {};
    const fhir::PropertyDef* p = ctx->FindProperty(json_name);
    if (!p || !p->element) return {};
    PropertyInfo info;
    info.found = true;
    info.type = p->type;
    // Backbone elements resolve their children by path; everything else by type name.
    info.context = p->child ? std::string_view(p->child->name) : p->type;
    info.element_name = p->element->name;
    info.is_choice = p->element->is_choice;
    return info;
  }
  PropertyInfo ResolveElement(std::string_view context, std::string_view name) const override {
    // Elements other than choices are keyed by their own name.
    PropertyInfo info = Resolve(context, name);
    // A typed choice name (valueQuantity) is an element too; the bare name (value) is below.
    if (info.found) return info;
    const fhir::ContextDef* ctx = defs_.FindContext(context);
    if (!ctx) return {};
    for (const fhir::ElementDef* el : ctx->children) {
      // max 0: prohibited by a constraint profile, as Resolve treats it.
      if (el->is_choice && el->max > 0 && el->name == name) {
        PropertyInfo choice;
        choice.found = true;
        choice.element_name = el->name;
        choice.is_choice = true;
        return choice;
      }
    }
    return {};
  }
  bool KnowsContext(std::string_view context) const override {
    return defs_.FindContext(context) != nullptr;
  }
  std::string_view BaseType(std::string_view type) const override { return defs_.BaseType(type); }
  bool IsKnownType(std::string_view type) const override { return defs_.IsKnownType(type); }
  bool IsResourceType(std::string_view type) const override {
    return defs_.IsResourceType(type) || type == "Resource" || type == "DomainResource";
  }

 private:
  const fhir::Definitions& defs_;
};

}  // namespace

const ModelInfo& DefinitionsModel() {
  static const R4Model model;
  return model;
}

}  // namespace jiceng::fhirpath
