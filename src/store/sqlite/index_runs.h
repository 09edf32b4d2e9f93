// store/sqlite/index_runs: a bulk load's idx_* rows, held as byte records, spilled to a
// temporary file in runs sorted by primary key, and inserted at the end with every run merged
// (bulk_index_build.h says why).
//
// Each row is one record in its kind's arena: a header (the row's type+param as a dictionary
// id, the length of its key and of its tail), then its key, the table's primary-key columns
// after type and param, encoded so that memcmp orders the keys as SQLite orders those columns
// (text: bytes, 0x00 escaped as 00 FF, ended by 00 01; integers and doubles: 8 big-endian bytes
// with the sign bit flipped, doubles first mapped to integers of the same order), rid last; then
// its tail, the columns outside the key (the canonical unit and value). Against a vector of
// structs of std::string per row (PendingIndexRows), a record costs no allocation to hold, and
// sorting compares an 8-byte prefix (the rank of type+param and the key's first 4 bytes) before
// any memcmp. Internal to store/sqlite.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "store/store.h"

struct sqlite3_context;

namespace jiceng::store::sqlite {

class Connection;

// One kind's records, appended in chunks of kChunk bytes that never move: a run of millions of
// rows grows by new chunks instead of reallocating (and copying, and faulting in twice) one
// buffer that doubles. A record never spans two chunks; its position is (chunk << 32) | offset.
// Chunks are asked for in transparent huge pages where the kernel offers them (madvise), and
// are kept for the next run when cleared.
class RecordArena {
 public:
  static constexpr size_t kChunk = size_t{32} << 20;

  // `chunk`: bytes per chunk (tests use small ones to cross chunk boundaries).
  explicit RecordArena(size_t chunk = kChunk) : chunk_(chunk) {}
  ~RecordArena();
  RecordArena(const RecordArena&) = delete;
  RecordArena& operator=(const RecordArena&) = delete;

  // Copies `record` (at most one chunk) in; returns its position.
  uint64_t Append(std::string_view record);
  const char* At(uint64_t pos) const {
    return chunks_[pos >> 32].data + static_cast<uint32_t>(pos);
  }
  char* MutableAt(uint64_t pos) { return chunks_[pos >> 32].data + static_cast<uint32_t>(pos); }
  // The position after the last record, for truncate(); 0 when empty.
  uint64_t end() const {
    return used_ == 0 ? 0 : (uint64_t{used_ - 1} << 32) | chunks_[used_ - 1].size;
  }
  void Truncate(uint64_t end);
  void Clear() { Truncate(0); }
  // Calls f(position, record start) for each record in order; `size_of(p)` is the length of the
  // record at p.
  template <typename SizeOf, typename F>
  void ForEach(SizeOf size_of, F f) const {
    for (size_t c = 0; c < used_; ++c) {
      for (size_t at = 0; at < chunks_[c].size;) {
        const char* p = chunks_[c].data + at;
        f((uint64_t{c} << 32) | at, p);
        at += size_of(p);
      }
    }
  }

 private:
  struct Chunk {
    char* data;
    size_t size;
  };
  const size_t chunk_;
  std::vector<Chunk> chunks_;  // chunks_[0, used_) hold records; the rest wait for reuse
  size_t used_ = 0;
};

// Process-wide ids of (resource type, search parameter) pairs, the first field of every record
// (any thread; an id, once given, never changes), and the pairs by id.
uint32_t TypeParamId(std::string_view type, std::string_view param);
std::vector<std::pair<std::string, std::string>> TypeParamNames();

class IndexRunBuffer {
 public:
  static constexpr int kKinds = 8;  // SearchKind kToken … kComposite, the idx_* tables

  IndexRunBuffer();
  ~IndexRunBuffer();
  IndexRunBuffer(const IndexRunBuffer&) = delete;
  IndexRunBuffer& operator=(const IndexRunBuffer&) = delete;

  // Encodes the idx_* rows of `index` (not full text) for a resource of `type` into `records`,
  // with rid 0: on any thread (a bulk load's workers, SqliteStore::PrecomputeIndex), so that the
  // writer only copies them in (AddEncoded).
  static void EncodeRecords(std::string_view type, const IndexRows& index, std::string& records);
  // Appends records from EncodeRecords for resource `rid`. false (and nothing added) when
  // `records` is not such an encoding.
  bool AddEncoded(int64_t rid, std::string_view records);
  // Appends the idx_* rows of `index` (not full text) for resource `rid` of `type`.
  void Add(std::string_view type, int64_t rid, const IndexRows& index);
  // Rows held in memory (not those spilled).
  size_t size() const { return count_; }
  // Nothing held, in memory or spilled.
  bool empty() const { return count_ == 0 && spills_.empty(); }

  // What is held, and dropping what was added since (a unit of work that rolled back).
  struct Mark {
    std::array<uint64_t, kKinds> ends{};
    std::array<size_t, kKinds> rows{};
    size_t count = 0;
  };
  Mark mark() const;
  void truncate(const Mark& m);

