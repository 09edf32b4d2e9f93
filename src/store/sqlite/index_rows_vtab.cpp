// jc_rows(keys, kind): the index rows of one resource, of one SearchKind, decoded from its
// resource_index_keys blob and presented with the columns of the idx_* tables — an eponymous
// table-valued function. A search probes a candidate resource with the very same column
// conditions the compiler writes for the idx_* tables, e.g.
//   EXISTS (SELECT 1 FROM jc_rows((SELECT keys FROM resource_index_keys WHERE rid = r.rid), 2)
//           WHERE param = ?5 AND (start_us >= ?6 AND end_us <= ?7))
// so the probe and the index scan cannot disagree: they are one condition over the same values.
// (The idx_* tables have no index on rid: a probe through them would scan a whole parameter.)
#include <sqlite3.h>

#include <memory>
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
  IndexRows rows;
  SearchKind kind = SearchKind::kToken;
  size_t at = 0;

  size_t Size() const {
    switch (kind) {
      case SearchKind::kToken: return rows.tokens.size();
      case SearchKind::kString: return rows.strings.size();
      case SearchKind::kDate: return rows.dates.size();
      case SearchKind::kNumber: return rows.numbers.size();
      case SearchKind::kQuantity: return rows.quantities.size();
      case SearchKind::kReference: return rows.references.size();
      case SearchKind::kUri: return rows.uris.size();
      case SearchKind::kComposite: return rows.composites.size();
      default: return 0;
    }
  }
};

void Text(sqlite3_context* ctx, const std::string& s) {
  sqlite3_result_text64(ctx, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
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
  cur->rows = IndexRows{};
  cur->at = 0;
  if (argc != 2 || sqlite3_value_type(argv[0]) != SQLITE_BLOB) return SQLITE_OK;  // no keys
  cur->kind = static_cast<SearchKind>(sqlite3_value_int(argv[1]));
  const auto* data = static_cast<const char*>(sqlite3_value_blob(argv[0]));
  auto decoded = DecodeIndexKeys(
      std::string_view(data ? data : "", static_cast<size_t>(sqlite3_value_bytes(argv[0]))));
  if (!decoded.ok()) {
    sqlite3_free(c->pVtab->zErrMsg);
    c->pVtab->zErrMsg = sqlite3_mprintf("%s", decoded.error().message.c_str());
    return SQLITE_CORRUPT;
  }
  cur->rows = std::move(decoded).value();
  return SQLITE_OK;
}

int Next(sqlite3_vtab_cursor* c) {
  ++reinterpret_cast<Cursor*>(c)->at;
  return SQLITE_OK;
}

int Eof(sqlite3_vtab_cursor* c) {
  auto* cur = reinterpret_cast<Cursor*>(c);
  return cur->at >= cur->Size();
}

int ColumnValue(sqlite3_vtab_cursor* c, sqlite3_context* ctx, int col) {
  const auto* cur = reinterpret_cast<const Cursor*>(c);
  const size_t i = cur->at;
  const IndexRows& r = cur->rows;
  switch (cur->kind) {
    case SearchKind::kToken: {
      const auto& x = r.tokens[i];
      if (col == kParam) Text(ctx, x.param);
      else if (col == kCode) Text(ctx, x.code);
      else if (col == kSystem) Text(ctx, x.system);
      break;
    }
    case SearchKind::kString: {
      const auto& x = r.strings[i];
      if (col == kParam) Text(ctx, x.param);
      else if (col == kValue) Text(ctx, x.value);
      else if (col == kExact) Text(ctx, x.exact);
      break;
    }
    case SearchKind::kDate: {
      const auto& x = r.dates[i];
      if (col == kParam) Text(ctx, x.param);
      else if (col == kStartUs) sqlite3_result_int64(ctx, x.start_us);
      else if (col == kEndUs) sqlite3_result_int64(ctx, x.end_us);
      break;
    }
    case SearchKind::kNumber: {
      const auto& x = r.numbers[i];
      if (col == kParam) Text(ctx, x.param);
      else if (col == kValue) sqlite3_result_double(ctx, x.value);
      break;
    }
    case SearchKind::kQuantity: {
      const auto& x = r.quantities[i];
      if (col == kParam) Text(ctx, x.param);
      else if (col == kValue) sqlite3_result_double(ctx, x.value);
      else if (col == kCode) Text(ctx, x.code);
      else if (col == kSystem) Text(ctx, x.system);
      else if (col == kCanonicalCode) Text(ctx, x.canonical_code);
      else if (col == kCanonicalValue) sqlite3_result_double(ctx, x.canonical_value);
      break;
    }
    case SearchKind::kReference: {
      const auto& x = r.references[i];
      if (col == kParam) Text(ctx, x.param);
      else if (col == kTargetId) Text(ctx, x.target_id);
      else if (col == kTargetType) Text(ctx, x.target_type);
      else if (col == kUrl) Text(ctx, x.url);
      break;
    }
    case SearchKind::kUri: {
      const auto& x = r.uris[i];
      if (col == kParam) Text(ctx, x.param);
      else if (col == kValue) Text(ctx, x.value);
      break;
    }
    case SearchKind::kComposite: {
      const auto& x = r.composites[i];
      switch (col) {
        case kParam: Text(ctx, x.param); break;
        case kCode1: Text(ctx, x.code1); break;
        case kSystem1: Text(ctx, x.system1); break;
        case kCode2: Text(ctx, x.code2); break;
        case kSystem2: Text(ctx, x.system2); break;
        case kNumber2: sqlite3_result_double(ctx, x.number2); break;
        case kStart2Us: sqlite3_result_int64(ctx, x.start2_us); break;
        case kEnd2Us: sqlite3_result_int64(ctx, x.end2_us); break;
        case kCanonicalCode2: Text(ctx, x.canonical_code2); break;
        case kCanonicalNumber2: sqlite3_result_double(ctx, x.canonical_number2); break;
        default: break;
      }
      break;
    }
    default: break;
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
