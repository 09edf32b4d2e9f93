#include "api/search_include.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "fhir/definitions.h"
#include "fhir/fhirpath/definitions_model.h"
#include "fhir/fhirpath/fhirpath.h"
#include "fhir/search/extractor.h"

namespace jiceng::api {
namespace {

// Values per reverse-include query and ids per read-by-id query: well under SQLite's bound
// variables limit, and small enough to keep each statement quick.
constexpr size_t kChunk = 200;
// Rows fetched per reverse-include query page.
constexpr int64_t kRevPage = 500;
// Upper bound of IncludeOptions::max_resources, whatever the configuration says.
constexpr int64_t kMaxIncluded = 100000;

const fhir::SearchParamDef* ReferenceParam(std::string_view type, std::string_view code) {
  for (const fhir::SearchParamDef* p : search::IndexedParams(type)) {
    if (p->code == code && p->type == "reference") return p;
  }
  return nullptr;
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Compiled reference-parameter expressions, per (type, code), built on first use.
class ExpressionCache {
 public:
  static ExpressionCache& Get() {
    static ExpressionCache cache;
    return cache;
  }

  // Null when the expression does not compile (the index has nothing for it either).
  std::shared_ptr<const fhirpath::Expression> For(const fhir::SearchParamDef& def) {
    {
      std::shared_lock lock(mu_);
      auto it = by_url_.find(def.url);
      if (it != by_url_.end()) return it->second;
    }
    std::shared_ptr<const fhirpath::Expression> expr;
    if (auto compiled = fhirpath::Compile(def.expression); compiled.ok())
      expr = std::make_shared<const fhirpath::Expression>(std::move(*compiled));
    std::unique_lock lock(mu_);
    return by_url_.emplace(def.url, std::move(expr)).first->second;
  }

 private:
  std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const fhirpath::Expression>> by_url_;
};

std::string Key(std::string_view type, std::string_view id) {
  std::string k;
  k.reserve(type.size() + id.size() + 1);
  k.append(type).append("/").append(id);
  return k;
}

store::SearchClause IdClause(const std::vector<std::string>& ids, size_t begin, size_t end) {
  store::SearchClause c;
  c.param = "_id";
  c.kind = store::SearchKind::kId;
  for (size_t i = begin; i < end; ++i) {
    store::SearchValue v;
    v.code = ids[i];
    c.any_of.push_back(std::move(v));
  }
  return c;
}

class Resolver {
 public:
  Resolver(store::IReadTransaction& txn, const IncludeOptions& options,
           const std::vector<store::ResourceVersion>& matches, IncludeResult& out)
      : txn_(txn), options_(options), out_(out) {
    for (const auto& m : matches) seen_.insert(Key(m.type, m.id));
  }

  bool full() const { return out_.truncated; }

  // Adds `v` unless seen; false once the cap is reached.
  bool Add(store::ResourceVersion v) {
    std::string key = Key(v.type, v.id);
    if (seen_.count(key)) return true;
    if (static_cast<int64_t>(out_.resources.size()) >= options_.max_resources) {
      out_.truncated = true;
      return false;
    }
    seen_.insert(std::move(key));
    out_.resources.push_back(std::move(v));
    return true;
  }

  Status Forward(const IncludeSpec& spec, const std::vector<const store::ResourceVersion*>& from) {
    std::vector<std::pair<std::string, std::string>> targets;
    std::unordered_set<std::string> wanted;
    for (const store::ResourceVersion* r : from) {
      if (spec.source_type != "*" && r->type != spec.source_type) continue;
      auto doc = ParseJson(r->json);
      if (!doc.ok()) continue;  // stored JSON always parses; nothing to include otherwise
      for (auto& t : ReferenceTargets(*doc, spec.param, spec.target_type, options_.base)) {
        if (options_.accept && !options_.accept(t.first)) continue;
        std::string key = Key(t.first, t.second);
        if (seen_.count(key) || !wanted.insert(std::move(key)).second) continue;
        targets.push_back(std::move(t));
      }
    }
    if (targets.empty()) return Status::Ok();
    std::map<std::string, std::vector<std::string>> by_type;
    for (const auto& [type, id] : targets) by_type[type].push_back(id);
    std::unordered_map<std::string, store::ResourceVersion> found;
    for (const auto& [type, ids] : by_type) {
      for (size_t i = 0; i < ids.size(); i += kChunk) {
        store::SearchQuery q;
        q.type = type;
        q.all_of.push_back(IdClause(ids, i, std::min(ids.size(), i + kChunk)));
        q.at_or_before_us = options_.at_or_before_us;
        q.count = static_cast<int64_t>(kChunk);
        q.with_total = false;
        JC_ASSIGN_OR_RETURN(store::SearchPage page, txn_.Search(q));
        for (auto& v : page.entries) {
          std::string key = Key(v.type, v.id);
          found.emplace(std::move(key), std::move(v));
        }
      }
    }
    for (const auto& [type, id] : targets) {
      auto it = found.find(Key(type, id));
      if (it == found.end()) continue;  // missing or deleted: nothing to include
      if (!Add(std::move(it->second))) break;
    }
    return Status::Ok();
  }

  Status Reverse(const IncludeSpec& spec, const std::vector<const store::ResourceVersion*>& from) {
    std::vector<std::string> params;
    if (spec.param == "*")
      params = ReferenceParams(spec.source_type);
    else
      params.push_back(spec.param);
    for (const std::string& code : params) {
      const fhir::SearchParamDef* def = ReferenceParam(spec.source_type, code);
      if (!def) continue;
      std::vector<store::SearchValue> values;
      for (const store::ResourceVersion* r : from) {
        if (!spec.target_type.empty() && r->type != spec.target_type) continue;
        if (!def->target.empty() && !Contains(def->target, r->type)) continue;
        store::SearchValue v;
        v.type = r->type;
        v.code = r->id;
        values.push_back(std::move(v));
      }
      for (size_t i = 0; i < values.size() && !full(); i += kChunk) {
        store::SearchQuery q;
        q.type = spec.source_type;
        store::SearchClause c;
        c.param = code;
        c.kind = store::SearchKind::kReference;
        c.any_of.assign(
            values.begin() + static_cast<std::ptrdiff_t>(i),
            values.begin() + static_cast<std::ptrdiff_t>(std::min(values.size(), i + kChunk)));
        q.all_of.push_back(std::move(c));
        q.at_or_before_us = options_.at_or_before_us;
        q.count = kRevPage;
        q.with_total = false;
        for (;;) {
          JC_ASSIGN_OR_RETURN(store::SearchPage page, txn_.Search(q));
          const bool more = static_cast<int64_t>(page.entries.size()) == q.count;
          for (auto& v : page.entries) {
            if (!Add(std::move(v))) return Status::Ok();
          }
          if (!more) break;
          q.offset += q.count;
        }
      }
      if (full()) break;
    }
    return Status::Ok();
  }

 private:
  store::IReadTransaction& txn_;
  const IncludeOptions& options_;
  IncludeResult& out_;
  std::unordered_set<std::string> seen_;
};

}  // namespace

bool IsIncludeParam(std::string_view name) {
  auto base = name.substr(0, name.find(':'));
  return base == "_include" || base == "_revinclude";
}

std::vector<std::string> ReferenceParams(std::string_view type) {
  std::vector<std::string> out;
  for (const fhir::SearchParamDef* p : search::IndexedParams(type)) {
    if (p->type == "reference") out.push_back(p->code);
  }
  return out;
}

Result<IncludeSpec> ParseIncludeSpec(std::string_view name, std::string_view value) {
  IncludeSpec spec;
  std::string_view base = name.substr(0, name.find(':'));
  spec.reverse = base == "_revinclude";
  if (!spec.reverse && base != "_include")
    return Invalid(fmt::format("'{}' is not _include or _revinclude", name), std::string(name));
  if (base.size() < name.size()) {
    std::string_view modifier = name.substr(base.size() + 1);
    if (modifier != "iterate" && modifier != "recurse")
      return Invalid(fmt::format("Unknown modifier ':{}' on {} (use :iterate)", modifier, base),
                     std::string(name));
    spec.iterate = true;
  }
  const auto& defs = fhir::Definitions::Get();
  if (value == "*") {
    if (spec.reverse)
      return Invalid("_revinclude=* is not supported: name the type and parameter (Type:param)",
                     std::string(name));
    spec.source_type = "*";
    spec.param = "*";
    return spec;
  }
  std::vector<std::string_view> parts;
  for (size_t pos = 0;;) {
    size_t colon = value.find(':', pos);
    parts.push_back(value.substr(pos, colon == std::string_view::npos ? colon : colon - pos));
    if (colon == std::string_view::npos) break;
    pos = colon + 1;
  }
  if (parts.size() < 2 || parts.size() > 3)
    return Invalid(
        fmt::format("{}='{}' must be Type:parameter or Type:parameter:TargetType", name, value),
        std::string(name));
  spec.source_type = std::string(parts[0]);
  spec.param = std::string(parts[1]);
  if (parts.size() == 3) spec.target_type = std::string(parts[2]);
  if (!defs.IsResourceType(spec.source_type))
    return Invalid(fmt::format("{}='{}': '{}' is not a resource type", name, value, parts[0]),
                   std::string(name));
  if (!spec.target_type.empty() && !defs.IsResourceType(spec.target_type))
    return Invalid(fmt::format("{}='{}': '{}' is not a resource type", name, value, parts[2]),
                   std::string(name));
  if (spec.param == "*") return spec;
  const fhir::SearchParamDef* def = ReferenceParam(spec.source_type, spec.param);
  if (!def) {
    return Invalid(fmt::format("{}='{}': {} has no reference search parameter '{}'", name, value,
                               spec.source_type, spec.param),
                   std::string(name));
  }
  if (!spec.target_type.empty() && !def->target.empty() && !Contains(def->target, spec.target_type))
    return Invalid(fmt::format("{}='{}': {}:{} cannot reference a {}", name, value,
                               spec.source_type, spec.param, spec.target_type),
                   std::string(name));
  return spec;
}

std::vector<std::pair<std::string, std::string>> ReferenceTargets(const json::value& resource,
                                                                  std::string_view param,
                                                                  std::string_view target_type,
                                                                  std::string_view base) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!resource.is_object()) return out;
  auto type = FindString(resource.get_object(), "resourceType");
  if (!type) return out;
  std::vector<const fhir::SearchParamDef*> defs;
  for (const fhir::SearchParamDef* p : search::IndexedParams(*type)) {
    if (p->type == "reference" && (param == "*" || p->code == param)) defs.push_back(p);
  }
  static const fhirpath::EvalOptions kOptions = [] {
    fhirpath::EvalOptions o;
    o.model = &fhirpath::DefinitionsModel();
    return o;
  }();
  std::unordered_set<std::string> seen;
  for (const fhir::SearchParamDef* def : defs) {
    auto expr = ExpressionCache::Get().For(*def);
    if (!expr) continue;
    auto items = fhirpath::Evaluate(*expr, resource, kOptions);
    if (!items.ok()) continue;  // odd data: the index has nothing for it either
    for (const fhirpath::Item& item : *items) {
      std::optional<std::string_view> text;
      if (item.is_node() && item.json()) {
        if (item.json()->is_string())
          text = std::string_view(item.json()->get_string());
        else if (item.json()->is_object())
          text = FindString(item.json()->get_object(), "reference");
      } else if (!item.is_node() && item.kind() == fhirpath::Item::Kind::kString) {
        text = std::string_view(item.string());
      }
      if (!text) continue;
      store::ReferenceIndexRow row;
      if (!search::ParseReference(*text, row) || row.target_id.empty()) continue;
      if (!row.url.empty()) {
        // Absolute: only a reference to this server names a resource that can be read here.
        if (base.empty() || row.url.size() <= base.size() + 1 ||
            row.url.compare(0, base.size(), base) != 0 || row.url[base.size()] != '/')
          continue;
      }
      std::string t = row.target_type;
      if (t.empty()) {
        // A bare id: the parameter's target type, when it has exactly one (or the asked one).
        if (!target_type.empty() && (def->target.empty() || Contains(def->target, target_type))) {
          t = std::string(target_type);
        } else if (def->target.size() == 1) {
          t = def->target.front();
        } else {
          continue;
        }
      }
      if (!target_type.empty() && t != target_type) continue;
      if (!seen.insert(Key(t, row.target_id)).second) continue;
      out.emplace_back(std::move(t), std::move(row.target_id));
    }
  }
  return out;
}

