// api/bundle_processor: batch and transaction Bundles. A transaction runs every entry inside
// one store write (all or nothing) in the order the specification sets (DELETE, POST, PUT/PATCH,
// GET), with urn:uuid and conditional references rewritten to the assigned ids across the whole
// Bundle; a batch runs each entry on its own and reports each entry's outcome.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "api/fhir_api.h"
#include "base/json.h"
#include "base/result.h"

namespace jiceng::api {

class BundleProcessor {
 public:
  // Runs a GET entry that is not a plain read (a search, a compartment search, history,
  // $everything …) as a request of its own: `url` relative to the base ("Patient?name=wang").
  using SubRequest = std::function<Response(const std::string& url)>;

  BundleProcessor(store::IStore& store, const FhirApiOptions& options, std::string base_url,
                  bool return_resources = false, SubRequest sub_get = nullptr);

  // Returns the batch-response / transaction-response Bundle, or the error that failed the
  // whole transaction (its issues name the failing entry, e.g. "Bundle.entry[3].request.url").
  Result<json::object> Process(json::value bundle);

 private:
  store::IStore& store_;
  const FhirApiOptions& options_;
  std::string base_;
  bool return_resources_;
  SubRequest sub_get_;
};

// fullUrl or conditional reference → "Type/id".
using ReferenceMap = std::map<std::string, std::string, std::less<>>;
// Rewrites every "reference" string found in `v` through `map`.
void RewriteReferences(json::value& v, const ReferenceMap& map);

}  // namespace jiceng::api
