#include "fhir/definitions.h"

#include <boost/json.hpp>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <unordered_set>

// The compacted definitions, embedded by the generated fhir_definitions_blob.S (tools/defgen).
extern "C" const char jiceng_fhir_definitions_data[];
extern "C" const char jiceng_fhir_definitions_end[];

namespace jiceng::fhir {

namespace json = boost::json;

namespace {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

template <class Map>
auto FindIn(const Map& m, std::string_view key) -> const typename Map::mapped_type* {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

std::string_view Sv(const json::value& v) { return v.get_string(); }

// The bit set the validator keeps per object has room for this many children.
constexpr size_t kMaxChildren = 256;

}  // namespace

struct Definitions::Impl {
  enum Kind { kResource = 0, kComplex = 1, kPrimitive = 2 };
  struct TypeInfo {
    Kind kind;
    std::string base;
    bool is_abstract;
  };
  std::deque<ElementDef> elements;  // deque: stable addresses while appending
  StringMap<const ElementDef*> by_path;
  StringMap<TypeInfo> types;
  std::vector<std::string> resource_types;
  std::deque<ContextDef> context_storage;
  StringMap<ContextDef*> contexts;
  std::vector<SearchParamDef> search_params;
  StringMap<const SearchParamDef*> search_by_url;
  StringMap<std::vector<const SearchParamDef*>> search_by_type;
  StringMap<std::vector<std::string>> value_sets;
  StringMap<std::unordered_set<std::string_view>> value_set_index;  // for large sets
  StringMap<std::vector<std::string>> compartment;

  ContextDef& Context(std::string_view name) {
    if (auto* c = FindIn(contexts, name)) return **c;
    ContextDef& c = context_storage.emplace_back();
    c.name = std::string(name);
    contexts.emplace(c.name, &c);
    return c;
  }

