// Tree-walking evaluator over the compiled AST. Collections are vectors of Items; node items
// point into the evaluated JSON, so navigation allocates only the vectors.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <regex>

#include "base/base64.h"
#include "base/time.h"
#include "fhir/fhirpath/ast.h"
#include "fhir/fhirpath/navigation.h"
#include "fhir/fhirpath/static_check.h"
#include "fhir/xhtml.h"

namespace jiceng::fhirpath {
namespace {

using K = Item::Kind;

Error ExecError(const std::string& msg) { return Invalid("FHIRPath: " + msg); }

struct Env {
  const EvalOptions& opt;
  const ModelInfo& model;
  const json::value* resource;
  const json::value* root;
  Collection context;
};

struct Frame {
  const Collection* focus = nullptr;  // $this (and the input of focus-less paths)
  int64_t index = -1;
  const Collection* total = nullptr;
};

bool IsNumber(const Item& i) { return i.kind() == K::kInteger || i.kind() == K::kDecimal; }
double NumberOf(const Item& i) {
  return i.kind() == K::kInteger ? static_cast<double>(i.integer()) : i.decimal().value;
}
bool IsTemporal(const Item& i) {
  return i.kind() == K::kDate || i.kind() == K::kDateTime || i.kind() == K::kTime;
}

// The raw string of a string-like item (System String or a node holding a JSON string).
const std::string_view* NoStr() { return nullptr; }
std::optional<std::string_view> StringOf(const Item& i) {
  if (i.kind() == K::kString) return std::string_view(i.string());
  if (i.is_node() && i.json() && i.json()->is_string()) return std::string_view(i.json()->get_string());
  (void)NoStr;
  return std::nullopt;
}

// Lenient implicit conversion for untyped data: a string compared with a temporal is read as
// one (strings from JSON whose element type the model could not tell).
std::optional<Item> CoerceToTemporal(const Item& s, const Item& like) {
  if (s.kind() != K::kString) return std::nullopt;
  DtKind k = like.kind() == K::kTime ? DtKind::kTime : DtKind::kDateTime;
  auto d = ParseDateTimeText(s.string(), k);
  if (!d) return std::nullopt;
  if (like.kind() == K::kDate && d->precision <= DtPrecision::kDay) d->kind = DtKind::kDate;
  return Item::Temporal(*d);
}

bool NodeIdentical(const Item& a, const Item& b) {
  return a.json() == b.json() && a.primitive_extension() == b.primitive_extension();
}

// Equality of two items: nullopt when the spec says "empty" (uncertain temporal precision,
// incomparable quantities).
std::optional<bool> ItemsEqual(const Item& ra, const Item& rb) {
  Item a = ra.ToSystem(), b = rb.ToSystem();
  if (a.is_node() || b.is_node()) {
    if (!a.is_node() || !b.is_node()) return false;
    if (!a.json() || !b.json()) return NodeIdentical(a, b);
    return JsonEqual(*a.json(), *b.json());
  }
  if (IsTemporal(a) && b.kind() == K::kString) {
    if (auto c = CoerceToTemporal(b, a)) b = *c;
  } else if (IsTemporal(b) && a.kind() == K::kString) {
    if (auto c = CoerceToTemporal(a, b)) a = *c;
  }
  if (IsNumber(a) && IsNumber(b)) {
    if (a.kind() == K::kInteger && b.kind() == K::kInteger) return a.integer() == b.integer();
    return DecimalEquals(NumberOf(a), NumberOf(b));
  }
  if (a.kind() == K::kQuantity && IsNumber(b)) b = Item::Quant({{NumberOf(b), 0}, "1"});
  if (b.kind() == K::kQuantity && IsNumber(a)) a = Item::Quant({{NumberOf(a), 0}, "1"});
  if (IsTemporal(a) && IsTemporal(b)) {
    if ((a.kind() == K::kTime) != (b.kind() == K::kTime)) return false;
    auto c = CompareDateTime(a.temporal(), b.temporal());
    if (!c) return std::nullopt;
    return *c == 0;
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::kBoolean: return a.boolean() == b.boolean();
    case K::kString:
    case K::kType: return a.string() == b.string();
    case K::kQuantity: {
      auto v = ConvertQuantityValue(b.quantity(), a.quantity().unit);
      if (!v) return std::nullopt;
      return DecimalEquals(a.quantity().value.value, *v);
    }
    default: return false;
  }
}

std::string NormalizeForEquivalence(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

double RoundTo(double v, int scale) {
  double f = std::pow(10.0, scale);
  return std::round(v * f) / f;
}

bool DecimalsEquivalent(double a, int sa, double b, int sb) {
  int s = std::min(sa < 0 ? 8 : sa, sb < 0 ? 8 : sb);
  return DecimalEquals(RoundTo(a, s), RoundTo(b, s));
}

bool ItemsEquivalent(const Item& ra, const Item& rb) {
  Item a = ra.ToSystem(), b = rb.ToSystem();
  if (a.is_node() || b.is_node()) {
    if (!a.is_node() || !b.is_node()) return false;
    if (!a.json() || !b.json()) return NodeIdentical(a, b);
    return JsonEqual(*a.json(), *b.json());
  }
  if (IsTemporal(a) && b.kind() == K::kString) {
    if (auto c = CoerceToTemporal(b, a)) b = *c;
  } else if (IsTemporal(b) && a.kind() == K::kString) {
    if (auto c = CoerceToTemporal(a, b)) a = *c;
  }
  if (IsNumber(a) && IsNumber(b)) {
    int sa = a.kind() == K::kInteger ? 0 : a.decimal().scale;
    int sb = b.kind() == K::kInteger ? 0 : b.decimal().scale;
    return DecimalsEquivalent(NumberOf(a), sa, NumberOf(b), sb);
  }
  if (IsTemporal(a) && IsTemporal(b)) {
    if ((a.kind() == K::kTime) != (b.kind() == K::kTime)) return false;
    return EquivalentDateTime(a.temporal(), b.temporal());
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::kBoolean: return a.boolean() == b.boolean();
    case K::kString: return NormalizeForEquivalence(a.string()) == NormalizeForEquivalence(b.string());
    case K::kType: return a.string() == b.string();
    case K::kQuantity: {
      std::string_view ua = a.quantity().unit, ub = b.quantity().unit;
      // Calendar year/month are equivalent to UCUM 'a'/'mo' (but not equal).
      auto cal_to_ucum = [](std::string_view u) -> std::string_view {
        std::string_view c = CalendarUnit(u);
        return c == "year" ? "a" : c == "month" ? "mo" : u;
      };
      Quantity qb = b.quantity();
      qb.unit = std::string(cal_to_ucum(ub));
      auto v = ConvertQuantityValue(qb, cal_to_ucum(ua));
      if (!v) return false;
      return DecimalsEquivalent(a.quantity().value.value, a.quantity().value.scale, *v,
                                b.quantity().value.scale);
    }
    default: return false;
  }
}

// Three-way comparison for < <= > >=; nullopt: empty result.
Result<std::optional<int>> CompareItems(const Item& ra, const Item& rb) {
  Item a = ra.ToSystem(), b = rb.ToSystem();
  if (IsTemporal(a) && b.kind() == K::kString) {
    if (auto c = CoerceToTemporal(b, a)) b = *c;
  } else if (IsTemporal(b) && a.kind() == K::kString) {
    if (auto c = CoerceToTemporal(a, b)) a = *c;
  }
  if (IsNumber(a) && IsNumber(b)) {
    if (a.kind() == K::kInteger && b.kind() == K::kInteger) {
      return std::optional<int>(a.integer() < b.integer() ? -1 : a.integer() > b.integer());
    }
    double x = NumberOf(a), y = NumberOf(b);
    if (DecimalEquals(x, y)) return std::optional<int>(0);
    return std::optional<int>(x < y ? -1 : 1);
  }
  if (a.kind() == K::kString && b.kind() == K::kString) {
    int c = a.string().compare(b.string());
    return std::optional<int>(c < 0 ? -1 : c > 0);
  }
  if (IsTemporal(a) && IsTemporal(b) && (a.kind() == K::kTime) == (b.kind() == K::kTime)) {
    return CompareDateTime(a.temporal(), b.temporal());
  }
  if (a.kind() == K::kQuantity && b.kind() == K::kQuantity) {
    auto v = ConvertQuantityValue(b.quantity(), a.quantity().unit);
    if (!v) return std::optional<int>();
    double x = a.quantity().value.value;
    if (DecimalEquals(x, *v)) return std::optional<int>(0);
    return std::optional<int>(x < *v ? -1 : 1);
  }
  return ExecError("cannot compare " + a.TypeName() + " with " + b.TypeName());
}

bool ContainsItem(const Collection& c, const Item& x) {
  for (const Item& i : c) {
    auto e = ItemsEqual(i, x);
    if (e && *e) return true;
  }
  return false;
}

std::string_view SystemTypeName(K k) {
  switch (k) {
    case K::kBoolean: return "Boolean";
    case K::kInteger: return "Integer";
    case K::kDecimal: return "Decimal";
    case K::kString: return "String";
    case K::kDate: return "Date";
    case K::kDateTime: return "DateTime";
    case K::kTime: return "Time";
    case K::kQuantity: return "Quantity";
    default: return {};
  }
}

bool IsSystemTypeName(std::string_view n) {
  return n == "Boolean" || n == "Integer" || n == "Decimal" || n == "String" || n == "Date" ||
         n == "DateTime" || n == "Time" || n == "Quantity";
}

class Evaluator {
 public:
  explicit Evaluator(Env& env) : env_(env) {}

  Result<Collection> Eval(const AstNode& n, const Frame& f) {
    switch (n.op) {
      case Op::kLiteral: return Collection{n.literal};
      case Op::kEmpty: return Collection{};
      case Op::kThis: return *f.focus;
      case Op::kIndex:
        if (f.index < 0) return Collection{};
        return Collection{Item::Integer(f.index)};
      case Op::kTotal:
        if (!f.total) return Collection{};
        return *f.total;
      case Op::kVariable: return Variable(n.name);
      case Op::kMember: {
        if (!n.input) return MemberOf(*f.focus, n.name, true);
        JC_ASSIGN_OR_RETURN(Collection in, Eval(*n.input, f));
        return MemberOf(in, n.name, false);
      }
      case Op::kIndexer: {
        JC_ASSIGN_OR_RETURN(Collection in, Eval(*n.input, f));
        JC_ASSIGN_OR_RETURN(Collection idx, Eval(*n.args[0], f));
        JC_ASSIGN_OR_RETURN(auto i, SingleInteger(idx, "indexer"));
        if (!i || *i < 0 || static_cast<size_t>(*i) >= in.size()) return Collection{};
        return Collection{in[static_cast<size_t>(*i)]};
      }
      case Op::kNegate: {
        JC_ASSIGN_OR_RETURN(Collection in, Eval(*n.input, f));
        if (in.empty()) return in;
        if (in.size() > 1) return ExecError("unary minus on a collection");
        Item v = in[0].ToSystem();
        if (v.kind() == K::kInteger) return Collection{Item::Integer(-v.integer())};
        if (v.kind() == K::kDecimal) {
          // Negating zero gives zero, not "-0".
          double x = v.decimal().value;
          return Collection{Item::Dec({x == 0 ? 0.0 : -x, v.decimal().scale})};
        }
        if (v.kind() == K::kQuantity) {
          Quantity q = v.quantity();
          q.value.value = -q.value.value;
          return Collection{Item::Quant(q)};
        }
        return ExecError("unary minus on " + v.TypeName());
      }
      case Op::kIs:
      case Op::kAs: {
        JC_ASSIGN_OR_RETURN(Collection in, Eval(*n.input, f));
        JC_RETURN_IF_ERROR(CheckTypeName(n.name));
        if (in.empty()) return in;
        if (n.op == Op::kAs) {
          // R4's search parameters apply the `as` operator to collections
          // ("(ActivityDefinition.useContext.value as CodeableConcept)"), so the operator
          // filters like ofType(); the as() function keeps the spec's singleton error.
          Collection out;
          for (const Item& i : in) {
            if (TypeMatches(i, n.name, false)) out.push_back(i);
          }
          return out;
        }
        if (in.size() > 1) return ExecError("'is' on a collection of " + std::to_string(in.size()));
        bool m = TypeMatches(in[0], n.name, true);
        if (n.op == Op::kIs) return Collection{Item::Boolean(m)};
        return m ? in : Collection{};
      }
      case Op::kBinary: return Binary(n, f);
      case Op::kFunction: return Function(n, f);
    }
    return ExecError("unknown node");
  }

 private:
  // --- navigation ----------------------------------------------------------------------------
  Result<Collection> Variable(const std::string& name) {
    auto it = env_.opt.variables.find(name);
    if (it != env_.opt.variables.end()) return it->second;
    if (name == "resource") return Collection{RootItem(env_.resource)};
    if (name == "rootResource") return Collection{RootItem(env_.root)};
    if (name == "context") return env_.context;
    if (name == "ucum") return Collection{Item::String("http://unitsofmeasure.org")};
    if (name == "sct") return Collection{Item::String("http://snomed.info/sct")};
    if (name == "loinc") return Collection{Item::String("http://loinc.org")};
    if (name.rfind("vs-", 0) == 0) {
      return Collection{Item::String("http://hl7.org/fhir/ValueSet/" + name.substr(3))};
    }
    if (name.rfind("ext-", 0) == 0) {
      return Collection{Item::String("http://hl7.org/fhir/StructureDefinition/" + name.substr(4))};
    }
    return ExecError("unknown variable %" + name);
  }

 public:
  static Item RootItem(const json::value* v) {
    std::string_view type;
    if (v && v->is_object()) {
      if (const json::value* rt = v->get_object().if_contains("resourceType");
          rt && rt->is_string()) {
        type = rt->get_string();
      }
    }
    return Item::Node(v, nullptr, type, type);
  }

 private:
  static std::string LowerFirst(std::string_view s) {
    std::string r(s);
    if (!r.empty()) r[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(r[0])));
    return r;
  }

  // Children of one node named `name` (FHIRPath name: choice elements without suffix).
  Status Child(const Item& item, std::string_view name, Collection& out) {
    if (!item.is_node()) return Status::Ok();
    const json::object* obj = nullptr;
    if (item.json() && item.json()->is_object()) {
      obj = &item.json()->get_object();
    } else if (item.primitive_extension() && item.primitive_extension()->is_object()) {
      // id/extension of a primitive live in its "_name" sibling.
      obj = &item.primitive_extension()->get_object();
      PropertyInfo pi;
      if (name == "extension") pi = {true, "Extension", "Extension", "extension", false};
      else if (name == "id") pi = {true, "string", "string", "id", false};
      EmitProperty(obj->if_contains(name), nullptr, pi, out);
      return Status::Ok();
    }
    if (!obj) return Status::Ok();
    const ModelInfo& model = env_.model;
    std::string_view ctx = item.context();
    const json::value* val = obj->if_contains(name);
    std::string ext_key = "_" + std::string(name);
    const json::value* ext = obj->if_contains(ext_key);
    if (val || ext) {
      PropertyInfo pi = model.Resolve(ctx, name);
      if (pi.found && pi.is_choice && pi.element_name != name) {
        return ExecError("'" + std::string(name) + "' names a choice element by its JSON name; use '" +
                         std::string(pi.element_name) + "'");
      }
      if (!pi.found && env_.opt.strict && model.KnowsContext(ctx)) {
        return ExecError("unknown element '" + std::string(name) + "' on " + std::string(ctx));
      }
      EmitProperty(val, ext, pi, out);
      return Status::Ok();
    }
    // Choice element: "value" is stored as "valueQuantity", "valueString", …
    bool known = model.KnowsContext(ctx);
    for (const auto& kv : *obj) {
      std::string_view key = kv.key();
      bool underscore = !key.empty() && key[0] == '_';
      std::string_view bare = underscore ? key.substr(1) : key;
      if (bare.size() <= name.size() || bare.substr(0, name.size()) != name ||
          !std::isupper(static_cast<unsigned char>(bare[name.size()]))) {
        continue;
      }
      if (underscore && obj->contains(bare)) continue;  // emitted with its value
      PropertyInfo pi;
      if (known) {
        pi = model.Resolve(ctx, bare);
        if (!pi.found || !pi.is_choice || pi.element_name != name) continue;
      } else {
        std::string_view suffix = bare.substr(name.size());
        std::string lower = LowerFirst(suffix);
        if (IsFhirPrimitive(lower)) {
          pi.type = InternType(lower);
        } else if (model.IsKnownType(suffix)) {
          pi.type = suffix;  // view into the JSON key: stable
          pi.context = suffix;
        } else {
          continue;
        }
        pi.found = true;
      }
      const json::value* v = underscore ? nullptr : &kv.value();
      const json::value* e = underscore ? &kv.value() : obj->if_contains("_" + std::string(bare));
      EmitProperty(v, e, pi, out);
      return Status::Ok();
    }
    // By its FHIRPath name: a choice element ("value") absent from the data is no JSON property.
    if (env_.opt.strict && known && !model.ResolveElement(ctx, name).found) {
      return ExecError("unknown element '" + std::string(name) + "' on " + std::string(ctx));
    }
    return Status::Ok();
  }

  static std::string_view InternType(const std::string& lower) {
    for (std::string_view p : {"boolean", "integer", "string", "decimal", "uri", "url",
                               "canonical", "base64Binary", "instant", "date", "dateTime",
                               "time", "code", "oid", "id", "markdown", "unsignedInt",
                               "positiveInt", "uuid", "xhtml"}) {
      if (p == lower) return p;
    }
    return {};
  }

  Result<Collection> MemberOf(const Collection& in, const std::string& name, bool at_focus) {
    Collection out;
    bool type_name = at_focus && !name.empty() &&
                     std::isupper(static_cast<unsigned char>(name[0]));
    for (const Item& item : in) {
      if (item.kind() == K::kType) {
        // TypeInfo: "namespace" and "name" of a "NS.Name" pair.
        const std::string& full = item.string();
        size_t dot = full.find('.');
        if (name == "namespace") out.push_back(Item::String(full.substr(0, dot)));
        else if (name == "name") out.push_back(Item::String(full.substr(dot + 1)));
        continue;
      }
      if (type_name && item.is_node()) {
        if (TypeMatches(item, name, true)) {
          out.push_back(item);
          continue;
        }
        if (env_.model.IsResourceType(name)) {
          if (env_.opt.strict) {
            return ExecError("'" + name + "' does not match the context type " +
                             std::string(item.FhirType()));
          }
          continue;
        }
      }
      JC_RETURN_IF_ERROR(Child(item, name, out));
    }
    return out;
  }

  void AllChildren(const Item& item, Collection& out) {
    if (!item.is_node()) return;
    const json::value* base = item.json();
    if (!base || !base->is_object()) {
      if (item.primitive_extension() && item.primitive_extension()->is_object()) {
        const json::object& o = item.primitive_extension()->get_object();
        EmitProperty(o.if_contains("extension"), nullptr,
                     {true, "Extension", "Extension", "extension", false}, out);
      }
      return;
    }
    const json::object& obj = base->get_object();
    for (const auto& kv : obj) {
      std::string_view key = kv.key();
      if (key == "resourceType") continue;
      bool underscore = !key.empty() && key[0] == '_';
      std::string_view bare = underscore ? key.substr(1) : key;
      if (underscore && obj.contains(bare)) continue;
      PropertyInfo pi = env_.model.Resolve(item.context(), bare);
      const json::value* v = underscore ? nullptr : &kv.value();
      const json::value* e = underscore ? &kv.value() : obj.if_contains("_" + std::string(bare));
      EmitProperty(v, e, pi, out);
    }
  }

  // --- types ---------------------------------------------------------------------------------
  Status CheckTypeName(const std::string& spec) {
    std::string_view ns, name = spec;
    SplitType(spec, ns, name);
    if (ns == "System") {
      return Status::Ok();  // unknown System names simply never match
    }
    if ((ns.empty() && IsSystemTypeName(name)) || env_.model.IsKnownType(name) ||
        name == "BackboneElement" || name == "Element") {
      return Status::Ok();
    }
    return ExecError("unknown type '" + spec + "'");
  }

  static void SplitType(std::string_view spec, std::string_view& ns, std::string_view& name) {
    ns = {};
    name = spec;
    if (spec.rfind("FHIR.", 0) == 0) ns = "FHIR", name = spec.substr(5);
    else if (spec.rfind("System.", 0) == 0) ns = "System", name = spec.substr(7);
  }

  bool TypeMatches(const Item& item, std::string_view spec, bool allow_subtype) {
    std::string_view ns, name;
    SplitType(spec, ns, name);
    if (item.is_node()) {
      if (ns == "System") return false;
      std::string_view t = item.FhirType();
      if (t.empty()) return false;
      if (t == name) return true;
      // `as`/ofType on primitives are exact (code is not a string for them); complex types
      // and resources match their base types (Age is a Quantity).
      if (!allow_subtype && IsFhirPrimitive(t)) return false;
      for (int guard = 0; guard < 16; ++guard) {
        t = env_.model.BaseType(t);
        if (t.empty()) return false;
        if (t == name) return true;
      }
      return false;
    }
    if (ns == "FHIR") return false;
    return SystemTypeName(item.kind()) == name;
  }

  // --- singletons ----------------------------------------------------------------------------
  Result<std::optional<Item>> Single(const Collection& c, const char* what) {
    if (c.empty()) return std::optional<Item>();
    if (c.size() > 1) {
      return ExecError(std::string(what) + " expects a single item, got " +
                       std::to_string(c.size()));
    }
    return std::optional<Item>(c[0].ToSystem());
  }

  Result<std::optional<int64_t>> SingleInteger(const Collection& c, const char* what) {
    JC_ASSIGN_OR_RETURN(auto i, Single(c, what));
    if (!i) return std::optional<int64_t>();
    if (i->kind() != K::kInteger) return ExecError(std::string(what) + " expects an integer");
    return std::optional<int64_t>(i->integer());
  }

  // Singleton evaluation in a boolean context: a single non-boolean item counts as true.
  Result<std::optional<bool>> SingleBool(const Collection& c, const char* what) {
    JC_ASSIGN_OR_RETURN(auto i, Single(c, what));
    if (!i) return std::optional<bool>();
    if (i->kind() == K::kBoolean) return std::optional<bool>(i->boolean());
    return std::optional<bool>(true);
  }

  Result<std::optional<std::string>> SingleString(const Collection& c, const char* what) {
    if (c.empty()) return std::optional<std::string>();
    if (c.size() > 1) return ExecError(std::string(what) + " expects a single item");
    if (auto s = StringOf(c[0])) return std::optional<std::string>(std::string(*s));
    return ExecError(std::string(what) + " expects a string, got " + c[0].TypeName());
  }

  // --- operators -----------------------------------------------------------------------------
  static Collection Bool(bool b) { return Collection{Item::Boolean(b)}; }
  static Collection Bool(std::optional<bool> b) {
    if (!b) return {};
    return Collection{Item::Boolean(*b)};
  }

  Result<Collection> Binary(const AstNode& n, const Frame& f) {
    BinOp op = n.bin;
    if (op == BinOp::kAnd || op == BinOp::kOr || op == BinOp::kXor || op == BinOp::kImplies) {
      JC_ASSIGN_OR_RETURN(Collection lc, Eval(*n.args[0], f));
      JC_ASSIGN_OR_RETURN(auto l, SingleBool(lc, "boolean operator"));
      // Short-circuit where the spec's truth tables allow.
      if (op == BinOp::kAnd && l && !*l) return Bool(false);
      if (op == BinOp::kOr && l && *l) return Bool(true);
      if (op == BinOp::kImplies && l && !*l) return Bool(true);
      JC_ASSIGN_OR_RETURN(Collection rc, Eval(*n.args[1], f));
      JC_ASSIGN_OR_RETURN(auto r, SingleBool(rc, "boolean operator"));
      switch (op) {
        case BinOp::kAnd:
          if (r && !*r) return Bool(false);
          if (l && r) return Bool(true);
          return Collection{};
        case BinOp::kOr:
          if (r && *r) return Bool(true);
          if (l && r) return Bool(false);
          return Collection{};
        case BinOp::kXor:
          if (l && r) return Bool(*l != *r);
          return Collection{};
        default:  // implies; l is true or empty
          if (r && *r) return Bool(true);
          if (l && r) return Bool(false);
          return Collection{};
      }
    }
    JC_ASSIGN_OR_RETURN(Collection l, Eval(*n.args[0], f));
    JC_ASSIGN_OR_RETURN(Collection r, Eval(*n.args[1], f));
    switch (op) {
      case BinOp::kUnion: {
        Collection out;
        for (const Item& i : l) AppendDistinct(out, i);
        for (const Item& i : r) AppendDistinct(out, i);
        return out;
      }
      case BinOp::kEq:
      case BinOp::kNe: {
        if (l.empty() || r.empty()) return Collection{};
        std::optional<bool> eq = true;
        if (l.size() != r.size()) {
          eq = false;
        } else {
          for (size_t i = 0; i < l.size() && eq && *eq; ++i) eq = ItemsEqual(l[i], r[i]);
        }
        if (!eq) return Collection{};
        return Bool(op == BinOp::kEq ? *eq : !*eq);
      }
      case BinOp::kEquiv:
      case BinOp::kNequiv: {
        bool eq = Equivalent(l, r);
        return Bool(op == BinOp::kEquiv ? eq : !eq);
      }
      case BinOp::kLt:
      case BinOp::kLe:
      case BinOp::kGt:
      case BinOp::kGe: {
        JC_ASSIGN_OR_RETURN(auto a, Single(l, "comparison"));
        JC_ASSIGN_OR_RETURN(auto b, Single(r, "comparison"));
        if (!a || !b) return Collection{};
        JC_ASSIGN_OR_RETURN(auto c, CompareItems(*a, *b));
        if (!c) return Collection{};
        bool res = op == BinOp::kLt   ? *c < 0
                   : op == BinOp::kLe ? *c <= 0
                   : op == BinOp::kGt ? *c > 0
                                      : *c >= 0;
        return Bool(res);
      }
      case BinOp::kIn:
      case BinOp::kContains: {
        const Collection& item = op == BinOp::kIn ? l : r;
        const Collection& coll = op == BinOp::kIn ? r : l;
        if (item.empty()) return Collection{};
        if (item.size() > 1) return ExecError("membership test on a collection");
        return Bool(ContainsItem(coll, item[0]));
      }
      case BinOp::kConcat: {
        JC_ASSIGN_OR_RETURN(auto a, Single(l, "&"));
        JC_ASSIGN_OR_RETURN(auto b, Single(r, "&"));
        return Collection{Item::String((a ? a->ToText() : "") + (b ? b->ToText() : ""))};
      }
      default:
        return Arithmetic(op, l, r);
    }
  }

  bool Equivalent(const Collection& l, const Collection& r) {
    if (l.size() != r.size()) return false;
    std::vector<bool> used(r.size(), false);
    for (const Item& a : l) {
      bool found = false;
      for (size_t j = 0; j < r.size() && !found; ++j) {
        if (!used[j] && ItemsEquivalent(a, r[j])) used[j] = found = true;
      }
      if (!found) return false;
    }
    return true;
  }

  Result<Collection> Arithmetic(BinOp op, const Collection& lc, const Collection& rc) {
    JC_ASSIGN_OR_RETURN(auto la, Single(lc, "arithmetic"));
    JC_ASSIGN_OR_RETURN(auto rb, Single(rc, "arithmetic"));
    if (!la || !rb) return Collection{};
    Item a = *la, b = *rb;
    if (a.kind() == K::kInteger && b.kind() == K::kInteger && op != BinOp::kDiv) {
      int64_t x = a.integer(), y = b.integer(), r = 0;
      switch (op) {
        case BinOp::kAdd:
          if (__builtin_add_overflow(x, y, &r)) return Collection{};
          break;
        case BinOp::kSub:
          if (__builtin_sub_overflow(x, y, &r)) return Collection{};
          break;
        case BinOp::kMul:
          if (__builtin_mul_overflow(x, y, &r)) return Collection{};
          break;
        case BinOp::kIntDiv:
          if (y == 0) return Collection{};
          r = x / y;
          break;
        case BinOp::kMod:
          if (y == 0) return Collection{};
          r = x % y;
          break;
        default: break;
      }
      return Collection{Item::Integer(r)};
    }
    if (IsNumber(a) && IsNumber(b)) {
      double x = NumberOf(a), y = NumberOf(b);
      int sa = a.kind() == K::kInteger ? 0 : a.decimal().scale;
      int sb = b.kind() == K::kInteger ? 0 : b.decimal().scale;
      int scale = (sa < 0 || sb < 0) ? -1 : std::max(sa, sb);
      switch (op) {
        case BinOp::kAdd: return Collection{Item::Dec({x + y, scale})};
        case BinOp::kSub: return Collection{Item::Dec({x - y, scale})};
        case BinOp::kMul:
          return Collection{Item::Dec({x * y, (sa < 0 || sb < 0) ? -1 : sa + sb})};
        case BinOp::kDiv:
          if (y == 0) return Collection{};
          return Collection{Item::Dec({x / y, -1})};
        case BinOp::kIntDiv:
          if (y == 0) return Collection{};
          return Collection{Item::Integer(static_cast<int64_t>(std::trunc(x / y)))};
        case BinOp::kMod:
          if (y == 0) return Collection{};
          return Collection{Item::Dec({std::fmod(x, y), scale})};
        default: break;
      }
    }
    if (op == BinOp::kAdd && a.kind() == K::kString && b.kind() == K::kString) {
      return Collection{Item::String(a.string() + b.string())};
    }
    if ((op == BinOp::kAdd || op == BinOp::kSub) && IsTemporal(a) && b.kind() == K::kQuantity) {
      auto d = AddDuration(a.temporal(), b.quantity(), op == BinOp::kSub);
      if (!d) return ExecError("cannot add " + FormatQuantity(b.quantity()) + " to a date/time");
      return Collection{Item::Temporal(*d)};
    }
    if (a.kind() == K::kQuantity || b.kind() == K::kQuantity) {
      if (IsNumber(a)) a = Item::Quant({{NumberOf(a), 0}, "1"});
      if (IsNumber(b)) b = Item::Quant({{NumberOf(b), 0}, "1"});
      if (a.kind() == K::kQuantity && b.kind() == K::kQuantity) {
        const Quantity& qa = a.quantity();
        const Quantity& qb = b.quantity();
        if (op == BinOp::kMul || op == BinOp::kDiv) {
          if (qb.unit == "1" || qa.unit == "1") {
            Quantity q = qb.unit == "1" ? qa : qb;
            double x = qa.value.value, y = qb.value.value;
            if (op == BinOp::kDiv) {
              if (y == 0) return Collection{};
              if (qb.unit != "1") return MultiplyOrFail(qa, qb, true);
              q.value = {x / y, -1};
            } else {
              q.value = {x * y, -1};
            }
            return Collection{Item::Quant(q)};
          }
          return MultiplyOrFail(qa, qb, op == BinOp::kDiv);
        }
        if (op == BinOp::kAdd || op == BinOp::kSub) {
          auto v = ConvertQuantityValue(qb, qa.unit);
          if (!v) return ExecError("incompatible units " + qa.unit + " and " + qb.unit);
          Quantity q = qa;
          q.value.value = op == BinOp::kAdd ? qa.value.value + *v : qa.value.value - *v;
          q.value.scale = std::max(qa.value.scale, qb.value.scale);
          return Collection{Item::Quant(q)};
        }
      }
    }
    if (IsTemporal(a) && IsNumber(b)) {
      return ExecError("a date/time can only be added to a quantity");
    }
    return ExecError("operator not defined for " + a.TypeName() + " and " + b.TypeName());
  }

  Result<Collection> MultiplyOrFail(const Quantity& a, const Quantity& b, bool divide) {
    auto q = MultiplyQuantity(a, b, divide);
    if (!q) return Collection{};
    return Collection{Item::Quant(*q)};
  }

  // --- functions -----------------------------------------------------------------------------
  Result<Collection> Function(const AstNode& n, const Frame& f);
  Result<Collection> Conversion(Fn fn, const Collection& in);
  Result<Collection> StringFn(const AstNode& n, const Collection& in, const Frame& f);
  Result<Collection> MathFn(const AstNode& n, const Collection& in, const Frame& f);
  Result<Collection> Resolve(const Collection& in);
  const json::value* FindReference(std::string_view ref);

  Result<Collection> Arg(const AstNode& n, size_t i, const Frame& f) { return Eval(*n.args[i], f); }

  Env& env_;
};

Result<Collection> Evaluator::Function(const AstNode& n, const Frame& f) {
  Collection in_storage;
  const Collection* inp = f.focus;
  if (n.input) {
    JC_ASSIGN_OR_RETURN(in_storage, Eval(*n.input, f));
    inp = &in_storage;
  }
  const Collection& in = *inp;
  auto each = [&](auto&& fn) -> Status {
    // Evaluates a lazy argument per item with $this/$index bound.
    for (size_t i = 0; i < in.size(); ++i) {
      Collection one{in[i]};
      Frame sub{&one, static_cast<int64_t>(i), f.total};
      JC_RETURN_IF_ERROR(fn(i, sub));
    }
    return Status::Ok();
  };
  switch (n.fn) {
    case Fn::kEmpty: return Bool(in.empty());
    case Fn::kExists: {
      if (n.args.empty()) return Bool(!in.empty());
      bool any = false;
      JC_RETURN_IF_ERROR(each([&](size_t, const Frame& sub) -> Status {
        if (any) return Status::Ok();
        JC_ASSIGN_OR_RETURN(Collection c, Arg(n, 0, sub));
        JC_ASSIGN_OR_RETURN(auto b, SingleBool(c, "exists"));
        if (b && *b) any = true;
        return Status::Ok();
      }));
      return Bool(any);
    }
    case Fn::kAll: {
      bool all = true;
      JC_RETURN_IF_ERROR(each([&](size_t, const Frame& sub) -> Status {
        if (!all) return Status::Ok();
        JC_ASSIGN_OR_RETURN(Collection c, Arg(n, 0, sub));
        JC_ASSIGN_OR_RETURN(auto b, SingleBool(c, "all"));
        if (!b || !*b) all = false;
        return Status::Ok();
      }));
      return Bool(all);
    }
    case Fn::kAllTrue:
    case Fn::kAnyTrue:
    case Fn::kAllFalse:
    case Fn::kAnyFalse: {
      bool want = n.fn == Fn::kAllTrue || n.fn == Fn::kAnyTrue;
      bool all = n.fn == Fn::kAllTrue || n.fn == Fn::kAllFalse;
      bool result = all;
      for (const Item& i : in) {
        Item v = i.ToSystem();
        if (v.kind() != K::kBoolean) return ExecError(n.name + "() on a non-boolean item");
        if (all && v.boolean() != want) result = false;
        if (!all && v.boolean() == want) result = true;
      }
      return Bool(result);
    }
    case Fn::kSubsetOf:
    case Fn::kSupersetOf: {
      JC_ASSIGN_OR_RETURN(Collection other, Arg(n, 0, f));
      const Collection& sub = n.fn == Fn::kSubsetOf ? in : other;
      const Collection& super = n.fn == Fn::kSubsetOf ? other : in;
      for (const Item& i : sub) {
        if (!ContainsItem(super, i)) return Bool(false);
      }
      return Bool(true);
    }
    case Fn::kCount: return Collection{Item::Integer(static_cast<int64_t>(in.size()))};
    case Fn::kDistinct: {
      Collection out;
      for (const Item& i : in) AppendDistinct(out, i);
      return out;
    }
    case Fn::kIsDistinct: {
      Collection out;
      for (const Item& i : in) AppendDistinct(out, i);
      return Bool(out.size() == in.size());
    }
    case Fn::kWhere: {
      Collection out;
      JC_RETURN_IF_ERROR(each([&](size_t i, const Frame& sub) -> Status {
        JC_ASSIGN_OR_RETURN(Collection c, Arg(n, 0, sub));
        JC_ASSIGN_OR_RETURN(auto b, SingleBool(c, "where"));
        if (b && *b) out.push_back(in[i]);
        return Status::Ok();
      }));
      return out;
    }
    case Fn::kSelect: {
      Collection out;
      JC_RETURN_IF_ERROR(each([&](size_t, const Frame& sub) -> Status {
        JC_ASSIGN_OR_RETURN(Collection c, Arg(n, 0, sub));
        out.insert(out.end(), c.begin(), c.end());
        return Status::Ok();
      }));
      return out;
    }
    case Fn::kRepeat: {
      Collection out;
      Collection queue = in;
      auto seen = [&](const Item& x) {
        for (const Item& o : out) {
          if (x.is_node() && o.is_node() ? NodeIdentical(x, o) : [&] {
                auto e = ItemsEqual(x, o);
                return e && *e;
              }()) {
            return true;
          }
        }
        return false;
      };
      for (size_t guard = 0; !queue.empty() && guard < 100000; ++guard) {
        Collection next;
        for (const Item& item : queue) {
          Collection one{item};
          Frame sub{&one, -1, f.total};
          JC_ASSIGN_OR_RETURN(Collection c, Arg(n, 0, sub));
          for (const Item& x : c) {
            if (!seen(x)) {
              out.push_back(x);
              next.push_back(x);
            }
          }
        }
        queue = std::move(next);
      }
      return out;
    }
    case Fn::kOfType: {
      JC_RETURN_IF_ERROR(CheckTypeName(n.name));
      Collection out;
      for (const Item& i : in) {
        if (TypeMatches(i, n.name, false)) out.push_back(i);
      }
      return out;
    }
    case Fn::kAs:
    case Fn::kIs: {
      JC_RETURN_IF_ERROR(CheckTypeName(n.name));
      if (in.empty()) return Collection{};
      if (in.size() > 1) return ExecError(n.name + ": " + (n.fn == Fn::kAs ? "as" : "is") +
                                          "() on a collection");
      bool m = TypeMatches(in[0], n.name, n.fn == Fn::kIs);
      if (n.fn == Fn::kIs) return Bool(m);
      return m ? in : Collection{};
    }
    case Fn::kSingle:
      if (in.size() > 1) return ExecError("single() on a collection of " + std::to_string(in.size()));
      return in;
    case Fn::kFirst:
      if (in.empty()) return in;
      return Collection{in.front()};
    case Fn::kLast:
      if (in.empty()) return in;
      return Collection{in.back()};
    case Fn::kTail:
      if (in.empty()) return in;
      return Collection(in.begin() + 1, in.end());
    case Fn::kSkip:
    case Fn::kTake: {
      JC_ASSIGN_OR_RETURN(Collection c, Arg(n, 0, f));
      JC_ASSIGN_OR_RETURN(auto k, SingleInteger(c, n.name.c_str()));
      if (!k) return Collection{};
      size_t m = static_cast<size_t>(std::clamp<int64_t>(*k, 0, static_cast<int64_t>(in.size())));
      if (n.fn == Fn::kSkip) return Collection(in.begin() + static_cast<ptrdiff_t>(m), in.end());
      return Collection(in.begin(), in.begin() + static_cast<ptrdiff_t>(m));
    }
    case Fn::kIntersect: {
      JC_ASSIGN_OR_RETURN(Collection other, Arg(n, 0, f));
      Collection out;
      for (const Item& i : in) {
        if (ContainsItem(other, i)) AppendDistinct(out, i);
      }
      return out;
    }
    case Fn::kExclude: {
      JC_ASSIGN_OR_RETURN(Collection other, Arg(n, 0, f));
      Collection out;
      for (const Item& i : in) {
        if (!ContainsItem(other, i)) out.push_back(i);
      }
      return out;
    }
    case Fn::kUnion: {
      JC_ASSIGN_OR_RETURN(Collection other, Arg(n, 0, f));
      Collection out;
      for (const Item& i : in) AppendDistinct(out, i);
      for (const Item& i : other) AppendDistinct(out, i);
      return out;
    }
    case Fn::kCombine: {
      JC_ASSIGN_OR_RETURN(Collection other, Arg(n, 0, f));
      Collection out = in;
      out.insert(out.end(), other.begin(), other.end());
      return out;
    }
    case Fn::kIif: {
      if (n.input && in.size() > 1) return ExecError("iif() on a collection");
      Frame sub = f;
      Collection one;
      if (n.input) {
        one = in;
        sub.focus = &one;
      }
      JC_ASSIGN_OR_RETURN(Collection c, Arg(n, 0, sub));
      if (env_.opt.strict && c.size() == 1 && c[0].ToSystem().kind() != K::kBoolean) {
        return ExecError("iif() criterion is not boolean");
      }
      JC_ASSIGN_OR_RETURN(auto b, SingleBool(c, "iif"));
      if (b && *b) return Arg(n, 1, sub);
      if (n.args.size() > 2) return Arg(n, 2, sub);
      return Collection{};
    }
    case Fn::kTrace: {
      if (env_.opt.trace) {
        JC_ASSIGN_OR_RETURN(Collection name, Arg(n, 0, f));
        std::string label = name.empty() ? "" : name[0].ToText();
        if (n.args.size() > 1) {
          Collection projected;
          JC_RETURN_IF_ERROR(each([&](size_t, const Frame& sub) -> Status {
            JC_ASSIGN_OR_RETURN(Collection c, Arg(n, 1, sub));
            projected.insert(projected.end(), c.begin(), c.end());
            return Status::Ok();
          }));
          env_.opt.trace(label, projected);
        } else {
          env_.opt.trace(label, in);
        }
      }
      return in;
    }
    case Fn::kAggregate: {
      Collection total;
      if (n.args.size() > 1) {
        JC_ASSIGN_OR_RETURN(total, Arg(n, 1, f));
      }
      for (size_t i = 0; i < in.size(); ++i) {
        Collection one{in[i]};
        Frame sub{&one, static_cast<int64_t>(i), &total};
        JC_ASSIGN_OR_RETURN(Collection next, Arg(n, 0, sub));
        total = std::move(next);
      }
      return total;
    }
    case Fn::kNot: {
      JC_ASSIGN_OR_RETURN(auto i, Single(in, "not()"));
      if (!i) return Collection{};
      // Singleton evaluation: one non-boolean item counts as true (so `(0).not()` is false).
      if (i->kind() == K::kBoolean) return Bool(!i->boolean());
      return Bool(false);
    }
    case Fn::kHasValue:
      return Bool(in.size() == 1 && in[0].is_node() && in[0].json() &&
                  !in[0].json()->is_object() && !in[0].json()->is_array());
    case Fn::kGetValue:
      if (in.size() == 1 && in[0].is_node() && in[0].json() && !in[0].json()->is_object()) {
        return Collection{in[0].ToSystem()};
      }
      return Collection{};
    case Fn::kChildren: {
      Collection out;
      for (const Item& i : in) AllChildren(i, out);
      return out;
    }
    case Fn::kDescendants: {
      Collection out, queue = in;
      while (!queue.empty()) {
        Collection next;
        for (const Item& i : queue) AllChildren(i, next);
        out.insert(out.end(), next.begin(), next.end());
        queue = std::move(next);
      }
      return out;
    }
    case Fn::kExtension: {
      JC_ASSIGN_OR_RETURN(Collection urlc, Arg(n, 0, f));
      JC_ASSIGN_OR_RETURN(auto url, SingleString(urlc, "extension()"));
      if (!url) return Collection{};
      Collection exts, out;
      for (const Item& i : in) JC_RETURN_IF_ERROR(Child(i, "extension", exts));
      for (const Item& e : exts) {
        if (!e.json() || !e.json()->is_object()) continue;
        const json::value* u = e.json()->get_object().if_contains("url");
        if (u && u->is_string() && u->get_string() == *url) out.push_back(e);
      }
      return out;
    }
    case Fn::kResolve: return Resolve(in);
    case Fn::kMemberOf: return ExecError("memberOf() needs a terminology service (unsupported)");
    case Fn::kConformsTo: {
      // Only core profiles are known: conformance is then the item's type or a base of it.
      JC_ASSIGN_OR_RETURN(Collection uc, Arg(n, 0, f));
      JC_ASSIGN_OR_RETURN(auto url, SingleString(uc, "conformsTo()"));
      if (!url || in.empty()) return Collection{};
      static constexpr std::string_view kCore = "http://hl7.org/fhir/StructureDefinition/";
      if (url->rfind(kCore, 0) != 0) return ExecError("conformsTo(): unknown profile " + *url);
      std::string type = url->substr(kCore.size());
      if (!env_.model.IsKnownType(type)) return ExecError("conformsTo(): unknown profile " + *url);
      if (in.size() > 1) return ExecError("conformsTo() on a collection");
      return Bool(TypeMatches(in[0], type, true));
    }
    case Fn::kHtmlChecks: {
      // FHIR's htmlChecks(): on a single xhtml element, whether the narrative rules (txt-1,
      // txt-2) hold; undefined (empty) on anything else. A string node of unknown type (no
      // model) is taken for xhtml, as untyped data is elsewhere.
      if (in.empty()) return Collection{};
      if (in.size() > 1) return ExecError("htmlChecks() on a collection");
      const Item& i = in[0];
      if (!i.is_node() || !i.json() || !i.json()->is_string()) return Collection{};
      if (i.FhirType() != "xhtml" && !i.FhirType().empty()) return Collection{};
      return Bool(fhir::CheckNarrativeXhtml(i.json()->get_string()));
    }
    case Fn::kType: {
      Collection out;
      for (const Item& i : in) {
        if (i.is_node()) out.push_back(Item::TypeInfo("FHIR", std::string(i.FhirType())));
        else out.push_back(Item::TypeInfo("System", i.TypeName()));
      }
      return out;
    }
    case Fn::kNow:
    case Fn::kToday:
    case Fn::kTimeOfDay: {
      int64_t micros = env_.opt.now_micros ? env_.opt.now_micros : NowMicros();
      int offset = env_.opt.tz_offset_minutes;
      int64_t local_ms = micros / 1000 + offset * 60000LL;
      int64_t days = local_ms >= 0 ? local_ms / 86400000 : (local_ms - 86399999) / 86400000;
      int64_t rem = local_ms - days * 86400000;
      DateTime epoch;
      epoch.kind = DtKind::kDateTime;
      epoch.precision = DtPrecision::kMillisecond;
      epoch.year = 1970;
      Quantity q{{static_cast<double>(days), 0}, "day"};
      DateTime d = *AddDuration(epoch, q, false);
      d.hour = static_cast<int>(rem / 3600000);
      d.minute = static_cast<int>(rem / 60000 % 60);
      d.second = static_cast<int>(rem / 1000 % 60);
      d.millis = static_cast<int>(rem % 1000);
      d.has_tz = true;
      d.tz_minutes = offset;
      if (n.fn == Fn::kToday) {
        d.kind = DtKind::kDate;
        d.precision = DtPrecision::kDay;
        d.has_tz = false;
      } else if (n.fn == Fn::kTimeOfDay) {
        d.kind = DtKind::kTime;
        d.has_tz = false;
      }
      return Collection{Item::Temporal(d)};
    }
    case Fn::kToBoolean: case Fn::kConvertsToBoolean: case Fn::kToInteger:
    case Fn::kConvertsToInteger: case Fn::kToDecimal: case Fn::kConvertsToDecimal:
    case Fn::kToString: case Fn::kConvertsToString: case Fn::kToDate: case Fn::kConvertsToDate:
    case Fn::kToDateTime: case Fn::kConvertsToDateTime: case Fn::kToTime:
    case Fn::kConvertsToTime:
      return Conversion(n.fn, in);
    case Fn::kToQuantity:
    case Fn::kConvertsToQuantity: {
      JC_ASSIGN_OR_RETURN(Collection q, Conversion(Fn::kToQuantity, in));
      if (!n.args.empty() && !q.empty()) {
        JC_ASSIGN_OR_RETURN(Collection uc, Arg(n, 0, f));
        JC_ASSIGN_OR_RETURN(auto unit, SingleString(uc, "toQuantity()"));
        if (unit) {
          auto v = ConvertQuantityValue(q[0].quantity(), *unit);
          if (!v) q.clear();
          else q = Collection{Item::Quant({{*v, -1}, *unit})};
        }
      }
      if (n.fn == Fn::kConvertsToQuantity) {
        if (in.empty()) return Collection{};
        return Bool(!q.empty());
      }
      return q;
    }
    case Fn::kAbs: case Fn::kCeiling: case Fn::kExp: case Fn::kFloor: case Fn::kLn:
    case Fn::kLog: case Fn::kPower: case Fn::kRound: case Fn::kSqrt: case Fn::kTruncate:
    case Fn::kLowBoundary: case Fn::kHighBoundary: case Fn::kPrecision:
    case Fn::kComparable:
      return MathFn(n, in, f);
    default:
      return StringFn(n, in, f);
  }
}

Result<Collection> Evaluator::Conversion(Fn fn, const Collection& in) {
  if (in.empty()) return Collection{};
  if (in.size() > 1) return ExecError("conversion on a collection");
  Item v = in[0].ToSystem();
  std::optional<Item> out;
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  switch (fn) {
    case Fn::kToBoolean:
    case Fn::kConvertsToBoolean:
      if (v.kind() == K::kBoolean) out = v;
      else if (v.kind() == K::kInteger && (v.integer() == 0 || v.integer() == 1)) out = Item::Boolean(v.integer() == 1);
      else if (v.kind() == K::kDecimal && (v.decimal().value == 0 || v.decimal().value == 1)) out = Item::Boolean(v.decimal().value == 1);
      else if (v.kind() == K::kString) {
        std::string s = lower(v.string());
        if (s == "true" || s == "t" || s == "yes" || s == "y" || s == "1" || s == "1.0") out = Item::Boolean(true);
        else if (s == "false" || s == "f" || s == "no" || s == "n" || s == "0" || s == "0.0") out = Item::Boolean(false);
      }
      break;
    case Fn::kToInteger:
    case Fn::kConvertsToInteger:
      if (v.kind() == K::kInteger) out = v;
      else if (v.kind() == K::kBoolean) out = Item::Integer(v.boolean() ? 1 : 0);
      else if (v.kind() == K::kString) {
        auto d = ParseDecimal(v.string());
        if (d && d->scale == 0 && std::fabs(d->value) < 9.2e18) out = Item::Integer(static_cast<int64_t>(d->value));
      }
      break;
    case Fn::kToDecimal:
    case Fn::kConvertsToDecimal:
      if (v.kind() == K::kDecimal) out = v;
      else if (v.kind() == K::kInteger) out = Item::Dec({static_cast<double>(v.integer()), 0});
      else if (v.kind() == K::kBoolean) out = Item::Dec({v.boolean() ? 1.0 : 0.0, 1});
      else if (v.kind() == K::kString) {
        if (auto d = ParseDecimal(v.string())) out = Item::Dec(*d);
      }
      break;
    case Fn::kToString:
    case Fn::kConvertsToString:
      if (!v.is_node() && v.kind() != K::kType) out = Item::String(v.ToText());
      break;
    case Fn::kToDate:
    case Fn::kConvertsToDate:
      if (v.kind() == K::kDate) out = v;
      else if (v.kind() == K::kDateTime) {
        DateTime d = v.temporal();
        d.kind = DtKind::kDate;
        d.precision = std::min(d.precision, DtPrecision::kDay);
        d.has_tz = false;
        out = Item::Temporal(d);
      } else if (v.kind() == K::kString) {
        if (auto d = ParseDateTimeText(v.string(), DtKind::kDate)) out = Item::Temporal(*d);
      }
      break;
    case Fn::kToDateTime:
    case Fn::kConvertsToDateTime:
      if (v.kind() == K::kDateTime) out = v;
      else if (v.kind() == K::kDate) {
        DateTime d = v.temporal();
        d.kind = DtKind::kDateTime;
        out = Item::Temporal(d);
      } else if (v.kind() == K::kString) {
        if (auto d = ParseDateTimeText(v.string(), DtKind::kDateTime)) out = Item::Temporal(*d);
      }
      break;
    case Fn::kToTime:
    case Fn::kConvertsToTime:
      if (v.kind() == K::kTime) out = v;
      else if (v.kind() == K::kString) {
        std::string_view s = v.string();
        if (!s.empty() && s[0] == 'T') s.remove_prefix(1);
        if (auto d = ParseDateTimeText(s, DtKind::kTime)) out = Item::Temporal(*d);
      }
      break;
    case Fn::kToQuantity:
      if (v.kind() == K::kQuantity) out = v;
      else if (v.kind() == K::kInteger) out = Item::Quant({{static_cast<double>(v.integer()), 0}, "1"});
      else if (v.kind() == K::kDecimal) out = Item::Quant({v.decimal(), "1"});
      else if (v.kind() == K::kBoolean) out = Item::Quant({{v.boolean() ? 1.0 : 0.0, 1}, "1"});
      else if (v.kind() == K::kString) {
        if (auto q = ParseQuantityText(v.string())) out = Item::Quant(*q);
      }
      break;
    default: break;
  }
  bool converts = fn == Fn::kConvertsToBoolean || fn == Fn::kConvertsToInteger ||
                  fn == Fn::kConvertsToDecimal || fn == Fn::kConvertsToString ||
                  fn == Fn::kConvertsToDate || fn == Fn::kConvertsToDateTime ||
                  fn == Fn::kConvertsToTime;
  if (converts) return Bool(out.has_value());
  if (!out) return Collection{};
  return Collection{*out};
}

Result<Collection> Evaluator::MathFn(const AstNode& n, const Collection& in, const Frame& f) {
  JC_ASSIGN_OR_RETURN(auto vi, Single(in, n.name.c_str()));
  if (!vi) return Collection{};
  Item v = *vi;
  if (n.fn == Fn::kComparable) {
    JC_ASSIGN_OR_RETURN(Collection oc, Arg(n, 0, f));
    JC_ASSIGN_OR_RETURN(auto o, Single(oc, "comparable()"));
    if (!o || v.kind() != K::kQuantity || o->kind() != K::kQuantity) return Collection{};
    return Bool(UnitsComparable(v.quantity().unit, o->quantity().unit));
  }
  if (n.fn == Fn::kPrecision) {
    if (v.kind() == K::kDecimal) return Collection{Item::Integer(std::max(v.decimal().scale, 0))};
    if (v.kind() == K::kInteger) return Collection{Item::Integer(0)};
    if (IsTemporal(v)) {
      const DateTime& d = v.temporal();
      static constexpr int kDate[] = {0, 4, 6, 8, 10, 12, 14, 17};
      static constexpr int kTime[] = {0, 0, 0, 0, 2, 4, 6, 9};
      return Collection{Item::Integer(
          (v.kind() == K::kTime ? kTime : kDate)[static_cast<int>(d.precision)])};
    }
    return Collection{};
  }
  if (n.fn == Fn::kLowBoundary || n.fn == Fn::kHighBoundary) {
    bool high = n.fn == Fn::kHighBoundary;
    std::optional<int64_t> prec;
    if (!n.args.empty()) {
      JC_ASSIGN_OR_RETURN(Collection pc, Arg(n, 0, f));
      JC_ASSIGN_OR_RETURN(prec, SingleInteger(pc, n.name.c_str()));
    }
    if (IsNumber(v) || v.kind() == K::kQuantity) {
      Decimal d = v.kind() == K::kQuantity ? v.quantity().value
                  : v.kind() == K::kInteger ? Decimal{static_cast<double>(v.integer()), 0}
                                            : v.decimal();
      int p = prec ? static_cast<int>(*prec) : 8;
      if (p < 0 || p > 28) return Collection{};
      int scale = std::max(d.scale, 0);
      // The value stands for [v - half unit of its last digit, v + half).
      double half = 0.5 * std::pow(10.0, -scale);
      double bound = high ? d.value + (d.value < 0 ? -half : half) * (d.value < 0 ? -1 : 1)
                          : d.value - half;
      if (d.value < 0) bound = high ? d.value + half : d.value - half;
      double f10 = std::pow(10.0, p);
      double r = high ? std::ceil(bound * f10 - 1e-9) / f10 : std::floor(bound * f10 + 1e-9) / f10;
      if (p >= scale + 1) r = bound;
      // Digits beyond the precision asked for: the boundary is a signed zero at that precision.
      if (std::fabs(d.value) < std::pow(10.0, -p)) r = d.value < 0 ? -0.0 : 0.0;
      Decimal out{r, p};
      if (v.kind() == K::kQuantity) return Collection{Item::Quant({out, v.quantity().unit})};
      return Collection{Item::Dec(out)};
    }
    if (IsTemporal(v)) {
      DateTime d = v.temporal();
      int p = prec ? static_cast<int>(*prec) : (v.kind() == K::kTime ? 9 : 17);
      DtPrecision target;
      if (v.kind() == K::kTime) {
        target = p <= 2 ? DtPrecision::kHour : p <= 4 ? DtPrecision::kMinute
                 : p <= 6 ? DtPrecision::kSecond : DtPrecision::kMillisecond;
      } else {
        target = p <= 4 ? DtPrecision::kYear : p <= 6 ? DtPrecision::kMonth
                 : p <= 8 ? DtPrecision::kDay : p <= 10 ? DtPrecision::kHour
                 : p <= 12 ? DtPrecision::kMinute : p <= 14 ? DtPrecision::kSecond
                 : DtPrecision::kMillisecond;
      }
      if (d.precision < DtPrecision::kMonth) d.month = high ? 12 : 1;
      if (d.precision < DtPrecision::kDay) {
        static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int dim = kDays[d.month - 1];
        if (d.month == 2 && ((d.year % 4 == 0 && d.year % 100 != 0) || d.year % 400 == 0)) dim = 29;
        d.day = high ? dim : 1;
      }
      if (d.precision < DtPrecision::kHour) d.hour = high ? 23 : 0;
      if (d.precision < DtPrecision::kMinute) d.minute = high ? 59 : 0;
      if (d.precision < DtPrecision::kSecond) d.second = high ? 59 : 0;
      if (d.precision < DtPrecision::kMillisecond) d.millis = high ? 999 : 0;
      if (v.kind() == K::kDateTime && !d.has_tz && target >= DtPrecision::kHour) {
        // Unknown offset: the boundary covers every zone.
        d.has_tz = true;
        d.tz_minutes = high ? -12 * 60 : 14 * 60;
      }
      d.precision = target;
      return Collection{Item::Temporal(d)};
    }
    return Collection{};
  }
  if (n.fn == Fn::kAbs && v.kind() == K::kQuantity) {
    Quantity q = v.quantity();
    q.value.value = std::fabs(q.value.value);
    return Collection{Item::Quant(q)};
  }
  if (!IsNumber(v)) return ExecError(n.name + "() on " + v.TypeName());
  double x = NumberOf(v);
  switch (n.fn) {
    case Fn::kAbs:
      if (v.kind() == K::kInteger) return Collection{Item::Integer(std::llabs(v.integer()))};
      return Collection{Item::Dec({std::fabs(x), v.decimal().scale})};
    case Fn::kCeiling: return Collection{Item::Integer(static_cast<int64_t>(std::ceil(x)))};
    case Fn::kFloor: return Collection{Item::Integer(static_cast<int64_t>(std::floor(x)))};
    case Fn::kTruncate: return Collection{Item::Integer(static_cast<int64_t>(std::trunc(x)))};
    case Fn::kExp: return Collection{Item::Dec({std::exp(x), -1})};
    case Fn::kLn:
      if (x <= 0) return Collection{};
      return Collection{Item::Dec({std::log(x), -1})};
    case Fn::kSqrt:
      if (x < 0) return Collection{};
      return Collection{Item::Dec({std::sqrt(x), -1})};
    case Fn::kLog:
    case Fn::kPower: {
      JC_ASSIGN_OR_RETURN(Collection ac, Arg(n, 0, f));
      JC_ASSIGN_OR_RETURN(auto a, Single(ac, n.name.c_str()));
      if (!a) return Collection{};
      if (!IsNumber(*a)) return ExecError(n.name + "() argument is not a number");
      double y = NumberOf(*a);
      if (n.fn == Fn::kLog) {
        if (x <= 0 || y <= 0 || y == 1) return Collection{};
        return Collection{Item::Dec({std::log(x) / std::log(y), -1})};
      }
      double r = std::pow(x, y);
      if (std::isnan(r) || std::isinf(r)) return Collection{};
      if (v.kind() == K::kInteger && a->kind() == K::kInteger && y >= 0) {
        return Collection{Item::Integer(static_cast<int64_t>(r))};
      }
      return Collection{Item::Dec({r, -1})};
    }
    case Fn::kRound: {
      int64_t p = 0;
      if (!n.args.empty()) {
        JC_ASSIGN_OR_RETURN(Collection pc, Arg(n, 0, f));
        JC_ASSIGN_OR_RETURN(auto pi, SingleInteger(pc, "round()"));
        if (pi) p = *pi;
        if (p < 0) return ExecError("round() precision must be >= 0");
      }
      return Collection{Item::Dec({RoundTo(x, static_cast<int>(p)), static_cast<int>(p)})};
    }
    default: break;
  }
  return ExecError("unsupported function " + n.name);
}

// FHIRPath regexes run in single-line mode ('.' matches newlines), which ECMAScript std::regex
// lacks: rewrite unescaped '.' outside classes to [\s\S].
std::string DotAll(const std::string& re) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      out += c;
      out += re[++i];
      continue;
    }
    if (c == '[') in_class = true;
    else if (c == ']') in_class = false;
    if (c == '.' && !in_class) {
      out += "[\\s\\S]";
      continue;
    }
    out += c;
  }
  return out;
}

