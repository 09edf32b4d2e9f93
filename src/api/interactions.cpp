#include "api/interactions.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "api/compartments.h"
#include "api/stored_value_sets.h"
#include "base/time.h"
#include "fhir/search/extractor.h"
#include "fhir/search/query.h"

namespace jiceng::api {

namespace {

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return Invalid("Bad percent-encoding in query");
      int h = HexVal(s[i + 1]), l = HexVal(s[i + 2]);
      if (h < 0 || l < 0) return Invalid("Bad percent-encoding in query");
      out += static_cast<char>(h * 16 + l);
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

Error PreconditionFailed(std::string msg) {
  return Error(ErrorCode::kPreconditionFailed, std::move(msg));
}

Result<WriteResult> PutVersion(store::IWriteTransaction& txn, json::object& resource,
                               std::string_view type, std::string_view id, int64_t version,
                               int status) {
  int64_t now = NowMicros();
  StampMeta(resource, id, version, now);
  store::ResourceVersion v;
  v.type = std::string(type);
  v.id = std::string(id);
  v.version = version;
  v.last_updated_us = now;
  v.json = ToJson(resource);
  // FHIRPath evaluates over a json::value; moving the object in and back out is O(1), where
  // copying it would cost an allocation per node on every write.
  store::IndexRows rows = ExtractIndexRows(resource);
  JC_RETURN_IF_ERROR(txn.Put(v, rows));
  WriteResult r;
  r.status = status;
  r.version = std::move(v);
  return r;
}

}  // namespace

Result<QueryParams> ParseQueryString(std::string_view query) {
  QueryParams out;
  if (!query.empty() && query.front() == '?') query.remove_prefix(1);
  std::size_t pos = 0;
  while (pos <= query.size() && !query.empty()) {
    std::size_t amp = query.find('&', pos);
    std::string_view part =
        query.substr(pos, amp == std::string_view::npos ? query.npos : amp - pos);
    if (!part.empty()) {
      std::size_t eq = part.find('=');
      JC_ASSIGN_OR_RETURN(std::string k, PercentDecode(part.substr(0, eq)));
      std::string v;
      if (eq != std::string_view::npos) {
        JC_ASSIGN_OR_RETURN(v, PercentDecode(part.substr(eq + 1)));
      }
      out.emplace_back(std::move(k), std::move(v));
    }
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return out;
}

Result<std::vector<std::string>> FindMatches(store::IReadTransaction& txn, std::string_view type,
                                             const QueryParams& criteria) {
  // The same parser and the same store query as search: a conditional write matches exactly
  // what GET [type]?criteria would return (but an unsupported criterion is always an error).
  JC_ASSIGN_OR_RETURN(store::SearchQuery q,
                      search::ParseCriteria(type, criteria, StoredValueSets(txn)));
  q.with_total = false;
  q.count = 1000;
  JC_ASSIGN_OR_RETURN(store::SearchPage page, txn.Search(q));
  std::vector<std::string> ids;
  ids.reserve(page.entries.size());
  for (auto& v : page.entries) ids.push_back(std::move(v.id));
  return ids;
}

Result<int64_t> ParseETagVersion(std::string_view etag) {
  std::string_view s = etag;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.size() >= 2 && (s.substr(0, 2) == "W/" || s.substr(0, 2) == "w/")) s.remove_prefix(2);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  if (s.empty() || s.size() > 18) return Invalid(fmt::format("Bad ETag '{}'", etag));
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return Invalid(fmt::format("Bad ETag '{}'", etag));
    v = v * 10 + (c - '0');
  }
  return v;
}

std::vector<std::string> PatientsOf(std::string_view type, std::string_view id,
                                    const store::IndexRows& rows) {
  if (type == "Patient") return {std::string(id)};
  // The parameters of the CompartmentDefinition's list for this type (Observation: subject,
  // then performer), as $everything and compartment search read the same list.
  std::vector<std::string> out;
  for (const std::string& param : CompartmentParams("Patient", type)) {
    for (const store::ReferenceIndexRow& r : rows.references) {
      if (r.param == param && r.target_type == "Patient" && !r.target_id.empty() &&
          std::find(out.begin(), out.end(), r.target_id) == out.end()) {
        out.push_back(r.target_id);
      }
    }
  }
  return out;
}

