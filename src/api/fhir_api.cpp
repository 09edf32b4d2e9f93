#include "api/fhir_api.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>

#include "api/bundle_processor.h"
#include "api/interactions.h"
#include "api/json_patch.h"
#include "api/outcome.h"
#include "api/response_format.h"
#include "base/ids.h"
#include "base/time.h"
#include "fhir/search/extractor.h"
#include "fhir/search/query.h"

namespace jiceng::api {

struct FhirApi::Context {
  Request& req;
  std::string type, id, vid;
  std::string base;  // base URL without trailing slash, e.g. http://host/fhir
  FormatOptions format;
  std::string prefer_return = "representation";
  bool strict_handling = false;
};

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
                  std::string& type, std::string& id, std::string& vid) {
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
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
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
    if (patch) return Error(ErrorCode::kUnsupportedMedia, "PATCH needs Content-Type application/json-patch+json");
    return Status::Ok();  // lenient: a body without Content-Type is read as FHIR JSON
  }
  auto mt = MediaType(*ct);
  if (patch) {
    if (IEquals(mt, kJsonPatch)) return Status::Ok();
    if (IsJsonMediaType(mt))
      return Error(ErrorCode::kUnsupportedMedia,
                   "PATCH supports JSON Patch only: use Content-Type application/json-patch+json");
    return Error(ErrorCode::kUnsupportedMedia, fmt::format("Unsupported Content-Type '{}' for PATCH", mt));
  }
  if (IsJsonMediaType(mt)) return Status::Ok();
  return Error(ErrorCode::kUnsupportedMedia,
               fmt::format("Unsupported Content-Type '{}': this server reads application/fhir+json", mt));
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
  Error e(ErrorCode::kUnprocessable, issues.empty() ? "Invalid resource" : issues.front().diagnostics);
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

const std::vector<FhirApi::Route>& FhirApi::Routes() {
  static const std::vector<Route> kRoutes = {
      {"GET", "/metadata", "capabilities", "system", &FhirApi::Metadata},
      {"POST", "/", "transaction", "system", &FhirApi::BatchOrTransaction},
      {"GET", "/_history", "history-system", "system", &FhirApi::HistorySystem},
      {"GET", "/{type}/_history", "history-type", "type", &FhirApi::HistoryType},
      {"POST", "/{type}/_search", "search-type", "type", &FhirApi::SearchTypePost},
      {"GET", "/{type}", "search-type", "type", &FhirApi::SearchType},
      {"POST", "/{type}", "create", "type", &FhirApi::Create},
      {"PUT", "/{type}", "update", "type", &FhirApi::UpdateConditional},
      {"PATCH", "/{type}", "patch", "type", &FhirApi::PatchConditional},
      {"DELETE", "/{type}", "delete", "type", &FhirApi::DeleteConditional},
      {"GET", "/{type}/{id}/_history/{vid}", "vread", "instance", &FhirApi::VRead},
      {"GET", "/{type}/{id}/_history", "history-instance", "instance", &FhirApi::HistoryInstance},
      {"GET", "/{type}/{id}", "read", "instance", &FhirApi::Read},
      {"PUT", "/{type}/{id}", "update", "instance", &FhirApi::UpdateInstance},
      {"PATCH", "/{type}/{id}", "patch", "instance", &FhirApi::Patch},
      {"DELETE", "/{type}/{id}", "delete", "instance", &FhirApi::DeleteInstance},
  };
  return kRoutes;
}