  void Load(std::string_view text);
  void BuildProperties();
};

namespace {

std::string Capitalize(std::string_view s) {
  std::string out(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

}  // namespace

void Definitions::Impl::Load(std::string_view text) {
  // A monotonic arena makes the one-off parse of the blob cheap; the DOM dies with this scope.
  json::monotonic_resource arena(text.size() * 2);
  json::parse_options opts;
  boost::system::error_code ec;
  json::value root = json::parse(text, ec, &arena, opts);
  if (ec) {
    // The blob is generated at build time: a parse failure is a build defect, not a runtime case.
    std::fprintf(stderr, "jiceng: embedded FHIR definitions are corrupt: %s\n", ec.message().c_str());
    std::abort();
  }
  const json::object& o = root.get_object();
  // Sized up front: rehashing thousands of string keys was a visible part of start-up.
  types.reserve(256);
  by_path.reserve(16384);
  contexts.reserve(4096);

  for (const auto& tv : o.at("t").get_array()) {
    const auto& t = tv.get_array();
    std::string name(Sv(t[0]));
    auto kind = static_cast<Kind>(t[1].to_number<int>());
    bool is_abstract = t[3].to_number<int>() != 0;
    types.emplace(name, TypeInfo{kind, std::string(Sv(t[2])), is_abstract});
    if (kind == kResource && !is_abstract) resource_types.push_back(name);
    for (const auto& ev : t[4].get_array()) {
      const auto& e = ev.get_array();
      ElementDef& el = elements.emplace_back();
      el.path = std::string(Sv(e[0]));
      std::string_view last = el.path;
      last = last.substr(last.rfind('.') + 1);
      el.is_choice = last.size() > 3 && last.substr(last.size() - 3) == "[x]";
      el.name = std::string(el.is_choice ? last.substr(0, last.size() - 3) : last);
      for (const auto& tc : e[1].get_array()) el.types.emplace_back(Sv(tc));
      el.min = static_cast<uint32_t>(e[2].to_number<int64_t>());
      int64_t max = e[3].to_number<int64_t>();
      el.max = max < 0 ? ElementDef::kUnbounded : static_cast<uint32_t>(max);
      el.content_reference = std::string(Sv(e[4]));
      el.binding_strength = std::string(Sv(e[5]));
      el.binding_value_set = std::string(Sv(e[6]));
      el.is_summary = e.size() > 7 && e[7].to_number<int64_t>() != 0;
      by_path.emplace(el.path, &el);
      // Children hang off their parent path; a type's root has the type's name as its path.
      ContextDef& parent = Context(std::string_view(el.path).substr(0, el.path.rfind('.')));
      parent.children.push_back(&el);
    }
  }

  for (const auto& vv : o.at("vs").get_array()) {
    const auto& v = vv.get_array();
    std::vector<std::string> codes;
    for (const auto& c : v[1].get_array()) codes.emplace_back(Sv(c));
    auto& stored = value_sets.emplace(std::string(Sv(v[0])), std::move(codes)).first->second;
    if (stored.size() > 16) {
      auto& index = value_set_index[std::string(Sv(v[0]))];
      for (const auto& c : stored) index.insert(c);
    }
  }

  const auto& sps = o.at("sp").get_array();
  search_params.reserve(sps.size());
  for (const auto& sv : sps) {
    const auto& s = sv.get_array();
    SearchParamDef& sp = search_params.emplace_back();
    sp.url = std::string(Sv(s[0]));
    sp.code = std::string(Sv(s[1]));
    sp.type = std::string(Sv(s[2]));
    sp.expression = std::string(Sv(s[3]));
    for (const auto& b : s[4].get_array()) sp.base.emplace_back(Sv(b));
    for (const auto& b : s[5].get_array()) sp.target.emplace_back(Sv(b));
    for (const auto& cv : s[6].get_array()) {
      const auto& c = cv.get_array();
      sp.components.push_back({std::string(Sv(c[0])), std::string(Sv(c[1]))});
    }
  }
  for (const auto& sp : search_params) {
    search_by_url.emplace(sp.url, &sp);
    for (const auto& b : sp.base) {
      if (b == "Resource" || b == "DomainResource") {
        for (const auto& rt : resource_types) {
          // Every concrete resource but Bundle, Binary and Parameters is a DomainResource.
          const TypeInfo* ti = FindIn(types, rt);
          if (b == "DomainResource" && (!ti || ti->base != "DomainResource")) continue;
          search_by_type[rt].push_back(&sp);
        }
      }
      search_by_type[b].push_back(&sp);
    }
  }

  for (const auto& cv : o.at("pc").get_array()) {
    const auto& c = cv.get_array();
    std::vector<std::string> params;
    for (const auto& p : c[1].get_array()) params.emplace_back(Sv(p));
    compartment.emplace(std::string(Sv(c[0])), std::move(params));
  }

  BuildProperties();
}

void Definitions::Impl::BuildProperties() {
  // A contentReference element's children are those of the element it refers to, so
  // "Questionnaire.item.item" resolves its properties through "Questionnaire.item".
  for (const ElementDef& el : elements) {
    if (el.content_reference.empty()) continue;
    std::string_view ref = el.content_reference;
    ref = ref.substr(ref.find('#') + 1);
    if (auto* c = FindIn(contexts, ref)) contexts.emplace(el.path, *c);
  }
  for (ContextDef& ctx : context_storage) {
    if (ctx.children.size() > kMaxChildren) {
      std::fprintf(stderr, "jiceng: FHIR context %s has too many children\n", ctx.name.c_str());
      std::abort();
    }
    ctx.properties.reserve(ctx.children.size() + 4);
    for (size_t i = 0; i < ctx.children.size(); ++i) {
      const ElementDef* el = ctx.children[i];
      if (el->max == 0) continue;  // prohibited by a constraint profile (SimpleQuantity.comparator)
      if (el->min > 0) ctx.required.push_back(static_cast<uint16_t>(i));
      const std::vector<std::string>* codes = nullptr;
      if (el->binding_strength == "required") codes = FindIn(value_sets, el->binding_value_set);
      // Inline children (backbone elements) take precedence over the declared type.
      const ContextDef* inline_ctx = nullptr;
      if (auto* c = FindIn(contexts, el->path)) inline_ctx = *c;
      if (!el->content_reference.empty()) {
        std::string_view ref = el->content_reference;
        ref = ref.substr(ref.find('#') + 1);
        const ElementDef* target = FindIn(by_path, ref) ? *FindIn(by_path, ref) : nullptr;
        PropertyDef p;
        p.element = el;
        p.type = target && !target->types.empty() ? std::string_view(target->types[0]) : "BackboneElement";
        if (auto* c = FindIn(contexts, ref)) p.child = *c;
        p.index = static_cast<uint16_t>(i);
        ctx.properties.emplace(el->name, p);
        continue;
      }
      for (const std::string& type : el->types) {
        PropertyDef p;
        p.element = el;
        p.type = type;
        p.index = static_cast<uint16_t>(i);
        p.required_codes = codes;
        const TypeInfo* ti = FindIn(types, type);
        if (ti && ti->kind == kPrimitive) p.primitive = PrimitiveKindOf(type);
        if (inline_ctx) {
          p.child = inline_ctx;
        } else if (type != "Resource") {
          if (auto* c = FindIn(contexts, type)) p.child = *c;
        }
        ctx.properties.emplace(el->is_choice ? el->name + Capitalize(type) : el->name, p);
      }
    }
  }
}

Definitions::Definitions(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Definitions::~Definitions() = default;

const Definitions& Definitions::Get() {
  static const Definitions* const defs = [] {
    auto impl = std::make_unique<Impl>();
    impl->Load(std::string_view(jiceng_fhir_definitions_data, EmbeddedSize()));
    // Never destroyed: other statics may still use the definitions during shutdown.
    return new Definitions(std::move(impl));
  }();
  return *defs;
}

size_t Definitions::EmbeddedSize() {
  return static_cast<size_t>(jiceng_fhir_definitions_end - jiceng_fhir_definitions_data);
}

bool Definitions::IsResourceType(std::string_view name) const {
  const auto* t = FindIn(impl_->types, name);
  return t && t->kind == Impl::kResource && !t->is_abstract;
}

bool Definitions::IsKnownType(std::string_view name) const { return FindIn(impl_->types, name) != nullptr; }

bool Definitions::IsPrimitiveType(std::string_view name) const {
  const auto* t = FindIn(impl_->types, name);
  return t && t->kind == Impl::kPrimitive;
}

const std::vector<std::string>& Definitions::ResourceTypes() const { return impl_->resource_types; }

ResolvedElement Definitions::Resolve(std::string_view context, std::string_view name) const {
  const ContextDef* ctx = FindContext(context);
  if (!ctx) return {};
  const PropertyDef* p = ctx->FindProperty(name);
  if (!p) return {};
  return {p->element, std::string(p->type)};
}

std::vector<const ElementDef*> Definitions::Children(std::string_view context) const {
  const ContextDef* ctx = FindContext(context);
  return ctx ? ctx->children : std::vector<const ElementDef*>{};
}

std::string_view Definitions::BaseType(std::string_view type) const {
  const auto* t = FindIn(impl_->types, type);
  return t ? std::string_view(t->base) : std::string_view();
}

std::vector<const SearchParamDef*> Definitions::SearchParams(std::string_view resource_type) const {
  const auto* v = FindIn(impl_->search_by_type, resource_type);
  return v ? *v : std::vector<const SearchParamDef*>{};
}

const SearchParamDef* Definitions::FindSearchParam(std::string_view resource_type, std::string_view code) const {
  const auto* v = FindIn(impl_->search_by_type, resource_type);
  if (!v) return nullptr;
  for (const SearchParamDef* sp : *v)
    if (sp->code == code) return sp;
  return nullptr;
}

const SearchParamDef* Definitions::SearchParamByUrl(std::string_view url) const {
  const auto* sp = FindIn(impl_->search_by_url, url);
  return sp ? *sp : nullptr;
}

const std::vector<std::string>* Definitions::ValueSetCodes(std::string_view url) const {
  return FindIn(impl_->value_sets, url);
}

bool Definitions::ValueSetContains(std::string_view url, std::string_view code) const {
  if (const auto* index = FindIn(impl_->value_set_index, url)) return index->count(code) > 0;
  const auto* codes = FindIn(impl_->value_sets, url);
  if (!codes) return false;
  for (const auto& c : *codes)
    if (c == code) return true;
  return false;
}

const std::vector<std::string>& Definitions::PatientCompartmentParams(std::string_view resource_type) const {
  static const std::vector<std::string> kNone;
  const auto* v = FindIn(impl_->compartment, resource_type);
  return v ? *v : kNone;
}

const ContextDef* Definitions::FindContext(std::string_view context) const {
  if (const auto* c = FindIn(impl_->contexts, context)) return *c;
  // Not a type or element path: walk it step by step, so that deeper contentReference
  // recursion ("Questionnaire.item.item.item") and JSON names ("Observation.valueQuantity")
  // resolve too.
  auto dot = context.rfind('.');
  if (dot == std::string_view::npos) return nullptr;
  const ContextDef* parent = FindContext(context.substr(0, dot));
  if (!parent) return nullptr;
  const PropertyDef* p = parent->FindProperty(context.substr(dot + 1));
  return p && !p->is_primitive() ? p->child : nullptr;
}

const ElementDef* Definitions::FindElement(std::string_view path) const {
  const auto* e = FindIn(impl_->by_path, path);
  return e ? *e : nullptr;
}

const std::vector<SearchParamDef>& Definitions::AllSearchParams() const { return impl_->search_params; }

}  // namespace jiceng::fhir
