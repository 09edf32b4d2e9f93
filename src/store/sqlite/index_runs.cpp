#include "store/sqlite/index_runs.h"

#include <sqlite3.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <condition_variable>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "store/sqlite/connection.h"
#include "store/sqlite/sqlite_index_write.h"

namespace jiceng::store::sqlite {
namespace {

enum class Field : uint8_t { kText, kInt, kReal };
struct FieldSpec {
  int column;  // PendingColumn
  Field type;
};
// Each kind's record fields, key first (the primary key's order after type and param), then
// the tail. rid is stored after the key fields, as the key's last 8 bytes.
struct KindLayout {
  std::vector<FieldSpec> key;
  std::vector<FieldSpec> tail;
};

const std::array<KindLayout, IndexRunBuffer::kKinds>& Layouts() {
  using F = Field;
  static const std::array<KindLayout, IndexRunBuffer::kKinds> layouts = {{
      {{{kCode, F::kText}, {kSystem, F::kText}}, {}},                            // token
      {{{kValue, F::kText}, {kExact, F::kText}}, {}},                            // string
      {{{kStartUs, F::kInt}, {kEndUs, F::kInt}}, {}},                            // date
      {{{kValue, F::kReal}}, {}},                                                // number
      {{{kCode, F::kText}, {kSystem, F::kText}, {kValue, F::kReal}},             // quantity
       {{kCanonicalCode, F::kText}, {kCanonicalValue, F::kReal}}},               //
      {{{kTargetId, F::kText}, {kTargetType, F::kText}, {kUrl, F::kText}}, {}},  // reference
      {{{kValue, F::kText}}, {}},                                                // uri
      {{{kCode1, F::kText},                                                      // composite
        {kSystem1, F::kText},
        {kCode2, F::kText},
        {kSystem2, F::kText},
        {kNumber2, F::kReal},
        {kStart2Us, F::kInt},
        {kEnd2Us, F::kInt}},
       {{kCanonicalCode2, F::kText}, {kCanonicalNumber2, F::kReal}}},
  }};
  return layouts;
}

static_assert(kRowsArg <= 32, "IndexRunBuffer::RowView::slots holds every jc_pending column");

constexpr size_t kHeader = 12;  // u32 type+param id, u32 key length, u32 tail length

// Rows of a sorted run whose records are asked for ahead of the one read: rows in key order are
// scattered over the arena, and without it each row waited on a cache miss.
constexpr size_t kPrefetchAhead = 8;

void PutU32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
uint32_t GetU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// 8 big-endian bytes of `v` with the sign bit flipped: memcmp orders them as signed integers.
void PutOrderedIntAt(char* at, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
  for (int i = 7; i >= 0; --i) {
    at[i] = static_cast<char>(u & 0xff);
    u >>= 8;
  }
}
void PutOrderedInt(std::string& out, int64_t v) {
  char b[8];
  PutOrderedIntAt(b, v);
  out.append(b, 8);
}
int64_t GetOrderedInt(const char* p) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>(p[i]);
  return static_cast<int64_t>(u ^ (uint64_t{1} << 63));
}
// The inverse of OrderedFromDouble (sqlite_index_write.h).
double OrderedToDouble(int64_t o) {
  return std::bit_cast<double>(o < 0 ? std::numeric_limits<int64_t>::min() - o - 1 : o);
}

void PutKeyText(std::string& out, std::string_view s) {
  for (;;) {
    const size_t zero = s.find('\0');
    if (zero == std::string_view::npos) break;
    out.append(s.substr(0, zero + 1));
    out.push_back('\xff');
    s.remove_prefix(zero + 1);
  }
  out.append(s);
  out.append("\0\x01", 2);
}

// Reads a key text at `p` (the key ends at `end`); returns the position after it. `escaped`: it
// holds a 00 FF pair.
const char* SkipKeyText(const char* p, const char* end, bool& escaped) {
  escaped = false;
  for (;;) {
    const auto* z = static_cast<const char*>(std::memchr(p, 0, static_cast<size_t>(end - p)));
    if (z == nullptr || z + 1 >= end) return end;  // not written by PutKeyText
    if (z[1] == '\x01') return z + 2;
    escaped = true;
    p = z + 2;
  }
}

void PutTailText(std::string& out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// Appends one row's record to `out`: header, key fields, the rid slot (0 until AddEncoded fills
// it in), tail fields (filled in by `key`/`tail`).
template <typename KeyFn, typename TailFn>
void AppendRecord(std::string& out, uint32_t tp, KeyFn key, TailFn tail) {
  const size_t start = out.size();
  out.append(kHeader, '\0');
  key(out);
  PutOrderedInt(out, 0);
  const size_t key_end = out.size();
  tail(out);
  const auto key_len = static_cast<uint32_t>(key_end - start - kHeader);
  const auto tail_len = static_cast<uint32_t>(out.size() - key_end);
  std::memcpy(out.data() + start, &tp, 4);
  std::memcpy(out.data() + start + 4, &key_len, 4);
  std::memcpy(out.data() + start + 8, &tail_len, 4);
}

size_t RecordSize(const char* p) { return kHeader + GetU32(p + 4) + GetU32(p + 8); }

constexpr auto kNoTail = [](std::string&) {};

}  // namespace

RecordArena::~RecordArena() {
  for (const Chunk& c : chunks_) std::free(c.data);
}

uint64_t RecordArena::Append(std::string_view record) {
  if (used_ == 0 || chunks_[used_ - 1].size + record.size() > chunk_) {
    if (record.size() > chunk_) throw std::length_error("index record larger than a chunk");
    if (used_ == chunks_.size()) {
      // Aligned to 2 MiB, so the kernel can back a full-size chunk with huge pages (fewer page
      // faults for a run of hundreds of megabytes); without them it is ordinary memory.
      constexpr size_t kHuge = size_t{2} << 20;
      const size_t align = chunk_ % kHuge == 0 ? kHuge : alignof(std::max_align_t);
      void* p = std::aligned_alloc(align, chunk_);
      if (p == nullptr) throw std::bad_alloc();
      if (align == kHuge) (void)madvise(p, chunk_, MADV_HUGEPAGE);
      chunks_.push_back({static_cast<char*>(p), 0});
    }
    chunks_[used_++].size = 0;
  }
  Chunk& c = chunks_[used_ - 1];
  const uint64_t pos = (uint64_t{used_ - 1} << 32) | c.size;
  std::memcpy(c.data + c.size, record.data(), record.size());
  c.size += record.size();
  return pos;
}

void RecordArena::Truncate(uint64_t end) {
  if (end == 0) {
    used_ = 0;
    return;
  }
  used_ = static_cast<size_t>(end >> 32) + 1;
  chunks_[used_ - 1].size = static_cast<uint32_t>(end);
}

namespace {

// The process-wide dictionary behind TypeParamId: ids are never reused or renumbered.
struct TypeParamDictionary {
  std::mutex mu;
  std::unordered_map<std::string, uint32_t> ids;  // "type\0param" → id
  std::vector<std::pair<std::string, std::string>> names;
};

TypeParamDictionary& Dictionary() {
  static TypeParamDictionary d;
  return d;
}

}  // namespace

uint32_t TypeParamId(std::string_view type, std::string_view param) {
  // Each thread keeps the ids it has seen: a lookup takes no lock and, once the key buffer has
  // grown, allocates nothing.
  thread_local std::unordered_map<std::string, uint32_t> seen;
  thread_local std::string key;
  key.assign(type).push_back('\0');
  key.append(param);
  if (auto it = seen.find(key); it != seen.end()) return it->second;
  TypeParamDictionary& d = Dictionary();
  uint32_t id;
  {
    std::lock_guard lock(d.mu);
    auto [it, added] = d.ids.emplace(key, static_cast<uint32_t>(d.names.size()));
    if (added) d.names.emplace_back(std::string(type), std::string(param));
    id = it->second;
  }
  seen.emplace(key, id);
  return id;
}

std::vector<std::pair<std::string, std::string>> TypeParamNames() {
  TypeParamDictionary& d = Dictionary();
  std::lock_guard lock(d.mu);
  return d.names;
}

void IndexRunBuffer::EncodeRecords(std::string_view type, const IndexRows& index,
                                   std::string& records) {
  // Each kind's records are built in their own buffer, then appended after the 8 row counts.
  thread_local std::array<std::string, kKinds> out;
  for (std::string& o : out) o.clear();
  auto tp = [&](const std::string& param) { return TypeParamId(type, param); };
  for (const auto& r : index.tokens) {
    AppendRecord(
        out[0], tp(r.param),
        [&](std::string& o) {
          PutKeyText(o, r.code);
          PutKeyText(o, r.system);
        },
        kNoTail);
  }
  for (const auto& r : index.strings) {
    AppendRecord(
        out[1], tp(r.param),
        [&](std::string& o) {
          PutKeyText(o, r.value);
          PutKeyText(o, r.exact);
        },
        kNoTail);
  }
  for (const auto& r : index.dates) {
    AppendRecord(
        out[2], tp(r.param),
        [&](std::string& o) {
          PutOrderedInt(o, r.start_us);
          PutOrderedInt(o, r.end_us);
        },
        kNoTail);
  }
  for (const auto& r : index.numbers) {
    AppendRecord(
        out[3], tp(r.param), [&](std::string& o) { PutOrderedInt(o, OrderedFromDouble(r.value)); },
        kNoTail);
  }
  for (const auto& r : index.quantities) {
    AppendRecord(
        out[4], tp(r.param),
        [&](std::string& o) {
          PutKeyText(o, r.code);
          PutKeyText(o, r.system);
          PutOrderedInt(o, OrderedFromDouble(r.value));
        },
        [&](std::string& o) {
          PutTailText(o, r.canonical_code);
          PutOrderedInt(o, OrderedFromDouble(r.canonical_value));
        });
  }
  for (const auto& r : index.references) {
    AppendRecord(
        out[5], tp(r.param),
        [&](std::string& o) {
          PutKeyText(o, r.target_id);
          PutKeyText(o, r.target_type);
          PutKeyText(o, r.url);
        },
        kNoTail);
  }
  for (const auto& r : index.uris) {
    AppendRecord(
        out[6], tp(r.param), [&](std::string& o) { PutKeyText(o, r.value); }, kNoTail);
  }
  for (const auto& r : index.composites) {
    AppendRecord(
        out[7], tp(r.param),
        [&](std::string& o) {
          PutKeyText(o, r.code1);
          PutKeyText(o, r.system1);
          PutKeyText(o, r.code2);
          PutKeyText(o, r.system2);
          PutOrderedInt(o, OrderedFromDouble(r.number2));
          PutOrderedInt(o, r.start2_us);
          PutOrderedInt(o, r.end2_us);
        },
        [&](std::string& o) {
          PutTailText(o, r.canonical_code2);
          PutOrderedInt(o, OrderedFromDouble(r.canonical_number2));
        });
  }
  const std::array<size_t, kKinds> counts = {index.tokens.size(),     index.strings.size(),
                                             index.dates.size(),      index.numbers.size(),
                                             index.quantities.size(), index.references.size(),
                                             index.uris.size(),       index.composites.size()};
  records.clear();
  for (int k = 0; k < kKinds; ++k) PutU32(records, static_cast<uint32_t>(counts[k]));
  for (int k = 0; k < kKinds; ++k) records.append(out[k]);
}

bool IndexRunBuffer::AddEncoded(int64_t rid, std::string_view records) {
  if (records.size() < 4 * kKinds) return false;
  std::array<uint32_t, kKinds> counts;
  for (int k = 0; k < kKinds; ++k) counts[k] = GetU32(records.data() + 4 * k);
  // Check the whole encoding before taking any of it: a bad one adds nothing.
  size_t at = 4 * kKinds;
  for (int k = 0; k < kKinds; ++k) {
    for (uint32_t i = 0; i < counts[k]; ++i) {
      if (records.size() - at < kHeader) return false;
      const char* p = records.data() + at;
      const uint64_t key_len = GetU32(p + 4), size = kHeader + key_len + GetU32(p + 8);
      if (key_len < 8 || records.size() - at < size) return false;
      at += size;
    }
  }
  if (at != records.size()) return false;
  at = 4 * kKinds;
  for (int k = 0; k < kKinds; ++k) {
    for (uint32_t i = 0; i < counts[k]; ++i) {
      const char* p = records.data() + at;
      const size_t size = RecordSize(p);
      char* copy = arena_[k].MutableAt(arena_[k].Append(records.substr(at, size)));
      PutOrderedIntAt(copy + kHeader + GetU32(copy + 4) - 8, rid);
      at += size;
    }
    rows_[k] += counts[k];
    count_ += counts[k];
  }
  return true;
}

void IndexRunBuffer::Add(std::string_view type, int64_t rid, const IndexRows& index) {
  thread_local std::string records;
  EncodeRecords(type, index, records);
  AddEncoded(rid, records);  // true: encoded just now
}

IndexRunBuffer::Mark IndexRunBuffer::mark() const {
  Mark m;
  for (int k = 0; k < kKinds; ++k) {
    m.ends[k] = arena_[k].end();
    m.rows[k] = rows_[k];
  }
  m.count = count_;
  return m;
}

void IndexRunBuffer::truncate(const Mark& m) {
  count_ = 0;
  for (int k = 0; k < kKinds; ++k) {
    if (arena_[k].end() != m.ends[k]) {
      arena_[k].Truncate(m.ends[k]);
      rows_[k] = m.rows[k];
    }
    count_ += rows_[k];
  }
}

void IndexRunBuffer::RankTypeParams() {
  // The rank of each type+param in (type, param) order: the first two key columns of every
  // table. Ids handed out later rank among the earlier ones by name, so runs sorted at
  // different times still merge in one order.
  tp_ = TypeParamNames();  // every id a record holds was handed out before this
  std::vector<uint32_t> by_name(tp_.size());
  std::iota(by_name.begin(), by_name.end(), 0u);
  std::sort(by_name.begin(), by_name.end(),
            [&](uint32_t x, uint32_t y) { return tp_[x] < tp_[y]; });
  rank_.assign(tp_.size(), 0);
  for (uint32_t r = 0; r < by_name.size(); ++r) rank_[by_name[r]] = r;
}

namespace {

// The order of two records of one kind: type+param by rank, then the key bytes.
bool RecordLess(const std::vector<uint32_t>& rank, const char* x, const char* y) {
  const uint32_t rx = rank[GetU32(x)], ry = rank[GetU32(y)];
  if (rx != ry) return rx < ry;
  const uint32_t lx = GetU32(x + 4), ly = GetU32(y + 4);
  const int c = std::memcmp(x + kHeader, y + kHeader, std::min(lx, ly));
  if (c != 0) return c < 0;
  return lx < ly;
}

}  // namespace

void IndexRunBuffer::Sort(int kind, const std::vector<uint32_t>& rank) {
  const RecordArena& a = arena_[kind];
  std::vector<SortEntry>& order = order_[kind];
  order.clear();
  order.reserve(rows_[kind]);
  a.ForEach(RecordSize, [&](uint64_t pos, const char* p) {
    uint32_t head = 0;  // the key's first 4 bytes, big-endian (keys are at least 8 bytes: rid)
    for (int i = 0; i < 4; ++i) head = (head << 8) | static_cast<unsigned char>(p[kHeader + i]);
    order.push_back({(uint64_t{rank[GetU32(p)]} << 32) | head, pos});
  });
  std::sort(order.begin(), order.end(), [&a](const SortEntry& x, const SortEntry& y) {
    if (x.prefix != y.prefix) return x.prefix < y.prefix;
    const char* px = a.At(x.pos);
    const char* py = a.At(y.pos);
    const uint32_t lx = GetU32(px + 4);
    const uint32_t ly = GetU32(py + 4);
    const int c = std::memcmp(px + kHeader, py + kHeader, std::min(lx, ly));
    if (c != 0) return c < 0;
    return lx < ly;
  });
}

Status IndexRunBuffer::SortAll() {
  std::atomic<int> next{0};
  auto work = [&] {
    for (int k; (k = next.fetch_add(1)) < kKinds;) Sort(k, rank_);
  };
  std::thread helper(work);
  work();
  helper.join();
  return Status::Ok();
}

size_t IndexRunBuffer::spilled_rows() const {
  size_t n = 0;
  for (const Spilled& sp : spills_)
    for (size_t r : sp.rows) n += r;
  return n;
}

size_t IndexRunBuffer::rows(int kind) const {
  size_t n = rows_[kind];
  for (const Spilled& sp : spills_) n += sp.rows[kind];
  return n;
}

void IndexRunBuffer::UnmapSpilled() {
  if (spill_map_ != nullptr) munmap(const_cast<char*>(spill_map_), spill_map_size_);
  spill_map_ = nullptr;
  spill_map_size_ = 0;
}

void IndexRunBuffer::CloseSpill() {
  UnmapSpilled();
  if (spill_fd_ >= 0) ::close(spill_fd_);
  spill_fd_ = -1;
  spill_size_ = 0;
  spills_.clear();
}

namespace {

// An unlinked temporary file in `dir` (O_TMPFILE, else a named one removed at once): nothing
// is left behind when the process ends, however it ends.
int OpenTemporaryFile(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string name = dir + "/.jiceng-index-run-XXXXXX";
  fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd >= 0) ::unlink(name.c_str());
  return fd;
}

Status WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Internal(std::string("writing a spilled index run: ") + std::strerror(errno));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

}  // namespace

