// store/sqlite/index_keys: the compact binary form of a resource's IndexRows kept in
// resource_index_keys (one row per resource), and the SQL function that sorts by it.
//
// Format (version 2): a version byte; a dictionary (varint count, then each distinct string as
// varint length + bytes); then for each kind in IndexRows order (tokens, strings, dates, numbers,
// quantities, references, uris, composites; not full text, which is replaced by rowid) a varint
// row count followed by the rows, each field in struct order: strings as a varint index into
// the dictionary (version 1 wrote them inline), integers and doubles as their 8
// bytes in the machine's byte order (the file never moves between byte orders: SQLite databases
// are copied between the x86-64 and arm64 machines we run on, both little-endian).
// Internal to store/sqlite.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/store.h"

struct sqlite3;

namespace jiceng::store::sqlite {

std::string EncodeIndexKeys(const IndexRows& rows);
Result<IndexRows> DecodeIndexKeys(std::string_view blob);

// The rows of one SearchKind in a resource's keys, without copying: each text field a view into
// the blob, each integer or double field its 8 bytes; `width` fields a row, in the field order of
// the kind's row type (TokenIndexRow: param, system, code; …; the layout index_keys.cpp writes).
// The other kinds are skipped, not decoded: a search that probes candidates (jc_rows) decoded
// every row of each one into strings to read one kind's few.
struct KindRows {
  struct Field {
    std::string_view text;
    uint64_t bits = 0;  // an int64_t or a double, by the field's type
  };
  size_t width = 0;
  std::vector<Field> fields;                // rows x width
  std::vector<std::string_view> dictionary;  // scratch, reused
  size_t rows() const { return width == 0 ? 0 : fields.size() / width; }
  const Field& at(size_t row, size_t field) const { return fields[row * width + field]; }
};
// Fills `out` with the rows of `kind` in `blob` (views into `blob`, valid while it is). An error
// for a damaged blob (never a read past its end); no rows for a kind the keys do not hold.
Status DecodeKindRows(std::string_view blob, SearchKind kind, KindRows& out);

// Registers jc_sort_key(keys BLOB, kind INTEGER, param TEXT, descending INTEGER) on `db`: the
// value a search sorts a resource by for `param` of SearchKind `kind` — the smallest of its
// rows ascending, the largest descending (R4: "the lowest value for ascending, the highest for
// descending"); dates sort by start ascending and by end descending. NULL when the resource
// has no row for the parameter.
int RegisterSortKeyFunction(sqlite3* db);

// Registers the table-valued function jc_rows(keys, kind) on `db` (index_rows_vtab.cpp): the rows
// of SearchKind `kind` in a resource's keys, with the columns of the idx_* tables (param, value,
// exact, code, system, start_us, end_us, canonical_code, canonical_value, target_id,
// target_type, url, and the composite slots code1 … canonical_number2). Searches use it to test
// one candidate resource against a clause with the same SQL condition as the index scan.
int RegisterIndexRowsTable(sqlite3* db);

}  // namespace jiceng::store::sqlite
