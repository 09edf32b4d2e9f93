#include "store/sqlite/index_keys.h"

#include <sqlite3.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <vector>

namespace jiceng::store::sqlite {
namespace {

// 1: strings inline. 2: every distinct string once in a dictionary up front, rows refer to it
// by index (parameter names and code systems repeat across a resource's rows: the blob of a
// typical Observation shrinks by about half). Both decode; 2 is written.
constexpr char kInlineStrings = 1;
constexpr char kDictionary = 2;

class Writer {
 public:
  explicit Writer(size_t reserve = 0) { out_.reserve(reserve); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void Text(std::string_view s) {
    Varint(s.size());
    out_.append(s);
  }
  template <typename T>
  void Raw(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out_.append(b, sizeof(T));
  }
  void Byte(char c) { out_.push_back(c); }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Every read is bounds-checked: a damaged blob is an error, never a read past its end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return false;
      const auto b = static_cast<uint8_t>(in_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool Text(std::string& s) {
    uint64_t n = 0;
    if (!Varint(n) || n > in_.size() - pos_) return false;
    s.assign(in_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  // Skips a text field, returning a view of it.
  bool TextView(std::string_view& s) {
    uint64_t n = 0;
    if (!Varint(n) || n > in_.size() - pos_) return false;
    s = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  template <typename T>
  bool Raw(T& v) {
    if (in_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool Byte(char& c) {
    if (pos_ >= in_.size()) return false;
    c = in_[pos_++];
    return true;
  }
  bool AtEnd() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

// The field layout of each kind, written once and used by the encoder, the decoder and the sort
// function alike (so the three cannot drift apart).
template <typename Visit>
void ForEachKind(Visit&& visit, IndexRows& r) {
  visit(SearchKind::kToken, r.tokens, [](auto& f, TokenIndexRow& x) {
    return f.text(x.param) && f.text(x.system) && f.text(x.code);
  });
  visit(SearchKind::kString, r.strings, [](auto& f, StringIndexRow& x) {
    return f.text(x.param) && f.text(x.value) && f.text(x.exact);
  });
  visit(SearchKind::kDate, r.dates, [](auto& f, DateIndexRow& x) {
    return f.text(x.param) && f.raw(x.start_us) && f.raw(x.end_us);
  });
  visit(SearchKind::kNumber, r.numbers,
        [](auto& f, NumberIndexRow& x) { return f.text(x.param) && f.raw(x.value); });
  visit(SearchKind::kQuantity, r.quantities, [](auto& f, QuantityIndexRow& x) {
    return f.text(x.param) && f.raw(x.value) && f.text(x.system) && f.text(x.code) &&
           f.raw(x.canonical_value) && f.text(x.canonical_code);
  });
  visit(SearchKind::kReference, r.references, [](auto& f, ReferenceIndexRow& x) {
    return f.text(x.param) && f.text(x.target_type) && f.text(x.target_id) && f.text(x.url);
  });
  visit(SearchKind::kUri, r.uris,
        [](auto& f, UriIndexRow& x) { return f.text(x.param) && f.text(x.value); });
  visit(SearchKind::kComposite, r.composites, [](auto& f, CompositeIndexRow& x) {
    return f.text(x.param) && f.text(x.system1) && f.text(x.code1) && f.text(x.code2) &&
           f.text(x.system2) && f.raw(x.number2) && f.text(x.canonical_code2) &&
           f.raw(x.canonical_number2) && f.raw(x.start2_us) && f.raw(x.end2_us);
  });
}

// Version 2 encoding: text fields are indexes into the blob's dictionary. The first pass
// interns each text field (an open-addressing table over the resource's distinct strings,
// reused by the thread: no allocation per string) and remembers its index, in field order; the
// second pass writes those indexes back in the same order.
class Dictionary {
 public:
  void Reset(size_t fields) {
    size_t cap = 64;
    while (cap < 2 * fields) cap *= 2;
    slots_.assign(cap, kEmpty);
    order_.clear();
    ids_.clear();
    next_ = 0;
  }
  bool text(const std::string& s) {
    const size_t mask = slots_.size() - 1;
    for (size_t i = std::hash<std::string_view>{}(s)&mask;; i = (i + 1) & mask) {
      const uint32_t slot = slots_[i];
      if (slot == kEmpty) {
        slots_[i] = static_cast<uint32_t>(order_.size());
        ids_.push_back(slots_[i]);
        order_.push_back(s);
        return true;
      }
      if (order_[slot] == s) {
        ids_.push_back(slot);
        return true;
      }
    }
  }
  template <typename T>
  bool raw(const T&) {
    return true;
  }
  const std::vector<std::string_view>& order() const { return order_; }
  // The index of the next text field, in the order text() saw them.
  uint32_t Next() { return ids_[next_++]; }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  std::vector<uint32_t> slots_;
  std::vector<std::string_view> order_;  // index → string
  std::vector<uint32_t> ids_;            // each text field's index, in field order
  size_t next_ = 0;
};

struct EncodeFields {
  Writer& w;
  Dictionary& dictionary;
  bool text(const std::string&) {
    w.Varint(dictionary.Next());
    return true;
  }
  template <typename T>
  bool raw(const T& v) {
    w.Raw(v);
    return true;
  }
};

struct DecodeFields {
  Reader& r;
  const std::vector<std::string>* dictionary;  // null: version 1, strings inline
  bool text(std::string& s) {
    if (!dictionary) return r.Text(s);
    uint64_t i = 0;
    if (!r.Varint(i) || i >= dictionary->size()) return false;
    s = (*dictionary)[i];
    return true;
  }
  template <typename T>
  bool raw(T& v) {
    return r.Raw(v);
  }
};

}  // namespace

std::string EncodeIndexKeys(const IndexRows& rows) {
  // ForEachKind takes a mutable IndexRows so the decoder can share it; these passes only read.
  auto& all = const_cast<IndexRows&>(rows);
  thread_local Dictionary dictionary;
  size_t row_count = 0;
  ForEachKind([&](SearchKind, auto& list, auto) { row_count += list.size(); }, all);
  dictionary.Reset(6 * row_count);  // at most 6 text fields a row (a composite)
  ForEachKind(
      [&](SearchKind, auto& list, auto fields) {
        for (auto& row : list) fields(dictionary, row);
      },
      all);
  Writer w(64 + 24 * row_count);
  w.Byte(kDictionary);
  w.Varint(dictionary.order().size());
  for (std::string_view text : dictionary.order()) w.Text(text);
  EncodeFields f{w, dictionary};
  ForEachKind(
      [&](SearchKind, auto& list, auto fields) {
        w.Varint(list.size());
        for (auto& row : list) fields(f, row);
      },
      all);
  return w.Take();
}

Result<IndexRows> DecodeIndexKeys(std::string_view blob) {
  Reader r(blob);
  char version = 0;
  if (!r.Byte(version) || (version != kInlineStrings && version != kDictionary)) {
    return Internal("resource_index_keys: unknown format version");
  }
  std::vector<std::string> dictionary;
  if (version == kDictionary) {
    uint64_t n = 0;
    if (!r.Varint(n) || n > blob.size()) return Internal("resource_index_keys: damaged row");
    dictionary.resize(n);
    for (auto& text : dictionary) {
      if (!r.Text(text)) return Internal("resource_index_keys: damaged row");
    }
  }
  IndexRows rows;
  DecodeFields f{r, version == kDictionary ? &dictionary : nullptr};
  bool ok = true;
  ForEachKind(
      [&](SearchKind, auto& list, auto fields) {
        uint64_t n = 0;
        if (!ok || !r.Varint(n) || n > blob.size()) {
          ok = false;
          return;
        }
        list.resize(n);
        for (auto& row : list) {
          if (!fields(f, row)) {
            ok = false;
            return;
          }
        }
      },
      rows);
  if (!ok || !r.AtEnd()) return Internal("resource_index_keys: damaged row");
  return rows;
}

namespace {

// Each kind's field types in order ('T' text, 'R' 8 raw bytes), read off ForEachKind's layout
// once, so that the view decoder cannot drift from the encoder either.
struct FieldTypes {
  std::string& out;
  bool text(std::string&) {
    out.push_back('T');
    return true;
  }
  template <typename T>
  bool raw(T&) {
    static_assert(sizeof(T) == sizeof(uint64_t), "raw fields are 8 bytes (KindRows::Field::bits)");
    out.push_back('R');
    return true;
  }
};

// The kinds as written, each with its field types.
using KindLayouts = std::vector<std::pair<SearchKind, std::string>>;

const KindLayouts& Layouts() {
  static const KindLayouts layouts = [] {
    KindLayouts l;
    IndexRows one;
    ForEachKind([](SearchKind, auto& list, auto) { list.resize(1); }, one);
    ForEachKind(
        [&](SearchKind kind, auto& list, auto fields) {
          std::string types;
          FieldTypes f{types};
          fields(f, list[0]);
          l.emplace_back(kind, std::move(types));
        },
        one);
    return l;
  }();
  return layouts;
}

}  // namespace

Status DecodeKindRows(std::string_view blob, SearchKind kind, KindRows& out) {
  out.fields.clear();
  out.width = 0;
  out.dictionary.clear();
  const auto damaged = [] { return Internal("resource_index_keys: damaged row"); };
  Reader r(blob);
  char version = 0;
  if (!r.Byte(version) || (version != kInlineStrings && version != kDictionary)) {
    return Internal("resource_index_keys: unknown format version");
  }
  if (version == kDictionary) {
    uint64_t n = 0;
    if (!r.Varint(n) || n > blob.size()) return damaged();
    out.dictionary.resize(n);
    for (auto& text : out.dictionary) {
      if (!r.TextView(text)) return damaged();
    }
  }
  for (const auto& [k, types] : Layouts()) {
    uint64_t n = 0;
    if (!r.Varint(n) || n > blob.size()) return damaged();
    const bool wanted = k == kind;
    if (wanted) {
      out.width = types.size();
      out.fields.resize(n * types.size());
    }
    size_t at = 0;
    for (uint64_t row = 0; row < n; ++row) {
      for (const char type : types) {
        KindRows::Field field;
        if (type == 'R') {
          if (!r.Raw(field.bits)) return damaged();
        } else if (version == kDictionary) {
          uint64_t i = 0;
          if (!r.Varint(i) || i >= out.dictionary.size()) return damaged();
          field.text = out.dictionary[i];
        } else if (!r.TextView(field.text)) {
          return damaged();
        }
        if (wanted) out.fields[at++] = field;
      }
    }
    if (wanted) return Status::Ok();  // the kinds after it are not read
  }
  return Status::Ok();
}

namespace {

// jc_sort_key(keys, kind, param, descending). Decodes only what it needs: the rows of one kind.
void SortKeyFunction(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) != SQLITE_BLOB) return;  // NULL: no rows, sorts last
  const auto* data = static_cast<const char*>(sqlite3_value_blob(argv[0]));
  const std::string_view blob(data ? data : "", static_cast<size_t>(sqlite3_value_bytes(argv[0])));
  const auto kind = static_cast<SearchKind>(sqlite3_value_int(argv[1]));
  const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(argv[2]));
  const std::string_view param(p ? p : "", static_cast<size_t>(sqlite3_value_bytes(argv[2])));
  const bool descending = sqlite3_value_int(argv[3]) != 0;

  thread_local KindRows rows;
  if (Status s = DecodeKindRows(blob, kind, rows); !s.ok()) {
    sqlite3_result_error(ctx, s.error().message.c_str(), -1);
    return;
  }
  std::optional<std::string_view> best_text;
  std::optional<double> best_real;
  std::optional<int64_t> best_int;
  auto better = [&](const auto& v, const auto& best) {
    return !best || (descending ? v > *best : v < *best);
  };
  // The field a kind sorts by, in its row's field order (param first: TokenIndexRow is param,
  // system, code; DateIndexRow param, start_us, end_us; ReferenceIndexRow param, target_type,
  // target_id; the value second for strings, numbers, quantities and uris).
  auto take_text = [&](size_t field, bool skip_empty) {
    for (size_t i = 0; i < rows.rows(); ++i) {
      if (rows.at(i, 0).text != param) continue;
      const std::string_view v = rows.at(i, field).text;
      if (skip_empty && v.empty()) continue;
      if (better(v, best_text)) best_text = v;
    }
  };
  auto take_bits = [&](size_t field, auto& best) {
    using T = typename std::decay_t<decltype(best)>::value_type;
    for (size_t i = 0; i < rows.rows(); ++i) {
      if (rows.at(i, 0).text != param) continue;
      T v;
      std::memcpy(&v, &rows.at(i, field).bits, sizeof v);
      if (better(v, best)) best = v;
    }
  };
  switch (kind) {
    case SearchKind::kToken:
      take_text(2, /*skip_empty=*/true);  // "system|" rows have no code to sort by
      break;
    case SearchKind::kString:
    case SearchKind::kUri:
      take_text(1, false);
      break;
    case SearchKind::kDate:
      take_bits(descending ? 2 : 1, best_int);
      break;
    case SearchKind::kNumber:
    case SearchKind::kQuantity:
      take_bits(1, best_real);
      break;
    case SearchKind::kReference:
      take_text(2, false);
      break;
    default:
      break;
  }
  if (best_text) {
    sqlite3_result_text64(ctx, best_text->data(), best_text->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  } else if (best_real) {
    sqlite3_result_double(ctx, *best_real);
  } else if (best_int) {
    sqlite3_result_int64(ctx, *best_int);
  }  // else NULL
}

}  // namespace

int RegisterSortKeyFunction(sqlite3* db) {
  return sqlite3_create_function_v2(db, "jc_sort_key", 4,
                                    SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, nullptr,
                                    &SortKeyFunction, nullptr, nullptr, nullptr);
}

}  // namespace jiceng::store::sqlite
