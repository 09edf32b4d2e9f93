#include "fhir/validator.h"

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "fhir/definitions.h"
#include "fhir/xhtml.h"

namespace jiceng::fhir {

namespace json = boost::json;

namespace {

// Walks one resource. The location is a stack of views into the document and definitions, so
// a valid resource costs no string building; the FHIRPath string is made only for an issue.
class Walker {
 public:
  Walker(const Definitions& defs, const ValidationOptions& options, std::vector<Issue>& issues)
      : defs_(defs), options_(options), issues_(issues), element_ctx_(defs.FindContext("Element")) {
    loc_.reserve(32);
  }

  void RootResource(const json::object& o) { Resource(o, /*root=*/true); }

 private:
  struct Segment {
    std::string_view name;
    int64_t index;  // -1: none
  };
  struct Push {
    Push(Walker& w, std::string_view name, int64_t index = -1) : w_(w) { w_.loc_.push_back({name, index}); }
    ~Push() { w_.loc_.pop_back(); }
    Push(const Push&) = delete;
    Push& operator=(const Push&) = delete;
    Walker& w_;
  };
  struct Index {
    Index(Walker& w, int64_t index) : w_(w) { w_.loc_.back().index = index; }
    ~Index() { w_.loc_.back().index = -1; }
    Index(const Index&) = delete;
    Index& operator=(const Index&) = delete;
    Walker& w_;
  };

  std::string Location(std::string_view extra = {}) const {
    std::string s;
    for (const Segment& seg : loc_) {
      if (!s.empty()) s += '.';
      s += seg.name;
      if (seg.index >= 0) {
        s += '[';
        s += std::to_string(seg.index);
        s += ']';
      }
    }
    if (!extra.empty()) {
      if (!s.empty()) s += '.';
      s += extra;
    }
    return s;
  }

  void Report(const char* severity, const char* code, std::string diagnostics, std::string_view extra = {}) {
    issues_.push_back(Issue{severity, code, std::move(diagnostics), Location(extra)});
  }
  void Error(const char* code, std::string diagnostics, std::string_view extra = {}) {
    Report("error", code, std::move(diagnostics), extra);
  }

  void Resource(const json::object& o, bool root) {
    const json::value* rt = o.if_contains("resourceType");
    if (!rt || !rt->is_string()) {
      Error("invalid", "A resource needs a resourceType string");
      return;
    }
    std::string_view type = rt->get_string();
    if (!defs_.IsResourceType(type)) {
      Error("invalid", "Unknown resourceType '" + std::string(type) + "'");
      return;
    }
    const ContextDef* ctx = defs_.FindContext(type);
    if (!ctx) {
      Error("invalid", "No definition for resourceType '" + std::string(type) + "'");
      return;
    }
    if (root) {
      Push p(*this, type);
      Object(o, *ctx, true);
    } else {
      Object(o, *ctx, true);
    }
  }

  void Unknown(std::string_view key, const ContextDef& ctx) {
    std::string msg = "Unknown element '" + std::string(key) + "' in " + ctx.name;
    if (options_.strict) {
      Error("structure", std::move(msg), key);
    } else {
      Report("warning", "structure", std::move(msg), key);
    }
  }

  void Object(const json::object& o, const ContextDef& ctx, bool is_resource) {
    uint64_t seen[4] = {0, 0, 0, 0};      // children present as `name`
    uint64_t ext_seen[4] = {0, 0, 0, 0};  // children present as `_name`
    for (const auto& kv : o) {
      std::string_view key = kv.key();
      if (is_resource && key == "resourceType") continue;
      if (!key.empty() && key[0] == '_') {
        const PropertyDef* p = ctx.FindProperty(key.substr(1));
        if (!p || !p->is_primitive()) {
          Unknown(key, ctx);
          continue;
        }
        uint64_t bit = uint64_t{1} << (p->index % 64);
        if ((ext_seen[p->index / 64] & bit) && p->element->is_choice) {
          Error("structure", "Only one type of " + p->element->name + "[x] may be present", key);
        }
        ext_seen[p->index / 64] |= bit;
        Push seg(*this, key);
        PrimitiveExtension(kv.value(), *p, o.if_contains(key.substr(1)));
        continue;
      }
      const PropertyDef* p = ctx.FindProperty(key);
      if (!p) {
        Unknown(key, ctx);
        continue;
      }
      uint64_t bit = uint64_t{1} << (p->index % 64);
      if (seen[p->index / 64] & bit) {
        Error("structure", "Only one type of " + p->element->name + "[x] may be present", key);
      }
      seen[p->index / 64] |= bit;
      Push seg(*this, key);
      Property(kv.value(), *p, o, key);
    }
    for (uint16_t i : ctx.required) {
      if ((seen[i / 64] | ext_seen[i / 64]) & (uint64_t{1} << (i % 64))) continue;
      const ElementDef* el = ctx.children[i];
      std::string_view name = el->path;
      name = name.substr(name.rfind('.') + 1);
      Error("required", "Missing required element '" + std::string(name) + "' (min " + std::to_string(el->min) + ")",
            name);
    }
  }

