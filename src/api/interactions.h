// api/interactions: the FHIR write and read interactions as operations on a store transaction,
// with no HTTP in sight. The REST handlers run one interaction per store write; the Bundle
// processor runs a whole transaction's entries inside one store write.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/result.h"
#include "store/store.h"

namespace jiceng::api {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// What a write interaction did.
struct WriteResult {
  int status = 200;                // 200 OK, 201 Created, 204 No Content
  store::ResourceVersion version;  // the stored version (json empty for a tombstone)
  bool changed = true;             // false: conditional create matched, delete of a deleted one
};

// Parses a query string ("a=1&b=x%7Cy") into decoded pairs ('+' means space).
Result<QueryParams> ParseQueryString(std::string_view query);

// Ids of current resources of `type` matching conditional criteria: any search the search
// module supports (fhir/search), with ',' as OR and repeated parameters as AND. Result-shaping
// parameters are ignored; an unsupported parameter is an Invalid error naming it, so that a
// conditional write can never match more widely than asked.
Result<std::vector<std::string>> FindMatches(store::IReadTransaction& txn, std::string_view type,
                                             const QueryParams& criteria);

// Parses an If-Match / ETag value (W/"3", "3" or 3) into a version number.
Result<int64_t> ParseETagVersion(std::string_view etag);

// Index rows of a resource for every search parameter of its type (fhir/search extractor),
// and its patient compartment (IndexRows::patient_compartment). The extractor reads a
// json::value: the object is moved into one and back, which is O(1), where copying it cost an
// allocation per node. `resource` is as it was on return. Every write path indexes through here.
store::IndexRows ExtractIndexRows(json::object& resource);

// The id of the Patient whose compartment holds type/id with these index rows: its own id for a
// Patient; otherwise the target of the first parameter, in the R4 Patient CompartmentDefinition's
// order for the type, that references a Patient; empty if none does.
std::string PatientCompartmentOf(std::string_view type, std::string_view id,
                                 const store::IndexRows& rows);
// Every Patient whose compartment holds type/id (the same parameters, in the same order, each
// Patient once): a resource may be in several (an Observation's subject and its performer).
std::vector<std::string> PatientsOf(std::string_view type, std::string_view id,
                                    const store::IndexRows& rows);

// Writes meta.versionId / meta.lastUpdated and id into `resource`.
void StampMeta(json::object& resource, std::string_view id, int64_t version, int64_t now_us);

// A create made ready outside the write transaction: stamped, serialized and indexed, so that
// the single writer only stores it. (Serialization and index extraction were most of the
// writer's time in a callgrind profile of Bundle ingest.)
struct PreparedCreate {
  store::ResourceVersion version;
  store::IndexRows index;
};

class Interactions {
 public:
  // Stamps `resource` as version 1 of `id` at `now_us` and serializes and indexes it.
  static PreparedCreate PrepareCreate(json::object& resource, const std::string& id,
                                      int64_t now_us);
  // Stores a prepared create; an existing resource with that id is a conflict (409).
  static Result<WriteResult> StorePrepared(store::IWriteTransaction& txn, PreparedCreate& prepared);

  // create: `resource` has been validated; `id` is the server-assigned id. If `if_none_exist`
  // (a query string) matches one resource, nothing is written and that resource is returned
  // (changed=false, status 200); several matches → 412.
  static Result<WriteResult> Create(store::IWriteTransaction& txn, json::object resource,
                                    const std::string& id, std::string_view if_none_exist);

  // update (create-on-update when the id is new). `if_match`: expected current version.
  static Result<WriteResult> Update(store::IWriteTransaction& txn, std::string_view type,
                                    std::string_view id, json::object resource,
                                    std::optional<int64_t> if_match);

  // Conditional update: 0 matches → create (with the body's id if it has one, else `new_id`),
  // 1 → update it, several → 412.
  static Result<WriteResult> ConditionalUpdate(store::IWriteTransaction& txn, std::string_view type,
                                               const QueryParams& criteria, json::object resource,
                                               const std::string& new_id,
                                               std::optional<int64_t> if_match);

  // delete: writes a tombstone version. Never existed → 404; already deleted → 204, unchanged.
  static Result<WriteResult> Delete(store::IWriteTransaction& txn, std::string_view type,
                                    std::string_view id, std::optional<int64_t> if_match);

  // Conditional delete (single mode): 0 matches → 204, 1 → delete, several → 412.
  static Result<WriteResult> ConditionalDelete(store::IWriteTransaction& txn, std::string_view type,
                                               const QueryParams& criteria);

  // The current, non-deleted version or NotFound / Gone.
  static Result<store::ResourceVersion> Read(store::IReadTransaction& txn, std::string_view type,
                                             std::string_view id);
  // The same outside a transaction (IStore::ReadCurrent): for a request that reads nothing else.
  static Result<store::ResourceVersion> Read(store::IStore& store, std::string_view type,
                                             std::string_view id);
};

}  // namespace jiceng::api
