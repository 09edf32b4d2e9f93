// api/stored_value_sets: the ValueSet resources this server holds, as the source of token
// :in / :not-in (search::ValueSetSource): the current ValueSet with the url (and version, when
// given); of several, the most recently updated.
#pragma once

#include "fhir/search/value_set.h"
#include "store/store.h"

namespace jiceng::api {

// Looks up in `txn`, which must outlive the source.
search::ValueSetSource StoredValueSets(store::IReadTransaction& txn);
// Opens a read transaction of `store` per lookup (for a parse that runs before the search's own).
search::ValueSetSource StoredValueSets(store::IStore& store);

}  // namespace jiceng::api
