#include "fhir/fhirpath/path_plan.h"

#include <algorithm>
#include <cctype>
#include <span>

#include "fhir/fhirpath/ast.h"
#include "fhir/fhirpath/navigation.h"

// Every rule below restates what the evaluator (evaluator.cpp: MemberOf, Child, TypeMatches,
// Resolve, the union operator) does for the same expression with non-strict options; a change
// there must be mirrored here, or the case refused. How a member becomes items (EmitProperty,
// InferType) is one shared piece, navigation.h. The search extractor's
// tests and bench/extract (--dump before and after) compare the two over real resources.

namespace jiceng::fhirpath {
namespace {

// The branches of a union, left to right ("A | B | C" parses as "(A | B) | C"; the union of
// distinct unions is the distinct union of all their items, in order).
void CollectBranches(const AstNode& n, std::vector<const AstNode*>& out) {
  if (n.op == Op::kBinary && n.bin == BinOp::kUnion && n.args.size() == 2) {
    CollectBranches(*n.args[0], out);
    CollectBranches(*n.args[1], out);
  } else {
    out.push_back(&n);
  }
}

// The members `name` and `_name` of `o`. A small object (most FHIR elements) is scanned once
// for both, where two look-ups would scan it twice; a large one has a hash index to use.
void FindMembers(const json::object& o, std::string_view name, std::string_view ext_name,
                 const json::value*& val, const json::value*& ext) {
  constexpr size_t kScanned = 16;
  if (o.size() > kScanned) {
    val = o.if_contains(name);
    ext = o.if_contains(ext_name);
    return;
  }
  for (const json::key_value_pair& kv : o) {
    const std::string_view key = kv.key();
    if (key.size() == name.size()) {
      if (key == name) val = &kv.value();
    } else if (key.size() == ext_name.size() && key == ext_name) {
      ext = &kv.value();
    }
  }
}

}  // namespace

std::optional<PathPlan> PathPlan::Compile(const Expression& expr, std::string_view resource_type,
                                          const ModelInfo& model) {
  PathPlan plan;
  plan.model_ = &model;
  std::vector<const AstNode*> branches;
  CollectBranches(expr.root(), branches);
  plan.distinct_ = branches.size() > 1;

  // A type name as ofType() and `as` accept it (the evaluator's CheckTypeName); anything it
  // might reject is left to the evaluator.
  auto type_step = [&](const std::string& spec, Step& s) {
    s.kind = Step::Kind::kOfType;
    std::string_view name = spec;
    if (name.starts_with("System.")) {
      s.never_matches = true;  // a node is never of a System type
      s.name = std::string(name.substr(7));
      return true;
    }
    if (name.starts_with("FHIR.")) name.remove_prefix(5);
    s.name = std::string(name);
    return model.IsKnownType(name) || name == "BackboneElement" || name == "Element";
  };

  for (const AstNode* branch : branches) {
    // The chain from the innermost node (the focus) outwards.
    std::vector<const AstNode*> chain;
    for (const AstNode* n = branch; n; n = n->input.get()) chain.push_back(n);
    Branch b;
    bool never = false;  // the branch names another resource type: always empty
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      const AstNode& n = **it;
      Step s;
      if (n.op == Op::kMember) {
        const bool at_focus = it == chain.rbegin();
        if (at_focus && !n.name.empty() && std::isupper(static_cast<unsigned char>(n.name[0]))) {
          // A type name at the focus ("Observation.code"): the resource itself when it is of
          // that type; only known for plans that start at a resource.
          if (resource_type.empty()) return std::nullopt;
          if (plan.TypeMatches(resource_type, n.name, true)) continue;
          if (!model.IsResourceType(n.name)) return std::nullopt;
          never = true;
          break;
        }
        s.kind = Step::Kind::kChild;
        s.name = n.name;
        s.ext_name = "_" + n.name;
      } else if (n.op == Op::kAs && n.input) {
        if (!type_step(n.name, s)) return std::nullopt;
      } else if (n.op == Op::kFunction && n.input && n.fn == Fn::kOfType) {
        if (!type_step(n.name, s)) return std::nullopt;
      } else if (n.op == Op::kFunction && n.input && n.fn == Fn::kWhere && n.args.size() == 1 &&
                 n.args[0]->op == Op::kIs && n.args[0]->input &&
                 n.args[0]->input->op == Op::kFunction && n.args[0]->input->fn == Fn::kResolve &&
                 !n.args[0]->input->input && n.args[0]->input->args.empty()) {
        // .where(resolve() is T)
        if (!type_step(n.args[0]->name, s)) return std::nullopt;
        s.kind = Step::Kind::kResolvesTo;
      } else {
        return std::nullopt;
      }
      b.steps.push_back(std::move(s));
    }
    if (never) continue;
    // Resolve the elements ahead along the path while the context is certain: from the
    // resource type, through elements that are not choices.
    std::string context(resource_type);
    for (Step& s : b.steps) {
      if (s.kind != Step::Kind::kChild) continue;
      if (context.empty()) break;
      PropertyInfo pi = model.Resolve(context, s.name);
      if (!pi.found || pi.is_choice || pi.element_name != s.name) break;
      s.context = context;
      s.property = pi;
      context = std::string(pi.context);
    }
    plan.branches_.push_back(std::move(b));
  }
  return plan;
}

