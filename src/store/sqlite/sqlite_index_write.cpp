// The SQLite write side of the search index: replaces a resource's rows in the idx_* tables
// (schema in sqlite_schema.cpp) in the same transaction as its version.
#include "store/sqlite/sqlite_index_write.h"

#include <string>
#include <vector>

#include "store/sqlite/connection.h"

namespace jiceng::store::sqlite {
namespace {

Status DeleteRows(Connection& c, const std::string& sql, int64_t rid) {
  JC_SQL_STMT(s, c, sql);
  s.BindInt(1, rid);
  return s.Run();
}

// The rows added with chains/composites/full text (migration 3 of sqlite_schema.cpp):
// composite rows (and token :of-type rows, see store::CompositeIndexRow) in idx_composite, whose
// old rows the caller deletes with the other idx_* tables; and the _text/_content row in
// fts_resource, an FTS5 table whose rowid is the resource's rid, replaced here by rowid.
Status InsertCompositeAndFullTextRows(Connection& c, std::string_view type, int64_t rid,
                                      bool fresh, const IndexRows& index) {
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
  if (!fresh) JC_RETURN_IF_ERROR(DeleteRows(c, "DELETE FROM fts_resource WHERE rowid = ?1", rid));
  if (!index.full_text.empty()) {
    const FullTextIndexRow& r = index.full_text.front();  // at most one per resource
    JC_SQL_STMT(s, c, "INSERT INTO fts_resource(rowid, narrative, content) VALUES (?1, ?2, ?3)");
    s.BindInt(1, rid);
    s.BindText(2, r.narrative);
    s.BindText(3, r.content);
    JC_RETURN_IF_ERROR(s.Run());
  }
  return Status::Ok();
}

}  // namespace

Status ReplaceIndexRows(Connection& c, std::string_view type, int64_t rid, bool fresh,
                        const IndexRows& index) {
  for (const char* table :
       {"idx_token", "idx_string", "idx_date", "idx_number", "idx_quantity", "idx_reference",
        "idx_uri", "idx_composite"}) {
    if (fresh) break;
    JC_RETURN_IF_ERROR(DeleteRows(c, std::string("DELETE FROM ") + table + " WHERE rid = ?1", rid));
  }
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
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_number(type, param, value, rid) VALUES (?1, ?2, ?3, ?4)");
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
    JC_SQL_STMT(s, c,
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
  JC_RETURN_IF_ERROR(InsertCompositeAndFullTextRows(c, type, rid, fresh, index));
  return Status::Ok();
}

}  // namespace jiceng::store::sqlite
