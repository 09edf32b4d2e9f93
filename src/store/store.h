// store/: the storage port. Domain and API code talk to storage only through these interfaces
// and never know which backend (store/sqlite, store/postgres) runs underneath.
//
// Reads run in read-only transactions (a consistent snapshot). Writes are submitted as units of
// work to IStore::Write, which returns only once the work is durably committed: a backend may
// commit several callers' units in one database transaction (group commit), each inside its own
// savepoint so that one unit's failure rolls back only that unit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace jiceng::store {

// One stored version of a resource.
struct ResourceVersion {
  std::string type;
  std::string id;
  int64_t version = 0;          // 1, 2, 3 … per resource
  int64_t last_updated_us = 0;  // microseconds since the epoch, UTC
  bool deleted = false;         // a delete is stored as a tombstone version
  std::string json;             // the full resource with meta; empty for tombstones
};

// Search index rows of one resource version, written in the same transaction as the version.
// The foundation indexes tokens (identifier) for conditional interactions; the search module
// fills every kind.
struct TokenIndexRow {
  std::string param;   // search parameter code, e.g. "identifier"
  std::string system;  // may be empty
  std::string code;
};
struct IndexRows {
  std::vector<TokenIndexRow> tokens;
};

struct HistoryQuery {
  std::string type;                 // empty: system-level history
  std::string id;                   // empty: type- or system-level history
  std::optional<int64_t> since_us;  // only versions with last_updated >= since
  std::optional<int64_t> at_or_before_us;  // snapshot bound so pages stay stable
  int64_t offset = 0;
  int64_t count = 50;
};

struct HistoryPage {
  std::vector<ResourceVersion> entries;  // newest first
  int64_t total = 0;                     // all matching versions (ignoring offset/count)
};

class IReadTransaction {
 public:
  virtual ~IReadTransaction() = default;

  // The current version of a resource, tombstone included (deleted == true); nullopt if the
  // resource never existed.
  virtual Result<std::optional<ResourceVersion>> ReadCurrent(std::string_view type,
                                                             std::string_view id) = 0;
  virtual Result<std::optional<ResourceVersion>> ReadVersion(std::string_view type,
                                                             std::string_view id,
                                                             int64_t version) = 0;
  virtual Result<HistoryPage> History(const HistoryQuery& query) = 0;

  // Ids of current, non-deleted resources of `type` with a token index row (param, system, code).
  // `system` nullopt matches any system; "" matches a row with no system. At most `limit` ids.
  virtual Result<std::vector<std::string>> FindByToken(std::string_view type,
                                                       std::string_view param,
                                                       std::optional<std::string_view> system,
                                                       std::string_view code, int limit) = 0;
  // Number of current, non-deleted resources of a type (all types when empty).
  virtual Result<int64_t> CountCurrent(std::string_view type) = 0;

  // Current, non-deleted resources of a type ordered by id, for listing without criteria.
  // (Added after the first backends; the default says so rather than guessing.)
  virtual Result<std::vector<ResourceVersion>> ListCurrent(std::string_view type, int64_t offset,
                                                           int64_t count) {
    (void)type, (void)offset, (void)count;
    return Error(ErrorCode::kNotImplemented, "Listing is not implemented by this backend");
  }
};

class IWriteTransaction : public IReadTransaction {
 public:
  // Appends `version` as the newest version of its resource: a history row, the current-row
  // pointer, and `index` replacing the previous version's index rows. The caller has checked
  // that version.version == previous + 1 (it reads the current version in this transaction).
  virtual Status Put(const ResourceVersion& version, const IndexRows& index) = 0;
};

using WriteWork = std::function<Status(IWriteTransaction&)>;

class IStore {
 public:
  virtual ~IStore() = default;

  virtual Result<std::unique_ptr<IReadTransaction>> BeginRead() = 0;

  // Runs `work` in a write transaction and returns once it is durably committed. If `work`
  // returns an error, its changes are rolled back and the error is returned.
  virtual Status Write(const WriteWork& work) = 0;

  // Flushes, stops background threads and closes the database. Further calls fail.
  virtual void Close() = 0;

  // A short name for logs and metrics ("sqlite", "postgres").
  virtual std::string_view Backend() const = 0;
};

}  // namespace jiceng::store
