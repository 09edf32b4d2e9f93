#pragma once

// A thin SQLite VFS over the platform's default ("unix") that gathers the many small writes
// SQLite makes to a -wal file during one commit into few large ones, and keeps statement
// journals in memory.
//
// SQLite appends each WAL frame as two writes (a 24-byte frame header, then the page), so a
// commit touching 60 pages costs ~120 pwrite calls before its one fsync; on this project's
// virtual machines a syscall costs 3-7 µs, which made the writes, not the fsync, the larger
// part of a small commit (docs/benchmarks.md). This VFS keeps consecutive writes to a -wal file
// in a buffer and writes the buffer out in one call when the run breaks (a write elsewhere in
// the file), when it passes kFlushBytes, and before anything that must see the file as
// written: a read, sync, truncate, size query, file control, lock change or close of that
// file, and the database file's shared-memory barrier (which SQLite issues before it publishes
// new frames to readers in the wal-index), so no reader or checkpoint can see a frame that is
// still in the buffer. Statement journals (a SAVEPOINT's undo log, which SQLite moves from
// memory to a temp file past 64 KiB) stay in one flat memory buffer up to 64 MiB, and only then
// become a temp file. Every other file, and every other method, is passed straight through.
#include <cstddef>

namespace jiceng::store::sqlite {

// Registers the VFS (once per process; not as the default) and returns its name for
// sqlite3_open_v2, or nullptr if registration failed (callers then use SQLite's default).
const char* WalCoalescingVfsName();

// Tests only: the size past which a statement journal moves from memory to a temp file.
void SetMemoryJournalLimitForTesting(size_t bytes);

}  // namespace jiceng::store::sqlite
