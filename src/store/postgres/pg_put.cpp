#include "store/postgres/pg_put.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <optional>
#include <span>
#include <variant>

#include "base/ids.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_search.h"

namespace jiceng::store::postgres {
namespace {

using SV = std::string_view;

// ---- text the statements can carry -------------------------------------------------------------

// PostgreSQL text cannot hold NUL (SQLite TEXT can, and a FHIR string that contains one passes
// validation): such a value is indexed without its NUL bytes, so that the write succeeds on both
// backends instead of failing here alone. Owns the copies it makes for as long as it lives.
class TextStore {
 public:
  SV WithoutNul(SV s) {
    if (s.find('\0') == SV::npos) return s;
    std::string& copy = owned_.emplace_back(s);
    std::erase(copy, '\0');
    return copy;
  }
  SV Own(std::string s) { return owned_.emplace_back(std::move(s)); }

 private:
  std::deque<std::string> owned_;  // stable addresses for the views handed out
};

// tsvector holds at most 1 MB: the text handed to to_tsvector is capped well below what could
// reach that (a longer narrative is searchable by its first 256 KiB), on a UTF-8 boundary.
constexpr size_t kMaxFullTextBytes = 256 * 1024;

SV CappedText(SV s) {
  if (s.size() <= kMaxFullTextBytes) return s;
  size_t n = kMaxFullTextBytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// ---- the index tables --------------------------------------------------------------------------

enum class ColumnType { kText, kBytes, kInt, kFloat };

struct IndexColumn {
  const char* name;
  ColumnType type;
  bool key = true;  // part of the primary key: two rows with equal keys are the same row
};

// One value of an index row, as its column's type holds it.
using Cell = std::variant<SV, int64_t, double>;

struct IndexTable {
  const char* name;
  std::vector<IndexColumn> columns;  // besides type and rid, in array-parameter order
  // Appends the cells of each of `index`'s rows of this kind, row after row.
  void (*cells)(const IndexRows& index, TextStore& text, std::vector<Cell>& out);
};

// Every index table (schema in pg_schema.cpp). A new index kind adds its table here, in a
// migration, and its cells in the same order as its columns.
const std::vector<IndexTable>& IndexTables() {
  using enum ColumnType;
  static const std::vector<IndexTable> tables = {
      {"idx_token",
       {{"param", kText}, {"code", kBytes}, {"system", kBytes}},
       [](const IndexRows& x, TextStore& t, std::vector<Cell>& out) {
         for (const TokenIndexRow& r : x.tokens) {
           out.insert(out.end(), {t.WithoutNul(r.param), SV(r.code), SV(r.system)});
         }
       }},
      {"idx_string",
       {{"param", kText}, {"value", kText}, {"exact", kText}},
       [](const IndexRows& x, TextStore& t, std::vector<Cell>& out) {
         for (const StringIndexRow& r : x.strings) {
           out.insert(out.end(),
                      {t.WithoutNul(r.param), t.WithoutNul(r.value), t.WithoutNul(r.exact)});
         }
       }},
      {"idx_date",
       {{"param", kText}, {"start_us", kInt}, {"end_us", kInt}},
       [](const IndexRows& x, TextStore& t, std::vector<Cell>& out) {
         for (const DateIndexRow& r : x.dates) {
           out.insert(out.end(), {t.WithoutNul(r.param), r.start_us, r.end_us});
         }
       }},
      {"idx_number",
       {{"param", kText}, {"value", kFloat}},
       [](const IndexRows& x, TextStore& t, std::vector<Cell>& out) {
         for (const NumberIndexRow& r : x.numbers) {
           out.insert(out.end(), {t.WithoutNul(r.param), r.value});
         }
       }},
      {"idx_quantity",
       {{"param", kText},
        {"code", kBytes},
        {"system", kBytes},
        {"value", kFloat},
        {"canonical_code", kBytes, false},
        {"canonical_value", kFloat, false}},
       [](const IndexRows& x, TextStore& t, std::vector<Cell>& out) {
         for (const QuantityIndexRow& r : x.quantities) {
           out.insert(out.end(), {t.WithoutNul(r.param), SV(r.code), SV(r.system), r.value,
                                  SV(r.canonical_code), r.canonical_value});
         }
       }},
      {"idx_reference",
       {{"param", kText}, {"target_id", kBytes}, {"target_type", kText}, {"url", kText}},
       [](const IndexRows& x, TextStore& t, std::vector<Cell>& out) {
         for (const ReferenceIndexRow& r : x.references) {
           out.insert(out.end(), {t.WithoutNul(r.param), SV(r.target_id),
                                  t.WithoutNul(r.target_type), t.WithoutNul(r.url)});
         }
       }},
      {"idx_uri",
       {{"param", kText}, {"value", kText}},
       [](const IndexRows& x, TextStore& t, std::vector<Cell>& out) {
         for (const UriIndexRow& r : x.uris) {
           out.insert(out.end(), {t.WithoutNul(r.param), t.WithoutNul(r.value)});
         }
       }},
      {"idx_composite",
       {{"param", kText},
        {"code1", kBytes},
        {"system1", kBytes},
        {"code2", kBytes},
        {"system2", kBytes},
        {"number2", kFloat},
        {"start2_us", kInt},
        {"end2_us", kInt},
        {"canonical_code2", kBytes, false},
        {"canonical_number2", kFloat, false}},
       [](const IndexRows& x, TextStore& t, std::vector<Cell>& out) {
         for (const CompositeIndexRow& r : x.composites) {
           out.insert(out.end(), {t.WithoutNul(r.param), SV(r.code1), SV(r.system1), SV(r.code2),
                                  SV(r.system2), r.number2, r.start2_us, r.end2_us,
                                  SV(r.canonical_code2), r.canonical_number2});
         }
       }},
  };
  return tables;
}

// Orders cells as the key columns compare on PostgreSQL, where only equality matters (rows with
// equal keys are one row): bytes as bytes (bytea, and text COLLATE "C"), numbers by value, with
// -0 equal to 0 and NaN equal to NaN (float8 equality).
int CompareCells(const Cell& a, const Cell& b) {
  if (const SV* s = std::get_if<SV>(&a)) return s->compare(std::get<SV>(b));
  if (const int64_t* i = std::get_if<int64_t>(&a)) {
    const int64_t j = std::get<int64_t>(b);
    return (*i > j) - (*i < j);
  }
  const double x = std::get<double>(a);
  const double y = std::get<double>(b);
  const bool xn = std::isnan(x);
  const bool yn = std::isnan(y);
  if (xn || yn) return static_cast<int>(xn) - static_cast<int>(yn);
  return (x > y) - (x < y);
}

// ---- SQL ---------------------------------------------------------------------------------------

const char* ArrayCast(ColumnType t) {
  switch (t) {
    case ColumnType::kText:
      return "text[]";
    case ColumnType::kBytes:
      return "bytea[]";
    case ColumnType::kInt:
      return "int8[]";
    case ColumnType::kFloat:
      return "float8[]";
  }
  return "text[]";
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

// Round trip 1: every resource row (a new one, or the next version of a stored one) and its
// history row. The WHERE keeps a resource from moving backwards or sideways: a stale version is
// not returned, and neither its history row nor (round trip 2) its index rows are written. The
// unique (rid, version) index of resource_history is the last line of defence: two rows can
// never claim the same version.
const std::string& ResourceSql() {
  static const std::string sql =
      "WITH cur AS (INSERT INTO resource(type, id, version, last_updated_us, deleted, json, "
      "shard_key) SELECT * FROM unnest($1::text[], $2::bytea[], $3::int8[], $4::int8[], "
      "$5::bool[], $6::bytea[], $7::int8[]) ON CONFLICT (type, id) DO UPDATE SET "
      "version = excluded.version, last_updated_us = excluded.last_updated_us, "
      "deleted = excluded.deleted, json = excluded.json, "
      // A tombstone has no index rows to tell its compartment: it stays where it was.
      "shard_key = CASE WHEN excluded.deleted THEN resource.shard_key ELSE excluded.shard_key END "
      "WHERE excluded.version > resource.version "
      "RETURNING rid, type, id, version, last_updated_us, deleted, json, shard_key), "
      "hist AS (INSERT INTO resource_history(rid, type, id, version, last_updated_us, deleted, "
      "json, shard_key) SELECT rid, type, id, version, last_updated_us, deleted, json, shard_key "
      "FROM cur), "
      // A version that moves the resource to another patient's compartment moves its older
      // versions with it: every row of a resource has one key (rows of this flush excepted).
      "moved AS (UPDATE resource_history h SET shard_key = cur.shard_key FROM cur "
      "WHERE cur.version > 1 AND h.rid = cur.rid AND h.shard_key <> cur.shard_key) "
      "SELECT rid, type, id FROM cur";
  return sql;
}

// A flush whose new resources (version 1) are many writes their resource and history rows by
// COPY instead (PendingPuts::Flush), with rids drawn beforehand from the resource table's identity
// sequence. A version 1 is never stale unless its resource exists already (written by someone
// outside the write lock): COPY then fails on the (type, id) key, and the flush with it.
const std::string& NextRidsSql() {
  static const std::string sql =
      "SELECT nextval(pg_get_serial_sequence('resource', 'rid')) FROM generate_series(1, $1)";
  return sql;
}
constexpr const char* kVersionCopyColumns =
    "(rid, type, id, version, last_updated_us, deleted, json, shard_key) FROM STDIN "
    "(FORMAT binary)";
const std::string& ResourceCopySql() {
  static const std::string sql = std::string("COPY resource") + kVersionCopyColumns;
  return sql;
}
const std::string& HistoryCopySql() {
  static const std::string sql = std::string("COPY resource_history") + kVersionCopyColumns;
  return sql;
}

// The statements of one index table, over arrays of (type, columns…, rid).
struct TableSql {
  // Rows of new resources: nothing to conflict with (duplicates are removed beforehand).
  std::string insert;
  // Rows of resources that had a version before: the rows already stored are kept as they are
  // (a changed non-key column, e.g. a new canonical unit, is updated in place).
  std::string upsert;
  // The old rows of those resources ($1: their rids) that are not among their new rows ($2:
  // the rids of the new rows, then their key columns). Row-wise NOT IN over a subquery plans as
  // a hashed subplan: one probe per old row, whatever the numbers.
  std::string remove;
  // The same rows as `insert` by COPY (binary), for a batch with many of them.
  std::string copy;
};

TableSql MakeTableSql(const IndexTable& t) {
  std::vector<std::string> names = {"type"};
  std::vector<std::string> arrays = {"$1::text[]"};
  std::vector<std::string> key_names, key_values, key_arrays, non_key;
  int param = 1;
  for (const IndexColumn& c : t.columns) {
    names.push_back(c.name);
    arrays.push_back("$" + std::to_string(++param) + "::" + ArrayCast(c.type));
    if (c.key) {
      key_names.push_back(c.name);
      // Text keys compare bytewise, as the COLLATE "C" columns (and SQLite) do.
      key_values.push_back(std::string("u.") + c.name +
                           (c.type == ColumnType::kText ? " COLLATE \"C\"" : ""));
    } else {
      non_key.push_back(c.name);
    }
  }
  names.push_back("rid");
  arrays.push_back("$" + std::to_string(++param) + "::int8[]");
  // The resource's distribution key: the same on every row of the resource, changed in place
  // when a new version moves it to another compartment.
  names.push_back("shard_key");
  arrays.push_back("$" + std::to_string(++param) + "::int8[]");
  non_key.push_back("shard_key");

  TableSql sql;
  sql.insert = std::string("INSERT INTO ") + t.name + "(" + Join(names, ", ") +
               ") SELECT * FROM unnest(" + Join(arrays, ", ") + ")";
  sql.copy =
      std::string("COPY ") + t.name + "(" + Join(names, ", ") + ") FROM STDIN (FORMAT binary)";
  {
    std::vector<std::string> set, old_cols, new_cols;
    for (const std::string& c : non_key) {
      set.push_back(c + " = excluded." + c);
      old_cols.push_back(std::string(t.name) + "." + c);
      new_cols.push_back("excluded." + c);
    }
    sql.upsert = sql.insert + " ON CONFLICT (type, " + Join(key_names, ", ") +
                 ", rid) DO UPDATE SET " + Join(set, ", ") + " WHERE (" + Join(old_cols, ", ") +
                 ") IS DISTINCT FROM (" + Join(new_cols, ", ") + ")";
  }
  // $1: the rids whose rows are replaced; $2…: the new rows' rids and key columns.
  std::vector<std::string> x_keys = {"x.rid"};
  std::vector<std::string> u_arrays = {"$2::int8[]"};
  std::vector<std::string> u_names = {"rid"};
  std::vector<std::string> u_values = {"u.rid"};
  param = 2;
  for (const IndexColumn& c : t.columns) {
    if (!c.key) continue;
    x_keys.push_back(std::string("x.") + c.name);
    u_arrays.push_back("$" + std::to_string(++param) + "::" + ArrayCast(c.type));
    u_names.push_back(c.name);
  }
  for (const std::string& v : key_values) u_values.push_back(v);
  sql.remove = std::string("DELETE FROM ") + t.name + " x WHERE x.rid = ANY($1::int8[]) AND (" +
               Join(x_keys, ", ") + ") NOT IN (SELECT " + Join(u_values, ", ") + " FROM unnest(" +
               Join(u_arrays, ", ") + ") AS u(" + Join(u_names, ", ") + "))";
  return sql;
}

const std::vector<TableSql>& TableStatements() {
  static const std::vector<TableSql> all = [] {
    std::vector<TableSql> out;
    for (const IndexTable& t : IndexTables()) out.push_back(MakeTableSql(t));
    return out;
  }();
  return all;
}

// Full text (fts_resource, at most one row per resource).
constexpr const char* kFullTextColumns =
    "SELECT u.rid, u.shard_key, to_tsvector('simple', u.narrative), "
    "to_tsvector('simple', u.content) FROM unnest($1::int8[], $2::int8[], $3::text[], "
    "$4::text[]) AS u(rid, shard_key, narrative, content)";

const std::string& FullTextInsertSql() {
  static const std::string sql =
      std::string("INSERT INTO fts_resource(rid, shard_key, narrative, content) ") +
      kFullTextColumns;
  return sql;
}

// Rewritten only when it changed.
const std::string& FullTextUpsertSql() {
  static const std::string sql =
      FullTextInsertSql() +
      " ON CONFLICT (rid) DO UPDATE SET narrative = excluded.narrative, "
      "content = excluded.content, shard_key = excluded.shard_key WHERE "
      "(fts_resource.narrative, fts_resource.content, fts_resource.shard_key) "
      "IS DISTINCT FROM (excluded.narrative, excluded.content, excluded.shard_key)";
  return sql;
}

const std::string& FullTextDeleteSql() {
  static const std::string sql = "DELETE FROM fts_resource WHERE rid = ANY($1::int8[])";
  return sql;
}

// ---- the arrays of one statement ---------------------------------------------------------------

// One column's values, for its array parameter.
struct ColumnValues {
  std::vector<SV> bytes;  // text and bytea
  std::vector<int64_t> ints;
  std::vector<double> floats;

  void Add(const Cell& c) {
    if (const SV* s = std::get_if<SV>(&c)) {
      bytes.push_back(*s);
    } else if (const int64_t* i = std::get_if<int64_t>(&c)) {
      ints.push_back(*i);
    } else {
      floats.push_back(std::get<double>(c));
    }
  }
  void AddTo(PgParams& p, ColumnType type) const {
    switch (type) {
      case ColumnType::kText:
        p.TextArray(bytes);
        break;
      case ColumnType::kBytes:
        p.BytesArray(bytes);
        break;
      case ColumnType::kInt:
        p.IntArray(ints);
        break;
      case ColumnType::kFloat:
        p.FloatArray(floats);
        break;
    }
  }
};

// Index rows of one table for one statement, column by column.
struct TableRows {
  explicit TableRows(size_t width) : columns(width) {}
  std::vector<SV> type;
  std::vector<ColumnValues> columns;
  std::vector<int64_t> rid;
  std::vector<int64_t> shard;

  size_t size() const { return rid.size(); }
  void Add(SV resource_type, const Cell* cells, int64_t row_rid, int64_t shard_key) {
    type.push_back(resource_type);
    for (size_t c = 0; c < columns.size(); ++c) columns[c].Add(cells[c]);
    rid.push_back(row_rid);
    shard.push_back(shard_key);
  }
  // (type, columns…, rid, shard_key): the parameters of TableSql::insert and ::upsert.
  PgParams Rows(const IndexTable& t) const {
    PgParams p;
    p.TextArray(type);
    for (size_t c = 0; c < columns.size(); ++c) columns[c].AddTo(p, t.columns[c].type);
    p.IntArray(rid).IntArray(shard);
    return p;
  }
  // The same rows for TableSql::copy, in the same column order.
  PgCopyRows CopyRows(const IndexTable& t) const {
    PgCopyRows out(static_cast<int>(columns.size()) + 3);
    for (size_t i = 0; i < size(); ++i) {
      out.Row().Text(type[i]);
      for (size_t c = 0; c < columns.size(); ++c) {
        const ColumnValues& v = columns[c];
        switch (t.columns[c].type) {
          case ColumnType::kText:
            out.Text(v.bytes[i]);
            break;
          case ColumnType::kBytes:
            out.Bytes(v.bytes[i]);
            break;
          case ColumnType::kInt:
            out.Int(v.ints[i]);
            break;
          case ColumnType::kFloat:
            out.Float(v.floats[i]);
            break;
        }
      }
      out.Int(rid[i]).Int(shard[i]);
    }
    return out;
  }
  // (replaced rids, rid, key columns…): the parameters of TableSql::remove.
  PgParams Keys(const IndexTable& t, const std::vector<int64_t>& replaced) const {
    PgParams p;
    p.IntArray(replaced).IntArray(rid);
    for (size_t c = 0; c < columns.size(); ++c) {
      if (t.columns[c].key) columns[c].AddTo(p, t.columns[c].type);
    }
    return p;
  }
};

// Appends the rows of `cells` (rows of `t`, row after row) to `out`, each key once (the first
// row of equal keys is kept: a version's duplicate rows are one row, on both backends).
void AddRows(const IndexTable& t, const std::vector<Cell>& cells, SV type, int64_t rid,
             int64_t shard_key, TableRows& out, std::vector<size_t>& order) {
  const size_t width = t.columns.size();
  const size_t n = cells.size() / width;
  if (n == 0) return;
  if (n == 1) {
    out.Add(type, cells.data(), rid, shard_key);
    return;
  }
  auto compare_keys = [&](size_t a, size_t b) {
    for (size_t c = 0; c < width; ++c) {
      if (!t.columns[c].key) continue;
      if (int r = CompareCells(cells[a * width + c], cells[b * width + c]); r != 0) return r;
    }
    return 0;
  };
  order.resize(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return compare_keys(a, b) < 0; });
  std::vector<bool> duplicate(n, false);
  for (size_t k = 1; k < n; ++k) {
    if (compare_keys(order[k - 1], order[k]) == 0) duplicate[order[k]] = true;
  }
  for (size_t i = 0; i < n; ++i) {
    if (!duplicate[i]) out.Add(type, cells.data() + i * width, rid, shard_key);
  }
}

// The key of a resource in PendingPuts::keys_: "<length of type>:<type><id>". Ids may hold any
// byte; the length prefix says where the type ends, so two resources never share a key.
std::string Key(SV type, SV id) {
  std::string k = std::to_string(type.size());
  k += ':';
  k += type;
  k += id;
  return k;
}

// Queue bounds: one flush's resource rows travel through one tuplestore (the RETURNING of
// round trip 1), which stays in memory below work_mem (4 MB by default).
constexpr size_t kMaxQueued = 1000;
constexpr size_t kMaxQueuedBytes = 4 << 20;

// A copy_min_rows no table reaches.
constexpr size_t kNeverCopy = static_cast<size_t>(-1);

// A resource whose index rows are written: new (no old rows) or replacing its old rows.
struct IndexedResource {
  SV type;
  int64_t rid = 0;
  bool is_new = false;
  const IndexRows* index = nullptr;
};

// Round trip 2 of a flush, and all of a reindex: the index rows of `items`, table by table.
// The rows of new resources of a table go by COPY when there are at least `copy_min_rows` of
// them (PendingPuts::set_copy_min_rows), before the pipeline of the other statements; `copies`
// (the resource and history rows of new resources, when the flush copies them) go first of all.
Status WriteIndexRows(PgConnection& c, std::span<const IndexedResource> items, size_t copy_min_rows,
                      std::vector<PgCopy> copies = {}) {
  const std::vector<IndexTable>& tables = IndexTables();
  TextStore text;
  std::vector<TableRows> fresh, replacing;
  for (const IndexTable& t : tables) {
    fresh.emplace_back(t.columns.size());
    replacing.emplace_back(t.columns.size());
  }
  std::vector<int64_t> replaced;  // rids of resources that had a version before
  // Full text: rows of new resources, of replaced ones, and replaced ones without text.
  struct FullTextRows {
    std::vector<int64_t> rid, shard;
    std::vector<SV> narrative, content;
  } fresh_text, replacing_text;
  std::vector<int64_t> text_gone;
  std::vector<Cell> cells;
  std::vector<size_t> order;
  for (const IndexedResource& item : items) {
    const bool is_new = item.is_new;
    const IndexRows& index = *item.index;
    const int64_t shard_key = DistributionKey(index.patient_compartment);
    if (!is_new) replaced.push_back(item.rid);
    for (size_t t = 0; t < tables.size(); ++t) {
      cells.clear();
      tables[t].cells(index, text, cells);
      AddRows(tables[t], cells, item.type, item.rid, shard_key, is_new ? fresh[t] : replacing[t],
              order);
    }
    if (!index.full_text.empty()) {
      // As words only (pg_search.h, FullTextDocument), which search looks for. At most one
      // full text row per resource (the port's rule; any further one is not stored).
      const FullTextIndexRow& ft = index.full_text.front();
      FullTextRows& out = is_new ? fresh_text : replacing_text;
      out.rid.push_back(item.rid);
      out.shard.push_back(shard_key);
      out.narrative.push_back(text.Own(FullTextDocument(CappedText(ft.narrative))));
      out.content.push_back(text.Own(FullTextDocument(CappedText(ft.content))));
    } else if (!is_new) {
      text_gone.push_back(item.rid);
    }
  }

  // Every statement's parameters stay in place until the batch has run.
  std::deque<PgParams> params;
  std::vector<PgStatement> statements;
  std::deque<PgCopyRows> copy_rows;
  const std::vector<TableSql>& sql = TableStatements();
  for (size_t t = 0; t < tables.size(); ++t) {
    if (!replaced.empty()) {
      // Before the inserts: the rows they keep are not deleted, the rows deleted not inserted.
      statements.push_back(
          {&sql[t].remove, &params.emplace_back(replacing[t].Keys(tables[t], replaced))});
    }
    if (fresh[t].size() > 0 && fresh[t].size() >= copy_min_rows) {
      // Rows of new resources only: they touch no rows of the resources being replaced, so
      // they may go before or after the pipeline below.
      copies.push_back({&sql[t].copy, &copy_rows.emplace_back(fresh[t].CopyRows(tables[t]))});
    } else if (fresh[t].size() > 0) {
      statements.push_back({&sql[t].insert, &params.emplace_back(fresh[t].Rows(tables[t]))});
    }
    if (replacing[t].size() > 0) {
      statements.push_back({&sql[t].upsert, &params.emplace_back(replacing[t].Rows(tables[t]))});
    }
  }
  if (!text_gone.empty()) {
    statements.push_back(
        {&FullTextDeleteSql(), &params.emplace_back(PgParams().IntArray(text_gone))});
  }
  auto add_text = [&](const std::string& s, const FullTextRows& rows) {
    if (rows.rid.empty()) return;
    PgParams& p = params.emplace_back();
    p.IntArray(rows.rid).IntArray(rows.shard).TextArray(rows.narrative).TextArray(rows.content);
    statements.push_back({&s, &p});
  };
  add_text(FullTextInsertSql(), fresh_text);
  add_text(FullTextUpsertSql(), replacing_text);
  if (Status copied = c.CopyIn(copies); !copied.ok()) {
    Error e = std::move(copied).error();
    // Index rows of new rids cannot collide: a unique violation is a new resource's row, whose
    // type and id a writer outside jiceng's write lock has taken meanwhile.
    if (e.code == ErrorCode::kConflict) {
      e.message = "Put: a new resource of this unit was written concurrently: " + e.message;
    }
    return e;
  }
  if (auto done = c.QueryBatch(statements); !done.ok()) return std::move(done).error();
  return Status::Ok();
}

}  // namespace

int64_t DistributionKey(std::string_view patient_id) {
  if (patient_id.empty()) return 0;
  const auto key = static_cast<int64_t>(Fnv1a64(patient_id) & 0x7fffffffffffffffULL);
  return key == 0 ? 1 : key;
}

Status ReplaceIndex(PgConnection& c, std::string_view type, std::string_view id, int64_t version,
                    const IndexRows& index) {
  JC_ASSIGN_OR_RETURN(PgResult r, c.Query("SELECT rid, version, deleted FROM resource "
                                          "WHERE type = $1 AND id = $2 FOR UPDATE",
                                          PgParams().Text(type).Bytes(id)));
  if (r.rows() == 0) return NotFound(std::string(type) + "/" + std::string(id) + " does not exist");
  if (r.Int(0, 1) != version || r.Bool(0, 2)) {
    return Conflict(std::string(type) + "/" + std::string(id) + " is no longer at version " +
                    std::to_string(version));
  }
  const int64_t rid = r.Int(0, 0);
  const int64_t key = DistributionKey(index.patient_compartment);
  if (auto moved = c.Query("WITH h AS (UPDATE resource_history SET shard_key = $2 "
                           "WHERE rid = $1 AND shard_key <> $2) "
                           "UPDATE resource SET shard_key = $2 WHERE rid = $1 AND shard_key <> $2",
                           PgParams().Int(rid).Int(key));
      !moved.ok()) {
    return std::move(moved).error();
  }
  const IndexedResource item{type, rid, /*is_new=*/false, &index};
  return WriteIndexRows(c, std::span<const IndexedResource>(&item, 1), kNeverCopy);
}

Status PendingPuts::Add(const ResourceVersion& v, const IndexRows& index) {
  if (v.type.empty() || v.id.empty()) return Invalid("Put: resource type and id are required");
  if (v.version < 1) return Invalid("Put: version must be >= 1");
  if (!keys_.emplace(Key(v.type, v.id), puts_.size()).second) {
    return Internal("Put: " + v.type + "/" + v.id + " is queued already (flush first)");
  }
  puts_.push_back(Put{v, index});
  if (v.deleted) puts_.back().version.json.clear();
  bytes_ +=
      v.json.size() + 64 * (index.tokens.size() + index.strings.size() + index.dates.size() +
                            index.numbers.size() + index.quantities.size() +
                            index.references.size() + index.uris.size() + index.composites.size());
  for (const FullTextIndexRow& f : index.full_text) bytes_ += f.narrative.size() + f.content.size();
  return Status::Ok();
}

bool PendingPuts::Contains(std::string_view type, std::string_view id) const {
  return !puts_.empty() && keys_.contains(Key(type, id));
}

bool PendingPuts::Full() const { return puts_.size() >= kMaxQueued || bytes_ >= kMaxQueuedBytes; }

void PendingPuts::Clear() {
  puts_.clear();
  keys_.clear();
  bytes_ = 0;
}

Status PendingPuts::Flush(PgConnection& c) {
  if (puts_.empty()) return Status::Ok();
  const std::vector<Put> puts = std::move(puts_);
  const std::unordered_map<std::string, size_t> keys = std::move(keys_);
  Clear();

  // ---- round trip 1: resource and history rows (or the rids of new ones), and the rids ----
  std::vector<int64_t> rids(puts.size(), 0);
  // New resources go by COPY when they are many (copy_min_rows): then round trip 1 only draws
  // their rids, and their rows go with the index rows' COPYs.
  size_t new_count = 0;
  for (const Put& p : puts) new_count += p.version.version == 1 ? 1 : 0;
  const bool copy_new = new_count > 0 && new_count >= copy_min_rows_;
  auto by_statement = [&](const Put& p) { return !copy_new || p.version.version != 1; };
  PgParams upsert_params, rid_params;
  std::vector<PgStatement> statements;
  {
    std::vector<SV> types, ids, jsons;
    std::vector<int64_t> versions, updated, shards;
    std::vector<bool> deleted;
    for (const Put& p : puts) {
      if (!by_statement(p)) continue;
      types.push_back(p.version.type);
      ids.push_back(p.version.id);
      versions.push_back(p.version.version);
      updated.push_back(p.version.last_updated_us);
      deleted.push_back(p.version.deleted);
      jsons.push_back(p.version.json);
      shards.push_back(DistributionKey(p.index.patient_compartment));
    }
    if (!types.empty()) {
      upsert_params.TextArray(types)
          .BytesArray(ids)
          .IntArray(versions)
          .IntArray(updated)
          .BoolArray(deleted)
          .BytesArray(jsons)
          .IntArray(shards);
      statements.push_back({&ResourceSql(), &upsert_params});
    }
  }
  const bool upserted = !statements.empty();
  if (copy_new) {
    rid_params.Int(static_cast<int64_t>(new_count));
    statements.push_back({&NextRidsSql(), &rid_params});
  }
  std::vector<PgResult> results;
  if (statements.size() == 1 && upserted) {  // the common case: no pipeline needed
    JC_ASSIGN_OR_RETURN(PgResult r, c.Query(ResourceSql(), upsert_params));
    results.push_back(std::move(r));
  } else {
    JC_ASSIGN_OR_RETURN(results, c.QueryBatch(statements));
  }
  if (upserted) {
    const PgResult& r = results.front();
    for (int row = 0; row < r.rows(); ++row) {
      auto it = keys.find(Key(r.Bytes(row, 1), r.Bytes(row, 2)));
      if (it == keys.end()) return Internal("Put: the database returned a resource not written");
      rids[it->second] = r.Int(row, 0);
    }
  }
  PgCopyRows resource_rows(8), history_rows(8);
  std::vector<PgCopy> copies;
  if (copy_new) {
    const PgResult& r = results.back();
    if (static_cast<size_t>(r.rows()) != new_count) return Internal("Put: too few rids drawn");
    int row = 0;
    for (size_t i = 0; i < puts.size(); ++i) {
      if (by_statement(puts[i])) continue;
      const ResourceVersion& v = puts[i].version;
      rids[i] = r.Int(row++, 0);
      const int64_t shard = DistributionKey(puts[i].index.patient_compartment);
      for (PgCopyRows* out : {&resource_rows, &history_rows}) {
        out->Row()
            .Int(rids[i])
            .Text(v.type)
            .Bytes(v.id)
            .Int(v.version)
            .Int(v.last_updated_us)
            .Bool(v.deleted)
            .Bytes(v.json)
            .Int(shard);
      }
    }
    copies = {{&ResourceCopySql(), &resource_rows}, {&HistoryCopySql(), &history_rows}};
  }
  std::optional<Error> stale;
  for (size_t i = 0; i < puts.size() && !stale; ++i) {
    if (rids[i] != 0) continue;
    const ResourceVersion& v = puts[i].version;
    stale = Conflict("Put: " + v.type + "/" + v.id + " already has version " +
                     std::to_string(v.version) + " or newer (written concurrently)");
  }

  // ---- round trip 2: the index rows, table by table ----
  std::vector<IndexedResource> items;
  for (size_t i = 0; i < puts.size(); ++i) {
    if (rids[i] == 0) continue;  // stale: writes nothing
    const Put& p = puts[i];
    // Version 1 was inserted (it would have been stale otherwise): it has no old rows.
    items.push_back({p.version.type, rids[i], p.version.version == 1, &p.index});
  }
  JC_RETURN_IF_ERROR(WriteIndexRows(c, items, copy_min_rows_, std::move(copies)));
  if (stale) return std::move(*stale);
  return Status::Ok();
}

}  // namespace jiceng::store::postgres
