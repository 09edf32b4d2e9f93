#include "api/fhir_api.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <functional>
#include <map>

#include "api/bundle_processor.h"
#include "api/compartments.h"
#include "api/fhir_api_context.h"
#include "api/interactions.h"
#include "api/json_patch.h"
#include "api/outcome.h"
#include "api/response_format.h"
#include "api/search_include.h"
#include "api/search_shaping.h"
#include "api/stored_value_sets.h"
#include "base/ids.h"
#include "base/time.h"
#include "fhir/search/extractor.h"
#include "fhir/search/query.h"

namespace jiceng::api {

namespace {

const char* kJsonPatch = "application/json-patch+json";

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > pos) out.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

bool MatchPattern(std::string_view pattern, const std::vector<std::string_view>& segs,
                  std::string& type, std::string& id, std::string& vid, std::string& rtype) {
  auto pat = Segments(pattern);
  if (pat.size() != segs.size()) return false;
  for (std::size_t i = 0; i < pat.size(); ++i) {
    if (pat[i] == "{type}") {
      if (segs[i].empty() || segs[i][0] == '_' || segs[i][0] == '$') return false;
      type = std::string(segs[i]);
    } else if (pat[i] == "{id}") {
      if (segs[i].empty() || segs[i][0] == '_' || segs[i][0] == '$') return false;
      id = std::string(segs[i]);
    } else if (pat[i] == "{vid}") {
      vid = std::string(segs[i]);
    } else if (pat[i] == "{rtype}") {
      if (segs[i].empty() || segs[i][0] == '_' || segs[i][0] == '$') return false;
      rtype = std::string(segs[i]);
    } else if (pat[i] != segs[i]) {
      return false;
    }
  }
  return true;
}

std::string_view MediaType(std::string_view content_type) {
  auto semi = content_type.find(';');
  auto mt = content_type.substr(0, semi);
  while (!mt.empty() && mt.back() == ' ') mt.remove_suffix(1);
  return mt;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

bool IsJsonMediaType(std::string_view mt) {
  return IEquals(mt, "application/fhir+json") || IEquals(mt, "application/json") ||
         IEquals(mt, "application/json+fhir") || IEquals(mt, "json");
}

Status CheckBodyMediaType(const Request& req, bool patch) {
  auto ct = req.Header("content-type");
  if (!ct) {
    if (patch)
      return Error(ErrorCode::kUnsupportedMedia,
                   "PATCH needs Content-Type application/json-patch+json");
    return Status::Ok();  // lenient: a body without Content-Type is read as FHIR JSON
  }
  auto mt = MediaType(*ct);
  if (patch) {
    if (IEquals(mt, kJsonPatch)) return Status::Ok();
    if (IsJsonMediaType(mt))
      return Error(ErrorCode::kUnsupportedMedia,
                   "PATCH supports JSON Patch only: use Content-Type application/json-patch+json");
    return Error(ErrorCode::kUnsupportedMedia,
                 fmt::format("Unsupported Content-Type '{}' for PATCH", mt));
  }
  if (IsJsonMediaType(mt)) return Status::Ok();
  return Error(
      ErrorCode::kUnsupportedMedia,
      fmt::format("Unsupported Content-Type '{}': this server reads application/fhir+json", mt));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string> QueryValue(const Request& req, std::string_view name) {
  for (const auto& [k, v] : req.query)
    if (k == name) return v;
  return std::nullopt;
}

std::string ETag(int64_t version) { return fmt::format("W/\"{}\"", version); }

void AddVersionHeaders(Response& r, const std::string& base, const store::ResourceVersion& v,
                       bool location) {
  r.SetHeader("ETag", ETag(v.version));
  r.SetHeader("Last-Modified", FormatHttpDate(v.last_updated_us));
  if (location)
    r.SetHeader("Location", fmt::format("{}/{}/{}/_history/{}", base, v.type, v.id, v.version));
}

Error Unprocessable(std::vector<Issue> issues) {
  Error e(ErrorCode::kUnprocessable,
          issues.empty() ? "Invalid resource" : issues.front().diagnostics);
  e.issues = std::move(issues);
  return e;
}

Result<std::optional<int64_t>> IfMatch(const Request& req) {
  auto h = req.Header("if-match");
  if (!h) return std::optional<int64_t>();
  auto v = ParseETagVersion(*h);
  if (!v.ok()) return Invalid(fmt::format("Bad If-Match header '{}'", *h));
  return std::optional<int64_t>(*v);
}

// Query parameters that are conditional criteria (not result-shaping ones).
QueryParams CriteriaOf(const Request& req) {
  QueryParams out;
  for (const auto& [k, v] : req.query) {
    if (k == "_format" || k == "_pretty" || k == "_summary" || k == "_elements") continue;
    out.emplace_back(k, v);
  }
  return out;
}

// A Bundle assembled as text (stored resources embedded without re-parsing).
Response BundleTextResponse(std::string text, bool pretty) {
  Response r;
  r.status = 200;
  r.content_type = kFhirJson;
  if (pretty) {
    auto parsed = ParseJson(text);
    r.body = parsed.ok() ? ToPrettyJson(*parsed) : std::move(text);
  } else {
    r.body = std::move(text);
  }
  return r;
}

}  // namespace

// Prefer (RFC 7240): preferences separated by ',', each `token [= word]` with optional
// parameters after ';' (which also separate preferences in the wild: "return=minimal;
// handling=strict"), whitespace allowed around '=', values possibly quoted.
std::vector<std::pair<std::string, std::string>> ParsePrefer(std::string_view header) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos <= header.size()) {
    size_t end = header.find_first_of(",;", pos);
    std::string_view part =
        Trim(header.substr(pos, end == std::string_view::npos ? end : end - pos));
    if (!part.empty()) {
      size_t eq = part.find('=');
      std::string_view name = Trim(part.substr(0, eq));
      std::string_view value =
          eq == std::string_view::npos ? std::string_view() : Trim(part.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      std::string lower(name);
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.emplace_back(std::move(lower), std::string(value));
    }
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return out;
}

const std::vector<FhirApi::Route>& FhirApi::Routes() {
  static const std::vector<Route> kRoutes = {
      {"GET", "/metadata", "capabilities", "system", &FhirApi::Metadata},
      {"POST", "/", "transaction", "system", &FhirApi::BatchOrTransaction},
      {"GET", "/_history", "history-system", "system", &FhirApi::HistorySystem},
      {"GET", "/$export", "export", "system-operation", &FhirApi::ExportKickOff},
      {"GET", "/$export-poll-status/{id}", "export-poll-status", "internal",
       &FhirApi::ExportStatus},
      {"DELETE", "/$export-poll-status/{id}", "export-poll-status", "internal",
       &FhirApi::ExportDelete},
      {"GET", "/$export-file/{id}/{vid}", "export-file", "internal", &FhirApi::ExportFile},
      {"GET", "/{type}/_history", "history-type", "type", &FhirApi::HistoryType},
      {"POST", "/{type}/_search", "search-type", "type", &FhirApi::SearchTypePost},
      {"GET", "/{type}", "search-type", "type", &FhirApi::SearchType},
      {"POST", "/{type}", "create", "type", &FhirApi::Create},
      {"PUT", "/{type}", "update", "type", &FhirApi::UpdateConditional},
      {"PATCH", "/{type}", "patch", "type", &FhirApi::PatchConditional},
      {"DELETE", "/{type}", "delete", "type", &FhirApi::DeleteConditional},
      {"GET", "/{type}/{id}/$everything", "everything", "operation", &FhirApi::Everything},
      {"GET", "/{type}/$export", "export", "operation", &FhirApi::ExportKickOffPatients},
      {"GET", "/{type}/{id}/$export", "export", "operation", &FhirApi::ExportKickOffGroup},
      {"POST", "/{type}/{id}/{rtype}/_search", "search", "compartment",
       &FhirApi::SearchCompartmentPost},
      {"GET", "/{type}/{id}/_history/{vid}", "vread", "instance", &FhirApi::VRead},
      {"GET", "/{type}/{id}/_history", "history-instance", "instance", &FhirApi::HistoryInstance},
      {"GET", "/{type}/{id}/{rtype}", "search", "compartment", &FhirApi::SearchCompartment},
      {"GET", "/{type}/{id}", "read", "instance", &FhirApi::Read},
      {"PUT", "/{type}/{id}", "update", "instance", &FhirApi::UpdateInstance},
      {"PATCH", "/{type}/{id}", "patch", "instance", &FhirApi::Patch},
      {"DELETE", "/{type}/{id}", "delete", "instance", &FhirApi::DeleteInstance},
  };
  return kRoutes;
}

FhirApi::FhirApi(store::IStore& store, FhirApiOptions options)
    : store_(store),
      options_(std::move(options)),
      search_results_(options_.search_results, &store_),
      exports_(std::make_unique<BulkExports>(
          store_, BulkExportsOptions{.dir = ExportDir(options_.export_dir),
                                     .resources_per_file = options_.export_file_resources,
                                     .retention = options_.export_retention})) {
  search::SetServerBaseUrl(options_.base_url);
}

Response FhirApi::Handle(Request& request) {
  try {
    return Dispatch(request);
  } catch (const std::exception& e) {
    return ErrorResponse(Internal(fmt::format("Internal error: {}", e.what())));
  } catch (...) {
    return ErrorResponse(Internal("Internal error"));
  }
}

Response FhirApi::Dispatch(Request& req) {
  std::string_view path = req.path;
  if (path.substr(0, 5) != "/fhir" || (path.size() > 5 && path[5] != '/'))
    return ErrorResponse(NotFound(fmt::format("No route for '{}'", path)));
  auto segs = Segments(path.substr(5));

  Context c{req, {}, {}, {}, {}, {}, {}, {}, false};
  if (!options_.base_url.empty()) {
    c.base = options_.base_url;
  } else {
    c.base = fmt::format("{}://{}/fhir", req.scheme, req.Header("host").value_or("localhost"));
  }
  auto fmt_opts = ParseFormatOptions(req);
  if (!fmt_opts.ok()) return ErrorResponse(fmt_opts.error());
  c.format = *fmt_opts;
  for (const auto& [k, v] : req.headers) {
    if (k != "prefer") continue;
    for (const auto& [name, value] : ParsePrefer(v)) {
      if (name == "return" &&
          (value == "minimal" || value == "representation" || value == "OperationOutcome"))
        c.prefer_return = value;
      else if (name == "handling" && (value == "strict" || value == "lenient"))
        c.strict_handling = value == "strict";
    }
  }

  std::string method = req.method == "HEAD" ? "GET" : req.method;
  bool path_matched = false;
  std::vector<std::string> allowed;
  for (const auto& route : Routes()) {
    std::string type, id, vid, rtype;
    if (!MatchPattern(route.pattern, segs, type, id, vid, rtype)) continue;
    path_matched = true;
    if (method != route.method) {
      allowed.emplace_back(route.method);
      continue;
    }
    if (!type.empty()) {
      if (!options_.is_resource_type(type))
        return ErrorResponse(NotFound(fmt::format("Unknown resource type '{}'", type)));
      if (!id.empty() && !IsValidId(id))
        return ErrorResponse(Invalid(fmt::format("'{}' is not a valid resource id", id)));
    }
    if (!rtype.empty() && rtype != "*" && !options_.is_resource_type(rtype))
      return ErrorResponse(NotFound(fmt::format("Unknown resource type '{}'", rtype)));
    c.type = std::move(type);
    c.id = std::move(id);
    c.vid = std::move(vid);
    c.rtype = std::move(rtype);
    return (this->*route.fn)(c);
  }
  if (path_matched) {
    Response r =
        ErrorResponse(Error(ErrorCode::kMethodNotAllowed,
                            fmt::format("Method {} is not allowed on '{}'", req.method, path)));
    std::string allow;
    for (const auto& a : allowed) allow += (allow.empty() ? "" : ", ") + a;
    r.SetHeader("Allow", allow);
    return r;
  }
  return ErrorResponse(NotFound(fmt::format("No route for '{}'", path)));
}

Response FhirApi::Metadata(Context& c) {
  return JsonResponse(200, CapabilityStatement(c.base), c.format.pretty);
}

// --- reads ---------------------------------------------------------------------------------

Response FhirApi::Read(Context& c) {
  // One statement, no read transaction (IStore::ReadCurrent).
  auto v = Interactions::Read(store_, c.type, c.id);
  if (!v.ok()) return ErrorResponse(v.error());
  if (auto inm = c.req.Header("if-none-match")) {
    auto ver = ParseETagVersion(*inm);
    if (ver.ok() && *ver == v->version) {
      Response r;
      r.status = 304;
      AddVersionHeaders(r, c.base, *v, false);
      return r;
    }
  }
  Response r;
  r.status = 200;
  r.content_type = kFhirJson;
  AddVersionHeaders(r, c.base, *v, false);
  if (c.format.IsPlain()) {
    r.body = std::move(v->json);  // the stored bytes are the response: no parse, no copy
  } else {
    auto body = FormatResource(v->json, c.format);
    if (!body.ok()) return ErrorResponse(body.error());
    r.body = std::move(*body);
  }
  return r;
}

Response FhirApi::VRead(Context& c) {
  auto ver = ParseETagVersion(c.vid);
  if (!ver.ok()) return ErrorResponse(Invalid(fmt::format("'{}' is not a version id", c.vid)));
  auto txn = store_.BeginRead();
  if (!txn.ok()) return ErrorResponse(txn.error());
  auto v = (*txn)->ReadVersion(c.type, c.id, *ver);
  if (!v.ok()) return ErrorResponse(v.error());
  if (!*v)
    return ErrorResponse(
        NotFound(fmt::format("{}/{}/_history/{} is not known", c.type, c.id, c.vid)));
  if ((*v)->deleted) {
    Response r = ErrorResponse(Error(
        ErrorCode::kGone, fmt::format("{}/{} version {} is a deletion", c.type, c.id, c.vid)));
    AddVersionHeaders(r, c.base, **v, false);
    return r;
  }
  auto body = FormatResource((*v)->json, c.format);
  if (!body.ok()) return ErrorResponse(body.error());
  Response r;
  r.status = 200;
  r.content_type = kFhirJson;
  r.body = std::move(*body);
  AddVersionHeaders(r, c.base, **v, false);
  return r;
}

// --- writes --------------------------------------------------------------------------------

namespace {

struct ParsedBody {
  json::object resource;
  std::vector<Issue> warnings;
};

}  // namespace

static Result<ParsedBody> ParseAndValidate(const Request& req, const std::string& url_type,
                                           const FhirApiOptions& opts) {
  JC_RETURN_IF_ERROR(CheckBodyMediaType(req, false));
  if (req.body.empty()) return Invalid("Request body is empty: a resource is required");
  JC_ASSIGN_OR_RETURN(json::value v, ParseJson(req.body));
  if (!v.is_object()) return Invalid("The body must be a JSON object (a FHIR resource)");
  auto& obj = v.get_object();
  auto rt = FindString(obj, "resourceType");
  if (!rt) return Invalid("The resource has no resourceType", "resourceType");
  if (*rt != url_type)
    return Invalid(fmt::format("resourceType '{}' does not match the URL type '{}'", *rt, url_type),
                   "resourceType");
  ParsedBody out;
  std::vector<Issue> errors;
  for (auto& issue : opts.validate(obj, opts.strict_validation)) {
    if (issue.severity == "error" || issue.severity == "fatal")
      errors.push_back(std::move(issue));
    else
      out.warnings.push_back(std::move(issue));
  }
  if (!errors.empty()) return Unprocessable(std::move(errors));
  out.resource = std::move(obj);
  return out;
}

Response WriteResponse(const std::string& base, const std::string& prefer_return,
                       const FormatOptions& format, const WriteResult& w,
                       const std::vector<Issue>& warnings) {
  Response r;
  r.status = w.status;
  if (w.version.version > 0)
    AddVersionHeaders(r, base, w.version, w.status == 201 || w.status == 200);
  if (prefer_return == "minimal" || w.version.json.empty()) {
    if (r.status == 200 && w.version.json.empty()) r.status = 204;
    return r;
  }
  if (prefer_return == "OperationOutcome") {
    std::vector<Issue> issues = warnings;
    issues.push_back(
        Issue{"information", "informational",
              fmt::format("{} {}/{} version {}",
                          w.status == 201 ? "Created" : (w.changed ? "Updated" : "Unchanged"),
                          w.version.type, w.version.id, w.version.version),
              ""});
    r.content_type = kFhirJson;
    r.body = ToJson(MakeOperationOutcome(issues));
    return r;
  }
  auto body = FormatResource(w.version.json, format);
  r.content_type = kFhirJson;
  r.body = body.ok() ? std::move(*body) : w.version.json;
  return r;
}

Response FhirApi::Create(Context& c) {
  auto parsed = ParseAndValidate(c.req, c.type, options_);
  if (!parsed.ok()) return ErrorResponse(parsed.error());
  std::string if_none_exist(c.req.Header("if-none-exist").value_or(""));
  std::string id = NewResourceId();
  Result<WriteResult> result = Error();
  Status st;
  if (if_none_exist.empty()) {
    PreparedCreate prepared = Interactions::PrepareCreate(parsed->resource, id, NowMicros());
    st = store_.Write([&](store::IWriteTransaction& txn) -> Status {
      result = Interactions::StorePrepared(txn, prepared);
      if (!result.ok()) return result.error();
      return Status::Ok();
    });
  } else {
    st = store_.Write([&](store::IWriteTransaction& txn) -> Status {
      result = Interactions::Create(txn, std::move(parsed->resource), id, if_none_exist);
      if (!result.ok()) return result.error();
      return Status::Ok();
    });
  }
  if (!st.ok()) return ErrorResponse(st.error());
  return WriteResponse(c.base, c.prefer_return, c.format, *result, parsed->warnings);
}

Response FhirApi::UpdateInstance(Context& c) {
  auto parsed = ParseAndValidate(c.req, c.type, options_);
  if (!parsed.ok()) return ErrorResponse(parsed.error());
  auto body_id = FindString(parsed->resource, "id");
  if (!body_id)
    return ErrorResponse(Invalid("The resource must have an id for update", c.type + ".id"));
  if (*body_id != c.id)
    return ErrorResponse(
        Invalid(fmt::format("Resource id '{}' does not match the URL id '{}'", *body_id, c.id),
                c.type + ".id"));
  auto if_match = IfMatch(c.req);
  if (!if_match.ok()) return ErrorResponse(if_match.error());
  Result<WriteResult> result = Error();
  Status st = store_.Write([&](store::IWriteTransaction& txn) -> Status {
    result = Interactions::Update(txn, c.type, c.id, std::move(parsed->resource), *if_match);
    if (!result.ok()) return result.error();
    return Status::Ok();
  });
  if (!st.ok()) return ErrorResponse(st.error());
  return WriteResponse(c.base, c.prefer_return, c.format, *result, parsed->warnings);
}

Response FhirApi::UpdateConditional(Context& c) {
  auto criteria = CriteriaOf(c.req);
  if (criteria.empty())
    return ErrorResponse(Invalid("PUT on a type needs search criteria (conditional update)"));
  auto parsed = ParseAndValidate(c.req, c.type, options_);
  if (!parsed.ok()) return ErrorResponse(parsed.error());
  auto if_match = IfMatch(c.req);
  if (!if_match.ok()) return ErrorResponse(if_match.error());
  if (auto bid = FindString(parsed->resource, "id"); bid && !IsValidId(*bid))
    return ErrorResponse(Invalid(fmt::format("'{}' is not a valid id", *bid), c.type + ".id"));
  std::string new_id = NewResourceId();
  Result<WriteResult> result = Error();
  Status st = store_.Write([&](store::IWriteTransaction& txn) -> Status {
    result = Interactions::ConditionalUpdate(txn, c.type, criteria, std::move(parsed->resource),
                                             new_id, *if_match);
    if (!result.ok()) return result.error();
    return Status::Ok();
  });
  if (!st.ok()) return ErrorResponse(st.error());
  return WriteResponse(c.base, c.prefer_return, c.format, *result, parsed->warnings);
}

Response FhirApi::PatchImpl(Context& c, const std::string& url_id, const QueryParams* criteria) {
  Status mt = CheckBodyMediaType(c.req, true);
  if (!mt.ok()) return ErrorResponse(mt.error());
  auto patch = ParseJson(c.req.body);
  if (!patch.ok()) return ErrorResponse(patch.error());
  if (!patch->is_array())
    return ErrorResponse(Invalid("A JSON Patch document must be an array of operations", "patch"));
  auto if_match = IfMatch(c.req);
  if (!if_match.ok()) return ErrorResponse(if_match.error());
  std::vector<Issue> warnings;
  Result<WriteResult> result = Error();
  Status st = store_.Write([&](store::IWriteTransaction& txn) -> Status {
    std::string id = url_id;
    if (criteria) {
      JC_ASSIGN_OR_RETURN(auto matches, FindMatches(txn, c.type, *criteria));
      if (matches.empty()) return NotFound("Conditional patch criteria match no resource");
      if (matches.size() > 1)
        return Error(ErrorCode::kPreconditionFailed,
                     fmt::format("Conditional patch criteria match {} resources", matches.size()));
      id = matches[0];
    }
    JC_ASSIGN_OR_RETURN(auto cur, Interactions::Read(txn, c.type, id));
    if (*if_match && cur.version != **if_match)
      return Error(ErrorCode::kPreconditionFailed,
                   fmt::format("Version conflict: {}/{} is at version {}, If-Match was {}", c.type,
                               id, cur.version, **if_match));
    JC_ASSIGN_OR_RETURN(json::value doc, ParseJson(cur.json));
    JC_RETURN_IF_ERROR(ApplyJsonPatch(doc, *patch));
    if (!doc.is_object())
      return Error(ErrorCode::kUnprocessable, "The patched document is not a resource");
    auto& obj = doc.get_object();
    if (FindString(obj, "resourceType").value_or("") != c.type)
      return Error(ErrorCode::kUnprocessable, "A patch may not change resourceType",
                   "resourceType");
    if (FindString(obj, "id").value_or("") != id)
      return Error(ErrorCode::kUnprocessable, "A patch may not change the id", c.type + ".id");
    std::vector<Issue> errors;
    for (auto& i : options_.validate(obj, options_.strict_validation)) {
      if (i.severity == "error" || i.severity == "fatal")
        errors.push_back(std::move(i));
      else
        warnings.push_back(std::move(i));
    }
    if (!errors.empty()) return Unprocessable(std::move(errors));
    result = Interactions::Update(txn, c.type, id, std::move(obj), cur.version);
    if (!result.ok()) return result.error();
    return Status::Ok();
  });
  if (!st.ok()) return ErrorResponse(st.error());
  return WriteResponse(c.base, c.prefer_return, c.format, *result, warnings);
}

Response FhirApi::Patch(Context& c) { return PatchImpl(c, c.id, nullptr); }

Response FhirApi::PatchConditional(Context& c) {
  auto criteria = CriteriaOf(c.req);
  if (criteria.empty()) return ErrorResponse(Invalid("PATCH on a type needs search criteria"));
  return PatchImpl(c, {}, &criteria);
}

Response FhirApi::DeleteInstance(Context& c) {
  auto if_match = IfMatch(c.req);
  if (!if_match.ok()) return ErrorResponse(if_match.error());
  Result<WriteResult> result = Error();
  Status st = store_.Write([&](store::IWriteTransaction& txn) -> Status {
    result = Interactions::Delete(txn, c.type, c.id, *if_match);
    if (!result.ok()) return result.error();
    return Status::Ok();
  });
  if (!st.ok()) return ErrorResponse(st.error());
  Response r;
  r.status = 204;
  if (result->changed) r.SetHeader("ETag", ETag(result->version.version));
  if (c.prefer_return == "OperationOutcome") {
    r.status = 200;
    r.content_type = kFhirJson;
    r.body = ToJson(MakeOperationOutcome(
        {Issue{"information", "informational",
               result->changed ? fmt::format("Deleted {}/{}", c.type, c.id)
                               : fmt::format("{}/{} was already deleted", c.type, c.id),
               ""}}));
  }
  return r;
}

Response FhirApi::DeleteConditional(Context& c) {
  auto criteria = CriteriaOf(c.req);
  if (criteria.empty())
    return ErrorResponse(Invalid("DELETE on a type needs search criteria (conditional delete)"));
  Result<WriteResult> result = Error();
  Status st = store_.Write([&](store::IWriteTransaction& txn) -> Status {
    result = Interactions::ConditionalDelete(txn, c.type, criteria);
    if (!result.ok()) return result.error();
    return Status::Ok();
  });
  if (!st.ok()) return ErrorResponse(st.error());
  Response r;
  r.status = 204;
  return r;
}

// --- history and search ---------------------------------------------------------------------

Response FhirApi::HistoryInstance(Context& c) { return History(c, c.type, c.id); }
Response FhirApi::HistoryType(Context& c) { return History(c, c.type, {}); }
Response FhirApi::HistorySystem(Context& c) { return History(c, {}, {}); }

namespace {

Result<int64_t> IntParam(const Request& req, std::string_view name, int64_t dflt, int64_t min,
                         int64_t max) {
  auto v = QueryValue(req, name);
  if (!v) return dflt;
  if (v->empty() || v->size() > 18)
    return Invalid(fmt::format("Parameter {} must be an integer", name), std::string(name));
  int64_t n = 0;
  for (char ch : *v) {
    if (ch < '0' || ch > '9')
      return Invalid(fmt::format("Parameter {} must be a non-negative integer", name),
                     std::string(name));
    n = n * 10 + (ch - '0');
  }
  return std::clamp(n, min, max);
}

// The applied criteria of a search as one text (which search a kept result belongs to).
std::string CriteriaText(const QueryParams& applied) {
  std::string out;
  for (const auto& [k, v] : applied) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

// The `_cursor` of one resource's position in a search's order (`q`'s sort keys), read again at
// the snapshot, for a link past (or, `backward`, before) it: a page served from kept ids carries
// it beside `_getpages`, so that a process without those ids (another SQLite process, or this
// one after a restart or an eviction) continues from the entry rather than at an offset. Empty
// when the resource has changed or gone since the snapshot (the link then pages by offset
// there).
Result<std::string> CursorAt(store::IReadTransaction& txn, const store::SearchQuery& q,
                             const std::string& id, int64_t snapshot, bool backward) {
  store::SearchQuery probe;
  probe.type = q.type;
  probe.sort = q.sort;
  probe.at_or_before_us = snapshot;
  probe.count = 1;
  probe.with_total = false;
  probe.want_last = true;
  probe.timeout_ms = q.timeout_ms;
  store::SearchClause by_id;
  by_id.param = "_id";
  by_id.kind = store::SearchKind::kId;
  by_id.any_of.emplace_back().code = id;
  probe.all_of.push_back(std::move(by_id));
  JC_ASSIGN_OR_RETURN(store::SearchPage found, txn.Search(probe));
  return found.last ? search::EncodeSearchCursor(*found.last, backward) : std::string();
}

// A resource as it was at `at_us`: its current version when written by then, else the newest
// version written by then; nullopt when it did not exist or was deleted at that instant.
Result<std::optional<store::ResourceVersion>> ReadAsOf(store::IReadTransaction& txn,
                                                       const std::string& type,
                                                       const std::string& id, int64_t at_us) {
  JC_ASSIGN_OR_RETURN(std::optional<store::ResourceVersion> v, txn.ReadCurrent(type, id));
  if (v && v->last_updated_us > at_us) {
    store::HistoryQuery h;
    h.type = type;
    h.id = id;
    h.at_or_before_us = at_us;
    h.count = 1;
    JC_ASSIGN_OR_RETURN(store::HistoryPage older, txn.History(h));
    v.reset();
    if (!older.entries.empty()) v = std::move(older.entries.front());
  }
  if (v && v->deleted) v.reset();
  return v;
}

// One part of a search across several types in order (the types of a compartment, and for
// $everything the focus resource first): a store search of `size` matches, or one resource.
struct SearchPart {
  int64_t size = 0;
  store::SearchQuery query;
  std::optional<store::ResourceVersion> resource;  // set: the part is this resource alone
};

struct PartsPage {
  std::vector<store::ResourceVersion> entries;
  int64_t total = 0;
  std::string results_key;  // the kept matches' key (_getpages) for the links; "" when none
};

// A page [offset, offset + count) of a search across parts, stable while the data changes, as a
// type's search is (api/search_results.h): a first page with more to come keeps every match as
// "Type/id", and a later page that carries the key serves its slice as each resource was at the
// snapshot, deleted or updated since or not. Without an entry (more than max_ids matches, or
// expired, or kept by another process on SQLite) the page is found by its offset in the parts
// under the snapshot, which a match before it that changed since shifts (docs/api.md).
// `criteria`: which search this is (path and applied parameters); `parts`: the parts, counted.
Result<PartsPage> PageAcrossParts(store::IReadTransaction& txn, SearchResultCache& kept,
                                  const std::string& criteria, int64_t snapshot,
                                  const std::string& results_key, int64_t offset, int64_t count,
                                  bool summary_only,
                                  const std::function<Result<std::vector<SearchPart>>()>& parts) {
  PartsPage out;
  if (!results_key.empty()) {
    std::shared_ptr<const SearchResults> entry = kept.Get(results_key);
    if (entry && entry->criteria == criteria && entry->snapshot_us == snapshot) {
      const auto n = static_cast<int64_t>(entry->ids.size());
      for (int64_t i = offset; i < n && i < offset + count; ++i) {
        const std::string& ref = entry->ids[static_cast<size_t>(i)];
        const size_t slash = ref.find('/');
        if (slash == std::string::npos) return Internal("kept match without a type: " + ref);
        JC_ASSIGN_OR_RETURN(std::optional<store::ResourceVersion> v,
                            ReadAsOf(txn, ref.substr(0, slash), ref.substr(slash + 1), snapshot));
        if (v) out.entries.push_back(std::move(*v));
      }
      out.total = n;
      out.results_key = results_key;
      return out;
    }
  }
  JC_ASSIGN_OR_RETURN(std::vector<SearchPart> all, parts());
  std::vector<int64_t> sizes;
  for (const SearchPart& p : all) {
    sizes.push_back(p.size);
    out.total += p.size;
  }
  for (const PartSlice& s : SliceParts(sizes, offset, count)) {
    const SearchPart& part = all[s.part];
    if (part.resource) {
      out.entries.push_back(*part.resource);
      continue;
    }
    store::SearchQuery q = part.query;
    q.offset = s.offset;
    q.count = s.count;
    q.with_total = false;
    JC_ASSIGN_OR_RETURN(store::SearchPage found, txn.Search(q));
    for (auto& v : found.entries) out.entries.push_back(std::move(v));
  }
  const bool more = out.total > static_cast<int64_t>(out.entries.size());
  if (offset != 0 || count <= 0 || summary_only || !more || out.total > kept.options().max_ids)
    return out;
  SearchResults results{criteria, snapshot, {}};
  results.ids.reserve(static_cast<size_t>(out.total));
  for (const SearchPart& part : all) {
    if (part.resource) {
      if (part.size > 0) results.ids.push_back(part.resource->type + "/" + part.resource->id);
      continue;
    }
    if (part.size == 0) continue;
    store::SearchQuery q = part.query;
    q.offset = 0;
    q.count = part.size;
    q.with_total = false;
    q.ids_only = true;
    q.after.reset();
    q.want_last = false;
    JC_ASSIGN_OR_RETURN(store::SearchPage listed, txn.Search(q));
    if (static_cast<int64_t>(listed.entries.size()) != part.size) return out;  // not as counted
    for (const store::ResourceVersion& e : listed.entries)
      results.ids.push_back(q.type + "/" + e.id);
  }
  out.results_key = kept.Put(std::move(results));
  return out;
}

}  // namespace

Response FhirApi::History(Context& c, const std::string& type, const std::string& id) {
  auto count = IntParam(c.req, "_count", options_.default_page_size, 0, options_.max_page_size);
  if (!count.ok()) return ErrorResponse(count.error());
  auto offset = IntParam(c.req, "_getpagesoffset", 0, 0, INT64_MAX / 2);
  if (!offset.ok()) return ErrorResponse(offset.error());
  store::HistoryQuery q;
  q.type = type;
  q.id = id;
  q.count = *count;
  q.offset = *offset;
  QueryParams link_params;
  if (auto since = QueryValue(c.req, "_since")) {
    auto t = ParseDateTimeStart(*since);
    if (!t.ok()) return ErrorResponse(Invalid(fmt::format("Bad _since '{}'", *since), "_since"));
    q.since_us = *t;
    link_params.emplace_back("_since", *since);
  }
  // A snapshot bound keeps later pages stable while new versions arrive.
  if (auto snap = QueryValue(c.req, "_snapshot")) {
    auto t = IntParam(c.req, "_snapshot", 0, 0, INT64_MAX);
    if (!t.ok()) return ErrorResponse(t.error());
    q.at_or_before_us = *t;
  } else {
    q.at_or_before_us = NowMicros();
  }
  auto txn = store_.BeginRead();
  if (!txn.ok()) return ErrorResponse(txn.error());
  if (!id.empty()) {
    auto cur = (*txn)->ReadCurrent(type, id);
    if (!cur.ok()) return ErrorResponse(cur.error());
    if (!*cur) return ErrorResponse(NotFound(fmt::format("{}/{} is not known", type, id)));
  }
  auto page = (*txn)->History(q);
  if (!page.ok()) return ErrorResponse(page.error());

  std::string path = "/";
  if (!type.empty()) path += type + "/";
  if (!id.empty()) path += id + "/";
  path += "_history";
  link_params.emplace_back("_count", std::to_string(q.count));
  link_params.emplace_back("_snapshot", std::to_string(*q.at_or_before_us));

  std::string out;
  out.reserve(1024 + page->entries.size() * 1024);
  out += R"({"resourceType":"Bundle","id":")" + NewUuid() + R"(","meta":{"lastUpdated":")" +
         FormatInstant(NowMicros()) + R"("},"type":"history","total":)" +
         std::to_string(page->total);
  out += R"(,"link":[)";
  auto add_link = [&](const char* rel, int64_t off, bool first) {
    QueryParams p = link_params;
    p.emplace_back("_getpagesoffset", std::to_string(off));
    if (!first) out += ',';
    out += R"({"relation":")";
    out += rel;
    out += R"(","url":)";
    out += json::serialize(json::string(BuildLink(c.base, path, p)));
    out += '}';
  };
  add_link("self", q.offset, true);
  if (q.offset + q.count < page->total) add_link("next", q.offset + q.count, false);
  if (q.offset > 0) add_link("previous", std::max<int64_t>(0, q.offset - q.count), false);
  add_link("first", 0, false);
  out += "]";
  if (!page->entries.empty()) {
    out += R"(,"entry":[)";
    bool first = true;
    for (const auto& v : page->entries) {
      if (!first) out += ',';
      first = false;
      out += R"({"fullUrl":)";
      out += json::serialize(json::string(fmt::format("{}/{}/{}", c.base, v.type, v.id)));
      if (!v.deleted) {
        out += R"(,"resource":)";
        out += v.json;
      }
      const char* method = v.deleted ? "DELETE" : (v.version == 1 ? "POST" : "PUT");
      std::string url = v.version == 1 && !v.deleted ? v.type : v.type + "/" + v.id;
      int status = v.deleted ? 204 : (v.version == 1 ? 201 : 200);
      out += fmt::format(
          R"(,"request":{{"method":"{}","url":{}}},"response":{{"status":"{}","etag":"W/\"{}\"","lastModified":"{}"}}}})",
          method, json::serialize(json::string(url)), StatusLine(status), v.version,
          FormatInstant(v.last_updated_us));
    }
    out += "]";
  }
  out += "}";
  return BundleTextResponse(std::move(out), c.format.pretty);
}

