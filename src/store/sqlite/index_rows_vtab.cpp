// jc_rows(keys, kind): the index rows of one resource, of one SearchKind, decoded from its
// resource_index_keys blob and presented with the columns of the idx_* tables — an eponymous
// table-valued function. A search probes a candidate resource with the very same column
// conditions the compiler writes for the idx_* tables, e.g.
//   EXISTS (SELECT 1 FROM jc_rows((SELECT keys FROM resource_index_keys WHERE rid = r.rid), 2)
//           WHERE param = ?5 AND (start_us >= ?6 AND end_us <= ?7))
// so the probe and the index scan cannot disagree: they are one condition over the same values.
// (The idx_* tables have no index on rid: a probe through them would scan a whole parameter.)
#include <sqlite3.h>

#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "store/sqlite/index_keys.h"

namespace jiceng::store::sqlite {
namespace {

// Column order of the declared table (keep in sync with kDeclaration).
enum Column : int {
  kParam, kValue, kExact, kCode, kSystem, kStartUs, kEndUs, kCanonicalCode, kCanonicalValue,
  kTargetId, kTargetType, kUrl, kCode1, kSystem1, kCode2, kSystem2, kNumber2, kStart2Us, kEnd2Us,
  kCanonicalCode2, kCanonicalNumber2, kKeysArg, kKindArg
};

constexpr const char* kDeclaration =
    "CREATE TABLE x(param, value, exact, code, system, start_us, end_us, canonical_code, "
    "canonical_value, target_id, target_type, url, code1, system1, code2, system2, number2, "
    "start2_us, end2_us, canonical_code2, canonical_number2, keys HIDDEN, kind HIDDEN)";

struct Cursor {
  sqlite3_vtab_cursor base;  // first: SQLite casts between the two
  std::string keys;          // the blob of the current Filter (argv lives only during the call)
  KindRows rows;             // views into `keys`
  SearchKind kind = SearchKind::kToken;
  size_t at = 0;
};

// Where each column of a kind sits among its row's fields (KindRows, in the field order of the
// kind's row type: TokenIndexRow is param, system, code; and so on), and its SQL type.
enum class As : uint8_t { kText, kInt, kReal };
struct Slot {
  int column;
  uint8_t field;
  As as;
};
struct KindColumns {
  SearchKind kind;
  std::vector<Slot> slots;
};

const std::vector<KindColumns>& Columns() {
  static const std::vector<KindColumns> columns = {
      {SearchKind::kToken, {{kParam, 0, As::kText}, {kSystem, 1, As::kText}, {kCode, 2, As::kText}}},
      {SearchKind::kString,
       {{kParam, 0, As::kText}, {kValue, 1, As::kText}, {kExact, 2, As::kText}}},
      {SearchKind::kDate, {{kParam, 0, As::kText}, {kStartUs, 1, As::kInt}, {kEndUs, 2, As::kInt}}},
      {SearchKind::kNumber, {{kParam, 0, As::kText}, {kValue, 1, As::kReal}}},
      {SearchKind::kQuantity,
       {{kParam, 0, As::kText},
        {kValue, 1, As::kReal},
        {kSystem, 2, As::kText},
        {kCode, 3, As::kText},
        {kCanonicalValue, 4, As::kReal},
        {kCanonicalCode, 5, As::kText}}},
      {SearchKind::kReference,
       {{kParam, 0, As::kText},
        {kTargetType, 1, As::kText},
        {kTargetId, 2, As::kText},
        {kUrl, 3, As::kText}}},
      {SearchKind::kUri, {{kParam, 0, As::kText}, {kValue, 1, As::kText}}},
      {SearchKind::kComposite,
       {{kParam, 0, As::kText},
        {kSystem1, 1, As::kText},
        {kCode1, 2, As::kText},
        {kCode2, 3, As::kText},
        {kSystem2, 4, As::kText},
        {kNumber2, 5, As::kReal},
        {kCanonicalCode2, 6, As::kText},
        {kCanonicalNumber2, 7, As::kReal},
        {kStart2Us, 8, As::kInt},
        {kEnd2Us, 9, As::kInt}}},
  };
  return columns;
}

int Connect(sqlite3* db, void*, int, const char* const*, sqlite3_vtab** out, char**) {
  int rc = sqlite3_declare_vtab(db, kDeclaration);
  if (rc != SQLITE_OK) return rc;
  auto* vtab = static_cast<sqlite3_vtab*>(sqlite3_malloc(sizeof(sqlite3_vtab)));
  if (!vtab) return SQLITE_NOMEM;
  *vtab = sqlite3_vtab{};
  *out = vtab;
  sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
  return SQLITE_OK;
}

int Disconnect(sqlite3_vtab* vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
}

// Both hidden arguments must be given as equality constraints (they are the function's
// arguments); without them the table has no rows to offer.
int BestIndex(sqlite3_vtab*, sqlite3_index_info* info) {
  int keys = -1;
  int kind = -1;
  for (int i = 0; i < info->nConstraint; ++i) {
    const auto& c = info->aConstraint[i];
    if (c.op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
    if (c.iColumn == kKeysArg) {
      if (!c.usable) return SQLITE_CONSTRAINT;
      keys = i;
    } else if (c.iColumn == kKindArg) {
      if (!c.usable) return SQLITE_CONSTRAINT;
      kind = i;
    }
  }
  if (keys < 0 || kind < 0) return SQLITE_CONSTRAINT;
  info->aConstraintUsage[keys].argvIndex = 1;
  info->aConstraintUsage[keys].omit = 1;
  info->aConstraintUsage[kind].argvIndex = 2;
  info->aConstraintUsage[kind].omit = 1;
  info->estimatedCost = 10;
  info->estimatedRows = 10;
  return SQLITE_OK;
}

int Open(sqlite3_vtab*, sqlite3_vtab_cursor** out) {
  auto* cur = new (std::nothrow) Cursor();
  if (!cur) return SQLITE_NOMEM;
  *out = &cur->base;
  return SQLITE_OK;
}

int Close(sqlite3_vtab_cursor* c) {
  delete reinterpret_cast<Cursor*>(c);
  return SQLITE_OK;
}

int Filter(sqlite3_vtab_cursor* c, int, const char*, int argc, sqlite3_value** argv) {
  auto* cur = reinterpret_cast<Cursor*>(c);
  cur->rows.fields.clear();
  cur->rows.width = 0;
  cur->at = 0;
  if (argc != 2 || sqlite3_value_type(argv[0]) != SQLITE_BLOB) return SQLITE_OK;  // no keys
  cur->kind = static_cast<SearchKind>(sqlite3_value_int(argv[1]));
  const auto* data = static_cast<const char*>(sqlite3_value_blob(argv[0]));
  cur->keys.assign(data ? data : "", static_cast<size_t>(sqlite3_value_bytes(argv[0])));
  if (Status s = DecodeKindRows(cur->keys, cur->kind, cur->rows); !s.ok()) {
    sqlite3_free(c->pVtab->zErrMsg);
    c->pVtab->zErrMsg = sqlite3_mprintf("%s", s.error().message.c_str());
    return SQLITE_CORRUPT;
  }
  return SQLITE_OK;
}

int Next(sqlite3_vtab_cursor* c) {
  ++reinterpret_cast<Cursor*>(c)->at;
  return SQLITE_OK;
}

int Eof(sqlite3_vtab_cursor* c) {
  auto* cur = reinterpret_cast<Cursor*>(c);
  return cur->at >= cur->rows.rows();
}

int ColumnValue(sqlite3_vtab_cursor* c, sqlite3_context* ctx, int col) {
  const auto* cur = reinterpret_cast<const Cursor*>(c);
  for (const KindColumns& k : Columns()) {
    if (k.kind != cur->kind) continue;
    for (const Slot& slot : k.slots) {
      if (slot.column != col) continue;
      if (slot.field >= cur->rows.width) break;  // a layout this table does not know: NULL
      const KindRows::Field& f = cur->rows.at(cur->at, slot.field);
      switch (slot.as) {
        case As::kText:
          sqlite3_result_text64(ctx, f.text.data(), f.text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
          break;
        case As::kInt: {
          int64_t v;
          std::memcpy(&v, &f.bits, sizeof v);
          sqlite3_result_int64(ctx, v);
          break;
        }
        case As::kReal: {
          double v;
          std::memcpy(&v, &f.bits, sizeof v);
          sqlite3_result_double(ctx, v);
          break;
        }
      }
      return SQLITE_OK;
    }
    break;
  }
  return SQLITE_OK;  // columns a kind does not have are NULL
}

int Rowid(sqlite3_vtab_cursor* c, sqlite3_int64* rowid) {
  *rowid = static_cast<sqlite3_int64>(reinterpret_cast<Cursor*>(c)->at);
  return SQLITE_OK;
}

const sqlite3_module kModule = {
    /* iVersion */ 0,
    /* xCreate: eponymous only */ nullptr,
    Connect,
    BestIndex,
    Disconnect,
    /* xDestroy */ nullptr,
    Open,
    Close,
    Filter,
    Next,
    Eof,
    ColumnValue,
    Rowid,
    nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
    nullptr};

}  // namespace

int RegisterIndexRowsTable(sqlite3* db) {
  return sqlite3_create_module_v2(db, "jc_rows", &kModule, nullptr, nullptr);
}

}  // namespace jiceng::store::sqlite