  // `_name` next to a primitive: an Element (id, extension) or, for a repeating element, an
  // array of them aligned with the values (null where a value has none).
  void PrimitiveExtension(const json::value& v, const PropertyDef& p, const json::value* values) {
    bool repeats = p.element->max > 1;
    if (!repeats) {
      if (!v.is_object()) {
        Error("structure", "Primitive extension must be a JSON object");
        return;
      }
      ElementObject(v.get_object());
      return;
    }
    if (!v.is_array()) {
      Error("structure", "Primitive extension of a repeating element must be an array");
      return;
    }
    const json::array& a = v.get_array();
    if (a.empty()) {
      Error("structure", "Empty array (FHIR forbids empty arrays)");
      return;
    }
    if (values && values->is_array() && values->get_array().size() != a.size()) {
      Error("structure", "Primitive extension array is not aligned with its values");
    }
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].is_null()) continue;
      Index idx(*this, static_cast<int64_t>(i));
      if (!a[i].is_object()) {
        Error("structure", "Primitive extension must be a JSON object or null");
        continue;
      }
      ElementObject(a[i].get_object());
    }
  }

  void ElementObject(const json::object& o) {
    if (o.empty()) {
      Error("structure", "Empty object (FHIR forbids empty objects)");
      return;
    }
    if (element_ctx_) Object(o, *element_ctx_, false);
  }

  void Property(const json::value& v, const PropertyDef& p, const json::object& parent, std::string_view key) {
    const ElementDef& el = *p.element;
    if (el.max > 1) {
      if (!v.is_array()) {
        Error("structure", "Element '" + std::string(key) + "' repeats and must be a JSON array");
        return;
      }
      const json::array& a = v.get_array();
      if (a.empty()) {
        Error("structure", "Empty array (FHIR forbids empty arrays)");
        return;
      }
      if (el.max != ElementDef::kUnbounded && a.size() > el.max) {
        Error("structure", "Too many items (max " + std::to_string(el.max) + ")");
      }
      const json::array* ext = nullptr;
      if (p.is_primitive()) {
        // Allocation-free lookup of "_" + key: keys are short, so a stack buffer is enough.
        char buf[128];
        if (key.size() + 1 < sizeof(buf)) {
          buf[0] = '_';
          key.copy(buf + 1, key.size());
          const json::value* e = parent.if_contains(std::string_view(buf, key.size() + 1));
          if (e && e->is_array()) ext = &e->get_array();
        }
      }
      for (size_t i = 0; i < a.size(); ++i) {
        Index idx(*this, static_cast<int64_t>(i));
        if (a[i].is_null() && p.is_primitive()) {
          if (!ext || i >= ext->size() || !(*ext)[i].is_object())
            Error("structure", "null in a primitive array needs a matching extension in '_" + std::string(key) + "'");
          continue;
        }
        Item(a[i], p);
      }
      return;
    }
    if (v.is_array()) {
      Error("structure", "Element '" + std::string(key) + "' does not repeat and must not be an array");
      return;
    }
    Item(v, p);
  }

  void Item(const json::value& v, const PropertyDef& p) {
    if (p.is_primitive()) {
      const char* why = nullptr;
      if (!CheckPrimitive(p.primitive, v, &why)) {
        Error("value", std::string("Invalid ") + std::string(p.type) + ": " + why);
        return;
      }
      // Narrative is rendered as HTML by clients: its rules are a safety matter, not a
      // leniency one, so lenient mode checks them too. Only Narrative.div has this type.
      if (p.primitive == PrimitiveKind::kXhtml) {
        std::string narrative_why;
        if (!CheckNarrativeXhtml(v.get_string(), &narrative_why))
          Error("value", "Invalid xhtml: " + narrative_why);
        return;
      }
      if (p.required_codes && v.is_string() && p.primitive == PrimitiveKind::kCode &&
          !defs_.ValueSetContains(p.element->binding_value_set, v.get_string())) {
        Error("code-invalid", "Code '" + std::string(v.get_string()) + "' is not in the value set " +
                                  p.element->binding_value_set);
      }
      return;
    }
    if (!v.is_object()) {
      Error("structure", "Element of type " + std::string(p.type) + " must be a JSON object");
      return;
    }
    const json::object& o = v.get_object();
    if (o.empty()) {
      Error("structure", "Empty object (FHIR forbids empty objects)");
      return;
    }
    if (p.type == "Resource") {
      Resource(o, /*root=*/false);
      return;
    }
    if (!p.child) return;  // a type without elements we know: nothing to check against
    Object(o, *p.child, false);
  }

  const Definitions& defs_;
  const ValidationOptions& options_;
  std::vector<Issue>& issues_;
  const ContextDef* element_ctx_;
  std::vector<Segment> loc_;
};

}  // namespace

std::vector<Issue> Validate(const json::object& resource, const ValidationOptions& options) {
  std::vector<Issue> issues;
  Walker(Definitions::Get(), options, issues).RootResource(resource);
  return issues;
}

bool HasErrors(const std::vector<Issue>& issues) {
  for (const Issue& i : issues)
    if (i.severity == "error" || i.severity == "fatal") return true;
  return false;
}

Status ValidateResource(const json::object& resource, const ValidationOptions& options,
                        std::vector<Issue>* warnings) {
  std::vector<Issue> issues = Validate(resource, options);
  if (HasErrors(issues)) {
    jiceng::Error e(ErrorCode::kUnprocessable, issues.front().diagnostics);
    for (const Issue& i : issues)
      if (i.severity == "error" || i.severity == "fatal") {
        e.message = i.diagnostics;
        break;
      }
    e.issues = std::move(issues);
    return e;
  }
  if (warnings) *warnings = std::move(issues);
  return Status::Ok();
}

}  // namespace jiceng::fhir