std::string PatientCompartmentOf(std::string_view type, std::string_view id,
                                 const store::IndexRows& rows) {
  std::vector<std::string> patients = PatientsOf(type, id, rows);
  return patients.empty() ? std::string() : std::move(patients.front());
}

store::IndexRows ExtractIndexRows(json::object& resource) {
  // FHIRPath evaluates over a json::value; moving the object in and back out is O(1), where
  // copying it would cost an allocation per node on every write.
  json::value holder(std::move(resource));
  store::IndexRows rows = search::ExtractIndexRows(holder);
  resource = std::move(holder.get_object());
  rows.patient_compartment = PatientCompartmentOf(FindString(resource, "resourceType").value_or(""),
                                                  FindString(resource, "id").value_or(""), rows);
  return rows;
}

void StampMeta(json::object& resource, std::string_view id, int64_t version, int64_t now_us) {
  resource["id"] = id;
  json::value& metav = resource["meta"];
  if (!metav.is_object()) metav = json::object();
  auto& meta = metav.get_object();
  meta["versionId"] = std::to_string(version);
  meta["lastUpdated"] = FormatInstant(now_us);
  // Keep resourceType first and id second for readability of stored JSON.
}

PreparedCreate Interactions::PrepareCreate(json::object& resource, const std::string& id,
                                           int64_t now_us) {
  StampMeta(resource, id, 1, now_us);
  PreparedCreate p;
  p.version.type = std::string(FindString(resource, "resourceType").value_or(""));
  p.version.id = id;
  p.version.version = 1;
  p.version.last_updated_us = now_us;
  p.version.json = ToJson(resource);
  p.index = ExtractIndexRows(resource);
  return p;
}

Result<WriteResult> Interactions::StorePrepared(store::IWriteTransaction& txn,
                                                PreparedCreate& prepared) {
  JC_RETURN_IF_ERROR(txn.Put(prepared.version, prepared.index));
  WriteResult r;
  r.status = 201;
  r.version = std::move(prepared.version);
  return r;
}

Result<WriteResult> Interactions::Create(store::IWriteTransaction& txn, json::object resource,
                                         const std::string& id, std::string_view if_none_exist) {
  std::string type(FindString(resource, "resourceType").value_or(""));
  if (!if_none_exist.empty()) {
    JC_ASSIGN_OR_RETURN(QueryParams criteria, ParseQueryString(if_none_exist));
    JC_ASSIGN_OR_RETURN(auto matches, FindMatches(txn, type, criteria));
    if (matches.size() > 1)
      return PreconditionFailed(fmt::format("If-None-Exist criteria '{}' match {} resources",
                                            if_none_exist, matches.size()));
    if (matches.size() == 1) {
      JC_ASSIGN_OR_RETURN(auto cur, txn.ReadCurrent(type, matches[0]));
      WriteResult r;
      r.status = 200;
      r.version = std::move(*cur);
      r.changed = false;
      return r;
    }
  }
  JC_ASSIGN_OR_RETURN(auto existing, txn.ReadCurrent(type, id));
  if (existing) return Conflict(fmt::format("{}/{} already exists", type, id));
  return PutVersion(txn, resource, type, id, 1, 201);
}

Result<WriteResult> Interactions::Update(store::IWriteTransaction& txn, std::string_view type,
                                         std::string_view id, json::object resource,
                                         std::optional<int64_t> if_match) {
  JC_ASSIGN_OR_RETURN(auto cur, txn.ReadCurrent(type, id));
  if (if_match) {
    if (!cur)
      return PreconditionFailed(fmt::format("If-Match given but {}/{} does not exist", type, id));
    if (cur->version != *if_match)
      return PreconditionFailed(
          fmt::format("Version conflict: {}/{} is at version {}, If-Match was {}", type, id,
                      cur->version, *if_match));
  }
  if (!cur) return PutVersion(txn, resource, type, id, 1, 201);
  // Updating a deleted resource revives it with the next version number.
  return PutVersion(txn, resource, type, id, cur->version + 1, cur->deleted ? 201 : 200);
}