Status IndexRunBuffer::Spill(const std::string& dir) {
  if (count_ == 0) return Status::Ok();
  UnmapSpilled();  // the file grows
  if (spill_fd_ < 0) {
    spill_fd_ = OpenTemporaryFile(dir);
    if (spill_fd_ < 0) {
      return Internal("cannot create a temporary file in " + dir +
                      " for index runs: " + std::strerror(errno));
    }
  }
  RankTypeParams();
  JC_RETURN_IF_ERROR(SortAll());
  Spilled sp;
  std::string buffer;
  constexpr size_t kBuffer = size_t{4} << 20;
  buffer.reserve(kBuffer);
  uint64_t at = spill_size_;
  Status st = Status::Ok();
  for (int k = 0; k < kKinds && st.ok(); ++k) {
    sp.offset[k] = at;
    sp.rows[k] = rows_[k];
    const std::vector<SortEntry>& order = order_[k];
    for (size_t i = 0; i < order.size(); ++i) {
      // Records in key order are scattered over the arena: ask for one ahead of its copy.
      if (i + kPrefetchAhead < order.size())
        __builtin_prefetch(arena_[k].At(order[i + kPrefetchAhead].pos));
      const char* p = arena_[k].At(order[i].pos);
      buffer.append(p, RecordSize(p));
      if (buffer.size() >= kBuffer) {
        st = WriteAll(spill_fd_, buffer.data(), buffer.size());
        if (!st.ok()) break;
        at += buffer.size();
        buffer.clear();
      }
    }
    if (st.ok()) {
      st = WriteAll(spill_fd_, buffer.data(), buffer.size());
      at += buffer.size();
      buffer.clear();
    }
    sp.bytes[k] = at - sp.offset[k];
  }
  if (!st.ok()) {
    (void)::ftruncate(spill_fd_, static_cast<off_t>(spill_size_));
    (void)::lseek(spill_fd_, static_cast<off_t>(spill_size_), SEEK_SET);
    return st;
  }
  spill_size_ = at;
  spills_.push_back(sp);
  for (int k = 0; k < kKinds; ++k) {
    arena_[k].Clear();
    order_[k].clear();
    rows_[k] = 0;
  }
  count_ = 0;
  return Status::Ok();
}

