#include "store/sqlite/wal_coalescing_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <new>
#include <string>

namespace jiceng::store::sqlite {
namespace {

// Buffered bytes past which a -wal file's buffer is written out even without a break in the
// run: large transactions (Bundles, imports) then write in 1 MiB pieces.
constexpr size_t kFlushBytes = size_t{1} << 20;
constexpr const char* kVfsName = "jiceng-wal-coalescing";
// Largest single write handed to the underlying VFS.
constexpr size_t kPieceBytes = size_t{64} << 10;

sqlite3_vfs* Root(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }

// Our sqlite3_file. SQLite allocates szOsFile bytes for it: this header, then the underlying
// VFS's own file object at `real`.
struct File {
  sqlite3_file base;    // base.pMethods: kMethods
  sqlite3_file* real;   // the underlying VFS's file, right after this header
  std::string* buffer;  // -wal files only: pending bytes, to be written at `buffer_offset`
  sqlite3_int64 buffer_offset;
  int deferred_rc;  // a failed write-out that no caller could be told of yet (barrier)
};

constexpr size_t kHeaderBytes = (sizeof(File) + 15) & ~size_t{15};

// The -wal file with pending bytes on this thread, if any: the database file's barrier writes
// it out. A connection is used by one thread at a time and a write transaction ends (commit:
// sync and barrier; rollback: the next write breaks the run) on the thread that began it.
thread_local File* pending_on_thread = nullptr;

File* AsFile(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
const sqlite3_io_methods* RealMethods(File* f) { return f->real->pMethods; }

int WriteOut(File* f) {
  if (pending_on_thread == f) pending_on_thread = nullptr;
  if (f->buffer == nullptr || f->buffer->empty()) return SQLITE_OK;
  // In pieces: the unix VFS masks a single write's length to 17 bits (os_unix.c seekAndWrite).
  const std::string& buffer = *f->buffer;
  int rc = SQLITE_OK;
  for (size_t done = 0; done < buffer.size() && rc == SQLITE_OK; done += kPieceBytes) {
    const size_t n = std::min(kPieceBytes, buffer.size() - done);
    rc = RealMethods(f)->xWrite(f->real, buffer.data() + done, static_cast<int>(n),
                                f->buffer_offset + static_cast<sqlite3_int64>(done));
  }
  f->buffer->clear();
  return rc;
}

// Writes out pending bytes, then reports a write-out that failed earlier where no one could
// hear of it.
int Settle(File* f) {
  int rc = WriteOut(f);
  if (rc == SQLITE_OK && f->deferred_rc != SQLITE_OK) {
    rc = f->deferred_rc;
    f->deferred_rc = SQLITE_OK;
  }
  return rc;
}

int Close(sqlite3_file* file) {
  File* f = AsFile(file);
  const int settle_rc = Settle(f);
  const int rc = RealMethods(f)->xClose(f->real);
  delete f->buffer;
  f->buffer = nullptr;
  return settle_rc != SQLITE_OK ? settle_rc : rc;
}

int Read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  File* f = AsFile(file);
  if (int rc = Settle(f); rc != SQLITE_OK) return rc;
  return RealMethods(f)->xRead(f->real, out, amount, offset);
}

int Write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  File* f = AsFile(file);
  if (f->buffer == nullptr) return RealMethods(f)->xWrite(f->real, data, amount, offset);
  std::string& buffer = *f->buffer;
  if (!buffer.empty() && offset != f->buffer_offset + static_cast<sqlite3_int64>(buffer.size())) {
    if (int rc = WriteOut(f); rc != SQLITE_OK) return rc;
  }
  if (buffer.empty()) f->buffer_offset = offset;
  buffer.append(static_cast<const char*>(data), static_cast<size_t>(amount));
  if (buffer.size() >= kFlushBytes) return WriteOut(f);
  pending_on_thread = f;
  return SQLITE_OK;
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  File* f = AsFile(file);
  if (int rc = Settle(f); rc != SQLITE_OK) return rc;
  return RealMethods(f)->xTruncate(f->real, size);
}

int Sync(sqlite3_file* file, int flags) {
  File* f = AsFile(file);
  if (int rc = Settle(f); rc != SQLITE_OK) return rc;
  return RealMethods(f)->xSync(f->real, flags);
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  File* f = AsFile(file);
  if (int rc = Settle(f); rc != SQLITE_OK) return rc;
  return RealMethods(f)->xFileSize(f->real, size);
}

int Lock(sqlite3_file* file, int level) {
  File* f = AsFile(file);
  if (int rc = Settle(f); rc != SQLITE_OK) return rc;
  return RealMethods(f)->xLock(f->real, level);
}

int Unlock(sqlite3_file* file, int level) {
  File* f = AsFile(file);
  if (int rc = Settle(f); rc != SQLITE_OK) return rc;
  return RealMethods(f)->xUnlock(f->real, level);
}

int CheckReservedLock(sqlite3_file* file, int* out) {
  File* f = AsFile(file);
  return RealMethods(f)->xCheckReservedLock(f->real, out);
}

int FileControl(sqlite3_file* file, int op, void* arg) {
  File* f = AsFile(file);
  if (int rc = Settle(f); rc != SQLITE_OK) return rc;
  const int rc = RealMethods(f)->xFileControl(f->real, op, arg);
  if (op == SQLITE_FCNTL_VFSNAME && rc == SQLITE_OK) {
    // Shims name themselves in front of what they wrap (as SQLite's own shims do).
    char** name = static_cast<char**>(arg);
    *name = sqlite3_mprintf("%s/%z", kVfsName, *name);
  }
  return rc;
}

int SectorSize(sqlite3_file* file) {
  File* f = AsFile(file);
  return RealMethods(f)->xSectorSize(f->real);
}

int DeviceCharacteristics(sqlite3_file* file) {
  File* f = AsFile(file);
  return RealMethods(f)->xDeviceCharacteristics(f->real);
}

int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  File* f = AsFile(file);
  if (RealMethods(f)->iVersion < 2) return SQLITE_IOERR;
  return RealMethods(f)->xShmMap(f->real, region, size, extend, out);
}

