// api/fhir_api: the FHIR R4 REST surface under /fhir — routing, content negotiation, the
// instance/type/system interactions, batch/transaction Bundles and the CapabilityStatement.
// Routes live in one table whose entries also generate the CapabilityStatement, so the
// statement says exactly what exists.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "api/bulk_export.h"
#include "api/message.h"
#include "api/search_results.h"
#include "base/error.h"
#include "base/json.h"
#include "store/store.h"

namespace jiceng::api {

// Structural validation of one resource: issues with severity error reject it.
using ValidateFn = std::function<std::vector<Issue>(const json::object& resource, bool strict)>;
// Whether a name is a known FHIR resource type.
using IsResourceTypeFn = std::function<bool(std::string_view)>;

struct FhirApiOptions {
  bool strict_validation = true;
  std::string base_url;  // e.g. "https://jiceng.example/fhir"; derived from Host when empty
  int64_t default_page_size = 50;
  int64_t max_page_size = 1000;
  // A type search counts at most this many matches for Bundle.total unless the client asks
  // _total=accurate (search::ParseOptions::total_limit; 0: always count all). Counting is a
  // second scan of every match: on a broad search over millions of rows it costs seconds, and
  // the page itself does not need it. (Medplum and HAPI likewise leave totals out by default.)
  int64_t search_total_limit = 1000;
  // A search that runs longer is stopped with a 503 OperationOutcome of type too-costly
  // (store::SearchQuery::timeout_ms; 0: no bound). 30 s: within the 60 s that nginx
  // (proxy_read_timeout) and common HTTP clients wait, so the client gets the outcome rather
  // than a gateway timeout, while a searching thread and connection are freed.
  int64_t search_timeout_ms = 30000;
  // The ids of a search's matches kept after its first page, so that its paging links stay on
  // the same resources (api/search_results.h; max_ids 0: off, pages re-run the search).
  SearchResultsOptions search_results;
  int64_t max_include_count = 1000;         // resources _include/_revinclude add to one page
  int max_include_iterations = 8;           // rounds of :iterate after the first
  ValidateFn validate;                      // required
  IsResourceTypeFn is_resource_type;        // required
  std::vector<std::string> resource_types;  // for the CapabilityStatement
  std::string software_version = "0.1.0";
  // $export (api/bulk_export.h): where jobs keep their state and NDJSON files (empty:
  // jiceng-export-<pid> in the system's temporary directory; `jiceng serve` sets one beside the
  // database), the most resources per file (10,000: a file of ~10–30 MB, which the server reads
  // whole to send), and how long a finished job's files stay (BulkExportsOptions::retention).
  std::string export_dir;
  int64_t export_file_resources = 10000;
  std::chrono::seconds export_retention{7 * 24 * 3600};
};

// The directory $export jobs write into, for FhirApiOptions::export_dir.
std::string ExportDir(const std::string& configured);

class FhirApi {
 public:
  FhirApi(store::IStore& store, FhirApiOptions options);

  // Handles a request whose path starts with /fhir. Never throws.
  Response Handle(Request& request);

  json::object CapabilityStatement(const std::string& base_url) const;

  // Takes over the $export jobs that a process now gone left running (BulkExports).
  void TakeOverExportJobs() { exports_->TakeOverOrphans(); }

  struct Context;
  using RouteFn = Response (FhirApi::*)(Context&);
  struct Route {
    const char* method;
    // Segments after /fhir; {type} {id} {vid} are variables, and {rtype} is the resource type
    // (or "*") searched within the compartment {type}/{id}.
    const char* pattern;
    // FHIR interaction code for the CapabilityStatement; for level "operation" the operation's
    // name, for level "compartment" the search within a compartment.
    const char* interaction;
    // "instance", "type", "system", "compartment", "operation" (on a type or instance),
    // "system-operation", or "internal" (a URL an operation hands out, e.g. a poll status).
    const char* level;
    RouteFn fn;
  };
  static const std::vector<Route>& Routes();

 private:
  Response Dispatch(Request& request);

  Response Metadata(Context& c);
  Response Read(Context& c);
  Response VRead(Context& c);
  Response Create(Context& c);
  Response UpdateInstance(Context& c);
  Response UpdateConditional(Context& c);
  Response Patch(Context& c);
  Response PatchConditional(Context& c);
  Response DeleteInstance(Context& c);
  Response DeleteConditional(Context& c);
  Response HistoryInstance(Context& c);
  Response HistoryType(Context& c);
  Response HistorySystem(Context& c);
  Response SearchType(Context& c);
  Response SearchTypePost(Context& c);
  Response SearchCompartment(Context& c);
  Response SearchCompartmentPost(Context& c);
  Response Everything(Context& c);
  Response BatchOrTransaction(Context& c);
  // Bulk Data export (fhir_api_export.cpp).
  Response ExportKickOff(Context& c);
  Response ExportKickOffPatients(Context& c);  // [base]/Patient/$export
  Response ExportKickOffGroup(Context& c);     // [base]/Group/[id]/$export
  // The kick-off's parameters into `request`, then the job: `allowed` lists the types this
  // level may export (also the default for a kick-off without _type).
  Response StartExport(Context& c, BulkExportRequest request,
                       const std::vector<std::string>& allowed);
  Response ExportStatus(Context& c);
  Response ExportDelete(Context& c);
  Response ExportFile(Context& c);

  Response History(Context& c, const std::string& type, const std::string& id);
  Response Search(Context& c, const std::vector<std::pair<std::string, std::string>>& params);
  Response SearchCompartmentAll(Context& c,
                                const std::vector<std::pair<std::string, std::string>>& params);
  Response PatchImpl(Context& c, const std::string& id,
                     const std::vector<std::pair<std::string, std::string>>* criteria);

  store::IStore& store_;
  FhirApiOptions options_;
  SearchResultCache search_results_;
  std::unique_ptr<BulkExports> exports_;
  friend class BundleProcessor;
};

}  // namespace jiceng::api
