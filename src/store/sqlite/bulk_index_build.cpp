#include "store/sqlite/bulk_index_build.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "store/sqlite/connection.h"
#include "store/sqlite/index_keys.h"
#include "store/sqlite/sqlite_index_write.h"

namespace jiceng::store::sqlite {

namespace {

constexpr const char* kMarker = "index_build_pending";

}  // namespace

Result<bool> IndexBuildPending(Connection& c) {
  JC_SQL_STMT(s, c, "SELECT 1 FROM store_state WHERE name = ?1");
  s.BindText(1, kMarker);
  return s.Step();
}

Status SetIndexBuildPending(Connection& c, bool pending) {
  JC_SQL_STMT(s, c,
              pending ? "INSERT OR REPLACE INTO store_state(name, value) VALUES (?1, '1')"
                      : "DELETE FROM store_state WHERE name = ?1");
  s.BindText(1, kMarker);
  return s.Run();
}

Status RequireSearchIndexes(Connection& c) {
  JC_ASSIGN_OR_RETURN(bool pending, IndexBuildPending(c));
  if (!pending) return Status::Ok();
  return Error(ErrorCode::kUnavailable,
               "search is unavailable while a bulk import builds the search indexes; retry when "
               "it has finished");
}

Result<bool> BulkLoadLock::TryAcquire(const std::string& db_path) {
  if (fd_ >= 0) return true;
  path_ = db_path + "-bulkload";
  const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot open " + path_ + ": " + std::strerror(errno));
  int rc = 0;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return false;
    return Internal("cannot lock " + path_ + ": " + std::strerror(err));
  }
  fd_ = fd;
  return true;
}

void BulkLoadLock::Release(bool remove) {
  if (fd_ < 0) return;
  // Unlinked while still held, so that no other process can lock the old file after us.
  if (remove) (void)::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

Status IndexTableBuilder::Start(Connection& c) {
  // What a build interrupted by a crash inserted (its runs were committed one by one).
  JC_RETURN_IF_ERROR(
      c.Exec("DELETE FROM idx_token; DELETE FROM idx_string; DELETE FROM idx_date; "
             "DELETE FROM idx_number; DELETE FROM idx_quantity; DELETE FROM idx_reference; "
             "DELETE FROM idx_uri; DELETE FROM idx_composite;"));
  JC_ASSIGN_OR_RETURN(std::optional<int64_t> n,
                      c.QueryInt("SELECT count(*) FROM resource_index_keys"));
  total_ = n.value_or(0);
  after_rid_ = 0;
  done_ = 0;
  return Status::Ok();
}

Result<bool> IndexTableBuilder::Step(Connection& c) {
  // In rid order, which is load order: an import of NDJSON files by type gives runs that cover
  // few types each, so that when a load needs several runs they overlap little in key order
  // (every key starts with the type).
  PendingIndexRows rows;
  bool more = false;
  {
    JC_SQL_STMT(s, c,
                "SELECT k.rid, r.type, k.keys FROM resource_index_keys k "
                "JOIN resource r ON r.rid = k.rid WHERE k.rid > ?1 AND r.deleted = 0 "
                "ORDER BY k.rid");
    s.BindInt(1, after_rid_);
    for (;;) {
      JC_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      if (static_cast<int64_t>(rows.size()) >= max_rows_) {
        more = true;
        break;
      }
      after_rid_ = s.ColumnInt(0);
      JC_ASSIGN_OR_RETURN(IndexRows decoded, DecodeIndexKeys(s.ColumnBlob(2)));
      rows.Add(s.ColumnText(1), after_rid_, decoded);
      ++done_;
    }
  }
  JC_RETURN_IF_ERROR(rows.Flush(c));
  return !more;
}

}  // namespace jiceng::store::sqlite