Status IndexRunBuffer::MapSpilled() {
  if (spills_.empty() || spill_size_ == 0 || spill_map_ != nullptr) return Status::Ok();
  void* map = mmap(nullptr, spill_size_, PROT_READ, MAP_PRIVATE, spill_fd_, 0);
  if (map == MAP_FAILED) {
    return Internal(std::string("mapping the spilled index runs: ") + std::strerror(errno));
  }
  (void)madvise(map, spill_size_, MADV_SEQUENTIAL);
  spill_map_ = static_cast<const char*>(map);
  spill_map_size_ = spill_size_;
  return Status::Ok();
}

Status IndexRunBuffer::Scan(const std::function<void(int kind, std::string_view record)>& f) {
  RankTypeParams();
  JC_RETURN_IF_ERROR(MapSpilled());
  JC_RETURN_IF_ERROR(SortAll());
  for (int k = 0; k < kKinds; ++k) {
    for (Reader r = Read(k); !r.done(); r.Next()) f(k, {r.record(), RecordSize(r.record())});
  }
  return Status::Ok();
}

struct IndexRunBuffer::Flushing {
  std::vector<int> order;
  std::array<std::atomic<bool>, kKinds> claimed{};
  std::array<bool, kKinds> sorted{};
  std::mutex mu;
  std::condition_variable cv;
  std::thread helper;
};

