#include "api/bundle_processor.h"

#include <fmt/format.h>

#include <map>
#include <set>

#include "api/interactions.h"
#include "api/json_patch.h"
#include "api/outcome.h"
#include "api/stored_value_sets.h"
#include "base/base64.h"
#include "base/ids.h"
#include "base/time.h"
#include "fhir/search/query.h"

namespace jiceng::api {

namespace {

enum class Verb { kGet, kPost, kPut, kPatch, kDelete, kHead };

struct Entry {
  std::size_t index = 0;
  Verb verb = Verb::kGet;
  std::string method;
  std::string url;        // relative request URL
  std::string full_url;   // entry.fullUrl
  std::string type, id, vid;
  QueryParams criteria;   // conditional criteria / search parameters
  bool conditional = false;
  json::object resource;  // POST / PUT body, PATCH Binary
  bool has_resource = false;
  std::optional<int64_t> if_match;
  std::string if_none_exist;
  std::string assigned_id;  // POST: pre-assigned server id
  std::optional<PreparedCreate> prepared;  // POST made ready outside the writer
  std::vector<Issue> warnings;
  // Outcome.
  bool done = false;
  int status = 0;
  store::ResourceVersion version;
  std::optional<Error> error;
  std::string get_body;  // GET: the resource read (or the sub-request's body)
  // A GET that is not a plain read runs as a sub-request after the write (see SubRequest); its
  // status and body are then the entry's outcome.
  bool sub_request = false;
};

std::string Loc(std::size_t i, std::string_view rest = {}) {
  return rest.empty() ? fmt::format("Bundle.entry[{}]", i) : fmt::format("Bundle.entry[{}].{}", i, rest);
}

Error WithLocation(Error e, std::size_t i) {
  if (e.issues.empty()) {
    e.issues.push_back(Issue{"error", IssueTypeFor(e.code), e.message, Loc(i)});
  } else {
    for (auto& issue : e.issues) {
      if (issue.expression.empty()) issue.expression = Loc(i);
      else if (!issue.expression.starts_with("Bundle.")) issue.expression = Loc(i, "resource." + issue.expression);
    }
  }
  e.message = fmt::format("Bundle.entry[{}]: {}", i, e.message);
  return e;
}

// Collects conditional references ("Patient?identifier=…") in `v`.
void CollectConditionalRefs(const json::value& v, std::set<std::string>& out) {
  if (v.is_object()) {
    for (const auto& kv : v.get_object()) {
      if (kv.key() == "reference" && kv.value().is_string()) {
        std::string_view s = kv.value().get_string();
        auto q = s.find('?');
        if (q != std::string_view::npos && q > 0 && s.find('/') == std::string_view::npos)
          out.insert(std::string(s));
      } else {
        CollectConditionalRefs(kv.value(), out);
      }
    }
  } else if (v.is_array()) {
    for (const auto& e : v.get_array()) CollectConditionalRefs(e, out);
  }
}

}  // namespace

// Rewrites every "reference" string found in `v` through `map`.
void RewriteReferences(json::value& v, const ReferenceMap& map) {
  if (v.is_object()) {
    for (auto& kv : v.get_object()) {
      if (kv.key() == "reference" && kv.value().is_string()) {
        auto it = map.find(std::string_view(kv.value().get_string()));
        if (it != map.end()) kv.value() = it->second;
      } else if (kv.value().is_object() || kv.value().is_array()) {
        RewriteReferences(kv.value(), map);
      }
    }
  } else if (v.is_array()) {
    for (auto& e : v.get_array())
      if (e.is_object() || e.is_array()) RewriteReferences(e, map);
  }
}

BundleProcessor::BundleProcessor(store::IStore& store, const FhirApiOptions& options,
                                 std::string base_url, bool return_resources, SubRequest sub_get)
    : store_(store),
      options_(options),
      base_(std::move(base_url)),
      return_resources_(return_resources),
      sub_get_(std::move(sub_get)) {}

namespace {

// Parses entry.request.url (relative or absolute under base) into type/id/vid/criteria.
Status ParseEntryUrl(Entry& e, const std::string& base, const FhirApiOptions& opts) {
  std::string_view url = e.url;
  if (url.starts_with(base + "/")) url.remove_prefix(base.size() + 1);
  else if (url.starts_with("http://") || url.starts_with("https://"))
    return Invalid(fmt::format("Absolute URL '{}' is not on this server", e.url), Loc(e.index, "request.url"));
  if (url.starts_with("/")) url.remove_prefix(1);
  std::string_view path = url, query;
  if (auto q = url.find('?'); q != std::string_view::npos) {
    path = url.substr(0, q);
    query = url.substr(q + 1);
  }
  std::vector<std::string_view> segs;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    auto slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > pos) segs.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  if (segs.empty()) return Invalid(fmt::format("Entry URL '{}' names no resource type", e.url), Loc(e.index, "request.url"));
  e.type = std::string(segs[0]);
  if (!opts.is_resource_type(e.type))
    return Invalid(fmt::format("Unknown resource type '{}' in entry URL", e.type), Loc(e.index, "request.url"));
  if (segs.size() >= 2) {
    e.id = std::string(segs[1]);
    if (!IsValidId(e.id)) return Invalid(fmt::format("'{}' is not a valid id", e.id), Loc(e.index, "request.url"));
  }
  if (segs.size() == 4 && segs[2] == "_history") e.vid = std::string(segs[3]);
  else if (segs.size() > 2) return Invalid(fmt::format("Unsupported entry URL '{}'", e.url), Loc(e.index, "request.url"));
  if (!query.empty()) {
    auto parsed = ParseQueryString(query);
    if (!parsed.ok()) return WithLocation(parsed.error(), e.index);
    e.criteria = std::move(*parsed);
    e.conditional = true;
  }
  return Status::Ok();
}

json::object EntryResponse(const Entry& e, const std::string& base, bool with_resource) {
  json::object response;
  json::object out;
  if (e.sub_request && !e.error) {
    response["status"] = StatusLine(e.status);
    if (!e.get_body.empty() && e.verb == Verb::kGet) {
      auto v = ParseJson(e.get_body);
      if (v.ok()) {
        if (e.status >= 400) response["outcome"] = std::move(*v);
        else out["resource"] = std::move(*v);
      }
    }
    out["response"] = std::move(response);
    return out;
  }
  if (e.error) {
    response["status"] = StatusLine(HttpStatus(e.error->code));
    response["outcome"] = MakeOperationOutcome(IssuesOf(*e.error));
    out["response"] = std::move(response);
    return out;
  }
  response["status"] = StatusLine(e.status);
  if (e.version.version > 0 && e.verb != Verb::kGet) {
    if (!e.version.deleted)
      response["location"] = fmt::format("{}/{}/_history/{}", e.version.type, e.version.id, e.version.version);
    response["etag"] = fmt::format("W/\"{}\"", e.version.version);
    response["lastModified"] = FormatInstant(e.version.last_updated_us);
  }
  if (e.verb == Verb::kGet && !e.get_body.empty()) {
    auto v = ParseJson(e.get_body);
    if (v.ok()) out["resource"] = std::move(*v);
  } else if (with_resource && !e.version.json.empty()) {
    auto v = ParseJson(e.version.json);
    if (v.ok()) out["resource"] = std::move(*v);
  }
  if (!e.version.id.empty() && e.verb != Verb::kDelete)
    out["fullUrl"] = fmt::format("{}/{}/{}", base, e.version.type, e.version.id);
  out["response"] = std::move(response);
  return out;
}

}  // namespace

