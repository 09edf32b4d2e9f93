#include "api/response_format.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/json.h"
#include "fhir/definitions.h"

namespace jiceng::api {

namespace {

bool AcceptsJson(std::string_view v) {
  // A media range list: JSON (FHIR or plain), or any type, is fine.
  return v.find("json") != std::string_view::npos || v.find("*/*") != std::string_view::npos ||
         v.find("application/*") != std::string_view::npos;
}

void AddSubsettedTag(json::object& r) {
  json::value& metav = r["meta"];
  if (!metav.is_object()) metav = json::object();
  json::value& tagv = metav.get_object()["tag"];
  if (!tagv.is_array()) tagv = json::array();
  tagv.get_array().emplace_back(json::object{
      {"system", "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"},
      {"code", "SUBSETTED"}});
}

}  // namespace

Result<FormatOptions> ParseFormatOptions(const Request& req) {
  FormatOptions o;
  std::optional<std::string> format;
  for (const auto& [k, v] : req.query) {
    if (k == "_format") format = v;
    else if (k == "_pretty") {
      if (v != "true" && v != "false") return Invalid("_pretty must be true or false", "_pretty");
      o.pretty = v == "true";
    } else if (k == "_summary") {
      if (v != "true" && v != "false" && v != "text" && v != "data" && v != "count")
        return Invalid(fmt::format("_summary '{}' is not one of true, false, text, data, count", v), "_summary");
      o.summary = v;
    } else if (k == "_elements") {
      std::size_t pos = 0;
      while (pos <= v.size()) {
        auto comma = v.find(',', pos);
        auto name = v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        while (!name.empty() && name.front() == ' ') name.erase(0, 1);
        while (!name.empty() && name.back() == ' ') name.pop_back();
        if (!name.empty()) {
          // "Patient.name" is accepted as "name".
          auto dot = name.find('.');
          o.elements.push_back(dot == std::string::npos ? name : name.substr(dot + 1));
        }
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
    }
  }
  if (format) {
    if (!AcceptsJson(*format) && *format != "json")
      return Error(ErrorCode::kNotAcceptable,
                   fmt::format("_format '{}' is not supported: this server speaks FHIR JSON", *format));
  } else if (auto accept = req.Header("accept")) {
    if (!accept->empty() && !AcceptsJson(*accept))
      return Error(ErrorCode::kNotAcceptable,
                   fmt::format("Accept '{}' cannot be met: this server speaks application/fhir+json", *accept));
  }
  return o;
}

Result<std::string> FormatResource(const std::string& stored, const FormatOptions& o) {
  bool shape = (!o.summary.empty() && o.summary != "false") || !o.elements.empty();
  if (!shape && !o.pretty) return stored;
  JC_ASSIGN_OR_RETURN(json::value v, ParseJson(stored));
  if (shape && v.is_object()) {
    auto& r = v.get_object();
    std::string type(FindString(r, "resourceType").value_or(""));
    json::object out;
    auto keep = [&](std::string_view name) {
      if (auto* x = r.if_contains(name)) out[name] = *x;
    };
    keep("resourceType");
    keep("id");
    keep("meta");
    keep("implicitRules");
    keep("modifierExtension");
    // Mandatory elements (min > 0; a choice element by its typed name) stay in a subset.
    auto keep_mandatory = [&] {
      for (auto& kv : r)
        if (!out.contains(kv.key()) && kv.key().size() > 0) {
          const auto res = fhir::Definitions::Get().Resolve(type, kv.key());
          if (res.element && res.element->min > 0) out[kv.key()] = kv.value();
        }
    };
    if (o.summary == "text") {
      keep("text");
      keep_mandatory();
    } else if (o.summary == "data") {
      out = r;
      out.erase("text");
    } else if (o.summary == "true") {
      for (auto& kv : r) {
        const auto res = fhir::Definitions::Get().Resolve(type, kv.key());
        if (res.element && (res.element->is_summary || res.element->min > 0)) out[kv.key()] = kv.value();
      }
    } else if (!o.elements.empty()) {
      for (const auto& name : o.elements) {
        keep(name);
        // Choice elements may be asked for by their base name ("value" → valueQuantity).
        for (auto& kv : r)
          if (kv.key().size() > name.size() && kv.key().starts_with(name) &&
              std::isupper(static_cast<unsigned char>(kv.key()[name.size()])))
            out[kv.key()] = kv.value();
      }
      // R4 search, _elements: "Servers SHOULD always return mandatory elements whether they are
      // requested or not" (Observation.status and code with _elements=value).
      keep_mandatory();
    }
    AddSubsettedTag(out);
    v = std::move(out);
  }
  return o.pretty ? ToPrettyJson(v) : ToJson(v);
}

}  // namespace jiceng::api