namespace {

// Types on which $everything is defined (R4: Patient-everything, Encounter-everything).
bool HasEverything(std::string_view type) { return type == "Patient" || type == "Encounter"; }

// The resource a compartment or operation is about: 404 when unknown, 410 when deleted.
Result<store::ResourceVersion> ReadFocus(store::IReadTransaction& txn, const std::string& type,
                                         const std::string& id) {
  JC_ASSIGN_OR_RETURN(auto cur, txn.ReadCurrent(type, id));
  if (!cur) return NotFound(fmt::format("{}/{} is not known", type, id));
  if (cur->deleted) return Error(ErrorCode::kGone, fmt::format("{}/{} is deleted", type, id));
  return std::move(*cur);
}

// _type: a comma-separated list of resource types.
Result<std::vector<std::string>> ParseTypeList(const std::string& value) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    size_t comma = value.find(',', pos);
    std::string t = value.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!fhir::Definitions::Get().IsResourceType(t))
      return Invalid(fmt::format("_type: '{}' is not a resource type", t), "_type");
    out.push_back(std::move(t));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

Error NotSupportedError(std::string msg, std::string expression) {
  Error e(ErrorCode::kInvalid, msg);
  e.issues.push_back(Issue{"error", "not-supported", std::move(msg), std::move(expression)});
  return e;
}