int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  File* f = AsFile(file);
  if (RealMethods(f)->iVersion < 2) return SQLITE_IOERR;
  return RealMethods(f)->xShmLock(f->real, offset, n, flags);
}

// SQLite issues this barrier on the database file between writing new frames and publishing
// them in the wal-index header: the frames must be in the -wal file before any reader may look.
void ShmBarrier(sqlite3_file* file) {
  if (File* pending = pending_on_thread; pending != nullptr) {
    if (int rc = WriteOut(pending); rc != SQLITE_OK && pending->deferred_rc == SQLITE_OK) {
      pending->deferred_rc = rc;
    }
  }
  File* f = AsFile(file);
  if (RealMethods(f)->iVersion >= 2) RealMethods(f)->xShmBarrier(f->real);
}

int ShmUnmap(sqlite3_file* file, int delete_flag) {
  File* f = AsFile(file);
  if (RealMethods(f)->iVersion < 2) return SQLITE_OK;
  return RealMethods(f)->xShmUnmap(f->real, delete_flag);
}

int Fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  File* f = AsFile(file);
  if (RealMethods(f)->iVersion < 3) {
    *out = nullptr;
    return SQLITE_OK;
  }
  if (int rc = Settle(f); rc != SQLITE_OK) return rc;
  return RealMethods(f)->xFetch(f->real, offset, amount, out);
}

int Unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  File* f = AsFile(file);
  if (RealMethods(f)->iVersion < 3) return SQLITE_OK;
  return RealMethods(f)->xUnfetch(f->real, offset, page);
}