IndexRunBuffer::IndexRunBuffer() = default;

IndexRunBuffer::~IndexRunBuffer() {
  EndFlush(false);
  CloseSpill();
}

Result<std::vector<int>> IndexRunBuffer::BeginFlush() {
  EndFlush(false);
  RankTypeParams();
  JC_RETURN_IF_ERROR(MapSpilled());
  flushing_ = std::make_unique<Flushing>();
  Flushing& f = *flushing_;
  // Smallest table first, so the writer starts inserting at once while the helper sorts the
  // larger ones; whichever thread claims a table first sorts it (a bulk load's workers are
  // idle while the writer flushes).
  f.order.resize(kKinds);
  std::iota(f.order.begin(), f.order.end(), 0);
  std::stable_sort(f.order.begin(), f.order.end(),
                   [&](int x, int y) { return rows_[x] < rows_[y]; });
  f.helper = std::thread([this, &f] {
    for (int k : f.order) {
      if (f.claimed[k].exchange(true)) continue;
      Sort(k, rank_);
      {
        std::lock_guard lock(f.mu);
        f.sorted[k] = true;
      }
      f.cv.notify_all();
    }
  });
  return f.order;
}

void IndexRunBuffer::AwaitSorted(int kind) {
  Flushing& f = *flushing_;
  if (!f.claimed[kind].exchange(true)) {
    Sort(kind, rank_);
    std::lock_guard lock(f.mu);
    f.sorted[kind] = true;
    return;
  }
  std::unique_lock lock(f.mu);
  f.cv.wait(lock, [&] { return f.sorted[kind]; });
}

