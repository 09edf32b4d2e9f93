// FhirApi's Bulk Data export routes (FHIR Bulk Data Access 2.0): the kick-offs (GET /$export,
// /Patient/$export and /Group/[id]/$export with Prefer: respond-async), the status URL they
// hand out (GET to poll, DELETE to cancel and delete), and the files of a complete export. The
// jobs are api/bulk_export.h's.
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "api/compartments.h"
#include "api/fhir_api.h"
#include "api/fhir_api_context.h"
#include "api/outcome.h"
#include "base/files.h"
#include "base/json.h"
#include "base/time.h"

namespace jiceng::api {

namespace {

constexpr const char* kNdjson = "application/fhir+ndjson";

// The comma-separated items of a parameter value, empty items dropped.
std::vector<std::string> CommaList(const std::string& value) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    if (comma == std::string::npos) comma = value.size();
    if (comma > pos) out.push_back(value.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

}  // namespace

std::string ExportDir(const std::string& configured) {
  if (!configured.empty()) return configured;
  return (TempDirectory() / fmt::format("jiceng-export-{}", ::getpid())).string();
}

Response FhirApi::ExportKickOff(Context& c) {
  BulkExportRequest request;
  return StartExport(c, std::move(request), options_.resource_types);
}

namespace {

// The types a Patient- or Group-level export covers: Patient and the types of its compartment.
std::vector<std::string> PatientCompartmentTypes(
    const std::function<bool(const std::string&)>& known) {
  std::vector<std::string> out = {"Patient"};
  for (const std::string& t : CompartmentResourceTypes("Patient")) {
    if (t != "Patient" && known(t)) out.push_back(t);
  }
  return out;
}

}  // namespace

Response FhirApi::ExportKickOffPatients(Context& c) {
  if (c.type != "Patient") {
    return ErrorResponse(NotFound(fmt::format(
        "$export is defined on the system, on Patient and on Group instances, not on {}", c.type)));
  }
  BulkExportRequest request;
  request.patient_compartment = true;
  return StartExport(c, std::move(request), PatientCompartmentTypes(options_.is_resource_type));
}

Response FhirApi::ExportKickOffGroup(Context& c) {
  if (c.type != "Group") {
    return ErrorResponse(NotFound(fmt::format(
        "$export is defined on the system, on Patient and on Group instances, not on {}/{}", c.type,
        c.id)));
  }
  auto group = store_.ReadCurrent("Group", c.id);
  if (!group.ok()) return ErrorResponse(group.error());
  if (!group->has_value()) return ErrorResponse(NotFound(fmt::format("Group/{} not found", c.id)));
  if ((*group)->deleted) {
    return ErrorResponse(Error(ErrorCode::kGone, fmt::format("Group/{} was deleted", c.id)));
  }
  auto doc = ParseJson((*group)->json);
  if (!doc.ok() || !doc->is_object()) return ErrorResponse(Internal("stored Group is not JSON"));
  // The members: each active member's entity that is a Patient, by relative reference or by an
  // absolute one under this server's base. Other members (a Practitioner, a nested Group) do not
  // widen the export.
  BulkExportRequest request;
  request.patient_compartment = true;
  request.patients.emplace();
  if (const json::value* members = doc->as_object().if_contains("member");
      members && members->is_array()) {
    for (const json::value& m : members->get_array()) {
      if (!m.is_object()) continue;
      const json::object& member = m.get_object();
      if (const json::value* inactive = member.if_contains("inactive");
          inactive && inactive->is_bool() && inactive->get_bool())
        continue;
      const json::value* entity = member.if_contains("entity");
      if (!entity || !entity->is_object()) continue;
      std::string_view ref = FindString(entity->get_object(), "reference").value_or("");
      if (ref.starts_with(c.base + "/")) ref.remove_prefix(c.base.size() + 1);
      if (ref.starts_with("Patient/") && ref.find('/', 8) == std::string_view::npos &&
          ref.size() > 8) {
        request.patients->emplace(ref.substr(8));
      }
    }
  }
  return StartExport(c, std::move(request), PatientCompartmentTypes(options_.is_resource_type));
}

Response FhirApi::StartExport(Context& c, BulkExportRequest request,
                              const std::vector<std::string>& allowed) {
  bool async = false;
  for (const auto& [k, v] : c.req.headers) {
    if (k != "prefer") continue;
    for (const auto& [name, value] : ParsePrefer(v)) async |= name == "respond-async";
  }
  if (!async) {
    return ErrorResponse(Invalid(
        "$export runs asynchronously: send the header 'Prefer: respond-async' (FHIR Bulk Data)"));
  }
  // The kick-off as sent (the raw target after /fhir), as the manifest's `request` echoes it.
  request.request_url = c.base + c.req.target.substr(std::min<size_t>(5, c.req.target.size()));
  for (const auto& [k, v] : c.req.query) {
    if (k == "_outputFormat") {
      if (v != kNdjson && v != "application/ndjson" && v != "ndjson") {
        return ErrorResponse(Invalid(
            fmt::format("_outputFormat '{}' is not supported: only {} (NDJSON)", v, kNdjson)));
      }
    } else if (k == "_type") {
      for (const std::string& t : CommaList(v)) {
        if (!options_.is_resource_type(t))
          return ErrorResponse(Invalid(fmt::format("_type: unknown resource type '{}'", t)));
        if (std::find(allowed.begin(), allowed.end(), t) == allowed.end()) {
          return ErrorResponse(Invalid(fmt::format(
              "_type: {} is not in the Patient compartment, which this export covers", t)));
        }
        request.types.push_back(t);
      }
    } else if (k == "_since") {
      auto since = ParseDateTimeStart(v);
      if (!since.ok()) {
        return ErrorResponse(Invalid(
            fmt::format("_since: '{}' is not a FHIR instant: {}", v, since.error().message)));
      }
      request.since_us = *since;
    } else if (k == "_typeFilter" || k == "_elements" || k == "patient" ||
               k == "includeAssociatedData") {
      return ErrorResponse(Error(ErrorCode::kNotImplemented,
                                 fmt::format("$export parameter {} is not supported", k)));
    } else if (c.strict_handling) {
      return ErrorResponse(Invalid(fmt::format("$export has no parameter '{}'", k)));
    }
  }
  if (request.types.empty()) request.types = allowed;
  auto id = exports_->Start(std::move(request));
  if (!id.ok()) return ErrorResponse(id.error());
  Response r;
  r.status = 202;
  r.SetHeader("Content-Location", c.base + "/$export-poll-status/" + *id);
  return r;
}

Response FhirApi::ExportStatus(Context& c) {
  std::optional<BulkExportStatus> s = exports_->Get(c.id);
  if (!s) return ErrorResponse(NotFound(fmt::format("No export job '{}'", c.id)));
  switch (s->state) {
    case BulkExportStatus::State::kRunning: {
      Response r;
      r.status = 202;
      r.SetHeader("X-Progress",
                  fmt::format("{} of {} resource types exported", s->types_done, s->types_total));
      r.SetHeader("Retry-After", "1");
      return r;
    }
    case BulkExportStatus::State::kFailed:
      return ErrorResponse(Internal("export failed: " + s->error));
    case BulkExportStatus::State::kComplete:
      break;
  }
  json::array output;
  for (const BulkExportFile& f : s->files) {
    output.emplace_back(json::object{
        {"type", f.type},
        {"url", fmt::format("{}/$export-file/{}/{}", c.base, c.id, f.name)},
        {"count", f.count},
    });
  }
  json::object manifest{
      {"transactionTime", FormatInstant(s->transaction_time_us)},
      {"request", s->request_url},
      {"requiresAccessToken", false},
      {"output", std::move(output)},
      {"error", json::array{}},
  };
  Response r = JsonResponse(200, manifest, c.format.pretty);
  r.content_type = "application/json";
  // When the files go (Bulk Data: "the server MAY ... include an Expires header").
  r.SetHeader("Expires",
              FormatHttpDate(s->finished_us + std::chrono::duration_cast<std::chrono::microseconds>(
                                                  exports_->options().retention)
                                                  .count()));
  return r;
}

Response FhirApi::ExportDelete(Context& c) {
  if (!exports_->Delete(c.id)) {
    return ErrorResponse(NotFound(fmt::format("No export job '{}'", c.id)));
  }
  Response r;
  r.status = 202;
  return r;
}

Response FhirApi::ExportFile(Context& c) {
  std::optional<std::string> path = exports_->FilePath(c.id, c.vid);
  if (!path) {
    return ErrorResponse(
        NotFound(fmt::format("No file '{}' of a complete export job '{}'", c.vid, c.id)));
  }
  std::optional<std::string> body = ReadWholeFile(*path);
  if (!body) return ErrorResponse(Internal("cannot read " + *path));
  Response r;
  r.status = 200;
  r.content_type = kNdjson;
  r.body = std::move(*body);
  return r;
}

}  // namespace jiceng::api