const sqlite3_io_methods kMethods = {
    3,
    Close,
    Read,
    Write,
    Truncate,
    Sync,
    FileSize,
    Lock,
    Unlock,
    CheckReservedLock,
    FileControl,
    SectorSize,
    DeviceCharacteristics,
    ShmMap,
    ShmLock,
    ShmBarrier,
    ShmUnmap,
    Fetch,
    Unfetch,
};

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  File* f = AsFile(file);
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kHeaderBytes);
  f->buffer = nullptr;
  f->buffer_offset = 0;
  f->deferred_rc = SQLITE_OK;
  const int rc = Root(vfs)->xOpen(Root(vfs), name, f->real, flags, out_flags);
  if (rc != SQLITE_OK || f->real->pMethods == nullptr) {
    // SQLite calls xClose only when pMethods is set; the underlying open cleaned up after itself
    // unless it left its own methods in place.
    if (f->real->pMethods != nullptr) f->real->pMethods->xClose(f->real);
    return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
  }
  if ((flags & SQLITE_OPEN_WAL) != 0) {
    f->buffer = new (std::nothrow) std::string();
    if (f->buffer != nullptr) f->buffer->reserve(kFlushBytes + 8192);
  }
  f->base.pMethods = &kMethods;
  return SQLITE_OK;
}

// The remaining VFS methods pass the underlying VFS itself (its implementations read their own
// settings from it).
int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return Root(vfs)->xDelete(Root(vfs), name, sync_dir);
}
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Root(vfs)->xAccess(Root(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return Root(vfs)->xFullPathname(Root(vfs), name, n, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) { return Root(vfs)->xDlOpen(Root(vfs), name); }
void DlError(sqlite3_vfs* vfs, int n, char* out) { Root(vfs)->xDlError(Root(vfs), n, out); }
void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return Root(vfs)->xDlSym(Root(vfs), handle, symbol);
}
void DlClose(sqlite3_vfs* vfs, void* handle) { Root(vfs)->xDlClose(Root(vfs), handle); }
int Randomness(sqlite3_vfs* vfs, int n, char* out) {
  return Root(vfs)->xRandomness(Root(vfs), n, out);
}
int Sleep(sqlite3_vfs* vfs, int micros) { return Root(vfs)->xSleep(Root(vfs), micros); }
int CurrentTime(sqlite3_vfs* vfs, double* out) { return Root(vfs)->xCurrentTime(Root(vfs), out); }
int GetLastError(sqlite3_vfs* vfs, int n, char* out) {
  return Root(vfs)->xGetLastError(Root(vfs), n, out);
}
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return Root(vfs)->xCurrentTimeInt64(Root(vfs), out);
}

sqlite3_vfs vfs_storage;

const char* Register() {
  sqlite3_vfs* root = sqlite3_vfs_find(nullptr);
  // The methods below need version 2 of the underlying VFS (xCurrentTimeInt64); the system
  // call hooks of version 3 are test-only and left out.
  if (root == nullptr || root->iVersion < 2) return nullptr;
  vfs_storage = sqlite3_vfs{};
  vfs_storage.iVersion = 2;
  vfs_storage.szOsFile = static_cast<int>(kHeaderBytes) + root->szOsFile;
  vfs_storage.mxPathname = root->mxPathname;
  vfs_storage.zName = kVfsName;
  vfs_storage.pAppData = root;
  vfs_storage.xOpen = Open;
  vfs_storage.xDelete = Delete;
  vfs_storage.xAccess = Access;
  vfs_storage.xFullPathname = FullPathname;
  vfs_storage.xDlOpen = DlOpen;
  vfs_storage.xDlError = DlError;
  vfs_storage.xDlSym = DlSym;
  vfs_storage.xDlClose = DlClose;
  vfs_storage.xRandomness = Randomness;
  vfs_storage.xSleep = Sleep;
  vfs_storage.xCurrentTime = CurrentTime;
  vfs_storage.xGetLastError = GetLastError;
  vfs_storage.xCurrentTimeInt64 = CurrentTimeInt64;
  if (sqlite3_vfs_register(&vfs_storage, 0) != SQLITE_OK) return nullptr;
  return vfs_storage.zName;
}

}  // namespace

const char* WalCoalescingVfsName() {
  static const char* const name = Register();
  return name;
}

}  // namespace jiceng::store::sqlite
