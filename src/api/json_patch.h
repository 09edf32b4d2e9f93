// api/json_patch: JSON Patch (RFC 6902) applied to a resource for the FHIR patch interaction.
#pragma once

#include "base/json.h"
#include "base/result.h"

namespace jiceng::api {

// Applies `patch` (a JSON array of operations) to `doc` in place. On error `doc` is unchanged:
// a malformed patch is Invalid (400); a failed `test` or a path that does not exist is
// Unprocessable (422). The error's expression names the failing operation, e.g. "patch[2].path".
Status ApplyJsonPatch(json::value& doc, const json::value& patch);

}  // namespace jiceng::api