Result<json::object> BundleProcessor::Process(json::value bundle_value) {
  if (!bundle_value.is_object()) return Invalid("The body must be a Bundle");
  auto& bundle = bundle_value.get_object();
  if (FindString(bundle, "resourceType").value_or("") != "Bundle")
    return Invalid("POST to the base needs a Bundle resource", "resourceType");
  auto btype = FindString(bundle, "type").value_or("");
  const bool transaction = btype == "transaction";
  if (!transaction && btype != "batch")
    return Invalid(fmt::format("Bundle.type must be 'batch' or 'transaction', not '{}'", btype), "Bundle.type");

  std::vector<Entry> entries;
  if (auto* arr = bundle.if_contains("entry")) {
    if (!arr->is_array()) return Invalid("Bundle.entry must be an array", "Bundle.entry");
    entries.resize(arr->get_array().size());
    std::size_t i = 0;
    for (auto& ev : arr->get_array()) {
      Entry& e = entries[i];
      e.index = i++;
      if (!ev.is_object()) return Invalid("Bundle entry must be an object", Loc(e.index));
      auto& eo = ev.get_object();
      auto* req = FindObject(eo, "request");
      if (!req) return Invalid("Bundle entry has no request", Loc(e.index, "request"));
      e.method = std::string(FindString(*req, "method").value_or(""));
      e.url = std::string(FindString(*req, "url").value_or(""));
      if (e.url.empty()) return Invalid("Bundle entry request has no url", Loc(e.index, "request.url"));
      if (e.method == "GET") e.verb = Verb::kGet;
      else if (e.method == "HEAD") e.verb = Verb::kHead;
      else if (e.method == "POST") e.verb = Verb::kPost;
      else if (e.method == "PUT") e.verb = Verb::kPut;
      else if (e.method == "PATCH") e.verb = Verb::kPatch;
      else if (e.method == "DELETE") e.verb = Verb::kDelete;
      else return Invalid(fmt::format("Unknown request.method '{}'", e.method), Loc(e.index, "request.method"));
      if (auto s = FindString(*req, "ifMatch")) {
        auto v = ParseETagVersion(*s);
        if (!v.ok()) return Invalid(fmt::format("Bad ifMatch '{}'", *s), Loc(e.index, "request.ifMatch"));
        e.if_match = *v;
      }
      if (auto s = FindString(*req, "ifNoneExist")) e.if_none_exist = std::string(*s);
      e.full_url = std::string(FindString(eo, "fullUrl").value_or(""));
      if (auto* r = eo.if_contains("resource")) {
        if (!r->is_object()) return Invalid("entry.resource must be an object", Loc(e.index, "resource"));
        e.resource = std::move(r->get_object());
        e.has_resource = true;
      }
    }
  }

  // Parse URLs and validate bodies up front (outside the write transaction).
  std::vector<bool> failed(entries.size(), false);
  // A transaction reports every bad entry at once; a batch reports each in its own response.
  std::vector<Error> tx_errors;
  auto fail = [&](Entry& e, Error err) -> Status {
    if (transaction) tx_errors.push_back(WithLocation(std::move(err), e.index));
    else e.error = std::move(err);
    failed[e.index] = true;
    return Status::Ok();
  };
  for (auto& e : entries) {
    Status st = ParseEntryUrl(e, base_, options_);
    if ((e.verb == Verb::kGet || e.verb == Verb::kHead) && (!st.ok() || e.id.empty())) {
      // Search, compartment search, history, operations: the API answers them itself.
      if (!sub_get_) {
        JC_RETURN_IF_ERROR(fail(e, Error(ErrorCode::kNotImplemented,
                                         "Search entries are not supported here", Loc(e.index, "request.url"))));
        continue;
      }
      e.sub_request = true;
      // A transaction must not commit and then find a search it cannot run: parse it first.
      if (st.ok() && transaction) {
        search::ParseOptions po;
        po.value_sets = StoredValueSets(store_);
        auto parsed = search::ParseSearch(e.type, e.criteria, po);
        if (!parsed.ok()) {
          JC_RETURN_IF_ERROR(fail(e, Error(parsed.error().code, parsed.error().message,
                                           Loc(e.index, "request.url"))));
        }
      }
      continue;
    }
    if (!st.ok()) { JC_RETURN_IF_ERROR(fail(e, st.error())); continue; }
    if (e.verb == Verb::kPost || e.verb == Verb::kPut) {
      if (!e.has_resource) { JC_RETURN_IF_ERROR(fail(e, Invalid("This entry needs a resource", Loc(e.index, "resource")))); continue; }
      auto rt = FindString(e.resource, "resourceType");
      if (!rt || *rt != e.type) {
        JC_RETURN_IF_ERROR(fail(e, Invalid(fmt::format("resourceType '{}' does not match the entry URL type '{}'",
                                                       rt.value_or(""), e.type), Loc(e.index, "resource.resourceType"))));
        continue;
      }
      if (e.verb == Verb::kPost && !e.id.empty()) {
        JC_RETURN_IF_ERROR(fail(e, Invalid("POST entry URL must be a type, not an instance", Loc(e.index, "request.url"))));
        continue;
      }
      if (e.verb == Verb::kPut && !e.conditional) {
        if (e.id.empty()) { JC_RETURN_IF_ERROR(fail(e, Invalid("PUT entry URL needs an id or criteria", Loc(e.index, "request.url")))); continue; }
        auto bid = FindString(e.resource, "id");
        if (bid && *bid != e.id) {
          JC_RETURN_IF_ERROR(fail(e, Invalid(fmt::format("Resource id '{}' does not match the entry URL id '{}'", *bid, e.id),
                                             Loc(e.index, "resource.id"))));
          continue;
        }
      }
      std::vector<Issue> errors;
      for (auto& issue : options_.validate(e.resource, options_.strict_validation)) {
        // "Patient.birthDate" inside entry 3 is "Bundle.entry[3].resource.birthDate".
        std::string_view expr = issue.expression;
        if (expr.starts_with(e.type) && expr.size() > e.type.size() && expr[e.type.size()] == '.')
          expr.remove_prefix(e.type.size() + 1);
        else if (expr == e.type)
          expr = {};
        issue.expression = expr.empty() ? Loc(e.index, "resource") : Loc(e.index, "resource." + std::string(expr));
        if (issue.severity == "error" || issue.severity == "fatal") errors.push_back(std::move(issue));
        else e.warnings.push_back(std::move(issue));
      }
      if (!errors.empty()) {
        Error err(ErrorCode::kUnprocessable, fmt::format("Bundle.entry[{}]: {}", e.index, errors.front().diagnostics));
        err.issues = std::move(errors);
        if (transaction) tx_errors.push_back(std::move(err));
        else e.error = std::move(err);
        failed[e.index] = true;
        continue;
      }
    } else if (e.verb == Verb::kPatch) {
      if (!e.has_resource || FindString(e.resource, "resourceType").value_or("") != "Binary") {
        JC_RETURN_IF_ERROR(fail(e, Invalid("PATCH entries need a Binary resource holding a JSON Patch", Loc(e.index, "resource"))));
        continue;
      }
    } else if (e.verb == Verb::kDelete && e.id.empty() && !e.conditional) {
      JC_RETURN_IF_ERROR(fail(e, Invalid("DELETE entry URL needs an id or criteria", Loc(e.index, "request.url"))));
      continue;
    }
  }

  if (!tx_errors.empty()) {
    Error all = tx_errors.front();
    all.issues.clear();
    for (auto& err : tx_errors) {
      // 400 (malformed) outranks 422 (invalid content) when both occur.
      if (err.code == ErrorCode::kInvalid) all.code = ErrorCode::kInvalid;
      for (auto& issue : err.issues) all.issues.push_back(std::move(issue));
    }
    if (tx_errors.size() > 1) all.message = fmt::format("{} entries of the transaction are invalid", tx_errors.size());
    return all;
  }

  // Transaction: pre-assign ids and build the fullUrl → reference map.
  std::map<std::string, std::string, std::less<>> refmap;
  if (transaction) {
    std::set<std::string> touched;
    for (auto& e : entries) {
      if (e.verb == Verb::kPost) {
        e.assigned_id = NewResourceId();
        if (!e.full_url.empty()) {
          if (refmap.count(e.full_url))
            return Invalid(fmt::format("fullUrl '{}' appears twice", e.full_url), Loc(e.index, "fullUrl"));
          refmap[e.full_url] = e.type + "/" + e.assigned_id;
        }
      } else if (e.verb == Verb::kPut && !e.conditional) {
        if (!e.full_url.empty() && e.full_url.starts_with("urn:")) refmap[e.full_url] = e.type + "/" + e.id;
      }
      if ((e.verb == Verb::kPut || e.verb == Verb::kDelete || e.verb == Verb::kPatch) && !e.conditional) {
        std::string key = e.type + "/" + e.id;
        if (!touched.insert(key).second)
          return Invalid(fmt::format("{} is the target of more than one entry", key), Loc(e.index, "request.url"));
      }
    }
  }

  // Common case (no conditional references, no ifNoneExist): rewrite references, stamp,
  // serialize and index outside the write transaction; the writer then only stores.
  std::set<std::string> cond_refs;
  bool any_if_none_exist = false;
  if (transaction) {
    for (auto& e : entries) {
      if (e.has_resource && (e.verb == Verb::kPost || e.verb == Verb::kPut))
        CollectConditionalRefs(json::value(e.resource), cond_refs);
      any_if_none_exist |= e.verb == Verb::kPost && !e.if_none_exist.empty();
    }
  }
  const bool prepare_outside = transaction && cond_refs.empty() && !any_if_none_exist;
  if (prepare_outside) {
    const int64_t now = NowMicros();
    for (auto& e : entries) {
      if (!e.has_resource || (e.verb != Verb::kPost && e.verb != Verb::kPut)) continue;
      if (!refmap.empty()) {
        json::value wrapped(std::move(e.resource));
        RewriteReferences(wrapped, refmap);
        e.resource = std::move(wrapped.get_object());
      }
      if (e.verb == Verb::kPost) e.prepared = Interactions::PrepareCreate(e.resource, e.assigned_id, now);
    }
  }

  auto run_entry = [&](store::IWriteTransaction& txn, Entry& e) -> Status {
    switch (e.verb) {
      case Verb::kDelete: {
        Result<WriteResult> r = e.conditional ? Interactions::ConditionalDelete(txn, e.type, e.criteria)
                                              : Interactions::Delete(txn, e.type, e.id, e.if_match);
        if (!r.ok()) {
          if (r.error().code != ErrorCode::kNotFound) return r.error();
          e.status = 204;  // deleting what is not there leaves the server as asked
          return Status::Ok();
        }
        e.status = 204;
        e.version = std::move(r->version);
        e.version.json.clear();
        return Status::Ok();
      }
      case Verb::kPost: {
        if (e.prepared) {
          auto r = Interactions::StorePrepared(txn, *e.prepared);
          if (!r.ok()) return r.error();
          e.status = 201;
          e.version = std::move(r->version);
          return Status::Ok();
        }
        std::string id = e.assigned_id.empty() ? NewResourceId() : e.assigned_id;
        auto r = Interactions::Create(txn, std::move(e.resource), id, e.if_none_exist);
        if (!r.ok()) return r.error();
        e.status = r->status;
        e.version = std::move(r->version);
        return Status::Ok();
      }
      case Verb::kPut: {
        Result<WriteResult> r =
            e.conditional
                ? Interactions::ConditionalUpdate(txn, e.type, e.criteria, std::move(e.resource),
                                                  NewResourceId(), e.if_match)
                : Interactions::Update(txn, e.type, e.id, std::move(e.resource), e.if_match);
        if (!r.ok()) return r.error();
        e.status = r->status;
        e.version = std::move(r->version);
        return Status::Ok();
      }
      case Verb::kPatch: {
        auto data = FindString(e.resource, "data");
        if (!data) return Invalid("Binary.data is missing", Loc(e.index, "resource.data"));
        const std::optional<std::string> text = DecodeBase64(*data);
        if (!text) return Invalid("The Binary's data is not valid base64");
        JC_ASSIGN_OR_RETURN(json::value patch, ParseJson(*text));
        std::string id = e.id;
        if (e.conditional) {
          JC_ASSIGN_OR_RETURN(auto m, FindMatches(txn, e.type, e.criteria));
          if (m.size() != 1)
            return Error(m.empty() ? ErrorCode::kNotFound : ErrorCode::kPreconditionFailed,
                         fmt::format("Conditional patch criteria match {} resources", m.size()));
          id = m[0];
        }
        JC_ASSIGN_OR_RETURN(auto cur, Interactions::Read(txn, e.type, id));
        if (e.if_match && *e.if_match != cur.version)
          return Error(ErrorCode::kPreconditionFailed,
                       fmt::format("Version conflict: {}/{} is at version {}", e.type, id, cur.version));
        JC_ASSIGN_OR_RETURN(json::value doc, ParseJson(cur.json));
        JC_RETURN_IF_ERROR(ApplyJsonPatch(doc, patch));
        if (!doc.is_object() || FindString(doc.get_object(), "id").value_or("") != id ||
            FindString(doc.get_object(), "resourceType").value_or("") != e.type)
          return Error(ErrorCode::kUnprocessable, "A patch may not change resourceType or id");
        std::vector<Issue> errors;
        for (auto& i : options_.validate(doc.get_object(), options_.strict_validation))
          if (i.severity == "error" || i.severity == "fatal") errors.push_back(std::move(i));
        if (!errors.empty()) {
          Error err(ErrorCode::kUnprocessable, errors.front().diagnostics);
          err.issues = std::move(errors);
          return err;
        }
        JC_ASSIGN_OR_RETURN(auto w, Interactions::Update(txn, e.type, id, std::move(doc.get_object()), cur.version));
        e.status = w.status;
        e.version = std::move(w.version);
        return Status::Ok();
      }
      case Verb::kGet:
      case Verb::kHead: {
        if (e.sub_request) return Status::Ok();  // runs after the write, below
        if (e.id.empty())
          return Error(ErrorCode::kNotImplemented, "Search entries in Bundles are not supported yet");
        if (!e.vid.empty()) {
          JC_ASSIGN_OR_RETURN(int64_t ver, ParseETagVersion(e.vid));
          JC_ASSIGN_OR_RETURN(auto v, txn.ReadVersion(e.type, e.id, ver));
          if (!v) return NotFound(fmt::format("{}/{}/_history/{} is not known", e.type, e.id, e.vid));
          if (v->deleted) return Error(ErrorCode::kGone, fmt::format("{}/{} version {} is a deletion", e.type, e.id, e.vid));
          e.status = 200;
          e.get_body = std::move(v->json);
          return Status::Ok();
        }
        JC_ASSIGN_OR_RETURN(auto v, Interactions::Read(txn, e.type, e.id));
        e.status = 200;
        e.get_body = std::move(v.json);
        return Status::Ok();
      }
    }
    return Status::Ok();
  };

  Status st = store_.Write([&](store::IWriteTransaction& txn) -> Status {
    if (transaction) {
      // Conditional creates that match an existing resource point their fullUrl at it.
      for (auto& e : entries) {
        if (prepare_outside) break;
        if (e.verb != Verb::kPost || e.if_none_exist.empty()) continue;
        auto criteria = ParseQueryString(e.if_none_exist);
        if (!criteria.ok()) return WithLocation(criteria.error(), e.index);
        auto m = FindMatches(txn, e.type, *criteria);
        if (!m.ok()) return WithLocation(m.error(), e.index);
        if (m->size() > 1)
          return WithLocation(Error(ErrorCode::kPreconditionFailed,
                                    fmt::format("ifNoneExist matches {} resources", m->size())), e.index);
        if (m->size() == 1) {
          e.assigned_id = (*m)[0];
          if (!e.full_url.empty()) refmap[e.full_url] = e.type + "/" + (*m)[0];
        }
      }
      // Conditional references resolve to exactly one existing resource.
      for (const auto& ref : cond_refs) {
        auto q = ref.find('?');
        std::string type = ref.substr(0, q);
        auto criteria = ParseQueryString(std::string_view(ref).substr(q + 1));
        if (!criteria.ok()) return criteria.error();
        auto m = FindMatches(txn, type, *criteria);
        if (!m.ok()) return m.error();
        if (m->size() != 1)
          return Error(ErrorCode::kPreconditionFailed,
                       fmt::format("Conditional reference '{}' matches {} resources (needs exactly 1)", ref, m->size()));
        refmap[ref] = type + "/" + (*m)[0];
      }
      if (!refmap.empty() && !prepare_outside) {
        for (auto& e : entries) {
          if (!e.has_resource || (e.verb != Verb::kPost && e.verb != Verb::kPut)) continue;
          json::value wrapped(std::move(e.resource));
          RewriteReferences(wrapped, refmap);
          e.resource = std::move(wrapped.get_object());
        }
      }
      // Processing order: DELETE, POST, PUT/PATCH, GET/HEAD.
      static const std::vector<std::vector<Verb>> kOrder = {
          {Verb::kDelete}, {Verb::kPost}, {Verb::kPut, Verb::kPatch}, {Verb::kGet, Verb::kHead}};
      for (const auto& group : kOrder) {
        for (auto& e : entries) {
          if (std::find(group.begin(), group.end(), e.verb) == group.end()) continue;
          Status s = run_entry(txn, e);
          if (!s.ok()) return WithLocation(std::move(s).error(), e.index);
        }
      }
      return Status::Ok();
    }
    // Batch: each entry stands alone; failures are reported per entry.
    for (auto& e : entries) {
      if (failed[e.index]) continue;
      Status s = run_entry(txn, e);
      if (!s.ok()) e.error = std::move(s).error();
    }
    return Status::Ok();
  });
  if (!st.ok()) return std::move(st).error();

  // GETs that are searches run now, against the committed state (for a transaction: after its
  // writes, as the specification orders GETs last).
  for (auto& e : entries) {
    if (!e.sub_request || failed[e.index]) continue;
    std::string_view url = e.url;
    if (url.starts_with(base_ + "/")) url.remove_prefix(base_.size() + 1);
    if (url.starts_with("/")) url.remove_prefix(1);
    Response r = sub_get_(std::string(url));
    e.status = r.status;
    e.get_body = std::move(r.body);
  }

  json::array out_entries;
  out_entries.reserve(entries.size());
  for (const auto& e : entries) out_entries.emplace_back(EntryResponse(e, base_, return_resources_));
  return json::object{{"resourceType", "Bundle"},
                      {"id", NewUuid()},
                      {"type", transaction ? "transaction-response" : "batch-response"},
                      {"entry", std::move(out_entries)}};
}

}  // namespace jiceng::api
