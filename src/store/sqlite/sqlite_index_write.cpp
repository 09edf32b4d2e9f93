// The SQLite write side of the search index: replaces a resource's rows in the idx_* tables
// (schema in sqlite_schema.cpp) in the same transaction as its version, and keeps the resource's
// index keys (the encoded IndexRows, see index_keys.h) in resource_index_keys. Those keys are how
// the old rows are found again on the next Put (by primary key) and how a search sorts by a
// parameter, so the idx_* tables need no second index on rid: each index row costs one B-tree
// insert instead of two.
#include "store/sqlite/sqlite_index_write.h"

#include <string>
#include <vector>

#include "store/sqlite/connection.h"
#include "store/sqlite/index_keys.h"

namespace jiceng::store::sqlite {
namespace {

Status InsertRows(Connection& c, std::string_view type, int64_t rid, const IndexRows& index) {
  // OR IGNORE throughout: the same value reached by two paths of one resource is one row.
  for (const TokenIndexRow& t : index.tokens) {
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_token(type, param, code, system, rid) "
                "VALUES (?1, ?2, ?3, ?4, ?5)");
    s.BindText(1, type);
    s.BindText(2, t.param);
    s.BindText(3, t.code);
    s.BindText(4, t.system);
    s.BindInt(5, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const StringIndexRow& r : index.strings) {
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_string(type, param, value, exact, rid) "
                "VALUES (?1, ?2, ?3, ?4, ?5)");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindText(3, r.value);
    s.BindText(4, r.exact);
    s.BindInt(5, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const DateIndexRow& r : index.dates) {
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_date(type, param, start_us, end_us, rid) "
                "VALUES (?1, ?2, ?3, ?4, ?5)");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindInt(3, r.start_us);
    s.BindInt(4, r.end_us);
    s.BindInt(5, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const NumberIndexRow& r : index.numbers) {
    JC_SQL_STMT(
        s, c, "INSERT OR IGNORE INTO idx_number(type, param, value, rid) VALUES (?1, ?2, ?3, ?4)");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindDouble(3, r.value);
    s.BindInt(4, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const QuantityIndexRow& r : index.quantities) {
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_quantity(type, param, code, system, value, "
                "canonical_code, canonical_value, rid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindText(3, r.code);
    s.BindText(4, r.system);
    s.BindDouble(5, r.value);
    s.BindText(6, r.canonical_code);
    s.BindDouble(7, r.canonical_value);
    s.BindInt(8, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const ReferenceIndexRow& r : index.references) {
    JC_SQL_STMT(
        s, c,
        "INSERT OR IGNORE INTO idx_reference(type, param, target_id, target_type, url, rid) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
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
                "INSERT OR IGNORE INTO idx_uri(type, param, value, rid) VALUES (?1, ?2, ?3, ?4)");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindText(3, r.value);
    s.BindInt(4, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const CompositeIndexRow& r : index.composites) {
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_composite(type, param, code1, system1, code2, system2, "
                "number2, start2_us, end2_us, rid, canonical_code2, canonical_number2) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
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
    s.BindText(11, r.canonical_code2);
    s.BindDouble(12, r.canonical_number2);
    JC_RETURN_IF_ERROR(s.Run());
  }
  return Status::Ok();
}

// Deletes exactly the rows InsertRows wrote for `index` (each by its whole primary key).
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

// Whether there are rows for resource_index_keys (full text is replaced by rowid, not keys).
bool Empty(const IndexRows& r) {
  return r.tokens.empty() && r.strings.empty() && r.dates.empty() && r.numbers.empty() &&
         r.quantities.empty() && r.references.empty() && r.uris.empty() && r.composites.empty();
}

}  // namespace

Result<std::optional<IndexRows>> ReadIndexKeys(Connection& c, int64_t rid) {
  JC_SQL_STMT(s, c, "SELECT keys FROM resource_index_keys WHERE rid = ?1");
  s.BindInt(1, rid);
  JC_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<IndexRows>();
  JC_ASSIGN_OR_RETURN(IndexRows rows, DecodeIndexKeys(s.ColumnBlob(0)));
  return std::optional<IndexRows>(std::move(rows));
}

Status WriteIndexKeys(Connection& c, int64_t rid, const IndexRows& index) {
  if (Empty(index)) {
    JC_SQL_STMT(s, c, "DELETE FROM resource_index_keys WHERE rid = ?1");
    s.BindInt(1, rid);
    return s.Run();
  }
  JC_SQL_STMT(s, c, "INSERT OR REPLACE INTO resource_index_keys(rid, keys) VALUES (?1, ?2)");
  s.BindInt(1, rid);
  const std::string keys = EncodeIndexKeys(index);
  s.BindBlob(2, keys);
  return s.Run();
}

Status ReplaceIndexRows(Connection& c, std::string_view type, int64_t rid, bool fresh,
                        const IndexRows& index, FullTextQueue* deferred_full_text) {
  if (!fresh) {
    JC_ASSIGN_OR_RETURN(std::optional<IndexRows> old, ReadIndexKeys(c, rid));
    if (old) JC_RETURN_IF_ERROR(DeleteRows(c, type, rid, *old));
  }
  JC_RETURN_IF_ERROR(InsertRows(c, type, rid, index));
  // At most one full-text row per resource.
  const FullTextIndexRow* text = index.full_text.empty() ? nullptr : &index.full_text.front();
  if (deferred_full_text == nullptr) {
    JC_RETURN_IF_ERROR(ReplaceFullText(c, rid, fresh, text));
  } else if (text != nullptr || !fresh) {
    deferred_full_text->push_back(
        {rid, fresh, text ? std::optional<FullTextIndexRow>(*text) : std::nullopt});
  }
  if (fresh && Empty(index)) return Status::Ok();
  return WriteIndexKeys(c, rid, index);
}

Status FlushFullText(Connection& c, FullTextQueue& queue) {
  for (const FullTextWrite& w : queue) {
    JC_RETURN_IF_ERROR(ReplaceFullText(c, w.rid, w.fresh, w.row ? &*w.row : nullptr));
  }
  queue.clear();
  return Status::Ok();
}

}  // namespace jiceng::store::sqlite
