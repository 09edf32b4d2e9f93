// store/sqlite: the embedded SQLite backend of the storage port (store/store.h).
//
// One database file in WAL mode with synchronous=FULL: an acknowledged write survives kill -9
// and power loss. Reads run on a pool of read-only connections, each read transaction a
// consistent WAL snapshot, so readers run in parallel with each other and with the writer.
// Writes go to one writer thread that owns the only write connection and group-commits: every
// unit of work queued while the previous group was committing runs in its own savepoint of one
// transaction, and one COMMIT (one fsync) makes the whole group durable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::store {

struct SqliteOptions {
  // Read connections in the pool (opened lazily). BeginRead waits for a free one.
  int read_connections = 8;
  // How long a connection waits on a lock held by another process (and BeginRead on the pool).
  int busy_timeout_ms = 5000;
  // Page cache per connection, KiB. The writer gets this; each reader a quarter of it, since the
  // OS page cache and mmap serve the readers' hot pages anyway.
  int64_t cache_kib = 65536;
  // Memory-mapped I/O window of the writer: reads of mapped pages skip a copy.
  int64_t mmap_bytes = int64_t{256} << 20;
  // The same for each reader: as much as SQLite allows (Debian's build caps it at 2 GiB), so that
  // the probes a search makes of each candidate's index keys read mapped pages instead of a
  // pread() each (a population search over 200,000 resources: 71 ms of CPU down to 32 ms). The
  // mapped pages are the OS page cache, shared by every connection; they show in the process's
  // resident size but are not its own memory.
  int64_t read_mmap_bytes = int64_t{0x7fff0000};
  // Most units of work committed by one COMMIT.
  int max_group = 256;
  // How long the writer may wait for the previous group's callers to resubmit before it starts
  // a smaller group (0: never wait). Well under one fsync; never applies to a lone caller.
  int group_commit_window_us = 200;
  // WAL growth in pages after which the background checkpoint thread copies the WAL into the
  // database file (SQLite's own default is 1000). Larger: fewer checkpoints, a bigger -wal file.
  int wal_autocheckpoint_pages = 4000;
  // WAL size in pages past which the writer finishes the background checkpoint's copy itself
  // between two groups, so that SQLite can restart the WAL from its first frame (see
  // CatchUpCheckpointIfWalLong). Larger: fewer writer pauses during bulk loads, a bigger file.
  int wal_restart_pages = 16384;
  // Where a group's fsync of the WAL runs. true: the writer commits without it and a sync
  // thread fsyncs the -wal file, then acknowledges every group committed before the fsync
  // began, while the writer already runs the next group (the fsync, ~0.5 ms here, no longer
  // stalls the single writer). A caller is acknowledged only after its fsync either way; the
  // difference is that other readers may see a group's writes during its fsync, so after a
  // power cut (not after a crash of the process) something a reader saw, but whose writer was
  // never acknowledged, can be missing. false: fsync inside COMMIT (synchronous=FULL).
  bool sync_off_writer = true;
  // Index rows a bulk load (IStore::BeginBulkLoad) holds in memory before spilling them as one
  // sorted run to a temporary file beside the database (~50 bytes each in memory; 8 million:
  // ~400 MB, the rows of ~400,000 resources). The end of the load merges every run into the
  // empty B-trees, so each is written once, in key order (index_runs.h).
  // `jiceng import` and `generate --db` set it from --index-run-mib (cli/platform.h).
  int64_t bulk_build_rows = 8'000'000;
  // The writer's page cache during a bulk load: it starts at this (or cache_kib, if smaller)
  // and grows with the file, to an eighth of it, up to cache_kib. A load into a new file
  // appends nearly every page it writes and reads few back, so a cache much larger than the
  // file's hot part only costs the page faults of filling it (each new cache page is fresh
  // memory): 110,499 resources loaded ~15 % faster with 64 MiB than with 1 GiB
  // (docs/benchmarks.md, session 11); the 45 GB county still gets the whole cache_kib.
  int64_t bulk_cache_min_kib = 65536;
  // Full text of recent writes waits in fts_pending (sqlite_index_write.h, QueueFullText) until
  // this many rows have gathered (a transaction that brings it there indexes them all, one FTS5
  // segment for the batch), a _text/_content search needs them, or the writer has been idle for
  // full_text_idle_ms. 0: every transaction indexes its own rows (one segment per commit).
  int full_text_batch = 256;
  int full_text_idle_ms = 50;
};

// Opens (creating if missing) the database at `path` and brings its schema up to date in one
// transaction. Fails if the file's schema is newer than this binary knows, or is not a
// Jiceng database. `path` must name a file: WAL needs one (":memory:" is refused).
Result<std::unique_ptr<IStore>> OpenSqliteStore(const std::string& path,
                                                const SqliteOptions& options = {});

}  // namespace jiceng::store