FhirApi::FhirApi(store::IStore& store, FhirApiOptions options)
    : store_(store), options_(std::move(options)) {}

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

  Context c{req, {}, {}, {}, {}, {}, {}, false};
  if (!options_.base_url.empty()) {
    c.base = options_.base_url;
  } else {
    c.base = fmt::format("{}://{}/fhir", req.scheme, req.Header("host").value_or("localhost"));
  }
  auto fmt_opts = ParseFormatOptions(req);
  if (!fmt_opts.ok()) return ErrorResponse(fmt_opts.error());
  c.format = *fmt_opts;
  if (auto prefer = req.Header("prefer")) {
    for (auto part : Segments(std::string(*prefer))) (void)part;
    std::string_view p = *prefer;
    auto has = [&](std::string_view s) { return p.find(s) != std::string_view::npos; };
    if (has("return=minimal")) c.prefer_return = "minimal";
    else if (has("return=OperationOutcome")) c.prefer_return = "OperationOutcome";
    if (has("handling=strict")) c.strict_handling = true;
  }

  std::string method = req.method == "HEAD" ? "GET" : req.method;
  bool path_matched = false;
  std::vector<std::string> allowed;
  for (const auto& route : Routes()) {
    std::string type, id, vid;
    if (!MatchPattern(route.pattern, segs, type, id, vid)) continue;
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
    c.type = std::move(type);
    c.id = std::move(id);
    c.vid = std::move(vid);
    return (this->*route.fn)(c);
  }
  if (path_matched) {
    Response r = ErrorResponse(Error(ErrorCode::kMethodNotAllowed,
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
  auto txn = store_.BeginRead();
  if (!txn.ok()) return ErrorResponse(txn.error());
  auto v = Interactions::Read(**txn, c.type, c.id);
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
  if (!*v) return ErrorResponse(NotFound(fmt::format("{}/{}/_history/{} is not known", c.type, c.id, c.vid)));
  if ((*v)->deleted) {
    Response r = ErrorResponse(Error(ErrorCode::kGone, fmt::format("{}/{} version {} is a deletion", c.type, c.id, c.vid)));
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
    if (issue.severity == "error" || issue.severity == "fatal") errors.push_back(std::move(issue));
    else out.warnings.push_back(std::move(issue));
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
  if (w.version.version > 0) AddVersionHeaders(r, base, w.version, w.status == 201 || w.status == 200);
  if (prefer_return == "minimal" || w.version.json.empty()) {
    if (r.status == 200 && w.version.json.empty()) r.status = 204;
    return r;
  }
  if (prefer_return == "OperationOutcome") {
    std::vector<Issue> issues = warnings;
    issues.push_back(Issue{"information", "informational",
                           fmt::format("{} {}/{} version {}", w.status == 201 ? "Created" : (w.changed ? "Updated" : "Unchanged"),
                                       w.version.type, w.version.id, w.version.version), ""});
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
  std::string id = NewUuid();
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
    return ErrorResponse(Invalid(fmt::format("Resource id '{}' does not match the URL id '{}'", *body_id, c.id),
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
  std::string new_id = NewUuid();
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
                   fmt::format("Version conflict: {}/{} is at version {}, If-Match was {}", c.type, id,
                               cur.version, **if_match));
    JC_ASSIGN_OR_RETURN(json::value doc, ParseJson(cur.json));
    JC_RETURN_IF_ERROR(ApplyJsonPatch(doc, *patch));
    if (!doc.is_object()) return Error(ErrorCode::kUnprocessable, "The patched document is not a resource");
    auto& obj = doc.get_object();
    if (FindString(obj, "resourceType").value_or("") != c.type)
      return Error(ErrorCode::kUnprocessable, "A patch may not change resourceType", "resourceType");
    if (FindString(obj, "id").value_or("") != id)
      return Error(ErrorCode::kUnprocessable, "A patch may not change the id", c.type + ".id");
    std::vector<Issue> errors;
    for (auto& i : options_.validate(obj, options_.strict_validation)) {
      if (i.severity == "error" || i.severity == "fatal") errors.push_back(std::move(i));
      else warnings.push_back(std::move(i));
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
    r.body = ToJson(MakeOperationOutcome({Issue{"information", "informational",
        result->changed ? fmt::format("Deleted {}/{}", c.type, c.id)
                        : fmt::format("{}/{} was already deleted", c.type, c.id), ""}}));
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
  if (v->empty() || v->size() > 18) return Invalid(fmt::format("Parameter {} must be an integer", name), std::string(name));
  int64_t n = 0;
  for (char ch : *v) {
    if (ch < '0' || ch > '9') return Invalid(fmt::format("Parameter {} must be a non-negative integer", name), std::string(name));
    n = n * 10 + (ch - '0');
  }
  return std::clamp(n, min, max);
}

std::string EncodeQueryComponent(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == ':' || ch == '|' || ch == ',') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  return out;
}

std::string BuildLink(const std::string& base, const std::string& path, const QueryParams& params) {
  std::string url = base + path;
  char sep = '?';
  for (const auto& [k, v] : params) {
    url += sep;
    url += EncodeQueryComponent(k);
    url += '=';
    url += EncodeQueryComponent(v);
    sep = '&';
  }
  return url;
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
         FormatInstant(NowMicros()) + R"("},"type":"history","total":)" + std::to_string(page->total);
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
      out += fmt::format(R"(,"request":{{"method":"{}","url":{}}},"response":{{"status":"{}","etag":"W/\"{}\"","lastModified":"{}"}}}})",
                         method, json::serialize(json::string(url)), StatusLine(status), v.version,
                         FormatInstant(v.last_updated_us));
    }
    out += "]";
  }
  out += "}";
  return BundleTextResponse(std::move(out), c.format.pretty);
}

