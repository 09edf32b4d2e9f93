// api/search_include: _include and _revinclude, answered in the API layer on top of the store
// port. Forward includes evaluate the reference parameter's FHIRPath expression on each source
// resource and read the targets; reverse includes are ordinary searches with a reference clause
// whose values are the sources' ids. `:iterate` (and R4's older name `:recurse`) repeats on the
// resources just added until none is new, within a round and a resource cap.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/result.h"
#include "store/store.h"

namespace jiceng::api {

struct IncludeSpec {
  bool reverse = false;     // _revinclude
  bool iterate = false;     // :iterate / :recurse
  std::string source_type;  // resource type holding the reference; "*" only for _include=*
  std::string param;        // reference search parameter of source_type; "*": all of them
  std::string target_type;  // restricts the referenced type; empty: any
};

// Whether a query parameter name is _include or _revinclude (with or without a modifier).
bool IsIncludeParam(std::string_view name);

// Parses `_include[:iterate|:recurse]=Type:param[:Target]`, `Type:*[:Target]`, `*`, and the same
// for _revinclude (without the bare `*`). Unknown types or parameters, parameters that are not
// references, and targets the parameter cannot reference are kInvalid errors naming the value.
Result<IncludeSpec> ParseIncludeSpec(std::string_view name, std::string_view value);

// The reference search parameters of a type that the index answers ("subject", "performer"…).
std::vector<std::string> ReferenceParams(std::string_view type);

// A resource's local references through reference parameter `param` of its type ("*": through
// all of them), as (type, id) in document order without duplicates, restricted to `target_type`
// when not empty. A bare id takes the parameter's only target type; absolute URLs count only
// when they start with `base` + "/"; contained ("#x") and canonical references to other servers
// never resolve here.
std::vector<std::pair<std::string, std::string>> ReferenceTargets(const json::value& resource,
                                                                  std::string_view param,
                                                                  std::string_view target_type,
                                                                  std::string_view base);

struct IncludeOptions {
  std::string base;                        // this server's base URL, without trailing slash
  std::optional<int64_t> at_or_before_us;  // the search's snapshot
  int64_t max_resources = 1000;            // included resources per response
  int max_rounds = 8;                      // rounds of :iterate after the first
  // Only targets of accepted types are included (forward includes); null: every type.
  std::function<bool(std::string_view type)> accept;
};

struct IncludeResult {
  std::vector<store::ResourceVersion> resources;  // in discovery order, none of the matches
  bool truncated = false;                         // max_resources stopped it
  bool rounds_exhausted = false;  // :iterate still found new resources after max_rounds
};

// The resources `specs` add to `matches`: current versions within the snapshot, each once, never
// one of the matches.
Result<IncludeResult> ResolveIncludes(store::IReadTransaction& txn,
                                      const std::vector<IncludeSpec>& specs,
                                      const std::vector<store::ResourceVersion>& matches,
                                      const IncludeOptions& options);

}  // namespace jiceng::api