Result<WriteResult> Interactions::ConditionalUpdate(
    store::IWriteTransaction& txn, std::string_view type, const QueryParams& criteria,
    json::object resource, const std::string& new_id, std::optional<int64_t> if_match) {
  JC_ASSIGN_OR_RETURN(auto matches, FindMatches(txn, type, criteria));
  auto body_id = FindString(resource, "id");
  if (matches.size() > 1)
    return PreconditionFailed(
        fmt::format("Conditional update criteria match {} resources", matches.size()));
  if (matches.empty()) {
    std::string id = body_id ? std::string(*body_id) : new_id;
    return Update(txn, type, id, std::move(resource), if_match);
  }
  if (body_id && *body_id != matches[0])
    return Invalid(
        fmt::format("Resource id '{}' does not match the resource found by the criteria ('{}')",
                    *body_id, matches[0]),
        fmt::format("{}.id", type));
  return Update(txn, type, matches[0], std::move(resource), if_match);
}

Result<WriteResult> Interactions::Delete(store::IWriteTransaction& txn, std::string_view type,
                                         std::string_view id, std::optional<int64_t> if_match) {
  JC_ASSIGN_OR_RETURN(auto cur, txn.ReadCurrent(type, id));
  if (!cur) return NotFound(fmt::format("{}/{} is not known", type, id));
  if (if_match && cur->version != *if_match)
    return PreconditionFailed(
        fmt::format("Version conflict: {}/{} is at version {}, If-Match was {}", type, id,
                    cur->version, *if_match));
  if (cur->deleted) {
    WriteResult r;
    r.status = 204;
    r.version = std::move(*cur);
    r.changed = false;
    return r;
  }
  store::ResourceVersion v;
  v.type = std::string(type);
  v.id = std::string(id);
  v.version = cur->version + 1;
  v.last_updated_us = NowMicros();
  v.deleted = true;
  JC_RETURN_IF_ERROR(txn.Put(v, store::IndexRows{}));
  WriteResult r;
  r.status = 204;
  r.version = std::move(v);
  return r;
}

Result<WriteResult> Interactions::ConditionalDelete(store::IWriteTransaction& txn,
                                                    std::string_view type,
                                                    const QueryParams& criteria) {
  JC_ASSIGN_OR_RETURN(auto matches, FindMatches(txn, type, criteria));
  if (matches.size() > 1)
    return PreconditionFailed(
        fmt::format("Conditional delete criteria match {} resources", matches.size()));
  if (matches.empty()) {
    WriteResult r;
    r.status = 204;
    r.changed = false;
    return r;
  }
  return Delete(txn, type, matches[0], std::nullopt);
}

namespace {

Result<store::ResourceVersion> Live(Result<std::optional<store::ResourceVersion>> read,
                                    std::string_view type, std::string_view id) {
  JC_ASSIGN_OR_RETURN(auto cur, std::move(read));
  if (!cur) return NotFound(fmt::format("{}/{} is not known", type, id));
  if (cur->deleted) return Error(ErrorCode::kGone, fmt::format("{}/{} was deleted", type, id));
  return std::move(*cur);
}

}  // namespace

Result<store::ResourceVersion> Interactions::Read(store::IReadTransaction& txn,
                                                  std::string_view type, std::string_view id) {
  return Live(txn.ReadCurrent(type, id), type, id);
}

Result<store::ResourceVersion> Interactions::Read(store::IStore& store, std::string_view type,
                                                  std::string_view id) {
  return Live(store.ReadCurrent(type, id), type, id);
}

}  // namespace jiceng::api