Status IndexRunBuffer::FlushKind(Connection& c, int kind) {
  if (flushing_ == nullptr) return Internal("IndexRunBuffer::FlushKind outside BeginFlush");
  return InsertIndexRuns(c, *this, {kind}, [this](int k) { AwaitSorted(k); });
}

void IndexRunBuffer::EndFlush(bool done) {
  if (flushing_ != nullptr) {
    if (flushing_->helper.joinable()) flushing_->helper.join();
    flushing_.reset();
  }
  if (!done) return;
  for (int k = 0; k < kKinds; ++k) {
    arena_[k].Clear();
    order_[k].clear();
    rows_[k] = 0;
  }
  count_ = 0;
  CloseSpill();
}

Status IndexRunBuffer::Flush(Connection& c) {
  if (empty()) return Status::Ok();
  JC_ASSIGN_OR_RETURN(std::vector<int> order, BeginFlush());
  for (int k : order) {
    if (Status st = FlushKind(c, k); !st.ok()) {
      EndFlush(false);
      return st;
    }
  }
  EndFlush(true);
  return Status::Ok();
}

// ---- reading a table's rows in key order ------------------------------------------------------

IndexRunBuffer::Reader IndexRunBuffer::Read(int kind) const {
  Reader r;
  r.runs_ = this;
  r.kind_ = kind;
  for (const Spilled& sp : spills_) {
    if (sp.rows[kind] == 0 || spill_map_ == nullptr) continue;
    Reader::Source s;
    s.at = spill_map_ + sp.offset[kind];
    s.end = s.at + sp.bytes[kind];
    r.sources_.push_back(s);
  }
  if (rows_[kind] > 0) {
    Reader::Source s;
    s.memory = true;
    s.n = order_[kind].size();
    for (size_t i = 0; i < kPrefetchAhead && i < s.n; ++i)
      __builtin_prefetch(arena_[kind].At(order_[kind][i].pos));
    r.sources_.push_back(s);
  }
  if (r.sources_.size() == 1) {
    r.current_ = r.Head(r.sources_[0]);
  } else if (r.sources_.size() > 1) {
    for (int i = 0; i < static_cast<int>(r.sources_.size()); ++i) r.heap_.push_back(i);
    auto greater = [&r](int a, int b) { return r.Less(b, a); };
    std::make_heap(r.heap_.begin(), r.heap_.end(), greater);
    r.current_ = r.Head(r.sources_[static_cast<size_t>(r.heap_.front())]);
  }
  return r;
}