// The page size the links carry. _summary=count asks for no entries (count 0 in the query),
// but its links keep the page size the caller asked for.
int64_t LinkPageSize(const search::ParsedSearch& parsed, const QueryParams& params,
                     int64_t default_size, int64_t max_size) {
  if (!parsed.summary_count) return parsed.query.count;
  int64_t count = default_size;
  for (const auto& [k, v] : params) {
    if (k != "_count") continue;
    if (v.empty() || v.size() > 18 ||
        !std::all_of(v.begin(), v.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
      continue;
    count = std::min<int64_t>(std::stoll(v), max_size);
  }
  return count;
}

}  // namespace

Response FhirApi::SearchType(Context& c) { return Search(c, c.req.query); }

namespace {

// POST _search: the form body's parameters join the URL's; result-shaping ones (_format,
// _summary, _elements, _pretty) count wherever they come from.
Result<QueryParams> SearchPostParams(const Request& req, FormatOptions& format) {
  auto ct = req.Header("content-type");
  if (!ct || !IEquals(MediaType(*ct), "application/x-www-form-urlencoded"))
    return Error(ErrorCode::kUnsupportedMedia,
                 "POST _search needs Content-Type application/x-www-form-urlencoded");
  JC_ASSIGN_OR_RETURN(QueryParams form, ParseQueryString(req.body));
  QueryParams all = req.query;
  all.insert(all.end(), form.begin(), form.end());
  Request shaped;
  shaped.query = all;
  shaped.headers = req.headers;
  JC_ASSIGN_OR_RETURN(format, ParseFormatOptions(shaped));
  return all;
}

}  // namespace

Response FhirApi::SearchTypePost(Context& c) {
  auto all = SearchPostParams(c.req, c.format);
  if (!all.ok()) return ErrorResponse(all.error());
  return Search(c, *all);
}

Response FhirApi::SearchCompartment(Context& c) { return Search(c, c.req.query); }

Response FhirApi::SearchCompartmentPost(Context& c) {
  auto all = SearchPostParams(c.req, c.format);
  if (!all.ok()) return ErrorResponse(all.error());
  return Search(c, *all);
}

// Type-level search (GET /Type?…) and search within a compartment (GET /Patient/1/Observation?…,
// c.rtype set), with _include/_revinclude.
Response FhirApi::Search(Context& c, const QueryParams& params) {
  const bool in_compartment = !c.rtype.empty();
  if (in_compartment) {
    if (!IsCompartmentType(c.type))
      return ErrorResponse(
          NotFound(fmt::format("{} is not a compartment: compartment searches are defined for {}",
                               c.type, fmt::join(CompartmentTypes(), ", "))));
    if (c.rtype == "*") return SearchCompartmentAll(c, params);
    if (CompartmentParams(c.type, c.rtype).empty())
      return ErrorResponse(
          Invalid(fmt::format("{} resources are never in a {} compartment", c.rtype, c.type)));
  }
  const std::string type = in_compartment ? c.rtype : c.type;
  const std::string path =
      in_compartment ? fmt::format("/{}/{}/{}", c.type, c.id, c.rtype) : "/" + c.type;
  auto shaping = SplitShaping(params, c.strict_handling);
  if (!shaping.ok()) return ErrorResponse(shaping.error());
  search::ParseOptions po;
  po.value_sets = StoredValueSets(store_);
  po.strict = c.strict_handling;
  po.default_count = options_.default_page_size;
  po.max_count = options_.max_page_size;
  po.total_limit = options_.search_total_limit;
  auto parsed = search::ParseSearch(type, shaping->criteria, po);
  if (!parsed.ok()) return ErrorResponse(parsed.error());
  std::vector<Issue> warnings = std::move(shaping->warnings);
  QueryParams kept = parsed->applied;
  NormalizeSort(kept, parsed->query.sort, warnings);
  kept.insert(kept.end(), shaping->applied.begin(), shaping->applied.end());
  store::SearchQuery q = parsed->query;
  q.timeout_ms = options_.search_timeout_ms;
  const int64_t count =
      LinkPageSize(*parsed, params, options_.default_page_size, options_.max_page_size);
  // The snapshot keeps every page of this search on the same set while data changes. A count
  // alone (_summary=count without a _snapshot) pages nothing: it counts what is there now,
  // without the bound, which would make it read every match's row for its lastUpdated (all
  // 1,000,000 Patients of a county: 2 s with the file cached, 90 s without).
  const int64_t snapshot = *q.at_or_before_us;
  const bool snapshot_given = std::any_of(params.begin(), params.end(),
                                          [](const auto& kv) { return kv.first == "_snapshot"; });
  if (parsed->summary_count && !snapshot_given) q.at_or_before_us.reset();

  auto txn = store_.BeginRead();
  if (!txn.ok()) return ErrorResponse(txn.error());
  std::optional<int64_t> known_total;
  bool run = true;
  if (in_compartment) {
    auto focus = ReadFocus(**txn, c.type, c.id);
    if (!focus.ok()) return ErrorResponse(focus.error());
    auto restricted = RestrictToCompartment(**txn, q, c.type, c.id, false, true);
    if (!restricted.ok()) return ErrorResponse(restricted.error());
    q = std::move((*restricted)->query);
    if ((*restricted)->total) {
      // Already counted: the store need not count again.
      known_total = (*restricted)->total;
      q.with_total = false;
      run = q.count > 0 && q.offset < *known_total;
    }
  }
  // A later page of a search whose results were kept (api/search_results.h): its slice of the
  // ids, each resource as it was at the snapshot. The entry must be this search's own.
  std::vector<store::ResourceVersion> page;
  std::string results_key;
  std::optional<bool> more;  // whether a later page follows, when the kept ids tell
  auto fingerprint = [&] { return path + "?" + CriteriaText(kept); };  // which search this is
  int64_t position = parsed->position;
  std::string next_cursor;  // where the next page starts, when the search is run again for it
  std::string prev_cursor;  // where the previous page ends, likewise
  if (run && !parsed->results_key.empty()) {
    std::shared_ptr<const SearchResults> kept_results = search_results_.Get(parsed->results_key);
    if (kept_results && kept_results->criteria == fingerprint() &&
        kept_results->snapshot_us == snapshot) {
      const auto& ids = kept_results->ids;
      const auto n = static_cast<int64_t>(ids.size());
      for (int64_t i = position; i < n && i < position + q.count; ++i) {
        auto v = ReadAsOf(**txn, type, ids[static_cast<size_t>(i)], snapshot);
        if (!v.ok()) return ErrorResponse(v.error());
        if (*v) page.push_back(std::move(**v));
      }
      if (kept_results->total_known) known_total = n;
      more = position + q.count < n;
      results_key = parsed->results_key;
      run = false;
      // Where the ids are shared with every process (PostgreSQL), the links of a page served
      // from them need no cursor: the ids were found, so every process finds them.
      if (*more && q.count > 0 && !search_results_.shared()) {
        const std::string& last = ids[static_cast<size_t>(position + q.count - 1)];
        auto cursor = CursorAt(**txn, q, last, snapshot, false);
        if (!cursor.ok()) return ErrorResponse(cursor.error());
        next_cursor = std::move(*cursor);
      }
      if (position > 0 && position < n && !search_results_.shared()) {
        auto cursor = CursorAt(**txn, q, ids[static_cast<size_t>(position)], snapshot, true);
        if (!cursor.ok()) return ErrorResponse(cursor.error());
        prev_cursor = std::move(*cursor);
      }
    }
  }
  if (run) {
    // A first page with more to come keeps the ids of every match for the later pages: from the
    // search itself when it collected them anyway, else listed by a second search.
    const int64_t max_ids = search_results_.options().max_ids;
    const bool first_page = position == 0 && !q.after && q.count > 0 && !parsed->summary_count;
    store::SearchQuery first = q;
    if (first_page) first.list_ids_up_to = max_ids;
    // Without kept ids, the next page starts after this one's last entry (keyset paging):
    // matches before it that change or drop out since do not shift it. A first page whose ids
    // are kept carries it too, also where they are shared (PostgreSQL): they are published off
    // the request's path, and a link followed on another process before they land pages from
    // the cursor rather than at an offset.
    first.want_last = !parsed->summary_count;
    auto found = (*txn)->Search(first);
    if (!found.ok()) return ErrorResponse(found.error());
    if (q.after && q.backward && static_cast<int64_t>(found->entries.size()) < q.count) {
      // A previous page that comes back short has reached the start of the matches (some
      // before it dropped out since its link was made): the page before is the first page.
      q.after.reset();
      q.backward = false;
      position = 0;
      first = q;
      first.want_last = true;
      found = (*txn)->Search(first);
      if (!found.ok()) return ErrorResponse(found.error());
    }
    page = std::move(found->entries);
    if (found->first) prev_cursor = search::EncodeSearchCursor(*found->first, true);
    if (found->total) known_total = found->total;
    if (found->last && !(q.after && q.after->end)) {  // nothing follows the last page
      next_cursor = search::EncodeSearchCursor(*found->last);
    }
    // Every match's id, even past search_total_limit (the total then stays unreported).
    if (first_page && found->all_ids &&
        (!known_total || static_cast<int64_t>(found->all_ids->size()) == *known_total) &&
        found->all_ids->size() > page.size()) {
      results_key = search_results_.Put(SearchResults{
          fingerprint(), snapshot, std::move(*found->all_ids), known_total.has_value()});
    } else if (first_page && known_total && *known_total > static_cast<int64_t>(page.size()) &&
               *known_total <= max_ids) {
      store::SearchQuery all = q;
      all.count = *known_total;
      all.with_total = false;
      all.ids_only = true;
      auto listed = (*txn)->Search(all);
      if (!listed.ok()) return ErrorResponse(listed.error());
      if (static_cast<int64_t>(listed->entries.size()) == *known_total) {
        SearchResults results{fingerprint(), snapshot, {}};
        results.ids.reserve(listed->entries.size());
        for (auto& e : listed->entries) results.ids.push_back(std::move(e.id));
        results_key = search_results_.Put(std::move(results));
      }
    }
  }

  std::vector<store::ResourceVersion> included;
  if (!parsed->summary_count && !shaping->includes.empty() && !page.empty()) {
    IncludeOptions io;
    io.base = c.base;
    io.at_or_before_us = q.at_or_before_us;
    io.max_resources = options_.max_include_count;
    io.max_rounds = options_.max_include_iterations;
    auto inc = ResolveIncludes(**txn, shaping->includes, page, io);
    if (!inc.ok()) return ErrorResponse(inc.error());
    included = std::move(inc->resources);
    if (inc->truncated)
      warnings.push_back(
          Issue{"warning", "incomplete",
                fmt::format("_include/_revinclude added at most {} resources to this page",
                            options_.max_include_count),
                ""});
    if (inc->rounds_exhausted)
      warnings.push_back(Issue{
          "warning", "incomplete",
          fmt::format(":iterate stopped after {} rounds", options_.max_include_iterations), ""});
  }

  if (!results_key.empty()) kept.emplace_back("_getpages", results_key);
  kept.emplace_back("_snapshot", std::to_string(snapshot));
  PagingLinks links;
  links.base = c.base;
  links.path = path;
  links.params = std::move(kept);
  links.offset = position;
  links.count = count;
  links.total = known_total;
  links.has_more = more.value_or(static_cast<int64_t>(page.size()) == count && count > 0) &&
                   !(q.after && q.after->end);
  if (!parsed->summary_count) {
    store::SearchAfter end;
    end.end = true;
    links.last_cursor = search::EncodeSearchCursor(end, true);
  }
  // With kept ids the links carry the cursor too: where the ids are not at hand, the page is
  // found from it (see CursorAt).
  if (q.after) links.self_cursor = search::EncodeSearchCursor(*q.after, q.backward);
  links.next_cursor = std::move(next_cursor);
  links.prev_cursor = std::move(prev_cursor);
  links.by_kept_ids = !results_key.empty();
  return BundleTextResponse(
      WriteSearchsetPage(std::move(links), parsed->summary_count, parsed->query.with_total,
                         c.format, page, included, warnings),
      c.format.pretty);
}

// GET /Patient/1/*: every type of the compartment, type by type (in alphabetical order; _sort
// orders within a type). Criteria must apply to every type searched (narrow with _type).
Response FhirApi::SearchCompartmentAll(Context& c, const QueryParams& params) {
  auto shaping = SplitShaping(params, c.strict_handling);
  if (!shaping.ok()) return ErrorResponse(shaping.error());
  std::vector<Issue> warnings = std::move(shaping->warnings);
  QueryParams kept;
  QueryParams criteria;
  std::vector<std::string> types = CompartmentResourceTypes(c.type);
  for (const auto& [k, v] : shaping->criteria) {
    if (k == "_cursor") {
      // Its pages go type by type at an offset: it makes no cursors, and takes none.
      std::string msg = "_cursor is not supported by a search of every type of a compartment";
      if (c.strict_handling) return ErrorResponse(NotSupportedError(msg, k));
      warnings.push_back(Issue{"warning", "not-supported", msg + " (ignored)", k});
      continue;
    }
    if (k != "_type") {
      criteria.emplace_back(k, v);
      continue;
    }
    auto wanted = ParseTypeList(v);
    if (!wanted.ok()) return ErrorResponse(wanted.error());
    std::erase_if(types, [&](const std::string& t) { return !Contains(*wanted, t); });
    kept.emplace_back(k, v);
  }
  search::ParseOptions po;
  po.value_sets = StoredValueSets(store_);
  po.strict = false;  // unsupported criteria are found below, across all the types
  po.default_count = options_.default_page_size;
  po.max_count = options_.max_page_size;
  // A criterion takes effect only when every type understands it.
  std::vector<search::ParsedSearch> parsed;
  for (int pass = 0; pass < 2; ++pass) {
    parsed.clear();
    std::map<std::pair<std::string, std::string>, size_t> understood;
    for (const std::string& t : types) {
      auto p = search::ParseSearch(t, criteria, po);
      if (!p.ok()) return ErrorResponse(p.error());
      for (const auto& a : p->applied) ++understood[a];
      parsed.push_back(std::move(*p));
    }
    QueryParams common;
    bool dropped = false;
    for (const auto& kv : criteria) {
      if (IsPagingParam(kv.first) || (understood.count(kv) && understood[kv] >= types.size())) {
        common.push_back(kv);
        continue;
      }
      std::string msg = fmt::format(
          "Search parameter '{}' is not supported by every resource type of the {} compartment; "
          "search one type ({}/{}/Type?{}=…) or narrow with _type",
          kv.first, c.type, c.type, c.id, kv.first);
      if (c.strict_handling) return ErrorResponse(NotSupportedError(msg, kv.first));
      warnings.push_back(Issue{"warning", "not-supported", msg + " (ignored)", kv.first});
      dropped = true;
    }
    if (!dropped) break;
    criteria = std::move(common);
  }
  if (!parsed.empty()) {
    QueryParams applied = parsed.front().applied;
    kept.insert(kept.begin(), applied.begin(), applied.end());
  }
  kept.insert(kept.end(), shaping->applied.begin(), shaping->applied.end());

  // Paging values are the same for every type; without any type, parse them on their own.
  search::ParsedSearch paging;
  if (parsed.empty()) {
    QueryParams only;
    for (const auto& kv : criteria)
      if (IsPagingParam(kv.first) || kv.first == "_total" || kv.first == "_summary")
        only.push_back(kv);
    auto p = search::ParseSearch(c.type, only, po);
    if (!p.ok()) return ErrorResponse(p.error());
    paging = std::move(*p);
  } else {
    paging = parsed.front();
  }
  const int64_t offset = paging.query.offset;
  const int64_t count =
      LinkPageSize(paging, params, options_.default_page_size, options_.max_page_size);
  const int64_t page_count = paging.query.count;
  const int64_t snapshot = *paging.query.at_or_before_us;

  auto txn = store_.BeginRead();
  if (!txn.ok()) return ErrorResponse(txn.error());
  auto focus = ReadFocus(**txn, c.type, c.id);
  if (!focus.ok()) return ErrorResponse(focus.error());
  const std::string path = fmt::format("/{}/{}/*", c.type, c.id);
  auto parts = [&]() -> Result<std::vector<SearchPart>> {
    std::vector<SearchPart> out;
    for (auto& p : parsed) {
      p.query.at_or_before_us = snapshot;
      JC_ASSIGN_OR_RETURN(std::optional<CompartmentQuery> r,
                          RestrictToCompartment(**txn, p.query, c.type, c.id, true, true));
      if (r) out.push_back(SearchPart{r->total.value_or(0), std::move(r->query), std::nullopt});
    }
    return out;
  };
  auto paged = PageAcrossParts(**txn, search_results_, path + "?" + CriteriaText(kept), snapshot,
                               paging.results_key, offset, page_count, paging.summary_count, parts);
  if (!paged.ok()) return ErrorResponse(paged.error());
  std::vector<store::ResourceVersion> page = std::move(paged->entries);
  std::vector<store::ResourceVersion> included;
  if (!paging.summary_count && !shaping->includes.empty() && !page.empty()) {
    IncludeOptions io;
    io.base = c.base;
    io.at_or_before_us = snapshot;
    io.max_resources = options_.max_include_count;
    io.max_rounds = options_.max_include_iterations;
    auto inc = ResolveIncludes(**txn, shaping->includes, page, io);
    if (!inc.ok()) return ErrorResponse(inc.error());
    included = std::move(inc->resources);
    if (inc->truncated || inc->rounds_exhausted)
      warnings.push_back(
          Issue{"warning", "incomplete", "_include/_revinclude results were cut short", ""});
  }
  if (!paged->results_key.empty()) kept.emplace_back("_getpages", paged->results_key);
  kept.emplace_back("_snapshot", std::to_string(snapshot));
  PagingLinks links;
  links.base = c.base;
  links.path = path;
  links.params = std::move(kept);
  links.offset = offset;
  links.count = count;
  links.total = paged->total;
  links.by_kept_ids = !paged->results_key.empty();
  return BundleTextResponse(
      WriteSearchsetPage(std::move(links), paging.summary_count, paging.query.with_total, c.format,
                         page, included, warnings),
      c.format.pretty);
}

// GET /Patient/1/$everything (and Encounter): the resource, then its compartment type by type
// (alphabetical, by id within a type), with `_since`, `_type`, `_count` and stable paging.
// Resources the page references that are not compartment members themselves (Practitioner,
// Organization, Medication, Location, …) follow as search.mode = include.
Response FhirApi::Everything(Context& c) {
  if (!HasEverything(c.type) || !IsCompartmentType(c.type))
    return ErrorResponse(NotFound(fmt::format(
        "$everything is defined on Patient and Encounter instances, not on {}", c.type)));
  std::optional<int64_t> since;
  std::optional<std::vector<std::string>> type_filter;
  QueryParams kept, paging_params;
  std::vector<Issue> warnings;
  for (const auto& [k, v] : c.req.query) {
    if (k == "_since") {
      auto t = ParseDateTimeStart(v);
      if (!t.ok())
        return ErrorResponse(
            Invalid(fmt::format("Bad _since '{}': an instant is expected", v), "_since"));
      since = *t;
      kept.emplace_back(k, v);
    } else if (k == "_type") {
      auto types = ParseTypeList(v);
      if (!types.ok()) return ErrorResponse(types.error());
      type_filter = std::move(*types);
      kept.emplace_back(k, v);
    } else if (IsPagingParam(k) || k == "_summary") {
      paging_params.emplace_back(k, v);
      if (k == "_summary") kept.emplace_back(k, v);
    } else if (k == "_format" || k == "_pretty" || k == "_elements") {
      kept.emplace_back(k, v);
    } else {
      std::string msg = fmt::format("Parameter '{}' is not supported by $everything here", k);
      if (c.strict_handling) return ErrorResponse(NotSupportedError(msg, k));
      warnings.push_back(Issue{"warning", "not-supported", msg + " (ignored)", k});
    }
  }
  search::ParseOptions po;
  po.value_sets = StoredValueSets(store_);
  po.default_count = options_.default_page_size;
  po.max_count = options_.max_page_size;
  auto paging = search::ParseSearch(c.type, paging_params, po);
  if (!paging.ok()) return ErrorResponse(paging.error());
  const int64_t offset = paging->query.offset;
  const int64_t count =
      LinkPageSize(*paging, paging_params, options_.default_page_size, options_.max_page_size);
  const int64_t page_count = paging->query.count;
  const int64_t snapshot = *paging->query.at_or_before_us;
  auto wanted = [&](std::string_view t) { return !type_filter || Contains(*type_filter, t); };

  auto txn = store_.BeginRead();
  if (!txn.ok()) return ErrorResponse(txn.error());
  auto focus = ReadFocus(**txn, c.type, c.id);
  if (!focus.ok()) return ErrorResponse(focus.error());
  auto parts = [&]() -> Result<std::vector<SearchPart>> {
    // The focus as it was at the snapshot (a later page of a search whose focus changed since).
    JC_ASSIGN_OR_RETURN(std::optional<store::ResourceVersion> at,
                        ReadAsOf(**txn, c.type, c.id, snapshot));
    const bool focus_in = wanted(c.type) && at && (!since || at->last_updated_us >= *since);
    std::vector<SearchPart> out;
    // The part is the focus even when it is not in the page (size 0).
    out.push_back(SearchPart{focus_in ? 1 : 0, {}, at ? std::move(at) : std::optional(*focus)});
    for (const std::string& t : CompartmentResourceTypes(c.type)) {
      if (!wanted(t)) continue;
      store::SearchQuery q;
      q.type = t;
      q.at_or_before_us = snapshot;
      if (since) {
        // _lastUpdated >= since: "ge" over the one-microsecond range starting at since.
        store::SearchClause sc;
        sc.param = "_lastUpdated";
        sc.kind = store::SearchKind::kLastUpdated;
        store::SearchValue v;
        v.prefix = store::SearchPrefix::kGe;
        v.lo_us = *since;
        v.hi_us = *since + 1;
        sc.any_of.push_back(v);
        q.all_of.push_back(std::move(sc));
      }
      // The focus itself ("{def}") is the first entry already.
      JC_ASSIGN_OR_RETURN(std::optional<CompartmentQuery> r,
                          RestrictToCompartment(**txn, q, c.type, c.id, true, false));
      if (!r || r->total.value_or(0) == 0) continue;
      out.push_back(SearchPart{*r->total, std::move(r->query), std::nullopt});
    }
    return out;
  };
  const std::string path = fmt::format("/{}/{}/$everything", c.type, c.id);
  auto paged =
      PageAcrossParts(**txn, search_results_, path + "?" + CriteriaText(kept), snapshot,
                      paging->results_key, offset, page_count, paging->summary_count, parts);
  if (!paged.ok()) return ErrorResponse(paged.error());
  std::vector<store::ResourceVersion> page = std::move(paged->entries);
  std::vector<store::ResourceVersion> included;
  if (!page.empty()) {
    IncludeOptions io;
    io.base = c.base;
    io.at_or_before_us = snapshot;
    io.max_resources = options_.max_include_count;
    io.max_rounds = 0;
    const std::string compartment = c.type;
    io.accept = [&](std::string_view t) {
      return wanted(t) && CompartmentParams(compartment, t).empty();
    };
    IncludeSpec all_refs;
    all_refs.source_type = "*";
    all_refs.param = "*";
    auto inc = ResolveIncludes(**txn, {all_refs}, page, io);
    if (!inc.ok()) return ErrorResponse(inc.error());
    included = std::move(inc->resources);
    if (inc->truncated)
      warnings.push_back(Issue{"warning", "incomplete",
                               fmt::format("At most {} referenced resources are added to a page",
                                           options_.max_include_count),
                               ""});
  }
  if (!paged->results_key.empty()) kept.emplace_back("_getpages", paged->results_key);
  kept.emplace_back("_snapshot", std::to_string(snapshot));
  PagingLinks links;
  links.base = c.base;
  links.path = path;
  links.params = std::move(kept);
  links.offset = offset;
  links.count = count;
  links.total = paged->total;
  links.by_kept_ids = !paged->results_key.empty();
  return BundleTextResponse(
      WriteSearchsetPage(std::move(links), paging->summary_count,
                         /*show_total=*/true, c.format, page, included, warnings),
      c.format.pretty);
}

// --- Bundles --------------------------------------------------------------------------------

Response FhirApi::BatchOrTransaction(Context& c) {
  Status mt = CheckBodyMediaType(c.req, false);
  if (!mt.ok()) return ErrorResponse(mt.error());
  auto parsed = ParseJson(c.req.body);
  if (!parsed.ok()) return ErrorResponse(parsed.error());
  // Search-like GET entries run through this same router as requests of their own, with the
  // outer request's headers (so Prefer and, later, the principal apply to them too).
  auto sub_get = [this, &c](const std::string& url) -> Response {
    Request sub;
    sub.method = "GET";
    sub.target = "/fhir/" + url;
    const auto q = url.find('?');
    sub.path = "/fhir/" + url.substr(0, q);
    if (q != std::string::npos) {
      auto query = ParseQueryString(std::string_view(url).substr(q + 1));
      if (!query.ok()) return ErrorResponse(query.error());
      sub.query = std::move(*query);
    }
    for (const auto& [k, v] : c.req.headers) {
      if (k != "content-type" && k != "content-length") sub.headers.emplace_back(k, v);
    }
    sub.remote = c.req.remote;
    sub.scheme = c.req.scheme;
    return Dispatch(sub);
  };
  BundleProcessor processor(store_, options_, c.base, false, sub_get);
  auto result = processor.Process(std::move(*parsed));
  if (!result.ok()) return ErrorResponse(result.error());
  return JsonResponse(200, *result, c.format.pretty);
}

// --- CapabilityStatement --------------------------------------------------------------------

namespace {

// The search parameters a type really answers: what the index extracts, plus _id and
// _lastUpdated (answered from the resource row).
json::array SearchParamsOf(std::string_view type) {
  json::array out{
      json::object{{"name", "_id"},
                   {"type", "token"},
                   {"definition", "http://hl7.org/fhir/SearchParameter/Resource-id"}},
      json::object{{"name", "_lastUpdated"},
                   {"type", "date"},
                   {"definition", "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"}},
  };
  // Every parameter a search answers (SearchableParams: the indexed ones and _text/_content),
  // not only those with index rows.
  for (const fhir::SearchParamDef* p : search::SearchableParams(type)) {
    out.emplace_back(json::object{{"name", p->code}, {"type", p->type}, {"definition", p->url}});
  }
  return out;
}

// _revinclude values per target type ("Observation:subject" for Patient, …): every indexed
// reference parameter of every type, under each type it can reference.
const std::map<std::string, std::vector<std::string>, std::less<>>& RevIncludesByTarget() {
  static const auto table = [] {
    std::map<std::string, std::vector<std::string>, std::less<>> out;
    const auto& defs = fhir::Definitions::Get();
    for (const std::string& source : defs.ResourceTypes()) {
      for (const fhir::SearchParamDef* p : search::IndexedParams(source)) {
        if (p->type != "reference") continue;
        const std::vector<std::string>& targets =
            p->target.empty() ? defs.ResourceTypes() : p->target;
        for (const std::string& t : targets) out[t].push_back(source + ":" + p->code);
      }
    }
    for (auto& [t, v] : out) std::sort(v.begin(), v.end());
    return out;
  }();
  return table;
}

}  // namespace

json::object FhirApi::CapabilityStatement(const std::string& base_url) const {
  bool compartment_search = false;
  std::vector<const Route*> operations;
  for (const auto& r : Routes()) {
    if (std::string_view(r.level) == "compartment") compartment_search = true;
    if (std::string_view(r.level) == "operation") operations.push_back(&r);
  }
  json::array resources;
  for (const auto& type : options_.resource_types) {
    json::array interactions;
    std::vector<std::string> seen;
    for (const auto& r : Routes()) {
      std::string_view level = r.level;
      if (level != "instance" && level != "type") continue;
      if (std::find(seen.begin(), seen.end(), r.interaction) != seen.end()) continue;
      seen.emplace_back(r.interaction);
      interactions.emplace_back(json::object{{"code", r.interaction}});
    }
    json::array includes{"*"};
    for (const std::string& p : ReferenceParams(type))
      includes.emplace_back(json::string(type + ":" + p));
    json::array revincludes;
    if (auto it = RevIncludesByTarget().find(type); it != RevIncludesByTarget().end()) {
      for (const std::string& v : it->second) revincludes.emplace_back(json::string(v));
    }
    json::object res{
        {"type", type},
        {"interaction", std::move(interactions)},
        {"versioning", "versioned-update"},
        {"readHistory", true},
        {"updateCreate", true},
        {"conditionalCreate", true},
        {"conditionalRead", "not-supported"},
        {"conditionalUpdate", true},
        {"conditionalDelete", "single"},
        {"searchInclude", std::move(includes)},
        {"searchRevInclude", std::move(revincludes)},
        {"searchParam", SearchParamsOf(type)},
    };
    json::array ops;
    for (const Route* r : operations) {
      const std::string_view name = r->interaction;
      if (name == "everything" && !HasEverything(type)) continue;
      if (name == "export") {
        // Bulk Data: Patient-level and Group-level export (one entry per type, two routes).
        if (type != "Patient" && type != "Group") continue;
        if (std::any_of(ops.begin(), ops.end(), [](const json::value& o) {
              return o.as_object().at("name").as_string() == "export";
            }))
          continue;
        ops.emplace_back(json::object{
            {"name", "export"},
            {"definition",
             fmt::format("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{}-export",
                         type == "Patient" ? "patient" : "group")}});
        continue;
      }
      ops.emplace_back(json::object{
          {"name", r->interaction},
          {"definition",
           fmt::format("http://hl7.org/fhir/OperationDefinition/{}-{}", type, r->interaction)}});
    }
    if (!ops.empty()) res["operation"] = std::move(ops);
    resources.emplace_back(std::move(res));
  }
  json::array system_interactions;
  for (const auto& r : Routes()) {
    if (std::string_view(r.level) != "system" || std::string_view(r.interaction) == "capabilities")
      continue;
    system_interactions.emplace_back(json::object{{"code", r.interaction}});
    if (std::string_view(r.interaction) == "transaction")
      system_interactions.emplace_back(json::object{{"code", "batch"}});
  }
  json::object rest{
      {"mode", "server"},
      {"documentation",
       fmt::format(
           "Search supports every listed parameter of type string (:exact, :contains; "
           "case-, accent- and width-insensitive, Chinese by characters and whole names), token "
           "(:not, :text, :of-type, :in and :not-in against the held ValueSets), date, number "
           "and quantity (prefixes eq ne gt lt ge le sa eb ap; quantities compared in UCUM "
           "units where commensurable), reference (:Type, :identifier) and uri (:below, "
           ":above), all with :missing; composite parameters ($-joined values); chained "
           "parameters (several levels, with :Type) and _has (reverse chains, nested); _text "
           "and _content (full text); _id, _lastUpdated, _tag, _profile, _security, _source; "
           "_sort (several keys), _count, _total, _summary=count, _elements and stable paging "
           "(self, next, previous, first, last links bound to a _snapshot). GET and POST "
           "_search. _include and _revinclude take Type:param[:Target], "
           "Type:* and _include=*, with :iterate (or :recurse) repeated until nothing new is "
           "found (at most {} rounds and {} included resources a page); included resources have "
           "search.mode include and do not count in total. Compartment search "
           "(Patient/[id]/[type] or /*) follows the R4 CompartmentDefinitions listed here; "
           "Patient/[id]/$everything and Encounter/[id]/$everything take _since, _type and "
           "_count. "
           "Not supported: near and _query (400 with Prefer: handling=strict, otherwise ignored "
           "with a warning in an OperationOutcome entry). Parameters not listed are ignored and "
           "left out of the self link, or rejected with Prefer: handling=strict.",
           options_.max_include_iterations, options_.max_include_count)},
      {"resource", std::move(resources)},
      {"interaction", std::move(system_interactions)},
  };
  if (compartment_search) {
    json::array compartments;
    for (const std::string& t : CompartmentTypes())
      compartments.emplace_back(json::string(CompartmentDefinitionUrl(t)));
    rest["compartment"] = std::move(compartments);
  }
  // System-level operations: $export (FHIR Bulk Data).
  json::array system_operations;
  for (const auto& r : Routes()) {
    if (std::string_view(r.level) != "system-operation") continue;
    system_operations.emplace_back(json::object{
        {"name", r.interaction},
        {"definition",
         fmt::format("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{}", r.interaction)}});
  }
  if (!system_operations.empty()) rest["operation"] = std::move(system_operations);
  return json::object{
      {"resourceType", "CapabilityStatement"},
      {"status", "active"},
      {"date", FormatInstant(NowMicros())},
      {"publisher", "Jiceng"},
      {"kind", "instance"},
      {"software", json::object{{"name", "jiceng"}, {"version", options_.software_version}}},
      {"implementation", json::object{{"description", "Jiceng FHIR R4 server"}, {"url", base_url}}},
      {"fhirVersion", "4.0.1"},
      {"format", json::array{"application/fhir+json", "json"}},
      {"patchFormat", json::array{"application/json-patch+json"}},
      {"rest", json::array{std::move(rest)}},
  };
}

}  // namespace jiceng::api
