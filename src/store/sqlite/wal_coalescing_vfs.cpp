#include "store/sqlite/wal_coalescing_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <string>

namespace jiceng::store::sqlite {
namespace {

// Buffered bytes past which a -wal file's buffer is written out even without a break in the
// run: large transactions (Bundles, imports) then write in 1 MiB pieces.
constexpr size_t kFlushBytes = size_t{1} << 20;
constexpr const char* kVfsName = "jiceng-wal-coalescing";
// A statement journal larger than this moves from memory to a temp file (as SQLite's own
// memory journal does past its spill size).
std::atomic<size_t> memory_journal_bytes{size_t{64} << 20};
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
  // Statement journals only: the journal itself while it is held in memory (then `real` is not
  // open yet), and what is needed to move it into a real temp file past memory_journal_bytes.
  std::string* memory;
  sqlite3_vfs* root;
  int open_flags;
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
  // A statement journal is deleted on close: what it still holds in the buffer is not needed.
  if ((f->open_flags & SQLITE_OPEN_SUBJOURNAL) != 0 && f->buffer != nullptr) f->buffer->clear();
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

// --- Statement journals in memory ---------------------------------------------------------
// SQLite keeps a statement journal in memory up to 64 KiB and then opens a temp file for it:
// for a unit of work that changes ~40 pages, that was an open, an unlink, ~90 small writes and a
// close per group commit. Here it stays in one flat buffer (SQLite's own unbounded memory
// journal walks a chunk list from its start on every access) up to memory_journal_bytes.

std::string& Memory(sqlite3_file* file) { return *AsFile(file)->memory; }

int MemoryClose(sqlite3_file* file) {
  File* f = AsFile(file);
  delete f->memory;
  f->memory = nullptr;
  return SQLITE_OK;
}

int MemoryRead(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  const std::string& memory = Memory(file);
  const auto want = static_cast<size_t>(amount);
  const auto from = static_cast<size_t>(offset);
  const size_t have = from >= memory.size() ? 0 : std::min(want, memory.size() - from);
  if (have > 0) std::memcpy(out, memory.data() + from, have);
  if (have == want) return SQLITE_OK;
  std::memset(static_cast<char*>(out) + have, 0, want - have);
  return SQLITE_IOERR_SHORT_READ;
}

int MemoryWrite(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset);

int MemoryTruncate(sqlite3_file* file, sqlite3_int64 size) {
  std::string& memory = Memory(file);
  if (static_cast<size_t>(size) < memory.size()) memory.resize(static_cast<size_t>(size));
  return SQLITE_OK;
}
int MemorySync(sqlite3_file*, int) { return SQLITE_OK; }
int MemoryFileSize(sqlite3_file* file, sqlite3_int64* size) {
  *size = static_cast<sqlite3_int64>(Memory(file).size());
  return SQLITE_OK;
}
int MemoryLock(sqlite3_file*, int) { return SQLITE_OK; }
int MemoryCheckReservedLock(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int MemoryFileControl(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
int MemorySectorSize(sqlite3_file*) { return 4096; }
int MemoryDeviceCharacteristics(sqlite3_file*) { return 0; }

const sqlite3_io_methods kMemoryMethods = {
    1,
    MemoryClose,
    MemoryRead,
    MemoryWrite,
    MemoryTruncate,
    MemorySync,
    MemoryFileSize,
    MemoryLock,
    MemoryLock,
    MemoryCheckReservedLock,
    MemoryFileControl,
    MemorySectorSize,
    MemoryDeviceCharacteristics,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

// Moves a statement journal that outgrew memory_journal_bytes into a temp file of the underlying
// VFS, written through the coalescing buffer from then on.
int SpillToFile(File* f) {
  int rc = f->root->xOpen(f->root, nullptr, f->real, f->open_flags, nullptr);
  if (rc != SQLITE_OK || f->real->pMethods == nullptr) {
    if (f->real->pMethods != nullptr) f->real->pMethods->xClose(f->real);
    return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
  }
  f->buffer = new (std::nothrow) std::string();
  if (f->buffer == nullptr) {
    f->real->pMethods->xClose(f->real);
    return SQLITE_NOMEM;
  }
  const std::string& memory = *f->memory;
  for (size_t done = 0; done < memory.size() && rc == SQLITE_OK; done += kPieceBytes) {
    const size_t n = std::min(kPieceBytes, memory.size() - done);
    rc = f->real->pMethods->xWrite(f->real, memory.data() + done, static_cast<int>(n),
                                   static_cast<sqlite3_int64>(done));
  }
  if (rc != SQLITE_OK) {
    f->real->pMethods->xClose(f->real);
    delete f->buffer;
    f->buffer = nullptr;
    return rc;
  }
  delete f->memory;
  f->memory = nullptr;
  f->base.pMethods = &kMethods;
  return SQLITE_OK;
}

int MemoryWrite(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  File* f = AsFile(file);
  std::string& memory = *f->memory;
  const auto end = static_cast<size_t>(offset) + static_cast<size_t>(amount);
  if (end > memory_journal_bytes.load(std::memory_order_relaxed)) {
    if (int rc = SpillToFile(f); rc != SQLITE_OK) return rc;
    return Write(file, data, amount, offset);
  }
  if (end > memory.size()) memory.resize(end);
  std::memcpy(memory.data() + offset, data, static_cast<size_t>(amount));
  return SQLITE_OK;
}

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  File* f = AsFile(file);
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kHeaderBytes);
  f->buffer = nullptr;
  f->buffer_offset = 0;
  f->deferred_rc = SQLITE_OK;
  f->memory = nullptr;
  f->root = Root(vfs);
  f->open_flags = flags;
  if ((flags & SQLITE_OPEN_SUBJOURNAL) != 0) {
    f->memory = new (std::nothrow) std::string();
    if (f->memory == nullptr) return SQLITE_NOMEM;
    if (out_flags != nullptr) *out_flags = flags;
    f->base.pMethods = &kMemoryMethods;
    return SQLITE_OK;
  }
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

void SetMemoryJournalLimitForTesting(size_t bytes) { memory_journal_bytes = bytes; }

const char* WalCoalescingVfsName() {
  static const char* const name = Register();
  return name;
}

}  // namespace jiceng::store::sqlite