Result<IncludeResult> ResolveIncludes(store::IReadTransaction& txn,
                                      const std::vector<IncludeSpec>& specs,
                                      const std::vector<store::ResourceVersion>& matches,
                                      const IncludeOptions& options) {
  IncludeResult out;
  if (specs.empty() || matches.empty()) return out;
  IncludeOptions opts = options;
  opts.max_resources = std::clamp<int64_t>(opts.max_resources, 0, kMaxIncluded);
  // The frontier of a round points into out.resources while the round adds to it: with room
  // for every resource the cap allows, it never reallocates.
  out.resources.reserve(static_cast<size_t>(opts.max_resources));
  Resolver resolver(txn, opts, matches, out);
  std::vector<const store::ResourceVersion*> frontier;
  for (const auto& m : matches) frontier.push_back(&m);
  for (int round = 0; !frontier.empty() && !resolver.full(); ++round) {
    // The first round applies every spec to the matches; later rounds apply the :iterate ones
    // to what the previous round added.
    std::vector<const IncludeSpec*> active;
    for (const IncludeSpec& s : specs) {
      if (round == 0 || s.iterate) active.push_back(&s);
    }
    if (active.empty()) break;
    if (round > opts.max_rounds) {
      out.rounds_exhausted = true;
      break;
    }
    const size_t before = out.resources.size();
    for (const IncludeSpec* s : active) {
      JC_RETURN_IF_ERROR(s->reverse ? resolver.Reverse(*s, frontier)
                                    : resolver.Forward(*s, frontier));
      if (resolver.full()) break;
    }
    // Pointers into out.resources stay valid: it has reserved room for the cap (above).
    frontier.clear();
    for (size_t i = before; i < out.resources.size(); ++i) frontier.push_back(&out.resources[i]);
  }
  return out;
}

}  // namespace jiceng::api