const char* IndexRunBuffer::Reader::Head(const Source& s) const {
  if (s.memory) return s.i < s.n ? runs_->arena_[kind_].At(runs_->order_[kind_][s.i].pos) : nullptr;
  return s.at < s.end ? s.at : nullptr;
}

void IndexRunBuffer::Reader::Advance(Source& s) const {
  if (s.memory) {
    ++s.i;
    if (s.i + kPrefetchAhead < s.n) {
      const char* p = runs_->arena_[kind_].At(runs_->order_[kind_][s.i + kPrefetchAhead].pos);
      __builtin_prefetch(p);
      __builtin_prefetch(p + 64);
    }
  } else {
    s.at += RecordSize(s.at);
  }
}

bool IndexRunBuffer::Reader::Less(int a, int b) const {
  return RecordLess(runs_->rank_, Head(sources_[static_cast<size_t>(a)]),
                    Head(sources_[static_cast<size_t>(b)]));
}

void IndexRunBuffer::Reader::Next() {
  if (current_ == nullptr) return;
  if (heap_.empty()) {  // one source
    Advance(sources_[0]);
    current_ = Head(sources_[0]);
    return;
  }
  auto greater = [this](int a, int b) { return Less(b, a); };
  std::pop_heap(heap_.begin(), heap_.end(), greater);
  Source& s = sources_[static_cast<size_t>(heap_.back())];
  Advance(s);
  if (Head(s) == nullptr) {
    heap_.pop_back();
  } else {
    std::push_heap(heap_.begin(), heap_.end(), greater);
  }
  current_ = heap_.empty() ? nullptr : Head(sources_[static_cast<size_t>(heap_.front())]);
}

