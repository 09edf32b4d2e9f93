// The SQLite write side of the search index: replaces a resource's rows in the idx_* tables
// (schema in sqlite_schema.cpp) in the same transaction as its version, and keeps the resource's
// index keys (the encoded IndexRows, see index_keys.h) in resource_index_keys. Those keys are how
// the old rows are found again on the next Put (by primary key) and how a search sorts by a
// parameter, so the idx_* tables need no second index on rid: each index row costs one B-tree
// insert instead of two.
#include "store/sqlite/sqlite_index_write.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <tuple>
#include <vector>

#include "store/sqlite/connection.h"
#include "store/sqlite/index_keys.h"
#include "store/sqlite/index_runs.h"

namespace jiceng::store::sqlite {
namespace {

constexpr const char* kPendingDeclaration =
    "CREATE TABLE x(type, rid, param, value, exact, code, system, start_us, end_us, "
    "canonical_code, canonical_value, target_id, target_type, url, code1, system1, code2, "
    "system2, number2, start2_us, end2_us, canonical_code2, canonical_number2, rows HIDDEN, "
    "kind HIDDEN)";

constexpr const char* kPendingPointerType = "jc_pending_rows";
constexpr const char* kRunsPointerType = "jc_index_runs";

struct PendingCursor {
  sqlite3_vtab_cursor base;  // first: SQLite casts between the two
  // One of the two is set: a unit's rows, or a bulk load's sorted runs (index_runs.h).
  const PendingIndexRows* rows = nullptr;
  const IndexRunBuffer* runs = nullptr;
  SearchKind kind = SearchKind::kToken;
  size_t at = 0;
  size_t size = 0;
  IndexRunBuffer::Reader reader;  // runs: their rows in key order
  IndexRunBuffer::RowView view;   // … the reader's current row, decoded by its first column
};

// IndexRunBuffer's arena of each idx_* table (its order: token, string, date, number, quantity,
// reference, uri, composite); -1 for a kind with no table.
int RunKind(SearchKind kind) {
  switch (kind) {
    case SearchKind::kToken:
      return 0;
    case SearchKind::kString:
      return 1;
    case SearchKind::kDate:
      return 2;
    case SearchKind::kNumber:
      return 3;
    case SearchKind::kQuantity:
      return 4;
    case SearchKind::kReference:
      return 5;
    case SearchKind::kUri:
      return 6;
    case SearchKind::kComposite:
      return 7;
    default:
      return -1;
  }
}

size_t KindSize(const PendingIndexRows& p, SearchKind kind) {
  switch (kind) {
    case SearchKind::kToken:
      return p.tokens.size();
    case SearchKind::kString:
      return p.strings.size();
    case SearchKind::kDate:
      return p.dates.size();
    case SearchKind::kNumber:
      return p.numbers.size();
    case SearchKind::kQuantity:
      return p.quantities.size();
    case SearchKind::kReference:
      return p.references.size();
    case SearchKind::kUri:
      return p.uris.size();
    case SearchKind::kComposite:
      return p.composites.size();
    default:
      return 0;
  }
}

// The rows live until the statement ends (Flush holds them): no copy.
void StaticText(sqlite3_context* ctx, const std::string& s) {
  sqlite3_result_text64(ctx, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
}

int PendingConnect(sqlite3* db, void*, int, const char* const*, sqlite3_vtab** out, char**) {
  int rc = sqlite3_declare_vtab(db, kPendingDeclaration);
  if (rc != SQLITE_OK) return rc;
  auto* vtab = static_cast<sqlite3_vtab*>(sqlite3_malloc(sizeof(sqlite3_vtab)));
  if (!vtab) return SQLITE_NOMEM;
  *vtab = sqlite3_vtab{};
  *out = vtab;
  // Not INNOCUOUS: it reads a pointer only the store binds; DIRECTONLY keeps it out of schema
  // objects (views, triggers) that stored data could define.
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  return SQLITE_OK;
}

int PendingDisconnect(sqlite3_vtab* vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
}

int PendingBestIndex(sqlite3_vtab*, sqlite3_index_info* info) {
  int rows = -1;
  int kind = -1;
  for (int i = 0; i < info->nConstraint; ++i) {
    const auto& c = info->aConstraint[i];
    if (c.op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
    if (c.iColumn == kRowsArg) {
      if (!c.usable) return SQLITE_CONSTRAINT;
      rows = i;
    } else if (c.iColumn == kKindArg) {
      if (!c.usable) return SQLITE_CONSTRAINT;
      kind = i;
    }
  }
  if (rows < 0 || kind < 0) return SQLITE_CONSTRAINT;
  info->aConstraintUsage[rows].argvIndex = 1;
  info->aConstraintUsage[rows].omit = 1;
  info->aConstraintUsage[kind].argvIndex = 2;
  info->aConstraintUsage[kind].omit = 1;
  info->estimatedCost = 1000;
  info->estimatedRows = 1000;
  return SQLITE_OK;
}

int PendingOpen(sqlite3_vtab*, sqlite3_vtab_cursor** out) {
  auto* cur = new (std::nothrow) PendingCursor();
  if (!cur) return SQLITE_NOMEM;
  *out = &cur->base;
  return SQLITE_OK;
}

int PendingClose(sqlite3_vtab_cursor* c) {
  delete reinterpret_cast<PendingCursor*>(c);
  return SQLITE_OK;
}

int PendingFilter(sqlite3_vtab_cursor* c, int, const char*, int argc, sqlite3_value** argv) {
  auto* cur = reinterpret_cast<PendingCursor*>(c);
  cur->rows = nullptr;
  cur->runs = nullptr;
  cur->at = 0;
  cur->size = 0;
  if (argc != 2) return SQLITE_OK;
  cur->kind = static_cast<SearchKind>(sqlite3_value_int(argv[1]));
  cur->rows =
      static_cast<const PendingIndexRows*>(sqlite3_value_pointer(argv[0], kPendingPointerType));
  if (cur->rows != nullptr) {
    cur->size = KindSize(*cur->rows, cur->kind);
    return SQLITE_OK;
  }
  cur->runs = static_cast<const IndexRunBuffer*>(sqlite3_value_pointer(argv[0], kRunsPointerType));
  cur->reader = IndexRunBuffer::Reader();
  cur->view = IndexRunBuffer::RowView();
  const int run = RunKind(cur->kind);
  if (cur->runs != nullptr && run >= 0) cur->reader = cur->runs->Read(run);
  return SQLITE_OK;  // neither: not bound by the store, no rows
}

int PendingNext(sqlite3_vtab_cursor* c) {
  auto* cur = reinterpret_cast<PendingCursor*>(c);
  ++cur->at;
  if (cur->runs != nullptr) cur->reader.Next();
  return SQLITE_OK;
}

int PendingEof(sqlite3_vtab_cursor* c) {
  auto* cur = reinterpret_cast<PendingCursor*>(c);
  if (cur->runs != nullptr) return cur->reader.done();
  return cur->at >= cur->size;
}

int PendingColumnValue(sqlite3_vtab_cursor* c, sqlite3_context* ctx, int col) {
  auto* cur = reinterpret_cast<PendingCursor*>(c);
  const size_t i = cur->at;
  if (cur->runs != nullptr) {
    const char* record = cur->reader.record();
    if (record == nullptr) return SQLITE_OK;
    if (cur->view.record != record) cur->runs->Decode(RunKind(cur->kind), record, cur->view);
    cur->runs->Column(cur->view, col, ctx);
    return SQLITE_OK;
  }
  const PendingIndexRows& p = *cur->rows;
  auto common = [&](const auto& e) {
    if (col == kType) {
      StaticText(ctx, p.type_name(e.type));
      return true;
    }
    if (col == kRid) {
      sqlite3_result_int64(ctx, e.rid);
      return true;
    }
    if (col == kParam) {
      StaticText(ctx, e.row.param);
      return true;
    }
    return false;
  };
  switch (cur->kind) {
    case SearchKind::kToken: {
      const auto& e = p.tokens[p.order[i]];
      if (common(e)) break;
      if (col == kCode)
        StaticText(ctx, e.row.code);
      else if (col == kSystem)
        StaticText(ctx, e.row.system);
      break;
    }
    case SearchKind::kString: {
      const auto& e = p.strings[p.order[i]];
      if (common(e)) break;
      if (col == kValue)
        StaticText(ctx, e.row.value);
      else if (col == kExact)
        StaticText(ctx, e.row.exact);
      break;
    }
    case SearchKind::kDate: {
      const auto& e = p.dates[p.order[i]];
      if (common(e)) break;
      if (col == kStartUs)
        sqlite3_result_int64(ctx, e.row.start_us);
      else if (col == kEndUs)
        sqlite3_result_int64(ctx, e.row.end_us);
      break;
    }
    case SearchKind::kNumber: {
      const auto& e = p.numbers[p.order[i]];
      if (common(e)) break;
      if (col == kValue) sqlite3_result_double(ctx, e.row.value);
      break;
    }
    case SearchKind::kQuantity: {
      const auto& e = p.quantities[p.order[i]];
      if (common(e)) break;
      if (col == kValue)
        sqlite3_result_double(ctx, e.row.value);
      else if (col == kCode)
        StaticText(ctx, e.row.code);
      else if (col == kSystem)
        StaticText(ctx, e.row.system);
      else if (col == kCanonicalCode)
        StaticText(ctx, e.row.canonical_code);
      else if (col == kCanonicalValue)
        sqlite3_result_double(ctx, e.row.canonical_value);
      break;
    }
    case SearchKind::kReference: {
      const auto& e = p.references[p.order[i]];
      if (common(e)) break;
      if (col == kTargetId)
        StaticText(ctx, e.row.target_id);
      else if (col == kTargetType)
        StaticText(ctx, e.row.target_type);
      else if (col == kUrl)
        StaticText(ctx, e.row.url);
      break;
    }
    case SearchKind::kUri: {
      const auto& e = p.uris[p.order[i]];
      if (common(e)) break;
      if (col == kValue) StaticText(ctx, e.row.value);
      break;
    }
    case SearchKind::kComposite: {
      const auto& e = p.composites[p.order[i]];
      if (common(e)) break;
      const auto& x = e.row;
      switch (col) {
        case kCode1:
          StaticText(ctx, x.code1);
          break;
        case kSystem1:
          StaticText(ctx, x.system1);
          break;
        case kCode2:
          StaticText(ctx, x.code2);
          break;
        case kSystem2:
          StaticText(ctx, x.system2);
          break;
        case kNumber2:
          sqlite3_result_double(ctx, x.number2);
          break;
        case kStart2Us:
          sqlite3_result_int64(ctx, x.start2_us);
          break;
        case kEnd2Us:
          sqlite3_result_int64(ctx, x.end2_us);
          break;
        case kCanonicalCode2:
          StaticText(ctx, x.canonical_code2);
          break;
        case kCanonicalNumber2:
          sqlite3_result_double(ctx, x.canonical_number2);
          break;
        default:
          break;
      }
      break;
    }
    default:
      break;
  }
  return SQLITE_OK;  // columns a kind does not have are NULL
}

int PendingRowid(sqlite3_vtab_cursor* c, sqlite3_int64* rowid) {
  *rowid = static_cast<sqlite3_int64>(reinterpret_cast<PendingCursor*>(c)->at);
  return SQLITE_OK;
}

const sqlite3_module kPendingModule = {
    /* iVersion */ 0,
    /* xCreate: eponymous only */ nullptr,
    PendingConnect,
    PendingBestIndex,
    PendingDisconnect,
    /* xDestroy */ nullptr,
    PendingOpen,
    PendingClose,
    PendingFilter,
    PendingNext,
    PendingEof,
    PendingColumnValue,
    PendingRowid,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr};

// One INSERT … SELECT per table. OR IGNORE throughout: the same value reached by two paths of
// one resource is one row.
struct KindInsert {
  SearchKind kind;
  const char* sql;
};
constexpr KindInsert kKindInserts[] = {
    {SearchKind::kToken,
     "INSERT OR IGNORE INTO idx_token(type, param, code, system, rid) "
     "SELECT type, param, code, system, rid FROM jc_pending(?1, ?2)"},
    {SearchKind::kString,
     "INSERT OR IGNORE INTO idx_string(type, param, value, exact, rid) "
     "SELECT type, param, value, exact, rid FROM jc_pending(?1, ?2)"},
    {SearchKind::kDate,
     "INSERT OR IGNORE INTO idx_date(type, param, start_us, end_us, rid) "
     "SELECT type, param, start_us, end_us, rid FROM jc_pending(?1, ?2)"},
    {SearchKind::kNumber,
     "INSERT OR IGNORE INTO idx_number(type, param, value, rid) "
     "SELECT type, param, value, rid FROM jc_pending(?1, ?2)"},
    {SearchKind::kQuantity,
     "INSERT OR IGNORE INTO idx_quantity(type, param, code, system, value, canonical_code, "
     "canonical_value, rid) SELECT type, param, code, system, value, canonical_code, "
     "canonical_value, rid FROM jc_pending(?1, ?2)"},
    {SearchKind::kReference,
     "INSERT OR IGNORE INTO idx_reference(type, param, target_id, target_type, url, rid) "
     "SELECT type, param, target_id, target_type, url, rid FROM jc_pending(?1, ?2)"},
    {SearchKind::kUri,
     "INSERT OR IGNORE INTO idx_uri(type, param, value, rid) "
     "SELECT type, param, value, rid FROM jc_pending(?1, ?2)"},
    {SearchKind::kComposite,
     "INSERT OR IGNORE INTO idx_composite(type, param, code1, system1, code2, system2, number2, "
     "start2_us, end2_us, rid, canonical_code2, canonical_number2) "
     "SELECT type, param, code1, system1, code2, system2, number2, start2_us, end2_us, rid, "
     "canonical_code2, canonical_number2 FROM jc_pending(?1, ?2)"},
};

// Sets p.order to the positions of `v` sorted by (type, the table's key columns after type,
// rid): the order of the primary key, with type compared as text (SQLite's BINARY collation
// compares bytes, as std::string does). Sorts positions, not the rows (moving rows moves
// their strings).
template <typename Row, typename Key>
void SortByKey(PendingIndexRows& p, const std::vector<PendingIndexRows::Entry<Row>>& v, Key key) {
  p.order.resize(v.size());
  for (uint32_t i = 0; i < v.size(); ++i) p.order[i] = i;
  std::sort(p.order.begin(), p.order.end(), [&](uint32_t ia, uint32_t ib) {
    const auto& a = v[ia];
    const auto& b = v[ib];
    if (a.type != b.type) return p.type_name(a.type) < p.type_name(b.type);
    auto ka = key(a.row);
    auto kb = key(b.row);
    if (ka != kb) return ka < kb;
    if (a.rid != b.rid) return a.rid < b.rid;
    return ia < ib;
  });
}

// Sorts the rows of `kind` into p.order.
void SortKind(PendingIndexRows& p, SearchKind kind) {
  switch (kind) {
    case SearchKind::kToken:
      SortByKey(p, p.tokens,
                [](const TokenIndexRow& r) { return std::tie(r.param, r.code, r.system); });
      break;
    case SearchKind::kString:
      SortByKey(p, p.strings,
                [](const StringIndexRow& r) { return std::tie(r.param, r.value, r.exact); });
      break;
    case SearchKind::kDate:
      SortByKey(p, p.dates,
                [](const DateIndexRow& r) { return std::tie(r.param, r.start_us, r.end_us); });
      break;
    case SearchKind::kNumber:
      SortByKey(p, p.numbers, [](const NumberIndexRow& r) {
        return std::tuple<const std::string&, int64_t>(r.param, OrderedFromDouble(r.value));
      });
      break;
    case SearchKind::kQuantity:
      SortByKey(p, p.quantities, [](const QuantityIndexRow& r) {
        using S = const std::string&;
        return std::tuple<S, S, S, int64_t>(r.param, r.code, r.system, OrderedFromDouble(r.value));
      });
      break;
    case SearchKind::kReference:
      SortByKey(p, p.references, [](const ReferenceIndexRow& r) {
        return std::tie(r.param, r.target_id, r.target_type, r.url);
      });
      break;
    case SearchKind::kUri:
      SortByKey(p, p.uris, [](const UriIndexRow& r) { return std::tie(r.param, r.value); });
      break;
    case SearchKind::kComposite:
      SortByKey(p, p.composites, [](const CompositeIndexRow& r) {
        using S = const std::string&;
        return std::tuple<S, S, S, S, S, int64_t, int64_t, int64_t>(
            r.param, r.code1, r.system1, r.code2, r.system2, OrderedFromDouble(r.number2),
            r.start2_us, r.end2_us);
      });
      break;
    default:
      p.order.clear();
      break;
  }
}

// Deletes exactly the rows PendingIndexRows::Flush wrote for `index` (each by its whole primary
// key).
Status DeleteRows(Connection& c, std::string_view type, int64_t rid, const IndexRows& index) {
  for (const TokenIndexRow& t : index.tokens) {
    JC_SQL_STMT(s, c,
                "DELETE FROM idx_token WHERE type = ?1 AND param = ?2 AND code = ?3 AND "
                "system = ?4 AND rid = ?5");
    s.BindText(1, type);
    s.BindText(2, t.param);
    s.BindText(3, t.code);
    s.BindText(4, t.system);
    s.BindInt(5, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const StringIndexRow& r : index.strings) {
    JC_SQL_STMT(s, c,
                "DELETE FROM idx_string WHERE type = ?1 AND param = ?2 AND value = ?3 AND "
                "exact = ?4 AND rid = ?5");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindText(3, r.value);
    s.BindText(4, r.exact);
    s.BindInt(5, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const DateIndexRow& r : index.dates) {
    JC_SQL_STMT(s, c,
                "DELETE FROM idx_date WHERE type = ?1 AND param = ?2 AND start_us = ?3 AND "
                "end_us = ?4 AND rid = ?5");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindInt(3, r.start_us);
    s.BindInt(4, r.end_us);
    s.BindInt(5, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const NumberIndexRow& r : index.numbers) {
    JC_SQL_STMT(
        s, c, "DELETE FROM idx_number WHERE type = ?1 AND param = ?2 AND value = ?3 AND rid = ?4");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindDouble(3, r.value);
    s.BindInt(4, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const QuantityIndexRow& r : index.quantities) {
    JC_SQL_STMT(s, c,
                "DELETE FROM idx_quantity WHERE type = ?1 AND param = ?2 AND code = ?3 AND "
                "system = ?4 AND value = ?5 AND rid = ?6");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindText(3, r.code);
    s.BindText(4, r.system);
    s.BindDouble(5, r.value);
    s.BindInt(6, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const ReferenceIndexRow& r : index.references) {
    JC_SQL_STMT(s, c,
                "DELETE FROM idx_reference WHERE type = ?1 AND param = ?2 AND target_id = ?3 AND "
                "target_type = ?4 AND url = ?5 AND rid = ?6");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindText(3, r.target_id);
    s.BindText(4, r.target_type);
    s.BindText(5, r.url);
    s.BindInt(6, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const UriIndexRow& r : index.uris) {
    JC_SQL_STMT(s, c,
                "DELETE FROM idx_uri WHERE type = ?1 AND param = ?2 AND value = ?3 AND rid = ?4");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindText(3, r.value);
    s.BindInt(4, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const CompositeIndexRow& r : index.composites) {
    JC_SQL_STMT(s, c,
                "DELETE FROM idx_composite WHERE type = ?1 AND param = ?2 AND code1 = ?3 AND "
                "system1 = ?4 AND code2 = ?5 AND system2 = ?6 AND number2 = ?7 AND "
                "start2_us = ?8 AND end2_us = ?9 AND rid = ?10");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindText(3, r.code1);
    s.BindText(4, r.system1);
    s.BindText(5, r.code2);
    s.BindText(6, r.system2);
    s.BindDouble(7, r.number2);
    s.BindInt(8, r.start2_us);
    s.BindInt(9, r.end2_us);
    s.BindInt(10, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  return Status::Ok();
}

// The _text/_content row: fts_resource is an FTS5 table whose rowid is the resource's rid.
Status ReplaceFullText(Connection& c, int64_t rid, bool fresh, const FullTextIndexRow* row) {
  if (!fresh) {
    JC_SQL_STMT(s, c, "DELETE FROM fts_resource WHERE rowid = ?1");
    s.BindInt(1, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  if (row != nullptr) {
    JC_SQL_STMT(s, c, "INSERT INTO fts_resource(rowid, narrative, content) VALUES (?1, ?2, ?3)");
    s.BindInt(1, rid);
    s.BindText(2, row->narrative);
    s.BindText(3, row->content);
    JC_RETURN_IF_ERROR(s.Run());
  }
  return Status::Ok();
}

}  // namespace

bool EmptyIndexRows(const IndexRows& r) {
  return r.tokens.empty() && r.strings.empty() && r.dates.empty() && r.numbers.empty() &&
         r.quantities.empty() && r.references.empty() && r.uris.empty() && r.composites.empty();
}

Result<std::optional<IndexRows>> ReadIndexKeys(Connection& c, int64_t rid) {
  JC_SQL_STMT(s, c, "SELECT keys FROM resource_index_keys WHERE rid = ?1");
  s.BindInt(1, rid);
  JC_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<IndexRows>();
  JC_ASSIGN_OR_RETURN(IndexRows rows, DecodeIndexKeys(s.ColumnBlob(0)));
  return std::optional<IndexRows>(std::move(rows));
}

std::string PackPrecomputedIndex(std::string_view keys, std::string_view type,
                                 std::string_view records) {
  std::string out;
  out.reserve(8 + keys.size() + type.size() + records.size());
  for (std::string_view part : {keys, type}) {
    const auto n = static_cast<uint32_t>(part.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
    out.append(part);
  }
  out.append(records);
  return out;
}

PrecomputedIndex UnpackPrecomputedIndex(std::string_view packed) {
  PrecomputedIndex out;
  std::string_view parts[2];
  for (std::string_view& part : parts) {
    uint32_t n = 0;
    if (packed.size() < 4) return {};
    std::memcpy(&n, packed.data(), 4);
    packed.remove_prefix(4);
    if (packed.size() < n) return {};
    part = packed.substr(0, n);
    packed.remove_prefix(n);
  }
  out.keys = parts[0];
  out.type = parts[1];
  out.records = packed;
  return out;
}

Status WriteIndexKeys(Connection& c, int64_t rid, const IndexRows& index) {
  if (EmptyIndexRows(index)) {
    JC_SQL_STMT(s, c, "DELETE FROM resource_index_keys WHERE rid = ?1");
    s.BindInt(1, rid);
    return s.Run();
  }
  JC_SQL_STMT(s, c, "INSERT OR REPLACE INTO resource_index_keys(rid, keys) VALUES (?1, ?2)");
  s.BindInt(1, rid);
  // Encoded off the writer thread when the caller precomputed it (SqliteStore::PrecomputeIndex).
  std::string encoded;
  std::string_view keys = UnpackPrecomputedIndex(index.precomputed).keys;
  if (keys.empty()) {
    encoded = EncodeIndexKeys(index);
    keys = encoded;
  }
  s.BindBlob(2, keys);
  return s.Run();
}

Status ReplaceIndexRows(Connection& c, std::string_view type, int64_t rid, bool fresh,
                        const IndexRows& index, FullTextQueue* deferred_full_text,
                        PendingIndexRows* pending, IndexRunBuffer* runs) {
  if (!fresh) {
    // The old rows may still be pending (written earlier in this unit, or held in a bulk load's
    // runs): insert them first so that the delete below finds them.
    if (runs != nullptr && !runs->empty()) JC_RETURN_IF_ERROR(runs->Flush(c));  // spilled too
    if (pending != nullptr && !pending->empty()) JC_RETURN_IF_ERROR(pending->Flush(c));
    JC_ASSIGN_OR_RETURN(std::optional<IndexRows> old, ReadIndexKeys(c, rid));
    if (old) JC_RETURN_IF_ERROR(DeleteRows(c, type, rid, *old));
  }
  if (fresh && runs != nullptr) {
    // The records were encoded off the writer thread when the caller precomputed them.
    const PrecomputedIndex pre = UnpackPrecomputedIndex(index.precomputed);
    if (pre.type != type || !runs->AddEncoded(rid, pre.records)) runs->Add(type, rid, index);
  } else if (pending != nullptr) {
    pending->Add(type, rid, index);
  } else {
    PendingIndexRows now;
    now.Add(type, rid, index);
    JC_RETURN_IF_ERROR(now.Flush(c));
  }
  // At most one full-text row per resource.
  const FullTextIndexRow* text = index.full_text.empty() ? nullptr : &index.full_text.front();
  if (deferred_full_text == nullptr) {
    // Written now: a row of an older version still waiting (fts_pending) must not overwrite it.
    if (!fresh) {
      JC_SQL_STMT(s, c, "DELETE FROM fts_pending WHERE rid = ?1");
      s.BindInt(1, rid);
      JC_RETURN_IF_ERROR(s.Run());
    }
    JC_RETURN_IF_ERROR(ReplaceFullText(c, rid, fresh, text));
  } else if (text != nullptr || !fresh) {
    deferred_full_text->push_back(
        {rid, fresh, text ? std::optional<FullTextIndexRow>(*text) : std::nullopt});
  }
  if (fresh && EmptyIndexRows(index)) return Status::Ok();
  return WriteIndexKeys(c, rid, index);
}

void PendingIndexRows::Add(std::string_view type, int64_t rid, const IndexRows& index) {
  uint32_t t = 0;
  while (t < types_.size() && types_[t] != type) ++t;
  if (t == types_.size()) types_.emplace_back(type);
  for (const auto& r : index.tokens) tokens.push_back({t, rid, r});
  for (const auto& r : index.strings) strings.push_back({t, rid, r});
  for (const auto& r : index.dates) dates.push_back({t, rid, r});
  for (const auto& r : index.numbers) numbers.push_back({t, rid, r});
  for (const auto& r : index.quantities) quantities.push_back({t, rid, r});
  for (const auto& r : index.references) references.push_back({t, rid, r});
  for (const auto& r : index.uris) uris.push_back({t, rid, r});
  for (const auto& r : index.composites) composites.push_back({t, rid, r});
  count_ += index.tokens.size() + index.strings.size() + index.dates.size() + index.numbers.size() +
            index.quantities.size() + index.references.size() + index.uris.size() +
            index.composites.size();
}

void PendingIndexRows::clear() {
  tokens.clear();
  strings.clear();
  dates.clear();
  numbers.clear();
  quantities.clear();
  references.clear();
  uris.clear();
  composites.clear();
  types_.clear();
  count_ = 0;
}

Status PendingIndexRows::Flush(Connection& c) {
  if (count_ == 0) return Status::Ok();
  for (const KindInsert& k : kKindInserts) {
    if (KindSize(*this, k.kind) == 0) continue;
    SortKind(*this, k.kind);
    JC_SQL_STMT(s, c, k.sql);
    sqlite3_bind_pointer(s_raw, 1, this, kPendingPointerType, nullptr);
    s.BindInt(2, static_cast<int64_t>(k.kind));
    JC_RETURN_IF_ERROR(s.Run());
  }
  clear();
  return Status::Ok();
}

int64_t OrderedFromDouble(double d) {
  auto bits = std::bit_cast<int64_t>(d);
  return bits < 0 ? std::numeric_limits<int64_t>::min() - bits - 1 : bits;
}

Status InsertIndexRuns(Connection& c, const IndexRunBuffer& runs, const std::vector<int>& order,
                       const std::function<void(int)>& before) {
  for (int run : order) {
    const KindInsert* k = nullptr;
    for (const KindInsert& x : kKindInserts)
      if (RunKind(x.kind) == run) k = &x;
    if (k == nullptr) continue;
    if (before) before(run);
    if (runs.rows(run) == 0) continue;
    JC_SQL_STMT(s, c, k->sql);
    sqlite3_bind_pointer(s_raw, 1, const_cast<IndexRunBuffer*>(&runs), kRunsPointerType, nullptr);
    s.BindInt(2, static_cast<int64_t>(k->kind));
    JC_RETURN_IF_ERROR(s.Run());
  }
  return Status::Ok();
}

int RegisterPendingRowsTable(sqlite3* db) {
  return sqlite3_create_module_v2(db, "jc_pending", &kPendingModule, nullptr, nullptr);
}

Status QueueFullText(Connection& c, FullTextQueue& queue) {
  for (const FullTextWrite& w : queue) {
    JC_SQL_STMT(s, c,
                "INSERT OR REPLACE INTO fts_pending(rid, fresh, narrative, content) "
                "VALUES (?1, ?2, ?3, ?4)");
    s.BindInt(1, w.rid);
    // A waiting row replaced by a later version's: whether fts_resource holds an older row is
    // then unknown here, and deleting a row that is not there costs a look-up only.
    s.BindInt(2, w.fresh ? 1 : 0);
    if (w.row) {
      s.BindText(3, w.row->narrative);
      s.BindText(4, w.row->content);
    } else {
      s.BindNull(3);  // no text any more: the flush deletes the old row only
      s.BindNull(4);
    }
    JC_RETURN_IF_ERROR(s.Run());
  }
  queue.clear();
  return Status::Ok();
}

Result<int64_t> IndexFullText(Connection& c, FullTextQueue& queue) {
  // In rid order, a chunk at a time: the rows read are held in memory while they are indexed.
  constexpr int kChunk = 1000;
  int64_t indexed = 0;
  int64_t after = std::numeric_limits<int64_t>::min();
  for (;;) {
    FullTextQueue chunk;
    {
      JC_SQL_STMT(s, c,
                  "SELECT rid, fresh, narrative, content FROM fts_pending WHERE rid > ?1 "
                  "ORDER BY rid LIMIT ?2");
      s.BindInt(1, after);
      s.BindInt(2, kChunk);
      for (;;) {
        JC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        FullTextWrite& w = chunk.emplace_back();
        w.rid = s.ColumnInt(0);
        w.fresh = s.ColumnInt(1) != 0;
        if (!s.ColumnIsNull(2)) w.row = FullTextIndexRow{s.ColumnText(2), s.ColumnText(3)};
      }
    }
    if (chunk.empty()) break;
    after = chunk.back().rid;
    for (const FullTextWrite& w : chunk) {
      JC_RETURN_IF_ERROR(ReplaceFullText(c, w.rid, w.fresh, w.row ? &*w.row : nullptr));
    }
    indexed += static_cast<int64_t>(chunk.size());
    if (chunk.size() < static_cast<size_t>(kChunk)) break;
  }
  if (indexed > 0) JC_RETURN_IF_ERROR(c.Exec("DELETE FROM fts_pending"));
  for (const FullTextWrite& w : queue) {
    JC_RETURN_IF_ERROR(ReplaceFullText(c, w.rid, w.fresh, w.row ? &*w.row : nullptr));
  }
  queue.clear();
  return indexed;
}

Result<int64_t> CountPendingFullText(Connection& c) {
  JC_ASSIGN_OR_RETURN(std::optional<int64_t> n, c.QueryInt("SELECT count(*) FROM fts_pending"));
  return n.value_or(0);
}

}  // namespace jiceng::store::sqlite