std::vector<std::string_view> PathPlan::LeadingElements() const {
  std::vector<std::string_view> out;
  for (const Branch& b : branches_) {
    if (b.steps.empty() || b.steps.front().kind != Step::Kind::kChild) return {};
    const std::string_view name = b.steps.front().name;
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

bool PathPlan::TypeMatches(std::string_view type, std::string_view name, bool allow_subtype) const {
  if (type.empty()) return false;
  if (type == name) return true;
  // `as`/ofType on primitives are exact; complex types and resources match their base types.
  if (!allow_subtype && IsFhirPrimitive(type)) return false;
  for (int guard = 0; guard < 16; ++guard) {
    type = model_->BaseType(type);
    if (type.empty()) return false;
    if (type == name) return true;
  }
  return false;
}

PathPlan::Outcome PathPlan::Child(const Step& s, const Item& item, Collection& out) const {
  if (!item.is_node()) return Outcome::kOk;
  const json::object* obj = nullptr;
  if (item.json() && item.json()->is_object()) {
    obj = &item.json()->get_object();
  } else if (item.primitive_extension() && item.primitive_extension()->is_object()) {
    return Outcome::kUnsupported;  // the id or extensions of a primitive ("_given")
  } else {
    return Outcome::kOk;  // a primitive has no children
  }
  const std::string_view ctx = item.context();
  const bool resolved_ahead = !s.context.empty() && ctx == s.context;
  const json::value* val = nullptr;
  const json::value* ext = nullptr;
  FindMembers(*obj, s.name, s.ext_name, val, ext);
  if (val || ext) {
    const PropertyInfo pi = resolved_ahead ? s.property : model_->Resolve(ctx, s.name);
    // A choice element named by its JSON name ("valueQuantity") is an error in the evaluator.
    if (pi.found && pi.is_choice && pi.element_name != s.name) return Outcome::kError;
    EmitProperty(val, ext, pi, out);
    return Outcome::kOk;
  }
  // Absent. An element resolved ahead is not a choice, so no "nameType" key can stand for it.
  if (resolved_ahead) return Outcome::kOk;
  // A choice element is stored under its typed name: "value" as "valueQuantity", …
  if (!model_->KnowsContext(ctx)) return Outcome::kUnsupported;  // typed from the key's suffix
  const std::string_view name = s.name;
  for (const auto& kv : *obj) {
    const std::string_view key = kv.key();
    const bool underscore = !key.empty() && key[0] == '_';
    const std::string_view bare = underscore ? key.substr(1) : key;
    if (bare.size() <= name.size() || !bare.starts_with(name) ||
        !std::isupper(static_cast<unsigned char>(bare[name.size()]))) {
      continue;
    }
    if (underscore && obj->contains(bare)) continue;  // emitted with its value
    const PropertyInfo pi = model_->Resolve(ctx, bare);
    if (!pi.found || !pi.is_choice || pi.element_name != name) continue;
    const json::value* v = underscore ? nullptr : &kv.value();
    const json::value* e = underscore ? &kv.value() : obj->if_contains("_" + std::string(bare));
    EmitProperty(v, e, pi, out);
    return Outcome::kOk;
  }
  return Outcome::kOk;
}

PathPlan::Outcome PathPlan::RunBranch(const Branch& b, const Item& input,
                                      const json::value& resource, Collection& out,
                                      Workspace& ws) const {
  std::span<const Item> current(&input, 1);
  for (size_t k = 0; k < b.steps.size(); ++k) {
    const Step& s = b.steps[k];
    const bool last = k + 1 == b.steps.size();
    Collection& next = last ? out : (current.data() == ws.a.data() ? ws.b : ws.a);
    if (!last) next.clear();
    const size_t before = next.size();
    for (const Item& item : current) {
      switch (s.kind) {
        case Step::Kind::kChild: {
          const Outcome o = Child(s, item, next);
          if (o != Outcome::kOk) return o;
          break;
        }
        case Step::Kind::kOfType:
          if (!s.never_matches && item.is_node() && TypeMatches(item.FhirType(), s.name, false)) {
            next.push_back(item);
          }
          break;
        case Step::Kind::kResolvesTo: {
          // resolve() of a reference that is neither contained ("#id") nor in a Bundle is the
          // typed stub the evaluator makes from "Type/id"; `is T` then tests that type.
          if (!item.is_node() || !item.json() || !item.json()->is_object()) {
            return Outcome::kUnsupported;
          }
          const auto ref = FindString(item.json()->get_object(), "reference");
          if (!ref) break;
          if (ref->starts_with("#")) return Outcome::kUnsupported;
          if (resource.is_object() &&
              FindString(resource.get_object(), "resourceType").value_or("") == "Bundle") {
            return Outcome::kUnsupported;
          }
          std::string_view r = *ref;
          if (const size_t h = r.find("/_history/"); h != std::string_view::npos) {
            r = r.substr(0, h);
          }
          const size_t slash = r.rfind('/');
          if (slash == std::string_view::npos || slash == 0) break;
          const size_t prev = r.rfind('/', slash - 1);
          const size_t from = prev == std::string_view::npos ? 0 : prev + 1;
          const std::string_view type = r.substr(from, slash - from);
          if (!s.never_matches && model_->IsResourceType(type) && TypeMatches(type, s.name, true)) {
            next.push_back(item);
          }
          break;
        }
      }
    }
    // Nothing left: the remaining steps (navigation and filters) cannot fail on no input.
    if (next.size() == before) return Outcome::kOk;
    current = std::span<const Item>(next.data() + before, next.size() - before);
  }
  if (b.steps.empty()) out.push_back(input);
  return Outcome::kOk;
}

PathPlan::Outcome PathPlan::Run(const Item& input, const json::value& resource, Collection& out,
                                Workspace& ws) const {
  out.clear();
  if (!distinct_) {
    for (const Branch& b : branches_) {
      const Outcome o = RunBranch(b, input, resource, out, ws);
      if (o != Outcome::kOk) return o;
    }
    return Outcome::kOk;
  }
  for (const Branch& b : branches_) {
    ws.c.clear();
    const Outcome o = RunBranch(b, input, resource, ws.c, ws);
    if (o != Outcome::kOk) return o;
    for (const Item& i : ws.c) AppendDistinct(out, i);
  }
  return Outcome::kOk;
}

}  // namespace jiceng::fhirpath