  // Sorts the rows held in memory (on two threads), appends each table's in key order to this
  // buffer's spill file (an unlinked temporary file in `dir`, created by the first spill), and
  // empties the memory. A load of more rows than memory holds thus inserts nothing until
  // Flush, which merges every spilled run: each idx_* B-tree is written once, in key order,
  // however large the load (inserting a run into B-trees that earlier runs had filled made a
  // 1,000,000-resident load stall for minutes; docs/benchmarks.md, session 15). On an error
  // (a full disk) the rows stay in memory and the file is cut back.
  Status Spill(const std::string& dir);
  size_t spilled_runs() const { return spills_.size(); }
  size_t spilled_rows() const;

  // Sorts each table's rows held in memory (on two threads), inserts them merged with the
  // spilled runs' (smallest table first, each as soon as it is sorted), then empties the
  // buffer and its spill file.
  Status Flush(Connection& c);
  // Flush in steps, so that a caller can commit each table on its own (and a checkpoint copy
  // one table's pages while the next is inserted): BeginFlush starts sorting on a helper thread
  // and returns the tables in the order to insert them; FlushKind inserts one (sorting it first
  // if the helper has not reached it); EndFlush waits for the helper and, when `done`, empties
  // the buffer and its spill file (otherwise the rows stay, as after a failed Flush).
  Result<std::vector<int>> BeginFlush();
  Status FlushKind(Connection& c, int kind);
  void EndFlush(bool done);
  bool flushing() const { return flushing_ != nullptr; }
  // Calls f(kind, record) for every row held, memory and spilled, in the order Flush inserts
  // them (each kind in key order), without inserting or dropping any: for checks and tests.
  Status Scan(const std::function<void(int kind, std::string_view record)>& f);

  // For the jc_pending module (sqlite_index_write.cpp), during Flush: the rows of kind `kind`
  // (memory and spilled) and, after Flush has sorted the memory's, a Reader over them in key
  // order; a row decoded into a RowView (each column found once, not once per column asked
  // for); and column `column` (a jc_pending column number) of it into `ctx` (NULL for a column
  // the kind does not have).
  size_t rows(int kind) const;
  struct RowView {
    struct Slot {
      uint32_t offset = 0;  // in the record; 0 (the header's place): the column is NULL
      uint32_t length = 0;  // of a text
      uint8_t type = 0;     // Field
      bool escaped = false;
    };
    const char* record = nullptr;  // the row decoded, null before the first
    std::array<Slot, 32> slots{};  // by jc_pending column number
  };
  class Reader {
   public:
    Reader() = default;
    bool done() const { return current_ == nullptr; }
    const char* record() const { return current_; }
    void Next();

   private:
    friend class IndexRunBuffer;
    // A sequence of records in key order: the memory's sorted rows [i, n), or a spilled
    // section [at, end).
    struct Source {
      const char* at = nullptr;
      const char* end = nullptr;
      size_t i = 0, n = 0;
      bool memory = false;
    };
    const char* Head(const Source& s) const;
    void Advance(Source& s) const;
    bool Less(int a, int b) const;  // source a's head sorts before source b's
    const IndexRunBuffer* runs_ = nullptr;
    int kind_ = 0;
    std::vector<Source> sources_;
    std::vector<int> heap_;  // sources with rows left, a min-heap on their heads (2 or more)
    const char* current_ = nullptr;
  };
  Reader Read(int kind) const;
  void Decode(int kind, const char* record, RowView& row) const;
  void Column(const RowView& row, int column, sqlite3_context* ctx) const;

 private:
  struct SortEntry {
    uint64_t prefix;
    uint64_t pos;  // the record's position in its arena
  };
  void Sort(int kind, const std::vector<uint32_t>& rank);

  std::array<RecordArena, kKinds> arena_;
  std::array<size_t, kKinds> rows_{};
  std::array<std::vector<SortEntry>, kKinds> order_;
  std::vector<std::pair<std::string, std::string>> tp_;  // TypeParamNames() at the last sort
  std::vector<uint32_t> rank_;  // of each type+param id in (type, param) order, at the last sort
  size_t count_ = 0;

  // The runs spilled since the last Flush: each table's sorted records at [offset, offset +
  // bytes) of the spill file.
  struct Spilled {
    std::array<uint64_t, kKinds> offset{}, bytes{};
    std::array<size_t, kKinds> rows{};
  };
  struct Flushing;  // the state of a flush in steps: its helper thread and what it sorted
  void AwaitSorted(int kind);
  std::unique_ptr<Flushing> flushing_;
  void RankTypeParams();
  Status SortAll();     // every kind, on two threads
  Status MapSpilled();  // the spill file, for Readers
  void UnmapSpilled();
  void CloseSpill();
  std::vector<Spilled> spills_;
  int spill_fd_ = -1;
  uint64_t spill_size_ = 0;
  const char* spill_map_ = nullptr;  // the file mapped during Flush
  size_t spill_map_size_ = 0;

};

}  // namespace jiceng::store::sqlite