Result<Collection> Evaluator::StringFn(const AstNode& n, const Collection& in, const Frame& f) {
  if (n.fn == Fn::kJoin) {
    std::string sep;
    if (!n.args.empty()) {
      JC_ASSIGN_OR_RETURN(Collection sc, Arg(n, 0, f));
      JC_ASSIGN_OR_RETURN(auto s, SingleString(sc, "join()"));
      if (s) sep = *s;
    }
    std::string out;
    for (size_t i = 0; i < in.size(); ++i) {
      if (i) out += sep;
      out += in[i].ToText();
    }
    return Collection{Item::String(out)};
  }
  if (n.fn == Fn::kSort) {
    // Keys per item (a leading '-' sorts that key descending); no keys: the items themselves.
    struct Keyed {
      Item item;
      std::vector<Collection> keys;
    };
    std::vector<Keyed> rows;
    std::vector<bool> desc;
    for (const auto& a : n.args) desc.push_back(a->op == Op::kNegate);
    for (size_t i = 0; i < in.size(); ++i) {
      Keyed k{in[i], {}};
      Collection one{in[i]};
      Frame sub{&one, static_cast<int64_t>(i), f.total};
      for (const auto& a : n.args) {
        const AstNode& key = a->op == Op::kNegate ? *a->input : *a;
        JC_ASSIGN_OR_RETURN(Collection c, Eval(key, sub));
        k.keys.push_back(std::move(c));
      }
      if (n.args.empty()) k.keys.push_back(one);
      rows.push_back(std::move(k));
    }
    Status err;
    std::stable_sort(rows.begin(), rows.end(), [&](const Keyed& a, const Keyed& b) {
      for (size_t k = 0; k < a.keys.size(); ++k) {
        const Collection& x = a.keys[k];
        const Collection& y = b.keys[k];
        if (x.empty() || y.empty()) {
          if (x.empty() != y.empty()) return x.empty();  // empty sorts first
          continue;
        }
        auto c = CompareItems(x[0], y[0]);
        if (!c.ok()) {
          err = c.error();
          return false;
        }
        if (!c.value() || *c.value() == 0) continue;
        bool d = k < desc.size() && desc[k];
        return d ? *c.value() > 0 : *c.value() < 0;
      }
      return false;
    });
    if (!err.ok()) return err.error();
    Collection out;
    for (Keyed& r : rows) out.push_back(std::move(r.item));
    return out;
  }
  JC_ASSIGN_OR_RETURN(auto s, SingleString(in, (n.name + "()").c_str()));
  if (!s) return Collection{};
  std::vector<std::string> args;
  for (size_t i = 0; i < n.args.size(); ++i) {
    JC_ASSIGN_OR_RETURN(Collection c, Arg(n, i, f));
    if (c.empty()) {
      if (n.fn == Fn::kSubstring && i == 1) continue;
      return Collection{};
    }
    if (c.size() > 1) return ExecError(n.name + "() argument is a collection");
    if (n.fn == Fn::kSubstring) {
      Item a = c[0].ToSystem();
      if (a.kind() != K::kInteger) return ExecError("substring() expects integers");
      args.push_back(std::to_string(a.integer()));
      continue;
    }
    auto a = StringOf(c[0]);
    if (!a) return ExecError(n.name + "() argument is not a string");
    args.emplace_back(*a);
  }
  const std::string& str = *s;
  switch (n.fn) {
    case Fn::kIndexOf: {
      size_t p = str.find(args[0]);
      return Collection{Item::Integer(p == std::string::npos ? -1 : static_cast<int64_t>(p))};
    }
    case Fn::kSubstring: {
      int64_t start = std::stoll(args[0]);
      if (start < 0 || start >= static_cast<int64_t>(str.size())) return Collection{};
      int64_t len = args.size() > 1 ? std::stoll(args[1]) : static_cast<int64_t>(str.size());
      if (len < 0) len = 0;
      return Collection{Item::String(str.substr(static_cast<size_t>(start), static_cast<size_t>(len)))};
    }
    case Fn::kStartsWith: return Bool(str.rfind(args[0], 0) == 0);
    case Fn::kEndsWith:
      return Bool(str.size() >= args[0].size() &&
                  str.compare(str.size() - args[0].size(), args[0].size(), args[0]) == 0);
    case Fn::kContains: return Bool(str.find(args[0]) != std::string::npos);
    case Fn::kUpper:
    case Fn::kLower: {
      std::string out = str;
      for (char& c : out) {
        c = static_cast<char>(n.fn == Fn::kUpper ? std::toupper(static_cast<unsigned char>(c))
                                                 : std::tolower(static_cast<unsigned char>(c)));
      }
      return Collection{Item::String(out)};
    }
    case Fn::kReplace: {
      const std::string& from = args[0];
      const std::string& to = args[1];
      std::string out;
      if (from.empty()) {
        out = to;
        for (char c : str) out += c, out += to;
        return Collection{Item::String(out)};
      }
      size_t pos = 0;
      while (true) {
        size_t p = str.find(from, pos);
        if (p == std::string::npos) break;
        out += str.substr(pos, p - pos) + to;
        pos = p + from.size();
      }
      out += str.substr(pos);
      return Collection{Item::String(out)};
    }
    case Fn::kMatches:
    case Fn::kMatchesFull:
    case Fn::kReplaceMatches: {
      if (n.fn == Fn::kReplaceMatches && args[0].empty()) return Collection{Item::String(str)};
      try {
        std::regex re(DotAll(args[0]), std::regex::ECMAScript);
        if (n.fn == Fn::kMatches) return Bool(std::regex_search(str, re));
        if (n.fn == Fn::kMatchesFull) return Bool(std::regex_match(str, re));
        return Collection{Item::String(std::regex_replace(str, re, args[1]))};
      } catch (const std::regex_error&) {
        return ExecError("invalid regular expression '" + args[0] + "'");
      }
    }
    case Fn::kLength: return Collection{Item::Integer(static_cast<int64_t>(str.size()))};
    case Fn::kToChars: {
      Collection out;
      for (char c : str) out.push_back(Item::String(std::string(1, c)));
      return out;
    }
    case Fn::kTrim: {
      size_t b = str.find_first_not_of(" \t\r\n");
      if (b == std::string::npos) return Collection{Item::String("")};
      size_t e = str.find_last_not_of(" \t\r\n");
      return Collection{Item::String(str.substr(b, e - b + 1))};
    }
    case Fn::kSplit: {
      Collection out;
      const std::string& sep = args[0];
      size_t pos = 0;
      while (!sep.empty()) {
        size_t p = str.find(sep, pos);
        if (p == std::string::npos) break;
        out.push_back(Item::String(str.substr(pos, p - pos)));
        pos = p + sep.size();
      }
      out.push_back(Item::String(str.substr(pos)));
      return out;
    }
    case Fn::kEncode:
    case Fn::kDecode: {
      const std::string& fmt = args[0];
      if (fmt == "hex") {
        std::string out;
        if (n.fn == Fn::kEncode) {
          static constexpr char kHex[] = "0123456789abcdef";
          for (unsigned char c : str) out += kHex[c >> 4], out += kHex[c & 15];
        } else {
          for (size_t i = 0; i + 1 < str.size(); i += 2) {
            out += static_cast<char>(std::stoi(str.substr(i, 2), nullptr, 16));
          }
        }
        return Collection{Item::String(out)};
      }
      if (fmt == "base64" || fmt == "urlbase64") {
        if (n.fn == Fn::kEncode) {
          return Collection{Item::String(EncodeBase64(str, fmt == "urlbase64"))};
        }
        auto d = DecodeBase64(str);
        if (!d) return Collection{};
        return Collection{Item::String(*d)};
      }
      return Collection{};
    }
    case Fn::kEscape:
    case Fn::kUnescape: {
      const std::string& fmt = args[0];
      std::string out;
      if (fmt == "html") {
        if (n.fn == Fn::kEscape) {
          for (char c : str) {
            if (c == '<') out += "&lt;";
            else if (c == '>') out += "&gt;";
            else if (c == '&') out += "&amp;";
            else if (c == '"') out += "&quot;";
            else if (c == '\'') out += "&#39;";
            else out += c;
          }
        } else {
          static constexpr std::pair<std::string_view, char> kEnt[] = {
              {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&#39;", '\''},
              {"&apos;", '\''}};
          for (size_t i = 0; i < str.size();) {
            bool hit = false;
            for (const auto& [e, c] : kEnt) {
              if (str.compare(i, e.size(), e) == 0) {
                out += c;
                i += e.size();
                hit = true;
                break;
              }
            }
            if (!hit) out += str[i++];
          }
        }
        return Collection{Item::String(out)};
      }
      if (fmt == "json") {
        if (n.fn == Fn::kEscape) {
          for (char c : str) {
            if (c == '"' || c == '\\') out += '\\', out += c;
            else if (c == '\n') out += "\\n";
            else if (c == '\t') out += "\\t";
            else if (c == '\r') out += "\\r";
            else out += c;
          }
        } else {
          for (size_t i = 0; i < str.size(); ++i) {
            if (str[i] == '\\' && i + 1 < str.size()) {
              char e = str[++i];
              out += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
            } else {
              out += str[i];
            }
          }
        }
        return Collection{Item::String(out)};
      }
      return Collection{};
    }
    default: break;
  }
  return ExecError("unsupported function " + n.name + "()");
}

const json::value* Evaluator::FindReference(std::string_view ref) {
  auto find_in = [&](const json::value* container, std::string_view r) -> const json::value* {
    if (!container || !container->is_object()) return nullptr;
    const json::object& o = container->get_object();
    if (!r.empty() && r[0] == '#') {
      if (const json::array* cs = FindArray(o, "contained")) {
        for (const json::value& c : *cs) {
          if (c.is_object()) {
            auto id = FindString(c.get_object(), "id");
            if (id && *id == r.substr(1)) return &c;
          }
        }
      }
      return nullptr;
    }
    auto rt = FindString(o, "resourceType");
    if (rt && *rt == "Bundle") {
      if (const json::array* entries = FindArray(o, "entry")) {
        for (const json::value& e : *entries) {
          if (!e.is_object()) continue;
          const json::object& eo = e.get_object();
          const json::value* res = eo.if_contains("resource");
          auto full = FindString(eo, "fullUrl");
          if (full && *full == r && res) return res;
          if (res && res->is_object()) {
            auto t = FindString(res->get_object(), "resourceType");
            auto id = FindString(res->get_object(), "id");
            if (t && id) {
              std::string key = std::string(*t) + "/" + std::string(*id);
              // Relative "Type/id" or an absolute URL ending in it (optionally /_history/n).
              size_t h = r.find("/_history/");
              std::string_view base = h == std::string_view::npos ? r : r.substr(0, h);
              if (base == key ||
                  (base.size() > key.size() && base.substr(base.size() - key.size()) == key &&
                   base[base.size() - key.size() - 1] == '/')) {
                return res;
              }
            }
          }
        }
      }
    }
    return nullptr;
  };
  if (const json::value* v = find_in(env_.resource, ref)) return v;
  if (env_.root != env_.resource) {
    if (const json::value* v = find_in(env_.root, ref)) return v;
  }
  if (env_.opt.resolver) return env_.opt.resolver(ref);
  return nullptr;
}

Result<Collection> Evaluator::Resolve(const Collection& in) {
  Collection out;
  for (const Item& i : in) {
    std::optional<std::string_view> ref;
    if (i.is_node() && i.json() && i.json()->is_object()) {
      ref = FindString(i.json()->get_object(), "reference");
    } else {
      ref = StringOf(i);
    }
    if (!ref) continue;
    if (const json::value* target = FindReference(*ref)) {
      out.push_back(RootItem(target));
      continue;
    }
    // Unresolvable "Type/id": a typed stub with no content, so `resolve() is Patient` (the
    // idiom of search parameter expressions) still works without fetching the target.
    std::string_view r = *ref;
    size_t h = r.find("/_history/");
    if (h != std::string_view::npos) r = r.substr(0, h);
    size_t slash = r.rfind('/');
    if (slash == std::string_view::npos || slash == 0) continue;
    size_t prev = r.rfind('/', slash - 1);
    std::string_view type = r.substr(prev == std::string_view::npos ? 0 : prev + 1,
                                     slash - (prev == std::string_view::npos ? 0 : prev + 1));
    if (env_.model.IsResourceType(type)) out.push_back(Item::Node(nullptr, nullptr, type, type));
  }
  return out;
}

}  // namespace

void AppendDistinct(Collection& out, const Item& x) {
  if (!ContainsItem(out, x)) out.push_back(x);
}

Result<Collection> EvaluateOn(const Expression& expr, const Collection& input,
                              const json::value* resource, const EvalOptions& options) {
  Env env{options, options.model ? *options.model : BasicModel(), resource,
          options.root_resource ? options.root_resource : resource, input};
  // Semantic errors hold whatever the data, so they are looked for before evaluating: a
  // branch the data never reaches is as wrong as one it does.
  if (options.strict) JC_RETURN_IF_ERROR(CheckStrict(expr.root(), env.model));
  Evaluator ev(env);
  Frame f{&env.context, -1, nullptr};
  return ev.Eval(expr.root(), f);
}

Result<Collection> Evaluate(const Expression& expr, const json::value& resource,
                            const EvalOptions& options) {
  Collection input{Evaluator::RootItem(&resource)};
  return EvaluateOn(expr, input, &resource, options);
}

}  // namespace jiceng::fhirpath