Response FhirApi::SearchType(Context& c) { return Search(c, c.req.query); }

Response FhirApi::SearchTypePost(Context& c) {
  auto ct = c.req.Header("content-type");
  if (!ct || !IEquals(MediaType(*ct), "application/x-www-form-urlencoded"))
    return ErrorResponse(Error(ErrorCode::kUnsupportedMedia,
                               "POST _search needs Content-Type application/x-www-form-urlencoded"));
  auto form = ParseQueryString(c.req.body);
  if (!form.ok()) return ErrorResponse(form.error());
  QueryParams all = c.req.query;
  all.insert(all.end(), form->begin(), form->end());
  return Search(c, all);
}

Response FhirApi::Search(Context& c, const QueryParams& params) {
  search::ParseOptions po;
  po.strict = c.strict_handling;
  po.default_count = options_.default_page_size;
  po.max_count = options_.max_page_size;
  auto parsed = search::ParseSearch(c.type, params, po);
  if (!parsed.ok()) return ErrorResponse(parsed.error());
  const store::SearchQuery& q = parsed->query;
  const bool summary_count = parsed->summary_count;
  const int64_t offset = q.offset;
  // _summary=count asks for no entries; the links still carry the page size the caller asked.
  int64_t count = q.count;
  if (summary_count) {
    count = options_.default_page_size;
    for (const auto& [k, v] : params) {
      if (k == "_count") count = std::min<int64_t>(std::atoll(v.c_str()), options_.max_page_size);
    }
  }
  auto txn = store_.BeginRead();
  if (!txn.ok()) return ErrorResponse(txn.error());
  auto found = (*txn)->Search(q);
  if (!found.ok()) return ErrorResponse(found.error());
  std::vector<store::ResourceVersion> page = std::move(found->entries);
  // Without a total (_total=none), "is there a next page" is "this page is full".
  const int64_t total = found->total ? *found->total
                                     : offset + static_cast<int64_t>(page.size()) +
                                           (static_cast<int64_t>(page.size()) == count ? 1 : 0);
  QueryParams kept = parsed->applied;
  // The snapshot keeps every page of this search on the same set while data changes.
  kept.emplace_back("_snapshot", std::to_string(*q.at_or_before_us));
  std::string path = "/" + c.type;
  QueryParams link = kept;
  link.emplace_back("_count", std::to_string(count));
  std::string out = R"({"resourceType":"Bundle","id":")" + NewUuid() + R"(","meta":{"lastUpdated":")" +
                    FormatInstant(NowMicros()) + R"("},"type":"searchset")" +
                    (found->total ? R"(,"total":)" + std::to_string(*found->total) : std::string()) +
                    R"(,"link":[)";
  auto add_link = [&](const char* rel, int64_t off, bool first) {
    QueryParams p = link;
    if (off > 0) p.emplace_back("_getpagesoffset", std::to_string(off));
    if (!first) out += ',';
    out += R"({"relation":")";
    out += rel;
    out += R"(","url":)";
    out += json::serialize(json::string(BuildLink(c.base, path, p)));
    out += '}';
  };
  add_link("self", offset, true);
  if (!summary_count && offset + count < total) add_link("next", offset + count, false);
  if (!summary_count && offset > 0) add_link("previous", std::max<int64_t>(0, offset - count), false);
  out += "]";
  if (!page.empty()) {
    out += R"(,"entry":[)";
    bool first = true;
    for (const auto& v : page) {
      if (!first) out += ',';
      first = false;
      auto body = FormatResource(v.json, FormatOptions{false, c.format.summary, c.format.elements});
      out += R"({"fullUrl":)";
      out += json::serialize(json::string(fmt::format("{}/{}/{}", c.base, v.type, v.id)));
      out += R"(,"resource":)";
      out += body.ok() ? *body : v.json;
      out += R"(,"search":{"mode":"match"}})";
    }
    out += "]";
  }
  out += "}";
  return BundleTextResponse(std::move(out), c.format.pretty);
}

