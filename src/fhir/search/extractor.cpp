#include "fhir/search/extractor.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "base/time.h"
#include "base/utf8.h"
#include "fhir/fhirpath/definitions_model.h"
#include "fhir/fhirpath/fhirpath.h"
#include "fhir/fhirpath/path_plan.h"
#include "fhir/search/normalize.h"

namespace jiceng::search {
namespace {

using fhirpath::Collection;
using fhirpath::Item;
using fhirpath::PathPlan;

struct CompiledParam {
  const fhir::SearchParamDef* def = nullptr;
  fhirpath::Expression expr;
  // The expression compiled for direct JSON navigation, when it is a union of plain paths (most
  // are); the evaluator runs `expr` for the others and for whatever data the plan refuses.
  std::optional<PathPlan> plan;
  // The numbers (TypeParams::leading) of the elements the plan starts from: a resource with
  // none of them as a member has nothing to extract for this parameter. Empty: always run.
  std::vector<uint16_t> leading;
  std::string text_param;        // "<code>:text" for tokens
  std::string of_type_param;     // "<code>:of-type" for tokens
  std::string identifier_param;  // "<code>:identifier" for references
  // Composites: the components, each compiled relative to one item of `expr`.
  std::vector<CompiledParam> components;
  // The branches of the expression that apply to the type (BranchList).
  std::vector<std::string> branches;
  // Not stored: the parameter's rows are those of these parameters together (UnionParts).
  std::vector<std::string> union_of;
};

bool Indexable(const fhir::SearchParamDef& p) {
  if (p.expression.empty()) return false;
  if (p.type == "special") return false;
  // Answered from the resource row (id, last_updated_us), never from index tables.
  return p.code != "_id" && p.code != "_lastUpdated";
}

// Whether the definition `d` is the parameter of component expression `expr`: its own
// expression is "<Type>.<path>" ending in ".<expr>" (relatesTo.code for `code`).
bool DefinesComponent(const fhir::SearchParamDef& d, std::string_view expr) {
  const std::string_view e = d.expression;
  return e.size() > expr.size() && e.ends_with(expr) && e[e.size() - expr.size() - 1] == '.';
}

// The composites the index can store (see store::CompositeIndexRow): a token then a token,
// quantity, date, string or reference; or a token then two numbers, the layout of the four R4
// MolecularSequence coordinates (chromosome or referenceseqid, then start and end), whose second
// number (an integer position) takes end2_us. That covers every R4 composite.
std::vector<const fhir::SearchParamDef*> CompositeComponents(const fhir::SearchParamDef& p) {
  if (p.components.size() != 2 && p.components.size() != 3) return {};
  for (const auto& c : p.components) {
    if (c.expression.empty()) return {};
  }
  std::vector<const fhir::SearchParamDef*> out = CompositeComponentDefs(p);
  if (out.size() != p.components.size() || out[0]->type != "token") return {};
  if (out.size() == 3) {
    if (out[1]->type != "number" || out[2]->type != "number") return {};
    return out;
  }
  const std::string& t = out[1]->type;
  if (t != "token" && t != "quantity" && t != "date" && t != "string" && t != "reference")
    return {};
  return out;
}

// Splits an expression on its top-level '|' and keeps the branches that can apply to `type`: a
// branch rooted at another resource type ("Practitioner.name" on a Patient) is always empty.
std::vector<std::string> BranchList(std::string_view expr, std::string_view type) {
  const auto& defs = fhir::Definitions::Get();
  std::vector<std::string_view> parts;
  int depth = 0;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < expr.size(); ++i) {
    char c = expr[i];
    if (c == '\'' && (i == 0 || expr[i - 1] != '\\')) quoted = !quoted;
    if (quoted) continue;
    if (c == '(' || c == '[') ++depth;
    if (c == ')' || c == ']') --depth;
    if (c == '|' && depth == 0) {
      parts.push_back(expr.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(expr.substr(start));
  std::vector<std::string> out;
  for (std::string_view part : parts) {
    std::string_view p = part;
    while (!p.empty() && (p.front() == ' ' || p.front() == '(')) p.remove_prefix(1);
    size_t n = 0;
    while (n < p.size() && (std::isalnum(static_cast<unsigned char>(p[n])) || p[n] == '_')) ++n;
    std::string_view root = p.substr(0, n);
    if (root != type && defs.IsResourceType(root)) continue;
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    out.emplace_back(part);
  }
  return out;
}

// The parameters of the same type whose branches together are exactly p's, each branch in one
// of them, when there are at least two: R4's Observation combo-code is "Observation.code |
// Observation.component.code", code and component-code; combo-value-quantity, -value-concept,
// -data-absent-reason and the combo composites likewise. Such a parameter's rows are the union of
// theirs, so they are not stored twice (a sixth of all index rows over the Synthea sample): the
// search answers it from its parts' rows (query.cpp). Only token, quantity and composite
// parameters (composites with the same component expressions), whose rows depend on nothing but
// the items their branches yield.
std::vector<std::string> UnionParts(const CompiledParam& p, const std::vector<CompiledParam>& all) {
  const std::string& kind = p.def->type;
  if (p.branches.size() < 2 || (kind != "token" && kind != "quantity" && kind != "composite")) {
    return {};
  }
  auto same_components = [&](const CompiledParam& q) {
    if (p.def->components.size() != q.def->components.size()) return false;
    for (size_t i = 0; i < p.def->components.size(); ++i) {
      if (p.def->components[i].expression != q.def->components[i].expression) return false;
    }
    return true;
  };
  std::vector<std::string> parts;
  std::set<std::string> covered;
  for (const CompiledParam& q : all) {
    if (&q == &p || q.def->type != kind || q.branches.empty() || !same_components(q)) continue;
    if (q.branches.size() >= p.branches.size()) continue;
    const bool inside =
        std::all_of(q.branches.begin(), q.branches.end(), [&](const std::string& b) {
          return std::find(p.branches.begin(), p.branches.end(), b) != p.branches.end();
        });
    if (!inside) continue;
    for (const std::string& b : q.branches) {
      if (!covered.insert(b).second) return {};  // two parts share a branch: not a partition
    }
    parts.push_back(q.def->code);
  }
  if (parts.size() < 2 || covered.size() != p.branches.size()) return {};
  return parts;
}

// A composite component's expression as the engine needs it. R4's Observation code-value-date
// writes "value.ofType(DateTime)", naming the System type where the element's FHIR type is
// dateTime (the only such slip in the R4 parameters): the FHIR name is meant.
std::string ComponentExpression(std::string_view expr) {
  std::string out(expr);
  constexpr std::string_view kSlip = "ofType(DateTime)";
  for (size_t at = out.find(kSlip); at != std::string::npos; at = out.find(kSlip, at + 1))
    out.replace(at, kSlip.size(), "ofType(dateTime)");
  return out;
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// The indexed parameters of one resource type.
struct TypeParams {
  std::vector<CompiledParam> params;
  // Every element name a parameter's plan starts from (PathPlan::LeadingElements), numbered.
  // Most parameters of a type name elements a given resource does not have ("Observation.
  // device", ".specimen", ".component…"): one pass over the resource's members tells which
  // are there, cheaper than running each such plan to find its first element missing.
  std::unordered_map<std::string, uint16_t, StringHash, std::equal_to<>> leading;
};

class ParamCache {
 public:
  static ParamCache& Get() {
    static ParamCache cache;
    return cache;
  }

  const TypeParams& ForType(std::string_view type) {
    {
      std::shared_lock lock(mu_);
      auto it = by_type_.find(type);
      if (it != by_type_.end()) return it->second;
    }
    TypeParams t;
    std::vector<CompiledParam>& params = t.params;
    for (const fhir::SearchParamDef* def : fhir::Definitions::Get().SearchParams(type)) {
      if (!Indexable(*def)) continue;
      std::vector<std::string> branches = BranchList(def->expression, type);
      std::string text;
      for (const std::string& b : branches) text += (text.empty() ? "" : " | ") + b;
      if (text.empty()) continue;
      auto expr = fhirpath::Compile(text);
      if (!expr.ok()) continue;  // an expression the engine cannot parse indexes nothing
      CompiledParam p;
      p.def = def;
      p.branches = std::move(branches);
      p.expr = std::move(*expr);
      p.plan = PathPlan::Compile(p.expr, type, fhirpath::DefinitionsModel());
      if (def->type == "token") {
        p.text_param = def->code + ":text";
        p.of_type_param = def->code + ":of-type";
      } else if (def->type == "reference") {
        p.identifier_param = def->code + ":identifier";
      } else if (def->type == "composite") {
        auto component_defs = CompositeComponents(*def);
        if (component_defs.empty()) continue;
        for (size_t i = 0; i < component_defs.size(); ++i) {
          auto cexpr = fhirpath::Compile(ComponentExpression(def->components[i].expression));
          if (!cexpr.ok()) break;
          CompiledParam c;
          c.def = component_defs[i];
          c.expr = std::move(*cexpr);
          c.plan = PathPlan::Compile(c.expr, "", fhirpath::DefinitionsModel());
          p.components.push_back(std::move(c));
        }
        if (p.components.size() != component_defs.size()) continue;
      }
      if (p.plan) {
        for (std::string_view name : p.plan->LeadingElements()) {
          auto [it, added] =
              t.leading.try_emplace(std::string(name), static_cast<uint16_t>(t.leading.size()));
          p.leading.push_back(it->second);
        }
      }
      params.push_back(std::move(p));
    }
    for (CompiledParam& p : params) p.union_of = UnionParts(p, params);
    std::unique_lock lock(mu_);
    auto [it, inserted] = by_type_.emplace(std::string(type), std::move(t));
    return it->second;
  }

 private:
  std::shared_mutex mu_;
  std::unordered_map<std::string, TypeParams, StringHash, std::equal_to<>> by_type_;
};

// Marks in `present` which of `t.leading` the resource has as members: by name, as the "_name"
// of a primitive's extension, or as a choice's typed name ("valueQuantity" marks "value", as
// "effectiveDateTime" marks "effective": every prefix followed by an upper-case letter).
void MarkLeadingElements(const TypeParams& t, const json::object& resource,
                         std::vector<char>& present) {
  present.assign(t.leading.size(), 0);
  auto mark = [&](std::string_view name) {
    if (auto it = t.leading.find(name); it != t.leading.end()) present[it->second] = 1;
  };
  for (const auto& kv : resource) {
    std::string_view bare = kv.key();
    if (!bare.empty() && bare.front() == '_') bare.remove_prefix(1);
    mark(bare);
    for (size_t i = 1; i < bare.size(); ++i) {
      if (std::isupper(static_cast<unsigned char>(bare[i]))) mark(bare.substr(0, i));
    }
  }
}

const json::object* AsObject(const Item& i) {
  return i.is_node() && i.json() && i.json()->is_object() ? &i.json()->get_object() : nullptr;
}

std::optional<std::string_view> AsString(const Item& i) {
  if (i.is_node()) {
    if (i.json() && i.json()->is_string()) return std::string_view(i.json()->get_string());
    return std::nullopt;
  }
  if (i.kind() == Item::Kind::kString) return std::string_view(i.string());
  return std::nullopt;
}

void AddString(std::vector<store::StringIndexRow>& out, const std::string& param,
               std::string_view text) {
  if (text.empty()) return;
  std::string norm = NormalizeString(text);
  if (norm.empty()) return;
  out.push_back({param, std::move(norm), std::string(text)});
}

void AddStringMember(std::vector<store::StringIndexRow>& out, const std::string& param,
                     const json::object& o, std::string_view key) {
  const json::value* v = Find(o, key);
  if (!v) return;
  if (v->is_string()) {
    AddString(out, param, v->get_string());
  } else if (v->is_array()) {
    for (const json::value& e : v->get_array()) {
      if (e.is_string()) AddString(out, param, e.get_string());
    }
  }
}

// A Chinese name is written and searched whole, family name first and no space (王小明), where
// FHIR stores it in parts ({"family": "王", "given": ["小明"]}) and a search matches any one
// part: without this value `name=王小明` found only a name whose `text` was filled in. Only for a
// family name in CJK script: "SmithJohn" is no way of writing a Western name.
std::optional<std::string> ChineseFullName(const json::object& name) {
  auto family = FindString(name, "family");
  if (!family || !HasCjk(*family)) return std::nullopt;
  std::string full(*family);
  const json::value* given = Find(name, "given");
  if (!given || !given->is_array()) return std::nullopt;
  for (const json::value& g : given->get_array()) {
    if (g.is_string()) full += g.get_string();
  }
  if (full.size() == family->size() || FindString(name, "text") == full) return std::nullopt;
  return full;
}

void ExtractString(const Item& i, const CompiledParam& p, store::IndexRows& rows) {
  const std::string& code = p.def->code;
  if (auto s = AsString(i)) return AddString(rows.strings, code, *s);
  const json::object* o = AsObject(i);
  if (!o) return;
  std::string_view t = i.FhirType();
  if (t == "HumanName") {
    for (auto k : {"family", "given", "prefix", "suffix", "text"})
      AddStringMember(rows.strings, code, *o, k);
    if (auto full = ChineseFullName(*o)) AddString(rows.strings, code, *full);
  } else if (t == "Address") {
    for (auto k : {"line", "city", "district", "state", "postalCode", "country", "text"})
      AddStringMember(rows.strings, code, *o, k);
  }
}

void AddToken(store::IndexRows& rows, const CompiledParam& p, std::string_view system,
              std::string_view code) {
  // R4 search, token: "[parameter]=[system]|: any element where the value of [system] matches
  // the system property of the Identifier or Coding". A Coding with a system and no code (or an
  // Identifier with no value) is found by "system|" and is not :missing: it is a row with an
  // empty code, which no search naming a code matches. Only a token with neither is nothing.
  if (code.empty() && system.empty()) return;
  rows.tokens.push_back({p.def->code, std::string(system), std::string(code)});
}

void AddCoding(store::IndexRows& rows, const CompiledParam& p, const json::object& c) {
  AddToken(rows, p, FindString(c, "system").value_or(""), FindString(c, "code").value_or(""));
  if (auto d = FindString(c, "display")) AddString(rows.strings, p.text_param, *d);
}

void ExtractToken(const Item& i, const CompiledParam& p, store::IndexRows& rows) {
  if (i.is_node() && i.json() && i.json()->is_bool()) {
    return AddToken(rows, p, "", i.json()->get_bool() ? "true" : "false");
  }
  if (!i.is_node() && i.kind() == Item::Kind::kBoolean) {
    return AddToken(rows, p, "", i.boolean() ? "true" : "false");
  }
  if (auto s = AsString(i)) return AddToken(rows, p, "", *s);
  const json::object* o = AsObject(i);
  if (!o) return;
  std::string_view t = i.FhirType();
  if (t == "Coding") {
    AddCoding(rows, p, *o);
  } else if (t == "CodeableConcept") {
    if (const json::array* codings = FindArray(*o, "coding")) {
      for (const json::value& c : *codings) {
        if (c.is_object()) AddCoding(rows, p, c.get_object());
      }
    }
    if (auto text = FindString(*o, "text")) AddString(rows.strings, p.text_param, *text);
  } else if (t == "Identifier") {
    const std::string_view system = FindString(*o, "system").value_or("");
    const std::string_view value = FindString(*o, "value").value_or("");
    AddToken(rows, p, system, value);
    if (const json::object* type = FindObject(*o, "type")) {
      if (auto text = FindString(*type, "text")) AddString(rows.strings, p.text_param, *text);
      // :of-type matches the type's codings and the value together.
      const json::array* codings = FindArray(*type, "coding");
      if (codings && !value.empty() && !p.of_type_param.empty()) {
        for (const json::value& c : *codings) {
          if (!c.is_object()) continue;
          auto code = FindString(c.get_object(), "code");
          if (!code || code->empty()) continue;
          store::CompositeIndexRow r;
          r.param = p.of_type_param;
          r.system1 = std::string(FindString(c.get_object(), "system").value_or(""));
          r.code1 = std::string(*code);
          r.code2 = std::string(value);
          r.system2 = std::string(system);
          rows.composites.push_back(std::move(r));
        }
      }
    }
  } else if (t == "ContactPoint") {
    AddToken(rows, p, "", FindString(*o, "value").value_or(""));
  } else if (t == "Reference") {
    // A few token parameters point at a Reference's identifier (e.g. Coverage.identifier).
    if (const json::object* id = FindObject(*o, "identifier")) {
      AddToken(rows, p, FindString(*id, "system").value_or(""),
               FindString(*id, "value").value_or(""));
    }
  }
}

void AddDate(store::IndexRows& rows, const std::string& param, std::string_view start,
             std::string_view end) {
  store::DateIndexRow r{param, INT64_MIN, INT64_MAX};
  if (!start.empty()) {
    auto s = ParseDateTimeRange(start);
    if (!s.ok()) return;
    r.start_us = s->start;
  }
  if (!end.empty()) {
    auto e = ParseDateTimeRange(end);
    if (!e.ok()) return;
    r.end_us = e->end;
  }
  if (start.empty() && end.empty()) return;
  rows.dates.push_back(r);
}

void ExtractDate(const Item& i, const CompiledParam& p, store::IndexRows& rows) {
  const std::string& code = p.def->code;
  if (auto s = AsString(i)) return AddDate(rows, code, *s, *s);
  if (!i.is_node() && (i.kind() == Item::Kind::kDate || i.kind() == Item::Kind::kDateTime)) {
    std::string text = i.ToText();
    return AddDate(rows, code, text, text);
  }
  const json::object* o = AsObject(i);
  if (!o) return;
  std::string_view t = i.FhirType();
  if (t == "Period") {
    AddDate(rows, code, FindString(*o, "start").value_or(""), FindString(*o, "end").value_or(""));
  } else if (t == "Timing") {
    if (const json::array* events = FindArray(*o, "event")) {
      for (const json::value& e : *events) {
        if (e.is_string()) AddDate(rows, code, e.get_string(), e.get_string());
      }
    }
    if (const json::object* rep = FindObject(*o, "repeat")) {
      if (const json::object* bp = FindObject(*rep, "boundsPeriod")) {
        AddDate(rows, code, FindString(*bp, "start").value_or(""),
                FindString(*bp, "end").value_or(""));
      }
    }
  }
}

std::optional<double> AsNumber(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return std::nullopt;
}

void ExtractNumber(const Item& i, const CompiledParam& p, store::IndexRows& rows) {
  std::optional<double> v;
  if (i.is_node()) {
    v = AsNumber(i.json());
  } else if (i.kind() == Item::Kind::kInteger) {
    v = static_cast<double>(i.integer());
  } else if (i.kind() == Item::Kind::kDecimal) {
    v = i.decimal().value;
  }
  if (v) rows.numbers.push_back({p.def->code, *v});
}

void ExtractQuantity(const Item& i, const CompiledParam& p, store::IndexRows& rows) {
  const json::object* o = AsObject(i);
  if (!o) return;
  auto value = AsNumber(Find(*o, "value"));
  if (!value) return;
  store::QuantityIndexRow r;
  r.param = p.def->code;
  r.value = *value;
  if (i.FhirType() == "Money") {
    r.system = "urn:iso:std:iso:4217";
    r.code = std::string(FindString(*o, "currency").value_or(""));
  } else {
    r.system = std::string(FindString(*o, "system").value_or(""));
    r.code = std::string(FindString(*o, "code").value_or(""));
    if (!r.code.empty() && (r.system.empty() || r.system == "http://unitsofmeasure.org")) {
      if (auto c = Canonicalize(*value, r.code)) {
        r.canonical_value = c->value;
        r.canonical_code = std::string(c->code);
      }
    }
    // The human unit, when it says something the code does not (see kHumanUnitSystem).
    const std::string_view unit = FindString(*o, "unit").value_or("");
    if (!unit.empty() && unit != r.code) {
      store::QuantityIndexRow u;
      u.param = r.param;
      u.value = r.value;
      u.code = std::string(unit);
      u.system = std::string(kHumanUnitSystem);
      rows.quantities.push_back(std::move(r));
      rows.quantities.push_back(std::move(u));
      return;
    }
  }
  rows.quantities.push_back(std::move(r));
}

void ExtractReference(const Item& i, const CompiledParam& p, const ExtractOptions& options,
                      store::IndexRows& rows) {
  std::optional<std::string_view> ref = AsString(i);  // canonical/uri targets
  // canonical, uri and url elements identify a target by its URL (a canonical is matched by the
  // target's url element, wherever the target lives); a Reference.reference is its location.
  const std::string_view fhir_type = i.is_node() ? i.FhirType() : std::string_view();
  const bool canonical =
      ref && (fhir_type == "canonical" || fhir_type == "uri" || fhir_type == "url");
  if (!ref) {
    const json::object* o = AsObject(i);
    if (!o) return;
    // The logical reference (Reference.identifier), for :identifier.
    if (const json::object* id = FindObject(*o, "identifier"); id && !p.identifier_param.empty()) {
      auto value = FindString(*id, "value");
      if (value && !value->empty()) {
        rows.tokens.push_back({p.identifier_param,
                               std::string(FindString(*id, "system").value_or("")),
                               std::string(*value)});
      }
    }
    ref = FindString(*o, "reference");
    if (!ref) return;
  }
  store::ReferenceIndexRow r;
  if (!ParseReference(*ref, r)) return;
  if (!r.url.empty()) {
    // R4 References: an absolute URL names the resource at that URL. Under this server's base it
    // is a local resource (Type/id kept, so that "Patient/1", chains and _has find it); any other
    // is another server's resource, or a canonical (an identity, not a location): found by its
    // URL only, so the Type/id at its end must not make it look local.
    r.target_type.clear();
    r.target_id.clear();
    if (!canonical) LocalReference(r.url, options.base_url, r);
  }
  r.param = p.def->code;
  rows.references.push_back(std::move(r));
}

void ExtractUri(const Item& i, const CompiledParam& p, store::IndexRows& rows) {
  if (auto s = AsString(i); s && !s->empty()) rows.uris.push_back({p.def->code, std::string(*s)});
}

// ---- full text (_text, _content) ----

constexpr size_t kMaxFullText = 32 * 1024;  // per column: a huge resource indexes its start

// Code points the full text keeps: not NUL, not a surrogate, within Unicode.
void AppendTextUtf8(uint32_t cp, std::string& out) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return;
  AppendUtf8(static_cast<char32_t>(cp), out);
}

// The text of a narrative's XHTML: tags become word breaks, entities are decoded.
std::string NarrativeText(std::string_view xhtml) {
  std::string out;
  out.reserve(std::min(xhtml.size(), kMaxFullText));
  for (size_t i = 0; i < xhtml.size() && out.size() < kMaxFullText; ++i) {
    const char c = xhtml[i];
    if (c == '<') {
      const size_t close = xhtml.find('>', i);
      if (close == std::string_view::npos) break;
      i = close;
      out += ' ';
    } else if (c == '&') {
      const size_t semi = xhtml.find(';', i);
      if (semi == std::string_view::npos || semi - i > 10) {
        out += c;
        continue;
      }
      std::string_view name = xhtml.substr(i + 1, semi - i - 1);
      i = semi;
      if (name == "amp")
        out += '&';
      else if (name == "lt")
        out += '<';
      else if (name == "gt")
        out += '>';
      else if (name == "quot")
        out += '"';
      else if (name == "apos")
        out += '\'';
      else if (name.size() > 1 && name[0] == '#') {
        const bool hex = name[1] == 'x' || name[1] == 'X';
        const std::string digits(name.substr(hex ? 2 : 1));
        char* end = nullptr;
        const unsigned long cp = std::strtoul(digits.c_str(), &end, hex ? 16 : 10);
        if (!digits.empty() && end && *end == '\0') {
          if (cp == 0xA0)
            out += ' ';  // &#160; is &nbsp;
          else
            AppendTextUtf8(static_cast<uint32_t>(cp), out);
        }
      } else {
        out += ' ';  // &nbsp; and the rest: a space is the safe reading for search
      }
    } else {
      out += c;
    }
  }
  return out;
}

// The text of every string value of a resource, for _content. Values that are identifiers of
// things rather than content (ids, references, systems, URLs, base64 data, the narrative's
// markup, which _text indexes) are left out.
void CollectContent(const json::value& v, std::string& out) {
  if (out.size() >= kMaxFullText) return;
  if (v.is_string()) {
    out += v.get_string();
    out += ' ';
  } else if (v.is_array()) {
    for (const json::value& e : v.get_array()) CollectContent(e, out);
  } else if (v.is_object()) {
    for (const auto& [key, value] : v.get_object()) {
      static constexpr std::string_view kSkip[] = {
          "resourceType", "id",   "reference", "system",  "url",        "div",
          "data",         "meta", "fullUrl",   "profile", "contentType"};
      if (std::find(std::begin(kSkip), std::end(kSkip), std::string_view(key)) != std::end(kSkip))
        continue;
      CollectContent(value, out);
    }
  }
}

void ExtractFullText(const json::object& resource, store::IndexRows& rows) {
  store::FullTextIndexRow ft;
  if (const json::object* text = FindObject(resource, "text")) {
    if (auto div = FindString(*text, "div")) ft.narrative = FullTextForm(NarrativeText(*div));
  }
  std::string content;
  for (const auto& [key, value] : resource) {
    if (key == "text" || key == "resourceType" || key == "id" || key == "meta") continue;
    CollectContent(value, content);
  }
  if (content.size() > kMaxFullText) content.resize(kMaxFullText);  // NormalizeString copes
  ft.content = FullTextForm(content);
  if (!ft.narrative.empty() || !ft.content.empty()) rows.full_text.push_back(std::move(ft));
}

const fhirpath::EvalOptions& FhirPathOptions() {
  static const fhirpath::EvalOptions kOptions = [] {
    fhirpath::EvalOptions o;
    o.model = &fhirpath::DefinitionsModel();
    return o;
  }();
  return kOptions;
}

// Whether `p` can yield anything on a resource whose leading elements are `present`.
bool MayHaveItems(const CompiledParam& p, const std::vector<char>& present) {
  if (p.leading.empty()) return true;
  return std::any_of(p.leading.begin(), p.leading.end(), [&](uint16_t i) { return present[i]; });
}

// Working buffers of the extraction, kept per thread and reused from parameter to parameter and
// from resource to resource: an import's workers extract thousands of resources each, and
// allocating fresh collections for every parameter was a large part of the extraction's cost.
struct Scratch {
  Collection items;            // the items of the parameter being extracted
  Collection component_items;  // the items of one composite component within one element
  PathPlan::Workspace ws, component_ws;
  std::vector<char> leading_present;  // MarkLeadingElements of the resource
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// The items of `p`'s expression on `input` into `out`: by its path plan when the plan covers
// the data, else by the evaluator. false when the expression fails on this data (the parameter
// then indexes nothing).
bool EvaluateParam(const CompiledParam& p, const Item& input, const json::value& resource,
                   Collection& out, PathPlan::Workspace& ws) {
  if (p.plan) {
    switch (p.plan->Run(input, resource, out, ws)) {
      case PathPlan::Outcome::kOk:
        return true;
      case PathPlan::Outcome::kError:
        return false;
      case PathPlan::Outcome::kUnsupported:
        break;
    }
  }
  auto items = fhirpath::EvaluateOn(p.expr, Collection{input}, &resource, FhirPathOptions());
  if (!items.ok()) return false;
  out = std::move(*items);
  return true;
}

// Maps one FHIRPath item of a (non-composite) parameter to its typed rows.
void ExtractItem(const Item& i, const CompiledParam& p, const ExtractOptions& options,
                 store::IndexRows& rows) {
  const std::string& t = p.def->type;
  if (t == "string")
    ExtractString(i, p, rows);
  else if (t == "token")
    ExtractToken(i, p, rows);
  else if (t == "date")
    ExtractDate(i, p, rows);
  else if (t == "number")
    ExtractNumber(i, p, rows);
  else if (t == "quantity")
    ExtractQuantity(i, p, rows);
  else if (t == "reference")
    ExtractReference(i, p, options, rows);
  else if (t == "uri")
    ExtractUri(i, p, rows);
}

// Rows of one element of a composite: every combination of the first component's tokens with
// the other components' values, all taken from this element only.
void ExtractComposite(const Item& element, const CompiledParam& p, const json::value& resource,
                      const ExtractOptions& options, store::IndexRows& rows) {
  // A pathological element (hundreds of codings x values) must not explode the index.
  constexpr size_t kMaxRowsPerElement = 64;
  Scratch& scratch = ThreadScratch();
  Collection& items = scratch.component_items;
  store::IndexRows first, second, third;
  // The value components first: most elements have one value type, so most composites of an
  // Observation (code-value-quantity, -concept, -date, -string) stop here.
  const size_t n = p.components.size();
  for (size_t j = 0; j < n; ++j) {
    const size_t k = (j + 1) % n;  // 1, (2,) then 0
    if (!EvaluateParam(p.components[k], element, resource, items, scratch.component_ws) ||
        items.empty()) {
      return;
    }
    store::IndexRows& into = k == 0 ? first : k == 1 ? second : third;
    for (const Item& i : items) ExtractItem(i, p.components[k], options, into);
  }
  if (p.components.size() == 3) {
    // A token and two numbers (the MolecularSequence coordinates): start in number2, end in
    // end2_us (see store::CompositeIndexRow). The end is an R4 integer; a value that is not a
    // whole number in range would not survive the integer column, so it indexes nothing.
    size_t made = 0;
    for (const store::TokenIndexRow& t : first.tokens) {
      for (const store::NumberIndexRow& start : second.numbers) {
        for (const store::NumberIndexRow& end : third.numbers) {
          if (!(end.value >= -9.0e18 && end.value <= 9.0e18) ||
              end.value != static_cast<double>(static_cast<int64_t>(end.value)))
            continue;
          if (made++ >= kMaxRowsPerElement) return;
          store::CompositeIndexRow r;
          r.param = p.def->code;
          r.system1 = t.system;
          r.code1 = t.code;
          r.number2 = start.value;
          r.end2_us = static_cast<int64_t>(end.value);
          rows.composites.push_back(std::move(r));
        }
      }
    }
    return;
  }
  const std::string& kind = p.components[1].def->type;
  const std::string& code2 = p.components[1].def->code;
  // One side with a single value makes as many rows as the other has values, which the element
  // itself bounds: then every pair is kept, as the search's composite fusion relies on (a code
  // with its one value: query.cpp, FuseRootComposites).
  const size_t seconds = second.tokens.size() + second.quantities.size() + second.dates.size() +
                         second.strings.size() + second.references.size();
  const size_t cap = first.tokens.size() <= 1 || seconds <= 1 ? std::numeric_limits<size_t>::max()
                                                              : kMaxRowsPerElement;
  size_t made = 0;
  for (const store::TokenIndexRow& t : first.tokens) {
    auto add = [&](store::CompositeIndexRow r) {
      if (made++ >= cap) return;
      r.param = p.def->code;
      r.system1 = t.system;
      r.code1 = t.code;
      rows.composites.push_back(std::move(r));
    };
    if (kind == "token") {
      for (const store::TokenIndexRow& v : second.tokens) {
        store::CompositeIndexRow r;
        r.code2 = v.code;
        r.system2 = v.system;
        add(std::move(r));
      }
    } else if (kind == "quantity") {
      for (const store::QuantityIndexRow& v : second.quantities) {
        store::CompositeIndexRow r;
        r.number2 = v.value;
        r.code2 = v.code;
        r.system2 = v.system;
        r.canonical_code2 = v.canonical_code;
        r.canonical_number2 = v.canonical_value;
        add(std::move(r));
      }
    } else if (kind == "date") {
      for (const store::DateIndexRow& v : second.dates) {
        store::CompositeIndexRow r;
        r.start2_us = v.start_us;
        r.end2_us = v.end_us;
        add(std::move(r));
      }
    } else if (kind == "string") {
      for (const store::StringIndexRow& v : second.strings) {
        if (v.param != code2) continue;
        store::CompositeIndexRow r;
        r.code2 = v.value;
        r.system2 = v.exact;
        add(std::move(r));
      }
    } else if (kind == "reference") {
      for (const store::ReferenceIndexRow& v : second.references) {
        store::CompositeIndexRow r;
        // A resource of this server by id and type; any other by its URL alone (see
        // store::CompositeIndexRow).
        r.code2 = v.target_id.empty() ? v.url : v.target_id;
        r.system2 = v.target_id.empty() ? "" : v.target_type;
        if (r.code2.empty()) continue;
        add(std::move(r));
      }
    }
  }
}

}  // namespace

bool ParseReference(std::string_view text, store::ReferenceIndexRow& out) {
  if (text.empty() || text.front() == '#') return false;
  std::string_view r = text;
  const bool absolute = r.find("://") != std::string_view::npos || r.starts_with("urn:");
  if (absolute) {
    // Canonical references may carry "|version": the URL identifies the target.
    if (size_t bar = r.find('|'); bar != std::string_view::npos) r = r.substr(0, bar);
    out.url = std::string(r);
  }
  if (size_t h = r.find("/_history/"); h != std::string_view::npos) r = r.substr(0, h);
  size_t slash = r.rfind('/');
  if (slash != std::string_view::npos && slash > 0 && slash + 1 < r.size()) {
    size_t prev = r.rfind('/', slash - 1);
    std::string_view type = r.substr(prev == std::string_view::npos ? 0 : prev + 1,
                                     slash - (prev == std::string_view::npos ? 0 : prev + 1));
    if (fhir::Definitions::Get().IsResourceType(type)) {
      out.target_type = std::string(type);
      out.target_id = std::string(r.substr(slash + 1));
    }
  } else if (!absolute && slash == std::string_view::npos) {
    out.target_id = std::string(r);  // a bare id: the type comes from the parameter's target
  }
  return !out.url.empty() || !out.target_id.empty();
}

bool LocalReference(std::string_view url, std::string_view base_url,
                    store::ReferenceIndexRow& out) {
  while (!base_url.empty() && base_url.back() == '/') base_url.remove_suffix(1);
  if (base_url.empty() || url.size() <= base_url.size() + 1 || !url.starts_with(base_url) ||
      url[base_url.size()] != '/')
    return false;
  std::string_view path = url.substr(base_url.size() + 1);
  if (size_t h = path.find("/_history/"); h != std::string_view::npos) path = path.substr(0, h);
  const size_t slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == path.size() ||
      path.find('/', slash + 1) != std::string_view::npos)
    return false;
  const std::string_view type = path.substr(0, slash);
  if (!fhir::Definitions::Get().IsResourceType(type)) return false;
  out.target_type = std::string(type);
  out.target_id = std::string(path.substr(slash + 1));
  return true;
}

namespace {

std::shared_mutex server_base_mu;
std::string& ServerBase() {
  static std::string base;
  return base;
}

}  // namespace

void SetServerBaseUrl(std::string_view base_url) {
  while (!base_url.empty() && base_url.back() == '/') base_url.remove_suffix(1);
  std::unique_lock lock(server_base_mu);
  ServerBase() = std::string(base_url);
}

std::string ServerBaseUrl() {
  std::shared_lock lock(server_base_mu);
  return ServerBase();
}

store::IndexRows ExtractIndexRows(const json::value& resource) {
  return ExtractIndexRows(resource, ExtractOptions{ServerBaseUrl()});
}

store::IndexRows ExtractIndexRows(const json::value& resource, const ExtractOptions& options) {
  store::IndexRows rows;
  if (!resource.is_object()) return rows;
  auto type = FindString(resource.get_object(), "resourceType");
  if (!type || !fhir::Definitions::Get().IsResourceType(*type)) return rows;
  // The resource as the evaluator's root item (fhirpath::Evaluate makes the same).
  const Item root = Item::Node(&resource, nullptr, *type, *type);
  Scratch& scratch = ThreadScratch();
  Collection& items = scratch.items;
  const TypeParams& t = ParamCache::Get().ForType(*type);
  // Room for a typical resource's string and token rows (about 8 and 5 over a generated
  // county), so that the vectors do not grow one reallocation at a time.
  rows.strings.reserve(8);
  rows.tokens.reserve(8);
  MarkLeadingElements(t, resource.get_object(), scratch.leading_present);
  for (const CompiledParam& p : t.params) {
    if (!p.union_of.empty()) continue;  // its parts' rows are its rows
    // None of the elements its path starts from: nothing to extract.
    if (!MayHaveItems(p, scratch.leading_present)) continue;
    if (!EvaluateParam(p, root, resource, items, scratch.ws)) continue;
    if (!p.components.empty()) {
      for (const Item& i : items) ExtractComposite(i, p, resource, options, rows);
      continue;
    }
    for (const Item& i : items) ExtractItem(i, p, options, rows);
  }
  ExtractFullText(resource.get_object(), rows);
  return rows;
}

std::vector<const fhir::SearchParamDef*> CompositeComponentDefs(const fhir::SearchParamDef& p) {
  std::vector<const fhir::SearchParamDef*> out;
  for (const auto& c : p.components) {
    const fhir::SearchParamDef* d = fhir::Definitions::Get().SearchParamByUrl(c.definition);
    if (!d) return {};
    out.push_back(d);
  }
  if (out.size() == 2) {
    const std::string& e0 = p.components[0].expression;
    const std::string& e1 = p.components[1].expression;
    if (!DefinesComponent(*out[0], e0) && !DefinesComponent(*out[1], e1) &&
        DefinesComponent(*out[0], e1) && DefinesComponent(*out[1], e0)) {
      std::swap(out[0], out[1]);
    }
  }
  return out;
}

std::vector<const fhir::SearchParamDef*> IndexedParams(std::string_view type) {
  std::vector<const fhir::SearchParamDef*> out;
  if (!fhir::Definitions::Get().IsResourceType(type)) return out;
  for (const CompiledParam& p : ParamCache::Get().ForType(type).params) out.push_back(p.def);
  return out;
}

const std::vector<std::string>* StoredAsUnionOf(std::string_view type, std::string_view code) {
  if (!fhir::Definitions::Get().IsResourceType(type)) return nullptr;
  for (const CompiledParam& p : ParamCache::Get().ForType(type).params) {
    if (p.def->code == code) return p.union_of.empty() ? nullptr : &p.union_of;
  }
  return nullptr;
}

}  // namespace jiceng::search