void IndexRunBuffer::Decode(int kind, const char* p, RowView& row) const {
  row.record = p;
  const uint32_t key_len = GetU32(p + 4);
  const char* key = p + kHeader;
  auto offset = [p](const char* at) { return static_cast<uint32_t>(at - p); };
  const KindLayout& layout = Layouts()[kind];
  const char* at = key;
  for (const FieldSpec& f : layout.key) {
    RowView::Slot& slot = row.slots[static_cast<size_t>(f.column)];
    slot.offset = offset(at);
    slot.type = static_cast<uint8_t>(f.type);
    if (f.type == Field::kText) {
      const char* end = SkipKeyText(at, key + key_len, slot.escaped);
      slot.length = static_cast<uint32_t>(end - 2 - at);
      at = end;
    } else {
      at += 8;
    }
  }
  at = key + key_len;
  for (const FieldSpec& f : layout.tail) {
    RowView::Slot& slot = row.slots[static_cast<size_t>(f.column)];
    slot.type = static_cast<uint8_t>(f.type);
    if (f.type == Field::kText) {
      slot.length = GetU32(at);
      slot.offset = offset(at + 4);
      at += 4 + slot.length;
    } else {
      slot.offset = offset(at);
      at += 8;
    }
  }
}

void IndexRunBuffer::Column(const RowView& row, int column, sqlite3_context* ctx) const {
  const char* p = row.record;
  if (column == kType || column == kParam) {
    const auto& tp = tp_[GetU32(p)];
    const std::string& s = column == kType ? tp.first : tp.second;
    sqlite3_result_text64(ctx, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
    return;
  }
  if (column == kRid) {
    sqlite3_result_int64(ctx, GetOrderedInt(p + kHeader + GetU32(p + 4) - 8));
    return;
  }
  if (column < 0 || static_cast<size_t>(column) >= row.slots.size()) return;
  const RowView::Slot& slot = row.slots[static_cast<size_t>(column)];
  if (slot.offset == 0) return;  // a column this kind does not have: NULL
  const char* at = p + slot.offset;
  switch (static_cast<Field>(slot.type)) {
    case Field::kText:
      if (!slot.escaped) {
        sqlite3_result_text64(ctx, at, slot.length, SQLITE_STATIC, SQLITE_UTF8);
      } else {
        std::string s;
        for (const char* q = at; q < at + slot.length; ++q) {
          s.push_back(*q);
          if (*q == '\0') ++q;  // the FF after an escaped 00
        }
        sqlite3_result_text64(ctx, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      }
      return;
    case Field::kInt:
      sqlite3_result_int64(ctx, GetOrderedInt(at));
      return;
    case Field::kReal:
      sqlite3_result_double(ctx, OrderedToDouble(GetOrderedInt(at)));
      return;
  }
}

}  // namespace jiceng::store::sqlite