// --- Bundles --------------------------------------------------------------------------------

Response FhirApi::BatchOrTransaction(Context& c) {
  Status mt = CheckBodyMediaType(c.req, false);
  if (!mt.ok()) return ErrorResponse(mt.error());
  auto parsed = ParseJson(c.req.body);
  if (!parsed.ok()) return ErrorResponse(parsed.error());
  BundleProcessor processor(store_, options_, c.base);
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
      json::object{{"name", "_id"}, {"type", "token"},
                   {"definition", "http://hl7.org/fhir/SearchParameter/Resource-id"}},
      json::object{{"name", "_lastUpdated"}, {"type", "date"},
                   {"definition", "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"}},
  };
  for (const fhir::SearchParamDef* p : search::IndexedParams(type)) {
    out.emplace_back(json::object{{"name", p->code}, {"type", p->type}, {"definition", p->url}});
  }
  return out;
}

}  // namespace

json::object FhirApi::CapabilityStatement(const std::string& base_url) const {
  json::array resources;
  for (const auto& type : options_.resource_types) {
    json::array interactions;
    std::vector<std::string> seen;
    for (const auto& r : Routes()) {
      if (std::string_view(r.level) == "system") continue;
      if (std::find(seen.begin(), seen.end(), r.interaction) != seen.end()) continue;
      seen.emplace_back(r.interaction);
      interactions.emplace_back(json::object{{"code", r.interaction}});
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
        {"searchParam", SearchParamsOf(type)},
    };
    resources.emplace_back(std::move(res));
  }
  json::array system_interactions;
  for (const auto& r : Routes()) {
    if (std::string_view(r.level) != "system" || std::string_view(r.interaction) == "capabilities") continue;
    system_interactions.emplace_back(json::object{{"code", r.interaction}});
    if (std::string_view(r.interaction) == "transaction")
      system_interactions.emplace_back(json::object{{"code", "batch"}});
  }
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
      {"rest",
       json::array{json::object{
           {"mode", "server"},
           {"documentation",
            "Search supports every listed parameter of type string (:exact, :contains), token "
            "(:not, :text), date, number and quantity (prefixes eq ne gt lt ge le sa eb ap), "
            "reference (:Type) and uri (:below, :above), all with :missing; _sort, _count, "
            "_total, _summary=count and stable paging. Composite and special parameters, "
            "chains, _include/_revinclude and _has are not supported yet: they are ignored (or "
            "rejected with Prefer: handling=strict)."},
           {"resource", std::move(resources)},
           {"interaction", std::move(system_interactions)},
       }}},
  };
}

}  // namespace jiceng::api
