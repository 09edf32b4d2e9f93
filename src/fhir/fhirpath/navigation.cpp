#include "fhir/fhirpath/navigation.h"

#include <algorithm>

namespace jiceng::fhirpath {

std::string_view InferType(const json::value& v) {
  switch (v.kind()) {
    case json::kind::bool_:
      return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "integer";
    case json::kind::double_:
      return "decimal";
    case json::kind::string:
      return "string";
    default:
      return {};
  }
}

void EmitProperty(const json::value* val, const json::value* ext, const PropertyInfo& pi,
                  Collection& out) {
  auto one = [&](const json::value* v, const json::value* e) {
    if (v && v->is_null()) v = nullptr;
    if (e && e->is_null()) e = nullptr;
    if (!v && !e) return;
    std::string_view type = pi.type, ctx = pi.context;
    if (v && v->is_object()) {
      if (const json::value* rt = v->get_object().if_contains("resourceType");
          rt && rt->is_string()) {
        type = ctx = rt->get_string();
      }
    }
    if (type.empty() && v) type = InferType(*v);
    out.push_back(Item::Node(v, e, type, ctx));
  };
  const json::array* va = val && val->is_array() ? &val->get_array() : nullptr;
  const json::array* ea = ext && ext->is_array() ? &ext->get_array() : nullptr;
  if (va || ea) {
    const size_t n = std::max(va ? va->size() : 0, ea ? ea->size() : 0);
    for (size_t i = 0; i < n; ++i) {
      one(va && i < va->size() ? &(*va)[i] : nullptr, ea && i < ea->size() ? &(*ea)[i] : nullptr);
    }
    return;
  }
  one(val, ext);
}

}  // namespace jiceng::fhirpath
